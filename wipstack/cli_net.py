"""The network side of the command line: the stack, TUN bearers, services, ping, --pcap.

Shared by ``wipstack ppp`` and ``wipstack tun``: both run one :class:`NetApp` (a stack on a
:class:`~wipstack.drivers.netloop.NetLoop`) with the ports their options name.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import signal
import sys
import time
from collections.abc import Callable
from ipaddress import IPv4Address
from types import FrameType

from wipstack.dns import LookupResult
from wipstack.drivers.faults import FaultyTunPort, parse_faults
from wipstack.drivers.netloop import NetLoop
from wipstack.drivers.pcap import LinkType, PcapngWriter, PcapTap
from wipstack.drivers.ports import TunPort
from wipstack.drivers.services import BulkTransfer, TcpService
from wipstack.drivers.tun import TunDevice
from wipstack.net import Interface, Stack, StackConfig
from wipstack.net.icmp import PingConfig, PingSession
from wipstack.net.udp import SocketError, UdpSocket

Logger = Callable[[str], None]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 124


def log_stderr(line: str) -> None:
    """Log lines go to stderr, so stdout stays clean for data."""
    print(line, file=sys.stderr, flush=True)


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the IP stack and its services, common to every command."""
    group = parser.add_argument_group("IP stack")
    group.add_argument("--ttl", type=int, default=64, help="TTL of datagrams we send (default 64)")
    group.add_argument("--tos", type=int, default=0, help="TOS of datagrams we send (default 0)")
    group.add_argument("--frag-timeout", type=float, default=60.0, help="reassembly timeout, seconds (default 60)")
    group.add_argument("--forward", action="store_true", help="route datagrams between interfaces")
    group.add_argument("--udp-echo", type=int, metavar="PORT", action="append", default=[], help="UDP echo service")
    group.add_argument("--tcp-echo", type=int, metavar="PORT", action="append", default=[], help="TCP echo service")
    group.add_argument("--tcp-discard", type=int, metavar="PORT", action="append", default=[], help="TCP discard")
    group.add_argument("--tcp-chargen", type=int, metavar="PORT", action="append", default=[], help="TCP chargen")
    group.add_argument("--tcp-send", metavar="HOST:PORT", help="bulk TCP transfer: send --bytes to HOST:PORT")
    group.add_argument("--tcp-receive", metavar="HOST:PORT", help="bulk TCP transfer: read --bytes from HOST:PORT")
    group.add_argument("--bytes", type=int, default=10_000_000, help="octets of a bulk transfer (default 10 MB)")
    group.add_argument("--ping", metavar="HOST", help="ping HOST once the link is up and print the results")
    group.add_argument("--count", type=int, default=4, help="echo requests for --ping (default 4)")
    group.add_argument("--interval", type=float, default=1.0, help="seconds between requests (default 1)")
    group.add_argument("--size", type=int, default=56, help="ICMP data octets per request (default 56)")
    group.add_argument("--ping-timeout", type=float, default=1.0, help="seconds to wait for each reply")
    group.add_argument(
        "--nameserver", type=IPv4Address, action="append", default=[], help="DNS server (else learned from IPCP)"
    )
    group.add_argument("--resolve", metavar="NAME", action="append", default=[], help="resolve NAME and print it")
    group.add_argument("--pcap", metavar="FILE", help="write every packet crossing an interface to FILE (pcapng)")


