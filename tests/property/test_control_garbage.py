"""Hypothesis properties of the PPP control plane (h11's fuzz invariant, applied to PPP).

* Every control-plane parser, given any octets, returns a value or raises ``MalformedPacket``
  (with a ``DropReason``), never anything else; the trace formatter never raises at all.
* Both automata (LCP, IPCP), in every RFC 1661 state, take any packet: only counted drops,
  state changes and bounded output.
* ``PppSession.receive_bytes`` in every phase takes random octets, random well-framed junk
  and random splits of both: no exception, output bounded by the input, no queue left
  growing, and no timer due in the past after ``on_timer``.
* Feeding a recorded negotiation transcript whole, byte at a time or cut at random points
  gives the same output, events and datagrams (h11's ``tr()`` chunking invariance).
"""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Callable
from ipaddress import IPv4Address
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wipstack.accel import hdlc_encode
from wipstack.errors import DropReason, MalformedPacket
from wipstack.ppp.automaton import State
from wipstack.ppp.config import CpConfig, IpcpConfig, LcpConfig, PapConfig, PppConfig
from wipstack.ppp.events import Phase, PppEvent
from wipstack.ppp.ipcp import Ipcp
from wipstack.ppp.lcp import Lcp
from wipstack.ppp.session import PppSession
from wipstack.ppp.trace import format_packet
from wipstack.wire.cp import CpCode, CpPacket, RawOption, emit_options, parse_options
from wipstack.wire.ipcp import IpcpOptionType, decode_ipcp_option
from wipstack.wire.lcp import LcpOptionType, decode_lcp_option
from wipstack.wire.pap import PapRequest, PapResponse
from wipstack.wire.ppp import PppProtocol, decode_frame, encode_frame

SERVER_IP = IPv4Address("192.0.2.1")
CLIENT_IP = IPv4Address("192.0.2.2")
DNS = (IPv4Address("198.51.100.53"), IPv4Address("198.51.100.54"))

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------------------- strategies

octets = st.binary(max_size=400)
option_types = st.one_of(
    st.sampled_from([int(t) for t in LcpOptionType] + [int(t) for t in IpcpOptionType]),
    st.integers(0, 255),
)
raw_options = st.builds(RawOption, option_types, st.binary(max_size=12))
option_lists = st.lists(raw_options, max_size=6)
codes = st.one_of(st.integers(1, 11), st.integers(0, 255))


@st.composite
def control_packets(draw: st.DrawFn) -> bytes:
    """A CP packet: well-formed with options, well-formed with junk data, or length-mangled."""
    code = draw(codes)
    identifier = draw(st.integers(0, 255))
    data = draw(st.one_of(option_lists.map(emit_options), st.binary(max_size=64)))
    packet = CpPacket(code, identifier, data).emit()
    mangle = draw(st.sampled_from(["none", "none", "pad", "length", "truncate"]))
    if mangle == "pad":
        packet += draw(st.binary(min_size=1, max_size=8))
    elif mangle == "length":
        packet = packet[:2] + draw(st.integers(0, 0xFFFF)).to_bytes(2, "big") + packet[4:]
    elif mangle == "truncate":
        packet = packet[: draw(st.integers(0, len(packet)))]
    return packet


protocols = st.one_of(
    st.sampled_from([PppProtocol.LCP, PppProtocol.IPCP, PppProtocol.PAP, PppProtocol.IPV4, PppProtocol.CCP]),
    st.integers(0, 0xFFFF),
)


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """One HDLC frame with a good FCS around a random (often control-protocol) PPP frame."""
    protocol = draw(protocols)
    information = draw(st.one_of(control_packets(), octets))
    pfc, acfc = draw(st.booleans()), draw(st.booleans())
    try:
        frame = encode_frame(protocol, information, pfc=pfc, acfc=acfc)
    except OverflowError:
        frame = draw(octets)
    if draw(st.booleans()):
        frame = frame[: draw(st.integers(0, len(frame)))]  # cut: header or body missing
    accm = draw(st.sampled_from([0xFFFFFFFF, 0, 0x000A0000]))
    return hdlc_encode(frame, accm)


line_bytes = st.one_of(
    octets,
    st.lists(frames(), min_size=1, max_size=4).map(b"".join),
    st.lists(st.one_of(frames(), octets, st.just(b"\x7e"), st.just(b"\x7d\x7e")), max_size=6).map(b"".join),
)


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


# ---------------------------------------------------------------------------- parsers


PARSERS: dict[str, Callable[[bytes], Any]] = {
    "decode_frame": decode_frame,
    "CpPacket.parse": CpPacket.parse,
    "parse_options": parse_options,
    "PapRequest.parse": PapRequest.parse,
    "PapResponse.parse": PapResponse.parse,
}


