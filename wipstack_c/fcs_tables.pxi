# Shared by fcs.pyx and hdlc.pyx (Cython "include"): the slice-by-8 FCS tables and loops.
# RFC 1662 appendix C, table driven; table k holds the register change caused by an octet
# followed by k zero octets, so eight octets cost eight independent lookups.

cdef uint16_t _T16[8][256]
cdef uint32_t _T32[8][256]


cdef void _build_tables() noexcept:
    cdef unsigned int octet, bit, k
    cdef uint16_t r16
    cdef uint32_t r32
    for octet in range(256):
        r16 = octet
        r32 = octet
        for bit in range(8):
            # reflected generators of x^16+x^12+x^5+1 and of the 32-bit CRC (RFC 1662 §C)
            r16 = (r16 >> 1) ^ 0x8408 if r16 & 1 else r16 >> 1
            r32 = (r32 >> 1) ^ 0xEDB88320 if r32 & 1 else r32 >> 1
        _T16[0][octet] = r16
        _T32[0][octet] = r32
    for k in range(1, 8):
        for octet in range(256):
            _T16[k][octet] = (_T16[k - 1][octet] >> 8) ^ _T16[0][_T16[k - 1][octet] & 0xFF]
            _T32[k][octet] = (_T32[k - 1][octet] >> 8) ^ _T32[0][_T32[k - 1][octet] & 0xFF]


_build_tables()


cdef uint16_t _run16(uint16_t fcs, const uint8_t* p, Py_ssize_t n) noexcept nogil:
    cdef uint16_t low
    while n >= 8:
        low = fcs ^ (p[0] | (<uint16_t>p[1] << 8))
        fcs = (_T16[7][low & 0xFF] ^ _T16[6][low >> 8] ^ _T16[5][p[2]] ^ _T16[4][p[3]]
               ^ _T16[3][p[4]] ^ _T16[2][p[5]] ^ _T16[1][p[6]] ^ _T16[0][p[7]])
        p += 8
        n -= 8
    while n > 0:
        fcs = (fcs >> 8) ^ _T16[0][(fcs ^ p[0]) & 0xFF]
        p += 1
        n -= 1
    return fcs


cdef uint32_t _run32(uint32_t fcs, const uint8_t* p, Py_ssize_t n) noexcept nogil:
    cdef uint32_t low
    while n >= 8:
        low = fcs ^ (p[0] | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16) | (<uint32_t>p[3] << 24))
        fcs = (_T32[7][low & 0xFF] ^ _T32[6][(low >> 8) & 0xFF] ^ _T32[5][(low >> 16) & 0xFF]
               ^ _T32[4][low >> 24] ^ _T32[3][p[4]] ^ _T32[2][p[5]] ^ _T32[1][p[6]] ^ _T32[0][p[7]])
        p += 8
        n -= 8
    while n > 0:
        fcs = (fcs >> 8) ^ _T32[0][(fcs ^ p[0]) & 0xFF]
        p += 1
        n -= 1
    return fcs
