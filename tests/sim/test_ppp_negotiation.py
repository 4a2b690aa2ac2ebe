"""Two wipstack PPP endpoints over a simulated line: negotiation, faults, keep-alive, teardown."""

from __future__ import annotations

import random
from ipaddress import IPv4Address

import pytest

from tests.helpers.pairs import Faults, SessionPair
from wipstack.ppp.automaton import State
from wipstack.ppp.config import CpConfig, IpcpConfig, LcpConfig, PapConfig, PppConfig
from wipstack.ppp.events import AuthFailed, IpcpUp, LinkDead, LinkTerminated, Phase
from wipstack.ppp.session import PppSession
from wipstack.wire.ppp import PppProtocol

SERVER_IP = IPv4Address("192.0.2.1")
CLIENT_IP = IPv4Address("192.0.2.2")
DNS = (IPv4Address("198.51.100.53"), IPv4Address("198.51.100.54"))


def server_config(**lcp: object) -> PppConfig:
    return PppConfig(
        lcp=LcpConfig(**lcp),  # type: ignore[arg-type]
        pap=PapConfig(require=True, secrets=(("alice", "s3cret"),)),
        ipcp=IpcpConfig(local_address=SERVER_IP, peer_address=CLIENT_IP, dns_servers=DNS),
    )


def client_config(password: str = "s3cret", **lcp: object) -> PppConfig:
    return PppConfig(
        lcp=LcpConfig(**lcp),  # type: ignore[arg-type]
        pap=PapConfig(username="alice", password=password),
        ipcp=IpcpConfig(request_dns=True),
    )


def test_client_and_server_reach_ipcp_up_with_assigned_addresses_and_dns() -> None:
    pair = SessionPair(server_config(), client_config(), trace=True)
    pair.open()
    assert pair.run_until(pair.both_ipcp_up, limit=5)
    assert pair.b.ipcp.result is not None and pair.a.ipcp.result is not None
    assert pair.b.ipcp.result.local_address == CLIENT_IP
    assert pair.b.ipcp.result.peer_address == SERVER_IP
    assert pair.b.ipcp.result.dns_servers == DNS
    assert pair.a.ipcp.result.peer_address == CLIENT_IP
    assert pair.a.phase == pair.b.phase == Phase.NETWORK
    assert pair.now < 0.5  # no retransmission was needed on a clean line
    assert any("PAP AuthReq" in line and "password=<hidden>" in line for line in pair.log)


@pytest.mark.parametrize("seed", range(25))
def test_negotiation_survives_seeded_loss_duplication_and_corruption(seed: int) -> None:
    faults = Faults(loss=0.2, duplicate=0.1, corrupt=0.1)
    pair = SessionPair(server_config(), client_config(), seed=seed, faults_ab=faults, faults_ba=faults)
    pair.open()
    assert pair.run_until(pair.both_ipcp_up, limit=120), (pair.a.phase, pair.b.phase)
    assert pair.b.ipcp.result is not None and pair.b.ipcp.result.local_address == CLIENT_IP
    corrupted = pair.ab.corrupted_chunks + pair.ba.corrupted_chunks
    counters = pair.a.counters()
    assert counters["hdlc_frames"] > 0
    if corrupted:
        bad = sum(s.counters()["hdlc_bad_fcs"] + s.counters()["hdlc_too_short"] for s in (pair.a, pair.b))
        assert bad + sum(s.counters()["hdlc_aborted"] for s in (pair.a, pair.b)) >= 0


def test_wrong_password_never_opens_ipcp_and_reports_the_reason() -> None:
    pair = SessionPair(server_config(), client_config(password="wrong"))
    pair.open()
    assert pair.run_until(lambda: pair.a.is_dead and pair.b.is_dead, limit=30)
    server_events = [e for _, e in pair.events_a]
    assert not any(isinstance(e, IpcpUp) for e in server_events)
    failed = [e for e in server_events if isinstance(e, AuthFailed)]
    assert failed and failed[0].peer and "alice" in failed[0].reason
    assert pair.a.failure is not None and "authentication failed" in pair.a.failure
    client_failed = [e for _, e in pair.events_b if isinstance(e, AuthFailed)]
    assert client_failed and not client_failed[0].peer
    assert pair.a.ipcp.fsm.state != State.OPENED and pair.b.ipcp.fsm.state != State.OPENED


