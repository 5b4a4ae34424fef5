"""A small supervision tree: crash a worker and watch its supervisor bring it back.

The tree::

    app (Supervisor, one_for_one)
    ├── counter (Counter, permanent)     counts the "add" casts it gets
    ├── greeter (Greeter, transient)     says hello; a clean stop is final
    └── jobs (DynamicSupervisor)         job workers, started on demand
        ├── Job "resize"
        └── Job "upload"

The story: the counter counts to 3 and crashes; the supervisor starts a new
one in its place (a restart starts from ``init``: the count is back to 0),
registered under the same name, so callers that use the name never notice.
Then a job crashes and comes back, and one is stopped for good. Leaving the
``ActorSystem`` block stops the tree from the leaves up, each supervisor
stopping its children in reverse order.

Run it with ``python examples/supervised_workers.py``.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import structlog

import genstatem as gs

stopped: list[str] = []
"""What has terminated, in order (the story prints it at the end)."""


class Counter(gs.GenStateMachine):
    """Counts the ``"add"`` casts it gets; a ``"boom"`` cast crashes it."""

    async def init(self, start: int) -> gs.Init:
        return gs.Init("counting", start)

    def handle_event(self, event_type: Any, content: Any, state: str, count: int) -> Any:
        match event_type, content:
            case gs.Cast(), "add":
                return gs.KeepState(count + 1)
            case gs.Cast(), "boom":
                raise RuntimeError("the counter overflowed")
            case gs.Call(caller), "count":
                return gs.KeepState(actions=gs.Reply(caller, count))
        return None

    async def terminate(self, reason: Any, state: str, count: int) -> None:
        stopped.append("counter")


class Greeter(gs.GenStateMachine):
    """Answers ``("hello", name)`` calls."""

    async def init(self, greeting: str) -> gs.Init:
        return gs.Init("ready", greeting)

    def handle_event(self, event_type: Any, content: Any, state: str, greeting: str) -> Any:
        match event_type, content:
            case gs.Call(caller), ("hello", name):
                return gs.KeepState(actions=gs.Reply(caller, f"{greeting}, {name}!"))
        return None

    async def terminate(self, reason: Any, state: str, greeting: str) -> None:
        stopped.append("greeter")


class Job(gs.GenStateMachine):
    """A job worker: answers ``"status"`` with its task; a ``"boom"`` cast crashes it."""

    async def init(self, task: str) -> gs.Init:
        return gs.Init("running", task)

    def handle_event(self, event_type: Any, content: Any, state: str, task: str) -> Any:
        match event_type, content:
            case gs.Call(caller), "status":
                return gs.KeepState(actions=gs.Reply(caller, f"{task}: {state}"))
            case gs.Cast(), "boom":
                raise RuntimeError(f"job {task} failed")
        return None

    async def terminate(self, reason: Any, state: str, task: str) -> None:
        stopped.append(f"job {task}")


TREE = gs.SupervisorSpec(
    [
        gs.ChildSpec("counter", (Counter, 0), name="counter"),
        gs.ChildSpec("greeter", (Greeter, "Hello"), restart="transient", name="greeter"),
        gs.ChildSpec(
            "jobs", (gs.DynamicSupervisor, gs.DynamicSupervisorSpec(max_children=10)), type="supervisor", name="jobs"
        ),
    ],
    strategy="one_for_one",
    intensity=3,
    period=5.0,
)


async def show_tree(system: gs.ActorSystem) -> None:
    """Print the tree: each child of "app" and of "jobs", with its actor."""
    for info in await gs.Supervisor.which_children("app"):
        print(f"  {info.id:<8} {info.type:<10} {info.ref!r}")
    for info in await gs.DynamicSupervisor.which_children("jobs"):
        print(f"    {info.id:<6} {info.type:<8} {info.ref!r}")


async def main() -> None:
    """Start the tree, crash a worker and a job, and watch them come back."""
    async with gs.ActorSystem() as system:
        await system.start(gs.Supervisor, TREE, name="app")
        resize = await gs.DynamicSupervisor.start_child("jobs", gs.ChildSpec("job", (Job, "resize")))
        await gs.DynamicSupervisor.start_child("jobs", gs.ChildSpec("job", (Job, "upload")))
        print("the tree:")
        await show_tree(system)

        print(await gs.call("greeter", ("hello", "world")))
        for _ in range(3):
            gs.cast("counter", "add")
        print(f"counter: {await gs.call('counter', 'count')}")

        old = system.whereis("counter")
        assert old is not None
        gs.cast("counter", "boom")
        print(f"counter crashed: {await old.wait_exit()!r}")
        # Any call to the supervisor is answered after it handled the crash.
        counts = await gs.Supervisor.count_children("app")
        new = system.whereis("counter")
        print(f"restarted: {new!r} replaces {old!r} ({counts.active} of {counts.specs} children running)")
        print(f"counter after the restart: {await gs.call('counter', 'count')}")

        assert resize is not None
        resize.cast("boom")
        print(f"job crashed: {await resize.wait_exit()!r}")
        for info in await gs.DynamicSupervisor.which_children("jobs"):
            assert info.ref is not None
            print(f"  {await info.ref.call('status')} ({info.ref!r})")

        upload = (await gs.DynamicSupervisor.which_children("jobs"))[1].ref
        assert upload is not None
        await gs.DynamicSupervisor.terminate_child("jobs", upload)
        print(f"stopped the upload job for good: {await gs.DynamicSupervisor.count_children('jobs')}")

        stopped.clear()
        print("leaving the ActorSystem block...")
    print(f"stopped, in order: {', '.join(stopped)}")


def configure_demo_logging() -> None:
    """Keep the story readable: the crashes are on purpose, so hide even their error reports."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


if __name__ == "__main__":
    configure_demo_logging()
    anyio.run(main)
