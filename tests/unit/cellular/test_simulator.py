"""ModemSimulator in command mode: scripted DTE conversations, byte for byte.

``Rig`` (also used by the other simulator test files) keeps the virtual clock: ``at()``
types a line and returns everything the modem sent meanwhile, ``advance()`` runs timers.
"""

from __future__ import annotations

from typing import Any

import pytest

from wipstack.cellular.simulator import ModemSimulator, ModemState, SimulatorSettings


class Rig:
    """A simulated modem and a virtual clock."""

    def __init__(self, **settings: Any) -> None:
        self.now = 0.0
        self.sim = ModemSimulator(SimulatorSettings(**settings), now=self.now)

    def send(self, data: bytes) -> bytes:
        """Raw octets from the DTE; what the modem answered at once."""
        self.sim.receive(data, self.now)
        return self.sim.bytes_to_send()

    def at(self, line: str) -> bytes:
        """``line`` + CR; the echo and the answer."""
        return self.send(line.encode("latin-1") + b"\r")

    def advance(self, seconds: float) -> bytes:
        """Let ``seconds`` pass, firing every timer on time; what the modem sent meanwhile."""
        target = self.now + seconds
        deadline = self.sim.next_deadline()
        while deadline is not None and deadline <= target:
            self.now = max(self.now, deadline)
            self.sim.on_timer(self.now)
            deadline = self.sim.next_deadline()
        self.now = target
        return self.sim.bytes_to_send()


@pytest.fixture
def rig() -> Rig:
    return Rig()


def test_command_at_echoes_and_answers_ok(rig: Rig) -> None:
    assert rig.at("AT") == b"AT\r\r\nOK\r\n"


def test_command_init_sequence_of_a_typical_dialer(rig: Rig) -> None:
    assert rig.at("ATZ") == b"ATZ\r\r\nOK\r\n"
    assert rig.at("ATE0V1") == b"ATE0V1\r\r\nOK\r\n"  # the CR still echoes: echo was on when it arrived
    assert rig.at("AT+CMEE=1") == b"\r\nOK\r\n"
    assert rig.at("AT+CPIN?") == b"\r\n+CPIN: READY\r\n\r\nOK\r\n"
    assert rig.at("AT+CREG?;+CGREG?") == b"\r\n+CREG: 0,1\r\n\r\n+CGREG: 0,1\r\n\r\nOK\r\n"
    assert rig.at('AT+CGDCONT=1,"IP","internet"') == b"\r\nOK\r\n"
    assert rig.at("AT+CGDCONT?") == b'\r\n+CGDCONT: 1,"IP","internet","",0,0\r\n\r\nOK\r\n'
    assert rig.sim.last_commands[-2:] == ['AT+CGDCONT=1,"IP","internet"', "AT+CGDCONT?"]


def test_command_identification(rig: Rig) -> None:
    rig.at("ATE0")
    assert rig.at("ATI") == b"\r\nwipstack\r\nmodem-sim\r\n1.0\r\n\r\nOK\r\n"
    assert rig.at("AT+CGMI;+CGMM") == b"\r\nwipstack\r\n\r\nmodem-sim\r\n\r\nOK\r\n"
    assert rig.at("AT+CGSN") == b"\r\n356938035643809\r\n\r\nOK\r\n"
    assert rig.at("AT+GSN") == b"\r\n356938035643809\r\n\r\nOK\r\n"
    assert rig.at("AT+CIMI") == b"\r\n001010123456789\r\n\r\nOK\r\n"
    assert rig.at("AT+CGMR=?") == b"\r\nOK\r\n"


def test_command_case_spaces_and_several_per_line(rig: Rig) -> None:
    rig.at("ATE0")
    assert rig.at("at+cmee=2 ; +csq") == b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n"
    assert rig.at("aT+CMEE?") == b"\r\n+CMEE: 2\r\n\r\nOK\r\n"
    assert rig.at("AT E1 V1 &C1 &D2") == b"\r\nOK\r\n"  # typed while echo was off
    assert rig.at("AT") == b"AT\r\r\nOK\r\n"


