"""Hypothesis: absolute sequence numbers (``unwrap``) agree with RFC 9293 §3.4 modular comparison (``SeqNum``).

The connection unwraps each wire value once against a reference and then compares plain
integers; that is only sound if, for any two values less than 2**31 apart, the integer order
of the unwrapped numbers is the modular order of the wire numbers.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from wipstack.tcp.seq import HALF, MASK, MOD, SeqNum, seq_le, seq_lt, unwrap

SETTINGS = settings(max_examples=200, deadline=None)

wire = st.one_of(st.integers(0, MASK), st.sampled_from([0, 1, HALF - 1, HALF, HALF + 1, MASK - 1, MASK]))
# references are absolute: any non-negative size, wrapped many times over
reference = st.one_of(st.integers(0, 1 << 40), st.integers(0, MASK), st.sampled_from([0, MASK, MOD, 7 * MOD - 1]))
distance = st.integers(-(HALF - 1), HALF - 1)


@SETTINGS
@given(wire, reference)
def test_unwrap_is_congruent_and_nearest(w: int, ref: int) -> None:
    value = unwrap(w, ref)
    assert value % MOD == w
    assert -HALF <= value - ref < HALF  # the nearest representative (ties go below)
    assert unwrap(w + MOD, ref) == value  # only the residue matters


@SETTINGS
@given(reference, distance)
def test_unwrap_recovers_any_value_within_half_the_space(ref: int, d: int) -> None:
    target = ref + d
    assert unwrap(target & MASK, ref) == target


@SETTINGS
@given(reference, distance, distance)
def test_unwrapped_order_is_modular_order(ref: int, d1: int, d2: int) -> None:
    a, b = ref + d1, ref + d2
    if abs(a - b) >= HALF:
        return  # RFC 1982: the order of numbers 2**31 or more apart is undefined
    ua, ub = unwrap(a & MASK, ref), unwrap(b & MASK, ref)
    sa, sb = SeqNum(a), SeqNum(b)
    assert (ua < ub) == (sa < sb) == seq_lt(a & MASK, b & MASK)
    assert (ua <= ub) == (sa <= sb) == seq_le(a & MASK, b & MASK)
    assert (ua == ub) == (sa == sb)
    assert (ua > ub) == (sa > sb)
    assert sa - sb == ua - ub  # the signed distance


@SETTINGS
@given(wire, st.integers(-(1 << 40), 1 << 40))
def test_seqnum_arithmetic_wraps(w: int, n: int) -> None:
    s = SeqNum(w)
    assert int(s + n) == (w + n) & MASK
    after = s - n
    assert isinstance(after, SeqNum) and int(after) == (w - n) & MASK
    assert SeqNum(w + MOD) == s and hash(SeqNum(w + MOD)) == hash(s)
    assert s != w  # never equal to a bare int: compare wire values explicitly
    assert repr(s) == f"SeqNum({w})"


@SETTINGS
@given(wire, st.integers(1, HALF - 1))
def test_seqnum_successor_is_greater_across_the_wrap(w: int, n: int) -> None:
    assert SeqNum(w) < SeqNum(w + n)
    assert not SeqNum(w + n) < SeqNum(w)
    assert seq_le(w, w) and not seq_lt(w, w)


def test_half_the_space_apart_is_neither_less_nor_greater() -> None:
    # RFC 1982 §3.2: undefined; SeqNum says neither is less, unwrap picks the one below
    a, b = SeqNum(0), SeqNum(HALF)
    assert not seq_lt(0, HALF) and not seq_lt(HALF, 0)
    assert a != b and not a < b and not b < a
    assert unwrap(HALF, 0) == -HALF