def add_tun_arguments(parser: argparse.ArgumentParser, *, prefix: str = "") -> None:
    """Options of a TUN bearer (``prefix`` is ``"tun-"`` when the TUN is secondary)."""
    group = parser.add_argument_group("TUN bearer")
    group.add_argument(f"--{prefix}name", dest="tun_name", metavar="IFNAME", help="TUN device to create or attach")
    group.add_argument(f"--{prefix}local", dest="tun_local", type=IPv4Address, help="wipstack's address on the TUN")
    group.add_argument(f"--{prefix}peer", dest="tun_peer", type=IPv4Address, help="the kernel's address on the TUN")
    group.add_argument(f"--{prefix}mtu", dest="tun_mtu", type=int, default=1500, help="TUN MTU (default 1500)")
    group.add_argument(f"--{prefix}netns", dest="tun_netns", help="move the kernel side into this network namespace")
    group.add_argument(
        f"--{prefix}no-configure",
        dest="tun_no_configure",
        action="store_true",
        help="attach to a device that is already configured (do not run `ip`)",
    )
    group.add_argument(
        f"--{prefix}default-route", dest="tun_default_route", action="store_true", help="default route via the TUN"
    )
    group.add_argument(
        f"--{prefix}faults",
        dest="tun_faults",
        metavar="SPEC",
        help="impair the TUN link both ways, e.g. loss=1%%,delay=150ms,rate=80k,reorder=1%%,dup=0.5%%,corrupt=0.1%%",
    )
    group.add_argument(f"--{prefix}fault-seed", dest="tun_fault_seed", type=int, help="seed of the fault injector")


def stack_config_from_args(args: argparse.Namespace) -> StackConfig:
    """The StackConfig the options ask for."""
    return StackConfig(ttl=args.ttl, tos=args.tos, fragment_timeout=args.frag_timeout, forwarding=args.forward)


