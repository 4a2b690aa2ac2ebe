"""``AT+WIPDATA`` data modes end to end, in virtual time: the host on UART1, a peer stack behind bearer 4.

What must hold (wip-at-reference.md §7, §11):

* continuous mode (1) and transparent mode (2) carry every byte both ways, unchanged once the
  DLE/ETX stuffing of mode 1 is undone: no loss, duplication or reordering, with the host
  honouring flow control (it types only while ``Module.wants_input`` says so) and a slow UART
  that drains the module's output at a fixed rate;
* a peer that sends far more than a slow (or stopped) UART takes is held back by TCP: the
  channel's output buffer stays near ``uart_buffer`` and the module's socket near its window;
* ``+++`` framed by guard times returns to AT mode (``OK``), ``ATO`` resumes, and nothing is lost
  or duplicated across it; a ``+++`` without the guard times is data;
* UDP in continuous mode: ETX ends a datagram both ways, and a host datagram longer than 5840
  octets is cut at 5840;
* ETX from the host half-closes (the peer sees FIN after the last byte, the UART shows
  ``SHUTDOWN``); the peer's FIN shows as ``SHUTDOWN`` right after the last data byte.

The test does its own stuffing and unstuffing (:func:`stuff`, :func:`unstuff`), independent of
``at_frontend.escaping``.  A slow UART is a token bucket put in front of
``Module.bytes_to_send`` on the module instance (the rig calls it on every round).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable

import pytest

from at_frontend.channel import Mode
from tests.helpers.at_rig import NetworkPeer, Rig
from wipstack.net.udp import UdpSocket
from wipstack.tcp.events import PeerClosed
from wipstack.tcp.socket import TcpServer, TcpSocket

UART = 1
DLE, ETX = 0x10, 0x03
SHUTDOWN = b"\r\nSHUTDOWN\r\n"
NO_CARRIER = b"\r\nNO CARRIER\r\n"
STEP = 0.01  # virtual seconds per round of the host loop
MAX_UDP = 5840

# --------------------------------------------------------------------------- byte rules (the test's own)


def stuff(data: bytes) -> bytes:
    """Continuous-mode stuffing: DLE before every DLE and ETX."""
    return re.sub(rb"([\x03\x10])", b"\x10\\1", data)


_PAIR = re.compile(rb"\x10([\x03\x10])")


def unstuff(stream: bytes) -> bytes:
    """Undo :func:`stuff`; a lone DLE or a bare ETX in ``stream`` fails the test."""
    stray = _PAIR.sub(b"", stream)
    assert DLE not in stray and ETX not in stray, "a bare ETX or a DLE escaping nothing in a TCP stream"
    return _PAIR.sub(rb"\1", stream)


def split_datagrams(stream: bytes) -> list[bytes]:
    """A continuous-mode UDP stream: stuffed datagrams, each ended by a bare ETX."""
    datagrams: list[bytes] = []
    current = bytearray()
    index = 0
    while index < len(stream):
        octet = stream[index]
        if octet == DLE:
            assert index + 1 < len(stream) and stream[index + 1] in (DLE, ETX), f"bad DLE at {index}"
            current.append(stream[index + 1])
            index += 2
            continue
        if octet == ETX:
            datagrams.append(bytes(current))
            current.clear()
        else:
            current.append(octet)
        index += 1
    assert not current, "bytes after the last ETX"
    return datagrams


def payload(size: int, seed: int) -> bytes:
    """Seeded random bytes, every value present, with extra DLE, ETX, '+', CR and LF."""
    rng = random.Random(seed)
    data = bytearray(rng.randbytes(size))
    for _ in range(size // 16):
        data[rng.randrange(size)] = rng.choice(b"\x03\x10\x03\x10++\r\n")
    if size >= 4096:
        data[:256] = bytes(range(256))
        rng.shuffle(data)
        assert len(set(data)) == 256
    return bytes(data)


def sha(data: bytes | bytearray) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- rig helpers


class Uart:
    """UART1 as the host reads it: ``rate`` octets per virtual second (None: as fast as the rig
    reads, 0: not at all).  Records the most the channel ever held for it."""

    def __init__(self, rig: Rig, rate: float | None = None, burst: int = 2048) -> None:
        self.rig = rig
        self.rate = rate
        self.burst = burst
        self.tokens = 0.0
        self.last = rig.now
        self.max_out = 0
        self.original = rig.module.bytes_to_send
        rig.module.bytes_to_send = self  # type: ignore[method-assign]  # the rig's _move calls it each round

    def __call__(self, uart: int, limit: int, now: float) -> bytes:
        if uart != UART:
            return self.original(uart, limit, now)
        self.max_out = max(self.max_out, len(self.rig.module.channels[UART].out))
        if self.rate is not None:
            self.tokens = min(self.tokens + (now - self.last) * self.rate, float(self.burst))
            self.last = now
            limit = min(limit, int(self.tokens))
            if limit <= 0:
                return b""
        data = self.original(uart, limit, now)
        if self.rate is not None:
            self.tokens -= len(data)
        self.max_out = max(self.max_out, len(self.rig.module.channels[UART].out) + len(data))
        return data


class Peer:
    """The peer's end of the TCP connection: optionally echoes, records everything."""

    def __init__(self, sock: TcpSocket, *, echo: bool, read_limit: int = 1 << 20, echo_buffer: int = 65536) -> None:
        self.sock = sock
        self.echo_buffer = echo_buffer  # an echo server stops reading while this much waits to go back
        self.echo = echo
        self.read_limit = read_limit
        self.received = bytearray()
        self.pending = bytearray()  # bytes to send that the peer's send buffer did not take yet
        self.fin_seen = False
        self.fin_at: int | None = None  # len(received) once the FIN was seen and what preceded it read

    def pump(self) -> None:
        while (event := self.sock.next_event()) is not None:
            if isinstance(event, PeerClosed):
                self.fin_seen = True
        room = self.read_limit if not self.echo else min(self.read_limit, self.echo_buffer - len(self.pending))
        data = self.sock.recv(room) if room > 0 else b""
        if data:
            assert self.fin_at is None, "data after the FIN"
            self.received += data
            if self.echo:
                self.pending += data
        if self.fin_seen and self.fin_at is None and self.sock.readable == 0:
            self.fin_at = len(self.received)
        if self.pending:
            del self.pending[: self.sock.send(self.pending)]


