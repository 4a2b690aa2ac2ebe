"""Scripted AT sessions, byte for byte: ``AT+WIPBR`` (bearers 1, 2, 4, 5, 6, CMUX), PPP on UART2.

The network bearer (4, and GPRS over it) uses the rig's FakeHost; the UART bearers run PPP
against a wipstack peer wired to UART2 (``rig.ppp_peer``).
"""

from __future__ import annotations

import pytest

from at_frontend.config import ModuleConfig, SimState
from at_frontend.store import MemoryStore
from tests.helpers.at_rig import PppPeer, Rig

OK = b"\r\nOK\r\n"
ERROR = b"\r\nERROR\r\n"


def info(*lines: str) -> bytes:
    return b"".join(b"\r\n" + line.encode() + b"\r\n" for line in lines) + OK


def cme(code: int | str) -> bytes:
    return b"\r\n+CME ERROR: " + str(code).encode() + b"\r\n"


def urc(*lines: str) -> bytes:
    return b"".join(b"\r\n" + line.encode() + b"\r\n" for line in lines)


@pytest.fixture
def rig() -> Rig:
    """CMEE=1, stack started, no bearer."""
    rig = Rig()
    rig.start_stack()
    return rig


@pytest.fixture
def gprs() -> Rig:
    """GPRS over the network bearer; a network peer; CMEE=1, stack started."""
    rig = Rig(ModuleConfig(gprs_backend="tun"))
    rig.network_peer()
    rig.start_stack()
    return rig


def wait_for(rig: Rig, uart: int = 1, step: float = 0.05, limit: float = 60.0) -> tuple[bytes, float]:
    """Advance until ``uart`` prints something; (what, when)."""
    end = rig.now + limit
    while rig.now < end:
        rig.advance(step)
        out = rig.take(uart)
        if out:
            return out, rig.now
    return b"", rig.now


def start_uart2_server(rig: Rig, line: str = 'AT+WIPBR=4,2,1,"user","secret"') -> None:
    assert rig.at("AT+WIPBR=1,2") == OK
    assert rig.at(line) == OK  # a server says OK at once


def hang_up(rig: Rig, peer: PppPeer) -> None:
    """The peer's pty is closed: whatever it still sends goes nowhere."""
    peer.connected = False
    rig.take(2)


# ---------------------------------------------------------------------------- forms, preconditions


def test_test_form() -> None:
    assert Rig().at("AT+WIPBR=?") == info("+WIPBR: (0-6),(1,2,4,5,6,11-14,21-24)")


def test_read_form_works_before_the_stack_starts() -> None:
    assert Rig().at("AT+WIPBR?") == OK


@pytest.mark.parametrize(
    "line",
    ["AT+WIPBR=0,4", "AT+WIPBR=1,4", 'AT+WIPBR=2,4,15,"1.2.3.4"', "AT+WIPBR=3,4,15", "AT+WIPBR=4,4,0",
     "AT+WIPBR=5,4", "AT+WIPBR=6,4,1", "AT+WIPBR=1,99"],
)  # fmt: skip
def test_every_cmdtype_is_803_before_wipcfg_1(line: str) -> None:
    rig = Rig()
    assert rig.at("AT+CMEE=1") == OK
    assert rig.at(line) == cme(803)


def test_803_is_plain_error_with_cmee_0() -> None:
    assert Rig().at("AT+WIPBR=1,4") == ERROR


def test_action_form_is_a_syntax_error(rig: Rig) -> None:
    assert rig.at("AT+WIPBR") == ERROR


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("AT+WIPBR=7,4", 801),
        ("AT+WIPBR=x,4", 801),
        ("AT+WIPBR=1", 800),
        ("AT+WIPBR=1,4,1", 800),
        ("AT+WIPBR=0,4,1", 800),
        ("AT+WIPBR=5,4,1", 800),
        ("AT+WIPBR=6,4", 800),
        ("AT+WIPBR=3,4", 800),
        ("AT+WIPBR=2,4,15", 800),
        ("AT+WIPBR=1,4,1,2,3,4,5", 800),
    ],
)
def test_malformed_commands(rig: Rig, line: str, code: int) -> None:
    assert rig.at(line) == cme(code)


