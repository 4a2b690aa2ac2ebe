"""A 3GPP TS 27.007 cellular modem, simulated without I/O: the DCE end of a DTE's serial line.

:class:`ModemSimulator` answers AT commands the way a GSM/GPRS modem does (V.25ter basics,
SIM PIN, registration with URCs, PDP contexts, packet and circuit-switched data calls,
incoming calls with RING/+CLIP and auto-answer, the ``+++`` escape) and, once a call is
connected, bridges the DTE's octets to a "network peer" and back.  It is sans-I/O: octets go
in with :meth:`~ModemSimulator.receive` (from the DTE) and :meth:`~ModemSimulator.peer_receive`
(from the peer) and come out of :meth:`~ModemSimulator.bytes_to_send` and
:meth:`~ModemSimulator.peer_bytes_to_send`; time is passed in as ``now`` and timers run from
:meth:`~ModemSimulator.on_timer` at :meth:`~ModemSimulator.next_deadline`.  The driver
(``wipstack.drivers.modem_sim``) connects the peer on :class:`CallConnected` and disconnects
it on :class:`CallEnded`.

The network side is scripted by the owner: :meth:`~ModemSimulator.incoming_call`,
:meth:`~ModemSimulator.drop_call`, :meth:`~ModemSimulator.peer_hung_up`,
:meth:`~ModemSimulator.set_dtr` and :meth:`~ModemSimulator.configure` (SIM state,
registration, dial result, ``mute`` - a modem that stops answering).

Structure: one :class:`~wipstack.cellular.sim_radio.SimulatedRadio` (SIM, registration,
contexts, the call) under :class:`~wipstack.cellular.sim_port.SimulatedPort` AT interpreters:
the serial line's own, and after ``AT+CMUX=0`` (27.007 §5.7) one per open DLCI 1-4 of a 27.010
responder :class:`~wipstack.cellular.cmux.Multiplexer` (:attr:`ModemSimulator.channels`).  The
``OK`` goes out as text, then the line carries frames; input is fed to the multiplexer frame by
frame, so octets after a close-down (CLD, DISC 0) in the same chunk are AT again.  Each DLCI
starts with factory settings and gets its own URCs and RINGs; the call may be made on any
DLCI, ATH on any DLCI ends it (its own DLCI then sees NO CARRIER), an MSC without RTC is a DTR
drop for that DLCI, and closing the DLCI ends its call (reason "mux").  Behaviour choices
where modems differ:

* ATD*99# failures (no packet service, unknown APN, non-IP context) end in NO CARRIER after
  ``connect_delay``; AT+CGDATA reports them as +CME ERROR 30/133/132.  A SIM that is not ready
  gives +CME ERROR 10/11/12 at once; an undefined <cid> gives +CME ERROR 50.
* ATD<number>; (voice) never connects: the configured failure, or NO CARRIER.
* ATD<number> without circuit-switched registration gives NO DIALTONE at once.
* DTR off with &D2 hangs up and answers OK (V.25ter §6.2.9); during set-up it aborts (NO CARRIER).
* URCs are not sent (and are counted) while the port is in online data mode.
* The physical line's DTR (:meth:`~ModemSimulator.set_dtr`) only concerns the line's own AT
  interpreter; under a multiplexer each DLCI's DTR is the RTC bit of its MSC.
"""

from __future__ import annotations

from typing import Any

from wipstack.cellular.cmux import Multiplexer
from wipstack.cellular.cmux_types import (
    ChannelClosed,
    ChannelOpened,
    DataReceived,
    ModemStatusChanged,
    MuxClosed,
    MuxEvent,
    MuxParameters,
    MuxRole,
)
from wipstack.cellular.sim_port import SimulatedPort
from wipstack.cellular.sim_radio import SimulatedRadio, Tracer
from wipstack.cellular.sim_types import (
    CallConnected,
    CallEnded,
    CmeError,
    DialResult,
    ModemState,
    ResultCode,
    SimState,
    SimulatorCounters,
    SimulatorEvent,
    SimulatorSettings,
)
from wipstack.wire.cmux import FLAG

#: DLCIs a multiplexer accepts, each its own AT interpreter.
MUX_CHANNELS = range(1, 5)
#: Octets of a channel's output handed to the multiplexer before the port's own buffer holds the rest.
MUX_QUEUE = 4096

