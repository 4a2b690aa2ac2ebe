# cython: language_level=3
"""Bounded out-of-order byte-range assembler, C twin of ``wipstack._py.assembler``.

Same semantics as the reference module (see its docstring).  Storage: window octet ``i``
lives at ``_data[_head + i]``; ``read`` only advances ``_head`` and the buffer is compacted
or grown when an ``add`` needs room, so memory follows the data actually held.  Ranges
are two arrays of signed 64-bit bounds, sorted, disjoint and never adjacent.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.number cimport PyNumber_Index
from libc.stdint cimport int64_t, uint8_t
from libc.string cimport memcpy, memmove

__all__ = ["ASSEMBLER_FULL", "CAPACITY_MAX", "MAX_RANGES_LIMIT", "Assembler"]

ASSEMBLER_FULL = -1
CAPACITY_MAX = 1 << 62  # keeps offset + length arithmetic inside 64 bits
MAX_RANGES_LIMIT = 1 << 16

cdef int64_t _CAPACITY_MAX = (<int64_t>1) << 62
cdef int64_t _INT64_MAX = 0x7FFFFFFFFFFFFFFF


cdef int64_t _as_int64(object value) except? -1:
    value = PyNumber_Index(value)
    if not -0x8000000000000000 <= value <= 0x7FFFFFFFFFFFFFFF:
        raise OverflowError("value does not fit in a signed 64-bit integer")
    return <int64_t>value


cdef class Assembler:
    """Out-of-order assembler over a window of ``capacity`` octets (see module doc)."""

    cdef uint8_t* _data
    cdef int64_t _head
    cdef int64_t _allocated
    cdef int64_t _capacity
    cdef int64_t* _starts
    cdef int64_t* _ends
    cdef Py_ssize_t _count
    cdef Py_ssize_t _max_ranges
    cdef int64_t _stored

    def __cinit__(self, *args, **kwargs):
        self._data = NULL
        self._starts = NULL
        self._ends = NULL
        self._count = 0
        self._head = 0
        self._allocated = 0
        self._stored = 0

    def __init__(self, capacity, max_ranges=16):
        capacity = PyNumber_Index(capacity)
        max_ranges = PyNumber_Index(max_ranges)
        if not 0 <= capacity <= CAPACITY_MAX:
            raise ValueError(f"capacity must be in 0..2**62, got {capacity}")
        if not 1 <= max_ranges <= MAX_RANGES_LIMIT:
            raise ValueError(f"max_ranges must be in 1..{MAX_RANGES_LIMIT}, got {max_ranges}")
        self._capacity = capacity
        self._max_ranges = max_ranges
        PyMem_Free(self._starts)
        PyMem_Free(self._ends)
        self._starts = <int64_t*>PyMem_Malloc(sizeof(int64_t) * (self._max_ranges + 1))
        self._ends = <int64_t*>PyMem_Malloc(sizeof(int64_t) * (self._max_ranges + 1))
        if self._starts == NULL or self._ends == NULL:
            raise MemoryError()
        self._release_data()

    def __dealloc__(self):
        PyMem_Free(self._data)
        PyMem_Free(self._starts)
        PyMem_Free(self._ends)

    cdef void _release_data(self) noexcept:
        PyMem_Free(self._data)
        self._data = NULL
        self._allocated = 0
        self._head = 0
        self._count = 0
        self._stored = 0

    @property
    def capacity(self):
        """Window size in octets, counted from the read position."""
        return self._capacity

    @property
    def max_ranges(self):
        """Most disjoint ranges held at once."""
        return self._max_ranges

    cdef int _reserve(self, int64_t end) except -1:
        """Make window octets [0, end) addressable."""
        cdef int64_t held
        cdef int64_t size
        cdef uint8_t* grown
        if self._head + end <= self._allocated:
            return 0
        held = self._ends[self._count - 1] if self._count else 0
        if self._head:
            # slide the held octets to the front before growing
            memmove(self._data, self._data + self._head, <size_t>held)
            self._head = 0
        if end <= self._allocated:
            return 0
        size = self._allocated * 2
        if size > self._capacity:
            size = self._capacity
        if size < end:
            size = end
        grown = <uint8_t*>PyMem_Realloc(self._data, <size_t>size)
        if grown == NULL:
            raise MemoryError()
        self._data = grown
        self._allocated = size
        return 0

    cdef Py_ssize_t _first_touching(self, int64_t start) noexcept:
        """Index of the first range whose end is >= start (binary search)."""
        cdef Py_ssize_t low = 0, high = self._count, middle
        while low < high:
            middle = (low + high) >> 1
            if self._ends[middle] < start:
                low = middle + 1
            else:
                high = middle
        return low

    cdef Py_ssize_t _first_after(self, int64_t end) noexcept:
        """Index of the first range whose start is > end (binary search)."""
        cdef Py_ssize_t low = 0, high = self._count, middle
        while low < high:
            middle = (low + high) >> 1
            if self._starts[middle] <= end:
                low = middle + 1
            else:
                high = middle
        return low

    def add(self, offset, data):
        """Store ``data`` at ``offset``; return octets newly stored, or ``ASSEMBLER_FULL``."""
        cdef int64_t c_offset = _as_int64(offset)
        cdef Py_buffer view
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            return self._add(c_offset, <const uint8_t*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)

    cdef int64_t _add(self, int64_t offset, const uint8_t* source, int64_t length) except -2:
        cdef int64_t start, end, cursor, added = 0
        cdef Py_ssize_t first, after, position, removed
        if offset >= self._capacity or offset + length <= 0 or length == 0:
            return 0  # nothing inside the window
        start = offset if offset > 0 else 0
        end = offset + length
        if end > self._capacity:
            end = self._capacity
        if start >= end:
            return 0  # zero capacity
        first = self._first_touching(start)
        after = self._first_after(end)
        if self._count - (after - first) + 1 > self._max_ranges:
            return -1  # ASSEMBLER_FULL: nothing stored, nothing changed
        self._reserve(end)
        cursor = start
        for position in range(first, after):
            if self._starts[position] > cursor:  # a hole before this range: fill it
                memcpy(self._data + self._head + cursor, source + (cursor - offset),
                       <size_t>(self._starts[position] - cursor))
                added += self._starts[position] - cursor
            if self._ends[position] > cursor:
                cursor = self._ends[position]
        if cursor < end:
            memcpy(self._data + self._head + cursor, source + (cursor - offset), <size_t>(end - cursor))
            added += end - cursor
        if first < after:
            if self._starts[first] < start:
                start = self._starts[first]
            if self._ends[after - 1] > end:
                end = self._ends[after - 1]
        # replace ranges[first:after] by the merged one
        removed = after - first
        if removed != 1:
            memmove(self._starts + first + 1, self._starts + after, sizeof(int64_t) * (self._count - after))
            memmove(self._ends + first + 1, self._ends + after, sizeof(int64_t) * (self._count - after))
            self._count += 1 - removed
        self._starts[first] = start
        self._ends[first] = end
        self._stored += added
        return added

    def overlaps(self, offset, length):
        """True if any stored octet lies in ``[offset, offset + length)``."""
        cdef int64_t c_offset = _as_int64(offset)
        cdef int64_t c_length = _as_int64(length)
        cdef int64_t end
        cdef Py_ssize_t position
        if c_length <= 0:
            return False
        end = _INT64_MAX if c_offset > _INT64_MAX - c_length else c_offset + c_length
        position = self._first_touching(c_offset)
        # skip a range that merely ends at offset (half-open ranges)
        if position < self._count and self._ends[position] == c_offset:
            position += 1
        return position < self._count and self._starts[position] < end

    def readable(self):
        """Contiguous octets available at offset 0."""
        if self._count and self._starts[0] == 0:
            return self._ends[0]
        return 0

    def read(self, n=-1):
        """Remove and return up to ``n`` contiguous octets from the front (all when negative)."""
        cdef int64_t wanted = _as_int64(n)
        cdef int64_t available = self._ends[0] if self._count and self._starts[0] == 0 else 0
        cdef int64_t count = available if wanted < 0 or wanted > available else wanted
        cdef Py_ssize_t position
        if count == 0:
            return b""
        chunk = PyBytes_FromStringAndSize(<char*>(self._data + self._head), count)
        self._head += count
        self._stored -= count
        if count == available:
            memmove(self._starts, self._starts + 1, sizeof(int64_t) * (self._count - 1))
            memmove(self._ends, self._ends + 1, sizeof(int64_t) * (self._count - 1))
            self._count -= 1
        else:
            self._starts[0] = count
        for position in range(self._count):
            self._starts[position] -= count
            self._ends[position] -= count
        if self._count == 0:
            self._head = 0
        return chunk

    def ranges(self):
        """Stored ``(start, end)`` half-open ranges, sorted, adjacent ones merged."""
        return [(self._starts[position], self._ends[position]) for position in range(self._count)]

    def holes(self):
        """Gaps between offset 0 and the end of the last stored range."""
        cdef int64_t cursor = 0
        cdef Py_ssize_t position
        gaps = []
        for position in range(self._count):
            if self._starts[position] > cursor:
                gaps.append((cursor, self._starts[position]))
            cursor = self._ends[position]
        return gaps

    def stored(self):
        """Total octets held."""
        return self._stored

    def is_empty(self):
        """True when no octet is held."""
        return self._count == 0

    def clear(self):
        """Drop everything held (the read position does not move)."""
        self._release_data()
