"""HDLC-like framing for PPP (RFC 1662 §4), pure-Python reference implementation.

Sender side: ``hdlc_encode`` appends the FCS, byte-stuffs the result with ``hdlc_escape``
and surrounds it with flags.  Receiver side: ``HdlcDeframer`` is an incremental, sans-I/O
deframer; ``feed`` takes any chunk of the serial byte stream and returns the frames it
completed, FCS checked and stripped.

Receiver rules, applied per input octet in stream order (the C twin runs exactly this
loop; the code below does the same work a chunk at a time with ``bytes`` methods):

1. ``0x7E`` (flag) ends the current frame, which is then
   * silently dropped if it was already counted as too long;
   * counted ``aborted`` if the flag follows a lone ``0x7D`` (RFC 1662 §4.2);
   * ignored if empty (back-to-back flags, RFC 1662 §4.1 inter-frame fill);
   * counted ``too_short`` if it holds fewer than FCS length + 2 octets;
   * counted ``bad_fcs`` unless the FCS over the whole frame gives the good residue;
   * otherwise counted in ``frames`` and delivered without its FCS.
2. Octets below 0x20 whose bit is set in ``rx_accm`` are deleted before anything else,
   since a DCE may insert them (RFC 1662 §7.1).
3. ``0x7D`` marks the next octet, which is XORed with 0x20 (any octet may be escaped,
   including another ``0x7D``).
4. A frame whose unescaped length would exceed ``max_frame`` is counted ``too_long`` once
   and the rest of it is discarded up to the next flag, so memory stays bounded.

``rx_accm``, ``fcs_bits`` and ``max_frame`` may be changed between feeds: octets are
filtered with the ACCM in force when they arrive, the FCS length in force at the closing
flag decides the check, and lowering ``max_frame`` below what is already buffered discards
the frame at once (counted ``too_long``).
"""

from __future__ import annotations

from functools import lru_cache
from operator import index
from typing import NamedTuple

from wipstack._py.fcs import FCS16_GOOD, FCS32_GOOD, fcs16, fcs32

Buffer = bytes | bytearray | memoryview

FLAG = 0x7E
ESCAPE = 0x7D
ESCAPE_XOR = 0x20  # RFC 1662 §4.2: the escaped octet has bit 5 complemented
DEFAULT_ACCM = 0xFFFF_FFFF
DEFAULT_MAX_FRAME = 1508
MAX_FRAME_LIMIT = 1 << 20

__all__ = [
    "DEFAULT_ACCM",
    "DEFAULT_MAX_FRAME",
    "ESCAPE",
    "FLAG",
    "MAX_FRAME_LIMIT",
    "Buffer",
    "HdlcDeframer",
    "hdlc_encode",
    "hdlc_escape",
    "hdlc_unescape",
]

_FLAG_BYTE = b"\x7e"
_ESCAPE_BYTE = b"\x7d"
_DOUBLE_ESCAPE = b"\x7d\x7d"
# translate table: 0x20 where the input octet is an escape, 0 elsewhere (the XOR mask seed)
_ESCAPE_MARKS = bytes(ESCAPE_XOR if octet == ESCAPE else 0 for octet in range(256))
# above this many escaped octet values, one interleaving pass beats one replace() per value
_REPLACE_CHAIN_LIMIT = 6


def _check_accm(accm: int) -> int:
    accm = index(accm)
    if not 0 <= accm <= 0xFFFF_FFFF:
        raise ValueError(f"accm must be a 32-bit map, got {accm}")
    return accm


def _check_fcs_bits(fcs_bits: int) -> int:
    fcs_bits = index(fcs_bits)
    if fcs_bits not in (16, 32):
        raise ValueError(f"fcs_bits must be 16 or 32, got {fcs_bits}")
    return fcs_bits


def _as_bytes(data: Buffer) -> bytes:
    """``data`` as ``bytes``; strided views are refused as the C buffer protocol does."""
    if type(data) is bytes:
        return data
    view = memoryview(data)
    if not view.c_contiguous:
        raise BufferError("memoryview: underlying buffer is not C-contiguous")
    return view.tobytes()


def _control_octets(accm: int) -> bytes:
    """The octets below 0x20 selected by an ACCM (bit n stands for octet n, RFC 1662 §7.1)."""
    return bytes(octet for octet in range(32) if accm >> octet & 1)


class _EscapeTables(NamedTuple):
    escaped: bytes  # every octet value that must be sent escaped
    flipped: bytes  # translate table: escaped values XOR 0x20, others unchanged
    prefixes: bytes  # translate table: escaped values -> 0x7D, others -> 0x7E (placeholder)
    replacements: tuple[tuple[bytes, bytes], ...]  # (octet, escape sequence), 0x7D first


