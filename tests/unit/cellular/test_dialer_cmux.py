"""The dialer over 27.010 CMUX: AT on DLCI 1, the data call on DLCI 2.

The modem side is a *responder* :class:`Multiplexer` with a scripted AT conversation per
DLCI: :meth:`MuxModem.expect` asserts exactly what the dialer wrote on one DLCI and answers
on that DLCI.  Before ``AT+CMUX=0`` is answered the serial line is scripted byte for byte.
"""

from __future__ import annotations

import pytest

from tests.unit.cellular.test_dialer_support import CPIN_READY, OK, Conversation, ppp_frame
from wipstack.cellular.cmux import (
    ChannelOpened,
    DataReceived,
    FlowControlChanged,
    Multiplexer,
    MuxEvent,
    MuxRole,
    MuxStarted,
)
from wipstack.cellular.dialer import (
    CallConnected,
    CallEnded,
    CallFailed,
    CallFailure,
    DialerSettings,
    DialerState,
    ModemDialer,
    ModemReady,
    Ringing,
)
from wipstack.cellular.dialer_at import MAX_PAYLOAD_BUFFER
from wipstack.wire.cmux import CmuxFrame, FrameType

CMUX = DialerSettings(use_cmux=True)
NO_CARRIER = b"\r\nNO CARRIER\r\n"


class MuxModem:
    """The modem: a responder multiplexer whose DLCIs 1 and 2 are scripted AT channels."""

    def __init__(self, c: Conversation) -> None:
        self.c = c
        self.mux = Multiplexer(MuxRole.RESPONDER, accept_dlcis=(1, 2))
        self.written: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}
        self.events: list[MuxEvent] = []

    def pump(self) -> None:
        """Move octets both ways until both sides are quiet."""
        for _ in range(1000):
            out = self.c.dialer.bytes_to_send()
            for event in self.mux.receive(out, self.c.now) if out else []:
                self.events.append(event)
                if isinstance(event, DataReceived):
                    self.written[event.dlci] += event.data
            back = self.mux.bytes_to_send()
            if back:
                self.c.dialer.receive(back, self.c.now)
            if not out and not back:
                return
        raise AssertionError("the two multiplexers never went quiet")

    def expect(self, dlci: int, sent: bytes, reply: bytes = b"") -> None:
        self.pump()
        assert bytes(self.written[dlci]) == sent
        assert all(not data for d, data in self.written.items() if d != dlci)
        self.written[dlci].clear()
        if reply:
            self.says(dlci, reply)

    def says(self, dlci: int, data: bytes) -> None:
        self.mux.send(dlci, data)
        self.pump()

    def silent(self) -> None:
        self.pump()
        assert not any(self.written.values())

    def advance_to_deadline(self) -> None:
        deadline = min(d for d in (self.c.dialer.next_deadline(), self.mux.next_deadline()) if d is not None)
        self.c.now = deadline
        self.c.dialer.on_timer(deadline)
        self.events += self.mux.on_timer(deadline)
        self.pump()


def mux_up(c: Conversation, *, trailing: bytes = b"") -> MuxModem:
    """Serial AT, ATE0, AT+CMUX=0; then the modem's multiplexer answers the start-up."""
    c.expect(b"AT\r", OK)
    c.expect(b"ATE0\r", OK)
    modem = MuxModem(c)
    c.expect(b"AT+CMUX=0\r", OK + trailing)
    modem.pump()
    assert isinstance(modem.events[0], MuxStarted)
    assert {e.dlci for e in modem.events if isinstance(e, ChannelOpened)} == {1, 2}
    for dlci in (1, 2):
        modem.expect(dlci, b"AT\r", OK)
        modem.expect(dlci, b"ATE0\r", OK)
        modem.expect(dlci, b"ATV1\r", OK)
    modem.expect(1, b"AT+CMEE=1\r", OK)
    modem.expect(1, b"AT+CPIN?\r", CPIN_READY)
    assert c.events() == [ModemReady()]
    return modem


def packet_online() -> tuple[Conversation, MuxModem]:
    dialer = ModemDialer(CMUX)
    dialer.dial_packet("internet", 1, now=0.0)
    c = Conversation(dialer)
    modem = mux_up(c)
    modem.expect(1, b"AT+CGREG?\r", b"\r\n+CGREG: 0,1\r\n" + OK)
    modem.expect(1, b'AT+CGDCONT=1,"IP","internet"\r', OK)
    modem.expect(2, b"ATD*99***1#\r", b"\r\nCONNECT 460800\r\n")
    assert c.events() == [CallConnected("packet", None, "460800")]
    assert dialer.state is DialerState.ONLINE
    return c, modem


