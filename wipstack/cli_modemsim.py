"""``wipstack modem-sim``: a simulated 3GPP TS 27.007 cellular modem on a pty (or serial port).

A dialer (``wipstack modem --modem PATH``, pppd with chat, ModemManager...) opens the pty at
``--pty PATH`` and talks AT to it.  After CONNECT the data stream goes to the network peer:
``--network-pty PATH`` (a second pty, e.g. the serial line of a UML guest running pppd as the
access server), ``--network-exec CMD`` (a process per call on its stdin/stdout, e.g.
``python -m wipstack ppp --stdio 10.0.0.1:10.0.0.2``) or ``--network-tcp HOST:PORT``.
``--control PATH`` is a UNIX socket taking ``ring <number>``, ``drop``, ``dial-result <r>``,
``sim <state>``, ``creg <stat>``, ``cgreg <stat>``, ``packet-reject <cause>|none``,
``mute on|off``, ``dtr on|off`` and ``status``, one per line, each answered with one line.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType

from wipstack.cellular.simulator import CmeError, DialResult, ModemSimulator, SimState, SimulatorSettings
from wipstack.drivers.link import ByteLink, PtyLink, SerialLink
from wipstack.drivers.modem_sim import ControlServer, ExecNetwork, ModemSimDriver, Network, PtyNetwork, TcpNetwork


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def add_modem_sim_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``wipstack modem-sim``."""
    sim = commands.add_parser("modem-sim", help="a simulated 27.007 cellular modem on a pty or serial port")
    dte = sim.add_mutually_exclusive_group()
    dte.add_argument("--pty", metavar="PATH", help="the DTE's line is a pty; PATH becomes a symlink to its slave")
    dte.add_argument("--device", metavar="DEV", help="the DTE's line is this serial port (pyserial)")
    sim.add_argument("--baud", type=int, default=115200, help="speed of --device (default 115200)")
    network = sim.add_mutually_exclusive_group()
    network.add_argument("--network-pty", metavar="PATH", help="the network peer opens a pty at PATH")
    network.add_argument("--network-exec", metavar="CMD", help="start CMD per call; its stdin/stdout carry the data")
    network.add_argument("--network-tcp", metavar="HOST:PORT", help="connect to HOST:PORT per call")
    sim.add_argument("--control", metavar="PATH", help="UNIX socket for ring/drop/sim/creg/mute/status commands")
    defaults = SimulatorSettings()
    sim.add_argument("--sim", choices=[s.value for s in SimState], default=defaults.sim_state.value,
                     help="SIM state at power-on (default ready)")  # fmt: skip
    sim.add_argument("--pin", default=defaults.pin, help=f"the SIM's PIN (default {defaults.pin})")
    sim.add_argument("--puk", default=defaults.puk, help=f"the SIM's PUK (default {defaults.puk})")
    sim.add_argument("--apn", action="append", metavar="APN", help="an accepted APN (repeatable; default: any)")
    sim.add_argument("--dial-result", choices=[r.value for r in DialResult], default=defaults.dial_result.value,
                     help="how circuit-switched data calls end (default connect)")  # fmt: skip
    sim.add_argument("--packet-reject", type=int, metavar="CME", choices=[int(c) for c in CmeError],
                     help="reject every PDP activation with this +CME ERROR cause (e.g. 134, 148, 149)")  # fmt: skip
    sim.add_argument("--connect-delay", type=float, default=defaults.connect_delay, metavar="S",
                     help=f"seconds from dial/answer to CONNECT (default {defaults.connect_delay})")  # fmt: skip
    sim.add_argument("--ring-interval", type=float, default=defaults.ring_interval, metavar="S",
                     help=f"seconds between RINGs (default {defaults.ring_interval})")  # fmt: skip
    sim.add_argument("--max-rings", type=int, default=defaults.max_rings, help="RINGs before a caller gives up")
    sim.add_argument("--registration-delay", type=float, default=defaults.registration_delay, metavar="S",
                     help="seconds of network search after power-on or PIN (default 0)")  # fmt: skip
    sim.add_argument("--connect-text", default=defaults.connect_text, help="verbose CONNECT text (CONNECT 115200)")
    sim.add_argument("--operator", default=defaults.operator_name, help="operator name for AT+COPS?")
    sim.add_argument("--log", action="store_true", help="log every command line and result to stderr")
    sim.add_argument("--duration", type=float, help="stop after this many seconds (default: until a signal)")


def settings_from_args(args: argparse.Namespace) -> SimulatorSettings:
    """The simulator's settings from ``wipstack modem-sim`` options."""
    return SimulatorSettings(
        sim_state=SimState(args.sim),
        pin=args.pin,
        puk=args.puk,
        apns=tuple(args.apn) if args.apn else None,
        dial_result=DialResult(args.dial_result),
        packet_reject=None if args.packet_reject is None else CmeError(args.packet_reject),
        connect_delay=args.connect_delay,
        ring_interval=args.ring_interval,
        max_rings=args.max_rings,
        registration_delay=args.registration_delay,
        connect_text=args.connect_text,
        operator_name=args.operator,
    )


def _network(args: argparse.Namespace) -> Network | None:
    if args.network_pty:
        return PtyNetwork(args.network_pty)
    if args.network_exec:
        return ExecNetwork(args.network_exec, log=_log)
    if args.network_tcp:
        return TcpNetwork(args.network_tcp, log=_log)
    return None


def run_modem_sim(args: argparse.Namespace) -> int:
    """Run the simulator until a signal or ``--duration``."""
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        _log(f"modem-sim: {exc}")
        return 2
    dte: ByteLink | None = None
    network: Network | None = None
    control: ControlServer | None = None
    try:
        if args.device:
            dte = SerialLink(args.device, args.baud)
            where = f"DTE {args.device} at {args.baud} bit/s"
        else:
            pty = PtyLink(args.pty or None)
            dte = pty
            where = f"DTE {pty.path}" + (f" -> {pty.slave_path}" if args.pty else "")
        network = _network(args)
        control = ControlServer(args.control) if args.control else None
    except (OSError, ValueError) as exc:
        for resource in (dte, network, control):
            if resource is not None:
                resource.close()
        _log(f"modem-sim: {exc}")
        return 1
    tracer = (lambda line: _log(f"modem-sim: {line}")) if args.log else None
    sim = ModemSimulator(settings, now=time.monotonic(), tracer=tracer)
    driver = ModemSimDriver(sim, dte, network, control=control, log=_log)
    stop: list[str] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.append(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    wakeup = signal.set_wakeup_fd(driver.wakeup_fd, warn_on_full_buffer=False)
    parts = [where, network.description if network is not None else "no network peer"]
    if control is not None:
        parts.append(f"control {control.path}")
    _log("modem-sim ready: " + "; ".join(parts))
    try:
        driver.run(lambda: bool(stop), args.duration)
    finally:
        signal.set_wakeup_fd(wakeup)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        driver.close()
    _log(f"modem-sim: stopped{' by ' + stop[0] if stop else ''}; {sim.status()}")
    return 0
