"""wipstack's own 27.007 dialer against the simulator: both sans-I/O, joined by an in-memory line.

These check that the two agree on the conversation (echo, PIN, registration polling, CONNECT,
the escape, DTR, RING/+CLIP), not either one's details, which their own tests cover.
"""

from __future__ import annotations

from wipstack.cellular import dialer_types as dialer_events
from wipstack.cellular.dialer import DialerSettings, DialerState, ModemDialer
from wipstack.cellular.simulator import CallConnected, CallEnded, ModemSimulator, ModemState, SimulatorSettings


class Line:
    """A dialer and a simulated modem on one serial line, with a virtual clock; DTR is mirrored."""

    def __init__(self, dialer: ModemDialer, sim: ModemSimulator) -> None:
        self.dialer, self.sim, self.now = dialer, sim, 0.0
        self.dialer_events: list[object] = []
        self.sim_events: list[object] = []

    def run(self, seconds: float) -> None:
        """Move octets both ways and fire timers, on time, for ``seconds`` of virtual time."""
        until = self.now + seconds
        self._settle()
        for _ in range(10_000):
            due = [d for d in (self.dialer.next_deadline(), self.sim.next_deadline()) if d is not None and d <= until]
            if not due:
                break
            self.now = max(self.now, min(due))
            for party in (self.dialer, self.sim):
                deadline = party.next_deadline()
                if deadline is not None and deadline <= self.now:
                    party.on_timer(self.now)
            self._settle()
        else:
            raise AssertionError("timers never settle")
        self.now = until
        self._settle()

    def _settle(self) -> None:
        for _ in range(1000):
            self.sim.set_dtr(self.dialer.dtr, self.now)
            to_modem, to_dte = self.dialer.bytes_to_send(), self.sim.bytes_to_send()
            if to_modem:
                self.sim.receive(to_modem, self.now)
            if to_dte:
                self.dialer.receive(to_dte, self.now)
            self.dialer_events += self.dialer.events()
            self.sim_events += self.sim.events()
            if not to_modem and not to_dte:
                return
        raise AssertionError("the line never settles")


def test_packet_call_with_pin_and_registration_then_escape_hang_up() -> None:
    sim = ModemSimulator(SimulatorSettings(sim_state="pin", registration_delay=2.0))
    line = Line(ModemDialer(DialerSettings(pin="1234")), sim)
    line.dialer.dial_packet("internet", 1, line.now)
    line.run(6.0)
    assert line.dialer.state is DialerState.ONLINE
    assert line.sim_events == [CallConnected("packet", "internet")]
    assert 'AT+CPIN="1234"' in line.sim.last_commands
    line.dialer.send_data(b"~frame~")
    line.run(0.1)
    assert line.sim.peer_bytes_to_send() == b"~frame~"
    line.sim.peer_receive(b"~reply~", line.now)
    line.run(0.1)
    assert line.dialer.take_data() == b"~reply~"
    line.dialer.hang_up(line.now)
    line.run(5.0)
    assert line.dialer.state is DialerState.IDLE
    assert line.sim_events[-1] == CallEnded("hangup")
    assert line.sim.state is ModemState.COMMAND and line.sim.counters.escapes == 1


def test_packet_call_hung_up_with_dtr() -> None:
    line = Line(ModemDialer(DialerSettings(use_dtr=True)), ModemSimulator())
    line.dialer.dial_packet("internet", 1, line.now)
    line.run(3.0)
    assert line.dialer.state is DialerState.ONLINE
    line.dialer.hang_up(line.now)
    line.run(5.0)
    assert line.dialer.state is DialerState.IDLE
    assert line.sim_events[-1] == CallEnded("dtr")


def test_circuit_call_busy_and_network_drop() -> None:
    line = Line(ModemDialer(), ModemSimulator(SimulatorSettings(dial_result="busy")))
    line.dialer.dial_circuit("5551234", line.now)
    line.run(3.0)
    failures = [event for event in line.dialer_events if isinstance(event, dialer_events.CallFailed)]
    assert [failure.failure for failure in failures] == [dialer_events.CallFailure.BUSY]
    line.sim.configure(dial_result="connect")
    line.dialer.dial_circuit("5551234", line.now)
    line.run(3.0)
    assert line.dialer.state is DialerState.ONLINE
    line.sim.drop_call(line.now)
    line.run(1.0)
    assert line.dialer.state is DialerState.IDLE
    assert line.dialer_events[-1] == dialer_events.CallEnded("no carrier")


def test_incoming_call_answered_after_the_rings_the_dialer_wants() -> None:
    line = Line(ModemDialer(), ModemSimulator())
    line.dialer.listen(2, "+4930123", line.now)
    line.run(3.0)
    assert line.sim.incoming_call("+4930123", line.now)
    line.run(4.0)
    assert line.dialer.state is DialerState.ONLINE
    assert line.sim_events == [CallConnected("incoming", "+4930123")]
    assert line.sim.counters.rings == 2


def test_packet_call_over_cmux_and_close_down() -> None:
    line = Line(ModemDialer(DialerSettings(use_cmux=True)), ModemSimulator())
    line.dialer.dial_packet("internet", 1, line.now)
    line.run(6.0)
    assert line.dialer.state is DialerState.ONLINE
    assert sorted(line.sim.channels) == [1, 2]
    assert line.sim.radio.call is not None and line.sim.radio.call.owner is line.sim.channels[2]
    line.dialer.send_data(b"~frame~")
    line.run(0.2)
    assert line.sim.peer_bytes_to_send() == b"~frame~"
    line.sim.peer_receive(b"~reply~", line.now)
    line.run(0.2)
    assert line.dialer.take_data() == b"~reply~"
    line.dialer.hang_up(line.now)  # ATH on DLCI 1
    line.run(3.0)
    assert line.dialer.state is DialerState.IDLE
    assert line.sim_events[-1] == CallEnded("hangup")
    line.dialer.close_multiplexer(line.now)
    line.run(3.0)
    assert line.sim.mux is None