def test_cmux_packet_call_uses_dlci_1_for_at_and_dlci_2_for_data() -> None:
    c, modem = packet_online()
    frame = ppp_frame(b"\x00\x21" + NO_CARRIER)
    c.dialer.send_data(frame)
    modem.expect(2, frame)
    modem.says(2, frame)
    assert c.dialer.take_data() == frame  # NO CARRIER inside a frame is payload on DLCI 2 too
    modem.says(1, b"\r\n+CSQ: 20,99\r\n\r\nRING\r\n")  # URCs on DLCI 1 do not touch the call
    assert c.dialer.state is DialerState.ONLINE
    modem.says(2, NO_CARRIER)
    assert c.events() == [CallEnded("no carrier")]
    assert "[1]> AT+CGREG?" in c.dialer.transcript
    assert "[2]> ATD*99***1#" in c.dialer.transcript


def test_cmux_multiplexer_octets_in_the_same_chunk_as_ok() -> None:
    """Frames right behind AT+CMUX=0's OK in the same read belong to the multiplexer."""
    dialer = ModemDialer(CMUX)
    dialer.dial_packet("internet", 1, now=0.0)
    c = Conversation(dialer)
    c.expect(b"AT\r", OK)
    c.expect(b"ATE0\r", OK)
    assert dialer.bytes_to_send() == b"AT+CMUX=0\r"
    # A fast modem: its UA for DLCI 0 (27.010 §5.4.1) arrives glued to the OK.
    dialer.receive(OK + CmuxFrame(0, FrameType.UA, True, True).emit(), 0.0)
    assert "! multiplexer started (DLCI 0 up)" in dialer.transcript
    modem = MuxModem(c)
    modem.pump()
    assert modem.mux.is_open(1) and modem.mux.is_open(2)
    modem.expect(1, b"AT\r", OK)


def test_cmux_hang_up_with_ath_on_dlci_1() -> None:
    c, modem = packet_online()
    c.dialer.hang_up(now=c.now)
    assert c.dialer.state is DialerState.HANGING_UP
    modem.expect(1, b"ATH\r", OK)
    modem.says(2, NO_CARRIER)
    assert c.events() == [CallEnded("local")]
    assert c.dialer.state is DialerState.IDLE
    modem.silent()


def test_cmux_hang_up_falls_back_to_escape_on_dlci_2() -> None:
    c, modem = packet_online()
    c.dialer.hang_up(now=c.now)
    modem.expect(1, b"ATH\r", OK)  # but DLCI 2 stays online
    modem.silent()
    modem.advance_to_deadline()  # no NO CARRIER within command_timeout; DLCI 2 silent longer than the guard
    modem.expect(2, b"+++", OK)
    modem.advance_to_deadline()
    modem.expect(2, b"ATH\r", OK)
    assert c.events() == [CallEnded("local")]


def test_cmux_second_call_reuses_the_multiplexer() -> None:
    c, modem = packet_online()
    modem.says(2, NO_CARRIER)
    c.events()
    c.dialer.dial_circuit("0612345678", now=c.now)
    for dlci in (1, 2):
        modem.expect(dlci, b"AT\r", OK)
        modem.expect(dlci, b"ATE0\r", OK)
        modem.expect(dlci, b"ATV1\r", OK)
    modem.expect(1, b"AT+CMEE=1\r", OK)
    modem.expect(1, b"AT+CPIN?\r", CPIN_READY)
    modem.expect(1, b"AT+CREG?\r", b"\r\n+CREG: 0,5\r\n" + OK)
    modem.expect(2, b"ATD0612345678\r", b"\r\nCONNECT 9600\r\n")
    assert c.events() == [ModemReady(), CallConnected("circuit", None, "9600")]


def test_cmux_incoming_call_rings_on_dlci_1_answers_on_dlci_2() -> None:
    dialer = ModemDialer(CMUX)
    dialer.listen(1, None, now=0.0)
    c = Conversation(dialer)
    c.expect(b"AT\r", OK)
    c.expect(b"ATE0\r", OK)
    modem = MuxModem(c)
    c.expect(b"AT+CMUX=0\r", OK)
    for dlci in (1, 2):
        modem.expect(dlci, b"AT\r", OK)
        modem.expect(dlci, b"ATE0\r", OK)
        modem.expect(dlci, b"ATV1\r", OK)
    modem.expect(1, b"AT+CMEE=1\r", OK)
    modem.expect(1, b"ATS0=0\r", OK)
    modem.expect(1, b"AT+CLIP=1\r", OK)
    modem.expect(1, b"AT+CPIN?\r", CPIN_READY)
    modem.says(1, b'\r\nRING\r\n\r\n+CLIP: "+4930123456",145\r\n')
    modem.expect(2, b"ATA\r", b"\r\nCONNECT\r\n")
    assert c.events() == [ModemReady(), Ringing(1, None), CallConnected("incoming", "+4930123456", "")]


