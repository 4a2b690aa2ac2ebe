"""TCP between two wipstack stacks over a simulated, impaired link, in virtual time.

Every test is deterministic (seeded stacks and fault injectors, a virtual clock that jumps to
the next deadline) and checks the data (SHA-256 both ways), the virtual time it took and the
final states (the client, which closes first, in TIME-WAIT; the server CLOSED).  Goodput
figures are printed (``pytest -s``) for the record.
"""

from __future__ import annotations

import hashlib

import pytest

from tests.helpers.netsim import (
    Pair,
    TcpPeer,
    TransferServer,
    TransferStats,
    collect,
    pair,
    run_transfer,
    start_transfer,
)
from wipstack.drivers.faults import FaultConfig, GilbertElliott
from wipstack.errors import DropReason
from wipstack.net import Stack
from wipstack.tcp.config import TcpConfig
from wipstack.tcp.events import Closed, ConnectionFailed
from wipstack.tcp.socket import TcpSocket
from wipstack.tcp.state import TcpState

TW, CLOSED = TcpState.TIME_WAIT, TcpState.CLOSED
RTT = 0.02  # two 10 ms one-way delays


def link(**impairments: object) -> FaultConfig:
    """One direction: 10 ms of delay plus ``impairments``."""
    return FaultConfig(**{"delay": RTT / 2, **impairments})  # type: ignore[arg-type]


def check(st: TransferStats, *, max_duration: float, name: str, strict_states: bool = True) -> None:
    """The transfer completed intact within ``max_duration`` virtual seconds, and closed properly."""
    print(f"\n{name}: {st.summary()}")
    assert st.completed, f"{name}: not finished: {st}"
    assert st.ok and not st.errors, f"{name}: {st.errors}"
    assert 0 < st.duration <= max_duration, st.summary()
    assert all(s == CLOSED for s in st.server_states), st.server_states
    if strict_states:
        assert all(s == TW for s in st.client_states), st.client_states
    else:
        # a segment still queued on a slow link can reach the server after it closed; its RST
        # then ends the client's TIME-WAIT early (RFC 9293 allows it; RFC 1337 hazard H1)
        assert all(s in (TW, CLOSED) for s in st.client_states), st.client_states


def transport_drops(stack: Stack) -> int:
    """Datagrams the IP or TCP layer refused as malformed (checksum, length, version...)."""
    malformed = {
        DropReason.BAD_CHECKSUM, DropReason.TRUNCATED, DropReason.BAD_LENGTH, DropReason.BAD_VERSION,
        DropReason.BAD_HEADER_LENGTH, DropReason.BAD_OPTION, DropReason.BAD_VALUE,
    }  # fmt: skip
    return sum(n for reason, n in (stack.drops + stack.tcp.drops).items() if reason in malformed)


# ------------------------------------------------------------------------------ clean link


def test_clean_link_1mb() -> None:
    p = pair(seed=1, up=link(), down=link())
    st = run_transfer(p, size=1_000_000)
    check(st, max_duration=0.5, name="clean 1 MB, 20 ms RTT")
    assert st.retransmissions == st.timeouts == st.fast_recoveries == 0
    assert st.goodput_bps > 20e6  # slow start reaches the 256 KiB window in a few RTTs
    assert st.link["ab"]["lost"] == st.link["ba"]["lost"] == 0


def test_clean_zero_delay_link_finishes_at_one_instant() -> None:
    p = pair(seed=2)
    st = run_transfer(p, size=1_000_000)
    assert st.completed and st.ok and st.duration == 0.0
    assert st.retransmissions == 0
    assert st.client_states == [TW] and st.server_states == [CLOSED]


def test_time_wait_expires_and_everything_is_forgotten() -> None:
    p = pair(seed=3, up=link(), down=link())
    st = run_transfer(p, size=50_000)
    assert st.ok and st.client_states == [TW]
    p.net.run_for(TcpConfig().time_wait + 1.0)
    assert p.client.tcp.connections == [] and p.server.tcp.connections == []
    assert p.net.next_deadline() is None  # nothing left to do: no spinning timer


