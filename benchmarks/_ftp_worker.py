"""One implementation's FTP measurements for ``bench_ftp`` (run as a process; prints one JSON line).

Topology (TEST-NET), all in this process except the kernel side::

    client stack ──PPP over a pty── router stack ──TUN── kernel (namespace): pyftpdlib,
    203.0.113.2               203.0.113.1  192.0.2.2      192.0.2.1    a TCP sink and source

Over TUN the router stack itself is the client; over PPP a second stack behind the pty is,
and the router forwards.  On each path the same run measures an FTP download and upload
(wipstack's FtpSession, passive, TYPE I) and a raw TCP transfer of the same size in each
direction (``BulkTransfer`` against the kernel's sink and source), so the FTP rate can be
set against the TCP rate of that very path.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.harness.netns import NetNamespace  # noqa: E402
from wipstack import accel  # noqa: E402
from wipstack.apps.ftp import FtpSession, LoggedIn, SessionClosed, SessionEvent, Transfer  # noqa: E402
from wipstack.drivers.link import PtyLink, SerialLink  # noqa: E402
from wipstack.drivers.netloop import NetLoop  # noqa: E402
from wipstack.drivers.ports import PppPort, TunPort  # noqa: E402
from wipstack.drivers.services import BulkTransfer  # noqa: E402
from wipstack.drivers.tun import TunDevice  # noqa: E402
from wipstack.net import Interface, Stack, StackConfig  # noqa: E402
from wipstack.ppp.config import CpConfig, IpcpConfig, PppConfig  # noqa: E402
from wipstack.ppp.session import PppSession  # noqa: E402
from wipstack.wire.ipv4 import address  # noqa: E402

KERNEL, ROUTER_TUN, ROUTER_PPP, CLIENT_PPP = "192.0.2.1", "192.0.2.2", "203.0.113.1", "203.0.113.2"
SINK_PORT, SOURCE_PORT = 5001, 5002
LIMIT = 120.0

KERNEL_SERVERS = """
import socket, sys, threading
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
root, size = sys.argv[1], int(sys.argv[2])
def sink():
    srv = socket.create_server(("0.0.0.0", {sink}))
    while True:
        conn, _ = srv.accept()
        while conn.recv(1 << 20):
            pass
        conn.close()
def source():
    srv = socket.create_server(("0.0.0.0", {source}))
    block = bytes(1 << 20)
    while True:
        conn, _ = srv.accept()
        sent = 0
        try:
            while sent < size:
                sent += conn.send(block[: min(len(block), size - sent)])
        except OSError:
            pass
        conn.close()
for target in (sink, source):
    threading.Thread(target=target, daemon=True).start()
