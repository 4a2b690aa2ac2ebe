"""IPv4 header (RFC 791 §3.1): construct declaration, :class:`Ipv4Repr` and its fast codec.

Header::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |Version|  IHL  |Type of Service|          Total Length         |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |         Identification        |Flags|      Fragment Offset    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |  Time to Live |    Protocol   |         Header Checksum       |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                       Source Address                          |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                    Destination Address                        |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                    Options                    |    Padding    |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Flags (3 bits): bit 0 reserved (must be zero), bit 1 DF (don't fragment), bit 2 MF (more
fragments).  Fragment Offset counts 8-octet units; :class:`Ipv4Repr` keeps it in octets.

Three parts, as in every data-plane wire module:

* :data:`IPV4_HEADER`, the construct declaration: the readable single source of truth, used by
  tests and tooling, never on the data path;
* :class:`Ipv4Repr`, the value type with :meth:`Ipv4Repr.parse` / :meth:`Ipv4Repr.emit`;
* a private ``struct.Struct`` codec that parse and emit use; ``tests/property`` proves it
  equal to the declaration on random headers.

**Addresses.**  Every data-plane wire module (ipv4, icmp, udp, tcp) represents an IPv4
address as ``bytes`` of length 4 in network order, exactly what ``struct``'s ``4s`` yields.
Building an ``ipaddress.IPv4Address`` costs about 1.5 µs here (CPython 3.11), twice per packet
that is more than the whole header unpack, so the data path never does it.  Use
:func:`address` to convert from ``str`` / ``int`` / ``IPv4Address`` and the ``src_address`` /
``dst_address`` properties to display.

**Validation.**  Integrity first (length, version, IHL, Total Length, checksum), then sanity
(values the RFCs forbid); both raise :class:`~wipstack.errors.MalformedPacket`.  Options are
kept verbatim and never interpreted.  The reserved flag is ignored on input (RFC 1122 §1.2.2).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from ipaddress import IPv4Address

from construct import BitsInteger, BitStruct, Bytes, Enum, Flag, Int8ub, Int16ub, Nibble, Struct, this

from wipstack.accel import inet_sum
from wipstack.errors import DropReason, MalformedPacket
from wipstack.wire._fast import raw_constructor

Buffer = bytes | bytearray | memoryview

#: Length of the header without options.
MIN_HEADER_LEN = 20
#: Largest options field (IHL is 4 bits: at most 15 words of header).
MAX_OPTIONS_LEN = 40
#: Largest datagram (Total Length is 16 bits).
MAX_PACKET_LEN = 65535


class IpProtocol(enum.IntEnum):
    """Values of the Protocol field (IANA "Assigned Internet Protocol Numbers")."""

    ICMP = 1
    TCP = 6
    UDP = 17


# ==================== declaration ====================

#: First octet: Version and IHL (header length in 32-bit words).
IPV4_VERSION_IHL = BitStruct("version" / Nibble, "ihl" / Nibble)

#: Flags and Fragment Offset (in 8-octet units).
IPV4_FLAGS_FRAGMENT = BitStruct(
    "reserved" / Flag,
    "dont_fragment" / Flag,
    "more_fragments" / Flag,
    "fragment_offset" / BitsInteger(13),
)

#: RFC 791 §3.1 header, options included (their length follows from IHL).
IPV4_HEADER = Struct(
    "version_ihl" / IPV4_VERSION_IHL,
    "tos" / Int8ub,  # RFC 2474 / RFC 3168: DSCP (6 bits) + ECN (2 bits)
    "total_length" / Int16ub,
    "identification" / Int16ub,
    "flags_fragment" / IPV4_FLAGS_FRAGMENT,
    "ttl" / Int8ub,
    "protocol" / Enum(Int8ub, IpProtocol),
    "checksum" / Int16ub,
    "src" / Bytes(4),
    "dst" / Bytes(4),
    "options" / Bytes(this.version_ihl.ihl * 4 - 20),
)

# ==================== fast codec ====================

# version_ihl, tos, total_length, identification, flags_fragment, ttl, protocol, checksum, src, dst
_FIXED = struct.Struct("!BBHHHBBH4s4s")
# the addresses as four 16-bit words, for the checksum on emit (computed from the fields,
# so the header is packed once)
_ADDR_WORDS = struct.Struct("!4H")

_DF = 0x4000
_MF = 0x2000
_OFFSET_MASK = 0x1FFF
_BROADCAST = b"\xff\xff\xff\xff"
_PROTOCOLS: dict[int, int] = {p.value: p for p in IpProtocol}


def address(value: str | int | IPv4Address | Buffer) -> bytes:
    """Convert ``"192.0.2.1"``, an ``int``, an ``IPv4Address`` or 4 octets to the wire form."""
    if isinstance(value, bytes | bytearray | memoryview):
        packed = bytes(value)
        if len(packed) != 4:
            raise ValueError(f"an IPv4 address is 4 octets, got {len(packed)}")
        return packed
    return IPv4Address(value).packed


def _fold(total: int) -> int:
    """Fold a one's-complement sum to 16 bits."""
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


