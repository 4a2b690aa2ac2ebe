"""Scripted AT sessions, byte for byte: +WIPCREATE, +WIPCLOSE, +WIPOPT, +WIPDATA and the data modes.

The module's network bearer (4) is up with 192.0.2.2; the peer stack at 192.0.2.1 runs the
TCP servers, clients and UDP sockets the tests need.  In continuous mode (1) the tests escape
what they type (DLE before DLE/ETX) and unescape what the UART prints themselves.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

import pytest

from tests.helpers.at_rig import NetworkPeer, Rig
from wipstack.tcp.socket import TcpServer, TcpSocket
from wipstack.tcp.state import TcpState

OK = b"\r\nOK\r\n"
ERROR = b"\r\nERROR\r\n"
CONNECT = b"\r\nCONNECT\r\n"
SHUTDOWN = b"\r\nSHUTDOWN\r\n"
NO_CARRIER = b"\r\nNO CARRIER\r\n"
DLE, ETX = 0x10, 0x03
PEER, MODULE = "192.0.2.1", "192.0.2.2"
ALL_BYTES = bytes(range(256))


def info(*lines: str) -> bytes:
    return b"".join(b"\r\n" + line.encode() + b"\r\n" for line in lines) + OK


def urc(*lines: str) -> bytes:
    return b"".join(b"\r\n" + line.encode() + b"\r\n" for line in lines)


def cme(code: int) -> bytes:
    return b"\r\n+CME ERROR: " + str(code).encode() + b"\r\n"


def dle_escape(data: bytes) -> bytes:
    """What the host types for ``data`` in continuous mode."""
    return bytes(out for byte in data for out in ((DLE, byte) if byte in (DLE, ETX) else (byte,)))


def dle_split(stream: bytes) -> list[bytes]:
    """Unescape what the UART printed; an unescaped ETX ends a piece (the last piece has none)."""
    pieces, current, i = [], bytearray(), 0
    while i < len(stream):
        if stream[i] == ETX:
            pieces.append(bytes(current))
            current = bytearray()
        else:
            i += stream[i] == DLE
            current.append(stream[i])
        i += 1
    return [*pieces, bytes(current)]


@dataclass
class Peer:
    """The network peer with a TCP server on 9191 and a UDP socket on 5000."""

    rig: Rig
    network: NetworkPeer
    accepted: list[TcpSocket] = field(default_factory=list)
    datagrams: list[tuple[bytes, tuple[bytes, int]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.server = TcpServer(self.network.stack.tcp, 9191)
        self.server.on_accept = self.accepted.append
        self.udp = self.network.stack.udp_socket()
        self.udp.bind(port=5000)
        self.udp.on_datagram = lambda data, source, now: self.datagrams.append((data, source))

    def sent(self) -> list[bytes]:
        return [data for data, _ in self.datagrams]

    def connect(self, port: int) -> TcpSocket:
        sock = TcpSocket.connect(self.network.stack.tcp, MODULE, port, self.rig.now)
        self.rig.advance(0.1)
        return sock


@pytest.fixture
def rig() -> Rig:
    rig = Rig()
    rig.start_network_bearer()
    return rig


@pytest.fixture
def peer(rig: Rig) -> Peer:
    assert rig.network is not None
    return Peer(rig, rig.network)


@pytest.fixture
def tcp(rig: Rig, peer: Peer) -> TcpSocket:
    """TCP client socket 2,1 connected to the peer; returns the peer's end."""
    assert rig.at(f'AT+WIPCREATE=2,1,"{PEER}",9191') == OK + urc("+WIPREADY: 2,1")
    return peer.accepted[0]


def escape_to_at(rig: Rig, uart: int = 1) -> bytes:
    """``+++`` framed by silence; what the UART printed."""
    rig.advance(1.5)
    rig.send(b"+++", uart)
    rig.advance(1.0)
    return rig.take(uart)


# ---------------------------------------------------------------------------- creation


def test_udp_create_ok_then_ready(rig: Rig) -> None:
    assert rig.at(f'AT+WIPCREATE=1,1,6000,"{PEER}",5000') == b"\r\nOK\r\n\r\n+WIPREADY: 1,1\r\n"
    assert rig.at("AT+WIPCREATE=1,2,6001") == b"\r\nOK\r\n\r\n+WIPREADY: 1,2\r\n"
    assert rig.at(f"AT+WIPCREATE=1,3,6002,{PEER},5000") == b"\r\nOK\r\n\r\n+WIPREADY: 1,3\r\n"  # unquoted


def test_udp_local_port_0_is_ephemeral(rig: Rig) -> None:
    assert rig.at(f'AT+WIPCREATE=1,1,0,"{PEER}",5000') == OK + urc("+WIPREADY: 1,1")
    answer = rig.at("AT+WIPOPT=1,1,1,0")
    port = int(answer.split(b",")[-1].split(b"\r")[0])
    assert port > 0 and answer == info(f"+WIPOPT: 1,0,{port}")