def tcp_session(rig: Rig, mode: int | None, *, port: int = 5000) -> tuple[NetworkPeer, TcpSocket]:
    """Bearer 4 up, a TCP client socket to the peer, the UART in data mode ``mode`` (None: AT mode)."""
    network = rig.start_network_bearer()
    server = TcpServer(network.stack.tcp, port)
    accepted: list[TcpSocket] = []
    server.on_accept = accepted.append
    assert rig.at(f'AT+WIPCREATE=2,1,"192.0.2.1",{port}') == b"\r\nOK\r\n\r\n+WIPREADY: 2,1\r\n"
    assert len(accepted) == 1
    if mode is None:
        return network, accepted[0]
    enter_data_mode(rig, f"AT+WIPDATA=2,1,{mode}")
    assert rig.module.channels[UART].mode is Mode.DATA
    return network, accepted[0]


def enter_data_mode(rig: Rig, line: str) -> None:
    """``line`` ended by CR LF in one read (a lone CR is pinned by its own tests below)."""
    rig.send(line.encode() + b"\r\n", UART)
    rig.advance(0.05)
    assert rig.take(UART) == b"\r\nCONNECT\r\n"


def module_socket(rig: Rig) -> TcpSocket:
    entry = rig.module.sockets.entries[(2, 1)]
    assert entry.tcp is not None
    return entry.tcp