@pytest.mark.parametrize("name", PARSERS)
@SETTINGS
@given(data=st.binary(max_size=300))
def test_parsers_return_or_raise_malformed_packet(name: str, data: bytes) -> None:
    try:
        PARSERS[name](data)
    except MalformedPacket as exc:
        assert isinstance(exc.reason, DropReason)


@SETTINGS
@given(option_type=option_types, data=st.binary(max_size=20))
def test_option_decoders_return_or_raise_malformed_packet(option_type: int, data: bytes) -> None:
    for decode in (decode_lcp_option, decode_ipcp_option):
        try:
            decode(RawOption(option_type, data))
        except MalformedPacket as exc:
            assert exc.reason == DropReason.BAD_OPTION


@SETTINGS
@given(protocol=protocols, information=st.one_of(control_packets(), octets))
def test_format_packet_never_raises(protocol: int, information: bytes) -> None:
    assert isinstance(format_packet(protocol, information), str)


@SETTINGS
@given(
    code=st.integers(0, 255),
    identifier=st.integers(0, 255),
    data=st.binary(max_size=600),
    padding=st.binary(max_size=8),
)
def test_cp_packet_round_trip_ignores_padding(code: int, identifier: int, data: bytes, padding: bytes) -> None:
    packet = CpPacket(code, identifier, data)
    assert CpPacket.parse(packet.emit() + padding) == packet


@SETTINGS
@given(options=st.lists(st.builds(RawOption, st.integers(0, 255), st.binary(max_size=253)), max_size=8))
def test_option_list_round_trip(options: list[RawOption]) -> None:
    assert parse_options(emit_options(options)) == options


# 0x00FF is reserved ("compression inefficient"): with PFC and ACFC its one octet reads as the address
@SETTINGS
@given(
    protocol=protocols.filter(lambda p: bool(p & 1) and not p & 0x100 and p != 0x00FF),
    information=octets,
    pfc=st.booleans(),
    acfc=st.booleans(),
)
def test_frame_round_trip_in_every_compression_variant(
    protocol: int, information: bytes, pfc: bool, acfc: bool
) -> None:
    decoded_protocol, decoded = decode_frame(encode_frame(protocol, information, pfc=pfc, acfc=acfc))
    assert (decoded_protocol, bytes(decoded)) == (protocol, information)


# ------------------------------------------------------------------------- automata


def _lcp() -> Lcp:
    return Lcp(LcpConfig(echo_interval=5.0), PapConfig(username="alice"), CpConfig(), random.Random(1))


def _ipcp() -> Ipcp:
    return Ipcp(IpcpConfig(local_address=SERVER_IP, peer_address=CLIENT_IP, dns_servers=DNS), CpConfig())


def _drive(handler: Lcp | Ipcp, target: State) -> None:
    """Bring the automaton to ``target`` with a well-behaved peer."""
    fsm = handler.fsm
    peer_request = CpPacket(CpCode.CONFIGURE_REQUEST, 0x42, emit_options(_acceptable(handler))).emit()

    def ours() -> CpPacket:
        return [p for p in fsm.drain_packets() if p.code == CpCode.CONFIGURE_REQUEST][-1]

    if target == State.INITIAL:
        return
    if target == State.STARTING:
        fsm.open(0.0)
        return
    if target == State.CLOSED:
        fsm.up(0.0)
        return
    fsm.open(0.0)
    fsm.up(0.0)
    request = ours()
    if target == State.REQ_SENT:
        return
    if target == State.ACK_RCVD:
        fsm.receive(CpPacket(CpCode.CONFIGURE_ACK, request.identifier, request.data).emit(), 0.0)
    elif target == State.ACK_SENT:
        fsm.receive(peer_request, 0.0)
    elif target == State.STOPPED:
        while (deadline := fsm.next_deadline()) is not None:
            fsm.on_timer(deadline)
    else:
        fsm.receive(CpPacket(CpCode.CONFIGURE_ACK, request.identifier, request.data).emit(), 0.0)
        fsm.receive(peer_request, 0.0)
        if target == State.CLOSING:
            fsm.close(0.0)
        elif target == State.STOPPING:
            fsm.receive(CpPacket(CpCode.TERMINATE_REQUEST, 1).emit(), 0.0)
    fsm.drain_packets()
    assert fsm.state == target, (fsm.state, target)


def _acceptable(handler: Lcp | Ipcp) -> list[RawOption]:
    if isinstance(handler, Lcp):
        return [RawOption(LcpOptionType.MAGIC_NUMBER, b"\x0b\xad\xca\xfe")]
    return [RawOption(IpcpOptionType.IP_ADDRESS, CLIENT_IP.packed)]