class NetApp:
    """A stack, its loop, the pcap writer, the services and the signal handling of one command."""

    def __init__(self, args: argparse.Namespace, *, seed: int | None = None, log: Logger = log_stderr) -> None:
        self.args = args
        self.log = log
        self.stack = Stack(random.Random(seed), stack_config_from_args(args))
        if getattr(args, "nameserver", None):
            self.stack.dns.servers = [a.packed for a in args.nameserver]
        self.loop = NetLoop(self.stack)
        self.pcap = PcapngWriter.open(args.pcap) if getattr(args, "pcap", None) else None
        self.stop_requested: list[str] = []
        self.services: list[UdpSocket] = []
        self.tcp_services: list[TcpService] = []
        self._previous_handlers: dict[int, object] = {}
        self._previous_wakeup: int | None = None

    # ---------------------------------------------------------------- set-up
    def tap(self, name: str, link_type: LinkType) -> PcapTap | None:
        """A capture tap for one interface, when ``--pcap`` is on."""
        if self.pcap is None:
            return None
        return PcapTap(self.pcap, self.pcap.add_interface(name, link_type))

    def add_tun(self) -> TunPort | None:
        """The TUN bearer the options describe, or None without ``--tun-name``/``--name``."""
        args = self.args
        if not args.tun_name and args.tun_local is None:
            return None
        if args.tun_local is None or args.tun_peer is None:
            raise SystemExit("a TUN bearer needs --local and --peer addresses (or --tun-local/--tun-peer)")
        device = TunDevice(args.tun_name, mtu=args.tun_mtu)
        try:
            if args.tun_netns:
                device.move_to_netns(args.tun_netns)
            if not args.tun_no_configure:
                device.configure_kernel_side(str(args.tun_local), str(args.tun_peer), netns=args.tun_netns)
        except BaseException:
            device.close()
            raise
        interface = Interface(device.name, args.tun_local.packed, peer=args.tun_peer.packed, mtu=args.tun_mtu)
        port = TunPort(self.stack, interface, device, tap=self.tap(device.name, LinkType.RAW_IPV4))
        if args.tun_default_route:
            self.stack.routes.add_default(device.name)
        where = f" (kernel side in netns {args.tun_netns})" if args.tun_netns else ""
        self.log(f"{device.name}: {args.tun_local} peer {args.tun_peer} mtu {args.tun_mtu}{where}")
        if args.tun_faults:
            faults = parse_faults(args.tun_faults)
            self.loop.add_port(FaultyTunPort.wrap(port, faults, faults, seed=args.tun_fault_seed))
            self.log(f"{device.name}: impaired both ways: {faults.describe()}")
        else:
            self.loop.add_port(port)
        return port

    def start_services(self) -> None:
        """The UDP echo services of ``--udp-echo``."""
        for port in self.args.udp_echo:
            sock = self.stack.udp_socket()
            sock.bind(port=port)

            def echo(data: bytes, source: tuple[bytes, int], now: float, sock: UdpSocket = sock) -> None:
                with contextlib.suppress(Exception):  # a reply that cannot leave is dropped, as by a host
                    sock.sendto(data, *source)

            sock.on_datagram = echo
            self.services.append(sock)
            self.log(f"UDP echo service on port {port}")
        for kind in ("echo", "discard", "chargen"):
            for port in getattr(self.args, f"tcp_{kind}", []):
                self.tcp_services.append(TcpService(self.stack, port, kind, log=self.log))
                self.log(f"TCP {kind} service on port {port}")

    def bulk(self) -> bool:
        """The ``--tcp-send`` / ``--tcp-receive`` transfer; logs its rate; True on success."""
        args = self.args
        target = args.tcp_send or args.tcp_receive
        host, _, port_text = target.rpartition(":")
        found = self.lookup(host)
        if found is None or found.error is not None or not found.addresses:
            self.log(f"tcp: cannot resolve {host}")
            return False
        try:
            transfer = BulkTransfer(
                self.stack, str(IPv4Address(found.addresses[0])), int(port_text), args.bytes, time.monotonic(),
                time.monotonic, receive=args.tcp_receive is not None,
            )  # fmt: skip
        except (OSError, ValueError) as exc:
            self.log(f"tcp: {target}: {exc}")
            return False
        self.loop.run(lambda: transfer.done or bool(self.stop_requested), timeout=None)
        if transfer.error is not None:
            self.log(f"tcp: {target}: {transfer.error}")
            return False
        moved = transfer.received if transfer.receive_mode else transfer.sent
        conn = transfer.sock.connection
        self.log(
            f"tcp: {'received' if transfer.receive_mode else 'sent'} {moved} octets in "
            f"{(transfer.finished_at or 0) - (transfer.connected_at or 0):.3f} s, "
            f"{transfer.rate_bps() / 1e6:.1f} Mbit/s, sha256 {transfer.sha256.hexdigest()[:16]}…, "
            f"retransmitted {conn.retransmitted_segments}, timeouts {conn.timeouts}"
        )
        return bool(moved >= args.bytes)

    def install_signals(self) -> None:
        """SIGINT/SIGTERM/SIGHUP ask the command to stop; they wake the loop."""

        def on_signal(signum: int, frame: FrameType | None) -> None:
            self.stop_requested.append(signal.Signals(signum).name)

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self._previous_handlers[sig] = signal.signal(sig, on_signal)
        self._previous_wakeup = signal.set_wakeup_fd(self.loop.wakeup_fd)

    # --------------------------------------------------------------- running
    def ping(self, host: str) -> bool:
        """Ping ``host`` as ``--count``/``--interval``/``--size`` say; print lines like ping(8); True if any reply."""
        args = self.args
        config = PingConfig(count=args.count, interval=args.interval, timeout=args.ping_timeout, size=args.size)
        found = self.lookup(host)
        if found is None or found.error is not None or not found.addresses:
            why = "interrupted" if found is None else found.error.value if found.error else "no address"
            self.log(f"ping: {host}: {why}")
            return False
        try:
            session: PingSession = self.stack.ping(found.addresses[0], config, time.monotonic())
        except SocketError as exc:
            self.log(f"ping: {host}: {exc}")
            return False
        self.log(f"PING {host}: {args.size} data bytes")
        received = 0
        while not session.done and not self.stop_requested:
            self.loop.run(lambda: session.done or bool(self.stop_requested), timeout=0.2)
            while (reply := session.next_reply()) is not None:
                if reply.rtt is not None:
                    received += 1
                    self.log(f"{reply.size + 8} bytes from {host}: icmp_seq={reply.sequence} ttl={reply.ttl} "
                             f"time={reply.rtt * 1000:.3f} ms")  # fmt: skip
                else:
                    self.log(f"icmp_seq={reply.sequence} " + (reply.error or "timeout"))
        rtts = [r.rtt for r in session.results if r is not None and r.rtt is not None]
        loss = 100.0 * (args.count - received) / args.count
        self.log(f"--- {host} ping statistics: {args.count} transmitted, {received} received, {loss:.0f}% loss")
        if rtts:
            self.log(f"rtt min/avg/max = {min(rtts) * 1000:.3f}/{sum(rtts) / len(rtts) * 1000:.3f}/"
                     f"{max(rtts) * 1000:.3f} ms")  # fmt: skip
        return received > 0

    def lookup(self, name: str) -> LookupResult | None:
        """Resolve ``name`` (a host name or a dotted address) on the loop; None if interrupted."""
        handle = self.stack.dns.resolve(name, time.monotonic())
        box: list[LookupResult] = []

        def done() -> bool:
            result = self.stack.dns.result(handle)
            if result is not None:
                box.append(result)
            return bool(box) or bool(self.stop_requested)

        self.loop.run(done, timeout=60.0)
        return box[0] if box else None

    def resolve_all(self) -> bool:
        """Resolve every ``--resolve`` name and log the answers; True if all resolved."""
        ok = True
        for name in self.args.resolve:
            result = self.lookup(name)
            if result is None or result.error is not None:
                why = "no result" if result is None or result.error is None else result.error.value
                self.log(f"{name}: {why}")
                ok = False
                continue
            addresses = ", ".join(str(IPv4Address(a)) for a in result.addresses)
            alias = f" (canonical name {result.canonical_name})" if result.canonical_name != name else ""
            self.log(f"{name}: {addresses}{alias}")
        return ok

    def serve(self, duration: float | None) -> None:
        """Run until a signal or ``duration`` seconds."""
        self.loop.run(lambda: bool(self.stop_requested), duration)

    def report(self) -> None:
        """Counters of the stack, one line."""
        counts = " ".join(f"{k}={v}" for k, v in sorted(self.stack.counters().items()) if v)
        self.log(f"ip: {counts or 'no traffic'}")

    def close(self) -> None:
        """Restore signals, close ports and the capture."""
        if self._previous_wakeup is not None:
            signal.set_wakeup_fd(self._previous_wakeup)
            self._previous_wakeup = None
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous_handlers.clear()
        for sock in self.services:
            sock.close()
        for service in self.tcp_services:
            service.close()
        self.loop.close()
        if self.pcap is not None:
            self.pcap.close()
            self.log(f"capture written: {self.args.pcap}")


