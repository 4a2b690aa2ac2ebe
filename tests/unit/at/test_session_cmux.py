"""``AT+CMUX``: the module as a 27.010 responder whose DLCIs are virtual UARTs (bearers 11-14, 21-24)."""

from __future__ import annotations

import random

import pytest

from at_frontend.channel import Mode
from tests.helpers.at_rig import MuxHost, Rig
from wipstack.cellular.cmux import ChannelClosed, ChannelOpened, MuxClosed, MuxParameters
from wipstack.tcp.socket import TcpServer, TcpSocket
from wipstack.wire.cmux import FLAG

OK = b"\r\nOK\r\n"


def cme(code: int) -> bytes:
    return f"\r\n+CME ERROR: {code}\r\n".encode()


@pytest.fixture
def rig() -> Rig:
    rig = Rig()
    assert rig.at("AT+CMEE=1") == OK
    assert rig.at("AT+CMEE=1", 2) == OK
    return rig


def test_test_and_read_forms(rig: Rig) -> None:
    assert rig.at("AT+CMUX=?") == b"\r\n+CMUX: (0),(0),(1-6),(1-32768),(1-255),(0-100),(2-255),(1-255),(1-7)\r\n" + OK
    assert rig.at("AT+CMUX?") == b"\r\n+CMUX: \r\n" + OK


@pytest.mark.parametrize(
    "line",
    ["AT+CMUX=1", "AT+CMUX=0,1", "AT+CMUX=0,0,7", "AT+CMUX=0,0,5,0", "AT+CMUX=0,0,5,31,10,3,10", "AT+CMUX=0,0,5,31,0",
     "AT+CMUX=0,0,5,31,10,101", "AT+CMUX=x", "AT+CMUX=0,0,5,31,10,3,30,10,2,9"],
)  # fmt: skip
def test_refused_parameters_leave_the_uart_in_at_mode(rig: Rig, line: str) -> None:
    assert rig.at(line) == cme(4)
    assert rig.module.channels[1].mode is Mode.COMMAND
    assert rig.at("AT") == OK


def test_virtual_uarts_are_independent_at_channels(rig: Rig) -> None:
    host = rig.mux_host(1)
    assert sorted(c for c in rig.module.channels if c > 10) == [11, 12, 13, 14]
    assert [type(e) for e in host.events].count(ChannelOpened) == 4
    assert rig.at("AT+CMUX?") == b""  # UART1 itself now carries frames, not AT commands
    # each virtual UART has its own V.25ter settings: echo is on until ATE0 there
    assert rig.at("AT", 11) == b"AT\r" + OK
    assert rig.at("ATE0", 12) == b"ATE0\r" + OK
    assert rig.at("AT", 12) == OK
    assert rig.at("AT", 11) == b"AT\r" + OK
    assert rig.at("AT+CGMI", 13).endswith(OK)
    # UART2 is untouched
    assert rig.at("AT", 2) == OK
    assert rig.at("AT+CMUX?", 11) == b"AT+CMUX?\r\r\n+CMUX: 0,0,5,31,10,3,30,10,2\r\n" + OK


def test_cmux_on_a_virtual_uart_is_refused(rig: Rig) -> None:
    rig.mux_host(1, (1,))
    assert rig.at("ATE0;+CMEE=1", 11) == b"ATE0;+CMEE=1\r" + OK
    assert rig.at("AT+CMUX=0", 11) == cme(3)


def test_dlci_outside_the_four_ports_is_refused(rig: Rig) -> None:
    host = rig.mux_host(1, (1,))
    host.mux.open_channel(5, rig.now)
    rig.advance(0.5)
    assert any(isinstance(e, ChannelClosed) and e.dlci == 5 and e.reason == "refused" for e in host.events)
    assert 15 not in rig.module.channels
    assert sorted(c for c in rig.module.channels if c > 10) == [11, 12, 13, 14]


