"""The injected source of randomness (magic numbers, ISNs, IP IDs, ports).

The core never creates its own: drivers and tests pass in a ``random.Random`` (seeded for
reproducible runs) or anything else with these methods.
"""

from __future__ import annotations

from typing import Protocol


class RandomSource(Protocol):
    """What the core needs from a random generator."""

    def randrange(self, start: int, stop: int = ..., step: int = ...) -> int:
        """A random integer in ``range(start, stop, step)``."""

    def getrandbits(self, k: int) -> int:
        """A random integer of ``k`` bits."""
