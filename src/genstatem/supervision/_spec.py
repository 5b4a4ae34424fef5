"""Child and supervisor specs, and what supervisors report about their children.

Every spec is a frozen attrs class checked when it is built: a field that is
not valid raises ``ValueError`` naming the field, so a bad spec never reaches
a running supervisor.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

from .._core import ActorRef

Restart = Literal["permanent", "transient", "temporary"]
Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]
ChildType = Literal["worker", "supervisor"]
Shutdown = float | Literal["brutal_kill"] | None
ActorClass = type[Any]  # an alias: ``ChildSpec.type`` shadows the builtin in the class body

RESTARTS = ("permanent", "transient", "temporary")
STRATEGIES = ("one_for_one", "one_for_all", "rest_for_one")
CHILD_TYPES = ("worker", "supervisor")

WORKER_SHUTDOWN = 5.0
"""Seconds a worker gets to stop by default; a supervisor child gets ``None`` (as long as it takes)."""


def _field(instance: Any, attribute: attrs.Attribute[Any]) -> str:
    return f"{type(instance).__name__}.{attribute.name}"


def _one_of(choices: tuple[str, ...]) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, str) or value not in choices:
            raise ValueError(f"{_field(instance, attribute)} must be one of {choices}, got {value!r}")

    return check


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_start(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], type)):
        raise ValueError(f"{_field(instance, attribute)} must be a (cls, arg) tuple, got {value!r}")


def _check_shutdown(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None or value == "brutal_kill":
        return
    if not _is_number(value) or not value >= 0:
        raise ValueError(f"{_field(instance, attribute)} must be seconds >= 0, 'brutal_kill' or None, got {value!r}")


def _check_count(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{_field(instance, attribute)} must be an int >= 0, got {value!r}")


def _check_period(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not _is_number(value) or not value > 0:
        raise ValueError(f"{_field(instance, attribute)} must be seconds > 0, got {value!r}")


def _check_max_children(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        _check_count(instance, attribute, value)


def _default_shutdown(spec: ChildSpec) -> Shutdown:
    return WORKER_SHUTDOWN if spec.type == "worker" else None


@attrs.frozen
class ChildSpec:
    """How a supervisor starts, restarts and stops one child.

    Args:
        id: names the child within its supervisor (ids may repeat under a
            ``DynamicSupervisor``, where refs tell children apart).
        start: ``(cls, arg)``: the child is started as ``start_link(cls, arg)``.
        restart: ``"permanent"`` (always restarted), ``"transient"`` (restarted
            only after an exit that is not clean) or ``"temporary"`` (never
            restarted; its spec is dropped once it exits).
        type: ``"worker"`` or ``"supervisor"``.
        shutdown: seconds the child gets to run ``terminate("shutdown")``
            before it is killed; ``"brutal_kill"`` kills it at once; ``None``
            waits as long as it takes. Default: 5.0 for a worker, ``None``
            for a supervisor.
        name: the name the child is registered under, kept across restarts
            (``None``: not registered).

    Raises:
        ValueError: a field is not valid; the message names it.
    """

    id: Any
    start: tuple[ActorClass, Any] = attrs.field(validator=_check_start)
    restart: Restart = attrs.field(default="permanent", kw_only=True, validator=_one_of(RESTARTS))
    type: ChildType = attrs.field(default="worker", kw_only=True, validator=_one_of(CHILD_TYPES))
    shutdown: Shutdown = attrs.field(
        default=attrs.Factory(_default_shutdown, takes_self=True), kw_only=True, validator=_check_shutdown
    )
    name: Any = attrs.field(default=None, kw_only=True)


def _check_children(instance: Any, attribute: attrs.Attribute[Any], value: tuple[Any, ...]) -> None:
    seen: list[Any] = []
    for child in value:
        if not isinstance(child, ChildSpec):
            raise ValueError(f"{_field(instance, attribute)} must hold ChildSpec objects, got {child!r}")
        if child.id in seen:
            raise ValueError(f"{_field(instance, attribute)}: duplicate child id {child.id!r}")
        seen.append(child.id)


def _to_tuple(children: Any) -> tuple[Any, ...]:
    if isinstance(children, ChildSpec):
        return (children,)
    return tuple(children)


@attrs.frozen
class SupervisorSpec:
    """What a ``Supervisor`` is started with: its children and how it restarts them.

    Args:
        children: the child specs, started in this order and stopped in reverse.
        strategy: when a child must be restarted, ``"one_for_one"`` restarts
            it alone; ``"one_for_all"`` stops the others (in reverse order) and
            starts all again in order; ``"rest_for_one"`` does that for the
            child and those after it.
        intensity: restarts allowed within ``period``; one more stops every
            child and the supervisor, with reason ``"shutdown"``.
        period: the window, in seconds, in which ``intensity`` is counted.

    Raises:
        ValueError: a field is not valid (a duplicate child id included); the
            message names it.
    """

    children: tuple[ChildSpec, ...] = attrs.field(default=(), converter=_to_tuple, validator=_check_children)
    strategy: Strategy = attrs.field(default="one_for_one", kw_only=True, validator=_one_of(STRATEGIES))
    intensity: int = attrs.field(default=3, kw_only=True, validator=_check_count)
    period: float = attrs.field(default=5.0, kw_only=True, validator=_check_period)


@attrs.frozen
class DynamicSupervisorSpec:
    """What a ``DynamicSupervisor`` is started with: restart limits and a cap on children.

    Args:
        intensity: restarts allowed within ``period`` (see ``SupervisorSpec``).
        period: the window, in seconds, in which ``intensity`` is counted.
        max_children: at most this many children at once; ``None``: no limit.

    Raises:
        ValueError: a field is not valid; the message names it.
    """

    intensity: int = attrs.field(default=3, kw_only=True, validator=_check_count)
    period: float = attrs.field(default=5.0, kw_only=True, validator=_check_period)
    max_children: int | None = attrs.field(default=None, kw_only=True, validator=_check_max_children)


@attrs.frozen
class ChildInfo:
    """One child, as ``which_children`` reports it; ``ref`` is ``None`` when it is not running."""

    id: Any
    ref: ActorRef | None
    type: ChildType


@attrs.frozen
class ChildCounts:
    """What ``count_children`` reports.

    Attributes:
        specs: children the supervisor knows, running or not.
        active: children running now.
        supervisors: children of type ``"supervisor"``, running or not.
        workers: children of type ``"worker"``, running or not.
    """

    specs: int
    active: int
    supervisors: int
    workers: int