class Host:
    """The host on UART1: types its bytes in random chunk sizes while the module wants input."""

    def __init__(self, rig: Rig, seed: int, max_chunk: int = 4096) -> None:
        self.rig = rig
        self.rng = random.Random(seed)
        self.max_chunk = max_chunk
        self.queue = bytearray()
        self.output = bytearray()
        self.stalled_rounds = 0
        self.max_readable = 0

    def write(self, data: bytes) -> None:
        self.queue += data

    def round(self, *pumps: Callable[[], None]) -> None:
        """One round: type a chunk if allowed, let the peers act, advance STEP, read the UART."""
        rig = self.rig
        if self.queue:
            if rig.module.wants_input(UART):
                sizes = [1, 2, 3, 7, 64, 511, 512, 1460, self.max_chunk, self.rng.randint(1, self.max_chunk)]
                size = self.rng.choice(sizes)
                chunk = bytes(self.queue[:size])
                del self.queue[:size]
                rig.send(chunk, UART)
            else:
                self.stalled_rounds += 1
        for pump in pumps:
            pump()
        rig.advance(STEP)
        self.output += rig.take(UART)
        entry = rig.module.sockets.entries.get((2, 1))
        if entry is not None and entry.tcp is not None:
            self.max_readable = max(self.max_readable, entry.tcp.readable)

    def run_until(self, done: Callable[[], bool], *pumps: Callable[[], None], limit: int = 100_000) -> None:
        for _ in range(limit):
            if done():
                return
            self.round(*pumps)
        raise AssertionError(f"no progress: queue {len(self.queue)}, output {len(self.output)}")

    def idle(self, seconds: float, *pumps: Callable[[], None]) -> None:
        """Type nothing for ``seconds`` (the peers go on)."""
        assert not self.queue
        for _ in range(round(seconds / STEP)):
            self.round(*pumps)


# --------------------------------------------------------------------------- TCP: 1 MB echo, both modes


@pytest.mark.parametrize("mode", [1, 2], ids=["continuous", "transparent"])
@pytest.mark.parametrize("rate", [None, 46_080.0], ids=["fast-uart", "460800-baud"])
def test_tcp_echo_of_1_mb_is_exact(mode: int, rate: float | None) -> None:
    rig = Rig(seed=11)
    _, sock = tcp_session(rig, mode)
    uart = Uart(rig, rate)
    data = payload(1 << 20, seed=mode)
    wire = stuff(data) if mode == 1 else data
    peer = Peer(sock, echo=True)
    host = Host(rig, seed=3 + mode, max_chunk=8192)
    host.write(wire)
    host.run_until(lambda: not host.queue and len(host.output) >= len(wire), peer.pump)
    host.idle(1.0, peer.pump)  # anything extra (a duplicate) would show up now

    assert sha(peer.received) == sha(data), "the peer did not get exactly the bytes the host sent"
    echoed = unstuff(bytes(host.output)) if mode == 1 else bytes(host.output)
    assert len(echoed) == len(data)
    assert sha(echoed) == sha(data), "the UART did not give back exactly the bytes that were echoed"
    assert uart.max_out <= rig.module.config.uart_buffer + 64
    assert host.max_readable <= module_socket(rig).receive_buffer
    assert rig.module.channels[UART].mode is Mode.DATA
    if rate is not None:
        assert host.stalled_rounds > 0, "the slow UART never held the host back: flow control untested"


# --------------------------------------------------------------------------- TCP: 2 MB into a slow UART


