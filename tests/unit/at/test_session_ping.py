"""Scripted AT sessions, byte for byte: ``AT+WIPPING`` (ICMP echo) over the network bearer.

The rig's wire has no latency, so a reply comes back in 0 ms; tests that need a response
time hold the wire (``network.module_interface = None``) for a while first.
"""

from __future__ import annotations

import struct

import pytest

from tests.helpers.at_rig import NetworkPeer, Rig

OK = b"\r\nOK\r\n"
ERROR = b"\r\nERROR\r\n"
PEER = "192.0.2.1"


def info(*lines: str) -> bytes:
    return b"".join(b"\r\n" + line.encode() + b"\r\n" for line in lines) + OK


def urc(*lines: str) -> bytes:
    return b"".join(b"\r\n" + line.encode() + b"\r\n" for line in lines)


def cme(code: int) -> bytes:
    return b"\r\n+CME ERROR: " + str(code).encode() + b"\r\n"


@pytest.fixture
def rig() -> Rig:
    rig = Rig()
    rig.start_network_bearer()
    return rig


def spy_on_peer(network: NetworkPeer) -> list[bytes]:
    """Every IP packet the peer receives from the module."""
    packets: list[bytes] = []
    receive = network.stack.receive

    def spy(interface, packet, now):  # type: ignore[no-untyped-def]
        packets.append(bytes(packet))
        return receive(interface, packet, now)

    network.stack.receive = spy  # type: ignore[method-assign]
    return packets


# ---------------------------------------------------------------------------- forms


def test_read_form_defaults() -> None:
    assert Rig().at("AT+WIPPING?") == info('+WIPPING: "",1,2000,2000,64,0')


def test_test_form_ranges() -> None:
    assert Rig().at("AT+WIPPING=?") == info("+WIPPING: ,(1-65535),(1-65535),(1-65535),(1-1500),(0-255)")


def test_803_before_the_stack_starts() -> None:
    rig = Rig()
    assert rig.at("AT+CMEE=1") == OK
    assert rig.at(f'AT+WIPPING="{PEER}"') == cme(803)
    assert rig.at("AT+CMEE=0") == OK
    assert rig.at(f'AT+WIPPING="{PEER}"') == ERROR


def test_action_form_is_a_syntax_error(rig: Rig) -> None:
    assert rig.at("AT+WIPPING") == ERROR


# ---------------------------------------------------------------------------- replies


def test_defaults_one_packet_ok_first(rig: Rig) -> None:
    assert rig.at(f'AT+WIPPING="{PEER}"') == b"\r\nOK\r\n\r\n+WIPPING: 0,0,0\r\n"
    rig.advance(10)
    assert rig.take() == b""
    assert rig.at("AT+WIPPING?") == info(f'+WIPPING: "{PEER}",1,2000,2000,64,0')


def test_one_urc_per_packet_index_from_0_at_the_interval(rig: Rig) -> None:
    assert rig.at(f'AT+WIPPING="{PEER}",3,1000', settle=0) == OK + urc("+WIPPING: 0,0,0")
    rig.advance(0.95)
    assert rig.take() == b""
    rig.advance(0.1)
    assert rig.take() == urc("+WIPPING: 0,1,0")
    rig.advance(1.0)
    assert rig.take() == urc("+WIPPING: 0,2,0")
    rig.advance(5)
    assert rig.take() == b""
    assert rig.at("AT+WIPPING?") == info(f'+WIPPING: "{PEER}",3,1000,2000,64,0')


def test_response_time_in_milliseconds(rig: Rig) -> None:
    network = rig.network
    assert network is not None
    wire, network.module_interface = network.module_interface, None  # hold the request 250 ms
    assert rig.at(f'AT+WIPPING="{PEER}",2,1000', settle=0.25) == OK
    network.module_interface = wire
    rig.advance(0.01)
    assert rig.take() == urc("+WIPPING: 0,0,250")
    rig.advance(1.0)
    assert rig.take() == urc("+WIPPING: 0,1,0")


