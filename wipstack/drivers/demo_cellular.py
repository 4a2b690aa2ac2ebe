"""The cellular act of ``wipstack demo``: GPRS through a simulated modem, and CMUX on a UART.

::

    AT host ──pty UART1── virtual module ──pty (27.007)── modem simulator ──pty── operator
                          (its dialer)                    (after CONNECT)          (wipstack PPP
                                                                                    access server)
    CMUX host ──pty UART2── the same module, multiplexed: DLCI 1 and DLCI 2 are virtual UARTs

The AT host starts the GPRS bearer exactly as on a Wavecom module (APN, login, password,
``AT+WIPBR=4,6,0``); the module's dialer runs the 27.007 dialogue with the simulator
(``AT+CPIN?``, ``AT+CGREG?``, ``AT+CGDCONT``, ``ATD*99***1#``), wipstack's PPP client logs in to
the operator's access server behind it and gets its address and DNS, and the host pings the
operator (``+WIPPING``) and hangs up.  Then the simulator is told to answer the next data call
with BUSY (its control socket, as a developer would) and a GSM call fails with 807.  Finally
another host switches UART2 to 27.010 multiplexing and talks AT on two DLCIs at once.
"""

from __future__ import annotations

import os
import random
import select
import socket
import threading
import time
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path

from at_frontend.module import Module
from wipstack.cellular.cmux import DataReceived, Multiplexer, MuxRole
from wipstack.cellular.dialer import DialerSettings, ModemDialer
from wipstack.cellular.simulator import ModemSimulator, SimulatorSettings
from wipstack.drivers.at_client import AtClient
from wipstack.drivers.demo_at import _wait
from wipstack.drivers.link import PtyLink, SerialLink
from wipstack.drivers.modem import ModulePort
from wipstack.drivers.modem_sim import ControlServer, ModemSimDriver, PtyNetwork
from wipstack.drivers.netloop import NetLoop
from wipstack.drivers.ports import PppPort
from wipstack.net import Stack
from wipstack.ppp.config import CpConfig, IpcpConfig, PapConfig, PppConfig
from wipstack.ppp.session import PppSession

Log = Callable[[str], None]
OPERATOR, ASSIGNED, DNS = "203.0.113.1", "203.0.113.2", "203.0.113.53"


def run_cellular_demo(seed: int, log: Log) -> bool:
    """Run the act; True when every step gave what it should."""
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    tag = f"{os.getpid()}"
    uart1, uart2 = PtyLink(tmp / f"wipstack-demo-cell1-{tag}"), PtyLink(tmp / f"wipstack-demo-cell2-{tag}")
    modem_line = PtyLink(tmp / f"wipstack-demo-modem-{tag}")
    network = PtyNetwork(str(tmp / f"wipstack-demo-net-{tag}"))
    control_path = str(tmp / f"wipstack-demo-ctl-{tag}")
    simulator = ModemSimulator(SimulatorSettings(apns=("internet",), connect_delay=0.2), now=time.monotonic())
    driver = ModemSimDriver(simulator, modem_line, network, control=ControlServer(control_path))
    stop: list[bool] = []
    sim_thread = threading.Thread(target=driver.run, args=(lambda: bool(stop),), name="modem-sim", daemon=True)
    log(f"module: UART1 {uart1.path}, UART2 {uart2.path}; modem (simulated) {modem_line.path}")

    operator_stack = Stack(random.Random(seed + 30))
    operator_loop = NetLoop(operator_stack)
    operator_ppp = PppPort(
        operator_stack,
        PppSession(PppConfig(pap=PapConfig(require=True, secrets=(("user", "pass"),)),
                             ipcp=IpcpConfig(local_address=IPv4Address(OPERATOR), peer_address=IPv4Address(ASSIGNED),
                                             accept_peer=False, dns_servers=(IPv4Address(DNS),)),
                             cp=CpConfig(passive=True, restart_interval=1.0)),
                   random.Random(seed + 31)),
        SerialLink(network.link.path),
    )  # fmt: skip
    operator_loop.add_port(operator_ppp)

    module_stack = Stack(random.Random(seed + 32))
    module_loop = NetLoop(module_stack)
    module = Module(module_stack, now=module_loop.clock(), modem=ModemDialer(DialerSettings(command_timeout=3.0)))
    module_loop.add_port(ModulePort(module, {1: uart1, 2: uart2}, modem=SerialLink(modem_line.path)))
    host = AtClient(SerialLink(uart1.path))
    ok = True

    def expect(line: str, final: str = "OK", timeout: float = 10.0) -> list[str]:
        nonlocal ok
        info, result = host.command(line, timeout)
        log(f"  {line:<38} -> {' | '.join(info + [result])}")
        ok &= result == final
        return info

    try:
        sim_thread.start()
        operator_loop.call(operator_ppp.open)
        operator_loop.start()
        module_loop.start()
        for line in ("ATE0", "AT+CMEE=1", "AT+WIPCFG=1", "AT+WIPBR=1,6", 'AT+WIPBR=2,6,11,"internet"',
                     'AT+WIPBR=2,6,0,"user"', 'AT+WIPBR=2,6,1,"pass"'):  # fmt: skip
            expect(line)
        expect("AT+WIPBR=4,6,0", timeout=30)
        log(f"  (modem saw: {', '.join(c for c in simulator.last_commands if c.startswith(('AT+C', 'ATD')))})")
        ok &= expect("AT+WIPBR=3,6,15") == [f'+WIPBR: 6,15,"{ASSIGNED}"']
        expect("AT+WIPBR=3,6,17")
        expect(f'AT+WIPPING="{OPERATOR}",2,200')
        for _ in range(2):
            log(f"                                         <- {host.wait_urc('+WIPPING:', 5)}")
        expect("AT+WIPBR=5,6")
        ok &= _wait(lambda: simulator.state.value == "command", 10)
        log(f"  modem: call hung up ({simulator.status()})")
        log(f"  control socket: dial-result busy -> {_control(control_path, 'dial-result busy')}")
        expect("AT+WIPBR=1,5")
        expect('AT+WIPBR=2,5,2,"+15550100"')
        expect("AT+WIPBR=4,5,0", "+CME ERROR: 807", timeout=20)
        ok &= _cmux_act(SerialLink(uart2.path), log)
    except TimeoutError as exc:
        log(f"  cellular act: {exc}")
        ok = False
    finally:
        stop.append(True)
        module_loop.close()
        operator_loop.close()
        sim_thread.join(5)
        driver.close()
        host.link.close()
    return ok