@pytest.mark.parametrize("make", [_lcp, _ipcp], ids=["lcp", "ipcp"])
@pytest.mark.parametrize("state", list(State), ids=str)
@SETTINGS
@given(
    packets=st.lists(st.one_of(control_packets(), octets), max_size=6),
    times=st.lists(st.floats(0.0, 100.0), min_size=6, max_size=6),
)
def test_automaton_takes_any_packet_in_every_state(
    make: Callable[[], Lcp | Ipcp], state: State, packets: list[bytes], times: list[float]
) -> None:
    handler = make()
    _drive(handler, state)
    fsm = handler.fsm
    now = 0.0
    for packet, step in zip(packets, times, strict=False):
        now += step
        fsm.receive(packet, now)
        handler_timer = handler.on_timer if isinstance(handler, Lcp) else fsm.on_timer
        handler_timer(now)
        out = fsm.drain_packets()
        assert len(out) <= 4
        assert all(len(p.emit()) <= 1500 for p in out)
        assert isinstance(fsm.state, State)
        assert all(n >= 0 for n in fsm.drops.values())
        deadline = fsm.next_deadline()
        assert deadline is None or deadline > now


# ---------------------------------------------------------------------------- sessions


def server_config() -> PppConfig:
    return PppConfig(
        lcp=LcpConfig(echo_interval=5.0),
        pap=PapConfig(require=True, secrets=(("alice", "s3cret"),)),
        ipcp=IpcpConfig(local_address=SERVER_IP, peer_address=CLIENT_IP, dns_servers=DNS),
    )


def client_config() -> PppConfig:
    return PppConfig(
        lcp=LcpConfig(accm=0x000A0000, echo_interval=7.0),
        pap=PapConfig(username="alice", password="s3cret"),
        ipcp=IpcpConfig(request_dns=True),
    )


def client_in(phase: str) -> PppSession:
    """A client session in ``phase``, reached against a real wipstack server, one frame at a time."""
    client = PppSession(client_config(), random.Random(2))
    if phase == "dead":
        return client
    server = PppSession(server_config(), random.Random(1))
    client.open(0.0)
    if phase == "establish":
        client.bytes_to_send()
        return client
    server.open(0.0)
    reached: dict[str, Callable[[], bool]] = {
        "authenticate": lambda: client.phase == Phase.AUTHENTICATE,
        "network": lambda: client.phase == Phase.NETWORK,
        "ipcp-opened": lambda: client.ipcp.fsm.state == State.OPENED,
        "terminate": lambda: client.ipcp.fsm.state == State.OPENED,
    }
    for _ in range(40):
        if reached[phase]():
            break
        to_client, to_server = server.bytes_to_send(), client.bytes_to_send()
        for piece in to_client.split(b"\x7e"):
            if piece and not reached[phase]():
                client.receive_bytes(b"\x7e" + piece + b"\x7e", 0.0)
        server.receive_bytes(to_server, 0.0)
    assert reached[phase](), phase
    if phase == "terminate":
        client.close(0.0)
        assert client.phase == Phase.TERMINATE
    client.bytes_to_send()
    while client.next_event() is not None:
        pass
    return client


PHASES = ["dead", "establish", "authenticate", "network", "ipcp-opened", "terminate"]


def assert_no_queue_left(session: PppSession) -> None:
    assert session.next_event() is None
    assert session.bytes_to_send() == b""
    assert session.lcp.fsm.drain_packets() == []
    assert session.ipcp.fsm.drain_packets() == []
    assert session.pap_client.drain_packets() == []
    assert session.pap_server.drain_packets() == []
    assert session.lcp.rejected_protocols == []


@pytest.mark.parametrize("phase", PHASES)
@SETTINGS
@given(data=line_bytes, cuts=st.lists(st.integers(0, 10_000), max_size=8), step=st.floats(0.0, 50.0))
def test_session_takes_any_line_bytes_in_every_phase(phase: str, data: bytes, cuts: list[int], step: float) -> None:
    session = client_in(phase)
    frames_before = session.frames_in
    out = 0
    happened: list[PppEvent] = []
    for piece in split_at(data, cuts):
        session.receive_bytes(piece, 1.0)
        out += len(session.bytes_to_send())
        while (event := session.next_event()) is not None:
            happened.append(event)
        session.take_ip_packets()
    frames = session.frames_in - frames_before
    assert frames <= data.count(b"\x7e")
    assert out <= 2 * len(data) + 600 * frames
    assert len(happened) <= 12 * (frames + 1)
    assert isinstance(session.phase, Phase)
    now = 1.0 + step
    session.on_timer(now)
    deadline = session.next_deadline()
    assert deadline is None or deadline > now
    session.take_ip_packets()
    while session.next_event() is not None:
        pass
    session.bytes_to_send()
    assert_no_queue_left(session)