# ---------------------------------------------------------------------------- open / close


@pytest.mark.parametrize("bid", [1, 2, 4])
def test_open_twice_is_804_then_close(rig: Rig, bid: int) -> None:
    assert rig.at(f"AT+WIPBR=1,{bid}") == OK
    assert rig.at("AT+WIPBR?") == info(f"+WIPBR: {bid},0")
    assert rig.at(f"AT+WIPBR=1,{bid}") == cme(804)
    assert rig.at(f"AT+WIPBR=0,{bid}") == OK
    assert rig.at("AT+WIPBR?") == OK
    assert rig.at(f"AT+WIPBR=0,{bid}") == cme(803)


def test_several_bearers_may_be_open_at_once(rig: Rig) -> None:
    assert rig.at("AT+WIPBR=1,4;+WIPBR=1,2;+WIPBR=1,1") == OK
    assert rig.at("AT+WIPBR?") == info("+WIPBR: 1,0", "+WIPBR: 2,0", "+WIPBR: 4,0")


@pytest.mark.parametrize("bid", [5, 6, 11, 12, 13, 14, 21, 22, 23, 24])
def test_bearers_without_a_modem_or_cmux_are_805(rig: Rig, bid: int) -> None:
    assert rig.at(f"AT+WIPBR=1,{bid}") == cme(805)
    assert rig.at("AT+WIPBR?") == OK


def test_network_bearer_without_a_host_device_is_805(rig: Rig) -> None:
    rig.module.host = None
    assert rig.at("AT+WIPBR=1,4") == cme(805)


@pytest.mark.parametrize("bid", ["0", "3", "7", "10", "15", "20", "25", "255", "256", "x", ""])
def test_unknown_bearer_ids_are_801(rig: Rig, bid: str) -> None:
    assert rig.at(f"AT+WIPBR=1,{bid}") == cme(801)


@pytest.mark.parametrize(
    "line", ["AT+WIPBR=0,7", 'AT+WIPBR=2,7,0,"x"', "AT+WIPBR=3,7,0", "AT+WIPBR=4,7,0", "AT+WIPBR=5,7", "AT+WIPBR=6,7,1"]
)
def test_unknown_bearer_ids_are_801_for_every_cmdtype(rig: Rig, line: str) -> None:
    assert rig.at(line) == cme(801)


@pytest.mark.parametrize(
    "line", ["AT+WIPBR=0,1", 'AT+WIPBR=2,1,0,"x"', "AT+WIPBR=3,1,0", "AT+WIPBR=4,1,0", "AT+WIPBR=5,1", "AT+WIPBR=6,1,1"]
)
def test_a_known_bearer_not_opened_is_803(rig: Rig, line: str) -> None:
    assert rig.at(line) == cme(803)


# ---------------------------------------------------------------------------- options


def test_string_options_are_quoted_on_read_whether_set_quoted_or_not(rig: Rig) -> None:
    assert rig.at("AT+WIPBR=1,1") == OK
    assert rig.at("AT+WIPBR=3,1,0") == info('+WIPBR: 1,0,""')
    assert rig.at('AT+WIPBR=2,1,0,"User Name"') == OK
    assert rig.at("AT+WIPBR=3,1,0") == info('+WIPBR: 1,0,"User Name"')
    assert rig.at("AT+WIPBR=2,1,1,s3cr3t") == OK
    assert rig.at("AT+WIPBR=3,1,1") == info('+WIPBR: 1,1,"s3cr3t"')
    assert rig.at('AT+WIPBR=2,1,1,"a,b;c"') == OK  # separators inside quotes are text
    assert rig.at("AT+WIPBR=3,1,1") == info('+WIPBR: 1,1,"a,b;c"')
    assert rig.at('AT+WIPBR=2,1,1,""') == OK
    assert rig.at("AT+WIPBR=3,1,1") == info('+WIPBR: 1,1,""')


