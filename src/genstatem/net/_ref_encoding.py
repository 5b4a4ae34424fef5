"""How refs and reply handles cross the wire: a ref that comes home is the very local ref again.

A local ref goes out as ``[node, id, name, creation]``; one that comes back
to the node (and incarnation) that sent it is the same ``LocalRef``, alive or
not; one of an earlier incarnation is a dead actor. A reply handle goes out
as ``[node, call id]`` and comes home as the caller waiting on it.
"""

from __future__ import annotations

import itertools
import weakref
from typing import TYPE_CHECKING, Any, cast

from .._core import ActorRef, Caller, LocalRef, find_actor
from ._messages import Address
from ._remote import RemoteRef, _RemoteCaller

if TYPE_CHECKING:
    from .._core import ActorSystem
    from ._node import Node


class RefEncoding:
    """``Node``'s half that encodes and decodes refs and reply handles for its codec."""

    if TYPE_CHECKING:
        system: ActorSystem
        name: str
        creation: int
        _ids: itertools.count[int]
        _pending: dict[int, tuple[Address, Caller]]
        _exported: weakref.WeakValueDictionary[int, Caller]
        _export_ids: weakref.WeakKeyDictionary[Caller, int]
        _sent_refs: weakref.WeakValueDictionary[int, ActorRef]

        def _mark_dead(self, address: Address) -> None: ...

    def _node(self) -> Node:
        return cast("Node", self)  # this is a Node's half

    def _encode_ref(self, ref: ActorRef) -> Any:
        if isinstance(ref, RemoteRef):
            address = ref._address
            return [address.node, address.pid, address.name, address.creation]
        assert isinstance(ref, LocalRef)
        self._sent_refs[ref.id] = ref
        return [self.name, ref.id, ref.name, self.creation]

    def _decode_ref(self, data: Any) -> ActorRef:
        node, pid, name, creation = data
        if node == self.name and pid is not None:
            if creation == self.creation:
                return self._home_ref(pid, name)
            return self._dead_ref(Address(node, pid, name, creation))  # of an earlier incarnation of this node
        return RemoteRef(self._node(), Address(node, pid, name, creation))

    def _home_ref(self, pid: int, name: Any) -> ActorRef:
        """A ref to a local actor by id, come home: the very ref sent out, alive or not."""
        local = find_actor(self.system, pid)
        if local is not None:
            return local
        sent = self._sent_refs.get(pid)
        if sent is not None:
            return sent
        return self._dead_ref(Address(self.name, pid, name, self.creation))  # held nowhere here: none to equal

    def _dead_ref(self, address: Address) -> RemoteRef:
        """A ref to an actor known to be gone: it behaves as a dead actor (``NoProcess``, ``Down`` with noproc)."""
        ref = RemoteRef(self._node(), address)
        self._mark_dead(address)
        return ref

    def _encode_caller(self, caller: Caller) -> Any:
        if isinstance(caller, _RemoteCaller):
            return [caller._peer, caller._call_id]
        export_id = self._export_ids.get(caller)
        if export_id is None:
            export_id = next(self._ids)
            self._exported[export_id] = caller
            self._export_ids[caller] = export_id
        return [self.name, export_id]

    def _decode_caller(self, data: Any) -> Caller:
        node, call_id = data
        if node == self.name:
            pending = self._pending.get(call_id)
            if pending is not None:
                return pending[1]
            exported = self._exported.get(call_id)
            if exported is not None:
                return exported
        return _RemoteCaller(self._node(), node, call_id, None)
