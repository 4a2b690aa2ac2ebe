"""The ``wipstack`` command line: ``wipstack ppp``, ``tun``, ``modem``, ``ftp`` and ``demo``."""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import time
from collections.abc import Sequence
from ipaddress import IPv4Address
from pathlib import Path

from wipstack.cli_net import NetApp, add_stack_arguments, add_tun_arguments, add_tun_command, run_tun
from wipstack.drivers.link import ByteLink, FdLink, PtyLink, SerialLink, SocketLink, StdioLink
from wipstack.drivers.pcap import LinkType
from wipstack.drivers.ports import PppPort
from wipstack.ppp.config import UNSPECIFIED, CpConfig, IpcpConfig, LcpConfig, PapConfig, PppConfig
from wipstack.ppp.session import PppSession

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 124


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _address_pair(text: str) -> tuple[IPv4Address, IPv4Address]:
    local, _, peer = text.partition(":")
    return (IPv4Address(local) if local else UNSPECIFIED, IPv4Address(peer) if peer else UNSPECIFIED)


def _secret(text: str) -> tuple[str, str]:
    user, sep, password = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError("expected USER:PASSWORD")
    return user, password


def read_pap_secrets(path: Path) -> list[tuple[str, str]]:
    """pppd's pap-secrets format: ``client server secret [addresses]``; '#' starts a comment."""
    secrets = []
    for line in path.read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 3:
            secrets.append((fields[0].strip('"'), fields[2].strip('"')))
    return secrets


