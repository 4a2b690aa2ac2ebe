"""GSM (5) and GPRS (6) bearers end to end in virtual time: the module's dialer on a simulated
27.007 modem, wipstack's PPP over the call, an access server (or a caller) behind the network.

Everything is the real code: :class:`~wipstack.cellular.dialer.ModemDialer` inside the module,
:class:`~wipstack.cellular.simulator.ModemSimulator` as the modem, and a wipstack PPP peer as
the operator's access server; only the wires are in-process.
"""

from __future__ import annotations

import pytest

from at_frontend.bearers import BearerState
from tests.helpers.at_rig import Rig
from wipstack.cellular.dialer import DialerSettings, DialerState, ModemDialer
from wipstack.cellular.simulator import ModemSimulator, SimulatorSettings
from wipstack.tcp.socket import TcpServer, TcpSocket

OK = b"\r\nOK\r\n"


def cme(code: int) -> bytes:
    return f"\r\n+CME ERROR: {code}\r\n".encode()


def make_rig(*, dialer: DialerSettings | None = None, caller: bool = False, user: str | None = "user",
             password: str = "pass", **sim: object) -> tuple[Rig, ModemSimulator]:  # fmt: skip
    settings = dialer or DialerSettings(registration_timeout=5.0, command_timeout=2.0, retries=1)
    rig = Rig(modem=ModemDialer(settings))
    simulator = ModemSimulator(SimulatorSettings(**sim))  # type: ignore[arg-type]
    rig.cellular_network(simulator, caller=caller, user=user, password=password)
    assert rig.at("AT+CMEE=1") == OK
    assert rig.at("AT+WIPCFG=1") == OK
    return rig, simulator


def gprs_setup(rig: Rig, apn: str = "internet", user: str = "user", password: str = "pass") -> None:
    lines = ("AT+WIPBR=1,6", f'AT+WIPBR=2,6,11,"{apn}"', f'AT+WIPBR=2,6,0,"{user}"', f'AT+WIPBR=2,6,1,"{password}"')
    for line in lines:
        assert rig.at(line) == OK, line


def start(rig: Rig, line: str, seconds: float = 30.0) -> bytes:
    """Type a pending ``AT+WIPBR=4`` and collect everything until its final result (or ``seconds``)."""
    out = rig.at(line, settle=0.01)
    waited = 0.0
    while not (out.endswith(OK) or b"+CME ERROR" in out) and waited < seconds:
        rig.advance(0.5)
        waited += 0.5
        out += rig.take()
    return out


def test_gprs_bearer_comes_up_with_the_access_servers_addresses_and_carries_tcp() -> None:
    rig, simulator = make_rig()
    gprs_setup(rig)
    assert start(rig, "AT+WIPBR=4,6,0") == OK
    assert rig.cellular is not None and rig.cellular.calls == ["packet"]
    assert 'AT+CGDCONT=1,"IP","internet"' in simulator.last_commands
    assert rig.at("AT+WIPBR=3,6,15") == b'\r\n+WIPBR: 6,15,"203.0.113.2"\r\n' + OK
    assert rig.at("AT+WIPBR=3,6,16") == b'\r\n+WIPBR: 6,16,"203.0.113.1"\r\n' + OK
    assert rig.at("AT+WIPBR=3,6,17") == b'\r\n+WIPBR: 6,17,"203.0.113.53"\r\n' + OK
    assert rig.at("AT+WIPBR?") == b"\r\n+WIPBR: 6,1\r\n" + OK
    peer = rig.cellular.peer
    assert peer is not None
    server = TcpServer(peer.stack.tcp, 7000)
    accepted: list[TcpSocket] = []
    server.on_accept = accepted.append
    assert rig.at('AT+WIPCREATE=2,1,"203.0.113.1",7000', settle=2) == OK + b"\r\n+WIPREADY: 2,1\r\n"
    assert rig.at("AT+WIPDATA=2,1,2") == b"\r\nCONNECT\r\n"
    payload = bytes(range(256)) * 64
    for offset in range(0, len(payload), 2048):
        rig.send(payload[offset : offset + 2048])
        rig.advance(0.1)
    rig.advance(3)
    assert accepted[0].recv() == payload
    accepted[0].send(b"pong" * 500)
    rig.advance(2)
    assert rig.take() == b"pong" * 500


def test_access_server_hanging_up_gives_816_and_the_bearer_goes_down() -> None:
    rig, simulator = make_rig()
    gprs_setup(rig)
    assert start(rig, "AT+WIPBR=4,6,0") == OK
    assert rig.cellular is not None and rig.cellular.peer is not None
    rig.cellular.peer.binding.close(rig.now, "operator hang-up")
    rig.advance(10)
    assert rig.take() == cme(816) + b"\r\n+WIPBR: 6,0\r\n"
    assert rig.module.bearers.opened[6].state is BearerState.OPEN
    assert rig.module.cellular is not None
    assert rig.module.cellular.dialer.state is DialerState.IDLE
    assert simulator.state.value == "command"  # the call was hung up
    # and the bearer can be started again
    assert start(rig, "AT+WIPBR=4,6,0") == OK


