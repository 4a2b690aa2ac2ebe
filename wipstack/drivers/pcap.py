"""Packet capture to pcapng files, in the spirit of smoltcp's ``PcapWriter`` middleware.

A :class:`PcapngWriter` writes one pcapng section (little-endian) to a binary stream: a
Section Header Block, then an Interface Description Block per :meth:`~PcapngWriter.add_interface`
and an Enhanced Packet Block per :meth:`~PcapngWriter.write_packet`.  A :class:`PcapTap` binds one
interface to a wall clock so a driver only calls ``tap(Direction.INBOUND, frame)``.
:func:`read_pcapng` is a small, strict reader for tests and users.

Section numbers refer to the pcapng draft (draft-tuexen-opsawg-pcapng / the IETF opsawg draft):
§3.1 block structure, §3.5 options, §4.1 SHB, §4.2 IDB, §4.3 EPB, §4.3.1 EPB flags word.
"""

from __future__ import annotations

import math
import os
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from types import TracebackType
from typing import BinaryIO, Self

BLOCK_SHB = 0x0A0D0D0A
BLOCK_IDB = 0x00000001
BLOCK_EPB = 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D
VERSION = (1, 0)
DEFAULT_SNAPLEN = 262144
TSRESOL_MICROSECONDS = 6

OPT_ENDOFOPT = 0
SHB_USERAPPL = 4
IF_NAME = 2
IF_DESCRIPTION = 3
IF_TSRESOL = 9
IF_TSOFFSET = 14
EPB_FLAGS = 2

_U32_MAX = 0xFFFFFFFF
_U64_LIMIT = 1 << 64
_OPTION_MAX = 0xFFFF


class LinkType(IntEnum):
    """LINKTYPE_* values (tcpdump.org link-layer header types) of the interfaces we capture on."""

    PPP = 9
    """PPP frame after unstuffing, without the FCS: starts with 0xFF 0x03 or the protocol field."""
    PPP_HDLC = 50
    """PPP in HDLC-like framing (RFC 1662), unstuffed, without the FCS; Wireshark decodes it as PPP."""
    RAW_IPV4 = 228
    """A bare IPv4 packet, no link-layer header."""


class Direction(IntEnum):
    """Direction bits (0-1) of the epb_flags word (§4.3.1)."""

    INBOUND = 1
    OUTBOUND = 2


@dataclass(frozen=True)
class CapturedPacket:
    """One packet read back by :func:`read_pcapng`, with its interface's name and link type."""

    interface_id: int
    interface_name: str | None
    link_type: int
    timestamp: float
    data: bytes
    original_length: int
    direction: Direction | None


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


def _option(code: int, value: bytes) -> bytes:
    if len(value) > _OPTION_MAX:
        raise ValueError(f"option {code} value is {len(value)} bytes; at most {_OPTION_MAX} fit")
    return struct.pack("<HH", code, len(value)) + value + _pad(len(value))


def _options(*options: bytes) -> bytes:
    """An option list terminated with opt_endofopt (§3.5); empty when there are no options."""
    return b"".join(options) + struct.pack("<HH", OPT_ENDOFOPT, 0) if options else b""


def _block(block_type: int, *parts: bytes | memoryview) -> bytes:
    """Type, total length, body padded to 32 bits, total length again (§3.1)."""
    length = sum(len(part) for part in parts)
    total = 12 + length + (-length % 4)
    return b"".join((struct.pack("<II", block_type, total), *parts, _pad(length), struct.pack("<I", total)))


