"""Hypothesis properties of the IPv4 layer under hostile input (h11's fuzz invariant, for IP).

Random octets and mutated valid datagrams (UDP, ICMP echo and errors, unknown protocols,
fragments; bit flips with and without a repaired header checksum, truncations, padding,
random fragment fields) are fed to ``Stack.receive`` of a host and of a router, with timer
runs in between.  Whatever comes in:

* nothing raises;
* memory stays bounded: the reassembler's caps, interface queues, socket queues, the
  loopback queue drained after every call;
* counters only grow;
* everything the stack sends is a well-formed IPv4 datagram (valid header checksum, valid
  ICMP checksum) that fits the interface MTU;
* after ``on_timer(now)`` nothing is due in the past.
"""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.net.helpers import ICMP, UDP, ip, ipv4, split, udp
from wipstack.net import Interface, Stack, StackConfig
from wipstack.net.icmp import PingConfig
from wipstack.wire.icmp import IcmpRepr, IcmpType
from wipstack.wire.ipv4 import Ipv4Repr
from wipstack.wire.udp import UdpRepr

US, PEER = "10.0.0.1", "10.0.0.2"
FAR = "10.9.0.1"  # the router's second interface
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# weighted towards what reaches deep code: peers talking to us or through us
sources = st.sampled_from([PEER, PEER, PEER, "10.0.0.3", "10.9.0.2", "10.9.0.2", "192.0.2.7", US, "127.0.0.1",
                           "0.0.0.0", "10.0.0.255", "240.0.0.1"])  # fmt: skip
destinations = st.sampled_from([US, US, US, US, "10.9.0.2", "10.9.0.2", "10.9.0.2", "255.255.255.255",
                                "10.0.0.255", "10.0.0.9", "192.0.2.9", "224.0.0.1", FAR, "0.0.0.0",
                                "127.0.0.1"])  # fmt: skip
ports = st.sampled_from([7, 53, 9, 0, 4000, 65535])
small_data = st.binary(max_size=120)
data = st.one_of(small_data, st.integers(0, 3000).map(bytes))


@st.composite
def icmp_messages(draw: st.DrawFn, src: str, dst: str) -> bytes:
    kind = draw(st.sampled_from(["echo", "reply", "error", "quote-ours", "other"]))
    if kind == "echo":
        return IcmpRepr.echo(draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFF)), draw(data)).emit()
    if kind == "reply":
        return IcmpRepr.echo(draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFF)), draw(data), reply=True).emit()
    if kind in ("error", "quote-ours"):
        # an error about a datagram we (might have) sent: UDP, an echo request, or anything
        if kind == "quote-ours":
            original = draw(
                st.sampled_from(
                    [
                        udp(dst, src, 4000, 53, b"question"),
                        ipv4(dst, src, ICMP, IcmpRepr.echo(0x1111, 0, bytes(8)).emit()),
                        ipv4(dst, src, 6, bytes(20)),
                    ]
                )
            )
        else:
            original = draw(st.binary(min_size=20, max_size=60))
        icmp_type = draw(st.sampled_from([3, 4, 5, 11, 12]))
        return IcmpRepr(icmp_type, draw(st.integers(0, 16)), draw(st.integers(0, 2**32 - 1)), original[:28]).emit()
    return IcmpRepr(draw(st.integers(0, 255)), draw(st.integers(0, 255)), 0, draw(small_data)).emit()


@st.composite
def datagrams(draw: st.DrawFn) -> list[bytes]:
    """One valid datagram, maybe cut into (some of) its fragments in any order."""
    src, dst = draw(sources), draw(destinations)
    protocol = draw(st.sampled_from([UDP, UDP, ICMP, ICMP, 6, 99, 255]))
    if protocol == UDP:
        s, d = ip(src), ip(dst)
        payload = UdpRepr(draw(ports), draw(ports)).emit(draw(data), src=s, dst=d, checksum=draw(st.booleans()))
    elif protocol == ICMP:
        payload = draw(icmp_messages(src, dst))
    else:
        payload = draw(data)
    options = draw(st.one_of(st.just(b""), st.binary(max_size=40)))
    packet = ipv4(
        src, dst, protocol, payload,
        ttl=draw(st.sampled_from([0, 1, 2, 64, 64, 255])), tos=draw(st.integers(0, 255)),
        ident=draw(st.integers(0, 3)), df=draw(st.booleans()), options=options,
    )  # fmt: skip
    if len(payload) > 16 and draw(st.booleans()):
        pieces = split(packet, draw(st.sampled_from([8, 64, 552, 1480])))
        if draw(st.booleans()):  # all of them, in any order, maybe with a duplicate
            return draw(st.permutations(pieces)) + draw(st.lists(st.sampled_from(pieces), max_size=1))
        return draw(st.lists(st.sampled_from(pieces), min_size=1, max_size=len(pieces) + 3))
    return [packet]