@pytest.mark.parametrize("mode", [1, 2], ids=["continuous", "transparent"])
def test_peer_flood_waits_in_tcp_while_the_uart_is_slow(mode: int) -> None:
    rig = Rig(seed=12)
    _, sock = tcp_session(rig, mode)
    uart = Uart(rig, rate=0.0)  # the host does not read the UART at first
    data = payload(2 << 20, seed=20 + mode)
    sent = 0
    host = Host(rig, seed=5)
    channel = rig.module.channels[UART]
    module_sock = module_socket(rig)
    uart_buffer = rig.module.config.uart_buffer

    def peer_sends() -> None:
        nonlocal sent
        if sent < len(data):
            sent += sock.send(data[sent : sent + 65536])

    host.idle(20.0, peer_sends)  # 20 s with the UART stopped: zero windows, probes
    assert host.output == b""
    assert len(channel.out) <= uart_buffer
    assert module_sock.readable <= module_sock.receive_buffer
    taken_by_module = sent - sock.unacknowledged
    assert taken_by_module <= uart_buffer + module_sock.receive_buffer, "the module buffered beyond its limits"
    assert len(data) - taken_by_module > 1 << 20, "the rest should wait at the peer"

    uart.rate = 92_160.0  # 921600 baud
    expected_length = len(stuff(data)) if mode == 1 else len(data)
    host.run_until(lambda: len(host.output) >= expected_length, peer_sends)
    host.idle(1.0, peer_sends)
    received = unstuff(bytes(host.output)) if mode == 1 else bytes(host.output)
    assert len(received) == len(data)
    assert sha(received) == sha(data)
    assert uart.max_out <= uart_buffer + 64
    assert host.max_readable <= module_sock.receive_buffer


# --------------------------------------------------------------------------- +++ and ATO

_ESCAPED = re.compile(rb"(?s)(.*)\r\nOK\r\n((?:\r\n\+WIPDATA: 2,1,\d+\r\n)*)")


def encoder(mode: int) -> tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]:
    return (stuff, unstuff) if mode == 1 else (bytes, bytes)


@pytest.mark.parametrize("mode", [1, 2], ids=["continuous", "transparent"])
def test_escape_and_ato_in_the_middle_of_a_stream_lose_nothing(mode: int) -> None:
    rig = Rig(seed=13)
    _, sock = tcp_session(rig, mode)
    Uart(rig, rate=46_080.0)
    first, second = payload(200_000, seed=30), payload(200_000, seed=31)
    extra = payload(30_000, seed=32)  # what the peer sends while the UART is in AT mode
    peer = Peer(sock, echo=True)
    host = Host(rig, seed=7)
    encode, decode = encoder(mode)

    # 1. stream, stop, guard time, +++, guard time: OK (echo data still arrives before it)
    host.write(encode(first))
    host.run_until(lambda: not host.queue and rig.module.wants_input(UART), peer.pump)
    host.idle(1.0, peer.pump)
    rig.send(b"+++", UART)
    host.idle(1.0, peer.pump)
    assert rig.module.channels[UART].mode is Mode.COMMAND
    matched = _ESCAPED.fullmatch(bytes(host.output))
    assert matched is not None, f"no OK at the end: {bytes(host.output[-200:])!r}"
    part_one = matched.group(1)
    host.output.clear()

    # 2. in AT mode: the peer goes on sending (it waits in the socket, +WIPDATA says so); AT works
    peer.pending += extra
    host.idle(0.5, peer.pump)
    rig.send(b"AT\r", UART)
    host.round(peer.pump)
    lines = re.findall(rb"\r\n([^\r\n]*)\r\n", bytes(host.output))
    assert b"".join(b"\r\n" + line + b"\r\n" for line in lines) == bytes(host.output)
    assert lines.count(b"OK") == 1 and lines[-1] == b"OK", lines
    assert all(re.fullmatch(rb"\+WIPDATA: 2,1,\d+", line) for line in lines if line != b"OK"), lines
    assert matched.group(2) or any(line.startswith(b"+WIPDATA") for line in lines)
    host.output.clear()

    # 3. ATO: CONNECT, the data that waited, then the rest of the stream
    rig.send(b"ATO\r\n", UART)
    host.round(peer.pump)
    assert host.output.startswith(b"\r\nCONNECT\r\n"), bytes(host.output[:100])
    del host.output[: len(b"\r\nCONNECT\r\n")]
    assert rig.module.channels[UART].mode is Mode.DATA
    host.write(encode(second))
    expected_length = len(encode(first + extra + second))
    host.run_until(lambda: not host.queue and len(part_one) + len(host.output) >= expected_length, peer.pump)
    host.idle(1.0, peer.pump)

    assert sha(peer.received) == sha(first + second), "host bytes lost, duplicated, or '+++' / 'ATO' leaked"
    echoed = decode(part_one) + decode(bytes(host.output))
    assert len(echoed) == len(first + extra + second)
    assert sha(echoed) == sha(first + extra + second), "UART bytes lost or duplicated across the escape"


