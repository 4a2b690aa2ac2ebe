"""The TCP layer: demultiplexing, listeners, ISNs, RSTs for strangers, timers of all connections.

Registered with the stack as the transport handler of IP protocol 6.  Connections are keyed
by (local address, local port, remote address, remote port); a segment for none of them
goes to a listener (a SYN) or is answered with RST (RFC 9293 §3.10.7.1).
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from wipstack.errors import DropCounters, DropReason, MalformedPacket
from wipstack.tcp.config import TcpConfig
from wipstack.tcp.connection import TcpConnection
from wipstack.tcp.seq import MASK, unwrap
from wipstack.tcp.state import TcpState
from wipstack.wire.icmp import IcmpRepr, IcmpType, UnreachableCode
from wipstack.wire.ipv4 import IpProtocol, Ipv4Repr
from wipstack.wire.tcp import TcpFlags, TcpRepr

if TYPE_CHECKING:
    from wipstack.net.stack import Stack

Endpoint = tuple[bytes, int]
Key = tuple[bytes, int, bytes, int]
ANY = b"\0\0\0\0"
_TCP = IpProtocol.TCP.value
_SYN, _ACK, _RST, _FIN = TcpFlags.SYN, TcpFlags.ACK, TcpFlags.RST, TcpFlags.FIN
_ACK_VALUE, _NOT_PSH = TcpFlags.ACK.value, ~TcpFlags.PSH.value


class _HeldRun:
    """In-order data segments of one connection, merged within a receive batch (like Linux GRO)."""

    __slots__ = ("conn", "seg", "parts", "next_seq", "count")

    def __init__(self, conn: TcpConnection, seg: TcpRepr, data: memoryview) -> None:
        self.conn = conn
        self.seg = seg
        self.parts = [data]
        self.next_seq = (seg.seq + len(data)) & MASK
        self.count = 1


class TcpListener:
    """A passive open: SYNs to ``local`` create connections, accepted in arrival order."""

    def __init__(self, layer: TcpLayer, local: Endpoint, backlog: int) -> None:
        self._layer = layer
        self.local = local
        self.backlog = backlog
        self.half_open: set[TcpConnection] = set()
        self.accept_queue: deque[TcpConnection] = deque()
        self.on_connection: Callable[[TcpConnection], None] | None = None
        self.syn_drops = 0
        self.closed = False

    def accept(self) -> TcpConnection | None:
        """The oldest established connection not yet accepted, or None."""
        return self.accept_queue.popleft() if self.accept_queue else None

    def close(self, now: float | None = None) -> None:
        """Stop listening; connections not yet accepted are reset."""
        if self.closed:
            return
        self.closed = True
        self._layer._listeners.pop(self.local, None)
        for conn in list(self.half_open) + list(self.accept_queue):
            conn.abort(now)
            self._layer._dirty.add(conn)
        self.half_open.clear()
        self.accept_queue.clear()


class TcpLayer:
    """All TCP of one stack (see the module docstring)."""

    def __init__(self, stack: Stack, config: TcpConfig | None = None) -> None:
        self.stack = stack
        self.config = config or TcpConfig()
        self.drops = DropCounters()
        self.resets_sent = 0
        self.segments_in = 0
        self.segments_out = 0
        self._connections: dict[Key, TcpConnection] = {}
        self._listeners: dict[Endpoint, TcpListener] = {}
        self._owner: dict[TcpConnection, TcpListener] = {}
        self._dirty: set[TcpConnection] = set()
        self._held: _HeldRun | None = None
        self._secret = stack.rng.getrandbits(128).to_bytes(16, "big")  # RFC 6528 secret key
        self.on_events: Callable[[TcpConnection], None] | None = None  # the socket layer's hook
        stack.register_transport(_TCP, self)

    # ------------------------------------------------------------------ user API
    def listen(self, port: int, address: bytes = ANY, backlog: int | None = None) -> TcpListener:
        """Start listening on ``(address, port)``; port 0 picks a free ephemeral port."""
        if port == 0:
            port = self._ephemeral_listen_port(address)
        local = (address, port)
        if local in self._listeners or (ANY, port) in self._listeners:
            raise OSError(98, f"port {port} already listening")  # EADDRINUSE
        listener = TcpListener(self, local, backlog or self.config.backlog)
        self._listeners[local] = listener
        return listener

    def connect(self, remote: Endpoint, now: float, *, local_port: int = 0) -> TcpConnection:
        """Active open to ``remote``; follow the connection's events."""
        source = self.stack.source_address_for(remote[0])
        if source is None:
            raise OSError(101, "network unreachable")  # ENETUNREACH
        if len(self._connections) >= self.config.max_connections:
            raise OSError(105, "too many TCP connections")  # ENOBUFS
        port = local_port or self._ephemeral_port(source, remote)
        key = (source, port, remote[0], remote[1])
        if key in self._connections:
            raise OSError(98, "address already in use")
        conn = self._new_connection((source, port), remote, now)
        self._connections[key] = conn
        conn.open_active(now)
        self._dirty.add(conn)
        return conn

    def touch(self, conn: TcpConnection) -> None:
        """The user called into ``conn``: flush it at the next opportunity."""
        self._dirty.add(conn)

    @property
    def connections(self) -> list[TcpConnection]:
        """Every connection the layer knows (TIME-WAIT included)."""
        return list(self._connections.values())

    # ------------------------------------------------------------------ transport handler
    def receive(self, header: Ipv4Repr, payload: memoryview, now: float) -> bool:
        """A TCP segment from the stack."""
        try:
            seg, data = TcpRepr.parse(payload, src=header.src, dst=header.dst)
        except MalformedPacket as exc:
            self.drops.count(exc.reason)
            return True
        self.segments_in += 1
        if not self.stack.is_local(header.dst):  # TCP never talks to broadcasts
            self.drops.count(DropReason.NOT_FOR_US)
            return True
        key = (header.dst, seg.dst_port, header.src, seg.src_port)
        conn = self._connections.get(key)
        if (
            conn is not None
            and conn.state == TcpState.TIME_WAIT
            and seg.flags & _SYN
            and not seg.flags & _ACK
            and unwrap(seg.seq, conn.rcv_nxt) > conn.rcv_nxt
        ):
            # RFC 6191-style reuse: a new SYN above the old connection's sequence space reopens it
            self._forget(key, conn)
            conn = None
        if conn is not None:
            if self.stack.batching and self._hold(conn, seg, data, now):
                return True
            conn.segment_arrives(seg, data, now)
            self._dirty.add(conn)
            if not self.stack.batching:
                self.flush(now)
            return True
        self._release(now)
        listener = self._listeners.get((header.dst, seg.dst_port)) or self._listeners.get((ANY, seg.dst_port))
        if listener is not None and seg.flags & _SYN and not seg.flags & (_ACK | _RST):
            self._passive_open(listener, key, seg, now)
            if not self.stack.batching:
                self.flush(now)
            return True
        self._reset_stranger(header, seg, len(data))
        return False

    def _hold(self, conn: TcpConnection, seg: TcpRepr, data: memoryview, now: float) -> bool:
        """Merge a plain in-order data segment into the held run; False when it must go alone.

        Only segments that differ in nothing but their data merge (same ACK, window and
        options, ACK with or without PSH), so the connection sees what the peer would have
        sent as one large segment: one pass through SEGMENT ARRIVES for a whole burst.
        """
        held = self._held
        if not data or seg.flags.value & _NOT_PSH != _ACK_VALUE or conn.state is not TcpState.ESTABLISHED:
            if held is not None:
                self._release(now)
            return False
        if held is not None:
            first = held.seg
            if (
                held.conn is conn
                and seg.seq == held.next_seq
                and seg.ack == first.ack
                and seg.window == first.window
                and (seg.options is first.options or seg.options == first.options)
            ):
                held.parts.append(data)
                held.next_seq = (seg.seq + len(data)) & MASK
                held.count += 1
                return True
            self._release(now)
        self._held = _HeldRun(conn, seg, data)
        return True

    def _release(self, now: float) -> None:
        """Hand the held run to its connection as one segment."""
        held = self._held
        if held is None:
            return
        self._held = None
        parts = held.parts
        payload = parts[0] if len(parts) == 1 else memoryview(b"".join(parts))
        held.conn.segment_arrives(held.seg, payload, now, segments=held.count)
        self._dirty.add(held.conn)

    def icmp_error(self, error: IcmpRepr, original: Ipv4Repr, original_payload: bytes, now: float) -> None:
        """RFC 1122 §4.2.3.9 / RFC 5927: hard errors abort a connection still opening; others are soft."""
        self._release(now)
        if len(original_payload) < 8:
            return
        src_port = int.from_bytes(original_payload[0:2], "big")
        dst_port = int.from_bytes(original_payload[2:4], "big")
        seq = int.from_bytes(original_payload[4:8], "big")
        conn = self._connections.get((original.src, src_port, original.dst, dst_port))
        if conn is None:
            return
        if not conn.snd_una <= unwrap(seq, conn.snd_una) < conn.snd_max + 1:
            self.drops.count(DropReason.BAD_VALUE)  # RFC 5927 §4.1: must quote data in flight
            return
        hard = error.type == IcmpType.DEST_UNREACHABLE and error.code in (
            UnreachableCode.PROTOCOL, UnreachableCode.PORT,
        )  # fmt: skip
        if hard and conn.state == TcpState.SYN_SENT:
            conn.fail("ECONNREFUSED", "connection refused (ICMP unreachable)")
            self._dirty.add(conn)

    def next_deadline(self) -> float | None:
        """The earliest timer of any connection (0.0 when some have output waiting)."""
        if self._dirty:
            return 0.0
        deadlines = [d for conn in self._connections.values() if (d := conn.next_deadline()) is not None]
        return min(deadlines) if deadlines else None

    def on_timer(self, now: float) -> None:
        """Run due connection timers, then flush."""
        for conn in list(self._connections.values()):
            deadline = conn.next_deadline()
            if deadline is not None and deadline <= now:
                conn.on_timer(now)
                self._dirty.add(conn)
        self.flush(now)

    def flush(self, now: float) -> None:
        """Settle dirty connections: accept queues, events to their owners, then their segments.

        Events go first so that an application reading in its callback opens the window in the
        very ACK that answers the segment (one ACK, not two).
        """
        self._release(now)
        dirty = self._dirty
        while dirty:
            conn = dirty.pop()
            listener = self._owner.get(conn)
            if listener is not None and conn.state != TcpState.SYN_RECEIVED:
                del self._owner[conn]
                listener.half_open.discard(conn)
                if conn.state != TcpState.CLOSED and not listener.closed:
                    listener.accept_queue.append(conn)
                    if listener.on_connection is not None:
                        listener.on_connection(conn)
            owner = conn.owner
            if owner is not None:
                # the callback may clear itself (the owner let go of the socket): check each time
                while owner.on_event is not None and (event := conn.next_event()) is not None:
                    owner.on_event(owner, event)
            if self.on_events is not None:
                self.on_events(conn)
            dirty.discard(conn)  # what the callbacks asked for goes out with these segments
            for seg, payload in conn.take_segments(now):
                self._send(conn, seg, payload)
            owner = conn.owner
            if conn.has_events and owner is not None and owner.on_event is not None:
                dirty.add(conn)  # e.g. an error found while sending: deliver it next round
            elif conn.is_closed:
                key = (conn.local[0], conn.local[1], conn.remote[0], conn.remote[1])
                if self._connections.get(key) is conn:
                    del self._connections[key]

    # ------------------------------------------------------------------ internals
    def _passive_open(self, listener: TcpListener, key: Key, seg: TcpRepr, now: float) -> None:
        if (
            len(listener.half_open) >= self.config.max_half_open
            or len(listener.accept_queue) >= listener.backlog
            or len(self._connections) >= self.config.max_connections
        ):
            listener.syn_drops += 1  # bounded: a SYN flood costs nothing beyond these queues
            self.drops.count(DropReason.QUEUE_FULL)
            return
        conn = self._new_connection((key[0], key[1]), (key[2], key[3]), now)
        self._connections[key] = conn
        listener.half_open.add(conn)
        self._owner[conn] = listener
        conn.open_passive(seg, now)
        self._dirty.add(conn)

    def _new_connection(self, local: Endpoint, remote: Endpoint, now: float) -> TcpConnection:
        digest = hashlib.blake2s(local[0] + local[1].to_bytes(2, "big") + remote[0] + remote[1].to_bytes(2, "big"),
                                 key=self._secret, digest_size=8).digest()  # fmt: skip
        # RFC 6528: ISN = M + F(localip, localport, remoteip, remoteport, secretkey), M a 4 µs clock
        iss = (int(now * 250_000) + int.from_bytes(digest[:4], "big")) & MASK
        ts_offset = int.from_bytes(digest[4:], "big")  # RFC 7323 §5.4: a per-connection offset
        route = self.stack.routes.lookup(remote[0])
        interface = self.stack.interfaces.get(route.interface) if route is not None else None
        mtu = interface.mtu if interface is not None else 576
        mss = min(self.config.mss or 65495, mtu - 40)  # RFC 9293 §3.7.1: MSS from the MTU
        return TcpConnection(self.config, local, remote, iss=iss, mss=max(mss, 64), ts_offset=ts_offset, now=now)

    def _send(self, conn: TcpConnection, seg: TcpRepr, payload: bytes) -> None:
        segment = seg.emit(payload, src=conn.local[0], dst=conn.remote[0])
        self.segments_out += 1
        self.stack.send_datagram(conn.local[0], conn.remote[0], _TCP, segment, ttl=conn.ttl, tos=conn.tos)

    def _reset_stranger(self, header: Ipv4Repr, seg: TcpRepr, data_len: int) -> None:
        """RFC 9293 §3.10.7.1: a segment for no connection gets RST (never a RST for a RST)."""
        if seg.flags & _RST:
            return
        self.drops.count(DropReason.PORT_UNREACHABLE)
        if seg.flags & _ACK:
            rst = TcpRepr(seg.dst_port, seg.src_port, seg.ack, 0, _RST, 0)
        else:
            seg_len = data_len + (1 if seg.flags & _SYN else 0) + (1 if seg.flags & _FIN else 0)
            rst = TcpRepr(seg.dst_port, seg.src_port, 0, (seg.seq + seg_len) & MASK, _RST | _ACK, 0)
        self.resets_sent += 1
        self.stack.send_datagram(header.dst, header.src, _TCP, rst.emit(b"", src=header.dst, dst=header.src))

    def _forget(self, key: Key, conn: TcpConnection) -> None:
        del self._connections[key]
        self._dirty.discard(conn)

    def _ephemeral_listen_port(self, address: bytes) -> int:
        """A port in the ephemeral range no listener and no connection of ``address`` uses."""
        low, high = self.stack.config.ephemeral_ports
        span = high - low + 1
        start = self.stack.rng.randrange(span)
        used = {key[1] for key in self._connections if address in (ANY, key[0])}
        for i in range(span):
            port = low + (start + i) % span
            if port not in used and (address, port) not in self._listeners and (ANY, port) not in self._listeners:
                return port
        raise OSError(99, "no free ephemeral port")  # EADDRNOTAVAIL

    def _ephemeral_port(self, source: bytes, remote: Endpoint) -> int:
        low, high = self.stack.config.ephemeral_ports
        span = high - low + 1
        start = self.stack.rng.randrange(span)
        for i in range(span):
            port = low + (start + i) % span
            if (source, port, remote[0], remote[1]) not in self._connections and (source, port) not in self._listeners:
                return port
        raise OSError(99, "no free ephemeral port")  # EADDRNOTAVAIL