def add_tun_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``wipstack tun``."""
    tun = commands.add_parser("tun", help="run the stack on a Linux TUN device (needs root)")
    add_tun_arguments(tun)
    add_stack_arguments(tun)
    tun.add_argument("--duration", type=float, default=0.0, help="stop after SECONDS (0: until a signal)")
    tun.add_argument("--seed", type=int, help="seed of the random source (IP IDs, ports)")


def run_tun(args: argparse.Namespace) -> int:
    """``wipstack tun``: the stack on a TUN device, with services, until a signal or --duration."""
    if args.tun_local is None or args.tun_peer is None:
        log_stderr("wipstack tun needs --local ADDRESS (ours) and --peer ADDRESS (the kernel's)")
        return EXIT_USAGE
    app = NetApp(args, seed=args.seed)
    try:
        app.install_signals()
        app.add_tun()
        app.start_services()
        status = EXIT_OK
        if args.resolve and not app.resolve_all():
            status = EXIT_FAILED
        if args.ping and not app.ping(args.ping):
            status = EXIT_FAILED
        if (args.tcp_send or args.tcp_receive) and not app.bulk():
            status = EXIT_FAILED
        one_shot = args.ping or args.resolve or args.tcp_send or args.tcp_receive
        serving = args.udp_echo or args.tcp_echo or args.tcp_discard or args.tcp_chargen
        if one_shot and not args.duration and not serving:
            return status
        app.serve(args.duration if args.duration > 0 else None)
        return status
    finally:
        app.report()
        app.close()
