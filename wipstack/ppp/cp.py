"""The control-protocol engine: RFC 1661 §4 for any protocol that plugs in an OptionHandler.

Theory of operation (pppd's ``fsm.c`` as a sans-I/O class): inbound packets and
administrative calls are classified into automaton events, the transition table in
``wipstack.ppp.automaton`` names the actions, and this class runs them.  It owns the
Identifier bookkeeping, the restart counter and timer, Max-Configure / Max-Terminate /
Max-Failure and the outbound packet queue.  It never reads a clock: every input carries
``now`` and ``next_deadline()`` says when ``on_timer`` must be called.

What an option means is the handler's business (``OptionHandler``); what the layer events
mean is the session's (``drain_layer_events``).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from wipstack.errors import DropCounters, DropReason, MalformedPacket
from wipstack.ppp.automaton import NEGOTIATING_STATES, TIMER_STATES, TRANSITIONS, Action, Event, State
from wipstack.ppp.config import CpConfig
from wipstack.wire.cp import CpCode, CpPacket, RawOption, emit_options, parse_options

# RFC 1661 §5.6: a Code-Reject of one of these codes means the peer cannot run the protocol
CATASTROPHIC_CODES = frozenset(range(1, 8))


class LayerEvent(enum.Enum):
    """The "this layer" actions, reported to the session."""

    UP = "tlu"
    DOWN = "tld"
    STARTED = "tls"
    FINISHED = "tlf"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The judgement of a peer's Configure-Request: Ack, Nak or Reject with these options."""

    code: CpCode
    options: tuple[RawOption, ...] = ()


class OptionHandler(Protocol):
    """What a control protocol plugs into the engine (pppd's ``fsm_callbacks``)."""

    def reset(self) -> None:
        """Start a fresh negotiation: our request goes back to what we want (resetci)."""

    def build_request(self) -> list[RawOption]:
        """The options of our next Configure-Request (addci)."""

    def request_acked(self, options: list[RawOption]) -> None:
        """Our request was acked exactly as sent: these options are now ours (ackci)."""

    def apply_nak(self, options: list[RawOption], treat_as_reject: bool) -> bool:
        """Adapt our request to a Nak; False if the Nak is invalid and must be ignored (nakci)."""

    def apply_reject(self, options: list[RawOption]) -> bool:
        """Drop rejected options; False if the Reject is invalid, e.g. options we never sent (rejci)."""

    def judge_request(self, options: list[RawOption], reject_if_disagree: bool) -> Verdict:
        """Judge the peer's request (reqci); on Ack remember the peer's options."""

    def layer_up(self, now: float) -> None:
        """This-Layer-Up."""

    def layer_down(self, now: float) -> None:
        """This-Layer-Down."""

    def layer_finished(self, now: float) -> None:
        """This-Layer-Finished."""

    def extra_event(self, packet: CpPacket) -> Event | None:
        """Classify a code the engine does not know (LCP: Echo, Discard, Protocol-Reject).

        None means "unknown code" (Code-Reject); MalformedPacket means "discard and count".
        """

    def extra_received(self, packet: CpPacket, now: float) -> list[CpPacket]:
        """Handle such a packet in the Opened state (ser and friends); returns replies."""


