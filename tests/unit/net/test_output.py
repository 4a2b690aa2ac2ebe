"""IPv4 output: header defaults from StackConfig, identification from the injected rng,
fragmentation to the interface MTU, Don't Fragment, and what happens when a datagram cannot leave."""

from __future__ import annotations

import random

import pytest

from tests.unit.net.helpers import UDP, host, ip, join, parse, payload_of
from wipstack.errors import DropReason
from wipstack.net import Interface, Stack, StackConfig

US = "10.0.0.1"
PEER = "10.0.0.2"


def udp_out(stack: Stack, iface: Interface, data: bytes = b"data", **sock_attrs: int) -> list[bytes]:
    sock = stack.udp_socket()
    for name, value in sock_attrs.items():
        setattr(sock, name, value)
    sock.sendto(data, PEER, 9)
    return iface.take_output()


def test_ttl_and_tos_default_from_stack_config() -> None:
    stack, iface = host(US)
    [packet] = udp_out(stack, iface)
    header, _ = parse(packet)
    assert (header.ttl, header.tos) == (64, 0)
    assert header.src == ip(US) and header.dst == ip(PEER)
    assert not header.dont_fragment and not header.more_fragments and header.fragment_offset == 0
    assert header.options == b""

    stack, iface = host(US, ttl=17, tos=0xB8)
    [packet] = udp_out(stack, iface)
    header, _ = parse(packet)
    assert (header.ttl, header.tos) == (17, 0xB8)


def test_per_socket_ttl_and_tos_override_the_defaults() -> None:
    stack, iface = host(US, ttl=100, tos=0x10)
    [packet] = udp_out(stack, iface, ttl=3, tos=0x2E)
    header, _ = parse(packet)
    assert (header.ttl, header.tos) == (3, 0x2E)
    [packet] = udp_out(stack, iface)  # a fresh socket uses the defaults again
    assert (parse(packet)[0].ttl, parse(packet)[0].tos) == (100, 0x10)


def test_send_datagram_ttl_tos_arguments() -> None:
    stack, iface = host(US)
    assert stack.send_datagram(ip(US), ip(PEER), 99, b"raw", ttl=255, tos=0xFF)
    [packet] = iface.take_output()
    header, payload = parse(packet)
    assert (header.ttl, header.tos, header.protocol, payload) == (255, 0xFF, 99, b"raw")


def test_set_config_changes_ttl_and_tos_from_now_on() -> None:
    stack, iface = host(US)
    stack.set_config(StackConfig(ttl=9, tos=0x04))
    [packet] = udp_out(stack, iface)
    assert (parse(packet)[0].ttl, parse(packet)[0].tos) == (9, 0x04)


def test_set_config_applies_reassembly_caps_and_ephemeral_range() -> None:
    stack, _ = host(US)
    stack.set_config(StackConfig(max_reassembly_datagrams=2, max_reassembly_bytes=4096, ephemeral_ports=(5000, 5000)))
    assert stack.reassembler.max_datagrams == 2
    assert stack.reassembler.max_bytes == 4096
    assert stack.udp_socket().bind() == (bytes(4), 5000)


def test_identification_comes_from_the_rng() -> None:
    def transcript(seed: int) -> list[bytes]:
        stack, iface = host(US, seed=seed)
        sock = stack.udp_socket()
        for i in range(5):
            sock.sendto(bytes([i]) * 3000, PEER, 9)  # fragmented: every fragment shares one ID
        stack.send_datagram(ip(US), ip(PEER), 99, b"x")
        return iface.take_output()

    first, again, other = transcript(7), transcript(7), transcript(8)
    assert first == again  # same seed, same bytes, including IDs and the ephemeral port
    assert first != other
    ids = [parse(p)[0].identification for p in first]
    other_ids = [parse(p)[0].identification for p in other]
    assert ids != other_ids
    # the rng decides: the ID is not a counter
    per_datagram = [ids[i] for i in range(0, 15, 3)]
    assert len(set(per_datagram)) == 5
    assert [(b - a) & 0xFFFF for a, b in zip(per_datagram, per_datagram[1:], strict=False)] != [1] * 4
    for i in range(0, 15, 3):
        assert ids[i] == ids[i + 1] == ids[i + 2]


