"""TcpLayer on a Stack: demultiplexing, RSTs for strangers, listeners, ISNs, ports, ICMP, two stacks talking."""

from __future__ import annotations

import random

import pytest

from tests.unit.tcp.helpers import (
    ACK,
    FIN,
    PSH,
    RST,
    SYN,
    S,
    config,
    run_timers,
    tcp_datagram,
    tcp_host,
    tcp_output,
    tcp_pair,
)
from wipstack.errors import DropReason
from wipstack.net import Interface, Stack
from wipstack.tcp.config import TcpConfig
from wipstack.tcp.connection import TcpConnection
from wipstack.tcp.events import Closed, Connected, ConnectionFailed, DataAvailable, PeerClosed, TcpEvent
from wipstack.tcp.socket import TcpServer, TcpSocket
from wipstack.wire.icmp import IcmpRepr, IcmpType, UnreachableCode
from wipstack.wire.ipv4 import IpProtocol, Ipv4Repr, address
from wipstack.wire.tcp import TcpFlags, TcpOptions, TcpRepr

US, PEER = "10.0.0.1", "10.0.0.2"
MASK = 0xFFFFFFFF


def drain(conn: TcpConnection) -> list[TcpEvent]:
    out = []
    while (event := conn.next_event()) is not None:
        out.append(event)
    return out


MSS_ONLY = TcpOptions(mss=1460)


def syn(sport: int, dport: int, seq: int, options: TcpOptions = MSS_ONLY) -> TcpRepr:
    return TcpRepr(sport, dport, seq, 0, SYN, 65535, 0, options)


# ---------------------------------------------------------------------------- strangers (RFC 9293 §3.10.7.1)


def test_layer_syn_to_a_closed_port_gets_rst_ack() -> None:
    stack, iface = tcp_host(US)
    stack.receive(iface, tcp_datagram(PEER, US, syn(40000, 80, 1000)), 0.0)
    [(header, rst, payload)] = tcp_output(iface)
    assert (header.src, header.dst) == (address(US), address(PEER))
    # <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
    assert rst == TcpRepr(80, 40000, 0, 1001, RST | ACK, 0)
    assert payload == b""
    assert stack.tcp.resets_sent == 1 and stack.tcp.drops[DropReason.PORT_UNREACHABLE] == 1
    assert stack.tcp.connections == []


def test_layer_segment_without_ack_counts_data_and_fin() -> None:
    stack, iface = tcp_host(US)
    segment = TcpRepr(40000, 80, MASK, 0, FIN | PSH, 1000)
    stack.receive(iface, tcp_datagram(PEER, US, segment, b"0123456789"), 0.0)
    [(_, rst, _)] = tcp_output(iface)
    assert rst == TcpRepr(80, 40000, 0, 10, RST | ACK, 0)  # 2**32 - 1 + 11, wrapped


def test_layer_segment_with_ack_to_a_closed_port_gets_rst_seq_ack() -> None:
    stack, iface = tcp_host(US)
    segment = TcpRepr(40000, 80, 5000, 777_777, ACK | PSH, 1000)
    stack.receive(iface, tcp_datagram(PEER, US, segment, b"data"), 0.0)
    [(_, rst, _)] = tcp_output(iface)
    assert rst == TcpRepr(80, 40000, 777_777, 0, RST, 0)  # <SEQ=SEG.ACK><CTL=RST>


@pytest.mark.parametrize("flags", [RST, RST | ACK])
def test_layer_rst_to_a_closed_port_is_never_answered(flags: TcpFlags) -> None:
    stack, iface = tcp_host(US)
    stack.receive(iface, tcp_datagram(PEER, US, TcpRepr(40000, 80, 1, 2, flags, 0)), 0.0)
    assert iface.take_output() == []
    assert stack.tcp.resets_sent == 0