def test_tcp_client_ok_then_ready_as_the_reference_log(rig: Rig, peer: Peer) -> None:
    assert rig.at(f'AT+WIPCREATE=2,1,"{PEER}",9191') == b"\r\nOK\r\n\r\n+WIPREADY: 2,1\r\n"
    assert len(peer.accepted) == 1 and peer.accepted[0].state is TcpState.ESTABLISHED
    assert rig.at(f"AT+WIPCREATE=2,2,{PEER},9191") == b"\r\nOK\r\n\r\n+WIPREADY: 2,2\r\n"


def test_tcp_server_ok_then_accept_at_the_spawned_indexes(rig: Rig, peer: Peer) -> None:
    assert rig.at("AT+WIPCREATE=3,1,80,5,6") == OK
    first = peer.connect(80)
    # an accepted socket is announced by +WIPACCEPT alone (MT-C1), not +WIPREADY
    assert rig.take() == urc("+WIPACCEPT: 1,5")
    peer.connect(80)
    assert rig.take() == urc("+WIPACCEPT: 1,6")
    third = peer.connect(80)
    assert rig.take() == b""  # the range is full: refused
    assert third.state is TcpState.CLOSED
    assert first.state is TcpState.ESTABLISHED
    assert rig.at("AT+WIPCLOSE=2,5") == OK
    peer.connect(80)
    assert rig.take() == urc("+WIPACCEPT: 1,5")  # the freed index again


def test_accepted_socket_carries_data(rig: Rig, peer: Peer) -> None:
    assert rig.at("AT+WIPCREATE=3,2,8080,3,3") == OK
    client = peer.connect(8080)
    rig.take()
    client.send(b"GET /\r\n")
    rig.advance(0.5)
    assert rig.take() == urc("+WIPDATA: 2,3,7")
    assert rig.at("AT+WIPDATA=2,3,1") == CONNECT + b"GET /\r\n"


def test_closing_the_server_keeps_its_spawned_sockets(rig: Rig, peer: Peer) -> None:
    assert rig.at("AT+WIPCREATE=3,1,80,5,6") == OK
    client = peer.connect(80)
    rig.take()
    assert rig.at("AT+WIPCLOSE=3,1") == OK
    assert client.state is TcpState.ESTABLISHED
    assert rig.at(f'AT+WIPCREATE=2,6,"{PEER}",9191') == OK + urc("+WIPREADY: 2,6")  # range free again
    assert rig.at("AT+WIPCREATE=3,1,80,1,1") == OK  # and the port


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ("0,1,80", 837), ("8,1,80", 837), ("x,1,80", 837),
        ('4,2,"ftp.example",21,"u","p"', 830), ('5,1,"www.example",80', 834),
        ('6,1,"smtp.example",25,"",""', 834), ('7,1,"pop.example",110,"u","p"', 834),
        ("1,0,80", 830), ("1,9,80", 830), (f'2,9,"{PEER}",80', 830), ("3,5,80,1,1", 830),
        ("3,1,80,0,1", 830), ("3,1,80,1,9", 830), ("3,1,80,6,5", 830),
        (f'2,1,"{PEER}",0', 832), (f'2,1,"{PEER}",65536', 832), (f'2,1,"{PEER}",x', 832),
        ("1,1,65536", 832), (f'1,1,6000,"{PEER}",0', 832), ("3,1,0,1,1", 832),
        ('2,1,"",80', 801), ("1", 800), ("1,1", 800), (f'1,1,6000,"{PEER}"', 800),
        (f'2,1,"{PEER}"', 800), (f'2,1,"{PEER}",80,1', 800), ("3,1,80,1", 800),
    ],
)  # fmt: skip
def test_creation_errors(rig: Rig, args: str, code: int) -> None:
    assert rig.at(f"AT+WIPCREATE={args}") == cme(code)
    assert rig.at("AT+WIPCREATE?") == OK  # nothing was created


def test_port_in_use_is_833(rig: Rig) -> None:
    assert rig.at("AT+WIPCREATE=1,1,6000") == OK + urc("+WIPREADY: 1,1")
    assert rig.at("AT+WIPCREATE=1,2,6000") == cme(833)
    assert rig.at("AT+WIPCREATE=3,1,80,1,1") == OK
    assert rig.at("AT+WIPCREATE=3,2,80,2,2") == cme(833)


def test_index_already_active_is_840(rig: Rig, peer: Peer) -> None:
    assert rig.at("AT+WIPCREATE=1,1,6000") == OK + urc("+WIPREADY: 1,1")
    assert rig.at("AT+WIPCREATE=1,1,6001") == cme(840)
    assert rig.at(f'AT+WIPCREATE=2,1,"{PEER}",9191') == OK + urc("+WIPREADY: 2,1")  # another index space
    assert rig.at(f'AT+WIPCREATE=2,1,"{PEER}",9191') == cme(840)
    assert rig.at("AT+WIPCREATE=3,1,80,5,5") == OK
    assert rig.at("AT+WIPCREATE=3,1,81,6,6") == cme(840)


def test_index_reserved_by_a_server_is_845(rig: Rig) -> None:
    assert rig.at("AT+WIPCREATE=3,1,80,5,6") == OK
    assert rig.at(f'AT+WIPCREATE=2,5,"{PEER}",9191') == cme(845)
    assert rig.at(f'AT+WIPCREATE=2,6,"{PEER}",9191') == cme(845)
    assert rig.at("AT+WIPCREATE=3,2,81,6,7") == cme(845)  # overlapping ranges
    assert rig.at("AT+WIPCREATE=3,2,81,7,8") == OK