class ControlProtocol:
    """One instance of the RFC 1661 automaton for protocol number ``protocol``."""

    def __init__(self, name: str, protocol: int, handler: OptionHandler, config: CpConfig) -> None:
        self.name = name
        self.protocol = protocol
        self.handler = handler
        self.config = config
        self.state = State.INITIAL
        self.drops = DropCounters()
        self.illegal_events = 0  # events the RFC table marks "-" for the current state
        self.peer_mru = 1500  # set by the session from LCP; bounds what we send back (Code-Reject)
        self.term_reason = ""  # the reason we send in (or received in) a Terminate-Request
        self._restart_count = 0
        self._deadline: float | None = None
        self._next_id = 0
        self._request_id: int | None = None  # Identifier of our outstanding Configure-Request
        self._request_answered = True
        self._request_data = b""
        self._naks_sent = 0
        self._naks_received = 0
        self._peer_packet: CpPacket | None = None  # the packet that caused the current event
        self._verdict: Verdict | None = None
        self._output: list[CpPacket] = []
        self._layer_events: list[LayerEvent] = []

    # ----------------------------------------------------------- administrative events
    def up(self, now: float) -> None:
        """The lower layer is ready to carry packets."""
        if self.state == State.STARTING and self.config.silent:
            # pppd "silent": wait for the peer's Configure-Request instead of sending ours
            self._set_state(State.STOPPED)
            return
        self._run(Event.UP, now)

    def down(self, now: float) -> None:
        """The lower layer is no longer available."""
        self._run(Event.DOWN, now)

    def open(self, now: float) -> None:
        """The administrator allows the link to be opened."""
        self._run(Event.OPEN, now)

    def close(self, now: float, reason: str = "User request") -> None:
        """The administrator wants the link closed; ``reason`` goes into the Terminate-Request."""
        self.term_reason = reason
        self._run(Event.CLOSE, now)

    def protocol_rejected(self, now: float) -> None:
        """The peer Protocol-Rejected this protocol (RFC 1661 §5.7): RXJ-."""
        self._run(Event.RXJ_MINUS, now)

    # ------------------------------------------------------------------------ timers
    def next_deadline(self) -> float | None:
        """When ``on_timer`` must next be called, or None."""
        return self._deadline

    def on_timer(self, now: float) -> None:
        """Fire the restart timer if it expired: TO+ while the counter lasts, else TO-."""
        if self._deadline is None or now < self._deadline:
            return
        self._deadline = None
        self._run(Event.TO_PLUS if self._restart_count > 0 else Event.TO_MINUS, now)

    # ----------------------------------------------------------------------- outputs
    def drain_packets(self) -> list[CpPacket]:
        """Packets to send, oldest first."""
        out, self._output = self._output, []
        return out

    def drain_layer_events(self) -> list[LayerEvent]:
        """tlu/tld/tls/tlf that happened since the last call."""
        out, self._layer_events = self._layer_events, []
        return out

    def send_extra(self, code: int, data: bytes) -> int:
        """Queue a packet of a handler-specific code (e.g. Echo-Request); returns its Identifier."""
        identifier = self._new_id()
        self._output.append(CpPacket(code, identifier, data))
        return identifier

    # ------------------------------------------------------------------------ inputs
    def receive(self, data: bytes | memoryview, now: float) -> None:
        """Handle one inbound packet of this protocol (the PPP Information field)."""
        try:
            packet = CpPacket.parse(data)
        except MalformedPacket as exc:
            self.drops.count(exc.reason)
            return
        if self.state in (State.INITIAL, State.STARTING):
            # RFC 1661 §4.1: the lower layer is not up for this automaton; nothing can arrive
            self.drops.count(DropReason.NOT_ALLOWED_IN_STATE)
            return
        event = self._classify(packet)
        if event is None:
            return
        self._peer_packet = packet
        try:
            self._run(event, now)
        finally:
            self._peer_packet = None
            self._verdict = None

    def _classify(self, packet: CpPacket) -> Event | None:
        code = packet.code
        if code == CpCode.CONFIGURE_REQUEST:
            return self._classify_request(packet)
        if code in (CpCode.CONFIGURE_ACK, CpCode.CONFIGURE_NAK, CpCode.CONFIGURE_REJECT):
            return self._classify_response(packet)
        if code == CpCode.TERMINATE_REQUEST:
            self.term_reason = _printable(packet.data)
            return Event.RTR
        if code == CpCode.TERMINATE_ACK:
            return Event.RTA
        if code == CpCode.CODE_REJECT:
            rejected = packet.data[0] if packet.data else 0
            return Event.RXJ_MINUS if rejected in CATASTROPHIC_CODES else Event.RXJ_PLUS
        try:
            event = self.handler.extra_event(packet)
        except MalformedPacket as exc:
            self.drops.count(exc.reason)  # a code the handler knows, but a packet it must discard
            return None
        return Event.RUC if event is None else event

    def _classify_request(self, packet: CpPacket) -> Event | None:
        try:
            options = parse_options(packet.data)
        except MalformedPacket as exc:
            self.drops.count(exc.reason)  # RFC 1661 §5: a malformed packet is silently discarded
            return None
        if self.state in (State.CLOSED, State.CLOSING, State.STOPPING):
            return Event.RCR_PLUS  # answered with Terminate-Ack or ignored; no need to judge
        reject_if_disagree = self._naks_sent >= self.config.max_failure
        self._verdict = self.handler.judge_request(options, reject_if_disagree)
        return Event.RCR_PLUS if self._verdict.code == CpCode.CONFIGURE_ACK else Event.RCR_MINUS

    def _classify_response(self, packet: CpPacket) -> Event | None:
        if packet.identifier != self._request_id or self._request_answered:
            self.drops.count(DropReason.UNEXPECTED_ID)
            return None
        if self.state not in (State.REQ_SENT, State.ACK_RCVD, State.ACK_SENT, State.OPENED):
            self._request_answered = True
            return Event.RCA  # Closed/Stopped answer with Terminate-Ack; Closing/Stopping ignore
        try:
            options = parse_options(packet.data)
        except MalformedPacket as exc:
            self.drops.count(exc.reason)
            return None
        if packet.code == CpCode.CONFIGURE_ACK:
            if packet.data != self._request_data:
                # RFC 1661 §5.2: an Ack must list exactly the options we sent, in order
                self.drops.count(DropReason.BAD_OPTION)
                return None
            self._request_answered = True
            self.handler.request_acked(options)
            return Event.RCA
        if packet.code == CpCode.CONFIGURE_NAK:
            self._naks_received += 1
            valid = self.handler.apply_nak(options, self._naks_received > self.config.max_failure)
        else:
            valid = self.handler.apply_reject(options)
        if not valid:
            self.drops.count(DropReason.BAD_OPTION)
            return None
        self._request_answered = True
        return Event.RCN

    # ----------------------------------------------------------------------- engine
    def _run(self, event: Event, now: float) -> None:
        transition = TRANSITIONS.get((self.state, event))
        if transition is None:
            self.illegal_events += 1  # the RFC's "-": cannot happen in this state; ignore it
            return
        actions, next_state = transition
        if event == Event.TO_MINUS and self.config.passive and self.state in NEGOTIATING_STATES:
            # RFC 1661 §4.1 note p (Passive): unanswered Configure-Requests leave us waiting for
            # the peer; an unanswered Terminate-Request (Stopping) still finishes the layer
            actions = tuple(a for a in actions if a != Action.TLF)
        for action in actions:
            self._do(action, actions, now)
        self._set_state(next_state, now)

    def _set_state(self, state: State, now: float | None = None) -> None:
        self.state = state
        if state not in TIMER_STATES:
            self._deadline = None

    def _do(self, action: Action, actions: Sequence[Action], now: float) -> None:
        if action == Action.TLU:
            self._naks_received = 0
            self.handler.layer_up(now)
            self._layer_events.append(LayerEvent.UP)
        elif action == Action.TLD:
            self.handler.layer_down(now)
            self._layer_events.append(LayerEvent.DOWN)
        elif action == Action.TLS:
            self._layer_events.append(LayerEvent.STARTED)
        elif action == Action.TLF:
            self.handler.layer_finished(now)
            self._layer_events.append(LayerEvent.FINISHED)
        elif action == Action.IRC:
            terminating = Action.STR in actions
            self._restart_count = self.config.max_terminate if terminating else self.config.max_configure
        elif action == Action.ZRC:
            self._restart_count = 0
            self._deadline = now + self.config.restart_interval
        elif action == Action.SCR:
            self._send_configure_request(now)
        elif action == Action.SCA:
            assert self._peer_packet is not None
            self._naks_sent = 0
            # RFC 1661 §5.2: the Ack echoes the request's Identifier and options verbatim
            self._output.append(CpPacket(CpCode.CONFIGURE_ACK, self._peer_packet.identifier, self._peer_packet.data))
        elif action == Action.SCN:
            assert self._peer_packet is not None and self._verdict is not None
            if self._verdict.code == CpCode.CONFIGURE_NAK:
                self._naks_sent += 1
            self._output.append(
                CpPacket(self._verdict.code, self._peer_packet.identifier, emit_options(self._verdict.options))
            )
        elif action == Action.STR:
            self._restart_count -= 1
            self._deadline = now + self.config.restart_interval
            reason = self.term_reason.encode("utf-8", "replace")
            self._output.append(CpPacket(CpCode.TERMINATE_REQUEST, self._new_id(), reason))
        elif action == Action.STA:
            identifier = self._peer_packet.identifier if self._peer_packet else self._new_id()
            self._output.append(CpPacket(CpCode.TERMINATE_ACK, identifier))
        elif action == Action.SCJ:
            assert self._peer_packet is not None
            # RFC 1661 §5.6: the rejected packet is truncated to fit the peer's MRU
            rejected = self._peer_packet.emit()[: max(0, self.peer_mru - 4)]
            self._output.append(CpPacket(CpCode.CODE_REJECT, self._new_id(), rejected))
        elif action == Action.SER:
            assert self._peer_packet is not None
            self._output.extend(self.handler.extra_received(self._peer_packet, now))

    def _send_configure_request(self, now: float) -> None:
        retransmission = self.state in (State.REQ_SENT, State.ACK_RCVD, State.ACK_SENT) and (not self._request_answered)
        if not retransmission:
            if self.state not in (State.REQ_SENT, State.ACK_RCVD, State.ACK_SENT):
                # a fresh negotiation (pppd resetci): start again from what we want
                self.handler.reset()
                self._naks_sent = 0
                self._naks_received = 0
            self._request_data = emit_options(self.handler.build_request())
            self._request_id = self._new_id()
        # RFC 1661 §5.1: a retransmission of unchanged options may keep its Identifier
        self._request_answered = False
        self._restart_count -= 1
        self._deadline = now + self.config.restart_interval
        assert self._request_id is not None
        self._output.append(CpPacket(CpCode.CONFIGURE_REQUEST, self._request_id, self._request_data))

    def _new_id(self) -> int:
        self._next_id = (self._next_id + 1) & 0xFF
        return self._next_id


def _printable(data: bytes) -> str:
    return data.decode("utf-8", "replace")
