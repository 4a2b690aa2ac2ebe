# cython: language_level=3
"""Internet checksum (RFC 1071), C twin of ``wipstack._py.checksum`` (the reference spec).

The buffer is summed eight octets at a time as native 64-bit words with end-around carry
(RFC 1071 §2: the sum is byte-order independent and may use wider words), folded to 16
bits, byte-swapped on little-endian hosts, and the tail is added as big-endian words.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.number cimport PyNumber_Index
from libc.stdint cimport uint8_t, uint16_t, uint64_t
from libc.string cimport memcpy

__all__ = ["inet_checksum", "inet_sum", "pseudo_header_sum"]

cdef uint64_t LOW32 = 0xFFFFFFFFU
cdef bint _LITTLE_ENDIAN
cdef uint16_t _probe = 1
_LITTLE_ENDIAN = (<uint8_t*>&_probe)[0] == 1


cdef inline uint64_t _fold16(uint64_t total) noexcept nogil:
    # fold until no carry remains: one fold is not always enough (RFC 1071 §4.1)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


cdef uint64_t _big_endian_sum(const uint8_t* octets, Py_ssize_t length) noexcept nogil:
    """Folded one's-complement sum of big-endian 16-bit words; 0 only for all-zero input."""
    cdef uint64_t total = 0
    cdef uint64_t word
    cdef uint64_t total_b = 0
    cdef uint64_t word_b
    cdef Py_ssize_t position = 0
    cdef Py_ssize_t pairs_end = length & ~(<Py_ssize_t>15)
    cdef Py_ssize_t words_end = length & ~(<Py_ssize_t>7)
    # two independent accumulators; 2**64 == 1 (mod 0xFFFF), so a carry out adds back one
    while position < pairs_end:
        memcpy(&word, octets + position, 8)
        memcpy(&word_b, octets + position + 8, 8)
        total += word
        total += total < word
        total_b += word_b
        total_b += total_b < word_b
        position += 16
    while position < words_end:
        memcpy(&word, octets + position, 8)
        total += word
        total += total < word
        position += 8
    total = _fold16((total & LOW32) + (total >> 32) + (total_b & LOW32) + (total_b >> 32))
    if _LITTLE_ENDIAN:
        # the sum of little-endian words is the byte-swapped big-endian sum (RFC 1071 §2.B)
        total = ((total & 0xFF) << 8) | (total >> 8)
    while position + 1 < length:
        total += (<uint64_t>octets[position] << 8) | octets[position + 1]
        position += 2
    if position < length:
        total += <uint64_t>octets[position] << 8  # RFC 1071 §4.1: odd byte padded with zero
    return _fold16(total)


cdef uint64_t _initial_value(object initial) except? 0xFFFFFFFFFFFFFFFF:
    initial = PyNumber_Index(initial)
    if not 0 <= initial <= 0xFFFFFFFF:
        raise ValueError(f"initial must be in 0..0xFFFFFFFF, got {initial}")
    return <uint64_t>initial


cdef uint64_t _sum_object(object data, uint64_t initial) except? 0xFFFFFFFFFFFFFFFF:
    cdef Py_buffer view
    cdef uint64_t total
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    total = _big_endian_sum(<const uint8_t*>view.buf, view.len)
    PyBuffer_Release(&view)
    return _fold16(total + initial)


def inet_sum(data, initial=0):
    """One's-complement sum of ``data`` as big-endian 16-bit words, folded to 16 bits."""
    return _sum_object(data, _initial_value(initial))


def inet_checksum(data, initial=0):
    """The Internet checksum field value: the complement of ``inet_sum``."""
    return (~_sum_object(data, _initial_value(initial))) & 0xFFFF


cdef Py_ssize_t _address_length(object address) except -1:
    cdef Py_buffer view
    PyObject_GetBuffer(address, &view, PyBUF_SIMPLE)
    cdef Py_ssize_t length = view.len
    PyBuffer_Release(&view)
    return length


def pseudo_header_sum(src, dst, protocol, length):
    """Folded sum of the IPv4 pseudo-header (RFC 9293 §3.1 / RFC 768) for TCP and UDP."""
    if _address_length(src) != 4 or _address_length(dst) != 4:
        raise ValueError("src and dst must be 4-byte IPv4 addresses")
    protocol = PyNumber_Index(protocol)
    length = PyNumber_Index(length)
    if not 0 <= protocol <= 0xFF:
        raise ValueError(f"protocol must be in 0..255, got {protocol}")
    if not 0 <= length <= 0xFFFF:
        raise ValueError(f"length must be in 0..65535, got {length}")
    return _fold16(_sum_object(src, 0) + _sum_object(dst, 0) + <uint64_t>protocol + <uint64_t>length)
