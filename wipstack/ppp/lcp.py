"""LCP (RFC 1661 §5-6, RFC 1662 §7): link options, Magic-Number, Echo keep-alive.

``Lcp`` is the option handler plugged into a ``ControlProtocol`` (``self.fsm``).  It keeps
pppd's four option sets: ``want`` (what we ask for at the start), ``request`` (what we are
asking for now, after Naks and Rejects), ``got`` (what the peer acked) and ``his`` (what we
acked of the peer's request).  When the layer comes up it derives ``LinkParameters`` for the
framing; the session pushes them into the HDLC framer.

Problems that end the link (the peer will not authenticate, loopback) are reported through
``fatal``; the session reads it after every input and closes LCP with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from wipstack.errors import DropReason, MalformedPacket
from wipstack.ppp.automaton import Event, State
from wipstack.ppp.config import CpConfig, LcpConfig, PapConfig
from wipstack.ppp.cp import ControlProtocol, Verdict
from wipstack.rand import RandomSource
from wipstack.wire.cp import CpCode, CpPacket, RawOption
from wipstack.wire.lcp import (
    LCP_OPTION_VALUES,
    MAGIC_BODY,
    PROTOCOL_REJECT_BODY,
    LcpOptionType,
    decode_lcp_option,
    lcp_option,
)
from wipstack.wire.ppp import PppProtocol

DEFAULT_MRU = 1500
DEFAULT_ACCM = 0xFFFFFFFF
MAX_MRU = 16384  # we never ask for (or agree to receive) larger frames than this


@dataclass(frozen=True, slots=True)
class LcpOptions:
    """One of the four LCP option sets; None/False means "not negotiated"."""

    mru: int | None = None
    accm: int | None = None
    auth_protocol: int | None = None
    magic: int | None = None
    pfc: bool = False
    acfc: bool = False


@dataclass(frozen=True, slots=True)
class LinkParameters:
    """What LCP negotiated, in the terms the framing and the upper layers need."""

    mru: int  # largest Information field we receive
    peer_mru: int  # largest Information field we may send
    rx_accm: int  # control characters the peer escapes for us (we may drop raw ones)
    tx_accm: int  # control characters we must escape
    tx_pfc: bool  # we may compress the Protocol field
    tx_acfc: bool  # we may omit Address and Control
    local_magic: int
    peer_magic: int
    authenticate_peer: int | None  # protocol the peer must authenticate with to us
    authenticate_self: int | None  # protocol we must authenticate with to the peer


class Lcp:
    """The LCP option handler and keep-alive; ``fsm`` is its RFC 1661 automaton."""

    def __init__(self, config: LcpConfig, pap: PapConfig, cp_config: CpConfig, rng: RandomSource) -> None:
        self.config = config
        self.pap = pap
        self.rng = rng
        self.want = LcpOptions(
            mru=config.mru if config.mru != DEFAULT_MRU else None,
            accm=config.accm if config.request_accm else None,
            auth_protocol=PppProtocol.PAP if pap.require else None,
            magic=0 if config.request_magic else None,  # a fresh value is drawn at each reset
            pfc=config.request_pfc,
            acfc=config.request_acfc,
        )
        self.request = self.want
        self.got = LcpOptions()
        self.his = LcpOptions()
        self.link: LinkParameters | None = None
        self.fatal: str | None = None
        self.loopback_collisions = 0
        self.echo_replies = 0
        self.echo_requests_sent = 0
        self.discards = 0
        self.dead_reason: str | None = None
        self.rejected_protocols: list[int] = []
        self._echo_outstanding = 0
        self._echo_deadline: float | None = None
        self.fsm = ControlProtocol("LCP", PppProtocol.LCP, self, cp_config)

    # ------------------------------------------------------------- OptionHandler
    def reset(self) -> None:
        """Start again from ``want`` with a fresh Magic-Number."""
        self.request = self.want
        if self.want.magic is not None:
            self.request = replace(self.request, magic=self._new_magic())
        self.got = LcpOptions()

    def build_request(self) -> list[RawOption]:
        """Our Configure-Request, options in type order as pppd sends them."""
        req = self.request
        options = []
        if req.mru is not None:
            options.append(lcp_option(LcpOptionType.MRU, req.mru))
        if req.accm is not None:
            options.append(lcp_option(LcpOptionType.ACCM, req.accm))
        if req.auth_protocol is not None:
            options.append(lcp_option(LcpOptionType.AUTH_PROTOCOL, {"protocol": req.auth_protocol, "data": b""}))
        if req.magic is not None:
            options.append(lcp_option(LcpOptionType.MAGIC_NUMBER, req.magic))
        if req.pfc:
            options.append(lcp_option(LcpOptionType.PFC))
        if req.acfc:
            options.append(lcp_option(LcpOptionType.ACFC))
        return options

    def request_acked(self, options: list[RawOption]) -> None:
        """The peer acked our request: it is what we got."""
        self.got = self.request

    def apply_nak(self, options: list[RawOption], treat_as_reject: bool) -> bool:
        """RFC 1661 §5.3: adopt the values the peer suggests where we can live with them."""
        req = self.request
        for option in options:
            if option.type not in LCP_OPTION_VALUES:
                continue  # RFC 1661 §5.3: a hint about an option we do not know is ignored
            try:
                value = decode_lcp_option(option)
            except MalformedPacket:
                return False
            kind = option.type
            if kind == LcpOptionType.MRU:
                if treat_as_reject:
                    req = replace(req, mru=None)
                elif value >= self.config.min_peer_mru:
                    req = replace(req, mru=min(value, MAX_MRU))
            elif kind == LcpOptionType.ACCM:
                if req.accm is not None:  # the peer needs more characters escaped: take the union
                    req = replace(req, accm=None if treat_as_reject else req.accm | value)
            elif kind == LcpOptionType.MAGIC_NUMBER:
                if req.magic is not None:
                    # RFC 1661 §6.4: a Nak'd Magic-Number may mean a looped-back link
                    self._magic_collision()
                    req = replace(req, magic=None if treat_as_reject else self._new_magic())
            elif kind == LcpOptionType.AUTH_PROTOCOL:
                if req.auth_protocol is not None and value.protocol != PppProtocol.PAP:
                    self.fatal = "peer refused to authenticate with PAP"
            elif kind in (LcpOptionType.PFC, LcpOptionType.ACFC):
                return False  # flag options have no value to Nak (RFC 1661 §6.5/§6.6)
            # options we did not ask for are suggestions we are free to ignore
        self.request = req
        return True

    def apply_reject(self, options: list[RawOption]) -> bool:
        """RFC 1661 §5.4: drop rejected options; they must be ones we sent, unchanged."""
        sent = {(o.type, o.data) for o in self.build_request()}
        if any((o.type, o.data) not in sent for o in options):
            return False
        req = self.request
        for option in options:
            kind = option.type
            if kind == LcpOptionType.MRU:
                req = replace(req, mru=None)
            elif kind == LcpOptionType.ACCM:
                req = replace(req, accm=None)
            elif kind == LcpOptionType.AUTH_PROTOCOL:
                self.fatal = "peer refused to authenticate"
                req = replace(req, auth_protocol=None)
            elif kind == LcpOptionType.MAGIC_NUMBER:
                req = replace(req, magic=None)
            elif kind == LcpOptionType.PFC:
                req = replace(req, pfc=False)
            elif kind == LcpOptionType.ACFC:
                req = replace(req, acfc=False)
        self.request = req
        return True

    def judge_request(self, options: list[RawOption], reject_if_disagree: bool) -> Verdict:
        """Ack, Nak or Reject the peer's Configure-Request (RFC 1661 §5.1-5.4)."""
        naks: list[RawOption] = []
        rejects: list[RawOption] = []
        his = LcpOptions()
        seen: set[int] = set()
        for option in options:
            kind = option.type
            if kind in seen:
                rejects.append(option)  # an option twice in one request is not negotiable
                continue
            seen.add(kind)
            try:
                value = decode_lcp_option(option)
            except MalformedPacket:
                rejects.append(option)  # unknown type or wrong length
                continue
            suggestion: RawOption | None = None
            if kind == LcpOptionType.MRU:
                if value < self.config.min_peer_mru:
                    suggestion = lcp_option(LcpOptionType.MRU, self.config.min_peer_mru)
                else:
                    his = replace(his, mru=value)
            elif kind == LcpOptionType.ACCM:
                his = replace(his, accm=value)
            elif kind == LcpOptionType.AUTH_PROTOCOL:
                if self.pap.username is None:
                    rejects.append(option)  # we have nothing to authenticate ourselves with
                    continue
                if value.protocol != PppProtocol.PAP or value.data:
                    suggestion = lcp_option(LcpOptionType.AUTH_PROTOCOL, {"protocol": PppProtocol.PAP, "data": b""})
                else:
                    his = replace(his, auth_protocol=PppProtocol.PAP)
            elif kind == LcpOptionType.MAGIC_NUMBER:
                if value == 0 or (self.request.magic is not None and value == self.request.magic):
                    # RFC 1661 §6.4: the same magic as ours (or zero) suggests a looped-back link
                    if value != 0:
                        self._magic_collision()
                    suggestion = lcp_option(LcpOptionType.MAGIC_NUMBER, self._new_magic())
                else:
                    his = replace(his, magic=value)
            elif kind == LcpOptionType.PFC and self.config.allow_pfc:
                his = replace(his, pfc=True)
            elif kind == LcpOptionType.ACFC and self.config.allow_acfc:
                his = replace(his, acfc=True)
            else:
                rejects.append(option)  # Quality-Protocol, Callback, MRRU, ... are not supported
                continue
            if suggestion is not None and reject_if_disagree:
                rejects.append(option)  # RFC 1661 §4.6 Max-Failure: Naks have become Rejects
            elif suggestion is not None:
                naks.append(suggestion)
        if rejects:
            return Verdict(CpCode.CONFIGURE_REJECT, tuple(rejects))
        if naks:
            return Verdict(CpCode.CONFIGURE_NAK, tuple(naks))
        self.his = his
        return Verdict(CpCode.CONFIGURE_ACK, tuple(options))

    def layer_up(self, now: float) -> None:
        """Derive the link parameters and start the keep-alive."""
        got, his = self.got, self.his
        self.link = LinkParameters(
            mru=got.mru if got.mru is not None else DEFAULT_MRU,
            peer_mru=his.mru if his.mru is not None else DEFAULT_MRU,
            rx_accm=got.accm if got.accm is not None else DEFAULT_ACCM,
            tx_accm=his.accm if his.accm is not None else DEFAULT_ACCM,
            tx_pfc=his.pfc,
            tx_acfc=his.acfc,
            local_magic=got.magic or 0,
            peer_magic=his.magic or 0,
            authenticate_peer=got.auth_protocol,
            authenticate_self=his.auth_protocol,
        )
        self.fsm.peer_mru = self.link.peer_mru  # RFC 1661 §5.6-5.7: rejects fit the peer's MRU
        self.loopback_collisions = 0
        self._echo_outstanding = 0
        self.dead_reason = None
        if self.config.echo_interval > 0:
            self._echo_deadline = now + self.config.echo_interval

    def layer_down(self, now: float) -> None:
        """Stop the keep-alive; the framing falls back to the defaults."""
        self.link = None
        self.fsm.peer_mru = DEFAULT_MRU
        self._echo_deadline = None

    def layer_finished(self, now: float) -> None:
        """Nothing to release: the session decides what a finished LCP means."""

    def extra_event(self, packet: CpPacket) -> Event | None:
        """Echo-Request/Reply and Discard-Request are RXR; Protocol-Reject is RXJ±."""
        if packet.code in (CpCode.ECHO_REQUEST, CpCode.ECHO_REPLY, CpCode.DISCARD_REQUEST):
            return Event.RXR
        if packet.code == CpCode.PROTOCOL_REJECT:
            if len(packet.data) < 2:
                raise MalformedPacket(DropReason.TRUNCATED, "Protocol-Reject without a protocol")
            if self.fsm.state != State.OPENED:
                # RFC 1661 §5.7: a Protocol-Reject outside Opened SHOULD be silently discarded
                raise MalformedPacket(DropReason.NOT_ALLOWED_IN_STATE, "Protocol-Reject before Opened")
            protocol = PROTOCOL_REJECT_BODY.parse(packet.data).protocol
            if protocol == PppProtocol.LCP:
                return Event.RXJ_MINUS  # RFC 1661 §5.7: the peer cannot run LCP at all
            self.rejected_protocols.append(protocol)
            return Event.RXJ_PLUS
        return None

    def extra_received(self, packet: CpPacket, now: float) -> list[CpPacket]:
        """Answer Echo-Requests, count Echo-Replies (RFC 1661 §5.8) and Discard-Requests."""
        if len(packet.data) < 4:
            self.fsm.drops.count(DropReason.TRUNCATED)  # RFC 1661 §5.8: the Magic-Number is mandatory
            return []
        magic = MAGIC_BODY.parse(packet.data).magic
        ours = self.link.local_magic if self.link else 0
        if packet.code == CpCode.ECHO_REQUEST:
            if ours and magic == ours:
                self._magic_collision()  # our own request came back: looped-back link
            reply = ours.to_bytes(4, "big") + packet.data[4:]
            return [CpPacket(CpCode.ECHO_REPLY, packet.identifier, reply)]
        if packet.code == CpCode.ECHO_REPLY:
            if ours and magic == ours:
                self._magic_collision()
                self.fsm.drops.count(DropReason.BAD_VALUE)  # our own reply came back
                return []
            self.echo_replies += 1
            self._echo_outstanding = 0
            return []
        self.discards += 1
        return []

    # ------------------------------------------------------------------ keep-alive
    def next_deadline(self) -> float | None:
        """The earlier of the automaton's restart timer and the keep-alive timer."""
        deadlines = [d for d in (self.fsm.next_deadline(), self._echo_deadline) if d is not None]
        return min(deadlines) if deadlines else None

    def on_timer(self, now: float) -> None:
        """Run the restart timer and the keep-alive (pppd's lcp-echo-interval/failure)."""
        self.fsm.on_timer(now)
        if self._echo_deadline is None or now < self._echo_deadline:
            return
        if 0 < self.config.echo_failure <= self._echo_outstanding:  # 0: never declare dead (pppd)
            self._echo_deadline = None
            self.dead_reason = f"No response to {self._echo_outstanding} echo-requests"
            return
        magic = self.link.local_magic if self.link else 0
        self.fsm.send_extra(CpCode.ECHO_REQUEST, magic.to_bytes(4, "big"))
        self.echo_requests_sent += 1
        self._echo_outstanding += 1
        self._echo_deadline = now + self.config.echo_interval

    # --------------------------------------------------------------------- helpers
    def _new_magic(self) -> int:
        return self.rng.randrange(1, 1 << 32)

    def _magic_collision(self) -> None:
        self.loopback_collisions += 1
        if self.loopback_collisions >= self.config.max_loopback:
            self.fatal = "Serial line is looped back"
