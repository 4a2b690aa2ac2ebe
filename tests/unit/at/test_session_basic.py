"""Scripted AT sessions, byte for byte: V.25ter basics and the 27.007 / Wavecom commands.

Everything goes through the test rig (:class:`tests.helpers.at_rig.Rig`): bytes typed on a
UART, bytes the UART printed.  Echo is off in a default rig; tests about echo build
``Rig(echo=True)``.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from at_frontend.config import ModuleConfig, SimState
from tests.helpers.at_rig import Rig

OK = b"\r\nOK\r\n"
ERROR = b"\r\nERROR\r\n"


def info(*lines: str) -> bytes:
    """Verbose information lines followed by the final OK."""
    return b"".join(b"\r\n" + line.encode() + b"\r\n" for line in lines) + OK


def cme(code: int | str) -> bytes:
    return b"\r\n+CME ERROR: " + str(code).encode() + b"\r\n"


@pytest.fixture
def rig() -> Rig:
    return Rig()


@pytest.fixture
def cmee1() -> Rig:
    rig = Rig()
    assert rig.at("AT+CMEE=1") == OK
    return rig


# ---------------------------------------------------------------------------- echo


def test_echo_on_prints_the_line_then_the_response() -> None:
    rig = Rig(echo=True)
    assert rig.at("AT") == b"AT\r" + OK
    assert rig.at("AT+CSQ") == b"AT+CSQ\r" + info("+CSQ: 20,99")


def test_ate0_is_echoed_itself_then_echo_stops_and_ate1_restarts_it() -> None:
    rig = Rig(echo=True)
    assert rig.at("ATE0") == b"ATE0\r" + OK
    assert rig.at("AT") == OK
    assert rig.at("ATE1") == OK  # typed while echo was off
    assert rig.at("AT") == b"AT\r" + OK


def test_ate_without_number_means_e0_and_e2_is_an_error() -> None:
    rig = Rig(echo=True)
    assert rig.at("ATE2") == b"ATE2\r" + ERROR
    assert rig.at("ATE") == b"ATE\r" + OK
    assert rig.at("AT") == OK


def test_echo_of_an_lf_terminated_line() -> None:
    rig = Rig(echo=True)
    rig.send(b"AT\n")
    assert rig.take() == b"AT\n" + OK


def test_echo_of_an_empty_line_gives_no_result() -> None:
    rig = Rig(echo=True)
    rig.send(b"\r")
    assert rig.take() == b"\r"


# ---------------------------------------------------------------------------- ATV / ATQ


def test_atv0_numeric_result_codes(rig: Rig) -> None:
    assert rig.at("ATV0") == b"0\r"
    assert rig.at("AT") == b"0\r"
    assert rig.at("AT+NOSUCH") == b"4\r"
    assert rig.at("ATV1") == OK


def test_atv0_information_text_has_no_leading_crlf(rig: Rig) -> None:
    assert rig.at("ATV0") == b"0\r"
    assert rig.at("AT+CSQ") == b"+CSQ: 20,99\r\n0\r"
    assert rig.at("AT+CSQ;+CFUN?") == b"+CSQ: 20,99\r\n+CFUN: 1\r\n0\r"


def test_atv0_cme_errors_are_information_text(cmee1: Rig) -> None:
    assert cmee1.at("ATV0") == b"0\r"
    assert cmee1.at("AT+WIPBR=1,4") == b"+CME ERROR: 803\r\n"


def test_atv_without_number_means_v0(rig: Rig) -> None:
    assert rig.at("ATV") == b"0\r"
    assert rig.at("ATV2") == b"4\r"


def test_atq1_suppresses_result_codes_not_information(cmee1: Rig) -> None:
    assert cmee1.at("ATQ1") == b""
    assert cmee1.at("AT") == b""
    assert cmee1.at("AT+NOSUCH") == b""
    assert cmee1.at("AT+WIPBR=1,4") == b""  # +CME ERROR is a final result code too
    assert cmee1.at("AT+CSQ") == b"\r\n+CSQ: 20,99\r\n"
    assert cmee1.at("ATQ0") == OK
    assert cmee1.at("AT") == OK


def test_atq1_with_atv0(rig: Rig) -> None:
    assert rig.at("ATV0Q1") == b""
    assert rig.at("AT+CSQ") == b"+CSQ: 20,99\r\n"
    assert rig.at("ATQ0V1") == OK


# ---------------------------------------------------------------------------- ATZ / AT&F


@pytest.mark.parametrize("command", ["ATZ", "AT&F", "ATZ0", "AT&F0", "atz"])
def test_reset_restores_factory_settings(rig: Rig, command: str) -> None:
    assert rig.at("AT+CMEE=2") == OK
    assert rig.at("ATV0") == b"0\r"
    assert rig.at(command) == OK  # the result already uses the restored settings (V1)
    # factory settings: echo on, verbose, CMEE 0
    assert rig.at("AT+CMEE?") == b"AT+CMEE?\r" + info("+CMEE: 0")
    assert rig.at("AT+WIPBR=1,4") == b"AT+WIPBR=1,4\r" + ERROR


def test_reset_with_a_bad_value_is_an_error(rig: Rig) -> None:
    assert rig.at("ATZ1") == ERROR
    assert rig.at("AT&F1") == ERROR


def test_reset_affects_only_its_own_uart(rig: Rig) -> None:
    assert rig.at("AT+CMEE=1", uart=2) == OK
    assert rig.at("ATZ", uart=1) == OK
    assert rig.at("AT+CMEE?", uart=2) == info("+CMEE: 1")


# ---------------------------------------------------------------------------- +CMEE


@pytest.mark.parametrize(
    ("level", "answer"),
    [
        (0, ERROR),
        (1, cme(803)),
        (2, cme("operation not allowed in the current WIP stack state")),
    ],
)
def test_cmee_levels_frame_the_same_failure(rig: Rig, level: int, answer: bytes) -> None:
    assert rig.at(f"AT+CMEE={level}") == OK
    assert rig.at("AT+CMEE?") == info(f"+CMEE: {level}")
    assert rig.at("AT+WIPBR=1,4") == answer


def test_cmee_test_form_action_form_and_bad_value(rig: Rig) -> None:
    assert rig.at("AT+CMEE=?") == info("+CMEE: (0-2)")
    assert rig.at("AT+CMEE=1") == OK
    assert rig.at("AT+CMEE=3") == cme(801)
    assert rig.at("AT+CMEE=1,1") == cme(800)
    assert rig.at("AT+CMEE") == OK  # the action form is CMEE 0
    assert rig.at("AT+CMEE?") == info("+CMEE: 0")


def test_syntax_errors_stay_plain_error_whatever_cmee_says(cmee1: Rig) -> None:
    assert cmee1.at("AT+NOSUCH") == ERROR
    assert cmee1.at("AT+CSQ?") == ERROR  # a form the command does not have
    assert cmee1.at("hello") == ERROR


def test_cmee2_texts_of_27007_codes(rig: Rig) -> None:
    assert rig.at("AT+CMEE=2") == OK
    rig.module.config.radio.sim = SimState.ABSENT
    assert rig.at("AT+CPIN?") == cme("SIM not inserted")


# ---------------------------------------------------------------------------- terminators, A/, case


@pytest.mark.parametrize("terminator", [b"\r", b"\n", b"\r\n"])
def test_cr_lf_and_crlf_terminators(rig: Rig, terminator: bytes) -> None:
    rig.send(b"AT+CSQ" + terminator)
    assert rig.take() == info("+CSQ: 20,99")
    rig.send(b"AT" + terminator)
    assert rig.take() == OK


def test_crlf_split_across_two_reads_is_one_terminator(rig: Rig) -> None:
    rig.send(b"AT\r")
    assert rig.take() == OK
    rig.send(b"\nAT\r")
    assert rig.take() == OK


def test_several_lines_in_one_read(rig: Rig) -> None:
    rig.send(b"AT+CSQ\r\nAT+CFUN?\nAT\r")
    assert rig.take() == info("+CSQ: 20,99") + info("+CFUN: 1") + OK


def test_lf_then_cr_is_a_line_then_an_empty_line(rig: Rig) -> None:
    rig.send(b"AT\n\r")
    assert rig.take() == OK


def test_a_slash_repeats_the_last_command_line(rig: Rig) -> None:
    assert rig.at("AT+CSQ;+CGATT?") == info("+CSQ: 20,99", "+CGATT: 1")
    assert rig.at("A/") == info("+CSQ: 20,99", "+CGATT: 1")
    assert rig.at("a/") == info("+CSQ: 20,99", "+CGATT: 1")


def test_a_slash_repeats_a_failing_line_too(cmee1: Rig) -> None:
    assert cmee1.at("AT+WIPBR=1,4") == cme(803)
    assert cmee1.at("A/") == cme(803)


def test_a_slash_with_nothing_to_repeat_is_an_error(rig: Rig) -> None:
    assert rig.at("A/") == ERROR


def test_a_slash_is_echoed(rig: Rig) -> None:
    echo_rig = Rig(echo=True)
    assert echo_rig.at("AT") == b"AT\r" + OK
    # A/ runs when its "/" arrives (V.25ter §5.2.4): the CR typed after it is echoed after the answer
    assert echo_rig.at("A/") == b"A/" + OK + b"\r"


def test_a_slash_needs_no_terminator(rig: Rig) -> None:
    assert rig.at("AT+CSQ") == info("+CSQ: 20,99")
    rig.send(b"A/")
    assert rig.take() == info("+CSQ: 20,99")


@pytest.mark.parametrize("line", ["at+csq", "At+Csq", "aT+cSq"])
def test_lower_and_mixed_case(rig: Rig, line: str) -> None:
    assert rig.at(line) == info("+CSQ: 20,99")


def test_lower_case_keeps_argument_case(rig: Rig) -> None:
    assert rig.at('at+cgdcont=1,"ip","MyApn"') == OK
    assert rig.at("at+cgdcont?") == info('+CGDCONT: 1,"IP","MyApn","0.0.0.0",0,0')


# ---------------------------------------------------------------------------- several commands per line


def test_commands_separated_by_semicolons_share_one_ok(rig: Rig) -> None:
    assert rig.at("AT+CSQ;+CFUN?;+CGATT?") == info("+CSQ: 20,99", "+CFUN: 1", "+CGATT: 1")


def test_basic_commands_concatenate(rig: Rig) -> None:
    assert rig.at("ATE0V0") == b"0\r"
    assert rig.at("ATV1Q0") == OK


def test_first_error_stops_the_line(cmee1: Rig) -> None:
    assert cmee1.at("AT+CSQ;+WIPBR=1,4;+CMEE=0") == b"\r\n+CSQ: 20,99\r\n" + cme(803)
    assert cmee1.at("AT+CMEE?") == info("+CMEE: 1")  # +CMEE=0 did not run


def test_unknown_command_in_the_middle_stops_the_line() -> None:
    rig = Rig(echo=True)
    assert rig.at("ATE1;+NOSUCH;E0") == b"ATE1;+NOSUCH;E0\r" + ERROR
    assert rig.at("AT") == b"AT\r" + OK  # E0 never ran


def test_a_setting_changed_early_in_the_line_frames_the_rest(rig: Rig) -> None:
    assert rig.at("AT+CMEE=1;+WIPBR=1,4") == cme(803)


def test_empty_commands_between_semicolons(rig: Rig) -> None:
    assert rig.at("AT;") == OK
    assert rig.at("AT;;+CSQ;") == info("+CSQ: 20,99")


# ---------------------------------------------------------------------------- bad lines


@pytest.mark.parametrize("line", ["AT+NOSUCH", "AT+NOSUCH?", "AT+NOSUCH=?", "AT+NOSUCH=1", "ATB", "AT#X"])
def test_unknown_commands_are_error(rig: Rig, line: str) -> None:
    assert rig.at(line) == ERROR
    assert rig.at("AT") == OK


@pytest.mark.parametrize(
    "line",
    ["hello", "xxAT", "AT+", "AT+CSQ=?x", 'AT+CGDCONT=1,"IP', "AT+CSQ?x", "AT&", "AT!", "A", "T"],
)
def test_garbage_lines_are_error(rig: Rig, line: str) -> None:
    assert rig.at(line) == ERROR
    assert rig.at("AT") == OK


@pytest.mark.parametrize("raw", [b"\r", b"\n", b"\r\n", b"   \r", b"\r\n\r\n\r\n", b"\t\r"])
def test_empty_lines_are_ignored(rig: Rig, raw: bytes) -> None:
    rig.send(raw)
    assert rig.take() == b""


def test_line_noise_before_at_is_ignored(rig: Rig) -> None:
    rig.send(b"\x00\x00AT\r")
    assert rig.take() == OK
    assert rig.at("  AT") == OK


def test_backspace_and_del_edit_the_line(rig: Rig) -> None:
    assert rig.at("ATE\x08I") == info(ModuleConfig().model)
    assert rig.at("AT+CSQ\x7f\x7f\x7fCMEE?") == info("+CMEE: 0")


def test_the_longest_line_is_accepted(rig: Rig) -> None:
    line = "AT" + " " * 508 + "E0"
    assert len(line) == 512
    assert rig.at(line) == OK


def test_an_over_long_line_is_an_error_then_the_next_line_works(rig: Rig) -> None:
    line = "AT" + " " * 509 + "E0"
    assert rig.at(line) == ERROR
    assert rig.at("AT") == OK
    assert rig.at("AT+" + "X" * 5000) == ERROR  # one answer however long
    assert rig.at("AT+CSQ") == info("+CSQ: 20,99")


def test_an_over_long_line_with_cmee(cmee1: Rig) -> None:
    assert cmee1.at("AT" + "X" * 600) == cme(24)
    assert cmee1.at("ATV0") == b"0\r"
    assert cmee1.at("AT" + "X" * 600) == b"+CME ERROR: 24\r\n"


_PRINTABLE = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_PRINTABLE)
def test_lines_not_starting_with_at_are_error_and_the_uart_recovers(text: str) -> None:
    stripped = text.lstrip(" ")
    if stripped[:2].upper() in ("AT", "A/"):
        return
    rig = Rig()
    assert rig.at(text) == (b"" if not stripped else ERROR)
    assert rig.at("AT") == OK


# ---------------------------------------------------------------------------- +CPIN


def test_cpin_ready(cmee1: Rig) -> None:
    assert cmee1.at("AT+CPIN?") == info("+CPIN: READY")
    assert cmee1.at("AT+CPIN=?") == OK


def test_cpin_pin_required_wrong_then_right(cmee1: Rig) -> None:
    cmee1.module.config.radio.sim = SimState.PIN
    assert cmee1.at("AT+CPIN?") == info("+CPIN: SIM PIN")
    assert cmee1.at("AT+CPIN=1234") == cme(16)
    assert cmee1.at("AT+CPIN?") == info("+CPIN: SIM PIN")
    assert cmee1.at('AT+CPIN="0000"') == OK
    assert cmee1.at("AT+CPIN?") == info("+CPIN: READY")


def test_cpin_with_another_configured_pin(cmee1: Rig) -> None:
    radio = cmee1.module.config.radio
    radio.sim, radio.pin = SimState.PIN, "4321"
    assert cmee1.at("AT+CPIN=0000") == cme(16)
    assert cmee1.at("AT+CPIN=4321") == OK
    assert cmee1.at("AT+CPIN?") == info("+CPIN: READY")


def test_cpin_sim_absent(cmee1: Rig) -> None:
    cmee1.module.config.radio.sim = SimState.ABSENT
    assert cmee1.at("AT+CPIN?") == cme(10)
    assert cmee1.at("AT+CPIN=0000") == cme(10)
    assert cmee1.at("AT+CMEE=0") == OK
    assert cmee1.at("AT+CPIN?") == ERROR


def test_cpin_forms_and_parameter_count(cmee1: Rig) -> None:
    assert cmee1.at("AT+CPIN") == ERROR
    assert cmee1.at("AT+CPIN=1,2,3") == cme(800)


def test_cpin_without_a_pending_pin_is_an_error(cmee1: Rig) -> None:
    answer = cmee1.at("AT+CPIN=0000")
    assert answer.startswith(b"\r\n+CME ERROR: ")


# ---------------------------------------------------------------------------- +CREG / +CGREG


@pytest.mark.parametrize(("name", "attribute"), [("+CREG", "registration"), ("+CGREG", "gprs_registration")])
def test_registration_modes_and_lac_ci(cmee1: Rig, name: str, attribute: str) -> None:
    radio = cmee1.module.config.radio
    radio.lac, radio.cell_id = "1A2B", "00C3"
    assert cmee1.at(f"AT{name}?") == info(f"{name}: 0,1")
    assert cmee1.at(f"AT{name}=1") == OK
    assert cmee1.at(f"AT{name}?") == info(f"{name}: 1,1")
    assert cmee1.at(f"AT{name}=2") == OK
    assert cmee1.at(f"AT{name}?") == info(f'{name}: 2,1,"1A2B","00C3"')
    setattr(radio, attribute, 5)  # roaming: still registered, lac/ci shown
    assert cmee1.at(f"AT{name}?") == info(f'{name}: 2,5,"1A2B","00C3"')
    setattr(radio, attribute, 2)  # searching: no cell to show
    assert cmee1.at(f"AT{name}?") == info(f"{name}: 2,2")
    assert cmee1.at(f"AT{name}=?") == info(f"{name}: (0-2)")
    assert cmee1.at(f"AT{name}=3") == cme(801)
    assert cmee1.at(f"AT{name}") == ERROR


def test_creg_and_cgreg_modes_are_independent(rig: Rig) -> None:
    assert rig.at("AT+CREG=2") == OK
    assert rig.at("AT+CREG?;+CGREG?") == info('+CREG: 2,1,"0001","0001"', "+CGREG: 0,1")


def test_registration_with_the_radio_off(rig: Rig) -> None:
    assert rig.at("AT+CREG=2;+CFUN=0") == OK
    assert rig.at("AT+CREG?;+CGREG?") == info("+CREG: 2,0", "+CGREG: 0,0")


# ---------------------------------------------------------------------------- +CSQ, +CGATT, +CFUN, +CGCLASS


def test_csq(rig: Rig) -> None:
    assert rig.at("AT+CSQ") == info("+CSQ: 20,99")
    rig.module.config.radio.rssi, rig.module.config.radio.ber = 31, 0
    assert rig.at("AT+CSQ") == info("+CSQ: 31,0")
    assert rig.at("AT+CSQ=?") == info("+CSQ: (0-31,99),(0-7,99)")
    assert rig.at("AT+CSQ?") == ERROR
    assert rig.at("AT+CSQ=1") == ERROR


def test_csq_with_the_radio_off(rig: Rig) -> None:
    assert rig.at("AT+CFUN=0") == OK
    assert rig.at("AT+CSQ") == info("+CSQ: 99,99")


def test_cgatt(cmee1: Rig) -> None:
    assert cmee1.at("AT+CGATT?") == info("+CGATT: 1")
    assert cmee1.at("AT+CGATT=0") == OK
    assert cmee1.at("AT+CGATT?") == info("+CGATT: 0")
    assert cmee1.at("AT+CGATT=1") == OK
    assert cmee1.at("AT+CGATT?") == info("+CGATT: 1")
    assert cmee1.at("AT+CGATT=2") == cme(801)
    assert cmee1.at("AT+CGATT=?") == info("+CGATT: (0-1)")
    assert cmee1.at("AT+CGATT") == ERROR


def test_cfun(cmee1: Rig) -> None:
    assert cmee1.at("AT+CFUN?") == info("+CFUN: 1")
    assert cmee1.at("AT+CFUN=0") == OK
    assert cmee1.at("AT+CFUN?") == info("+CFUN: 0")
    assert cmee1.at("AT+CFUN=1") == OK
    assert cmee1.at("AT+CFUN?") == info("+CFUN: 1")
    assert cmee1.at("AT+CFUN=2") == cme(801)
    assert cmee1.at("AT+CFUN=1,2") == cme(801)
    assert cmee1.at("AT+CFUN=?") == info("+CFUN: (0,1),(0,1)")
    assert cmee1.at("AT+CFUN") == ERROR


def test_cfun_1_1_resets_the_channel_settings(cmee1: Rig) -> None:
    assert cmee1.at("AT+CFUN=1,1") == OK
    assert cmee1.at("AT+CMEE?") == b"AT+CMEE?\r" + info("+CMEE: 0")  # echo is back on


def test_cgclass(cmee1: Rig) -> None:
    assert cmee1.at("AT+CGCLASS?") == info('+CGCLASS: "B"')
    assert cmee1.at('AT+CGCLASS="B"') == OK
    assert cmee1.at("AT+CGCLASS=cg") == OK
    assert cmee1.at('AT+CGCLASS="A"') == cme(4)
    assert cmee1.at("AT+CGCLASS=?") == info('+CGCLASS: ("B","CC","CG")')
    assert cmee1.at("AT+CGCLASS") == ERROR


# ---------------------------------------------------------------------------- +CGDCONT


def test_cgdcont_set_read_and_delete(cmee1: Rig) -> None:
    assert cmee1.at("AT+CGDCONT?") == OK
    assert cmee1.at('AT+CGDCONT=2,"IP","second.apn"') == OK
    assert cmee1.at("AT+CGDCONT=1,ip,internet") == OK
    assert cmee1.at("AT+CGDCONT?") == info(
        '+CGDCONT: 1,"IP","internet","0.0.0.0",0,0', '+CGDCONT: 2,"IP","second.apn","0.0.0.0",0,0'
    )
    assert cmee1.at('AT+CGDCONT=1,"IP"') == OK  # no APN: an empty one
    assert cmee1.at("AT+CGDCONT=2") == OK  # cid alone: the context is removed
    assert cmee1.at("AT+CGDCONT?") == info('+CGDCONT: 1,"IP","","0.0.0.0",0,0')


def test_cgdcont_errors_and_test_form(cmee1: Rig) -> None:
    assert cmee1.at('AT+CGDCONT=5,"IP","x"') == cme(801)
    assert cmee1.at('AT+CGDCONT=0,"IP","x"') == cme(801)
    assert cmee1.at('AT+CGDCONT=1,"IP","' + "a" * 97 + '"') == cme(801)
    assert cmee1.at("AT+CGDCONT=1,2,3,4,5,6,7") == cme(800)
    assert cmee1.at("AT+CGDCONT=?") == info('+CGDCONT: (1-4),"IP",,,(0-1),(0-1)')
    assert cmee1.at("AT+CGDCONT") == ERROR


# ---------------------------------------------------------------------------- +WOPEN


def test_wopen(cmee1: Rig) -> None:
    assert cmee1.at("AT+WOPEN?") == info("+WOPEN: 1")
    assert cmee1.at("AT+WOPEN=1") == OK
    assert cmee1.at("AT+WOPEN?") == info("+WOPEN: 1")
    assert cmee1.at("AT+WOPEN=0") == OK
    assert cmee1.at("AT+WOPEN=2") == cme(4)
    assert cmee1.at("AT+WOPEN=9") == cme(801)
    assert cmee1.at("AT+WOPEN=?") == info("+WOPEN: (0-8)")
    assert cmee1.at("AT+WOPEN") == ERROR


# ---------------------------------------------------------------------------- identity


IDENTITY = ModuleConfig(manufacturer="ACME WIRELESS", model="MODEL-7", revision="REV-9.1", imei="356938035643809",
                        wip_version="WIP 9")  # fmt: skip


@pytest.mark.parametrize(
    ("line", "text"),
    [
        ("ATI", "MODEL-7"),
        ("ATI0", "MODEL-7"),
        ("ATI3", "REV-9.1"),
        ("ATI5", "WIP 9"),
        ("ATI6", "ACME WIRELESS"),
        ("AT+CGMR", "REV-9.1"),
        ("AT+GMR", "REV-9.1"),
        ("AT+GSN", "356938035643809"),
        ("AT+CGSN", "356938035643809"),
        ("AT+CGMI", "ACME WIRELESS"),
        ("AT+GMI", "ACME WIRELESS"),
        ("AT+CGMM", "MODEL-7"),
        ("AT+GMM", "MODEL-7"),
    ],
)
def test_identity_commands(line: str, text: str) -> None:
    rig = Rig(IDENTITY)
    assert rig.at(line) == info(text)


def test_default_identity() -> None:
    rig = Rig()
    assert rig.at("ATI;I3") == info("MULTIBAND  900E  1800", "R7.46.0.201108091301.WMP50 wipstack")
    assert rig.at("AT+CGMI;+CGSN") == info("WAVECOM MODEM", "012345678901234")


@pytest.mark.parametrize("name", ["+CGMI", "+CGMM", "+CGMR", "+CGSN", "+GSN"])
def test_identity_forms(rig: Rig, name: str) -> None:
    assert rig.at(f"AT{name}=?") == OK
    assert rig.at(f"AT{name}?") == ERROR
    assert rig.at(f"AT{name}=1") == ERROR


def test_ati_unknown_value(rig: Rig) -> None:
    assert rig.at("ATI9") == ERROR


# ---------------------------------------------------------------------------- line parameters, test forms, others


@pytest.mark.parametrize(
    ("name", "default", "ranges", "value"),
    [
        ("+IFC", "2,2", "(0-2),(0-2)", "0,0"),
        ("+IPR", "115200", "(),(1200-921600)", "9600"),
        ("+ICF", "3,4", "(1-6),(0-4)", "3,0"),
        ("+WIND", "0", "(0-4194303)", "255"),
    ],
)
def test_line_parameters_are_remembered(cmee1: Rig, name: str, default: str, ranges: str, value: str) -> None:
    assert cmee1.at(f"AT{name}?") == info(f"{name}: {default}")
    assert cmee1.at(f"AT{name}=?") == info(f"{name}: {ranges}")
    assert cmee1.at(f"AT{name}={value}") == OK
    assert cmee1.at(f"AT{name}?") == info(f"{name}: {value}")
    assert cmee1.at(f"AT{name}=x") == cme(801)
    assert cmee1.at(f"AT{name}") == ERROR


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("AT+CMEE=?", "+CMEE: (0-2)"),
        ("AT+CREG=?", "+CREG: (0-2)"),
        ("AT+CGREG=?", "+CGREG: (0-2)"),
        ("AT+CSQ=?", "+CSQ: (0-31,99),(0-7,99)"),
        ("AT+CGATT=?", "+CGATT: (0-1)"),
        ("AT+CFUN=?", "+CFUN: (0,1),(0,1)"),
        ("AT+CGCLASS=?", '+CGCLASS: ("B","CC","CG")'),
        ("AT+CGDCONT=?", '+CGDCONT: (1-4),"IP",,,(0-1),(0-1)'),
        ("AT+WOPEN=?", "+WOPEN: (0-8)"),
    ],
)
def test_test_forms(rig: Rig, line: str, answer: str) -> None:
    assert rig.at(line) == info(answer)


def test_modem_line_settings_are_accepted(rig: Rig) -> None:
    assert rig.at("AT&C1&D2&K3X4") == OK
    assert rig.at("AT&D?") == info("2")


def test_s_registers_are_accepted_and_read_back(rig: Rig) -> None:
    assert rig.at("ATS0=2") == OK
    assert rig.at("ATS0?") == info("002")


def test_dial_answer_hang_up_and_online(rig: Rig) -> None:
    assert rig.at("ATD0123456789") == ERROR  # no circuit-switched calls
    assert rig.at("ATA") == ERROR
    assert rig.at("ATH") == OK
    assert rig.at("ATO") == ERROR  # never mapped to a socket


def test_each_uart_has_its_own_settings(rig: Rig) -> None:
    assert rig.at("ATV0", uart=1) == b"0\r"
    assert rig.at("AT", uart=2) == OK
    assert rig.at("AT", uart=1) == b"0\r"
