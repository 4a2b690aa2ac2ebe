"""Outgoing calls: init, SIM, registration and dialling, byte for byte against a scripted modem."""

from __future__ import annotations

import pytest

from tests.unit.cellular.test_dialer_support import (
    CPIN_READY,
    OK,
    SPLITTERS,
    Conversation,
    Splitter,
    init_exchange,
    octets,
    registered,
)
from wipstack.cellular.dialer import (
    CallConnected,
    CallFailed,
    CallFailure,
    DialerSettings,
    DialerState,
    DialerStateError,
    ModemDialer,
    ModemReady,
)
from wipstack.cellular.dialer_at import MAX_LINE, PortDrop


def packet_dialer(settings: DialerSettings | None = None, split: Splitter = SPLITTERS["whole"]) -> Conversation:
    dialer = ModemDialer(settings)
    dialer.dial_packet("internet", 1, now=0.0)
    return Conversation(dialer, split)


def circuit_dialer(settings: DialerSettings | None = None) -> Conversation:
    dialer = ModemDialer(settings)
    dialer.dial_circuit("0612345678", now=0.0)
    return Conversation(dialer)


def failed(c: Conversation) -> CallFailed:
    events = c.events()
    assert isinstance(events[-1], CallFailed), events
    assert c.dialer.state is DialerState.IDLE
    return events[-1]


# --- success paths -------------------------------------------------------------------------


@pytest.mark.parametrize("split", SPLITTERS.values(), ids=SPLITTERS.keys())
def test_idle_dial_packet_connects(split: Splitter) -> None:
    c = packet_dialer(split=split)
    assert c.dialer.state is DialerState.INITIALISING
    c.exchange(init_exchange())
    assert c.events() == [ModemReady()]
    assert c.dialer.state is DialerState.REGISTERING
    c.expect(*registered())
    assert c.dialer.state is DialerState.DIALLING
    c.expect(b'AT+CGDCONT=1,"IP","internet"\r', OK)
    c.expect(b"ATD*99***1#\r", b"\r\nCONNECT 115200\r\n\x7e\xff\x03\xc0\x21")
    assert c.events() == [CallConnected("packet", None, "115200")]
    assert c.dialer.state is DialerState.ONLINE
    assert c.dialer.take_data() == b"\x7e\xff\x03\xc0\x21"
    c.silent()
    assert c.dialer.next_deadline() is None


def test_idle_dial_packet_empty_apn_asks_for_the_network_default() -> None:
    dialer = ModemDialer()
    dialer.dial_packet("", 1, now=0.0)
    c = Conversation(dialer)
    c.exchange([*init_exchange(), registered()])
    c.expect(b'AT+CGDCONT=1,"IP",""\r', OK)


def test_idle_dial_packet_uses_cid() -> None:
    dialer = ModemDialer()
    dialer.dial_packet("m2m.example-apn", 3, now=0.0)
    c = Conversation(dialer)
    c.exchange([*init_exchange(), registered(stat=5)])
    c.expect(b'AT+CGDCONT=3,"IP","m2m.example-apn"\r', OK)
    c.expect(b"ATD*99***3#\r", b"\r\nCONNECT\r\n")
    assert c.events()[-1] == CallConnected("packet", None, "")


@pytest.mark.parametrize("split", SPLITTERS.values(), ids=SPLITTERS.keys())
def test_idle_dial_circuit_connects(split: Splitter) -> None:
    dialer = ModemDialer()
    dialer.dial_circuit("+33612345678", now=0.0)
    c = Conversation(dialer, split)
    c.exchange([*init_exchange(), registered(b"AT+CREG?\r")])
    c.expect(b"ATD+33612345678\r", b"\r\nCONNECT 9600\r\n")
    assert c.events() == [ModemReady(), CallConnected("circuit", None, "9600")]
    assert dialer.state is DialerState.ONLINE