def test_every_index_of_every_protocol(rig: Rig) -> None:
    for idx in range(1, 9):
        assert rig.at(f"AT+WIPCREATE=1,{idx},{6000 + idx}") == OK + urc(f"+WIPREADY: 1,{idx}")
    for idx in range(1, 5):
        assert rig.at(f"AT+WIPCREATE=3,{idx},{80 + idx},{idx},{idx}") == OK
    assert rig.at("AT+WIPCREATE=1,9,7000") == cme(830)
    assert rig.at("AT+WIPCREATE=3,5,90,5,5") == cme(830)


def test_803_without_stack_or_bearer() -> None:
    rig = Rig()
    assert rig.at("AT+CMEE=1") == OK
    for line in ("AT+WIPCREATE=1,1,80", "AT+WIPCLOSE=1,1", "AT+WIPOPT=1,1,1,0", "AT+WIPDATA=1,1,1"):
        assert rig.at(line) == cme(803), line
    assert rig.at("AT+WIPCFG=1") == OK
    assert rig.at("AT+WIPCREATE=1,1,80") == cme(803)  # no bearer up
    assert rig.at(f'AT+WIPCREATE=2,1,"{PEER}",80') == cme(803)


def test_unresolvable_name_gives_842_after_ok(rig: Rig) -> None:
    assert rig.at('AT+WIPCREATE=2,1,"nosuch.example",80') == OK + urc("+CME ERROR: 842")
    assert rig.at('AT+WIPCREATE=1,1,6000,"nosuch.example",80') == OK + urc("+CME ERROR: 842")
    assert rig.at("AT+WIPCREATE?") == OK  # the indexes are free again


def test_refused_connection_gives_842(rig: Rig) -> None:
    assert rig.at(f'AT+WIPCREATE=2,1,"{PEER}",81') == OK + urc("+CME ERROR: 842")
    assert rig.at("AT+WIPCREATE?") == OK


def test_connect_timeout_gives_842(rig: Rig) -> None:
    assert rig.at("AT+WIPCFG=2,12,5") == OK
    assert rig.at('AT+WIPCREATE=2,1,"192.0.2.77",80') == OK  # nobody answers
    rig.advance(4)
    assert rig.take() == b""
    rig.advance(2)
    assert rig.take() == urc("+CME ERROR: 842")


# ---------------------------------------------------------------------------- DNS names


def dns_server(network: NetworkPeer, names: dict[str, str]) -> None:
    """A UDP server on the peer's port 53 answering A queries from ``names`` (else NXDOMAIN)."""
    sock = network.stack.udp_socket()
    sock.bind(port=53)

    def answer(query: bytes, source: tuple[bytes, int], now: float) -> None:
        labels, i = [], 12
        while query[i]:
            labels.append(query[i + 1 : i + 1 + query[i]].decode())
            i += 1 + query[i]
        question = query[12 : i + 5]
        ident = query[:2]
        address = names.get(".".join(labels).lower())
        if address is None:
            reply = ident + struct.pack("!HHHHH", 0x8183, 1, 0, 0, 0) + question
        else:
            record = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + bytes(map(int, address.split(".")))
            reply = ident + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0) + question + record
        sock.sendto(reply, source[0], source[1])

    sock.on_datagram = answer


@pytest.fixture
def named() -> tuple[Rig, Peer]:
    """Bearer 4 with the peer as DNS server (option 17) knowing peer.example."""
    rig = Rig()
    network = rig.network_peer(PEER)
    rig.start_stack()
    assert rig.at(f'AT+WIPBR=1,4;+WIPBR=2,4,17,"{PEER}";+WIPBR=4,4,0') == OK
    dns_server(network, {"peer.example": PEER})
    return rig, Peer(rig, network)


def test_tcp_client_to_a_host_name(named: tuple[Rig, Peer]) -> None:
    rig, peer = named
    assert rig.at('AT+WIPCREATE=2,1,"peer.example",9191') == OK + urc("+WIPREADY: 2,1")
    assert len(peer.accepted) == 1
    assert rig.at("AT+WIPOPT=2,1,1,2") == info(f'+WIPOPT: 2,2,"{PEER}"')


def test_udp_to_a_host_name(named: tuple[Rig, Peer]) -> None:
    rig, peer = named
    assert rig.at("AT+WIPCREATE=1,1,6000,peer.example,5000") == OK + urc("+WIPREADY: 1,1")
    assert rig.at("AT+WIPDATA=1,1,1") == CONNECT
    rig.send(b"hi\x03")
    rig.advance(0.1)
    assert peer.sent() == [b"hi"]


def test_nxdomain_gives_842(named: tuple[Rig, Peer]) -> None:
    rig, _ = named
    assert rig.at('AT+WIPCREATE=2,1,"nosuch.example",9191') == OK + urc("+CME ERROR: 842")


# ---------------------------------------------------------------------------- URCs in AT mode