def test_command_unknown_and_malformed_give_error(rig: Rig) -> None:
    rig.at("ATE0")
    assert rig.at("AT+NOPE") == b"\r\nERROR\r\n"
    assert rig.at("AT+COPN") == b"\r\nERROR\r\n"
    assert rig.at('AT+CGDCONT=1,"IP') == b"\r\nERROR\r\n"  # unterminated string
    assert rig.at("ATE5") == b"\r\nERROR\r\n"
    assert rig.at("AT?") == b"\r\nERROR\r\n"
    assert rig.sim.counters.errors == 5


def test_command_error_stops_the_rest_of_the_line(rig: Rig) -> None:
    rig.at("ATE0")
    assert rig.at("AT+CSQ;+NOPE;+CGMI") == b"\r\n+CSQ: 20,99\r\n\r\nERROR\r\n"


def test_command_line_too_long_is_an_error_and_bounded(rig: Rig) -> None:
    rig.at("ATE0")
    assert rig.at("AT" + "E" * 2000) == b"\r\nERROR\r\n"
    assert rig.sim.counters.lines_too_long == 1
    assert rig.at("AT") == b"\r\nOK\r\n"


def test_command_backspace_edits_and_a_slash_repeats(rig: Rig) -> None:
    rig.at("ATE0")
    assert rig.send(b"AT+CSX\x08Q\r") == b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n"
    assert rig.send(b"A/") == b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n"


def test_command_noise_before_at_is_ignored_and_splits_do_not_matter(rig: Rig) -> None:
    rig.at("ATE0")
    out = b"".join(rig.send(bytes([octet])) for octet in b"\x00zz\nAT+C\x01S\tQ\r")
    assert out == b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n"


def test_command_numeric_mode(rig: Rig) -> None:
    assert rig.at("ATE0V0") == b"ATE0V0\r0\r"
    assert rig.at("AT+CSQ") == b"+CSQ: 20,99\r\n0\r"
    assert rig.at("AT+NOPE") == b"4\r"
    assert rig.at("AT+CMEE=1;+CPIN=1234") == b"+CME ERROR: 3\r\n"
    assert rig.at("ATV1") == b"\r\nOK\r\n"


def test_command_quiet_mode_suppresses_results_not_information(rig: Rig) -> None:
    assert rig.at("ATE0Q1") == b"ATE0Q1\r"
    assert rig.at("AT+CSQ") == b"\r\n+CSQ: 20,99\r\n"
    assert rig.at("AT+NOPE") == b""
    assert rig.at("ATQ0") == b"\r\nOK\r\n"


@pytest.mark.parametrize(
    ("cmee", "expected"),
    [("0", b"\r\nERROR\r\n"), ("1", b"\r\n+CME ERROR: 10\r\n"), ("2", b"\r\n+CME ERROR: SIM not inserted\r\n")],
)
def test_command_cmee_modes(cmee: str, expected: bytes) -> None:
    rig = Rig(sim_state="absent")
    rig.at("ATE0")
    assert rig.at(f"AT+CMEE={cmee}") == b"\r\nOK\r\n"
    assert rig.at("AT+CPIN?") == expected


def test_command_cmee_test_and_bad_values(rig: Rig) -> None:
    rig.at("ATE0")
    assert rig.at("AT+CMEE=?") == b"\r\n+CMEE: (0-2)\r\n\r\nOK\r\n"
    assert rig.at("AT+CMEE=1;+CMEE=3") == b"\r\n+CME ERROR: 50\r\n"
    assert rig.at("AT+CMEE=") == b"\r\nOK\r\n"  # an omitted value is the default, 0
    assert rig.at("AT+CMEE?") == b"\r\n+CMEE: 0\r\n\r\nOK\r\n"


def test_sim_pin_entry_starts_registration() -> None:
    rig = Rig(sim_state="pin", registration_delay=2.0)
    rig.at("ATE0")
    assert rig.at("AT+CMEE=1;+CREG=1") == b"\r\nOK\r\n"
    assert rig.at("AT+CPIN?") == b"\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n"
    assert rig.at("AT+CIMI") == b"\r\n+CME ERROR: 11\r\n"
    assert rig.at("AT+CREG?") == b"\r\n+CREG: 1,0\r\n\r\nOK\r\n"
    assert rig.at('AT+CPIN="1234"') == b"\r\n+CREG: 2\r\n\r\nOK\r\n"  # searching at once
    assert rig.advance(1.9) == b""
    assert rig.advance(0.2) == b"\r\n+CREG: 1\r\n"
    assert rig.at("AT+CPIN?") == b"\r\n+CPIN: READY\r\n\r\nOK\r\n"


