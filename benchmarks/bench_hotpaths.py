"""Hot paths, C vs pure Python (MB/s), and raw pty throughput for comparison.

Every row times one workload on both implementations (``wipstack._py`` and ``wipstack_c``
loaded explicitly, whatever ``wipstack.accel`` selected) with ``time.perf_counter``: a
calibration call, then batches of about 20 ms until the row's time budget is spent,
keeping the best batch.  The whole run takes a few seconds.
"""

from __future__ import annotations

import os
import random
import select
import termios
import threading
import time
import tty
from collections.abc import Callable
from types import ModuleType, SimpleNamespace
from typing import Any

from wipstack import accel

ROW_BUDGET_SECONDS = 0.15
BATCH_SECONDS = 0.02
PTY_BYTES = 8 * 1024 * 1024
PTY_TIME_LIMIT_SECONDS = 1.0
FRAME_SIZE = 1500

Operation = Callable[[], int]  # does the work once, returns the payload octets processed


def implementation(modules: dict[str, ModuleType], name: str) -> SimpleNamespace:
    namespace = SimpleNamespace(name=name)
    for module_name, module in modules.items():
        for attribute in accel.public_names(accel.PY_MODULES[module_name]):
            setattr(namespace, attribute, getattr(module, attribute))
    return namespace


def throughputs(operations: list[Operation], budget: float = ROW_BUDGET_SECONDS) -> list[float]:
    """Best observed MB/s (10**6 octets per second) of each operation.

    Batches of the operations alternate, so a change of CPU speed or a noisy neighbour
    during the row affects all of them alike and their ratio stays meaningful.
    """
    octets: list[int] = []
    calls: list[int] = []
    for operation in operations:
        started = time.perf_counter()
        octets.append(operation())
        single = max(time.perf_counter() - started, 1e-9)
        calls.append(max(1, int(BATCH_SECONDS / single)))
    best = [float("inf")] * len(operations)
    deadline = time.perf_counter() + budget * len(operations)
    while True:
        for index, operation in enumerate(operations):
            started = time.perf_counter()
            for _ in range(calls[index]):
                operation()
            best[index] = min(best[index], (time.perf_counter() - started) / calls[index])
        if time.perf_counter() >= deadline:
            return [count / seconds / 1e6 for count, seconds in zip(octets, best, strict=True)]


def checksum_workload(impl: SimpleNamespace, size: int) -> Operation:
    data = random.Random(size).randbytes(size)
    inet_checksum = impl.inet_checksum

    def operation() -> int:
        inet_checksum(data)
        return size

    return operation


def fcs_workload(impl: SimpleNamespace, function: str) -> Operation:
    data = random.Random(16).randbytes(FRAME_SIZE)
    fcs = getattr(impl, function)

    def operation() -> int:
        fcs(data)
        return FRAME_SIZE

    return operation


def random_frames(count: int = 16) -> list[bytes]:
    rng = random.Random(1662)
    return [b"\xff\x03\x00\x21" + rng.randbytes(FRAME_SIZE - 4) for _ in range(count)]


def round_trip_workload(impl: SimpleNamespace, accm: int) -> Operation:
    """hdlc_encode each 1500-octet frame, feed it to a deframer; both sides use ``accm``."""
    frames = random_frames()
    deframer = impl.HdlcDeframer(rx_accm=accm)
    encode, feed = impl.hdlc_encode, deframer.feed
    total = sum(map(len, frames))
    if [frame for payload in frames for frame in feed(encode(payload, accm))] != frames:
        raise AssertionError(f"{impl.name}: HDLC round trip lost frames")

    def operation() -> int:
        for payload in frames:
            feed(encode(payload, accm))
        return total

    return operation


def deframe_workload(impl: SimpleNamespace, read_size: int = 4096) -> Operation:
    """Deframe an already framed stream delivered in ``read_size`` reads, as from a pty."""
    frames = random_frames()
    stream = b"".join(impl.hdlc_encode(frame) for frame in frames)
    reads = [stream[start : start + read_size] for start in range(0, len(stream), read_size)]
    deframer = impl.HdlcDeframer()
    feed = deframer.feed
    total = sum(map(len, frames))

    def operation() -> int:
        for chunk in reads:
            feed(chunk)
        return total

    return operation


