"""The cellular modem dialer: a sans-I/O 3GPP TS 27.007 client that brings up GPRS and GSM data calls.

Theory of operation
    :class:`ModemDialer` talks to an external modem (USB dongle, module UART) through octets
    only: :meth:`~ModemDialer.receive` takes what the modem sent, :meth:`~ModemDialer.bytes_to_send`
    gives what to write, :meth:`~ModemDialer.next_deadline` / :meth:`~ModemDialer.on_timer` drive
    its timers, and the driver mirrors :attr:`~ModemDialer.dtr` on the line.  It never reads a
    clock: every entry point gets ``now``.

    Each procedure (dial a packet call, dial a circuit call, listen, hang up) is a *script*:
    a generator that issues AT commands on an :class:`~wipstack.cellular.dialer_at.AtPort`
    and yields what it waits for -- a command's answer, a moment, the next unsolicited line
    (or, under CMUX, the multiplexer).  The dialer resumes the script when that happens.
    Failures are raised inside the script as :class:`_Abort` and become one
    :class:`CallFailed`.  Only one script runs at a time; :meth:`hang_up` replaces it.

    The AT conversation runs on the *control* port and the call on the *data* port.  Without
    a multiplexer both are the serial line; with ``use_cmux`` (see :mod:`.dialer_cmux`) they
    are DLCI 1 and DLCI 2 of a 27.010 multiplexer, and the scripts are the same.

Procedures (27.007 / V.25ter sections in brackets)
    init        ``AT`` until OK (wakes autobauding modems; no answer -> NOT_RESPONDING), ``ATE0``,
                ``ATV1`` (V.25ter §6.2.6), ``AT+CMEE=1`` (§9.1), the user's ``extra_init``
                (ERROR -> NETWORK), then ``AT+CPIN?`` (§8.3): READY; SIM PIN -> ``AT+CPIN="<pin>"``
                once if a PIN is configured, else SIM_NOT_READY; PUK and other codes ->
                SIM_NOT_READY; ``+CME ERROR: 10/13/15`` or a plain ERROR -> NO_SIM; SIM busy
                (14) -> ask again every ``registration_poll`` up to ``registration_timeout``.
                Errors to ATE0/ATV1/CMEE are tolerated (echo and numeric codes are handled anyway).
    register    ``AT+CGREG?`` (packet, §10.1) or ``AT+CREG?`` (circuit, §7.2) every
                ``registration_poll``: stat 1/5 (and 9/10) go; 0/3 -> NETWORK; anything else keeps
                polling until ``registration_timeout`` -> REGISTRATION_TIMEOUT.  A packet call
                needs no ``+CGATT``: CGREG stat 1/5 means the MT is attached.
    packet      ``AT+CGDCONT=<cid>,"IP","<apn>"`` (§10.1.1; ERROR -> NETWORK), ``ATD*99***<cid>#``
                (§10.2.1.1): CONNECT -> online; anything else -> NETWORK.
    circuit     ``ATD<number>`` (no ';': a data call): CONNECT -> online; BUSY, NO ANSWER,
                NO CARRIER, NO DIALTONE (-> NO_CARRIER); ERROR or OK -> DATA_FAILED.
    listen      init with ``ATS0=0`` (we answer ourselves) and ``AT+CLIP=1`` (§7.6), no
                registration wait; count ``RING``/``+CRING`` (a ring gap longer than ``ring_gap``
                or a NO CARRIER forgets the call); at ``ring_count`` rings (0 counts as 1), if a
                caller is required its ``+CLIP`` is awaited ``clip_wait`` and compared: a mismatch
                sends ATH, reports :class:`IncomingRefused` and listens on; else ``ATA``.
    hang-up     online: with ``use_dtr``, drop DTR for ``dtr_hold`` then ``ATH`` (V.25ter &D2);
                without it (or if the modem ignored DTR), ``escape_guard`` of silence, ``+++``,
                ``escape_guard`` (waiting for the modem's OK up to ``command_timeout`` more), then
                ``ATH`` (the Hayes escape, registers S2/S12, which V.250 leaves to the maker).
                Under CMUX, ``ATH`` on DLCI 1 first, the escape on DLCI 2 only if that fails.
                While dialling or answering: a CR aborts ATD/ATA (V.25ter §6.3.1), then ATH.
                While initialising, registering or listening: wait for the outstanding
                command, then stop.  Every hang-up ends with ``CallEnded("local")``.

    A dial-timeout or command timeout is NOT_RESPONDING; no command is retried once it may
    have started a call (ATD, ATA).  While online the stream is payload; the modem's
    ``NO CARRIER`` is recognised only between PPP frames (see :mod:`.dialer_at`) and ends the
    call with ``CallEnded("no carrier")``.  :meth:`ModemDialer.line_lost` (EOF, DCD drop) ends
    an online call with ``CallEnded("line lost")``, fails a running attempt with
    NOT_RESPONDING, and completes a hang-up.

Bounds: lines (512 octets), information lines per command, the unsolicited-line queue, the
transcript (100 entries), received payload (256 KiB, then counted drops) and queued events
(``Ringing``/``IncomingRefused`` beyond :data:`MAX_EVENTS` are dropped and counted).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeAlias

from wipstack.cellular.dialer_at import (
    AtPort,
    CarrierLost,
    Completed,
    PortDrop,
    PortEvent,
    Reply,
    ResultCode,
    TimedOut,
    Unsolicited,
    result_code,
)
from wipstack.cellular.dialer_procedures import (
    APN_TEXT,
    DIAL_STRING,
    REFUSED,
    REGISTERED,
    SimStatus,
    circuit_failure,
    clip_number,
    describe_stat,
    registration_stat,
    same_number,
    sim_status,
)
from wipstack.cellular.dialer_types import (
    CallConnected,
    CallEnded,
    CallFailed,
    CallFailure,
    CallKind,
    DialerEvent,
    DialerSettings,
    DialerState,
    DialerStateError,
    IncomingRefused,
    ModemReady,
    Ringing,
)

if TYPE_CHECKING:
    from wipstack.cellular.dialer_cmux import MuxLink

__all__ = [
    "CallConnected",
    "CallEnded",
    "CallFailed",
    "CallFailure",
    "DialerEvent",
    "DialerSettings",
    "DialerState",
    "DialerStateError",
    "IncomingRefused",
    "ModemDialer",
    "ModemReady",
    "Ringing",
]

#: Entries kept in :attr:`ModemDialer.transcript`.
TRANSCRIPT_SIZE: Final = 100
#: Events kept until :meth:`ModemDialer.events` is called; beyond it ringing reports are dropped.
MAX_EVENTS: Final = 256
#: Unsolicited lines kept for the running procedure.
MAX_QUEUED_LINES: Final = 32
#: Largest PDP context identifier accepted (27.007 §10.1.1 leaves the range to the MT).
MAX_CID: Final = 255


class _Abort(Exception):
    """Raised inside a script: the attempt ends with this failure."""

    def __init__(self, failure: CallFailure, detail: str) -> None:
        super().__init__(detail)
        self.failure = failure
        self.detail = detail


@dataclass(frozen=True, slots=True)
class _Await:
    """Resume with the :class:`Reply` of ``port``'s outstanding command, or None if it timed out."""

    port: AtPort


