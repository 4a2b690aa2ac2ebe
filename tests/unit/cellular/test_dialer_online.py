"""Online calls: payload, the modem's NO CARRIER between PPP frames, hang-up, a lost line."""

from __future__ import annotations

import pytest

from tests.unit.cellular.test_dialer_support import (
    OK,
    SPLITTERS,
    Conversation,
    Splitter,
    init_exchange,
    ppp_frame,
    registered,
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
)
from wipstack.cellular.dialer_at import MAX_PAYLOAD_BUFFER, PortDrop

NO_CARRIER = b"\r\nNO CARRIER\r\n"
DIAL = [*init_exchange(), registered(), (b'AT+CGDCONT=1,"IP","internet"\r', OK)]


def online(settings: DialerSettings | None = None, split: Splitter = SPLITTERS["whole"]) -> Conversation:
    dialer = ModemDialer(settings)
    dialer.dial_packet("internet", 1, now=0.0)
    c = Conversation(dialer, split)
    c.exchange(DIAL)
    c.expect(b"ATD*99***1#\r", b"\r\nCONNECT 115200\r\n")
    assert c.events() == [ModemReady(), CallConnected("packet", None, "115200")]
    c.now = 100.0
    return c


def dialling(settings: DialerSettings | None = None) -> Conversation:
    dialer = ModemDialer(settings)
    dialer.dial_packet("internet", 1, now=0.0)
    c = Conversation(dialer)
    c.exchange(DIAL)
    c.expect(b"ATD*99***1#\r")
    c.events()
    return c


# --- payload and NO CARRIER -------------------------------------------------------------------


@pytest.mark.parametrize("split", SPLITTERS.values(), ids=SPLITTERS.keys())
def test_online_no_carrier_after_flag_ends_call(split: Splitter) -> None:
    c = online(split=split)
    frames = ppp_frame(b"\xc0\x21\x01\x01") + ppp_frame(b"\x00\x21hello")
    c.says(frames + NO_CARRIER)
    assert c.dialer.take_data() == frames
    assert c.events() == [CallEnded("no carrier")]
    assert c.dialer.state is DialerState.IDLE


@pytest.mark.parametrize("split", SPLITTERS.values(), ids=SPLITTERS.keys())
def test_online_no_carrier_inside_frame_is_payload(split: Splitter) -> None:
    c = online(split=split)
    # The text right after the address/control inside a frame, and at a frame's end before its FCS.
    frames = ppp_frame(b"\x00\x21" + NO_CARRIER) + ppp_frame(b"\x00\x21data" + NO_CARRIER)
    c.says(frames)
    assert c.dialer.take_data() == frames
    assert c.events() == []
    assert c.dialer.state is DialerState.ONLINE


def test_online_no_carrier_without_line_end_after_flag_is_payload() -> None:
    """After a flag the modem's report starts with CR or LF; a frame starting 'NO CARRIER' is payload."""
    c = online()
    data = b"\x7eNO CARRIER\r\x7e"
    c.says(data)
    assert c.dialer.take_data() == data
    assert c.dialer.state is DialerState.ONLINE


@pytest.mark.parametrize("report", [NO_CARRIER, b"NO CARRIER\r\n", b"\n\nNO CARRIER\n"])
def test_online_no_carrier_at_start_of_stream(report: bytes) -> None:
    c = online()
    c.says(report)
    assert c.events() == [CallEnded("no carrier")]
    assert c.dialer.take_data() == b""


def test_online_no_carrier_in_same_chunk_as_connect() -> None:
    dialer = ModemDialer()
    dialer.dial_packet("internet", 1, now=0.0)
    c = Conversation(dialer)
    c.exchange(DIAL)
    c.expect(b"ATD*99***1#\r", b"\r\nCONNECT\r\n" + ppp_frame(b"x") + NO_CARRIER + b"\r\n+CGREG: 0\r\n")
    assert c.events()[-2:] == [CallConnected("packet", None, ""), CallEnded("no carrier")]
    assert dialer.take_data() == ppp_frame(b"x")


