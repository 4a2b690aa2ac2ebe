"""An in-process simulated network: wipstack stacks joined by impaired links, in virtual time.

:class:`SimNet` holds any number of :class:`~wipstack.net.Stack` objects and point-to-point
:class:`Link` objects between them; each direction of a link has its own seeded
:class:`~wipstack.drivers.faults.FaultInjector`.  The clock is virtual: :meth:`SimNet.step`
settles everything due at the current instant (application callbacks, stack timers and
flushes, datagrams moved across links) and then jumps to the earliest deadline of the
stacks, the injectors and the applications.  Nothing sleeps and nothing reads a clock, so a
run is a pure function of its seeds.

On top of it, :class:`TcpPeer` is one end of a bulk transfer (sends a seeded random payload
as the send buffer allows, reads everything, half-closes when its data is queued, closes
after the peer's FIN), :class:`TransferServer` accepts connections and pairs each with the
transfer that opened it, and :func:`run_transfer` / :func:`start_transfer` run complete
transfers and report :class:`TransferStats` (virtual duration, goodput, retransmissions,
timeouts, fast recoveries, final states, SHA-256 checks).
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from wipstack.drivers.faults import FaultConfig, FaultInjector
from wipstack.net import Interface, Stack, StackConfig
from wipstack.tcp.config import TcpConfig
from wipstack.tcp.events import Closed, Connected, ConnectionFailed, PeerClosed, TcpEvent
from wipstack.tcp.socket import TcpServer, TcpSocket
from wipstack.tcp.state import TcpState
from wipstack.wire.ipv4 import address

#: Rounds of work at one instant before the simulation declares a livelock.
MAX_ROUNDS_PER_INSTANT = 2000


class SimulationStuck(RuntimeError):
    """Something stays due at the same virtual instant however often it runs (a spinning timer)."""


class App(Protocol):
    """Something that acts in the simulation (see :meth:`SimNet.add_app` and :meth:`SimNet.wake`)."""

    def poll(self, now: float) -> None: ...


@dataclass
class LinkEnd:
    """One side of a link: the stack, its interface, and the injector of what that side sends."""

    stack: Stack
    interface: Interface
    injector: FaultInjector


class Link:
    """A point-to-point link; ``a`` sends through ``ab``, ``b`` through ``ba``."""

    def __init__(self, a: LinkEnd, b: LinkEnd, *, record: bool = False) -> None:
        self.a = a
        self.b = b
        self.record = record
        #: With ``record``: (time, 0 for a->b or 1 for b->a, datagram as sent, before faults).
        self.log: list[tuple[float, int, bytes]] = []

    @property
    def ab(self) -> FaultInjector:
        return self.a.injector

    @property
    def ba(self) -> FaultInjector:
        return self.b.injector

    def transmit(self, now: float) -> bool:
        """Move what both interfaces queued into their injectors; True if there was any."""
        moved = False
        for index, end in enumerate((self.a, self.b)):
            if not end.interface.output:
                continue
            moved = True
            for packet in end.interface.take_output():
                if self.record:
                    self.log.append((now, index, packet))
                end.injector.push(packet, now)
        return moved

    def deliver(self, now: float) -> bool:
        """Hand the other side what is due; True if there was any."""
        moved = False
        for sender, receiver in ((self.a, self.b), (self.b, self.a)):
            for packet in sender.injector.pop_ready(now):
                moved = True
                receiver.stack.receive(receiver.interface, packet, now)
        return moved

    def next_deadline(self) -> float | None:
        deadlines = [d for d in (self.ab.next_deadline(), self.ba.next_deadline()) if d is not None]
        return min(deadlines) if deadlines else None

    def sent_between(self, direction: int, start: float, end: float) -> list[bytes]:
        """Recorded datagrams sent in ``direction`` with ``start <= time < end``."""
        return [p for t, d, p in self.log if d == direction and start <= t < end]


class SimNet:
    """Stacks, links and applications driven by one virtual clock (see the module docstring).

    Applications are polled at every round when added with :meth:`add_app`; event-driven
    ones are polled only after :meth:`wake` or at the time given to :meth:`wake_at`.
    """

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.now = 0.0
        self.stacks: list[Stack] = []
        self.links: list[Link] = []
        self.apps: list[App] = []
        self.instants = 0  # distinct virtual instants visited
        self._woken: dict[App, None] = {}  # ordered set: polled at the next round
        self._alarms: list[tuple[float, int, App]] = []
        self._alarm_order = 0

    # ---------------------------------------------------------------- building
    def add_stack(self, *, tcp: TcpConfig | None = None, config: StackConfig | None = None) -> Stack:
        stack = Stack(random.Random(self.rng.getrandbits(64)), config, tcp)
        self.stacks.append(stack)
        return stack

    def link(
        self,
        a: Stack,
        addr_a: str,
        b: Stack,
        addr_b: str,
        *,
        ab: FaultConfig | None = None,
        ba: FaultConfig | None = None,
        mtu: int = 1500,
        record: bool = False,
    ) -> Link:
        """Join ``a`` and ``b`` by a point-to-point link with ``ab`` / ``ba`` impairments."""
        ends = []
        for stack, local, peer, config in ((a, addr_a, addr_b, ab), (b, addr_b, addr_a, ba)):
            interface = Interface(f"sim{len(stack.interfaces)}", address(local), peer=address(peer), mtu=mtu)
            stack.add_interface(interface)
            injector = FaultInjector(config or FaultConfig(), random.Random(self.rng.getrandbits(64)))
            ends.append(LinkEnd(stack, interface, injector))
        link = Link(ends[0], ends[1], record=record)
        self.links.append(link)
        return link

    def add_app(self, app: App) -> App:
        """Poll ``app`` at every round from now on."""
        self.apps.append(app)
        return app

    def wake(self, app: App) -> None:
        """Poll ``app`` at the next round."""
        self._woken[app] = None

    def wake_at(self, app: App, when: float) -> None:
        """Poll ``app`` at virtual time ``when``."""
        self._alarm_order += 1
        heapq.heappush(self._alarms, (when, self._alarm_order, app))

    # ---------------------------------------------------------------- running
    def settle(self) -> None:
        """Run everything due at the current instant until nothing more is."""
        now = self.now
        for _ in range(MAX_ROUNDS_PER_INSTANT):
            progressed = False
            while self._alarms and self._alarms[0][0] <= now:
                self.wake(heapq.heappop(self._alarms)[2])
            for app in list(self.apps):
                app.poll(now)
            while self._woken:
                woken = list(self._woken)
                self._woken.clear()
                for app in woken:
                    app.poll(now)
            for stack in self.stacks:
                deadline = stack.next_deadline()
                if deadline is not None and deadline <= now:
                    stack.on_timer(now)
                    progressed = True
            for link in self.links:
                progressed = link.transmit(now) or progressed
            for link in self.links:
                progressed = link.deliver(now) or progressed
            if not progressed:
                return
        raise SimulationStuck(f"still busy after {MAX_ROUNDS_PER_INSTANT} rounds at t={now:.6f}: {self._due(now)}")

    def _due(self, now: float) -> list[str]:
        due = []
        for i, stack in enumerate(self.stacks):
            for conn in stack.tcp.connections:
                d = conn.next_deadline()
                if d is not None and d <= now:
                    due.append(f"stack {i} {conn.local[1]}->{conn.remote[1]} {conn.state} deadline {d}")
        return due

    def next_deadline(self) -> float | None:
        deadlines: list[float | None] = [s.next_deadline() for s in self.stacks]
        deadlines += [link.next_deadline() for link in self.links]
        if self._alarms:
            deadlines.append(self._alarms[0][0])
        if self._woken:
            deadlines.append(self.now)
        present = [d for d in deadlines if d is not None]
        return min(present) if present else None

    def step(self) -> bool:
        """Settle this instant, then move the clock to the next deadline; False when none is left."""
        self.settle()
        deadline = self.next_deadline()
        if deadline is None:
            return False
        self.instants += 1
        self.now = max(self.now, deadline)
        return True

    def run_until(self, done: Callable[[], bool], timeout: float) -> bool:
        """Run until ``done()`` holds (True) or ``timeout`` virtual seconds pass (False)."""
        stop_at = self.now + timeout
        while True:
            self.settle()
            if done():
                return True
            deadline = self.next_deadline()
            if deadline is None or deadline > stop_at:
                self.now = max(self.now, stop_at)
                self.settle()
                return done()
            self.instants += 1
            self.now = max(self.now, deadline)

    def run_for(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass."""
        self.run_until(lambda: False, seconds)


