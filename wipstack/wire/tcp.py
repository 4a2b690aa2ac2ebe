"""TCP header and options (RFC 9293 §3.1-3.2, RFC 7323, RFC 2018, RFC 6691).

Header::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |          Source Port          |       Destination Port        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                        Sequence Number                        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                    Acknowledgment Number                      |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  Data |       |C|E|U|A|P|R|S|F|                               |
    | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
    |       |       |R|E|G|K|H|T|N|N|                               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |           Checksum            |         Urgent Pointer        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                           [Options]                           |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                                                               :
    :                             Data                              :
    :                                                               |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Options are End of Option List (kind 0) and No-Operation (kind 1), one octet each, or
kind/length/value where the length counts kind and length octets::

    Kind  Length  Meaning                              Value
    0     -       End of Option List                   -
    1     -       No-Operation                         -
    2     4       Maximum Segment Size (RFC 9293)      16-bit MSS
    3     3       Window Scale (RFC 7323 §2)           8-bit shift count
    4     2       SACK-Permitted (RFC 2018 §2)         -
    5     2+8n    SACK (RFC 2018 §3)                   n (left edge, right edge) pairs
    8     10      Timestamps (RFC 7323 §3)             TSval, TSecr (32 bits each)

The checksum covers the IPv4 pseudo-header, the header and the data.  Sequence numbers are
plain ints in 0..2**32-1 here; the TCP layer wraps them.  Addresses are 4-octet ``bytes``
(see :mod:`wipstack.wire.ipv4`).

The fast path: headers without options skip option parsing altogether and the NOP NOP
Timestamps block that Linux and the BSDs put on every data segment is decoded with one
``struct`` call; other option lists go through the general loop.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from construct import (
    BitStruct,
    Bytes,
    ExprAdapter,
    Flag,
    GreedyBytes,
    GreedyRange,
    If,
    Int8ub,
    Int16ub,
    Int32ub,
    Nibble,
    Pass,
    Prefixed,
    Struct,
    Switch,
    this,
)

from wipstack.accel import inet_sum, pseudo_header_sum
from wipstack.errors import DropReason, MalformedPacket
from wipstack.wire._fast import raw_constructor
from wipstack.wire.ipv4 import IpProtocol

Buffer = bytes | bytearray | memoryview

#: Length of the header without options.
MIN_HEADER_LEN = 20
#: Largest options field (Data Offset is 4 bits: at most 15 words of header).
MAX_OPTIONS_LEN = 40


class TcpFlags(enum.IntFlag):
    """The control bits (RFC 9293 §3.1; ECE and CWR from RFC 3168)."""

    FIN = 0x01
    SYN = 0x02
    RST = 0x04
    PSH = 0x08
    ACK = 0x10
    URG = 0x20
    ECE = 0x40
    CWR = 0x80


class TcpOptionKind(enum.IntEnum):
    """The option kinds this module decodes; others are kept as unknown (kind, data)."""

    EOL = 0
    NOP = 1
    MSS = 2
    WINDOW_SCALE = 3
    SACK_PERMITTED = 4
    SACK = 5
    TIMESTAMPS = 8


# ==================== declarations ====================

#: Data Offset (header length in 32-bit words), Reserved and the control bits.
TCP_OFFSET_FLAGS = BitStruct(
    "data_offset" / Nibble,
    "reserved" / Nibble,
    "cwr" / Flag,
    "ece" / Flag,
    "urg" / Flag,
    "ack" / Flag,
    "psh" / Flag,
    "rst" / Flag,
    "syn" / Flag,
    "fin" / Flag,
)

#: RFC 9293 §3.1 header, options as raw octets (their length follows from Data Offset).
TCP_HEADER = Struct(
    "src_port" / Int16ub,
    "dst_port" / Int16ub,
    "seq" / Int32ub,
    "ack" / Int32ub,
    "offset_flags" / TCP_OFFSET_FLAGS,
    "window" / Int16ub,
    "checksum" / Int16ub,
    "urgent" / Int16ub,
    "options" / Bytes(this.offset_flags.data_offset * 4 - 20),
)

#: One SACK block (RFC 2018 §3): the first and one-past-the-last sequence numbers.
SACK_BLOCK = Struct("left" / Int32ub, "right" / Int32ub)

#: Option-Length counts the kind and length octets, so the value is two octets shorter.
_OPTION_LENGTH = ExprAdapter(Int8ub, lambda obj, ctx: obj - 2, lambda obj, ctx: obj + 2)

#: The value of an option, typed by kind; unknown kinds keep raw octets.
TCP_OPTION_VALUE = Switch(
    this.kind,
    {
        TcpOptionKind.MSS.value: Int16ub,
        TcpOptionKind.WINDOW_SCALE.value: Int8ub,  # shift.cnt
        TcpOptionKind.SACK_PERMITTED.value: Pass,
        TcpOptionKind.SACK.value: GreedyRange(SACK_BLOCK),
        TcpOptionKind.TIMESTAMPS.value: Struct("tsval" / Int32ub, "tsecr" / Int32ub),
    },
    default=GreedyBytes,
)

#: One option: EOL and NOP are a lone kind octet; the others are kind, length, value.
TCP_OPTION = Struct(
    "kind" / Int8ub,  # TcpOptionKind (a plain integer so that the Switch also compiles)
    "value" / If(this.kind > TcpOptionKind.NOP.value, Prefixed(_OPTION_LENGTH, TCP_OPTION_VALUE)),
)

#: The options field.  After an EOL the rest is padding: TcpOptions.parse stops there, while
#: this declaration reads on (zero padding reads as more EOLs).
TCP_OPTIONS = GreedyRange(TCP_OPTION)

# ==================== fast codec ====================

# src_port, dst_port, seq, ack, data_offset<<4 | reserved, flags, window, checksum, urgent
_HEADER = struct.Struct("!HHIIBBHHH")
_TS_BLOCK = struct.Struct("!III")  # NOP NOP TS 10 | TSval | TSecr
_PAIR = struct.Struct("!II")  # a SACK block or TSval/TSecr
_MSS = struct.Struct("!BBH")
_TS_PREFIX = 0x0101080A  # NOP, NOP, kind 8, length 10: the Linux/BSD layout
_TCP = IpProtocol.TCP.value
_FLAGS: tuple[TcpFlags, ...] = tuple(TcpFlags(i) for i in range(256))
_SYN = TcpFlags.SYN.value
_FIN_OR_RST = (TcpFlags.FIN | TcpFlags.RST).value


def _bad_option(detail: str) -> MalformedPacket:
    return MalformedPacket(DropReason.BAD_OPTION, f"TCP: {detail}")


@dataclass(frozen=True, slots=True)
class TcpOptions:
    """The options of a segment, decoded; emitted in the conventional Linux order."""

    #: Maximum Segment Size (RFC 9293 §3.7.1, RFC 6691); only meaningful on SYNs.
    mss: int | None = None
    #: Window Scale shift.cnt as received; RFC 7323 §2.3: the TCP layer uses min(value, 14).
    window_scale: int | None = None
    #: SACK-Permitted (RFC 2018 §2).
    sack_permitted: bool = False
    #: SACK blocks as (left edge, right edge) (RFC 2018 §3).
    sack_blocks: tuple[tuple[int, int], ...] = ()
    #: (TSval, TSecr) (RFC 7323 §3).
    timestamps: tuple[int, int] | None = None
    #: Options of other kinds as (kind, value octets), in order of appearance.
    unknown: tuple[tuple[int, bytes], ...] = ()

    @classmethod
    def parse(cls, data: Buffer) -> TcpOptions:
        """Decode an options field; ``MalformedPacket(BAD_OPTION)`` for an illegal length.

        NOPs are skipped, EOL ends the list (what follows is padding), unknown kinds are kept
        (RFC 9293 §3.2: ignored by the TCP layer).  A repeated option overrides the earlier
        one, as Linux does.
        """
        mv = memoryview(data)
        if mv.format != "B":
            mv = mv.cast("B")
        n = len(mv)
        if n == 0:
            return _NO_OPTIONS
        if n == 12:
            prefix, tsval, tsecr = _TS_BLOCK.unpack_from(mv)
            if prefix == _TS_PREFIX:
                return _new_tcp_options(None, None, False, (), (tsval, tsecr), ())
        mss: int | None = None
        window_scale: int | None = None
        sack_permitted = False
        sack_blocks: tuple[tuple[int, int], ...] = ()
        timestamps: tuple[int, int] | None = None
        unknown: list[tuple[int, bytes]] = []
        i = 0
        while i < n:
            kind = mv[i]
            if kind == TcpOptionKind.EOL:
                break  # RFC 9293 §3.2: the rest of the field is padding
            if kind == TcpOptionKind.NOP:
                i += 1
                continue
            # RFC 9293 §3.2: every other option has a length, and an illegal one must be handled
            if i + 1 >= n:
                raise _bad_option(f"kind {kind} without a length octet")
            length = mv[i + 1]
            if length < 2 or i + length > n:
                raise _bad_option(f"kind {kind} length {length} at {i} of {n}")
            if kind == TcpOptionKind.MSS:
                if length != 4:
                    raise _bad_option(f"MSS length {length}")
                mss = (mv[i + 2] << 8) | mv[i + 3]
            elif kind == TcpOptionKind.WINDOW_SCALE:
                if length != 3:
                    raise _bad_option(f"window scale length {length}")
                window_scale = mv[i + 2]
            elif kind == TcpOptionKind.SACK_PERMITTED:
                if length != 2:
                    raise _bad_option(f"SACK-permitted length {length}")
                sack_permitted = True
            elif kind == TcpOptionKind.SACK:
                if length < 10 or (length - 2) & 7:
                    # RFC 2018 §3: one or more 8-octet blocks
                    raise _bad_option(f"SACK length {length}")
                sack_blocks = tuple(_PAIR.iter_unpack(mv[i + 2 : i + length]))
            elif kind == TcpOptionKind.TIMESTAMPS:
                if length != 10:
                    raise _bad_option(f"timestamps length {length}")
                timestamps = _PAIR.unpack_from(mv, i + 2)
            else:
                unknown.append((kind, bytes(mv[i + 2 : i + length])))
            i += length
        return _new_tcp_options(mss, window_scale, sack_permitted, sack_blocks, timestamps, tuple(unknown))

    def emit(self) -> bytes:
        """Encode as Linux lays options out, padded with NOPs to a multiple of 4 octets.

        MSS; SACK-Permitted + Timestamps (or NOP NOP Timestamps, or NOP NOP SACK-Permitted);
        NOP Window Scale; NOP NOP SACK; then unknown options.  ``ValueError`` if a value is
        out of range or the result exceeds 40 octets.
        """
        if self is _NO_OPTIONS:
            return b""
        parts: list[bytes] = []
        try:
            if self.mss is not None:
                parts.append(_MSS.pack(TcpOptionKind.MSS, 4, self.mss))
            if self.timestamps is not None:
                # SACK-Permitted takes the place of the two NOPs in front of the timestamps
                head = b"\x04\x02\x08\x0a" if self.sack_permitted else b"\x01\x01\x08\x0a"
                parts.append(head + _PAIR.pack(*self.timestamps))
            elif self.sack_permitted:
                parts.append(b"\x01\x01\x04\x02")
            if self.window_scale is not None:
                parts.append(bytes((TcpOptionKind.NOP, TcpOptionKind.WINDOW_SCALE, 3, self.window_scale)))
            if self.sack_blocks:
                parts.append(b"\x01\x01\x05" + bytes((2 + 8 * len(self.sack_blocks),)))  # NOP NOP SACK
                parts.extend(_PAIR.pack(left, right) for left, right in self.sack_blocks)
            for kind, value in self.unknown:
                if kind in _KNOWN_KINDS or not 0 <= kind <= 0xFF:
                    raise ValueError(f"TCP option kind {kind} cannot be emitted as unknown")
                parts.append(bytes((kind, 2 + len(value))) + value)
        except (struct.error, ValueError, TypeError) as exc:
            raise ValueError(f"TCP options not representable: {exc}") from exc
        encoded = b"".join(parts)
        if len(encoded) & 3:
            encoded += b"\x01" * (4 - (len(encoded) & 3))  # pad with NOPs
        if len(encoded) > MAX_OPTIONS_LEN:
            raise ValueError(f"TCP options take {len(encoded)} octets, at most {MAX_OPTIONS_LEN} fit")
        return encoded


_new_tcp_options = raw_constructor(TcpOptions)
_NO_OPTIONS = TcpOptions()
_KNOWN_KINDS = frozenset(k.value for k in TcpOptionKind)


@dataclass(frozen=True, slots=True)
class TcpRepr:
    """A TCP header as values; Data Offset and the checksum are computed on emit."""

    src_port: int
    dst_port: int
    #: Sequence number, 0..2**32-1.
    seq: int
    #: Acknowledgment number, 0..2**32-1 (meaningful only with ACK).
    ack: int
    flags: TcpFlags
    window: int
    #: Urgent pointer (meaningful only with URG).
    urgent: int = 0
    options: TcpOptions = _NO_OPTIONS

    @property
    def header_len(self) -> int:
        """Length of the emitted header in octets (options included)."""
        return MIN_HEADER_LEN + len(self.options.emit())

    @classmethod
    def parse(
        cls, segment: Buffer, *, src: bytes, dst: bytes, verify_checksum: bool = True
    ) -> tuple[TcpRepr, memoryview]:
        """Validate ``segment`` (the whole IPv4 payload) and return its header and data (a view).

        ``src`` and ``dst`` are the IPv4 addresses (4 octets) of the pseudo-header.
        """
        mv = memoryview(segment)
        if mv.format != "B":
            mv = mv.cast("B")
        n = len(mv)
        # ---- integrity ----
        if n < MIN_HEADER_LEN:
            raise MalformedPacket(DropReason.TRUNCATED, f"TCP: {n} octets, header needs {MIN_HEADER_LEN}")
        if n > 0xFFFF:
            raise MalformedPacket(DropReason.BAD_LENGTH, f"TCP: {n} octets cannot come from IPv4")
        src_port, dst_port, seq, ack, offset, flags, window, _checksum, urgent = _HEADER.unpack_from(mv)
        hlen = (offset >> 4) << 2
        if hlen < MIN_HEADER_LEN:
            raise MalformedPacket(DropReason.BAD_HEADER_LENGTH, f"TCP: data offset {hlen >> 2} < 5")
        if hlen > n:
            raise MalformedPacket(DropReason.TRUNCATED, f"TCP: data offset {hlen >> 2} past {n} octets")
        if verify_checksum and inet_sum(mv, pseudo_header_sum(src, dst, _TCP, n)) != 0xFFFF:
            raise MalformedPacket(DropReason.BAD_CHECKSUM, "TCP")
        options = _NO_OPTIONS if hlen == MIN_HEADER_LEN else TcpOptions.parse(mv[MIN_HEADER_LEN:hlen])
        # ---- sanity ----  (RFC 9293 §3.1: the reserved bits are ignored on receipt)
        if src_port == 0 or dst_port == 0:
            # port 0 is reserved (IANA); no connection can use it
            raise MalformedPacket(DropReason.BAD_VALUE, f"TCP: port 0 ({src_port} -> {dst_port})")
        if flags & _SYN and flags & _FIN_OR_RST:
            # SYN opens a connection, FIN and RST end one: no conforming sender combines them
            raise MalformedPacket(DropReason.BAD_VALUE, f"TCP: flags {_FLAGS[flags]!r}")
        repr_ = _new_tcp_repr(src_port, dst_port, seq, ack, _FLAGS[flags], window, urgent, options)
        return repr_, mv[hlen:]

    def emit(self, payload: Buffer = b"", *, src: bytes, dst: bytes) -> bytes:
        """Return header and ``payload`` as one segment with Data Offset and checksum.

        Raises ``ValueError`` for fields out of range, options that do not fit or a segment
        over 65535 octets.
        """
        options = self.options
        encoded = b"" if options is _NO_OPTIONS else options.emit()
        hlen = MIN_HEADER_LEN + len(encoded)
        length = hlen + len(payload)
        if length > 0xFFFF:
            raise ValueError(f"TCP segment of {length} octets exceeds 65535")
        src_port, dst_port, seq, ack, window, urgent = (
            self.src_port,
            self.dst_port,
            self.seq,
            self.ack,
            self.window,
            self.urgent,
        )
        flags = int(self.flags)
        if not (
            0 <= src_port <= 0xFFFF
            and 0 <= dst_port <= 0xFFFF
            and 0 <= seq <= 0xFFFFFFFF
            and 0 <= ack <= 0xFFFFFFFF
            and 0 <= flags <= 0xFF
            and 0 <= window <= 0xFFFF
            and 0 <= urgent <= 0xFFFF
        ):
            raise ValueError(f"TCP field out of range in {self!r}")
        if len(src) != 4 or len(dst) != 4:
            raise ValueError("IPv4 addresses are 4 octets (see wipstack.wire.ipv4.address)")
        offset = (hlen >> 2) << 4
        # pseudo-header + header words (checksum field zero) + options, then the data
        total = (
            pseudo_header_sum(src, dst, _TCP, length)
            + src_port
            + dst_port
            + (seq >> 16)
            + (seq & 0xFFFF)
            + (ack >> 16)
            + (ack & 0xFFFF)
            + ((offset << 8) | flags)
            + window
            + urgent
        )
        if encoded:
            total += inet_sum(encoded)
        total = (total & 0xFFFF) + (total >> 16)  # two folds suffice: total < 2**20
        total = (total & 0xFFFF) + (total >> 16)
        checksum = ~inet_sum(payload, total) & 0xFFFF
        header = _HEADER.pack(src_port, dst_port, seq, ack, offset, flags, window, checksum, urgent)
        if encoded:
            return b"".join((header, encoded, payload))
        return header + payload


_new_tcp_repr = raw_constructor(TcpRepr)
