"""IPv4/UDP over TUN: ping RTT and UDP datagrams/s to and from wipstack, C vs pure Python.

Needs root and /dev/net/tun (it prints why and returns otherwise).  For each implementation
a worker process (``benchmarks._ip_worker``; ``WIPSTACK_NO_EXTENSIONS=1`` for pure Python,
which ``wipstack.accel`` reads at import) creates a network namespace of its own and a TUN
device whose kernel side is in it (kernel 192.0.2.1, wipstack 192.0.2.2, TEST-NET-1), and runs
``Stack`` + ``NetLoop`` + ``TunPort``.  Both workers stay up and the workloads alternate
between them, so a change of machine speed during the run affects C and pure Python alike:

* ping RTT: iputils ``ping -c 200 -i 0.005 -q`` from the namespace to wipstack, and to the
  kernel's own address in the same namespace for comparison;
* UDP kernel -> wipstack, windowed: a Python sender in the namespace keeps at most 384
  datagrams unacknowledged (wipstack's receiving socket returns a cumulative count every
  32), so the kernel's TUN queue (500 packets) never overflows, yet holds more than one
  ``TunPort`` read round (256); the rate is what arrives at wipstack, between the first and
  the last datagram;
* UDP kernel -> wipstack, unpaced: the same sender as fast as it can; the loss is the
  kernel dropping at its full TUN queue, the rate is again what wipstack received;
* UDP wipstack -> kernel: wipstack sends through ``NetLoop.call`` batches of 256, a Python
  receiver in the namespace counts (rate between its first and last arrival);
* UDP echo: the namespace is the client with 32 requests in flight, wipstack echoes from its
  socket's ``on_datagram`` callback; transactions per second.

Each UDP workload is bounded to 30,000 datagrams and 1.5 s and runs ``ROUNDS`` (3) times per
implementation, each ping twice (best round shown; loss summed over the rounds).  Besides
the rates, the second table gives the CPU time wipstack's NetLoop thread spent per datagram
(per transaction for echo), syscalls included: unlike a rate it hardly moves when another
process takes a CPU away, so its ratio is the steadier C-vs-Python figure.  Payloads are
random octets (an all-zero one makes the pure-Python checksum look three times cheaper).
The whole run takes 35-45 s.  Timing is printed, never judged.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_hotpaths import print_table

ROOT = Path(__file__).resolve().parents[1]
IMPLEMENTATIONS = ("c", "py")
ROUNDS = 3  # of each UDP workload per implementation
PING_ROUNDS = 2
PING = {"count": 200, "interval": 0.005}
UDP = {"count": 30_000, "seconds": 1.5}
WINDOW, ACK_EVERY, ECHO_WINDOW = 384, 32, 32
KERNEL, WIPSTACK = "192.0.2.1", "192.0.2.2"
# unpaced: only the few thousand datagrams the kernel's full TUN queue lets through are timed,
# over a fraction of a second, so its rate and CPU cost say nothing about C vs pure Python
NOT_COMPARED = frozenset({"in_unpaced"})

# (key, label, command, rounds)
WORKLOADS: list[tuple[str, str, dict[str, Any], int]] = [
    ("ping", "ping RTT to wipstack (ms)", {"op": "ping", "target": WIPSTACK, **PING}, PING_ROUNDS),
    ("ping_kernel", "ping RTT to the kernel's own address (ms)", {"op": "ping", "target": KERNEL, **PING}, PING_ROUNDS),
    *[
        (
            f"in_{size}",
            f"UDP kernel -> wipstack, {size} B, windowed (dgram/s)",
            {"op": "udp_in", "size": size, "window": WINDOW, "ack_every": ACK_EVERY, **UDP},
            ROUNDS,
        )
        for size in (64, 1400)
    ],
    (
        "in_unpaced",
        "UDP kernel -> wipstack, 64 B, unpaced (dgram/s arriving)",
        {"op": "udp_in", "size": 64, "window": 0, "ack_every": 0, **UDP},
        ROUNDS,
    ),
    *[
        (f"out_{size}", f"UDP wipstack -> kernel, {size} B (dgram/s)", {"op": "udp_out", "size": size, **UDP}, ROUNDS)
        for size in (64, 1400)
    ],
    (
        "echo",
        "UDP echo, 64 B, 32 in flight (transactions/s)",
        {"op": "echo", "size": 64, "window": ECHO_WINDOW, **UDP},
        ROUNDS,
    ),
]


class WorkerProcess:
    """One ``benchmarks._ip_worker worker`` process, spoken to in JSON lines."""

    def __init__(self, implementation: str) -> None:
        self.implementation = implementation
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        env.pop("WIPSTACK_NO_EXTENSIONS", None)
        if implementation == "py":
            env["WIPSTACK_NO_EXTENSIONS"] = "1"
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close(), read on failures
        self.netns: str | None = None
        self.info: dict[str, Any] = {}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._ip_worker", "worker"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            bufsize=0,
        )

    def stderr_tail(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace").strip()[-800:]

    def read(self, timeout: float) -> dict[str, Any]:
        """The next answer (netns announcements are recorded on the way)."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.proc.stdout], [], [], remaining)[0]:
                raise TimeoutError(f"{self.implementation} worker did not answer within {timeout:.0f} s")
            line = self.proc.stdout.readline()
            if not line:
                self.proc.wait(10)
                status = self.proc.returncode
                raise RuntimeError(f"{self.implementation} worker exited ({status}): {self.stderr_tail()}")
            record: dict[str, Any] = json.loads(line)
            if record["event"] == "netns":
                self.netns = record["netns"]
                continue
            if record["event"] == "error":
                raise RuntimeError(f"{self.implementation} worker: {record['error']}")
            return record

    def start(self, timeout: float = 60) -> None:
        self.info = self.read(timeout)

    def request(self, command: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        return dict(self.read(timeout)["result"])

    def close(self) -> None:
        """Ask the worker to stop (it deletes its namespace); kill it by PID and clean up if it does not."""
        with contextlib.suppress(OSError):
            if self.proc.poll() is None and self.proc.stdin is not None:
                self.proc.stdin.write(b'{"op": "quit"}\n')
                self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # SIGKILL to this worker's PID
            self.proc.wait(10)
        if self.netns is not None and os.path.exists(f"/run/netns/{self.netns}"):
            remove_netns(self.netns)  # the worker died before its own clean-up
        self.stderr.close()


def remove_netns(name: str) -> None:
    """Kill what still runs in namespace ``name`` (by PID) and delete it."""
    pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, timeout=10, check=False).stdout
    for pid in pids.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10, check=False)


