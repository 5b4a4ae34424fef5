"""One PySyncObj node for ``bench_cluster.py``: a ``SyncObj`` with a ``ReplDict``, and a small TCP front end.

    python benchmarks/_pysyncobj_node.py --raft 127.0.0.1:P --partner 127.0.0.1:Q --partner 127.0.0.1:R --front F

PySyncObj is a library, not a server: this script is the server. It runs
the ``SyncObj`` with its own defaults (``SyncObjConf()``: no journal, no
fsync, batching on) in its own ticking thread, and serves newline-separated
JSON requests on ``127.0.0.1:F`` from an asyncio loop in the main thread:

- ``{"op": "put", "k": KEY, "v": VALUE}`` calls ``ReplDict.set`` with a
  callback; the answer ``{"ok": true}`` is sent once PySyncObj calls it back
  with success (the entry is committed and applied on this node), else
  ``{"ok": false, "error": N}`` with PySyncObj's ``FAIL_REASON``;
- ``{"op": "status"}`` answers ``{"self": ADDRESS, "leader": ADDRESS or null,
  "applied": INDEX}``.

Requests on one connection are answered in order, one at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf
from pysyncobj.batteries import ReplDict


def _settle(future: asyncio.Future[int], error: int) -> None:
    if not future.done():
        future.set_result(error)


async def serve(raft: str, partners: list[str], front: int) -> None:
    """Run the node and its front end until killed."""
    loop = asyncio.get_running_loop()
    values = ReplDict()
    node = SyncObj(raft, partners, consumers=[values], conf=SyncObjConf())

    async def answer(request: dict[str, Any]) -> dict[str, Any]:
        if request["op"] == "put":
            future: asyncio.Future[int] = loop.create_future()

            def done(_result: Any, error: int) -> None:  # called in PySyncObj's thread
                loop.call_soon_threadsafe(_settle, future, error)

            values.set(request["k"], request["v"], callback=done)
            error = await future
            return {"ok": error == FAIL_REASON.SUCCESS, "error": int(error)}
        status = node.getStatus()
        leader = status["leader"]
        return {
            "self": str(node.selfNode),
            "leader": None if leader is None else str(leader),
            "applied": status["last_applied"],
        }

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                writer.write(json.dumps(await answer(json.loads(line))).encode() + b"\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", front, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raft", required=True, help="this node's Raft address, HOST:PORT")
    parser.add_argument("--partner", action="append", default=[], help="another member's Raft address")
    parser.add_argument("--front", type=int, required=True, help="the front end's port on 127.0.0.1")
    args = parser.parse_args()
    asyncio.run(serve(args.raft, args.partner, args.front))


if __name__ == "__main__":
    main()
