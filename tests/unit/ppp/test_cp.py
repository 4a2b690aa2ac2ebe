"""The RFC 1661 engine (``ControlProtocol``) with a scripted option handler.

Every test starts the automaton in a known state through its public inputs, feeds one
input with an explicit ``now`` and checks the packets queued, the layer events, the state
and the drop counters.  Option semantics belong to LCP/IPCP and are tested there.
"""

from __future__ import annotations

import pytest

from wipstack.errors import DropReason
from wipstack.ppp.automaton import Event, State
from wipstack.ppp.config import CpConfig
from wipstack.ppp.cp import ControlProtocol, LayerEvent, Verdict
from wipstack.wire.cp import CpCode, CpPacket, RawOption, emit_options

MRU_1500 = RawOption(1, b"\x05\xdc")
MRU_1400 = RawOption(1, b"\x05\x78")
FLAG_7 = RawOption(7)
PEER_OPTIONS = (RawOption(5, b"\x20\xb6\x7b\xa5"),)
PEER_ID = 0x42


class ScriptedHandler:
    """An OptionHandler whose answers the test decides; it records every call."""

    def __init__(self) -> None:
        self.options = [MRU_1500, FLAG_7]
        self.verdicts: list[Verdict] = []  # next judge_request results; Ack when empty
        self.disagree = False  # Nak every request unless told to reject (Max-Failure tests)
        self.nak_valid = True
        self.reject_valid = True
        self.resets = 0
        self.acked: list[list[RawOption]] = []
        self.naks: list[tuple[list[RawOption], bool]] = []
        self.rejects: list[list[RawOption]] = []
        self.judged: list[tuple[list[RawOption], bool]] = []
        self.layer_calls: list[tuple[str, float]] = []
        self.extra_codes: dict[int, Event] = {}
        self.extra_seen: list[CpPacket] = []

    def reset(self) -> None:
        self.resets += 1

    def build_request(self) -> list[RawOption]:
        return list(self.options)

    def request_acked(self, options: list[RawOption]) -> None:
        self.acked.append(options)

    def apply_nak(self, options: list[RawOption], treat_as_reject: bool) -> bool:
        self.naks.append((options, treat_as_reject))
        if self.nak_valid:
            by_type = {o.type: o for o in options}
            self.options = [by_type.get(o.type, o) for o in self.options]
        return self.nak_valid

    def apply_reject(self, options: list[RawOption]) -> bool:
        self.rejects.append(options)
        if self.reject_valid:
            self.options = [o for o in self.options if o not in options]
        return self.reject_valid

    def judge_request(self, options: list[RawOption], reject_if_disagree: bool) -> Verdict:
        self.judged.append((options, reject_if_disagree))
        if self.verdicts:
            return self.verdicts.pop(0)
        if self.disagree:
            code = CpCode.CONFIGURE_REJECT if reject_if_disagree else CpCode.CONFIGURE_NAK
            return Verdict(code, (MRU_1500,) if code == CpCode.CONFIGURE_NAK else tuple(options))
        return Verdict(CpCode.CONFIGURE_ACK, tuple(options))

    def layer_up(self, now: float) -> None:
        self.layer_calls.append(("up", now))

    def layer_down(self, now: float) -> None:
        self.layer_calls.append(("down", now))

    def layer_finished(self, now: float) -> None:
        self.layer_calls.append(("finished", now))

    def extra_event(self, packet: CpPacket) -> Event | None:
        return self.extra_codes.get(packet.code)

    def extra_received(self, packet: CpPacket, now: float) -> list[CpPacket]:
        self.extra_seen.append(packet)
        return [CpPacket(packet.code + 1, packet.identifier, packet.data)]


def make(**config: object) -> tuple[ControlProtocol, ScriptedHandler]:
    handler = ScriptedHandler()
    return ControlProtocol("TEST", 0x8021, handler, CpConfig(**config)), handler  # type: ignore[arg-type]


def packet(code: int, identifier: int, data: bytes = b"") -> bytes:
    return CpPacket(code, identifier, data).emit()


def peer_request(identifier: int = PEER_ID, options: tuple[RawOption, ...] = PEER_OPTIONS) -> bytes:
    return packet(CpCode.CONFIGURE_REQUEST, identifier, emit_options(options))


def answer(code: int, request: CpPacket, data: bytes | None = None) -> bytes:
    return packet(code, request.identifier, request.data if data is None else data)