# -------------------------------------------------------------------- TCP applications

FINAL_STATES = frozenset({TcpState.TIME_WAIT, TcpState.CLOSED})


class TcpPeer:
    """One end of a bulk transfer (see the module docstring).

    Sends ``payload``, half-closes once it is all queued, reads everything the peer sends
    (unless paused), hashes it, and calls ``close()`` after the peer's FIN.  With
    ``fin_after_peer`` it half-closes only after the peer's FIN (the passive closer); with
    ``send_after_peer`` it starts sending only then (a response after a half-close).
    """

    def __init__(
        self,
        net: SimNet,
        sock: TcpSocket,
        payload: bytes,
        *,
        expect_sha256: str | None,
        fin_after_peer: bool = False,
        send_after_peer: bool = False,
    ) -> None:
        self.net = net
        self.sock = sock
        self.fin_after_peer = fin_after_peer or send_after_peer
        self.send_after_peer = send_after_peer
        self.payload = memoryview(payload)
        self.expect_sha256 = expect_sha256
        self.started_at = net.now
        self.hash = hashlib.sha256()
        self.received = 0
        self.queued = 0  # octets accepted by send()
        self.shut = False
        self.closed_called = False
        self.peer_closed_at: float | None = None
        self.connected_at: float | None = None
        self.closed_at: float | None = None
        self.error: ConnectionFailed | None = None
        self.events: list[tuple[float, TcpEvent]] = []
        self.pause_until: float | None = None  # no reading before this
        self.max_readable = 0
        self.read_states: set[TcpState] = set()  # states in which data was read
        self._pending: list[TcpEvent] = []
        while (event := sock.next_event()) is not None:  # queued before we owned the socket
            self._pending.append(event)
        sock.on_event = self._on_event
        net.wake(self)

    def _on_event(self, sock: TcpSocket, event: TcpEvent) -> None:
        """Called from inside the stack: note it, act at the next round."""
        self._pending.append(event)
        self.net.wake(self)

    def pause_reading(self, until: float) -> None:
        """Read nothing before virtual time ``until`` (the receive window fills up)."""
        self.pause_until = until
        self.net.wake_at(self, until)

    # ---- App
    def poll(self, now: float) -> None:
        sock = self.sock
        pending, self._pending = self._pending, []
        for event in pending:
            self.events.append((now, event))
            if isinstance(event, Connected):
                self.connected_at = now
            elif isinstance(event, PeerClosed):
                self.peer_closed_at = now
            elif isinstance(event, ConnectionFailed):
                self.error = event
            elif isinstance(event, Closed):
                self.closed_at = now
        state = sock.state
        if self.error is not None or state == TcpState.CLOSED:
            return
        may_send = self.peer_closed_at is not None or not self.send_after_peer
        if not self.shut and may_send and state in (TcpState.ESTABLISHED, TcpState.CLOSE_WAIT):
            if self.queued < len(self.payload) and sock.send_space > 0:  # send() always dirties the connection
                self.queued += sock.send(self.payload[self.queued :])
            if self.queued == len(self.payload) and (self.peer_closed_at is not None or not self.fin_after_peer):
                sock.shutdown(now)
                self.shut = True
        self.max_readable = max(self.max_readable, sock.readable)
        if self.pause_until is None or now >= self.pause_until:
            self.pause_until = None
            data = sock.recv()
            if data:
                self.hash.update(data)
                self.received += len(data)
                self.read_states.add(state)
        if self.shut and self.peer_closed_at is not None and not self.closed_called and sock.readable == 0:
            self.closed_called = True
            sock.close(now)

    # ---- results
    @property
    def data_ok(self) -> bool:
        """Everything expected arrived, intact, followed by the peer's FIN."""
        return (
            self.peer_closed_at is not None
            and self.expect_sha256 is not None
            and self.hash.hexdigest() == self.expect_sha256
        )

    @property
    def finished(self) -> bool:
        """Failed, or done: the peer's FIN read and ours acknowledged (TIME-WAIT or CLOSED)."""
        if self.error is not None:
            return True
        return self.peer_closed_at is not None and self.sock.state in FINAL_STATES