def test_tcp_data_urc_counts_what_is_readable(rig: Rig, tcp: TcpSocket) -> None:
    tcp.send(b"12345")
    rig.advance(0.5)
    assert rig.take() == b"\r\n+WIPDATA: 2,1,5\r\n"
    tcp.send(b"678")
    rig.advance(0.5)
    assert rig.take() == urc("+WIPDATA: 2,1,8")
    assert rig.at("AT+WIPDATA?") == info("+WIPDATA: 2,1,8")


def test_udp_data_urc_names_the_sender(rig: Rig, peer: Peer) -> None:
    assert rig.at(f'AT+WIPCREATE=1,1,6000,"{PEER}",5000') == OK + urc("+WIPREADY: 1,1")
    peer.udp.sendto(b"ping", MODULE, 6000)
    rig.advance(0.1)
    assert rig.take() == b'\r\n+WIPDATA: 1,1,4,"192.0.2.1",5000\r\n'
    assert rig.at("AT+WIPDATA?") == info('+WIPDATA: 1,1,4,"192.0.2.1",5000')


def test_peer_close_urc_in_at_mode(rig: Rig, tcp: TcpSocket) -> None:
    tcp.close(rig.now)
    rig.advance(0.5)
    assert rig.take() == urc("+WIPPEERCLOSE: 2,1")
    assert rig.at(f'AT+WIPCREATE=2,1,"{PEER}",9191') == cme(840)  # still there until closed
    assert rig.at("AT+WIPCLOSE=2,1") == OK
    assert rig.at(f'AT+WIPCREATE=2,1,"{PEER}",9191') == OK + urc("+WIPREADY: 2,1")


def test_read_forms_list_the_sockets(rig: Rig, peer: Peer, tcp: TcpSocket) -> None:
    local = tcp.remote[1]
    assert rig.at(f'AT+WIPCREATE=1,2,6000,"{PEER}",5000;+WIPCREATE=3,1,80,5,5') == OK + urc("+WIPREADY: 1,2")
    assert rig.at("AT+WIPCREATE?") == info(
        '+WIPCREATE: 1,2,6000,"192.0.2.1",5000', f'+WIPCREATE: 2,1,{local},"192.0.2.1",9191', "+WIPCREATE: 3,1,80"
    )
    assert rig.at("AT+WIPDATA?") == OK  # nothing pending


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("AT+WIPCREATE=?", "+WIPCREATE: (1-4),(1-8),(0-65535),(0-65535)"),
        ("AT+WIPCLOSE=?", "+WIPCLOSE: (1-4),(1-8)"),
        ("AT+WIPOPT=?", "+WIPOPT: (1-3),(1-8),(1-2),(0-9)"),
        ("AT+WIPDATA=?", "+WIPDATA: (1-2),(1-8),(0-2)"),
    ],
)
def test_test_forms(rig: Rig, line: str, answer: str) -> None:
    assert rig.at(line) == info(answer)


def test_other_forms(rig: Rig) -> None:
    assert rig.at("AT+WIPCLOSE?") == OK
    assert rig.at("AT+WIPOPT?") == ERROR
    for line in ("AT+WIPCREATE", "AT+WIPCLOSE", "AT+WIPOPT", "AT+WIPDATA"):
        assert rig.at(line) == ERROR, line


# ---------------------------------------------------------------------------- continuous mode, TCP


def test_connect_then_pending_data(rig: Rig, tcp: TcpSocket) -> None:
    tcp.send(b"hello")
    rig.advance(0.5)
    rig.take()
    assert rig.at("AT+WIPDATA=2,1,1") == CONNECT + b"hello"


def test_every_byte_value_both_ways(rig: Rig, tcp: TcpSocket) -> None:
    assert rig.at("AT+WIPDATA=2,1,1") == CONNECT
    payload = ALL_BYTES * 4
    rig.send(dle_escape(payload))
    rig.advance(0.5)
    assert tcp.recv() == payload
    tcp.send(payload)
    rig.advance(0.5)
    printed = rig.take()
    assert printed == dle_escape(payload)  # exactly DLE before 0x03 and 0x10, nothing else
    assert dle_split(printed) == [payload]


def test_dle_before_any_byte_makes_it_data(rig: Rig, tcp: TcpSocket) -> None:
    assert rig.at("AT+WIPDATA=2,1,1") == CONNECT
    rig.send(b"\x10A\x10\x10")
    rig.send(b"\x10")  # a DLE at the end of a read waits for its byte
    rig.send(b"\x03B")
    rig.advance(0.5)
    assert tcp.recv() == b"A\x10\x03B"


def test_etx_shuts_down_the_socket_and_the_peer_sees_fin(rig: Rig, tcp: TcpSocket) -> None:
    assert rig.at("AT+WIPDATA=2,1,1") == CONNECT
    rig.send(b"last words\x03")
    rig.advance(0.5)
    assert rig.take() == SHUTDOWN
    assert tcp.recv() == b"last words"
    assert tcp.state is TcpState.CLOSE_WAIT  # the peer got our FIN
    tcp.send(b"reply")  # half-close: the other way still works
    rig.advance(0.5)
    assert rig.take() == b"reply"
    rig.send(b"ignored")
    rig.advance(0.5)
    assert tcp.recv() == b""
    assert escape_to_at(rig) == OK  # still in data mode until +++
    assert rig.at("AT+WIPCLOSE=2,1") == OK


