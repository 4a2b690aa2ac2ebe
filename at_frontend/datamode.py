"""A socket seen through a UART in data mode (``AT+WIPDATA=<proto>,<idx>,1|2``).

Continuous mode (1) escapes DLE and ETX in both directions (:mod:`at_frontend.escaping`): on
TCP an ETX from the host half-closes the connection and the UART shows ``SHUTDOWN``; the
peer's FIN shows as ``SHUTDOWN`` too, after the last data.  On UDP, ETX separates datagrams
both ways and the host's datagrams are cut at 5840 octets.  Transparent mode (2) has no
escaping; the peer closing a TCP connection ends it with ``NO CARRIER`` and AT mode.

Host bytes go into the socket as fast as it takes them: what does not fit waits in a
backlog, and while there is one the driver stops reading the UART (:meth:`can_accept`),
so nothing is lost and nothing piles up.  Socket data is read only when the UART has room.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from at_frontend.escaping import ETX, ETX_BYTE, MAX_UDP_DATAGRAM, DleDecoder, UdpDatagramAssembler, escape

if TYPE_CHECKING:
    from at_frontend.sockets import SocketEntry, SocketTable

SHUTDOWN = b"\r\nSHUTDOWN\r\n"
NO_CARRIER = b"\r\nNO CARRIER\r\n"


class TcpDataLink:
    """A TCP socket mapped to a UART."""

    def __init__(self, table: SocketTable, entry: SocketEntry, transparent: bool) -> None:
        self.table = table
        self.entry = entry
        self.transparent = transparent
        self.decoder = DleDecoder()
        self.backlog = bytearray()
        self.markers = bytearray()  # SHUTDOWN / NO CARRIER lines waiting to be shown
        self.shutdown_requested = False
        self.shutdown_done = False
        self.peer_close_shown = False
        self.dropped = 0  # host bytes after our ETX: nowhere to go
        self._ended = False

    # ------------------------------------------------------------------ host -> network
    def write(self, data: bytes, now: float) -> None:
        if self.transparent:
            self._queue(data)
        else:
            for item in self.decoder.feed(data):
                if item is ETX:
                    self.shutdown_requested = True
                else:
                    self._queue(item)
        self.flush_backlog(now)

    def _queue(self, data: bytes) -> None:
        if self.shutdown_requested or self.entry.tcp is None:
            self.dropped += len(data)
            return
        self.backlog += data

    def flush_backlog(self, now: float) -> None:
        """Move waiting host bytes into the socket; half-close once they are all in after ETX."""
        sock = self.entry.tcp
        if sock is None:
            self.backlog.clear()
            return
        if self.backlog:
            sent = sock.send(self.backlog) if not self.entry.failed else len(self.backlog)
            del self.backlog[:sent]
        if self.shutdown_requested and not self.backlog and not self.shutdown_done:
            self.shutdown_done = True
            if not self.entry.failed:
                sock.shutdown(now)
            self.markers += SHUTDOWN

    def can_accept(self) -> bool:
        return not self.backlog

    # ------------------------------------------------------------------ network -> host
    def read(self, limit: int, now: float) -> bytes:
        out = bytearray(self.markers)
        self.markers.clear()
        sock = self.entry.tcp
        room = limit - len(out)
        if sock is not None and room > 0:
            data = sock.recv(room if self.transparent else max(1, room // 2))
            if data:
                out += data if self.transparent else escape(data)
        if self.entry.peer_closed and not self.peer_close_shown and (sock is None or sock.readable == 0):
            self.peer_close_shown = True
            if self.transparent:
                out += NO_CARRIER
                self._ended = True
            else:
                out += SHUTDOWN
        return bytes(out)

    @property
    def ended(self) -> bool:
        return self._ended

    def detach(self, now: float) -> None:
        self.flush_backlog(now)


class UdpDataLink:
    """A UDP socket mapped to a UART."""

    def __init__(self, table: SocketTable, entry: SocketEntry, transparent: bool) -> None:
        self.table = table
        self.entry = entry
        self.transparent = transparent
        self.decoder = DleDecoder()
        self.assembler = UdpDatagramAssembler(MAX_UDP_DATAGRAM)

    def write(self, data: bytes, now: float) -> None:
        if self.transparent:
            datagrams = [data[i : i + MAX_UDP_DATAGRAM] for i in range(0, len(data), MAX_UDP_DATAGRAM)]
        else:
            datagrams = self.assembler.feed(self.decoder.feed(data))
        for datagram in datagrams:
            self.table.send_datagram(self.entry, datagram)

    def can_accept(self) -> bool:
        return True  # UDP never waits: a datagram the route cannot take is dropped (counted)

    def read(self, limit: int, now: float) -> bytes:
        out = bytearray()
        queue: deque[tuple[bytes, tuple[bytes, int]]] = self.entry.datagrams
        while queue and len(out) < limit:
            data, source = queue.popleft()
            self.entry.queued_bytes -= len(data)
            self.entry.last_source = source
            out += data if self.transparent else escape(data) + ETX_BYTE
        return bytes(out)

    @property
    def ended(self) -> bool:
        return False

    def detach(self, now: float) -> None:
        if not self.transparent:
            self.decoder.reset()
        partial = self.assembler.take_pending()
        if partial:
            self.table.send_datagram(self.entry, partial)  # what the host typed before +++ is sent