def codes(packets: list[CpPacket]) -> list[int]:
    return [p.code for p in packets]


def start(cp: ControlProtocol, now: float = 0.0) -> CpPacket:
    """Initial -> Req-Sent; returns our Configure-Request."""
    cp.open(now)
    cp.up(now)
    [request] = cp.drain_packets()
    cp.drain_layer_events()
    return request


def to_ack_rcvd(cp: ControlProtocol, now: float = 0.0) -> CpPacket:
    request = start(cp, now)
    cp.receive(answer(CpCode.CONFIGURE_ACK, request), now)
    assert cp.state == State.ACK_RCVD
    return request


def to_ack_sent(cp: ControlProtocol, now: float = 0.0) -> CpPacket:
    request = start(cp, now)
    cp.receive(peer_request(), now)
    cp.drain_packets()
    assert cp.state == State.ACK_SENT
    return request


def to_opened(cp: ControlProtocol, now: float = 0.0) -> None:
    to_ack_rcvd(cp, now)
    cp.receive(peer_request(), now)
    cp.drain_packets()
    cp.drain_layer_events()
    assert cp.state == State.OPENED


def to_stopped(cp: ControlProtocol) -> None:
    start(cp, 0.0)
    while (deadline := cp.next_deadline()) is not None:
        cp.on_timer(deadline)
    cp.drain_packets()
    cp.drain_layer_events()
    assert cp.state == State.STOPPED


def to_closed(cp: ControlProtocol) -> None:
    cp.up(0.0)
    assert cp.state == State.CLOSED


def run_timers(cp: ControlProtocol) -> list[tuple[float, CpPacket]]:
    """Fire every deadline at its exact time until none is left; (time, packet) sent."""
    sent: list[tuple[float, CpPacket]] = []
    for _ in range(1000):
        deadline = cp.next_deadline()
        if deadline is None:
            return sent
        cp.on_timer(deadline)
        sent += [(deadline, p) for p in cp.drain_packets()]
    raise AssertionError("the restart timer never stopped")


# -------------------------------------------------------------------- Configure-Request