def test_peer_fin_shows_shutdown_after_the_last_data(rig: Rig, tcp: TcpSocket) -> None:
    assert rig.at("AT+WIPDATA=2,1,1") == CONNECT
    tcp.send(b"bye\x03")
    tcp.close(rig.now)
    rig.advance(0.5)
    assert rig.take() == b"bye\x10\x03" + SHUTDOWN
    assert escape_to_at(rig) == OK + urc("+WIPPEERCLOSE: 2,1")
    assert rig.at("AT+WIPCLOSE=2,1") == OK


def test_escape_keeps_the_socket_open(rig: Rig, tcp: TcpSocket) -> None:
    assert rig.at("AT+WIPDATA=2,1,1") == CONNECT
    rig.send(b"abc")
    assert escape_to_at(rig) == OK
    assert tcp.recv() == b"abc"
    assert rig.at("AT") == OK
    tcp.send(b"later")
    rig.advance(0.5)
    assert rig.take() == urc("+WIPDATA: 2,1,5")
    assert rig.at("AT+WIPDATA=2,1,1") == CONNECT + b"later"


def test_plus_signs_without_guard_time_are_data(rig: Rig, tcp: TcpSocket) -> None:
    assert rig.at("AT+WIPDATA=2,1,1") == CONNECT
    rig.send(b"a+++")
    rig.advance(2)
    rig.send(b"b")
    rig.advance(0.5)
    assert rig.take() == b""
    assert tcp.recv() == b"a+++b"


def test_plus_signs_followed_by_data_are_data(rig: Rig, tcp: TcpSocket) -> None:
    assert rig.at("AT+WIPDATA=2,1,2") == CONNECT
    rig.advance(1.5)
    rig.send(b"+++x")
    rig.advance(1)
    rig.advance(1.5)
    rig.send(b"++")
    rig.advance(1.0)  # a gap of 1 s between '+' is too long
    rig.send(b"+")
    rig.advance(1)
    assert rig.take() == b""
    assert tcp.recv() == b"+++x+++"


def test_escape_then_at_without_a_pause(rig: Rig, tcp: TcpSocket) -> None:
    assert rig.at("AT+WIPDATA=2,1,1") == CONNECT
    rig.advance(1.5)
    rig.send(b"+++AT+WIPCLOSE=2,1\r")
    assert rig.take() == OK + OK
    assert rig.at("AT+WIPCREATE?") == OK


def test_escape_with_slow_plus_signs(rig: Rig, tcp: TcpSocket) -> None:
    assert rig.at("AT+WIPDATA=2,1,1") == CONNECT
    rig.advance(0.6)  # 0.5 s of silence is enough
    for _ in range(3):
        rig.send(b"+")
        rig.advance(0.5)
    assert rig.take() == OK
    assert tcp.recv() == b""


def test_ato_goes_back_to_the_socket(rig: Rig, tcp: TcpSocket) -> None:
    assert rig.at("AT+WIPDATA=2,1,1") == CONNECT
    assert escape_to_at(rig) == OK
    assert rig.at("ATO") == CONNECT
    rig.send(b"again")
    rig.advance(0.5)
    assert tcp.recv() == b"again"


def test_crlf_after_the_command_is_not_data(rig: Rig, tcp: TcpSocket) -> None:
    rig.send(b"AT+WIPDATA=2,1,1\r\ndata")
    rig.advance(0.5)
    assert rig.take() == CONNECT
    assert tcp.recv() == b"data"


def test_crlf_split_across_reads_is_not_data(rig: Rig, tcp: TcpSocket) -> None:
    rig.send(b"AT+WIPDATA=2,1,1\r")
    rig.send(b"\ndata")  # the LF of the CRLF arrives in the next read
    rig.advance(0.5)
    assert rig.take() == CONNECT
    assert tcp.recv() == b"data"


def test_rest_of_the_line_after_wipdata_is_ignored(rig: Rig, tcp: TcpSocket) -> None:
    assert rig.at("AT+WIPDATA=2,1,1;+CSQ") == CONNECT
    rig.advance(0.5)
    assert tcp.recv() == b""


def test_large_transfer_with_flow_control(rig: Rig, tcp: TcpSocket) -> None:
    assert rig.at("AT+WIPDATA=2,1,2") == CONNECT
    blob = os.urandom(150_000)
    printed, offset = bytearray(), 0
    for _ in range(400):
        offset += tcp.send(blob[offset:])
        rig.advance(0.05)
        printed += rig.take()
        if len(printed) == len(blob):
            break
    assert bytes(printed) == blob


# ---------------------------------------------------------------------------- transparent mode, TCP


def test_transparent_mode_every_byte_raw_and_no_carrier_on_peer_close(rig: Rig, tcp: TcpSocket) -> None:
    assert rig.at("AT+WIPDATA=2,1,2") == CONNECT
    rig.send(ALL_BYTES)
    rig.advance(0.5)
    assert tcp.recv() == ALL_BYTES
    tcp.send(ALL_BYTES)
    rig.advance(0.5)
    assert rig.take() == ALL_BYTES
    tcp.close(rig.now)
    rig.advance(0.5)
    assert rig.take() == NO_CARRIER + urc("+WIPPEERCLOSE: 2,1")
    assert rig.at("AT") == OK  # AT mode again
    assert rig.at("AT+WIPCLOSE=2,1") == OK


