"""DNS messages (RFC 1035 §4): construct declaration and the stub resolver's fast codec.

Message::

    +---------------------+
    |        Header       |
    +---------------------+
    |       Question      | the question for the name server
    +---------------------+
    |        Answer       | RRs answering the question
    +---------------------+
    |      Authority      | RRs pointing toward an authority
    +---------------------+
    |      Additional     | RRs holding additional information
    +---------------------+

Header (§4.1.1)::

                                    1  1  1  1  1  1
      0  1  2  3  4  5  6  7  8  9  0  1  2  3  4  5
    +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
    |                      ID                       |
    +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
    |QR|   Opcode  |AA|TC|RD|RA|   Z    |   RCODE   |
    +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
    |                    QDCOUNT                    |
    |                    ANCOUNT                    |
    |                    NSCOUNT                    |
    |                    ARCOUNT                    |
    +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+

A question (§4.1.2) is QNAME, QTYPE, QCLASS; a resource record (§4.1.3) is NAME, TYPE, CLASS,
TTL (32 bits), RDLENGTH and RDATA.  A name (§3.1) is a sequence of labels (a length octet of
0-63, then that many octets) ending with the zero-length root label, or ending with a
compression pointer (§4.1.4): two octets, the top two bits set, then the 14-bit offset from the
start of the message where the rest of the name is.

* :data:`DNS_MESSAGE` and its parts, the construct declaration: the readable single source of
  truth, used by tests and tooling (it keeps pointers as pointers), never on the real path;
* :func:`build_query` and :func:`parse_response`, the hand-written codec the resolver uses;
  ``tests/unit/test_dns_wire.py`` proves it equal to the declaration on random messages.

**Names** are ``str`` in presentation form without the final dot (the root is ``"."``): octets
other than printable ASCII, ``.`` and ``\\`` appear as ``\\DDD`` (RFC 4343 §2.1).  Compare them
with ``str.lower()`` (case-insensitive for ASCII only, RFC 4343).  IDNA is out of scope.

**Validation.**  :func:`parse_response` raises :class:`~wipstack.errors.MalformedPacket` and
nothing else, whatever the input: truncation, reserved label types, labels over 63 octets,
names over 255 octets, pointers that do not point strictly backwards to an earlier name
(forward pointers, loops), A records whose RDATA is not 4 octets, CNAME RDATA that is not
exactly one name.  Octets after the last record are ignored.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from construct import (
    Array,
    BitsInteger,
    BitStruct,
    Const,
    ExprValidator,
    Flag,
    GreedyBytes,
    Int8ub,
    Int16ub,
    Int32ub,
    Nibble,
    Prefixed,
    RepeatUntil,
    Select,
    Struct,
    this,
)

from wipstack.errors import DropReason, MalformedPacket

Buffer = bytes | bytearray | memoryview

#: ID, flags and the four counts.
HEADER_LEN = 12
#: Longest label (§2.3.4).
MAX_LABEL_LEN = 63
#: Longest name in wire form, length octets and root label included (§2.3.4).
MAX_NAME_LEN = 255
#: The server port (§4.2).
DNS_PORT = 53


class DnsType(enum.IntEnum):
    """TYPE values (§3.2.2) this package names; others are plain ints."""

    A = 1
    NS = 2
    CNAME = 5
    SOA = 6
    PTR = 12
    MX = 15
    TXT = 16
    AAAA = 28
    OPT = 41


class DnsClass(enum.IntEnum):
    """CLASS values (§3.2.4)."""

    IN = 1


class Opcode(enum.IntEnum):
    """OPCODE values (§4.1.1)."""

    QUERY = 0


class Rcode(enum.IntEnum):
    """RCODE values (§4.1.1)."""

    NOERROR = 0
    FORMERR = 1
    SERVFAIL = 2
    NXDOMAIN = 3
    NOTIMP = 4
    REFUSED = 5


# ==================== declaration ====================

#: The second header word (§4.1.1).
DNS_FLAGS = BitStruct(
    "qr" / Flag,  # 0: query, 1: response
    "opcode" / Nibble,  # 0: standard query
    "aa" / Flag,  # authoritative answer
    "tc" / Flag,  # truncated
    "rd" / Flag,  # recursion desired
    "ra" / Flag,  # recursion available
    "z" / BitsInteger(3),  # reserved, zero
    "rcode" / Nibble,
)

#: §4.1.1 header.
DNS_HEADER = Struct(
    "id" / Int16ub,
    "flags" / DNS_FLAGS,
    "qdcount" / Int16ub,
    "ancount" / Int16ub,
    "nscount" / Int16ub,
    "arcount" / Int16ub,
)

#: A label (§3.1): a length octet of 0-63 and that many octets; the empty label is the root.
DNS_LABEL = Prefixed(ExprValidator(Int8ub, lambda length, _: length <= MAX_LABEL_LEN), GreedyBytes)

#: A compression pointer (§4.1.4): two top bits set, then the offset from the message start.
DNS_POINTER = BitStruct("tag" / Const(0b11, BitsInteger(2)), "offset" / BitsInteger(14))

#: A name: labels (``bytes``) up to the root label, or up to a pointer (a ``Container``).
DNS_NAME = RepeatUntil(lambda step, _, __: not isinstance(step, bytes) or not step, Select(DNS_POINTER, DNS_LABEL))

#: §4.1.2 question.
DNS_QUESTION = Struct(
    "qname" / DNS_NAME,
    "qtype" / Int16ub,
    "qclass" / Int16ub,
)

#: §4.1.3 resource record.
DNS_RESOURCE_RECORD = Struct(
    "name" / DNS_NAME,
    "type" / Int16ub,
    "class" / Int16ub,
    "ttl" / Int32ub,  # seconds
    "rdata" / Prefixed(Int16ub, GreedyBytes),  # RDLENGTH, RDATA
)

#: §4.1 message.
DNS_MESSAGE = Struct(
    "header" / DNS_HEADER,
    "question" / Array(this.header.qdcount, DNS_QUESTION),
    "answer" / Array(this.header.ancount, DNS_RESOURCE_RECORD),
    "authority" / Array(this.header.nscount, DNS_RESOURCE_RECORD),
    "additional" / Array(this.header.arcount, DNS_RESOURCE_RECORD),
)

# ==================== fast codec ====================

_HEADER = struct.Struct("!HHHHHH")
_QUESTION_TAIL = struct.Struct("!HH")
_RR_FIXED = struct.Struct("!HHIH")

_QR = 0x8000
_AA = 0x0400
_TC = 0x0200
_RD = 0x0100
_RA = 0x0080
_POINTER = 0xC0
# label octets shown as themselves in presentation form; everything else is \DDD (RFC 4343 §2.1)
_PLAIN = bytes(c for c in range(0x21, 0x7F) if c not in b".\\")
_ALLOWED_QUERY_CHARS = frozenset(chr(c) for c in _PLAIN)


@dataclass(frozen=True, slots=True)
class DnsHeader:
    """The §4.1.1 header as values."""

    ident: int
    qr: bool
    opcode: int
    aa: bool
    tc: bool
    rd: bool
    ra: bool
    z: int
    rcode: int
    qdcount: int
    ancount: int
    nscount: int
    arcount: int


@dataclass(frozen=True, slots=True)
class DnsQuestion:
    """One §4.1.2 question; ``name`` in presentation form."""

    name: str
    qtype: int
    qclass: int


@dataclass(frozen=True, slots=True)
class DnsRecord:
    """One §4.1.3 resource record.

    ``data`` is the 4-octet address for A records of class IN, the target name for CNAME
    records and the raw RDATA otherwise.
    """

    name: str
    rtype: int
    rclass: int
    ttl: int
    data: bytes | str


@dataclass(frozen=True, slots=True)
class DnsMessage:
    """A parsed message: header and the four sections."""

    header: DnsHeader
    questions: tuple[DnsQuestion, ...]
    answers: tuple[DnsRecord, ...]
    authority: tuple[DnsRecord, ...]
    additional: tuple[DnsRecord, ...]


def encode_name(name: str) -> bytes:
    """Return ``name`` in wire form (uncompressed), a final dot allowed.

    Raises ``ValueError`` for the empty name or the root, empty labels, labels over 63 octets,
    names over 255 octets and characters other than printable ASCII (no spaces, no
    backslash escapes; IDNA is out of scope).
    """
    text = name[:-1] if name.endswith(".") else name
    if not text:
        raise ValueError("DNS name is empty")
    bad = set(text) - _ALLOWED_QUERY_CHARS - {"."}
    if bad:
        raise ValueError(f"DNS name {name!r} has characters other than printable ASCII: {sorted(bad)!r}")
    out = bytearray()
    for label in text.split("."):
        if not label:
            raise ValueError(f"DNS name {name!r} has an empty label")
        if len(label) > MAX_LABEL_LEN:
            raise ValueError(f"DNS label {label!r} is longer than {MAX_LABEL_LEN} octets (RFC 1035 §2.3.4)")
        out.append(len(label))
        out += label.encode("ascii")
    out.append(0)
    if len(out) > MAX_NAME_LEN:
        raise ValueError(f"DNS name {name!r} is longer than {MAX_NAME_LEN} octets (RFC 1035 §2.3.4)")
    return bytes(out)


def build_query(ident: int, name: str, qtype: int = DnsType.A, *, recursion_desired: bool = True) -> bytes:
    """Return a standard query (opcode 0) with one question for ``name``, class IN.

    Raises ``ValueError`` for a bad name (see :func:`encode_name`) or ``ident`` / ``qtype``
    outside 16 bits.
    """
    if not 0 <= ident <= 0xFFFF:
        raise ValueError(f"DNS ID {ident} is not a 16-bit value")
    if not 0 <= qtype <= 0xFFFF:
        raise ValueError(f"DNS QTYPE {qtype} is not a 16-bit value")
    flags = _RD if recursion_desired else 0
    return _HEADER.pack(ident, flags, 1, 0, 0, 0) + encode_name(name) + _QUESTION_TAIL.pack(qtype, DnsClass.IN.value)


def label_text(label: bytes) -> str:
    """One label in presentation form: printable ASCII as is, other octets, ``.`` and ``\\`` as ``\\DDD``."""
    if not label.translate(None, _PLAIN):
        return label.decode("ascii")
    return "".join(chr(c) if c in _PLAIN else f"\\{c:03d}" for c in label)


def _read_name(buf: bytes, offset: int) -> tuple[str, int]:
    """Decode the name at ``offset``; return it and the offset just past it (not past its pointers)."""
    n = len(buf)
    labels: list[bytes] = []
    size = 1  # the root label's length octet
    pos = offset
    run_start = offset  # where the labels being read began (the name, or the last pointer target)
    end = -1
    while True:
        if pos >= n:
            raise MalformedPacket(DropReason.TRUNCATED, f"DNS: name at {offset} runs past the end ({n} octets)")
        length = buf[pos]
        if length == 0:
            break
        if length & _POINTER == _POINTER:
            if pos + 1 >= n:
                raise MalformedPacket(DropReason.TRUNCATED, f"DNS: pointer at {pos} cut short")
            target = (length & 0x3F) << 8 | buf[pos + 1]
            if target >= pos:
                raise MalformedPacket(DropReason.BAD_VALUE, f"DNS: forward pointer at {pos} to {target}")
            # §4.1.4: a pointer refers to a prior occurrence of a name; one into the labels it
            # ends (or into a name reached through it) could loop, so targets must strictly decrease
            if target >= run_start:
                raise MalformedPacket(DropReason.BAD_VALUE, f"DNS: pointer loop at {pos} to {target}")
            if end < 0:
                end = pos + 2
            pos = run_start = target
            continue
        if length > MAX_LABEL_LEN:
            # top bits 01 and 10 are reserved label types (§4.1.4), i.e. labels of 64-191 octets
            raise MalformedPacket(DropReason.BAD_LENGTH, f"DNS: label of {length} octets at {pos} (at most 63)")
        size += length + 1
        if size > MAX_NAME_LEN:
            raise MalformedPacket(DropReason.BAD_LENGTH, f"DNS: name at {offset} longer than {MAX_NAME_LEN} octets")
        start = pos + 1
        pos = start + length
        if pos > n:
            raise MalformedPacket(DropReason.TRUNCATED, f"DNS: label at {start - 1} runs past the end")
        labels.append(buf[start:pos])
    if end < 0:
        end = pos + 1
    if not labels:
        return ".", end
    return ".".join([label_text(label) for label in labels]), end


def _read_record(buf: bytes, offset: int) -> tuple[DnsRecord, int]:
    name, offset = _read_name(buf, offset)
    start = offset + _RR_FIXED.size
    if start > len(buf):
        raise MalformedPacket(DropReason.TRUNCATED, f"DNS: record header at {offset} cut short")
    rtype, rclass, ttl, rdlength = _RR_FIXED.unpack_from(buf, offset)
    end = start + rdlength
    if end > len(buf):
        raise MalformedPacket(DropReason.TRUNCATED, f"DNS: RDLENGTH {rdlength} at {offset} past the end")
    data: bytes | str
    if rtype == DnsType.CNAME:
        data, name_end = _read_name(buf, start)
        if name_end != end:
            # §3.3.1: CNAME RDATA is exactly one domain name
            raise MalformedPacket(DropReason.BAD_LENGTH, f"DNS: CNAME RDATA of {rdlength} octets is not one name")
    elif rtype == DnsType.A and rclass == DnsClass.IN:
        if rdlength != 4:
            # §3.4.1: an Internet address is 32 bits
            raise MalformedPacket(DropReason.BAD_LENGTH, f"DNS: A RDATA of {rdlength} octets")
        data = buf[start:end]
    else:
        data = buf[start:end]
    return DnsRecord(name, rtype, rclass, ttl, data), end


def parse_response(data: Buffer) -> DnsMessage:
    """Parse a DNS message (any QR value); raise :class:`MalformedPacket` and nothing else."""
    buf = bytes(data)
    n = len(buf)
    if n < HEADER_LEN:
        raise MalformedPacket(DropReason.TRUNCATED, f"DNS: {n} octets, header needs {HEADER_LEN}")
    ident, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(buf)
    header = DnsHeader(
        ident,
        bool(flags & _QR),
        flags >> 11 & 0xF,
        bool(flags & _AA),
        bool(flags & _TC),
        bool(flags & _RD),
        bool(flags & _RA),
        flags >> 4 & 0x7,
        flags & 0xF,
        qdcount,
        ancount,
        nscount,
        arcount,
    )
    offset = HEADER_LEN
    questions: list[DnsQuestion] = []
    # every question and record consumes octets or raises, so the loops end with the input
    for _ in range(qdcount):
        name, offset = _read_name(buf, offset)
        if offset + _QUESTION_TAIL.size > n:
            raise MalformedPacket(DropReason.TRUNCATED, f"DNS: question at {offset} cut short")
        qtype, qclass = _QUESTION_TAIL.unpack_from(buf, offset)
        offset += _QUESTION_TAIL.size
        questions.append(DnsQuestion(name, qtype, qclass))
    sections: list[tuple[DnsRecord, ...]] = []
    for count in (ancount, nscount, arcount):
        records: list[DnsRecord] = []
        for _ in range(count):
            record, offset = _read_record(buf, offset)
            records.append(record)
        sections.append(tuple(records))
    return DnsMessage(header, tuple(questions), sections[0], sections[1], sections[2])


def soa_minimum(record: DnsRecord) -> int | None:
    """The MINIMUM field of an SOA record (RFC 1035 §3.3.13), or ``None`` if it is not one.

    MINIMUM is the last of five 32-bit fields after two names, so it is the last 4 RDATA
    octets whatever compression the names use; RDATA under 22 octets cannot be an SOA.
    """
    if record.rtype != DnsType.SOA or not isinstance(record.data, bytes) or len(record.data) < 22:
        return None
    return int.from_bytes(record.data[-4:], "big")