def test_all_parameters_and_the_read_form(rig: Rig) -> None:
    assert rig.at(f'AT+WIPPING="{PEER}",2,500,1500,32,10', settle=0) == OK + urc("+WIPPING: 0,0,0")
    rig.advance(0.55)
    assert rig.take() == urc("+WIPPING: 0,1,0")
    assert rig.at("AT+WIPPING?") == info(f'+WIPPING: "{PEER}",2,500,1500,32,10')


def test_unquoted_host(rig: Rig) -> None:
    assert rig.at(f"AT+WIPPING={PEER},1") == OK + urc("+WIPPING: 0,0,0")


def test_empty_optional_parameters_take_the_defaults(rig: Rig) -> None:
    assert rig.at(f'AT+WIPPING="{PEER}",,,,,') == OK + urc("+WIPPING: 0,0,0")
    assert rig.at("AT+WIPPING?") == info(f'+WIPPING: "{PEER}",1,2000,2000,64,0')
    assert rig.at(f'AT+WIPPING="{PEER}",2,,,16') == OK + urc("+WIPPING: 0,0,0")
    assert rig.at("AT+WIPPING?") == info(f'+WIPPING: "{PEER}",2,2000,2000,16,0')


def test_size_and_ttl_on_the_wire(rig: Rig) -> None:
    assert rig.network is not None
    packets = spy_on_peer(rig.network)
    assert rig.at(f'AT+WIPPING="{PEER}",1,1,1,100,7') == OK + urc("+WIPPING: 0,0,0")
    assert [(len(p), p[8]) for p in packets] == [(20 + 8 + 100, 7)]
    packets.clear()
    assert rig.at("AT+WIPCFG=2,0,33") == OK  # ttl 0: the stack's TTL (+WIPCFG option 0)
    assert rig.at(f'AT+WIPPING="{PEER}",1,1,1,1500') == OK + urc("+WIPPING: 0,0,0")
    assert [p[8] for p in packets] == [33, 33]  # 1528 octets: two fragments
    assert struct.unpack("!H", packets[0][6:8])[0] & 0x2000  # more fragments


# ---------------------------------------------------------------------------- timeouts


def test_unanswered_address_times_out(rig: Rig) -> None:
    assert rig.at('AT+WIPPING="192.0.2.99",2,1000,500', settle=0) == OK  # the peer does not answer for it
    rig.advance(0.45)
    assert rig.take() == b""
    rig.advance(0.1)
    assert rig.take() == urc("+WIPPING: 1,0,500")
    rig.advance(0.9)
    assert rig.take() == b""
    rig.advance(0.1)
    assert rig.take() == urc("+WIPPING: 1,1,500")
    rig.advance(5)
    assert rig.take() == b""


def test_address_with_no_route_times_out() -> None:
    rig = Rig()
    rig.start_stack()  # no bearer: nothing is routed
    assert rig.at('AT+WIPPING="10.0.0.1",2,1000,500', settle=0) == OK
    rig.advance(0.45)
    assert rig.take() == b""
    rig.advance(0.1)
    assert rig.take() == urc("+WIPPING: 1,0,500")
    rig.advance(1.0)
    assert rig.take() == urc("+WIPPING: 1,1,500")


def test_default_timeout_is_2000_ms(rig: Rig) -> None:
    assert rig.at('AT+WIPPING="192.0.2.99"', settle=0) == OK
    rig.advance(1.95)
    assert rig.take() == b""
    rig.advance(0.1)
    assert rig.take() == urc("+WIPPING: 1,0,2000")


def test_one_session_at_a_time(rig: Rig) -> None:
    assert rig.at("AT+CMEE=1") == OK
    assert rig.at(f'AT+WIPPING="{PEER}",3,1000') == OK + urc("+WIPPING: 0,0,0")
    assert rig.at(f'AT+WIPPING="{PEER}"') == cme(803)
    rig.advance(2.5)
    assert rig.take() == urc("+WIPPING: 0,1,0", "+WIPPING: 0,2,0")
    assert rig.at(f'AT+WIPPING="{PEER}"') == OK + urc("+WIPPING: 0,0,0")


def test_stopping_the_stack_cancels_the_session(rig: Rig) -> None:
    assert rig.at(f'AT+WIPPING="{PEER}",5,1000') == OK + urc("+WIPPING: 0,0,0")
    assert rig.at("AT+WIPCFG=0") == OK
    rig.advance(10)
    assert rig.take() == b""