def test_transparent_mode_on_a_closed_socket_is_841(rig: Rig, tcp: TcpSocket) -> None:
    tcp.close(rig.now)
    rig.advance(0.5)
    assert rig.take() == urc("+WIPPEERCLOSE: 2,1")
    assert rig.at("AT+WIPDATA=2,1,2") == cme(841)


def test_escape_in_transparent_mode(rig: Rig, tcp: TcpSocket) -> None:
    assert rig.at("AT+WIPDATA=2,1,2") == CONNECT
    rig.send(b"\x03\x10")
    assert escape_to_at(rig) == OK
    assert tcp.recv() == b"\x03\x10"
    assert tcp.state is TcpState.ESTABLISHED


# ---------------------------------------------------------------------------- UDP data mode


@pytest.fixture
def udp(rig: Rig) -> None:
    assert rig.at(f'AT+WIPCREATE=1,1,6000,"{PEER}",5000') == OK + urc("+WIPREADY: 1,1")


def test_udp_datagrams_end_with_etx(rig: Rig, peer: Peer, udp: None) -> None:
    peer.udp.sendto(b"first", MODULE, 6000)
    rig.advance(0.1)
    rig.take()
    assert rig.at("AT+WIPDATA=1,1,1") == CONNECT + b"first\x03"
    peer.udp.sendto(b"a\x03b\x10", MODULE, 6000)
    peer.udp.sendto(ALL_BYTES, MODULE, 6000)
    rig.advance(0.1)
    assert dle_split(rig.take()) == [b"a\x03b\x10", ALL_BYTES, b""]


def test_host_datagrams_are_cut_by_etx(rig: Rig, peer: Peer, udp: None) -> None:
    assert rig.at("AT+WIPDATA=1,1,1") == CONNECT
    rig.send(b"one\x03" + dle_escape(ALL_BYTES) + b"\x03")
    rig.send(b"\x03")  # nothing collected: no empty datagram (a documented choice)
    rig.advance(0.1)
    assert peer.sent() == [b"one", ALL_BYTES]
    assert {source for _, source in peer.datagrams} == {(bytes([192, 0, 2, 2]), 6000)}


def test_udp_datagram_limit_is_5840(rig: Rig, peer: Peer, udp: None) -> None:
    assert rig.at("AT+WIPDATA=1,1,1") == CONNECT
    rig.send(b"A" * 5841)
    rig.advance(0.1)
    assert [len(d) for d in peer.sent()] == [5840]  # sent when full
    rig.send(b"\x03")
    rig.advance(0.1)
    assert [len(d) for d in peer.sent()] == [5840, 1]
    peer.datagrams.clear()
    rig.send(b"B" * 5840 + b"\x03")  # full, then ETX: no extra empty datagram
    rig.advance(0.1)
    assert [len(d) for d in peer.sent()] == [5840]


def test_escape_sends_the_partial_datagram(rig: Rig, peer: Peer, udp: None) -> None:
    assert rig.at("AT+WIPDATA=1,1,1") == CONNECT
    rig.send(b"part")
    assert escape_to_at(rig) == OK
    assert peer.sent() == [b"part"]


def test_listening_udp_socket_answers_the_last_sender(rig: Rig, peer: Peer) -> None:
    assert rig.at("AT+WIPCREATE=1,2,6001") == OK + urc("+WIPREADY: 1,2")
    peer.udp.sendto(b"hey", MODULE, 6001)
    rig.advance(0.1)
    assert rig.take() == urc('+WIPDATA: 1,2,3,"192.0.2.1",5000')
    assert rig.at("AT+WIPDATA=1,2,1") == CONNECT + b"hey\x03"
    rig.send(b"reply\x03")
    rig.advance(0.1)
    assert peer.sent() == [b"reply"]


def test_udp_transparent_mode(rig: Rig, peer: Peer, udp: None) -> None:
    assert rig.at("AT+WIPDATA=1,1,2") == CONNECT
    peer.udp.sendto(b"\x03raw\x10", MODULE, 6000)
    rig.advance(0.1)
    assert rig.take() == b"\x03raw\x10"
    rig.send(b"\x03back\x10")
    rig.advance(0.1)
    assert peer.sent() == [b"\x03back\x10"]


# ---------------------------------------------------------------------------- +WIPCLOSE


def test_close_sends_fin(rig: Rig, tcp: TcpSocket) -> None:
    assert rig.at("AT+WIPCLOSE=2,1") == OK
    rig.advance(0.5)
    assert tcp.state is TcpState.CLOSE_WAIT  # the peer got our FIN
    assert rig.take() == b""


def test_close_with_unread_data_resets(rig: Rig, tcp: TcpSocket) -> None:
    tcp.send(b"unread")
    rig.advance(0.5)
    rig.take()
    assert rig.at("AT+WIPCLOSE=2,1") == OK
    assert tcp.state is TcpState.CLOSED