def test_layer_segment_to_a_broadcast_is_dropped_silently() -> None:
    stack, iface = tcp_host(US)
    stack.tcp.listen(80)
    stack.receive(iface, tcp_datagram(PEER, "10.0.0.255", syn(40000, 80, 1)), 0.0)
    stack.receive(iface, tcp_datagram(PEER, "10.0.0.255", syn(40000, 81, 1)), 0.0)
    assert iface.take_output() == []
    assert stack.tcp.drops[DropReason.NOT_FOR_US] == 2
    assert stack.tcp.connections == []


def test_layer_bad_checksum_is_dropped_without_rst() -> None:
    stack, iface = tcp_host(US)
    packet = bytearray(tcp_datagram(PEER, US, syn(40000, 80, 1)))
    packet[-1] ^= 0xFF  # an option octet: the TCP checksum breaks, the IPv4 one does not
    stack.receive(iface, bytes(packet), 0.0)
    assert iface.take_output() == []
    assert stack.tcp.drops[DropReason.BAD_CHECKSUM] == 1


def test_layer_ack_to_a_listener_gets_rst() -> None:
    stack, iface = tcp_host(US)
    stack.tcp.listen(80)
    stack.receive(iface, tcp_datagram(PEER, US, TcpRepr(40000, 80, 10, 4242, ACK, 1000)), 0.0)
    [(_, rst, _)] = tcp_output(iface)
    assert rst == TcpRepr(80, 40000, 4242, 0, RST, 0)


# ---------------------------------------------------------------------------- listeners


def handshake(stack: Stack, iface: Interface, sport: int, seq: int, now: float = 0.0) -> TcpRepr:
    """Send SYN from PEER:sport, return the SYN,ACK."""
    stack.receive(iface, tcp_datagram(PEER, US, syn(sport, 80, seq)), now)
    [(_, synack, _)] = tcp_output(iface)
    assert synack.flags == SYN | ACK and synack.ack == (seq + 1) & MASK
    return synack


def complete(stack: Stack, iface: Interface, sport: int, seq: int, synack: TcpRepr, now: float = 0.0) -> None:
    ack = TcpRepr(sport, 80, (seq + 1) & MASK, (synack.seq + 1) & MASK, ACK, 65535)
    stack.receive(iface, tcp_datagram(PEER, US, ack), now)
    assert tcp_output(iface) == []


def test_layer_listener_accepts_in_handshake_completion_order() -> None:
    stack, iface = tcp_host(US)
    listener = stack.tcp.listen(80)
    synacks = {port: handshake(stack, iface, port, 1000 * port) for port in (1001, 1002, 1003)}
    assert listener.accept() is None and len(listener.half_open) == 3
    for port in (1003, 1001, 1002):
        complete(stack, iface, port, 1000 * port, synacks[port])
    accepted = [listener.accept() for _ in range(3)]
    assert [c.remote[1] for c in accepted if c is not None] == [1003, 1001, 1002]
    assert all(c is not None and c.state == S.ESTABLISHED for c in accepted)
    assert listener.accept() is None and not listener.half_open


def test_layer_listener_on_any_address_and_port_in_use() -> None:
    stack, iface = tcp_host(US)
    stack.tcp.listen(80)
    with pytest.raises(OSError) as info:
        stack.tcp.listen(80, address(US))
    assert info.value.errno == 98


def test_layer_listener_backlog_bounds_the_accept_queue() -> None:
    stack, iface = tcp_host(US)
    listener = stack.tcp.listen(80, backlog=2)
    for port in (1001, 1002):
        complete(stack, iface, port, port, handshake(stack, iface, port, port))
    stack.receive(iface, tcp_datagram(PEER, US, syn(1003, 80, 1003)), 0.0)
    assert tcp_output(iface) == []  # dropped silently: the client retries
    assert listener.syn_drops == 1
    listener.accept()
    handshake(stack, iface, 1003, 1003)  # room again


