"""UDP sockets (RFC 768, RFC 1122 §4.1) over the stack: bind, connect, sendto, recvfrom."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Protocol

from wipstack.errors import DropCounters, DropReason, LocalProtocolError, WipstackError
from wipstack.rand import RandomSource
from wipstack.wire.ipv4 import address

ANY = b"\0\0\0\0"
#: Largest UDP payload in one IPv4 datagram: 65535 - 20 (IP header) - 8 (UDP header).
MAX_PAYLOAD = 65507

Endpoint = tuple[bytes, int]
DatagramCallback = Callable[[bytes, Endpoint, float], None]


class SocketError(WipstackError):
    """A socket operation failed: ``errno_name`` says why, like the errno of BSD sockets."""

    def __init__(self, errno_name: str, detail: str) -> None:
        super().__init__(f"{errno_name}: {detail}")
        self.errno_name = errno_name


@dataclass(frozen=True, slots=True)
class IcmpError:
    """An ICMP error about a datagram this socket sent (RFC 1122 §4.1.3.3: passed up to the application)."""

    type: int
    code: int
    reporter: bytes  # who sent the ICMP error
    destination: Endpoint  # where the datagram that caused it was going
    description: str


class UdpHost(Protocol):
    """What a socket needs from the stack."""

    def source_address_for(self, destination: bytes) -> bytes | None:
        """Our address on the route to ``destination``."""

    def is_local(self, addr: bytes) -> bool:
        """Whether ``addr`` is one of our addresses."""

    def send_udp(self, src: Endpoint, dst: Endpoint, payload: bytes, *, ttl: int | None, tos: int | None) -> bool:
        """Emit one UDP datagram."""


class UdpSocket:
    """A UDP endpoint.  Received datagrams queue up to a bound (counted drops) unless
    ``on_datagram`` is set, in which case it is called with ``(data, (address, port), now)``."""

    def __init__(self, table: UdpTable, host: UdpHost, *, max_queue: int, max_queue_bytes: int) -> None:
        self._table = table
        self._host = host
        self.local: Endpoint | None = None
        self.remote: Endpoint | None = None
        self.ttl: int | None = None  # per-socket TTL (None: the stack default)
        self.tos: int | None = None
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self.on_datagram: DatagramCallback | None = None
        self.drops = DropCounters()
        self.datagrams_in = 0
        self.datagrams_out = 0
        self.errors: deque[IcmpError] = deque(maxlen=16)
        self._queue: deque[tuple[bytes, Endpoint]] = deque()
        self._queued_bytes = 0
        self.closed = False

    # ------------------------------------------------------------------ set-up
    def bind(self, host: str | bytes = ANY, port: int = 0) -> Endpoint:
        """Bind to ``(host, port)``; port 0 picks an ephemeral port.  Returns the local endpoint."""
        self._check_open()
        if self.local is not None:
            raise SocketError("EINVAL", "socket already bound")
        packed = address(host)
        if packed != ANY and not self._host.is_local(packed):
            raise SocketError("EADDRNOTAVAIL", f"{IPv4Address(packed)} is not one of our addresses")
        self.local = self._table.bind(self, packed, port)
        return self.local

    def connect(self, host: str | bytes, port: int) -> None:
        """Fix the remote endpoint: ``send`` goes there and only its datagrams are received."""
        self._check_open()
        if not 1 <= port <= 65535:
            raise SocketError("EINVAL", f"port {port} out of 1..65535")
        remote = address(host)
        if self.local is None:
            source = self._host.source_address_for(remote)
            if source is None:
                raise SocketError("ENETUNREACH", f"no route to {IPv4Address(remote)}")
            self.bind(source, 0)
        self.remote = (remote, port)

    # ---------------------------------------------------------------- sending
    def sendto(self, data: bytes | bytearray | memoryview, host: str | bytes, port: int) -> int:
        """Send one datagram; returns its length.  Raises SocketError when it cannot leave."""
        self._check_open()
        if not 1 <= port <= 65535:
            raise SocketError("EINVAL", f"port {port} out of 1..65535")
        if len(data) > MAX_PAYLOAD:
            raise SocketError("EMSGSIZE", f"{len(data)} octets exceed the UDP maximum of {MAX_PAYLOAD}")
        dst = address(host)
        if self.local is None:
            self.bind()
        assert self.local is not None
        src_addr, src_port = self.local
        if src_addr == ANY:
            source = self._host.source_address_for(dst)
            if source is None:
                raise SocketError("ENETUNREACH", f"no route to {IPv4Address(dst)}")
            src_addr = source
        if not self._host.send_udp((src_addr, src_port), (dst, port), bytes(data), ttl=self.ttl, tos=self.tos):
            raise SocketError("ENOBUFS", "the datagram could not be queued (no route or interface queue full)")
        self.datagrams_out += 1
        return len(data)

    def send(self, data: bytes | bytearray | memoryview) -> int:
        """Send one datagram to the connected endpoint."""
        if self.remote is None:
            raise SocketError("EDESTADDRREQ", "socket not connected")
        return self.sendto(data, *self.remote)

    # -------------------------------------------------------------- receiving
    def recvfrom(self) -> tuple[bytes, Endpoint] | None:
        """The oldest queued datagram and its sender, or None."""
        if not self._queue:
            return None
        data, source = self._queue.popleft()
        self._queued_bytes -= len(data)
        return data, source

    @property
    def pending(self) -> int:
        """Datagrams waiting in the receive queue."""
        return len(self._queue)

    def deliver(self, data: bytes, source: Endpoint, now: float) -> None:
        """Called by the stack for each datagram addressed to this socket."""
        self.datagrams_in += 1
        if self.on_datagram is not None:
            self.on_datagram(data, source, now)
            return
        if len(self._queue) >= self.max_queue or self._queued_bytes + len(data) > self.max_queue_bytes:
            self.drops.count(DropReason.QUEUE_FULL)
            return
        self._queue.append((data, source))
        self._queued_bytes += len(data)

    def deliver_error(self, error: IcmpError) -> None:
        """Called by the stack for an ICMP error about a datagram we sent."""
        self.errors.append(error)

    # ---------------------------------------------------------------- closing
    def close(self) -> None:
        """Release the port; queued datagrams are discarded."""
        if not self.closed:
            self.closed = True
            self._table.unbind(self)
            self._queue.clear()
            self._queued_bytes = 0

    def _check_open(self) -> None:
        if self.closed:
            raise LocalProtocolError("operation on a closed UDP socket")

    def __repr__(self) -> str:
        def fmt(ep: Endpoint | None) -> str:
            return "*" if ep is None else f"{IPv4Address(ep[0])}:{ep[1]}"

        return f"<UdpSocket {fmt(self.local)} -> {fmt(self.remote)}>"


class UdpTable:
    """The port bindings: which socket gets a datagram, and ephemeral port allocation."""

    def __init__(self, rng: RandomSource, ephemeral: tuple[int, int]) -> None:
        self._rng = rng
        self._low, self._high = ephemeral
        self._by_port: dict[int, list[UdpSocket]] = {}

    def set_ephemeral_range(self, ephemeral: tuple[int, int]) -> None:
        """Allocate ephemeral ports from ``ephemeral`` (inclusive) from now on."""
        self._low, self._high = ephemeral

    def bind(self, sock: UdpSocket, host: bytes, port: int) -> Endpoint:
        """Register ``sock`` on ``(host, port)``; port 0 allocates a random free ephemeral port (RFC 6056)."""
        if port == 0:
            port = self._ephemeral()
        elif not 1 <= port <= 65535:
            raise SocketError("EINVAL", f"port {port} out of 0..65535")
        for other in self._by_port.get(port, ()):
            assert other.local is not None
            if other.local[0] in (host, ANY) or host == ANY:
                raise SocketError("EADDRINUSE", f"port {port} already bound")
        self._by_port.setdefault(port, []).append(sock)
        return host, port

    def unbind(self, sock: UdpSocket) -> None:
        """Forget ``sock``."""
        if sock.local is None:
            return
        sockets = self._by_port.get(sock.local[1], [])
        if sock in sockets:
            sockets.remove(sock)
        if not sockets:
            self._by_port.pop(sock.local[1], None)

    def lookup(self, dst: Endpoint, src: Endpoint) -> UdpSocket | None:
        """The socket for a datagram from ``src`` to ``dst``: connected ones first, then bound, then wildcard."""
        best: UdpSocket | None = None
        best_score = -1
        for sock in self._by_port.get(dst[1], ()):
            assert sock.local is not None
            if sock.local[0] not in (ANY, dst[0]):
                continue
            if sock.remote is not None and sock.remote != src:
                continue
            score = (2 if sock.remote is not None else 0) + (1 if sock.local[0] != ANY else 0)
            if score > best_score:
                best, best_score = sock, score
        return best

    def find_local(self, local: Endpoint) -> list[UdpSocket]:
        """Sockets bound to ``local``'s port and address (or the wildcard)."""
        return [s for s in self._by_port.get(local[1], ()) if s.local is not None and s.local[0] in (ANY, local[0])]

    def _ephemeral(self) -> int:
        span = self._high - self._low + 1
        start = self._rng.randrange(span)
        for i in range(span):
            port = self._low + (start + i) % span
            if port not in self._by_port:
                return port
        raise SocketError("EADDRINUSE", "no free ephemeral port")
