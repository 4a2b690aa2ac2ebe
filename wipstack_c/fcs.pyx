# cython: language_level=3
"""PPP frame check sequences (RFC 1662 appendix C), C twin of ``wipstack._py.fcs``.

Table driven as in RFC 1662 §C.2/§C.3, extended to "slicing by 8": table ``k`` holds the
register change caused by an octet followed by ``k`` zero octets, so eight octets cost
eight independent lookups instead of a chain of eight.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.number cimport PyNumber_Index
from libc.stdint cimport uint8_t, uint16_t, uint32_t

__all__ = ["FCS16_GOOD", "FCS16_INIT", "FCS32_GOOD", "FCS32_INIT", "fcs16", "fcs32"]

FCS16_INIT = 0xFFFF
FCS16_GOOD = 0xF0B8  # RFC 1662 §C.2: residue of a frame followed by its correct FCS-16
FCS32_INIT = 0xFFFFFFFF
FCS32_GOOD = 0xDEBB20E3  # RFC 1662 §C.3: residue for FCS-32

include "fcs_tables.pxi"


def fcs16(data, initial=FCS16_INIT):
    """Running FCS-16 of ``data`` starting from ``initial`` (RFC 1662 §C.2), not complemented."""
    cdef Py_buffer view
    cdef uint16_t result
    initial = PyNumber_Index(initial)
    if not 0 <= initial <= 0xFFFF:
        raise ValueError(f"initial must be in 0..0xFFFF, got {initial}")
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    result = _run16(<uint16_t>initial, <const uint8_t*>view.buf, view.len)
    PyBuffer_Release(&view)
    return result


def fcs32(data, initial=FCS32_INIT):
    """Running FCS-32 of ``data`` starting from ``initial`` (RFC 1662 §C.3), not complemented."""
    cdef Py_buffer view
    cdef uint32_t result
    initial = PyNumber_Index(initial)
    if not 0 <= initial <= 0xFFFFFFFF:
        raise ValueError(f"initial must be in 0..0xFFFFFFFF, got {initial}")
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    result = _run32(<uint32_t>initial, <const uint8_t*>view.buf, view.len)
    PyBuffer_Release(&view)
    return result