def test_identification_is_drawn_with_getrandbits_16() -> None:
    class Recorder(random.Random):
        calls: list[int] = []

        def getrandbits(self, k: int) -> int:
            self.calls.append(k)
            return 0xBEEF if k == 16 else super().getrandbits(k)

    rng = Recorder(1)
    stack = Stack(rng)
    iface = stack.add_interface(Interface("eth0", ip(US), prefix_len=24))
    stack.send_datagram(ip(US), ip(PEER), 99, b"x")
    assert parse(iface.take_output()[0])[0].identification == 0xBEEF
    assert 16 in rng.calls


@pytest.mark.parametrize("mtu", [68, 69, 76, 296, 576, 1006, 1500])
@pytest.mark.parametrize("size", [0, 1, 47, 48, 1472, 1473, 5840, 65507])
def test_fragmentation_to_the_interface_mtu(mtu: int, size: int) -> None:
    stack = Stack(random.Random(1))
    # 65507 octets in 48-octet pieces are 1365 fragments: more than the default queue of 1024
    iface = stack.add_interface(Interface("eth0", ip(US), prefix_len=24, mtu=mtu, max_queue=2048))
    data = payload_of(size, seed=size)
    sock = stack.udp_socket()
    sock.bind(US, 4000)
    sock.sendto(data, PEER, 9)
    packets = iface.take_output()
    whole = 20 + 8 + size
    if whole <= mtu:
        assert len(packets) == 1 and len(packets[0]) == whole
        assert stack.counters()["fragments_out"] == 0
    else:
        assert len(packets) > 1
        assert stack.counters()["fragments_out"] == len(packets)
        room = (mtu - 20) & ~7
        for packet in packets[:-1]:
            header, payload = parse(packet)
            assert len(packet) <= mtu
            assert header.more_fragments and header.fragment_offset % 8 == 0
            assert len(payload) == room  # every fragment but the last is as full as the MTU allows
        assert not parse(packets[-1])[0].more_fragments and len(packets[-1]) <= mtu
        assert len({parse(p)[0].identification for p in packets}) == 1
    header, segment = join(packets)
    assert header.protocol == UDP
    assert len(segment) == 8 + size and segment[8:] == data
    assert iface.counters.packets_out == len(packets)
    assert iface.counters.bytes_out == sum(map(len, packets))


def test_dont_fragment_too_big_is_refused_and_counted() -> None:
    stack, iface = host(US, mtu=576)
    assert stack.send_datagram(ip(US), ip(PEER), 99, bytes(556), dont_fragment=True)  # exactly 576
    [packet] = iface.take_output()
    assert parse(packet)[0].dont_fragment
    assert not stack.send_datagram(ip(US), ip(PEER), 99, bytes(557), dont_fragment=True)
    assert iface.take_output() == []
    assert stack.drops == {DropReason.NEEDS_FRAGMENTATION: 1}
    assert stack.counters()["drop_needs_fragmentation"] == 1


def test_no_route_is_refused_and_counted() -> None:
    stack, iface = host(US)
    assert not stack.send_datagram(ip(US), ip("192.0.2.1"), 99, b"x")
    assert stack.drops == {DropReason.NO_ROUTE: 1}
    assert iface.take_output() == []


def test_interface_down_is_no_route() -> None:
    stack, iface = host(US)
    iface.up = False
    assert not stack.send_datagram(ip(US), ip(PEER), 99, b"x")
    assert stack.drops[DropReason.NO_ROUTE] == 1
    assert iface.take_output() == []


def test_full_interface_queue_refuses_and_counts() -> None:
    stack = Stack(random.Random(1))
    iface = stack.add_interface(Interface("eth0", ip(US), prefix_len=24, max_queue=3))
    results = [stack.send_datagram(ip(US), ip(PEER), 99, bytes([i])) for i in range(5)]
    assert results == [True, True, True, False, False]
    assert iface.counters.drops[DropReason.QUEUE_FULL] == 2
    assert len(iface.take_output()) == 3
    assert stack.send_datagram(ip(US), ip(PEER), 99, b"again")  # drained: room again