@lru_cache(maxsize=16)
def _escape_tables(accm: int) -> _EscapeTables:
    # RFC 1662 §4.2: flag and escape always, control octets as the ACCM says
    escaped = bytes((ESCAPE, FLAG)) + _control_octets(accm)
    flipped = bytearray(range(256))
    prefixes = bytearray(_FLAG_BYTE * 256)
    for octet in escaped:
        flipped[octet] = octet ^ ESCAPE_XOR
        prefixes[octet] = ESCAPE
    replacements = tuple((bytes((octet,)), bytes((ESCAPE, octet ^ ESCAPE_XOR))) for octet in escaped)
    return _EscapeTables(escaped, bytes(flipped), bytes(prefixes), replacements)


def hdlc_escape(data: Buffer, accm: int) -> bytes:
    """Byte-stuff ``data``: flag, escape and ACCM-selected control octets become 0x7D, x^0x20."""
    tables = _escape_tables(_check_accm(accm))
    raw = _as_bytes(data)
    if len(tables.escaped) <= _REPLACE_CHAIN_LIMIT:
        # escape 0x7D first so later replacements' inserted 0x7D stay untouched
        for octet, sequence in tables.replacements:
            raw = raw.replace(octet, sequence)
        return raw
    length = len(raw)
    if len(raw.translate(None, tables.escaped)) == length:
        return raw
    # interleave (prefix, flipped octet) pairs, then drop the 0x7E placeholders; 0x7E cannot
    # occur among the flipped octets because it is always escaped
    interleaved = bytearray(2 * length)
    interleaved[0::2] = raw.translate(tables.prefixes)
    interleaved[1::2] = raw.translate(tables.flipped)
    return bytes(interleaved.translate(None, _FLAG_BYTE))


def _unescape(raw: bytes) -> tuple[bytes, bool]:
    """Unescape ``raw``; also tell whether it ends with a lone 0x7D (escape still pending)."""
    # 0x7D 0x7D decodes to 0x5D (the first escapes the second); rewriting those pairs, leftmost
    # first as the octet-at-a-time rule would, leaves every remaining 0x7D an escape marker
    raw = raw.replace(_DOUBLE_ESCAPE, b"\x5d")
    if _ESCAPE_BYTE not in raw:
        return raw, False
    pending = raw[-1] == ESCAPE
    if pending:
        raw = raw[:-1]
    # XOR 0x20 into the octet after every marker at once: shift the marker mask by one octet
    length = len(raw)
    mask = int.from_bytes(raw.translate(_ESCAPE_MARKS), "big") >> 8
    flipped = (int.from_bytes(raw, "big") ^ mask).to_bytes(length, "big")
    # every 0x7D left is a marker, except that an escaped 0x5D became 0x7D right after its
    # marker: split on those pairs (scanning left to right always starts a pair at a marker)
    if _DOUBLE_ESCAPE not in flipped:
        return flipped.translate(None, _ESCAPE_BYTE), pending
    pieces = [piece.translate(None, _ESCAPE_BYTE) for piece in flipped.split(_DOUBLE_ESCAPE)]
    return _ESCAPE_BYTE.join(pieces), pending


def hdlc_unescape(data: Buffer) -> bytes:
    """Undo byte stuffing: 0x7D x becomes x ^ 0x20; a trailing lone 0x7D is dropped."""
    return _unescape(_as_bytes(data))[0]


def _has_good_fcs(frame: bytearray, fcs_bits: int) -> bool:
    """The FCS run over a frame including its own FCS leaves the good residue (RFC 1662 §C)."""
    if fcs_bits == 16:
        return fcs16(frame) == FCS16_GOOD
    return fcs32(frame) == FCS32_GOOD


def hdlc_encode(frame: Buffer, accm: int = DEFAULT_ACCM, fcs_bits: int = 16) -> bytes:
    """Flag + escape(frame + FCS) + flag, the FCS covering the unescaped frame (RFC 1662 §C)."""
    accm = _check_accm(accm)
    raw = _as_bytes(frame)
    # RFC 1662 §C.2/§C.3: the complemented FCS goes out least significant octet first
    if _check_fcs_bits(fcs_bits) == 16:
        trailer = (fcs16(raw) ^ 0xFFFF).to_bytes(2, "little")
    else:
        trailer = (fcs32(raw) ^ 0xFFFF_FFFF).to_bytes(4, "little")
    return _FLAG_BYTE + hdlc_escape(raw + trailer, accm) + _FLAG_BYTE