def test_long_responses_are_cut_into_n1_frames_and_reassemble(rig: Rig) -> None:
    host = rig.mux_host(1, (1,))
    rig.at("ATE0", 11)
    out = rig.at("AT+WIPCFG=?;+CGMI;+CGMM;+CGMR;+CGSN;+CSQ;+CREG?;+CGREG?", 11)
    assert out.endswith(OK) and len(out) > 31
    del host


def test_close_down_returns_the_uart_to_at_commands(rig: Rig) -> None:
    host = rig.mux_host(1)
    host.mux.close_down(rig.now)
    rig.advance(0.5)
    assert any(isinstance(e, MuxClosed) for e in host.events)
    assert [c for c in rig.module.channels if c > 10] == []
    assert rig.module.channels[1].mode is Mode.COMMAND
    assert rig.at("AT") == OK
    # and it can be multiplexed again
    rig.mux_host(1, (1,))
    assert 11 in rig.module.channels


def test_closing_one_dlci_leaves_the_others_and_it_can_reopen(rig: Rig) -> None:
    host = rig.mux_host(1)
    assert rig.at("ATE0", 13) == b"ATE0\r" + OK
    host.mux.close_channel(3, rig.now)
    rig.advance(0.5)
    assert any(isinstance(e, ChannelClosed) and e.dlci == 3 for e in host.events)
    assert rig.at("AT", 14) == b"AT\r" + OK
    host.mux.open_channel(3, rig.now)
    rig.advance(0.5)
    assert rig.at("AT", 13) == OK  # the virtual UART kept its settings (ATE0)


def test_garbage_on_the_multiplexed_line_does_not_wedge_it(rig: Rig) -> None:
    rig.mux_host(1, (1,))
    noise = random.Random(5).randbytes(4000).replace(bytes([FLAG]), b"")
    rig.module.receive(1, noise + bytes([FLAG, FLAG]) + noise[:100], rig.now)
    rig.advance(0.2)
    assert rig.at("AT", 11) == b"AT\r" + OK


def test_cmux_bearers_exist_while_their_uart_is_multiplexed(rig: Rig) -> None:
    rig.mux_host(1, (1,))
    rig.at("ATE0;+CMEE=1", 11)
    assert rig.at("AT+WIPCFG=1", 11) == OK
    assert rig.at("AT+WIPBR=1,12", 11) == OK  # DLCI 2 is not open yet: the bearer waits for it
    assert rig.at("AT+WIPBR=1,21", 11) == cme(805)  # UART2 is not multiplexed
    assert rig.at("AT+WIPBR=1,11", 11) == OK


def test_ppp_server_started_before_the_host_opens_its_dlci(rig: Rig) -> None:
    host = rig.mux_host(1, (1,))
    assert rig.at("ATE0;+CMEE=1", 11) == b"ATE0;+CMEE=1\r" + OK
    for line in ("AT+WIPCFG=1", "AT+WIPBR=1,12", "AT+WIPBR=4,12,1"):
        assert rig.at(line, 11) == OK, line
    host.mux.open_channel(2, rig.now)  # as pppd opening /dev/gsmtty2 does
    rig.advance(0.2)
    peer = rig.ppp_peer(12)
    rig.advance(5)
    assert peer.binding.interface is not None
    assert rig.take(11) == b"\r\n+WIPBR: 12,1,192.168.1.1,192.168.1.2,0.0.0.0,0.0.0.0\r\n"


def _ppp_server_on_dlci2(rig: Rig) -> None:
    rig.mux_host(1)
    assert rig.at("ATE0;+CMEE=1", 11) == b"ATE0;+CMEE=1\r" + OK
    for line in ("AT+WIPCFG=1", "AT+WIPBR=1,12", 'AT+WIPBR=2,12,15,"192.0.2.10"',
                 'AT+WIPBR=2,12,16,"192.0.2.11"', "AT+WIPBR=4,12,1"):  # fmt: skip
        assert rig.at(line, 11) == OK, line
    peer = rig.ppp_peer(12)
    rig.advance(5)
    assert peer.binding.interface is not None
    assert rig.take(11) == b"\r\n+WIPBR: 12,1,192.0.2.10,192.0.2.11,0.0.0.0,0.0.0.0\r\n"


