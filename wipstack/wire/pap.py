"""PAP packets (RFC 1334 §2.2), carried in the control-protocol packet format.

Authenticate-Request (code 1) data::

    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    | Peer-ID Length|  Peer-Id ...
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    | Passwd-Length |  Password ...
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Authenticate-Ack (2) and Authenticate-Nak (3) data::

    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  Msg-Length   |  Message  ...
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from construct import ConstructError, GreedyBytes, Int8ub, Prefixed, Struct

from wipstack.errors import DropReason, MalformedPacket

Buffer = bytes | bytearray | memoryview

PAP_REQUEST_BODY = Struct(
    "peer_id" / Prefixed(Int8ub, GreedyBytes),
    "password" / Prefixed(Int8ub, GreedyBytes),
)
PAP_RESPONSE_BODY = Struct("message" / Prefixed(Int8ub, GreedyBytes))


class PapCode(enum.IntEnum):
    """PAP packet codes."""

    AUTHENTICATE_REQUEST = 1
    AUTHENTICATE_ACK = 2
    AUTHENTICATE_NAK = 3


PAP_CODE_NAMES = {1: "AuthReq", 2: "AuthAck", 3: "AuthNak"}


@dataclass(frozen=True, slots=True)
class PapRequest:
    """The body of an Authenticate-Request."""

    peer_id: bytes
    password: bytes

    @classmethod
    def parse(cls, data: Buffer) -> PapRequest:
        """Parse; the two counted strings must fit in the packet (RFC 1334 §2.2.1)."""
        try:
            parsed = PAP_REQUEST_BODY.parse(bytes(data))
        except ConstructError as exc:
            raise MalformedPacket(DropReason.BAD_LENGTH, f"PAP request: {exc}") from exc
        return cls(parsed.peer_id, parsed.password)

    def emit(self) -> bytes:
        """The request body's octets."""
        if len(self.peer_id) > 255 or len(self.password) > 255:
            raise ValueError("PAP peer-id and password are limited to 255 octets")
        return bytes(PAP_REQUEST_BODY.build({"peer_id": self.peer_id, "password": self.password}))


@dataclass(frozen=True, slots=True)
class PapResponse:
    """The body of an Authenticate-Ack or Authenticate-Nak."""

    message: bytes = b""

    @classmethod
    def parse(cls, data: Buffer) -> PapResponse:
        """Parse; an empty body is tolerated as an empty message (some peers send none)."""
        raw = bytes(data)
        if not raw:
            return cls(b"")
        try:
            return cls(PAP_RESPONSE_BODY.parse(raw).message)
        except ConstructError as exc:
            raise MalformedPacket(DropReason.BAD_LENGTH, f"PAP response: {exc}") from exc

    def emit(self) -> bytes:
        """The response body's octets."""
        return bytes(PAP_RESPONSE_BODY.build({"message": self.message[:255]}))