def test_init_echo_on_is_tolerated() -> None:
    """A modem that ignores ATE0 echoes every command before its answer."""
    c = packet_dialer(split=octets)
    for sent, reply in [*init_exchange(), registered()]:
        c.expect(sent, sent + reply)
    c.expect(b'AT+CGDCONT=1,"IP","internet"\r', b'AT+CGDCONT=1,"IP","internet"\r' + OK)
    c.expect(b"ATD*99***1#\r", b"ATD*99***1#\r\r\nCONNECT\r\n")
    assert c.events() == [ModemReady(), CallConnected("packet", None, "")]


def test_init_numeric_responses() -> None:
    """V.25ter numeric codes (ATV0 stuck): 0 OK, 1 CONNECT; payload follows '1<CR>' at once."""
    c = packet_dialer()
    c.expect(b"AT\r", b"0\r")
    c.expect(b"ATE0\r", b"0\r")
    c.expect(b"ATV1\r", b"0\r")
    c.expect(b"AT+CMEE=1\r", b"0\r")
    c.expect(b"AT+CPIN?\r", b"+CPIN: READY\r\n0\r")
    c.expect(b"AT+CGREG?\r", b"+CGREG: 0,1\r\n0\r")
    c.expect(b'AT+CGDCONT=1,"IP","internet"\r', b"0\r")
    c.expect(b"ATD*99***1#\r", b"1\r\x7e\xff")
    assert c.events() == [ModemReady(), CallConnected("packet", None, "")]
    assert c.dialer.take_data() == b"\x7e\xff"


@pytest.mark.parametrize("code", [b"3", b"4"])
def test_dialling_numeric_failure_is_network_for_packet(code: bytes) -> None:
    c = packet_dialer()
    c.exchange([*init_exchange(), registered(), (b'AT+CGDCONT=1,"IP","internet"\r', OK)])
    c.expect(b"ATD*99***1#\r", code + b"\r")
    assert failed(c).failure is CallFailure.NETWORK


def test_urcs_interleaved_with_responses() -> None:
    """URCs between a command's information and its OK, and the +CGREG URC form, are not answers."""
    c = packet_dialer(split=SPLITTERS["pairs"])
    c.expect(b"AT\r", b"\r\n+CREG: 2\r\n\r\nRING\r\n" + OK)
    c.expect(b"ATE0\r", b'\r\n+CSQ: 14,99\r\n\r\n+CLIP: "+33612345678",145\r\n' + OK)
    c.expect(b"ATV1\r", OK)
    c.expect(b"AT+CMEE=1\r", b"\r\n^RSSI: 12\r\n" + OK)
    c.expect(b"AT+CPIN?\r", b'\r\n+CPIN: READY\r\n\r\n+CMTI: "SM",3\r\n' + OK)
    # A URC saying "registered" (first field a stat, then quoted LAC/CI) precedes the read answer.
    c.expect(b"AT+CGREG?\r", b'\r\n+CGREG: 1,"00C3","0012"\r\n\r\n+CGREG: 2,2,"00C3","0012"\r\n' + OK)
    assert c.dialer.state is DialerState.REGISTERING
    c.to_deadline()
    c.expect(b"AT+CGREG?\r", b'\r\n+CGREG: 2,1,"00C3","0012"\r\n\r\n+CGREG: 5\r\n' + OK)
    assert c.dialer.state is DialerState.DIALLING


@pytest.mark.parametrize(
    "style",
    [
        pytest.param(lambda text: b"\n" + text + b"\n", id="lf-only"),
        pytest.param(lambda text: text + b"\r", id="cr-only"),
        pytest.param(lambda text: b"\r\r\n" + text + b"\r\r\n", id="doubled-cr"),
        pytest.param(lambda text: b"\n\r" + text + b"\n\r", id="lf-cr"),
    ],
)
def test_init_line_end_variations(style: object) -> None:
    assert callable(style)
    c = packet_dialer()
    for sent, reply in [*init_exchange(), registered()]:
        lines = [line for line in reply.split(b"\r\n") if line]
        c.expect(sent, b"".join(style(line) for line in lines))
    assert c.dialer.state is DialerState.DIALLING