def test_integer_options_are_unquoted(rig: Rig) -> None:
    assert rig.at("AT+WIPBR=1,2") == OK
    assert rig.at("AT+WIPBR=3,2,5") == info("+WIPBR: 2,5,0")
    assert rig.at("AT+WIPBR=2,2,5,65535;+WIPBR=2,2,6,1") == OK
    assert rig.at("AT+WIPBR=3,2,5;+WIPBR=3,2,6") == info("+WIPBR: 2,5,65535", "+WIPBR: 2,6,1")


def test_address_options(rig: Rig) -> None:
    assert rig.at("AT+WIPBR=1,4") == OK
    assert rig.at("AT+WIPBR=3,4,15") == info('+WIPBR: 4,15,"0.0.0.0"')
    assert rig.at('AT+WIPBR=2,4,15,"10.0.0.2"') == OK
    assert rig.at("AT+WIPBR=2,4,16,10.0.0.1") == OK
    assert rig.at("AT+WIPBR=3,4,15;+WIPBR=3,4,16") == info('+WIPBR: 4,15,"10.0.0.2"', '+WIPBR: 4,16,"10.0.0.1"')


@pytest.mark.parametrize(
    ("bid", "opt", "good", "bad"),
    [
        (1, 0, '"' + "u" * 64 + '"', '"' + "u" * 65 + '"'),
        (1, 1, '"' + "p" * 64 + '"', '"' + "p" * 65 + '"'),
        (2, 2, '"' + "1" * 32 + '"', '"' + "1" * 33 + '"'),
        (2, 5, "0", "65536"),
        (2, 5, "65535", "-1"),
        (2, 6, "1", "2"),
        (2, 6, "0", "x"),
        (4, 15, '"255.255.255.255"', '"256.0.0.1"'),
        (4, 16, "1.2.3.4", '"host.example"'),
        (4, 17, '"8.8.8.8"', '""'),
        (4, 18, '"8.8.4.4"', "1.2.3"),
    ],
)
def test_option_value_limits(rig: Rig, bid: int, opt: int, good: str, bad: str) -> None:
    assert rig.at(f"AT+WIPBR=1,{bid}") == OK
    assert rig.at(f"AT+WIPBR=2,{bid},{opt},{good}") == OK
    before = rig.at(f"AT+WIPBR=3,{bid},{opt}")
    assert rig.at(f"AT+WIPBR=2,{bid},{opt},{bad}") == cme(801)
    assert rig.at(f"AT+WIPBR=3,{bid},{opt}") == before


@pytest.mark.parametrize(
    ("bid", "opt"),
    [(4, 0), (4, 1), (4, 2), (4, 5), (4, 6), (4, 11), (4, 12), (1, 11), (1, 12), (2, 3), (2, 99), (2, 256)],
)
def test_options_a_bearer_does_not_have_are_800(rig: Rig, bid: int, opt: int) -> None:
    assert rig.at(f"AT+WIPBR=1,{bid}") == OK
    assert rig.at(f'AT+WIPBR=2,{bid},{opt},"1"') == cme(800)
    assert rig.at(f"AT+WIPBR=3,{bid},{opt}") == cme(800)


def test_non_numeric_option_number_is_800(rig: Rig) -> None:
    assert rig.at("AT+WIPBR=1,4") == OK
    assert rig.at("AT+WIPBR=3,4,x") == cme(800)
    assert rig.at("AT+WIPBR=2,4,x,1") == cme(800)


def test_gprs_options(gprs: Rig) -> None:
    assert gprs.at("AT+WIPBR=1,6") == OK
    assert gprs.at('AT+WIPBR=2,6,11,"' + "a" * 96 + '"') == OK
    assert gprs.at('AT+WIPBR=2,6,11,"' + "a" * 97 + '"') == cme(801)
    assert gprs.at("AT+WIPBR=2,6,11,internet.example;+WIPBR=2,6,12,4") == OK
    assert gprs.at("AT+WIPBR=3,6,11;+WIPBR=3,6,12") == info('+WIPBR: 6,11,"internet.example"', "+WIPBR: 6,12,4")
    assert gprs.at("AT+WIPBR=2,6,12,17") == cme(801)  # 27.007 cids 1..16
    assert gprs.at('AT+WIPBR=2,6,2,"123"') == cme(800)