def payload_for(seed: int, size: int) -> tuple[bytes, str]:
    """``size`` seeded random octets and their SHA-256."""
    data = random.Random(seed).randbytes(size)
    return data, hashlib.sha256(data).hexdigest()


@dataclass
class Transfer:
    """A client and (once accepted) a server end of one connection."""

    client: TcpPeer
    server_payload: bytes
    server_expect: str
    started_at: float
    respond_after_close: bool = False  # the server sends only after the client's FIN
    server: TcpPeer | None = None

    @property
    def finished(self) -> bool:
        if self.client.error is not None:
            return True
        return self.client.finished and self.server is not None and self.server.finished

    @property
    def ok(self) -> bool:
        return (
            self.server is not None
            and self.client.data_ok
            and self.server.data_ok
            and self.client.error is None
            and self.server.error is None
        )


class TransferServer:
    """Accepts connections on ``port`` and runs the server end of the transfer that opened each."""

    def __init__(self, net: SimNet, stack: Stack, port: int, *, read_pause: float | None = None) -> None:
        self.net = net
        self.read_pause = read_pause  # server ends read nothing before this virtual time
        self.server = TcpServer(stack.tcp, port)
        self.transfers: dict[tuple[bytes, int], Transfer] = {}
        self.unexpected = 0
        self._accepted_socks: list[TcpSocket] = []
        self.server.on_accept = self._accepted

    def expect(self, transfer: Transfer) -> None:
        sock = transfer.client.sock
        assert sock is not None
        self.transfers[sock.local] = transfer

    def _accepted(self, sock: TcpSocket) -> None:
        self._accepted_socks.append(sock)
        self.net.wake(self)

    def poll(self, now: float) -> None:
        socks, self._accepted_socks = self._accepted_socks, []
        for sock in socks:
            transfer = self.transfers.get(sock.remote)
            if transfer is None:
                self.unexpected += 1
                sock.abort(now)
                continue
            transfer.server = TcpPeer(
                self.net,
                sock,
                transfer.server_payload,
                expect_sha256=transfer.server_expect,
                fin_after_peer=True,
                send_after_peer=transfer.respond_after_close,
            )
            if self.read_pause is not None:
                transfer.server.pause_reading(self.read_pause)


