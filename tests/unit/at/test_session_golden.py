"""The reference's §12 device log as golden sessions, and the §1 client tolerances.

The NFT log (a Wavecom Fastrack Supreme on GPRS) is replayed against the virtual module with
``gprs_backend="tun"``: bearer 6 runs over the rig's FakeHost wire to a network peer at
192.0.2.1, which stands in for the log's 82.69.59.37 with a TCP server on port 9191.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from at_frontend.config import ModuleConfig, SimState
from tests.helpers.at_rig import NetworkPeer, Rig
from wipstack.tcp.socket import TcpServer, TcpSocket
from wipstack.tcp.state import TcpState

OK = b"\r\nOK\r\n"
ERROR = b"\r\nERROR\r\n"
CONNECT = b"\r\nCONNECT\r\n"
SERVER = "192.0.2.1"

#: (command, what the UART prints) -- §12, with the peer's address in place of the log's
GOLDEN: list[tuple[str, bytes]] = [
    ("AT+CREG?", b"\r\n+CREG: 0,1\r\n\r\nOK\r\n"),
    ("AT+CMEE=1", OK),
    ("AT+WIPCFG=1", OK),
    ("AT+WIPBR=1,6", OK),
    ('AT+WIPBR=2,6,11,"internet"', OK),
    ('AT+WIPBR=2,6,0,"user"', OK),
    ('AT+WIPBR=2,6,1,"pass"', OK),
    ("AT+WIPBR=4,6,0", OK),
    (f'AT+WIPCREATE=2,1,"{SERVER}",9191', b"\r\nOK\r\n\r\n+WIPREADY: 2,1\r\n"),
    ("AT+WIPCLOSE=2,1", OK),
]


def info(*lines: str) -> bytes:
    return b"".join(b"\r\n" + line.encode() + b"\r\n" for line in lines) + OK


def cme(code: int) -> bytes:
    return b"\r\n+CME ERROR: " + str(code).encode() + b"\r\n"


@dataclass
class Gprs:
    """A GPRS-over-TUN module and the server it talks to."""

    rig: Rig
    network: NetworkPeer
    accepted: list[TcpSocket] = field(default_factory=list)

    def __post_init__(self) -> None:
        server = TcpServer(self.network.stack.tcp, 9191)
        server.on_accept = self.accepted.append


def gprs_module(*, echo: bool = False) -> Gprs:
    rig = Rig(ModuleConfig(gprs_backend="tun"), echo=echo)
    return Gprs(rig, rig.network_peer(SERVER))


@pytest.fixture
def gprs() -> Gprs:
    return gprs_module()


def run(rig: Rig, session: list[tuple[str, bytes]]) -> None:
    for line, expected in session:
        assert rig.at(line) == expected, line


# ---------------------------------------------------------------------------- §12 golden


def test_golden_log(gprs: Gprs) -> None:
    run(gprs.rig, GOLDEN)
    assert len(gprs.accepted) == 1
    gprs.rig.advance(0.5)
    assert gprs.accepted[0].state is TcpState.CLOSE_WAIT  # the server saw the close
    assert gprs.rig.at("AT+WIPBR?") == info("+WIPBR: 6,1")


def test_golden_log_with_echo() -> None:
    gprs = gprs_module(echo=True)
    run(gprs.rig, [(line, line.encode() + b"\r" + expected) for line, expected in GOLDEN])


def test_golden_log_with_atv0() -> None:
    gprs = gprs_module()
    assert gprs.rig.at("ATV0") == b"0\r"
    numeric = [(line, b"0\r") for line, _ in GOLDEN]
    numeric[0] = ("AT+CREG?", b"+CREG: 0,1\r\n0\r")
    numeric[8] = (GOLDEN[8][0], b"0\r+WIPREADY: 2,1\r\n")
    run(gprs.rig, numeric)


@pytest.mark.parametrize("terminator", [b"\r", b"\n", b"\r\n"])
def test_golden_log_with_each_terminator(gprs: Gprs, terminator: bytes) -> None:
    for line, expected in GOLDEN:
        gprs.rig.send(line.encode() + terminator)
        gprs.rig.advance(0.05)
        assert gprs.rig.take() == expected, line


def test_golden_log_pipelined_in_one_write(gprs: Gprs) -> None:
    """A client that writes the whole setup at once gets the same answers, in order."""
    setup = GOLDEN[:-1]
    gprs.rig.send(b"".join(line.encode() + b"\r\n" for line, _ in setup))
    gprs.rig.advance(0.5)
    assert gprs.rig.take() == b"".join(expected for _, expected in setup)


def test_golden_failure_sim_pin(gprs: Gprs) -> None:
    gprs.rig.module.config.radio.sim = SimState.PIN
    run(gprs.rig, GOLDEN[:7])
    assert gprs.rig.at("AT+WIPBR=4,6,0") == b"\r\n+CME ERROR: 811\r\n"
    assert gprs.rig.at(f'AT+WIPCREATE=2,1,"{SERVER}",9191') == cme(803)  # no bearer
    assert gprs.rig.at("AT+CPIN?") == info("+CPIN: SIM PIN")
    assert gprs.rig.at("AT+CPIN=0000") == OK
    assert gprs.rig.at("AT+WIPBR=4,6,0") == OK
    run(gprs.rig, GOLDEN[8:])


def test_golden_failure_with_cmee_0(gprs: Gprs) -> None:
    gprs.rig.module.config.radio.sim = SimState.PIN
    run(gprs.rig, [entry for entry in GOLDEN[:7] if entry[0] != "AT+CMEE=1"])
    assert gprs.rig.at("AT+WIPBR=4,6,0") == ERROR


def test_f5194_retries_848_then_unquoted_apn_and_udp(gprs: Gprs) -> None:
    rig = gprs.rig
    rig.module.config.radio.gprs_registration = 2  # still searching
    run(rig, [("AT+CMEE=1", OK), ("AT+WIPCFG=1", OK), ("AT+WIPBR=1,6", OK)])
    assert rig.at("AT+WIPBR=2,6,11,wirelesslogic-hsdpa.co.uk") == OK
    for _ in range(4):
        assert rig.at("AT+WIPBR=4,6,0") == cme(848)
        rig.advance(2)
    rig.module.config.radio.gprs_registration = 1
    assert rig.at("AT+WIPBR=4,6,0") == OK
    assert rig.at("AT+WIPBR=3,6,11") == info('+WIPBR: 6,11,"wirelesslogic-hsdpa.co.uk"')
    assert rig.at("AT+WIPCREATE=1,1,80") == b"\r\nOK\r\n\r\n+WIPREADY: 1,1\r\n"
    assert rig.at("AT+WIPDATA=1,1,1") == CONNECT


# ---------------------------------------------------------------------------- §1 client tolerances


@pytest.mark.parametrize(
    ("value", "shown"),
    [('"internet"', "internet"), ("internet", "internet"), ('"my apn.example"', "my apn.example"),
     ("my apn.example", "my apn.example"), ('""', ""), ('"Mixed.Case"', "Mixed.Case")],
)  # fmt: skip
def test_strings_quoted_or_not(gprs: Gprs, value: str, shown: str) -> None:
    run(gprs.rig, GOLDEN[1:4])
    for opt in (11, 0, 1):
        assert gprs.rig.at(f"AT+WIPBR=2,6,{opt},{value}") == OK
        assert gprs.rig.at(f"AT+WIPBR=3,6,{opt}") == info(f'+WIPBR: 6,{opt},"{shown}"')


@pytest.mark.parametrize(
    "start", ["AT+WIPBR=4,6,0", "AT+WIPBR=4,6,0,,,", 'AT+WIPBR=4,6,0,"",""', "AT+WIPBR=4,6", "AT+WIPBR=4,6,,,"]
)
def test_empty_optional_parameters(gprs: Gprs, start: str) -> None:
    run(gprs.rig, GOLDEN[1:7])
    assert gprs.rig.at(start) == OK
    assert gprs.rig.at("AT+WIPBR?") == info("+WIPBR: 6,1")


def test_unquoted_peer_address(gprs: Gprs) -> None:
    run(gprs.rig, GOLDEN[1:8])
    assert gprs.rig.at(f"AT+WIPCREATE=2,1,{SERVER},9191") == b"\r\nOK\r\n\r\n+WIPREADY: 2,1\r\n"
    assert gprs.rig.at(f"AT+WIPPING={SERVER}") == b"\r\nOK\r\n\r\n+WIPPING: 0,0,0\r\n"


def test_empty_string_options_as_other_clients_send_them(gprs: Gprs) -> None:
    run(gprs.rig, GOLDEN[1:4])
    assert gprs.rig.at('AT+WIPBR=2,6,0,""') == OK
    assert gprs.rig.at("AT+WIPBR=2,6,1,") == OK
    assert gprs.rig.at("AT+WIPBR=3,6,0;+WIPBR=3,6,1") == info('+WIPBR: 6,0,""', '+WIPBR: 6,1,""')


def test_what_clients_treat_as_success(gprs: Gprs) -> None:
    """CL-CHIBI accepts 844, 804 and 840 as 'already done'."""
    run(gprs.rig, GOLDEN[:9])
    assert gprs.rig.at("AT+WIPCFG=1") == cme(844)
    assert gprs.rig.at("AT+WIPBR=1,6") == cme(804)
    assert gprs.rig.at(f'AT+WIPCREATE=2,1,"{SERVER}",9191') == cme(840)


def test_wopen_poll_then_stack(gprs: Gprs) -> None:
    assert gprs.rig.at("AT+WOPEN?") == info("+WOPEN: 1")
    assert gprs.rig.at("AT+WOPEN=1") == OK
    run(gprs.rig, GOLDEN)


def test_lower_case_session(gprs: Gprs) -> None:
    run(gprs.rig, [(line.lower(), expected) for line, expected in GOLDEN])


# ---------------------------------------------------------------------------- client flows around the log


def test_http_client_flow_reading_a_counted_reply(gprs: Gprs) -> None:
    """CL-RS: +WIPDATA: 2,1,<n>, map, read n bytes, wait for SHUTDOWN, +++, close."""
    rig = gprs.rig
    run(rig, GOLDEN[:9])
    server = gprs.accepted[0]
    server.send(b"HTTP/1.1 200 OK\r\n\r\nbody")
    rig.advance(0.5)
    assert rig.take() == b"\r\n+WIPDATA: 2,1,23\r\n"
    assert rig.at("AT+WIPDATA=2,1,1") == CONNECT + b"HTTP/1.1 200 OK\r\n\r\nbody"
    rig.send(b"PUT / HTTP/1.1\r\nConnection: close\r\n\r\n")
    rig.advance(0.5)
    assert server.recv() == b"PUT / HTTP/1.1\r\nConnection: close\r\n\r\n"
    server.close(rig.now)
    rig.advance(0.5)
    assert rig.take() == b"\r\nSHUTDOWN\r\n"
    rig.advance(1.5)
    rig.send(b"+++")
    rig.advance(1.0)
    assert rig.take() == OK + b"\r\n+WIPPEERCLOSE: 2,1\r\n"
    assert rig.at("AT+WIPCLOSE=2,1") == OK


def test_client_ends_with_etx_and_waits_for_shutdown(gprs: Gprs) -> None:
    """CL-RU: sends ETX and waits for '\\nSHUTDOWN'."""
    rig = gprs.rig
    run(rig, GOLDEN[:9])
    assert rig.at("AT+WIPDATA=2,1,1") == CONNECT
    rig.send(b"report\x10\x03\x03")
    rig.advance(0.5)
    assert rig.take() == b"\r\nSHUTDOWN\r\n"
    assert gprs.accepted[0].recv() == b"report\x03"


def test_bearer_stop_and_stack_stop_at_the_end(gprs: Gprs) -> None:
    rig = gprs.rig
    run(rig, GOLDEN)
    run(rig, [("AT+WIPBR=5,6", OK), ("AT+WIPBR?", info("+WIPBR: 6,0")), ("AT+WIPBR=0,6", OK), ("AT+WIPCFG=0", OK)])
    assert rig.host.opened == [6] and rig.host.closed == [6]
    run(rig, GOLDEN[2:])  # and the whole thing again