def test_layer_syn_flood_is_bounded_by_max_half_open() -> None:
    stack, iface = tcp_host(US, tcp=TcpConfig(max_half_open=8, syn_retries=1))
    listener = stack.tcp.listen(80)
    rng = random.Random(7)
    for i in range(2000):
        sport = 1024 + i
        stack.receive(iface, tcp_datagram(PEER, US, syn(sport, 80, rng.getrandbits(32))), 0.001 * i)
        assert len(stack.tcp.connections) <= 8 and len(iface.output) <= 8
    assert len(tcp_output(iface)) == 8  # SYN,ACKs only for the first 8
    assert len(listener.half_open) == 8
    assert listener.syn_drops == 1992 and stack.tcp.drops[DropReason.QUEUE_FULL] == 1992
    # half-open connections time out (SYN,ACK sent twice, then ETIMEDOUT) and free their slots
    run_timers(stack, 100.0, 2.0)
    assert stack.tcp.connections == [] and not listener.half_open
    assert stack.next_deadline() is None
    assert {r.flags for _, r, _ in tcp_output(iface)} == {SYN | ACK}  # retransmissions, nothing else
    handshake(stack, iface, 9999, 1, 100.0)


def test_layer_max_connections() -> None:
    stack, iface = tcp_host(US, tcp=TcpConfig(max_connections=2))
    stack.tcp.listen(80)
    handshake(stack, iface, 1001, 1)
    handshake(stack, iface, 1002, 1)
    stack.receive(iface, tcp_datagram(PEER, US, syn(1003, 80, 1)), 0.0)
    assert tcp_output(iface) == []
    with pytest.raises(OSError) as info:
        stack.tcp.connect((address(PEER), 80), 0.0)
    assert info.value.errno == 105


def test_layer_listener_close_resets_pending_connections() -> None:
    stack, iface = tcp_host(US)
    listener = stack.tcp.listen(80)
    synack = handshake(stack, iface, 1001, 5)
    complete(stack, iface, 1001, 5, synack)
    handshake(stack, iface, 1002, 7)
    listener.close(1.0)
    stack.on_timer(1.0)
    resets = tcp_output(iface)
    assert sorted(r.dst_port for _, r, _ in resets) == [1001, 1002]
    assert all(r.flags == RST for _, r, _ in resets)
    assert stack.tcp.connections == []
    stack.receive(iface, tcp_datagram(PEER, US, syn(1003, 80, 1)), 2.0)
    assert [r.flags for _, r, _ in tcp_output(iface)] == [RST | ACK]  # nobody listens any more


# ---------------------------------------------------------------------------- ISNs and ports


def test_layer_isns_differ_per_four_tuple() -> None:
    stack, _ = tcp_host(US)
    conns = [stack.tcp.connect((address(PEER), 80), 5.0, local_port=p) for p in range(50000, 50010)]
    conns += [stack.tcp.connect((address(PEER), p), 5.0, local_port=50000) for p in range(81, 91)]
    assert len({c.iss for c in conns}) == len(conns)


def test_layer_isn_grows_with_time_for_the_same_four_tuple() -> None:
    stack, _ = tcp_host(US)
    first = stack.tcp.connect((address(PEER), 80), 10.0, local_port=50000)
    first.abort(10.0)
    stack.on_timer(10.0)
    assert stack.tcp.connections == []
    second = stack.tcp.connect((address(PEER), 80), 12.5, local_port=50000)
    # RFC 6528: ISN = M + F(4-tuple, secret), M a 4 µs clock
    assert (second.iss - first.iss) & MASK == 2.5 * 250_000


def test_layer_isns_depend_on_a_per_stack_secret() -> None:
    a, _ = tcp_host(US, seed=1)
    b, _ = tcp_host(US, seed=2)
    iss_a = a.tcp.connect((address(PEER), 80), 0.0, local_port=50000).iss
    iss_b = b.tcp.connect((address(PEER), 80), 0.0, local_port=50000).iss
    assert iss_a != iss_b


def test_layer_ephemeral_ports_in_range_and_distinct() -> None:
    stack, _ = tcp_host(US)
    ports = [stack.tcp.connect((address(PEER), 80), 0.0).local[1] for _ in range(300)]
    assert len(set(ports)) == 300
    assert all(49152 <= p <= 65535 for p in ports)