def test_online_near_miss_after_flag_is_released_as_payload() -> None:
    c = online(split=SPLITTERS["octets"])
    data = b"\x7e\r\nNO CARRIED\r\n\x7e\r\r\r\r\rNO CARRIER\r\n\x7e\r\n\x7e"
    c.says(data)
    assert c.dialer.take_data() == data
    assert c.dialer.state is DialerState.ONLINE


def test_online_held_octets_wait_for_the_next_chunk() -> None:
    c = online()
    c.says(ppp_frame(b"a") + b"\r\nNO CAR")
    assert c.dialer.take_data() == ppp_frame(b"a")
    c.says(b"RIER\r\n")
    assert c.events() == [CallEnded("no carrier")]


def test_online_send_data_goes_out_untouched() -> None:
    c = online()
    frame = ppp_frame(b"\x00\x21" + NO_CARRIER + b"+++")
    c.dialer.send_data(frame)
    c.expect(frame)


def test_online_payload_buffer_is_bounded() -> None:
    c = online()
    chunk = ppp_frame(b"z" * 4090)
    for _ in range(MAX_PAYLOAD_BUFFER // len(chunk) + 5):
        c.says(chunk)
    assert c.dialer.drops[PortDrop.PAYLOAD_OVERFLOW] > 0
    assert len(c.dialer.take_data()) == MAX_PAYLOAD_BUFFER
    c.says(chunk)
    assert c.dialer.take_data() == chunk


def test_online_after_no_carrier_dials_again() -> None:
    c = online()
    c.says(NO_CARRIER)
    c.events()
    c.dialer.dial_packet("internet", 1, now=c.now)
    c.exchange(DIAL)
    c.expect(b"ATD*99***1#\r", b"\r\nCONNECT\r\n")
    assert c.dialer.state is DialerState.ONLINE


# --- hang-up -----------------------------------------------------------------------------------


def test_online_hang_up_escape_respects_guard_times() -> None:
    c = online(DialerSettings(escape_guard=1.1))
    c.dialer.hang_up(now=c.now)
    assert c.dialer.state is DialerState.HANGING_UP
    with pytest.raises(ValueError):
        c.dialer.send_data(b"late")
    c.silent()
    assert c.dialer.next_deadline() == pytest.approx(101.1)
    c.advance(1.0)
    c.silent()  # the leading guard is not over
    c.advance(0.1)
    c.expect(b"+++")
    assert c.dialer.next_deadline() == pytest.approx(102.2)
    c.advance(1.0)
    c.silent()  # the trailing guard is not over
    c.says(OK)  # the modem's answer to +++ (its own guard has run)
    c.advance(0.1)
    c.expect(b"ATH\r", OK)
    assert c.events() == [CallEnded("local")]
    assert c.dialer.state is DialerState.IDLE


def test_online_hang_up_escape_without_ok_sends_ath_after_timeout() -> None:
    c = online(DialerSettings(escape_guard=1.0, command_timeout=3.0))
    c.dialer.hang_up(now=c.now)
    c.to_deadline()
    c.expect(b"+++")
    assert c.to_deadline() == 1.0
    c.silent()
    assert c.to_deadline() == 3.0
    c.expect(b"ATH\r", OK)
    assert c.events() == [CallEnded("local")]


def test_online_hang_up_payload_before_escape_is_still_delivered() -> None:
    c = online()
    c.dialer.hang_up(now=c.now)
    c.says(ppp_frame(b"last"))
    assert c.dialer.take_data() == ppp_frame(b"last")


def test_online_hang_up_guard_waits_for_undrained_output() -> None:
    c = online(DialerSettings(escape_guard=1.0))
    c.dialer.send_data(b"\x7epending\x7e")
    c.dialer.hang_up(now=c.now)
    assert c.to_deadline() == 1.0
    # The driver has not written the payload yet: another guard follows the write.
    assert c.dialer.bytes_to_send() == b"\x7epending\x7e"
    assert c.to_deadline() == 1.0
    c.expect(b"+++")


def test_online_hang_up_with_dtr() -> None:
    c = online(DialerSettings(use_dtr=True, dtr_hold=0.5))
    assert c.dialer.dtr
    c.dialer.hang_up(now=c.now)
    assert not c.dialer.dtr
    c.silent()
    assert c.to_deadline() == 0.5
    assert c.dialer.dtr
    c.expect(b"ATH\r", b"\r\nNO CARRIER\r\n")
    assert c.events() == [CallEnded("local")]
    assert c.dialer.state is DialerState.IDLE


def test_online_hang_up_dtr_ignored_falls_back_to_escape() -> None:
    c = online(DialerSettings(use_dtr=True, dtr_hold=0.5, command_timeout=2.0, escape_guard=1.0))
    c.dialer.hang_up(now=c.now)
    c.to_deadline()
    c.expect(b"ATH\r")  # the modem stays online (AT&D0): this went out as payload
    c.says(ppp_frame(b"still online"))
    assert c.to_deadline() == 2.0
    assert c.to_deadline() == 1.0
    c.expect(b"+++", OK)
    c.to_deadline()
    c.expect(b"ATH\r", OK)
    assert c.events() == [CallEnded("local")]


def test_online_line_lost() -> None:
    c = online()
    c.dialer.line_lost(now=c.now)
    assert c.events() == [CallEnded("line lost")]
    assert c.dialer.state is DialerState.IDLE
    assert c.dialer.next_deadline() is None


def test_hanging_up_line_lost_completes_hang_up() -> None:
    c = online(DialerSettings(use_dtr=True))
    c.dialer.hang_up(now=c.now)
    c.dialer.line_lost(now=c.now + 0.1)  # DCD dropped after our DTR drop
    assert c.events() == [CallEnded("local")]
    assert c.dialer.dtr
    assert c.dialer.next_deadline() is None


def test_dialling_line_lost_is_not_responding() -> None:
    c = dialling()
    c.dialer.line_lost(now=1.0)
    events = c.events()
    assert events == [CallFailed(CallFailure.NOT_RESPONDING, "line lost")]


def test_dialling_hang_up_aborts_with_a_character() -> None:
    c = dialling()
    c.dialer.hang_up(now=1.0)
    assert c.dialer.state is DialerState.HANGING_UP
    c.expect(b"\r", b"\r\nNO CARRIER\r\n")
    c.expect(b"ATH\r", OK)
    assert c.events() == [CallEnded("local")]


def test_dialling_hang_up_crossing_connect_escapes() -> None:
    c = dialling(DialerSettings(escape_guard=1.0))
    c.dialer.hang_up(now=1.0)
    c.expect(b"\r", b"\r\nCONNECT\r\n\x7e")
    c.to_deadline()
    c.expect(b"+++", OK)
    c.to_deadline()
    c.expect(b"ATH\r", OK)
    assert c.events() == [CallEnded("local")]


def test_dialling_hang_up_with_silent_modem_gives_up() -> None:
    c = dialling(DialerSettings(command_timeout=2.0, retries=0))
    c.now = 1.0
    c.dialer.hang_up(now=c.now)
    c.expect(b"\r")
    assert c.to_deadline() == 2.0
    c.expect(b"ATH\r")
    c.to_deadline()
    assert c.events() == [CallEnded("local")]
    assert c.dialer.state is DialerState.IDLE


def test_registering_hang_up_waits_for_outstanding_command() -> None:
    dialer = ModemDialer()
    dialer.dial_packet("internet", 1, now=0.0)
    c = Conversation(dialer)
    c.exchange(init_exchange())
    c.expect(b"AT+CGREG?\r")
    dialer.hang_up(now=0.5)
    assert c.events() == [ModemReady()]
    c.says(b"\r\n+CGREG: 0,2\r\n" + OK)
    assert c.events() == [CallEnded("local")]
    c.silent()
    assert dialer.next_deadline() is None


def test_registering_hang_up_between_polls_is_immediate() -> None:
    dialer = ModemDialer()
    dialer.dial_packet("internet", 1, now=0.0)
    c = Conversation(dialer)
    c.exchange([*init_exchange(), registered(stat=2)])
    dialer.hang_up(now=0.5)
    assert c.events() == [ModemReady(), CallEnded("local")]
    assert dialer.next_deadline() is None


def test_idle_hang_up_and_line_lost_do_nothing() -> None:
    dialer = ModemDialer()
    dialer.hang_up(now=0.0)
    dialer.line_lost(now=0.0)
    assert dialer.events() == []
    assert dialer.bytes_to_send() == b""