# ------------------------------------------------------------------------------ impairments


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_five_percent_loss_both_ways(seed: int) -> None:
    p = pair(seed=seed, up=link(loss=0.05), down=link(loss=0.05))
    st = run_transfer(p, size=500_000, seed=seed)
    check(st, max_duration=30.0, name=f"5% loss both ways (seed {seed})")
    assert st.link["ab"]["lost"] > 0 and st.retransmissions >= st.link["ab"]["lost"] // 2


def test_burst_loss() -> None:
    burst = GilbertElliott(p_good_to_bad=0.01, p_bad_to_good=0.3)
    p = pair(seed=4, up=link(burst_loss=burst), down=link(burst_loss=burst))
    st = run_transfer(p, size=500_000)
    check(st, max_duration=30.0, name="Gilbert-Elliott bursts (1%->bad, mean burst 3.3)")
    assert st.link["ab"]["lost"] > 0


def test_duplication() -> None:
    p = pair(seed=5, up=link(duplicate=0.1), down=link(duplicate=0.1))
    st = run_transfer(p, size=500_000)
    check(st, max_duration=2.0, name="10% duplication both ways")
    assert st.link["ab"]["duplicated"] > 20 and st.link["ba"]["duplicated"] > 5
    assert st.timeouts == 0


def test_reordering_shallow() -> None:
    p = pair(seed=6, up=link(reorder=0.1), down=link(reorder=0.1))
    st = run_transfer(p, size=500_000)
    check(st, max_duration=2.0, name="10% reordered by one packet")
    assert st.link["ab"]["reordered"] > 20
    assert st.timeouts == 0 and st.retransmissions <= 3  # one displaced packet is not a loss


def test_reordering_deep() -> None:
    p = pair(seed=7, up=link(reorder=0.1, reorder_delay=0.005), down=link(reorder=0.1, reorder_delay=0.005))
    st = run_transfer(p, size=500_000)
    check(st, max_duration=5.0, name="10% reordered by 5 ms")
    assert st.link["ab"]["reordered"] > 20


def test_corruption_is_caught_by_checksums() -> None:
    p = pair(seed=8, up=link(corrupt=0.05), down=link(corrupt=0.05))
    st = run_transfer(p, size=500_000)
    p.net.run_for(1.0)  # let whatever is still on the wire arrive
    assert p.link.ab.in_flight == p.link.ba.in_flight == 0
    check(st, max_duration=10.0, name="5% one-bit corruption both ways")
    corrupted = st.link["ab"]["corrupted"] + st.link["ba"]["corrupted"]
    assert corrupted > 10
    # every damaged datagram was refused by the IPv4 header or the TCP checksum, none got through
    refused = transport_drops(p.client) + transport_drops(p.server)
    assert refused == p.link.ab.counters["corrupted"] + p.link.ba.counters["corrupted"]
    assert (p.client.drops + p.client.tcp.drops + p.server.drops + p.server.tcp.drops)[DropReason.BAD_CHECKSUM] > 0


def test_rate_limit_without_drops() -> None:
    rate = 1e6
    p = pair(seed=9, up=link(rate_bps=rate), down=link(rate_bps=rate))
    st = run_transfer(p, size=200_000)
    check(st, max_duration=4.0, name="1 Mbit/s, deep queue")
    wire = st.link["ab"]["bytes_delivered"] * 8
    assert st.duration >= wire / rate  # no faster than the wire
    assert st.goodput_bps >= 0.8 * rate
    assert st.link["ab"]["queue_drops"] == 0 and st.retransmissions == 0


def test_rate_limit_with_a_short_queue() -> None:
    rate = 1e6
    p = pair(seed=10, up=link(rate_bps=rate, queue_limit=20), down=link(rate_bps=rate, queue_limit=20))
    st = run_transfer(p, size=300_000)
    check(st, max_duration=8.0, name="1 Mbit/s, 20-packet queue (tail drops)")
    assert st.link["ab"]["queue_drops"] > 0
    assert st.duration >= 300_000 * 8 / rate
    assert st.goodput_bps >= 0.5 * rate