def test_ip_datagrams_cross_only_after_ipcp_is_up() -> None:
    pair = SessionPair(server_config(), client_config())
    datagram = bytes(range(256)) * 4
    assert pair.b.send_ip(datagram, 0.0) is False  # nothing may flow before IPCP
    pair.open()
    assert pair.run_until(pair.both_ipcp_up, limit=5)
    pair.after(lambda now: pair.b.send_ip(datagram, now))
    pair.after(lambda now: pair.a.send_ip(datagram[::-1], now))
    pair.run_for(0.1)
    assert pair.ip_a == [datagram]
    assert pair.ip_b == [datagram[::-1]]


@pytest.mark.parametrize(
    ("client_lcp", "expect"),
    [
        ({"accm": 0x000A0000}, {"tx_accm_server": 0x000A0000}),
        ({"mru": 296}, {"peer_mru_server": 296}),
        ({"request_accm": False}, {"tx_accm_server": 0xFFFFFFFF}),
        (
            {"request_pfc": False, "request_acfc": False, "allow_pfc": False, "allow_acfc": False},
            {"pfc": False, "acfc": False},
        ),
    ],
    ids=["asyncmap-0xa0000", "mru-296", "default-asyncmap", "nopcomp-noaccomp"],
)
def test_option_variants_are_applied_to_the_framing(client_lcp: dict[str, object], expect: dict[str, object]) -> None:
    pair = SessionPair(server_config(), client_config(**client_lcp))
    pair.open()
    assert pair.run_until(pair.both_ipcp_up, limit=5)
    server_link, client_link = pair.a.link, pair.b.link
    assert server_link is not None and client_link is not None
    if "tx_accm_server" in expect:
        assert server_link.tx_accm == expect["tx_accm_server"]
    if "peer_mru_server" in expect:
        assert server_link.peer_mru == expect["peer_mru_server"]
        assert client_link.mru == expect["peer_mru_server"]
        too_big = bytes(297)
        assert pair.a.send_ip(too_big, pair.now) is False
    if "pfc" in expect:
        assert not server_link.tx_pfc and not server_link.tx_acfc and not client_link.tx_pfc
    # every octet value crosses intact in both directions under the negotiated framing
    payload = bytes(range(256))
    pair.after(lambda now: pair.a.send_ip(payload, now))
    pair.after(lambda now: pair.b.send_ip(payload, now))
    pair.run_for(0.1)
    assert pair.ip_b == [payload] and pair.ip_a == [payload]


def test_negotiated_accm_is_honoured_on_the_wire() -> None:
    pair = SessionPair(server_config(), client_config(accm=0x000A0000))
    pair.open()
    assert pair.run_until(pair.both_ipcp_up, limit=5)
    pair.a.send_ip(bytes(range(32)), pair.now)
    wire = pair.a.bytes_to_send()
    escaped = {wire[i + 1] ^ 0x20 for i in range(len(wire) - 1) if wire[i] == 0x7D}
    assert escaped >= {0x11, 0x13}  # bits 17 and 19 of 0x000A0000
    raw_controls = {b for b in wire if b < 0x20}
    assert 0x11 not in raw_controls and 0x13 not in raw_controls
    assert 0x01 in raw_controls  # not in the map: sent as is


def test_keepalive_declares_a_silent_peer_dead_after_interval_times_failures() -> None:
    interval, failures = 1.0, 3
    pair = SessionPair(server_config(), client_config(echo_interval=interval, echo_failure=failures))
    pair.open()
    assert pair.run_until(pair.both_ipcp_up, limit=5)
    pair.run_for(5.0)
    assert pair.b.lcp.echo_replies >= 4  # the peer answers: the link stays up
    assert not pair.b.is_dead
    pair.ab.faults.loss = 1.0  # the server goes silent
    pair.ba.faults.loss = 1.0
    silent_since = pair.now
    assert pair.run_until(lambda: any(isinstance(e, LinkDead) for _, e in pair.events_b), limit=60)
    dead_at = next(t for t, e in pair.events_b if isinstance(e, LinkDead))
    assert dead_at - silent_since <= interval * (failures + 1) + 1e-9
    assert dead_at - silent_since >= interval * failures - 1e-9
    assert pair.run_until(lambda: pair.b.is_dead, limit=120)


