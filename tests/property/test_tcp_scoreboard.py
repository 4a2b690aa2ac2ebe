"""Hypothesis: the SACK scoreboard (RFC 2018 / RFC 6675 sender side) against a set-of-octets model.

The model is the plainest possible: a Python set holding every SACKed sequence number.  After
any sequence of ``add`` / ``advance`` / ``clear``, the scoreboard's ranges must be exactly the
maximal runs of the set, and every query must agree with a brute-force answer from the set.
The scoreboard keeps at most ``MAX_RANGES`` ranges by forgetting the highest; the model does
the same (it is documented behaviour, and what bounds memory whatever the peer sends).
"""

from __future__ import annotations

from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from wipstack.tcp import scoreboard as scoreboard_module
from wipstack.tcp.scoreboard import MAX_RANGES, Scoreboard

SETTINGS = settings(max_examples=200, deadline=None)
BASE = 1 << 33  # absolute sequence numbers beyond 2**32, as in a long connection
SPAN = 400

point = st.integers(BASE, BASE + SPAN)
operation = st.one_of(
    st.tuples(st.just("add"), point, point),
    st.tuples(st.just("add"), point, point),
    st.tuples(st.just("add"), point, point),
    st.tuples(st.just("advance"), point, st.just(0)),
    st.tuples(st.just("clear"), st.just(0), st.just(0)),
)


def runs(octets: set[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for seq in sorted(octets):
        if out and out[-1][1] == seq:
            out[-1] = (out[-1][0], seq + 1)
        else:
            out.append((seq, seq + 1))
    return out


def check(board: Scoreboard, model: set[int], max_ranges: int) -> None:
    expected = runs(model)
    assert board.ranges() == expected
    assert board.sacked_bytes == len(model)
    assert bool(board) == bool(model)
    assert board.highest == (expected[-1][1] if expected else None)
    assert len(expected) <= max_ranges
    for seq in range(BASE - 2, BASE + SPAN + 3, 29):
        run_end = next((e for s, e in expected if s <= seq < e), None)
        assert board.is_sacked(seq) == run_end
        for limit in (seq, seq + 1, seq + 50, BASE + SPAN + 5):
            hole = next((s for s in range(seq, limit) if s not in model), None)
            if hole is None:
                assert board.next_unsacked(seq, limit) is None
            else:
                end = next((s for s in range(hole, limit) if s in model), limit)
                assert board.next_unsacked(seq, limit) == (hole, end)
        for length in (0, 1, 13, 200):
            assert board.sacked_between(seq, seq + length) == sum(1 for s in range(seq, seq + length) if s in model)


def run_model(ops: list[tuple[str, int, int]], max_ranges: int) -> None:
    board, model = Scoreboard(), set[int]()
    for op, a, b in ops:
        if op == "add":
            new = set(range(a, b)) - model
            learnt = board.add(a, b)
            model |= set(range(a, b))
            while len(runs(model)) > max_ranges:  # the highest range is forgotten
                start, end = runs(model)[-1]
                model -= set(range(start, end))
            assert learnt == bool(new)
        elif op == "advance":
            board.advance(a)
            model = {s for s in model if s >= a}
        else:
            board.clear()
            model.clear()
        check(board, model, max_ranges)


@SETTINGS
@given(st.lists(operation, max_size=40))
def test_scoreboard_matches_a_set_of_octets(ops: list[tuple[str, int, int]]) -> None:
    run_model(ops, MAX_RANGES)


@SETTINGS
@given(st.lists(operation, max_size=25))
def test_scoreboard_with_few_ranges_forgets_the_highest(ops: list[tuple[str, int, int]]) -> None:
    with mock.patch.object(scoreboard_module, "MAX_RANGES", 3):
        run_model(ops, 3)


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 4000), st.integers(1, 3)), min_size=1, max_size=200))
def test_scoreboard_memory_is_bounded(blocks: list[tuple[int, int]]) -> None:
    board = Scoreboard()
    for start, length in blocks:
        board.add(BASE + 5 * start, BASE + 5 * start + length)  # never adjacent: one range each
        assert len(board.ranges()) <= MAX_RANGES
    assert board.sacked_bytes == sum(e - s for s, e in board.ranges())


def test_scoreboard_empty_and_reversed_ranges_are_ignored() -> None:
    board = Scoreboard()
    assert not board.add(10, 10) and not board.add(10, 5)
    assert board.ranges() == [] and board.highest is None
    assert board.next_unsacked(0, 10) == (0, 10)
    assert board.add(10, 20) and not board.add(12, 18) and not board.add(10, 20)
    assert board.add(20, 25) and board.ranges() == [(10, 25)]  # adjacent ranges merge
    board.advance(15)
    assert board.ranges() == [(15, 25)] and board.sacked_bytes == 10