def test_ppp_on_one_dlci_while_at_and_data_run_on_others(rig: Rig) -> None:
    _ppp_server_on_dlci2(rig)
    peer = rig.ppp_peers[12]
    server = TcpServer(peer.stack.tcp, 7000)
    received = bytearray()
    accepted: list[TcpSocket] = []
    server.on_accept = accepted.append
    assert rig.at('AT+WIPCREATE=2,1,"192.0.2.11",7000', 11) == OK + b"\r\n+WIPREADY: 2,1\r\n"
    rig.at("ATE0", 13)
    assert rig.at("AT+WIPDATA=2,1,2", 13) == b"\r\nCONNECT\r\n"
    payload = bytes(range(256)) * 40 + bytes([FLAG]) * 500  # 0xF9 is no problem for the basic option
    sock = accepted[0]
    for start in range(0, len(payload), 4096):
        rig.send(payload[start : start + 4096], 13)
        rig.advance(0.2)
        received += sock.recv()
    rig.advance(2)
    received += sock.recv()
    assert bytes(received) == payload
    sock.send(b"reply " * 1000)
    rig.advance(3)
    assert rig.take(13) == b"reply " * 1000
    assert rig.at("AT", 14) == b"AT\r" + OK  # meanwhile another virtual UART answers


def test_closing_the_ppp_dlci_takes_the_bearer_down(rig: Rig) -> None:
    _ppp_server_on_dlci2(rig)
    host = rig.mux_hosts[1]
    host.mux.close_channel(2, rig.now)
    rig.advance(0.5)
    assert rig.take(11) == b"\r\n+CME ERROR: 816\r\n\r\n+WIPBR: 12,0\r\n"
    assert rig.at("AT+WIPBR?", 11) == b"\r\n+WIPBR: 12,0\r\n" + OK  # still open, no longer started
    host.mux.close_down(rig.now)
    rig.advance(0.5)
    assert rig.at("AT+WIPBR?") == OK  # the multiplexer ended: bearer 12 is gone with its virtual UART


def test_host_side_n1_is_respected(rig: Rig) -> None:
    assert rig.at("AT+CMUX=0,0,5,64") == OK
    host = rig.mux_hosts[1] = MuxHost(1, MuxParameters(n1=64))
    host.mux.start(rig.now)
    rig.advance(0.05)
    host.mux.open_channel(1, rig.now)
    rig.advance(0.05)
    out = rig.at("AT+CGMI;+CGMM;+CGMR;+CGSN;+CSQ", 11)
    assert out.endswith(OK)


def test_a_stalled_socket_pauses_only_its_dlci_and_nothing_is_lost(rig: Rig) -> None:
    """The peer stops reading: DLCI 3's virtual UART asks the host to stop (MSC FC); AT goes on."""
    _ppp_server_on_dlci2(rig)
    peer = rig.ppp_peers[12]
    server = TcpServer(peer.stack.tcp, 7002)
    accepted: list[TcpSocket] = []
    server.on_accept = accepted.append
    assert rig.at('AT+WIPCREATE=2,1,"192.0.2.11",7002', 11) == OK + b"\r\n+WIPREADY: 2,1\r\n"
    rig.at("ATE0", 13)
    assert rig.at("AT+WIPDATA=2,1,2", 13) == b"\r\nCONNECT\r\n"
    host = rig.mux_hosts[1]
    payload = random.Random(3).randbytes(600_000)  # far more than TCP's window and the UART's buffers
    rig.send(payload, 13)
    rig.advance(3)
    muxed = rig.module.muxes[1]
    assert 3 in muxed.paused and not host.mux.can_send(3)  # the module stopped the host on DLCI 3 only
    assert host.mux.queued(3) > 0  # the rest waits on the host's side
    assert rig.at("AT", 14) == b"AT\r" + OK  # the other virtual UARTs are not held up
    received = bytearray()
    for _ in range(400):
        received += accepted[0].recv()
        rig.advance(0.05)
        if len(received) == len(payload):
            break
    assert bytes(received) == payload
    assert muxed.dropped == 0
    assert 3 not in muxed.paused
