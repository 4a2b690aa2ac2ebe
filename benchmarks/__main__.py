"""Run the benchmark modules: ``python -m benchmarks [name ...]`` (default: all of them).

Every ``bench_*.py`` module of this package is a benchmark: it exposes ``run() -> None``,
which measures and prints its own table.  New modules are picked up without editing this
file; ``bench_hotpaths`` runs first, the others in name order.
"""

from __future__ import annotations

import importlib
import pkgutil
import platform
import sys
from pathlib import Path

from wipstack import accel

FIRST = "bench_hotpaths"


def benchmark_modules() -> list[str]:
    """Names of the benchmark modules, ``bench_hotpaths`` first."""
    names = sorted(
        info.name for info in pkgutil.iter_modules([str(Path(__file__).parent)]) if info.name.startswith("bench_")
    )
    return sorted(names, key=lambda name: (name != FIRST, name))


def main(argv: list[str]) -> int:
    known = benchmark_modules()
    selected = argv or known
    unknown = [name for name in selected if name not in known]
    if unknown:
        print(f"unknown benchmark module(s): {', '.join(unknown)}; known: {', '.join(known)}")
        return 2
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}) on {platform.machine()}; "
        f"accel.IMPLEMENTATION = {accel.IMPLEMENTATION}"
    )
    for name in selected:
        module = importlib.import_module(f"benchmarks.{name}")
        title = (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""
        print(f"\n== {name}: {title}")
        module.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
