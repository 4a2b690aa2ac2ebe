"""LCP (RFC 1661 §5-6, RFC 1662 §7): option judging, Nak/Reject handling, loopback, keep-alive.

``Lcp`` is driven through its automaton (``lcp.fsm``) with explicit ``now`` values; the
Magic-Number generator is pinned so requests have golden bytes.
"""

from __future__ import annotations

import random

import pytest

from wipstack.errors import DropReason
from wipstack.ppp.automaton import State
from wipstack.ppp.config import CpConfig, LcpConfig, PapConfig
from wipstack.ppp.cp import LayerEvent
from wipstack.ppp.lcp import Lcp, LinkParameters
from wipstack.wire.cp import CpCode, CpPacket, RawOption, emit_options, parse_options
from wipstack.wire.lcp import LcpOptionType, decode_lcp_option, lcp_option
from wipstack.wire.ppp import PppProtocol

OUR_MAGIC = 0x20B67BA5
PEER_MAGIC = 0x0BADCAFE
PPPD_REQUEST = bytes.fromhex("01010014 020600000000 050620b67ba5 0702 0802")

PAP_OPTION = lcp_option(LcpOptionType.AUTH_PROTOCOL, {"protocol": PppProtocol.PAP, "data": b""})
CHAP_MD5 = RawOption(LcpOptionType.AUTH_PROTOCOL, bytes.fromhex("c22305"))
PEER_MAGIC_OPTION = lcp_option(LcpOptionType.MAGIC_NUMBER, PEER_MAGIC)


class PinnedMagic(random.Random):
    """A Random whose randrange (the Magic-Number source) returns chosen values, then 1, 2, 3..."""

    def __init__(self, *values: int) -> None:
        super().__init__(0)
        self.values = list(values)
        self.fallback = 0

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:  # type: ignore[override]
        if self.values:
            return self.values.pop(0)
        self.fallback += 1
        return self.fallback


def make(
    lcp: LcpConfig | None = None,
    pap: PapConfig | None = None,
    cp: CpConfig | None = None,
    magics: tuple[int, ...] = (OUR_MAGIC,),
) -> Lcp:
    return Lcp(lcp or LcpConfig(), pap or PapConfig(), cp or CpConfig(), PinnedMagic(*magics))


def packet(code: int, identifier: int, data: bytes = b"") -> bytes:
    return CpPacket(code, identifier, data).emit()


def request(*options: RawOption, identifier: int = 0x42) -> bytes:
    return packet(CpCode.CONFIGURE_REQUEST, identifier, emit_options(options))


def start(lcp: Lcp, now: float = 0.0) -> CpPacket:
    """Initial -> Req-Sent; returns our Configure-Request."""
    lcp.fsm.open(now)
    lcp.fsm.up(now)
    [ours] = lcp.fsm.drain_packets()
    lcp.fsm.drain_layer_events()
    return ours


def reply_to(lcp: Lcp, *options: RawOption, now: float = 1.0) -> CpPacket:
    """Feed a peer Configure-Request; return our single answer."""
    lcp.fsm.receive(request(*options), now)
    [answer] = lcp.fsm.drain_packets()
    return answer


def open_link(lcp: Lcp, *peer_options: RawOption, now: float = 0.0) -> CpPacket:
    """Drive LCP to Opened: our request is acked and the peer's is acceptable."""
    ours = start(lcp, now)
    lcp.fsm.receive(packet(CpCode.CONFIGURE_ACK, ours.identifier, ours.data), now)
    lcp.fsm.receive(request(*(peer_options or (PEER_MAGIC_OPTION,))), now)
    sent = lcp.fsm.drain_packets()
    assert [p.code for p in sent] == [CpCode.CONFIGURE_ACK]
    assert lcp.fsm.drain_layer_events() == [LayerEvent.UP]
    return ours


def nak_ours(lcp: Lcp, ours: CpPacket, *options: RawOption, now: float = 1.0) -> CpPacket:
    """Nak our request with ``options``; return our next request."""
    lcp.fsm.receive(packet(CpCode.CONFIGURE_NAK, ours.identifier, emit_options(options)), now)
    [nxt] = lcp.fsm.drain_packets()
    assert nxt.code == CpCode.CONFIGURE_REQUEST
    return nxt