def test_init_extra_strings_sent_after_cmee() -> None:
    settings = DialerSettings(extra_init=("AT+CFUN=1", "AT&D2"))
    c = packet_dialer(settings)
    c.exchange(init_exchange(extra=[(b"AT+CFUN=1\r", OK), (b"AT&D2\r", OK)]))
    assert c.events() == [ModemReady()]


def test_init_extra_string_refused_is_network() -> None:
    c = packet_dialer(DialerSettings(extra_init=("AT+CFUN=1",)))
    c.exchange(init_exchange()[:4])
    c.expect(b"AT+CFUN=1\r", b"\r\n+CME ERROR: 3\r\n")
    failure = failed(c)
    assert failure.failure is CallFailure.NETWORK
    assert "AT+CFUN=1" in failure.detail


def test_init_errors_to_ate0_atv1_cmee_are_tolerated() -> None:
    c = packet_dialer()
    c.expect(b"AT\r", OK)
    c.expect(b"ATE0\r", b"\r\nERROR\r\n")
    c.expect(b"ATV1\r", b"\r\nERROR\r\n")
    c.expect(b"AT+CMEE=1\r", b"\r\nERROR\r\n")
    c.expect(b"AT+CPIN?\r", CPIN_READY)
    assert c.events() == [ModemReady()]


def test_init_at_answered_error_is_sent_again() -> None:
    """Autobauding: the first AT may meet garbage in the modem's line buffer and get ERROR."""
    c = packet_dialer()
    c.expect(b"AT\r", b"\r\nERROR\r\n")
    c.expect(b"AT\r", OK)
    c.expect(b"ATE0\r", OK)


# --- not responding ------------------------------------------------------------------------


def test_init_silent_modem_is_not_responding_after_retries() -> None:
    c = packet_dialer(DialerSettings(command_timeout=2.0, retries=2, escape_guard=1.0))
    c.expect(b"AT\r")
    c.to_deadline()  # 2.0: no answer; the modem may be stuck online: guard, +++, guard, ATH
    c.to_deadline()
    assert c.now == 3.0
    c.expect(b"+++")
    c.to_deadline()  # 4.0: the trailing guard; then up to command_timeout for its OK
    c.to_deadline()
    assert c.now == 6.0
    c.expect(b"ATH\r")
    sent_at = []
    c.to_deadline()
    for _ in range(2):
        c.expect(b"AT\r")
        sent_at.append(c.now)
        assert c.dialer.next_deadline() == c.now + 2.0
        c.to_deadline()
    assert sent_at == [8.0, 10.0]
    assert c.now == 12.0
    failure = failed(c)
    assert failure.failure is CallFailure.NOT_RESPONDING
    c.silent()
    assert c.dialer.next_deadline() is None


def test_registering_modem_goes_silent_mid_command() -> None:
    c = packet_dialer(DialerSettings(command_timeout=1.0, retries=1))
    c.exchange(init_exchange())
    c.expect(b"AT+CGREG?\r", b"\r\n+CGREG: 0,")  # half an answer, then nothing
    c.to_deadline()
    c.expect(b"AT+CGREG?\r")  # sent again
    c.to_deadline()
    failure = failed(c)
    assert failure.failure is CallFailure.NOT_RESPONDING
    assert "AT+CGREG?" in failure.detail


def test_registering_answer_to_retry_is_accepted() -> None:
    c = packet_dialer(DialerSettings(command_timeout=1.0, retries=1))
    c.exchange(init_exchange())
    c.expect(b"AT+CGREG?\r")
    c.to_deadline()
    c.expect(*registered())
    assert c.dialer.state is DialerState.DIALLING