# ---------------------------------------------------------------------------- bearer 4 (network device)


def test_start_bearer_4_then_read(rig: Rig) -> None:
    rig.network_peer()
    assert rig.at("AT+WIPBR=1,4") == OK
    assert rig.at('AT+WIPBR=2,4,15,"192.0.2.2"') == OK
    assert rig.at("AT+WIPBR=4,4,0") == OK
    assert rig.host.opened == [4]
    assert rig.at("AT+WIPBR?") == info("+WIPBR: 4,1")
    assert rig.at("AT+WIPBR=3,4,15;+WIPBR=3,4,16") == info('+WIPBR: 4,15,"192.0.2.2"', '+WIPBR: 4,16,"192.0.2.1"')
    assert rig.at("AT+WIPBR=3,4,17;+WIPBR=3,4,18") == info('+WIPBR: 4,17,"0.0.0.0"', '+WIPBR: 4,18,"0.0.0.0"')
    assert rig.at("AT+WIPBR=4,4,0") == OK  # starting a started bearer is harmless
    assert rig.host.opened == [4]


def test_start_without_a_mode_means_client(rig: Rig) -> None:
    rig.network_peer()
    assert rig.at("AT+WIPBR=1,4;+WIPBR=4,4") == OK
    assert rig.at("AT+WIPBR?") == info("+WIPBR: 4,1")


def test_dns_options_reach_the_resolver(rig: Rig) -> None:
    rig.network_peer()
    assert rig.at('AT+WIPBR=1,4;+WIPBR=2,4,17,"192.0.2.53";+WIPBR=2,4,18,"192.0.2.54"') == OK
    assert rig.at("AT+WIPBR=4,4,0") == OK
    assert rig.stack.dns.servers == [bytes([192, 0, 2, 53]), bytes([192, 0, 2, 54])]
    assert rig.at("AT+WIPBR=3,4,17") == info('+WIPBR: 4,17,"192.0.2.53"')


def test_stop_then_close_bearer_4() -> None:
    rig = Rig()
    rig.start_network_bearer()
    assert rig.at("AT+WIPBR=5,4") == OK
    assert rig.host.closed == [4]
    assert rig.at("AT+WIPBR?") == info("+WIPBR: 4,0")
    assert rig.at("AT+WIPBR=3,4,15") == info('+WIPBR: 4,15,"192.0.2.2"')  # the option survives
    assert rig.at("AT+WIPBR=5,4") == OK  # stopping a stopped bearer
    assert rig.at("AT+WIPBR=0,4") == OK
    assert rig.at("AT+WIPBR?") == OK


def test_closing_a_started_bearer_stops_it() -> None:
    rig = Rig()
    rig.start_network_bearer()
    assert rig.at("AT+WIPBR=0,4") == OK
    assert rig.host.closed == [4]
    assert rig.at("AT+WIPBR?") == OK
    assert rig.at("AT+WIPCREATE=1,1,80") == cme(803)


def test_restart_after_stop() -> None:
    rig = Rig()
    rig.start_network_bearer()
    assert rig.at("AT+WIPBR=5,4;+WIPBR=4,4,0") == OK
    assert rig.host.opened == [4, 4]
    assert rig.at("AT+WIPBR?") == info("+WIPBR: 4,1")


def test_host_failure_is_805_and_the_bearer_stays_open(rig: Rig) -> None:
    rig.network_peer()
    rig.host.fail = OSError("no TUN device")
    assert rig.at("AT+WIPBR=1,4") == OK
    assert rig.at("AT+WIPBR=4,4,0") == cme(805)
    assert rig.at("AT+WIPBR?") == info("+WIPBR: 4,0")
    rig.host.fail = None
    assert rig.at("AT+WIPBR=4,4,0") == OK