def reject_ours(lcp: Lcp, ours: CpPacket, *options: RawOption, now: float = 1.0) -> list[CpPacket]:
    lcp.fsm.receive(packet(CpCode.CONFIGURE_REJECT, ours.identifier, emit_options(options)), now)
    return lcp.fsm.drain_packets()


def option_map(p: CpPacket) -> dict[int, object]:
    return {o.type: decode_lcp_option(o) for o in parse_options(p.data)}


# ---------------------------------------------------------------- our Configure-Request


class TestOurRequest:
    def test_default_request_is_pppd_golden(self) -> None:
        lcp = make()
        assert start(lcp).emit() == PPPD_REQUEST

    def test_mru_option_sent_only_when_not_default(self) -> None:
        assert LcpOptionType.MRU not in option_map(start(make(LcpConfig(mru=1500))))
        assert option_map(start(make(LcpConfig(mru=296))))[LcpOptionType.MRU] == 296

    def test_require_pap_asks_for_pap(self) -> None:
        ours = start(make(pap=PapConfig(require=True, secrets=(("alice", "pw"),))))
        assert PAP_OPTION in parse_options(ours.data)

    def test_nothing_requested_sends_empty_request(self) -> None:
        config = LcpConfig(request_accm=False, request_magic=False, request_pfc=False, request_acfc=False)
        assert start(make(config)).data == b""

    def test_each_fresh_negotiation_draws_a_new_magic(self) -> None:
        lcp = make(magics=(0x11111111, 0x22222222))
        first = start(lcp)
        lcp.fsm.down(1.0)
        lcp.fsm.up(2.0)
        [second] = lcp.fsm.drain_packets()
        assert option_map(first)[LcpOptionType.MAGIC_NUMBER] == 0x11111111
        assert option_map(second)[LcpOptionType.MAGIC_NUMBER] == 0x22222222


# ------------------------------------------------------------- judging the peer's request