def test_dialling_timeout_is_not_responding_and_atd_not_repeated() -> None:
    c = packet_dialer(DialerSettings(dial_timeout=30.0, retries=2))
    c.exchange([*init_exchange(), registered(), (b'AT+CGDCONT=1,"IP","internet"\r', OK)])
    c.expect(b"ATD*99***1#\r")
    assert c.to_deadline() == 30.0
    c.silent()
    assert failed(c).failure is CallFailure.NOT_RESPONDING


# --- SIM -----------------------------------------------------------------------------------


def test_init_sim_pin_entered_once_and_redacted() -> None:
    c = packet_dialer(DialerSettings(pin="1234"))
    c.exchange(init_exchange()[:4])
    c.expect(b"AT+CPIN?\r", b"\r\n+CPIN: SIM PIN\r\n" + OK)
    c.expect(b'AT+CPIN="1234"\r', OK)
    c.expect(b"AT+CPIN?\r", b"\r\n+CME ERROR: 14\r\n")  # SIM busy while it reads its files
    c.to_deadline()
    c.expect(b"AT+CPIN?\r", CPIN_READY)
    assert c.events() == [ModemReady()]
    assert not any("1234" in entry for entry in c.dialer.transcript)
    assert 'AT+CPIN="****"' in "\n".join(c.dialer.transcript)


def test_init_sim_still_asking_after_pin_is_not_ready() -> None:
    c = packet_dialer(DialerSettings(pin="1234"))
    c.exchange(init_exchange()[:4])
    c.expect(b"AT+CPIN?\r", b"\r\n+CPIN: SIM PIN\r\n" + OK)
    c.expect(b'AT+CPIN="1234"\r', OK)
    c.expect(b"AT+CPIN?\r", b"\r\n+CPIN: SIM PIN\r\n" + OK)
    assert failed(c).failure is CallFailure.SIM_NOT_READY
    c.silent()  # never a second PIN attempt (it would move the SIM towards PUK)


def test_init_sim_pin_refused_is_not_ready() -> None:
    c = packet_dialer(DialerSettings(pin="0000"))
    c.exchange(init_exchange()[:4])
    c.expect(b"AT+CPIN?\r", b"\r\n+CME ERROR: 11\r\n")
    c.expect(b'AT+CPIN="0000"\r', b"\r\n+CME ERROR: 16\r\n")
    assert failed(c).failure is CallFailure.SIM_NOT_READY


@pytest.mark.parametrize(
    ("answer", "failure"),
    [
        (b"\r\n+CPIN: SIM PIN\r\n" + OK, CallFailure.SIM_NOT_READY),
        (b"\r\n+CPIN: SIM PUK\r\n" + OK, CallFailure.SIM_NOT_READY),
        (b"\r\n+CPIN: PH-SIM PIN\r\n" + OK, CallFailure.SIM_NOT_READY),
        (b"\r\n+CME ERROR: 12\r\n", CallFailure.SIM_NOT_READY),
        (b"\r\n+CME ERROR: SIM PUK required\r\n", CallFailure.SIM_NOT_READY),
        (b"\r\n+CME ERROR: 10\r\n", CallFailure.NO_SIM),
        (b"\r\n+CME ERROR: 13\r\n", CallFailure.NO_SIM),
        (b"\r\n+CME ERROR: 15\r\n", CallFailure.NO_SIM),
        (b"\r\n+CME ERROR: SIM not inserted\r\n", CallFailure.NO_SIM),
        (b"\r\nERROR\r\n", CallFailure.NO_SIM),
    ],
)
def test_init_sim_problem(answer: bytes, failure: CallFailure) -> None:
    c = packet_dialer()
    c.exchange(init_exchange()[:4])
    c.expect(b"AT+CPIN?\r", answer)
    assert failed(c).failure is failure
    c.silent()


