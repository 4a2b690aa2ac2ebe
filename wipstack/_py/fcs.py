"""PPP frame check sequences (RFC 1662 appendix C), pure-Python reference implementation.

Both functions return the *running* register value (not complemented), so a frame is
checked by running the FCS over payload plus received FCS and comparing with the "good"
residue, and a sender transmits the complement least significant byte first:

    trailer = (fcs16(payload) ^ 0xFFFF).to_bytes(2, "little")
    assert fcs16(payload + trailer) == FCS16_GOOD

Theory of operation: RFC 1662 defines both FCSs as bit-reflected CRCs (generators
0x8408 and 0xEDB88320 in reflected form).  Instead of a per-byte Python loop this
module reuses the C loops of the standard library:

* FCS-32 is the register of zlib's CRC-32 without zlib's pre/post inversion, so
  ``fcs32(d, r) == ~zlib.crc32(d, ~r)`` (32-bit complement).
* FCS-16 is the mirror image of ``binascii.crc_hqx`` (CRC-CCITT, same generator 0x1021
  processed most significant bit first): reversing the bits of every input byte and of
  the register turns one into the other.

The tests check both against a bit-at-a-time implementation of the RFC definition.
"""

from __future__ import annotations

import binascii
import zlib
from operator import index

Buffer = bytes | bytearray | memoryview

FCS16_INIT = 0xFFFF
FCS16_GOOD = 0xF0B8  # RFC 1662 §C.2: residue of a frame followed by its correct FCS-16
FCS32_INIT = 0xFFFF_FFFF
FCS32_GOOD = 0xDEBB_20E3  # RFC 1662 §C.3: residue for FCS-32

__all__ = ["FCS16_GOOD", "FCS16_INIT", "FCS32_GOOD", "FCS32_INIT", "Buffer", "fcs16", "fcs32"]

_BIT_REVERSED = bytes(int(f"{value:08b}"[::-1], 2) for value in range(256))


def _reverse16(value: int) -> int:
    return (_BIT_REVERSED[value & 0xFF] << 8) | _BIT_REVERSED[value >> 8]


def _as_bytes(data: Buffer) -> bytes | bytearray:
    """``data`` as something with ``translate``; strided views are refused as in C."""
    if type(data) is bytes or type(data) is bytearray:
        return data
    view = memoryview(data)
    if not view.c_contiguous:
        raise BufferError("memoryview: underlying buffer is not C-contiguous")
    return view.tobytes()


def fcs16(data: Buffer, initial: int = FCS16_INIT) -> int:
    """Running FCS-16 of ``data`` starting from ``initial`` (RFC 1662 §C.2), not complemented."""
    initial = index(initial)
    if not 0 <= initial <= 0xFFFF:
        raise ValueError(f"initial must be in 0..0xFFFF, got {initial}")
    mirrored = binascii.crc_hqx(_as_bytes(data).translate(_BIT_REVERSED), _reverse16(initial))
    return _reverse16(mirrored)


def fcs32(data: Buffer, initial: int = FCS32_INIT) -> int:
    """Running FCS-32 of ``data`` starting from ``initial`` (RFC 1662 §C.3), not complemented."""
    initial = index(initial)
    if not 0 <= initial <= 0xFFFF_FFFF:
        raise ValueError(f"initial must be in 0..0xFFFFFFFF, got {initial}")
    # zlib inverts the register on entry and on exit; undo both (zlib reads any contiguous buffer)
    return zlib.crc32(data, initial ^ 0xFFFF_FFFF) ^ 0xFFFF_FFFF
