"""Bounded out-of-order byte-range assembler, pure-Python reference implementation.

Used by TCP (out-of-order segments, RFC 9293 §3.10.7.4) and IPv4 reassembly (fragments,
RFC 791 §3.2).  The idea follows smoltcp's ``storage/assembler.rs`` and aioquic's
``RangeSet``: keep the received octets in one buffer and the set of filled positions as a
short sorted list of disjoint half-open ranges; never one Python object per octet.

Offsets are relative to the read position (the first octet not yet read): ``read`` hands
out the contiguous prefix and shifts everything else down.  The window is ``capacity``
octets: anything outside ``[0, capacity)`` is trimmed from an ``add``.  On overlap the
octets stored first win (the first copy is kept; RFC 5722 callers use ``overlaps`` to
refuse overlapping fragments instead).  At most ``max_ranges`` disjoint ranges are held:
an ``add`` that would need more stores nothing, changes nothing and returns
``ASSEMBLER_FULL`` (-1), so the caller can drop the segment and rely on retransmission.

Invariants: ``_starts``/``_ends`` are sorted, ranges are non-empty, disjoint and not
adjacent (adjacent ones are merged), and ``len(_data) >= _ends[-1]``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from operator import index

Buffer = bytes | bytearray | memoryview

ASSEMBLER_FULL = -1
OFFSET_MIN = -(1 << 63)  # offsets must fit a signed 64-bit integer (as in the C twin)
OFFSET_MAX = (1 << 63) - 1
CAPACITY_MAX = 1 << 62  # keeps offset + length arithmetic inside 64 bits in the C twin
MAX_RANGES_LIMIT = 1 << 16

__all__ = ["ASSEMBLER_FULL", "CAPACITY_MAX", "MAX_RANGES_LIMIT", "Assembler", "Buffer"]


def _check_int64(value: int) -> int:
    value = index(value)
    if not OFFSET_MIN <= value <= OFFSET_MAX:
        raise OverflowError("value does not fit in a signed 64-bit integer")
    return value


class Assembler:
    """Out-of-order assembler over a window of ``capacity`` octets (see module doc)."""

    __slots__ = ("_data", "_ends", "_max_ranges", "_starts", "_stored", "_capacity")

    def __init__(self, capacity: int, max_ranges: int = 16) -> None:
        capacity = index(capacity)
        max_ranges = index(max_ranges)
        if not 0 <= capacity <= CAPACITY_MAX:
            raise ValueError(f"capacity must be in 0..2**62, got {capacity}")
        if not 1 <= max_ranges <= MAX_RANGES_LIMIT:
            raise ValueError(f"max_ranges must be in 1..{MAX_RANGES_LIMIT}, got {max_ranges}")
        self._capacity = capacity
        self._max_ranges = max_ranges
        self._data = bytearray()  # octet i of the window; grows only up to the last range end
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._stored = 0

    @property
    def capacity(self) -> int:
        """Window size in octets, counted from the read position."""
        return self._capacity

    @property
    def max_ranges(self) -> int:
        """Most disjoint ranges held at once."""
        return self._max_ranges

    def add(self, offset: int, data: Buffer) -> int:
        """Store ``data`` at ``offset``; return octets newly stored, or ``ASSEMBLER_FULL``."""
        offset = _check_int64(offset)
        view = memoryview(data)
        if type(data) is not bytes:
            if not view.c_contiguous:  # refused as by the C buffer protocol
                raise BufferError("memoryview: underlying buffer is not C-contiguous")
            view = view.cast("B")
        start = max(offset, 0)
        end = min(offset + len(view), self._capacity)
        if start >= end:
            return 0  # nothing inside the window
        starts, ends = self._starts, self._ends
        # ranges[first:after] touch or overlap [start, end) and are merged with it
        first = bisect_left(ends, start)
        after = bisect_right(starts, end)
        if len(starts) - (after - first) + 1 > self._max_ranges:
            return ASSEMBLER_FULL
        data_buffer = self._data
        if end > len(data_buffer):
            data_buffer.extend(bytes(end - len(data_buffer)))
        added = 0
        cursor = start
        for position in range(first, after):
            if starts[position] > cursor:  # a hole before this range: fill it (new octets)
                data_buffer[cursor : starts[position]] = view[cursor - offset : starts[position] - offset]
                added += starts[position] - cursor
            cursor = max(cursor, ends[position])
        if cursor < end:
            data_buffer[cursor:end] = view[cursor - offset : end - offset]
            added += end - cursor
        if first < after:
            start = min(start, starts[first])
            end = max(end, ends[after - 1])
        starts[first:after] = [start]
        ends[first:after] = [end]
        self._stored += added
        return added

    def overlaps(self, offset: int, length: int) -> bool:
        """True if any stored octet lies in ``[offset, offset + length)``."""
        offset = _check_int64(offset)
        length = _check_int64(length)
        if length <= 0:
            return False
        # first range ending after offset; it overlaps iff it starts before offset + length
        position = bisect_right(self._ends, offset)
        return position < len(self._starts) and self._starts[position] < offset + length

    def readable(self) -> int:
        """Contiguous octets available at offset 0."""
        if self._starts and self._starts[0] == 0:
            return self._ends[0]
        return 0

    def read(self, n: int = -1) -> bytes:
        """Remove and return up to ``n`` contiguous octets from the front (all when negative)."""
        n = _check_int64(n)
        available = self.readable()
        count = available if n < 0 else min(n, available)
        if count == 0:
            return b""
        chunk = bytes(self._data[:count])
        del self._data[:count]
        self._stored -= count
        if count == available:
            del self._starts[0], self._ends[0]
        else:
            self._starts[0] = count
        self._starts[:] = [start - count for start in self._starts]
        self._ends[:] = [end - count for end in self._ends]
        return chunk

    def ranges(self) -> list[tuple[int, int]]:
        """Stored ``(start, end)`` half-open ranges, sorted, adjacent ones merged."""
        return list(zip(self._starts, self._ends, strict=True))

    def holes(self) -> list[tuple[int, int]]:
        """Gaps between offset 0 and the end of the last stored range."""
        gaps: list[tuple[int, int]] = []
        cursor = 0
        for start, end in zip(self._starts, self._ends, strict=True):
            if start > cursor:
                gaps.append((cursor, start))
            cursor = end
        return gaps

    def stored(self) -> int:
        """Total octets held."""
        return self._stored

    def is_empty(self) -> bool:
        """True when no octet is held."""
        return not self._starts

    def clear(self) -> None:
        """Drop everything held (the read position does not move)."""
        self._data = bytearray()
        self._starts.clear()
        self._ends.clear()
        self._stored = 0
