"""FTP: download and upload rates over TUN and over PPP, beside the raw TCP rate of the same path.

Needs root and /dev/net/tun (it prints why and returns otherwise).  One process per
implementation (``benchmarks._ftp_worker``; ``WIPSTACK_NO_EXTENSIONS=1`` for pure Python):
wipstack's FtpSession (passive, TYPE I) against pyftpdlib in a network namespace, over a TUN
device (MTU 1500) and over PPP on a pty through a wipstack router, and in the same run a raw
TCP transfer of the same size each way against a kernel sink and source on that path.  The
ratio FTP/TCP shows what the FTP layer costs: a second connection, its set-up, and the
application reading and writing in chunks.  About a minute in all.  Timing is printed,
never judged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.bench_hotpaths import print_table
from benchmarks.bench_ip import unavailable_reason

ROOT = Path(__file__).resolve().parents[1]
IMPLEMENTATIONS = {"c": "C", "py": "pure Python"}
TUN_BYTES, PPP_BYTES = 20_000_000, 5_000_000
ROWS = [
    ("tun", "ftp_get", "raw_in", "FTP get over TUN"),
    ("tun", "ftp_put", "raw_out", "FTP put over TUN"),
    ("ppp", "ftp_get", "raw_in", "FTP get over PPP (pty, via a router)"),
    ("ppp", "ftp_put", "raw_out", "FTP put over PPP (pty, via a router)"),
]


def worker(implementation: str) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("WIPSTACK_NO_EXTENSIONS", None)
    if implementation == "py":
        env["WIPSTACK_NO_EXTENSIONS"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks._ftp_worker", str(TUN_BYTES), str(PPP_BYTES)],
        cwd=ROOT, env=env, capture_output=True, timeout=600, check=False,
    )  # fmt: skip
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    if not lines:
        return {"error": f"no result (exit {done.returncode}): {done.stderr.decode(errors='replace')[-400:]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def run() -> None:
    """Print the table (or why it cannot be measured here)."""
    reason = unavailable_reason()
    if reason is not None:
        print(f"skipped: {reason}")
        return
    print(f"{TUN_BYTES // 1_000_000} MB over TUN, {PPP_BYTES // 1_000_000} MB over PPP, one run each; Mbit/s")
    results = {name: worker(name) for name in IMPLEMENTATIONS}
    for name, result in results.items():
        if "error" in result:
            print(f"{IMPLEMENTATIONS[name]}: {result['error']}")
    header = ("metric", "C", "raw TCP (C)", "FTP/TCP (C)", "pure Python", "raw TCP (py)", "FTP/TCP (py)", "C/py")
    table = []
    for path, ftp_key, raw_key, label in ROWS:
        cells: list[str] = []
        rates = {}
        for name in IMPLEMENTATIONS:
            values = results[name].get(path)
            if not values:
                cells += ["n/a", "n/a", "n/a"]
                continue
            rates[name] = values[ftp_key]
            cells += [f"{values[ftp_key]:,.1f}", f"{values[raw_key]:,.1f}", f"{values[ftp_key] / values[raw_key]:.0%}"]
        ratio = f"{rates['c'] / rates['py']:.2f}x" if len(rates) == 2 else "n/a"
        table.append((label, *cells, ratio))
    print_table(header, table)