class TestConfigureRequest:
    def test_initial_open_up_sends_one_configure_request(self) -> None:
        cp, handler = make()
        cp.open(0.0)
        assert cp.drain_layer_events() == [LayerEvent.STARTED]
        cp.up(0.0)
        assert cp.state == State.REQ_SENT
        assert cp.drain_packets() == [CpPacket(CpCode.CONFIGURE_REQUEST, 1, emit_options(handler.options))]
        assert handler.resets == 1

    def test_closed_open_sends_configure_request(self) -> None:
        cp, _ = make()
        to_closed(cp)
        assert cp.drain_packets() == []
        cp.open(5.0)
        assert codes(cp.drain_packets()) == [CpCode.CONFIGURE_REQUEST]
        assert cp.state == State.REQ_SENT
        assert cp.next_deadline() == 8.0

    def test_req_sent_deadline_is_restart_interval_after_send(self) -> None:
        cp, _ = make(restart_interval=6.0)
        start(cp, now=100.0)
        assert cp.next_deadline() == 106.0

    def test_req_sent_each_new_request_gets_a_fresh_id(self) -> None:
        cp, handler = make()
        request = start(cp)
        ids = [request.identifier]
        for n in range(5):
            handler.options = [RawOption(1, bytes([5, n]))]
            cp.receive(answer(CpCode.CONFIGURE_NAK, request, emit_options([RawOption(1, bytes([5, n]))])), 1.0)
            [request] = cp.drain_packets()
            ids.append(request.identifier)
        assert len(set(ids)) == len(ids)

    def test_req_sent_to_plus_retransmits_same_id_and_content(self) -> None:
        cp, _ = make()
        request = start(cp, 0.0)
        cp.on_timer(3.0)
        assert cp.drain_packets() == [request]
        assert cp.state == State.REQ_SENT
        assert cp.next_deadline() == 6.0

    def test_ack_sent_to_plus_retransmits_same_id_and_content(self) -> None:
        cp, _ = make()
        request = to_ack_sent(cp, 0.0)
        cp.on_timer(3.0)
        assert cp.drain_packets() == [request]
        assert cp.state == State.ACK_SENT

    def test_req_sent_timer_never_fires_early(self) -> None:
        cp, _ = make()
        start(cp, 0.0)
        cp.on_timer(2.999)
        assert cp.drain_packets() == []
        assert cp.next_deadline() == 3.0

    def test_req_sent_late_timer_schedules_from_now(self) -> None:
        cp, _ = make()
        start(cp, 0.0)
        cp.on_timer(4.5)
        assert len(cp.drain_packets()) == 1
        assert cp.next_deadline() == 7.5

    @pytest.mark.parametrize("max_configure", [1, 3, 10])
    def test_req_sent_to_minus_after_exactly_max_configure_transmissions(self, max_configure: int) -> None:
        cp, handler = make(max_configure=max_configure)
        start(cp, 0.0)
        sent = run_timers(cp)
        requests = [t for t, p in sent if p.code == CpCode.CONFIGURE_REQUEST]
        assert 1 + len(requests) == max_configure
        assert requests == [3.0 * n for n in range(1, max_configure)]
        assert cp.state == State.STOPPED
        assert cp.drain_layer_events() == [LayerEvent.FINISHED]
        assert handler.layer_calls == [("finished", 3.0 * max_configure)]

    def test_req_sent_nak_reinitializes_restart_counter(self) -> None:
        cp, _ = make(max_configure=3)
        request = start(cp, 0.0)
        cp.on_timer(3.0)
        cp.on_timer(6.0)  # third and last transmission of this request
        cp.drain_packets()
        cp.receive(answer(CpCode.CONFIGURE_NAK, request, emit_options([MRU_1400])), 7.0)
        assert len(cp.drain_packets()) == 1  # irc, scr: 3 more transmissions are allowed
        sent = run_timers(cp)
        assert [t for t, _ in sent] == [10.0, 13.0]
        assert cp.state == State.STOPPED

    def test_passive_to_minus_stays_stopped_without_tlf(self) -> None:
        cp, handler = make(passive=True, max_configure=2)
        start(cp, 0.0)
        run_timers(cp)
        assert cp.state == State.STOPPED
        assert cp.drain_layer_events() == []
        assert handler.layer_calls == []
        assert cp.next_deadline() is None

    def test_passive_stopping_timeout_still_finishes(self) -> None:
        # the peer's Terminate-Request in Opened: Stopping; its TO- is Stopped *with* tlf even when
        # passive (the option only covers unanswered Configure-Requests), or a passive server
        # would never notice that the peer hung up
        cp, handler = make(passive=True)
        to_opened(cp, 0.0)
        cp.drain_layer_events()
        cp.receive(CpPacket(CpCode.TERMINATE_REQUEST, 0x44, b"bye").emit(), 1.0)
        assert cp.state == State.STOPPING
        run_timers(cp)
        assert cp.state == State.STOPPED
        assert LayerEvent.FINISHED in cp.drain_layer_events()

    def test_passive_stopped_peer_request_restarts_negotiation(self) -> None:
        cp, _ = make(passive=True, max_configure=1)
        start(cp, 0.0)
        run_timers(cp)
        cp.receive(peer_request(), 50.0)
        assert codes(cp.drain_packets()) == [CpCode.CONFIGURE_REQUEST, CpCode.CONFIGURE_ACK]
        assert cp.state == State.ACK_SENT

    def test_silent_up_sends_nothing_and_waits(self) -> None:
        cp, _ = make(silent=True)
        cp.open(0.0)
        cp.up(0.0)
        assert cp.state == State.STOPPED
        assert cp.drain_packets() == []
        assert cp.next_deadline() is None

    def test_silent_stopped_peer_request_sends_request_and_ack(self) -> None:
        cp, _ = make(silent=True)
        cp.open(0.0)
        cp.up(0.0)
        cp.receive(peer_request(), 9.0)
        request, ack = cp.drain_packets()
        assert request.code == CpCode.CONFIGURE_REQUEST
        assert ack == CpPacket(CpCode.CONFIGURE_ACK, PEER_ID, emit_options(PEER_OPTIONS))
        assert cp.state == State.ACK_SENT
        assert cp.next_deadline() == 12.0

    def test_req_sent_up_again_is_an_illegal_event(self) -> None:
        cp, _ = make()
        start(cp, 0.0)
        cp.up(1.0)
        assert cp.illegal_events == 1
        assert cp.state == State.REQ_SENT
        assert cp.drain_packets() == []

    def test_identifiers_stay_in_one_octet(self) -> None:
        cp, _ = make()
        start(cp, 0.0)
        ids = [cp.send_extra(9, b"") for _ in range(300)]
        assert all(0 <= i <= 0xFF for i in ids)
        assert all(a != b for a, b in zip(ids, ids[1:], strict=False))


