"""ICMP for IPv4 (RFC 792): construct declaration, :class:`IcmpRepr` and its fast codec.

Message::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     Type      |     Code      |          Checksum             |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |                     (rest of header)                          |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    |     Data ...
    +-+-+-+-+-

The 32-bit rest of header depends on the type:

* Echo, Echo Reply, Timestamp, Timestamp Reply (8, 0, 13, 14)::

    |           Identifier          |        Sequence Number        |

* Destination Unreachable (3) with code 4, Fragmentation Needed (RFC 1191 §4)::

    |           unused = 0          |         Next-Hop MTU          |

* Parameter Problem (12)::

    |    Pointer    |                   unused                      |

* Redirect (5): the Gateway Internet Address; other errors: unused, zero.

The data of an error message (3, 4, 5, 11, 12) is the Internet Header + 64 bits of Original
Data Datagram.  The checksum covers the whole message.

:class:`IcmpRepr` keeps the rest of header as one 32-bit integer (``rest``) with typed
accessors, and the data as ``bytes``: ICMP is rare on the data path, and an immutable payload
keeps the Repr hashable and safe to queue (parse copies it once).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from construct import Bytes, Enum, Int8ub, Int16ub, Int32ub, Struct

from wipstack.accel import inet_sum
from wipstack.errors import DropReason, MalformedPacket
from wipstack.wire._fast import raw_constructor
from wipstack.wire.ipv4 import MIN_HEADER_LEN as IPV4_MIN_HEADER_LEN

Buffer = bytes | bytearray | memoryview

#: Type, Code, Checksum and the rest of header.
HEADER_LEN = 8
#: RFC 792: an error carries the original header plus the first 64 bits of its data.
ORIGINAL_DATA_LEN = 8


class IcmpType(enum.IntEnum):
    """ICMP message types (RFC 792; 9/10 RFC 1256; 17/18 RFC 950)."""

    ECHO_REPLY = 0
    DEST_UNREACHABLE = 3
    SOURCE_QUENCH = 4  # deprecated by RFC 6633
    REDIRECT = 5
    ECHO_REQUEST = 8
    ROUTER_ADVERTISEMENT = 9
    ROUTER_SOLICITATION = 10
    TIME_EXCEEDED = 11
    PARAMETER_PROBLEM = 12
    TIMESTAMP = 13
    TIMESTAMP_REPLY = 14
    INFORMATION_REQUEST = 15  # obsolete (RFC 6918)
    INFORMATION_REPLY = 16  # obsolete (RFC 6918)
    ADDRESS_MASK_REQUEST = 17
    ADDRESS_MASK_REPLY = 18


class UnreachableCode(enum.IntEnum):
    """Codes of Destination Unreachable (RFC 792; 6-12 RFC 1122 §3.2.2.1; 13-15 RFC 1812)."""

    NET = 0
    HOST = 1
    PROTOCOL = 2
    PORT = 3
    FRAGMENTATION_NEEDED = 4
    SOURCE_ROUTE_FAILED = 5
    NET_UNKNOWN = 6
    HOST_UNKNOWN = 7
    SOURCE_HOST_ISOLATED = 8
    NET_PROHIBITED = 9
    HOST_PROHIBITED = 10
    NET_TOS = 11
    HOST_TOS = 12
    ADMIN_PROHIBITED = 13
    HOST_PRECEDENCE_VIOLATION = 14
    PRECEDENCE_CUTOFF = 15


class TimeExceededCode(enum.IntEnum):
    """Codes of Time Exceeded (RFC 792)."""

    TTL_EXCEEDED = 0
    REASSEMBLY_TIMEOUT = 1


class RedirectCode(enum.IntEnum):
    """Codes of Redirect (RFC 792)."""

    NET = 0
    HOST = 1
    TOS_NET = 2
    TOS_HOST = 3


class ParameterProblemCode(enum.IntEnum):
    """Codes of Parameter Problem (RFC 792; 1 RFC 1108; 2 RFC 1812)."""

    POINTER = 0
    MISSING_OPTION = 1
    BAD_LENGTH = 2


#: Types whose data is the header and first octets of the datagram in error.
ERROR_TYPES = frozenset(
    {
        IcmpType.DEST_UNREACHABLE,
        IcmpType.SOURCE_QUENCH,
        IcmpType.REDIRECT,
        IcmpType.TIME_EXCEEDED,
        IcmpType.PARAMETER_PROBLEM,
    }
)
_IDENT_SEQ_TYPES = frozenset({IcmpType.ECHO_REQUEST, IcmpType.ECHO_REPLY, IcmpType.TIMESTAMP, IcmpType.TIMESTAMP_REPLY})
# the errors a host sends (RFC 1122 §3.2.2; hosts send no Redirect or Source Quench, RFC 6633)
_HOST_ERROR_TYPES = frozenset({IcmpType.DEST_UNREACHABLE, IcmpType.TIME_EXCEEDED, IcmpType.PARAMETER_PROBLEM})
_TIMESTAMP_DATA_LEN = 12

# ==================== declaration ====================

#: RFC 792 common header; ``rest`` is typed by the ``ICMP_*_REST`` views below.
ICMP_HEADER = Struct(
    "type" / Enum(Int8ub, IcmpType),
    "code" / Int8ub,
    "checksum" / Int16ub,
    "rest" / Int32ub,
)

#: Rest of header of Echo, Echo Reply, Timestamp and Timestamp Reply.
ICMP_ECHO_REST = Struct("identifier" / Int16ub, "sequence" / Int16ub)
#: Rest of header of Destination Unreachable / Fragmentation Needed (RFC 1191 §4).
ICMP_FRAG_NEEDED_REST = Struct("unused" / Int16ub, "next_hop_mtu" / Int16ub)
#: Rest of header of Parameter Problem.
ICMP_PARAMETER_PROBLEM_REST = Struct("pointer" / Int8ub, "unused" / Bytes(3))
#: Rest of header of Redirect.
ICMP_REDIRECT_REST = Struct("gateway" / Bytes(4))
#: Data of Timestamp and Timestamp Reply (milliseconds since midnight UT).
ICMP_TIMESTAMP_DATA = Struct("originate" / Int32ub, "receive" / Int32ub, "transmit" / Int32ub)

# ==================== fast codec ====================

_HEADER = struct.Struct("!BBHI")  # type, code, checksum, rest
_TYPES: dict[int, int] = {t.value: t for t in IcmpType}


@dataclass(frozen=True, slots=True)
class IcmpRepr:
    """An ICMP message as values; the checksum is computed on emit."""

    #: An :class:`IcmpType` member when known, else a plain int.
    type: int
    code: int
    #: The 32-bit rest of header (see the module docstring and the accessors).
    rest: int = 0
    #: Everything after the 8-octet header.
    payload: bytes = b""

    # ---- accessors ----

    @property
    def is_error(self) -> bool:
        """Whether this is an error message carrying (part of) an original datagram."""
        return self.type in ERROR_TYPES

    @property
    def echo_ident(self) -> int | None:
        """The Identifier of an Echo / Timestamp (request or reply), else ``None``."""
        return self.rest >> 16 if self.type in _IDENT_SEQ_TYPES else None

    @property
    def echo_seq(self) -> int | None:
        """The Sequence Number of an Echo / Timestamp (request or reply), else ``None``."""
        return self.rest & 0xFFFF if self.type in _IDENT_SEQ_TYPES else None

    @property
    def next_hop_mtu(self) -> int | None:
        """RFC 1191 Next-Hop MTU of a Fragmentation Needed message (0 from old routers), else ``None``."""
        if self.type == IcmpType.DEST_UNREACHABLE and self.code == UnreachableCode.FRAGMENTATION_NEEDED:
            return self.rest & 0xFFFF
        return None

    @property
    def pointer(self) -> int | None:
        """The octet offset of the problem in a Parameter Problem message, else ``None``."""
        return self.rest >> 24 if self.type == IcmpType.PARAMETER_PROBLEM else None

    # ---- convenience constructors ----

    @classmethod
    def echo(cls, ident: int, seq: int, data: Buffer = b"", *, reply: bool = False) -> IcmpRepr:
        """An Echo (or, with ``reply=True``, an Echo Reply) message."""
        if not (0 <= ident <= 0xFFFF and 0 <= seq <= 0xFFFF):
            raise ValueError(f"ICMP echo identifier {ident} / sequence {seq} out of 0..65535")
        icmp_type = IcmpType.ECHO_REPLY if reply else IcmpType.ECHO_REQUEST
        return cls(icmp_type, 0, (ident << 16) | seq, bytes(data))

    @classmethod
    def error(
        cls,
        type: int,
        code: int,
        original_datagram: Buffer,
        *,
        mtu: int | None = None,
        pointer: int | None = None,
    ) -> IcmpRepr:
        """An error message about ``original_datagram`` (an IPv4 datagram as received).

        Embeds its header and first 64 data bits (RFC 792).  ``mtu`` is the RFC 1191
        Next-Hop MTU of Fragmentation Needed; ``pointer`` the octet offset of a Parameter
        Problem.  Only the errors a host sends are allowed (Destination Unreachable, Time
        Exceeded, Parameter Problem); build others with the constructor.
        """
        if type not in _HOST_ERROR_TYPES:
            raise ValueError(f"ICMP type {type} is not an error a host sends")
        frag_needed = type == IcmpType.DEST_UNREACHABLE and code == UnreachableCode.FRAGMENTATION_NEEDED
        rest = 0
        if mtu is not None:
            if not frag_needed:
                raise ValueError("a next-hop MTU belongs only in Fragmentation Needed (RFC 1191 §4)")
            if not 0 <= mtu <= 0xFFFF:
                raise ValueError(f"next-hop MTU {mtu} out of 0..65535")
            rest = mtu
        if pointer is not None:
            if type != IcmpType.PARAMETER_PROBLEM:
                raise ValueError("a pointer belongs only in Parameter Problem (RFC 792)")
            if not 0 <= pointer <= 0xFF:
                raise ValueError(f"pointer {pointer} out of 0..255")
            rest = pointer << 24
        original = memoryview(original_datagram).cast("B")
        if len(original) < IPV4_MIN_HEADER_LEN or original[0] >> 4 != 4:
            raise ValueError("the original datagram is not an IPv4 datagram")
        hlen = (original[0] & 0x0F) << 2
        if hlen < IPV4_MIN_HEADER_LEN or len(original) < hlen:
            raise ValueError("the original datagram's header is truncated")
        total_len = (original[2] << 8) | original[3]
        # header + 64 bits of data, never past Total Length (trailing link padding stays out)
        end = min(len(original), hlen + ORIGINAL_DATA_LEN, max(total_len, hlen))
        return cls(_TYPES.get(type, type), code, rest, bytes(original[:end]))

    # ---- parse / emit ----

    @classmethod
    def parse(cls, data: Buffer, *, verify_checksum: bool = True) -> IcmpRepr:
        """Validate an ICMP message (the whole IPv4 payload) and return it."""
        mv = memoryview(data)
        if mv.format != "B":
            mv = mv.cast("B")
        n = len(mv)
        # ---- integrity ----
        if n < HEADER_LEN:
            raise MalformedPacket(DropReason.TRUNCATED, f"ICMP: {n} octets, header needs {HEADER_LEN}")
        icmp_type, code, _checksum, rest = _HEADER.unpack_from(mv)
        # RFC 792: the checksum covers the whole message; a correct one makes the sum all ones
        if verify_checksum and inet_sum(mv) != 0xFFFF:
            raise MalformedPacket(DropReason.BAD_CHECKSUM, "ICMP")
        # ---- sanity ----
        payload = mv[HEADER_LEN:]
        if icmp_type in ERROR_TYPES:
            # RFC 1122 §3.2.2: an error carries the original IP header (we demultiplex on it)
            if len(payload) < IPV4_MIN_HEADER_LEN:
                raise MalformedPacket(DropReason.TRUNCATED, f"ICMP error: {len(payload)} octets of original")
            if payload[0] >> 4 != 4 or payload[0] & 0x0F < 5:
                raise MalformedPacket(DropReason.BAD_VALUE, "ICMP error: original is not an IPv4 header")
            if len(payload) < (payload[0] & 0x0F) << 2:
                raise MalformedPacket(DropReason.TRUNCATED, "ICMP error: original header truncated")
        elif icmp_type in (IcmpType.TIMESTAMP, IcmpType.TIMESTAMP_REPLY) and len(payload) != _TIMESTAMP_DATA_LEN:
            # RFC 792: Originate, Receive and Transmit Timestamps, 32 bits each
            raise MalformedPacket(DropReason.BAD_LENGTH, f"ICMP timestamp: {len(payload)} octets of data")
        return _new_icmp_repr(_TYPES.get(icmp_type, icmp_type), code, rest, bytes(payload))

    def emit(self) -> bytes:
        """Return the message with its checksum; ``ValueError`` for out-of-range fields."""
        icmp_type, code, rest = self.type, self.code, self.rest
        if not (0 <= icmp_type <= 0xFF and 0 <= code <= 0xFF and 0 <= rest <= 0xFFFFFFFF):
            raise ValueError(f"ICMP field out of range: type={icmp_type} code={code} rest={rest:#x}")
        total = ((icmp_type << 8) | code) + (rest >> 16) + (rest & 0xFFFF)  # header words, checksum 0
        total = (total & 0xFFFF) + (total >> 16)
        total = (total & 0xFFFF) + (total >> 16)
        checksum = ~inet_sum(self.payload, total) & 0xFFFF
        return _HEADER.pack(icmp_type, code, checksum, rest) + self.payload


_new_icmp_repr = raw_constructor(IcmpRepr)
