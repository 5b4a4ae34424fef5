"""The crash reasons of a state machine that broke the gen_statem rules."""

from __future__ import annotations

from typing import Any

from .._core import ActorError


class BadReturn(ActorError, TypeError):
    """A callback returned a value (or an action) that is not allowed there.

    Like gen_statem's ``bad_return_from_state_function``: it is the actor's
    exit reason, and its message names the value and the state.

    Attributes:
        value: the offending result or action.
        state: the state the actor was in.
    """

    def __init__(self, what: str, value: Any, state: Any) -> None:
        super().__init__(f"{what}: {value!r} (in state {state!r})")
        self.value = value
        self.state = state