class TestJudgeRequest:
    def test_acceptable_request_acked_verbatim_and_recorded(self) -> None:
        lcp = make()
        start(lcp)
        options = (
            lcp_option(LcpOptionType.MRU, 1400),
            lcp_option(LcpOptionType.ACCM, 0x000A0000),
            PEER_MAGIC_OPTION,
            lcp_option(LcpOptionType.PFC),
            lcp_option(LcpOptionType.ACFC),
        )
        answer = reply_to(lcp, *options)
        assert answer == CpPacket(CpCode.CONFIGURE_ACK, 0x42, emit_options(options))
        assert (lcp.his.mru, lcp.his.accm, lcp.his.magic, lcp.his.pfc, lcp.his.acfc) == (
            1400,
            0x000A0000,
            PEER_MAGIC,
            True,
            True,
        )

    def test_mru_below_minimum_naked_with_minimum(self) -> None:
        lcp = make(LcpConfig(min_peer_mru=128))
        start(lcp)
        answer = reply_to(lcp, lcp_option(LcpOptionType.MRU, 64), PEER_MAGIC_OPTION)
        assert answer.code == CpCode.CONFIGURE_NAK
        assert parse_options(answer.data) == [lcp_option(LcpOptionType.MRU, 128)]

    def test_magic_zero_naked_without_counting_a_collision(self) -> None:
        # RFC 1661 §6.4: a zero Magic-Number MUST always be Nak'd
        lcp = make()
        start(lcp)
        answer = reply_to(lcp, lcp_option(LcpOptionType.MAGIC_NUMBER, 0))
        assert answer.code == CpCode.CONFIGURE_NAK
        [suggestion] = parse_options(answer.data)
        assert suggestion.type == LcpOptionType.MAGIC_NUMBER and decode_lcp_option(suggestion) != 0
        assert lcp.loopback_collisions == 0

    def test_our_own_magic_naked_with_another_and_counted(self) -> None:
        lcp = make()
        start(lcp)
        answer = reply_to(lcp, lcp_option(LcpOptionType.MAGIC_NUMBER, OUR_MAGIC))
        assert answer.code == CpCode.CONFIGURE_NAK
        [suggestion] = parse_options(answer.data)
        assert decode_lcp_option(suggestion) not in (0, OUR_MAGIC)
        assert lcp.loopback_collisions == 1
        assert lcp.fatal is None

    def test_repeated_magic_collisions_reach_max_loopback_and_are_fatal(self) -> None:
        lcp = make(LcpConfig(max_loopback=3), cp=CpConfig(max_failure=10))
        start(lcp)
        for n in range(3):
            assert lcp.fatal is None
            reply_to(lcp, lcp_option(LcpOptionType.MAGIC_NUMBER, OUR_MAGIC), now=float(n))
        assert lcp.loopback_collisions == 3
        assert lcp.fatal is not None

    def test_chap_naked_with_pap_when_we_have_credentials(self) -> None:
        lcp = make(pap=PapConfig(username="alice", password="pw"))
        start(lcp)
        answer = reply_to(lcp, CHAP_MD5, PEER_MAGIC_OPTION)
        assert answer.code == CpCode.CONFIGURE_NAK
        assert parse_options(answer.data) == [PAP_OPTION]

    def test_chap_rejected_when_we_have_no_credentials(self) -> None:
        lcp = make()
        start(lcp)
        answer = reply_to(lcp, CHAP_MD5, PEER_MAGIC_OPTION)
        assert answer.code == CpCode.CONFIGURE_REJECT
        assert answer.data == CHAP_MD5.emit()

    def test_pap_with_trailing_data_naked_with_plain_pap(self) -> None:
        lcp = make(pap=PapConfig(username="alice"))
        start(lcp)
        answer = reply_to(lcp, RawOption(LcpOptionType.AUTH_PROTOCOL, bytes.fromhex("c02301")))
        assert answer.code == CpCode.CONFIGURE_NAK
        assert parse_options(answer.data) == [PAP_OPTION]

    def test_pap_acked_when_we_have_credentials(self) -> None:
        lcp = make(pap=PapConfig(username="alice"))
        start(lcp)
        assert reply_to(lcp, PAP_OPTION, PEER_MAGIC_OPTION).code == CpCode.CONFIGURE_ACK
        assert lcp.his.auth_protocol == PppProtocol.PAP

    @pytest.mark.parametrize(
        "octets",
        [
            "0d0306",  # Callback, operation 6 (RFC 1570)
            "110405dc",  # MRRU 1500 (RFC 1990)
            "0408c0250000000a",  # Quality-Protocol LQR, reporting period 10
            "090301",  # FCS-Alternatives
            "1303 00",  # Endpoint-Discriminator class 0
            "fe04abcd",  # unassigned type
        ],
        ids=["callback", "mrru", "quality-lqr", "fcs-alternatives", "endpoint-discriminator", "unassigned"],
    )
    def test_unsupported_option_rejected_verbatim(self, octets: str) -> None:
        lcp = make()
        start(lcp)
        [unsupported] = parse_options(bytes.fromhex(octets))
        answer = reply_to(lcp, lcp_option(LcpOptionType.MRU, 1500), unsupported, PEER_MAGIC_OPTION)
        assert answer.code == CpCode.CONFIGURE_REJECT
        assert answer.data == bytes.fromhex(octets)

    def test_reject_takes_precedence_over_nak(self) -> None:
        lcp = make()
        start(lcp)
        callback = RawOption(LcpOptionType.CALLBACK, b"\x06")
        answer = reply_to(lcp, lcp_option(LcpOptionType.MRU, 64), callback)
        assert answer.code == CpCode.CONFIGURE_REJECT
        assert parse_options(answer.data) == [callback]

    def test_duplicate_option_rejected(self) -> None:
        lcp = make()
        start(lcp)
        second = lcp_option(LcpOptionType.MAGIC_NUMBER, 0x12345678)
        answer = reply_to(lcp, PEER_MAGIC_OPTION, second)
        assert answer.code == CpCode.CONFIGURE_REJECT
        assert parse_options(answer.data) == [second]

    @pytest.mark.parametrize(
        "octets",
        ["010305", "01050000dc", "0205000000", "0703 00", "0803 00", "0303c0"],
        ids=["mru-3", "mru-5", "accm-5", "pfc-3", "acfc-3", "auth-3"],
    )
    def test_option_with_wrong_length_rejected_verbatim(self, octets: str) -> None:
        lcp = make()
        start(lcp)
        [bad] = parse_options(bytes.fromhex(octets))
        answer = reply_to(lcp, bad, PEER_MAGIC_OPTION)
        assert answer.code == CpCode.CONFIGURE_REJECT
        assert answer.data == bytes.fromhex(octets)

    @pytest.mark.parametrize("flag", [LcpOptionType.PFC, LcpOptionType.ACFC])
    def test_compression_rejected_when_not_allowed(self, flag: LcpOptionType) -> None:
        lcp = make(LcpConfig(allow_pfc=False, allow_acfc=False))
        start(lcp)
        answer = reply_to(lcp, lcp_option(flag), PEER_MAGIC_OPTION)
        assert answer.code == CpCode.CONFIGURE_REJECT
        assert parse_options(answer.data) == [lcp_option(flag)]

    def test_peer_insisting_on_small_mru_is_rejected_after_max_failure(self) -> None:
        # RFC 1661 §4.6: after Max-Failure Naks, the option is Rejected
        lcp = make(cp=CpConfig(max_failure=5))
        start(lcp)
        codes = [reply_to(lcp, lcp_option(LcpOptionType.MRU, 64), now=float(n)).code for n in range(7)]
        assert codes == [CpCode.CONFIGURE_NAK] * 5 + [CpCode.CONFIGURE_REJECT] * 2


