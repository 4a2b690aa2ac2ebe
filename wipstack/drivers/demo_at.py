"""The AT act of ``wipstack demo``: a virtual WIPSoft module driven by +WIP commands over ptys.

::

    AT host ──pty UART1── virtual module ──pty UART2, PPP (PAP)── field device (wipstack)
                          203.0.113.1                             203.0.113.2: TCP and UDP echo

The host (pyserial on UART1) starts the module's IP stack and a PPP server on UART2 with
AT commands; a second wipstack dials in over UART2 as a PPP client.  The host then pings
the device (``+WIPPING``), opens a TCP connection to its echo service and pushes data
with every byte value through continuous data mode (DLE/ETX escaping both ways), leaves
data mode with ``+++``, exchanges UDP datagrams the same way, closes and stops the bearer.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path

from at_frontend.module import Module
from wipstack.drivers.at_client import AtClient, dle_escape, dle_unescape
from wipstack.drivers.link import PtyLink, SerialLink
from wipstack.drivers.modem import ModulePort
from wipstack.drivers.netloop import NetLoop
from wipstack.drivers.ports import PppPort
from wipstack.drivers.services import TcpService
from wipstack.net import Stack
from wipstack.ppp.config import CpConfig, PapConfig, PppConfig
from wipstack.ppp.session import PppSession

Log = Callable[[str], None]
MODULE, DEVICE = "203.0.113.1", "203.0.113.2"
ECHO_PORT = 7


def run_at_demo(seed: int, log: Log) -> bool:
    """Run the act; True when every step gave what it should."""
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    uart1 = PtyLink(tmp / f"wipstack-demo-uart1-{os.getpid()}")
    uart2 = PtyLink(tmp / f"wipstack-demo-uart2-{os.getpid()}")
    log(f"module: UART1 {uart1.path}, UART2 {uart2.path}")
    module_stack = Stack(random.Random(seed + 20))
    module_loop = NetLoop(module_stack)
    module = Module(module_stack, now=module_loop.clock())
    module_loop.add_port(ModulePort(module, {1: uart1, 2: uart2}))
    device_stack = Stack(random.Random(seed + 21))
    device_loop = NetLoop(device_stack)
    device_ppp = PppPort(
        device_stack,
        PppSession(PppConfig(pap=PapConfig(username="alice", password="s3cret"), cp=CpConfig(restart_interval=1.0)),
                   random.Random(seed + 22)),
        SerialLink(uart2.path), default_route=True,
    )  # fmt: skip
    device_loop.add_port(device_ppp)
    host = AtClient(SerialLink(uart1.path))
    ok = True

    def expect(line: str, final: str = "OK", timeout: float = 10.0) -> list[str]:
        nonlocal ok
        info, result = host.command(line, timeout)
        shown = " | ".join(info + [result])
        log(f"  {line:<38} -> {shown}")
        if result != final:
            ok = False
        return info

    try:
        module_loop.start()
        expect("ATE0")
        expect("AT+CMEE=1")
        expect("ATI3")
        expect("AT+CPIN?")
        expect("AT+WIPCFG=1")
        expect("AT+WIPBR=1,2")
        expect(f'AT+WIPBR=2,2,15,"{MODULE}"')
        expect(f'AT+WIPBR=2,2,16,"{DEVICE}"')
        expect('AT+WIPBR=4,2,1,"alice","s3cret"')
        device_loop.call(device_ppp.open)
        device_loop.start()
        TcpService(device_stack, ECHO_PORT, "echo")
        device_loop.call(lambda: _udp_echo(device_stack))
        log(f"  (UART2: PPP up)                        <- {host.wait_urc('+WIPBR: 2,1', 15)}")
        expect(f'AT+WIPPING="{DEVICE}",3,200')
        for _ in range(3):
            log(f"                                         <- {host.wait_urc('+WIPPING:', 5)}")
        ok &= _tcp_act(host, expect, seed, log)
        ok &= _udp_act(host, expect, log)
        expect("AT+WIPBR=5,2")
        ok &= _wait(lambda: device_ppp.session.is_dead, 10)
        log(f"  field device: PPP link ended ({device_ppp.session.failure or 'terminated by the module'})")
    except TimeoutError as exc:
        log(f"  AT act: {exc}")
        ok = False
    finally:
        device_loop.close()
        module_loop.close()
        host.link.close()
    return ok


def _tcp_act(host: AtClient, expect: Callable[..., list[str]], seed: int, log: Log) -> bool:
    expect(f'AT+WIPCREATE=2,1,"{DEVICE}",{ECHO_PORT}')
    log(f"                                         <- {host.wait_urc('+WIPREADY: 2,1', 10)}")
    expect("AT+WIPDATA=2,1,1", "CONNECT")
    payload = bytes(range(256)) * 64 + random.Random(seed).randbytes(48 * 1024)
    started = time.monotonic()
    host.write(dle_escape(payload))
    received = bytearray()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        received += host.read_some(0.5)
        data, _ = dle_unescape(bytes(received))
        if len(data) >= len(payload) and not received.endswith(b"\x10"):
            break
    data, _ = dle_unescape(bytes(received))
    elapsed = time.monotonic() - started
    same = data == payload
    log(f"  data mode: {len(payload)} B with every byte value echoed back through TCP "
        f"{'intact' if same else 'CORRUPTED'} ({len(payload) * 8 / elapsed / 1000:.0f} kbit/s each way)")  # fmt: skip
    host.escape_to_command_mode()
    log("  +++                                    -> OK (socket still open)")
    expect("AT+WIPOPT=2,1,1,2")
    expect("AT+WIPCLOSE=2,1")
    return same


def _udp_act(host: AtClient, expect: Callable[..., list[str]], log: Log) -> bool:
    expect(f'AT+WIPCREATE=1,1,6000,"{DEVICE}",{ECHO_PORT}')
    log(f"                                         <- {host.wait_urc('+WIPREADY: 1,1', 10)}")
    expect("AT+WIPDATA=1,1,1", "CONNECT")
    datagrams = [bytes([0x03, 0x10]) * 10 + b"first datagram", b"second\x03 one"]
    host.write(b"".join(dle_escape(d) + b"\x03" for d in datagrams))
    received = bytearray()
    deadline = time.monotonic() + 10
    while received.count(b"\x03") - received.count(b"\x10\x03") < 2 and time.monotonic() < deadline:
        received += host.read_some(0.5)
    echoed = []
    rest = bytes(received)
    for _ in datagrams:
        data, ended = dle_unescape(rest)
        echoed.append(data)
        rest = rest[len(dle_escape(data)) + 1 :] if ended else b""
    same = echoed == datagrams
    log(f"  UDP data mode: {len(datagrams)} datagrams with DLE/ETX inside, ETX-delimited, echoed "
        f"{'intact' if same else 'WRONG'}")  # fmt: skip
    host.escape_to_command_mode()
    expect("AT+WIPCLOSE=1,1")
    return same


def _udp_echo(stack: Stack) -> None:
    sock = stack.udp_socket()
    sock.bind(port=ECHO_PORT)

    def echo(data: bytes, source: tuple[bytes, int], now: float) -> None:
        sock.sendto(data, source[0], source[1])

    sock.on_datagram = echo


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False
