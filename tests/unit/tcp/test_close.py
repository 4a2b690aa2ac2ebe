"""Closing (RFC 9293 §3.6, §3.10.4-5, §3.10.7.4 eighth step; RFC 2525 §2.17; RFC 1122 §4.2.2.13).

FIN in every state, half-close, TIME-WAIT, close() with unread data or data arriving after
it, ABORT.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.unit.tcp.helpers import (
    ACK,
    FIN,
    IRS,
    ISS,
    MSS,
    PSH,
    RCV_BUF,
    RST,
    T0,
    S,
    close_wait,
    closing,
    config,
    data,
    established,
    events,
    fin_wait_1,
    fin_wait_2,
    last_ack,
    out,
    recv,
    recv_nothing,
    rst,
    seg,
    send,
    syn_received,
    tick,
    time_wait,
)
from wipstack.errors import LocalProtocolError
from wipstack.tcp.connection import TcpConnection
from wipstack.tcp.events import Closed, Connected, ConnectionFailed, DataAvailable, PeerClosed

TW = 60.0
Factory = Callable[[], TcpConnection]  # the default time_wait (2 MSL)


def failures(conn: TcpConnection) -> list[str]:
    return [e.errno_name for e in events(conn) if isinstance(e, ConnectionFailed)]


# ---------------------------------------------------------------------------- FIN from the peer


def test_established_fin_enters_close_wait() -> None:
    conn = established()
    send(conn, seg(FIN | ACK, IRS + 1, ISS + 1))
    assert conn.state == S.CLOSE_WAIT
    assert recv(conn) == [(out(ACK, ISS + 1, IRS + 2, RCV_BUF - 1), b"")]  # acknowledged at once
    assert events(conn) == [PeerClosed()]
    assert conn.next_deadline() is None


def test_established_fin_with_data_delivers_then_closes() -> None:
    conn = established()
    send(conn, seg(FIN | ACK | PSH, IRS + 1, ISS + 1), b"bye")
    assert recv(conn) == [(out(ACK, ISS + 1, IRS + 5, RCV_BUF - 4), b"")]
    assert events(conn) == [DataAvailable(), PeerClosed()]
    assert conn.recv() == b"bye" and conn.state == S.CLOSE_WAIT


def test_established_out_of_order_fin_waits_for_the_hole() -> None:
    conn = established()
    send(conn, seg(FIN | ACK, IRS + 101, ISS + 1), data(50, 100))
    assert recv(conn) == [(out(ACK, ISS + 1, IRS + 1), b"")]
    assert conn.state == S.ESTABLISHED and events(conn) == []
    send(conn, seg(ACK, IRS + 1, ISS + 1), data(100))
    assert recv(conn) == [(out(ACK, ISS + 1, IRS + 152, RCV_BUF - 151), b"")]
    assert conn.state == S.CLOSE_WAIT
    assert events(conn) == [DataAvailable(), PeerClosed()]
    assert conn.recv() == data(100) + data(50, 100)


def test_syn_received_fin_ack_establishes_then_close_wait() -> None:
    conn = syn_received()
    send(conn, seg(FIN | ACK, IRS + 1, ISS + 1))
    assert conn.state == S.CLOSE_WAIT
    assert events(conn) == [Connected(), PeerClosed()]
    assert recv(conn) == [(out(ACK, ISS + 1, IRS + 2, RCV_BUF - 1), b"")]


def test_close_wait_retransmitted_fin_is_acked() -> None:
    conn = close_wait()
    send(conn, seg(FIN | ACK, IRS + 1, ISS + 1))
    assert recv(conn) == [(out(ACK, ISS + 1, IRS + 2, RCV_BUF - 1), b"")]
    assert conn.state == S.CLOSE_WAIT and events(conn) == []


def test_close_wait_send_still_works() -> None:
    conn = close_wait()
    assert conn.send(b"last words") == 10
    assert recv(conn) == [(out(ACK | PSH, ISS + 1, IRS + 2, RCV_BUF - 1), b"last words")]


def test_close_wait_segment_text_is_ignored() -> None:
    conn = close_wait()
    send(conn, seg(ACK | PSH, IRS + 2, ISS + 1), b"after FIN")
    assert conn.readable == 0 and events(conn) == []


def test_close_wait_close_sends_fin() -> None:
    conn = close_wait()
    conn.close(T0)
    assert conn.state == S.LAST_ACK
    assert recv(conn) == [(out(FIN | ACK, ISS + 1, IRS + 2, RCV_BUF - 1), b"")]


def test_close_wait_close_sends_queued_data_then_fin() -> None:
    conn = close_wait()
    conn.send(b"tail")
    conn.close(T0)
    assert recv(conn) == [(out(FIN | ACK | PSH, ISS + 1, IRS + 2, RCV_BUF - 1), b"tail")]
    send(conn, seg(ACK, IRS + 2, ISS + 6))
    assert conn.state == S.CLOSED and events(conn) == [Closed()]


# ---------------------------------------------------------------------------- our FIN


def test_established_close_sends_fin_after_queued_data() -> None:
    conn = established()
    conn.nagle = False
    payload = data(MSS + 10)
    conn.send(payload)
    conn.close(T0)
    assert recv(conn) == [
        (out(ACK, ISS + 1), payload[:MSS]),
        (out(FIN | ACK | PSH, ISS + 1 + MSS), payload[MSS:]),
    ]
    assert conn.state == S.FIN_WAIT_1
    with pytest.raises(LocalProtocolError):
        conn.send(b"no")
    assert conn.send_space == 0


def test_established_close_twice_sends_one_fin() -> None:
    conn = fin_wait_1()
    conn.close(T0)
    conn.shutdown(T0)
    recv_nothing(conn)


def test_fin_wait_1_ack_of_data_only_stays() -> None:
    conn = established()
    conn.send(b"data")
    conn.close(T0)
    recv(conn)
    send(conn, seg(ACK, IRS + 1, ISS + 5))
    assert conn.state == S.FIN_WAIT_1
    send(conn, seg(ACK, IRS + 1, ISS + 6))
    assert conn.state == S.FIN_WAIT_2
    # closed (not half-closed): the orphan waits for the peer's FIN only fin_wait_2_timeout
    assert conn.next_deadline() == T0 + conn.config.fin_wait_2_timeout


def test_fin_wait_1_ack_of_fin_enters_fin_wait_2() -> None:
    conn = fin_wait_1()
    send(conn, seg(ACK, IRS + 1, ISS + 2))
    assert conn.state == S.FIN_WAIT_2
    recv_nothing(conn)
    # after close() the orphan waits for the peer's FIN only fin_wait_2_timeout (then CLOSED)
    assert events(conn) == [] and conn.next_deadline() == T0 + conn.config.fin_wait_2_timeout
    tick(conn, T0 + conn.config.fin_wait_2_timeout)
    assert conn.state == S.CLOSED


def test_fin_wait_1_fin_enters_closing() -> None:
    conn = fin_wait_1()
    send(conn, seg(FIN | ACK, IRS + 1, ISS + 1))
    assert conn.state == S.CLOSING
    assert recv(conn) == [(out(ACK, ISS + 2, IRS + 2, RCV_BUF - 1), b"")]
    assert events(conn) == [PeerClosed()]


def test_fin_wait_1_fin_acking_ours_enters_time_wait() -> None:
    conn = fin_wait_1()
    send(conn, seg(FIN | ACK, IRS + 1, ISS + 2))
    assert conn.state == S.TIME_WAIT
    assert recv(conn) == [(out(ACK, ISS + 2, IRS + 2, RCV_BUF - 1), b"")]
    assert events(conn) == [PeerClosed()]
    assert conn.next_deadline() == T0 + TW


def test_fin_wait_1_fin_is_retransmitted() -> None:
    conn = fin_wait_1()
    deadline = conn.next_deadline()
    assert deadline is not None
    assert tick(conn, deadline) == [(out(FIN | ACK, ISS + 1), b"")]


def test_fin_wait_1_retransmitted_fin_gives_up_after_data_retries() -> None:
    conn = fin_wait_1(config(data_retries=1))
    for _ in range(2):
        deadline = conn.next_deadline()
        assert deadline is not None
        tick(conn, deadline)
    assert conn.state == S.CLOSED and failures(conn) == ["ETIMEDOUT"]


def test_fin_wait_2_fin_enters_time_wait() -> None:
    conn = fin_wait_2()
    send(conn, seg(FIN | ACK, IRS + 1, ISS + 2), now=T0 + 5)
    assert conn.state == S.TIME_WAIT
    assert recv(conn, T0 + 5) == [(out(ACK, ISS + 2, IRS + 2, RCV_BUF - 1), b"")]
    assert events(conn) == [PeerClosed()]
    assert conn.next_deadline() == T0 + 5 + TW


def test_closing_ack_of_fin_enters_time_wait() -> None:
    conn = closing()
    send(conn, seg(ACK, IRS + 2, ISS + 2), now=T0 + 1)
    assert conn.state == S.TIME_WAIT
    recv(conn, T0 + 1)  # (wipstack ACKs the ACK here; RFC 9293 asks for nothing, the peer ignores it)
    assert conn.next_deadline() == T0 + 1 + TW
    assert events(conn) == []


def test_closing_retransmitted_fin_is_acked() -> None:
    conn = closing()
    send(conn, seg(FIN | ACK, IRS + 1, ISS + 1))
    assert recv(conn) == [(out(ACK, ISS + 2, IRS + 2, RCV_BUF - 1), b"")]
    assert conn.state == S.CLOSING


def test_closing_fin_is_retransmitted() -> None:
    conn = closing()
    deadline = conn.next_deadline()
    assert deadline is not None
    assert tick(conn, deadline) == [(out(FIN | ACK, ISS + 1, IRS + 2, RCV_BUF - 1), b"")]


def test_last_ack_ack_of_fin_closes() -> None:
    conn = last_ack()
    send(conn, seg(ACK, IRS + 2, ISS + 2))
    assert conn.state == S.CLOSED and conn.is_closed
    assert events(conn) == [Closed()]  # an orderly release: no error
    assert conn.error is None
    recv_nothing(conn)
    assert conn.next_deadline() is None


def test_last_ack_retransmitted_fin_is_acked() -> None:
    conn = last_ack()
    send(conn, seg(FIN | ACK, IRS + 1, ISS + 1))
    assert recv(conn) == [(out(ACK, ISS + 2, IRS + 2, RCV_BUF - 1), b"")]
    assert conn.state == S.LAST_ACK


def test_last_ack_fin_is_retransmitted() -> None:
    conn = last_ack()
    deadline = conn.next_deadline()
    assert deadline is not None
    assert tick(conn, deadline) == [(out(FIN | ACK, ISS + 1, IRS + 2, RCV_BUF - 1), b"")]


def test_last_ack_ack_not_covering_fin_stays() -> None:
    conn = last_ack()
    send(conn, seg(ACK, IRS + 2, ISS + 1))
    assert conn.state == S.LAST_ACK


# ---------------------------------------------------------------------------- TIME-WAIT


def test_time_wait_expires_after_2msl() -> None:
    conn = time_wait()
    assert conn.next_deadline() == T0 + TW
    assert tick(conn, T0 + TW - 0.001) == []
    assert conn.state == S.TIME_WAIT
    assert tick(conn, T0 + TW) == []
    assert conn.state == S.CLOSED and events(conn) == [Closed()]
    assert conn.next_deadline() is None


def test_time_wait_length_is_configurable() -> None:
    conn = time_wait(config(time_wait=2.0))
    assert conn.next_deadline() == T0 + 2.0


def test_time_wait_retransmitted_fin_restarts_2msl() -> None:
    conn = time_wait()
    send(conn, seg(FIN | ACK, IRS + 1, ISS + 2), now=T0 + 10)
    assert recv(conn, T0 + 10) == [(out(ACK, ISS + 2, IRS + 2, RCV_BUF - 1), b"")]
    assert conn.next_deadline() == T0 + 10 + TW


def test_time_wait_retransmitted_fin_is_acked() -> None:
    conn = time_wait()
    send(conn, seg(FIN | ACK, IRS + 1, ISS + 2), now=T0 + 10)
    assert recv(conn, T0 + 10) == [(out(ACK, ISS + 2, IRS + 2, RCV_BUF - 1), b"")]
    assert conn.state == S.TIME_WAIT


def test_time_wait_data_is_ignored() -> None:
    conn = time_wait()
    send(conn, seg(ACK | PSH, IRS + 2, ISS + 2), b"zombie")
    assert conn.readable == 0 and conn.state == S.TIME_WAIT


def test_time_wait_rst_closes_quietly() -> None:
    conn = time_wait()
    send(conn, seg(RST, IRS + 2, 0))
    assert conn.state == S.CLOSED
    assert events(conn) == [Closed()]


# ---------------------------------------------------------------------------- half-close


def test_established_shutdown_then_keep_receiving() -> None:
    conn = established()
    conn.shutdown(T0)
    assert recv(conn) == [(out(FIN | ACK, ISS + 1), b"")]
    send(conn, seg(ACK, IRS + 1, ISS + 2))
    assert conn.state == S.FIN_WAIT_2
    payload = data(2 * MSS)
    send(conn, seg(ACK, IRS + 1, ISS + 2), payload[:MSS])
    send(conn, seg(ACK, IRS + 1 + MSS, ISS + 2), payload[MSS:])
    assert recv(conn) == [(out(ACK, ISS + 2, IRS + 1 + 2 * MSS, RCV_BUF - 2 * MSS), b"")]
    assert events(conn) == [DataAvailable()]
    assert conn.recv() == payload
    send(conn, seg(FIN | ACK, IRS + 1 + 2 * MSS, ISS + 2))
    assert conn.state == S.TIME_WAIT and events(conn) == [PeerClosed()]


def test_fin_wait_1_data_after_shutdown_is_received() -> None:
    conn = established()
    conn.shutdown(T0)
    recv(conn)
    send(conn, seg(ACK | PSH, IRS + 1, ISS + 1), b"still talking")
    assert conn.state == S.FIN_WAIT_1 and conn.recv() == b"still talking"


# ---------------------------------------------------------------------------- close() and abort()


def test_established_close_with_unread_data_resets() -> None:
    conn = established()
    send(conn, seg(ACK | PSH, IRS + 1, ISS + 1), b"unread")
    recv(conn)
    events(conn)
    conn.close(T0)
    assert recv(conn) == [(rst(ISS + 1), b"")]  # RFC 2525 §2.17: the peer must learn data was lost
    assert conn.state == S.CLOSED
    assert failures(conn) == ["ECONNABORTED"]


def test_close_wait_close_with_unread_data_resets() -> None:
    conn = established()
    send(conn, seg(FIN | ACK | PSH, IRS + 1, ISS + 1), b"unread")
    recv(conn)
    conn.close(T0)
    assert recv(conn) == [(rst(ISS + 1), b"")]
    assert conn.state == S.CLOSED


def test_established_close_after_reading_everything_sends_fin() -> None:
    conn = established()
    send(conn, seg(ACK | PSH, IRS + 1, ISS + 1), b"read")
    recv(conn)
    assert conn.recv() == b"read"
    conn.close(T0)
    assert recv(conn) == [(out(FIN | ACK, ISS + 1, IRS + 5, RCV_BUF - 4), b"")]


@pytest.mark.parametrize("factory", [fin_wait_1, fin_wait_2])
def test_fin_wait_data_after_close_resets(factory: Factory) -> None:
    conn = factory()
    send(conn, seg(ACK | PSH, IRS + 1, ISS + 2), b"too late")
    assert recv(conn) == [(rst(ISS + 2), b"")]
    assert conn.state == S.CLOSED
    assert failures(conn) == ["ECONNABORTED"]


def test_established_abort_sends_rst() -> None:
    conn = established()
    conn.send(data(100))
    recv(conn)
    conn.abort(T0)
    assert recv(conn) == [(rst(ISS + 101), b"")]  # <SEQ=SND.NXT><CTL=RST>
    assert conn.state == S.CLOSED
    evts = events(conn)
    assert [type(e) for e in evts] == [ConnectionFailed, Closed]
    assert conn.next_deadline() is None and conn.unsent == 0


@pytest.mark.parametrize("factory", [fin_wait_1, fin_wait_2, close_wait])
def test_closing_states_abort_sends_rst(factory: Factory) -> None:
    conn = factory()
    seq = conn.snd_nxt
    conn.abort(T0)
    assert recv(conn) == [(rst(seq), b"")]


@pytest.mark.parametrize("factory", [closing, last_ack, time_wait])
def test_late_states_abort_sends_nothing(factory: Factory) -> None:
    conn = factory()
    conn.abort(T0)
    recv_nothing(conn)
    assert conn.state == S.CLOSED


def test_closed_calls_after_the_end() -> None:
    conn = last_ack()
    send(conn, seg(ACK, IRS + 2, ISS + 2))
    events(conn)
    conn.close(T0)
    conn.abort(T0)
    assert conn.recv() == b""
    recv_nothing(conn)
    assert events(conn) == []
    with pytest.raises(LocalProtocolError):
        conn.send(b"x")


def test_closed_has_no_deadline_even_with_an_ack_pending() -> None:
    conn = established()
    send(conn, seg(ACK | PSH, IRS - 100, ISS + 1), b"old")  # out of window: an ACK is due
    send(conn, seg(RST, IRS + 1, 0))  # and the reset comes before the flush
    recv(conn)
    assert conn.state == S.CLOSED
    assert conn.next_deadline() is None