# ---------------------------------------------------------------- Ack / Nak / Reject


class TestConfigureAck:
    def test_req_sent_rca_goes_ack_rcvd(self) -> None:
        cp, handler = make()
        request = start(cp, 0.0)
        cp.receive(answer(CpCode.CONFIGURE_ACK, request), 1.0)
        assert cp.state == State.ACK_RCVD
        assert handler.acked == [handler.options]
        assert cp.drain_packets() == []

    def test_req_sent_ack_with_wrong_id_dropped_and_counted(self) -> None:
        cp, handler = make()
        request = start(cp, 0.0)
        cp.receive(packet(CpCode.CONFIGURE_ACK, request.identifier + 1, request.data), 1.0)
        assert cp.state == State.REQ_SENT
        assert cp.drops[DropReason.UNEXPECTED_ID] == 1
        assert handler.acked == []

    @pytest.mark.parametrize(
        "data",
        [
            emit_options([MRU_1400, FLAG_7]),  # a value changed
            emit_options([FLAG_7, MRU_1500]),  # reordered
            emit_options([MRU_1500]),  # an option missing
            emit_options([MRU_1500, FLAG_7, RawOption(8)]),  # an option added
        ],
        ids=["changed", "reordered", "missing", "added"],
    )
    def test_req_sent_ack_with_altered_options_dropped_and_counted(self, data: bytes) -> None:
        cp, handler = make()
        request = start(cp, 0.0)
        cp.receive(answer(CpCode.CONFIGURE_ACK, request, data), 1.0)
        assert cp.state == State.REQ_SENT
        assert cp.drops[DropReason.BAD_OPTION] == 1
        assert handler.acked == []

    def test_req_sent_correct_ack_after_a_bad_one_is_accepted(self) -> None:
        cp, _ = make()
        request = start(cp, 0.0)
        cp.receive(answer(CpCode.CONFIGURE_ACK, request, emit_options([MRU_1400, FLAG_7])), 1.0)
        cp.receive(answer(CpCode.CONFIGURE_ACK, request), 1.5)
        assert cp.state == State.ACK_RCVD

    def test_ack_rcvd_duplicate_ack_ignored_and_counted(self) -> None:
        cp, _ = make()
        request = to_ack_rcvd(cp, 0.0)
        cp.receive(answer(CpCode.CONFIGURE_ACK, request), 1.0)
        assert cp.state == State.ACK_RCVD  # not RCA in Ack-Rcvd (which would restart)
        assert cp.drops[DropReason.UNEXPECTED_ID] == 1
        assert cp.drain_packets() == []

    def test_ack_rcvd_rcr_plus_acks_and_opens(self) -> None:
        cp, handler = make()
        to_ack_rcvd(cp, 0.0)
        cp.receive(peer_request(), 1.0)
        assert cp.drain_packets() == [CpPacket(CpCode.CONFIGURE_ACK, PEER_ID, emit_options(PEER_OPTIONS))]
        assert cp.state == State.OPENED
        assert cp.drain_layer_events() == [LayerEvent.UP]
        assert handler.layer_calls == [("up", 1.0)]
        assert cp.next_deadline() is None

    def test_ack_sent_rca_opens(self) -> None:
        cp, _ = make()
        request = to_ack_sent(cp, 0.0)
        cp.receive(answer(CpCode.CONFIGURE_ACK, request), 1.0)
        assert cp.state == State.OPENED
        assert cp.drain_layer_events() == [LayerEvent.UP]
        assert cp.drain_packets() == []

    def test_opened_stale_ack_ignored(self) -> None:
        cp, _ = make()
        to_opened(cp, 0.0)
        cp.receive(packet(CpCode.CONFIGURE_ACK, 1, emit_options([MRU_1500, FLAG_7])), 2.0)
        assert cp.state == State.OPENED
        assert cp.drops[DropReason.UNEXPECTED_ID] == 1

    def test_ack_with_malformed_options_dropped(self) -> None:
        cp, _ = make()
        request = start(cp, 0.0)
        cp.receive(answer(CpCode.CONFIGURE_ACK, request, b"\x01\x09"), 1.0)
        assert cp.state == State.REQ_SENT
        assert cp.drops[DropReason.BAD_OPTION] == 1


