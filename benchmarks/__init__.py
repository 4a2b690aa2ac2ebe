"""Throughput benchmarks for wipstack; run them with ``python -m benchmarks``.

Each benchmark module exposes ``run() -> None`` that measures and prints one table; add a
module to ``benchmarks.__main__.BENCHMARK_MODULES`` to include it in the default run.
"""
