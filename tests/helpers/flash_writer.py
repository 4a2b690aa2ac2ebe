"""Save to a FileStore in a tight loop until killed; used by the kill -9 test in tests/unit/test_flash.py.

Usage: ``python tests/helpers/flash_writer.py <store path> [seed]`` (with the repository root on
``PYTHONPATH``).  For i = 0, 1, 2, ... it saves ``{"wipcfg": {"counter": i, "pad": "x" * n}}``
with a random ``n`` in 0..200000 (seeded, so runs are reproducible), then prints ``i`` and
flushes.  A printed ``i`` therefore means save ``i`` completed; save ``i + 1`` may be in flight.
"""

from __future__ import annotations

import itertools
import random
import sys

from wipstack.drivers.flash import FileStore

MAX_PAD = 200_000


def main(argv: list[str]) -> int:
    """Run the save loop forever (until a signal ends the process)."""
    if len(argv) not in (2, 3):
        print("usage: flash_writer.py <store path> [seed]", file=sys.stderr)
        return 2
    store = FileStore(argv[1])
    pad_sizes = random.Random(int(argv[2]) if len(argv) == 3 else 0)
    for counter in itertools.count():
        store.save({"wipcfg": {"counter": counter, "pad": "x" * pad_sizes.randint(0, MAX_PAD)}})
        print(counter, flush=True)
    return 0  # pragma: no cover - the loop only ends by a signal


if __name__ == "__main__":
    sys.exit(main(sys.argv))
