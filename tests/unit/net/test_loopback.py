"""Datagrams to our own addresses: delivered locally at the next timer run (next_deadline() == 0.0)."""

from __future__ import annotations

import pytest

from tests.unit.net.helpers import host, ip, udp
from wipstack.errors import DropReason
from wipstack.net import Interface
from wipstack.net.icmp import PingConfig, PingReply
from wipstack.wire.icmp import IcmpType, UnreachableCode

US, PEER = "10.0.0.1", "10.0.0.2"


@pytest.mark.parametrize("size", [0, 100, 5000, 65507])
def test_udp_to_our_own_address(size: int) -> None:
    stack, iface = host(US)
    assert stack.next_deadline() is None
    server = stack.udp_socket()
    server.bind(US, 9)
    client = stack.udp_socket()
    client.bind(US, 4000)
    client.sendto(bytes(size), US, 9)
    assert iface.take_output() == [] and iface.counters.packets_out == 0  # never on the link
    assert server.recvfrom() is None  # not synchronously: no re-entrancy into the caller
    assert stack.next_deadline() == 0.0
    stack.on_timer(3.0)
    assert server.recvfrom() == (bytes(size), (ip(US), 4000))
    assert stack.next_deadline() is None
    assert stack.counters()["fragments_out"] == 0 and stack.counters()["delivered"] == 1


def test_unbound_client_to_our_own_address_uses_it_as_source() -> None:
    stack, _ = host(US)
    server = stack.udp_socket()
    server.bind("0.0.0.0", 9)
    client = stack.udp_socket()
    client.sendto(b"self", US, 9)
    stack.on_timer(0.0)
    got = server.recvfrom()
    assert got is not None and got[1][0] == ip(US)


def test_to_our_other_interface_address() -> None:
    stack, iface = host(US)
    other = stack.add_interface(Interface("eth1", ip("192.168.9.1"), prefix_len=24))
    server = stack.udp_socket()
    server.bind("192.168.9.1", 9)
    stack.udp_socket().sendto(b"across", "192.168.9.1", 9)
    assert iface.take_output() == [] and other.take_output() == []
    stack.on_timer(0.0)
    got = server.recvfrom()
    assert got is not None and got[0] == b"across"


def test_loopback_is_also_drained_by_the_next_receive() -> None:
    stack, iface = host(US)
    server = stack.udp_socket()
    server.bind(US, 9)
    stack.udp_socket().sendto(b"looped", US, 9)
    stack.receive(iface, udp(PEER, US, 1, 9, b"from outside"), 1.0)
    got = {server.recvfrom()[0], server.recvfrom()[0]}  # type: ignore[index]
    assert got == {b"looped", b"from outside"}
    assert stack.next_deadline() is None


def test_loopback_to_a_closed_port_reports_the_error_to_the_sender() -> None:
    stack, iface = host(US)
    client = stack.udp_socket()
    client.bind(US, 4000)
    client.sendto(b"nobody", US, 9)
    stack.on_timer(0.0)
    [error] = client.errors
    assert (error.type, error.code) == (IcmpType.DEST_UNREACHABLE, UnreachableCode.PORT)
    assert error.reporter == ip(US)
    assert stack.drops[DropReason.PORT_UNREACHABLE] == 1
    assert iface.take_output() == []
    assert stack.next_deadline() is None


def test_ping_ourselves() -> None:
    stack, iface = host(US)
    session = stack.ping(US, PingConfig(count=2, interval=1.0, size=1000), 5.0)
    assert stack.next_deadline() == 0.0
    stack.on_timer(5.0)
    assert session.results[0] == PingReply(0, 5.0, 0.0, 64, 1000)
    assert stack.next_deadline() == 6.0
    stack.on_timer(6.25)  # a late timer: the request leaves at 6.25 and loops back in the same run
    assert session.results[1] == PingReply(1, 6.25, 0.0, 64, 1000)
    assert session.done
    assert iface.take_output() == []
    assert stack.counters()["echo_replies_out"] == 2
