"""What ``Supervisor`` and ``DynamicSupervisor`` share: children, restarts, shutdown.

A supervisor is a state machine that traps exits. Its children are started
with ``start_link``, so it is their parent: an exit signal from it stops
them even if they trap exits, and if it is killed they go down with it. A
child's exit arrives as ``Exit(ref, reason)``; the subclass decides what to
restart. A child the supervisor stops itself gets ``system.exit(child,
"shutdown")`` (so ``terminate("shutdown")`` runs) and is killed once its
``shutdown`` time is up, and its ``Exit``, already queued, is dropped by
``unlink``.

The API functions are ``call``s that the supervisor answers between events
(``_requests.py``); restarts are counted against the intensity
(``_intensity.py``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from .._core import ActorRef, Call, Exit, StartError, get_logger, is_clean_exit
from ..statem import GenStateMachine, Init, KeepState, Reply, Stop
from ._intensity import Intensity
from ._requests import CountChildren, Request, TryAgain, WhichChildren, request
from ._spec import ChildCounts, ChildInfo, ChildSpec

log = get_logger("genstatem.supervision")


class Child:
    """One child as its supervisor knows it: its spec and, while it runs, its ref."""

    __slots__ = ("spec", "ref", "restarting")

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.ref: ActorRef | None = None
        # a restart of this child failed: a retry is queued (the child is not running)
        self.restarting = False

    def info(self) -> ChildInfo:
        return ChildInfo(self.spec.id, self.ref, self.spec.type)

    def __repr__(self) -> str:
        return f"<Child {self.spec.id!r} {self.ref!r}>"


def check_spec(spec: Any) -> ChildSpec:
    if not isinstance(spec, ChildSpec):
        raise TypeError(f"want a ChildSpec, got {spec!r}")
    return spec


class SupervisorBase(GenStateMachine):
    """The machinery of both supervisors; subclasses say what to do with requests and exits."""

    trap_exits: ClassVar[bool] = True

    _restarts: Intensity
    _by_ref: dict[ActorRef, Child]

    @staticmethod
    async def which_children(sup: ActorRef | Any, *, timeout: float | None = None) -> list[ChildInfo]:
        """Every child, in order, as ``ChildInfo(id, ref, type)``; ``ref`` is ``None`` when it is not running.

        The order is spec order for a ``Supervisor`` and start order for a
        ``DynamicSupervisor``; a restarted child keeps its place.

        Raises:
            NoProcess: no supervisor is registered under ``sup``.
        """
        result: list[ChildInfo] = await request(sup, WhichChildren(), timeout)
        return result

    @staticmethod
    async def count_children(sup: ActorRef | Any, *, timeout: float | None = None) -> ChildCounts:
        """``ChildCounts(specs, active, supervisors, workers)``: children known, running, and of each type.

        Raises:
            NoProcess: no supervisor is registered under ``sup``.
        """
        result: ChildCounts = await request(sup, CountChildren(), timeout)
        return result

    def _setup(self, intensity: int, period: float) -> None:
        self._restarts = Intensity(intensity, period)
        self._by_ref = {}

    # -- what subclasses provide ----------------------------------------------------

    def _children(self) -> list[Child]:
        """Every child, in start order."""
        raise NotImplementedError

    async def _request(self, message: Request) -> Any:
        """Answer an API request that changes children; return the reply (a ``Failed`` for an error)."""
        raise NotImplementedError

    async def _child_exited(self, child: Child, reason: Any) -> Any:
        """React to a child's exit; return the handler's result (``Stop`` to give up)."""
        raise NotImplementedError

    async def _retry(self, child: Child) -> Any:
        """Try a failed restart of ``child`` again; return the handler's result."""
        raise NotImplementedError

    # -- the state machine ----------------------------------------------------------

    async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        kind = content.__class__
        if kind is Exit:
            child = self._by_ref.get(content.ref)
            if child is None:
                log.warning(
                    "exit signal from a non-child ignored",
                    supervisor=repr(self.ref),
                    sender=repr(content.ref),
                    reason=repr(content.reason),
                )
                return None
            self._forget_process(child)
            self._log_exit(child, content.reason)
            return await self._child_exited(child, content.reason)
        if event_type.__class__ is Call and isinstance(content, Request):
            if kind is WhichChildren:
                answer: Any = [child.info() for child in self._children()]
            elif kind is CountChildren:
                answer = self._counts()
            else:
                answer = await self._request(content)
            return KeepState(actions=Reply(event_type.caller, answer))
        if kind is TryAgain:
            child = content.child
            if not child.restarting or self.system.closing:
                return None  # terminated or deleted meanwhile, or the system is going down
            return await self._retry(child)
        log.warning("unexpected message ignored", supervisor=repr(self.ref), event_type=repr(event_type))
        return None

    async def terminate(self, reason: Any, state: Any, data: Any) -> None:
        log.info("supervisor shutdown", supervisor=repr(self.ref), reason=repr(reason))
        for child in reversed(self._children()):
            await self._stop(child)

    # -- starting and stopping children ---------------------------------------------

    async def _start(self, child: Child) -> ActorRef | None:
        """Start ``child`` linked to this supervisor; ``None`` when its ``init`` returned ``Ignore``.

        Raises:
            StartError: it failed to start (``AlreadyStarted`` and the like
                become the reason of one).
        """
        child.restarting = False
        cls, arg = child.spec.start
        try:
            ref = await self.start_link(cls, arg, name=child.spec.name)
        except StartError as exc:
            reason = exc.reason
        except Exception as exc:  # a name taken, a class that cannot be built: a failed start too
            reason = exc
        else:
            if ref is None:
                log.info("child ignored", supervisor=repr(self.ref), child_id=repr(child.spec.id))
                return None
            child.ref = ref
            self._by_ref[ref] = child
            log.info("child started", supervisor=repr(self.ref), child_id=repr(child.spec.id), child=repr(ref))
            return ref
        log.error(
            "child failed to start",
            supervisor=repr(self.ref),
            child_id=repr(child.spec.id),
            reason=repr(reason),
        )
        raise StartError(reason)

    async def _stop(self, child: Child) -> None:
        """Stop a running child: ``"shutdown"``, then killed after its shutdown time."""
        ref = child.ref
        if ref is None:
            return
        system = self.system
        shutdown = child.spec.shutdown
        timer = None
        if shutdown == "brutal_kill":
            system.exit(ref, "kill")
        else:
            system.exit(ref, "shutdown")
            if shutdown is not None and ref.alive:
                timer = system.call_later(shutdown, lambda: system.exit(ref, "kill"))
        try:
            reason = await ref.wait_exit()
        finally:
            if timer is not None:
                timer.cancel()
        # Forgotten only now: if this wait is cut short (the supervisor is
        # itself being stopped), terminate still finds the child and waits.
        self._forget_process(child)
        self.unlink(ref)  # its Exit is already queued: drop it
        if reason == "shutdown" or (reason == "killed" and shutdown == "brutal_kill"):
            log.debug("child stopped", supervisor=repr(self.ref), child_id=repr(child.spec.id), reason=repr(reason))
        else:
            log.warning(
                "child did not stop cleanly",
                supervisor=repr(self.ref),
                child_id=repr(child.spec.id),
                child=repr(ref),
                reason=repr(reason),
            )

    def _forget_process(self, child: Child) -> None:
        if child.ref is not None:
            self._by_ref.pop(child.ref, None)
            child.ref = None

    def _allow_restart(self, child: Child) -> bool:
        """Count a restart; ``False`` (and logged) when the intensity is reached."""
        if self._restarts.allow(self.system.now()):
            log.info("child restart", supervisor=repr(self.ref), child_id=repr(child.spec.id))
            return True
        log.error(
            "restart intensity reached",
            supervisor=repr(self.ref),
            child_id=repr(child.spec.id),
            intensity=self._restarts.intensity,
            period=self._restarts.period,
        )
        return False

    def _retry_later(self, child: Child) -> None:
        child.restarting = True
        self.ref.cast(TryAgain(child))

    def _log_exit(self, child: Child, reason: Any) -> None:
        fields = {"supervisor": repr(self.ref), "child_id": repr(child.spec.id), "reason": repr(reason)}
        if is_clean_exit(reason):
            log.info("child exited", **fields)
        else:
            log.error("child exited", **fields)

    def _counts(self) -> ChildCounts:
        children = self._children()
        supervisors = sum(1 for child in children if child.spec.type == "supervisor")
        active = sum(1 for child in children if child.ref is not None)
        return ChildCounts(len(children), active, supervisors, len(children) - supervisors)


def initial(spec: Any, spec_type: type[Any]) -> Any:
    """The spec a supervisor was started with (``None``: the defaults)."""
    if spec is None:
        return spec_type()
    if not isinstance(spec, spec_type):
        raise TypeError(f"want a {spec_type.__name__}, got {spec!r}")
    return spec


SUPERVISING = Init("supervising", None)
"""What a supervisor's ``init`` returns: its one state; its books are attributes, not data."""

GIVE_UP = Stop("shutdown")
"""What a supervisor returns when the restart intensity is reached."""