@pytest.mark.parametrize("mode", [1, 2], ids=["continuous", "transparent"])
def test_plus_plus_plus_without_guard_times_is_data(mode: int) -> None:
    rig = Rig(seed=14)
    _, sock = tcp_session(rig, mode)
    peer = Peer(sock, echo=False)
    typed_bytes = bytearray()

    def typed(data: bytes, then_wait: float) -> None:
        rig.send(data, UART)
        typed_bytes.extend(data)
        for _ in range(round(then_wait / STEP)):
            peer.pump()
            rig.advance(STEP)

    typed(b"x", 0.1)
    typed(b"abc+++def", 0.1)  # inside a chunk
    typed(b"+++", 0.3)  # 0.1 s after data: no leading guard
    typed(b"tail", 1.5)
    typed(b"+++", 0.1)  # leading guard kept, but data follows within the trailing guard
    typed(b"after", 1.5)
    typed(b"++", 2.0)  # two '+' then silence: data once the inter-character time is over
    typed(b"+", 0.2)
    typed(b"+", 0.2)
    typed(b"+", 0.2)
    typed(b"+X", 0.2)  # a fourth '+' breaks the sequence
    typed(b"+++at", 1.5)  # 0.2 s after data, no leading guard: even '+++AT' is data
    typed(b"end", 0.5)
    peer.pump()
    assert rig.take(UART) == b"", "the module answered: it took data for an escape"
    assert rig.module.channels[UART].mode is Mode.DATA
    assert bytes(peer.received) == bytes(typed_bytes)


def test_plus_plus_plus_with_guard_times_escapes() -> None:
    """The positive case the test above must not be confused with."""
    rig = Rig(seed=14)
    _, sock = tcp_session(rig, 1)
    rig.send(b"data", UART)
    rig.advance(0.6)
    rig.send(b"+++", UART)
    rig.advance(0.6)
    assert rig.take(UART) == b"\r\nOK\r\n"
    assert sock.recv() == b"data"


# --------------------------------------------------------------------------- UDP, continuous mode


def udp_session(rig: Rig) -> tuple[NetworkPeer, UdpSocket]:
    network = rig.start_network_bearer()
    peer = network.stack.udp_socket()
    peer.bind(port=7000)
    assert rig.at('AT+WIPCREATE=1,1,6000,"192.0.2.1",7000') == b"\r\nOK\r\n\r\n+WIPREADY: 1,1\r\n"
    enter_data_mode(rig, "AT+WIPDATA=1,1,1")
    return network, peer


def drain(peer: UdpSocket, into: list[bytes]) -> None:
    while (received := peer.recvfrom()) is not None:
        data, source = received
        assert source == (bytes([192, 0, 2, 2]), 6000)
        into.append(data)


def test_udp_datagrams_both_ways_keep_their_boundaries() -> None:
    rig = Rig(seed=15)
    _, peer = udp_session(rig)
    rng = random.Random(40)
    sizes = [1, MAX_UDP, 2, MAX_UDP - 1] + [rng.randint(1, MAX_UDP) for _ in range(120)]
    outbound = [payload(size, seed=100 + i) for i, size in enumerate(sizes)]
    inbound = [payload(rng.randint(1, MAX_UDP), seed=500 + i) for i in range(120)] + [payload(MAX_UDP, 9)]

    # host -> peer: stuffed datagrams, each ended by ETX, typed in random chunks
    host = Host(rig, seed=41, max_chunk=3000)
    host.write(b"".join(stuff(d) + bytes([ETX]) for d in outbound))
    got: list[bytes] = []
    host.run_until(lambda: not host.queue, lambda: drain(peer, got))
    host.idle(0.2, lambda: drain(peer, got))
    assert [len(d) for d in got] == [len(d) for d in outbound]
    assert got == outbound
    assert host.output == b""

    # peer -> host: each datagram comes out stuffed and ended by ETX, a few per round
    host.output.clear()
    pending = list(inbound)

    def peer_sends() -> None:
        for _ in range(3):
            if pending:
                peer.sendto(pending.pop(0), "192.0.2.2", 6000)

    host.run_until(lambda: not pending, peer_sends)
    host.idle(0.5)
    assert split_datagrams(bytes(host.output)) == inbound


