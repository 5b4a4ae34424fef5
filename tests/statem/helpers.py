"""Small machines shared by the state machine tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import genstatem as gs

Script = Callable[[Any, Any, Any, Any], Any]


class Scripted(gs.GenStateMachine):
    """Records every event as ``(state, event_type, content)`` and answers with a script.

    ``init`` takes ``(state, log, script)``: ``script(event_type, content, state, data)``
    returns the result (``None`` keeps state). Calls with content ``"log"`` are
    answered with the log so far, never recorded.
    """

    async def init(self, arg: Any) -> gs.Init:
        state, log, script = arg
        self.log: list[tuple[Any, Any, Any]] = log
        self.script: Script = script
        return gs.Init(state, None)

    async def handle_event(self, event_type: Any, content: Any, state: Any, data: Any) -> Any:
        if isinstance(event_type, gs.Call) and content == "log":
            return gs.KeepState(actions=gs.Reply(event_type.caller, list(self.log)))
        self.log.append((state, event_type, content))
        return self.script(event_type, content, state, data)


def contents(log: list[tuple[Any, Any, Any]]) -> list[Any]:
    """Just the contents of a log, in order."""
    return [content for _, _, content in log]