class TestConfigureNakReject:
    def test_req_sent_nak_is_applied_and_a_new_request_sent(self) -> None:
        cp, handler = make()
        request = start(cp, 0.0)
        cp.receive(answer(CpCode.CONFIGURE_NAK, request, emit_options([MRU_1400])), 1.0)
        assert handler.naks == [([MRU_1400], False)]
        [new] = cp.drain_packets()
        assert new.code == CpCode.CONFIGURE_REQUEST
        assert new.identifier != request.identifier
        assert new.data == emit_options([MRU_1400, FLAG_7])
        assert cp.state == State.REQ_SENT
        assert handler.resets == 1  # a Nak adapts the request; it does not start afresh

    def test_req_sent_nak_with_wrong_id_dropped_and_counted(self) -> None:
        cp, handler = make()
        request = start(cp, 0.0)
        cp.receive(packet(CpCode.CONFIGURE_NAK, request.identifier ^ 0xFF, emit_options([MRU_1400])), 1.0)
        assert handler.naks == []
        assert cp.drops[DropReason.UNEXPECTED_ID] == 1
        assert cp.drain_packets() == []

    def test_req_sent_invalid_nak_dropped_and_request_stays_outstanding(self) -> None:
        cp, handler = make()
        handler.nak_valid = False
        request = start(cp, 0.0)
        cp.receive(answer(CpCode.CONFIGURE_NAK, request, emit_options([MRU_1400])), 1.0)
        assert cp.drops[DropReason.BAD_OPTION] == 1
        assert cp.drain_packets() == []
        cp.receive(answer(CpCode.CONFIGURE_ACK, request), 1.5)
        assert cp.state == State.ACK_RCVD

    def test_req_sent_second_nak_for_same_request_ignored(self) -> None:
        cp, handler = make()
        request = start(cp, 0.0)
        cp.receive(answer(CpCode.CONFIGURE_NAK, request, emit_options([MRU_1400])), 1.0)
        cp.receive(answer(CpCode.CONFIGURE_NAK, request, emit_options([MRU_1400])), 1.1)
        assert len(handler.naks) == 1
        assert cp.drops[DropReason.UNEXPECTED_ID] == 1

    def test_req_sent_naks_past_max_failure_are_treated_as_rejects(self) -> None:
        cp, handler = make(max_failure=2)
        request = start(cp, 0.0)
        for n in range(4):
            cp.receive(answer(CpCode.CONFIGURE_NAK, request, emit_options([MRU_1400])), float(n))
            [request] = cp.drain_packets()
        assert [flag for _, flag in handler.naks] == [False, False, True, True]

    def test_req_sent_reject_is_applied_and_a_new_request_sent(self) -> None:
        cp, handler = make()
        request = start(cp, 0.0)
        cp.receive(answer(CpCode.CONFIGURE_REJECT, request, emit_options([FLAG_7])), 1.0)
        assert handler.rejects == [[FLAG_7]]
        [new] = cp.drain_packets()
        assert new.data == emit_options([MRU_1500])
        assert new.identifier != request.identifier

    def test_req_sent_invalid_reject_dropped_and_counted(self) -> None:
        cp, handler = make()
        handler.reject_valid = False
        request = start(cp, 0.0)
        cp.receive(answer(CpCode.CONFIGURE_REJECT, request, emit_options([RawOption(9)])), 1.0)
        assert cp.drops[DropReason.BAD_OPTION] == 1
        assert cp.drain_packets() == []
        assert cp.state == State.REQ_SENT

    def test_ack_sent_nak_sends_new_request_and_stays(self) -> None:
        cp, _ = make()
        request = to_ack_sent(cp, 0.0)
        cp.receive(answer(CpCode.CONFIGURE_NAK, request, emit_options([MRU_1400])), 1.0)
        assert codes(cp.drain_packets()) == [CpCode.CONFIGURE_REQUEST]
        assert cp.state == State.ACK_SENT


# ------------------------------------------------------------------ the peer's requests