# ------------------------------------------------------------- Nak and Reject of our request


class TestNakRejectOfOurRequest:
    def test_accm_nak_takes_the_union(self) -> None:
        lcp = make()
        ours = start(lcp)
        ours = nak_ours(lcp, ours, lcp_option(LcpOptionType.ACCM, 0x000A0000))
        assert option_map(ours)[LcpOptionType.ACCM] == 0x000A0000
        ours = nak_ours(lcp, ours, lcp_option(LcpOptionType.ACCM, 0x00000001), now=2.0)
        assert option_map(ours)[LcpOptionType.ACCM] == 0x000A0001

    def test_accm_nak_ignored_when_we_did_not_ask(self) -> None:
        lcp = make(LcpConfig(request_accm=False))
        ours = nak_ours(lcp, start(lcp), lcp_option(LcpOptionType.ACCM, 0x000A0000))
        assert LcpOptionType.ACCM not in option_map(ours)

    def test_mru_nak_adopted(self) -> None:
        lcp = make(LcpConfig(mru=4000))
        ours = nak_ours(lcp, start(lcp), lcp_option(LcpOptionType.MRU, 1500))
        assert option_map(ours)[LcpOptionType.MRU] == 1500

    def test_mru_nak_below_minimum_ignored(self) -> None:
        lcp = make(LcpConfig(mru=4000, min_peer_mru=128))
        ours = nak_ours(lcp, start(lcp), lcp_option(LcpOptionType.MRU, 64))
        assert option_map(ours)[LcpOptionType.MRU] == 4000

    def test_magic_nak_draws_a_new_magic_and_counts_a_collision(self) -> None:
        lcp = make(magics=(OUR_MAGIC, 0x13572468))
        ours = nak_ours(lcp, start(lcp), lcp_option(LcpOptionType.MAGIC_NUMBER, 0x99999999))
        assert option_map(ours)[LcpOptionType.MAGIC_NUMBER] == 0x13572468
        assert lcp.loopback_collisions == 1

    def test_repeated_magic_naks_detect_loopback(self) -> None:
        lcp = make(LcpConfig(max_loopback=2))
        ours = start(lcp)
        ours = nak_ours(lcp, ours, lcp_option(LcpOptionType.MAGIC_NUMBER, 1))
        assert lcp.fatal is None
        nak_ours(lcp, ours, lcp_option(LcpOptionType.MAGIC_NUMBER, 2))
        assert lcp.fatal is not None

    def test_auth_nak_with_other_protocol_is_fatal_when_we_require_pap(self) -> None:
        lcp = make(pap=PapConfig(require=True))
        nak_ours(lcp, start(lcp), CHAP_MD5)
        assert lcp.fatal is not None

    def test_auth_reject_is_fatal(self) -> None:
        lcp = make(pap=PapConfig(require=True))
        reject_ours(lcp, start(lcp), PAP_OPTION)
        assert lcp.fatal is not None

    @pytest.mark.parametrize(
        "rejected",
        [LcpOptionType.ACCM, LcpOptionType.MAGIC_NUMBER, LcpOptionType.PFC, LcpOptionType.ACFC],
    )
    def test_rejected_option_no_longer_requested(self, rejected: LcpOptionType) -> None:
        lcp = make()
        ours = start(lcp)
        [option] = [o for o in parse_options(ours.data) if o.type == rejected]
        [nxt] = reject_ours(lcp, ours, option)
        assert rejected not in option_map(nxt)
        assert len(option_map(nxt)) == 3

    @pytest.mark.parametrize(
        "option",
        [lcp_option(LcpOptionType.MRU, 1500), lcp_option(LcpOptionType.ACCM, 0xFFFFFFFF)],
        ids=["never-sent", "value-changed"],
    )
    def test_reject_of_options_we_did_not_send_dropped(self, option: RawOption) -> None:
        lcp = make()
        ours = start(lcp)
        assert reject_ours(lcp, ours, option) == []
        assert lcp.fsm.drops[DropReason.BAD_OPTION] == 1
        assert lcp.fsm.state == State.REQ_SENT

    def test_nak_of_a_flag_option_dropped(self) -> None:
        lcp = make()
        ours = start(lcp)
        lcp.fsm.receive(packet(CpCode.CONFIGURE_NAK, ours.identifier, emit_options([RawOption(7)])), 1.0)
        assert lcp.fsm.drain_packets() == []
        assert lcp.fsm.drops[DropReason.BAD_OPTION] == 1

    def test_mru_nak_past_max_failure_drops_the_option(self) -> None:
        lcp = make(LcpConfig(mru=4000), cp=CpConfig(max_failure=1))
        ours = start(lcp)
        ours = nak_ours(lcp, ours, lcp_option(LcpOptionType.MRU, 64))
        ours = nak_ours(lcp, ours, lcp_option(LcpOptionType.MRU, 64), now=2.0)
        assert LcpOptionType.MRU not in option_map(ours)

    def test_nak_with_unknown_hint_still_applies_known_suggestions(self) -> None:
        lcp = make()
        ours = start(lcp)
        nxt = nak_ours(
            lcp, ours, lcp_option(LcpOptionType.ACCM, 0x000A0000), RawOption(LcpOptionType.CALLBACK, b"\x06")
        )
        assert option_map(nxt)[LcpOptionType.ACCM] == 0x000A0000