def start_transfer(
    net: SimNet,
    client: Stack,
    server: TransferServer,
    server_addr: str,
    *,
    size: int,
    reverse_size: int = 0,
    seed: int = 0,
    respond_after_close: bool = False,
) -> Transfer:
    """Connect from ``client``: it sends ``size`` octets, the server sends back ``reverse_size``.

    Both directions flow at once unless ``respond_after_close``: then the server answers only
    after the client's half-close.  The client closes first (it ends in TIME-WAIT).
    """
    up, up_sha = payload_for(seed, size)
    down, down_sha = payload_for(seed ^ 0x5EED, reverse_size)
    sock = TcpSocket.connect(client.tcp, server_addr, server.server.port, net.now)
    transfer = Transfer(
        TcpPeer(net, sock, up, expect_sha256=down_sha),
        down,
        up_sha,
        started_at=net.now,
        respond_after_close=respond_after_close,
    )
    server.expect(transfer)
    return transfer


@dataclass
class TransferStats:
    """What one or more transfers did, in virtual time."""

    completed: bool
    ok: bool  # every octet arrived intact (SHA-256) both ways, no errors
    octets: int  # payload octets both ways
    duration: float  # connect to the last PeerClosed with all data (virtual seconds)
    close_duration: float  # connect to both ends in TIME-WAIT/CLOSED
    goodput_bps: float
    retransmissions: int
    timeouts: int
    fast_recoveries: int
    segments_sent: int
    client_states: list[TcpState] = field(default_factory=list)
    server_states: list[TcpState] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    link: dict[str, dict[str, int]] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"{self.octets} B in {self.duration:.3f} s virtual: {self.goodput_bps / 1e3:.1f} kbit/s, "
            f"rexmit {self.retransmissions}, RTO {self.timeouts}, fast recoveries {self.fast_recoveries}"
        )


