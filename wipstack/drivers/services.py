"""Small TCP applications for demos, tests and benchmarks: echo (RFC 862), discard (RFC 863),
chargen (RFC 864) servers and a bulk-transfer client.

They run on the network loop's thread, driven by TCP socket events, and respect back-pressure
in both directions: echo stops reading while its send buffer is full (so the peer's window
closes), chargen writes only what the send buffer accepts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from wipstack.net.stack import Stack
from wipstack.tcp.events import Connected, ConnectionFailed, DataAvailable, PeerClosed, SendSpace, TcpEvent
from wipstack.tcp.socket import TcpServer, TcpSocket
from wipstack.tcp.state import TcpState

Logger = Callable[[str], None]
Clock = Callable[[], float]

#: RFC 864: the 95 printable ASCII characters, rotated one per 72-character line.
_CHARGEN_LINE = 72
_PRINTABLE = bytes(range(32, 127))


def chargen_block(size: int = 65536) -> bytes:
    """A block of the RFC 864 character pattern (lines of 72 characters and CRLF)."""
    lines = []
    for i in range(size // (_CHARGEN_LINE + 2) + 1):
        start = i % len(_PRINTABLE)
        row = (_PRINTABLE[start:] + _PRINTABLE[:start])[:_CHARGEN_LINE]
        lines.append(row + b"\r\n")
    return b"".join(lines)[:size]


@dataclass
class ServiceStats:
    """What a service has done."""

    connections: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    finished: list[tuple[int, int]] = field(default_factory=list)  # (bytes in, bytes out) per connection


class TcpService:
    """A listening TCP service; ``kind`` is ``echo``, ``discard`` or ``chargen``."""

    def __init__(self, stack: Stack, port: int, kind: str, *, log: Logger | None = None) -> None:
        if kind not in ("echo", "discard", "chargen"):
            raise ValueError(f"unknown service {kind!r}")
        self.kind = kind
        self.stats = ServiceStats()
        self.log = log or (lambda line: None)
        self.server = TcpServer(stack.tcp, port, backlog=64)
        self.server.on_accept = self._accepted
        self._pattern = chargen_block()

    def _accepted(self, sock: TcpSocket) -> None:
        self.stats.connections += 1
        counts = [0, 0]
        finished = [False]
        peer_closed = [False]
        offset = [0]
        pending = bytearray()  # echo: received, not yet accepted by the send buffer

        def pump() -> None:
            if self.kind == "echo":
                while True:
                    if pending:
                        n = sock.send(pending)
                        del pending[:n]
                        counts[1] += n
                        if pending:
                            return  # send buffer full: stop reading until SendSpace
                    room = sock.send_space
                    if room <= 0 or sock.readable == 0:
                        return
                    pending.extend(sock.recv(room))
                    counts[0] += len(pending)
            elif self.kind == "discard":
                counts[0] += len(sock.recv())
            else:
                counts[0] += len(sock.recv())  # RFC 864: whatever arrives is thrown away
                while sock.send_space > 0:
                    start = offset[0]
                    n = sock.send(self._pattern[start:] or self._pattern)
                    if n == 0:
                        break
                    offset[0] = (start + n) % len(self._pattern)
                    counts[1] += n

        def on_event(s: TcpSocket, event: TcpEvent) -> None:
            if isinstance(event, Connected | DataAvailable | SendSpace | PeerClosed):
                pump()
            if isinstance(event, PeerClosed):
                peer_closed[0] = True
            # close once everything the peer sent has been read and handed to TCP: closing with
            # unread data would reset the connection (RFC 2525 §2.17)
            if peer_closed[0] and not pending and s.readable == 0 and s.state == TcpState.CLOSE_WAIT:
                s.close()
            if (isinstance(event, ConnectionFailed) or s.connection.is_closed) and not finished[0]:
                finished[0] = True
                self._finish(counts)

        sock.on_event = on_event
        pump()

    def _finish(self, counts: list[int]) -> None:
        self.stats.bytes_in += counts[0]
        self.stats.bytes_out += counts[1]
        self.stats.finished.append((counts[0], counts[1]))
        self.log(f"tcp {self.kind}: connection done, {counts[0]} octets in, {counts[1]} out")

    def close(self) -> None:
        """Stop listening."""
        if not self.server.listener.closed:
            self.server.close()


class BulkTransfer:
    """Connect to ``host:port``, send ``size`` octets (a seeded pattern), close, and measure.

    With ``receive=True`` it sends nothing and reads until the peer closes (e.g. from chargen
    or a server that streams), up to ``size`` octets, then closes.
    """

    def __init__(
        self, stack: Stack, host: str, port: int, size: int, now: float, clock: Clock, *, receive: bool = False
    ) -> None:
        self.size = size
        self.receive_mode = receive
        self.clock = clock
        self.sent = 0
        self.received = 0
        self.sha256 = hashlib.sha256()
        self.error: str | None = None
        self.started_at = now
        self.connected_at: float | None = None
        self.finished_at: float | None = None
        self._block = bytes((i * 7 + 3) & 0xFF for i in range(65536))
        self.sock = TcpSocket.connect(stack.tcp, host, port, now)
        self.sock.on_event = self._on_event

    @property
    def done(self) -> bool:
        """The transfer ended (successfully or not)."""
        return self.finished_at is not None

    def rate_bps(self) -> float:
        """Payload bits per second from connection to the end."""
        if self.finished_at is None or self.connected_at is None:
            return 0.0
        octets = self.received if self.receive_mode else self.sent
        return octets * 8 / max(self.finished_at - self.connected_at, 1e-9)

    def _pump(self) -> None:
        sock = self.sock
        if self.receive_mode:
            data = sock.recv()
            self.received += len(data)
            self.sha256.update(data)
            if self.received >= self.size and self.finished_at is None:
                # enough: the transfer is complete; closing a still-streaming connection resets it
                # (RFC 2525 §2.17), which is ours to do and no error of the transfer
                self.finished_at = self.clock()
                sock.close()
            return
        sock.recv()  # a sink may answer; ignore it
        while self.sent < self.size:
            offset = self.sent % len(self._block)
            chunk = self._block[offset : offset + min(self.size - self.sent, len(self._block) - offset)]
            n = sock.send(chunk)
            if n == 0:
                return
            self.sha256.update(chunk[:n])
            self.sent += n
        if sock.state in (TcpState.ESTABLISHED, TcpState.CLOSE_WAIT):
            sock.shutdown()

    def _on_event(self, sock: TcpSocket, event: TcpEvent) -> None:
        if isinstance(event, Connected):
            self.connected_at = self.clock()
        if isinstance(event, Connected | SendSpace | DataAvailable):
            self._pump()
        elif isinstance(event, PeerClosed):
            self._pump()
            if self.receive_mode and self.finished_at is None:
                self.finished_at = self.clock()  # the peer sent all it had (fewer than size octets)
            sock.close()
        elif isinstance(event, ConnectionFailed) and self.finished_at is None:
            self.error = f"{event.errno_name}: {event.reason}"
        if self.finished_at is None and (sock.connection.is_closed or self._all_acknowledged()):
            self.finished_at = self.clock()

    def _all_acknowledged(self) -> bool:
        """Sender: every octet and our FIN acknowledged."""
        sock = self.sock
        return (
            not self.receive_mode
            and self.sent >= self.size
            and sock.unacknowledged == 0
            and sock.state in (TcpState.FIN_WAIT_2, TcpState.TIME_WAIT)
        )