def test_layer_ephemeral_ports_exhausted() -> None:
    stack, _ = tcp_host(US, ephemeral_ports=(50000, 50009))
    ports = {stack.tcp.connect((address(PEER), 80), 0.0).local[1] for _ in range(10)}
    assert ports == set(range(50000, 50010))
    with pytest.raises(OSError) as info:
        stack.tcp.connect((address(PEER), 80), 0.0)
    assert info.value.errno == 99
    stack.tcp.connect((address(PEER), 81), 0.0)  # another remote: the same ports are free


def test_layer_connect_without_a_route() -> None:
    stack, _ = tcp_host(US)
    with pytest.raises(OSError) as info:
        stack.tcp.connect((address("192.0.2.1"), 80), 0.0)
    assert info.value.errno == 101


def test_layer_connect_twice_to_the_same_four_tuple() -> None:
    stack, _ = tcp_host(US)
    stack.tcp.connect((address(PEER), 80), 0.0, local_port=50000)
    with pytest.raises(OSError) as info:
        stack.tcp.connect((address(PEER), 80), 0.0, local_port=50000)
    assert info.value.errno == 98


def test_layer_callback_that_lets_go_of_its_socket_gets_no_more_events() -> None:
    # a refused connect gives ConnectionFailed then Closed; the owner stops listening at the first
    stack, iface = tcp_host(US)
    sock = TcpSocket.connect(stack.tcp, PEER, 80, 0.0)
    seen: list[TcpEvent] = []

    def on_event(s: TcpSocket, event: TcpEvent) -> None:
        seen.append(event)
        s.on_event = None

    sock.on_event = on_event
    stack.on_timer(0.0)
    [(_, syn_, _)] = tcp_output(iface)
    rst = TcpRepr(80, syn_.src_port, 0, (syn_.seq + 1) & MASK, RST | ACK, 0)
    stack.receive(iface, tcp_datagram(PEER, US, rst), 0.1)
    assert [type(e) for e in seen] == [ConnectionFailed]
    assert isinstance(sock.next_event(), Closed)  # the rest waits for whoever asks


def test_layer_listen_on_port_zero_picks_a_free_ephemeral_port() -> None:
    stack, _ = tcp_host(US)
    ports = {stack.tcp.listen(0).local[1] for _ in range(50)}
    low, high = stack.config.ephemeral_ports
    assert len(ports) == 50 and all(low <= p <= high for p in ports)


def test_layer_mss_from_the_interface_mtu() -> None:
    stack, iface = tcp_host(US, mtu=576)
    stack.tcp.connect((address(PEER), 80), 0.0)
    stack.on_timer(0.0)
    [(_, syn_, _)] = tcp_output(iface)
    assert syn_.options.mss == 536


# ---------------------------------------------------------------------------- ICMP (RFC 5927, RFC 1122 §4.2.3.9)


def icmp_about(packet: bytes, code: int, icmp_type: int = IcmpType.DEST_UNREACHABLE) -> bytes:
    message = IcmpRepr.error(icmp_type, code, packet).emit()
    return Ipv4Repr(address(PEER), address(US), IpProtocol.ICMP.value, 64, 0, 1).emit(message)


def connecting() -> tuple[Stack, Interface, TcpConnection, bytes]:
    stack, iface = tcp_host(US)
    conn = stack.tcp.connect((address(PEER), 80), 0.0)
    stack.on_timer(0.0)
    [packet] = iface.take_output()
    return stack, iface, conn, packet


@pytest.mark.parametrize("code", [UnreachableCode.PORT, UnreachableCode.PROTOCOL])
def test_layer_icmp_unreachable_aborts_syn_sent_with_econnrefused(code: int) -> None:
    stack, iface, conn, packet = connecting()
    stack.receive(iface, icmp_about(packet, code), 0.1)
    assert conn.state == S.CLOSED
    evts = drain(conn)
    assert isinstance(evts[0], ConnectionFailed) and evts[0].errno_name == "ECONNREFUSED"
    assert evts[-1] == Closed()
    stack.on_timer(0.1)
    assert stack.tcp.connections == []
    assert iface.take_output() == []