# ----------------------------------------------------------------------- link parameters


class TestLinkParameters:
    def test_layer_up_derives_parameters_from_got_and_his(self) -> None:
        lcp = make(LcpConfig(mru=4000), pap=PapConfig(require=True, username="alice"))
        open_link(
            lcp,
            lcp_option(LcpOptionType.MRU, 296),
            lcp_option(LcpOptionType.ACCM, 0x000A0000),
            PAP_OPTION,
            PEER_MAGIC_OPTION,
            lcp_option(LcpOptionType.PFC),
        )
        assert lcp.link == LinkParameters(
            mru=4000,
            peer_mru=296,
            rx_accm=0,
            tx_accm=0x000A0000,
            tx_pfc=True,
            tx_acfc=False,
            local_magic=OUR_MAGIC,
            peer_magic=PEER_MAGIC,
            authenticate_peer=PppProtocol.PAP,
            authenticate_self=PppProtocol.PAP,
        )

    def test_nothing_negotiated_gives_rfc_defaults(self) -> None:
        config = LcpConfig(request_accm=False, request_magic=False, request_pfc=False, request_acfc=False)
        lcp = make(config)
        ours = start(lcp)
        lcp.fsm.receive(packet(CpCode.CONFIGURE_ACK, ours.identifier, ours.data), 0.0)
        lcp.fsm.receive(request(), 0.0)
        assert lcp.link == LinkParameters(1500, 1500, 0xFFFFFFFF, 0xFFFFFFFF, False, False, 0, 0, None, None)

    def test_layer_down_forgets_the_link(self) -> None:
        lcp = make()
        open_link(lcp)
        lcp.fsm.receive(packet(CpCode.TERMINATE_REQUEST, 1), 5.0)
        assert lcp.link is None


