"""The routing table (RFC 1812 §5.2.4.3 longest match) and how the stack uses it."""

from __future__ import annotations

import random

import pytest

from tests.unit.net.helpers import echo, host, ip, parse, udp
from wipstack.errors import DropReason
from wipstack.net import Interface, Stack
from wipstack.net.routing import Route, RoutingTable


def table() -> RoutingTable:
    routes = RoutingTable()
    routes.add_default("wan", gateway=ip("192.0.2.1"))
    routes.add("10.0.0.0", 8, "big")
    routes.add(ip("10.1.0.0"), 16, "mid")
    routes.add("10.1.2.0", 24, "small")
    routes.add("10.1.2.3", 32, "host")
    return routes


@pytest.mark.parametrize(
    ("destination", "interface"),
    [
        ("10.1.2.3", "host"),
        ("10.1.2.4", "small"),
        ("10.1.2.255", "small"),
        ("10.1.3.1", "mid"),
        ("10.1.255.255", "mid"),
        ("10.2.0.0", "big"),
        ("10.255.255.255", "big"),
        ("11.0.0.0", "wan"),
        ("9.255.255.255", "wan"),
        ("255.255.255.255", "wan"),
    ],
)
def test_longest_prefix_match(destination: str, interface: str) -> None:
    route = table().lookup(ip(destination))
    assert route is not None and route.interface == interface


def test_insertion_order_does_not_matter() -> None:
    forward = table()
    backward = RoutingTable()
    for route in reversed(list(forward)):
        backward.add(route.network.to_bytes(4, "big"), route.prefix_len, route.interface, gateway=route.gateway)
    for dst in ("10.1.2.3", "10.1.2.9", "10.1.9.9", "10.9.9.9", "99.9.9.9"):
        assert forward.lookup(ip(dst)) == backward.lookup(ip(dst))


def test_no_default_route_means_no_match() -> None:
    routes = RoutingTable()
    routes.add("10.0.0.0", 8, "eth0")
    assert routes.lookup(ip("11.0.0.1")) is None
    assert RoutingTable().lookup(ip("10.0.0.1")) is None


def test_default_route_and_gateway() -> None:
    routes = RoutingTable()
    default = routes.add_default("wan", gateway=ip("192.0.2.1"), metric=5)
    assert default == Route(0, 0, "wan", ip("192.0.2.1"), 5)
    assert routes.lookup(ip("203.0.113.9")) is default
    assert default.gateway == ip("192.0.2.1")
    assert str(default) == "default via 192.0.2.1 dev wan metric 5"
    assert str(routes.add("10.0.0.0", 8, "lan")) == "10.0.0.0/8 dev lan"


def test_equal_prefixes_prefer_the_lower_metric() -> None:
    routes = RoutingTable()
    routes.add("10.0.0.0", 8, "slow", metric=10)
    routes.add("10.0.0.0", 8, "fast", metric=1)
    route = routes.lookup(ip("10.1.1.1"))
    assert route is not None and route.interface == "fast"


@pytest.mark.parametrize(
    ("network", "prefix_len"),
    [("10.0.0.1", 8), ("10.1.2.3", 24), ("0.0.0.1", 0), ("192.168.1.128", 24), ("10.0.0.1", 31)],
)
def test_host_bits_are_rejected(network: str, prefix_len: int) -> None:
    routes = RoutingTable()
    with pytest.raises(ValueError, match="host bits"):
        routes.add(network, prefix_len, "eth0")
    assert len(routes) == 0


@pytest.mark.parametrize(("network", "prefix_len"), [(b"\0\0\0", 0), ("10.0.0.0", 33), ("10.0.0.0", -1)])
def test_invalid_routes_are_rejected(network: bytes | str, prefix_len: int) -> None:
    with pytest.raises(ValueError):
        RoutingTable().add(network, prefix_len, "eth0")


def test_remove_interface_drops_only_its_routes() -> None:
    routes = table()
    routes.add("172.16.0.0", 12, "small")
    routes.remove_interface("small")
    assert all(r.interface != "small" for r in routes)
    route = routes.lookup(ip("10.1.2.4"))
    assert route is not None and route.interface == "mid"
    assert len(routes) == 4


def test_remove_one_route() -> None:
    routes = table()
    route = routes.lookup(ip("10.1.2.3"))
    assert route is not None
    routes.remove(route)
    after = routes.lookup(ip("10.1.2.3"))
    assert after is not None and after.interface == "small"


def test_add_interface_adds_connected_routes() -> None:
    stack = Stack(random.Random(0))
    stack.add_interface(Interface("eth0", ip("10.0.0.1"), prefix_len=24))
    stack.add_interface(Interface("ppp0", ip("192.0.2.1"), peer=ip("192.0.2.2")))
    stack.add_interface(Interface("lonely", ip("198.51.100.1")))
    stack.add_interface(Interface("quiet", ip("203.0.113.1"), prefix_len=24), connected_routes=False)
    assert sorted(str(r) for r in stack.routes) == ["10.0.0.0/24 dev eth0", "192.0.2.2/32 dev ppp0"]


def test_stack_remove_interface_drops_its_routes_and_address() -> None:
    stack, eth0 = host("10.0.0.1")
    stack.add_interface(Interface("eth1", ip("192.168.1.1"), prefix_len=24))
    stack.routes.add("172.16.0.0", 12, "eth1", gateway=ip("192.168.1.254"))
    assert stack.send_datagram(ip("192.168.1.1"), ip("172.16.5.5"), 99, b"x")
    stack.remove_interface("eth1")
    assert [r.interface for r in stack.routes] == ["eth0"]
    assert not stack.send_datagram(ip("10.0.0.1"), ip("172.16.5.5"), 99, b"x")
    assert not stack.send_datagram(ip("10.0.0.1"), ip("192.168.1.7"), 99, b"x")
    assert stack.drops[DropReason.NO_ROUTE] == 2
    assert not stack.is_local(ip("192.168.1.1"))
    # a datagram to the removed address is no longer ours
    stack.receive(eth0, udp("10.0.0.2", "192.168.1.1", 1, 2, b""), 0.0)
    assert stack.drops[DropReason.NOT_FOR_US] == 1


def test_removing_one_of_two_links_with_the_same_local_address_keeps_the_address() -> None:
    # a PPP server numbers every link with the same local address (unnumbered point-to-point)
    stack = Stack(random.Random(0))
    stack.add_interface(Interface("ppp0", ip("10.0.0.1"), peer=ip("10.0.0.2")))
    ppp1 = stack.add_interface(Interface("ppp1", ip("10.0.0.1"), peer=ip("10.0.0.3")))
    stack.remove_interface("ppp0")
    assert stack.is_local(ip("10.0.0.1"))
    stack.receive(ppp1, echo("10.0.0.3", "10.0.0.1", 1, 1, b"still there?"), 0.0)
    [reply] = ppp1.take_output()
    assert parse(reply)[0].dst == ip("10.0.0.3")