@dataclass(frozen=True, slots=True)
class Ipv4Repr:
    """An IPv4 header as values; lengths and the checksum are computed on emit."""

    #: Source address, 4 octets (see the module docstring).
    src: bytes
    #: Destination address, 4 octets.
    dst: bytes
    #: Protocol of the payload; an :class:`IpProtocol` member when known, else a plain int.
    protocol: int
    ttl: int = 64
    #: The whole second octet (DSCP and ECN).
    tos: int = 0
    identification: int = 0
    dont_fragment: bool = False
    more_fragments: bool = False
    #: Offset of this fragment in octets (a multiple of 8).
    fragment_offset: int = 0
    #: Raw options octets, kept verbatim (padding included when parsed); padded with zero
    #: octets (End of Option List) to a multiple of 4 on emit.
    options: bytes = b""

    @property
    def header_len(self) -> int:
        """Length of the emitted header in octets (options padded to 4)."""
        return MIN_HEADER_LEN + ((len(self.options) + 3) & ~3)

    @property
    def src_address(self) -> IPv4Address:
        """The source address as an ``IPv4Address`` (for display; not used on the data path)."""
        return IPv4Address(self.src)

    @property
    def dst_address(self) -> IPv4Address:
        """The destination address as an ``IPv4Address``."""
        return IPv4Address(self.dst)

    @classmethod
    def parse(cls, packet: Buffer, *, verify_checksum: bool = True) -> tuple[Ipv4Repr, memoryview]:
        """Validate ``packet`` and return its header and its payload (a view, no copy).

        The payload is trimmed to Total Length, so link-layer padding is ignored.  A
        ``bytearray`` input cannot be resized while the returned view is alive.
        """
        mv = memoryview(packet)
        if mv.format != "B":
            mv = mv.cast("B")
        n = len(mv)
        # ---- integrity ----
        if n < MIN_HEADER_LEN:
            raise MalformedPacket(DropReason.TRUNCATED, f"IPv4: {n} octets, header needs {MIN_HEADER_LEN}")
        vihl, tos, total_len, ident, frag, ttl, proto, _checksum, src, dst = _FIXED.unpack_from(mv)
        if vihl >> 4 != 4:
            raise MalformedPacket(DropReason.BAD_VERSION, f"IPv4: version {vihl >> 4}")
        hlen = (vihl & 0x0F) << 2
        if hlen < MIN_HEADER_LEN:
            raise MalformedPacket(DropReason.BAD_HEADER_LENGTH, f"IPv4: IHL {hlen >> 2} < 5")
        if total_len < hlen:
            raise MalformedPacket(DropReason.BAD_LENGTH, f"IPv4: total length {total_len} < header {hlen}")
        if total_len > n:
            raise MalformedPacket(DropReason.TRUNCATED, f"IPv4: total length {total_len} > {n} received")
        # RFC 1071: the sum over a header that carries a correct checksum is all ones
        if verify_checksum and inet_sum(mv[:hlen]) != 0xFFFF:
            raise MalformedPacket(DropReason.BAD_CHECKSUM, "IPv4 header")
        # ---- sanity ----
        offset = (frag & _OFFSET_MASK) << 3
        payload_len = total_len - hlen
        if offset + payload_len > MAX_PACKET_LEN:
            # RFC 791 §3.2: a datagram is at most 65535 octets, so no fragment may end past it
            raise MalformedPacket(DropReason.BAD_VALUE, f"IPv4: fragment ends at {offset + payload_len}")
        if frag & _MF and payload_len & 7:
            # RFC 791 §3.2: every fragment but the last carries a multiple of 8 data octets
            raise MalformedPacket(DropReason.BAD_VALUE, f"IPv4: non-final fragment of {payload_len} octets")
        if src[0] & 0xF0 == 0xE0 or src == _BROADCAST:
            # RFC 1122 §3.2.1.3: a multicast or broadcast source address is invalid
            raise MalformedPacket(DropReason.BAD_VALUE, "IPv4: multicast or broadcast source")
        repr_ = _new_ipv4_repr(
            src,
            dst,
            _PROTOCOLS.get(proto, proto),
            ttl,
            tos,
            ident,
            bool(frag & _DF),
            bool(frag & _MF),
            offset,
            bytes(mv[MIN_HEADER_LEN:hlen]) if hlen > MIN_HEADER_LEN else b"",
        )
        return repr_, mv[hlen:total_len]

    def emit(self, payload: Buffer = b"") -> bytes:
        """Return header and ``payload`` as one datagram, with IHL, Total Length and checksum.

        Raises ``ValueError`` for values the header cannot carry (a datagram over 65535
        octets, options over 40 octets, a fragment offset that is not a multiple of 8, ...).
        """
        options = self.options
        if options:
            if len(options) > MAX_OPTIONS_LEN:
                raise ValueError(f"IPv4 options are at most {MAX_OPTIONS_LEN} octets, got {len(options)}")
            if len(options) & 3:
                options = bytes(options) + bytes(4 - (len(options) & 3))  # RFC 791: pad with zeros
        hlen = MIN_HEADER_LEN + len(options)
        total_len = hlen + len(payload)
        if total_len > MAX_PACKET_LEN:
            raise ValueError(f"IPv4 datagram of {total_len} octets exceeds {MAX_PACKET_LEN}")
        offset = self.fragment_offset
        if offset & 7 or not 0 <= offset <= (_OFFSET_MASK << 3):
            raise ValueError(f"IPv4 fragment offset {offset} is not a multiple of 8 in 0..65528")
        src, dst = self.src, self.dst
        if len(src) != 4 or len(dst) != 4:
            raise ValueError("IPv4 addresses are 4 octets (see wipstack.wire.ipv4.address)")
        ttl, proto, tos, ident = self.ttl, self.protocol, self.tos, self.identification
        if not (0 <= ttl <= 0xFF and 0 <= proto <= 0xFF and 0 <= tos <= 0xFF and 0 <= ident <= 0xFFFF):
            raise ValueError(f"IPv4 field out of range: ttl={ttl} protocol={proto} tos={tos} id={ident}")
        vihl = 0x40 | (hlen >> 2)
        frag = (_DF if self.dont_fragment else 0) | (_MF if self.more_fragments else 0) | (offset >> 3)
        # the checksum from the field values, so the header is packed once
        total = (
            ((vihl << 8) | tos) + total_len + ident + frag + ((ttl << 8) | proto) + sum(_ADDR_WORDS.unpack(src + dst))
        )
        if options:
            total += inet_sum(options)
        checksum = ~_fold(total) & 0xFFFF
        header = _FIXED.pack(vihl, tos, total_len, ident, frag, ttl, proto, checksum, src, dst)
        if options:
            return b"".join((header, options, payload))
        return header + payload


_new_ipv4_repr = raw_constructor(Ipv4Repr)
