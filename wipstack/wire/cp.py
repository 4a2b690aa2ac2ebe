"""The packet format shared by the PPP control protocols (RFC 1661 §5 and §6).

Packet::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     Code      |  Identifier   |            Length             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |    Data ...
    +-+-+-+-+

Configuration option (the Data of Configure-Request/Ack/Nak/Reject)::

     0                   1
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     Type      |    Length     |  Data ...
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Length counts the whole packet or option including its header.  Octets beyond a packet's
Length are padding and are ignored (RFC 1661 §5).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from construct import (
    Bytes,
    Check,
    Construct,
    ConstructError,
    Int8ub,
    Int16ub,
    Rebuild,
    Struct,
    Terminated,
    len_,
    this,
)

from wipstack.errors import DropReason, MalformedPacket

Buffer = bytes | bytearray | memoryview

#: RFC 1661 §5: Code, Identifier, Length (covers the header), Data.
CP_PACKET = Struct(
    "code" / Int8ub,
    "identifier" / Int8ub,
    "length" / Rebuild(Int16ub, len_(this.data) + 4),
    Check(this.length >= 4),
    "data" / Bytes(this.length - 4),
)

#: RFC 1661 §6: Type, Length (covers type and length), Data.
CP_OPTION = Struct(
    "type" / Int8ub,
    "length" / Rebuild(Int8ub, len_(this.data) + 2),
    Check(this.length >= 2),
    "data" / Bytes(this.length - 2),
)


class CpCode(enum.IntEnum):
    """Control-protocol packet codes (RFC 1661 §5; 9-11 are LCP-only)."""

    CONFIGURE_REQUEST = 1
    CONFIGURE_ACK = 2
    CONFIGURE_NAK = 3
    CONFIGURE_REJECT = 4
    TERMINATE_REQUEST = 5
    TERMINATE_ACK = 6
    CODE_REJECT = 7
    PROTOCOL_REJECT = 8
    ECHO_REQUEST = 9
    ECHO_REPLY = 10
    DISCARD_REQUEST = 11


#: pppd's short names, used in the negotiation log.
CODE_NAMES: dict[int, str] = {
    CpCode.CONFIGURE_REQUEST: "ConfReq",
    CpCode.CONFIGURE_ACK: "ConfAck",
    CpCode.CONFIGURE_NAK: "ConfNak",
    CpCode.CONFIGURE_REJECT: "ConfRej",
    CpCode.TERMINATE_REQUEST: "TermReq",
    CpCode.TERMINATE_ACK: "TermAck",
    CpCode.CODE_REJECT: "CodeRej",
    CpCode.PROTOCOL_REJECT: "ProtRej",
    CpCode.ECHO_REQUEST: "EchoReq",
    CpCode.ECHO_REPLY: "EchoRep",
    CpCode.DISCARD_REQUEST: "DiscReq",
}

CONFIGURE_CODES = frozenset(
    {CpCode.CONFIGURE_REQUEST, CpCode.CONFIGURE_ACK, CpCode.CONFIGURE_NAK, CpCode.CONFIGURE_REJECT}
)


@dataclass(frozen=True, slots=True)
class CpPacket:
    """One control-protocol packet."""

    code: int
    identifier: int
    data: bytes = b""

    @classmethod
    def parse(cls, packet: Buffer) -> CpPacket:
        """Parse a packet; raises MalformedPacket if Length is short or overruns the buffer."""
        raw = bytes(packet)
        if len(raw) < 4:
            raise MalformedPacket(DropReason.TRUNCATED, f"{len(raw)} octets, need 4")
        length = int.from_bytes(raw[2:4], "big")
        if length < 4 or length > len(raw):  # RFC 1661 §5: such packets are silently discarded
            raise MalformedPacket(DropReason.BAD_LENGTH, f"Length {length}, {len(raw)} octets present")
        parsed = CP_PACKET.parse(raw[:length])
        return cls(parsed.code, parsed.identifier, parsed.data)

    def emit(self) -> bytes:
        """The packet's octets."""
        return bytes(CP_PACKET.build({"code": self.code, "identifier": self.identifier, "data": self.data}))


@dataclass(frozen=True, slots=True)
class RawOption:
    """One configuration option, type and undecoded data (kept verbatim for Ack/Reject)."""

    type: int
    data: bytes = b""

    def emit(self) -> bytes:
        """The option's octets."""
        return bytes(CP_OPTION.build({"type": self.type, "data": self.data}))


def parse_options(data: Buffer) -> list[RawOption]:
    """Parse a Configure-* option list; raises MalformedPacket on a bad option length."""
    raw = bytes(data)
    options: list[RawOption] = []
    pos = 0
    while pos < len(raw):
        if len(raw) - pos < 2:
            raise MalformedPacket(DropReason.BAD_OPTION, f"option header cut short at offset {pos}")
        length = raw[pos + 1]
        if length < 2 or pos + length > len(raw):
            raise MalformedPacket(DropReason.BAD_OPTION, f"option length {length} at offset {pos}")
        try:
            parsed = CP_OPTION.parse(raw[pos : pos + length])
        except ConstructError as exc:  # pragma: no cover - guarded by the checks above
            raise MalformedPacket(DropReason.BAD_OPTION, str(exc)) from exc
        options.append(RawOption(parsed.type, parsed.data))
        pos += length
    return options


def emit_options(options: list[RawOption] | tuple[RawOption, ...]) -> bytes:
    """Concatenate options into a Configure-* data field."""
    return b"".join(option.emit() for option in options)


def _fixed_size(fmt: Construct) -> int | None:
    try:
        return int(fmt.sizeof())
    except ConstructError:
        return None


def decode_value(formats: dict[int, Construct], option: RawOption) -> Any:
    """Decode an option's value with its declared format; MalformedPacket if it does not fit."""
    fmt = formats.get(option.type)
    if fmt is None:
        raise MalformedPacket(DropReason.BAD_OPTION, f"unknown option type {option.type}")
    size = _fixed_size(fmt)
    # RFC 1661 §6: the Length of a fixed-size option is exact; anything else is malformed
    if size is not None and size != len(option.data):
        raise MalformedPacket(DropReason.BAD_OPTION, f"option {option.type} length {len(option.data) + 2}")
    try:
        return fmt.parse(option.data)
    except ConstructError as exc:
        raise MalformedPacket(DropReason.BAD_OPTION, f"option {option.type}: {exc}") from exc


def encode_value(formats: dict[int, Construct], option_type: int, value: Any = None) -> RawOption:
    """Build a RawOption of ``option_type`` from a typed value (None for flag options)."""
    fmt = formats[option_type]
    data = b"" if fmt is Terminated else bytes(fmt.build(value))
    return RawOption(int(option_type), data)
