"""``PppSession``: phases, demultiplexer gating, framing push-down, close and lower-down.

The test plays the peer by hand: it frames packets with ``hdlc_encode`` and feeds them to
``receive_bytes`` with an explicit ``now``, and it splits ``bytes_to_send()`` into frames to
inspect both the PPP packets and the framing they went out with (ACCM, ACFC, PFC).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address

import pytest

from wipstack.accel import DEFAULT_ACCM, HdlcDeframer, hdlc_encode
from wipstack.errors import DropReason, LocalProtocolError
from wipstack.ppp.automaton import State
from wipstack.ppp.config import CpConfig, IpcpConfig, LcpConfig, PapConfig, PppConfig
from wipstack.ppp.events import (
    AuthFailed,
    AuthSucceeded,
    IpcpDown,
    IpcpUp,
    LinkDead,
    LinkDown,
    LinkTerminated,
    LinkUp,
    Phase,
    PhaseChanged,
    PppEvent,
)
from wipstack.ppp.session import PppSession
from wipstack.wire.cp import CpCode, CpPacket, RawOption, emit_options
from wipstack.wire.ipcp import IpcpOptionType, ipcp_option
from wipstack.wire.lcp import LcpOptionType, lcp_option
from wipstack.wire.pap import PapCode, PapRequest, PapResponse
from wipstack.wire.ppp import PppProtocol, decode_frame, encode_frame

SERVER_IP = IPv4Address("192.0.2.1")
CLIENT_IP = IPv4Address("192.0.2.2")
PEER_MAGIC = 0x0BADCAFE
OUR_MAGIC = 0x20B67BA5
PPPD_LCP_FRAME = bytes.fromhex("ff03c021 01010014 020600000000 050620b67ba5 0702 0802")

PEER_MAGIC_OPTION = lcp_option(LcpOptionType.MAGIC_NUMBER, PEER_MAGIC)
PAP_OPTION = lcp_option(LcpOptionType.AUTH_PROTOCOL, {"protocol": PppProtocol.PAP, "data": b""})
# the peer lets us send with ACCM 0, PFC and ACFC
COMPRESSING_PEER = (
    lcp_option(LcpOptionType.ACCM, 0),
    PEER_MAGIC_OPTION,
    lcp_option(LcpOptionType.PFC),
    lcp_option(LcpOptionType.ACFC),
)
# an IP datagram whose octets include control characters, so the wire shows the ACCM in use
DATAGRAM = bytes.fromhex("4500001c00010000400100000a0000010a000002") + bytes(range(8))


class PinnedMagic(random.Random):
    """The Magic-Number source returns ``OUR_MAGIC`` first, so the first request is golden."""

    def __init__(self) -> None:
        super().__init__(0)
        self.first = True

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:  # type: ignore[override]
        if self.first:
            self.first = False
            return OUR_MAGIC
        return super().randrange(start, stop, step)


# ------------------------------------------------------------------------ line helpers


@dataclass
class Sent:
    """One frame the session put on the line."""

    wire: bytes  # the stuffed octets between the flags
    frame: bytes  # the PPP frame, unstuffed, without FCS
    protocol: int
    info: bytes

    @property
    def packet(self) -> CpPacket:
        return CpPacket.parse(self.info)

    @property
    def code(self) -> int:
        return self.packet.code

    @property
    def has_address_control(self) -> bool:
        return self.frame.startswith(b"\xff\x03")

    @property
    def has_two_octet_protocol(self) -> bool:
        start = 2 if self.has_address_control else 0
        return not self.frame[start] & 1

    @property
    def raw_controls(self) -> set[int]:
        """Octets below 0x20 sent unescaped (an escaped one shows as 0x7D, octet ^ 0x20)."""
        return {b for b in self.wire if b < 0x20}


def sent(session: PppSession) -> list[Sent]:
    frames = []
    for piece in session.bytes_to_send().split(b"\x7e"):
        if not piece:
            continue
        [frame] = HdlcDeframer(max_frame=70000, rx_accm=0).feed(b"\x7e" + piece + b"\x7e")
        protocol, info = decode_frame(frame)
        frames.append(Sent(piece, frame, protocol, bytes(info)))
    return frames


def framed(protocol: int, info: bytes, *, accm: int = DEFAULT_ACCM, pfc: bool = False, acfc: bool = False) -> bytes:
    return hdlc_encode(encode_frame(protocol, info, pfc=pfc, acfc=acfc), accm)


def feed(session: PppSession, protocol: int, info: bytes, now: float, **framing: object) -> None:
    session.receive_bytes(framed(protocol, info, **framing), now)  # type: ignore[arg-type]


def cp(code: int, identifier: int, data: bytes = b"") -> bytes:
    return CpPacket(code, identifier, data).emit()


def conf_req(*options: RawOption, identifier: int = 0x42) -> bytes:
    return cp(CpCode.CONFIGURE_REQUEST, identifier, emit_options(options))


def ack_of(frame: Sent) -> bytes:
    return cp(CpCode.CONFIGURE_ACK, frame.packet.identifier, frame.packet.data)


def events(session: PppSession) -> list[PppEvent]:
    out = []
    while (event := session.next_event()) is not None:
        out.append(event)
    return out


def of_type(items: list[PppEvent], kind: type) -> list[PppEvent]:
    return [e for e in items if isinstance(e, kind)]


def run_timers(session: PppSession, limit: int = 200) -> list[tuple[float, Sent]]:
    """Fire every deadline at its exact time (the peer stays silent); what was sent, when."""
    out: list[tuple[float, Sent]] = []
    for _ in range(limit):
        deadline = session.next_deadline()
        if deadline is None:
            return out
        session.on_timer(deadline)
        out += [(deadline, s) for s in sent(session)]
    raise AssertionError("timers never stopped")


# --------------------------------------------------------------- sessions in a given state


def make(
    *,
    lcp: LcpConfig | None = None,
    pap: PapConfig | None = None,
    ipcp: IpcpConfig | None = None,
    cp_config: CpConfig | None = None,
    tracer: Callable[[str], None] | None = None,
) -> PppSession:
    config = PppConfig(
        lcp=lcp or LcpConfig(),
        pap=pap or PapConfig(username="alice", password="s3cret"),
        ipcp=ipcp or IpcpConfig(local_address=CLIENT_IP),
        cp=cp_config or CpConfig(),
    )
    return PppSession(config, PinnedMagic(), tracer=tracer)


def establish(session: PppSession, now: float = 0.0) -> Sent:
    """Dead -> Establish; returns our LCP Configure-Request."""
    session.open(now)
    [request] = sent(session)
    events(session)
    return request


def open_lcp(session: PppSession, *peer_options: RawOption, now: float = 0.0) -> list[Sent]:
    """Drive LCP to Opened; returns the frames that followed our Configure-Ack."""
    request = establish(session, now)
    feed(session, PppProtocol.LCP, ack_of(request), now)
    feed(session, PppProtocol.LCP, conf_req(*(peer_options or (PEER_MAGIC_OPTION,))), now)
    out = sent(session)
    assert out[0].protocol == PppProtocol.LCP and out[0].code == CpCode.CONFIGURE_ACK
    assert session.lcp.fsm.state == State.OPENED
    return out[1:]


def authenticate(session: PppSession, now: float = 0.0) -> Sent:
    """LCP Opened, the peer wants PAP from us; returns our Authenticate-Request."""
    [request] = open_lcp(session, PAP_OPTION, PEER_MAGIC_OPTION, now=now)
    assert request.protocol == PppProtocol.PAP
    assert session.phase == Phase.AUTHENTICATE
    events(session)
    return request


def network(session: PppSession, *peer_options: RawOption, now: float = 0.0) -> Sent:
    """LCP Opened without authentication; returns our IPCP Configure-Request."""
    [request] = open_lcp(session, *peer_options, now=now)
    assert request.protocol == PppProtocol.IPCP
    assert session.phase == Phase.NETWORK
    events(session)
    return request


def ipcp_opened(session: PppSession, *peer_options: RawOption, now: float = 0.0) -> None:
    """IPCP Opened: we are 192.0.2.2, the peer 192.0.2.1."""
    request = network(session, *peer_options, now=now)
    feed(session, PppProtocol.IPCP, ack_of(request), now)
    feed(session, PppProtocol.IPCP, conf_req(ipcp_option(IpcpOptionType.IP_ADDRESS, SERVER_IP)), now)
    [ack] = sent(session)
    assert ack.protocol == PppProtocol.IPCP and ack.code == CpCode.CONFIGURE_ACK
    assert session.ipcp.fsm.state == State.OPENED
    events(session)


# ------------------------------------------------------------------------------ phases


class TestPhases:
    def test_dead_open_sends_pppd_golden_request_and_enters_establish(self) -> None:
        session = make()
        assert session.is_dead
        session.open(0.0)
        assert session.bytes_to_send() == hdlc_encode(PPPD_LCP_FRAME, DEFAULT_ACCM)
        assert events(session) == [PhaseChanged(Phase.ESTABLISH)]
        assert session.next_deadline() == 3.0

    @pytest.mark.parametrize("max_configure", [1, 4, 10])
    def test_establish_unanswered_gives_up_after_max_configure_frames(self, max_configure: int) -> None:
        session = make(cp_config=CpConfig(max_configure=max_configure))
        establish(session, now=0.0)
        sends = run_timers(session)
        requests = [t for t, s in sends if s.protocol == PppProtocol.LCP and s.code == CpCode.CONFIGURE_REQUEST]
        assert 1 + len(requests) == max_configure
        assert session.is_dead
        assert len(of_type(events(session), LinkTerminated)) == 1
        assert session.frames_out == max_configure

    def test_establish_lcp_up_without_auth_enters_network_and_starts_ipcp(self) -> None:
        session = make()
        ours = establish(session)
        feed(session, PppProtocol.LCP, ack_of(ours), 0.1)
        feed(session, PppProtocol.LCP, conf_req(PEER_MAGIC_OPTION), 0.2)
        ack, request = sent(session)
        assert (ack.protocol, ack.code) == (PppProtocol.LCP, CpCode.CONFIGURE_ACK)
        assert request.protocol == PppProtocol.IPCP and request.code == CpCode.CONFIGURE_REQUEST
        happened = events(session)
        assert [type(e) for e in happened] == [LinkUp, PhaseChanged]
        assert happened[1] == PhaseChanged(Phase.NETWORK)

    def test_establish_peer_requiring_pap_enters_authenticate_and_sends_request(self) -> None:
        session = make()
        request = authenticate(session)
        assert request.code == PapCode.AUTHENTICATE_REQUEST
        assert PapRequest.parse(request.packet.data) == PapRequest(b"alice", b"s3cret")

    def test_authenticate_pap_ack_enters_network_and_ack_precedes_ipcp(self) -> None:
        session = make()
        request = authenticate(session)
        feed(session, PppProtocol.PAP, cp(PapCode.AUTHENTICATE_ACK, request.packet.identifier, b"\x00"), 1.0)
        assert session.phase == Phase.NETWORK
        assert [s.protocol for s in sent(session)] == [PppProtocol.IPCP]
        assert AuthSucceeded(False, None, "") in events(session)

    def test_authenticate_we_require_pap_and_wait_for_the_peer(self) -> None:
        session = make(pap=PapConfig(require=True, secrets=(("bob", "pw"),)))
        assert open_lcp(session) == []
        assert session.phase == Phase.AUTHENTICATE
        assert session.next_deadline() == 30.0  # the authenticator's wait_timeout

    def test_authenticate_peer_credentials_accepted(self) -> None:
        session = make(pap=PapConfig(require=True, secrets=(("bob", "pw"),)))
        open_lcp(session)
        events(session)
        body = PapRequest(b"bob", b"pw").emit()
        feed(session, PppProtocol.PAP, cp(PapCode.AUTHENTICATE_REQUEST, 5, body), 1.0)
        ack, ipcp = sent(session)
        assert (ack.protocol, ack.code, ack.packet.identifier) == (PppProtocol.PAP, PapCode.AUTHENTICATE_ACK, 5)
        assert ipcp.protocol == PppProtocol.IPCP
        assert AuthSucceeded(True, "bob") in events(session)

    def test_authenticate_wrong_credentials_nak_then_terminate(self) -> None:
        session = make(pap=PapConfig(require=True, secrets=(("bob", "pw"),)))
        open_lcp(session)
        events(session)
        body = PapRequest(b"bob", b"guess").emit()
        feed(session, PppProtocol.PAP, cp(PapCode.AUTHENTICATE_REQUEST, 5, body), 1.0)
        nak, terminate = sent(session)
        assert (nak.protocol, nak.code) == (PppProtocol.PAP, PapCode.AUTHENTICATE_NAK)
        assert (terminate.protocol, terminate.code) == (PppProtocol.LCP, CpCode.TERMINATE_REQUEST)
        [failed] = of_type(events(session), AuthFailed)
        assert failed.peer  # type: ignore[attr-defined]
        assert session.phase == Phase.TERMINATE

    def test_authenticate_peer_never_authenticating_fails_after_wait_timeout(self) -> None:
        session = make(pap=PapConfig(require=True, secrets=(("bob", "pw"),), wait_timeout=30.0))
        open_lcp(session, now=0.0)
        events(session)
        session.on_timer(29.999)
        assert sent(session) == []
        session.on_timer(30.0)
        [terminate] = sent(session)
        assert (terminate.protocol, terminate.code) == (PppProtocol.LCP, CpCode.TERMINATE_REQUEST)
        [failed] = of_type(events(session), AuthFailed)
        assert failed.peer  # type: ignore[attr-defined]

    def test_authenticate_unanswered_requests_give_up_and_terminate(self) -> None:
        session = make(pap=PapConfig(username="alice", password="s3cret", max_requests=3))
        authenticate(session, now=0.0)
        sends = run_timers(session)
        assert [t for t, s in sends if s.protocol == PppProtocol.PAP] == [3.0, 6.0]
        assert [t for t, s in sends if s.protocol == PppProtocol.LCP][:1] == [9.0]
        assert session.is_dead
        assert session.failure is not None

    def test_network_address_reject_terminates_ipcp_then_the_link(self) -> None:
        session = make(ipcp=IpcpConfig())  # asks for 0.0.0.0
        request = network(session)
        rejected = cp(CpCode.CONFIGURE_REJECT, request.packet.identifier, request.packet.data)
        feed(session, PppProtocol.IPCP, rejected, 1.0)
        terminate = sent(session)[-1]  # after the RCN's new (empty) request
        assert (terminate.protocol, terminate.code) == (PppProtocol.IPCP, CpCode.TERMINATE_REQUEST)
        run_timers(session)
        assert session.is_dead
        assert of_type(events(session), LinkTerminated) == [LinkTerminated(session.failure or "")]
        assert session.failure is not None

    def test_network_ipcp_opened_reports_addresses(self) -> None:
        session = make()
        request = network(session)
        feed(session, PppProtocol.IPCP, ack_of(request), 1.0)
        feed(session, PppProtocol.IPCP, conf_req(ipcp_option(IpcpOptionType.IP_ADDRESS, SERVER_IP)), 1.0)
        [up] = of_type(events(session), IpcpUp)
        assert up.result.local_address == CLIENT_IP  # type: ignore[attr-defined]
        assert up.result.peer_address == SERVER_IP  # type: ignore[attr-defined]


# -------------------------------------------------------------------------- demux gating


NON_LCP = [PppProtocol.IPCP, PppProtocol.PAP, PppProtocol.IPV4, PppProtocol.CCP, PppProtocol.IPV6CP, 0x4021]


class TestDemuxGating:
    @pytest.mark.parametrize("protocol", NON_LCP, ids=hex)
    def test_establish_non_lcp_frame_dropped_and_counted(self, protocol: int) -> None:
        session = make()
        establish(session)
        feed(session, protocol, conf_req(), 1.0)
        assert session.drops[DropReason.NOT_ALLOWED_IN_PHASE] == 1
        assert sent(session) == []
        assert session.lcp.fsm.state == State.REQ_SENT

    @pytest.mark.parametrize(
        "protocol", [PppProtocol.IPCP, PppProtocol.IPV4, PppProtocol.CCP, PppProtocol.IPV6CP, 0x4021], ids=hex
    )
    def test_authenticate_non_auth_frame_dropped_not_protocol_rejected(self, protocol: int) -> None:
        session = make()
        authenticate(session)
        feed(session, protocol, conf_req(), 1.0)
        assert session.drops[DropReason.NOT_ALLOWED_IN_PHASE] == 1
        assert session.protocol_rejects_sent == 0
        assert sent(session) == []

    def test_authenticate_lcp_echo_answered(self) -> None:
        session = make()
        authenticate(session)
        feed(session, PppProtocol.LCP, cp(CpCode.ECHO_REQUEST, 9, PEER_MAGIC.to_bytes(4, "big")), 1.0)
        [reply] = sent(session)
        assert reply.code == CpCode.ECHO_REPLY

    def test_network_ip_dropped_before_ipcp_opened(self) -> None:
        session = make()
        network(session)
        feed(session, PppProtocol.IPV4, DATAGRAM, 1.0)
        assert session.drops[DropReason.NOT_ALLOWED_IN_STATE] == 1
        assert session.take_ip_packets() == []

    @pytest.mark.parametrize(("pfc", "acfc"), [(False, False), (True, True)], ids=["plain", "compressed"])
    def test_ipcp_opened_ip_delivered(self, pfc: bool, acfc: bool) -> None:
        session = make()
        ipcp_opened(session)
        feed(session, PppProtocol.IPV4, DATAGRAM, 2.0, pfc=pfc, acfc=acfc)
        assert session.take_ip_packets() == [DATAGRAM]
        assert session.ip_packets_in == 1

    @pytest.mark.parametrize("protocol", [PppProtocol.CCP, PppProtocol.IPV6CP, PppProtocol.IPV6, 0x4021], ids=hex)
    def test_network_unknown_protocol_protocol_rejected(self, protocol: int) -> None:
        session = make()
        network(session)
        information = conf_req(identifier=7)
        feed(session, protocol, information, 1.0)
        [reject] = sent(session)
        assert (reject.protocol, reject.code) == (PppProtocol.LCP, CpCode.PROTOCOL_REJECT)
        assert reject.packet.data == protocol.to_bytes(2, "big") + information
        assert session.protocol_rejects_sent == 1
        assert session.drops[DropReason.UNKNOWN_PROTOCOL] == 1

    def test_network_protocol_reject_truncated_to_peer_mru(self) -> None:
        session = make()
        network(session, lcp_option(LcpOptionType.MRU, 296), PEER_MAGIC_OPTION)
        feed(session, PppProtocol.CCP, bytes(1000), 1.0)
        [reject] = sent(session)
        assert reject.code == CpCode.PROTOCOL_REJECT
        assert len(reject.info) == 296
        assert reject.packet.data == PppProtocol.CCP.to_bytes(2, "big") + bytes(290)

    def test_dead_lcp_frame_counted_not_answered(self) -> None:
        session = make()
        feed(session, PppProtocol.LCP, conf_req(PEER_MAGIC_OPTION), 0.0)
        assert sent(session) == []
        assert session.counters()["drop_not_allowed_in_state"] == 1

    def test_bad_address_control_counted(self) -> None:
        session = make()
        establish(session)
        session.receive_bytes(hdlc_encode(b"\xff\x01\xc0\x21" + conf_req(), DEFAULT_ACCM), 1.0)
        assert session.drops[DropReason.BAD_ADDRESS_CONTROL] == 1

    def test_counters_report_frames_and_drops(self) -> None:
        session = make()
        establish(session)
        feed(session, PppProtocol.IPCP, conf_req(), 1.0)
        counters = session.counters()
        assert counters["frames_in"] == 1 and counters["frames_out"] == 1
        assert counters["drop_not_allowed_in_phase"] == 1


class TestPapDemux:
    def test_network_retransmitted_auth_request_acked_again(self) -> None:
        session = make(pap=PapConfig(require=True, secrets=(("bob", "pw"),)))
        open_lcp(session)
        request = cp(PapCode.AUTHENTICATE_REQUEST, 5, PapRequest(b"bob", b"pw").emit())
        feed(session, PppProtocol.PAP, request, 1.0)
        sent(session)
        assert session.phase == Phase.NETWORK
        feed(session, PppProtocol.PAP, cp(PapCode.AUTHENTICATE_REQUEST, 6, PapRequest(b"bob", b"pw").emit()), 4.0)
        [ack] = sent(session)
        assert (ack.protocol, ack.code, ack.packet.identifier) == (PppProtocol.PAP, PapCode.AUTHENTICATE_ACK, 6)
        assert PapResponse.parse(ack.packet.data).message == b"Login ok"

    def test_unexpected_pap_packets_show_in_counters(self) -> None:
        session = make()
        network(session)  # we authenticate nobody: a request has no machine to go to
        feed(session, PppProtocol.PAP, cp(PapCode.AUTHENTICATE_REQUEST, 5, PapRequest(b"x", b"y").emit()), 1.0)
        assert session.counters().get("drop_not_allowed_in_state", 0) == 1


# ------------------------------------------------------------------------------- framing


class TestFraming:
    """RFC 1661 §5 and §6.5-6.6, RFC 1662 §7.1: LCP codes 1-7 always use the default framing."""

    def test_opened_terminate_request_sent_with_default_framing(self) -> None:
        session = make()
        ipcp_opened(session, *COMPRESSING_PEER)
        session.close(5.0)
        lcp_frames = [s for s in sent(session) if s.protocol == PppProtocol.LCP]
        assert [s.code for s in lcp_frames] == [CpCode.TERMINATE_REQUEST]
        [terminate] = lcp_frames
        assert terminate.has_address_control and terminate.has_two_octet_protocol
        assert terminate.raw_controls == set()

    def test_opened_configure_request_and_ack_sent_with_default_framing(self) -> None:
        session = make()
        ipcp_opened(session, *COMPRESSING_PEER)
        feed(session, PppProtocol.LCP, conf_req(PEER_MAGIC_OPTION, identifier=0x50), 5.0)
        frames = sent(session)
        assert [s.code for s in frames] == [CpCode.CONFIGURE_REQUEST, CpCode.CONFIGURE_ACK]
        assert all(s.has_address_control and s.raw_controls == set() for s in frames)

    def test_opened_code_reject_sent_with_default_framing(self) -> None:
        session = make()
        ipcp_opened(session, *COMPRESSING_PEER)
        feed(session, PppProtocol.LCP, cp(0x20, 1, b"\x01\x02"), 5.0)
        [code_reject] = sent(session)
        assert code_reject.code == CpCode.CODE_REJECT
        assert code_reject.has_address_control and code_reject.raw_controls == set()

    def test_opened_terminate_ack_sent_with_default_framing(self) -> None:
        session = make()
        ipcp_opened(session, *COMPRESSING_PEER)
        feed(session, PppProtocol.LCP, cp(CpCode.TERMINATE_REQUEST, 3), 5.0)
        [terminate_ack] = [s for s in sent(session) if s.protocol == PppProtocol.LCP]
        assert terminate_ack.code == CpCode.TERMINATE_ACK
        assert terminate_ack.has_address_control and terminate_ack.raw_controls == set()

    def test_opened_echo_reply_uses_negotiated_accm(self) -> None:
        session = make()
        ipcp_opened(session, *COMPRESSING_PEER)
        feed(session, PppProtocol.LCP, cp(CpCode.ECHO_REQUEST, 9, PEER_MAGIC.to_bytes(4, "big")), 5.0)
        [reply] = sent(session)
        assert reply.code == CpCode.ECHO_REPLY
        assert CpCode.ECHO_REPLY in reply.raw_controls  # 0x0A went out unescaped under ACCM 0

    def test_opened_echo_request_uses_negotiated_accm(self) -> None:
        session = make(lcp=LcpConfig(echo_interval=10.0))
        ipcp_opened(session, *COMPRESSING_PEER)
        session.on_timer(10.0)
        [echo] = sent(session)
        assert echo.code == CpCode.ECHO_REQUEST
        assert CpCode.ECHO_REQUEST in echo.raw_controls

    @pytest.mark.parametrize("trigger", ["echo-reply", "protocol-reject"])
    def test_opened_every_lcp_packet_keeps_address_and_control(self, trigger: str) -> None:
        session = make()
        ipcp_opened(session, *COMPRESSING_PEER)
        if trigger == "echo-reply":
            feed(session, PppProtocol.LCP, cp(CpCode.ECHO_REQUEST, 9, PEER_MAGIC.to_bytes(4, "big")), 5.0)
        else:
            feed(session, PppProtocol.CCP, conf_req(), 5.0)
        [frame] = sent(session)
        assert frame.protocol == PppProtocol.LCP
        assert frame.has_address_control

    def test_ipcp_opened_ip_uses_negotiated_framing(self) -> None:
        session = make()
        ipcp_opened(session, *COMPRESSING_PEER)
        assert session.send_ip(DATAGRAM, 5.0)
        [ip] = sent(session)
        assert ip.frame == b"\x21" + DATAGRAM  # PFC and ACFC
        assert 0x00 in ip.raw_controls

    def test_ipcp_opened_ip_without_compression_uses_full_header(self) -> None:
        session = make()
        ipcp_opened(session)  # the peer asked for nothing: default ACCM, no PFC/ACFC
        session.send_ip(DATAGRAM, 5.0)
        [ip] = sent(session)
        assert ip.frame == b"\xff\x03\x00\x21" + DATAGRAM
        assert ip.raw_controls == set()

    def test_ipcp_configure_request_uses_negotiated_framing(self) -> None:
        session = make()
        [request] = open_lcp(session, *COMPRESSING_PEER)
        assert request.protocol == PppProtocol.IPCP
        assert not request.has_address_control  # NCPs may use ACFC; PFC cannot shorten 0x8021


# ------------------------------------------------------------- push-down into the deframer


def discard_request(size: int) -> bytes:
    return cp(CpCode.DISCARD_REQUEST, 1, PEER_MAGIC.to_bytes(4, "big") + bytes(size))


class TestDeframerPushDown:
    def test_establish_raw_control_characters_are_deleted(self) -> None:
        session = make()
        establish(session)
        feed(session, PppProtocol.LCP, conf_req(PEER_MAGIC_OPTION), 0.0, accm=0)
        assert session.counters()["hdlc_bad_fcs"] == 1  # default rx ACCM: a DCE may have inserted them

    def test_lcp_up_pushes_negotiated_rx_accm(self) -> None:
        session = make()  # we ask for ACCM 0
        network(session)
        feed(session, PppProtocol.LCP, discard_request(8), 1.0, accm=0)
        assert session.counters()["hdlc_bad_fcs"] == 0
        assert session.lcp.discards == 1

    def test_lcp_up_pushes_a_larger_mru(self) -> None:
        session = make(lcp=LcpConfig(mru=4000))
        network(session)
        feed(session, PppProtocol.LCP, discard_request(3900), 1.0)
        assert session.lcp.discards == 1
        assert session.counters()["hdlc_too_long"] == 0

    def test_small_negotiated_mru_still_receives_1500(self) -> None:
        # RFC 1661 §6.1: a smaller MRU is a request; 1500 octets must still be received
        session = make(lcp=LcpConfig(mru=296))
        network(session)
        feed(session, PppProtocol.LCP, discard_request(1480), 1.0)
        assert session.lcp.discards == 1

    def test_default_mru_refuses_larger_frames(self) -> None:
        session = make()
        network(session)
        feed(session, PppProtocol.LCP, discard_request(1600), 1.0)
        assert session.lcp.discards == 0
        assert session.counters()["hdlc_too_long"] == 1

    def test_lcp_down_resets_rx_accm_and_mru(self) -> None:
        session = make(lcp=LcpConfig(mru=4000))
        network(session)
        feed(session, PppProtocol.LCP, cp(CpCode.TERMINATE_REQUEST, 3), 1.0)
        assert session.link is None
        before = session.counters()
        feed(session, PppProtocol.LCP, cp(CpCode.TERMINATE_ACK, 3, bytes(4)), 1.5, accm=0)
        feed(session, PppProtocol.LCP, discard_request(3900), 1.5)
        after = session.counters()
        assert after["hdlc_bad_fcs"] == before["hdlc_bad_fcs"] + 1
        assert after["hdlc_too_long"] == before["hdlc_too_long"] + 1


# --------------------------------------------------------------------------------- close


def closing(session: PppSession) -> None:
    """Terminate phase: LCP went down because we closed it, Terminate-Request unanswered."""
    network(session)
    session.close(0.5)
    sent(session)
    events(session)
    assert session.phase == Phase.TERMINATE


SETUPS: dict[str, Callable[[PppSession], object]] = {
    "establish": establish,
    "authenticate": authenticate,
    "network": network,
    "ipcp-opened": ipcp_opened,
    "terminate": closing,
}


class TestClose:
    @pytest.mark.parametrize("setup", SETUPS.values(), ids=SETUPS.keys())
    def test_close_from_every_phase_ends_dead_with_link_terminated(self, setup: Callable[[PppSession], object]) -> None:
        session = make()
        setup(session)
        sent(session)
        events(session)
        session.close(10.0)
        run_timers(session)
        assert session.phase == Phase.DEAD
        assert len(of_type(events(session), LinkTerminated)) == 1
        assert session.next_deadline() is None

    @pytest.mark.parametrize("setup", [establish, authenticate, network, ipcp_opened], ids=str)
    def test_close_sends_lcp_terminate_request(self, setup: Callable[[PppSession], object]) -> None:
        session = make()
        setup(session)
        sent(session)
        session.close(10.0)
        assert (PppProtocol.LCP, CpCode.TERMINATE_REQUEST) in [(s.protocol, s.code) for s in sent(session)]

    def test_ipcp_opened_close_sends_both_terminate_requests(self) -> None:
        session = make()
        ipcp_opened(session)
        session.close(10.0, "bye")
        frames = {(s.protocol, s.code): s for s in sent(session)}
        assert set(frames) == {
            (PppProtocol.IPCP, CpCode.TERMINATE_REQUEST),
            (PppProtocol.LCP, CpCode.TERMINATE_REQUEST),
        }
        assert frames[(PppProtocol.LCP, CpCode.TERMINATE_REQUEST)].packet.data == b"bye"
        happened = events(session)
        assert of_type(happened, IpcpDown) and of_type(happened, LinkDown)
        assert PhaseChanged(Phase.TERMINATE) in happened

    def test_ipcp_opened_close_terminates_ipcp_before_lcp(self) -> None:
        session = make()
        ipcp_opened(session)
        session.close(10.0, "bye")
        assert [s.protocol for s in sent(session)] == [PppProtocol.IPCP, PppProtocol.LCP]

    def test_closing_terminate_ack_ends_the_link_at_once(self) -> None:
        session = make()
        network(session)
        session.close(10.0, "bye")
        [terminate] = sent(session)
        events(session)
        feed(session, PppProtocol.LCP, cp(CpCode.TERMINATE_ACK, terminate.packet.identifier), 10.2)
        assert session.is_dead
        assert of_type(events(session), LinkTerminated) == [LinkTerminated("bye")]

    def test_close_unanswered_gives_up_after_max_terminate(self) -> None:
        session = make(cp_config=CpConfig(max_terminate=2))
        network(session)
        session.close(10.0)
        sent(session)
        sends = run_timers(session)
        assert [t for t, s in sends if s.protocol == PppProtocol.LCP] == [13.0]
        assert session.is_dead

    def test_dead_close_is_a_no_op(self) -> None:
        session = make()
        session.close(0.0)
        assert session.is_dead
        assert session.bytes_to_send() == b""
        assert session.next_deadline() is None

    @pytest.mark.parametrize(
        "cp_config", [CpConfig(silent=True), CpConfig(passive=True, max_configure=1)], ids=["silent", "passive"]
    )
    def test_stopped_close_ends_dead_with_link_terminated(self, cp_config: CpConfig) -> None:
        session = make(cp_config=cp_config)
        session.open(0.0)
        run_timers(session)
        assert session.lcp.fsm.state == State.STOPPED
        events(session)
        session.close(10.0)
        run_timers(session)
        assert session.phase == Phase.DEAD
        assert of_type(events(session), LinkTerminated)

    def test_reopened_session_does_not_report_the_previous_failure(self) -> None:
        session = make(pap=PapConfig(require=True, secrets=(("bob", "pw"),)), cp_config=CpConfig(max_terminate=1))
        open_lcp(session)
        feed(session, PppProtocol.PAP, cp(PapCode.AUTHENTICATE_REQUEST, 1, PapRequest(b"bob", b"x").emit()), 1.0)
        run_timers(session)
        assert session.is_dead
        events(session)
        ipcp_request_or_nothing = open_lcp(session, now=20.0)
        assert ipcp_request_or_nothing == []
        feed(session, PppProtocol.PAP, cp(PapCode.AUTHENTICATE_REQUEST, 2, PapRequest(b"bob", b"pw").emit()), 21.0)
        session.close(22.0, "User request")
        run_timers(session)
        assert of_type(events(session), LinkTerminated) == [LinkTerminated("User request")]


# ------------------------------------------------------------------ reopen, renegotiate


class TestReopen:
    def test_dead_after_our_close_open_negotiates_again(self) -> None:
        session = make()
        network(session)
        session.close(1.0)
        run_timers(session)
        assert session.is_dead
        session.open(50.0)
        assert [s.code for s in sent(session)] == [CpCode.CONFIGURE_REQUEST]
        assert session.phase == Phase.ESTABLISH
        assert session.next_deadline() == 53.0

    @pytest.mark.parametrize("how", ["timeout", "peer-terminate"])
    def test_dead_after_lcp_stopped_open_negotiates_again(self, how: str) -> None:
        session = make(cp_config=CpConfig(max_configure=2))
        if how == "timeout":
            establish(session)
        else:
            network(session)
            feed(session, PppProtocol.LCP, cp(CpCode.TERMINATE_REQUEST, 1), 1.0)
        run_timers(session)
        sent(session)
        assert session.is_dead and session.lcp.fsm.state == State.STOPPED
        session.open(50.0)
        assert [s.code for s in sent(session)] == [CpCode.CONFIGURE_REQUEST]
        assert session.next_deadline() == 53.0

    def test_ipcp_opened_open_again_keeps_ip_flowing(self) -> None:
        session = make()
        ipcp_opened(session)
        with contextlib.suppress(LocalProtocolError):
            session.open(5.0)
        feed(session, PppProtocol.IPV4, DATAGRAM, 6.0)
        assert session.take_ip_packets() == [DATAGRAM]

    def test_ipcp_opened_peer_lcp_renegotiation_reopens_ipcp(self) -> None:
        session = make()
        ipcp_opened(session)
        feed(session, PppProtocol.LCP, conf_req(PEER_MAGIC_OPTION, identifier=0x60), 5.0)
        ours, ack = sent(session)
        assert (ours.code, ack.code) == (CpCode.CONFIGURE_REQUEST, CpCode.CONFIGURE_ACK)
        assert of_type(events(session), IpcpDown)
        assert session.send_ip(DATAGRAM, 5.0) is False
        feed(session, PppProtocol.LCP, ack_of(ours), 5.1)
        [ipcp_request] = sent(session)
        assert ipcp_request.protocol == PppProtocol.IPCP
        assert session.phase == Phase.NETWORK

    def test_ipcp_opened_peer_lcp_renegotiation_goes_to_establish(self) -> None:
        session = make()
        ipcp_opened(session)
        feed(session, PppProtocol.LCP, conf_req(PEER_MAGIC_OPTION, identifier=0x60), 5.0)
        assert of_type(events(session), PhaseChanged) == [PhaseChanged(Phase.ESTABLISH)]


# ---------------------------------------------------------------------------- lower_down


class TestLowerDown:
    def test_establish_lower_down_ends_dead_without_sending(self) -> None:
        session = make()
        establish(session)
        session.lower_down(1.0)
        assert session.is_dead
        assert session.bytes_to_send() == b""
        assert session.next_deadline() is None
        assert of_type(events(session), LinkTerminated) == [LinkTerminated("lower layer down")]

    def test_ipcp_opened_lower_down_reports_downs_and_termination(self) -> None:
        session = make()
        ipcp_opened(session)
        session.lower_down(5.0)
        assert session.bytes_to_send() == b""
        happened = events(session)
        assert of_type(happened, IpcpDown) and of_type(happened, LinkDown)
        assert happened[-2:] == [PhaseChanged(Phase.DEAD), LinkTerminated("lower layer down")]
        assert session.ipcp.result is None and session.link is None
        assert session.next_deadline() is None

    def test_closing_lower_down_reports_the_terminate_reason(self) -> None:
        session = make()
        network(session)
        session.close(1.0, "admin down")
        session.lower_down(1.5)
        assert of_type(events(session), LinkTerminated) == [LinkTerminated("admin down")]

    def test_lower_down_then_open_negotiates_again(self) -> None:
        session = make()
        establish(session)
        session.lower_down(1.0)
        session.open(2.0)
        [request] = sent(session)
        assert request.code == CpCode.CONFIGURE_REQUEST
        assert session.phase == Phase.ESTABLISH

    def test_lower_down_forgets_a_partial_frame(self) -> None:
        session = make()
        establish(session)
        session.receive_bytes(framed(PppProtocol.LCP, conf_req(PEER_MAGIC_OPTION))[:-5], 0.5)
        session.lower_down(1.0)
        session.open(2.0)
        sent(session)
        session.receive_bytes(framed(PppProtocol.LCP, conf_req(PEER_MAGIC_OPTION)), 2.5)
        assert [s.code for s in sent(session)] == [CpCode.CONFIGURE_ACK]
        assert session.counters()["hdlc_bad_fcs"] == 0


# ---------------------------------------------------------------------------- send_ip


class TestSendIp:
    def test_before_ipcp_refused_and_counted(self) -> None:
        session = make()
        network(session)
        assert session.send_ip(DATAGRAM, 1.0) is False
        assert session.drops[DropReason.NOT_ALLOWED_IN_STATE] == 1
        assert session.bytes_to_send() == b""

    def test_too_big_for_peer_mru_refused_and_counted(self) -> None:
        session = make()
        ipcp_opened(session, lcp_option(LcpOptionType.MRU, 296), PEER_MAGIC_OPTION)
        assert session.send_ip(bytes(297), 1.0) is False
        assert session.drops[DropReason.FRAME_TOO_LONG] == 1
        assert session.bytes_to_send() == b""
        assert session.ip_packets_out == 0

    def test_exactly_peer_mru_sent(self) -> None:
        session = make()
        ipcp_opened(session, lcp_option(LcpOptionType.MRU, 296), PEER_MAGIC_OPTION)
        assert session.send_ip(bytes(296), 1.0) is True
        [ip] = sent(session)
        assert ip.info == bytes(296)
        assert session.ip_packets_out == 1


# ------------------------------------------------------------------------ keep-alive


class TestKeepalive:
    def test_silent_peer_declared_dead_and_link_closed(self) -> None:
        session = make(lcp=LcpConfig(echo_interval=10.0, echo_failure=2))
        ipcp_opened(session)
        echoes = []
        for _ in range(5):
            deadline = session.next_deadline()
            assert deadline is not None
            session.on_timer(deadline)
            frames = sent(session)
            echoes += [deadline for s in frames if s.protocol == PppProtocol.LCP and s.code == CpCode.ECHO_REQUEST]
            if of_type(happened := events(session), LinkDead):
                break
        assert echoes == [10.0, 20.0]
        assert deadline == 30.0
        assert session.failure is not None
        assert of_type(happened, LinkDown)
        assert session.lcp.fsm.state == State.CLOSING
