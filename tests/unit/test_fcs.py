"""PPP FCS-16/FCS-32 (RFC 1662 appendix C), run against both implementations."""

from __future__ import annotations

import random
import zlib
from types import SimpleNamespace

import pytest

LCP_CONF_REQ = bytes.fromhex("ff03c02101010014020600000000050620b67ba507020802")


def reference_fcs16(data: bytes, fcs: int = 0xFFFF) -> int:
    """Bit at a time, reflected generator 0x8408 (RFC 1662 §C.2)."""
    for octet in data:
        fcs ^= octet
        for _ in range(8):
            fcs = (fcs >> 1) ^ 0x8408 if fcs & 1 else fcs >> 1
    return fcs


def reference_fcs32(data: bytes, fcs: int = 0xFFFFFFFF) -> int:
    """Bit at a time, reflected generator 0xEDB88320 (RFC 1662 §C.3)."""
    for octet in data:
        fcs ^= octet
        for _ in range(8):
            fcs = (fcs >> 1) ^ 0xEDB88320 if fcs & 1 else fcs >> 1
    return fcs


def test_constants(accel_impl: SimpleNamespace) -> None:
    assert accel_impl.FCS16_GOOD == 0xF0B8
    assert accel_impl.FCS32_GOOD == 0xDEBB20E3
    assert accel_impl.FCS16_INIT == 0xFFFF
    assert accel_impl.FCS32_INIT == 0xFFFFFFFF


def test_fcs16_lcp_conf_req_golden(accel_impl: SimpleNamespace) -> None:
    trailer = (accel_impl.fcs16(LCP_CONF_REQ) ^ 0xFFFF).to_bytes(2, "little")
    assert trailer == bytes.fromhex("f18b")
    assert accel_impl.fcs16(LCP_CONF_REQ + trailer) == accel_impl.FCS16_GOOD


def test_fcs16_check_value(accel_impl: SimpleNamespace) -> None:
    # the PPP FCS-16 complemented is CRC-16/X-25, whose catalogue check value is 0x906E
    assert accel_impl.fcs16(b"123456789") ^ 0xFFFF == 0x906E


def test_fcs32_check_value_and_zlib_relation(accel_impl: SimpleNamespace) -> None:
    assert accel_impl.fcs32(b"123456789") ^ 0xFFFFFFFF == 0xCBF43926
    rng = random.Random(32)
    for _ in range(300):
        data = rng.randbytes(rng.randrange(0, 200))
        assert accel_impl.fcs32(data) ^ 0xFFFFFFFF == zlib.crc32(data)
        trailer = (accel_impl.fcs32(data) ^ 0xFFFFFFFF).to_bytes(4, "little")
        assert accel_impl.fcs32(data + trailer) == accel_impl.FCS32_GOOD


def test_fcs16_good_residue_random(accel_impl: SimpleNamespace) -> None:
    rng = random.Random(16)
    for _ in range(300):
        data = rng.randbytes(rng.randrange(0, 200))
        trailer = (accel_impl.fcs16(data) ^ 0xFFFF).to_bytes(2, "little")
        assert accel_impl.fcs16(data + trailer) == accel_impl.FCS16_GOOD


def test_fcs_against_bitwise_reference(accel_impl: SimpleNamespace) -> None:
    rng = random.Random(1662)
    for length in [*range(0, 40), 255, 1500]:
        data = rng.randbytes(length)
        initial16, initial32 = rng.randrange(1 << 16), rng.randrange(1 << 32)
        assert accel_impl.fcs16(data) == reference_fcs16(data)
        assert accel_impl.fcs16(data, initial16) == reference_fcs16(data, initial16)
        assert accel_impl.fcs32(data) == reference_fcs32(data)
        assert accel_impl.fcs32(data, initial32) == reference_fcs32(data, initial32)


def test_fcs_chains(accel_impl: SimpleNamespace) -> None:
    rng = random.Random(5)
    for _ in range(200):
        first, second = rng.randbytes(rng.randrange(50)), rng.randbytes(rng.randrange(50))
        assert accel_impl.fcs16(second, accel_impl.fcs16(first)) == accel_impl.fcs16(first + second)
        assert accel_impl.fcs32(second, accel_impl.fcs32(first)) == accel_impl.fcs32(first + second)


def test_fcs_empty_returns_initial(accel_impl: SimpleNamespace) -> None:
    assert accel_impl.fcs16(b"") == 0xFFFF
    assert accel_impl.fcs16(b"", 0x1234) == 0x1234
    assert accel_impl.fcs32(b"", 0x12345678) == 0x12345678


def test_fcs_accepts_buffer_types(accel_impl: SimpleNamespace) -> None:
    backing = b"--" + LCP_CONF_REQ + b"--"
    expected = reference_fcs16(LCP_CONF_REQ)
    assert accel_impl.fcs16(memoryview(backing)[2:-2]) == expected
    assert accel_impl.fcs16(bytearray(LCP_CONF_REQ)) == expected
    assert accel_impl.fcs32(memoryview(backing)[2:-2]) == reference_fcs32(LCP_CONF_REQ)


def test_fcs_rejects_strided_view(accel_impl: SimpleNamespace) -> None:
    with pytest.raises(BufferError):
        accel_impl.fcs16(memoryview(b"abcdef")[::2])
    with pytest.raises(BufferError):
        accel_impl.fcs32(memoryview(b"abcdef")[::2])


@pytest.mark.parametrize(("function", "initial"), [("fcs16", -1), ("fcs16", 0x10000), ("fcs32", 1 << 32)])
def test_fcs_rejects_bad_initial(accel_impl: SimpleNamespace, function: str, initial: int) -> None:
    with pytest.raises(ValueError):
        getattr(accel_impl, function)(b"x", initial)
