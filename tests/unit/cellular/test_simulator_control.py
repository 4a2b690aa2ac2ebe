"""The driver's control-line interpreter (``wipstack modem-sim --control``), without sockets."""

from __future__ import annotations

import pytest

from tests.unit.cellular.test_simulator import Rig
from wipstack.cellular.simulator import ModemState
from wipstack.drivers.modem_sim import control_command


def test_control_ring_and_drop() -> None:
    rig = Rig()
    rig.at("ATE0")
    assert control_command(rig.sim, "ring +4930123", rig.now) == "OK"
    assert rig.sim.bytes_to_send() == b"\r\nRING\r\n"
    assert control_command(rig.sim, "ring 555", rig.now) == "ERROR busy or no service"
    assert control_command(rig.sim, "drop", rig.now) == "OK"
    assert control_command(rig.sim, "drop", rig.now) == "ERROR no call"


def test_control_changes_settings() -> None:
    rig = Rig()
    rig.at("ATE0")
    rig.at("AT+CREG=1")
    assert control_command(rig.sim, "creg 5", rig.now) == "OK"
    assert rig.sim.bytes_to_send() == b"\r\n+CREG: 5\r\n"
    assert control_command(rig.sim, "dial-result busy", rig.now) == "OK"
    rig.at("ATD123")
    assert rig.advance(0.5) == b"\r\nBUSY\r\n"
    assert control_command(rig.sim, "sim pin", rig.now) == "OK"
    assert rig.sim.bytes_to_send() == b"\r\n+CREG: 0\r\n"  # a locked SIM: no service
    assert rig.at("AT+CPIN?") == b"\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n"
    assert control_command(rig.sim, "packet-reject 148", rig.now) == "OK"
    assert rig.sim.settings.packet_reject == 148
    assert control_command(rig.sim, "packet-reject none", rig.now) == "OK"
    assert rig.sim.settings.packet_reject is None
    assert control_command(rig.sim, "mute on", rig.now) == "OK"
    assert rig.at("AT") == b""
    assert control_command(rig.sim, "mute off", rig.now) == "OK"
    assert control_command(rig.sim, "status", rig.now).startswith("OK state=command sim=pin creg=0 ")


def test_control_dtr_hangs_up() -> None:
    rig = Rig()
    rig.at("ATE0D*99#")
    rig.advance(0.5)
    assert rig.sim.state is ModemState.ONLINE
    assert control_command(rig.sim, "dtr off", rig.now) == "OK"
    assert rig.sim.state is ModemState.COMMAND


@pytest.mark.parametrize(
    "line",
    [
        "",
        "ring",
        "dial-result maybe",
        "sim lost",
        "creg 9",
        "creg x",
        "mute",
        "packet-reject 999",
        "packet-reject x",
        "bogus",
    ],
)
def test_control_bad_lines_answer_an_error(line: str) -> None:
    rig = Rig()
    assert control_command(rig.sim, line, rig.now).startswith("ERROR")