authorizer = DummyAuthorizer()
authorizer.add_user("bench", "bench", root, perm="elradfmwMT")
FTPHandler.authorizer = authorizer
print("ready", flush=True)
FTPServer(("0.0.0.0", 21), FTPHandler).serve_forever()
"""


def wait(condition: Callable[[], bool], timeout: float = LIMIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("transfer did not finish")
        time.sleep(0.002)


def raw(loop: NetLoop, stack: Stack, size: int, receive: bool) -> float:
    port = SOURCE_PORT if receive else SINK_PORT
    transfer = loop.call(lambda: BulkTransfer(stack, KERNEL, port, size, time.monotonic(), time.monotonic,
                                              receive=receive))  # fmt: skip
    wait(lambda: transfer.done)
    if transfer.error:
        raise RuntimeError(transfer.error)
    return transfer.rate_bps() / 1e6


def ftp(loop: NetLoop, stack: Stack, name: str, payload: bytes, upload: bool) -> float:
    events: list[SessionEvent] = []
    session = loop.call(lambda: FtpSession(stack, KERNEL, user="bench", password="bench", now=time.monotonic(),
                                           on_event=lambda s, e: events.append(e)))  # fmt: skip
    wait(lambda: any(isinstance(e, LoggedIn | SessionClosed) for e in events), 20)
    started = time.monotonic()
    transfer: Transfer = loop.call(lambda: session.store(name) if upload else session.retrieve(name))
    digest = hashlib.sha256()
    view = memoryview(payload)

    def step() -> bool:
        nonlocal view
        if upload:
            while view and transfer.state.value == "active" and (n := transfer.send(view[:65536].tobytes())):
                view = view[n:]
            if not view and transfer.state.value == "active":
                transfer.finish()
        else:
            while data := transfer.recv(1 << 20):
                digest.update(data)
        return transfer.done

    box: list[bool] = []
    wait(lambda: box.append(loop.call(step)) or box[-1])
    elapsed = time.monotonic() - started
    loop.call(session.quit)
    if not transfer.ok:
        raise RuntimeError(f"FTP {'put' if upload else 'get'} failed: {transfer.error}")
    if not upload and digest.digest() != hashlib.sha256(payload).digest():
        raise RuntimeError("FTP download corrupted")
    return len(payload) * 8 / elapsed / 1e6


def main() -> int:
    tun_bytes, ppp_bytes = int(sys.argv[1]), int(sys.argv[2])
    payload = random.Random(7).randbytes(tun_bytes)
    root = tempfile.mkdtemp(prefix="wbench-ftp-")
    (Path(root) / "tun.bin").write_bytes(payload)
    (Path(root) / "ppp.bin").write_bytes(payload[:ppp_bytes])
    result: dict[str, Any] = {"implementation": accel.IMPLEMENTATION}
    ns = NetNamespace(prefix="wbftp")
    loops: list[NetLoop] = []
    server = None
    try:
        ns.ip("link", "set", "lo", "up")
        device = TunDevice(mtu=1500)
        device.move_to_netns(ns.name)
        device.configure_kernel_side(ROUTER_TUN, KERNEL, netns=ns.name)
        ns.ip("route", "add", "203.0.113.0/24", "dev", device.name)
        script = KERNEL_SERVERS.format(sink=SINK_PORT, source=SOURCE_PORT)
        command = ["ip", "netns", "exec", ns.name, sys.executable, "-c", textwrap.dedent(script), root, str(tun_bytes)]
        server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert server.stdout is not None
        if server.stdout.readline().strip() != b"ready":
            raise RuntimeError("the kernel-side servers did not start")
        router = Stack(random.Random(1), StackConfig(forwarding=True))
        router_loop = NetLoop(router)
        loops.append(router_loop)
        router_loop.add_port(TunPort(router, Interface(device.name, address(ROUTER_TUN), peer=address(KERNEL)),
                                     device))  # fmt: skip
        router_loop.start()
        time.sleep(0.2)
        result["tun"] = {
            "raw_in": raw(router_loop, router, tun_bytes, True),
            "raw_out": raw(router_loop, router, tun_bytes, False),
            "ftp_get": ftp(router_loop, router, "tun.bin", payload, False),
            "ftp_put": ftp(router_loop, router, "tun-up.bin", payload, True),
        }
        if (Path(root) / "tun-up.bin").read_bytes() != payload:
            raise RuntimeError("FTP upload over TUN corrupted")
        pty = PtyLink()
        fast = CpConfig(restart_interval=1.0)
        server_port = PppPort(router, PppSession(PppConfig(ipcp=IpcpConfig(
            local_address=address_v4(ROUTER_PPP), peer_address=address_v4(CLIENT_PPP)), cp=fast), random.Random(2)),
            pty)  # fmt: skip
        router_loop.call(lambda: router_loop.add_port(server_port))
        client = Stack(random.Random(3))
        client_loop = NetLoop(client)
        loops.append(client_loop)
        client_port = PppPort(client, PppSession(PppConfig(cp=fast), random.Random(4)), SerialLink(pty.slave_path),
                              default_route=True)  # fmt: skip
        client_loop.add_port(client_port)
        router_loop.call(server_port.open)
        client_loop.call(client_port.open)
        client_loop.start()
        wait(lambda: client_port.is_up and server_port.is_up, 20)
        ppp_payload = payload[:ppp_bytes]
        result["ppp"] = {
            "raw_in": raw(client_loop, client, ppp_bytes, True),
            "raw_out": raw(client_loop, client, ppp_bytes, False),
            "ftp_get": ftp(client_loop, client, "ppp.bin", ppp_payload, False),
            "ftp_put": ftp(client_loop, client, "ppp-up.bin", ppp_payload, True),
        }
        if (Path(root) / "ppp-up.bin").read_bytes() != ppp_payload:
            raise RuntimeError("FTP upload over PPP corrupted")
    except Exception as exc:  # noqa: BLE001 - reported to the driver
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        for loop in loops:
            loop.close()
        if server is not None:
            server.kill()
            server.wait(5)
        ns.close()
        for path in Path(root).iterdir():
            path.unlink()
        os.rmdir(root)
    print(json.dumps(result), flush=True)
    return 0


def address_v4(text: str) -> Any:
    from ipaddress import IPv4Address

    return IPv4Address(text)


if __name__ == "__main__":
    sys.exit(main())
