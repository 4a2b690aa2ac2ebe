"""Byte-level rules of the WIPSoft data modes: DLE/ETX stuffing, UDP datagrams, ``+++``.

After ``AT+WIPDATA=<proto>,<idx>,<mode>`` the UART is mapped to one socket (WIPSoft: "WIP AT
Commands User Guide (WIPSoft v3.21)", Wavecom WM_DEV_OAT_UGD_024, ``AT+WIPDATA``; the same
text is in Multi-Tech's "IP Connectivity AT Commands" S000437C, "Socket Data Exchange
+WIPDATA").  This module holds the sans-I/O pieces of that mapping; nothing here reads a
clock or touches a port -- time is always passed in as ``now`` (seconds, any epoch).

Continuous mode (``<mode>`` = 1)
    Host -> network: ETX (0x03) is a control byte.  On a TCP socket it means "end of data"
    (the module shuts down the socket's sending direction); on a UDP socket it ends one
    datagram.  A literal 0x03 or 0x10 is sent by the host preceded by DLE (0x10).  We are
    lenient: DLE followed by *any* byte makes that byte data (the DLE itself is dropped).
    :class:`DleDecoder` does this incrementally; a DLE that ends a chunk waits for the next.

    Network -> host: data bytes 0x03 and 0x10 go out prefixed with DLE (:func:`escape`); an
    unescaped ETX from the module marks the end of a UDP datagram (and end of file in FTP
    downloads) -- the caller appends :data:`ETX_BYTE` itself.

    UDP: bytes from the host are collected until ETX or until the maximum datagram size,
    5840 bytes, and then sent as one datagram (:class:`UdpDatagramAssembler`).  A datagram
    that reaches the maximum is sent at once; the following bytes start a new one.

Continuous transparent mode (``<mode>`` = 2)
    No escaping at all: every byte is data.  Only the ``+++`` escape applies.

The ``+++`` escape (both modes)
    As on a Hayes / ITU-T V.25ter modem (escape character in S2, default ``+``; escape guard
    time in S12, default 50 fiftieths = 1 s), three ``+`` framed by silence return the UART
    to AT mode ("online command mode"); the socket stays open and the module answers OK.
    Real clients are sloppy, so :class:`EscapeDetector` accepts ``+++`` when

    (a) at least ``lead_min`` seconds of silence (no byte) preceded the first ``+`` -- the
        nominal guard is ``lead_guard`` = 1 s, but we accept down to 0.5 s;
    (b) consecutive ``+`` are less than ``inter_char`` seconds apart; and
    (c) either ``trail_guard`` seconds then pass with no further byte, or the next two bytes
        are ``A`` and ``T`` (either case): a client that sends ``AT...`` right after the
        ``+++`` without a trailing pause.  Those bytes and all that follow belong to AT mode.

    If any other byte arrives first, the held ``+`` were data and are passed on in order,
    followed by that byte: nothing lost, reordered or duplicated.  A ``+++`` in the middle
    of a chunk (no silence before it) is never an escape.

Deadline convention: a deadline ``T`` has passed once ``now >= T``.  Hence silence of
exactly ``lead_min`` / ``trail_guard`` counts, and a gap of exactly ``inter_char`` between
two ``+`` is too long.  Feeding a byte at or after a deadline gives the same outcome as
calling :meth:`EscapeDetector.on_timer` first, so a late timer never changes the result.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from typing import Final, TypeAlias

__all__ = [
    "DLE_BYTE",
    "ETX",
    "ETX_BYTE",
    "MAX_UDP_DATAGRAM",
    "DecodedItem",
    "DetectorResult",
    "DleDecoder",
    "EscapeDetector",
    "Etx",
    "UdpDatagramAssembler",
    "escape",
]

DLE_BYTE: Final = b"\x10"
"""Data Link Escape: makes the next byte data."""
ETX_BYTE: Final = b"\x03"
"""End of Text: end of data (TCP) or end of datagram (UDP) when not escaped."""
MAX_UDP_DATAGRAM: Final = 5840
"""WIPSoft's maximum UDP datagram collected from the UART in continuous mode."""

_DLE: Final = 0x10
_ETX: Final = 0x03
_PLUS: Final = 0x2B
_LETTER_A: Final = frozenset(b"Aa")
_LETTER_T: Final = frozenset(b"Tt")
# A DLE with the byte it escapes (or a lone DLE at the very end of the buffer), or an ETX.
_SPECIAL: Final = re.compile(rb"\x10[\x00-\xff]?|\x03")


