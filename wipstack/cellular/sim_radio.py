"""The simulated modem's radio: SIM, registration, PDP contexts, the one call and the network peer's data.

Theory of operation.  A real 27.007 modem has one mobile termination (SIM, registration,
contexts, calls) and, with 27.010, several AT interpreters on top of it.  The simulator
keeps that split: :class:`SimulatedRadio` is the shared state and
:class:`~wipstack.cellular.sim_port.SimulatedPort` is one AT interpreter.  The radio never
formats text; it calls back into ports (``call_connected``, ``call_failed``, ``call_ended``,
``ring``, ``registration_changed``) and the port formats per its own ATV/ATQ/+CMEE/+CREG
settings.  Rules that live here:

* Registration (27.007 §7.2, §10.1.19): stat 0 unless the SIM is ready, AT+CFUN is 1 and
  AT+COPS is not 2; then stat 2 ("searching") for ``registration_delay`` seconds, then the
  configured ``creg_stat``/``cgreg_stat``.  The packet domain is attached automatically when
  registered; after AT+CGATT=0 it reports stat 0 until AT+CGATT=1 or a packet call attaches.
* One call at a time.  Set-up ends ``connect_delay`` after ATD/ATA/AT+CGDATA, and its outcome
  is decided then (so ``configure`` during the set-up counts).  A connected call loses its
  carrier when registration or the SIM goes; the owner port then sends NO CARRIER.
* The network peer's octets reach the owner port only while it is online (data mode);
  otherwise they are dropped and counted.  The DTE's octets for the peer are held, bounded,
  until the driver takes them; the buffer is cleared when a new call connects.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wipstack.cellular.sim_types import (
    CME_TEXT,
    REGISTERED,
    CallConnected,
    CallEnded,
    CmeError,
    DialResult,
    ResultCode,
    SimState,
    SimulatorCounters,
    SimulatorEvent,
    SimulatorSettings,
)

if TYPE_CHECKING:
    from wipstack.cellular.sim_port import SimulatedPort

__all__ = ["Call", "CommandError", "PdpContext", "Ringing", "SimulatedRadio"]

Tracer = Callable[[str], None]
FinalResult = ResultCode | CmeError
#: 27.007 §10.1.1: the context identifiers this modem supports.
CIDS = range(1, 17)
PDP_TYPES = ("IP", "IPV6", "IPV4V6")
DIAL_RESULTS: dict[DialResult, FinalResult] = {
    DialResult.BUSY: ResultCode.BUSY,
    DialResult.NO_ANSWER: ResultCode.NO_ANSWER,
    DialResult.NO_CARRIER: ResultCode.NO_CARRIER,
    DialResult.ERROR: ResultCode.ERROR,
    DialResult.NO_DIALTONE: ResultCode.NO_DIALTONE,
}
RECENT_COMMANDS = 32


class CommandError(Exception):
    """A command fails with this final result (ERROR, NO CARRIER or a +CME ERROR)."""

    def __init__(self, result: FinalResult) -> None:
        super().__init__(result.name)
        self.result = result


@dataclass
class PdpContext:
    """One ``AT+CGDCONT`` definition (27.007 §10.1.1) and whether it is active."""

    cid: int
    pdp_type: str
    apn: str
    address: str = ""
    data_compression: int = 0
    header_compression: int = 0
    active: bool = False


@dataclass
class Call:
    """The call being set up (``ready_at`` set) or connected."""

    kind: str  # "packet", "circuit" or "incoming"
    detail: str
    owner: SimulatedPort
    ready_at: float | None
    cid: int | None = None
    voice: bool = False
    via_cgdata: bool = False

    @property
    def connected(self) -> bool:
        """Past CONNECT."""
        return self.ready_at is None


@dataclass
class Ringing:
    """An incoming call that has not been answered yet."""

    caller: str
    next_ring_at: float
    rings: int = 0


class SimulatedRadio:
    """The shared state of the simulated modem (see the module docstring)."""

    def __init__(self, settings: SimulatorSettings, tracer: Tracer | None = None) -> None:
        self.settings = settings
        self.tracer = tracer
        self.counters = SimulatorCounters()
        self.ports: list[SimulatedPort] = []
        self.sim_state = settings.sim_state
        self.pin = settings.pin
        self.pin_attempts_left = settings.pin_attempts
        self.functionality = 1  # AT+CFUN
        self.deregistered = False  # AT+COPS=2
        self.detached = False  # AT+CGATT=0
        self.contexts: dict[int, PdpContext] = {}
        self.call: Call | None = None
        self.ringing: Ringing | None = None
        self.last_failure = "no failure"  # AT+CEER
        self.last_commands: deque[str] = deque(maxlen=RECENT_COMMANDS)
        self.now = 0.0
        self._to_peer = bytearray()
        self._events: list[SimulatorEvent] = []
        self._search_until: float | None = None
        self._could_register = False
        self._reported = (0, 0)

    # ------------------------------------------------------------------ set-up and time
    def attach_port(self, port: SimulatedPort) -> None:
        """An AT interpreter on top of this radio."""
        if port not in self.ports:
            self.ports.append(port)

    def detach_port(self, port: SimulatedPort, now: float) -> None:
        """The port goes away (a 27.010 channel closed): its call ends without a result code."""
        call = self.call
        if call is not None and call.owner is port:
            self.end_call("mux", None, now)
        if port in self.ports:
            self.ports.remove(port)

    def power_on(self, now: float) -> None:
        """Switch on: the SIM as configured, registration starts if it can."""
        self.now = now
        self.sim_state = self.settings.sim_state
        self.pin = self.settings.pin
        self.pin_attempts_left = self.settings.pin_attempts
        self.functionality, self.deregistered, self.detached = 1, False, False
        self._could_register = False
        self.update_registration(now)

    def trace(self, line: str) -> None:
        """One line for the log, if anyone listens."""
        if self.tracer is not None:
            self.tracer(line)

    def next_deadline(self) -> float | None:
        """The earliest of: end of the network search, end of a call set-up, next RING."""
        deadlines = [self._search_until]
        if self.call is not None:
            deadlines.append(self.call.ready_at)
        if self.ringing is not None:
            deadlines.append(self.ringing.next_ring_at)
        present = [deadline for deadline in deadlines if deadline is not None]
        return min(present) if present else None

    def on_timer(self, now: float) -> None:
        """Run what is due."""
        self.now = now
        if self._search_until is not None and self._search_until <= now:
            self._search_until = None
            self.update_registration(now)
        call = self.call
        if call is not None and call.ready_at is not None and call.ready_at <= now:
            self._finish_setup(call, now)
        if self.ringing is not None and self.ringing.next_ring_at <= now:
            self._ring(now)

    def configure(self, **changes: Any) -> None:
        """Change settings live (see :class:`SimulatorSettings`); reacts as the network would."""
        self.settings = dataclasses.replace(self.settings, **changes)
        if "sim_state" in changes:
            self.set_sim_state(self.settings.sim_state, self.now)
        if "pin" in changes:
            self.pin = self.settings.pin
        self.update_registration(self.now)

    # ------------------------------------------------------------------ SIM
    def set_sim_state(self, state: SimState, now: float) -> None:
        """The SIM changes (inserted, removed, locked)."""
        self.sim_state = state
        if state is SimState.PIN:
            self.pin_attempts_left = self.settings.pin_attempts
        self.update_registration(now)

    def require_sim(self) -> None:
        """CommandError unless the SIM is ready (27.007 §9.2.1 codes 10-12)."""
        if self.sim_state is SimState.ABSENT:
            raise CommandError(CmeError.SIM_NOT_INSERTED)
        if self.sim_state is SimState.PIN:
            raise CommandError(CmeError.SIM_PIN_REQUIRED)
        if self.sim_state is SimState.PUK:
            raise CommandError(CmeError.SIM_PUK_REQUIRED)

    def enter_pin(self, code: str, new_pin: str | None, now: float) -> None:
        """``AT+CPIN=<pin>`` or ``AT+CPIN=<puk>,<new pin>`` (27.007 §8.3)."""
        if self.sim_state is SimState.ABSENT:
            raise CommandError(CmeError.SIM_NOT_INSERTED)
        if self.sim_state is SimState.READY:
            raise CommandError(CmeError.OPERATION_NOT_ALLOWED)
        if self.sim_state is SimState.PUK:
            if new_pin is None or not _valid_pin(new_pin):
                raise CommandError(CmeError.INCORRECT_PARAMETERS)
            if code != self.settings.puk:
                raise CommandError(CmeError.INCORRECT_PASSWORD)
            self.pin = new_pin
        elif code != self.pin:
            self.pin_attempts_left -= 1
            if self.pin_attempts_left <= 0:
                self.sim_state = SimState.PUK  # three wrong PINs block the SIM
            raise CommandError(CmeError.INCORRECT_PASSWORD)
        self.sim_state = SimState.READY
        self.pin_attempts_left = self.settings.pin_attempts
        self.update_registration(now)

    # ------------------------------------------------------------------ registration
    def _can_register(self) -> bool:
        return self.sim_state is SimState.READY and self.functionality == 1 and not self.deregistered

    def cs_stat(self) -> int:
        """``+CREG`` <stat> now."""
        if not self._can_register():
            return 0
        return 2 if self._search_until is not None else self.settings.creg_stat

    def ps_network_stat(self) -> int:
        """``+CGREG`` <stat> the network offers, attached or not."""
        if not self._can_register():
            return 0
        return 2 if self._search_until is not None else self.settings.cgreg_stat

    def ps_stat(self) -> int:
        """``+CGREG`` <stat> now: 0 after AT+CGATT=0."""
        stat = self.ps_network_stat()
        return 0 if self.detached and stat in REGISTERED else stat

    def attached(self) -> bool:
        """``AT+CGATT?``."""
        return self.ps_stat() in REGISTERED

    def update_registration(self, now: float) -> None:
        """Recompute the registration, send URCs for changes, and drop calls that lost service."""
        self.now = now
        can = self._can_register()
        if can and not self._could_register:
            delay = self.settings.registration_delay
            self._search_until = now + delay if delay > 0 else None
        elif not can:
            self._search_until = None
        self._could_register = can
        stats = (self.cs_stat(), self.ps_stat())
        if stats != self._reported:
            cs_changed, ps_changed = stats[0] != self._reported[0], stats[1] != self._reported[1]
            self._reported = stats
            self.trace(f"registration: CS {stats[0]}, PS {stats[1]}")
            for port in self.ports:
                port.registration_changed(cs_changed, ps_changed)
        call = self.call
        if call is None or not call.connected:
            return
        if self.sim_state is not SimState.READY:
            self.end_call("sim", ResultCode.NO_CARRIER, now)
        elif (stats[1] if call.kind == "packet" else stats[0]) not in REGISTERED:
            self.end_call("registration", ResultCode.NO_CARRIER, now)

    def set_functionality(self, level: int, reset: bool, now: float) -> None:
        """``AT+CFUN=<fun>[,<rst>]``: 0 minimum, 1 full, 4 radio off (27.007 §8.2)."""
        if reset:
            self.end_call("reset", None, now)
            self.ringing = None
            self.power_on(now)
            for port in self.ports:
                port.factory_reset()
        self.functionality = level
        if level != 1:
            self.end_call("reset", ResultCode.NO_CARRIER, now)
            self.ringing = None
        self.update_registration(now)

    def set_attached(self, attach: bool, now: float) -> None:
        """``AT+CGATT=<state>`` (27.007 §10.1.9)."""
        if attach:
            self.require_sim()
            if self.ps_network_stat() not in REGISTERED:
                raise CommandError(CmeError.NO_NETWORK_SERVICE)
            self.detached = False
        else:
            self.detached = True
            if self.call is not None and self.call.kind == "packet":
                self.end_call("deactivated", ResultCode.NO_CARRIER, now)
            for context in self.contexts.values():
                context.active = False
        self.update_registration(now)

    # ------------------------------------------------------------------ PDP contexts
    def define_context(self, context: PdpContext) -> None:
        """``AT+CGDCONT=<cid>,...``: (re)define a context that is not active."""
        old = self.contexts.get(context.cid)
        if old is not None and old.active:
            raise CommandError(CmeError.OPERATION_NOT_ALLOWED)
        self.contexts[context.cid] = context

    def undefine_context(self, cid: int) -> None:
        """``AT+CGDCONT=<cid>``."""
        old = self.contexts.get(cid)
        if old is not None and old.active:
            raise CommandError(CmeError.OPERATION_NOT_ALLOWED)
        self.contexts.pop(cid, None)

    def apn_accepted(self, apn: str) -> bool:
        """Does the network know this APN?"""
        apns = self.settings.apns
        return apns is None or apn.lower() in (known.lower() for known in apns)

    def context_for(self, cid: int | None) -> PdpContext:
        """The context a packet call uses: ``cid``'s, or for none the lowest defined (else the default)."""
        if cid is None:
            if not self.contexts:
                return PdpContext(1, "IP", "")  # 27.007 §10.2.1.1: the MT's default context
            return self.contexts[min(self.contexts)]
        if cid not in self.contexts:
            raise CommandError(CmeError.INCORRECT_PARAMETERS)
        return self.contexts[cid]

    def activate(self, cids: list[int], active: bool, now: float) -> None:
        """``AT+CGACT=<state>[,<cid>...]`` (27.007 §10.1.10); an empty list means every context."""
        targets = cids or sorted(self.contexts)
        for cid in targets:
            if cid not in self.contexts:
                raise CommandError(CmeError.INCORRECT_PARAMETERS)
        if not active:
            for cid in targets:
                self.contexts[cid].active = False
                call = self.call
                if call is not None and call.kind == "packet" and call.cid == cid:
                    self.end_call("deactivated", ResultCode.NO_CARRIER, now)
            return
        self.require_sim()
        for cid in targets:
            failure = self._activation_failure(self.contexts[cid], now)
            if failure is not None:
                raise CommandError(failure)
            self.contexts[cid].active = True

    def _activation_failure(self, context: PdpContext, now: float) -> CmeError | None:
        if self.ps_network_stat() not in REGISTERED:
            self.last_failure = "no network service"
            return CmeError.NO_NETWORK_SERVICE
        if self.detached:
            self.detached = False  # 27.007 §10.1.10: activation attaches first
            self.update_registration(now)
        if context.pdp_type != "IP":
            self.last_failure = f"PDP type {context.pdp_type} cannot be carried over PPP"
            return CmeError.SERVICE_OPTION_NOT_SUPPORTED
        if not self.apn_accepted(context.apn):
            self.last_failure = f"missing or unknown APN {context.apn!r}"
            return CmeError.SERVICE_OPTION_NOT_SUBSCRIBED
        reject = self.settings.packet_reject
        if reject is not None:
            self.last_failure = f"activation rejected: {CME_TEXT[reject]}"
        return reject

    # ------------------------------------------------------------------ calls
    def _require_idle(self) -> None:
        if self.call is not None or self.ringing is not None:
            raise CommandError(CmeError.OPERATION_NOT_ALLOWED)

    def dial_packet(self, port: SimulatedPort, cid: int | None, via_cgdata: bool, now: float) -> None:
        """ATD*99[***<cid>]# or AT+CGDATA: set-up starts (27.007 §10.2.1.1, §10.1.12)."""
        self.require_sim()
        self._require_idle()
        context = self.context_for(cid)
        self.call = Call("packet", context.apn, port, now + self.settings.connect_delay,
                         cid=context.cid, via_cgdata=via_cgdata)  # fmt: skip
        self.trace(f"packet call on cid {context.cid} (APN {context.apn!r})")

    def dial_circuit(self, port: SimulatedPort, number: str, voice: bool, now: float) -> None:
        """ATD<number>[;]: set-up starts, or NO DIALTONE at once without network service."""
        self.require_sim()
        self._require_idle()
        if self.cs_stat() not in REGISTERED:
            self.last_failure = "no network service"
            raise CommandError(ResultCode.NO_DIALTONE)
        self.call = Call("circuit", number, port, now + self.settings.connect_delay, voice=voice)
        self.trace(f"{'voice' if voice else 'data'} call to {number}")

    def answer(self, port: SimulatedPort, now: float) -> None:
        """ATA (or S0 auto-answer): NO CARRIER when nothing rings (V.25ter §6.3)."""
        ringing = self.ringing
        if ringing is None or self.call is not None:
            raise CommandError(ResultCode.NO_CARRIER)
        self.ringing = None
        self.call = Call("incoming", ringing.caller, port, now + self.settings.connect_delay)
        self.trace(f"answering {ringing.caller}")

    def _finish_setup(self, call: Call, now: float) -> None:
        failure = self._setup_failure(call, now)
        if failure is not None:
            self.call = None
            call.owner.call_failed(failure)
            return
        call.ready_at = None
        if call.cid is not None and call.cid in self.contexts:
            self.contexts[call.cid].active = True
        self.counters.calls += 1
        self._to_peer.clear()
        self._events.append(CallConnected(call.kind, call.detail))
        self.trace(f"call connected: {call.kind} {call.detail}")
        call.owner.call_connected(now)

    def _setup_failure(self, call: Call, now: float) -> FinalResult | None:
        if call.kind == "packet":
            failure = self._sim_failure()
            if failure is None:
                context = self.contexts.get(call.cid or 0) or PdpContext(call.cid or 1, "IP", call.detail)
                failure = self._activation_failure(context, now)
            if failure is None:
                return None
            # 27.007 §10.1.12: AT+CGDATA reports the cause; ATD*99# ends like a failed data call
            return failure if call.via_cgdata else ResultCode.NO_CARRIER
        if call.kind == "incoming":
            return None
        if self.cs_stat() not in REGISTERED:
            self.last_failure = "no network service"
            return ResultCode.NO_CARRIER
        result = self.settings.dial_result
        if result is DialResult.CONNECT:
            if call.voice:
                self.last_failure = "voice calls are not simulated"
                return ResultCode.NO_CARRIER
            return None
        self.last_failure = f"call to {call.detail}: {result.value}"
        return DIAL_RESULTS[result]

    def _sim_failure(self) -> CmeError | None:
        try:
            self.require_sim()
        except CommandError as error:
            self.last_failure = f"SIM {self.sim_state.value}"
            return CmeError(error.result)
        return None

    def abort_setup(self, port: SimulatedPort) -> None:
        """A character from the DTE (or DTR) aborts the set-up (V.25ter §6.3.1): NO CARRIER."""
        call = self.call
        if call is not None and call.owner is port and not call.connected:
            self.call = None
            self.counters.dial_aborts += 1
            self.last_failure = "call set-up aborted by the DTE"
            port.call_failed(ResultCode.NO_CARRIER)

    def end_call(self, reason: str, notify: ResultCode | None, now: float) -> bool:
        """End the call (set-up or connected); ``notify`` (NO CARRIER) goes to the owner port."""
        call = self.call
        if call is None:
            return False
        self.call = None
        if call.cid is not None and call.cid in self.contexts:
            self.contexts[call.cid].active = False
        if not call.connected:
            call.owner.call_failed(notify or ResultCode.NO_CARRIER)
            return True
        self.last_failure = f"call ended: {reason}"
        self._events.append(CallEnded(reason))
        self.trace(f"call ended: {reason}")
        call.owner.call_ended(notify)
        return True

    def drop_call(self, reason: str, now: float) -> bool:
        """The network (or the peer) ends the call, or the caller of a ringing call gives up."""
        self.now = now
        if self.ringing is not None:
            self.ringing = None
            self.counters.missed_calls += 1
            return True
        return self.end_call(reason, ResultCode.NO_CARRIER, now)

    # ------------------------------------------------------------------ incoming calls
    def incoming_call(self, caller: str, now: float) -> bool:
        """The network offers a call; False when the modem is busy or has no service."""
        self.now = now
        if self.call is not None or self.ringing is not None or self.cs_stat() not in REGISTERED:
            self.counters.refused_incoming += 1
            return False
        self.ringing = Ringing(caller, now)
        self._ring(now)
        return True

    def reject_incoming(self) -> bool:
        """ATH while ringing: the caller gets busy."""
        if self.ringing is None:
            return False
        self.ringing = None
        self.counters.missed_calls += 1
        return True

    def _ring(self, now: float) -> None:
        ringing = self.ringing
        if ringing is None:
            return
        if ringing.rings >= self.settings.max_rings:
            self.ringing = None  # the caller gives up; no result code for that
            self.counters.missed_calls += 1
            self.trace(f"{ringing.caller} gave up after {ringing.rings} rings")
            return
        ringing.rings += 1
        ringing.next_ring_at = now + self.settings.ring_interval
        self.counters.rings += 1
        for port in self.ports:
            port.ring(ringing.caller)
        for port in self.ports:
            if port.auto_answers(ringing.rings):
                self.answer(port, now)
                port.enter_dialling(now)
                return

    # ------------------------------------------------------------------ data
    def from_dte(self, port: SimulatedPort, data: bytes) -> None:
        """Online octets of the call's owner, for the peer (bounded)."""
        room = self.settings.max_output - len(self._to_peer)
        if room < len(data):
            self.counters.peer_output_dropped += len(data) - max(room, 0)
            data = data[: max(room, 0)]
        self._to_peer += data
        self.counters.to_peer += len(data)

    def peer_receive(self, data: bytes, now: float) -> None:
        """Octets from the network peer: to the owner port while it is online, else dropped."""
        self.now = now
        call = self.call
        if call is None or not call.connected or not call.owner.online:
            self.counters.peer_dropped_offline += len(data)
            return
        self.counters.from_peer += len(data)
        call.owner.data_from_peer(data)

    def take_peer_output(self, limit: int | None = None) -> bytes:
        """Octets for the network peer."""
        count = len(self._to_peer) if limit is None else min(limit, len(self._to_peer))
        data = bytes(self._to_peer[:count])
        del self._to_peer[:count]
        return data

    @property
    def peer_output_pending(self) -> int:
        """Octets waiting for the network peer."""
        return len(self._to_peer)

    def take_events(self) -> list[SimulatorEvent]:
        """Call events since the last call."""
        events, self._events = self._events, []
        return events


def _valid_pin(pin: str) -> bool:
    return 4 <= len(pin) <= 8 and pin.isascii() and pin.isdigit()
