"""The driver's control lines (``wipstack modem-sim --control``): the interpreter, and the socket's fd handling."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tests.unit.cellular.test_simulator import Rig
from wipstack.cellular.simulator import ModemSimulator, ModemState
from wipstack.drivers.link import FdLink
from wipstack.drivers.modem_sim import ControlServer, ModemSimDriver, control_command


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


def test_driver_watches_an_fd_number_the_next_control_client_reuses(tmp_path: Path) -> None:
    read_fd, write_fd = os.pipe()  # a stand-in for the DTE's line
    control = ControlServer(str(tmp_path / "control"))
    driver = ModemSimDriver(ModemSimulator(), FdLink(read_fd, write_fd), control=control)
    try:
        first = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        first.connect(str(tmp_path / "control"))
        driver._step(0.5)  # accepted
        driver._step(0.0)  # and watched
        (number,) = control.clients
        first.close()
        second = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        second.connect(str(tmp_path / "control"))
        # what one round does when it sees both: the end of the first client, then the second's accept
        control.readable(number, lambda line: "unused")
        control.accept()
        assert list(control.clients) == [number]  # the same fd number, another socket (epoll forgot it)
        with second:
            second.sendall(b"status\n")
            for _ in range(5):
                driver._step(0.1)
            second.settimeout(1.0)
            assert second.recv(1000).startswith(b"OK state=command ")
    finally:
        driver.close()