def repair_checksum(packet: bytearray) -> None:
    if len(packet) < 20:
        return
    hlen = (packet[0] & 0x0F) * 4
    if hlen < 20 or hlen > len(packet):
        return
    packet[10:12] = b"\0\0"
    total = sum(int.from_bytes(packet[i : i + 2], "big") for i in range(0, hlen, 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    packet[10:12] = (~total & 0xFFFF).to_bytes(2, "big")


@st.composite
def mutated(draw: st.DrawFn) -> list[bytes]:
    out = []
    for original in draw(datagrams()):
        packet = bytearray(original)
        mutation = draw(
            st.sampled_from(["none", "flip", "flip-fixed", "truncate", "pad", "fragment-fields", "field", "ihl"])
        )
        if mutation in ("flip", "flip-fixed"):
            for _ in range(draw(st.integers(1, 4))):
                position = draw(st.integers(0, len(packet) - 1))
                packet[position] ^= 1 << draw(st.integers(0, 7))
        elif mutation == "truncate":
            del packet[draw(st.integers(0, len(packet))) :]
        elif mutation == "pad":
            packet += draw(st.binary(min_size=1, max_size=40))
        elif mutation == "fragment-fields":
            flags = draw(st.integers(0, 7)) << 13
            offset = draw(st.one_of(st.integers(0, 0x1FFF), st.sampled_from([0, 1, 185, 0x1FFF, 0x1FFE])))
            packet[6:8] = (flags | offset).to_bytes(2, "big")
        elif mutation == "field":
            position = draw(st.integers(0, min(len(packet), 60) - 1))
            packet[position] = draw(st.integers(0, 255))
        elif mutation == "ihl":
            packet[0] = 0x40 | draw(st.integers(0, 15))
        if mutation in ("flip-fixed", "fragment-fields", "field", "ihl") and draw(st.booleans()):
            repair_checksum(packet)
        out.append(bytes(packet))
    return out


# ----------------------------------------------------------------------- the stacks


class Handler:
    def __init__(self) -> None:
        self.received = 0

    def receive(self, header: Ipv4Repr, payload: memoryview, now: float) -> bool:
        self.received += 1
        return False

    def icmp_error(self, error: IcmpRepr, original: Ipv4Repr, original_payload: bytes, now: float) -> None:
        pass

    def next_deadline(self) -> float | None:
        return None

    def on_timer(self, now: float) -> None:
        pass


def build(kind: str, seed: int) -> tuple[Stack, list[Interface]]:
    config = StackConfig(
        forwarding=kind == "router",
        max_reassembly_datagrams=3,
        max_reassembly_bytes=20_000,
        fragment_timeout=2.0,
        udp_receive_queue=4,
        icmp_error_burst=1000,
    )
    stack = Stack(random.Random(seed), config)
    lan = stack.add_interface(Interface("lan", ip(US), prefix_len=24, max_queue=64))
    interfaces = [lan]
    if kind == "router":
        wan = stack.add_interface(Interface("wan", ip(FAR), prefix_len=16, mtu=68, max_queue=64))
        interfaces.append(wan)
    for port in (7, 53, 4000):
        sock = stack.udp_socket()
        sock.bind("0.0.0.0" if port == 7 else US, port)
        if port == 4000:
            sock.connect(PEER, 53)
    stack.register_transport(6, Handler())
    originate = stack.send_datagram

    def checked_send(src: bytes, dst: bytes, protocol: int, payload: object, **kwargs: object) -> bool:
        # every ICMP message the stack originates is well formed: echo request/reply or an error
        if protocol == ICMP:
            icmp = IcmpRepr.parse(payload)  # type: ignore[arg-type]
            assert icmp.type in (IcmpType.ECHO_REPLY, IcmpType.ECHO_REQUEST) or icmp.is_error
            assert src in (ip(US), ip(FAR))
        return originate(src, dst, protocol, payload, **kwargs)  # type: ignore[arg-type]

    stack.send_datagram = checked_send  # type: ignore[method-assign]
    stack.ping(PEER, PingConfig(count=3, interval=0.5, timeout=1.0), 0.0)
    return stack, interfaces


def check_output(stack: Stack, interfaces: list[Interface]) -> None:
    assert not stack._loopback  # private: drained by every receive and on_timer
    for iface in interfaces:
        assert len(iface.output) <= iface.max_queue
        for packet in iface.take_output():
            assert len(packet) <= iface.mtu
            Ipv4Repr.parse(packet)  # our output always parses, header checksum included


def check_bounded(stack: Stack) -> None:
    assert stack.reassembler.datagrams_held <= 3
    assert stack.reassembler.bytes_held <= 20_000
    assert len(stack.pings) <= 1
    for sockets in stack.udp._by_port.values():  # private: every bound socket
        for sock in sockets:
            assert sock.pending <= 4 and len(sock.errors) <= 16


def check_grew(before: dict[str, int], after: dict[str, int]) -> None:
    for key, value in before.items():
        assert after.get(key, 0) >= value, key


def run(kind: str, seed: int, batches: list[list[bytes]], steps: list[float]) -> None:
    stack, interfaces = build(kind, seed)
    now = 0.0
    before = stack.counters()
    for batch, step in zip(batches, steps, strict=False):
        for packet in batch:
            stack.receive(interfaces[len(packet) % len(interfaces)], packet, now)
            check_output(stack, interfaces)
            check_bounded(stack)
            after = stack.counters()
            check_grew(before, after)
            before = after
        now += step
        stack.on_timer(now)
        deadline = stack.next_deadline()
        assert deadline is None or deadline > now
        check_output(stack, interfaces)
        check_bounded(stack)
        after = stack.counters()
        check_grew(before, after)
        before = after
    assert stack.counters()["datagrams_in"] == sum(map(len, batches[: len(steps)]))


stack_kinds = st.sampled_from(["host", "router"])
time_steps = st.lists(st.sampled_from([0.0, 0.1, 0.5, 1.0, 2.5]), min_size=1, max_size=8)


def plausible(tail: bytes) -> bytes:
    """Random octets behind version 4, IHL 5, a Total Length that fits and a checksum that holds."""
    packet = bytearray(b"\x45" + tail)
    packet[2:4] = len(packet).to_bytes(2, "big")
    repair_checksum(packet)
    return bytes(packet)


# random octets; some behind a plausible first octet, some with a header that passes every check
octets = st.one_of(
    st.binary(max_size=200),
    st.binary(min_size=19, max_size=200).map(lambda b: b"\x45" + b),
    st.binary(min_size=19, max_size=200).map(plausible),
)


@SETTINGS
@given(kind=stack_kinds, seed=st.integers(0, 2**16), batches=st.lists(st.lists(octets, max_size=4),
       min_size=1, max_size=8), steps=time_steps)  # fmt: skip
def test_random_octets(kind: str, seed: int, batches: list[list[bytes]], steps: list[float]) -> None:
    run(kind, seed, batches, steps)


@SETTINGS
@given(kind=stack_kinds, seed=st.integers(0, 2**16), batches=st.lists(datagrams(), min_size=1, max_size=6),
       steps=time_steps)  # fmt: skip
def test_valid_datagrams_of_every_kind(kind: str, seed: int, batches: list[list[bytes]], steps: list[float]) -> None:
    run(kind, seed, batches, steps)


@SETTINGS
@given(kind=stack_kinds, seed=st.integers(0, 2**16), batches=st.lists(mutated(), min_size=1, max_size=6),
       steps=time_steps)  # fmt: skip
def test_mutated_datagrams(kind: str, seed: int, batches: list[list[bytes]], steps: list[float]) -> None:
    run(kind, seed, batches, steps)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_thousands_of_random_fragments_keep_memory_bounded(seed: int) -> None:
    rng = random.Random(seed)
    stack, interfaces = build("router", seed)
    before = stack.counters()
    now = 0.0
    for step in range(1500):
        units = rng.randrange(0, 0x2000) if rng.random() < 0.3 else rng.randrange(0, 44) * 185
        room = 65535 - units * 8  # the parser refuses fragments that end past 65535
        more = rng.random() < 0.8
        length = min(rng.randrange(0, 1480), room)
        if more:
            length &= ~7
        packet = Ipv4Repr(
            ip(rng.choice([PEER, "10.0.0.3"])), ip(rng.choice([US, US, "255.255.255.255", "192.0.2.1"])),
            rng.choice([UDP, ICMP, 99]), identification=rng.randrange(8), more_fragments=more,
            fragment_offset=units * 8, ttl=rng.choice([1, 64]),
        ).emit(rng.randbytes(length))  # fmt: skip
        stack.receive(interfaces[step % 2], packet, now)
        check_bounded(stack)
        check_output(stack, interfaces)
        if step % 50 == 49:
            now += 0.5
            stack.on_timer(now)
        after = stack.counters()
        check_grew(before, after)
        before = after
