"""``Supervisor``: OTP's supervisor for a fixed, ordered list of children."""

from __future__ import annotations

from typing import Any

from .._core import ActorRef, StartError, is_clean_exit
from ..statem import Init, Stop
from ._base import GIVE_UP, SUPERVISING, Child, SupervisorBase, check_spec, initial
from ._errors import ChildRunning, NoSuchChild
from ._requests import (
    ChildRequest,
    DeleteChild,
    Failed,
    Request,
    RestartChild,
    StartChild,
    TerminateChild,
    request,
)
from ._spec import ChildSpec, SupervisorSpec


class Supervisor(SupervisorBase):
    """Starts its children in order, restarts them by its strategy, stops them in reverse.

    Start it with ``system.start(Supervisor, SupervisorSpec(...))`` (or as a
    child of another supervisor, ``type="supervisor"``). The class-level
    functions (``start_child``, ``which_children``, ...) take the supervisor's
    ref or registered name and wait as long as the operation takes, unless
    given a ``timeout``.

    A child that exits is restarted (``permanent`` always, ``transient`` after
    an exit that is not clean, ``temporary`` never): ``one_for_one`` restarts
    it alone, ``one_for_all`` stops the others in reverse order and starts all
    in order, ``rest_for_one`` does that for the child and those after it. A
    restart whose start fails counts as another restart and is tried again.
    More than ``intensity`` restarts within ``period`` seconds stop every
    child and the supervisor, with reason ``"shutdown"``: its own supervisor
    then decides.
    """

    _spec: SupervisorSpec
    _list: list[Child]

    async def init(self, spec: SupervisorSpec | None = None) -> Init | Stop:
        spec = initial(spec, SupervisorSpec)
        self._spec = spec
        self._setup(spec.intensity, spec.period)
        self._list = [Child(child_spec) for child_spec in spec.children]
        for child in list(self._list):
            try:
                ref = await self._start(child)
            except StartError as exc:
                for started in reversed(self._list):
                    await self._stop(started)
                return Stop(("shutdown", ("failed_to_start_child", child.spec.id, exc.reason)))
            if ref is None and child.spec.restart == "temporary":
                self._list.remove(child)
        return SUPERVISING

    def _children(self) -> list[Child]:
        return self._list

    # -- the API ------------------------------------------------------------------------

    @staticmethod
    async def start_child(
        sup: ActorRef | Any, child_spec: ChildSpec, *, timeout: float | None = None
    ) -> ActorRef | None:
        """Add ``child_spec`` after the other children and start it.

        Returns:
            its ref, or ``None`` when its ``init`` returned ``Ignore()`` (the
            spec is kept, with no ref, unless the child is ``temporary``).

        Raises:
            StartError: it failed to start; no spec is kept.
            ValueError: the supervisor already has a child with this ``id``.
            NoProcess: no supervisor is registered under ``sup``.
        """
        result: ActorRef | None = await request(sup, StartChild(check_spec(child_spec)), timeout)
        return result

    @staticmethod
    async def terminate_child(sup: ActorRef | Any, id: Any, *, timeout: float | None = None) -> None:
        """Stop the child ``id`` as a shutdown stops it; its spec stays (unless it is ``temporary``).

        Raises:
            NoSuchChild: no child has this id.
        """
        await request(sup, TerminateChild(id), timeout)

    @staticmethod
    async def restart_child(sup: ActorRef | Any, id: Any, *, timeout: float | None = None) -> ActorRef | None:
        """Start the terminated child ``id`` again.

        Returns:
            its ref, or ``None`` when its ``init`` returned ``Ignore()``.

        Raises:
            NoSuchChild: no child has this id.
            ChildRunning: it is running (or being restarted).
            StartError: it failed to start; the spec stays.
        """
        result: ActorRef | None = await request(sup, RestartChild(id), timeout)
        return result

    @staticmethod
    async def delete_child(sup: ActorRef | Any, id: Any, *, timeout: float | None = None) -> None:
        """Remove the spec of the terminated child ``id``.

        Raises:
            NoSuchChild: no child has this id.
            ChildRunning: it is running (or being restarted).
        """
        await request(sup, DeleteChild(id), timeout)

    async def _request(self, message: Request) -> Any:
        kind = message.__class__
        if kind is StartChild:
            assert isinstance(message, StartChild)
            return await self._start_new(message.spec)
        assert isinstance(message, ChildRequest)
        child = self._find(message.key)
        if child is None:
            return Failed(NoSuchChild(message.key))
        if kind is TerminateChild:
            await self._stop(child)
            child.restarting = False
            if child.spec.restart == "temporary":
                self._list.remove(child)
            return None
        if child.ref is not None or child.restarting:
            state = "running" if child.ref is not None else "being restarted"
            return Failed(ChildRunning(f"child {child.spec.id!r} is {state}"))
        if kind is DeleteChild:
            self._list.remove(child)
            return None
        try:
            return await self._start(child)
        except StartError as exc:
            return Failed(exc)

    async def _start_new(self, spec: ChildSpec) -> Any:
        if self._find(spec.id) is not None:
            return Failed(ValueError(f"ChildSpec.id: the supervisor already has a child {spec.id!r}"))
        child = Child(spec)
        try:
            ref = await self._start(child)
        except StartError as exc:
            return Failed(exc)
        if ref is not None or spec.restart != "temporary":
            self._list.append(child)
        return ref

    def _find(self, id: Any) -> Child | None:
        for child in self._list:
            if child.spec.id == id:
                return child
        return None

    # -- restarts -----------------------------------------------------------------------

    async def _child_exited(self, child: Child, reason: Any) -> Any:
        restart = child.spec.restart
        if restart == "temporary":
            self._list.remove(child)
            return None
        if restart == "transient" and is_clean_exit(reason):
            return None
        if self.system.closing:
            return None  # the system is going down: nothing is restarted
        return await self._restart(child)

    async def _retry(self, child: Child) -> Any:
        return await self._restart(child)

    async def _restart(self, child: Child) -> Any:
        if not self._allow_restart(child):
            return GIVE_UP
        group = self._group(child)
        for other in reversed(group):
            await self._stop(other)
            # a temporary child is never restarted: stopped here, it is gone
            if other.spec.restart == "temporary":
                self._list.remove(other)
        for member in group:
            if member.spec.restart == "temporary":
                continue
            try:
                await self._start(member)
            except StartError:
                self._retry_later(member)
                return None
        return None

    def _group(self, child: Child) -> list[Child]:
        """The children a restart of ``child`` stops and starts again, in order."""
        strategy = self._spec.strategy
        if strategy == "one_for_one":
            return [child]
        if strategy == "one_for_all":
            return list(self._list)
        return self._list[self._list.index(child) :]
