"""The dialer's building blocks: result codes, URC classification, the AT port, CarrierWatch, parsers."""

from __future__ import annotations

from collections import Counter, deque

import pytest

from wipstack.cellular.dialer_at import (
    MAX_INFO_LINES,
    AtPort,
    CarrierLost,
    CarrierWatch,
    Completed,
    PortDrop,
    Reply,
    ResultCode,
    TimedOut,
    Unsolicited,
    is_unsolicited,
    result_code,
)
from wipstack.cellular.dialer_procedures import (
    SimStatus,
    clip_number,
    cme_number,
    registration_stat,
    same_number,
    sim_status,
)


def port() -> AtPort:
    return AtPort("", deque(maxlen=100), Counter())


def reply(final: str, *info: str) -> Reply:
    code = result_code(final)
    assert code is not None
    return Reply("AT+X", info, code, final)


# --- result codes and URCs -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("OK", ResultCode.OK),
        ("ok", ResultCode.OK),
        ("0", ResultCode.OK),
        ("CONNECT", ResultCode.CONNECT),
        ("CONNECT 115200", ResultCode.CONNECT),
        ("1", ResultCode.CONNECT),
        ("RING", ResultCode.RING),
        ("2", ResultCode.RING),
        ("NO CARRIER", ResultCode.NO_CARRIER),
        ("3", ResultCode.NO_CARRIER),
        ("ERROR", ResultCode.ERROR),
        ("4", ResultCode.ERROR),
        ("NO DIALTONE", ResultCode.NO_DIALTONE),
        ("NO DIAL TONE", ResultCode.NO_DIALTONE),
        ("6", ResultCode.NO_DIALTONE),
        ("BUSY", ResultCode.BUSY),
        ("7", ResultCode.BUSY),
        ("NO ANSWER", ResultCode.NO_ANSWER),
        ("8", ResultCode.NO_ANSWER),
        ("+CME ERROR: 10", ResultCode.CME_ERROR),
        ("+CMS ERROR: 500", ResultCode.CMS_ERROR),
        ("5", None),
        ("10", None),
        ("OKAY", None),
        ("CONNECTED", None),
        ("+CPIN: READY", None),
    ],
)
def test_result_code(line: str, code: ResultCode | None) -> None:
    assert result_code(line) is code


@pytest.mark.parametrize(
    ("line", "prefix", "urc"),
    [
        ("+CREG: 0,1", "+CREG:", False),
        ('+CREG: 2,5,"00C3","0012"', "+CREG:", False),
        ("+CREG: 1", "+CREG:", True),
        ('+CREG: 1,"00C3","0012"', "+CREG:", True),
        ("+CGREG: 0,1", "+CREG:", True),
        ("+CPIN: READY", "+CPIN:", False),
        ("RING", None, True),
        ('+CLIP: "123",129', None, True),
        ("+CSQ: 12,99", None, True),
        ("^BOOT: 1,2", None, True),
        ("Manufacturer: ACME", None, False),
    ],
)
def test_is_unsolicited(line: str, prefix: str | None, urc: bool) -> None:
    assert is_unsolicited(line, prefix) is urc


# --- the AT port ------------------------------------------------------------------------------


def test_port_command_and_reply_bytes() -> None:
    p = port()
    p.command("AT+CGREG?", 0.0, 5.0, info_prefix="+CGREG:")
    assert p.take_output() == b"AT+CGREG?\r"
    events = p.receive(b"AT+CGREG?\r\r\n+CGREG: 0,1\r\n\r\nOK\r\n", 0.1)
    assert events == [Completed(Reply("AT+CGREG?", ("+CGREG: 0,1",), ResultCode.OK, "OK"))]
    assert not p.busy


def test_port_timeout_resends_identical_bytes_then_reports() -> None:
    p = port()
    p.command("ATE0", 0.0, 1.0, attempts=2)
    assert p.take_output() == b"ATE0\r"
    assert p.on_timer(0.99) == []
    assert p.take_output() == b""
    assert p.on_timer(1.0) == []
    assert p.take_output() == b"ATE0\r"
    assert p.next_deadline() == 2.0
    assert p.on_timer(2.0) == [TimedOut("ATE0")]
    assert p.next_deadline() is None


def test_port_no_carrier_ends_only_call_control_commands() -> None:
    p = port()
    p.command("AT+CSQ", 0.0, 1.0)
    assert p.receive(b"\r\nNO CARRIER\r\n", 0.0) == [Unsolicited("NO CARRIER")]
    assert p.busy
    p.cancel()
    p.command("ATH", 0.0, 1.0, call_control=True)
    events = p.receive(b"\r\nNO CARRIER\r\n", 0.0)
    assert [type(e) for e in events] == [Completed]


def test_port_connect_for_ordinary_command_does_not_go_online() -> None:
    p = port()
    p.command("AT+X", 0.0, 1.0)
    p.receive(b"\r\nCONNECT\r\n~", 0.0)
    assert not p.online


def test_port_without_command_lines_are_unsolicited_and_echo_is_ignored() -> None:
    p = port()
    p.command("AT", 0.0, 1.0)
    p.receive(b"\r\nOK\r\n", 0.0)
    assert p.receive(b"AT\r\r\nOK\r\n+CREG: 1\r\n", 0.0) == [Unsolicited("OK"), Unsolicited("+CREG: 1")]


def test_port_information_lines_are_bounded() -> None:
    p = port()
    p.command("ATI", 0.0, 1.0)
    events = p.receive(b"".join(b"line %d\r\n" % i for i in range(MAX_INFO_LINES + 3)) + b"OK\r\n", 0.0)
    assert isinstance(events[0], Completed)
    assert len(events[0].reply.info) == MAX_INFO_LINES
    assert p.drops[PortDrop.INFO_OVERFLOW] == 3


