"""The GSM (5) and GPRS (6) bearers over an external cellular modem.

The module's radio is a 3GPP TS 27.007 modem on a serial line (a USB dongle, a module's
UART).  :class:`CellularLine` owns its :class:`~wipstack.cellular.dialer.ModemDialer` (sans-I/O:
the driver moves the line's octets with :meth:`CellularLine.receive` and
:meth:`CellularLine.bytes_to_send`) and runs a PPP session over the call:

* ``AT+WIPBR=4,6,0``: ``AT+CGDCONT`` with the APN (option 11) and cid (option 12), then
  ``ATD*99***<cid>#``; after ``CONNECT`` wipstack's PPP client logs in with options 0/1.  The
  final result waits for IPCP, like WIPSoft.
* ``AT+WIPBR=4,5,0``: ``ATD<option 2>``, then the PPP client.
* ``AT+WIPBR=4,5,1[,<login>,<password>[,<caller>]]``: ``OK`` at once; the dialer counts RINGs
  against option 5, checks the caller (``+CLIP``) and answers with ``ATA``; wipstack's PPP
  server then hands out options 15/16 and announces ``+WIPBR: 5,1,<local>,<peer>,<dns1>,<dns2>``.
  A caller that does not match is refused (``+CME ERROR: 818`` unsolicited) and the bearer
  keeps waiting for the next call.

A start while the modem still hangs up the previous call waits for the hang-up to finish.
Failures before the link is up are the final result of ``AT+WIPBR=4`` (:data:`FAILURE_CODES`);
afterwards they are unsolicited, followed by ``+WIPBR: <bid>,0``: 816 when the PPP peer
terminated the session, 809 when the carrier was lost under a running session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from at_frontend.channel import Channel
from at_frontend.registry import PENDING, Outcome
from at_frontend.responses import CmeError, CommandError
from wipstack.cellular.dialer import (
    CallConnected,
    CallEnded,
    CallFailed,
    CallFailure,
    DialerState,
    IncomingRefused,
    ModemDialer,
)

if TYPE_CHECKING:
    from at_frontend.bearers import Bearer
    from at_frontend.module import Module
    from wipstack.net.ppp_binding import PppBinding

GSM, GPRS = 5, 6
#: What a failed call becomes (WIPSoft's bearer error codes).
FAILURE_CODES: dict[CallFailure, CmeError] = {
    CallFailure.BUSY: CmeError.BEARER_BUSY,
    CallFailure.NO_ANSWER: CmeError.BEARER_NO_ANSWER,
    CallFailure.NO_CARRIER: CmeError.BEARER_NO_CARRIER,
    CallFailure.NO_SIM: CmeError.BEARER_NO_SIM,
    CallFailure.SIM_NOT_READY: CmeError.BEARER_SIM_NOT_READY,
    CallFailure.NETWORK: CmeError.BEARER_GPRS_FAILURE,
    CallFailure.REGISTRATION_TIMEOUT: CmeError.GPRS_TIMEOUT,
    CallFailure.NOT_RESPONDING: CmeError.BEARER_CONNECT_IMPOSSIBLE,
    CallFailure.DATA_FAILED: CmeError.DATA_FLOW_FAILED,
}
#: Octets of the modem line held for the driver before PPP output waits in the session.
MAX_LINE_OUTPUT = 1 << 16


class CellularLine:
    """The external modem and the bearer (5 or 6) that uses it (see the module docstring)."""

    def __init__(self, module: Module, dialer: ModemDialer) -> None:
        self.module = module
        self.dialer = dialer
        self.bearer: Bearer | None = None
        self.caller: str | None = None  # GSM server: the caller identity to accept (None: anyone)
        self.login: str | None = None
        self.password: str | None = None
        self.out = bytearray()
        self.calls = 0
        self.refused = 0
        self._pumping = False
        self.deferred = False  # a start waits for the previous call's hang-up to finish

    # ------------------------------------------------------------------ driver side
    def receive(self, data: bytes, now: float) -> None:
        """Octets from the modem."""
        self.module.now = now
        self.dialer.receive(data, now)
        self.pump(now)
        self.module.poll(now)

    def bytes_to_send(self, limit: int, now: float) -> bytes:
        """Up to ``limit`` octets for the modem."""
        self.pump(now)
        chunk = bytes(self.out[:limit])
        del self.out[:limit]
        return chunk

    def wants_input(self) -> bool:
        return True  # the dialer bounds what it keeps; PPP takes whatever arrives

    def line_lost(self, now: float) -> None:
        """The driver saw the serial line close (or DCD drop)."""
        self.dialer.line_lost(now)
        self.pump(now)

    @property
    def dtr(self) -> bool:
        return self.dialer.dtr

    def poll(self, now: float) -> None:
        self.pump(now)

    def next_deadline(self) -> float | None:
        return self.dialer.next_deadline()

    def on_timer(self, now: float) -> None:
        deadline = self.dialer.next_deadline()
        if deadline is not None and deadline <= now:
            self.dialer.on_timer(now)
        self.pump(now)

    # ------------------------------------------------------------------ bearer side
    def start(self, channel: Channel, bearer: Bearer, server: bool, login: str | None, password: str | None,
              caller: str | None, now: float) -> Outcome | None:  # fmt: skip
        """``AT+WIPBR=4`` on bearer 5 or 6: dial (final result later) or wait for a call (OK now).

        While the modem still hangs up the previous call the start waits for it to finish.
        """
        from at_frontend.bearers import BearerState

        hanging_up = self.dialer.state is DialerState.HANGING_UP
        if not hanging_up and self.dialer.state is not DialerState.IDLE:
            raise CommandError(CmeError.BEARER_CONNECT_IMPOSSIBLE, f"the modem is {self.dialer.state.name}")
        self.bearer = bearer
        self.login, self.password, self.caller = login, password, caller
        bearer.server = server
        bearer.controller = channel
        bearer.state = BearerState.STARTING
        bearer.link_up = bearer.auth_failed = bearer.stopping = False
        if hanging_up:
            self.deferred = True
        else:
            try:
                self._begin(bearer, now)
            except ValueError as exc:  # a dial string or APN the modem could not take
                self.bearer = None
                bearer.state = BearerState.OPEN
                raise CommandError(CmeError.INVALID_OPTION_VALUE, str(exc)) from None
        if server:
            return None
        bearer.waiting.append(channel)
        return PENDING

    def _begin(self, bearer: Bearer, now: float) -> None:
        """Listen, or dial bearer 6's APN / bearer 5's number; ValueError for what the modem cannot take."""
        options = bearer.options
        if bearer.server:
            self.dialer.listen(int(options.get(5, 0)), self.caller, now)
        elif bearer.bid == GPRS:
            self.dialer.dial_packet(str(options.get(11, "")), int(options.get(12, 1)) or 1, now)
        else:
            number = str(options.get(2, ""))
            if not number:
                raise ValueError("no number to dial (option 2)")
            self.dialer.dial_circuit(number, now)
        self.pump(now)

    def bearer_down(self, bearer: Bearer, binding: PppBinding | None, now: float) -> None:
        """The bearer stopped or failed: the last PPP frames go out, then the call is hung up."""
        if binding is not None:
            self._queue(binding.bytes_to_send())
        if self.bearer is bearer:
            self.bearer = None
            self.deferred = False
        if self.dialer.state is not DialerState.IDLE:
            self._send_pending_data()
            self.dialer.hang_up(now)
        self.pump(now)

    # ------------------------------------------------------------------ internals
    def pump(self, now: float) -> None:
        """Dialer events, modem data into PPP, PPP output to the modem, the dialer's octets out."""
        if self._pumping:
            return  # an event handler stopped the bearer: the running pump finishes the round
        self._pumping = True
        try:
            self._pump(now)
        finally:
            self._pumping = False

    def _pump(self, now: float) -> None:
        for _ in range(8):  # handling an event may cause another (a refused call: listen again)
            events = self.dialer.events()
            if not events:
                break
            for event in events:
                self._event(event, now)
        if self.deferred and self.dialer.state is DialerState.IDLE and self.bearer is not None:
            self.deferred = False
            waiting = self.bearer
            try:
                self._begin(waiting, now)
            except ValueError:
                self.bearer = None
                self.module.bearers.finish(waiting, CmeError.INVALID_OPTION_VALUE, now, announce=waiting.server)
        bearer = self.bearer
        binding = bearer.binding if bearer is not None else None
        if binding is not None and self.dialer.state is DialerState.ONLINE:
            data = self.dialer.take_data()
            if data:
                binding.receive_bytes(data, now)
            self._send_pending_data()
        self._queue(self.dialer.bytes_to_send())

    def _send_pending_data(self) -> None:
        bearer = self.bearer
        binding = bearer.binding if bearer is not None else None
        if binding is None or self.dialer.state is not DialerState.ONLINE:
            return
        if len(self.out) < MAX_LINE_OUTPUT:
            frames = binding.bytes_to_send()
            if frames:
                self.dialer.send_data(frames)

    def _queue(self, data: bytes) -> None:
        if data:
            self.out += data

    def _event(self, event: object, now: float) -> None:
        bearer = self.bearer
        bearers = self.module.bearers
        if isinstance(event, CallConnected):
            if bearer is None:
                self.dialer.hang_up(now)  # nobody wants this call any more
                return
            self.calls += 1
            name = "gsm" if bearer.bid == GSM else "gprs"
            server = event.kind == "incoming"
            controller = bearer.controller or self.module.channels[self.module.physical_uarts[0]]
            binding = bearers.attach_ppp(bearer, controller, server, self.login, self.password, name)
            binding.open(now)
            self._send_pending_data()
        elif isinstance(event, CallFailed):
            if bearer is None or self.deferred:
                return  # (deferred: the end of the previous call, not of this start)
            code = FAILURE_CODES.get(event.failure, CmeError.UNKNOWN_REASON)
            self.bearer = None
            bearers.finish(bearer, code, now, announce=bearer.server)
        elif isinstance(event, IncomingRefused):
            self.refused += 1
            if bearer is not None and bearer.controller is not None:
                bearer.controller.urc(f"+CME ERROR: {int(CmeError.INCOMING_CALL_REFUSED)}")
            if bearer is not None and self.dialer.state is DialerState.IDLE:
                self.dialer.listen(int(bearer.options.get(5, 0)), self.caller, now)
        elif isinstance(event, CallEnded):
            if bearer is None or bearer.stopping or self.deferred:
                return
            self.bearer = None
            bearers.finish(bearer, CmeError.BEARER_NO_CARRIER, now, announce=True)