def test_close_frees_index_and_port(rig: Rig) -> None:
    assert rig.at("AT+WIPCREATE=1,1,6000") == OK + urc("+WIPREADY: 1,1")
    assert rig.at("AT+WIPCLOSE=1,1") == OK
    assert rig.at("AT+WIPCREATE=1,2,6000") == OK + urc("+WIPREADY: 1,2")
    assert rig.at("AT+WIPCREATE=1,1,6001") == OK + urc("+WIPREADY: 1,1")


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("AT+WIPCLOSE=1,1", 831), ("AT+WIPCLOSE=2,8", 831), ("AT+WIPCLOSE=3,4", 831), ("AT+WIPCLOSE=2,9", 830),
        ("AT+WIPCLOSE=3,5", 830), ("AT+WIPCLOSE=1,0", 830), ("AT+WIPCLOSE=5,1", 837), ("AT+WIPCLOSE=0,1", 837),
        ("AT+WIPCLOSE=2", 800), ("AT+WIPCLOSE=2,1,1", 800),
    ],
)  # fmt: skip
def test_close_errors(rig: Rig, line: str, code: int) -> None:
    assert rig.at(line) == cme(code)


def test_close_of_a_socket_mapped_on_another_uart(rig: Rig, tcp: TcpSocket) -> None:
    assert rig.at("AT+WIPDATA=2,1,1") == CONNECT
    assert rig.at("AT+WIPCLOSE=2,1", uart=2) == OK
    assert rig.at("AT", uart=1) == OK  # UART1 is back in AT mode


# ---------------------------------------------------------------------------- +WIPOPT


def test_tcp_client_options_read(rig: Rig, tcp: TcpSocket) -> None:
    local = tcp.remote[1]
    tcp.send(b"seven!!")
    rig.advance(0.5)
    rig.take()
    expected = [str(local), "9191", '"192.0.2.1"', "1", "10240", "16384", "7", "0", "64", "0"]
    for opt, value in enumerate(expected):
        assert rig.at(f"AT+WIPOPT=2,1,1,{opt}") == info(f"+WIPOPT: 2,{opt},{value}"), opt


@pytest.mark.parametrize(("opt", "value", "too_low", "too_high"),
                         [(4, 4096, 535, 36865), (5, 8192, 535, 65536), (7, 1, None, 2), (8, 100, 0, 256),
                          (9, 184, None, 256)])  # fmt: skip
def test_tcp_client_options_write(rig: Rig, tcp: TcpSocket, opt: int, value: int,
                                  too_low: int | None, too_high: int) -> None:  # fmt: skip
    assert rig.at(f"AT+WIPOPT=2,1,2,{opt},{value}") == OK
    assert rig.at(f"AT+WIPOPT=2,1,1,{opt}") == info(f"+WIPOPT: 2,{opt},{value}")
    for bad in (too_low, too_high, "x"):
        if bad is not None:
            assert rig.at(f"AT+WIPOPT=2,1,2,{opt},{bad}") == cme(801)
    assert rig.at(f"AT+WIPOPT=2,1,1,{opt}") == info(f"+WIPOPT: 2,{opt},{value}")


@pytest.mark.parametrize("opt", [0, 1, 2, 3, 6])
def test_read_only_options_are_835_on_write(rig: Rig, tcp: TcpSocket, opt: int) -> None:
    assert rig.at(f"AT+WIPOPT=2,1,2,{opt},1") == cme(835)


def test_udp_options(rig: Rig, peer: Peer) -> None:
    assert rig.at(f'AT+WIPCREATE=1,1,6000,"{PEER}",5000;+WIPCREATE=1,2,6001') == OK + urc(
        "+WIPREADY: 1,1", "+WIPREADY: 1,2"
    )
    peer.udp.sendto(b"abc", MODULE, 6000)
    rig.advance(0.1)
    rig.take()
    for opt, value in [(0, "6000"), (1, "5000"), (2, '"192.0.2.1"'), (3, "1"), (6, "3"), (8, "64"), (9, "0")]:
        assert rig.at(f"AT+WIPOPT=1,1,1,{opt}") == info(f"+WIPOPT: 1,{opt},{value}"), opt
    for opt, value in [(0, "6001"), (1, "0"), (2, '"0.0.0.0"'), (3, "0"), (6, "0")]:  # a listening socket
        assert rig.at(f"AT+WIPOPT=1,2,1,{opt}") == info(f"+WIPOPT: 1,{opt},{value}"), opt
    for opt in (4, 5, 7):
        assert rig.at(f"AT+WIPOPT=1,1,1,{opt}") == cme(835)
        assert rig.at(f"AT+WIPOPT=1,1,2,{opt},1000") == cme(835)
    assert rig.at("AT+WIPOPT=1,1,2,8,10;+WIPOPT=1,1,2,9,4") == OK
    assert rig.at("AT+WIPOPT=1,1,1,8;+WIPOPT=1,1,1,9") == info("+WIPOPT: 1,8,10", "+WIPOPT: 1,9,4")