class HdlcDeframer:
    """Incremental HDLC deframer: feed serial bytes, get FCS-checked frames (see module doc)."""

    __slots__ = (
        "_buffer",
        "_discarding",
        "_escape_pending",
        "_fcs_bits",
        "_max_frame",
        "_removed_controls",
        "_rx_accm",
        "aborted",
        "bad_fcs",
        "bytes_in",
        "frames",
        "too_long",
        "too_short",
    )

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME, rx_accm: int = DEFAULT_ACCM, fcs_bits: int = 16) -> None:
        self._buffer = bytearray()  # unescaped octets of the frame in progress
        self._escape_pending = False  # the last octet of the frame so far was a lone 0x7D
        self._discarding = False  # frame in progress exceeded max_frame; skip to the next flag
        self.frames = 0
        self.bad_fcs = 0
        self.aborted = 0
        self.too_long = 0
        self.too_short = 0
        self.bytes_in = 0
        self._max_frame = DEFAULT_MAX_FRAME
        self._rx_accm = DEFAULT_ACCM
        self._removed_controls = b""
        self._fcs_bits = 16
        self.max_frame = max_frame
        self.rx_accm = rx_accm
        self.fcs_bits = fcs_bits

    @property
    def max_frame(self) -> int:
        """Largest accepted frame, in unescaped octets including the FCS."""
        return self._max_frame

    @max_frame.setter
    def max_frame(self, value: int) -> None:
        value = index(value)
        if not 1 <= value <= MAX_FRAME_LIMIT:
            raise ValueError(f"max_frame must be in 1..{MAX_FRAME_LIMIT}, got {value}")
        self._max_frame = value
        if len(self._buffer) > value:
            self._discard_too_long()

    @property
    def rx_accm(self) -> int:
        """Receive ACCM: control octets flagged here are deleted on arrival (RFC 1662 §7.1)."""
        return self._rx_accm

    @rx_accm.setter
    def rx_accm(self, value: int) -> None:
        self._rx_accm = _check_accm(value)
        self._removed_controls = _control_octets(self._rx_accm)

    @property
    def fcs_bits(self) -> int:
        """FCS length in bits (16 or 32), as negotiated by LCP (RFC 1570 §2.1)."""
        return self._fcs_bits

    @fcs_bits.setter
    def fcs_bits(self, value: int) -> None:
        self._fcs_bits = _check_fcs_bits(value)

    def counters(self) -> dict[str, int]:
        """Frame and drop counters by name."""
        return {
            "frames": self.frames,
            "bad_fcs": self.bad_fcs,
            "aborted": self.aborted,
            "too_long": self.too_long,
            "too_short": self.too_short,
            "bytes_in": self.bytes_in,
        }

    def reset(self) -> None:
        """Forget the frame in progress (e.g. when the link restarts); counters are kept."""
        self._buffer = bytearray()
        self._escape_pending = False
        self._discarding = False

    def feed(self, data: Buffer) -> list[bytes]:
        """Consume serial bytes; return the good frames completed by them, FCS stripped."""
        raw = _as_bytes(data)
        self.bytes_in += len(raw)
        frames: list[bytes] = []
        pieces = raw.split(_FLAG_BYTE)
        last = len(pieces) - 1
        for position, piece in enumerate(pieces):
            if piece:
                self._absorb(piece)
            if position != last:
                self._close_frame(frames)
        return frames

    def _absorb(self, piece: bytes) -> None:
        """Append a flag-free run of stream octets to the frame in progress."""
        if self._discarding:
            return
        if self._removed_controls:
            piece = piece.translate(None, self._removed_controls)
            if not piece:
                return
        if self._escape_pending:
            piece = _ESCAPE_BYTE + piece
        decoded, self._escape_pending = _unescape(piece)
        if len(self._buffer) + len(decoded) > self._max_frame:
            self._discard_too_long()
        else:
            self._buffer += decoded

    def _discard_too_long(self) -> None:
        self.too_long += 1
        self._buffer = bytearray()
        self._escape_pending = False
        self._discarding = True

    def _close_frame(self, frames: list[bytes]) -> None:
        """Handle a flag: check the frame in progress and start a new one."""
        buffer = self._buffer
        if self._discarding:
            self._discarding = False  # already counted as too long
        elif self._escape_pending:
            self.aborted += 1  # RFC 1662 §4.2: 0x7D then flag aborts the frame
            self._escape_pending = False
            self._buffer = bytearray()
        elif buffer:
            self._buffer = bytearray()
            fcs_length = self._fcs_bits >> 3
            if len(buffer) < fcs_length + 2:
                self.too_short += 1
            elif not _has_good_fcs(buffer, self._fcs_bits):
                self.bad_fcs += 1
            else:
                self.frames += 1
                frames.append(bytes(buffer[:-fcs_length]))