@pytest.mark.parametrize("size", [MAX_UDP + 1, 2 * MAX_UDP, 2 * MAX_UDP + 1, 3 * MAX_UDP + 777])
def test_udp_host_datagram_over_5840_is_cut_at_5840(size: int) -> None:
    rig = Rig(seed=16)
    _, peer = udp_session(rig)
    data = payload(size, seed=size)
    host = Host(rig, seed=size, max_chunk=1000)
    host.write(stuff(data) + bytes([ETX]) + stuff(b"next") + bytes([ETX]))
    got: list[bytes] = []
    host.run_until(lambda: not host.queue, lambda: drain(peer, got))
    host.idle(0.2, lambda: drain(peer, got))
    expected = [data[i : i + MAX_UDP] for i in range(0, size, MAX_UDP)] + [b"next"]
    assert [len(d) for d in got] == [len(d) for d in expected]
    assert got == expected


# --------------------------------------------------------------------------- ETX, FIN and SHUTDOWN


def test_host_etx_half_closes_after_the_last_byte_and_peer_fin_shows_shutdown() -> None:
    rig = Rig(seed=17)
    _, sock = tcp_session(rig, 1)
    Uart(rig, rate=46_080.0)
    before_fin = payload(300_000, seed=50)
    sock.set_buffers(receive=4096)
    peer = Peer(sock, echo=False, read_limit=400)  # a slow reader, small window: the module's backlog fills
    host = Host(rig, seed=51)
    host.write(stuff(before_fin) + bytes([ETX]))
    host.run_until(lambda: not host.queue and peer.fin_at is not None, peer.pump)
    host.idle(0.5, peer.pump)
    assert host.stalled_rounds > 0, "the backlog never filled: the ETX-after-backlog path is untested"
    assert peer.fin_at == len(before_fin), "the FIN did not come right after the last byte"
    assert sha(peer.received) == sha(before_fin)
    assert bytes(host.output) == SHUTDOWN, bytes(host.output[:200])
    assert rig.module.channels[UART].mode is Mode.DATA  # it stays in data mode until +++

    # half-closed: the peer can still send; then it closes its side too
    after = payload(120_000, seed=52)
    host.output.clear()
    rest = bytearray(after)
    closed = False

    def peer_sends_then_fin() -> None:
        nonlocal closed
        if rest:
            del rest[: sock.send(rest)]
        elif not closed:
            sock.shutdown()
            closed = True

    host.run_until(lambda: host.output.endswith(SHUTDOWN), peer_sends_then_fin)
    host.idle(1.0, peer_sends_then_fin)
    assert bytes(host.output) == stuff(after) + SHUTDOWN, "SHUTDOWN must come right after the last data byte"


def test_peer_fin_shows_shutdown_after_the_last_byte_through_a_slow_uart() -> None:
    rig = Rig(seed=21)
    _, sock = tcp_session(rig, 1)
    Uart(rig, rate=11_520.0)  # 115200 baud: most of the data is still in the socket at the FIN
    data = payload(60_000, seed=70)
    rest = bytearray(data)
    closed = False

    def peer_sends_then_fin() -> None:
        nonlocal closed
        if rest:
            del rest[: sock.send(rest)]
        elif not closed:
            sock.shutdown()
            closed = True

    host = Host(rig, seed=71)
    host.run_until(lambda: host.output.endswith(SHUTDOWN), peer_sends_then_fin)
    host.idle(1.0, peer_sends_then_fin)
    assert bytes(host.output) == stuff(data) + SHUTDOWN
    assert rig.module.channels[UART].mode is Mode.DATA