def test_server_options_are_inherited_by_accepted_sockets(rig: Rig, peer: Peer) -> None:
    assert rig.at("AT+WIPCREATE=3,1,80,5,5") == OK
    for opt in (1, 2, 3, 6):
        assert rig.at(f"AT+WIPOPT=3,1,1,{opt}") == cme(835)
    assert rig.at("AT+WIPOPT=3,1,1,0") == info("+WIPOPT: 3,0,80")
    settings = {4: 4096, 5: 8192, 7: 1, 8: 100, 9: 16}
    for opt, value in settings.items():
        assert rig.at(f"AT+WIPOPT=3,1,2,{opt},{value}") == OK
        assert rig.at(f"AT+WIPOPT=3,1,1,{opt}") == info(f"+WIPOPT: 3,{opt},{value}")
    peer.connect(80)
    rig.take()
    for opt, value in settings.items():
        assert rig.at(f"AT+WIPOPT=2,5,1,{opt}") == info(f"+WIPOPT: 2,{opt},{value}")


def test_socket_ttl_follows_wipcfg_until_set(rig: Rig, tcp: TcpSocket) -> None:
    assert rig.at("AT+WIPCFG=2,0,20") == OK
    assert rig.at("AT+WIPOPT=2,1,1,8") == info("+WIPOPT: 2,8,20")


def test_socket_ttl_on_the_wire(rig: Rig, tcp: TcpSocket) -> None:
    network = rig.network
    assert network is not None
    ttls: list[int] = []
    receive = network.stack.receive

    def spy(interface, packet, now):  # type: ignore[no-untyped-def]
        ttls.append(bytes(packet)[8])
        return receive(interface, packet, now)

    network.stack.receive = spy  # type: ignore[method-assign]
    assert rig.at("AT+WIPOPT=2,1,2,8,77;+WIPDATA=2,1,2") == CONNECT
    rig.send(b"x")
    rig.advance(0.5)
    assert ttls and set(ttls) == {77}


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("AT+WIPOPT=2,1,1,10", 800), ("AT+WIPOPT=2,1,1,x", 800), ("AT+WIPOPT=2,1,3,0", 801),
        ("AT+WIPOPT=2,1,0,0", 801), ("AT+WIPOPT=2,1,1", 800), ("AT+WIPOPT=2,1,1,0,5", 800),
        ("AT+WIPOPT=2,1,2,8", 800), ("AT+WIPOPT=2,2,1,0", 831), ("AT+WIPOPT=2,9,1,0", 830),
        ("AT+WIPOPT=4,1,1,40", 831), ("AT+WIPOPT=0,1,1,0", 837),
    ],
)  # fmt: skip
def test_option_errors(rig: Rig, tcp: TcpSocket, line: str, code: int) -> None:
    assert rig.at(line) == cme(code)


# ---------------------------------------------------------------------------- +WIPDATA errors, two UARTs


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("AT+WIPDATA=3,1,1", 837), ("AT+WIPDATA=4,1,1", 837), ("AT+WIPDATA=2,9,1", 830), ("AT+WIPDATA=2,2,1", 831),
        ("AT+WIPDATA=2,1,3", 801), ("AT+WIPDATA=2,1", 800), ("AT+WIPDATA=2,2,0", 831),
    ],
)  # fmt: skip
def test_data_errors(rig: Rig, tcp: TcpSocket, line: str, code: int) -> None:
    assert rig.at(line) == cme(code)


def test_mapping_a_socket_that_is_still_connecting_is_831(rig: Rig) -> None:
    assert rig.at('AT+WIPCREATE=2,1,"192.0.2.77",80') == OK  # nobody answers
    assert rig.at("AT+WIPDATA=2,1,1") == cme(831)


def test_socket_created_on_uart1_mapped_on_uart2(rig: Rig, tcp: TcpSocket) -> None:
    assert rig.at("AT+CMEE=1", uart=2) == OK
    assert rig.at("AT+WIPDATA=2,1,1", uart=2) == CONNECT
    assert rig.at("AT+WIPDATA=2,1,1", uart=1) == cme(831)  # mapped elsewhere
    tcp.send(b"to uart2")
    rig.advance(0.5)
    assert rig.take(2) == b"to uart2"
    assert rig.take(1) == b""
    rig.send(b"from uart2", uart=2)
    rig.advance(0.5)
    assert tcp.recv() == b"from uart2"
    tcp.close(rig.now)
    rig.advance(0.5)
    assert rig.take(2) == SHUTDOWN
    assert rig.take(1) == urc("+WIPPEERCLOSE: 2,1")  # the owner hears it


def test_unmap_from_the_other_uart(rig: Rig, tcp: TcpSocket) -> None:
    assert rig.at("AT+WIPDATA=2,1,1", uart=2) == CONNECT
    assert rig.at("AT+WIPDATA=2,1,0", uart=1) == OK
    assert rig.take(2) == OK  # UART2 back in AT mode
    tcp.send(b"more")
    rig.advance(0.5)
    assert rig.take(1) == urc("+WIPDATA: 2,1,4")
    assert rig.take(2) == b""
    assert rig.at("AT", uart=2) == OK


def test_unmapping_an_unmapped_socket_is_ok(rig: Rig, tcp: TcpSocket) -> None:
    assert rig.at("AT+WIPDATA=2,1,0") == OK
