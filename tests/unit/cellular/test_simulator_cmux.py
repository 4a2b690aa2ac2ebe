"""ModemSimulator with AT+CMUX=0: a 27.010 responder whose DLCIs 1-4 are AT interpreters over one radio.

The host is wipstack's own 27.010 initiator; ``Host`` moves frames between it and the
simulator and keeps each DLCI's received octets apart.
"""

from __future__ import annotations

import pytest

from tests.unit.cellular.test_simulator import Rig
from wipstack.cellular.cmux import Multiplexer
from wipstack.cellular.cmux_types import DataReceived, MuxParameters, MuxRole
from wipstack.cellular.simulator import CallConnected, CallEnded, ModemState
from wipstack.wire.cmux import DV, RTR, CmuxFrame, FrameType, msc


class Host:
    """A 27.010 initiator on the simulator's line."""

    def __init__(self, rig: Rig, dlcis: tuple[int, ...] = (1, 2, 3, 4), params: MuxParameters | None = None) -> None:
        self.rig = rig
        self.mux = Multiplexer(MuxRole.INITIATOR, params or MuxParameters())
        self.received: dict[int, bytearray] = {}
        self.mux.start(rig.now)
        self.settle()
        for dlci in dlcis:
            self.mux.open_channel(dlci, rig.now)
        self.settle()

    def settle(self) -> None:
        for _ in range(200):
            to_host, to_modem = self.rig.sim.bytes_to_send(), self.mux.bytes_to_send()
            for event in self.mux.receive(to_host, self.rig.now) if to_host else []:
                if isinstance(event, DataReceived):
                    self.received.setdefault(event.dlci, bytearray()).extend(event.data)
            if to_modem:
                self.rig.sim.receive(to_modem, self.rig.now)
            if not to_host and not to_modem:
                return
        raise AssertionError("the line never settles")

    def take(self, dlci: int) -> bytes:
        self.settle()
        data = bytes(self.received.pop(dlci, b""))
        return data

    def at(self, dlci: int, line: str) -> bytes:
        self.take(dlci)
        self.mux.send(dlci, line.encode() + b"\r")
        return self.take(dlci)

    def advance(self, seconds: float) -> None:
        until = self.rig.now + seconds
        for _ in range(1000):
            due = [d for d in (self.rig.sim.next_deadline(), self.mux.next_deadline()) if d is not None and d <= until]
            if not due:
                break
            self.rig.now = max(self.rig.now, min(due))
            self.rig.sim.on_timer(self.rig.now)
            deadline = self.mux.next_deadline()
            if deadline is not None and deadline <= self.rig.now:
                self.mux.on_timer(self.rig.now)
            self.settle()
        self.rig.now = until
        self.settle()


@pytest.fixture
def rig() -> Rig:
    rig = Rig()
    assert rig.at("ATE0") == b"ATE0\r\r\nOK\r\n"
    return rig


def test_cmux_test_and_refusals(rig: Rig) -> None:
    assert (
        rig.at("AT+CMUX=?") == b"\r\n+CMUX: (0),(0),(1-6),(1-32768),(1-255),(0-100),(2-255),(1-255),(1-7)\r\n\r\nOK\r\n"
    )
    assert rig.at("AT+CMEE=1;+CMUX?") == b"\r\n+CME ERROR: 3\r\n"
    assert rig.at("AT+CMUX=1") == b"\r\n+CME ERROR: 4\r\n"
    assert rig.at("AT+CMUX=0,0,5,0") == b"\r\n+CME ERROR: 50\r\n"
    assert rig.at("AT+CMUX=0;+NOPE") == b"\r\nERROR\r\n"  # a failed line does not start the multiplexer
    assert rig.sim.mux is None
    assert rig.at("AT") == b"\r\nOK\r\n"


def test_cmux_channels_are_independent_at_interpreters(rig: Rig) -> None:
    assert rig.at("AT+CMUX=0,0,5,64,10,3,30") == b"\r\nOK\r\n"
    host = Host(rig)
    assert sorted(rig.sim.channels) == [1, 2, 3, 4]
    assert host.at(1, "AT") == b"AT\r\r\nOK\r\n"  # each channel starts with factory settings: echo on
    assert host.at(2, "ATE0") == b"ATE0\r\r\nOK\r\n"
    assert host.at(2, "AT+CSQ") == b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n"
    assert host.at(1, "AT") == b"AT\r\r\nOK\r\n"
    assert host.at(3, "AT+CMUX?") == b"AT+CMUX?\r\r\n+CMUX: 0,0,5,64,10,3,30,10,2\r\n\r\nOK\r\n"
    assert host.at(4, "AT+CMUX=0") == b"AT+CMUX=0\r\r\nERROR\r\n"  # no multiplexer inside a channel