def add_ppp_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``wipstack ppp`` (named after pppd's where pppd has one)."""
    link = parser.add_mutually_exclusive_group(required=True)
    link.add_argument("--pty", metavar="PATH", help="create a pty; PATH becomes a symlink to its slave side")
    link.add_argument("--device", metavar="DEV", help="serial device path or pyserial URL")
    link.add_argument("--fd", type=int, metavar="N", help="an inherited, connected file descriptor")
    link.add_argument("--stdio", action="store_true", help="stdin/stdout are the line")
    parser.add_argument("--baud", type=int, default=115200, help="serial speed for --device (default 115200)")
    parser.add_argument("addresses", nargs="?", metavar="LOCAL:PEER", help="addresses, as pppd takes them")
    parser.add_argument("--local", type=IPv4Address, help="our IP address (default: ask the peer)")
    parser.add_argument("--peer", type=IPv4Address, help="address to assign to the peer (server role)")
    parser.add_argument("--dns", type=IPv4Address, action="append", default=[], help="DNS server to offer (x2)")
    parser.add_argument("--usepeerdns", action="store_true", help="ask the peer for DNS servers")
    parser.add_argument("--user", help="PAP peer-id we authenticate with when asked")
    parser.add_argument("--password", default="", help="PAP password we authenticate with")
    parser.add_argument("--require-pap", action="store_true", help="require the peer to authenticate (PAP)")
    parser.add_argument("--secret", type=_secret, action="append", default=[], help="accepted USER:PASSWORD")
    parser.add_argument("--pap-secrets", type=Path, help="a pppd-style pap-secrets file of accepted peers")
    parser.add_argument("--mru", type=int, default=1500, help="our MRU (default 1500)")
    parser.add_argument("--asyncmap", type=lambda s: int(s, 16), default=0, help="receive ACCM, hex (default 0)")
    parser.add_argument("--default-asyncmap", action="store_true", help="do not negotiate the ACCM")
    parser.add_argument("--nopcomp", action="store_true", help="do not negotiate protocol-field compression")
    parser.add_argument("--noaccomp", action="store_true", help="do not negotiate address/control compression")
    parser.add_argument("--nomagic", action="store_true", help="do not negotiate a magic number")
    parser.add_argument("--lcp-echo-interval", type=float, default=0.0, help="seconds between LCP echoes")
    parser.add_argument("--lcp-echo-failure", type=int, default=3, help="unanswered echoes before giving up")
    parser.add_argument("--restart", type=float, default=3.0, help="restart timer, seconds (default 3)")
    parser.add_argument("--max-configure", type=int, default=10, help="Max-Configure (default 10)")
    parser.add_argument("--max-terminate", type=int, default=2, help="Max-Terminate (default 2)")
    parser.add_argument("--max-failure", type=int, default=5, help="Max-Failure (default 5)")
    parser.add_argument("--passive", action="store_true", help="keep waiting for the peer after Max-Configure")
    parser.add_argument("--silent", action="store_true", help="send nothing until the peer sends a request")
    parser.add_argument("--seed", type=int, help="seed of the random source (magic numbers)")
    parser.add_argument("--up-time", type=float, default=0.0, help="terminate SECONDS after IPCP is up (0: stay)")
    parser.add_argument("--timeout", type=float, default=0.0, help="fail if IPCP is not up in SECONDS")
    parser.add_argument("--quiet", action="store_true", help="do not log every control packet")
    parser.add_argument("--defaultroute", action="store_true", help="default route through the link once it is up")
    add_stack_arguments(parser)
    add_tun_arguments(parser, prefix="tun-")


def config_from_args(args: argparse.Namespace) -> PppConfig:
    """Turn parsed ``wipstack ppp`` options into a PppConfig."""
    local = args.local or UNSPECIFIED
    peer = args.peer or UNSPECIFIED
    if args.addresses:
        pair_local, pair_peer = _address_pair(args.addresses)
        local = args.local or pair_local
        peer = args.peer or pair_peer
    secrets = list(args.secret)
    if args.pap_secrets:
        secrets += read_pap_secrets(args.pap_secrets)
    cp = CpConfig(
        restart_interval=args.restart,
        max_configure=args.max_configure,
        max_terminate=args.max_terminate,
        max_failure=args.max_failure,
        passive=args.passive,
        silent=args.silent,
    )
    return PppConfig(
        lcp=LcpConfig(
            mru=args.mru,
            accm=args.asyncmap,
            request_accm=not args.default_asyncmap,
            request_magic=not args.nomagic,
            request_pfc=not args.nopcomp,
            request_acfc=not args.noaccomp,
            allow_pfc=not args.nopcomp,
            allow_acfc=not args.noaccomp,
            echo_interval=args.lcp_echo_interval,
            echo_failure=args.lcp_echo_failure,
        ),
        pap=PapConfig(
            username=args.user,
            password=args.password,
            require=args.require_pap,
            secrets=tuple(secrets),
        ),
        ipcp=IpcpConfig(
            local_address=local,
            peer_address=peer,
            request_dns=args.usepeerdns,
            dns_servers=tuple(args.dns[:2]),
        ),
        cp=cp,
    )


def open_link(args: argparse.Namespace) -> ByteLink:
    """The byte link the options name."""
    if args.pty:
        link = PtyLink(args.pty)
        _log(f"pty ready: {link.path} -> {link.slave_path}")
        return link
    if args.device:
        return SerialLink(args.device, args.baud)
    if args.fd is not None:
        try:
            return SocketLink(socket.socket(fileno=args.fd), name=f"fd {args.fd}")
        except OSError:
            return FdLink(args.fd, name=f"fd {args.fd}")
    return StdioLink()


def run_ppp(args: argparse.Namespace) -> int:
    """``wipstack ppp``: run one PPP link (and the IP stack over it) until it ends."""
    if args.require_pap and not (args.secret or args.pap_secrets):
        _log("--require-pap needs --secret USER:PASSWORD or --pap-secrets FILE")
        return EXIT_USAGE
    config = config_from_args(args)
    app = NetApp(args, seed=args.seed, log=_log)
    port: PppPort | None = None
    try:
        link = open_link(args)
        session = PppSession(config, app.stack.rng, tracer=None if args.quiet else _log)
        port = PppPort(
            app.stack, session, link, default_route=args.defaultroute, log=_log, tap=app.tap("ppp0", LinkType.PPP)
        )
        app.loop.add_port(port)
        app.add_tun()
        app.start_services()
        app.install_signals()
        ppp = port
        stop = app.stop_requested

        def ended() -> bool:
            return ppp.session.is_dead and ppp.started_at is not None

        def terminate(reason: str) -> None:
            if not ppp.session.is_dead:
                ppp.session.close(time.monotonic(), reason)
                app.loop.run(lambda: ppp.session.is_dead, args.restart * (args.max_terminate + 1))

        port.open()
        up_deadline = time.monotonic() + args.timeout if args.timeout > 0 else None
        if not app.loop.run(
            lambda: bool(stop) or ppp.is_up or ended(),
            None if up_deadline is None else max(0.0, up_deadline - time.monotonic()),
        ) or not (ppp.is_up or stop):
            if ppp.session.is_dead:
                return EXIT_FAILED
            _log("IPCP did not come up in time")
            terminate("Timeout")
            return EXIT_TIMEOUT
        if not stop and ppp.ipcp_up_at is not None and ppp.started_at is not None:
            _log(f"IPCP up {ppp.ipcp_up_at - ppp.started_at:.3f} s after start")
        if args.resolve and not stop:
            app.resolve_all()
        if args.ping and not stop and not app.ping(args.ping):
            _log(f"no reply from {args.ping}")
        if (args.tcp_send or args.tcp_receive) and not stop:
            app.bulk()
        app.loop.run(lambda: bool(stop) or ended(), args.up_time if args.up_time > 0 else None)
        if not ppp.session.is_dead:
            if stop:
                _log(f"Terminating on signal {stop[0]}")
            terminate("User request")
        return EXIT_FAILED if ppp.session.failure else EXIT_OK
    finally:
        app.report()
        app.close()


def _drain(fd: int) -> None:
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 512):
            pass


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``wipstack`` command."""
    parser = argparse.ArgumentParser(prog="wipstack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    ppp = commands.add_parser("ppp", help="run a PPP client or server on a pty, serial port, fd or stdio")
    add_ppp_arguments(ppp)
    add_tun_command(commands)
    from wipstack.cli_ftp import add_ftp_command, run_ftp
    from wipstack.cli_modem import add_modem_command, run_modem
    from wipstack.cli_modemsim import add_modem_sim_command, run_modem_sim

    add_modem_command(commands)
    add_modem_sim_command(commands)
    add_ftp_command(commands)
    demo = commands.add_parser("demo", help="two wipstack PPP endpoints over a pty pair, end to end")
    demo.add_argument("--seed", type=int, default=1, help="seed of the nodes' random sources")
    demo.add_argument("--pcap", metavar="FILE", help="capture the four PPP ends to FILE (pcapng)")
    args = parser.parse_args(argv)
    if args.command == "ppp":
        return run_ppp(args)
    if args.command == "tun":
        return run_tun(args)
    if args.command == "modem":
        return run_modem(args)
    if args.command == "modem-sim":
        return run_modem_sim(args)
    if args.command == "ftp":
        return run_ftp(args)
    from wipstack.drivers.demo import run_demo

    return run_demo(seed=args.seed, pcap=args.pcap)


if __name__ == "__main__":
    sys.exit(main())
