"""Hypothesis: TCP under hostile input (h11's fuzz invariant, for TCP).

Connections are built in every RFC 9293 state (with random peer SYN options and three
configurations), then fed random segments -- any flags, sequence and acknowledgment numbers
near and far from the windows, random options (MSS, window scale, SACK blocks, timestamps)
and payloads -- interleaved with user calls and timer runs at increasing times.  Whatever
comes in:

* nothing raises (user calls may refuse with ``LocalProtocolError``, nothing else);
* every segment the connection sends survives ``TcpRepr.emit`` and parses back to itself,
  with our ports, and a sequence number inside what we ever sent (RSTs answering a bad ACK
  excepted: they echo SEG.ACK);
* memory stays bounded: the receive buffer and the out-of-order assembler within
  ``receive_buffer``, the send buffer within ``send_buffer``, the SACK scoreboard within its
  range limit, a bounded burst of segments and events per call;
* after ``on_timer(now)`` and ``take_segments(now)``, nothing is due in the past (no spinning).

The same for the whole layer: random octets and random but checksummed TCP segments to
``Stack.receive`` of a host with a listener and open connections.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.tcp.helpers import (
    ACK,
    CONFIG,
    FIN,
    IRS,
    ISS,
    LOCAL,
    PEER_WINDOW,
    REMOTE,
    T0,
    S,
    make_conn,
    peer_syn,
    seg,
    send,
    tcp_datagram,
    tcp_host,
)
from wipstack.errors import LocalProtocolError
from wipstack.net import Interface, Stack
from wipstack.tcp.config import TcpConfig
from wipstack.tcp.connection import TcpConnection
from wipstack.tcp.scoreboard import MAX_RANGES
from wipstack.tcp.seq import MASK, unwrap
from wipstack.wire.ipv4 import Ipv4Repr, address
from wipstack.wire.tcp import TcpFlags, TcpOptions, TcpRepr

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CONFIGS = [
    CONFIG,  # no options
    TcpConfig(
        receive_buffer=4096,
        send_buffer=4096,
        max_out_of_order_ranges=4,
        challenge_ack_limit=5,
        keepalive=True,
        keepalive_idle=1.0,
        keepalive_interval=0.5,
        keepalive_count=2,
        time_wait=5.0,
        persist_max=2.0,
        data_retries=4,
        syn_retries=2,
        connect_timeout=10.0,
        data_timeout=20.0,
        rto_max=4.0,
    ),  # fmt: skip
    TcpConfig(),  # Linux-like: 256 KiB, window scale 3, timestamps, SACK
]
STATES = ["SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING",
          "LAST-ACK", "TIME-WAIT"]  # fmt: skip
SRC, DST = LOCAL[0], REMOTE[0]

u32 = st.integers(0, MASK)
peer_syn_options = st.builds(
    TcpOptions,
    mss=st.sampled_from([None, 0, 1, 64, 536, 1460, 65535]),
    window_scale=st.sampled_from([None, 0, 3, 7, 14, 15, 255]),
    sack_permitted=st.booleans(),
    timestamps=st.sampled_from([None, (1000, 0), (MASK - 5, 0)]),
)
payloads = st.one_of(st.just(b""), st.just(b""), st.binary(max_size=64), st.integers(0, 5000).map(bytes))
flag_values = st.one_of(
    st.sampled_from([ACK, ACK, ACK | TcpFlags.PSH, FIN | ACK, TcpFlags.RST, TcpFlags.RST | ACK, TcpFlags.SYN,
                     TcpFlags.SYN | ACK, ACK | TcpFlags.URG]),
    st.integers(0, 255).map(TcpFlags),
)  # fmt: skip


def build(state: str, cfg: TcpConfig, options: TcpOptions) -> TcpConnection:
    """A connection in ``state`` through ordinary calls (no assertions on exact segments)."""
    conn = make_conn(cfg)
    if state == "SYN-SENT":
        conn.open_active(T0)
        conn.take_segments(T0)
        return conn
    conn.open_passive(peer_syn(options), T0)
    conn.take_segments(T0)
    if state == "SYN-RECEIVED":
        return conn
    tsval = [(options.timestamps or (0, 0))[0]]

    def peer(flags: TcpFlags, seq: int, ack: int) -> None:
        tsval[0] += 1
        ts = (tsval[0] & MASK, 1) if conn.ts_enabled else None
        send(conn, seg(flags, seq, ack, PEER_WINDOW, TcpOptions(timestamps=ts)))
        conn.take_segments(T0)

    peer(ACK, IRS + 1, ISS + 1)
    if state in ("FIN-WAIT-1", "FIN-WAIT-2", "CLOSING", "TIME-WAIT"):
        conn.close(T0)
        conn.take_segments(T0)
        if state in ("FIN-WAIT-2", "TIME-WAIT"):
            peer(ACK, IRS + 1, ISS + 2)
        if state in ("CLOSING", "TIME-WAIT"):
            peer(FIN | ACK, IRS + 1, ISS + 2 if state == "TIME-WAIT" else ISS + 1)
    elif state in ("CLOSE-WAIT", "LAST-ACK"):
        peer(FIN | ACK, IRS + 1, ISS + 1)
        if state == "LAST-ACK":
            conn.close(T0)
            conn.take_segments(T0)
    assert str(conn.state) == state, (conn.state, state)
    return conn


@st.composite
def segment_options(draw: st.DrawFn, conn: TcpConnection) -> TcpOptions:
    near_una = st.integers(-5000, 300_000).map(lambda d: (conn.snd_una + d) & MASK)
    edge = st.one_of(near_una, u32)
    blocks = st.lists(st.tuples(edge, edge), max_size=4).map(tuple)
    ts = st.one_of(
        st.none(),
        st.tuples(st.integers(-100, 1 << 31).map(lambda d: (conn._ts_recent + d) & MASK), u32),
        st.tuples(u32, u32),
    )
    return TcpOptions(
        mss=draw(st.one_of(st.none(), st.integers(0, 0xFFFF))),
        window_scale=draw(st.one_of(st.none(), st.integers(0, 255))),
        sack_permitted=draw(st.booleans()),
        sack_blocks=draw(st.one_of(st.just(()), blocks)),
        timestamps=draw(ts),
    )


@st.composite
def segments(draw: st.DrawFn, conn: TcpConnection) -> tuple[TcpRepr, bytes]:
    seq = draw(st.one_of(st.integers(-3000, 300_000).map(lambda d: conn.rcv_nxt + d), u32))
    ack = draw(st.one_of(st.integers(-70_000, 70_000).map(lambda d: conn.snd_una + d),
                         st.integers(0, 3).map(lambda d: conn.snd_max + d - 1), u32))  # fmt: skip
    options = draw(st.one_of(st.just(TcpOptions()), segment_options(conn)))
    window = draw(st.one_of(st.sampled_from([0, 1, PEER_WINDOW, 0xFFFF]), st.integers(0, 0xFFFF)))
    repr_ = TcpRepr(REMOTE[1], LOCAL[1], seq & MASK, ack & MASK, draw(flag_values), window,
                    draw(st.sampled_from([0, 0, 1, 0xFFFF])), options)  # fmt: skip
    return repr_, draw(payloads)


def check_output(conn: TcpConnection, out: list[tuple[TcpRepr, bytes]]) -> None:
    assert len(out) <= 300
    for repr_, payload in out:
        wire = repr_.emit(payload, src=SRC, dst=DST)
        parsed, data = TcpRepr.parse(wire, src=SRC, dst=DST)
        assert parsed == repr_ and bytes(data) == bytes(payload)
        assert (repr_.src_port, repr_.dst_port) == (LOCAL[1], REMOTE[1])
        assert not (repr_.flags & TcpFlags.SYN and repr_.flags & (TcpFlags.FIN | TcpFlags.RST))
        if payload:
            assert len(payload) <= conn.mss
        if not repr_.flags & TcpFlags.RST:
            seq = unwrap(repr_.seq, conn.snd_una)
            assert conn.iss - 1 <= seq <= conn.snd_max, (seq, conn.iss, conn.snd_max)


def check_bounds(conn: TcpConnection) -> None:
    cfg = conn.config
    assert conn.readable + conn._ooo.stored() <= cfg.receive_buffer
    assert conn.unsent <= cfg.send_buffer
    assert len(conn.scoreboard.ranges()) <= MAX_RANGES
    assert len(conn._ooo.ranges()) <= cfg.max_out_of_order_ranges
    assert conn.snd_una <= conn.snd_nxt <= conn.snd_max
    assert isinstance(conn.state, S)


def drain_events(conn: TcpConnection) -> None:
    for _ in range(20):
        if conn.next_event() is None:
            return
    raise AssertionError("an unbounded stream of events")


@pytest.mark.parametrize("state", STATES)
@SETTINGS
@given(st.integers(0, len(CONFIGS) - 1), peer_syn_options, st.data())
def test_tcp_connection_survives_garbage_in_every_state(
    state: str, config_index: int, options: TcpOptions, data: st.DataObject
) -> None:
    cfg = CONFIGS[config_index]
    conn = build(state, cfg, options)
    drain_events(conn)
    now = T0
    for _ in range(data.draw(st.integers(1, 30))):
        action = data.draw(st.sampled_from(["segment"] * 8 + ["timer", "later", "send", "recv", "shutdown",
                                                              "close", "abort", "nagle"]))  # fmt: skip
        timer_ran = False
        try:
            if action == "segment":
                repr_, payload = data.draw(segments(conn))
                conn.segment_arrives(repr_, memoryview(payload), now)
            elif action == "timer":
                deadline = conn.next_deadline()
                now = max(now, deadline if deadline is not None else now)
                conn.on_timer(now)
                timer_ran = True
            elif action == "later":
                now += data.draw(st.floats(0.0, 30.0))
                conn.on_timer(now)
                timer_ran = True
            elif action == "send":
                conn.send(bytes(data.draw(st.integers(0, 9000))))
            elif action == "recv":
                conn.recv(data.draw(st.integers(-1, 5000)))
            elif action == "shutdown":
                conn.shutdown(now)
            elif action == "close":
                conn.close(now)
            elif action == "abort":
                conn.abort(now)
            else:
                conn.nagle = not conn.nagle
        except LocalProtocolError:
            assert action == "send"  # only send() refuses; the others are no-ops when late
        check_output(conn, conn.take_segments(now))
        check_bounds(conn)
        drain_events(conn)
        if timer_ran and not conn.is_closed:
            deadline = conn.next_deadline()
            assert deadline is None or deadline > now, (deadline, now, conn.state)


# ---------------------------------------------------------------------------- the layer

US, PEER = "10.0.0.1", "10.0.0.2"
LAYER_CONFIG = TcpConfig(max_half_open=4, backlog=4, max_connections=12, syn_retries=1, time_wait=2.0)


def layer_host() -> tuple[Stack, Interface, list[int]]:
    """A host listening on 80 with an accepted connection (from PEER:1000) and a connecting one."""
    stack, iface = tcp_host(US, tcp=LAYER_CONFIG)
    stack.tcp.listen(80)
    syn_ = TcpRepr(1000, 80, 5000, 0, TcpFlags.SYN, 65535, 0, TcpOptions(mss=1460, sack_permitted=True))
    stack.receive(iface, tcp_datagram(PEER, US, syn_), 0.0)
    [packet] = iface.take_output()
    header, payload = Ipv4Repr.parse(packet)
    synack, _ = TcpRepr.parse(payload, src=header.src, dst=header.dst)
    stack.receive(iface, tcp_datagram(PEER, US, TcpRepr(1000, 80, 5001, (synack.seq + 1) & MASK, ACK, 65535)), 0.0)
    conn = stack.tcp.connect((address(PEER), 22), 0.0, local_port=50000)
    stack.on_timer(0.0)
    iface.take_output()
    return stack, iface, [synack.seq, conn.iss]


def check_layer_output(iface: Interface) -> None:
    for packet in iface.take_output():
        assert len(packet) <= iface.mtu
        header, payload = Ipv4Repr.parse(packet)
        if header.protocol == 6:
            TcpRepr.parse(payload, src=header.src, dst=header.dst)


@st.composite
def layer_packets(draw: st.DrawFn, isns: list[int]) -> bytes:
    kind = draw(st.sampled_from(["raw", "raw-tcp", "segment", "segment", "segment", "mutated"]))
    if kind == "raw":
        return draw(st.binary(max_size=120))
    if kind == "raw-tcp":
        header = Ipv4Repr(address(PEER), address(US), 6, 64, 0, 1)
        return header.emit(draw(st.binary(max_size=80)))
    sport = draw(st.sampled_from([1000, 1000, 22, 1001, 1002, 40000]))
    dport = draw(st.sampled_from([80, 80, 50000, 50000, 81]))
    iss = draw(st.sampled_from(isns))
    seq = draw(st.one_of(st.integers(5000, 5000 + 70_000), u32))
    ack = draw(st.one_of(st.integers(-10, 70_000).map(lambda d: (iss + d) & MASK), u32))
    flags = draw(flag_values)
    if flags & TcpFlags.SYN:
        flags &= ~(TcpFlags.FIN | TcpFlags.RST)  # what TcpRepr.parse refuses never reaches TCP
    options = draw(st.one_of(st.just(TcpOptions()), peer_syn_options))
    repr_ = TcpRepr(sport, dport, seq & MASK, ack, TcpFlags(flags), draw(st.integers(0, 0xFFFF)), 0, options)
    packet = tcp_datagram(PEER, draw(st.sampled_from([US, US, US, "10.0.0.255"])), repr_, draw(payloads)[:1400])
    if kind == "mutated":
        flipped = bytearray(packet)
        for _ in range(draw(st.integers(1, 4))):
            flipped[draw(st.integers(20, len(flipped) - 1))] ^= 1 << draw(st.integers(0, 7))
        return bytes(flipped)
    return packet


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_tcp_layer_survives_garbage(data: st.DataObject) -> None:
    stack, iface, isns = layer_host()
    now = 0.0
    for _ in range(data.draw(st.integers(1, 40))):
        if data.draw(st.integers(0, 5)) == 0:
            now += data.draw(st.floats(0.0, 5.0))
            stack.on_timer(now)
            deadline = stack.next_deadline()
            assert deadline is None or deadline > now
        else:
            stack.receive(iface, data.draw(layer_packets(isns)), now)
        check_layer_output(iface)
        tcp = stack.tcp
        assert len(tcp.connections) <= LAYER_CONFIG.max_connections
        for listener in tcp._listeners.values():
            assert len(listener.half_open) <= LAYER_CONFIG.max_half_open
            assert len(listener.accept_queue) <= LAYER_CONFIG.backlog + LAYER_CONFIG.max_half_open
        for conn in tcp.connections:
            check_bounds(conn)


def test_tcp_layer_random_octets_smoke() -> None:
    stack, iface, _ = layer_host()
    rng = random.Random(1)
    for i in range(3000):
        body = rng.randbytes(rng.randrange(0, 60))
        stack.receive(iface, Ipv4Repr(address(PEER), address(US), 6, 64, 0, i & 0xFFFF).emit(body), i * 0.01)
    check_layer_output(iface)