class TestPeerConfigureRequest:
    def test_req_sent_rcr_plus_acks_with_peer_id_and_options_verbatim(self) -> None:
        cp, handler = make()
        start(cp, 0.0)
        cp.receive(peer_request() + b"\x00\x00", 1.0)  # padding is not part of the request
        assert cp.drain_packets() == [CpPacket(CpCode.CONFIGURE_ACK, PEER_ID, emit_options(PEER_OPTIONS))]
        assert handler.judged == [(list(PEER_OPTIONS), False)]
        assert cp.state == State.ACK_SENT

    @pytest.mark.parametrize("code", [CpCode.CONFIGURE_NAK, CpCode.CONFIGURE_REJECT])
    def test_req_sent_rcr_minus_sends_verdict_with_peer_id(self, code: CpCode) -> None:
        cp, handler = make()
        start(cp, 0.0)
        handler.verdicts = [Verdict(code, (MRU_1500,))]
        cp.receive(peer_request(), 1.0)
        assert cp.drain_packets() == [CpPacket(code, PEER_ID, emit_options([MRU_1500]))]
        assert cp.state == State.REQ_SENT

    @pytest.mark.parametrize("max_failure", [1, 3, 5])
    def test_max_failure_turns_naks_into_rejects(self, max_failure: int) -> None:
        cp, handler = make(max_failure=max_failure)
        handler.disagree = True  # the peer keeps proposing a value we will not take
        start(cp, 0.0)
        sent = []
        for n in range(max_failure + 2):
            cp.receive(peer_request(identifier=n), float(n))
            sent += codes(cp.drain_packets())
        assert sent == [CpCode.CONFIGURE_NAK] * max_failure + [CpCode.CONFIGURE_REJECT] * 2
        assert [flag for _, flag in handler.judged] == [False] * max_failure + [True] * 2

    def test_configure_ack_sent_resets_the_nak_count(self) -> None:
        cp, handler = make(max_failure=2)
        start(cp, 0.0)
        handler.verdicts = [Verdict(CpCode.CONFIGURE_NAK, (MRU_1500,))] * 2 + [Verdict(CpCode.CONFIGURE_ACK)]
        for n in range(4):
            cp.receive(peer_request(identifier=n), float(n))
        assert [flag for _, flag in handler.judged] == [False, False, True, False]

    def test_req_sent_malformed_request_dropped_without_answer(self) -> None:
        cp, handler = make()
        start(cp, 0.0)
        cp.receive(packet(CpCode.CONFIGURE_REQUEST, 1, b"\x01\x05\x05\xdc"), 1.0)
        assert cp.drops[DropReason.BAD_OPTION] == 1
        assert handler.judged == []
        assert cp.drain_packets() == []

    def test_closed_configure_request_answered_with_terminate_ack(self) -> None:
        cp, handler = make()
        to_closed(cp)
        cp.receive(peer_request(), 1.0)
        assert cp.drain_packets() == [CpPacket(CpCode.TERMINATE_ACK, PEER_ID)]
        assert handler.judged == []
        assert cp.state == State.CLOSED

    def test_opened_rcr_plus_renegotiates(self) -> None:
        cp, handler = make()
        to_opened(cp, 0.0)
        cp.receive(peer_request(identifier=7), 10.0)
        assert codes(cp.drain_packets()) == [CpCode.CONFIGURE_REQUEST, CpCode.CONFIGURE_ACK]
        assert cp.drain_layer_events() == [LayerEvent.DOWN]
        assert cp.state == State.ACK_SENT
        assert handler.resets == 2  # a new negotiation starts from what we want
        assert cp.next_deadline() == 13.0


# ----------------------------------------------------------------------- termination