def test_port_detach_hands_over_the_rest_of_the_chunk() -> None:
    p = port()
    p.command("AT+CMUX=0", 0.0, 1.0, detach_on_ok=True)
    events = p.receive(b"\r\nOK\r\n\xf9\x03\x3f\x01\x1c\xf9", 0.0)
    assert len(events) == 1 and isinstance(events[0], Completed)
    assert events[0].reply.trailing == b"\xf9\x03\x3f\x01\x1c\xf9"
    assert p.receive(b"OK\r\n", 0.0) == []  # detached: the serial line is the multiplexer's now


def test_port_detach_on_error_stays_attached() -> None:
    p = port()
    p.command("AT+CMUX=0", 0.0, 1.0, detach_on_ok=True)
    p.receive(b"\r\nERROR\r\n", 0.0)
    assert p.receive(b"\r\nRING\r\n", 0.0) == [Unsolicited("RING")]


def test_port_online_no_carrier_returns_to_command_mode() -> None:
    p = port()
    p.command("ATA", 0.0, 1.0, connects=True)
    events = p.receive(b"\r\nCONNECT\r\n\x7eabc\x7e\r\nNO CARRIER\r\n\r\nOK\r\n", 0.0)
    assert [type(e) for e in events] == [Completed, CarrierLost, Unsolicited]
    assert p.take_payload() == b"\x7eabc\x7e"
    assert not p.online


# --- CarrierWatch -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "ends_at"),
    [
        (b"NO CARRIER\r", 11),
        (b"\r\nNO CARRIER\r\n", 13),
        (b"\x7e\r\nNO CARRIER\r\n", 14),
        (b"\x7e\x7e\nNO CARRIER\n", 14),
        (b"\x7e\r\r\r\rNO CARRIER\r", 16),
        (b"\x7e\r\r\r\r\rNO CARRIER\r", None),  # more CR/LF than a modem sends
        (b"\x7eNO CARRIER\r", None),  # after a flag the line end is required
        (b"\xff\x7eNO CARRIER\r", None),  # the same after a frame's closing flag
        (b"\x7e\xff\x03\r\nNO CARRIER\r\n", None),  # inside a frame
        (b"\x7e\r\nNO CARRIER \r\n", None),
        (b"x\x7e\r\nNO CARRIER\r\n", 15),
    ],
)
def test_carrier_watch(stream: bytes, ends_at: int | None) -> None:
    watch = CarrierWatch()
    payload, end = watch.feed(stream)
    assert end == ends_at
    if end is None:
        assert payload == stream[: len(stream) - watch.held]
        assert payload + watch.release() == stream
    else:
        assert stream[len(payload) : end].strip(b"\r\n") == b"NO CARRIER"


def test_carrier_watch_holds_at_most_a_report() -> None:
    watch = CarrierWatch()
    payload, end = watch.feed(b"\x7e\r\nNO CARRIER")
    assert (payload, end, watch.held) == (b"\x7e", None, 12)
    assert watch.feed(b"!") == (b"\r\nNO CARRIER!", None)
    assert watch.held == 0


# --- procedure parsers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("final", "number"),
    [("+CME ERROR: 10", 10), ("+CME ERROR: SIM busy", 14), ("+CME ERROR: what", None), ("ERROR", None)],
)
def test_cme_number(final: str, number: int | None) -> None:
    assert cme_number(final) == number


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (reply("OK", "+CPIN: READY"), SimStatus.READY),
        (reply("OK", "+CPIN: SIM PIN"), SimStatus.NEEDS_PIN),
        (reply("OK", "+CPIN: SIM PUK"), SimStatus.LOCKED),
        (reply("OK"), SimStatus.ABSENT),
        (reply("+CME ERROR: 11"), SimStatus.NEEDS_PIN),
        (reply("+CME ERROR: 14"), SimStatus.BUSY),
        (reply("+CME ERROR: 18"), SimStatus.LOCKED),
        (reply("+CME ERROR: 13"), SimStatus.ABSENT),
        (reply("ERROR"), SimStatus.ABSENT),
    ],
)
def test_sim_status(answer: Reply, status: SimStatus) -> None:
    assert sim_status(answer)[0] is status


def test_registration_stat() -> None:
    assert registration_stat(reply("OK", '+CGREG: 2,5,"00C3","0012"'), "+CGREG:") == 5
    assert registration_stat(reply("OK", "+CGREG: 1"), "+CGREG:") is None
    assert registration_stat(reply("OK"), "+CGREG:") is None


@pytest.mark.parametrize(
    ("line", "number"),
    [('+CLIP: "+33612345678",145', "+33612345678"), ('+CLIP: "",128,,,,1', None), ("+CLIP: 0612,129", "0612")],
)
def test_clip_number(line: str, number: str | None) -> None:
    assert clip_number(line) == number


@pytest.mark.parametrize(
    ("wanted", "caller", "same"),
    [
        ("+33612345678", "+33612345678", True),
        ("0612345678", "+33612345678", True),
        ("0033612345678", "+33612345678", True),
        ("06 12 34 56 78", "0612345678", True),
        ("+33612345678", "+33612345679", False),
        ("5678", "+33612345678", False),  # a short suffix is not an identity
        ("+33612345678", None, False),
        ("112", "112", True),
    ],
)
def test_same_number(wanted: str, caller: str | None, same: bool) -> None:
    assert same_number(wanted, caller) is same
