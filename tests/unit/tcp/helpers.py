"""Builders for the TCP state-machine tests (smoltcp's ``socket/tcp.rs`` test style).

A connection under test is a bare :class:`TcpConnection` between ``LOCAL`` (us) and
``REMOTE`` (the peer), driven with explicit ``now``: :func:`send` hands it one segment *from*
the peer (:func:`seg` builds it), :func:`recv` takes what it would put on the wire (compared
with segments built by :func:`out`).  The factories build a connection in each RFC 9293
state through the ordinary calls, draining segments and events on the way, so a test
starts from a known, quiet connection:

* ``ISS`` is our initial sequence number, ``IRS`` the peer's;
* :data:`CONFIG` switches off what would make the segments noisy (timestamps, SACK,
  window scaling are only negotiated when the peer's SYN carries them);
* the peer announces ``PEER_WINDOW`` and ``MSS``; our receive buffer is ``RCV_BUF``.

Nothing here uses the connection's own helpers to compute expected values: sequence
numbers are plain arithmetic on ``ISS`` and ``IRS``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from tests.unit.net.helpers import Net
from wipstack.net import Interface, Stack, StackConfig
from wipstack.tcp.config import TcpConfig
from wipstack.tcp.connection import TcpConnection
from wipstack.tcp.events import TcpEvent
from wipstack.tcp.state import TcpState
from wipstack.wire.ipv4 import Ipv4Repr, address
from wipstack.wire.tcp import TcpFlags, TcpOptions, TcpRepr

S = TcpState
F = TcpFlags
SYN, ACK, FIN, RST, PSH = F.SYN, F.ACK, F.FIN, F.RST, F.PSH

LOCAL = (address("10.0.0.1"), 4000)
REMOTE = (address("10.0.0.2"), 80)
ISS = 1_000_000  # our ISN
IRS = 5_000_000  # the peer's ISN
MSS = 1460
RCV_BUF = 32 * 1024  # below 64 KiB: no window scale is needed, windows read as octets
PEER_WINDOW = 16 * 1024
T0 = 100.0
NO_OPTIONS = TcpOptions()

CONFIG = TcpConfig(receive_buffer=RCV_BUF, send_buffer=64 * 1024, timestamps=False, sack=False, window_scaling=False)
#: The peer's SYN options in the default handshake: MSS only.
PEER_SYN_OPTIONS = TcpOptions(mss=MSS)

Segment = tuple[TcpRepr, bytes]


def config(**changes: Any) -> TcpConfig:
    """:data:`CONFIG` with ``changes``."""
    return replace(CONFIG, **changes)


def make_conn(cfg: TcpConfig | None = None, *, iss: int = ISS, mss: int = MSS, ts_offset: int = 0,
              now: float = T0) -> TcpConnection:  # fmt: skip
    """A CLOSED connection from LOCAL to REMOTE."""
    return TcpConnection(cfg or CONFIG, LOCAL, REMOTE, iss=iss, mss=mss, ts_offset=ts_offset, now=now)


def seg(
    flags: TcpFlags = ACK,
    seq: int = IRS + 1,
    ack: int = ISS + 1,
    window: int = PEER_WINDOW,
    options: TcpOptions = NO_OPTIONS,
    *,
    urgent: int = 0,
) -> TcpRepr:
    """A segment from the peer (wire values: ``seq``/``ack`` are taken modulo 2**32)."""
    return TcpRepr(REMOTE[1], LOCAL[1], seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, flags, window, urgent, options)


def out(
    flags: TcpFlags = ACK,
    seq: int = ISS + 1,
    ack: int = IRS + 1,
    window: int = RCV_BUF,
    options: TcpOptions = NO_OPTIONS,
) -> TcpRepr:
    """A segment we expect the connection to send."""
    return TcpRepr(LOCAL[1], REMOTE[1], seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, flags, window, 0, options)


def rst(seq: int, ack: int = 0, flags: TcpFlags = RST) -> TcpRepr:
    """A RST we expect (window 0, no options)."""
    return out(flags, seq, ack, 0)


def send(conn: TcpConnection, repr_: TcpRepr, payload: bytes = b"", now: float = T0) -> None:
    """The peer's segment arrives."""
    conn.segment_arrives(repr_, memoryview(payload), now)


def recv(conn: TcpConnection, now: float = T0) -> list[Segment]:
    """Everything the connection sends at ``now``, payloads as bytes."""
    return [(r, bytes(p)) for r, p in conn.take_segments(now)]


