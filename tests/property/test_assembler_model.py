"""Assembler against a trivial model: a dict from window offset to octet.

After every step the ranges, holes, readable count, stored count and emptiness must match
what the model implies, and every return value (including ``ASSEMBLER_FULL`` with the
state left untouched) must be the model's.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st


class ModelAssembler:
    """Octets by offset relative to the read position; ranges derived on demand."""

    def __init__(self, capacity: int, max_ranges: int) -> None:
        self.capacity, self.max_ranges = capacity, max_ranges
        self.octets: dict[int, int] = {}

    @staticmethod
    def ranges_of(offsets: set[int]) -> list[tuple[int, int]]:
        ranges: list[tuple[int, int]] = []
        for offset in sorted(offsets):
            if ranges and ranges[-1][1] == offset:
                ranges[-1] = (ranges[-1][0], offset + 1)
            else:
                ranges.append((offset, offset + 1))
        return ranges

    def ranges(self) -> list[tuple[int, int]]:
        return self.ranges_of(set(self.octets))

    def holes(self) -> list[tuple[int, int]]:
        holes, cursor = [], 0
        for start, end in self.ranges():
            if start > cursor:
                holes.append((cursor, start))
            cursor = end
        return holes

    def readable(self) -> int:
        count = 0
        while count in self.octets:
            count += 1
        return count

    def add(self, offset: int, data: bytes) -> int:
        fresh = {
            offset + index: octet
            for index, octet in enumerate(data)
            if 0 <= offset + index < self.capacity and offset + index not in self.octets
        }
        if len(self.ranges_of(set(self.octets) | set(fresh))) > self.max_ranges:
            return -1
        self.octets.update(fresh)
        return len(fresh)

    def read(self, n: int) -> bytes:
        count = self.readable() if n < 0 else min(n, self.readable())
        chunk = bytes(self.octets[index] for index in range(count))
        self.octets = {offset - count: octet for offset, octet in self.octets.items() if offset >= count}
        return chunk

    def overlaps(self, offset: int, length: int) -> bool:
        return any(offset <= stored < offset + length for stored in self.octets)

    def clear(self) -> None:
        self.octets = {}


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(-30, 150), st.binary(min_size=0, max_size=48)),
        st.tuples(st.just("read"), st.integers(-3, 70)),
        st.tuples(st.just("overlaps"), st.integers(-30, 150), st.integers(-3, 70)),
        st.tuples(st.just("clear")),
    ),
    max_size=60,
)


def check_state(assembler: Any, model: ModelAssembler) -> None:
    assert assembler.ranges() == model.ranges()
    assert assembler.holes() == model.holes()
    assert assembler.readable() == model.readable()
    assert assembler.stored() == len(model.octets)
    assert assembler.is_empty() == (not model.octets)


@settings(max_examples=400)
@given(capacity=st.integers(0, 128), max_ranges=st.integers(1, 6), operations=OPERATIONS)
def test_assembler_matches_model(
    accel_impl: SimpleNamespace, capacity: int, max_ranges: int, operations: list[Any]
) -> None:
    assembler = accel_impl.Assembler(capacity, max_ranges)
    model = ModelAssembler(capacity, max_ranges)
    for name, *args in operations:
        before = (assembler.ranges(), assembler.stored())
        result = getattr(assembler, name)(*args)
        assert result == getattr(model, name)(*args), (name, args)
        if result == accel_impl.ASSEMBLER_FULL and name == "add":
            assert (assembler.ranges(), assembler.stored()) == before
        check_state(assembler, model)


@settings(max_examples=200)
@given(
    payload=st.binary(min_size=1, max_size=400),
    cuts=st.lists(st.integers(0, 400), max_size=25),
    order=st.randoms(use_true_random=False),
)
def test_any_segment_order_reassembles_the_stream(
    accel_impl: SimpleNamespace, payload: bytes, cuts: list[int], order: Any
) -> None:
    points = sorted({min(cut, len(payload)) for cut in cuts} | {0, len(payload)})
    segments = list(zip(points, points[1:], strict=False))
    order.shuffle(segments)
    assembler = accel_impl.Assembler(len(payload), max_ranges=len(segments) + 1)
    received = bytearray()
    for start, end in segments:
        assert assembler.add(start - len(received), payload[start:end]) >= 0
        received += assembler.read()
    assert bytes(received) == payload
    assert assembler.is_empty()
