"""Sequence numbers (RFC 9293 §3.4): modular 32-bit arithmetic, and unwrapping to absolute values.

On the wire a sequence number is 32 bits and compares modulo 2**32 (``SeqNum``).  Inside a
connection wipstack keeps *absolute* sequence numbers (Python ints that keep growing past
2**32): :func:`unwrap` turns a wire value into the absolute value nearest a reference, which
is exactly the modular comparison, done once per segment, after which every comparison is a
plain integer comparison.
"""

from __future__ import annotations

from functools import total_ordering

MOD = 1 << 32
MASK = MOD - 1
HALF = 1 << 31


def unwrap(wire: int, reference: int) -> int:
    """The absolute number congruent to ``wire`` (mod 2**32) nearest to ``reference``."""
    return reference + ((wire - reference + HALF) & MASK) - HALF


def seq_lt(a: int, b: int) -> bool:
    """a < b in sequence space (RFC 9293 §3.4, modulo 2**32)."""
    return a != b and ((b - a) & MASK) < HALF


def seq_le(a: int, b: int) -> bool:
    """a =< b in sequence space."""
    return ((b - a) & MASK) < HALF


@total_ordering
class SeqNum:
    """A 32-bit sequence number with modular comparison, for users of the wire values."""

    __slots__ = ("value",)

    def __init__(self, value: int) -> None:
        self.value = value & MASK

    def __add__(self, n: int) -> SeqNum:
        return SeqNum(self.value + n)

    def __sub__(self, other: SeqNum | int) -> int | SeqNum:
        if isinstance(other, SeqNum):
            return ((self.value - other.value + HALF) & MASK) - HALF  # signed distance
        return SeqNum(self.value - other)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SeqNum) and other.value == self.value

    def __hash__(self) -> int:
        return hash(self.value)

    def __lt__(self, other: SeqNum) -> bool:
        return seq_lt(self.value, other.value)

    def __int__(self) -> int:
        return self.value

    def __repr__(self) -> str:
        return f"SeqNum({self.value})"