@dataclass(frozen=True, slots=True)
class _Sleep:
    """Resume with None at ``until``."""

    until: float


@dataclass(frozen=True, slots=True)
class _NextLine:
    """Resume with the next unsolicited line, or None at ``until`` (never, if None)."""

    until: float | None


@dataclass(frozen=True, slots=True)
class _MuxReady:
    """Resume with True once the multiplexer's channels are open, False at ``until``."""

    until: float


_Action: TypeAlias = _Await | _Sleep | _NextLine | _MuxReady
_Resume: TypeAlias = Reply | str | bool | None
_Script: TypeAlias = Generator[_Action, _Resume, None]


class ModemDialer:
    """Brings up and tears down packet (GPRS) and circuit (GSM data) calls on an external modem."""

    def __init__(self, settings: DialerSettings | None = None) -> None:
        self.settings = settings if settings is not None else DialerSettings()
        #: the last command/response lines, for logs and error details
        self.transcript: deque[str] = deque(maxlen=TRANSCRIPT_SIZE)
        #: octets and lines thrown away, by reason
        self.drops: Counter[PortDrop] = Counter()
        #: ringing reports dropped because nobody drained :meth:`events`
        self.events_dropped = 0
        self._serial = AtPort("", self.transcript, self.drops)
        self._control = self._serial
        self._data = self._serial
        self._now = 0.0
        self._state = DialerState.IDLE
        self._dtr = True
        self._events: list[DialerEvent] = []
        self._lines: deque[str] = deque(maxlen=MAX_QUEUED_LINES)
        self._script: _Script | None = None
        self._waiting: _Action | None = None
        self._mux: MuxLink | None = None
        self._mux_input = b""

    # --- public state --------------------------------------------------------------------

    @property
    def state(self) -> DialerState:
        """Where the dialer is."""
        return self._state

    @property
    def dtr(self) -> bool:
        """The DTR level the driver must put on the line (low only during a DTR hang-up)."""
        return self._dtr

    @property
    def output_pending(self) -> int:
        """Octets waiting for :meth:`bytes_to_send` (payload included)."""
        if self._mux is not None:
            return self._mux.output_pending()
        return self._serial.output_pending

    def events(self) -> list[DialerEvent]:
        """Drain the events reported since the last call."""
        out, self._events = self._events, []
        return out

    # --- octets ----------------------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> None:
        """Octets from the modem, split anywhere."""
        self._now = now
        if self._mux is not None and self._mux.active:
            self._mux.receive(data, now)
            return
        self._dispatch(self._serial, self._serial.receive(data, now))

    def bytes_to_send(self) -> bytes:
        """Octets for the modem."""
        if self._mux is not None and self._mux.active:
            return self._mux.bytes_to_send()
        return self._serial.take_output()

    def send_data(self, data: bytes) -> None:
        """Payload for the call (online only)."""
        if self._state is not DialerState.ONLINE:
            raise DialerStateError(f"cannot send data while {self._state.value}")
        self._data.send_payload(bytes(data))

    def take_data(self) -> bytes:
        """Payload received from the modem since the last call."""
        data = self._data.take_payload()
        if self._mux is not None:
            self._mux.resume_flow(self._now)
        return data

    def close_multiplexer(self, now: float) -> None:
        """Idle only: close the 27.010 multiplexer down (CLD); the modem returns to plain AT mode."""
        if self._state is not DialerState.IDLE:
            raise DialerStateError(f"cannot close the multiplexer while {self._state.value}")
        self._now = now
        if self._mux is not None:
            self._mux.close(now)

    # --- timers ----------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest moment :meth:`on_timer` has something to do."""
        deadlines = [port.next_deadline() for port in self._ports()]
        waiting = self._waiting
        if isinstance(waiting, _Sleep | _MuxReady | _NextLine):
            deadlines.append(waiting.until)
        if self._mux is not None:
            deadlines.append(self._mux.next_deadline())
        present = [d for d in deadlines if d is not None]
        return min(present) if present else None

    def on_timer(self, now: float) -> None:
        """Run what is due at ``now``."""
        self._now = now
        if self._mux is not None:
            self._mux.on_timer(now)
        for port in self._ports():
            self._dispatch(port, port.on_timer(now))
        waiting = self._waiting
        if not isinstance(waiting, _Sleep | _NextLine | _MuxReady) or waiting.until is None or now < waiting.until:
            return
        self._resume(False if isinstance(waiting, _MuxReady) else None)

    # --- calls ---------------------------------------------------------------------------

    def dial_packet(self, apn: str, cid: int, now: float) -> None:
        """GPRS: init, SIM, ``+CGREG`` poll, ``+CGDCONT``, ``ATD*99***<cid>#``."""
        if not APN_TEXT.fullmatch(apn):
            raise ValueError(f"APN {apn!r} is not up to 100 letters, digits, '.', '-' or '_'")
        if not 1 <= cid <= MAX_CID:
            raise ValueError(f"context id {cid} is not in 1..{MAX_CID}")
        self._start(self._packet_call(apn, cid), now)

    def dial_circuit(self, number: str, now: float) -> None:
        """GSM data call: init, SIM, ``+CREG`` poll, ``ATD<number>``."""
        if not DIAL_STRING.fullmatch(number):
            raise ValueError(f"dial string {number!r} is not 1-40 of +0-9*#ABCD,TPW!@")
        self._start(self._circuit_call(number), now)

    def listen(self, ring_count: int, caller: str | None, now: float) -> None:
        """Wait for an incoming data call, answer after ``ring_count`` rings if ``caller`` matches ("" = anyone)."""
        if ring_count < 0:
            raise ValueError("ring_count must not be negative")
        caller = caller or None
        if caller is not None and not any(c.isdigit() for c in caller):
            raise ValueError(f"caller {caller!r} has no digits")
        self._start(self._incoming_call(max(1, ring_count), caller), now)

    def hang_up(self, now: float) -> None:
        """End the call or abort the attempt; ``CallEnded("local")`` follows (nothing when idle)."""
        self._now = now
        state = self._state
        if state in (DialerState.IDLE, DialerState.HANGING_UP):
            return
        self._stop_script()
        if state is DialerState.ONLINE:
            self._run(self._hang_up_online())
        elif self._data.dialling:
            self._run(self._abort_dial())
        else:
            self._run(self._abort_setup())

    def line_lost(self, now: float) -> None:
        """The driver lost the line (EOF, hang-up on the serial device, DCD dropped)."""
        self._now = now
        state = self._state
        self._stop_script()
        if state is not DialerState.IDLE or self._mux is not None:
            self._serial.note("line lost")
        for port in self._ports():
            port.leave_online()
            port.reset()
        # A multiplexer does not outlive the line: whatever comes next starts in plain AT mode.
        self._mux = None
        self._control = self._data = self._serial
        self._dtr = True
        self._state = DialerState.IDLE
        if state is DialerState.IDLE:
            return
        if state is DialerState.ONLINE:
            self._emit(CallEnded("line lost"))
        elif state is DialerState.HANGING_UP:
            self._emit(CallEnded("local"))
        else:
            self._emit(CallFailed(CallFailure.NOT_RESPONDING, "line lost"))

    # --- script machinery ------------------------------------------------------------------

    def _start(self, script: _Script, now: float) -> None:
        if self._state is not DialerState.IDLE:
            script.close()
            raise DialerStateError(f"a call is already {self._state.value}")
        self._now = now
        self._lines.clear()
        self._run(script)

    def _run(self, script: _Script) -> None:
        self._script = script
        self._waiting = None
        self._resume(None)

    def _stop_script(self) -> None:
        if self._script is not None:
            self._script.close()
        self._script = None
        self._waiting = None

    def _resume(self, value: _Resume) -> None:
        """Feed ``value`` to the script and start what it waits for next (until it really waits)."""
        while self._script is not None:
            self._waiting = None
            try:
                action = self._script.send(value)
            except StopIteration:
                self._script = None
                break
            except _Abort as abort:
                self._script = None
                self._fail(abort.failure, abort.detail)
                break
            if isinstance(action, _Sleep) and self._now >= action.until:
                value = None
                continue
            if isinstance(action, _Await) and not action.port.busy:
                value = None  # nothing outstanding: it can never complete
                continue
            if isinstance(action, _NextLine):
                if self._lines:
                    value = self._lines.popleft()
                    continue
                if action.until is not None and self._now >= action.until:
                    value = None
                    continue
            if isinstance(action, _MuxReady) and self._mux is not None and self._mux.ready:
                value = True
                continue
            self._waiting = action
            break
        # Multiplexer octets that came with AT+CMUX's OK: fed only now that the script is suspended.
        if self._mux_input and self._mux is not None:
            data, self._mux_input = self._mux_input, b""
            self._mux.receive(data, self._now)

    def _fail(self, failure: CallFailure, detail: str) -> None:
        for port in self._ports():
            port.cancel()
            port.leave_online()
        self._state = DialerState.IDLE
        self._emit(CallFailed(failure, detail))

    def _dispatch(self, port: AtPort, events: list[PortEvent]) -> None:
        """Route what ``port`` reported to the waiting script or the call."""
        for event in events:
            waiting = self._waiting
            if isinstance(event, Completed | TimedOut):
                if isinstance(waiting, _Await) and waiting.port is port:
                    self._resume(event.reply if isinstance(event, Completed) else None)
            elif isinstance(event, CarrierLost):
                if self._state is DialerState.ONLINE and port is self._data:
                    self._state = DialerState.IDLE
                    self._emit(CallEnded(event.reason))
                else:
                    self._queue_line("NO CARRIER")
            elif isinstance(event, Unsolicited):
                self._queue_line(event.line)

    def _queue_line(self, line: str) -> None:
        self._lines.append(line)
        if isinstance(self._waiting, _NextLine):
            self._resume(self._lines.popleft())

    def _emit(self, event: DialerEvent) -> None:
        if len(self._events) >= MAX_EVENTS and isinstance(event, Ringing | IncomingRefused):
            self.events_dropped += 1
            return
        self._events.append(event)

    def _ports(self) -> list[AtPort]:
        ports = [self._serial]
        if self._mux is not None:
            ports += [p for p in self._mux.ports() if p is not self._serial]
        return ports

    def _mux_ready(self) -> None:
        if isinstance(self._waiting, _MuxReady):
            self._resume(True)

    def _mux_closed(self, reason: str) -> None:
        """The multiplexer went away (modem closed it, or it failed): back to the bare serial line."""
        self._mux = None
        self._control = self._data = self._serial
        self._serial.reset()
        state = self._state
        self._stop_script()
        if state is DialerState.IDLE:
            return
        self._state = DialerState.IDLE
        if state is DialerState.ONLINE:
            self._emit(CallEnded("channel closed"))
        elif state is DialerState.HANGING_UP:
            self._emit(CallEnded("local"))
        else:
            self._emit(CallFailed(CallFailure.NOT_RESPONDING, f"multiplexer closed: {reason}"))

    # --- script building blocks ------------------------------------------------------------

    def _command(
        self,
        port: AtPort,
        text: str,
        *,
        info_prefix: str | None = None,
        logged: str | None = None,
        attempts: int | None = None,
        call_control: bool = False,
        detach: bool = False,
    ) -> Generator[_Action, _Resume, Reply | None]:
        """Send one command (retried per the settings) and return its reply, or None on timeout."""
        port.command(
            text,
            self._now,
            self.settings.command_timeout,
            self.settings.retries + 1 if attempts is None else attempts,
            info_prefix=info_prefix,
            call_control=call_control,
            detach_on_ok=detach,
            logged=logged,
        )
        result = yield _Await(port)
        assert result is None or isinstance(result, Reply)
        return result

    def _answered(
        self,
        port: AtPort,
        text: str,
        *,
        info_prefix: str | None = None,
        logged: str | None = None,
        detach: bool = False,
    ) -> Generator[_Action, _Resume, Reply]:
        """:meth:`_command`, failing the attempt with NOT_RESPONDING if the modem stays silent."""
        reply = yield from self._command(port, text, info_prefix=info_prefix, logged=logged, detach=detach)
        if reply is None:
            raise _Abort(CallFailure.NOT_RESPONDING, f"no answer to {logged or text}")
        return reply

    def _sleep(self, seconds: float) -> Generator[_Action, _Resume, None]:
        yield _Sleep(self._now + seconds)

    def _next_line(self, until: float | None) -> Generator[_Action, _Resume, str | None]:
        """The next unsolicited line, or None once ``until`` has passed."""
        line = yield _NextLine(until)
        assert line is None or isinstance(line, str)
        return line

    def _wake(self, port: AtPort) -> Generator[_Action, _Resume, None]:
        """``AT`` until OK: wakes an autobauding modem, which learns the rate from "AT"."""
        last = "no answer to AT"
        for attempt in range(self.settings.retries + 1):
            reply = yield from self._command(port, "AT", attempts=1)
            if reply is not None and reply.ok:
                return
            if reply is not None:
                last = reply.describe()
            elif attempt == 0 and port is self._serial:
                # silence: the modem may still be online in a call we lost track of (it connected
                # while it did not answer us): the Hayes escape and ATH bring it back to commands
                yield from self._escape(port, self._now)
                yield from self._command(port, "ATH", attempts=1)
        raise _Abort(CallFailure.NOT_RESPONDING, last)

    def _tolerant(self, port: AtPort, text: str) -> Generator[_Action, _Resume, None]:
        reply = yield from self._answered(port, text)
        if not reply.ok:
            port.note(f"{text} refused; carrying on")

    def _init(self, *, incoming: bool = False) -> Generator[_Action, _Resume, None]:
        """V.25ter and 27.007 init on the control port, then the SIM; reports ModemReady."""
        self._state = DialerState.INITIALISING
        if self._mux is not None and not self._mux.ready:
            self._mux.reopen(self._now)
            if not (yield _MuxReady(self._now + self.settings.command_timeout * (self.settings.retries + 1))):
                raise _Abort(CallFailure.NOT_RESPONDING, "the multiplexer did not reopen DLCIs 1 and 2")
        if self._mux is None:
            yield from self._wake(self._serial)
            yield from self._tolerant(self._serial, "ATE0")
            if self.settings.use_cmux:
                yield from self._start_mux()
        for port in dict.fromkeys((self._control, self._data)):
            if port is not self._serial:
                yield from self._wake(port)
                yield from self._tolerant(port, "ATE0")
            yield from self._tolerant(port, "ATV1")
        port = self._control
        yield from self._tolerant(port, "AT+CMEE=1")
        for text in self.settings.extra_init:
            reply = yield from self._answered(port, text)
            if not reply.ok:
                raise _Abort(CallFailure.NETWORK, reply.describe())
        if incoming:
            yield from self._tolerant(port, "ATS0=0")
            yield from self._tolerant(port, "AT+CLIP=1")
        yield from self._sim_ready(port)
        self._emit(ModemReady())

    def _start_mux(self) -> Generator[_Action, _Resume, None]:
        """``AT+CMUX=0`` (27.007 §5.7), then the 27.010 start-up: DLCI 0, then DLCIs 1 and 2."""
        reply = yield from self._answered(self._serial, "AT+CMUX=0", detach=True)
        if not reply.ok:
            self._serial.note("AT+CMUX=0 refused: carrying on without the multiplexer")
            return
        from wipstack.cellular.dialer_cmux import MuxLink  # the multiplexer is loaded only when used

        self._mux = MuxLink(self.transcript, self.drops, self._now, self._dispatch, self._mux_ready, self._mux_closed)
        self._control, self._data = self._mux.control, self._mux.data
        self._mux_input = reply.trailing
        ready = yield _MuxReady(self._now + self.settings.command_timeout * (self.settings.retries + 1))
        if not ready:
            raise _Abort(CallFailure.NOT_RESPONDING, "the multiplexer did not open DLCIs 1 and 2")

    def _sim_ready(self, port: AtPort) -> Generator[_Action, _Resume, None]:
        """``AT+CPIN?`` until READY; the configured PIN is entered at most once (27.007 §8.3)."""
        give_up = self._now + self.settings.registration_timeout
        pin_entered = False
        while True:
            reply = yield from self._answered(port, "AT+CPIN?", info_prefix="+CPIN:")
            status, detail = sim_status(reply)
            if status is SimStatus.READY:
                return
            if status is SimStatus.ABSENT:
                raise _Abort(CallFailure.NO_SIM, detail)
            if status is SimStatus.LOCKED:
                raise _Abort(CallFailure.SIM_NOT_READY, detail)
            if status is SimStatus.NEEDS_PIN:
                pin = self.settings.pin
                if pin is None:
                    raise _Abort(CallFailure.SIM_NOT_READY, "SIM PIN required and no PIN configured")
                if pin_entered:
                    raise _Abort(CallFailure.SIM_NOT_READY, "SIM still asks for its PIN after it was entered")
                pin_entered = True
                entered = yield from self._answered(port, f'AT+CPIN="{pin}"', logged='AT+CPIN="****"')
                if not entered.ok:
                    raise _Abort(CallFailure.SIM_NOT_READY, f"PIN refused: {entered.final}")
                continue
            # SIM busy (CME 14): it is still reading its files after power-up or PIN entry.
            if self._now >= give_up:
                raise _Abort(CallFailure.SIM_NOT_READY, f"SIM still busy after {self.settings.registration_timeout} s")
            yield from self._sleep(self.settings.registration_poll)

    def _register(self, command: str) -> Generator[_Action, _Resume, None]:
        """Poll ``AT+CREG?``/``AT+CGREG?`` until registered (27.007 §7.2, +CGREG in §10.1)."""
        self._state = DialerState.REGISTERING
        prefix = command[2:-1] + ":"
        give_up = self._now + self.settings.registration_timeout
        while True:
            reply = yield from self._answered(self._control, command, info_prefix=prefix)
            if not reply.ok:
                raise _Abort(CallFailure.NETWORK, reply.describe())
            stat = registration_stat(reply, prefix)
            if stat in REGISTERED:
                return
            if stat in REFUSED:
                raise _Abort(CallFailure.NETWORK, f"{prefix} {describe_stat(stat)}")
            if self._now >= give_up:
                raise _Abort(
                    CallFailure.REGISTRATION_TIMEOUT,
                    f"{prefix} {describe_stat(stat)} after {self.settings.registration_timeout} s",
                )
            yield from self._sleep(self.settings.registration_poll)

    def _dial(self, text: str) -> Generator[_Action, _Resume, Reply]:
        """ATD/ATA on the data port: one attempt, ``dial_timeout`` (a retry could place a second call)."""
        self._data.command(text, self._now, self.settings.dial_timeout, 1, connects=True)
        result = yield _Await(self._data)
        if result is None:
            raise _Abort(CallFailure.NOT_RESPONDING, f"no result for {text} within {self.settings.dial_timeout} s")
        assert isinstance(result, Reply)
        return result

    def _connected(self, kind: CallKind, caller: str | None, reply: Reply) -> None:
        self._state = DialerState.ONLINE
        self._emit(CallConnected(kind, caller, reply.connect_text))

    # --- call scripts ----------------------------------------------------------------------

    def _packet_call(self, apn: str, cid: int) -> _Script:
        yield from self._init()
        yield from self._register("AT+CGREG?")
        self._state = DialerState.DIALLING
        define = yield from self._answered(self._control, f'AT+CGDCONT={cid},"IP","{apn}"')
        if not define.ok:
            raise _Abort(CallFailure.NETWORK, define.describe())
        reply = yield from self._dial(f"ATD*99***{cid}#")
        if reply.code is not ResultCode.CONNECT:
            raise _Abort(CallFailure.NETWORK, reply.describe())
        self._connected("packet", None, reply)

    def _circuit_call(self, number: str) -> _Script:
        yield from self._init()
        yield from self._register("AT+CREG?")
        self._state = DialerState.DIALLING
        reply = yield from self._dial(f"ATD{number}")
        if reply.code is not ResultCode.CONNECT:
            raise _Abort(circuit_failure(reply), reply.describe())
        self._connected("circuit", None, reply)

    def _incoming_call(self, ring_count: int, wanted: str | None) -> _Script:
        yield from self._init(incoming=True)
        self._state = DialerState.LISTENING
        rings, caller, clip_seen, last_ring = 0, None, False, 0.0
        while True:
            line = yield from self._next_line(last_ring + self.settings.ring_gap if rings else None)
            code = None if line is None else result_code(line)
            if line is None or code is ResultCode.NO_CARRIER:
                # The caller gave up: no RING within the ring gap, or NO CARRIER.
                rings, caller, clip_seen = 0, None, False
                continue
            if line.upper().startswith("+CLIP:"):
                caller, clip_seen = clip_number(line), True
                continue
            if code is not ResultCode.RING and not line.upper().startswith("+CRING:"):
                continue
            rings += 1
            last_ring = self._now
            self._emit(Ringing(rings, caller))
            if rings < ring_count:
                continue
            if wanted is not None:
                # 27.007 §7.6: +CLIP follows the RING it belongs to; give it a moment.
                clip_until = self._now + self.settings.clip_wait
                while not clip_seen:
                    extra = yield from self._next_line(clip_until)
                    if extra is None:
                        break
                    if extra.upper().startswith("+CLIP:"):
                        caller, clip_seen = clip_number(extra), True
                if not same_number(wanted, caller):
                    reason = "caller withheld" if caller is None else f"caller {caller} is not {wanted}"
                    yield from self._command(self._control, "ATH", call_control=True)
                    self._emit(IncomingRefused(caller, reason))
                    rings, caller, clip_seen = 0, None, False
                    continue
            self._state = DialerState.ANSWERING
            reply = yield from self._dial("ATA")
            if reply.code is not ResultCode.CONNECT:
                failure = CallFailure.NO_CARRIER if reply.code is ResultCode.NO_CARRIER else CallFailure.DATA_FAILED
                raise _Abort(failure, reply.describe())
            if not clip_seen:  # ATA went out before the +CLIP that follows the RING (27.007 §7.6)
                caller = next((clip_number(q) for q in self._lines if q.upper().startswith("+CLIP:")), None)
            self._connected("incoming", caller, reply)
            return

    # --- hang-up scripts -------------------------------------------------------------------

    def _hang_up_online(self) -> _Script:
        self._state = DialerState.HANGING_UP
        started = self._now
        data = self._data
        if self._control is not data:
            # Under CMUX the control channel can clear the call; DLCI 2 then reports NO CARRIER.
            yield from self._command(self._control, "ATH", call_control=True)
            yield from self._await_carrier_loss(data)
        elif self.settings.use_dtr:
            self._dtr = False
            yield from self._sleep(self.settings.dtr_hold)
            self._dtr = True
            data.leave_online()  # V.25ter &D2: the DTR drop cleared the call
            reply = yield from self._command(data, "ATH", attempts=1, call_control=True)
            if reply is not None:
                self._ended_locally()
                return
            data.note("no answer to ATH after the DTR drop: escaping with +++")
            started = self._now
        if data.online or (self._control is data and self.settings.use_dtr):
            yield from self._escape(data, started)
            yield from self._command(data, "ATH", call_control=True)
        self._ended_locally()

    def _await_carrier_loss(self, data: AtPort) -> Generator[_Action, _Resume, None]:
        until = self._now + self.settings.command_timeout
        while data.online:
            line = yield from self._next_line(until)
            if line is None:
                return

    def _escape(self, port: AtPort, started: float) -> Generator[_Action, _Resume, None]:
        """Silence, ``+++``, silence: the modem leaves online mode (Hayes escape, S2/S12 guard)."""
        guard = self.settings.escape_guard
        yield _Sleep(started + guard)
        for _ in range(3):
            if not port.output_pending:
                break
            # The driver has not written our last payload yet: the guard counts from then.
            yield from self._sleep(guard)
        port.take_output()
        port.send_raw(b"+++", "+++")
        port.leave_online()
        self._lines.clear()
        escaped = self._now
        yield _Sleep(escaped + guard)
        until = escaped + guard + self.settings.command_timeout
        while True:
            line = yield from self._next_line(until)
            if line is None or result_code(line) in (ResultCode.OK, ResultCode.NO_CARRIER, ResultCode.ERROR):
                return

    def _abort_dial(self) -> _Script:
        self._state = DialerState.HANGING_UP
        data = self._data
        # V.25ter §6.3.1: any character aborts a dial or answer in progress.
        data.send_raw(b"\r", "<CR> (abort)")
        data.limit_deadline(self._now + self.settings.command_timeout)
        yield _Await(data)
        if data.online:  # CONNECT crossed our abort
            yield from self._escape(data, self._now)
        yield from self._command(self._control, "ATH", call_control=True)
        self._ended_locally()

    def _abort_setup(self) -> _Script:
        self._state = DialerState.HANGING_UP
        for port in self._ports():
            if port.busy:
                yield _Await(port)
        self._ended_locally()

    def _ended_locally(self) -> None:
        for port in self._ports():
            port.leave_online()
        self._dtr = True
        self._state = DialerState.IDLE
        self._emit(CallEnded("local"))