def unavailable_reason() -> str | None:
    sys.path.insert(0, str(ROOT))
    from tests.harness.netns import netns_tun_unavailable_reason

    return netns_tun_unavailable_reason()


def measure(workers: dict[str, WorkerProcess]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """results[key][implementation] = one result per round; workers alternate who goes first."""
    results: dict[str, dict[str, list[dict[str, Any]]]] = {key: {name: [] for name in workers} for key, *_ in WORKLOADS}
    failed: dict[str, str] = {}
    for round_number in range(max(rounds for *_, rounds in WORKLOADS)):
        for index, (key, _label, command, rounds) in enumerate(WORKLOADS):
            if round_number >= rounds:
                continue
            order = list(workers) if (round_number + index) % 2 == 0 else list(reversed(workers))
            for name in order:
                if name in failed:
                    continue
                timeout = 60.0 if command["op"] == "ping" else float(command["seconds"]) + 40
                try:
                    results[key][name].append(workers[name].request(dict(command), timeout))
                except (RuntimeError, TimeoutError, OSError) as exc:
                    failed[name] = str(exc)
                    print(f"{name} worker failed, its remaining workloads are skipped: {exc}")
    return results


def best(runs: list[dict[str, Any]], lower_is_better: bool = False) -> dict[str, Any] | None:
    usable = [r for r in runs if r.get("avg" if lower_is_better else "rate")]
    if not usable:
        return None
    if lower_is_better:
        return min(usable, key=lambda r: r["avg"])
    return max(usable, key=lambda r: r["rate"])


def loss(runs: list[dict[str, Any]]) -> str:
    if not runs:
        return "-"
    if "transactions" in runs[0]:
        lost = sum(r["lost"] for r in runs)
        total = sum(r["transactions"] + r["lost"] for r in runs)
    elif "transmitted" in runs[0]:
        total = sum(r["transmitted"] for r in runs)
        lost = total - sum(r["received"] for r in runs)
    else:
        total = sum(r["sent"] for r in runs)
        lost = total - sum(r["received"] for r in runs)
    return f"{100 * lost / total:.1f}%" if total else "-"


def table_rows(results: dict[str, dict[str, list[dict[str, Any]]]], names: list[str]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    kernel_runs = [r for name in names for r in results["ping_kernel"][name]]
    kernel = best(kernel_runs, lower_is_better=True)
    pings = {name: best(results["ping"][name], lower_is_better=True) for name in names}
    c, py = pings.get("c"), pings.get("py")
    ratio = f"{py['avg'] / c['avg']:.2f}x" if c and py else "n/a"
    rows.append(
        (
            "ping RTT avg (ms)",
            *[f"{p['avg']:.3f}" if p else "n/a" for p in pings.values()],
            ratio,
            f"{kernel['avg']:.3f}" if kernel else "n/a",
            " / ".join(loss(results["ping"][name]) for name in names),
        )
    )
    rows.append(
        (
            "ping RTT min / max (ms)",
            *[f"{p['min']:.3f} / {p['max']:.3f}" if p else "n/a" for p in pings.values()],
            "",
            f"{kernel['min']:.3f} / {kernel['max']:.3f}" if kernel else "n/a",
            "",
        )
    )
    for key, label, _command, _rounds in WORKLOADS:
        if key.startswith("ping"):
            continue
        figures = {name: best(results[key][name]) for name in names}
        c, py = figures.get("c"), figures.get("py")
        ratio = "-" if key in NOT_COMPARED else f"{c['rate'] / py['rate']:.2f}x" if c and py else "n/a"
        rows.append(
            (
                label,
                *[f"{f['rate']:,.0f}" if f else "n/a" for f in figures.values()],
                ratio,
                "",
                " / ".join(loss(results[key][name]) for name in names),
            )
        )
    return rows


def cpu_rows(results: dict[str, dict[str, list[dict[str, Any]]]], names: list[str]) -> list[tuple[str, ...]]:
    """The lowest CPU cost per datagram over the rounds, per UDP workload."""
    rows: list[tuple[str, ...]] = []
    for key, label, _command, _rounds in WORKLOADS:
        if key.startswith("ping") or key in NOT_COMPARED:
            continue
        costs = {
            name: min((r["cpu_us"] for r in results[key][name] if r.get("cpu_us")), default=None) for name in names
        }
        c, py = costs.get("c"), costs.get("py")
        rows.append(
            (
                label[: label.rfind(" (")],
                *[f"{v:.1f}" if v else "n/a" for v in costs.values()],
                f"{py / c:.2f}x" if c and py else "n/a",
            )
        )
    return rows


def print_details(results: dict[str, dict[str, list[dict[str, Any]]]], names: list[str]) -> None:
    """Where the losses happened, per implementation (summed over the rounds)."""
    for name in names:
        notes = []
        for key in ("in_64", "in_1400", "in_unpaced"):
            runs = results[key][name]
            kernel_drops = sum(r["kernel_tun_tx_dropped"] for r in runs)
            stalls = sum(r["sender_stalls"] for r in runs)
            wipstack_drops: dict[str, int] = {}
            for r in runs:
                for reason, n in r["wipstack_drops"].items():
                    wipstack_drops[reason] = wipstack_drops.get(reason, 0) + n
            notes.append(
                f"{key}: kernel TUN queue drops {kernel_drops}, sender stalls {stalls}, "
                f"wipstack drops {wipstack_drops or 0}"
            )
        for key in ("out_64", "out_1400"):
            runs = results[key][name]
            sender = max((r["sender_rate"] for r in runs), default=0.0)
            drops: dict[str, int] = {}
            for r in runs:
                for reason, n in r["wipstack_drops"].items():
                    drops[reason] = drops.get(reason, 0) + n
            notes.append(f"{key}: wipstack send rate {sender:,.0f}/s, wipstack drops {drops or 0}")
        echo = results["echo"][name]
        notes.append(
            f"echo: stalls {sum(r['stalls'] for r in echo)}, mismatched replies {sum(r['mismatched'] for r in echo)}"
        )
        print(f"{name}: " + "; ".join(notes))


def run() -> None:
    """Print the table (or why it cannot be measured here)."""
    reason = unavailable_reason()
    if reason is not None:
        print(f"skipped: {reason}")
        return
    started = time.monotonic()
    workers: dict[str, WorkerProcess] = {}
    try:
        for name in IMPLEMENTATIONS:
            workers[name] = WorkerProcess(name)
        for name, worker in list(workers.items()):
            try:
                worker.start()
            except (RuntimeError, TimeoutError) as exc:
                print(f"{name} worker did not start: {exc}")
                worker.close()
                del workers[name]
        c_worker = workers.get("c")
        if c_worker is not None and c_worker.info.get("implementation") != "c":
            print(f"C extensions unavailable ({c_worker.info.get('c_unavailable_reason')}); pure Python only")
            c_worker.close()
            del workers["c"]
        if not workers:
            return
        results = measure(workers)
    finally:
        for worker in workers.values():
            worker.close()
    names = list(workers)
    info = next(iter(workers.values())).info
    columns = {"c": "C", "py": "pure Python"}
    print(
        f"TUN {info.get('tun')} in a namespace of its own per implementation; ping: {info.get('ping')}; "
        f"best of {PING_ROUNDS} pings and {ROUNDS} rounds of each UDP workload; "
        f"Linux {platform.release()}, {os.cpu_count()} CPUs"
    )
    print_table(
        ("metric", *[columns[name] for name in names], "C/py", "kernel", "loss " + " / ".join(names)),
        table_rows(results, names),
    )
    print("C/py: rates c/py, the ping time py/c (above 1: C is faster); unpaced: the loss is the figure,")
    print("its rate is timed over the few thousand datagrams the kernel's TUN queue let through")
    print()
    print_table(
        ("wipstack NetLoop thread CPU per datagram (µs)", *[columns[name] for name in names], "py/C"),
        cpu_rows(results, names),
    )
    print_details(results, names)
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    run()