def test_server_mode_on_bearer_4_is_806(rig: Rig) -> None:
    rig.network_peer()
    assert rig.at("AT+WIPBR=1,4") == OK
    assert rig.at("AT+WIPBR=4,4,1") == cme(806)


def test_one_bearer_started_at_a_time(rig: Rig) -> None:
    rig.network_peer()
    assert rig.at("AT+WIPBR=1,4;+WIPBR=1,2;+WIPBR=4,4,0") == OK
    assert rig.at("AT+WIPBR=4,2,1") == cme(803)
    assert rig.at("AT+WIPBR?") == info("+WIPBR: 2,0", "+WIPBR: 4,1")
    assert rig.at("AT+WIPBR=5,4") == OK
    assert rig.at("AT+WIPBR=4,2,1") == OK
    assert rig.at("AT+WIPBR=4,4,0") == cme(803)


# ---------------------------------------------------------------------------- bearer 6 (GPRS over the network device)


def test_gprs_start(gprs: Rig) -> None:
    assert gprs.at('AT+WIPBR=1,6;+WIPBR=2,6,11,"internet";+WIPBR=4,6,0') == OK
    assert gprs.at("AT+WIPBR?") == info("+WIPBR: 6,1")
    assert gprs.at("AT+WIPBR=3,6,15") == info('+WIPBR: 6,15,"192.0.2.2"')


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ({"sim": SimState.ABSENT}, 810),
        ({"sim": SimState.PIN}, 811),
        ({"gprs_registration": 2}, 848),
        ({"gprs_registration": 0}, 812),
        ({"gprs_registration": 3}, 812),
        ({"gprs_attached": False}, 812),
        ({"functionality": 0}, 812),
    ],
)
def test_gprs_start_failures(gprs: Rig, setup: dict[str, object], code: int) -> None:
    assert gprs.at("AT+WIPBR=1,6") == OK
    for name, value in setup.items():
        setattr(gprs.module.config.radio, name, value)
    assert gprs.at("AT+WIPBR=4,6,0") == cme(code)
    assert gprs.at("AT+WIPBR?") == info("+WIPBR: 6,0")


def test_gprs_roaming_is_fine(gprs: Rig) -> None:
    gprs.module.config.radio.gprs_registration = 5
    assert gprs.at("AT+WIPBR=1,6;+WIPBR=4,6,0") == OK


def test_gprs_server_mode_is_806(gprs: Rig) -> None:
    assert gprs.at("AT+WIPBR=1,6") == OK
    assert gprs.at("AT+WIPBR=4,6,1") == cme(806)


# ---------------------------------------------------------------------------- UART2 PPP server


def test_uart2_server_ok_then_the_up_urc(rig: Rig) -> None:
    start_uart2_server(rig)
    assert rig.at("AT+WIPBR?") == info("+WIPBR: 2,0")  # waiting for its client
    peer = rig.ppp_peer(2, user="user", password="secret")
    out, _ = wait_for(rig)
    assert out == urc("+WIPBR: 2,1,192.168.1.1,192.168.1.2,0.0.0.0,0.0.0.0")
    assert peer.binding.is_up
    assert rig.take(2) == b""
    assert rig.at("AT+WIPBR?") == info("+WIPBR: 2,1")
    assert rig.at("AT+WIPBR=3,2,15;+WIPBR=3,2,16") == info('+WIPBR: 2,15,"192.168.1.1"', '+WIPBR: 2,16,"192.168.1.2"')


