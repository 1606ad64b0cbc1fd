"""The wire format of protocol messages: a fixed header, a JSON body and an optional raw vector.

Header: magic, phase, 16-byte round id, sender, receiver (64-bit ids; the server is ``SERVER``). Both
sides check the header before reading the body, so a message from another round, another phase, an
unexpected sender or a second copy of an earlier message is rejected with a clear error.

>>> m = Message(Phase.ADVERTISE, bytes(16), 3, SERVER, {"c_pk": "00"})
>>> Message.from_bytes(m.to_bytes()) == m
True
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from keelml.federated.secagg.errors import MessageRejectedError

MAGIC = b"KSA1"
SERVER = 2**64 - 1
_HEADER = struct.Struct("<4sB16sQQI")


class Phase(IntEnum):
    ADVERTISE = 1  # server -> client: plan + neighbours; client -> server: two public keys
    SHARE_KEYS = 2  # server -> client: neighbours' keys; client -> server: sealed shares per neighbour
    MASKED_INPUT = 3  # server -> client: sealed shares for it; client -> server: masked vector
    UNMASK = 4  # server -> client: who survived, who dropped; client -> server: the matching shares


@dataclass(frozen=True, slots=True)
class Message:
    phase: Phase
    round_id: bytes
    sender: int
    receiver: int
    body: dict[str, Any]
    payload: bytes | memoryview = field(default=b"", repr=False)

    def to_bytes(self) -> bytes:
        meta = json.dumps(self.body, separators=(",", ":")).encode()
        header = _HEADER.pack(MAGIC, int(self.phase), self.round_id, self.sender, self.receiver, len(meta))
        return b"".join((header, meta, self.payload))

    @classmethod
    def from_bytes(cls, data: bytes) -> Message:
        if len(data) < _HEADER.size:
            raise _malformed(f"{len(data)} bytes, shorter than the {_HEADER.size}-byte header")
        magic, phase, round_id, sender, receiver, meta_len = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise _malformed(f"magic {magic!r} instead of {MAGIC!r}")
        if phase not in Phase._value2member_map_:
            raise _malformed(f"unknown phase {phase}")
        end = _HEADER.size + meta_len
        try:
            body = json.loads(data[_HEADER.size : end])
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _malformed("a body that is not JSON") from exc
        if not isinstance(body, dict):
            raise _malformed("a body that is not a JSON object")
        return cls(Phase(phase), round_id, sender, receiver, body, memoryview(data)[end:])  # no copy

    def expect(self, *, round_id: bytes, phase: Phase, sender: int | None, receiver: int) -> None:
        """Reject a message that belongs to another round, phase, sender or receiver."""
        problems = []
        if self.round_id != round_id:
            problems.append(f"round {self.round_id.hex()[:12]}… instead of {round_id.hex()[:12]}…")
        if self.phase != phase:
            problems.append(f"phase {self.phase.name} instead of {phase.name}")
        if sender is not None and self.sender != sender:
            problems.append(f"sender {self.sender} instead of {sender}")
        if self.receiver != receiver:
            problems.append(f"receiver {self.receiver} instead of {receiver}")
        if problems:
            raise MessageRejectedError(
                "out-of-round or misdirected secure-aggregation message",
                expected=f"round {round_id.hex()[:12]}…, phase {phase.name}, receiver {receiver}",
                received="; ".join(problems),
                fix="drop the message: it is replayed from another round or phase, or misdirected",
            )


def _malformed(received: str) -> MessageRejectedError:
    return MessageRejectedError(
        "malformed secure-aggregation message",
        expected=f"a {MAGIC.decode()} header, a known phase and a JSON body",
        received=received,
        fix="check that server and clients run the same keelml version",
    )