def test_peer_close_in_transparent_mode_ends_with_no_carrier_after_the_data() -> None:
    rig = Rig(seed=18)
    _, sock = tcp_session(rig, 2)
    Uart(rig, rate=46_080.0)
    data = payload(100_000, seed=60)
    rest = bytearray(data)
    closed = False

    def peer_sends_then_close() -> None:
        nonlocal closed
        if rest:
            del rest[: sock.send(rest)]
        elif not closed:
            sock.close()
            closed = True

    host = Host(rig, seed=61)
    host.run_until(lambda: NO_CARRIER in host.output, peer_sends_then_close)
    host.idle(0.5)
    output = bytes(host.output)
    assert output.startswith(data + NO_CARRIER), output[len(data) - 20 : len(data) + 40]
    assert output[len(data) + len(NO_CARRIER) :] in (b"", b"\r\n+WIPPEERCLOSE: 2,1\r\n")
    assert rig.module.channels[UART].mode is Mode.COMMAND
    assert rig.at("AT") == b"\r\nOK\r\n"


# --------------------------------------------------------------------------- the line that enters data mode


def enter_by(rig: Rig, how: str, mode: int, ending: bytes) -> None:
    """Enter data mode on socket 2,1 with ``AT+WIPDATA`` or, after an escape, ``ATO``; the line's
    ``ending`` is typed in the same read and no time passes after it (CONNECT is checked)."""
    if how == "ato":
        enter_data_mode(rig, f"AT+WIPDATA=2,1,{mode}")
        rig.advance(1.0)
        rig.send(b"+++", UART)
        rig.advance(1.0)
        assert rig.take(UART) == b"\r\nOK\r\n"
        rig.send(b"ATO" + ending, UART)
    else:
        rig.send(f"AT+WIPDATA=2,1,{mode}".encode() + ending, UART)
    assert rig.take(UART) == b"\r\nCONNECT\r\n"


@pytest.mark.parametrize("how", ["wipdata", "ato"])
@pytest.mark.parametrize("mode", [1, 2], ids=["continuous", "transparent"])
def test_lf_of_a_crlf_split_across_reads_is_not_data(how: str, mode: int) -> None:
    """The CR ends the line (CONNECT); its LF, right behind it, comes in the next read."""
    rig = Rig(seed=19)
    _, sock = tcp_session(rig, None)
    enter_by(rig, how, mode, b"\r")
    rig.send(b"\nhello", UART)  # same instant: the other half of the CR LF
    rig.advance(0.1)
    assert sock.recv() == b"hello"


@pytest.mark.parametrize("how", ["wipdata", "ato"])
@pytest.mark.parametrize("mode", [1, 2], ids=["continuous", "transparent"])
def test_crlf_entering_data_mode_in_one_read_is_not_data(how: str, mode: int) -> None:
    rig = Rig(seed=20)
    _, sock = tcp_session(rig, None)
    enter_by(rig, how, mode, b"\r\nhello")
    rig.advance(0.1)
    assert sock.recv() == b"hello"


@pytest.mark.parametrize("how", ["wipdata", "ato"])
@pytest.mark.parametrize("mode", [1, 2], ids=["continuous", "transparent"])
def test_data_that_starts_with_lf_after_a_cr_only_line_is_kept(how: str, mode: int) -> None:
    rig = Rig(seed=22)
    _, sock = tcp_session(rig, None)
    enter_by(rig, how, mode, b"\r")  # clients that end lines with CR alone are common (ref. §1)
    rig.advance(0.5)  # the host read CONNECT long ago: what it types now is data
    rig.send(b"\n\x00binary", UART)
    rig.advance(0.1)
    assert sock.recv() == b"\n\x00binary"