def test_wrong_credentials_give_814() -> None:
    rig, simulator = make_rig()
    gprs_setup(rig, password="wrong")
    assert start(rig, "AT+WIPBR=4,6,0") == cme(814)
    assert rig.module.bearers.opened[6].state is BearerState.OPEN
    rig.advance(5)
    assert simulator.state.value == "command"


@pytest.mark.parametrize(
    ("sim", "code"),
    [
        ({"sim_state": "absent"}, 810),
        ({"sim_state": "pin"}, 811),
        ({"sim_state": "puk"}, 811),
        ({"cgreg_stat": 3}, 812),
        ({"cgreg_stat": 0}, 812),
        ({"apns": ("other.apn",)}, 812),
        ({"registration_delay": 1000.0}, 847),
        ({"mute": True}, 848),
    ],
)  # fmt: skip
def test_each_gprs_failure_has_its_code(sim: dict[str, object], code: int) -> None:
    rig, _ = make_rig(**sim)
    gprs_setup(rig)
    assert start(rig, "AT+WIPBR=4,6,0", seconds=60) == cme(code)
    assert rig.at("AT+WIPBR?") == b"\r\n+WIPBR: 6,0\r\n" + OK


def test_sim_pin_is_entered_when_the_dialer_knows_it() -> None:
    rig, simulator = make_rig(dialer=DialerSettings(pin="4321", registration_timeout=5.0), sim_state="pin", pin="4321")
    gprs_setup(rig)
    assert start(rig, "AT+WIPBR=4,6,0") == OK
    assert 'AT+CPIN="4321"' in simulator.last_commands or "AT+CPIN=4321" in simulator.last_commands


@pytest.mark.parametrize(("result", "code"), [("busy", 807), ("no-answer", 808), ("no-carrier", 809),
                                              ("no-dialtone", 809), ("error", 849)])  # fmt: skip
def test_each_gsm_dial_failure_has_its_code(result: str, code: int) -> None:
    rig, _ = make_rig(dial_result=result)
    assert rig.at("AT+WIPBR=1,5") == OK
    assert rig.at('AT+WIPBR=2,5,2,"+15550100"') == OK
    assert start(rig, "AT+WIPBR=4,5,0") == cme(code)


def test_gsm_dial_out_brings_ppp_up() -> None:
    rig, simulator = make_rig()
    for line in ("AT+WIPBR=1,5", 'AT+WIPBR=2,5,2,"+15550100"', 'AT+WIPBR=2,5,0,"user"', 'AT+WIPBR=2,5,1,"pass"'):
        assert rig.at(line) == OK
    assert start(rig, "AT+WIPBR=4,5,0") == OK
    assert "ATD+15550100" in simulator.last_commands
    assert rig.at("AT+WIPBR=3,5,15") == b'\r\n+WIPBR: 5,15,"203.0.113.2"\r\n' + OK
    # stopping hangs the call up
    assert rig.at("AT+WIPBR=5,5", settle=5) == OK
    rig.advance(5)
    assert simulator.state.value == "command"
    assert rig.cellular is not None and rig.cellular.ended


def test_gsm_dial_out_needs_a_number() -> None:
    rig, _ = make_rig()
    assert rig.at("AT+WIPBR=1,5") == OK
    assert rig.at("AT+WIPBR=4,5,0") == cme(801)


def test_gsm_dial_in_answers_after_the_ring_count_and_serves_ppp() -> None:
    rig, simulator = make_rig(caller=True)
    for line in ("AT+WIPBR=1,5", "AT+WIPBR=2,5,5,3", 'AT+WIPBR=2,5,15,"198.51.100.1"',
                 'AT+WIPBR=2,5,16,"198.51.100.2"'):  # fmt: skip
        assert rig.at(line) == OK, line
    assert rig.at('AT+WIPBR=4,5,1,"user","pass"', settle=3) == OK
    assert simulator.incoming_call("+15550199", rig.now)
    rig.advance(1.5)
    assert "ATA" not in simulator.last_commands  # two RINGs so far: not yet
    rig.advance(20)
    assert simulator.counters.rings == 3
    assert "ATA" in simulator.last_commands
    assert rig.take() == b"\r\n+WIPBR: 5,1,198.51.100.1,198.51.100.2,0.0.0.0,0.0.0.0\r\n"
    assert rig.cellular is not None and rig.cellular.peer is not None
    assert rig.cellular.peer.binding.interface is not None