def test_uart2_server_addresses_and_dns_from_options(rig: Rig) -> None:
    assert rig.at("AT+WIPBR=1,2") == OK
    assert rig.at('AT+WIPBR=2,2,15,"10.1.1.1";+WIPBR=2,2,16,"10.1.1.2"') == OK
    assert rig.at('AT+WIPBR=2,2,17,"9.9.9.9";+WIPBR=2,2,18,"8.8.8.8"') == OK
    assert rig.at("AT+WIPBR=4,2,1") == OK  # no login: no authentication
    rig.ppp_peer(2)
    out, _ = wait_for(rig)
    assert out == urc("+WIPBR: 2,1,10.1.1.1,10.1.1.2,9.9.9.9,8.8.8.8")
    assert rig.at("AT+WIPBR=3,2,17;+WIPBR=3,2,18") == info('+WIPBR: 2,17,"9.9.9.9"', '+WIPBR: 2,18,"8.8.8.8"')


def test_uart2_server_login_from_the_options(rig: Rig) -> None:
    assert rig.at('AT+WIPBR=1,2;+WIPBR=2,2,0,"opt-user";+WIPBR=2,2,1,"opt-pass";+WIPBR=4,2,1') == OK
    rig.ppp_peer(2, user="opt-user", password="opt-pass")
    out, _ = wait_for(rig)
    assert out == urc("+WIPBR: 2,1,192.168.1.1,192.168.1.2,0.0.0.0,0.0.0.0")


def test_uart2_server_carries_ip(rig: Rig) -> None:
    start_uart2_server(rig)
    peer = rig.ppp_peer(2, user="user", password="secret")
    wait_for(rig)
    sock = rig.stack.udp_socket()
    sock.bind(port=7000)
    got: list[bytes] = []
    sock.on_datagram = lambda data, source, now: got.append(data)
    client = peer.stack.udp_socket()
    client.sendto(b"over ppp", "192.168.1.1", 7000)
    rig.advance(0.1)
    assert got == [b"over ppp"]


def test_uart2_server_wrong_password_gives_the_failure_urcs(rig: Rig) -> None:
    start_uart2_server(rig)
    peer = rig.ppp_peer(2, user="user", password="wrong")
    out, _ = wait_for(rig)
    assert out == urc("+CME ERROR: 814", "+WIPBR: 2,0")
    hang_up(rig, peer)
    assert rig.at("AT", uart=2) == OK  # UART2 is back in AT mode
    assert rig.at("AT+WIPBR?") == info("+WIPBR: 2,0")
    assert rig.at('AT+WIPBR=4,2,1,"user","secret"') == OK  # and may start again


def test_uart2_server_failure_urcs_follow_cmee(rig: Rig) -> None:
    assert rig.at("AT+CMEE=2") == OK
    start_uart2_server(rig)
    rig.ppp_peer(2, user="user", password="wrong")
    out, _ = wait_for(rig)
    # an unsolicited +CME ERROR is numeric whatever +CMEE says
    assert out == urc("+CME ERROR: 814", "+WIPBR: 2,0")


def test_uart2_server_peer_terminates(rig: Rig) -> None:
    start_uart2_server(rig)
    peer = rig.ppp_peer(2, user="user", password="secret")
    wait_for(rig)
    peer.binding.close(rig.now, "bye")
    out, _ = wait_for(rig)
    assert out == urc("+CME ERROR: 816", "+WIPBR: 2,0")
    hang_up(rig, peer)
    assert rig.at("AT", uart=2) == OK
    assert rig.at("AT+WIPBR?") == info("+WIPBR: 2,0")


def test_uart2_server_stopped_by_the_host(rig: Rig) -> None:
    start_uart2_server(rig)
    peer = rig.ppp_peer(2, user="user", password="secret")
    wait_for(rig)
    assert rig.at("AT+WIPBR=5,2") == OK  # no failure URC for a stop we asked for
    assert rig.at("AT+WIPBR?") == info("+WIPBR: 2,0")
    hang_up(rig, peer)
    assert rig.at("AT", uart=2) == OK
    rig.advance(5)
    assert rig.take(1) == b""


def test_uart2_server_close_while_waiting_for_the_client(rig: Rig) -> None:
    start_uart2_server(rig)
    assert rig.at("AT+WIPBR=0,2") == OK
    assert rig.at("AT+WIPBR?") == OK
    assert rig.at("AT", uart=2) == OK