# --------------------------------------------------------- Echo, Discard (RFC 1661 §5.8-5.9)


class TestEcho:
    def test_opened_echo_request_answered_with_our_magic_and_its_data(self) -> None:
        lcp = make()
        open_link(lcp)
        lcp.fsm.receive(packet(CpCode.ECHO_REQUEST, 0x31, PEER_MAGIC.to_bytes(4, "big") + b"ping"), 1.0)
        assert lcp.fsm.drain_packets() == [CpPacket(CpCode.ECHO_REPLY, 0x31, OUR_MAGIC.to_bytes(4, "big") + b"ping")]

    def test_req_sent_echo_request_not_answered(self) -> None:
        lcp = make()
        start(lcp)
        lcp.fsm.receive(packet(CpCode.ECHO_REQUEST, 0x31, bytes(4)), 1.0)
        assert lcp.fsm.drain_packets() == []

    def test_opened_echo_request_with_our_magic_counts_a_collision(self) -> None:
        lcp = make()
        open_link(lcp)
        lcp.fsm.receive(packet(CpCode.ECHO_REQUEST, 0x31, OUR_MAGIC.to_bytes(4, "big")), 1.0)
        assert lcp.loopback_collisions == 1

    def test_opened_echo_reply_with_our_magic_is_not_a_reply(self) -> None:
        lcp = make(LcpConfig(echo_interval=10.0))
        open_link(lcp)
        lcp.on_timer(10.0)
        [echo] = lcp.fsm.drain_packets()
        lcp.fsm.receive(packet(CpCode.ECHO_REPLY, echo.identifier, echo.data), 10.5)  # our own request
        assert lcp.echo_replies == 0
        assert lcp.loopback_collisions == 1

    def test_echo_disabled_by_default(self) -> None:
        lcp = make()
        open_link(lcp)
        assert lcp.next_deadline() is None

    def test_keepalive_sends_echo_requests_with_our_magic_at_each_interval(self) -> None:
        lcp = make(LcpConfig(echo_interval=10.0, echo_failure=3))
        open_link(lcp, now=0.0)
        assert lcp.next_deadline() == 10.0
        lcp.on_timer(9.99)
        assert lcp.fsm.drain_packets() == []
        lcp.on_timer(10.0)
        [echo] = lcp.fsm.drain_packets()
        assert echo.code == CpCode.ECHO_REQUEST
        assert echo.data == OUR_MAGIC.to_bytes(4, "big")
        assert lcp.next_deadline() == 20.0

    def test_link_dead_exactly_interval_times_failures_after_first_unanswered_echo(self) -> None:
        interval, failures = 10.0, 3
        lcp = make(LcpConfig(echo_interval=interval, echo_failure=failures))
        open_link(lcp, now=0.0)
        first_echo = None
        for _ in range(10):
            deadline = lcp.next_deadline()
            assert deadline is not None
            lcp.on_timer(deadline)
            if lcp.fsm.drain_packets() and first_echo is None:
                first_echo = deadline
            if lcp.dead_reason is not None:
                break
        assert first_echo == 10.0
        assert deadline == first_echo + interval * failures
        assert lcp.echo_requests_sent == failures
        assert lcp.next_deadline() is None

    def test_not_dead_just_before_the_deadline(self) -> None:
        lcp = make(LcpConfig(echo_interval=10.0, echo_failure=3))
        open_link(lcp, now=0.0)
        for now in (10.0, 20.0, 30.0, 39.999):
            lcp.on_timer(now)
        assert lcp.dead_reason is None

    def test_echo_reply_resets_the_failure_count(self) -> None:
        lcp = make(LcpConfig(echo_interval=10.0, echo_failure=3))
        open_link(lcp, now=0.0)
        for now in (10.0, 20.0):
            lcp.on_timer(now)
        echo = lcp.fsm.drain_packets()[-1]
        lcp.fsm.receive(packet(CpCode.ECHO_REPLY, echo.identifier, PEER_MAGIC.to_bytes(4, "big")), 21.0)
        assert lcp.echo_replies == 1
        for now in (30.0, 40.0, 50.0):
            lcp.on_timer(now)
        assert lcp.dead_reason is None  # three unanswered since the reply, not five
        lcp.on_timer(60.0)
        assert lcp.dead_reason is not None

    def test_layer_down_stops_the_keepalive(self) -> None:
        lcp = make(LcpConfig(echo_interval=10.0))
        open_link(lcp)
        lcp.fsm.receive(packet(CpCode.TERMINATE_REQUEST, 1), 5.0)
        assert lcp.next_deadline() == 8.0  # only the automaton's restart timer remains

    def test_opened_discard_request_counted_and_not_answered(self) -> None:
        lcp = make()
        open_link(lcp)
        lcp.fsm.receive(packet(CpCode.DISCARD_REQUEST, 3, PEER_MAGIC.to_bytes(4, "big") + b"junk"), 1.0)
        assert lcp.discards == 1
        assert lcp.fsm.drain_packets() == []

    def test_req_sent_discard_request_not_counted(self) -> None:
        lcp = make()
        start(lcp)
        lcp.fsm.receive(packet(CpCode.DISCARD_REQUEST, 3, bytes(4)), 1.0)
        assert lcp.discards == 0


