"""UDP (RFC 768): construct declaration, :class:`UdpRepr` and its fast codec.

Header::

     0      7 8     15 16    23 24    31
    +--------+--------+--------+--------+
    |     Source      |   Destination   |
    |      Port       |      Port       |
    +--------+--------+--------+--------+
    |                 |                 |
    |     Length      |    Checksum     |
    +--------+--------+--------+--------+
    |
    |          data octets ...
    +---------------- ...

Length counts header and data.  The checksum covers a pseudo-header (source address,
destination address, zero, protocol 17, UDP length), the header and the data.  A transmitted
checksum of zero means "not computed"; a computed zero is therefore sent as all ones.

Addresses are 4-octet ``bytes``, as everywhere in the data-plane wire modules
(see :mod:`wipstack.wire.ipv4`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from construct import Int16ub, Struct

from wipstack.accel import inet_sum, pseudo_header_sum
from wipstack.errors import DropReason, MalformedPacket
from wipstack.wire._fast import raw_constructor
from wipstack.wire.ipv4 import IpProtocol

Buffer = bytes | bytearray | memoryview

#: Source Port, Destination Port, Length, Checksum.
HEADER_LEN = 8
#: Largest datagram the 16-bit Length field can describe.
MAX_DATAGRAM_LEN = 65535

# ==================== declaration ====================

#: RFC 768 header.
UDP_HEADER = Struct(
    "src_port" / Int16ub,
    "dst_port" / Int16ub,
    "length" / Int16ub,  # header + data, in octets
    "checksum" / Int16ub,  # 0: not computed
)

# ==================== fast codec ====================

_HEADER = struct.Struct("!HHHH")
_UDP = IpProtocol.UDP.value


@dataclass(frozen=True, slots=True)
class UdpRepr:
    """A UDP header as values; Length and the checksum are computed on emit."""

    src_port: int
    dst_port: int

    @property
    def header_len(self) -> int:
        """Length of the header in octets (always 8)."""
        return HEADER_LEN

    @classmethod
    def parse(
        cls, datagram: Buffer, *, src: bytes, dst: bytes, verify_checksum: bool = True
    ) -> tuple[UdpRepr, memoryview]:
        """Validate ``datagram`` (the IPv4 payload) and return its header and data (a view).

        ``src`` and ``dst`` are the IPv4 addresses (4 octets) of the pseudo-header.  Octets
        past the Length field are ignored.
        """
        mv = memoryview(datagram)
        if mv.format != "B":
            mv = mv.cast("B")
        n = len(mv)
        # ---- integrity ----
        if n < HEADER_LEN:
            raise MalformedPacket(DropReason.TRUNCATED, f"UDP: {n} octets, header needs {HEADER_LEN}")
        src_port, dst_port, length, checksum = _HEADER.unpack_from(mv)
        if length < HEADER_LEN:
            raise MalformedPacket(DropReason.BAD_LENGTH, f"UDP: length field {length} < {HEADER_LEN}")
        if length > n:
            raise MalformedPacket(DropReason.TRUNCATED, f"UDP: length field {length} > {n} received")
        # RFC 768: a zero checksum means the sender did not compute one; accept it
        if verify_checksum and checksum:
            initial = pseudo_header_sum(src, dst, _UDP, length)
            if inet_sum(mv[:length] if length < n else mv, initial) != 0xFFFF:
                raise MalformedPacket(DropReason.BAD_CHECKSUM, "UDP")
        # ---- sanity ----
        if dst_port == 0:
            # port 0 is reserved (IANA); nothing can be listening on it
            raise MalformedPacket(DropReason.BAD_VALUE, "UDP: destination port 0")
        return _new_udp_repr(src_port, dst_port), mv[HEADER_LEN:length]

    def emit(self, payload: Buffer = b"", *, src: bytes, dst: bytes, checksum: bool = True) -> bytes:
        """Return header and ``payload`` as one datagram with Length and (optionally) checksum.

        With ``checksum=False`` the field is sent as zero ("not computed", RFC 768).
        Raises ``ValueError`` for ports out of range or a datagram over 65535 octets.
        """
        src_port, dst_port = self.src_port, self.dst_port
        length = HEADER_LEN + len(payload)
        if length > MAX_DATAGRAM_LEN:
            raise ValueError(f"UDP datagram of {length} octets exceeds {MAX_DATAGRAM_LEN}")
        if not (0 <= src_port <= 0xFFFF and 0 <= dst_port <= 0xFFFF):
            raise ValueError(f"UDP port out of range: {src_port} -> {dst_port}")
        if len(src) != 4 or len(dst) != 4:
            raise ValueError("IPv4 addresses are 4 octets (see wipstack.wire.ipv4.address)")
        value = 0
        if checksum:
            # pseudo-header + header words (checksum field zero), then the data
            total = pseudo_header_sum(src, dst, _UDP, length) + src_port + dst_port + length
            total = (total & 0xFFFF) + (total >> 16)
            total = (total & 0xFFFF) + (total >> 16)
            # RFC 768: a computed checksum of zero is transmitted as all ones
            value = (~inet_sum(payload, total) & 0xFFFF) or 0xFFFF
        return _HEADER.pack(src_port, dst_port, length, value) + payload


_new_udp_repr = raw_constructor(UdpRepr)