@pytest.mark.parametrize("phase", ["establish", "ipcp-opened"])
def test_session_memory_stays_bounded_on_a_flagless_stream(phase: str) -> None:
    session = client_in(phase)
    junk = random.Random(5).randbytes(4096).replace(b"\x7e", b"\x00")
    tracemalloc.start()
    try:
        session.receive_bytes(junk, 1.0)
        baseline, _ = tracemalloc.get_traced_memory()
        for _ in range(500):  # 2 MB without a single flag
            session.receive_bytes(junk, 1.0)
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert current - baseline < 64 * 1024
    assert session.counters()["hdlc_too_long"] >= 1
    assert session.bytes_to_send() == b""


# ------------------------------------------------------------------- chunking invariance


Step = tuple[str, float, bytes]


def record_transcript(server_closes: bool) -> list[Step]:
    """What a client hears from a wipstack server through a full session, with timers."""
    server = PppSession(server_config(), random.Random(1))
    client = PppSession(client_config(), random.Random(2))
    steps: list[Step] = [("open", 0.0, b"")]
    server.open(0.0)
    client.open(0.0)
    now = 0.0

    def pump() -> None:
        for _ in range(20):
            to_client, to_server = server.bytes_to_send(), client.bytes_to_send()
            if not to_client and not to_server:
                return
            if to_client:
                steps.append(("rx", now, to_client))
                client.receive_bytes(to_client, now)
            if to_server:
                server.receive_bytes(to_server, now)

    pump()
    assert client.ipcp.result is not None
    server.send_ip(bytes(range(40)), now)
    server.send_ip(bytes(300), now)
    pump()
    for now in (5.0, 7.0, 10.0, 14.0):  # echo keep-alives in both directions
        for session in (server, client):
            deadline = session.next_deadline()
            if deadline is not None and deadline <= now:
                session.on_timer(now)
                if session is client:
                    steps.append(("timer", now, b""))
        pump()
    now = 15.0
    if server_closes:
        server.close(now, "bye")
    else:
        client.close(now, "bye")
        steps.append(("close", now, b""))
    pump()
    return steps


CLIENT_CLOSES = record_transcript(server_closes=False)
SERVER_CLOSES = record_transcript(server_closes=True)


def replay(steps: list[Step], split: Callable[[bytes], list[bytes]]) -> tuple[Any, ...]:
    client = PppSession(client_config(), random.Random(2))
    outputs, happened = [], []
    for kind, now, data in steps:
        if kind == "open":
            client.open(now)
        elif kind == "timer":
            client.on_timer(now)
        elif kind == "close":
            client.close(now, "bye")
        else:
            for piece in split(data):
                client.receive_bytes(piece, now)
        outputs.append(client.bytes_to_send())
        while (event := client.next_event()) is not None:
            happened.append(event)
    return outputs, happened, client.take_ip_packets(), client.phase, client.counters()


def whole(data: bytes) -> list[bytes]:
    return [data]


def byte_at_a_time(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def test_transcript_reaches_every_phase() -> None:
    outputs, happened, datagrams, phase, _ = replay(CLIENT_CLOSES, whole)
    assert {e.phase for e in happened if hasattr(e, "phase")} == set(Phase)  # type: ignore[union-attr]
    assert datagrams == [bytes(range(40)), bytes(300)]
    assert phase == Phase.DEAD


@pytest.mark.parametrize("steps", [CLIENT_CLOSES, SERVER_CLOSES], ids=["client-closes", "server-closes"])
def test_byte_at_a_time_gives_same_behaviour_as_whole_buffers(steps: list[Step]) -> None:
    assert replay(steps, byte_at_a_time)[:4] == replay(steps, whole)[:4]


def test_byte_at_a_time_gives_same_counters_as_whole_buffers() -> None:
    assert replay(CLIENT_CLOSES, byte_at_a_time)[4] == replay(CLIENT_CLOSES, whole)[4]


def test_byte_at_a_time_gives_same_counters_when_the_peer_terminates() -> None:
    assert replay(SERVER_CLOSES, byte_at_a_time)[4] == replay(SERVER_CLOSES, whole)[4]


@SETTINGS
@given(st.data())
def test_random_splits_give_same_behaviour_as_whole_buffers(data: st.DataObject) -> None:
    def random_split(chunk: bytes) -> list[bytes]:
        return split_at(chunk, data.draw(st.lists(st.integers(0, 10_000), max_size=6)))

    assert replay(CLIENT_CLOSES, random_split) == replay(CLIENT_CLOSES, whole)
