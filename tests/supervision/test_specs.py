"""Specs: defaults, readable fields, and a ValueError naming the field for anything not valid."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

import genstatem as gs

from .helpers import Worker


def test_child_spec_defaults() -> None:
    """A child spec is permanent, a worker, not registered, with 5 s to stop, unless told otherwise."""
    spec = gs.ChildSpec("w", (Worker, 1))
    assert (spec.id, spec.start, spec.restart, spec.type, spec.shutdown, spec.name) == (
        "w",
        (Worker, 1),
        "permanent",
        "worker",
        5.0,
        None,
    )


def test_a_supervisor_child_waits_as_long_as_it_takes_by_default() -> None:
    """A child of type "supervisor" gets shutdown=None unless one is given."""
    assert gs.ChildSpec("s", (gs.Supervisor, None), type="supervisor").shutdown is None
    assert gs.ChildSpec("s", (gs.Supervisor, None), type="supervisor", shutdown=2).shutdown == 2


@pytest.mark.parametrize("shutdown", [0, 0.5, 10, "brutal_kill", None])
def test_valid_shutdowns(shutdown: Any) -> None:
    """Seconds >= 0, "brutal_kill" and None are valid shutdowns."""
    assert gs.ChildSpec("w", (Worker, None), shutdown=shutdown).shutdown == shutdown


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"restart": "sometimes"}, "ChildSpec.restart"),
        ({"type": "manager"}, "ChildSpec.type"),
        ({"shutdown": -1}, "ChildSpec.shutdown"),
        ({"shutdown": "later"}, "ChildSpec.shutdown"),
        ({"shutdown": True}, "ChildSpec.shutdown"),
    ],
)
def test_child_spec_rejects_bad_fields(options: dict[str, Any], field: str) -> None:
    """An unknown restart or type, or a negative or odd shutdown, raises ValueError naming the field."""
    with pytest.raises(ValueError, match=field):
        gs.ChildSpec("w", (Worker, None), **options)


@pytest.mark.parametrize("start", [Worker, (Worker,), ("Worker", 1), [Worker, 1]])
def test_child_spec_start_must_be_a_class_and_an_argument(start: Any) -> None:
    """start must be a (cls, arg) tuple."""
    with pytest.raises(ValueError, match=r"ChildSpec\.start"):
        gs.ChildSpec("w", start)


def test_supervisor_spec_defaults() -> None:
    """A supervisor spec is one_for_one, 3 restarts in 5 s, no children, unless told otherwise."""
    spec = gs.SupervisorSpec()
    assert (spec.children, spec.strategy, spec.intensity, spec.period) == ((), "one_for_one", 3, 5.0)


def test_supervisor_spec_keeps_children_in_order_as_a_tuple() -> None:
    """Children given as a list are kept, in order, as a tuple."""
    a, b = gs.ChildSpec("a", (Worker, None)), gs.ChildSpec("b", (Worker, None))
    assert gs.SupervisorSpec([a, b]).children == (a, b)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"strategy": "one_for_some"}, "SupervisorSpec.strategy"),
        ({"strategy": "simple_one_for_one"}, "SupervisorSpec.strategy"),
        ({"intensity": -1}, "SupervisorSpec.intensity"),
        ({"intensity": 1.5}, "SupervisorSpec.intensity"),
        ({"period": -1.0}, "SupervisorSpec.period"),
        ({"period": 0}, "SupervisorSpec.period"),
    ],
)
def test_supervisor_spec_rejects_bad_fields(options: dict[str, Any], field: str) -> None:
    """An unknown strategy, a negative intensity or a period not > 0 raises ValueError naming the field."""
    with pytest.raises(ValueError, match=field):
        gs.SupervisorSpec(**options)


def test_supervisor_spec_rejects_duplicate_ids() -> None:
    """Two children with the same id raise ValueError naming the children field and the id."""
    with pytest.raises(ValueError, match=r"SupervisorSpec\.children.*'twice'"):
        gs.SupervisorSpec([gs.ChildSpec("twice", (Worker, 1)), gs.ChildSpec("twice", (Worker, 2))])


def test_supervisor_spec_rejects_what_is_not_a_child_spec() -> None:
    """Only ChildSpec objects are children."""
    with pytest.raises(ValueError, match=r"SupervisorSpec\.children"):
        gs.SupervisorSpec([(Worker, None)])  # type: ignore[list-item]


def test_dynamic_supervisor_spec_defaults_and_checks() -> None:
    """A dynamic spec defaults to 3 restarts in 5 s and no cap; a bad field raises ValueError naming it."""
    spec = gs.DynamicSupervisorSpec()
    assert (spec.intensity, spec.period, spec.max_children) == (3, 5.0, None)
    assert gs.DynamicSupervisorSpec(max_children=0).max_children == 0
    with pytest.raises(ValueError, match=r"DynamicSupervisorSpec\.max_children"):
        gs.DynamicSupervisorSpec(max_children=-1)
    with pytest.raises(ValueError, match=r"DynamicSupervisorSpec\.intensity"):
        gs.DynamicSupervisorSpec(intensity=-1)
    with pytest.raises(ValueError, match=r"DynamicSupervisorSpec\.period"):
        gs.DynamicSupervisorSpec(period=-5)


def test_specs_are_frozen_values() -> None:
    """Specs, ChildInfo and ChildCounts compare by value and cannot be changed."""
    assert gs.ChildSpec("w", (Worker, 1)) == gs.ChildSpec("w", (Worker, 1))
    assert gs.ChildCounts(1, 1, 0, 1) == gs.ChildCounts(specs=1, active=1, supervisors=0, workers=1)
    assert gs.ChildInfo("w", None, "worker").ref is None
    for value in (gs.ChildSpec("w", (Worker, 1)), gs.SupervisorSpec(), gs.DynamicSupervisorSpec()):
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            value.intensity = 9  # type: ignore[union-attr]


def test_supervisor_errors_are_actor_errors() -> None:
    """NoSuchChild is a LookupError; all three supervisor errors are ActorErrors."""
    assert issubclass(gs.NoSuchChild, LookupError)
    for error in (gs.NoSuchChild, gs.ChildRunning, gs.MaxChildren):
        assert issubclass(error, gs.ActorError)
    assert "'missing'" in str(gs.NoSuchChild("missing"))