def test_cmux_refused_carries_on_without_multiplexer() -> None:
    dialer = ModemDialer(CMUX)
    dialer.dial_packet("internet", 1, now=0.0)
    c = Conversation(dialer)
    c.expect(b"AT\r", OK)
    c.expect(b"ATE0\r", OK)
    c.expect(b"AT+CMUX=0\r", b"\r\nERROR\r\n")
    c.expect(b"ATV1\r", OK)
    c.expect(b"AT+CMEE=1\r", OK)
    c.expect(b"AT+CPIN?\r", CPIN_READY)
    c.expect(b"AT+CGREG?\r", b"\r\n+CGREG: 0,1\r\n" + OK)
    assert dialer.state is DialerState.DIALLING


def test_cmux_modem_never_answers_sabm_is_not_responding() -> None:
    dialer = ModemDialer(CMUX)
    dialer.dial_packet("internet", 1, now=0.0)
    c = Conversation(dialer)
    c.expect(b"AT\r", OK)
    c.expect(b"ATE0\r", OK)
    c.expect(b"AT+CMUX=0\r", OK)
    sabms = 0
    while dialer.state is not DialerState.IDLE:
        sabms += dialer.bytes_to_send().count(b"\x3f")  # SABM with P (0x2F | 0x10)
        c.to_deadline()
    assert sabms == 4  # the first SABM and N2 = 3 retransmissions (27.010 §5.7.3)
    events = c.events()
    assert isinstance(events[-1], CallFailed)
    assert events[-1].failure is CallFailure.NOT_RESPONDING


@pytest.mark.parametrize("how", ["channel", "multiplexer"])
def test_cmux_modem_closes_while_online(how: str) -> None:
    c, modem = packet_online()
    if how == "channel":
        modem.mux.close_channel(2, c.now)
    else:
        modem.mux.close_down(c.now)
    modem.pump()
    assert c.events() == [CallEnded("channel closed")]
    assert c.dialer.state is DialerState.IDLE


def test_cmux_closed_multiplexer_returns_to_serial_at() -> None:
    c, modem = packet_online()
    modem.says(2, NO_CARRIER)
    c.events()
    c.dialer.close_multiplexer(now=c.now)
    modem.pump()
    assert modem.mux.closed
    c.dialer.dial_circuit("123", now=c.now)
    c.expect(b"AT\r", OK)  # plain serial again
    c.expect(b"ATE0\r", OK)
    assert c.dialer.bytes_to_send() == b"AT+CMUX=0\r"


def test_cmux_flow_control_stops_dlci_2_while_payload_piles_up() -> None:
    c, modem = packet_online()
    frame = ppp_frame(b"y" * 1000)
    while not any(isinstance(e, FlowControlChanged) for e in modem.events):
        modem.says(2, frame)
        assert c.dialer.state is DialerState.ONLINE
    assert FlowControlChanged(2, True) in modem.events
    assert not modem.mux.can_send(2)
    data = c.dialer.take_data()
    assert MAX_PAYLOAD_BUFFER // 2 <= len(data) < MAX_PAYLOAD_BUFFER
    modem.pump()
    assert modem.events[-1] == FlowControlChanged(2, False)
    assert modem.mux.can_send(2)


def test_cmux_line_lost_forgets_the_multiplexer() -> None:
    c, _ = packet_online()
    c.dialer.line_lost(now=c.now)
    assert c.events() == [CallEnded("line lost")]
    c.dialer.dial_packet("internet", 1, now=c.now)
    c.expect(b"AT\r", OK)


def test_cmux_line_lost_while_idle_forgets_the_multiplexer() -> None:
    c, modem = packet_online()
    modem.says(2, NO_CARRIER)
    c.events()
    c.dialer.line_lost(now=c.now)
    assert c.events() == []
    c.dialer.dial_circuit("123", now=c.now)
    c.expect(b"AT\r")  # on the bare serial line, not in a DLCI 1 frame


def test_cmux_close_multiplexer_only_when_idle() -> None:
    c, _ = packet_online()
    with pytest.raises(ValueError):
        c.dialer.close_multiplexer(now=c.now)