def test_sim_three_wrong_pins_need_the_puk() -> None:
    rig = Rig(sim_state="pin")
    rig.at("ATE0")
    rig.at("AT+CMEE=1")
    for _ in range(3):
        assert rig.at('AT+CPIN="0000"') == b"\r\n+CME ERROR: 16\r\n"
    assert rig.at("AT+CPIN?") == b"\r\n+CPIN: SIM PUK\r\n\r\nOK\r\n"
    assert rig.at('AT+CPIN="1234"') == b"\r\n+CME ERROR: 50\r\n"  # the PUK and a new PIN are needed
    assert rig.at('AT+CPIN="87654321","4321"') == b"\r\n+CME ERROR: 16\r\n"
    assert rig.at('AT+CPIN="12345678","4321"') == b"\r\nOK\r\n"
    assert rig.at("AT+CPIN?") == b"\r\n+CPIN: READY\r\n\r\nOK\r\n"
    rig.sim.configure(sim_state="pin")
    assert rig.at('AT+CPIN="1234"') == b"\r\n+CME ERROR: 16\r\n"  # the PIN is now the new one
    assert rig.at('AT+CPIN="4321"') == b"\r\nOK\r\n"


def test_sim_pin_when_ready_is_not_allowed(rig: Rig) -> None:
    rig.at("ATE0")
    assert rig.at('AT+CMEE=2;+CPIN="1234"') == b"\r\n+CME ERROR: operation not allowed\r\n"


def test_registration_urcs_on_configure_with_location(rig: Rig) -> None:
    rig.at("ATE0")
    assert rig.at("AT+CREG=2;+CGREG=1") == b"\r\nOK\r\n"
    assert rig.at("AT+CREG?") == b'\r\n+CREG: 2,1,"1A2B","00C3"\r\n\r\nOK\r\n'
    rig.sim.configure(creg_stat=5, cgreg_stat=0)
    assert rig.sim.bytes_to_send() == b'\r\n+CREG: 5,"1A2B","00C3"\r\n\r\n+CGREG: 0\r\n'
    rig.sim.configure(creg_stat=3)
    assert rig.sim.bytes_to_send() == b"\r\n+CREG: 3\r\n"
    rig.sim.configure(operator_name="other")  # no registration change: no URC
    assert rig.sim.bytes_to_send() == b""


def test_registration_searching_after_power_on() -> None:
    rig = Rig(registration_delay=3.0)
    rig.at("ATE0")
    assert rig.at("AT+CGREG=1;+CGREG?") == b"\r\n+CGREG: 1,2\r\n\r\nOK\r\n"
    assert rig.at("AT+COPS?") == b"\r\n+COPS: 0\r\n\r\nOK\r\n"
    assert rig.advance(3.0) == b"\r\n+CGREG: 1\r\n"
    assert rig.at("AT+COPS?") == b'\r\n+COPS: 0,0,"wipstack"\r\n\r\nOK\r\n'


def test_cfun_zero_deregisters_and_one_searches_again() -> None:
    rig = Rig(registration_delay=1.0)
    rig.advance(1.0)
    rig.at("ATE0")
    rig.at("AT+CREG=1")
    assert rig.at("AT+CFUN=0") == b"\r\n+CREG: 0\r\n\r\nOK\r\n"
    assert rig.at("AT+CFUN?;+CSQ") == b"\r\n+CFUN: 0\r\n\r\n+CSQ: 99,99\r\n\r\nOK\r\n"
    assert rig.at("AT+CFUN=1") == b"\r\n+CREG: 2\r\n\r\nOK\r\n"
    assert rig.advance(1.0) == b"\r\n+CREG: 1\r\n"
    assert rig.at("AT+CFUN=2") == b"\r\nERROR\r\n"


