"""The code lock from OTP's ``gen_statem`` user's guide, in genstatem.

A door has a code lock with buttons. Each press is a cast; the lock keeps the
last ``len(code)`` buttons pressed, and when they spell the code the door
opens. Two timeouts do the rest:

* a **state timeout**, set by the enter call of ``open``, locks the door
  again ``open_for`` seconds after it opened (any state change cancels it);
* an **event timeout** forgets a half-typed code after ``forget_after``
  seconds without an event (any event cancels it, so the ``locked`` state
  sets it again after every event while a code is half typed).

Buttons pressed while the door is open are ignored, as in the guide. The
``"wait_until_locked"`` call shows ``Postpone``: while the door is open it is
kept, and answered by ``locked`` right after the state change.

Run the demo with ``python examples/code_lock.py`` or ``python -m genstatem code-lock``.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import attrs
import structlog

import genstatem as gs

log = structlog.get_logger("code_lock")


@attrs.frozen
class Settings:
    """What a lock is started with: its code and its two timeouts, in seconds."""

    code: str
    open_for: float = 10.0
    forget_after: float = 30.0


@attrs.frozen
class LockData:
    """The machine's data: its settings and the buttons typed so far."""

    settings: Settings
    typed: str = ""


class CodeLock(gs.GenStateMachine):
    """The door's lock: states ``"locked"`` and ``"open"``, one method each."""

    callback_mode = "state_functions"
    state_enter = True

    async def init(self, settings: Settings) -> gs.Init:
        return gs.Init("locked", LockData(settings))

    async def locked(self, event_type: Any, content: Any, data: LockData) -> gs.NextState | gs.KeepState:
        actions: list[gs.Reply] = []
        match event_type, content:
            case gs.Enter(), _:
                do_lock()
                return gs.KeepState(attrs.evolve(data, typed=""))
            case gs.Cast(), ("button", str() as button):
                code = data.settings.code
                typed = (data.typed + button)[-len(code) :]
                if typed == code:
                    return gs.NextState("open", attrs.evolve(data, typed=""))
                data = attrs.evolve(data, typed=typed)
            case gs.EventTimeout(), "forget":
                return gs.KeepState(attrs.evolve(data, typed=""))
            case gs.Call(caller), "status" | "wait_until_locked":
                actions.append(gs.Reply(caller, "locked"))
        # Any event cancels the event timeout: set it again while a code is
        # half typed, or a status query would make the lock remember it forever.
        if data.typed:
            return gs.KeepState(data, [*actions, gs.EventTimeout(data.settings.forget_after, "forget")])
        return gs.KeepState(data, actions)

    async def open(self, event_type: Any, content: Any, data: LockData) -> gs.NextState | gs.KeepState | None:
        match event_type, content:
            case gs.Enter(), _:
                do_unlock()
                return gs.KeepState(actions=gs.StateTimeout(data.settings.open_for, "lock"))
            case gs.StateTimeout(), "lock":
                return gs.NextState("locked", data)
            case gs.Call(caller), "status":
                return gs.KeepState(actions=gs.Reply(caller, "open"))
            case gs.Call(_), "wait_until_locked":
                return gs.KeepState(actions=gs.Postpone())
        return None  # buttons (and anything else) are ignored while the door is open

    async def terminate(self, reason: Any, state: str, data: LockData) -> None:
        if state != "locked":
            do_lock()


def do_lock() -> None:
    """Stands in for the hardware that throws the bolt."""
    log.info("door locked")


def do_unlock() -> None:
    """Stands in for the hardware that draws the bolt."""
    log.info("door unlocked")


# -- the client API: what the rest of a program calls ---------------------------


def press(lock: gs.ActorRef | str, buttons: str) -> None:
    """Press each button in ``buttons``, in order (one cast each; never blocks)."""
    for button in buttons:
        gs.cast(lock, ("button", button))


async def status(lock: gs.ActorRef | str) -> str:
    """``"locked"`` or ``"open"``, once every button pressed before has been handled."""
    result: str = await gs.call(lock, "status")
    return result


async def wait_until_locked(lock: gs.ActorRef | str, timeout: float | None = None) -> None:
    """Return once the door is locked (at once if it is)."""
    await gs.call(lock, "wait_until_locked", timeout=timeout)


# -- the demo ------------------------------------------------------------------------


async def main() -> None:
    """Drive a lock through a short scripted story, printing what happens."""
    settings = Settings("1234", open_for=1.0, forget_after=0.5)
    print(
        f"A code lock with code {settings.code}: it stays open {settings.open_for:g} s"
        f" and forgets a half-typed code after {settings.forget_after:g} s."
    )
    async with gs.ActorSystem() as system:
        lock = await system.start(CodeLock, settings, name="code_lock")
        assert lock is not None

        press(lock, "1234")
        print(f"typed 1 2 3 4 -> {await status(lock)}")

        press(lock, "5")
        print(f"typed 5 while open -> {await status(lock)} (buttons are ignored while the door is open)")

        started = anyio.current_time()
        await wait_until_locked(lock)
        print(f"{anyio.current_time() - started:.1f} s later: {await status(lock)} (the state timeout fired)")

        press(lock, "12")
        print(f"typed 1 2 -> {await status(lock)}")
        pause = 2 * settings.forget_after
        await anyio.sleep(pause)
        _, data = await lock.get_state()
        print(f"{pause:g} s without a button: typed so far {data.typed!r} (the event timeout forgot 1 2)")
        press(lock, "34")
        print(f"typed 3 4 -> {await status(lock)}")

        press(lock, "91234")
        print(f"typed 9 1 2 3 4 -> {await status(lock)} (the lock keeps the last {len(settings.code)} buttons)")

        await lock.stop()
        print(f"stopped the lock (alive: {lock.alive}); its terminate() locked the door first")


def configure_demo_logging() -> None:
    """Show only warnings and errors, so the demo's story stays readable."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


if __name__ == "__main__":
    configure_demo_logging()
    anyio.run(main)