def test_small_mtu_with_loss() -> None:
    p = pair(seed=11, up=link(loss=0.03), down=link(loss=0.03), mtu=576)
    st = run_transfer(p, size=200_000)
    check(st, max_duration=30.0, name="MTU 576, 3% loss")
    assert p.link.ab.counters["bytes_delivered"] / p.link.ab.counters["delivered"] <= 576


ALL = {
    "loss": 0.02, "duplicate": 0.01, "reorder": 0.02, "corrupt": 0.01,
    "delay": 0.02, "jitter": 0.005, "rate_bps": 2e6, "queue_limit": 100,
}  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2])
def test_everything_combined(seed: int) -> None:
    p = pair(seed=seed, up=FaultConfig(**ALL), down=FaultConfig(**ALL))  # type: ignore[arg-type]
    st = run_transfer(p, size=500_000, seed=seed)
    check(st, max_duration=30.0, name=f"all impairments, 40 ms RTT, 2 Mbit/s (seed {seed})", strict_states=False)
    assert st.duration >= 500_000 * 8 / 2e6
    for key in ("lost", "duplicated", "reordered", "corrupted"):
        assert st.link["ab"][key] + st.link["ba"][key] > 0, key


def test_same_seed_same_run() -> None:
    def once() -> tuple[TransferStats, str]:
        p = pair(seed=5, up=FaultConfig(**ALL), down=FaultConfig(**ALL), record=True)  # type: ignore[arg-type]
        st = run_transfer(p, size=200_000)
        digest = hashlib.sha256(b"".join(f"{t:.9f}{d}".encode() + pk for t, d, pk in p.link.log)).hexdigest()
        return st, digest

    assert once() == once()


# ------------------------------------------------------------------------------ both ways, many


def test_bulk_both_directions_with_impairments() -> None:
    p = pair(seed=12, up=link(loss=0.02, rate_bps=5e6), down=link(loss=0.02, rate_bps=5e6))
    st = run_transfer(p, size=400_000, reverse_size=400_000)
    check(st, max_duration=30.0, name="400 KB each way at once, 2% loss, 5 Mbit/s")
    assert st.octets == 800_000


def test_bulk_both_directions_clean_has_no_spurious_retransmissions() -> None:
    p = pair(seed=13, up=link(), down=link())
    st = run_transfer(p, size=1_000_000, reverse_size=1_000_000)
    check(st, max_duration=2.0, name="1 MB each way at once, clean")
    assert st.retransmissions == 0 and st.fast_recoveries == 0, st.summary()


def test_many_connections_over_one_lossy_link() -> None:
    p = pair(
        seed=14,
        up=link(loss=0.03, rate_bps=10e6, queue_limit=200),
        down=link(loss=0.03, rate_bps=10e6, queue_limit=200),
    )
    st = run_transfer(p, size=20_000, reverse_size=2_000, connections=50)
    check(st, max_duration=60.0, name="50 connections, 20 KB + 2 KB each, 3% loss", strict_states=False)
    assert len(st.client_states) == len(st.server_states) == 50
    p.net.run_for(TcpConfig().time_wait + 1.0)
    assert p.client.tcp.connections == [] and p.server.tcp.connections == []


# ------------------------------------------------------------------------------ flow control


def paused_transfer(receive_buffer: int, *, lose_window_update: bool) -> tuple[Pair, TransferStats, float]:
    """The server reads nothing for 30 s; the transfer must resume afterwards."""
    resume = 30.0
    p = pair(seed=15, up=link(), down=link(), server_tcp=TcpConfig(receive_buffer=receive_buffer), record=True)
    server = TransferServer(p.net, p.server, 80, read_pause=resume)
    transfer = start_transfer(p.net, p.client, server, p.server_addr, size=300_000)
    if lose_window_update:
        p.net.run_until(lambda: False, resume - 0.001 - p.net.now)
        p.link.ba.config = link(loss=1.0)  # the server's window update when it reads again is lost
        p.net.run_until(lambda: False, 0.002)
        p.link.ba.config = link()
    completed = p.net.run_until(lambda: transfer.finished, 300.0)
    return p, collect([transfer], p.link, completed=completed), resume