def test_uart2_server_started_from_uart2_itself(rig: Rig) -> None:
    assert rig.at("AT+WIPBR=1,2") == OK
    assert rig.at("AT+WIPBR=4,2,1", uart=2) == OK
    peer = rig.ppp_peer(2)
    rig.advance(5)
    assert peer.binding.is_up
    assert rig.take(1) == b""
    assert rig.at("AT+WIPBR?") == info("+WIPBR: 2,1")


def test_uart2_server_started_from_uart2_reports_no_stale_up_urc(rig: Rig) -> None:
    assert rig.at("AT+WIPBR=1,2") == OK
    assert rig.at("AT+WIPBR=4,2,1", uart=2) == OK
    peer = rig.ppp_peer(2)
    rig.advance(5)
    assert rig.at("AT+WIPBR=5,2") == OK
    peer.connected = False
    rig.advance(1)
    assert b"+WIPBR: 2,1," not in rig.take(2)


def test_uart2_busy_is_806(rig: Rig) -> None:
    rig.stack.dns.servers = [bytes([10, 0, 0, 53])]  # unreachable: the lookup keeps UART2 busy
    assert rig.at("AT+WIPBR=1,2") == OK
    rig.send(b'AT+WIPPING="host.example"\r', uart=2)
    assert rig.take(2) == b""
    assert rig.at("AT+WIPBR=4,2,1") == cme(806)


# ---------------------------------------------------------------------------- UART2 PPP client


def test_uart2_client_final_ok_only_after_ipcp(rig: Rig) -> None:
    assert rig.at("AT+WIPBR=1,2") == OK
    rig.send(b"AT+WIPBR=4,2,0\r")
    assert rig.take(1) == b""
    rig.advance(1)
    assert rig.take(1) == b""  # nobody answers yet
    peer = rig.ppp_peer(2, server=True)
    assert rig.take(1) == b""
    out, _ = wait_for(rig, step=0.01)
    assert out == OK
    assert peer.binding.is_up  # OK came with IPCP up, not before
    assert rig.at("AT+WIPBR?") == info("+WIPBR: 2,1")
    assert rig.at("AT+WIPBR=3,2,15;+WIPBR=3,2,16") == info('+WIPBR: 2,15,"192.0.2.2"', '+WIPBR: 2,16,"192.0.2.1"')


def test_uart2_client_rest_of_line_and_held_lines_run_after_the_link(rig: Rig) -> None:
    assert rig.at("AT+WIPBR=1,2") == OK
    rig.send(b"AT+WIPBR=4,2,0;+WIPBR?\rAT+CSQ\r")
    assert rig.take(1) == b""
    rig.ppp_peer(2, server=True)
    out, _ = wait_for(rig)
    assert out == info("+WIPBR: 2,1") + info("+CSQ: 20,99")


def test_uart2_client_with_pap_credentials(rig: Rig) -> None:
    assert rig.at('AT+WIPBR=1,2;+WIPBR=2,2,0,"me";+WIPBR=2,2,1,"good"') == OK
    rig.send(b"AT+WIPBR=4,2,0\r")
    rig.ppp_peer(2, server=True, user="me", password="good")
    out, _ = wait_for(rig)
    assert out == OK


def test_uart2_client_authentication_failure_is_814(rig: Rig) -> None:
    assert rig.at('AT+WIPBR=1,2;+WIPBR=2,2,0,"me";+WIPBR=2,2,1,"bad"') == OK
    rig.send(b"AT+WIPBR=4,2,0\r")
    peer = rig.ppp_peer(2, server=True, user="me", password="good")
    out, _ = wait_for(rig)
    assert out == cme(814)
    hang_up(rig, peer)
    assert rig.at("AT+WIPBR?") == info("+WIPBR: 2,0")
    assert rig.at("AT", uart=2) == OK


