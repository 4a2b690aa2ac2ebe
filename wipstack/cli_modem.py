"""``wipstack modem``: a virtual WIPSoft module whose UARTs are ptys (or serial ports).

Each UART is a pty whose slave side is reachable through a stable symlink (``--uart1
/tmp/wip1`` → open ``/tmp/wip1`` with a terminal, an embedded client or pppd), or a real
serial port (``--uart1-device /dev/ttyUSB0``).  The module answers AT commands on both, in
AT, data or PPP mode independently.  Its "flash" is a file (``--flash``), written
atomically.  The network bearer (``AT+WIPBR`` bearer 4, and GPRS with ``--gprs-over-tun``)
is a TUN device; ``--tun-netns`` puts its kernel side in a network namespace.  ``--modem``
attaches an external 27.007 cellular modem (or ``wipstack modem-sim``) for the GSM and GPRS
bearers.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
from pathlib import Path
from types import FrameType

from at_frontend.config import ModuleConfig, RadioState, SimState
from at_frontend.module import Module
from wipstack.cellular.dialer import DialerSettings, ModemDialer
from wipstack.drivers.flash import FileStore
from wipstack.drivers.link import ByteLink, PtyLink, SerialLink
from wipstack.drivers.modem import ModulePort, TunHost
from wipstack.drivers.netloop import NetLoop
from wipstack.net import Stack

DEFAULT_FLASH = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "wipstack" / "flash"


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def add_modem_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``wipstack modem``."""
    modem = commands.add_parser("modem", help="a virtual WIPSoft (+WIP AT command) module on ptys or serial ports")
    for uart in (1, 2):
        group = modem.add_mutually_exclusive_group()
        group.add_argument(f"--uart{uart}", metavar="PATH", help=f"UART{uart} is a pty; PATH becomes a symlink to it")
        group.add_argument(f"--uart{uart}-device", metavar="DEV", help=f"UART{uart} is this serial port (pyserial)")
    modem.add_argument("--baud", type=int, default=115200, help="speed of serial UARTs (default 115200)")
    modem.add_argument(
        "--flash", type=Path, default=DEFAULT_FLASH, help=f"the flash store file (default {DEFAULT_FLASH})"
    )
    modem.add_argument("--tun-netns", metavar="NS", help="network namespace for the kernel side of TUN bearers")
    modem.add_argument("--tun-mtu", type=int, default=1500, help="MTU of TUN bearers (default 1500)")
    modem.add_argument("--gprs-over-tun", action="store_true", help="GPRS (bearer 6) runs over a TUN device")
    modem.add_argument("--sim", choices=("ready", "pin", "absent"), default="ready", help="simulated SIM state")
    modem.add_argument("--pin", default="0000", help="the simulated SIM's PIN (default 0000)")
    modem.add_argument("--nameserver", action="append", default=[], help="DNS server until a bearer brings one")
    cell = modem.add_argument_group("cellular modem (GSM bearer 5, GPRS bearer 6)")
    cell.add_argument("--modem", metavar="DEV", help="the external 27.007 modem: serial device, pty or pyserial URL")
    cell.add_argument("--modem-baud", type=int, default=115200, help="its speed (default 115200)")
    cell.add_argument("--modem-pin", help="SIM PIN entered when the modem asks for it")
    cell.add_argument("--modem-init", action="append", default=[], metavar="AT", help="extra init command (repeatable)")
    cell.add_argument("--modem-cmux", action="store_true",
                      help="multiplex the modem line (AT+CMUX=0: AT on DLCI 1, data on 2)")  # fmt: skip
    cell.add_argument("--modem-dtr-hangup", action="store_true", help="hang up by dropping DTR before +++/ATH")
    cell.add_argument("--modem-registration-timeout", type=float, default=60.0, metavar="S",
                      help="give up waiting for network registration after S seconds (847; default 60)")  # fmt: skip
    modem.add_argument("--seed", type=int, help="seed of the random source (default: the OS's)")
    modem.add_argument("--duration", type=float, help="stop after this many seconds (default: until a signal)")


def run_modem(args: argparse.Namespace) -> int:
    """Run the module until a signal or ``--duration``."""
    from ipaddress import IPv4Address

    links: dict[int, ByteLink] = {}
    modem_link: ByteLink | None = None
    try:
        if args.modem:
            modem_link = SerialLink(args.modem, args.modem_baud)
            _log(f"modem: {args.modem} at {args.modem_baud} bit/s" + (" (CMUX)" if args.modem_cmux else ""))
        for uart in (1, 2):
            path, device = getattr(args, f"uart{uart}"), getattr(args, f"uart{uart}_device")
            if device:
                links[uart] = SerialLink(device, args.baud)
                _log(f"UART{uart}: {device} at {args.baud} bit/s")
            else:
                pty = PtyLink(path or None)
                links[uart] = pty
                _log(f"UART{uart}: {pty.path}" + (f" -> {pty.slave_path}" if path else ""))
    except BaseException:
        for link in links.values():
            link.close()
        if modem_link is not None:
            modem_link.close()
        raise
    radio = RadioState(sim={"ready": SimState.READY, "pin": SimState.PIN, "absent": SimState.ABSENT}[args.sim],
                       pin=args.pin)  # fmt: skip
    config = ModuleConfig(radio=radio, gprs_backend="tun" if args.gprs_over_tun else None)
    stack = Stack(random.Random(args.seed))
    if args.nameserver:
        stack.dns.servers = [IPv4Address(a).packed for a in args.nameserver]
    loop = NetLoop(stack)
    host = TunHost(loop, netns=args.tun_netns, mtu=args.tun_mtu, log=_log)
    dialer = None
    if modem_link is not None:
        dialer = ModemDialer(DialerSettings(pin=args.modem_pin, extra_init=tuple(args.modem_init),
                                            use_cmux=args.modem_cmux, use_dtr=args.modem_dtr_hangup,
                                            registration_timeout=args.modem_registration_timeout))  # fmt: skip
    module = Module(stack, config, store=FileStore(args.flash), host=host, uarts=tuple(links), now=loop.clock(),
                    modem=dialer)  # fmt: skip
    port = ModulePort(module, links, log=_log, modem=modem_link)
    loop.add_port(port)
    stop: list[str] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.append(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    wakeup = signal.set_wakeup_fd(loop.wakeup_fd, warn_on_full_buffer=False)
    _log(f"flash: {args.flash}; ready")
    try:
        loop.run(lambda: bool(stop), timeout=args.duration)
    finally:
        signal.set_wakeup_fd(wakeup)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        module.stack_config.stop()
        loop.close()
    if stop:
        _log(f"stopped by {stop[0]}")
    return 0