def escape(data: bytes | bytearray | memoryview) -> bytes:
    """DLE-stuff ``data`` for the host (network -> host, continuous mode).

    Every 0x10 becomes ``10 10`` and every 0x03 becomes ``10 03``.  DLE is replaced first so
    the DLEs added for ETX are not doubled.  Data without either byte is returned unchanged
    (the same object when it is ``bytes``); other buffers are copied to ``bytes``.
    """
    data = bytes(data)
    if _DLE in data:
        data = data.replace(DLE_BYTE, DLE_BYTE + DLE_BYTE)
    if _ETX in data:
        data = data.replace(ETX_BYTE, DLE_BYTE + ETX_BYTE)
    return data


class Etx(enum.Enum):
    """Marker type for an unescaped ETX in decoded host data; its only member is :data:`ETX`."""

    ETX = "ETX"

    def __repr__(self) -> str:
        return "ETX"


ETX: Final = Etx.ETX
"""The singleton marker for an unescaped ETX (compare with ``is``)."""

DecodedItem: TypeAlias = bytes | Etx
"""One element of :meth:`DleDecoder.feed` output: a non-empty data segment or :data:`ETX`."""


class DleDecoder:
    """Incremental host -> network decoder for continuous mode.

    :meth:`feed` turns raw UART bytes into data segments and :data:`ETX` markers.  Adjacent
    data within one call is coalesced into one ``bytes`` and empty segments are never
    emitted.  ``DLE x`` yields the data byte ``x`` for every ``x`` (lenient: the guide only
    defines ``DLE ETX`` and ``DLE DLE``).  A DLE that ends a chunk is held
    (:attr:`pending_dle`) and applies to the first byte of the next chunk.  The scan uses
    ``bytes`` searches and a compiled regex, not a per-byte Python loop.
    """

    __slots__ = ("_pending_dle",)

    def __init__(self) -> None:
        """Start with no DLE pending."""
        self._pending_dle = False

    @property
    def pending_dle(self) -> bool:
        """True if the last chunk ended with an unpaired DLE."""
        return self._pending_dle

    def reset(self) -> None:
        """Forget a pending DLE (e.g. when leaving data mode)."""
        self._pending_dle = False

    def feed(self, data: bytes) -> list[DecodedItem]:
        """Decode one chunk; returns data segments and :data:`ETX` markers in order."""
        if not data:
            return []
        if _DLE not in data and _ETX not in data:
            # Fast path: pure data (the common case for bulk transfers).  A pending DLE
            # only makes the first byte data, which it is anyway.
            self._pending_dle = False
            return [bytes(data)]
        start = 0
        segment: list[bytes] = []
        if self._pending_dle:
            self._pending_dle = False
            segment.append(data[:1])
            start = 1
        items: list[DecodedItem] = []
        position = start
        for match in _SPECIAL.finditer(data, start):
            match_start, match_end = match.span()
            if match_start > position:
                segment.append(data[position:match_start])
            if data[match_start] == _ETX:
                if segment:
                    items.append(b"".join(segment))
                    segment = []
                items.append(ETX)
            elif match_end - match_start == 2:
                segment.append(data[match_start + 1 : match_end])
            else:
                self._pending_dle = True  # a lone DLE can only match at the very end
            position = match_end
        if position < len(data):
            segment.append(data[position:])
        if segment:
            items.append(b"".join(segment))
        return items


class UdpDatagramAssembler:
    """Collects decoded host data into UDP datagrams (continuous mode on a UDP socket).

    An :data:`ETX` ends the datagram being collected.  An ETX with nothing collected yields
    *nothing* (our choice: no empty datagram is ever sent).  That also makes
    ``<5840 bytes> ETX`` send one datagram, not a full one plus an empty one.
    A datagram that reaches ``max_size`` is emitted at once; later bytes start a new one.
    """

    __slots__ = ("_max_size", "_pending")

    def __init__(self, max_size: int = MAX_UDP_DATAGRAM) -> None:
        """Create an assembler for datagrams of at most ``max_size`` (> 0) bytes."""
        if max_size <= 0:
            raise ValueError(f"max_size must be positive, got {max_size}")
        self._max_size = max_size
        self._pending = bytearray()

    @property
    def max_size(self) -> int:
        """Largest datagram this assembler emits."""
        return self._max_size

    @property
    def pending(self) -> bytes:
        """Bytes collected for the next datagram (always shorter than ``max_size``)."""
        return bytes(self._pending)

    def take_pending(self) -> bytes:
        """Return and clear the partial datagram (caller decides whether to send or drop)."""
        collected = bytes(self._pending)
        self._pending.clear()
        return collected

    def feed(self, items: list[DecodedItem]) -> list[bytes]:
        """Consume :class:`DleDecoder` output; returns the datagrams completed, in order."""
        datagrams: list[bytes] = []
        pending = self._pending
        max_size = self._max_size
        for item in items:
            if isinstance(item, Etx):
                if pending:
                    datagrams.append(bytes(pending))
                    pending.clear()
                continue
            room = max_size - len(pending)
            if len(item) < room:
                pending += item
                continue
            # Complete the current datagram, then emit whole datagrams straight from item.
            datagrams.append(bytes(pending) + bytes(item[:room]))
            pending.clear()
            offset = room
            while len(item) - offset >= max_size:
                datagrams.append(bytes(item[offset : offset + max_size]))
                offset += max_size
            pending += item[offset:]
        return datagrams


