"""The sender's SACK scoreboard (RFC 2018, RFC 6675): which octets above SND.UNA the peer holds.

Ranges are absolute sequence numbers (see :mod:`wipstack.tcp.seq`), kept sorted, disjoint
and merged; at most :data:`MAX_RANGES` are remembered (a peer sends at most 4 blocks per
ACK, so this bounds memory whatever it sends).
"""

from __future__ import annotations

from bisect import bisect_left

MAX_RANGES = 64


class Scoreboard:
    """SACKed ranges above the cumulative ACK point."""

    __slots__ = ("_starts", "_ends", "sacked_bytes")

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        self.sacked_bytes = 0

    def __bool__(self) -> bool:
        return bool(self._starts)

    @property
    def highest(self) -> int | None:
        """The end of the highest SACKed range."""
        return self._ends[-1] if self._ends else None

    def ranges(self) -> list[tuple[int, int]]:
        """The ranges, lowest first."""
        return list(zip(self._starts, self._ends, strict=True))

    def add(self, start: int, end: int) -> bool:
        """Record that the peer holds [start, end); True if anything new was learnt."""
        if end <= start:
            return False
        i = bisect_left(self._ends, start)  # first range that ends at or after start
        j = i
        new_start, new_end = start, end
        while j < len(self._starts) and self._starts[j] <= end:
            new_start = min(new_start, self._starts[j])
            new_end = max(new_end, self._ends[j])
            j += 1
        old = sum(self._ends[k] - self._starts[k] for k in range(i, j))
        if j - i == 1 and self._starts[i] == new_start and self._ends[i] == new_end:
            return False
        self._starts[i:j] = [new_start]
        self._ends[i:j] = [new_end]
        self.sacked_bytes += (new_end - new_start) - old
        if len(self._starts) > MAX_RANGES:  # forget the highest: it is the least urgent
            self.sacked_bytes -= self._ends.pop() - self._starts.pop()
        return True

    def advance(self, una: int) -> None:
        """SND.UNA moved to ``una``: forget everything below it."""
        while self._starts and self._ends[0] <= una:
            self.sacked_bytes -= self._ends[0] - self._starts[0]
            del self._starts[0], self._ends[0]
        if self._starts and self._starts[0] < una:
            self.sacked_bytes -= una - self._starts[0]
            self._starts[0] = una

    def clear(self) -> None:
        """Forget everything (the peer reneged, or the connection restarts)."""
        self._starts.clear()
        self._ends.clear()
        self.sacked_bytes = 0

    def is_sacked(self, seq: int) -> int | None:
        """If ``seq`` is SACKed, the end of its range; else None."""
        i = bisect_left(self._ends, seq + 1)
        if i < len(self._starts) and self._starts[i] <= seq:
            return self._ends[i]
        return None

    def next_unsacked(self, seq: int, limit: int) -> tuple[int, int] | None:
        """The first hole [start, end) at or above ``seq`` and below ``limit``, or None."""
        while seq < limit:
            end = self.is_sacked(seq)
            if end is None:
                i = bisect_left(self._starts, seq + 1)
                hole_end = self._starts[i] if i < len(self._starts) else limit
                return seq, min(hole_end, limit)
            seq = end
        return None

    def sacked_between(self, start: int, end: int) -> int:
        """SACKed octets inside [start, end)."""
        total = 0
        for s, e in zip(self._starts, self._ends, strict=True):
            if e <= start:
                continue
            if s >= end:
                break
            total += min(e, end) - max(s, start)
        return total