@pytest.mark.parametrize(
    ("icmp_type", "code"),
    [(IcmpType.DEST_UNREACHABLE, UnreachableCode.HOST), (IcmpType.DEST_UNREACHABLE, UnreachableCode.NET),
     (IcmpType.TIME_EXCEEDED, 0)],
)  # fmt: skip
def test_layer_icmp_soft_errors_do_not_abort(icmp_type: int, code: int) -> None:
    stack, iface, conn, packet = connecting()
    stack.receive(iface, icmp_about(packet, code, icmp_type), 0.1)
    assert conn.state == S.SYN_SENT


def test_layer_icmp_quoting_a_wrong_sequence_number_is_ignored() -> None:
    stack, iface, conn, packet = connecting()
    forged = bytearray(packet)
    seq_at = 20 + 4
    forged[seq_at : seq_at + 4] = ((conn.iss + 100_000) & MASK).to_bytes(4, "big")  # RFC 5927 §4.1
    stack.receive(iface, icmp_about(bytes(forged), UnreachableCode.PORT), 0.1)
    assert conn.state == S.SYN_SENT
    assert stack.tcp.drops[DropReason.BAD_VALUE] == 1


# ---------------------------------------------------------------------------- two stacks


def test_layer_two_stacks_transfer_both_ways_and_close() -> None:
    net, a, b = tcp_pair(latency=0.005)
    server = TcpServer(b.tcp, 80)
    client = TcpSocket.connect(a.tcp, PEER, 80, 0.0)
    net.run_until(0.05)
    assert client.state == S.ESTABLISHED
    accepted = server.accept()
    assert accepted is not None and accepted.state == S.ESTABLISHED
    assert client.next_event() == Connected()
    up, down = random.Random(1).randbytes(100_000), random.Random(2).randbytes(60_000)
    got_up, got_down = bytearray(), bytearray()
    sent_up = sent_down = 0
    now = 0.05
    while (len(got_up) < len(up) or len(got_down) < len(down)) and now < 30:
        sent_up += client.send(up[sent_up:])
        sent_down += accepted.send(down[sent_down:])
        now += 0.01
        net.run_until(now)
        got_up += accepted.recv()
        got_down += client.recv()
    assert bytes(got_up) == up and bytes(got_down) == down
    client.close(now)
    net.run_until(now + 0.1)
    assert accepted.next_event() is not None  # Connected...
    assert PeerClosed() in [e for e in iter(accepted.next_event, None)]
    accepted.close(now + 0.1)
    net.run_until(now + 0.2)
    assert accepted.state == S.CLOSED and client.state == S.TIME_WAIT
    net.run_until(now + 61)
    assert client.state == S.CLOSED
    assert a.tcp.connections == [] and b.tcp.connections == []
    assert a.next_deadline() is None and b.next_deadline() is None


def test_layer_two_stacks_survive_loss() -> None:
    net, a, b = tcp_pair(latency=0.01)
    rng = random.Random(5)
    net.drop = lambda sender, packet: rng.random() < 0.05
    listener = b.tcp.listen(80)
    conn = a.tcp.connect((address(PEER), 80), 0.0)
    net.run_until(3.0)
    peer = listener.accept()
    assert peer is not None and conn.state == S.ESTABLISHED
    payload = random.Random(3).randbytes(200_000)
    sent, got = 0, bytearray()
    now = 3.0
    while len(got) < len(payload) and now < 120:
        sent += conn.send(payload[sent:])
        a.tcp.touch(conn)
        now += 0.02
        net.run_until(now)
        got += peer.recv()
        b.tcp.touch(peer)
    assert bytes(got) == payload
    assert conn.retransmitted_segments > 0