@pytest.mark.parametrize("side", ["client", "server"])
def test_terminate_request_from_either_side_ends_the_link_on_both(side: str) -> None:
    pair = SessionPair(server_config(), client_config())
    pair.open()
    assert pair.run_until(pair.both_ipcp_up, limit=5)
    closer = pair.b if side == "client" else pair.a
    pair.after(lambda now: closer.close(now, "User request"))
    assert pair.run_until(lambda: pair.a.is_dead and pair.b.is_dead, limit=30)
    other_events = pair.events_a if side == "client" else pair.events_b
    terminated = [e for _, e in other_events if isinstance(e, LinkTerminated)]
    assert terminated and terminated[0].reason == "User request"
    assert pair.now < 5  # the closer gets its Terminate-Ack; the other waits one restart interval


def test_unknown_protocols_are_protocol_rejected_and_ccp_rejection_keeps_the_link() -> None:
    pair = SessionPair(server_config(), client_config())
    pair.open()
    assert pair.run_until(pair.both_ipcp_up, limit=5)
    ccp_request = bytes([1, 1, 0, 4])
    for protocol in (PppProtocol.CCP, PppProtocol.IPV6CP, PppProtocol.VJ_COMPRESSED_TCP, 0x4021):
        pair.after(lambda now, p=protocol: pair.b._send_frame(p, ccp_request))  # noqa: SLF001
    pair.run_for(0.2)
    assert pair.a.protocol_rejects_sent == 4
    assert pair.b.ipcp.fsm.state == State.OPENED and pair.a.ipcp.fsm.state == State.OPENED


def test_protocol_reject_of_ipcp_ends_the_link_for_lack_of_network_protocols() -> None:
    config = server_config()
    pair = SessionPair(config, client_config())
    pair.open()
    assert pair.run_until(pair.both_ipcp_up, limit=5)
    body = PppProtocol.IPCP.to_bytes(2, "big") + bytes([1, 1, 0, 4])
    pair.after(lambda now: pair.a.lcp.fsm.send_extra(8, body))
    pair.after(lambda now: pair.a._flush())  # noqa: SLF001
    assert pair.run_until(lambda: pair.b.is_dead and pair.a.is_dead, limit=30)
    assert any(isinstance(e, LinkTerminated) and e.reason == "No network protocols running" for _, e in pair.events_b)


def test_a_looped_back_line_is_detected() -> None:
    session = PppSession(client_config(), random.Random(7))
    now = 0.0
    session.open(now)
    for _ in range(200):
        out = session.bytes_to_send()
        if out:
            session.receive_bytes(out, now)  # the line is looped back: we hear ourselves
        elif (deadline := session.next_deadline()) is not None:
            now = deadline
            session.on_timer(now)
        else:
            break
        if session.is_dead:
            break
    assert session.failure == "Serial line is looped back"


def test_silent_server_waits_for_the_client_and_passive_survives_max_configure() -> None:
    server = PppConfig(
        cp=CpConfig(silent=True, passive=True, max_configure=2),
        ipcp=IpcpConfig(local_address=SERVER_IP, peer_address=CLIENT_IP),
    )
    pair = SessionPair(server, PppConfig())
    pair.a.open(0.0)
    pair.run_for(30.0)
    assert not pair.a.is_dead and pair.a.frames_out == 0
    pair.after(lambda now: pair.b.open(now))
    assert pair.run_until(pair.both_ipcp_up, limit=60)


def test_configure_ack_and_first_pap_request_in_one_read_both_count() -> None:
    """Regression: the peer's Ack and its PAP request (sent with ACCM 0) arrive in one read.

    Before LCP opens our receive ACCM deletes raw control characters; it must change between
    the two frames, not after the whole read, or the PAP request fails its FCS.
    """
    server = PppSession(server_config(), random.Random(1))
    client = PppSession(client_config(), random.Random(2))
    server.open(0.0)
    client.open(0.0)
    server_request, client_request = server.bytes_to_send(), client.bytes_to_send()
    client.receive_bytes(server_request, 0.0)
    client_ack = client.bytes_to_send()
    server.receive_bytes(client_request, 0.0)
    client.receive_bytes(server.bytes_to_send(), 0.0)  # the client's LCP opens
    pap_request = client.bytes_to_send()
    assert any(b < 0x20 for b in pap_request)  # sent with the negotiated ACCM 0
    server.receive_bytes(client_ack + pap_request, 0.0)
    assert server.pap_server.succeeded
    assert server.counters()["hdlc_bad_fcs"] == 0
