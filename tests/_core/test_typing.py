"""What ``mypy --strict`` makes of the public API: no assert needed where nothing can be ``None``."""

from __future__ import annotations

import textwrap
from pathlib import Path

from mypy import api

PROGRAM = textwrap.dedent(
    """
    from typing import Any

    import genstatem as gs


    class Door(gs.GenStateMachine):
        async def init(self, code: str) -> gs.Init:
            return gs.Init("locked", code)


    class MayRefuse(gs.GenStateMachine):
        async def init(self, code: str) -> gs.Init | gs.Stop:
            return gs.Init("locked", code)


    class MayIgnore(gs.GenStateMachine):
        async def init(self, arg: Any) -> gs.Init | gs.Ignore:
            return gs.Ignore()


    class Parent(gs.GenStateMachine):
        async def init(self, arg: Any) -> gs.Init:
            child = await self.start_link(Door, "1")
            child.cast("hello")
            reveal_type(await self.start_link(MayIgnore))
            return gs.Init("up", child)


    async def main() -> None:
        async with gs.ActorSystem() as system:
            door = await system.start(Door, "1234")
            print(await door.call("status"))
            refusing = await system.start(MayRefuse, "1")
            refusing.cast("hello")
            reveal_type(await system.start(MayIgnore))
            reveal_type(await system.start(gs.GenStateMachine, ("s", 0)))
    """
)


def test_start_returns_an_actor_ref_when_init_cannot_ignore(tmp_path: Path) -> None:
    """start and start_link give ActorRef when init returns only Init or Stop, ActorRef | None if it may Ignore."""
    program = tmp_path / "program.py"
    program.write_text(PROGRAM)
    out, err, _ = api.run(["--strict", "--cache-dir", str(tmp_path / "cache"), str(program)])
    errors = [line for line in out.splitlines() if ": error:" in line]
    revealed = [line.split("Revealed type is ")[1] for line in out.splitlines() if "Revealed type is" in line]
    assert errors == [], out + err
    assert revealed == ['"genstatem._core._ref.ActorRef | None"'] * 3