# ---------------------------------------------------------------------------- parameter errors


@pytest.mark.parametrize(
    "args",
    ['"192.0.2.1",0', '"192.0.2.1",65536', '"192.0.2.1",1,0', '"192.0.2.1",1,65536', '"192.0.2.1",1,1,0',
     '"192.0.2.1",1,1,65536', '"192.0.2.1",1,1,1,0', '"192.0.2.1",1,1,1,1501', '"192.0.2.1",1,1,1,1,256',
     '"192.0.2.1",x', '"192.0.2.1",-1', '""', '"' + "a" * 256 + '"'],
)  # fmt: skip
def test_values_out_of_range_are_801(rig: Rig, args: str) -> None:
    assert rig.at("AT+CMEE=1") == OK
    assert rig.at(f"AT+WIPPING={args}") == cme(801)
    rig.advance(5)
    assert rig.take() == b""  # nothing was started


def test_too_many_parameters_is_800(rig: Rig) -> None:
    assert rig.at("AT+CMEE=1") == OK
    assert rig.at(f'AT+WIPPING="{PEER}",1,1,1,1,1,1') == cme(800)


def test_range_bounds_are_accepted(rig: Rig) -> None:
    assert rig.at(f'AT+WIPPING="{PEER}",1,65535,65535,1500,255') == OK + urc("+WIPPING: 0,0,0")
    assert rig.at(f'AT+WIPPING="{PEER}",1,1,1,1,0') == OK + urc("+WIPPING: 0,0,0")


# ---------------------------------------------------------------------------- host names


def dns_server(network: NetworkPeer, names: dict[str, str]) -> None:
    """A UDP server on the peer's port 53 answering A queries from ``names`` (else NXDOMAIN)."""
    sock = network.stack.udp_socket()
    sock.bind(port=53)

    def answer(query: bytes, source: tuple[bytes, int], now: float) -> None:
        labels, i = [], 12
        while query[i]:
            labels.append(query[i + 1 : i + 1 + query[i]].decode())
            i += 1 + query[i]
        question, address = query[12 : i + 5], names.get(".".join(labels).lower())
        if address is None:
            reply = query[:2] + struct.pack("!HHHHH", 0x8183, 1, 0, 0, 0) + question
        else:
            record = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + bytes(map(int, address.split(".")))
            reply = query[:2] + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0) + question + record
        sock.sendto(reply, source[0], source[1])

    sock.on_datagram = answer


def test_host_name_is_resolved_first() -> None:
    rig = Rig()
    network = rig.network_peer(PEER)
    rig.start_stack()
    assert rig.at(f'AT+WIPBR=1,4;+WIPBR=2,4,17,"{PEER}";+WIPBR=4,4,0') == OK
    dns_server(network, {"peer.example": PEER})
    assert rig.at('AT+WIPPING="peer.example",2,1000') == OK + urc("+WIPPING: 0,0,0")
    rig.advance(1.05)
    assert rig.take() == urc("+WIPPING: 0,1,0")
    assert rig.at('AT+WIPPING="nosuch.example"') == cme(842)


def test_unresolvable_name_is_842_instead_of_ok(rig: Rig) -> None:
    assert rig.at("AT+CMEE=1") == OK
    assert rig.at('AT+WIPPING="nosuch.example"') == cme(842)  # no DNS server at all
    assert rig.at(f'AT+WIPPING="{PEER}"') == OK + urc("+WIPPING: 0,0,0")  # not left busy


def test_name_lookup_timeout_is_842_and_the_uart_waits_for_it() -> None:
    rig = Rig()
    rig.network_peer(PEER)
    rig.start_stack()
    assert rig.at(f'AT+WIPBR=1,4;+WIPBR=2,4,17,"{PEER}";+WIPBR=4,4,0') == OK  # nobody answers DNS
    rig.send(b'AT+WIPPING="slow.example"\rAT\r')
    assert rig.take() == b""  # the next line waits for the ping's result
    rig.advance(30)
    assert rig.take() == cme(842) + OK