def test_fragments_that_do_not_fit_the_queue_make_send_fail() -> None:
    stack = Stack(random.Random(1))
    iface = stack.add_interface(Interface("eth0", ip(US), prefix_len=24, max_queue=2))
    assert not stack.send_datagram(ip(US), ip(PEER), 99, bytes(4000))
    assert len(iface.take_output()) <= 2
    assert iface.counters.drops[DropReason.QUEUE_FULL] >= 1


def test_output_goes_to_the_routed_interface() -> None:
    stack, eth0 = host(US)
    eth1 = stack.add_interface(Interface("eth1", ip("192.168.1.1"), prefix_len=24, mtu=576))
    stack.routes.add_default("eth1", gateway=ip("192.168.1.254"))
    assert stack.send_datagram(ip("192.168.1.1"), ip("8.8.8.8"), 99, b"far")
    assert stack.send_datagram(ip(US), ip(PEER), 99, b"near")
    assert [parse(p)[1] for p in eth1.take_output()] == [b"far"]
    assert [parse(p)[1] for p in eth0.take_output()] == [b"near"]


def test_source_address_selection_follows_the_route() -> None:
    stack, _ = host(US)
    stack.add_interface(Interface("eth1", ip("192.168.1.1"), prefix_len=24))
    stack.routes.add_default("eth1")
    assert stack.source_address_for(ip(PEER)) == ip(US)
    assert stack.source_address_for(ip("8.8.8.8")) == ip("192.168.1.1")
    assert stack.source_address_for(ip("192.168.1.1")) == ip("192.168.1.1")
    stack.routes.remove_interface("eth1")
    assert stack.source_address_for(ip("8.8.8.8")) is None


def test_stack_config_rejects_ttl_zero() -> None:
    # RFC 1122 §3.2.1.7: "A host MUST NOT send a datagram with a Time-to-Live (TTL) value of zero."
    with pytest.raises(ValueError):
        StackConfig(ttl=0)


@pytest.mark.parametrize(
    "kwargs",
    [{"ttl": 256}, {"ttl": -1}, {"tos": 256}, {"fragment_timeout": 0}, {"fragment_timeout": -1.0},
     {"ephemeral_ports": (0, 10)}, {"ephemeral_ports": (5000, 4999)}, {"ephemeral_ports": (1, 65536)}],
)  # fmt: skip
def test_stack_config_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        StackConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [{"address": b"\0\0\0"}, {"peer": b"\1\2\3\4\5"}, {"prefix_len": 33}, {"prefix_len": -1}, {"mtu": 67},
     {"mtu": 65536}],
)  # fmt: skip
def test_interface_validation(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"name": "x", "address": ip(US)} | kwargs
    with pytest.raises(ValueError):
        Interface(**args)  # type: ignore[arg-type]


def test_interface_addresses_and_description() -> None:
    iface = Interface("eth0", ip("10.1.2.3"), prefix_len=20)
    assert iface.network_mask == 0xFFFFF000
    assert iface.broadcast == ip("10.1.15.255")
    assert Interface("p", ip("10.0.0.1"), prefix_len=31).broadcast is None
    stack = Stack(random.Random(0))
    stack.add_interface(iface)
    stack.add_interface(Interface("ppp0", ip("10.9.9.1"), peer=ip("10.9.9.2"), mtu=1492))
    lines = list(stack.describe())
    assert "<Interface eth0 10.1.2.3/20 mtu 1500>" in lines
    assert "<Interface ppp0 10.9.9.1/32 peer 10.9.9.2 mtu 1492>" in lines
    assert "10.1.0.0/20 dev eth0" in lines and "10.9.9.2/32 dev ppp0" in lines
    with pytest.raises(ValueError):
        stack.add_interface(Interface("eth0", ip("10.5.5.5")))
