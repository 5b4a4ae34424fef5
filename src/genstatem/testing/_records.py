"""Records of what happened between actors, for diagrams and checks."""

from __future__ import annotations

import attrs


@attrs.frozen
class MessageRecord:
    """One message from ``sender`` to ``receiver``, as a simulator or a test saw it.

    Attributes:
        time: when it was sent, in seconds.
        sender: who sent it (a name to show).
        receiver: who it was for.
        label: what it was, in a few words (a short repr of the message).
        dropped: it never arrived (lost, or its receiver was gone).
    """

    time: float
    sender: str
    receiver: str
    label: str
    dropped: bool = False