def test_gsm_dial_in_refuses_the_wrong_caller_and_keeps_waiting() -> None:
    rig, simulator = make_rig(caller=True)
    assert rig.at("AT+WIPBR=1,5") == OK
    assert rig.at('AT+WIPBR=4,5,1,"user","pass","+15550199"', settle=3) == OK
    assert simulator.incoming_call("+15550666", rig.now)
    rig.advance(10)
    assert rig.take() == cme(818)
    assert rig.cellular is not None and rig.cellular.calls == []
    assert simulator.incoming_call("+15550199", rig.now)
    rig.advance(20)
    assert rig.take().startswith(b"\r\n+WIPBR: 5,1,")
    assert rig.cellular.calls == ["incoming"]


def test_carrier_lost_mid_transfer_gives_809_and_no_wedge() -> None:
    rig, simulator = make_rig()
    gprs_setup(rig)
    assert start(rig, "AT+WIPBR=4,6,0") == OK
    assert simulator.drop_call(rig.now)
    rig.advance(5)
    assert rig.take() == cme(809) + b"\r\n+WIPBR: 6,0\r\n"
    assert rig.at("AT") == OK
    assert start(rig, "AT+WIPBR=4,6,0") == OK


def test_gprs_over_a_multiplexed_modem_line() -> None:
    """``--modem-cmux``: the dialer multiplexes the modem (AT on DLCI 1, the call on DLCI 2)."""
    rig, simulator = make_rig(dialer=DialerSettings(use_cmux=True, registration_timeout=5.0))
    gprs_setup(rig)
    assert start(rig, "AT+WIPBR=4,6,0") == OK
    assert "AT+CMUX=0" in simulator.last_commands
    assert simulator.mux is not None and simulator.mux.open_dlcis >= {1, 2}
    assert rig.at("AT+WIPBR=3,6,15") == b'\r\n+WIPBR: 6,15,"203.0.113.2"\r\n' + OK
    assert rig.cellular is not None and rig.cellular.peer is not None
    server = TcpServer(rig.cellular.peer.stack.tcp, 7001)
    accepted: list[TcpSocket] = []
    server.on_accept = accepted.append
    assert rig.at('AT+WIPCREATE=2,1,"203.0.113.1",7001', settle=2) == OK + b"\r\n+WIPREADY: 2,1\r\n"
    accepted[0].send(bytes(range(256)) * 20)
    rig.advance(2)
    assert rig.take().startswith(b"\r\n+WIPDATA: 2,1,")
    out = rig.at("AT+WIPDATA=2,1,2")
    rig.advance(1)
    assert out + rig.take() == b"\r\nCONNECT\r\n" + bytes(range(256)) * 20
    rig.advance(1.2)
    rig.send(b"+++")
    rig.advance(1.2)
    assert rig.take() == OK
    # hang up and dial again over the same multiplexer
    assert rig.at("AT+WIPBR=5,6", settle=5) == OK
    rig.advance(5)
    assert simulator.state.value == "command"
    assert start(rig, "AT+WIPBR=4,6,0") == OK
    assert rig.cellular.calls == ["packet", "packet"]


def test_modem_that_stops_answering_mid_command_gives_848_and_no_wedge() -> None:
    rig, simulator = make_rig(dialer=DialerSettings(dial_timeout=10.0, registration_timeout=5.0), connect_delay=3.0)
    gprs_setup(rig)
    rig.at("AT+WIPBR=4,6,0", settle=0.01)
    for _ in range(200):  # let the dialogue run up to ATD, then the modem hangs before its CONNECT
        rig.advance(0.01)
        if "ATD*99***1#" in simulator.last_commands:
            break
    assert "ATD*99***1#" in simulator.last_commands
    simulator.configure(mute=True)
    out = rig.take()
    for _ in range(120):
        rig.advance(0.5)
        out += rig.take()
        if b"ERROR" in out:
            break
    assert out == cme(848)
    assert rig.at("AT") == OK
    simulator.configure(mute=False)
    assert start(rig, "AT+WIPBR=4,6,0") == OK


def test_a_start_right_after_a_stop_waits_for_the_hang_up() -> None:
    rig, simulator = make_rig()
    gprs_setup(rig)
    assert start(rig, "AT+WIPBR=4,6,0") == OK
    out = rig.at("AT+WIPBR=5,6;+WIPBR=4,6,0", settle=0.01)  # the modem is still escaping (+++, ATH)
    assert out == b""
    assert rig.module.cellular is not None
    assert rig.module.cellular.dialer.state is DialerState.HANGING_UP
    waited = 0.0
    while not out.endswith(OK) and waited < 30:
        rig.advance(0.5)
        waited += 0.5
        out += rig.take()
    assert out == OK
    assert simulator.last_commands.count("ATH") == 1
    assert rig.cellular is not None and rig.cellular.calls == ["packet", "packet"]