def test_zero_window_persist_probes_back_off() -> None:
    mss = 1448
    p, st, resume = paused_transfer(45 * mss, lose_window_update=False)  # fills to exactly zero
    check(st, max_duration=resume + 1.0, name="receiver paused 30 s (zero window)")
    probes = [t for t, d, pk in p.link.log if d == 0 and 1.0 <= t < resume]
    assert all(len(pk) == 52 for t, d, pk in p.link.log if d == 0 and 1.0 <= t < resume)  # headers only
    assert 3 <= len(probes) <= 8, probes  # a handful in 29 s: it does not spin
    gaps = [b - a for a, b in zip(probes, probes[1:], strict=False)]
    assert all(later >= 1.9 * earlier for earlier, later in zip(gaps, gaps[1:], strict=False)), gaps
    replies = [t for t, d, _ in p.link.log if d == 1 and 1.0 <= t < resume]
    assert len(replies) == len(probes)


def test_zero_window_lost_update_recovered_by_a_probe() -> None:
    p, st, resume = paused_transfer(45 * 1448, lose_window_update=True)
    check(st, max_duration=resume + TcpConfig().persist_max + 1.0, name="zero window, window update lost")


def test_small_window_lost_update_recovered() -> None:
    p, st, resume = paused_transfer(64 * 1024, lose_window_update=True)
    check(st, max_duration=resume + TcpConfig().persist_max + 1.0, name="sub-MSS window, window update lost")


def test_small_window_without_loss_resumes() -> None:
    p, st, resume = paused_transfer(64 * 1024, lose_window_update=False)
    check(st, max_duration=resume + 1.0, name="receiver paused 30 s (sub-MSS window left)")
    # a sub-MSS window holds the data back like a zero one: a handful of backed-off probes, no spinning
    probes = [t for t, d, _ in p.link.log if d == 0 and 1.0 <= t < resume]
    assert len(probes) <= 8, probes
    gaps = [b - a for a, b in zip(probes, probes[1:], strict=False)]
    assert all(later >= 1.9 * earlier for earlier, later in zip(gaps, gaps[1:], strict=False)), gaps


# ------------------------------------------------------------------------------ opening and closing


def test_half_close_then_response() -> None:
    p = pair(seed=16, up=link(loss=0.02), down=link(loss=0.02))
    st = run_transfer(p, size=200_000, reverse_size=100_000, respond_after_close=True)
    check(st, max_duration=10.0, name="request, half-close, response")


def test_half_close_client_reads_in_fin_wait_2() -> None:
    p = pair(seed=17, up=link(), down=link())
    server = TransferServer(p.net, p.server, 80)
    transfer = start_transfer(p.net, p.client, server, p.server_addr, size=50_000, reverse_size=100_000,
                              respond_after_close=True)  # fmt: skip
    assert p.net.run_until(lambda: transfer.finished, 10.0)
    assert transfer.ok
    # every response octet came after our FIN was acknowledged (the last ones with the server's FIN)
    assert TcpState.FIN_WAIT_2 in transfer.client.read_states
    assert transfer.client.read_states <= {TcpState.FIN_WAIT_2, TW}
    assert transfer.server is not None and transfer.server.read_states <= {TcpState.ESTABLISHED, TcpState.CLOSE_WAIT}
    assert transfer.client.sock.state == TW and transfer.server.sock.state == CLOSED


