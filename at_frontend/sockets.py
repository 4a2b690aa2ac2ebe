"""``AT+WIPCREATE``, ``+WIPCLOSE``, ``+WIPOPT`` and ``+WIPDATA``: the module's sockets.

Each protocol has its own index space, as on the module: 8 UDP sockets (protocol 1), 8 TCP
client sockets (2: connected ones, including those a server accepted), 4 TCP servers (3),
one FTP session (4, the FTP issue).  A socket belongs to the UART that created it, which
gets its unsolicited codes (``+WIPREADY``, ``+WIPACCEPT``, ``+WIPDATA``, ``+WIPPEERCLOSE``);
any UART may map it to data mode.  Each socket is one of wipstack's own (``TcpSocket``,
``TcpServer``, ``UdpSocket``); data stays in it until a UART reads it, so the TCP window
is what holds a peer back when the UART is slow.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from at_frontend.channel import Channel, Mode
from at_frontend.datamode import TcpDataLink, UdpDataLink
from at_frontend.parser import Arg, Command, CommandKind
from at_frontend.registry import CONNECT, Outcome, arg_count, command, int_arg, require_started
from at_frontend.responses import CmeError, CommandError, ResultCode
from wipstack.net.udp import SocketError, UdpSocket
from wipstack.tcp.events import Connected, ConnectionFailed, DataAvailable, PeerClosed, SendSpace, TcpEvent
from wipstack.tcp.socket import TcpServer, TcpSocket

if TYPE_CHECKING:
    from at_frontend.module import Module

SET, READ, TEST = CommandKind.SET, CommandKind.READ, CommandKind.TEST
UDP, TCP_CLIENT, TCP_SERVER, FTP = 1, 2, 3, 4
LIMITS = {UDP: 8, TCP_CLIENT: 8, TCP_SERVER: 4, FTP: 1}
#: Datagrams (and octets) a UDP socket holds for its UART before further ones are dropped.
UDP_QUEUE, UDP_QUEUE_BYTES = 64, 128 * 1024


@dataclass(eq=False)
class SocketEntry:
    """One created socket."""

    proto: int
    idx: int
    owner: Channel
    tcp: TcpSocket | None = None
    udp: UdpSocket | None = None
    server: TcpServer | None = None
    spawn_range: tuple[int, int] | None = None  # TCP server: indexes of accepted sockets
    spawned_by: int | None = None  # TCP client accepted by that server index
    peer: tuple[bytes, int] | None = None  # UDP peer (None: a listening socket)
    ready: bool = False
    peer_closed: bool = False
    failed: bool = False
    resolving: int | None = None  # DNS handle while the peer name resolves
    peer_port: int = 0
    mapped: Channel | None = None
    datagrams: deque[tuple[bytes, tuple[bytes, int]]] = field(default_factory=deque)
    queued_bytes: int = 0
    dropped: int = 0
    last_source: tuple[bytes, int] | None = None
    ttl: int | None = None
    tos: int | None = None
    send_buffer: int | None = None  # a TCP server's settings for the sockets it accepts
    receive_buffer: int | None = None
    nodelay: bool = False
    announced: int = 0  # the readable count the last +WIPDATA gave


class SocketTable:
    """The sockets of a module, by (protocol, index)."""

    def __init__(self, module: Module) -> None:
        self.module = module
        self.entries: dict[tuple[int, int], SocketEntry] = {}
        self.links: dict[tuple[int, int], TcpDataLink | UdpDataLink] = {}
        self.last_mapping: dict[int, tuple[tuple[int, int], bool]] = {}  # uart -> (key, transparent), for ATO

    # ------------------------------------------------------------------ creation
    def create(self, channel: Channel, cmd: Command) -> Outcome | None:
        module = self.module
        proto = int_arg(cmd.args[0], 0, 255, CmeError.BAD_PROTOCOL)
        if proto in (5, 6, 7):
            raise CommandError(CmeError.NOT_IMPLEMENTED, f"protocol {proto} (HTTP/SMTP/POP3) is not available")
        if proto not in LIMITS:
            raise CommandError(CmeError.BAD_PROTOCOL)
        if not module.bearers.interface_names() and not module.stack.interfaces:
            raise CommandError(CmeError.NOT_ALLOWED_IN_STACK_STATE, "no bearer is up")
        if proto == FTP:
            return module.ftp.create(channel, cmd)
        arg_count(cmd, 3, 6)
        idx = int_arg(cmd.args[1], 1, LIMITS[proto], CmeError.BAD_INDEX)
        key = (proto, idx)
        if key in self.entries:
            raise CommandError(CmeError.INDEX_ALREADY_ACTIVE)
        if proto == TCP_CLIENT and self._reserved_by_server(idx):
            raise CommandError(CmeError.INDEX_RESERVED_BY_SERVER)
        entry = SocketEntry(proto, idx, channel)
        if proto == UDP:
            self._create_udp(entry, cmd.args)
        elif proto == TCP_CLIENT:
            arg_count(cmd, 4, 4)
            self._create_tcp_client(entry, cmd.args[2].text, int_arg(cmd.args[3], 1, 65535, CmeError.BAD_PORT_NUMBER))
        else:
            arg_count(cmd, 5, 5)
            self._create_tcp_server(entry, cmd.args)
        self.entries[key] = entry
        return None

    def _create_udp(self, entry: SocketEntry, args: tuple[Arg, ...]) -> None:
        if len(args) not in (3, 5):
            raise CommandError(CmeError.INVALID_OPTION, "UDP takes <idx>,<local port>[,<peer>,<peer port>]")
        local_port = int_arg(args[2], 0, 65535, CmeError.BAD_PORT_NUMBER)
        sock = self.module.stack.udp_socket()
        try:
            sock.bind(port=local_port)
        except SocketError:
            sock.close()
            raise CommandError(CmeError.BAD_PORT_STATE) from None
        sock.on_datagram = lambda data, source, now: self._datagram(entry, data, source)
        entry.udp = sock
        if len(args) == 5:
            entry.peer_port = int_arg(args[4], 1, 65535, CmeError.BAD_PORT_NUMBER)
            literal = _address(args[3].text)
            if literal is None:
                entry.resolving = self.module.stack.dns.resolve(args[3].text, self.module.now)
                return
            entry.peer = (literal, entry.peer_port)
        entry.ready = True
        entry.owner.urc(f"+WIPREADY: {UDP},{entry.idx}")

    def _create_tcp_client(self, entry: SocketEntry, host: str, port: int) -> None:
        entry.peer_port = port
        literal = _address(host)
        if literal is None:
            if not host:
                raise CommandError(CmeError.INVALID_OPTION_VALUE, "no peer address")
            entry.resolving = self.module.stack.dns.resolve(host, self.module.now)
            return
        self._connect(entry, literal)

    def _connect(self, entry: SocketEntry, address: bytes) -> None:
        try:
            sock = TcpSocket.connect(self.module.stack.tcp, address, entry.peer_port, self.module.now)
        except OSError as exc:
            raise CommandError(CmeError.HOST_UNREACHABLE, str(exc)) from None
        self._adopt(entry, sock)

    def _adopt(self, entry: SocketEntry, sock: TcpSocket) -> None:
        entry.tcp = sock
        sock.on_event = lambda s, event: self._tcp_event(entry, event)

    def _create_tcp_server(self, entry: SocketEntry, args: tuple[Arg, ...]) -> None:
        port = int_arg(args[2], 1, 65535, CmeError.BAD_PORT_NUMBER)
        low = int_arg(args[3], 1, LIMITS[TCP_CLIENT], CmeError.BAD_INDEX)
        high = int_arg(args[4], 1, LIMITS[TCP_CLIENT], CmeError.BAD_INDEX)
        if high < low:
            raise CommandError(CmeError.BAD_INDEX, "<to idx> below <from idx>")
        for other in self.entries.values():
            if other.spawn_range is not None and not (high < other.spawn_range[0] or low > other.spawn_range[1]):
                raise CommandError(CmeError.INDEX_RESERVED_BY_SERVER)
        try:
            server = TcpServer(self.module.stack.tcp, port)
        except OSError:
            raise CommandError(CmeError.BAD_PORT_STATE) from None
        server.on_accept = lambda sock: self._accepted(entry, sock)
        entry.server = server
        entry.spawn_range = (low, high)
        entry.ready = True

    def _reserved_by_server(self, idx: int) -> bool:
        return any(e.spawn_range is not None and e.spawn_range[0] <= idx <= e.spawn_range[1]
                   for e in self.entries.values())  # fmt: skip

    def _accepted(self, server_entry: SocketEntry, sock: TcpSocket) -> None:
        assert server_entry.spawn_range is not None
        low, high = server_entry.spawn_range
        idx = next((i for i in range(low, high + 1) if (TCP_CLIENT, i) not in self.entries), None)
        if idx is None:
            sock.abort(self.module.now)  # every index of the range is in use
            return
        entry = SocketEntry(TCP_CLIENT, idx, server_entry.owner, spawned_by=server_entry.idx, ready=True)
        entry.peer_port = sock.remote[1]
        self.entries[(TCP_CLIENT, idx)] = entry
        sock.set_buffers(send=server_entry.send_buffer, receive=server_entry.receive_buffer)
        sock.nodelay = server_entry.nodelay
        sock.ttl, sock.tos = server_entry.ttl, server_entry.tos
        self._adopt(entry, sock)
        server_entry.owner.urc(f"+WIPACCEPT: {server_entry.idx},{idx}")
        # data that came with the handshake is announced by the DataAvailable still queued

    # ------------------------------------------------------------------ events
    def _tcp_event(self, entry: SocketEntry, event: TcpEvent) -> None:
        key = (entry.proto, entry.idx)
        if self.entries.get(key) is not entry:
            return  # closed by the host meanwhile
        if isinstance(event, Connected):
            if entry.spawned_by is None:  # an accepted socket was announced by +WIPACCEPT
                entry.owner.urc(f"+WIPREADY: {entry.proto},{entry.idx}")
            entry.ready = True
        elif isinstance(event, DataAvailable):
            sock = entry.tcp
            if entry.mapped is None and sock is not None and sock.readable != entry.announced:
                entry.announced = sock.readable  # once per arrival: the count readable now
                if sock.readable:
                    entry.owner.urc(f"+WIPDATA: {entry.proto},{entry.idx},{sock.readable}")
        elif isinstance(event, SendSpace):
            link = self.links.get(key)
            if isinstance(link, TcpDataLink):
                link.flush_backlog(self.module.now)
        elif isinstance(event, PeerClosed):
            entry.peer_closed = True
            entry.owner.urc(f"+WIPPEERCLOSE: {entry.proto},{entry.idx}")
        elif isinstance(event, ConnectionFailed):
            entry.failed = True
            if not entry.ready:
                # the connection never came up: report why and free the index
                code = CmeError.HOST_UNREACHABLE if event.errno_name == "ETIMEDOUT" else CmeError.CONNECTION_RESET
                if event.errno_name in ("ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH"):
                    code = CmeError.HOST_UNREACHABLE
                entry.owner.urc(f"+CME ERROR: {int(code)}")
                self._forget(entry)
            elif not entry.peer_closed:
                entry.peer_closed = True
                entry.owner.urc(f"+WIPPEERCLOSE: {entry.proto},{entry.idx}")

    def _datagram(self, entry: SocketEntry, data: bytes, source: tuple[bytes, int]) -> None:
        if entry.peer is not None and source != entry.peer:
            entry.dropped += 1  # a connected UDP socket takes its peer's datagrams only
            return
        if len(entry.datagrams) >= UDP_QUEUE or entry.queued_bytes + len(data) > UDP_QUEUE_BYTES:
            entry.dropped += 1
            return
        entry.datagrams.append((data, source))
        entry.queued_bytes += len(data)
        if entry.mapped is None:
            entry.owner.urc(f'+WIPDATA: {UDP},{entry.idx},{len(data)},"{IPv4Address(source[0])}",{source[1]}')

    def send_datagram(self, entry: SocketEntry, data: bytes) -> None:
        """A datagram the host wrote in data mode: to the peer, or back to the last sender."""
        sock = entry.udp
        peer = entry.peer or entry.last_source
        if sock is None or peer is None:
            entry.dropped += 1  # a listening socket that has heard from nobody cannot send
            return
        try:
            sock.sendto(data, peer[0], peer[1])
        except SocketError:
            entry.dropped += 1

    # ------------------------------------------------------------------ loop side
    def poll(self, now: float) -> None:
        for entry in list(self.entries.values()):
            if entry.resolving is not None:
                self._check_resolution(entry)

    def _check_resolution(self, entry: SocketEntry) -> None:
        assert entry.resolving is not None
        result = self.module.stack.dns.result(entry.resolving)
        if result is None:
            return
        entry.resolving = None
        if result.error is not None or not result.addresses:
            entry.owner.urc(f"+CME ERROR: {int(CmeError.HOST_UNREACHABLE)}")
            self._forget(entry)
            return
        address = result.addresses[0]
        if entry.proto == UDP:
            entry.peer = (address, entry.peer_port)
            entry.ready = True
            entry.owner.urc(f"+WIPREADY: {UDP},{entry.idx}")
            return
        try:
            self._connect(entry, address)
        except CommandError as exc:
            entry.owner.urc(f"+CME ERROR: {int(exc.code or CmeError.HOST_UNREACHABLE)}")
            self._forget(entry)

    def next_deadline(self) -> float | None:
        return None

    def on_timer(self, now: float) -> None:
        pass

    # ------------------------------------------------------------------ closing
    def close(self, proto: int, idx: int, now: float) -> None:
        entry = self.entries.get((proto, idx))
        if entry is None:
            raise CommandError(CmeError.BAD_STATE, "no such socket")
        if entry.tcp is not None and not entry.failed:
            entry.tcp.close(now)  # FIN; RST when unread data is thrown away (RFC 2525 §2.17)
        self._forget(entry)

    def _forget(self, entry: SocketEntry) -> None:
        key = (entry.proto, entry.idx)
        if self.entries.get(key) is entry:
            del self.entries[key]
        if entry.resolving is not None:
            self.module.stack.dns.cancel(entry.resolving)
            entry.resolving = None
        if entry.mapped is not None:
            channel = entry.mapped
            entry.mapped = None
            if channel.mode is Mode.DATA and channel.data_key == key:
                channel.leave_data(self.module.now)
                channel.out += channel.framing.result(ResultCode.NO_CARRIER)  # closed under the UART
                channel.release_urcs()
        self.links.pop(key, None)
        if entry.udp is not None:
            entry.udp.close()
        if entry.server is not None and not entry.server.listener.closed:
            entry.server.close(self.module.now)
        if entry.tcp is not None:
            entry.tcp.on_event = None

    def close_all(self, now: float) -> None:
        for entry in list(self.entries.values()):
            if entry.tcp is not None and not entry.failed:
                entry.tcp.abort(now)
            self._forget(entry)

    # ------------------------------------------------------------------ data mode
    def map(self, channel: Channel, proto: int, idx: int, transparent: bool) -> None:
        entry = self.entries.get((proto, idx))
        if entry is None or proto == TCP_SERVER:
            raise CommandError(CmeError.BAD_STATE, "no socket to map")
        if not entry.ready or (entry.mapped is not None and entry.mapped is not channel):
            raise CommandError(CmeError.BAD_STATE, "the socket is not ready or mapped elsewhere")
        link: TcpDataLink | UdpDataLink
        if proto == UDP:
            link = UdpDataLink(self, entry, transparent)
        else:
            link = TcpDataLink(self, entry, transparent)
            if entry.peer_closed and entry.tcp is not None and entry.tcp.readable == 0 and transparent:
                raise CommandError(CmeError.PEER_CLOSED)
        entry.mapped = channel
        self.links[(proto, idx)] = link
        self.last_mapping[channel.uart] = ((proto, idx), transparent)
        channel.enter_data((proto, idx), link, self.module.now)

    def unmap(self, proto: int, idx: int) -> None:
        """``AT+WIPDATA=<proto>,<idx>,0`` from another UART: that UART goes back to AT mode."""
        entry = self.entries.get((proto, idx))
        if entry is None:
            raise CommandError(CmeError.BAD_STATE, "no such socket")
        channel = entry.mapped
        if channel is not None and channel.data_key == (proto, idx):
            self.unmapped(channel, self.module.now)
            channel.leave_data(self.module.now)
            channel.out += channel.framing.result(ResultCode.OK)
            channel.release_urcs()

    def unmapped(self, channel: Channel, now: float) -> None:
        """``channel`` leaves data mode (``+++``, unmap, end of link)."""
        key = channel.data_key
        if key is None:
            return
        entry = self.entries.get(key)
        self.links.pop(key, None)
        if entry is not None:
            entry.mapped = None
            entry.announced = entry.tcp.readable if entry.tcp is not None else 0
            if entry.announced:
                entry.owner.urc(f"+WIPDATA: {entry.proto},{entry.idx},{entry.announced}")

    def resume_data(self, channel: Channel) -> bool:
        """``ATO``: map the UART again to the socket it was last mapped to."""
        last = self.last_mapping.get(channel.uart)
        if last is None or last[0] not in self.entries:
            return False
        (proto, idx), transparent = last
        try:
            self.map(channel, proto, idx, transparent)
        except CommandError:
            return False
        return True

    # ------------------------------------------------------------------ options
    def option(self, entry: SocketEntry, opt: int, value: Arg | None) -> str | None:
        """Read (``value`` None) or write one ``+WIPOPT`` option."""
        proto = entry.proto
        sock = entry.tcp
        local = entry.udp.local if entry.udp is not None else (sock.local if sock is not None else None)
        if entry.server is not None:
            local = (b"\0\0\0\0", entry.server.port)
        readable = {
            0: lambda: str(local[1] if local else 0),
            1: lambda: str(self._peer(entry)[1]),
            2: lambda: f'"{IPv4Address(self._peer(entry)[0])}"',
            3: lambda: str(int(entry.peer is not None or proto != UDP)),
            6: lambda: str(
                sock.readable if sock is not None else (len(entry.datagrams[0][0]) if entry.datagrams else 0)
            ),
        }
        writable = {4, 5, 7, 8, 9}
        valid = {UDP: {0, 1, 2, 3, 6, 8, 9}, TCP_CLIENT: {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, TCP_SERVER: {0, 4, 5, 7, 8, 9}}
        if opt not in range(10):
            raise CommandError(CmeError.INVALID_OPTION)
        if opt not in valid[proto]:
            raise CommandError(CmeError.OPTION_NOT_SUPPORTED)
        if value is None:
            if opt in readable:
                return readable[opt]()
            return str(self._read_setting(entry, opt))
        if opt not in writable:
            raise CommandError(CmeError.OPTION_NOT_SUPPORTED, "read-only option")
        ranges = {4: (536, 36864), 5: (536, 65535), 7: (0, 1), 8: (1, 255), 9: (0, 255)}
        number = int_arg(value, *ranges[opt], CmeError.INVALID_OPTION_VALUE)
        self._write_setting(entry, opt, number)
        return None

    def _peer(self, entry: SocketEntry) -> tuple[bytes, int]:
        if entry.tcp is not None:
            return entry.tcp.remote
        return entry.peer or entry.last_source or (b"\0\0\0\0", 0)

    def _read_setting(self, entry: SocketEntry, opt: int) -> int:
        sock = entry.tcp
        config = self.module.stack.tcp.config
        if opt == 4:
            return sock.send_buffer if sock is not None else entry.send_buffer or config.send_buffer
        if opt == 5:
            return sock.receive_buffer if sock is not None else entry.receive_buffer or config.receive_buffer
        if opt == 7:
            return int(sock.nodelay) if sock is not None else int(entry.nodelay)
        stack_config = self.module.stack.config
        if opt == 8:
            own = sock.ttl if sock is not None else (entry.udp.ttl if entry.udp is not None else entry.ttl)
            return own if own is not None else stack_config.ttl
        own = sock.tos if sock is not None else (entry.udp.tos if entry.udp is not None else entry.tos)
        return own if own is not None else stack_config.tos

    def _write_setting(self, entry: SocketEntry, opt: int, value: int) -> None:
        sock = entry.tcp
        if opt in (4, 5, 7) and sock is None:  # a server's, for the sockets it accepts
            if opt == 4:
                entry.send_buffer = value
            elif opt == 5:
                entry.receive_buffer = value
            else:
                entry.nodelay = bool(value)
            return
        if opt == 4 and sock is not None:
            sock.set_buffers(send=value)
        elif opt == 5 and sock is not None:
            sock.set_buffers(receive=value)
        elif opt == 7 and sock is not None:
            sock.nodelay = bool(value)
        elif opt in (8, 9):
            # the socket's own setting; a server keeps it for the sockets it accepts
            target: object = sock if sock is not None else entry.udp if entry.udp is not None else entry
            setattr(target, "ttl" if opt == 8 else "tos", value)


def _address(text: str) -> bytes | None:
    """A dotted quad as 4 octets, or None for a host name."""
    try:
        return IPv4Address(text).packed
    except ValueError:
        return None


# ---------------------------------------------------------------------------- commands


@command("+WIPCREATE")
def wipcreate(module: Module, channel: Channel, cmd: Command) -> Outcome | None:
    """``AT+WIPCREATE=<proto>,<idx>,...``; ``?`` lists the sockets."""
    if cmd.kind is READ:
        for idx, ftp_entry in sorted(module.ftp.entries.items()):
            channel.info(f'+WIPCREATE: {FTP},{idx},"{ftp_entry.host}",{ftp_entry.port}')
        for (proto, idx), entry in sorted(module.sockets.entries.items()):
            local = module.sockets.option(entry, 0, None)
            if proto == TCP_SERVER:
                channel.info(f"+WIPCREATE: {proto},{idx},{local}")
            else:
                peer = module.sockets._peer(entry)
                channel.info(f'+WIPCREATE: {proto},{idx},{local},"{IPv4Address(peer[0])}",{peer[1]}')
        return None
    if cmd.kind is TEST:
        channel.info("+WIPCREATE: (1-4),(1-8),(0-65535),(0-65535)")
        return None
    if cmd.kind is not SET:
        raise CommandError(None)
    require_started(module)
    arg_count(cmd, 2, 7)
    return module.sockets.create(channel, cmd)


@command("+WIPCLOSE")
def wipclose(module: Module, channel: Channel, cmd: Command) -> None:
    """``AT+WIPCLOSE=<proto>,<idx>``."""
    if cmd.kind in (READ, TEST):
        if cmd.kind is TEST:
            channel.info("+WIPCLOSE: (1-4),(1-8)")
        return
    if cmd.kind is not SET:
        raise CommandError(None)
    require_started(module)
    arg_count(cmd, 2, 2)
    proto = int_arg(cmd.args[0], 0, 255, CmeError.BAD_PROTOCOL)
    if proto not in LIMITS:
        raise CommandError(CmeError.BAD_PROTOCOL)
    idx = int_arg(cmd.args[1], 1, LIMITS[proto], CmeError.BAD_INDEX)
    if proto == FTP:
        module.ftp.close(idx)
        return
    module.sockets.close(proto, idx, module.now)


@command("+WIPOPT")
def wipopt(module: Module, channel: Channel, cmd: Command) -> None:
    """``AT+WIPOPT=<proto>,<idx>,1,<opt>`` reads, ``...,2,<opt>,<value>`` writes."""
    if cmd.kind is TEST:
        channel.info("+WIPOPT: (1-3),(1-8),(1-2),(0-9)")
        return
    if cmd.kind is not SET:
        raise CommandError(None)
    require_started(module)
    arg_count(cmd, 4, 5)
    proto = int_arg(cmd.args[0], 0, 255, CmeError.BAD_PROTOCOL)
    if proto not in LIMITS:
        raise CommandError(CmeError.BAD_PROTOCOL)
    idx = int_arg(cmd.args[1], 1, LIMITS[proto], CmeError.BAD_INDEX)
    action = int_arg(cmd.args[2], 1, 2, CmeError.INVALID_OPTION_VALUE)
    opt = int_arg(cmd.args[3], 0, 255, CmeError.INVALID_OPTION)
    if proto == FTP:
        ftp_entry = module.ftp.entries.get(idx)
        if ftp_entry is None:
            raise CommandError(CmeError.BAD_STATE, "no FTP session")
        if action == 1:
            arg_count(cmd, 4, 4)
            channel.info(f"+WIPOPT: {proto},{opt},{module.ftp.option(ftp_entry, opt, None)}")
        else:
            arg_count(cmd, 5, 5)
            module.ftp.option(ftp_entry, opt, cmd.args[4])
        return
    entry = module.sockets.entries.get((proto, idx))
    if entry is None:
        raise CommandError(CmeError.BAD_STATE, "no such socket")
    if action == 1:
        arg_count(cmd, 4, 4)
        channel.info(f"+WIPOPT: {proto},{opt},{module.sockets.option(entry, opt, None)}")
    else:
        arg_count(cmd, 5, 5)
        module.sockets.option(entry, opt, cmd.args[4])


@command("+WIPDATA")
def wipdata(module: Module, channel: Channel, cmd: Command) -> Outcome | None:
    """``AT+WIPDATA=<proto>,<idx>,<mode>``: 1 continuous, 2 transparent, 0 unmap."""
    if cmd.kind is READ:
        for (proto, idx), entry in sorted(module.sockets.entries.items()):
            if entry.tcp is not None and entry.tcp.readable:
                channel.info(f"+WIPDATA: {proto},{idx},{entry.tcp.readable}")
            elif entry.datagrams:
                data, source = entry.datagrams[0]
                channel.info(f'+WIPDATA: {proto},{idx},{len(data)},"{IPv4Address(source[0])}",{source[1]}')
        return None
    if cmd.kind is TEST:
        channel.info("+WIPDATA: (1-2),(1-8),(0-2)")
        return None
    if cmd.kind is not SET:
        raise CommandError(None)
    require_started(module)
    arg_count(cmd, 3, 3)
    proto = int_arg(cmd.args[0], 0, 255, CmeError.BAD_PROTOCOL)
    if proto not in (UDP, TCP_CLIENT):
        raise CommandError(CmeError.BAD_PROTOCOL)
    idx = int_arg(cmd.args[1], 1, LIMITS[proto], CmeError.BAD_INDEX)
    mode = int_arg(cmd.args[2], 0, 2, CmeError.INVALID_OPTION_VALUE)
    if mode == 0:
        module.sockets.unmap(proto, idx)
        return None
    module.sockets.map(channel, proto, idx, transparent=mode == 2)
    return CONNECT
