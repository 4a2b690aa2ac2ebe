"""Internet checksum (RFC 1071), pure-Python reference implementation.

``inet_sum`` returns the folded 16-bit one's-complement sum (not inverted) so it can be
chained: ``inet_sum(b, inet_sum(a)) == inet_sum(a + b)`` whenever ``len(a)`` is even.

Theory of operation: a one's-complement sum with end-around carry is arithmetic modulo
``0xFFFF`` (because ``0x10000 == 1 (mod 0xFFFF)``, RFC 1071 §2), except that a non-zero
total is represented by ``0xFFFF`` rather than ``0`` when it is a multiple of ``0xFFFF``.
So the whole buffer is read as one big-endian integer and reduced modulo ``0xFFFF``: the
result is exactly what "add the 16-bit words, then fold the carries until none remains"
produces, without a Python-level loop over words.  The tests compare this against a plain
word-by-word loop.

Buffers may be ``bytes``, ``bytearray`` or any C-contiguous ``memoryview`` (slices at any
offset included); a non-contiguous view raises ``BufferError`` exactly like the C twin.
"""

from __future__ import annotations

from operator import index

Buffer = bytes | bytearray | memoryview

ONES_COMPLEMENT_MODULUS = 0xFFFF
MAX_INITIAL = 0xFFFF_FFFF

__all__ = ["Buffer", "inet_checksum", "inet_sum", "pseudo_header_sum"]


def _byte_length(data: Buffer) -> int:
    """Length of ``data`` in bytes, refusing strided views as the C buffer protocol does."""
    if type(data) is bytes:
        return len(data)
    view = memoryview(data)
    if not view.c_contiguous:
        raise BufferError("memoryview: underlying buffer is not C-contiguous")
    return view.nbytes


def _check_initial(initial: int) -> int:
    initial = index(initial)
    if not 0 <= initial <= MAX_INITIAL:
        raise ValueError(f"initial must be in 0..0xFFFFFFFF, got {initial}")
    return initial


def _fold(total: int) -> int:
    """Fold a non-negative integer to 16 bits with end-around carry (RFC 1071 §4.1 loop)."""
    if total == 0:
        return 0
    # a non-zero multiple of 0xFFFF folds to 0xFFFF ("negative zero"), never to 0
    return total % ONES_COMPLEMENT_MODULUS or ONES_COMPLEMENT_MODULUS


def inet_sum(data: Buffer, initial: int = 0) -> int:
    """One's-complement sum of ``data`` as big-endian 16-bit words, folded to 16 bits."""
    initial = _check_initial(initial)
    odd = _byte_length(data) & 1
    total = int.from_bytes(data, "big")
    if odd:
        total <<= 8  # RFC 1071 §4.1: a trailing odd byte is padded with a zero byte
    return _fold(total + initial)


def inet_checksum(data: Buffer, initial: int = 0) -> int:
    """The Internet checksum field value: the complement of ``inet_sum``."""
    return ~inet_sum(data, initial) & 0xFFFF


def pseudo_header_sum(src: Buffer, dst: Buffer, protocol: int, length: int) -> int:
    """Folded sum of the IPv4 pseudo-header (RFC 9293 §3.1 / RFC 768) for TCP and UDP."""
    if _byte_length(src) != 4 or _byte_length(dst) != 4:
        raise ValueError("src and dst must be 4-byte IPv4 addresses")
    protocol = index(protocol)
    length = index(length)
    if not 0 <= protocol <= 0xFF:
        raise ValueError(f"protocol must be in 0..255, got {protocol}")
    if not 0 <= length <= 0xFFFF:
        raise ValueError(f"length must be in 0..65535, got {length}")
    # each 32-bit address is congruent to the sum of its two 16-bit words (mod 0xFFFF)
    return _fold(int.from_bytes(src, "big") + int.from_bytes(dst, "big") + protocol + length)