class TestTermination:
    @pytest.mark.parametrize("max_terminate", [1, 2, 4])
    def test_opened_close_sends_max_terminate_requests_then_tlf(self, max_terminate: int) -> None:
        cp, handler = make(max_terminate=max_terminate)
        to_opened(cp, 0.0)
        cp.close(10.0, "User request")
        first = cp.drain_packets()
        assert codes(first) == [CpCode.TERMINATE_REQUEST]
        assert first[0].data == b"User request"
        assert cp.drain_layer_events() == [LayerEvent.DOWN]
        sent = run_timers(cp)
        assert [t for t, p in sent if p.code == CpCode.TERMINATE_REQUEST] == [
            10.0 + 3.0 * n for n in range(1, max_terminate)
        ]
        assert cp.state == State.CLOSED
        assert cp.drain_layer_events() == [LayerEvent.FINISHED]
        assert handler.layer_calls[-1] == ("finished", 10.0 + 3.0 * max_terminate)

    def test_req_sent_close_sends_terminate_request_without_tld(self) -> None:
        cp, _ = make()
        start(cp, 0.0)
        cp.close(1.0)
        assert codes(cp.drain_packets()) == [CpCode.TERMINATE_REQUEST]
        assert cp.drain_layer_events() == []
        assert cp.state == State.CLOSING
        assert cp.next_deadline() == 4.0

    def test_closing_terminate_ack_finishes(self) -> None:
        cp, _ = make()
        to_opened(cp, 0.0)
        cp.close(1.0)
        [request] = cp.drain_packets()
        cp.receive(packet(CpCode.TERMINATE_ACK, request.identifier), 1.5)
        assert cp.state == State.CLOSED
        assert cp.drain_layer_events() == [LayerEvent.DOWN, LayerEvent.FINISHED]
        assert cp.next_deadline() is None

    def test_closing_configure_request_ignored(self) -> None:
        cp, handler = make()
        to_opened(cp, 0.0)
        cp.close(1.0)
        cp.drain_packets()
        cp.receive(peer_request(), 2.0)
        assert cp.drain_packets() == []
        assert cp.state == State.CLOSING
        assert len(handler.judged) == 1  # only the one that opened the link

    def test_opened_terminate_request_acked_then_wait_one_restart_interval(self) -> None:
        cp, _ = make()
        to_opened(cp, 0.0)
        cp.receive(packet(CpCode.TERMINATE_REQUEST, 0x33, b"bye"), 20.0)
        assert cp.drain_packets() == [CpPacket(CpCode.TERMINATE_ACK, 0x33)]
        assert cp.state == State.STOPPING
        assert cp.term_reason == "bye"
        assert cp.drain_layer_events() == [LayerEvent.DOWN]
        assert cp.next_deadline() == 23.0
        cp.on_timer(22.9)
        assert cp.state == State.STOPPING
        cp.on_timer(23.0)
        assert cp.drain_packets() == []  # zrc: no Terminate-Request of our own
        assert cp.state == State.STOPPED
        assert cp.drain_layer_events() == [LayerEvent.FINISHED]

    def test_req_sent_terminate_request_acked(self) -> None:
        cp, _ = make()
        start(cp, 0.0)
        cp.receive(packet(CpCode.TERMINATE_REQUEST, 9), 1.0)
        assert cp.drain_packets() == [CpPacket(CpCode.TERMINATE_ACK, 9)]
        assert cp.state == State.REQ_SENT

    def test_opened_terminate_ack_restarts_negotiation(self) -> None:
        cp, _ = make()
        to_opened(cp, 0.0)
        cp.receive(packet(CpCode.TERMINATE_ACK, 9), 1.0)
        assert codes(cp.drain_packets()) == [CpCode.CONFIGURE_REQUEST]
        assert cp.state == State.REQ_SENT


# ------------------------------------------------------------------ Code-Reject, RXJ±


