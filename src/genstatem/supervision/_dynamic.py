"""``DynamicSupervisor``: Elixir's supervisor of children started on demand."""

from __future__ import annotations

from typing import Any

from .._core import ActorRef, StartError, is_clean_exit
from ..statem import Init
from ._base import GIVE_UP, SUPERVISING, Child, SupervisorBase, check_spec, initial
from ._errors import MaxChildren, NoSuchChild
from ._requests import Failed, Request, StartChild, TerminateChild, request
from ._spec import ChildSpec, DynamicSupervisorSpec


class DynamicSupervisor(SupervisorBase):
    """Supervises children started on demand, one_for_one; refs tell them apart.

    Start it with ``system.start(DynamicSupervisor)`` (or with a
    ``DynamicSupervisorSpec``), then add children with
    ``DynamicSupervisor.start_child(sup, child_spec)``. Ids may repeat. A
    restarted child keeps its place in ``which_children``; one whose restart
    is ignored (``init`` returned ``Ignore()``) is dropped. Restart intensity
    and shutdown work as for ``Supervisor``.
    """

    _spec: DynamicSupervisorSpec
    _dict: dict[Child, None]  # insertion-ordered: start order, and O(1) removal

    async def init(self, spec: DynamicSupervisorSpec | None = None) -> Init:
        spec = initial(spec, DynamicSupervisorSpec)
        self._spec = spec
        self._setup(spec.intensity, spec.period)
        self._dict = {}
        return SUPERVISING

    def _children(self) -> list[Child]:
        return list(self._dict)

    # -- the API ------------------------------------------------------------------------

    @staticmethod
    async def start_child(
        sup: ActorRef | Any, child_spec: ChildSpec, *, timeout: float | None = None
    ) -> ActorRef | None:
        """Start a child from ``child_spec``.

        Returns:
            its ref, or ``None`` (and nothing kept) when its ``init`` returned ``Ignore()``.

        Raises:
            MaxChildren: ``max_children`` children are running already.
            StartError: it failed to start.
            NoProcess: no supervisor is registered under ``sup``.
        """
        result: ActorRef | None = await request(sup, StartChild(check_spec(child_spec)), timeout)
        return result

    @staticmethod
    async def terminate_child(sup: ActorRef | Any, ref: ActorRef, *, timeout: float | None = None) -> None:
        """Stop the child ``ref`` for good, as a shutdown stops it.

        Raises:
            NoSuchChild: ``ref`` is not a running child of this supervisor.
        """
        await request(sup, TerminateChild(ref), timeout)

    async def _request(self, message: Request) -> Any:
        kind = message.__class__
        if kind is StartChild:
            assert isinstance(message, StartChild)
            return await self._start_new(message.spec)
        if kind is TerminateChild:
            assert isinstance(message, TerminateChild)
            child = self._by_ref.get(message.key) if isinstance(message.key, ActorRef) else None
            if child is None:
                return Failed(NoSuchChild(message.key))
            await self._stop(child)
            del self._dict[child]
            return None
        return Failed(ValueError(f"DynamicSupervisor does not support {kind.__name__}"))

    async def _start_new(self, spec: ChildSpec) -> Any:
        limit = self._spec.max_children
        if limit is not None and len(self._dict) >= limit:
            return Failed(MaxChildren(f"{self.ref!r} already has max_children={limit} children"))
        child = Child(spec)
        try:
            ref = await self._start(child)
        except StartError as exc:
            return Failed(exc)
        if ref is not None:
            self._dict[child] = None
        return ref

    # -- restarts -----------------------------------------------------------------------

    async def _child_exited(self, child: Child, reason: Any) -> Any:
        restart = child.spec.restart
        if restart == "temporary" or (restart == "transient" and is_clean_exit(reason)) or self.system.closing:
            del self._dict[child]
            return None
        return await self._restart(child)

    async def _retry(self, child: Child) -> Any:
        if child not in self._dict:
            return None
        return await self._restart(child)

    async def _restart(self, child: Child) -> Any:
        if not self._allow_restart(child):
            del self._dict[child]
            return GIVE_UP
        try:
            ref = await self._start(child)
        except StartError:
            self._retry_later(child)
            return None
        if ref is None:
            del self._dict[child]  # ignored: nothing to keep
        return None
