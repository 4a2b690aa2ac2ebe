# cython: language_level=3
"""HDLC-like framing for PPP (RFC 1662 §4), C twin of ``wipstack._py.hdlc``.

The receiver rules are listed in the reference module's docstring.  How this twin runs them:

* ``HdlcDeframer._run`` splits the input at flags with ``memchr``; each flag-free run is
  appended by ``_unstuff_simple``, a branch-free loop that copies eight octets at a time
  when none is special.  It covers every run without a deleted control octet and without
  0x7D 0x7D; otherwise (rare: DCE noise, non-canonical escapes) it reports failure and the
  run is redone by ``_absorb_exactly``, the literal octet-at-a-time rules.
* The sender escapes with the same eight-at-a-time test and writes both candidate output
  octets for the others, so neither direction has a data-dependent branch per octet.
* The FCS is computed once per frame with slicing-by-8 tables (the tables of
  ``wipstack_c.fcs``, duplicated because the extension modules are built independently).
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.number cimport PyNumber_Index
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memchr, memcpy

cdef extern from "Python.h":
    # a bytes object is allocated for the worst case, written in place, then shrunk
    PyObject* _new_bytes "PyBytes_FromStringAndSize"(const char* data, Py_ssize_t size) except NULL
    char* _bytes_data "PyBytes_AS_STRING"(PyObject* bytes_object)
    int _PyBytes_Resize(PyObject** bytes_object, Py_ssize_t size) except -1

__all__ = [
    "DEFAULT_ACCM",
    "DEFAULT_MAX_FRAME",
    "ESCAPE",
    "FLAG",
    "MAX_FRAME_LIMIT",
    "HdlcDeframer",
    "hdlc_encode",
    "hdlc_escape",
    "hdlc_unescape",
]

FLAG = 0x7E
ESCAPE = 0x7D
DEFAULT_ACCM = 0xFFFFFFFF
DEFAULT_MAX_FRAME = 1508
MAX_FRAME_LIMIT = 1 << 20

cdef enum:
    _FLAG = 0x7E
    _ESCAPE = 0x7D
    _ESCAPE_XOR = 0x20  # RFC 1662 §4.2: the escaped octet has bit 5 complemented
    _FCS16_GOOD = 0xF0B8
    _MAX_FRAME_LIMIT = 1 << 20

# octet classes of the octet-at-a-time receive loop
cdef enum:
    _DATA = 0
    _IS_ESCAPE = 1
    _IS_CONTROL = 2  # flagged in the receive ACCM: deleted on arrival
    _IS_FLAG = 4

cdef uint32_t _FCS32_GOOD = 0xDEBB20E3U
include "fcs_tables.pxi"


cdef uint32_t _check_accm(object accm) except? 0xFFFFFFFFU:
    accm = PyNumber_Index(accm)
    if not 0 <= accm <= 0xFFFFFFFF:
        raise ValueError(f"accm must be a 32-bit map, got {accm}")
    return <uint32_t>accm


cdef int _check_fcs_bits(object fcs_bits) except -1:
    fcs_bits = PyNumber_Index(fcs_bits)
    if fcs_bits != 16 and fcs_bits != 32:
        raise ValueError(f"fcs_bits must be 16 or 32, got {fcs_bits}")
    return <int>fcs_bits


# escape tables of the most recently used ACCM (links use one or two ACCMs; the GIL is held)
cdef uint8_t _ESCAPED[256]  # 1 for octets sent as 0x7D, x ^ 0x20 (RFC 1662 §4.2, §7.1)
cdef uint8_t _FIRST[256]  # first octet sent for x: 0x7D or x itself
cdef uint32_t _TABLES_ACCM = 0
cdef bint _TABLES_READY = False


cdef void _load_escape_tables(uint32_t accm) noexcept nogil:
    global _TABLES_ACCM, _TABLES_READY
    cdef unsigned int octet
    if _TABLES_READY and accm == _TABLES_ACCM:
        return
    for octet in range(256):
        _ESCAPED[octet] = 0
    for octet in range(32):
        _ESCAPED[octet] = (accm >> octet) & 1
    _ESCAPED[_ESCAPE] = 1
    _ESCAPED[_FLAG] = 1
    for octet in range(256):
        _FIRST[octet] = _ESCAPE if _ESCAPED[octet] else octet
    _TABLES_ACCM = accm
    _TABLES_READY = True


cdef inline bint _plain_word(uint64_t word, bint check_controls) noexcept nogil:
    """True if none of the 8 octets in ``word`` is 0x7D, 0x7E or (when asked) below 0x20.

    Classic SWAR tests: ``(v - 0x01..01) & ~v & 0x80..80`` is non-zero iff some octet of
    ``v`` is zero, and with ``0x20..20`` subtracted instead, iff some octet is below 0x20.
    """
    cdef uint64_t ones = 0x0101010101010101ULL
    cdef uint64_t escapes = word ^ (ones * _ESCAPE)
    cdef uint64_t flags = word ^ (ones * _FLAG)
    cdef uint64_t found = ((escapes - ones) & ~escapes) | ((flags - ones) & ~flags)
    if check_controls:
        found |= (word - ones * 0x20) & ~word
    return (found & (ones * 0x80)) == 0


cdef uint8_t* _escape_into(
    uint8_t* out, const uint8_t* p, Py_ssize_t n, const uint8_t* escaped, const uint8_t* first, bint controls
) noexcept nogil:
    """Write escaped ``p`` to ``out`` (room for 2 * n octets); return the end.

    Eight octets at a time are copied as they are when none needs escaping; otherwise each
    octet writes both candidate output octets and the cursor advances by one or two, so
    there is no data-dependent branch.  ``controls``: the ACCM selects some control octet.
    """
    cdef Py_ssize_t i = 0, k
    cdef uint8_t octet
    cdef uint64_t word
    while i + 8 <= n:
        memcpy(&word, p + i, 8)
        if _plain_word(word, controls):
            memcpy(out, &word, 8)
            out += 8
        else:
            for k in range(i, i + 8):
                octet = p[k]
                out[0] = first[octet]
                out[1] = octet ^ _ESCAPE_XOR
                out += 1 + escaped[octet]
        i += 8
    for k in range(i, n):
        octet = p[k]
        out[0] = first[octet]
        out[1] = octet ^ _ESCAPE_XOR
        out += 1 + escaped[octet]
    return out


cdef bytes _bytes_from_scratch(uint8_t* scratch, Py_ssize_t length):
    try:
        return PyBytes_FromStringAndSize(<char*>scratch, length)
    finally:
        PyMem_Free(scratch)


cdef bytes _shrunk(PyObject* raw, Py_ssize_t size):
    """Take ownership of the fresh bytes object ``raw`` and cut it to ``size`` octets."""
    _PyBytes_Resize(&raw, size)  # on failure CPython frees ``raw`` and sets MemoryError
    result = <bytes>raw
    Py_DECREF(result)
    return result


def hdlc_escape(data, accm):
    """Byte-stuff ``data``: flag, escape and ACCM-selected control octets become 0x7D, x^0x20."""
    cdef Py_buffer view
    cdef PyObject* raw
    cdef uint8_t* start
    cdef uint8_t* end
    cdef uint32_t accm_value = _check_accm(accm)
    _load_escape_tables(accm_value)
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        raw = _new_bytes(NULL, 2 * view.len)
        start = <uint8_t*>_bytes_data(raw)
        end = _escape_into(start, <const uint8_t*>view.buf, view.len, _ESCAPED, _FIRST, accm_value != 0)
        return _shrunk(raw, end - start)
    finally:
        PyBuffer_Release(&view)


def hdlc_unescape(data):
    """Undo byte stuffing: 0x7D x becomes x ^ 0x20; a trailing lone 0x7D is dropped."""
    cdef Py_buffer view
    cdef uint8_t* scratch
    cdef const uint8_t* p
    cdef Py_ssize_t i, length = 0
    cdef uint8_t flip = 0
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        p = <const uint8_t*>view.buf
        scratch = <uint8_t*>PyMem_Malloc(view.len + 1)
        if scratch == NULL:
            raise MemoryError()
        for i in range(view.len):
            if p[i] == _ESCAPE and not flip:
                flip = _ESCAPE_XOR
            else:
                scratch[length] = p[i] ^ flip
                length += 1
                flip = 0
        return _bytes_from_scratch(scratch, length)
    finally:
        PyBuffer_Release(&view)


def hdlc_encode(frame, accm=DEFAULT_ACCM, fcs_bits=16):
    """Flag + escape(frame + FCS) + flag, the FCS covering the unescaped frame (RFC 1662 §C)."""
    cdef uint8_t trailer[4]
    cdef Py_buffer view
    cdef Py_ssize_t trailer_length
    cdef uint32_t fcs
    cdef PyObject* raw
    cdef uint8_t* start
    cdef uint8_t* end
    cdef const uint8_t* p
    cdef uint32_t accm_value = _check_accm(accm)
    _load_escape_tables(accm_value)
    PyObject_GetBuffer(frame, &view, PyBUF_SIMPLE)
    try:
        trailer_length = _check_fcs_bits(fcs_bits) >> 3
        p = <const uint8_t*>view.buf
        # RFC 1662 §C.2/§C.3: the complemented FCS goes out least significant octet first
        fcs = (_run16(0xFFFF, p, view.len) ^ 0xFFFF) if trailer_length == 2 else (_run32(0xFFFFFFFFU, p, view.len) ^ 0xFFFFFFFFU)
        trailer[0] = fcs & 0xFF
        trailer[1] = (fcs >> 8) & 0xFF
        trailer[2] = (fcs >> 16) & 0xFF
        trailer[3] = fcs >> 24
        raw = _new_bytes(NULL, 2 * (view.len + trailer_length) + 2)
        start = <uint8_t*>_bytes_data(raw)
        start[0] = _FLAG
        end = _escape_into(start + 1, p, view.len, _ESCAPED, _FIRST, accm_value != 0)
        end = _escape_into(end, trailer, trailer_length, _ESCAPED, _FIRST, accm_value != 0)
        end[0] = _FLAG
        return _shrunk(raw, end + 1 - start)
    finally:
        PyBuffer_Release(&view)


cdef enum:
    # fast-path table entries: bits 0-7 the XOR for the next octet, bit 8 "advance"
    _NEXT_FLIP = 0x20  # this octet is an escape: flip the next one
    _UNUSUAL = 0x40  # deleted control or flag: the fast path gives up
    _ADVANCE = 0x100  # this octet produces an output octet


cdef Py_ssize_t _unstuff_simple(
    const uint8_t* p, Py_ssize_t n, uint8_t* out, const uint16_t* entries, bint controls, uint8_t* flip
) noexcept nogil:
    """Unescape a flag-free run with no deleted control and no 0x7D 0x7D; -1 if it has either.

    Without those two cases an octet is escaped exactly when the previous one is 0x7D, so
    each octet is written XORed with the previous octet's flip and the cursor advances
    unless the octet is 0x7D: no data-dependent branch.  Eight octets without 0x7D (nor,
    when ``controls``, an octet below 0x20) are copied at once.  ``out`` needs room for ``n``
    octets; ``flip`` (0 or 0x20, lone 0x7D pending) is read and updated.
    """
    cdef Py_ssize_t i = 0, k, written = 0
    cdef unsigned int next_flip = flip[0], entry, unusual = 0
    cdef uint8_t octet
    cdef uint64_t word
    while i + 8 <= n:
        memcpy(&word, p + i, 8)
        if next_flip == 0 and _plain_word(word, controls):  # no 0x7D (flags never occur in a run)
            memcpy(out + written, &word, 8)
            written += 8
        else:
            for k in range(8):
                octet = p[i + k]
                entry = entries[octet]
                unusual |= entry & (next_flip | _UNUSUAL)  # 0x7D 0x7D, or a deleted control
                out[written] = octet ^ next_flip
                written += entry >> 8
                next_flip = entry & _NEXT_FLIP
        i += 8
    for k in range(i, n):
        octet = p[k]
        entry = entries[octet]
        unusual |= entry & (next_flip | _UNUSUAL)
        out[written] = octet ^ next_flip
        written += entry >> 8
        next_flip = entry & _NEXT_FLIP
    if unusual:
        return -1
    flip[0] = next_flip
    return written


cdef class HdlcDeframer:
    """Incremental HDLC deframer: feed serial bytes, get FCS-checked frames (see module doc)."""

    cdef uint8_t* _buffer  # frame in progress; 2 * max_frame + 16 octets of room for the fast path
    cdef Py_ssize_t _room
    cdef Py_ssize_t _length
    cdef Py_ssize_t _max_frame
    cdef uint8_t _flip  # 0x20 when the last octet of the frame so far was a lone 0x7D
    cdef bint _discarding  # frame in progress exceeded max_frame; skip to the next flag
    cdef uint32_t _rx_accm
    cdef int _fcs_bits
    cdef uint8_t _class[256]  # octet class for the exact loop
    cdef uint16_t _entries[256]  # octet entry for the fast path
    cdef public unsigned long long frames
    cdef public unsigned long long bad_fcs
    cdef public unsigned long long aborted
    cdef public unsigned long long too_long
    cdef public unsigned long long too_short
    cdef public unsigned long long bytes_in

    def __cinit__(self, *args, **kwargs):
        self._buffer = NULL
        self._room = 0
        self._length = 0
        self._max_frame = 0
        self._flip = 0
        self._discarding = False

    def __init__(self, max_frame=DEFAULT_MAX_FRAME, rx_accm=DEFAULT_ACCM, fcs_bits=16):
        self.frames = 0
        self.bad_fcs = 0
        self.aborted = 0
        self.too_long = 0
        self.too_short = 0
        self.bytes_in = 0
        self._fcs_bits = 16
        self.max_frame = max_frame
        self.rx_accm = rx_accm
        self.fcs_bits = fcs_bits

    def __dealloc__(self):
        PyMem_Free(self._buffer)

    @property
    def max_frame(self):
        """Largest accepted frame, in unescaped octets including the FCS."""
        return self._max_frame

    @max_frame.setter
    def max_frame(self, value):
        cdef uint8_t* grown
        cdef Py_ssize_t room
        value = PyNumber_Index(value)
        if not 1 <= value <= _MAX_FRAME_LIMIT:
            raise ValueError(f"max_frame must be in 1..{_MAX_FRAME_LIMIT}, got {value}")
        room = 2 * <Py_ssize_t>value + 16
        grown = <uint8_t*>PyMem_Realloc(self._buffer, <size_t>room)
        if grown == NULL:
            raise MemoryError()
        self._buffer = grown
        self._room = room
        self._max_frame = value
        if self._length > value:
            self._discard_too_long()  # the frame in progress no longer fits

    @property
    def rx_accm(self):
        """Receive ACCM: control octets flagged here are deleted on arrival (RFC 1662 §7.1)."""
        return self._rx_accm

    @rx_accm.setter
    def rx_accm(self, value):
        cdef unsigned int octet
        self._rx_accm = _check_accm(value)
        for octet in range(256):
            self._class[octet] = _DATA
        for octet in range(32):
            if (self._rx_accm >> octet) & 1:
                self._class[octet] = _IS_CONTROL
        self._class[_ESCAPE] = _IS_ESCAPE
        self._class[_FLAG] = _IS_FLAG
        for octet in range(256):
            if self._class[octet] == _DATA:
                self._entries[octet] = _ADVANCE
            elif self._class[octet] == _IS_ESCAPE:
                self._entries[octet] = _NEXT_FLIP
            else:
                self._entries[octet] = _UNUSUAL

    @property
    def fcs_bits(self):
        """FCS length in bits (16 or 32), as negotiated by LCP (RFC 1570 §2.1)."""
        return self._fcs_bits

    @fcs_bits.setter
    def fcs_bits(self, value):
        self._fcs_bits = _check_fcs_bits(value)

    def counters(self):
        """Frame and drop counters by name."""
        return {
            "frames": self.frames,
            "bad_fcs": self.bad_fcs,
            "aborted": self.aborted,
            "too_long": self.too_long,
            "too_short": self.too_short,
            "bytes_in": self.bytes_in,
        }

    def reset(self):
        """Forget the frame in progress (e.g. when the link restarts); counters are kept."""
        self._length = 0
        self._flip = 0
        self._discarding = False

    cdef void _discard_too_long(self) noexcept:
        self.too_long += 1
        self._length = 0
        self._flip = 0
        self._discarding = True

    def feed(self, data):
        """Consume serial bytes; return the good frames completed by them, FCS stripped."""
        cdef Py_buffer view
        cdef list frames = []
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            self.bytes_in += <unsigned long long>view.len
            self._run(<const uint8_t*>view.buf, view.len, frames)
        finally:
            PyBuffer_Release(&view)
        return frames

    cdef int _close_frame(self, list frames) except -1:
        """Handle a flag: check the frame in progress (see the reference module's rules)."""
        cdef Py_ssize_t fcs_length = self._fcs_bits >> 3
        cdef Py_ssize_t length = self._length
        cdef bint good
        self._length = 0
        if self._discarding:
            self._discarding = False  # already counted as too long
        elif self._flip:
            self._flip = 0
            self.aborted += 1  # RFC 1662 §4.2: 0x7D then flag aborts the frame
        elif length == 0:
            pass  # back-to-back flags: an empty frame is inter-frame fill, not an error
        elif length < fcs_length + 2:
            self.too_short += 1
        else:
            if fcs_length == 2:
                good = _run16(0xFFFF, self._buffer, length) == _FCS16_GOOD
            else:
                good = _run32(0xFFFFFFFFU, self._buffer, length) == _FCS32_GOOD
            if not good:
                self.bad_fcs += 1
            else:
                self.frames += 1
                frames.append(PyBytes_FromStringAndSize(<char*>self._buffer, length - fcs_length))
        return 0

    cdef void _absorb_exactly(self, const uint8_t* p, Py_ssize_t n) noexcept:
        """Octet-at-a-time rules 2-4 of the reference module for a flag-free run."""
        cdef Py_ssize_t i
        cdef Py_ssize_t length = self._length
        cdef uint8_t flip = self._flip
        cdef uint8_t octet, kind
        for i in range(n):
            octet = p[i]
            kind = self._class[octet]
            if kind == _IS_CONTROL:
                continue  # flagged in the receive ACCM: deleted on arrival (RFC 1662 §7.1)
            if kind == _IS_ESCAPE and not flip:
                flip = _ESCAPE_XOR
                continue
            if length >= self._max_frame:
                self._discard_too_long()
                return
            self._buffer[length] = octet ^ flip
            length += 1
            flip = 0
        self._length = length
        self._flip = flip

    cdef void _absorb(self, const uint8_t* p, Py_ssize_t n) noexcept:
        """Append a flag-free run to the frame in progress (or skip it while discarding)."""
        cdef uint8_t flip = self._flip
        cdef Py_ssize_t written
        if self._discarding or n == 0:
            return
        if self._length + n <= self._room:
            written = _unstuff_simple(
                p, n, self._buffer + self._length, self._entries, self._rx_accm != 0, &flip
            )
            if written >= 0:
                if self._length + written > self._max_frame:
                    self._discard_too_long()  # the octet-at-a-time loop would stop at the same frame
                else:
                    self._length += written
                    self._flip = flip
                return
        self._absorb_exactly(p, n)

    cdef int _run(self, const uint8_t* p, Py_ssize_t n, list frames) except -1:
        cdef const uint8_t* end = p + n
        cdef const uint8_t* flag
        while p < end:
            flag = <const uint8_t*>memchr(p, _FLAG, <size_t>(end - p))
            if flag == NULL:
                self._absorb(p, end - p)
                break
            self._absorb(p, flag - p)
            self._close_frame(frames)
            p = flag + 1
        return 0
