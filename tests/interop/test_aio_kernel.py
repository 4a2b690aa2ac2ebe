"""The asyncio streams adapter (wipstack.drivers.aio) against the Linux kernel's TCP over TUN.

wipstack runs in this process (Stack + NetLoop + TunPort, the loop in a background thread)
on the ``tun_in_netns`` fixture's device; asyncio runs in the test's thread::

    wipstack (this process)  192.0.2.2  <-- tun -->  192.0.2.1  the kernel in a test namespace

* a wipstack asyncio echo server answers a plain-socket Linux client (a Python script run
  with ``ip netns exec``) that sends 5 MB while reading the echo;
* a wipstack asyncio client sends 5 MB to a Linux asyncio echo server in the namespace.

Both compare SHA-256 digests of what was sent and received at each end.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import random
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.harness.netns import NetNamespace
from tests.harness.netns_fixtures import (  # noqa: F401
    KERNEL_ADDRESS,
    WIPSTACK_ADDRESS,
    netns,
    tun_in_netns,
)
from wipstack.drivers import aio
from wipstack.drivers.netloop import NetLoop
from wipstack.drivers.ports import TunPort
from wipstack.drivers.tun import TunDevice
from wipstack.net import Interface, Stack
from wipstack.wire.ipv4 import address

pytestmark = pytest.mark.interop

SEED = 20240611
SIZE = 5 * 1024 * 1024
CHUNK = 64 * 1024
PORT = 7000
MTU = 1500
TIMEOUT = 120.0

# a plain-socket client: sends SIZE seeded octets (in a thread) while reading the echo
LINUX_CLIENT = r"""
import hashlib, json, random, socket, sys, threading
host, port, size, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
payload = random.Random(seed).randbytes(size)
sock = socket.create_connection((host, port), timeout=30)
sock.settimeout(60)
def send():
    sock.sendall(payload)
    sock.shutdown(socket.SHUT_WR)
sender = threading.Thread(target=send)
sender.start()
digest, count = hashlib.sha256(), 0
while data := sock.recv(65536):
    digest.update(data)
    count += len(data)
sender.join()
local = sock.getsockname()
sock.close()
print(json.dumps({"sent": hashlib.sha256(payload).hexdigest(), "received": digest.hexdigest(), "count": count,
                  "local": list(local)}))
"""

# an asyncio echo server for one connection: prints "ready", then a JSON report
LINUX_SERVER = r"""
import asyncio, hashlib, json, sys
host, port = sys.argv[1], int(sys.argv[2])
async def main():
    done = asyncio.get_running_loop().create_future()
    async def handle(reader, writer):
        digest, count = hashlib.sha256(), 0
        while data := await reader.read(65536):
            digest.update(data)
            count += len(data)
            writer.write(data)
            await writer.drain()
        writer.close()
        await writer.wait_closed()
        peer = list(writer.get_extra_info("peername"))
        done.set_result({"received": digest.hexdigest(), "count": count, "peer": peer})
    server = await asyncio.start_server(handle, host, port)
    print("ready", flush=True)
    result = await asyncio.wait_for(done, 100)
    server.close()
    print(json.dumps(result), flush=True)
asyncio.run(main())
"""


@dataclass
class Wip:
    ns: NetNamespace
    tun: TunDevice
    stack: Stack
    loop: NetLoop


@pytest.fixture
def wip(tun_in_netns: tuple[NetNamespace, TunDevice]) -> Iterator[Wip]:  # noqa: F811
    ns, tun = tun_in_netns
    ns.run("sh", "-c", f"echo 1 > /proc/sys/net/ipv6/conf/{tun.name}/disable_ipv6", check=False)
    stack = Stack(random.Random(SEED))
    loop = NetLoop(stack)
    loop.add_port(
        TunPort(stack, Interface(tun.name, address(WIPSTACK_ADDRESS), peer=address(KERNEL_ADDRESS), mtu=MTU), tun)
    )
    loop.start()
    try:
        yield Wip(ns, tun, stack, loop)
        assert loop.error is None, f"the loop thread died: {loop.error!r}"
    finally:
        loop.close()


def communicate(proc: subprocess.Popen[bytes], timeout: float) -> tuple[bytes, bytes]:
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"script timed out: {err.decode(errors='replace')[-2000:]}") from None


def report(proc: subprocess.Popen[bytes], out: bytes, err: bytes) -> Any:
    lines = out.decode(errors="replace").strip().splitlines()
    assert proc.returncode == 0 and lines, f"script failed ({proc.returncode}): {err.decode(errors='replace')[-3000:]}"
    return json.loads(lines[-1])


def test_wipstack_asyncio_server_echoes_linux_client(wip: Wip) -> None:
    async def echo(reader: asyncio.StreamReader, writer: aio.WipStreamWriter) -> None:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main() -> Any:
        server = await aio.start_server(wip.loop, echo, PORT)
        proc = wip.ns.popen(
            sys.executable, "-c", LINUX_CLIENT, WIPSTACK_ADDRESS, str(PORT), str(SIZE), str(SEED),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.to_thread(communicate, proc, TIMEOUT)
        server.close()
        await asyncio.wait_for(server.wait_closed(), 10)
        return report(proc, out, err)

    result = asyncio.run(asyncio.wait_for(main(), TIMEOUT + 10))
    expected = hashlib.sha256(random.Random(SEED).randbytes(SIZE)).hexdigest()
    assert result["sent"] == expected
    assert result["count"] == SIZE
    assert result["received"] == expected, "the echo came back corrupted"
    assert result["local"][0] == KERNEL_ADDRESS


def test_wipstack_asyncio_client_against_linux_asyncio_server(wip: Wip) -> None:
    payload = random.Random(SEED + 1).randbytes(SIZE)

    async def main() -> tuple[bytes, Any, tuple[str, int]]:
        proc = wip.ns.popen(
            sys.executable, "-c", LINUX_SERVER, KERNEL_ADDRESS, str(PORT),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None
        ready = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
        assert ready.strip() == b"ready", ready
        reader, writer = await aio.open_connection(wip.loop, KERNEL_ADDRESS, PORT)
        assert writer.get_extra_info("peername") == (KERNEL_ADDRESS, PORT)
        sockname = writer.get_extra_info("sockname")

        async def send() -> None:
            for i in range(0, SIZE, CHUNK):
                writer.write(payload[i : i + CHUNK])
                await writer.drain()
            writer.write_eof()

        sender = asyncio.create_task(send())
        digest = hashlib.sha256()
        count = 0
        while data := await reader.read(CHUNK):
            digest.update(data)
            count += len(data)
        await sender
        writer.close()
        await writer.wait_closed()
        assert count == SIZE
        out, err = await asyncio.to_thread(communicate, proc, 30)
        return digest.digest(), report(proc, out, err), sockname

    echoed, result, sockname = asyncio.run(asyncio.wait_for(main(), TIMEOUT))
    expected = hashlib.sha256(payload)
    assert result["count"] == SIZE
    assert result["received"] == expected.hexdigest(), "the kernel received corrupted data"
    assert echoed == expected.digest(), "the echo came back corrupted"
    assert result["peer"] == [WIPSTACK_ADDRESS, sockname[1]]


def test_linux_refusal_is_connection_refused_error(wip: Wip) -> None:
    async def main() -> None:
        with pytest.raises(ConnectionRefusedError) as caught:
            await aio.open_connection(wip.loop, KERNEL_ADDRESS, 9)  # nothing listens: the kernel sends RST
        assert caught.value.errno == errno.ECONNREFUSED

    asyncio.run(asyncio.wait_for(main(), 30))