def test_init_sim_busy_for_too_long_is_not_ready() -> None:
    c = packet_dialer(DialerSettings(registration_timeout=2.0, registration_poll=1.0))
    c.exchange(init_exchange()[:4])
    for _ in range(2):
        c.expect(b"AT+CPIN?\r", b"\r\n+CME ERROR: SIM busy\r\n")
        assert c.to_deadline() == 1.0
    c.expect(b"AT+CPIN?\r", b"\r\n+CME ERROR: SIM busy\r\n")
    c.silent()
    assert failed(c).failure is CallFailure.SIM_NOT_READY


# --- registration --------------------------------------------------------------------------


def test_registering_polls_every_registration_poll() -> None:
    c = packet_dialer(DialerSettings(registration_poll=2.5))
    c.exchange(init_exchange())
    for stat in (2, 4, 2):
        c.expect(*registered(stat=stat))
        c.advance(2.4)
        c.silent()
        c.advance(0.1)
    c.expect(*registered(stat=1))
    assert c.dialer.state is DialerState.DIALLING


def test_registering_timeout_when_still_searching() -> None:
    c = packet_dialer(DialerSettings(registration_timeout=3.0, registration_poll=1.0))
    c.exchange(init_exchange())
    polls = 0
    while c.dialer.state is DialerState.REGISTERING:
        c.expect(*registered(stat=2))
        polls += 1
        if c.dialer.state is DialerState.REGISTERING:
            c.to_deadline()
    assert polls == 4  # at 0, 1, 2 and 3 s
    failure = failed(c)
    assert failure.failure is CallFailure.REGISTRATION_TIMEOUT
    assert "stat 2" in failure.detail


@pytest.mark.parametrize("stat", [0, 3])
def test_registering_denied_or_not_searching_is_network(stat: int) -> None:
    c = circuit_dialer()
    c.exchange(init_exchange())
    c.expect(*registered(b"AT+CREG?\r", stat=stat))
    assert failed(c).failure is CallFailure.NETWORK


def test_registering_error_is_network() -> None:
    c = packet_dialer()
    c.exchange(init_exchange())
    c.expect(b"AT+CGREG?\r", b"\r\nERROR\r\n")
    assert failed(c).failure is CallFailure.NETWORK


# --- packet and circuit dialling failures -----------------------------------------------------


def test_dialling_cgdcont_error_is_network() -> None:
    c = packet_dialer()
    c.exchange([*init_exchange(), registered()])
    c.expect(b'AT+CGDCONT=1,"IP","internet"\r', b"\r\n+CME ERROR: 4\r\n")
    failure = failed(c)
    assert failure.failure is CallFailure.NETWORK
    assert "CGDCONT" in failure.detail


@pytest.mark.parametrize("answer", [b"NO CARRIER", b"ERROR", b"+CME ERROR: 30", b"BUSY"])
def test_dialling_packet_failure_is_network(answer: bytes) -> None:
    c = packet_dialer()
    c.exchange([*init_exchange(), registered(), (b'AT+CGDCONT=1,"IP","internet"\r', OK)])
    c.expect(b"ATD*99***1#\r", b"\r\n" + answer + b"\r\n")
    assert failed(c).failure is CallFailure.NETWORK


@pytest.mark.parametrize(
    ("answer", "failure"),
    [
        (b"\r\nBUSY\r\n", CallFailure.BUSY),
        (b"\r\nNO ANSWER\r\n", CallFailure.NO_ANSWER),
        (b"\r\nNO CARRIER\r\n", CallFailure.NO_CARRIER),
        (b"\r\nNO DIALTONE\r\n", CallFailure.NO_CARRIER),
        (b"\r\nNO DIAL TONE\r\n", CallFailure.NO_CARRIER),
        (b"\r\nERROR\r\n", CallFailure.DATA_FAILED),
        (b"\r\n+CME ERROR: 3\r\n", CallFailure.DATA_FAILED),
        (b"\r\nOK\r\n", CallFailure.DATA_FAILED),
        (b"7\r", CallFailure.BUSY),
        (b"8\r", CallFailure.NO_ANSWER),
        (b"3\r", CallFailure.NO_CARRIER),
        (b"6\r", CallFailure.NO_CARRIER),
        (b"4\r", CallFailure.DATA_FAILED),
    ],
)
def test_dialling_circuit_failure(answer: bytes, failure: CallFailure) -> None:
    c = circuit_dialer()
    c.exchange([*init_exchange(), registered(b"AT+CREG?\r")])
    c.expect(b"ATD0612345678\r", answer)
    result = failed(c)
    assert result.failure is failure
    assert "ATD0612345678" in result.detail