def _cmux_act(line: SerialLink, log: Log) -> bool:
    """AT+CMUX=0 on UART2, DLCIs 1 and 2 open, one command on each at once, close-down."""
    try:
        line.write(b"AT+CMUX=0\r")
        raw = _read_until(line, lambda got: b"OK\r\n" in got, 5)
        log(f"  UART2: AT+CMUX=0                       -> {_shown(raw)}")
        mux = Multiplexer(MuxRole.INITIATOR)
        replies: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}

        def pump(done: Callable[[], bool], timeout: float) -> bool:
            deadline = time.monotonic() + timeout
            while not done() and time.monotonic() < deadline:
                out = mux.bytes_to_send()
                if out:
                    line.write(out)
                ready, _, _ = select.select([line.read_fd], [], [], 0.05)
                now = time.monotonic()
                if ready:
                    for event in mux.receive(line.read(), now):
                        if isinstance(event, DataReceived):
                            replies[event.dlci] += event.data
                deadline_mux = mux.next_deadline()
                if deadline_mux is not None and deadline_mux <= now:
                    mux.on_timer(now)
            return done()

        mux.start(time.monotonic())
        mux.open_channel(1, time.monotonic())
        mux.open_channel(2, time.monotonic())
        ok = pump(lambda: mux.is_open(1) and mux.is_open(2), 5)
        mux.send(1, b"ATE0;+CGMM\r")
        mux.send(2, b"ATE0;+CMUX?\r")
        ok &= pump(lambda: all(r.endswith(b"OK\r\n") for r in replies.values()), 5)
        for dlci, text in replies.items():
            log(f"  UART2 DLCI {dlci} (virtual UART 2{dlci}): {_shown(bytes(text))}")
        mux.close_down(time.monotonic())
        ok &= pump(lambda: mux.closed, 5)
        line.write(b"AT\r")
        back = _read_until(line, lambda got: b"OK\r\n" in got, 5)
        log(f"  UART2 after the close-down: AT -> {_shown(back)}")
        return ok and b"OK" in back
    finally:
        line.close()


def _shown(data: bytes) -> str:
    """A UART's answer on one line: ``AT+CMUX=0 | OK``."""
    return " | ".join(part for part in data.decode(errors="replace").replace("\r", "\n").split("\n") if part)


def _read_until(line: SerialLink, done: Callable[[bytes], bool], timeout: float) -> bytes:
    got = b""
    deadline = time.monotonic() + timeout
    while not done(got) and time.monotonic() < deadline:
        ready, _, _ = select.select([line.read_fd], [], [], 0.05)
        if ready:
            got += line.read()
    return got


def _control(path: str, command: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(command.encode() + b"\n")
        return sock.recv(4096).decode().strip()