def recv_one(conn: TcpConnection, now: float = T0) -> Segment:
    """Exactly one segment."""
    segments = recv(conn, now)
    assert len(segments) == 1, segments
    return segments[0]


def recv_nothing(conn: TcpConnection, now: float = T0) -> None:
    """Nothing at all."""
    segments = recv(conn, now)
    assert segments == [], segments


def events(conn: TcpConnection) -> list[TcpEvent]:
    """Drain the events."""
    out_: list[TcpEvent] = []
    while (event := conn.next_event()) is not None:
        out_.append(event)
    return out_


def tick(conn: TcpConnection, now: float) -> list[Segment]:
    """Run the timers at ``now`` and take what they send."""
    conn.on_timer(now)
    return recv(conn, now)


def data(n: int, seed: int = 0) -> bytes:
    """``n`` recognisable octets."""
    return bytes((seed + i) & 0xFF for i in range(n))


def flags_of(segments: Iterable[Segment]) -> list[TcpFlags]:
    return [r.flags for r, _ in segments]


# ---------------------------------------------------------------------------- factories


def syn_sent(cfg: TcpConfig | None = None, *, iss: int = ISS, now: float = T0, **kw: Any) -> TcpConnection:
    """Active open; the SYN has been taken."""
    conn = make_conn(cfg, iss=iss, now=now, **kw)
    conn.open_active(now)
    [(syn, _)] = recv(conn, now)
    assert syn.flags == SYN
    assert conn.state == S.SYN_SENT
    return conn


def peer_syn(options: TcpOptions = PEER_SYN_OPTIONS, *, irs: int = IRS, window: int = PEER_WINDOW) -> TcpRepr:
    """The peer's SYN."""
    return seg(SYN, irs, 0, window, options)


def syn_received(
    cfg: TcpConfig | None = None, *, options: TcpOptions = PEER_SYN_OPTIONS, irs: int = IRS, iss: int = ISS,
    now: float = T0, window: int = PEER_WINDOW, **kw: Any,
) -> TcpConnection:  # fmt: skip
    """Passive open by the peer's SYN; the SYN,ACK has been taken."""
    conn = make_conn(cfg, iss=iss, now=now, **kw)
    conn.open_passive(peer_syn(options, irs=irs, window=window), now)
    [(synack, _)] = recv(conn, now)
    assert synack.flags == SYN | ACK
    assert conn.state == S.SYN_RECEIVED
    return conn


def established(
    cfg: TcpConfig | None = None, *, options: TcpOptions = PEER_SYN_OPTIONS, irs: int = IRS, iss: int = ISS,
    now: float = T0, window: int = PEER_WINDOW, ack_options: TcpOptions = NO_OPTIONS, **kw: Any,
) -> TcpConnection:  # fmt: skip
    """ESTABLISHED through a passive open: the peer's SYN, our SYN,ACK, its ACK."""
    conn = syn_received(cfg, options=options, irs=irs, iss=iss, now=now, window=window, **kw)
    send(conn, seg(ACK, irs + 1, iss + 1, window, ack_options), now=now)
    assert conn.state == S.ESTABLISHED
    recv_nothing(conn, now)
    events(conn)
    return conn


def fin_wait_1(cfg: TcpConfig | None = None, **kw: Any) -> TcpConnection:
    """ESTABLISHED, then close(): our FIN (seq ISS+1) is out, not acknowledged."""
    conn = established(cfg, **kw)
    conn.close(T0)
    [(fin, _)] = recv(conn)
    assert fin.flags == FIN | ACK and fin.seq == ISS + 1
    assert conn.state == S.FIN_WAIT_1
    return conn


def fin_wait_2(cfg: TcpConfig | None = None, **kw: Any) -> TcpConnection:
    """FIN-WAIT-1, then the peer acknowledges our FIN."""
    conn = fin_wait_1(cfg, **kw)
    send(conn, seg(ACK, IRS + 1, ISS + 2))
    recv_nothing(conn)
    assert conn.state == S.FIN_WAIT_2
    events(conn)
    return conn


def close_wait(cfg: TcpConfig | None = None, **kw: Any) -> TcpConnection:
    """ESTABLISHED, then the peer's FIN (seq IRS+1); our ACK has been taken."""
    conn = established(cfg, **kw)
    send(conn, seg(FIN | ACK, IRS + 1, ISS + 1))
    assert recv(conn) == [(out(ACK, ISS + 1, IRS + 2, RCV_BUF - 1), b"")]  # the FIN took one octet
    assert conn.state == S.CLOSE_WAIT
    events(conn)
    return conn