def test_cops_formats_and_deregistration(rig: Rig) -> None:
    rig.at("ATE0")
    assert rig.at("AT+COPS=3,2;+COPS?") == b'\r\n+COPS: 0,2,"00101"\r\n\r\nOK\r\n'
    assert rig.at("AT+COPS=?") == b'\r\n+COPS: (2,"wipstack","wip","00101"),,(0-4),(0-2)\r\n\r\nOK\r\n'
    assert rig.at("AT+COPS=2;+COPS?;+CREG?") == b"\r\n+COPS: 2\r\n\r\n+CREG: 0,0\r\n\r\nOK\r\n"
    assert rig.at("AT+COPS=0;+CREG?") == b"\r\n+CREG: 0,1\r\n\r\nOK\r\n"
    assert rig.at('AT+CMEE=1;+COPS=1,0,"elsewhere"') == b"\r\n+CME ERROR: 30\r\n"


def test_s_registers_read_three_digits_and_fixed_terminators(rig: Rig) -> None:
    rig.at("ATE0")
    assert rig.at("ATS0?") == b"\r\n000\r\n\r\nOK\r\n"
    assert rig.at("ATS0=2S7=60") == b"\r\nOK\r\n"
    assert rig.at("ATS0?;S7?") == b"\r\n002\r\n\r\n060\r\n\r\nOK\r\n"
    assert rig.at("ATS3=13") == b"\r\nOK\r\n"
    assert rig.at("ATS3=65") == b"\r\nERROR\r\n"
    assert rig.at("ATS300=1") == b"\r\nERROR\r\n"


def test_profiles_z_restores_w_and_f_factory(rig: Rig) -> None:
    assert rig.at("ATE0S0=3&W") == b"ATE0S0=3&W\r\r\nOK\r\n"
    assert rig.at("ATE1V0") == b"0\r"
    assert rig.at("ATZ") == b"ATZ\r\r\nOK\r\n"  # typed with E1; answered with the stored E0 V1
    assert rig.at("ATS0?") == b"\r\n003\r\n\r\nOK\r\n"
    assert rig.at("AT&F") == b"\r\nOK\r\n"  # factory: echo on again
    assert rig.at("ATS0?") == b"ATS0?\r\r\n000\r\n\r\nOK\r\n"


def test_port_parameters_read_back(rig: Rig) -> None:
    rig.at("ATE0")
    assert rig.at("AT+IPR=57600;+IPR?") == b"\r\n+IPR: 57600\r\n\r\nOK\r\n"
    assert rig.at("AT+IPR=1234") == b"\r\nERROR\r\n"
    assert rig.at("AT+IFC=0,0;+IFC?") == b"\r\n+IFC: 0,0\r\n\r\nOK\r\n"
    assert rig.at("AT+CBST?") == b"\r\n+CBST: 7,0,1\r\n\r\nOK\r\n"
    assert rig.at("AT+CBST=71,0,0;+CBST?") == b"\r\n+CBST: 71,0,0\r\n\r\nOK\r\n"
    assert rig.at("AT+CRC?;+CLIP?") == b"\r\n+CRC: 0\r\n\r\n+CLIP: 0,1\r\n\r\nOK\r\n"
    assert rig.at("AT+CRC=?") == b"\r\n+CRC: (0,1)\r\n\r\nOK\r\n"
    assert rig.at("AT+FCLASS=0;+GCAP") == b"\r\n+GCAP: +CGSM\r\n\r\nOK\r\n"


def test_mute_ignores_everything_until_unmuted(rig: Rig) -> None:
    rig.sim.configure(mute=True)
    assert rig.at("AT") == b""
    assert rig.sim.counters.ignored_while_muted == 3
    rig.sim.configure(mute=False)
    assert rig.at("AT") == b"AT\r\r\nOK\r\n"


def test_mute_mid_command_line_swallows_the_answer(rig: Rig) -> None:
    rig.send(b"AT+CS")
    rig.sim.configure(mute=True)
    assert rig.send(b"Q\r") == b""
    rig.sim.configure(mute=False)
    assert rig.send(b"\r") == b"\r\r\nERROR\r\n"  # "AT+CS": what came while muted was never seen
    assert rig.sim.state is ModemState.COMMAND


def test_dte_output_is_bounded_when_nobody_reads() -> None:
    rig = Rig(max_output=64)
    for _ in range(20):
        rig.sim.receive(b"ATI\r", rig.now)
    assert rig.sim.dte_output_pending == 64
    assert rig.sim.counters.dte_output_dropped > 0