def test_uart2_client_without_a_peer_fails_lcp_with_813(rig: Rig) -> None:
    assert rig.at("AT+WIPBR=1,2") == OK
    rig.send(b"AT+WIPBR=4,2,0\r")
    start = rig.now
    out, when = wait_for(rig, step=0.5, limit=120)
    assert out == cme(813)
    assert 20 <= when - start <= 60  # after the LCP retries, not at once
    assert rig.at("AT+WIPBR?") == info("+WIPBR: 2,0")


def test_uart2_client_started_from_uart2_says_ok_at_once(rig: Rig) -> None:
    assert rig.at("AT+WIPBR=1,2") == OK
    rig.send(b"AT+WIPBR=4,2,0\r", uart=2)
    assert rig.take(2).startswith(OK)  # then PPP frames
    peer = rig.ppp_peer(2, server=True)
    rig.advance(10)
    assert peer.binding.is_up
    assert rig.at("AT+WIPBR?") == info("+WIPBR: 2,1")


def test_uart2_client_link_lost_after_up(rig: Rig) -> None:
    assert rig.at("AT+WIPBR=1,2") == OK
    rig.send(b"AT+WIPBR=4,2,0\r")
    peer = rig.ppp_peer(2, server=True)
    assert wait_for(rig)[0] == OK
    peer.binding.close(rig.now, "bye")
    out, _ = wait_for(rig)
    assert out == urc("+CME ERROR: 816", "+WIPBR: 2,0")


# ---------------------------------------------------------------------------- =6 store / free


def test_store_then_a_new_module_opens_the_bearer_with_its_options() -> None:
    rig = Rig()
    rig.start_stack()
    assert rig.at('AT+WIPBR=1,2;+WIPBR=2,2,0,"user";+WIPBR=2,2,1,pw;+WIPBR=2,2,5,3') == OK
    assert rig.at("AT+WIPBR=6,2,1") == OK
    again = Rig(store=rig.store)
    again.start_stack()
    assert again.at("AT+WIPBR=1,2") == OK
    assert again.at("AT+WIPBR=3,2,0;+WIPBR=3,2,1;+WIPBR=3,2,5") == info(
        '+WIPBR: 2,0,"user"', '+WIPBR: 2,1,"pw"', "+WIPBR: 2,5,3"
    )
    assert again.at("AT+WIPBR=1,1") == OK  # other bearers are not affected
    assert again.at("AT+WIPBR=3,1,0") == info('+WIPBR: 1,0,""')


def test_free_forgets_the_stored_options() -> None:
    rig = Rig()
    rig.start_stack()
    assert rig.at('AT+WIPBR=1,2;+WIPBR=2,2,0,"user";+WIPBR=6,2,1') == OK
    assert rig.at("AT+WIPBR=6,2,0") == OK
    assert rig.at("AT+WIPBR=3,2,0") == info('+WIPBR: 2,0,"user"')  # the current value stays
    again = Rig(store=rig.store)
    again.start_stack()
    assert again.at("AT+WIPBR=1,2;+WIPBR=3,2,0") == info('+WIPBR: 2,0,""')


def test_store_errors(rig: Rig) -> None:
    assert rig.at("AT+WIPBR=1,2") == OK
    assert rig.at("AT+WIPBR=6,2,2") == cme(801)
    rig.store.fail_next_save = True
    assert rig.at("AT+WIPBR=6,2,1") == cme(820)
    assert rig.at("AT+WIPBR=6,2,1") == OK
    rig.store.fail_next_save = True
    assert rig.at("AT+WIPBR=6,2,0") == cme(820)
    rig.store.blob = b"junk"
    assert rig.at("AT+WIPBR=6,2,0") == cme(821)
    assert rig.at("AT+WIPBR=6,2,1") == OK  # storing replaces a corrupt store


def test_opening_with_a_corrupt_store_gives_empty_options() -> None:
    store = MemoryStore()
    store.blob = b"junk"
    rig = Rig(store=store)
    assert rig.take(1) == b"\r\n+CME ERROR: 821\r\n"
    rig.start_stack()
    assert rig.at("AT+WIPBR=1,2;+WIPBR=3,2,0") == info('+WIPBR: 2,0,""')
