"""Internet checksum (RFC 1071) edge cases, run against both implementations."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest


def reference_sum(data: bytes, initial: int = 0) -> int:
    """Obviously correct: add big-endian words one by one, then fold while any carry remains."""
    if len(data) % 2:
        data = data + b"\x00"
    total = initial
    for index in range(0, len(data), 2):
        total += (data[index] << 8) | data[index + 1]
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def words(*values: int) -> bytes:
    return b"".join(value.to_bytes(2, "big") for value in values)


def data_with_raw_total(total: int) -> bytes:
    """Big-endian words whose plain (unfolded) sum is exactly ``total``."""
    full, rest = divmod(total, 0xFFFF)
    return words(*([0xFFFF] * full + ([rest] if rest else [])))


def test_rfc1071_section3_example(accel_impl: SimpleNamespace) -> None:
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert accel_impl.inet_sum(data) == 0xDDF2  # RFC 1071 §3: 2ddf0 folds to ddf2
    assert accel_impl.inet_checksum(data) == 0x220D


def test_ipv4_header_checksum_golden(accel_impl: SimpleNamespace) -> None:
    header = bytearray.fromhex("450000730000400040110000c0a80001c0a800c7")
    assert accel_impl.inet_checksum(header) == 0xB861
    header[10:12] = b"\xb8\x61"
    assert accel_impl.inet_checksum(header) == 0  # a correct header verifies to zero


def test_inet_checksum_needs_second_fold(accel_impl: SimpleNamespace) -> None:
    # raw sum 0x1FFFF: a single fold gives 0x10000, i.e. checksum 0xFFFF instead of 0xFFFE
    data = words(0xFFFF, 0xFFFF, 0x0001)
    assert accel_impl.inet_sum(data) == 0x0001
    assert accel_impl.inet_checksum(data) == 0xFFFE


@pytest.mark.parametrize(
    "raw_total",
    [0, 1, 0xFFFE, 0xFFFF, 0x10000, 0x10001, 0x1FFFE, 0x1FFFF, 0x20000, 0x2FFFD, 0x2FFFE, 0x2FFFF]
    + [0xFFFF * k + delta for k in (2, 3, 17, 255, 256, 4097) for delta in (-1, 0, 1)],
)
def test_inet_sum_edge_totals(accel_impl: SimpleNamespace, raw_total: int) -> None:
    data = data_with_raw_total(raw_total)
    assert accel_impl.inet_sum(data) == reference_sum(data)
    assert accel_impl.inet_checksum(data) == ~reference_sum(data) & 0xFFFF


@pytest.mark.parametrize("length", [*range(0, 70), 255, 256, 1499, 1500, 1501, 65535, 65536])
def test_inet_sum_all_ones(accel_impl: SimpleNamespace, length: int) -> None:
    data = b"\xff" * length
    assert accel_impl.inet_sum(data) == reference_sum(data)
    assert accel_impl.inet_sum(data, 0xFFFF) == reference_sum(data, 0xFFFF)


@pytest.mark.parametrize("initial", [0, 1, 0xFFFE, 0xFFFF, 0x10000, 0x1FFFF, 0xFFFFFFFF])
def test_inet_sum_initial_folds(accel_impl: SimpleNamespace, initial: int) -> None:
    for data in (b"", b"\xff\xff", b"\xff\xff" * 9, b"\x00\x01", b"\xfe"):
        assert accel_impl.inet_sum(data, initial) == reference_sum(data, initial)


def test_inet_sum_empty(accel_impl: SimpleNamespace) -> None:
    assert accel_impl.inet_sum(b"") == 0
    assert accel_impl.inet_checksum(b"") == 0xFFFF
    assert accel_impl.inet_sum(b"", 0x1234) == 0x1234


def test_inet_sum_single_byte_is_padded(accel_impl: SimpleNamespace) -> None:
    assert accel_impl.inet_sum(b"\x01") == 0x0100
    assert accel_impl.inet_sum(b"\xff") == 0xFF00


def test_inet_sum_all_zero_is_zero_not_negative_zero(accel_impl: SimpleNamespace) -> None:
    assert accel_impl.inet_sum(bytes(40)) == 0
    assert accel_impl.inet_sum(words(0x8000, 0x7FFF)) == 0xFFFF


def test_inet_sum_random_against_reference(accel_impl: SimpleNamespace) -> None:
    rng = random.Random(1071)
    for _ in range(2000):
        data = rng.randbytes(rng.randrange(0, 90))
        initial = rng.choice([0, 0xFFFF, rng.randrange(0x10000), rng.randrange(1 << 32)])
        assert accel_impl.inet_sum(data, initial) == reference_sum(data, initial)


def test_inet_sum_chains_over_even_prefixes(accel_impl: SimpleNamespace) -> None:
    rng = random.Random(7)
    for _ in range(500):
        first = rng.randbytes(2 * rng.randrange(0, 40))
        second = rng.randbytes(rng.randrange(0, 80))
        chained = accel_impl.inet_sum(second, accel_impl.inet_sum(first))
        assert chained == accel_impl.inet_sum(first + second)


def test_inet_sum_accepts_buffer_types_and_offset_slices(accel_impl: SimpleNamespace) -> None:
    rng = random.Random(3)
    backing = rng.randbytes(3001)
    for start in range(0, 17):
        for stop in (start, start + 1, start + 7, 1500, 3001):
            expected = reference_sum(backing[start:stop])
            assert accel_impl.inet_sum(memoryview(backing)[start:stop]) == expected
            assert accel_impl.inet_sum(bytearray(backing[start:stop])) == expected


def test_inet_sum_rejects_strided_view(accel_impl: SimpleNamespace) -> None:
    with pytest.raises(BufferError):
        accel_impl.inet_sum(memoryview(b"abcdef")[::2])


@pytest.mark.parametrize(("initial", "error"), [(-1, ValueError), (1 << 32, ValueError), (1.0, TypeError)])
def test_inet_sum_rejects_bad_initial(accel_impl: SimpleNamespace, initial: object, error: type) -> None:
    with pytest.raises(error):
        accel_impl.inet_sum(b"ab", initial)


def test_pseudo_header_sum_matches_reference(accel_impl: SimpleNamespace) -> None:
    src, dst = bytes([192, 168, 0, 1]), bytes([10, 255, 255, 254])
    header = src + dst + bytes([0, 6]) + (0xFFFF).to_bytes(2, "big")
    assert accel_impl.pseudo_header_sum(src, dst, 6, 0xFFFF) == reference_sum(header)
    assert accel_impl.pseudo_header_sum(memoryview(b"x" + src)[1:], bytearray(dst), 6, 0xFFFF) == (
        reference_sum(header)
    )


def test_pseudo_header_sum_chains_into_segment_checksum(accel_impl: SimpleNamespace) -> None:
    src, dst = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    segment = bytes.fromhex("303900500000000100000000500220000000000068656c6c6f")
    pseudo = accel_impl.pseudo_header_sum(src, dst, 6, len(segment))
    expected = ~reference_sum(src + dst + bytes([0, 6]) + len(segment).to_bytes(2, "big") + segment) & 0xFFFF
    assert accel_impl.inet_checksum(segment, pseudo) == expected


@pytest.mark.parametrize(
    ("src", "dst", "protocol", "length"),
    [(b"\x01\x02\x03", b"\x00" * 4, 6, 0), (b"\x00" * 4, b"\x00" * 5, 6, 0), (b"\x00" * 4, b"\x00" * 4, 256, 0)]
    + [(b"\x00" * 4, b"\x00" * 4, 17, 0x10000), (b"\x00" * 4, b"\x00" * 4, -1, 0)],
)
def test_pseudo_header_sum_rejects_bad_arguments(
    accel_impl: SimpleNamespace, src: bytes, dst: bytes, protocol: int, length: int
) -> None:
    with pytest.raises(ValueError):
        accel_impl.pseudo_header_sum(src, dst, protocol, length)