class PcapngWriter:
    """Writes a pcapng capture to a binary stream; safe to share between threads.

    Every block goes out in a single ``write`` under a lock, so blocks from two drivers never
    interleave, and an interface's IDB always precedes the packets that name its id.
    """

    def __init__(self, stream: BinaryIO, *, application: str = "wipstack") -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._snaplens: list[int] = []
        self._owns_stream = False
        self._closed = False
        self.packets_written = 0
        body = struct.pack("<IHHq", BYTE_ORDER_MAGIC, *VERSION, -1)  # -1: section length not given (§4.1)
        self._write(_block(BLOCK_SHB, body, _options(_option(SHB_USERAPPL, application.encode()))))

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, application: str = "wipstack") -> Self:
        """Create (or truncate) the file at ``path``; the writer closes it on :meth:`close`."""
        stream = open(path, "wb")  # noqa: SIM115 - ownership passes to the writer
        try:
            writer = cls(stream, application=application)
        except BaseException:
            stream.close()
            raise
        writer._owns_stream = True
        return writer

    def _write(self, block: bytes) -> None:
        if self._closed:
            raise ValueError("pcapng writer is closed")
        self._stream.write(block)

    def add_interface(
        self,
        name: str,
        link_type: LinkType,
        *,
        snaplen: int = DEFAULT_SNAPLEN,
        description: str | None = None,
    ) -> int:
        """Describe an interface (IDB, §4.2) with microsecond timestamps; returns its interface id.

        ``snaplen`` 0 means no limit, as in the IDB's SnapLen field.
        """
        if not 0 <= snaplen <= _U32_MAX:
            raise ValueError(f"snaplen {snaplen} is not a 32-bit unsigned value")
        options = [_option(IF_NAME, name.encode())]
        if description is not None:
            options.append(_option(IF_DESCRIPTION, description.encode()))
        options.append(_option(IF_TSRESOL, bytes((TSRESOL_MICROSECONDS,))))
        block = _block(BLOCK_IDB, struct.pack("<HHI", LinkType(link_type), 0, snaplen), _options(*options))
        with self._lock:
            self._write(block)
            self._snaplens.append(snaplen)
            return len(self._snaplens) - 1

    def write_packet(
        self,
        interface_id: int,
        timestamp: float,
        packet: bytes | bytearray | memoryview,
        direction: Direction | None = None,
    ) -> None:
        """Record a packet (EPB, §4.3) seen at ``timestamp`` (seconds since the epoch).

        A packet longer than the interface's snaplen is truncated; its original length is kept.
        """
        if not (math.isfinite(timestamp) and timestamp >= 0):
            raise ValueError(f"timestamp {timestamp!r} is not a finite time since the epoch")
        ticks = round(timestamp * 1_000_000)
        if ticks >= _U64_LIMIT:
            raise ValueError(f"timestamp {timestamp!r} does not fit 64 bits of microseconds")
        data = memoryview(packet).cast("B")
        if len(data) > _U32_MAX:
            raise ValueError(f"packet of {len(data)} bytes is too long for pcapng")
        options = () if direction is None else (_option(EPB_FLAGS, struct.pack("<I", Direction(direction))),)
        with self._lock:
            if not 0 <= interface_id < len(self._snaplens):
                raise ValueError(f"no interface {interface_id}; add_interface() first")
            snaplen = self._snaplens[interface_id]
            captured = data[:snaplen] if snaplen else data  # SnapLen 0 means no limit (§4.2)
            header = struct.pack("<IIIII", interface_id, ticks >> 32, ticks & _U32_MAX, len(captured), len(data))
            self._write(_block(BLOCK_EPB, header, captured, _pad(len(captured)), _options(*options)))
            self.packets_written += 1

    def flush(self) -> None:
        """Flush the underlying stream."""
        with self._lock:
            if not self._closed:
                self._stream.flush()

    def close(self) -> None:
        """Flush, and close the stream if the writer opened it; further writes raise ValueError."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._owns_stream:
                self._stream.close()
            else:
                self._stream.flush()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class PcapTap:
    """Binds one interface of a writer to a wall clock: ``tap(direction, packet)``."""

    def __init__(self, writer: PcapngWriter, interface_id: int, clock: Callable[[], float] = time.time) -> None:
        self.writer = writer
        self.interface_id = interface_id
        self.clock = clock

    def __call__(self, direction: Direction, packet: bytes | bytearray | memoryview) -> None:
        """Record ``packet`` as seen now in ``direction``."""
        self.writer.write_packet(self.interface_id, self.clock(), packet, direction)


@dataclass
class _Interface:
    name: str | None
    link_type: int
    units_per_second: int
    offset: int


def _parse_options(body: memoryview, order: str) -> dict[int, bytes]:
    """Options of a block body (§3.5); the first of a repeated code wins."""
    options: dict[int, bytes] = {}
    offset = 0
    while offset < len(body):
        if len(body) - offset < 4:
            raise ValueError("option header runs past the end of its block")
        code, length = struct.unpack_from(order + "HH", body, offset)
        if code == OPT_ENDOFOPT:
            break
        end = offset + 4 + length
        if end > len(body):
            raise ValueError(f"option {code} runs past the end of its block")
        options.setdefault(code, bytes(body[offset + 4 : end]))
        offset = end + (-length % 4)
    return options


def _text(options: dict[int, bytes], code: int) -> str | None:
    value = options.get(code)
    return None if value is None else value.decode("utf-8", errors="replace")


def _interface(body: memoryview, order: str) -> _Interface:
    if len(body) < 8:
        raise ValueError("interface description block is too short")
    link_type = struct.unpack_from(order + "H", body)[0]
    options = _parse_options(body[8:], order)
    resolution = options.get(IF_TSRESOL, bytes((TSRESOL_MICROSECONDS,)))
    if len(resolution) != 1:
        raise ValueError("if_tsresol must be one byte")
    # MSB set: a negative power of 2, else a negative power of 10 (§4.2, if_tsresol)
    units = 2 ** (resolution[0] & 0x7F) if resolution[0] & 0x80 else 10 ** resolution[0]
    offset = options.get(IF_TSOFFSET, bytes(8))
    if len(offset) != 8:
        raise ValueError("if_tsoffset must be eight bytes")
    return _Interface(_text(options, IF_NAME), link_type, units, struct.unpack(order + "q", offset)[0])


def _packet(body: memoryview, order: str, interfaces: list[_Interface]) -> CapturedPacket:
    if len(body) < 20:
        raise ValueError("enhanced packet block is too short")
    interface_id, high, low, captured, original = struct.unpack_from(order + "5I", body)
    if interface_id >= len(interfaces):
        raise ValueError(f"packet names interface {interface_id} but only {len(interfaces)} are described")
    if 20 + captured > len(body):
        raise ValueError("captured length runs past the end of its block")
    options = _parse_options(body[20 + captured + (-captured % 4) :], order)
    direction = None
    flags = options.get(EPB_FLAGS)
    if flags is not None:
        if len(flags) != 4:
            raise ValueError("epb_flags must be four bytes")
        bits = struct.unpack(order + "I", flags)[0] & 0x3
        if bits == 0x3:
            raise ValueError("epb_flags direction 0b11 is undefined")  # §4.3.1: 00 unknown, 01 in, 10 out
        direction = Direction(bits) if bits else None
    interface = interfaces[interface_id]
    return CapturedPacket(
        interface_id=interface_id,
        interface_name=interface.name,
        link_type=interface.link_type,
        timestamp=interface.offset + ((high << 32) | low) / interface.units_per_second,
        data=bytes(body[20 : 20 + captured]),
        original_length=original,
        direction=direction,
    )


def read_pcapng(stream: BinaryIO) -> list[CapturedPacket]:
    """Read every Enhanced Packet Block of a pcapng stream (any byte order, any number of sections).

    Other block types are skipped.  A malformed file raises ValueError saying why.
    """
    data = memoryview(stream.read())
    if not data:
        raise ValueError("empty file: a pcapng file starts with a section header block")
    packets: list[CapturedPacket] = []
    interfaces: list[_Interface] = []
    order = ""
    offset = 0
    while offset < len(data):
        if len(data) - offset < 12:
            raise ValueError(f"truncated block header at offset {offset}")
        block_type = struct.unpack_from("<I", data, offset)[0]
        if block_type == BLOCK_SHB:  # the type is a palindrome; the byte-order magic sets the order (§4.1)
            magic = bytes(data[offset + 8 : offset + 12])
            if magic not in (b"\x4d\x3c\x2b\x1a", b"\x1a\x2b\x3c\x4d"):
                raise ValueError(f"bad byte-order magic {magic.hex()} at offset {offset}")
            order = "<" if magic == b"\x4d\x3c\x2b\x1a" else ">"
            interfaces = []  # interface ids are per section (§4.2)
        elif not order:
            raise ValueError("file does not start with a section header block")
        block_type, total = struct.unpack_from(order + "II", data, offset)
        if total < 12 or total % 4:
            raise ValueError(f"block length {total} at offset {offset} is not a multiple of 4 of at least 12")
        if total > len(data) - offset:
            raise ValueError(f"block at offset {offset} is truncated ({total} bytes, {len(data) - offset} left)")
        if struct.unpack_from(order + "I", data, offset + total - 4)[0] != total:
            raise ValueError(f"block at offset {offset}: trailing length differs from the leading one")
        body = data[offset + 8 : offset + total - 4]
        if block_type == BLOCK_SHB:
            if len(body) < 16:
                raise ValueError("section header block is too short")
            major = struct.unpack_from(order + "H", body, 4)[0]
            if major != VERSION[0]:
                raise ValueError(f"unsupported pcapng major version {major}")
            _parse_options(body[16:], order)
        elif block_type == BLOCK_IDB:
            interfaces.append(_interface(body, order))
        elif block_type == BLOCK_EPB:
            packets.append(_packet(body, order, interfaces))
        offset += total
    return packets