__all__ = [
    "CallConnected",
    "CallEnded",
    "CmeError",
    "DialResult",
    "ModemSimulator",
    "ModemState",
    "ResultCode",
    "SimState",
    "SimulatedPort",
    "SimulatedRadio",
    "SimulatorCounters",
    "SimulatorEvent",
    "SimulatorSettings",
]


class ModemSimulator:
    """A simulated 27.007 modem on one serial line (see the module docstring).

    ``now`` is the power-on time (registration searching starts then); ``tracer`` gets one
    line per command line, result code and call event.
    """

    def __init__(self, settings: SimulatorSettings | None = None, *, now: float = 0.0,
                 tracer: Tracer | None = None) -> None:  # fmt: skip
        self.radio = SimulatedRadio(settings or SimulatorSettings(), tracer)
        self.port = SimulatedPort(self.radio)
        self.port.allows_mux = True
        #: The 27.010 responder after AT+CMUX=0, and the AT interpreter of each open DLCI.
        self.mux: Multiplexer | None = None
        self.channels: dict[int, SimulatedPort] = {}
        self._mux_tail = bytearray()
        self.radio.power_on(now)

    # ------------------------------------------------------------------ the DTE's line
    def receive(self, data: bytes, now: float) -> None:
        """Octets from the DTE, split anywhere."""
        while data:
            mux = self.mux
            if mux is None:
                taken = self.port.receive(data, now)
                params = self.port.mux_request
                if params is None:
                    return
                self._start_mux(params, now)  # AT+CMUX answered OK: what follows is 27.010 frames
                data = data[taken:]
            elif self.radio.settings.mute:
                self.radio.counters.ignored_while_muted += len(data)
                return
            else:
                # frame by frame (each ends at a flag), so octets after a close-down go to AT again
                end = data.find(FLAG) + 1 or len(data)
                self._mux_events(mux.receive(data[:end], now), now)
                data = data[end:]

    def bytes_to_send(self, limit: int | None = None) -> bytes:
        """Octets for the DTE (at most ``limit``): AT text, or 27.010 frames once multiplexed."""
        data = bytes(self._mux_tail[:limit])  # the last frames of a multiplexer that has closed
        del self._mux_tail[: len(data)]
        # then AT text; under a multiplexer only what preceded it (AT+CMUX's OK)
        data += self.port.take_output(None if limit is None else limit - len(data))
        mux = self.mux
        if mux is not None and (limit is None or len(data) < limit):
            self._fill_mux(mux)
            data += mux.bytes_to_send(None if limit is None else limit - len(data))
        return data

    # ------------------------------------------------------------------ 27.010 (27.007 §5.7)
    def _start_mux(self, params: MuxParameters, now: float) -> None:
        self.port.mux_request = None
        self.mux = Multiplexer(MuxRole.RESPONDER, params, accept_dlcis=MUX_CHANNELS)
        self.radio.detach_port(self.port, now)  # the line carries frames now; its AT interpreter sleeps
        self.radio.trace(f"27.010 multiplexer started (N1 {params.n1})")

    def _mux_events(self, events: list[MuxEvent], now: float) -> None:
        mux = self.mux
        for event in events:
            if isinstance(event, ChannelOpened) and mux is not None:
                port = SimulatedPort(self.radio, name=f"dlci{event.dlci}")
                port.mux_parameters = mux.params
                self.channels[event.dlci] = port
                self.radio.trace(f"DLCI {event.dlci} opened")
            elif isinstance(event, DataReceived) and event.dlci in self.channels:
                self.channels[event.dlci].receive(event.data, now)
            elif isinstance(event, ModemStatusChanged) and event.dlci in self.channels:
                self.channels[event.dlci].set_dtr(event.status.rtc, now)  # 27.010 §5.4.6.3.7: RTC is DTR
            elif isinstance(event, ChannelClosed) and event.dlci in self.channels:
                self.radio.detach_port(self.channels.pop(event.dlci), now)
                self.radio.trace(f"DLCI {event.dlci} closed ({event.reason})")
            elif isinstance(event, MuxClosed) and mux is not None:
                for port in self.channels.values():
                    self.radio.detach_port(port, now)
                self.channels.clear()
                self._mux_tail += mux.bytes_to_send()  # e.g. the answer to CLD still goes out
                self.mux = None
                self.radio.attach_port(self.port)
                self.port.back_to_command_state()
                self.radio.trace(f"27.010 multiplexer closed ({event.reason}); the line speaks AT again")

    def _fill_mux(self, mux: Multiplexer) -> None:
        for dlci, port in self.channels.items():
            room = MUX_QUEUE - mux.queued(dlci)
            if port.output_pending and room > 0 and mux.is_open(dlci):
                mux.send(dlci, port.take_output(room))

    def set_dtr(self, on: bool, now: float) -> None:
        """The DTE raised or dropped DTR (AT&D decides what that does)."""
        self.port.set_dtr(on, now)

    @property
    def carrier(self) -> bool:
        """DCD toward the DTE (AT&C)."""
        return self.port.carrier

    # ------------------------------------------------------------------ the network peer
    def peer_receive(self, data: bytes, now: float) -> None:
        """Octets from the network peer: to the DTE while a call is online, else dropped and counted."""
        self.radio.peer_receive(data, now)

    def peer_bytes_to_send(self, limit: int | None = None) -> bytes:
        """The DTE's octets for the network peer (only produced while online)."""
        return self.radio.take_peer_output(limit)

    def events(self) -> list[SimulatorEvent]:
        """CallConnected / CallEnded since the last call."""
        return self.radio.take_events()

    # ------------------------------------------------------------------ scripting the network
    def incoming_call(self, caller: str, now: float) -> bool:
        """Someone calls: RING every ``ring_interval`` (False when busy or without service)."""
        return self.radio.incoming_call(caller, now)

    def drop_call(self, now: float) -> bool:
        """The network ends the call (NO CARRIER) or the caller of a ringing call gives up."""
        return self.radio.drop_call("network", now)

    def peer_hung_up(self, now: float) -> bool:
        """The network peer closed its end: the call ends like :meth:`drop_call`."""
        return self.radio.drop_call("peer", now)

    def configure(self, **changes: Any) -> None:
        """Change :class:`SimulatorSettings` fields live (``sim_state``, ``creg_stat``, ``mute``...)."""
        self.radio.configure(**changes)

    # ------------------------------------------------------------------ time
    def next_deadline(self) -> float | None:
        """When :meth:`on_timer` is next due."""
        deadlines = [self.radio.next_deadline(), self.port.next_deadline()]
        deadlines += [port.next_deadline() for port in self.channels.values()]
        if self.mux is not None:
            deadlines.append(self.mux.next_deadline())
        present = [deadline for deadline in deadlines if deadline is not None]
        return min(present) if present else None

    def on_timer(self, now: float) -> None:
        """Run every timer that is due."""
        self.radio.on_timer(now)
        for port in [self.port, *self.channels.values()]:
            port.on_timer(now)
        mux = self.mux
        if mux is not None:
            deadline = mux.next_deadline()
            if deadline is not None and deadline <= now:
                self._mux_events(mux.on_timer(now), now)

    # ------------------------------------------------------------------ inspection
    @property
    def state(self) -> ModemState:
        """COMMAND, DIALLING, ONLINE or ONLINE_COMMAND of the line's own AT interpreter (not of DLCIs)."""
        return self.port.state

    @property
    def settings(self) -> SimulatorSettings:
        """The settings in force."""
        return self.radio.settings

    @property
    def counters(self) -> SimulatorCounters:
        """What was done and dropped."""
        return self.radio.counters

    @property
    def last_commands(self) -> list[str]:
        """The most recent command lines, oldest first ("AT..." as typed, without the CR)."""
        return list(self.radio.last_commands)

    @property
    def dte_output_pending(self) -> int:
        """Octets waiting for the DTE (with a multiplexer: its line buffer and every channel's)."""
        pending = len(self._mux_tail) + self.port.output_pending
        pending += sum(port.output_pending for port in self.channels.values())
        return pending + (self.mux.output_pending if self.mux is not None else 0)

    @property
    def peer_output_pending(self) -> int:
        """Octets waiting for the network peer."""
        return self.radio.peer_output_pending

    def status(self) -> str:
        """One line: state, SIM, registration, call."""
        radio = self.radio
        call = radio.call
        call_text = "none" if call is None else f"{call.kind} {call.detail!r} {'up' if call.connected else 'set-up'}"
        ringing = f" ringing={radio.ringing.caller!r}" if radio.ringing is not None else ""
        mux = f" cmux={sorted(self.channels)}" if self.mux is not None else ""
        return (f"state={self.state.value} sim={radio.sim_state.value} creg={radio.cs_stat()} "
                f"cgreg={radio.ps_stat()} call={call_text}{ringing}{mux} mute={radio.settings.mute}")  # fmt: skip
