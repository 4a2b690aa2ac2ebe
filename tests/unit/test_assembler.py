"""Out-of-order byte-range assembler: overlap cases, trimming, reading, limits."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest


def make(impl: SimpleNamespace, capacity: int = 100, max_ranges: int = 16) -> Any:
    return impl.Assembler(capacity, max_ranges)


def state(assembler: Any) -> tuple[object, ...]:
    return (assembler.ranges(), assembler.holes(), assembler.readable(), assembler.stored())


def test_new_assembler_is_empty(accel_impl: SimpleNamespace) -> None:
    assembler = make(accel_impl)
    assert assembler.is_empty()
    assert state(assembler) == ([], [], 0, 0)
    assert assembler.read() == b""
    assert (assembler.capacity, assembler.max_ranges) == (100, 16)
    assert accel_impl.ASSEMBLER_FULL == -1


def test_in_order_add_is_readable(accel_impl: SimpleNamespace) -> None:
    assembler = make(accel_impl)
    assert assembler.add(0, b"hello") == 5
    assert assembler.readable() == 5
    assert assembler.read() == b"hello"
    assert assembler.is_empty()


def test_out_of_order_add_leaves_hole(accel_impl: SimpleNamespace) -> None:
    assembler = make(accel_impl)
    assert assembler.add(5, b"world") == 5
    assert state(assembler) == ([(5, 10)], [(0, 5)], 0, 5)
    assert assembler.read() == b""
    assert assembler.add(0, b"hello") == 5
    assert assembler.read() == b"helloworld"


def test_front_overlap_keeps_first_copy(accel_impl: SimpleNamespace) -> None:
    assembler = make(accel_impl)
    assembler.add(4, b"EFGH")
    assert assembler.add(2, b"cdef") == 2
    assert assembler.ranges() == [(2, 8)]
    assembler.add(0, b"ab")
    assert assembler.read() == b"abcdEFGH"


def test_back_overlap_keeps_first_copy(accel_impl: SimpleNamespace) -> None:
    assembler = make(accel_impl)
    assembler.add(0, b"ABCD")
    assert assembler.add(2, b"cdef") == 2
    assert assembler.read() == b"ABCDef"


def test_covering_add_fills_both_sides(accel_impl: SimpleNamespace) -> None:
    assembler = make(accel_impl)
    assembler.add(3, b"DE")
    assert assembler.add(0, b"abcdefgh") == 6
    assert assembler.ranges() == [(0, 8)]
    assert assembler.read() == b"abcDEfgh"


def test_contained_add_stores_nothing(accel_impl: SimpleNamespace) -> None:
    assembler = make(accel_impl)
    assembler.add(0, b"ABCDEFGH")
    assert assembler.add(2, b"xyz") == 0
    assert assembler.ranges() == [(0, 8)]
    assert assembler.read() == b"ABCDEFGH"


def test_add_joins_two_ranges(accel_impl: SimpleNamespace) -> None:
    assembler = make(accel_impl)
    assembler.add(0, b"AB")
    assembler.add(6, b"GH")
    assert assembler.holes() == [(2, 6)]
    assert assembler.add(1, b"bcdefg") == 4
    assert state(assembler) == ([(0, 8)], [], 8, 8)
    assert assembler.read() == b"ABcdefGH"


def test_add_swallows_many_ranges(accel_impl: SimpleNamespace) -> None:
    assembler = make(accel_impl)
    for offset in range(10, 30, 4):
        assembler.add(offset, b"XX")
    assert len(assembler.ranges()) == 5
    assert assembler.add(5, bytes(30)) == 30 - 10
    assert assembler.ranges() == [(5, 35)]


def test_reversed_order_adds(accel_impl: SimpleNamespace) -> None:
    assembler = make(accel_impl)
    for offset in range(9, -1, -1):
        assembler.add(offset, bytes((0x30 + offset,)))
    assert assembler.ranges() == [(0, 10)]
    assert assembler.read() == b"0123456789"


def test_exactly_adjacent_ranges_merge(accel_impl: SimpleNamespace) -> None:
    assembler = make(accel_impl)
    assembler.add(2, b"cd")
    assembler.add(4, b"ef")
    assert assembler.ranges() == [(2, 6)]
    assembler.add(6, b"g")
    assembler.add(1, b"b")
    assert assembler.ranges() == [(1, 7)]


def test_rejected_add_keeps_state(accel_impl: SimpleNamespace) -> None:
    assembler = make(accel_impl, max_ranges=2)
    assembler.add(2, b"cc")
    assembler.add(8, b"ii")
    before = state(assembler)
    assert assembler.add(5, b"f") == accel_impl.ASSEMBLER_FULL
    assert state(assembler) == before
    assert assembler.add(4, b"ee") == 2  # touches an existing range: still two ranges
    assert assembler.ranges() == [(2, 6), (8, 10)]
    assert assembler.add(0, b"a") == accel_impl.ASSEMBLER_FULL


def test_rejected_add_does_not_write_data(accel_impl: SimpleNamespace) -> None:
    assembler = make(accel_impl, max_ranges=1)
    assembler.add(4, b"EE")
    assert assembler.add(0, b"zz") == -1
    assembler.add(0, b"aabb")
    assert assembler.read() == b"aabbEE"


def test_full_ranges_still_accept_covered_or_joining_data(accel_impl: SimpleNamespace) -> None:
    assembler = make(accel_impl, max_ranges=1)
    assembler.add(3, b"DEF")
    assert assembler.add(4, b"e") == 0
    assert assembler.add(0, b"abc") == 3
    assert assembler.read() == b"abcDEF"


def test_trims_before_read_position(accel_impl: SimpleNamespace) -> None:
    assembler = make(accel_impl)
    assert assembler.add(-3, b"xyzabc") == 3
    assert assembler.read() == b"abc"
    assert assembler.add(-10, b"old") == 0


def test_trims_at_capacity(accel_impl: SimpleNamespace) -> None:
    assembler = make(accel_impl, capacity=10)
    assert assembler.add(8, b"ijklm") == 2
    assert assembler.ranges() == [(8, 10)]
    assert assembler.add(10, b"k") == 0
    assert assembler.add(1 << 40, b"far") == 0


def test_read_shifts_offsets(accel_impl: SimpleNamespace) -> None:
    assembler = make(accel_impl, capacity=10)
    assembler.add(0, b"abcd")
    assembler.add(6, b"gh")
    assert assembler.read(3) == b"abc"
    assert state(assembler) == ([(0, 1), (3, 5)], [(1, 3)], 1, 3)
    assert assembler.add(9, b"xyzw") == 1  # window now ends 3 octets later
    assert assembler.read() == b"d"
    assert assembler.ranges() == [(2, 4), (8, 9)]


def test_read_partial_counts(accel_impl: SimpleNamespace) -> None:
    assembler = make(accel_impl)
    assembler.add(0, b"abcdef")
    assert assembler.read(0) == b""
    assert assembler.read(2) == b"ab"
    assert assembler.read(100) == b"cdef"
    assert assembler.is_empty()


def test_window_slides_over_many_reads(accel_impl: SimpleNamespace) -> None:
    assembler = make(accel_impl, capacity=8)
    produced = bytes(range(256)) * 4
    received = bytearray()
    position = 0
    while position < len(produced):
        assembler.add(2, produced[position + 2 : position + 6])
        assembler.add(0, produced[position : position + 3])
        chunk = assembler.read()
        received += chunk
        position += len(chunk)
        assert len(chunk) >= 3
    assert bytes(received[: len(produced)]) == produced


def test_overlaps(accel_impl: SimpleNamespace) -> None:
    assembler = make(accel_impl)
    assembler.add(10, b"x" * 10)
    assert assembler.overlaps(0, 11)
    assert assembler.overlaps(19, 5)
    assert assembler.overlaps(12, 2)
    assert not assembler.overlaps(0, 10)  # ends exactly where the range starts
    assert not assembler.overlaps(20, 5)  # starts exactly where the range ends
    assert not assembler.overlaps(15, 0)
    assert not assembler.overlaps(15, -3)
    assert assembler.overlaps(-5, 100)


def test_stored_counts_bytes(accel_impl: SimpleNamespace) -> None:
    assembler = make(accel_impl)
    assembler.add(0, b"ab")
    assembler.add(5, b"fgh")
    assembler.add(6, b"ghij")
    assert assembler.stored() == 7


def test_clear(accel_impl: SimpleNamespace) -> None:
    assembler = make(accel_impl)
    assembler.add(3, b"abc")
    assembler.clear()
    assert assembler.is_empty()
    assert state(assembler) == ([], [], 0, 0)
    assembler.add(0, b"z")
    assert assembler.read() == b"z"


def test_zero_capacity_stores_nothing(accel_impl: SimpleNamespace) -> None:
    assembler = make(accel_impl, capacity=0)
    assert assembler.add(-2, b"abcd") == 0
    assert assembler.add(0, b"abcd") == 0
    assert assembler.is_empty()


def test_accepts_buffer_types(accel_impl: SimpleNamespace) -> None:
    assembler = make(accel_impl)
    assembler.add(0, bytearray(b"ab"))
    assembler.add(2, memoryview(b"xxcdxx")[2:4])
    assert assembler.read() == b"abcd"


def test_rejects_strided_view(accel_impl: SimpleNamespace) -> None:
    with pytest.raises(BufferError):
        make(accel_impl).add(0, memoryview(b"abcdef")[::2])


@pytest.mark.parametrize(("capacity", "max_ranges"), [(-1, 16), (1 << 63, 16), (10, 0), (10, (1 << 16) + 1)])
def test_rejects_bad_construction(accel_impl: SimpleNamespace, capacity: int, max_ranges: int) -> None:
    with pytest.raises(ValueError):
        accel_impl.Assembler(capacity, max_ranges)


def test_rejects_offsets_outside_int64(accel_impl: SimpleNamespace) -> None:
    assembler = make(accel_impl)
    with pytest.raises(OverflowError):
        assembler.add(1 << 63, b"x")
    with pytest.raises(OverflowError):
        assembler.overlaps(-(1 << 63) - 1, 1)