def test_cmux_frames_right_behind_the_command_line(rig: Rig) -> None:
    host = Multiplexer(MuxRole.INITIATOR, MuxParameters())
    host.start(rig.now)
    rig.sim.receive(b"AT+CMUX=0\r" + host.bytes_to_send(), rig.now)  # SABM 0 in the same chunk
    out = rig.sim.bytes_to_send()
    assert out.startswith(b"\r\nOK\r\n")
    host.receive(out[len(b"\r\nOK\r\n") :], rig.now)
    assert host.started


def test_cmux_data_call_on_one_channel_urcs_on_all(rig: Rig) -> None:
    rig.at("AT+CMUX=0")
    host = Host(rig)
    for dlci in (1, 2, 3, 4):
        host.at(dlci, "ATE0")
    host.at(1, "AT+CREG=1")
    host.at(3, "AT+CLIP=1")
    assert host.at(2, "ATD*99#") == b""
    host.advance(0.5)
    assert host.take(2) == b"\r\nCONNECT\r\n"
    assert rig.sim.events() == [CallConnected("packet", "")]
    assert rig.sim.channels[2].state is ModemState.ONLINE
    host.mux.send(2, b"\x7eppp\x7e")
    host.settle()
    assert rig.sim.peer_bytes_to_send() == b"\x7eppp\x7e"
    rig.sim.peer_receive(b"\x7ereply\x7e", rig.now)
    assert host.take(2) == b"\x7ereply\x7e"
    rig.sim.configure(creg_stat=5)
    assert host.take(1) == b"\r\n+CREG: 5\r\n"
    assert host.take(3) == b""
    assert host.at(1, "ATH") == b"\r\nOK\r\n"  # ATH on another channel ends the MT's call
    assert host.take(2) == b"\r\nNO CARRIER\r\n"
    assert rig.sim.events() == [CallEnded("hangup")]
    rig.sim.incoming_call("555", rig.now)
    assert host.take(1) == b"\r\nRING\r\n"
    assert host.take(3) == b'\r\nRING\r\n\r\n+CLIP: "555",129\r\n'
    assert host.at(4, "ATA") == b""
    host.advance(0.5)
    assert host.take(4) == b"\r\nCONNECT\r\n"


def test_cmux_closing_the_call_channel_ends_the_call(rig: Rig) -> None:
    rig.at("AT+CMUX=0")
    host = Host(rig, (1, 2))
    host.at(2, "ATD*99#")
    host.advance(0.5)
    rig.sim.events()
    host.mux.close_channel(2, rig.now)
    host.settle()
    assert sorted(rig.sim.channels) == [1]
    assert rig.sim.events() == [CallEnded("mux")]


def test_cmux_msc_without_rtc_is_dtr_off(rig: Rig) -> None:
    rig.at("AT+CMUX=0")
    host = Host(rig, (1, 2))
    host.at(2, "ATD*99#")
    host.advance(0.5)
    rig.sim.events()
    message = msc(2, RTR | DV, command=True).emit()  # RTC (DTR) cleared
    rig.sim.receive(CmuxFrame(0, FrameType.UIH, False, True, message).emit(), rig.now)
    assert rig.sim.events() == [CallEnded("dtr")]
    assert host.take(2).endswith(b"\r\nOK\r\n")


def test_cmux_close_down_gives_the_line_back_to_at(rig: Rig) -> None:
    rig.at("AT+CMUX=0")
    host = Host(rig)
    host.at(1, "AT+CREG=1")
    host.mux.close_down(rig.now)
    host.settle()
    assert host.mux.closed and rig.sim.mux is None and not rig.sim.channels
    assert rig.at("AT") == b"\r\nOK\r\n"  # the line's own settings (E0) are back
    rig.sim.configure(creg_stat=0)
    assert rig.sim.bytes_to_send() == b""  # the channel's AT+CREG=1 went with it


def test_cmux_mute_silences_the_multiplexer(rig: Rig) -> None:
    rig.at("AT+CMUX=0")
    host = Host(rig, (1,))
    rig.sim.configure(mute=True)
    host.mux.send(1, b"AT\r")
    host.settle()
    assert host.take(1) == b""
    rig.sim.configure(mute=False)
    assert host.at(1, "AT") == b"AT\r\r\nOK\r\n"