def test_dialling_no_carrier_urc_does_not_end_other_commands() -> None:
    """A NO CARRIER left over from an earlier call is unsolicited while AT+CGREG? runs."""
    c = packet_dialer()
    c.exchange(init_exchange())
    c.expect(b"AT+CGREG?\r", b"\r\nNO CARRIER\r\n\r\n+CGREG: 0,1\r\n" + OK)
    assert c.dialer.state is DialerState.DIALLING


def test_idle_after_failure_dials_again() -> None:
    c = circuit_dialer()
    c.exchange([*init_exchange(), registered(b"AT+CREG?\r")])
    c.expect(b"ATD0612345678\r", b"\r\nBUSY\r\n")
    failed(c)
    c.dialer.dial_circuit("0612345678", now=c.now)
    c.exchange([*init_exchange(), registered(b"AT+CREG?\r")])
    c.expect(b"ATD0612345678\r", b"\r\nCONNECT\r\n")
    assert c.dialer.state is DialerState.ONLINE


# --- API misuse and bounds ------------------------------------------------------------------


def test_dialling_while_busy_is_refused() -> None:
    c = packet_dialer()
    with pytest.raises(DialerStateError):
        c.dialer.dial_circuit("123", now=0.0)
    with pytest.raises(ValueError):
        c.dialer.listen(1, None, now=0.0)


@pytest.mark.parametrize(
    ("call", "args"),
    [
        ("dial_packet", ('inter"net', 1)),
        ("dial_packet", ("internet", 0)),
        ("dial_packet", ("internet\r", 1)),
        ("dial_circuit", ("12;",)),
        ("dial_circuit", ("",)),
        ("dial_circuit", ("12\r34",)),
        ("listen", (-1, None)),
        ("listen", (1, "abc")),
    ],
)
def test_idle_bad_arguments_raise_value_error(call: str, args: tuple[object, ...]) -> None:
    dialer = ModemDialer()
    with pytest.raises(ValueError):
        getattr(dialer, call)(*args, now=0.0)
    assert dialer.state is DialerState.IDLE
    assert dialer.bytes_to_send() == b""


@pytest.mark.parametrize("bad", [{"command_timeout": 0}, {"retries": -1}, {"pin": "12"}, {"extra_init": ("A\rT",)}])
def test_settings_refuse_nonsense(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        DialerSettings(**bad)  # type: ignore[arg-type]


def test_idle_send_data_is_refused() -> None:
    with pytest.raises(ValueError):
        ModemDialer().send_data(b"x")


def test_init_overlong_line_dropped_and_counted() -> None:
    c = packet_dialer()
    c.expect(b"AT\r", b"\r\n" + b"x" * (MAX_LINE + 10) + b"OK\r\n" + OK)
    assert c.dialer.drops[PortDrop.LINE_TOO_LONG] == 1
    c.expect(b"ATE0\r", OK)


def test_transcript_is_bounded() -> None:
    c = packet_dialer(DialerSettings(registration_timeout=1000.0))
    c.exchange(init_exchange())
    for _ in range(200):
        c.expect(*registered(stat=2))
        c.to_deadline()
    assert len(c.dialer.transcript) == 100
    assert c.dialer.transcript[-1] == "> AT+CGREG?"
