"""A PPP session over an HDLC-like framed byte stream (RFC 1661 §3, RFC 1662), sans-I/O.

Theory of operation: bytes from the serial line go in through ``receive_bytes(data, now)``;
bytes for the line come out of ``bytes_to_send()``; user-visible happenings come out of
``next_event()``; received IPv4 datagrams out of ``take_ip_packets()``.  The session never
reads a clock: ``next_deadline()`` says when ``on_timer(now)`` is due.

The session owns the phases (Dead → Establish → Authenticate → Network → Terminate) and
hands control from LCP to PAP to IPCP the way wsproto hands a handshake over to its frame
protocol.  The demultiplexer gates protocols by phase (RFC 1661 §3.4-3.5): before LCP is
Opened only LCP passes, during authentication only LCP and PAP, and in the Network phase
any protocol we do not run is Protocol-Rejected.  Negotiated ACCM, PFC, ACFC and MRU are
pushed down into the framing when LCP comes up and taken back when it goes down.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from wipstack.accel import HdlcDeframer, hdlc_encode
from wipstack.errors import DropCounters, DropReason, LocalProtocolError, MalformedPacket
from wipstack.ppp.automaton import NEGOTIATING_STATES, State
from wipstack.ppp.config import PppConfig
from wipstack.ppp.cp import ControlProtocol, LayerEvent
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
from wipstack.ppp.ipcp import Ipcp
from wipstack.ppp.lcp import DEFAULT_ACCM, DEFAULT_MRU, Lcp, LinkParameters
from wipstack.ppp.pap import PapClient, PapServer
from wipstack.ppp.trace import format_packet
from wipstack.rand import RandomSource
from wipstack.wire.cp import CpCode, CpPacket
from wipstack.wire.ppp import PppProtocol, decode_frame, encode_frame

Buffer = bytes | bytearray | memoryview
Tracer = Callable[[str], None]

FRAMING_OVERHEAD = 8  # address, control, protocol (4) and up to a 32-bit FCS (4)
NEGOTIATING = NEGOTIATING_STATES
# RFC 1662 §7.1 / RFC 1661 §6.6: these LCP packets always go out with the default framing
LCP_DEFAULT_FRAMING_CODES = frozenset(range(1, 8))


class PppSession:
    """One end of a PPP link: client or server, as the configuration says."""

    def __init__(self, config: PppConfig, rng: RandomSource, tracer: Tracer | None = None) -> None:
        self.config = config
        self.tracer = tracer
        self.phase = Phase.DEAD
        self.lcp = Lcp(config.lcp, config.pap, config.cp, rng)
        self.ipcp = Ipcp(config.ipcp, config.ncp_cp or config.cp)
        self.pap_client = PapClient(config.pap)
        self.pap_server = PapServer(config.pap)
        self.drops = DropCounters()
        self.frames_in = 0
        self.frames_out = 0
        self.ip_packets_in = 0
        self.ip_packets_out = 0
        self.protocol_rejects_sent = 0
        self.failure: str | None = None  # why the link ended, when it ended badly
        self._deframer = HdlcDeframer(max_frame=DEFAULT_MRU + FRAMING_OVERHEAD)
        self._link: LinkParameters | None = None
        self._tx = bytearray()
        self._events: deque[PppEvent] = deque()
        self._ip_in: list[bytes] = []
        self._auth_peer_pending = False
        self._auth_self_pending = False
        #: Called with (outbound, frame) for every frame before stuffing / after deframing (pcap).
        self.frame_tap: Callable[[bool, bytes], None] | None = None

    # ------------------------------------------------------------------ control
    def open(self, now: float) -> None:
        """The line is connected and we want the link: start LCP (Open, then Up).

        Only a Dead link can be opened; on a live one this raises LocalProtocolError.  A link
        that ended (timed out, terminated) may be opened again on the same line.
        """
        if self.phase != Phase.DEAD:
            raise LocalProtocolError(f"open() while the link is in the {self.phase.value} phase")
        self.failure = None
        self._deframer.reset()
        fsm = self.lcp.fsm
        if fsm.state == State.STOPPED:
            fsm.down(now)  # RFC 1661 §4.1: Stopped needs Down then Up to start over (no "r" option)
        self._set_phase(Phase.ESTABLISH)
        fsm.open(now)
        if fsm.state in (State.INITIAL, State.STARTING):
            fsm.up(now)
        self._after_input(now)

    def close(self, now: float, reason: str = "User request") -> None:
        """Terminate the link gracefully: IPCP's Terminate-Request first, then LCP's."""
        if self.phase == Phase.DEAD:
            return
        if self.ipcp.fsm.state == State.OPENED:
            self.ipcp.fsm.close(now, reason)
            self._flush()  # RFC 1661 §3.4: the peer drops IPCP once its LCP has left Opened
        self.lcp.fsm.close(now, reason)
        self._after_input(now)
        if self.lcp.fsm.state in (State.INITIAL, State.CLOSED) and not self.is_dead:
            # LCP was not negotiating (e.g. Stopped, waiting for the peer): nothing to tell it
            self._finish(now, reason)

    def lower_down(self, now: float) -> None:
        """The line itself is gone (carrier lost, fd closed): no more packets either way."""
        terminating = self.lcp.fsm.state in (State.CLOSING, State.STOPPING)
        self._deframer.reset()  # half a frame cut by the loss must not prefix the next link's
        self.lcp.fsm.down(now)
        self._after_input(now)
        if self.phase != Phase.DEAD:
            # a Terminate exchange was under way: its reason says why the link ended
            self._finish(now, self.lcp.fsm.term_reason if terminating else "lower layer down")

    @property
    def is_dead(self) -> bool:
        """True once the link has ended (or never started)."""
        return self.phase == Phase.DEAD

    @property
    def link(self) -> LinkParameters | None:
        """The LCP-negotiated parameters while LCP is Opened."""
        return self._link

    # ------------------------------------------------------------------- inputs
    def receive_bytes(self, data: Buffer, now: float) -> None:
        """Bytes from the serial line."""
        if self._link is None and len(data) > 1:
            # Until LCP opens, each frame may change the receive ACCM for the next one (the
            # peer's Configure-Ack and its first PAP request often arrive in one read), so
            # deframe one flag-delimited piece at a time.
            raw = bytes(data)
            start = 0
            while start < len(raw):
                end = raw.find(b"\x7e", start + 1)
                end = len(raw) if end < 0 else end + 1
                self._receive_chunk(raw[start:end], now)
                start = end
            return
        self._receive_chunk(data, now)

    def _receive_chunk(self, data: Buffer, now: float) -> None:
        for frame in self._deframer.feed(data):
            self.frames_in += 1
            if self.frame_tap is not None:
                self.frame_tap(False, bytes(frame))
            if self._receive_frame(frame, now):
                # settle phases before the next frame: it may depend on them (PAP Ack, then IPCP)
                self._after_input(now)

    def send_ip(self, packet: Buffer, now: float) -> bool:
        """Queue an IPv4 datagram; False (and counted) when IPCP is not Opened or it is too big."""
        if self.ipcp.fsm.state != State.OPENED or self._link is None:
            self.drops.count(DropReason.NOT_ALLOWED_IN_STATE)
            return False
        if len(packet) > self._link.peer_mru:
            self.drops.count(DropReason.FRAME_TOO_LONG)
            return False
        self.ip_packets_out += 1
        self._send_frame(PppProtocol.IPV4, packet)
        return True

    # ------------------------------------------------------------------ outputs
    def bytes_to_send(self) -> bytes:
        """Everything queued for the serial line."""
        out = bytes(self._tx)
        self._tx.clear()
        return out

    def next_event(self) -> PppEvent | None:
        """The next event, or None."""
        return self._events.popleft() if self._events else None

    def take_ip_packets(self) -> list[bytes]:
        """IPv4 datagrams received since the last call."""
        out, self._ip_in = self._ip_in, []
        return out

    def next_deadline(self) -> float | None:
        """The earliest moment ``on_timer`` must run, or None."""
        deadlines = [
            self.lcp.next_deadline(),
            self.ipcp.fsm.next_deadline(),
            self.pap_client.next_deadline(),
            self.pap_server.next_deadline(),
        ]
        present = [d for d in deadlines if d is not None]
        return min(present) if present else None

    def on_timer(self, now: float) -> None:
        """Run every timer that is due."""
        self.lcp.on_timer(now)
        self.ipcp.fsm.on_timer(now)
        self.pap_client.on_timer(now)
        self.pap_server.on_timer(now)
        self._after_input(now)

    def counters(self) -> dict[str, int]:
        """Framing and session counters, for logs and tests."""
        counts = {f"hdlc_{k}": v for k, v in self._deframer.counters().items()}
        counts.update(
            frames_in=self.frames_in,
            frames_out=self.frames_out,
            ip_packets_in=self.ip_packets_in,
            ip_packets_out=self.ip_packets_out,
            protocol_rejects_sent=self.protocol_rejects_sent,
        )
        for source in (
            self.drops,
            self.lcp.fsm.drops,
            self.ipcp.fsm.drops,
            self.pap_client.drops,
            self.pap_server.drops,
        ):
            for reason, n in source.items():
                key = f"drop_{reason.name.lower()}"
                counts[key] = counts.get(key, 0) + n
        return counts

    # ----------------------------------------------------------------- demux
    def _receive_frame(self, frame: Buffer, now: float) -> bool:
        """Demultiplex one frame; True when a control protocol may have changed state."""
        try:
            protocol, information = decode_frame(frame)
        except MalformedPacket as exc:
            self.drops.count(exc.reason)
            return False
        if protocol == PppProtocol.IPV4 and self.phase == Phase.NETWORK:
            if self.ipcp.fsm.state == State.OPENED:
                self.ip_packets_in += 1
                self._ip_in.append(bytes(information))
            else:
                self.drops.count(DropReason.NOT_ALLOWED_IN_STATE)  # RFC 1661 §3.5: no IP before IPCP
            return False
        if self.tracer is not None and (protocol >= 0x8000 or protocol == PppProtocol.PAP):
            self.tracer(f"rcvd {format_packet(protocol, information)}")
        if protocol == PppProtocol.LCP:
            self.lcp.fsm.receive(information, now)
            return True
        if self.lcp.fsm.state != State.OPENED:
            self.drops.count(DropReason.NOT_ALLOWED_IN_PHASE)  # RFC 1661 §3.4: only LCP while establishing
            return False
        if protocol == PppProtocol.PAP and self.phase in (Phase.AUTHENTICATE, Phase.NETWORK):
            if len(information) and information[0] == 1:  # Authenticate-Request: we authenticate the peer
                self.pap_server.receive(information, now)
            else:
                self.pap_client.receive(information, now)
            return True
        if self.phase != Phase.NETWORK:
            self.drops.count(DropReason.NOT_ALLOWED_IN_PHASE)  # RFC 1661 §3.5: silently discarded
            return False
        if protocol == PppProtocol.IPCP:
            self.ipcp.fsm.receive(information, now)
            return True
        self._protocol_reject(protocol, information)
        return True

    def _protocol_reject(self, protocol: int, information: Buffer) -> None:
        # RFC 1661 §5.7: the rejected information is truncated to fit the peer's MRU
        assert self._link is not None
        data = protocol.to_bytes(2, "big") + bytes(information[: self._link.peer_mru - 6])
        self.protocol_rejects_sent += 1
        self.drops.count(DropReason.UNKNOWN_PROTOCOL)
        self.lcp.fsm.send_extra(CpCode.PROTOCOL_REJECT, data)

    # --------------------------------------------------------------- sequencing
    def _after_input(self, now: float) -> None:
        """React to everything the machines did, then send what they queued."""
        # answers to the input go out first, then what its consequences produce, so that a
        # PAP Nak precedes the Terminate-Request it causes and a PAP Ack precedes IPCP
        self._flush()
        for _ in range(8):  # each pass may trigger the next layer; the chain is short
            changed = self._process_lcp(now) | self._process_auth(now) | self._process_ipcp(now)
            self._flush()
            if not changed:
                break

    def _process_lcp(self, now: float) -> bool:
        lcp = self.lcp
        changed = False
        if lcp.fatal is not None:
            reason, lcp.fatal = lcp.fatal, None
            self.failure = reason
            lcp.fsm.close(now, reason)
            changed = True
        if lcp.dead_reason is not None:
            reason, lcp.dead_reason = lcp.dead_reason, None
            self.failure = reason
            self._events.append(LinkDead(reason))
            lcp.fsm.close(now, reason)
            changed = True
        if lcp.rejected_protocols:
            rejected, lcp.rejected_protocols = lcp.rejected_protocols, []
            if lcp.fsm.state == State.OPENED and PppProtocol.IPCP in rejected:
                self.ipcp.fsm.protocol_rejected(now)  # RFC 1661 §5.7: RXJ- for that NCP
                changed = True
        if lcp.fsm.state in NEGOTIATING and self.phase in (Phase.DEAD, Phase.TERMINATE):
            self._set_phase(Phase.ESTABLISH)  # a passive/stopped LCP was restarted by the peer
        for event in lcp.fsm.drain_layer_events():
            changed = True
            if event == LayerEvent.UP:
                self._lcp_up(now)
            elif event == LayerEvent.DOWN:
                self._lcp_down(now)
            elif event == LayerEvent.FINISHED:
                self._finish(now, lcp.fsm.term_reason or "LCP finished")
        return changed

    def _lcp_up(self, now: float) -> None:
        link = self.lcp.link
        assert link is not None
        self._link = link
        self._deframer.rx_accm = link.rx_accm
        self._deframer.max_frame = max(link.mru, DEFAULT_MRU) + FRAMING_OVERHEAD
        self.ipcp.fsm.peer_mru = link.peer_mru
        self._events.append(LinkUp(link))
        self._auth_peer_pending = link.authenticate_peer == PppProtocol.PAP
        self._auth_self_pending = link.authenticate_self == PppProtocol.PAP
        if self._auth_peer_pending or self._auth_self_pending:
            self._set_phase(Phase.AUTHENTICATE)
            if self._auth_peer_pending:
                self.pap_server.start(now)
            if self._auth_self_pending:
                self.pap_client.start(now)
        else:
            self._network_phase(now)

    def _lcp_down(self, now: float) -> None:
        self._link = None
        self._deframer.rx_accm = DEFAULT_ACCM
        self._deframer.max_frame = DEFAULT_MRU + FRAMING_OVERHEAD
        self.ipcp.fsm.peer_mru = DEFAULT_MRU
        self.pap_client.stop()
        self.pap_server.stop()
        self.ipcp.fsm.down(now)
        self._events.append(LinkDown())
        if self.phase != Phase.DEAD:
            # a peer's new Configure-Request renegotiates (RFC 1661 §3.7 note): straight back
            # to Establish; anything else is the way out
            renegotiating = self.lcp.fsm.state in NEGOTIATING
            self._set_phase(Phase.ESTABLISH if renegotiating else Phase.TERMINATE)

    def _finish(self, now: float, reason: str) -> None:
        self._set_phase(Phase.DEAD)
        self._events.append(LinkTerminated(self.failure or reason))

    def _process_auth(self, now: float) -> bool:
        if self.phase != Phase.AUTHENTICATE:
            return False
        changed = False
        for machine, peer in ((self.pap_server, True), (self.pap_client, False)):
            pending = self._auth_peer_pending if peer else self._auth_self_pending
            if not pending:
                continue
            if machine.failed:
                changed = True
                self._auth_peer_pending = self._auth_self_pending = False
                self._events.append(AuthFailed(peer, machine.reason))
                self.failure = machine.reason
                reason = "Authentication failed" if peer else "Failed to authenticate ourselves to peer"
                self.lcp.fsm.close(now, reason)
                return True
            if machine.succeeded:
                changed = True
                if peer:
                    self._auth_peer_pending = False
                    self._events.append(AuthSucceeded(True, self.pap_server.peer_id))
                else:
                    self._auth_self_pending = False
                    self._events.append(AuthSucceeded(False, None, self.pap_client.reason))
        if not (self._auth_peer_pending or self._auth_self_pending):
            self._network_phase(now)
            changed = True
        return changed

    def _network_phase(self, now: float) -> None:
        self._set_phase(Phase.NETWORK)
        self.ipcp.fsm.open(now)
        self.ipcp.fsm.up(now)

    def _process_ipcp(self, now: float) -> bool:
        ipcp = self.ipcp
        changed = False
        for event in ipcp.fsm.drain_layer_events():
            changed = True
            if event == LayerEvent.UP and ipcp.fatal is None:
                assert ipcp.result is not None
                self._events.append(IpcpUp(ipcp.result))
            elif event == LayerEvent.DOWN and ipcp.fatal is None:
                self._events.append(IpcpDown())
            elif event == LayerEvent.FINISHED and self.lcp.fsm.state == State.OPENED:
                # pppd: with no network protocol left the link has no purpose
                self.lcp.fsm.close(now, "No network protocols running")
        if ipcp.fatal is not None:
            reason, ipcp.fatal = ipcp.fatal, None
            self.failure = reason
            ipcp.fsm.close(now, reason)
            ipcp.fsm.drain_layer_events()  # an IPCP that never really came up goes down unseen
            changed = True
        return changed

    def _set_phase(self, phase: Phase) -> None:
        if phase != self.phase:
            self.phase = phase
            self._events.append(PhaseChanged(phase))

    # ------------------------------------------------------------------ output
    def _flush(self) -> None:
        # protocol order: a peer drops IPCP that arrives before the PAP answer (RFC 1661 §3.5)
        for packet in self.lcp.fsm.drain_packets():
            self._send_control(self.lcp.fsm, packet)
        for machine in (self.pap_client, self.pap_server):
            for packet in machine.drain_packets():
                self._send_control_packet(PppProtocol.PAP, packet, default_framing=False)
        for packet in self.ipcp.fsm.drain_packets():
            self._send_control(self.ipcp.fsm, packet)

    def _send_control(self, fsm: ControlProtocol, packet: CpPacket) -> None:
        default = fsm.protocol == PppProtocol.LCP and packet.code in LCP_DEFAULT_FRAMING_CODES
        self._send_control_packet(fsm.protocol, packet, default_framing=default)

    def _send_control_packet(self, protocol: int, packet: CpPacket, *, default_framing: bool) -> None:
        information = packet.emit()
        if self.tracer is not None:
            self.tracer(f"sent {format_packet(protocol, information)}")
        self._send_frame(protocol, information, default_framing=default_framing)

    def _send_frame(self, protocol: int, information: Buffer, *, default_framing: bool = False) -> None:
        link = self._link
        if link is None or default_framing:
            frame = encode_frame(protocol, information)
            self._tx += hdlc_encode(frame, DEFAULT_ACCM)
        else:
            # RFC 1661 §6.6: Address and Control are never compressed in any LCP packet
            acfc = link.tx_acfc and protocol != PppProtocol.LCP
            frame = encode_frame(protocol, information, pfc=link.tx_pfc, acfc=acfc)
            self._tx += hdlc_encode(frame, link.tx_accm)
        self.frames_out += 1
        if self.frame_tap is not None:
            self.frame_tap(True, frame)