class TestCodeReject:
    def test_opened_unknown_code_code_rejected_with_copy_of_packet(self) -> None:
        cp, _ = make()
        to_opened(cp, 0.0)
        rejected = packet(0x0C, 0x21, b"\x01\x02\x03")
        cp.receive(rejected + b"\xff\xff", 1.0)  # padding beyond Length is not part of the copy
        [code_reject] = cp.drain_packets()
        assert code_reject.code == CpCode.CODE_REJECT
        assert code_reject.data == rejected
        assert cp.state == State.OPENED

    def test_code_reject_uses_a_fresh_identifier(self) -> None:
        cp, _ = make()
        request = start(cp, 0.0)
        cp.receive(packet(0x0C, request.identifier), 1.0)
        [code_reject] = cp.drain_packets()
        assert code_reject.identifier != request.identifier

    def test_code_reject_truncated_to_default_mru(self) -> None:
        cp, _ = make()
        to_opened(cp, 0.0)
        cp.receive(packet(0x0C, 1, bytes(2000)), 1.0)
        [code_reject] = cp.drain_packets()
        assert len(code_reject.emit()) == 1500
        assert code_reject.data == packet(0x0C, 1, bytes(2000))[:1496]

    @pytest.mark.parametrize("setup", [to_closed, to_stopped, start, to_ack_rcvd, to_ack_sent, to_opened])
    def test_unknown_code_code_rejected_in_every_state_past_starting(self, setup: object) -> None:
        cp, _ = make()
        assert callable(setup)
        setup(cp)
        cp.drain_packets()
        state = cp.state
        cp.receive(packet(0x0C, 1), 1.0)
        assert codes(cp.drain_packets()) == [CpCode.CODE_REJECT]
        assert cp.state == state

    @pytest.mark.parametrize("rejected_code", range(1, 8))
    def test_req_sent_code_reject_of_codes_1_to_7_is_rxj_minus(self, rejected_code: int) -> None:
        cp, handler = make()
        start(cp, 0.0)
        cp.receive(packet(CpCode.CODE_REJECT, 5, packet(rejected_code, 1)), 1.0)
        assert cp.state == State.STOPPED
        assert cp.drain_layer_events() == [LayerEvent.FINISHED]
        assert cp.next_deadline() is None

    @pytest.mark.parametrize("rejected_code", range(1, 8))
    def test_opened_code_reject_of_codes_1_to_7_terminates(self, rejected_code: int) -> None:
        cp, _ = make()
        to_opened(cp, 0.0)
        cp.receive(packet(CpCode.CODE_REJECT, 5, packet(rejected_code, 1)), 1.0)
        assert cp.state == State.STOPPING
        assert codes(cp.drain_packets()) == [CpCode.TERMINATE_REQUEST]
        assert cp.drain_layer_events() == [LayerEvent.DOWN]

    @pytest.mark.parametrize("rejected_code", [8, 9, 10, 11, 12, 0xFF])
    def test_opened_code_reject_of_other_codes_is_rxj_plus(self, rejected_code: int) -> None:
        cp, _ = make()
        to_opened(cp, 0.0)
        cp.receive(packet(CpCode.CODE_REJECT, 5, packet(rejected_code, 1)), 1.0)
        assert cp.state == State.OPENED
        assert cp.drain_packets() == []
        assert cp.drain_layer_events() == []

    def test_ack_rcvd_rxj_plus_returns_to_req_sent(self) -> None:
        cp, _ = make()
        to_ack_rcvd(cp, 0.0)
        cp.receive(packet(CpCode.CODE_REJECT, 5, packet(9, 1)), 1.0)
        assert cp.state == State.REQ_SENT

    def test_opened_protocol_rejected_is_rxj_minus(self) -> None:
        cp, _ = make()
        to_opened(cp, 0.0)
        cp.protocol_rejected(2.0)
        assert cp.state == State.STOPPING
        assert codes(cp.drain_packets()) == [CpCode.TERMINATE_REQUEST]


# -------------------------------------------------------------- inputs and extra codes


class TestInputs:
    @pytest.mark.parametrize("opened", [False, True], ids=["initial", "starting"])
    def test_before_up_packets_dropped_not_allowed_in_state(self, opened: bool) -> None:
        cp, handler = make()
        if opened:
            cp.open(0.0)
        cp.receive(peer_request(), 1.0)
        assert cp.drops[DropReason.NOT_ALLOWED_IN_STATE] == 1
        assert cp.drain_packets() == []
        assert handler.judged == []

    @pytest.mark.parametrize(
        ("data", "reason"),
        [(b"\x01\x01", DropReason.TRUNCATED), (b"\x01\x01\x00\x09", DropReason.BAD_LENGTH)],
        ids=["short", "overrun"],
    )
    def test_malformed_packet_counted(self, data: bytes, reason: DropReason) -> None:
        cp, _ = make()
        start(cp, 0.0)
        cp.receive(data, 1.0)
        assert cp.drops[reason] == 1
        assert cp.drain_packets() == []

    def test_opened_extra_code_answered_by_handler(self) -> None:
        cp, handler = make()
        handler.extra_codes[9] = Event.RXR
        to_opened(cp, 0.0)
        cp.receive(packet(9, 0x77, b"abcd"), 1.0)
        assert cp.drain_packets() == [CpPacket(10, 0x77, b"abcd")]
        assert handler.extra_seen == [CpPacket(9, 0x77, b"abcd")]

    def test_req_sent_extra_code_not_answered(self) -> None:
        cp, handler = make()
        handler.extra_codes[9] = Event.RXR
        start(cp, 0.0)
        cp.receive(packet(9, 0x77, b"abcd"), 1.0)
        assert cp.drain_packets() == []
        assert handler.extra_seen == []

    def test_send_extra_queues_packet_with_new_identifier(self) -> None:
        cp, _ = make()
        request = start(cp, 0.0)
        identifier = cp.send_extra(9, b"\x00\x00\x00\x00")
        assert identifier != request.identifier
        assert cp.drain_packets() == [CpPacket(9, identifier, b"\x00\x00\x00\x00")]
