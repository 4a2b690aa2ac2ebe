"""TCP: bulk throughput over TUN and over PPP on a pty, and goodput on a slow lossy link, C vs pure Python vs Linux.

Needs root and /dev/net/tun (it prints why and returns otherwise).  Every wipstack runs in a
process of its own (``benchmarks._tcp_worker``; ``WIPSTACK_NO_EXTENSIONS=1`` for pure Python),
every kernel endpoint is a small Python client or server in a network namespace created for
the run (TEST-NET addresses only), and every namespace is deleted at the end, also on errors.

1. **Bulk over TUN.**  One worker per implementation: wipstack on two TUN devices whose kernel
   side is in the worker's namespace, MTU 1500 and MTU 65000 (MSS 1448 and 64948 with
   timestamps).  kernel -> wipstack: a kernel client sends to wipstack's discard service and
   half-closes; the rate runs from ``connect()`` to the FIN that wipstack sends once it has
   read everything.  wipstack -> kernel: a kernel client reads from a wipstack streaming
   source (``_tcp_worker.SourceService``); the rate runs from ``connect()`` to the last octet
   read.  Each run moves ``BULK_BYTES`` or stops queueing after ``BULK_SECONDS``; best of
   ``BULK_ROUNDS``, C and pure Python alternating.  Also the CPU time of wipstack's NetLoop
   thread per MB (steadier than a rate on a shared machine).  The kernel column is the same
   kernel client and server over a veth pair with the same MTU.
2. **wipstack <-> wipstack over PPP on a pty**: the worker holds the pty master (``PtyLink``),
   a second wipstack process of the same implementation opens the slave through pyserial
   (``SerialLink``), as ``wipstack demo`` does; LCP + IPCP, then TCP both ways, beside the raw
   throughput of a pty pair measured in the same run (``bench_hotpaths.pty_throughput``).
3. **Goodput on a GPRS-like link**: 80 kbit/s, 300 ms one-way delay each way (so at least
   600 ms RTT, plus 150 ms serialisation per 1500-octet datagram), 1% random loss each way, a
   rate-limiter queue of 16 datagrams (2.4 s of full-size datagrams) -- one
   ``wipstack.drivers.faults.FaultConfig`` per direction.  ``LOSSY_BYTES`` per transfer:

   * Linux against Linux: two namespaces whose TUN devices are joined by a relay process that
     pushes every datagram through a ``FaultInjector`` per direction (explicit ``now``),
     seeded as ``FaultyTunPort.wrap`` seeds its two injectors, so the n-th datagram of each
     direction meets the same fate in both set-ups;
   * wipstack (``FaultyTunPort`` around its ``TunPort``) against Linux, in both directions.

   kernel -> X: the kernel client sends and half-closes (connect() to the receiver's FIN);
   X -> kernel: the kernel client reads ``LOSSY_BYTES`` (connect() to the last octet).  All
   these transfers run at the same time (they use a few percent of a CPU), over
   ``len(LOSSY_SEEDS)`` seeds; the goodput is the total of the octets over the total of the
   times.  wipstack's goodput is compared with Linux's in the same direction: kernel ->
   wipstack differs from kernel -> kernel only in the receiver, wipstack -> kernel from
   kernel -> kernel only in the sender.

Linux's congestion control is pinned to ``CC`` (cubic) with ``TCP_CONGESTION`` on every kernel
socket of this benchmark, for runs that compare across machines and with wipstack's loss-based
NewReno/SACK sender.  Per socket, because a namespace's ``net.ipv4.tcp_congestion_control`` only
takes the host's ``tcp_allowed_congestion_control`` (EPERM otherwise), which the benchmark leaves
alone.  The namespace default is printed (BBR on the development VM) and measured too on the
lossy link, Linux against Linux only, for reference.
4. A cProfile of wipstack's loop thread (top 15 by tottime) for kernel -> wipstack, MTU 1500,
   C extensions, printed at the end.

The whole run takes about 2.5 minutes.  Timing is printed, never judged.
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

from benchmarks.bench_hotpaths import print_table, pty_throughput
from benchmarks.bench_ip import remove_netns, unavailable_reason

ROOT = Path(__file__).resolve().parents[1]
IMPLEMENTATIONS = ("c", "py")
COLUMNS = {"c": "C", "py": "pure Python"}
CC = "cubic"  # pinned per socket on every kernel endpoint (the default is printed beside it)
BULK_BYTES, BULK_SECONDS, BULK_ROUNDS = 200_000_000, 4.0, 3
BULK = [(1500, "in"), (1500, "out"), (65000, "in"), (65000, "out")]
VETH_BYTES, VETH_SECONDS = 2_000_000_000, 1.0
PPP_BYTES, PPP_SECONDS, PPP_ROUNDS = 100_000_000, 3.0, 2
PROFILE_BYTES, PROFILE_SECONDS = 50_000_000, 3.0
LOSSY = {"loss": 0.01, "delay": 0.3, "rate_bps": 80_000.0, "queue_limit": 16}
LOSSY_BYTES = 300_000
LOSSY_SEEDS = (1, 2, 3)
LOSSY_LIMIT = 150.0  # seconds a lossy transfer may take before it is abandoned
AIM = 0.9  # the aim: wipstack's goodput on the lossy link >= 90% of Linux's
ARROW = {"in": "kernel -> wipstack", "out": "wipstack -> kernel"}


class Proc:
    """A ``benchmarks._tcp_worker`` process speaking JSON lines; remembers the namespaces it made."""

    def __init__(self, implementation: str, *argv: str) -> None:
        self.implementation = implementation
        self.label = f"{argv[0]}[{implementation}] {' '.join(argv[1:3])}"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        env.pop("WIPSTACK_NO_EXTENSIONS", None)
        if implementation == "py":
            env["WIPSTACK_NO_EXTENSIONS"] = "1"
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self.namespaces: list[str] = []
        self.info: dict[str, Any] = {}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._tcp_worker", *argv],
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, bufsize=0,
        )  # fmt: skip

    def stderr_tail(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace").strip()[-600:]

    def read_line(self) -> dict[str, Any] | None:
        """One record (None for a netns announcement, which is recorded)."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(10)
            raise RuntimeError(f"{self.label} exited ({self.proc.returncode}): {self.stderr_tail()}")
        record: dict[str, Any] = json.loads(line)
        if record["event"] == "netns":
            self.namespaces.append(record["netns"])
            return None
        if record["event"] == "error":
            raise RuntimeError(f"{self.label}: {record['error']}")
        return record

    def read(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.proc.stdout], [], [], remaining)[0]:
                raise TimeoutError(f"{self.label} did not answer within {timeout:.0f} s")
            record = self.read_line()
            if record is not None:
                return record

    def request(self, command: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        return dict(self.read(timeout)["result"])

    def close(self, grace: float = 30.0) -> None:
        """Ask it to stop (it deletes its namespaces); after ``grace`` seconds SIGTERM (it still cleans up),
        then SIGKILL, to its PID."""
        with contextlib.suppress(OSError):
            if self.proc.poll() is None and self.proc.stdin is not None:
                self.proc.stdin.write(b'{"op": "quit"}\n')
                self.proc.stdin.close()
        for sig, wait in ((None, grace), (signal.SIGTERM, 15), (signal.SIGKILL, 10)):
            if sig is not None and self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(wait)
                break
        for name in self.namespaces:
            if os.path.exists(f"/run/netns/{name}"):
                remove_netns(name)  # it died before its own clean-up
        self.stderr.close()


# ---------------------------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------------------------


def one_shots(specs: list[tuple[str, list[str]]], timeout: float) -> list[dict[str, Any] | str]:
    """Run ``_tcp_worker`` one-transfer processes at the same time; a result or an error text each."""
    procs = [Proc(implementation, *argv) for implementation, argv in specs]
    results: list[dict[str, Any] | str | None] = [None] * len(procs)
    deadline = time.monotonic() + timeout
    try:
        while any(r is None for r in results) and time.monotonic() < deadline:
            waiting: dict[Any, int] = {p.proc.stdout: i for i, p in enumerate(procs) if results[i] is None}
            ready = select.select(list(waiting), [], [], max(0.0, min(1.0, deadline - time.monotonic())))[0]
            for stream in ready:
                i = waiting[stream]
                try:
                    record = procs[i].read_line()
                except (RuntimeError, ValueError) as exc:
                    results[i] = str(exc)
                    continue
                if record is not None:
                    results[i] = dict(record["result"])
    finally:
        for proc, result in zip(procs, results, strict=True):
            proc.close(grace=10 if result is not None else 0)  # one-shots exit by themselves after their result
    return [
        r if r is not None else f"{p.label}: no result within {timeout:.0f} s"
        for r, p in zip(results, procs, strict=True)
    ]


def measure_workers(workers: dict[str, Proc]) -> dict[str, Any]:
    """Bulk over TUN and PPP rounds, C and pure Python alternating; the profile last."""
    bulk: dict[tuple[int, str], dict[str, list[dict[str, Any]]]] = {key: {n: [] for n in workers} for key in BULK}
    ppp: dict[str, dict[str, list[dict[str, Any]]]] = {d: {n: [] for n in workers} for d in ("out", "in")}
    failed: dict[str, str] = {}

    def ask(name: str, command: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        if name in failed:
            return None
        try:
            return workers[name].request(command, timeout)
        except (RuntimeError, TimeoutError, OSError) as exc:
            failed[name] = str(exc)
            print(f"{name} worker failed, its remaining workloads are skipped: {exc}")
            return None

    for round_number in range(BULK_ROUNDS):
        for index, (mtu, direction) in enumerate(BULK):
            order = list(workers) if (round_number + index) % 2 == 0 else list(reversed(workers))
            for name in order:
                command = {"op": f"tcp_{direction}", "mtu": mtu, "nbytes": BULK_BYTES, "seconds": BULK_SECONDS}
                result = ask(name, command, BULK_SECONDS + 60)
                if result is not None:
                    bulk[(mtu, direction)][name].append(result)
    pty = {  # MB/s -> bit/s
        "master -> slave": pty_throughput(to_slave=True) * 8e6,
        "slave -> master": pty_throughput(to_slave=False) * 8e6,
    }
    for round_number in range(PPP_ROUNDS):
        for index, direction in enumerate(ppp):
            order = list(workers) if (round_number + index) % 2 == 0 else list(reversed(workers))
            for name in order:
                command = {"op": "ppp", "direction": direction, "nbytes": PPP_BYTES, "seconds": PPP_SECONDS}
                result = ask(name, command, PPP_SECONDS + 60)
                if result is not None:
                    ppp[direction][name].append(result)
    profiled = "c" if "c" in workers else next(iter(workers))
    command = {"op": "tcp_in", "mtu": 1500, "nbytes": PROFILE_BYTES, "seconds": PROFILE_SECONDS, "profile": True}
    profile = ask(profiled, command, PROFILE_SECONDS + 60)
    return {"bulk": bulk, "ppp": ppp, "pty": pty, "profile": profile, "profiled": profiled}


def measure_veth() -> dict[tuple[int, str], dict[str, Any] | str]:
    """The kernel against itself over veth, one transfer per row (nothing else runs meanwhile)."""
    out: dict[tuple[int, str], dict[str, Any] | str] = {}
    for mtu, direction in BULK:
        argv = ["kernel-veth", "--direction", direction, "--mtu", str(mtu), "--bytes", str(VETH_BYTES),
                "--seconds", str(VETH_SECONDS), "--cc", CC, "--limit", "30"]  # fmt: skip
        out[(mtu, direction)] = one_shots([("c", argv)], 60)[0]
    return out


def lossy_specs() -> list[tuple[str, str, str, list[str]]]:
    """(setup, direction, implementation, argv) of every lossy transfer."""
    specs = []
    faults = json.dumps(LOSSY)
    for seed in LOSSY_SEEDS:
        for direction in ("in", "out"):
            common = ["--direction", direction, "--bytes", str(LOSSY_BYTES), "--seed", str(seed), "--faults", faults,
                      "--limit", str(LOSSY_LIMIT)]  # fmt: skip
            specs.append(("kernel", direction, "c", ["lossy-kernel", *common, "--cc", CC]))
            specs.append(("kernel-default", direction, "c", ["lossy-kernel", *common, "--cc", ""]))
            for implementation in IMPLEMENTATIONS:
                specs.append((implementation, direction, implementation, ["lossy-wip", *common, "--cc", CC]))
    return specs


def measure_lossy() -> dict[tuple[str, str], list[dict[str, Any] | str]]:
    specs = lossy_specs()
    results = one_shots([(impl, argv) for _, _, impl, argv in specs], LOSSY_LIMIT + 30)
    out: dict[tuple[str, str], list[dict[str, Any] | str]] = {}
    for (setup, direction, _, _), result in zip(specs, results, strict=True):
        out.setdefault((setup, direction), []).append(result)
    return out


# ---------------------------------------------------------------------------------------------
# reporting
# ---------------------------------------------------------------------------------------------


def mbps(bps: float | None) -> str:
    return "n/a" if not bps else f"{bps / 1e6:,.0f}" if bps >= 100e6 else f"{bps / 1e6:,.1f}"


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "n/a"


def best(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    usable = [r for r in runs if r.get("rate")]
    return max(usable, key=lambda r: r["rate"]) if usable else None


def cpu_per_mb(runs: list[dict[str, Any]]) -> float | None:
    """The lowest NetLoop-thread CPU milliseconds per MB over the rounds."""
    costs = [r["cpu"] / (r["bytes"] / 1e6) * 1e3 for r in runs if r.get("bytes") and r.get("cpu")]
    return min(costs) if costs else None


def goodput(runs: list[dict[str, Any] | str]) -> tuple[float | None, str]:
    """Total octets * 8 / total seconds of the transfers that completed; and a note of those that did not."""
    done = [r for r in runs if isinstance(r, dict) and r.get("bytes") == LOSSY_BYTES and r.get("elapsed")]
    failed = [r for r in runs if not (isinstance(r, dict) and r in done)]
    rate = sum(r["bytes"] for r in done) * 8 / sum(r["elapsed"] for r in done) if done else None
    note = f"{len(failed)} of {len(runs)} incomplete" if failed else ""
    return rate, note


def lossy_details(direction: str, runs: list[dict[str, Any] | str]) -> str:
    """Per transfer: time, goodput, what the impairment did to the data direction, the sender's retransmissions."""
    parts = []
    for r in runs:
        if not isinstance(r, dict):
            parts.append(f"error: {r[:300]}")
            continue
        data = r.get("faults", {}).get("inbound" if direction == "in" else "outbound", {})
        wip = r.get("wipstack", {})
        if direction == "in":  # the kernel client sent
            sender = f"{r.get('cc')} retrans {r.get('total_retrans')}"
        elif "server" in r:  # Linux against Linux: the kernel server sent
            sender = f"{r['server'].get('cc')} retrans {r['server'].get('total_retrans')}"
        else:
            sender = f"wipstack retrans {wip.get('retransmitted')}, RTOs {wip.get('timeouts')}"
        parts.append(
            f"{r['elapsed']:.1f} s = {r['bytes'] * 8 / r['elapsed'] / 1e3:.1f} kbit/s (data direction: "
            f"{data.get('lost', '?')} lost, {data.get('queue_drops', '?')} queue drops; sender {sender})"
        )
    return "; ".join(parts)


def run() -> None:
    """Measure and print (or say why it cannot run here)."""
    reason = unavailable_reason()
    if reason is not None:
        print(f"skipped: {reason}")
        return
    started = time.monotonic()
    workers: dict[str, Proc] = {}
    try:
        for name in IMPLEMENTATIONS:
            workers[name] = Proc(name, "worker", "--cc", CC)
        for name, worker in list(workers.items()):
            try:
                worker.info = worker.read(60)
            except (RuntimeError, TimeoutError) as exc:
                print(f"{name} worker did not start: {exc}")
                worker.close()
                del workers[name]
        c_worker = workers.get("c")
        if c_worker is not None and c_worker.info.get("implementation") != "c":
            print("C extensions unavailable; pure Python only")
            c_worker.close()
            del workers["c"]
        if not workers:
            return
        info = next(iter(workers.values())).info
        veth = measure_veth()
        measured = measure_workers(workers)
    finally:
        for worker in workers.values():
            worker.close()
    names = list(workers)
    lossy_started = time.monotonic()
    lossy = measure_lossy()
    lossy_seconds = time.monotonic() - lossy_started
    report(names, info, veth, measured, lossy, lossy_seconds)
    print(f"({time.monotonic() - started:.0f} s)")


def report(
    names: list[str],
    info: dict[str, Any],
    veth: dict[tuple[int, str], dict[str, Any] | str],
    measured: dict[str, Any],
    lossy: dict[tuple[str, str], list[dict[str, Any] | str]],
    lossy_seconds: float,
) -> None:
    columns = [COLUMNS[n] for n in names]
    default_runs = [r for runs in lossy.values() for r in runs if isinstance(r, dict) and r.get("cc_default")]
    print(
        f"Linux {platform.release()}, {os.cpu_count()} CPUs; kernel congestion control pinned to {CC} per socket "
        f"(the namespaces' default, net.ipv4.tcp_congestion_control: {info.get('cc_default')}); "
        f"TUN {', '.join(info.get('tun', []))} in one namespace per implementation"
    )
    final: list[tuple[str, ...]] = []

    # ---- 1. bulk over TUN
    print(f"\n1. Bulk TCP over TUN, {BULK_BYTES // 1_000_000} MB or {BULK_SECONDS:g} s per run, best of {BULK_ROUNDS}")
    rows: list[tuple[str, ...]] = []
    cpu_rows: list[tuple[str, ...]] = []
    for mtu, direction in BULK:
        runs = measured["bulk"][(mtu, direction)]
        figures = {n: best(runs[n]) for n in names}
        rates = {n: (f["rate"] if f else None) for n, f in figures.items()}
        ref = veth.get((mtu, direction))
        kernel = ref["rate"] if isinstance(ref, dict) else None
        label = f"{ARROW[direction]}, MTU {mtu} (Mbit/s)"
        row = (label, *[mbps(rates[n]) for n in names], ratio(rates.get("c"), rates.get("py")), mbps(kernel))
        rows.append(row)
        final.append((*row, "-"))
        costs = {n: cpu_per_mb(runs[n]) for n in names}
        cpu_rows.append((f"{ARROW[direction]}, MTU {mtu}", *[f"{costs[n]:.1f}" if costs[n] else "n/a" for n in names],
                         ratio(costs.get("py"), costs.get("c"))))  # fmt: skip
    print_table(("metric", *columns, "C/py", "kernel (veth)"), rows)
    print()
    print_table(("NetLoop thread CPU per MB (ms)", *columns, "py/C"), cpu_rows)
    for (mtu, direction), ref in veth.items():
        if not isinstance(ref, dict):
            print(f"kernel over veth, MTU {mtu} {direction}: {ref}")
    for name in names:
        notes = []
        for (mtu, direction), runs in measured["bulk"].items():
            f = best(runs[name])
            if f:
                notes.append(f"{direction}/{mtu}: {f['bytes'] / 1e6:.0f} MB in {f['elapsed']:.2f} s, kernel retrans "
                             f"{f.get('total_retrans')}, wipstack retrans {f['wipstack'].get('retransmitted')}, "
                             f"drops {f.get('drops') or 0}")  # fmt: skip
        print(f"{name}: " + "; ".join(notes))

    # ---- 2. PPP on a pty
    pty = measured["pty"]
    print(f"\n2. TCP wipstack <-> wipstack over PPP on a pty pair (two processes), {PPP_SECONDS:g} s per run, "
          f"best of {PPP_ROUNDS}")  # fmt: skip
    rows = []
    pty_rate = min(pty.values())
    for direction, label in (("out", "master -> slave"), ("in", "slave -> master")):
        figures = {n: best(measured["ppp"][direction][n]) for n in names}
        rates = {n: (f["rate"] if f else None) for n, f in figures.items()}
        row = (f"TCP over PPP, {label} (Mbit/s)", *[mbps(rates[n]) for n in names],
               ratio(rates.get("c"), rates.get("py")), f"{mbps(pty[label])} raw pty")  # fmt: skip
        rows.append(row)
        share = " / ".join(f"{(rates[n] or 0) / pty[label]:.0%}" for n in names)
        final.append((*row, f"- ({share} of raw pty)"))
    print_table(("metric", *columns, "C/py", "same run"), rows)
    print(f"raw pty (bench_hotpaths.pty_throughput): {', '.join(f'{k} {mbps(v)} Mbit/s' for k, v in pty.items())}; "
          f"slowest {mbps(pty_rate)} Mbit/s")  # fmt: skip

    # ---- 3. lossy link
    print(
        f"\n3. Goodput over a GPRS-like link: {LOSSY['rate_bps'] / 1e3:g} kbit/s, {LOSSY['delay'] * 1e3:g} ms one way "
        f"(RTT >= {2 * LOSSY['delay'] * 1e3:g} ms), {LOSSY['loss']:.0%} loss, queue {LOSSY['queue_limit']} datagrams, "
        f"each direction; {LOSSY_BYTES // 1000} KB per transfer, seeds {', '.join(map(str, LOSSY_SEEDS))}, "
        f"all at once ({lossy_seconds:.0f} s)"
    )
    rows = []
    for direction in ("in", "out"):
        kernel, kernel_note = goodput(lossy.get(("kernel", direction), []))
        default, default_note = goodput(lossy.get(("kernel-default", direction), []))
        rates = {}
        notes = []
        for n in names:
            rates[n], note = goodput(lossy.get((n, direction), []))
            if note:
                notes.append(f"{n}: {note}")
        label = f"{ARROW[direction]} goodput (kbit/s)"
        kbps = {n: f"{rate / 1e3:.1f}" if (rate := rates[n]) else "n/a" for n in names}
        shares = " / ".join(f"{(rates[n] or 0) / kernel:.0%}" if kernel else "n/a" for n in names)
        kernel_text = f"{kernel / 1e3:.1f}" if kernel else f"n/a {kernel_note}"
        row = (label, *kbps.values(), ratio(rates.get("c"), rates.get("py")), kernel_text)
        rows.append((*row, shares, f"{default / 1e3:.1f}" if default else f"n/a {default_note}"))
        final.append((*row, f">= {AIM:.0%} of kernel: {shares}"))
        for note in notes:
            print(f"{direction}: {note}")
    default_cc = default_runs[0].get("cc_default") if default_runs else "?"
    print_table(("metric", *columns, "C/py", f"kernel ({CC})", "wipstack/kernel", f"kernel ({default_cc})"), rows)
    print("kernel -> X: the kernel client sends, connect() to the receiver's FIN; X -> kernel: the kernel client")
    print("reads, connect() to the last octet.  The kernel column is Linux against Linux through the same seeded")
    print("FaultInjector code (a relay between two namespaces' TUN devices).")
    for (setup, direction), runs in sorted(lossy.items()):
        print(f"  {setup} {direction}: {lossy_details(direction, runs)}")

    # ---- final table
    print("\nSummary")
    print_table(("metric", *columns, "C/py", "kernel", "aim"), final)

    # ---- 4. profile
    profile = measured.get("profile")
    print(
        f"\n4. cProfile of wipstack's loop thread, kernel -> wipstack, MTU 1500, {COLUMNS[measured['profiled']]}, "
        f"{PROFILE_BYTES // 1_000_000} MB or {PROFILE_SECONDS:g} s (the profiler slows it down)"
    )
    if profile:
        print(f"{profile['bytes'] / 1e6:.0f} MB at {mbps(profile['rate'])} Mbit/s under the profiler")
        print(profile.get("profile", "no profile"))
    else:
        print("not measured")


if __name__ == "__main__":
    run()