@pytest.mark.parametrize("loss", [0.0, 0.3])
def test_connection_refused(loss: float) -> None:
    p = pair(seed=18, up=link(loss=loss), down=link(loss=loss))
    sock = TcpSocket.connect(p.client.tcp, p.server_addr, 9, p.net.now)
    peer = TcpPeer(p.net, sock, b"", expect_sha256=None)
    assert p.net.run_until(lambda: peer.error is not None, 60.0)
    assert peer.error is not None and peer.error.errno_name == "ECONNREFUSED"
    assert [type(e) for _, e in peer.events] == [ConnectionFailed, Closed]
    assert sock.state == CLOSED and p.client.tcp.connections == []
    assert p.server.tcp.resets_sent >= 1
    if loss == 0.0:
        assert p.net.now == pytest.approx(RTT)


def vanish_after(p: Pair, seconds: float) -> None:
    p.net.run_until(lambda: False, seconds)
    p.link.ab.config = FaultConfig(loss=1.0)
    p.link.ba.config = FaultConfig(loss=1.0)


def test_peer_vanishes_during_transfer() -> None:
    config = TcpConfig()
    p = pair(seed=19, up=link(), down=link())
    server = TransferServer(p.net, p.server, 80)
    transfer = start_transfer(p.net, p.client, server, p.server_addr, size=5_000_000)
    vanish_after(p, 0.3)
    assert transfer.server is not None and 0 < transfer.server.received < 5_000_000
    gone = p.net.now
    assert p.net.run_until(lambda: transfer.client.error is not None, 3600.0)
    waited = p.net.now - gone
    print(f"\npeer vanished mid-transfer: ETIMEDOUT after {waited:.1f} s virtual")
    assert transfer.client.error is not None and transfer.client.error.errno_name == "ETIMEDOUT"
    conn = transfer.client.sock.connection
    assert conn.timeouts == config.data_retries + 1
    # RTO doubling from at most rto_initial, capped at rto_max (RFC 6298 §5.5)
    bound = sum(min(config.rto_max, config.rto_initial * 2**k) for k in range(config.data_retries + 1))
    assert 60.0 < waited <= bound
    assert transfer.client.sock.state == CLOSED and p.client.tcp.connections == []


def test_peer_vanishes_with_a_data_timeout() -> None:
    p = pair(seed=20, up=link(), down=link(), tcp=TcpConfig(data_timeout=20.0))
    server = TransferServer(p.net, p.server, 80)
    transfer = start_transfer(p.net, p.client, server, p.server_addr, size=5_000_000)
    vanish_after(p, 0.3)
    gone = p.net.now
    assert p.net.run_until(lambda: transfer.client.error is not None, 600.0)
    assert transfer.client.error is not None and transfer.client.error.errno_name == "ETIMEDOUT"
    assert 20.0 <= p.net.now - gone <= 20.0 + TcpConfig().rto_max


def syn_into_the_void() -> tuple[TcpPeer, Pair]:
    p = pair(seed=21, up=FaultConfig(loss=1.0), down=FaultConfig(loss=1.0))
    sock = TcpSocket.connect(p.client.tcp, p.server_addr, 80, p.net.now)
    peer = TcpPeer(p.net, sock, b"", expect_sha256=None)
    p.net.run_until(lambda: peer.error is not None, 1000.0)
    return peer, p


def test_peer_vanished_before_the_handshake_times_out() -> None:
    peer, p = syn_into_the_void()
    assert peer.error is not None and peer.error.errno_name == "ETIMEDOUT"
    print(f"\nSYN unanswered: ETIMEDOUT after {p.net.now:.1f} s virtual")
    config = TcpConfig()
    syn_bound = sum(min(config.rto_max, config.rto_initial * 2**k) for k in range(config.syn_retries + 1))
    assert p.net.now <= syn_bound  # 1+2+4+...+32+60 = 123 s
    assert p.link.ab.counters["pushed"] == config.syn_retries + 1


def test_connect_timeout_is_honoured() -> None:
    peer, p = syn_into_the_void()
    assert peer.error is not None and peer.error.errno_name == "ETIMEDOUT"
    assert p.net.now <= TcpConfig().connect_timeout + 0.5
