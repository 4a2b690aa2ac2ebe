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
contexts, the call) under one :class:`~wipstack.cellular.sim_port.SimulatedPort` (the AT
interpreter of the serial line).  A 27.010 multiplexer would put one port per DLCI over the
same radio.  Behaviour choices where modems differ:

* ATD*99# failures (no packet service, unknown APN, non-IP context) end in NO CARRIER after
  ``connect_delay``; AT+CGDATA reports them as +CME ERROR 30/133/132.  A SIM that is not ready
  gives +CME ERROR 10/11/12 at once; an undefined <cid> gives +CME ERROR 50.
* ATD<number>; (voice) never connects: the configured failure, or NO CARRIER.
* ATD<number> without circuit-switched registration gives NO DIALTONE at once.
* DTR off with &D2 hangs up and answers OK (V.25ter §6.2.9); during set-up it aborts (NO CARRIER).
* URCs are not sent (and are counted) while the port is in online data mode.
"""

from __future__ import annotations

from typing import Any

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
        self.radio.power_on(now)

    # ------------------------------------------------------------------ the DTE's line
    def receive(self, data: bytes, now: float) -> None:
        """Octets from the DTE, split anywhere."""
        self.port.receive(data, now)

    def bytes_to_send(self, limit: int | None = None) -> bytes:
        """Octets for the DTE (at most ``limit``)."""
        return self.port.take_output(limit)

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
        present = [deadline for deadline in deadlines if deadline is not None]
        return min(present) if present else None

    def on_timer(self, now: float) -> None:
        """Run every timer that is due."""
        self.radio.on_timer(now)
        self.port.on_timer(now)

    # ------------------------------------------------------------------ inspection
    @property
    def state(self) -> ModemState:
        """COMMAND, DIALLING, ONLINE or ONLINE_COMMAND."""
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
        """Octets waiting for the DTE."""
        return self.port.output_pending

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
        return (f"state={self.state.value} sim={radio.sim_state.value} creg={radio.cs_stat()} "
                f"cgreg={radio.ps_stat()} call={call_text}{ringing} mute={radio.settings.mute}")  # fmt: skip