# --------------------------------------------------------- Protocol-Reject, Code-Reject


class TestRejects:
    def test_opened_protocol_reject_of_ncp_recorded_and_link_stays(self) -> None:
        lcp = make()
        open_link(lcp)
        body = PppProtocol.IPCP.to_bytes(2, "big") + packet(1, 1)
        lcp.fsm.receive(packet(CpCode.PROTOCOL_REJECT, 4, body), 1.0)
        assert lcp.rejected_protocols == [PppProtocol.IPCP]
        assert lcp.fsm.state == State.OPENED
        assert lcp.fsm.drain_packets() == []

    def test_opened_protocol_reject_of_lcp_terminates(self) -> None:
        lcp = make()
        open_link(lcp)
        lcp.fsm.receive(packet(CpCode.PROTOCOL_REJECT, 4, PppProtocol.LCP.to_bytes(2, "big")), 1.0)
        assert lcp.fsm.state == State.STOPPING
        assert [p.code for p in lcp.fsm.drain_packets()] == [CpCode.TERMINATE_REQUEST]

    def test_opened_code_reject_of_echo_request_keeps_the_link(self) -> None:
        lcp = make()
        open_link(lcp)
        lcp.fsm.receive(packet(CpCode.CODE_REJECT, 4, packet(CpCode.ECHO_REQUEST, 1, bytes(4))), 1.0)
        assert lcp.fsm.state == State.OPENED

    def test_opened_truncated_protocol_reject_dropped_not_code_rejected(self) -> None:
        lcp = make()
        open_link(lcp)
        lcp.fsm.receive(packet(CpCode.PROTOCOL_REJECT, 4, b"\x80"), 1.0)
        assert lcp.fsm.drain_packets() == []

    def test_req_sent_protocol_reject_silently_discarded(self) -> None:
        lcp = make()
        start(lcp)
        lcp.fsm.receive(packet(CpCode.PROTOCOL_REJECT, 4, PppProtocol.LCP.to_bytes(2, "big")), 1.0)
        assert lcp.fsm.state == State.REQ_SENT

    def test_opened_code_reject_fits_the_peer_mru(self) -> None:
        lcp = make()
        open_link(lcp, lcp_option(LcpOptionType.MRU, 296), PEER_MAGIC_OPTION)
        lcp.fsm.receive(packet(0x20, 1, bytes(600)), 1.0)
        [code_reject] = lcp.fsm.drain_packets()
        assert code_reject.code == CpCode.CODE_REJECT
        assert len(code_reject.emit()) <= 296


class TestKeepaliveConfiguration:
    def test_echo_failure_zero_never_declares_the_link_dead_without_an_echo(self) -> None:
        lcp = make(LcpConfig(echo_interval=10.0, echo_failure=0))
        open_link(lcp, now=0.0)
        lcp.on_timer(10.0)
        assert lcp.echo_requests_sent == 1
        assert lcp.dead_reason is None