@dataclass(frozen=True, slots=True)
class DetectorResult:
    """Outcome of :meth:`EscapeDetector.feed` / :meth:`EscapeDetector.on_timer`.

    ``data``: bytes for the socket, in order.  ``escaped``: a ``+++`` escape was recognised
    (the detector has reset itself; switch the UART to AT mode).  ``rest``: bytes after the
    escape that belong to AT mode (starts with the ``A`` of ``AT`` when the escape was taken
    on the "AT" rule; empty otherwise, and always empty when ``escaped`` is False).
    """

    data: bytes = b""
    escaped: bool = False
    rest: bytes = b""


_NOTHING: Final = DetectorResult()


class EscapeDetector:
    """Sans-I/O ``+++`` detector for a UART in data mode (see the module docstring).

    The detector holds at most four bytes: one to three ``+`` of a candidate escape, or
    ``+++`` followed by an ``A``/``a`` waiting to see whether a ``T`` follows.  Everything
    else passes straight through in :attr:`DetectorResult.data`.

    Decisions beyond the brief:

    * ``+++A`` then ``trail_guard`` of silence is an escape with ``rest=b"A"`` (someone
      typing ``AT`` by hand after ``+++``).  The deadline is counted from the ``A``.
    * The byte that breaks a candidate is judged afresh: if it is itself a ``+`` preceded by
      ``lead_min`` of silence it starts a new candidate (only possible with
      ``trail_guard > lead_min`` or after an ``inter_char`` timeout).
    * A fourth ``+`` within the guard breaks the sequence (as on Hayes modems): the ``+``
      are data.  A ``+`` arriving ``inter_char`` or more after the previous one releases the
      held ``+`` as data and may start a new candidate.
    * ``feed(b"", now)`` is the same as ``on_timer(now)``.
    * Time going backwards is treated as no silence.
    """

    __slots__ = ("_held", "_inter_char", "_last_byte_time", "_lead_guard", "_lead_min", "_trail_guard")

    def __init__(
        self,
        lead_guard: float = 1.0,
        lead_min: float = 0.5,
        inter_char: float = 1.0,
        trail_guard: float = 0.5,
        *,
        start: float = -math.inf,
    ) -> None:
        """Create a detector; ``start`` is when data mode was entered (silence counts from it).

        ``lead_guard`` is the nominal leading guard (documentation and :attr:`lead_guard`);
        the enforced minimum is ``lead_min`` (0 < ``lead_min`` <= ``lead_guard``).  The
        default ``start`` of minus infinity means "silent since forever".
        """
        for name, value in (("lead_min", lead_min), ("inter_char", inter_char), ("trail_guard", trail_guard)):
            if not value > 0 or math.isinf(value):
                raise ValueError(f"{name} must be a positive finite number of seconds, got {value}")
        if not lead_min <= lead_guard:
            raise ValueError(f"lead_guard ({lead_guard}) must be at least lead_min ({lead_min})")
        self._lead_guard = lead_guard
        self._lead_min = lead_min
        self._inter_char = inter_char
        self._trail_guard = trail_guard
        self._held = b""
        self._last_byte_time = start

    # -- configuration and state ---------------------------------------------------------

    @property
    def lead_guard(self) -> float:
        """Nominal leading guard time (seconds); informational."""
        return self._lead_guard

    @property
    def lead_min(self) -> float:
        """Minimum silence before the first ``+`` (seconds)."""
        return self._lead_min

    @property
    def inter_char(self) -> float:
        """Consecutive ``+`` must be less than this far apart (seconds)."""
        return self._inter_char

    @property
    def trail_guard(self) -> float:
        """Silence after ``+++`` (or ``+++A``) that completes the escape (seconds)."""
        return self._trail_guard

    @property
    def held(self) -> bytes:
        """Bytes currently held back: ``b""``, ``+``, ``++``, ``+++`` or ``+++A``."""
        return self._held

    @property
    def last_byte_time(self) -> float:
        """Arrival time of the last byte (or the ``start`` given); silence counts from it."""
        return self._last_byte_time

    def reset(self, start: float) -> None:
        """Drop any held bytes and count silence from ``start`` (call on (re)entering data mode)."""
        self._held = b""
        self._last_byte_time = start

    def flush_held(self) -> bytes:
        """Return and clear the held bytes as data (e.g. when the socket closes)."""
        held, self._held = self._held, b""
        return held

    def next_deadline(self) -> float | None:
        """When :meth:`on_timer` must be called to decide the held bytes, or None if none."""
        held = self._held
        if not held:
            return None
        if len(held) < 3:
            return self._last_byte_time + self._inter_char
        return self._last_byte_time + self._trail_guard

    # -- events ----------------------------------------------------------------------------

    def on_timer(self, now: float) -> DetectorResult:
        """Apply a deadline that has passed by ``now``; a no-op before :meth:`next_deadline`.

        Incomplete ``+`` / ``++`` whose ``inter_char`` expired come back as data.  A complete
        ``+++`` (or ``+++A``) followed by ``trail_guard`` of silence is an escape
        (``rest`` is ``b""`` or the held ``A``); the detector then resets with ``start=now``.
        """
        held = self._held
        if not held:
            return _NOTHING
        if len(held) < 3:
            if now >= self._last_byte_time + self._inter_char:
                self._held = b""
                return DetectorResult(data=held)
            return _NOTHING
        if now >= self._last_byte_time + self._trail_guard:
            self.reset(now)
            return DetectorResult(escaped=True, rest=held[3:])
        return _NOTHING

    def feed(self, data: bytes, now: float) -> DetectorResult:
        """Process bytes that arrived at ``now``; returns data, escape flag and AT-mode rest.

        Any deadline already passed at ``now`` is applied first (as :meth:`on_timer` would).
        On an escape the detector resets itself (``start=now``) and every byte after the
        escape is in ``rest``; the caller must switch to AT mode and not feed them again.
        """
        timed = self.on_timer(now)
        if not data or timed.escaped:
            return timed if not data else DetectorResult(escaped=True, rest=timed.rest + bytes(data))
        held = self._held
        if not held and (data[0] != _PLUS or now - self._last_byte_time < self._lead_min):
            # Fast path: no candidate open and this chunk cannot start one.
            self._last_byte_time = now
            return DetectorResult(data=timed.data + bytes(data)) if timed.data else DetectorResult(data=bytes(data))
        return self._scan(bytes(data), now, [timed.data] if timed.data else [])

    def _scan(self, data: bytes, now: float, pieces: list[bytes]) -> DetectorResult:
        """Slow path of :meth:`feed`: walk the few bytes that can extend or break a candidate.

        ``pieces`` already holds data released by an expired deadline.  Every byte of
        ``data`` arrives at ``now``; only the first byte after a silence can start a
        candidate, so the loop runs at most a handful of times before passing the rest on.
        """
        position = 0
        size = len(data)
        while position < size:
            held = self._held
            byte = data[position]
            if not held:
                if byte != _PLUS or now - self._last_byte_time < self._lead_min:
                    pieces.append(data[position:])
                    self._last_byte_time = now
                    break
                self._held = b"+"
            elif len(held) < 3:
                if byte != _PLUS:
                    self._break_candidate(pieces)
                    continue
                self._held = held + b"+"
            elif len(held) == 3:
                if byte not in _LETTER_A:
                    self._break_candidate(pieces)
                    continue
                self._held = held + data[position : position + 1]
            else:  # "+++A" held
                if byte not in _LETTER_T:
                    self._break_candidate(pieces)
                    continue
                rest = held[3:] + data[position:]
                self.reset(now)
                return DetectorResult(data=b"".join(pieces), escaped=True, rest=rest)
            self._last_byte_time = now
            position += 1
        return DetectorResult(data=b"".join(pieces))

    def _break_candidate(self, pieces: list[bytes]) -> None:
        """The held bytes turned out to be data; the breaking byte is judged afresh.

        ``_last_byte_time`` stays at the arrival of the last held byte, so the breaking byte
        sees the true silence before it.
        """
        pieces.append(self._held)
        self._held = b""