def test_layer_simultaneous_open_between_two_stacks() -> None:
    net, a, b = tcp_pair(latency=0.01)
    ca = a.tcp.connect((address(PEER), 6000), 0.0, local_port=5000)
    cb = b.tcp.connect((address(US), 5000), 0.0, local_port=6000)
    net.run_until(1.0)
    assert ca.state == cb.state == S.ESTABLISHED
    assert Connected() in drain(ca) and Connected() in drain(cb)
    assert ca.snd_una == ca.iss + 1 and cb.rcv_nxt == ca.iss + 1


def test_layer_time_wait_reused_by_a_higher_syn() -> None:
    net, a, b = tcp_pair(latency=0.001)
    listener = b.tcp.listen(80)
    client = a.tcp.connect((address(PEER), 80), 0.0, local_port=50000)
    net.run_until(0.1)
    server = listener.accept()
    assert server is not None
    server.close(0.1)  # the server closes first: it keeps TIME-WAIT
    b.tcp.touch(server)
    net.run_until(0.2)
    client.close(0.2)
    a.tcp.touch(client)
    net.run_until(0.3)
    assert server.state == S.TIME_WAIT and client.state == S.CLOSED
    net.run_until(1.0)
    again = a.tcp.connect((address(PEER), 80), 1.0, local_port=50000)  # RFC 6528: a higher ISN
    assert (again.iss - client.iss) & MASK < 1 << 31
    net.run_until(1.1)
    assert again.state == S.ESTABLISHED
    fresh = listener.accept()
    assert fresh is not None and fresh is not server and fresh.state == S.ESTABLISHED


def test_layer_time_wait_not_reused_by_a_lower_syn() -> None:
    net, a, b = tcp_pair(latency=0.001)
    listener = b.tcp.listen(80)
    client = a.tcp.connect((address(PEER), 80), 0.0, local_port=50000)
    net.run_until(0.1)
    server = listener.accept()
    assert server is not None
    server.close(0.1)
    b.tcp.touch(server)
    net.run_until(0.2)
    client.close(0.2)
    a.tcp.touch(client)
    net.run_until(0.3)
    b_if = b.interfaces["b0"]
    old = syn(50000, 80, (client.iss - 1000) & MASK)
    b.receive(b_if, tcp_datagram(US, PEER, old), 0.4)
    assert server.state == S.TIME_WAIT
    assert [r.flags for _, r, _ in tcp_output(b_if)] == [ACK]  # the old duplicate is ACKed
    assert listener.accept() is None


def test_layer_connect_to_a_closed_port_is_refused() -> None:
    net, a, b = tcp_pair(latency=0.001)
    conn = a.tcp.connect((address(PEER), 80), 0.0)
    net.run_until(0.1)
    assert conn.state == S.CLOSED
    [failure, closed] = drain(conn)
    assert isinstance(failure, ConnectionFailed) and failure.errno_name == "ECONNREFUSED"
    assert closed == Closed()


def test_layer_reset_mid_connection() -> None:
    net, a, b = tcp_pair(latency=0.001)
    listener = b.tcp.listen(80)
    conn = a.tcp.connect((address(PEER), 80), 0.0)
    net.run_until(0.1)
    server = listener.accept()
    assert server is not None
    server.send(b"hello")
    b.tcp.touch(server)
    net.run_until(0.2)
    assert drain(conn) == [Connected(), DataAvailable()]
    server.abort(0.2)
    b.tcp.touch(server)
    net.run_until(0.3)
    assert conn.state == S.CLOSED
    assert [type(e) for e in drain(conn)] == [ConnectionFailed, Closed]
    assert conn.error is not None and conn.error.errno_name == "ECONNRESET"


def test_layer_config_is_per_stack() -> None:
    stack, _ = tcp_host(US, tcp=config(receive_buffer=4096))
    assert stack.tcp.config.receive_buffer == 4096


# ---------------------------------------------------------------------------- the socket API