def closing(cfg: TcpConfig | None = None, **kw: Any) -> TcpConnection:
    """FIN-WAIT-1, then the peer's FIN that does not acknowledge ours (simultaneous close)."""
    conn = fin_wait_1(cfg, **kw)
    send(conn, seg(FIN | ACK, IRS + 1, ISS + 1))
    assert recv(conn) == [(out(ACK, ISS + 2, IRS + 2, RCV_BUF - 1), b"")]
    assert conn.state == S.CLOSING
    events(conn)
    return conn


def last_ack(cfg: TcpConfig | None = None, **kw: Any) -> TcpConnection:
    """CLOSE-WAIT, then close(): our FIN is out."""
    conn = close_wait(cfg, **kw)
    conn.close(T0)
    assert recv(conn) == [(out(FIN | ACK, ISS + 1, IRS + 2, RCV_BUF - 1), b"")]
    assert conn.state == S.LAST_ACK
    return conn


def time_wait(cfg: TcpConfig | None = None, **kw: Any) -> TcpConnection:
    """FIN-WAIT-2, then the peer's FIN; our ACK has been taken."""
    conn = fin_wait_2(cfg, **kw)
    send(conn, seg(FIN | ACK, IRS + 1, ISS + 2))
    assert recv(conn) == [(out(ACK, ISS + 2, IRS + 2, RCV_BUF - 1), b"")]
    assert conn.state == S.TIME_WAIT
    events(conn)
    return conn


FACTORIES = {
    "SYN-SENT": syn_sent,
    "SYN-RECEIVED": syn_received,
    "ESTABLISHED": established,
    "FIN-WAIT-1": fin_wait_1,
    "FIN-WAIT-2": fin_wait_2,
    "CLOSE-WAIT": close_wait,
    "CLOSING": closing,
    "LAST-ACK": last_ack,
    "TIME-WAIT": time_wait,
}


# ---------------------------------------------------------------------------- stacks


def tcp_host(
    addr: str = "10.0.0.1", *, seed: int = 1, tcp: TcpConfig | None = None, name: str = "eth0", mtu: int = 1500,
    **stack_config: Any,
) -> tuple[Stack, Interface]:  # fmt: skip
    """A stack with one /24 interface and the given TCP configuration."""
    stack = Stack(random.Random(seed), StackConfig(**stack_config), tcp)
    iface = stack.add_interface(Interface(name, address(addr), prefix_len=24, mtu=mtu))
    return stack, iface


def tcp_pair(
    *, tcp_a: TcpConfig | None = None, tcp_b: TcpConfig | None = None, latency: float = 0.0, **stack_config: Any
) -> tuple[Net, Stack, Stack]:
    """A (10.0.0.1) and B (10.0.0.2) joined by a wire (see :class:`tests.unit.net.helpers.Net`)."""
    a, a_if = tcp_host("10.0.0.1", seed=1, tcp=tcp_a, name="a0", **stack_config)
    b, b_if = tcp_host("10.0.0.2", seed=2, tcp=tcp_b, name="b0", **stack_config)
    net = Net(latency=latency)
    net.connect(a, a_if, b, b_if)
    return net, a, b


def tcp_datagram(src: str, dst: str, repr_: TcpRepr, payload: bytes = b"") -> bytes:
    """An IPv4 datagram carrying one TCP segment with a correct checksum."""
    s, d = address(src), address(dst)
    header = Ipv4Repr(s, d, 6, 64, 0, 0x1234)
    return header.emit(repr_.emit(payload, src=s, dst=d))


def tcp_output(iface: Interface) -> list[tuple[Ipv4Repr, TcpRepr, bytes]]:
    """Every TCP segment the interface queued (checksums verified), drained."""
    result = []
    for packet in iface.take_output():
        header, payload = Ipv4Repr.parse(packet)
        if header.protocol == 6:
            repr_, data_ = TcpRepr.parse(payload, src=header.src, dst=header.dst)
            result.append((header, repr_, bytes(data_)))
    return result


def run_timers(stack: Stack, until: float, now: float = 0.0) -> float:
    """Run one stack's timers (its output is left queued) up to ``until``; returns the last time."""
    for _ in range(100_000):
        deadline = stack.next_deadline()
        if deadline is None or deadline > until:
            return now
        now = max(now, deadline)
        stack.on_timer(now)
    raise AssertionError("timers did not settle")