def assembler_workload(impl: SimpleNamespace, segment: int = 1460, group: int = 4) -> Operation:
    """64 KiB window; each group of ``group`` segments arrives in reverse order, then is read."""
    rng = random.Random(9293)
    segments = [rng.randbytes(segment) for _ in range(44)]
    assembler = impl.Assembler(65536, 16)
    total = segment * len(segments)

    def operation() -> int:
        received = 0
        for first in range(0, len(segments), group):
            batch = segments[first : first + group]
            for position in range(len(batch) - 1, -1, -1):
                assembler.add(position * segment, batch[position])
            received += len(assembler.read())
        if received != total:
            raise AssertionError(f"{impl.name}: assembler returned {received} of {total} octets")
        return total

    return operation


def pty_throughput(to_slave: bool) -> float:
    """MB/s through a raw pty pair: a writer thread pushes data, this thread counts it."""
    master, slave = os.openpty()
    tty.setraw(slave, termios.TCSANOW)  # no echo, no CR/LF mapping, no XON/XOFF handling
    source, sink = (master, slave) if to_slave else (slave, master)
    os.set_blocking(source, False)
    chunk = random.Random(0).randbytes(4096)
    stop = threading.Event()

    def writer() -> None:
        sent = 0
        while sent < PTY_BYTES and not stop.is_set():
            if select.select([], [source], [], 0.05)[1]:
                try:
                    sent += os.write(source, chunk)
                except BlockingIOError:
                    continue

    thread = threading.Thread(target=writer, daemon=True)
    received = 0
    started = time.perf_counter()
    thread.start()
    try:
        while received < PTY_BYTES and time.perf_counter() - started < PTY_TIME_LIMIT_SECONDS:
            if select.select([sink], [], [], 0.05)[0]:
                received += len(os.read(sink, 65536))
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
        thread.join()
        os.close(master)
        os.close(slave)
    return received / elapsed / 1e6


def rows(py: SimpleNamespace, c: SimpleNamespace | None) -> list[tuple[str, float, float | None]]:
    workloads: list[tuple[str, Callable[[SimpleNamespace], Operation]]] = [
        ("inet_checksum 1500 B", lambda impl: checksum_workload(impl, 1500)),
        ("inet_checksum 64 KiB", lambda impl: checksum_workload(impl, 65536)),
        ("fcs16 1500 B", lambda impl: fcs_workload(impl, "fcs16")),
        ("fcs32 1500 B", lambda impl: fcs_workload(impl, "fcs32")),
        ("HDLC encode+deframe 1500 B, ACCM ffffffff", lambda impl: round_trip_workload(impl, 0xFFFFFFFF)),
        ("HDLC encode+deframe 1500 B, ACCM 0", lambda impl: round_trip_workload(impl, 0)),
        ("HDLC deframe only, 4 KiB reads", deframe_workload),
        ("Assembler add/read out of order", assembler_workload),
    ]
    results: list[tuple[str, float, float | None]] = []
    for label, make in workloads:
        rates = throughputs([make(py)] + ([make(c)] if c is not None else []))
        results.append((label, rates[0], rates[1] if c is not None else None))
    return results


def print_table(header: tuple[str, ...], table: list[tuple[Any, ...]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *table, strict=True)]
    line = "  ".join("-" * width for width in widths)
    print("  ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True)))
    print(line)
    for row in table:
        numbers = [str(cell).rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        print("  ".join([str(row[0]).ljust(widths[0]), *numbers]))


def run() -> None:
    py = implementation(dict(accel.PY_MODULES), "py")
    c_modules, reason = accel.load_c_modules()
    c = implementation(c_modules, "c") if c_modules is not None else None
    if c is None:
        print(f"C extensions unavailable ({reason}); pure Python only")
    results = rows(py, c)
    table = [
        (
            label,
            f"{python_rate:,.1f}",
            f"{c_rate:,.1f}" if c_rate is not None else "n/a",
            f"{c_rate / python_rate:,.1f}x" if c_rate is not None else "n/a",
        )
        for label, python_rate, c_rate in results
    ]
    to_slave, to_master = pty_throughput(to_slave=True), pty_throughput(to_slave=False)
    table.append(("raw pty, master -> slave", f"{to_slave:,.1f}", "", ""))
    table.append(("raw pty, slave -> master", f"{to_master:,.1f}", "", ""))
    print_table(("benchmark (MB/s)", "py", "c", "c/py"), table)
    pty_rate = min(to_slave, to_master)
    for label, python_rate, c_rate in results:
        if label.startswith("HDLC encode+deframe"):
            for name, rate in (("C", c_rate), ("pure-Python", python_rate)):
                if rate is None:
                    continue
                verdict = "faster" if rate > pty_rate else "NOT faster"
                print(
                    f"{name} framing ({label[20:]}): {rate:,.1f} MB/s is {verdict} than the pty ({pty_rate:,.1f} MB/s)"
                )
