"""PAP (RFC 1334 §2): the authenticatee (client) and authenticator (server) machines.

PAP is not a negotiation automaton: the authenticatee repeats Authenticate-Request until it
gets an Ack or Nak or runs out of attempts; the authenticator waits (bounded) for a request,
checks it against its secrets and answers.  Each machine ends in ``succeeded`` or ``failed``
with a human-readable ``reason``; the session turns a failure into an LCP Terminate.
"""

from __future__ import annotations

import enum
import hmac

from wipstack.errors import DropCounters, DropReason, MalformedPacket
from wipstack.ppp.config import PapConfig
from wipstack.wire.cp import CpPacket
from wipstack.wire.pap import PapCode, PapRequest, PapResponse


class PapState(enum.Enum):
    """States of both PAP machines (after pppd's upap.h)."""

    INITIAL = "Initial"
    AUTH_REQ = "AuthReq"  # authenticatee: request sent, waiting for the answer
    LISTEN = "Listen"  # authenticator: waiting for a request
    OPEN = "Open"  # authenticated
    BAD_AUTH = "BadAuth"  # failed for good


class _PapMachine:
    def __init__(self, config: PapConfig) -> None:
        self.config = config
        self.state = PapState.INITIAL
        self.reason = ""
        self.drops = DropCounters()
        self._deadline: float | None = None
        self._output: list[CpPacket] = []

    @property
    def succeeded(self) -> bool:
        """True once authentication succeeded."""
        return self.state == PapState.OPEN

    @property
    def failed(self) -> bool:
        """True once authentication failed for good."""
        return self.state == PapState.BAD_AUTH

    def next_deadline(self) -> float | None:
        """When ``on_timer`` must next be called, or None."""
        return self._deadline

    def drain_packets(self) -> list[CpPacket]:
        """PAP packets to send."""
        out, self._output = self._output, []
        return out

    def stop(self) -> None:
        """The link went down: forget everything."""
        self.state = PapState.INITIAL
        self._deadline = None

    def _fail(self, reason: str) -> None:
        self.state = PapState.BAD_AUTH
        self.reason = reason
        self._deadline = None


class PapClient(_PapMachine):
    """The authenticatee: sends our Peer-ID and password until answered."""

    def __init__(self, config: PapConfig) -> None:
        super().__init__(config)
        self._id = 0
        self._attempts = 0

    def start(self, now: float) -> None:
        """LCP is up and the peer wants PAP: send the first Authenticate-Request."""
        if self.config.username is None:
            self._fail("no PAP username configured")
            return
        self._attempts = 0
        self._send_request(now)

    def on_timer(self, now: float) -> None:
        """Retransmit, or give up after ``max_requests`` unanswered requests."""
        if self._deadline is None or now < self._deadline or self.state != PapState.AUTH_REQ:
            return
        if self._attempts >= self.config.max_requests:
            self._fail(f"No response to {self._attempts} PAP authenticate-requests")
            return
        self._send_request(now)

    def receive(self, data: bytes | memoryview, now: float) -> None:
        """An Authenticate-Ack or -Nak from the authenticator."""
        try:
            packet = CpPacket.parse(data)
            response = PapResponse.parse(packet.data)
        except MalformedPacket as exc:
            self.drops.count(exc.reason)
            return
        if self.state != PapState.AUTH_REQ or packet.identifier != self._id:
            self.drops.count(DropReason.UNEXPECTED_ID)
            return
        message = response.message.decode("utf-8", "replace")
        if packet.code == PapCode.AUTHENTICATE_ACK:
            self.state = PapState.OPEN
            self.reason = message
            self._deadline = None
        elif packet.code == PapCode.AUTHENTICATE_NAK:
            self._fail(f"PAP authentication failed: {message}" if message else "PAP authentication failed")
        else:
            self.drops.count(DropReason.BAD_CODE)

    def _send_request(self, now: float) -> None:
        assert self.config.username is not None
        self._id = (self._id + 1) & 0xFF
        self._attempts += 1
        self.state = PapState.AUTH_REQ
        body = PapRequest(self.config.username.encode(), self.config.password.encode()).emit()
        self._output.append(CpPacket(PapCode.AUTHENTICATE_REQUEST, self._id, body))
        self._deadline = now + self.config.restart_interval


class PapServer(_PapMachine):
    """The authenticator: checks requests against ``config.secrets``."""

    def __init__(self, config: PapConfig) -> None:
        super().__init__(config)
        self.peer_id: str | None = None
        self.failures = 0

    def start(self, now: float) -> None:
        """LCP is up with PAP negotiated: wait (bounded) for the peer's request."""
        self.state = PapState.LISTEN
        self.failures = 0
        self._deadline = now + self.config.wait_timeout if self.config.wait_timeout > 0 else None

    def on_timer(self, now: float) -> None:
        """Give up when the peer never authenticated."""
        if self._deadline is not None and now >= self._deadline and self.state == PapState.LISTEN:
            self._fail("peer did not authenticate in time")

    def receive(self, data: bytes | memoryview, now: float) -> None:
        """An Authenticate-Request: Ack it if the secrets match, Nak it otherwise."""
        try:
            packet = CpPacket.parse(data)
            if packet.code != PapCode.AUTHENTICATE_REQUEST:
                self.drops.count(DropReason.BAD_CODE)
                return
            request = PapRequest.parse(packet.data)
        except MalformedPacket as exc:
            self.drops.count(exc.reason)
            return
        if self.state == PapState.OPEN:
            # RFC 1334 §2.2.1: a retransmitted request after our Ack was lost gets the Ack again
            self._answer(PapCode.AUTHENTICATE_ACK, packet.identifier, "Login ok")
            return
        if self.state == PapState.BAD_AUTH:
            self._answer(PapCode.AUTHENTICATE_NAK, packet.identifier, "Login incorrect")
            return
        if self.state != PapState.LISTEN:
            self.drops.count(DropReason.NOT_ALLOWED_IN_STATE)
            return
        peer_id = request.peer_id.decode("utf-8", "replace")
        if self._check(request):
            self.peer_id = peer_id
            self.state = PapState.OPEN
            self._deadline = None
            self._answer(PapCode.AUTHENTICATE_ACK, packet.identifier, "Login ok")
            return
        self.failures += 1
        self._answer(PapCode.AUTHENTICATE_NAK, packet.identifier, "Login incorrect")
        if self.failures >= self.config.max_failures:
            self._fail(f'PAP peer authentication failed for "{peer_id}"')

    def _check(self, request: PapRequest) -> bool:
        matched = False
        for user, password in self.config.secrets:
            user_ok = hmac.compare_digest(user.encode(), request.peer_id)
            password_ok = hmac.compare_digest(password.encode(), request.password)
            matched |= user_ok and password_ok
        return matched

    def _answer(self, code: PapCode, identifier: int, message: str) -> None:
        self._output.append(CpPacket(code, identifier, PapResponse(message.encode()).emit()))