def test_socket_callbacks_see_every_event_in_order() -> None:
    net, a, b = tcp_pair(latency=0.001)
    server = TcpServer(b.tcp, 80)
    accepted: list[TcpSocket] = []
    server_events: list[TcpEvent] = []

    def on_accept(sock: TcpSocket) -> None:
        sock.on_event = lambda s, e: server_events.append(e)
        accepted.append(sock)

    server.on_accept = on_accept
    client = TcpSocket.connect(a.tcp, PEER, 80, 0.0)
    client_events: list[TcpEvent] = []
    client.on_event = lambda s, e: client_events.append(e)
    net.run_until(0.1)
    assert len(accepted) == 1 and server.accept() is None  # handed to the callback, not queued
    assert client_events == [Connected()]
    assert client.nodelay is False
    client.nodelay = True
    assert client.connection.nagle is False
    client.send(b"ping")
    net.run_until(0.2)
    assert accepted[0].recv() == b"ping"
    client.shutdown(0.2)
    net.run_until(0.3)
    accepted[0].close(0.3)
    net.run_until(0.4)
    assert server_events[-2:] == [PeerClosed(), Closed()]
    assert client_events[-1] == PeerClosed() and client.state == S.TIME_WAIT
    assert "TIME-WAIT" in repr(client) and "10.0.0.2:80" in repr(client)
    assert server.port == 80


def test_socket_port_out_of_range_and_server_closed_twice() -> None:
    from wipstack.errors import LocalProtocolError

    _, a, b = tcp_pair()
    with pytest.raises(ValueError):
        TcpSocket.connect(a.tcp, PEER, 0, 0.0)
    server = TcpServer(b.tcp, 80)
    server.close(0.0)
    with pytest.raises(LocalProtocolError):
        server.close(0.0)
    b.tcp.listen(80)  # the port is free again


def test_layer_rst_in_syn_received_frees_the_half_open_slot() -> None:
    stack, iface = tcp_host(US)
    listener = stack.tcp.listen(80)
    synack = handshake(stack, iface, 1001, 77)
    stack.receive(iface, tcp_datagram(PEER, US, TcpRepr(1001, 80, 78, 0, RST, 0)), 0.1)
    assert tcp_output(iface) == []
    assert stack.tcp.connections == [] and not listener.half_open and listener.accept() is None
    late_ack = TcpRepr(1001, 80, 78, (synack.seq + 1) & MASK, ACK, 65535)
    stack.receive(iface, tcp_datagram(PEER, US, late_ack), 0.2)
    assert [r for _, r, _ in tcp_output(iface)] == [TcpRepr(80, 1001, (synack.seq + 1) & MASK, 0, RST, 0)]


def test_layer_persist_probe_recovers_a_lost_window_update() -> None:
    net, a, b = tcp_pair(latency=0.005, tcp_b=config(receive_buffer=8192))
    listener = b.tcp.listen(80)
    conn = a.tcp.connect((address(PEER), 80), 0.0)
    net.run_until(0.1)
    peer = listener.accept()
    assert peer is not None
    payload = random.Random(9).randbytes(30_000)
    sent = conn.send(payload)
    a.tcp.touch(conn)
    net.run_until(5.0)  # the receiver reads nothing: its window closes (or shrinks below one segment)
    assert peer.readable > 8192 - conn.mss and conn.snd_wnd < conn.mss
    dropped: list[bytes] = []

    def drop_first_update(sender: str, packet: bytes) -> bool:
        if sender == "b0" and not dropped:
            dropped.append(packet)
            return True
        return False

    net.drop = drop_first_update
    got = bytearray(peer.recv())
    b.tcp.touch(peer)
    net.run_until(5.01)
    assert dropped, "the window update was sent (and lost)"
    now = 5.01
    while len(got) < len(payload) and now < 200:
        sent += conn.send(payload[sent:])
        a.tcp.touch(conn)
        now += 0.5
        net.run_until(now)
        got += peer.recv()
        b.tcp.touch(peer)
    assert bytes(got) == payload
    assert now < 5.01 + 70  # recovered by a zero-window probe, within persist_max