def collect(transfers: Iterable[Transfer], link: Link | None = None, *, completed: bool = True) -> TransferStats:
    """Statistics over ``transfers``."""
    transfers = list(transfers)
    start = min(t.started_at for t in transfers)
    peers = [p for t in transfers for p in (t.client, t.server) if p is not None]
    data_end = max((p.peer_closed_at for p in peers if p.peer_closed_at is not None), default=start)
    close_end = max((p.closed_at or p.peer_closed_at or start for p in peers), default=start)
    conns = [p.sock.connection for p in peers if p.sock is not None]
    octets = sum(len(t.client.payload) + len(t.server_payload) for t in transfers)
    duration = data_end - start
    errors = [f"{p.error.errno_name}: {p.error.reason}" for p in peers if p.error is not None]
    return TransferStats(
        completed=completed,
        ok=all(t.ok for t in transfers),
        octets=octets,
        duration=duration,
        close_duration=close_end - start,
        goodput_bps=octets * 8 / duration if duration > 0 else 0.0,
        retransmissions=sum(c.retransmitted_segments for c in conns),
        timeouts=sum(c.timeouts for c in conns),
        fast_recoveries=sum(c.fast_recoveries for c in conns),
        segments_sent=sum(c.segments_sent for c in conns),
        client_states=[t.client.sock.state for t in transfers if t.client.sock is not None],
        server_states=[t.server.sock.state for t in transfers if t.server is not None and t.server.sock is not None],
        errors=errors,
        link={} if link is None else {"ab": dict(link.ab.counters), "ba": dict(link.ba.counters)},
    )


@dataclass
class Pair:
    """Two stacks on one link: ``client`` 10.0.0.1, ``server`` 10.0.0.2."""

    net: SimNet
    client: Stack
    server: Stack
    link: Link
    server_addr: str = "10.0.0.2"
    client_addr: str = "10.0.0.1"


def pair(
    *,
    seed: int = 0,
    up: FaultConfig | None = None,
    down: FaultConfig | None = None,
    tcp: TcpConfig | None = None,
    server_tcp: TcpConfig | None = None,
    mtu: int = 1500,
    record: bool = False,
) -> Pair:
    """A client and a server joined by a link impaired by ``up`` (client to server) and ``down``."""
    net = SimNet(seed)
    client = net.add_stack(tcp=tcp)
    server = net.add_stack(tcp=server_tcp or tcp)
    link = net.link(client, "10.0.0.1", server, "10.0.0.2", ab=up, ba=down, mtu=mtu, record=record)
    return Pair(net, client, server, link)


def run_transfer(
    p: Pair,
    *,
    size: int,
    reverse_size: int = 0,
    connections: int = 1,
    port: int = 5001,
    seed: int = 1,
    timeout: float = 600.0,
    respond_after_close: bool = False,
) -> TransferStats:
    """Run ``connections`` simultaneous transfers from client to server; wait for the closes too."""
    server = TransferServer(p.net, p.server, port)
    transfers = [
        start_transfer(
            p.net,
            p.client,
            server,
            p.server_addr,
            size=size,
            reverse_size=reverse_size,
            seed=seed + i,
            respond_after_close=respond_after_close,
        )
        for i in range(connections)
    ]
    completed = p.net.run_until(lambda: all(t.finished for t in transfers), timeout)
    return collect(transfers, p.link, completed=completed)
