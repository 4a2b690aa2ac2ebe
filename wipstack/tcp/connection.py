"""One TCP connection (RFC 9293 §3.10): the transmission control block and its state machine.

Sans-I/O: :meth:`TcpConnection.segment_arrives` takes a parsed segment and ``now``;
:meth:`take_segments` hands back what to send; :meth:`next_deadline` / :meth:`on_timer` run
the retransmission, delayed-ACK, persist, keep-alive and TIME-WAIT timers.  Sequence numbers
are absolute inside (see :mod:`wipstack.tcp.seq`); wire values are unwrapped once per segment.

Sending follows RFC 5681 (slow start, congestion avoidance), RFC 6582 (NewReno fast
recovery) or, with SACK, RFC 6675-style recovery driven by :class:`Scoreboard`; timers
follow RFC 6298.  Receiving reassembles out-of-order data with the bounded assembler and
reports it back with SACK blocks (RFC 2018).  RFC 7323 window scaling, timestamps and PAWS;
RFC 5961 challenge ACKs.

The class is built in three layers, one file each: the state (:mod:`wipstack.tcp.tcb`), the
sending side (:mod:`wipstack.tcp.output`), and here the arrival of segments, timers and the
user calls.
"""

from __future__ import annotations

from wipstack.accel import ASSEMBLER_FULL
from wipstack.errors import DropReason, LocalProtocolError
from wipstack.tcp.events import (
    Connected,
    DataAvailable,
    PeerClosed,
    SendSpace,
    TcpEvent,
)
from wipstack.tcp.output import TcpOutput
from wipstack.tcp.seq import MASK, unwrap
from wipstack.tcp.state import RECEIVING, SENDING, SYNCHRONIZED
from wipstack.tcp.tcb import _ACK, _FIN, _RST, _SYN, MAX_WINDOW_SCALE, Endpoint, Outgoing, S, window_scale_for
from wipstack.wire.tcp import TcpRepr

__all__ = ["Endpoint", "Outgoing", "TcpConnection", "window_scale_for"]


class TcpConnection(TcpOutput):
    """A TCB and its state machine (see the module docstring)."""

    # ------------------------------------------------------------------ user calls
    def open_active(self, now: float) -> None:
        """Active OPEN: send SYN (RFC 9293 §3.10.1)."""
        if self.state != S.CLOSED:
            raise LocalProtocolError(f"connect() in state {self.state}")
        self.state = S.SYN_SENT
        self._connect_deadline = now + self.config.connect_timeout
        self._send_syn(now, ack=False)

    def open_passive(self, syn: TcpRepr, now: float) -> None:
        """A listener's SYN (RFC 9293 §3.10.7.2): enter SYN-RECEIVED and answer SYN,ACK."""
        self.state = S.SYN_RECEIVED
        self._take_syn(syn)
        self._connect_deadline = now + self.config.connect_timeout
        self._send_syn(now, ack=True)

    def send(self, data: bytes | bytearray | memoryview) -> int:
        """Queue data; returns how many octets were accepted (0 when the buffer is full)."""
        if self.state not in SENDING and self.state not in (S.SYN_SENT, S.SYN_RECEIVED):
            raise LocalProtocolError(f"send() in state {self.state}")
        if self._fin_queued:
            raise LocalProtocolError("send() after shutdown")
        room = self.config.send_buffer - len(self._sbuf)
        n = min(room, len(data))
        if n == room:
            self._send_blocked = True  # full now: SendSpace follows when the peer acknowledges
        if n > 0:
            self._sbuf += memoryview(data)[:n]
        return n

    def recv(self, n: int = -1) -> bytes:
        """Take up to ``n`` in-order octets (all when negative); may open the window."""
        if n < 0 or n >= len(self._rbuf):
            data = bytes(self._rbuf)
            self._rbuf.clear()
        else:
            data = bytes(self._rbuf[:n])
            del self._rbuf[:n]
        grown = self._window() - (self._rcv_adv - self.rcv_nxt)
        if data and self.state in RECEIVING and grown >= min(self.config.receive_buffer // 2, 2 * self.mss):
            self._ack_now = True  # RFC 9293 §3.8.6.2.2: announce a window that grew usefully
        return data

    def shutdown(self, now: float | None = None) -> None:
        """CLOSE for the sending direction: FIN after the queued data (half-close)."""
        if self.state in (S.SYN_SENT, S.CLOSED):
            self._enter_closed()
            return
        if self._fin_queued:
            return
        self._fin_queued = True
        if self.state == S.ESTABLISHED:
            self.state = S.FIN_WAIT_1  # in SYN-RECEIVED the FIN waits for the handshake (RFC 9293 §3.10.4)
        elif self.state == S.CLOSE_WAIT:
            self.state = S.LAST_ACK

    def close(self, now: float | None = None) -> None:
        """CLOSE: FIN after the queued data; unread or later data resets (RFC 2525 §2.17)."""
        self._user_closed = True
        if self._rbuf:
            self.abort(now)
            return
        self.shutdown(now)

    def abort(self, now: float | None = None) -> None:
        """ABORT: send RST (in synchronized states) and forget everything (RFC 9293 §3.10.5)."""
        if self.state in (S.SYN_RECEIVED, S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT):
            self._emit(self.snd_max, 0, _RST, b"", window=0)  # RFC 9293 §3.10.5: not in CLOSING/LAST-ACK/TIME-WAIT
        self.fail("ECONNABORTED", "connection aborted")

    # ------------------------------------------------------------------ outputs
    def take_segments(self, now: float) -> list[Outgoing]:
        """Everything due to be sent now (data, retransmissions, ACKs, FIN)."""
        self._ts_now(now)
        if self.state in SYNCHRONIZED or self.state == S.SYN_RECEIVED:
            self._output(now)
        out, self._out = self._out, []
        return out

    def next_event(self) -> TcpEvent | None:
        """The next event, or None."""
        return self._events.popleft() if self._events else None

    def next_deadline(self) -> float | None:
        """The earliest timer."""
        deadlines = [
            d
            for d in (
                self._rto_at,
                self._dack_at,
                self._persist_at,
                self._keepalive_at,
                self._time_wait_at,
                self._pto_at,
                self._connect_deadline,
            )
            if d is not None
        ]
        if self._ack_now or (self._out and self.state != S.CLOSED):
            deadlines.append(0.0)
        return min(deadlines) if deadlines else None

    # ------------------------------------------------------------------ timers
    def on_timer(self, now: float) -> None:
        """Run the timers that are due."""
        self._ts_now(now)
        if self._time_wait_at is not None and now >= self._time_wait_at:
            self._time_wait_at = None
            self._enter_closed()
            return
        if self._connect_deadline is not None and now >= self._connect_deadline:
            self.fail("ETIMEDOUT", "connection timed out (no answer to SYN)")
            return
        if self._rto_at is not None and now >= self._rto_at:
            self._retransmit_timeout(now)
        if self._persist_at is not None and now >= self._persist_at:
            self._persist_probe(now)
        if self._pto_at is not None and now >= self._pto_at:
            self._tail_loss_probe(now)
        if self._keepalive_at is not None and now >= self._keepalive_at:
            self._keepalive_probe(now)
        if self._dack_at is not None and now >= self._dack_at:
            self._dack_at = None
            self._ack_now = True

    def _retransmit_timeout(self, now: float) -> None:
        """RFC 6298 §5.4-5.7: back off, collapse cwnd, go back to SND.UNA."""
        self._rto_at = None
        if self.state in SYNCHRONIZED and self.snd_wnd == 0:
            # the peer closed its window with data in flight: that is no loss (RFC 9293 §3.8.6.1):
            # probe the window instead, and resend from SND.UNA once it opens
            self.snd_nxt = self.snd_una
            self._persist_probe(now)
            return
        self._retries += 1
        self.timeouts += 1
        limit = self.config.syn_retries if self.state in (S.SYN_SENT, S.SYN_RECEIVED) else self.config.data_retries
        timed_out = self._retries > limit or (
            self.config.data_timeout > 0
            and self._first_unacked_at is not None
            and now - self._first_unacked_at > self.config.data_timeout
        )
        if timed_out:
            self.fail("ETIMEDOUT", "connection timed out (retransmissions unanswered)")
            return
        self.rtt.back_off()
        self._rtt_seq = None  # Karn: never time a retransmitted segment
        if self.state in (S.SYN_SENT, S.SYN_RECEIVED):
            self._send_syn(now, ack=self.state == S.SYN_RECEIVED)
            return
        flight = self.snd_max - self.snd_una
        self.ssthresh = max(flight // 2, 2 * self.mss)  # RFC 5681 (4)
        self.cwnd = self.mss  # loss window
        self._in_recovery = False
        self._dupacks = 0
        self._recover = self.snd_max
        self.snd_nxt = self.snd_una  # go back to the first unacknowledged octet; SACKed ones are skipped
        self._output(now)

    # ------------------------------------------------------------------ input
    def segment_arrives(self, seg: TcpRepr, payload: memoryview, now: float, segments: int = 1) -> None:
        """RFC 9293 §3.10.7: SEGMENT ARRIVES (states other than CLOSED and LISTEN).

        ``segments`` > 1 when the layer merged that many in-order segments into this one.
        """
        self._ts_now(now)
        self._last_rcv = now
        if self.config.keepalive and self.state in SYNCHRONIZED:
            self._keepalive_probes = 0
            self._keepalive_at = now + self.config.keepalive_idle
        if self.state == S.SYN_SENT:
            self._syn_sent_arrives(seg, now)
            return
        if self.state == S.CLOSED:
            return
        flags = seg.flags.value
        if self.state == S.TIME_WAIT and flags & _FIN and not flags & _RST:
            # the peer did not get our ACK of its FIN: ACK again and restart 2 MSL (RFC 9293 §3.10.7.4)
            self._ack_now = True
            self._time_wait_at = now + self.config.time_wait
            return
        seq = unwrap(seg.seq, self.rcv_nxt)
        seg_len = len(payload) + (1 if flags & _SYN else 0) + (1 if flags & _FIN else 0)
        ts = seg.options.timestamps if self.ts_enabled else None
        # RFC 7323 §5.3 PAWS: an old timestamp means an old duplicate
        if ts is not None and not flags & _RST and ((ts[0] - self._ts_recent) & MASK) >= (1 << 31):
            self.drops.count(DropReason.PAWS)
            self._ack_now = True
            return
        # first: is the sequence number acceptable? (RFC 9293 §3.10.7.4)
        if not self._acceptable(seq, seg_len):
            if flags & _RST:
                self.drops.count(DropReason.NOT_ALLOWED_IN_STATE)
                return
            if seq == self.rcv_nxt and self._rcv_adv <= self.rcv_nxt and flags & _ACK and not flags & _SYN:
                # RFC 9293 §3.10.7.4: with a zero window, valid ACKs are still taken (probes carry them)
                self._process_ack(seg, flags, now, 0)
            self.drops.count(DropReason.OUT_OF_WINDOW)
            self._ack_now = True  # <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
            return
        if ts is not None and seq <= self._last_ack_sent < seq + max(seg_len, 1):
            self._ts_recent = ts[0]  # RFC 7323 §4.3
        # second: RST (RFC 5961 §3.2: only the exact next sequence number resets)
        if flags & _RST:
            if seq == self.rcv_nxt:
                self._peer_reset()
            else:
                self._challenge_ack(now)
            return
        # fourth: SYN in a synchronized state (RFC 5961 §4.2): challenge ACK, drop
        if flags & _SYN:
            if self.state == S.SYN_RECEIVED:
                self.fail("ECONNRESET", "connection reset (SYN in SYN-RECEIVED)")  # RFC 9293 §3.10.7.4
                return
            self._challenge_ack(now)
            return
        # fifth: ACK
        if not flags & _ACK:
            self.drops.count(DropReason.NO_ACK)
            return
        if not self._process_ack(seg, flags, now, len(payload)):
            return
        # seventh: segment text
        if payload and self.state in RECEIVING:
            if self._user_closed:
                self._emit(self.snd_max, 0, _RST, b"", window=0)  # RFC 9293 §3.10.7.4 / RFC 2525 §2.17
                self.fail("ECONNABORTED", "data arrived after close")
                return
            self._receive_data(seq, payload, segments)
        # eighth: FIN
        if flags & _FIN:
            self._fin_rcvd_seq = seq + len(payload)
        if self._fin_rcvd_seq is not None and self._fin_rcvd_seq == self.rcv_nxt:
            self._receive_fin(now)

    def _acceptable(self, seq: int, seg_len: int) -> bool:
        """RFC 9293 §3.10.7.4, the four cases of segment acceptability."""
        wnd = max(self._rcv_adv - self.rcv_nxt, 0)
        if seg_len == 0:
            if wnd == 0:
                return seq == self.rcv_nxt
            return self.rcv_nxt <= seq < self.rcv_nxt + wnd
        if wnd == 0:
            return False
        return self.rcv_nxt <= seq < self.rcv_nxt + wnd or self.rcv_nxt <= seq + seg_len - 1 < self.rcv_nxt + wnd

    def _syn_sent_arrives(self, seg: TcpRepr, now: float) -> None:
        """RFC 9293 §3.10.7.3."""
        flags = seg.flags.value
        if flags & _ACK:
            ack = unwrap(seg.ack, self.snd_max)
            if not self.iss < ack <= self.snd_max:
                if not flags & _RST:
                    self._emit_raw(seg.ack, 0, _RST)  # <SEQ=SEG.ACK><CTL=RST>
                return
            if flags & _RST:
                self.fail("ECONNREFUSED", "connection refused")
                return
        elif flags & _RST:
            return
        if not flags & _SYN:
            return
        self._take_syn(seg)
        if flags & _ACK:
            self._process_syn_ack(seg, now)
            self.state = S.ESTABLISHED
            self._connect_deadline = None
            self._established(now)
            self._ack_now = True
            self._output(now)
        else:
            self.state = S.SYN_RECEIVED  # simultaneous open
            self.snd_nxt = self.iss
            self._send_syn(now, ack=True)

    def _take_syn(self, seg: TcpRepr) -> None:
        """Record the peer's ISN and options from its SYN."""
        self.irs = seg.seq
        self.rcv_nxt = seg.seq + 1
        options = seg.options
        if options.mss:
            self.peer_mss = max(64, options.mss)
        if self.config.window_scaling and options.window_scale is not None:
            self.wscale_enabled = True
            self._snd_wscale = min(options.window_scale, MAX_WINDOW_SCALE)  # RFC 7323 §2.3
        else:
            self._rcv_wscale = 0
        if self.config.timestamps and options.timestamps is not None:
            self.ts_enabled = True
            self._ts_recent = options.timestamps[0]
        self.sack_enabled = self.config.sack and options.sack_permitted
        self.snd_wnd = seg.window  # a SYN's window is never scaled (RFC 7323 §2.2)
        self.max_snd_wnd = self.snd_wnd
        self._snd_wl1 = seg.seq
        self._snd_wl2 = seg.ack

    def _process_syn_ack(self, seg: TcpRepr, now: float) -> None:
        ack = unwrap(seg.ack, self.snd_max)
        self.snd_una = ack
        self._sbuf_seq = self.iss + 1
        self.cwnd = self.config.initial_window * self.mss
        self._rto_at = None
        syn_retransmitted = self._retries > 0
        self._retries = 0
        self._sample_rtt(seg, ack, now)
        if syn_retransmitted and self.rtt.samples == 0:
            self.rtt.reset_after_syn_timeout()

    def _established(self, now: float) -> None:
        """The handshake completed."""
        self._events.append(Connected())
        if self.config.keepalive:
            self._keepalive_at = now + self.config.keepalive_idle  # RFC 1122 §4.2.3.6

    def _process_ack(self, seg: TcpRepr, flags: int, now: float, data_len: int = 0) -> bool:
        """RFC 9293 §3.10.7.4 fifth step with RFC 5961 §5; False when processing must stop."""
        ack = unwrap(seg.ack, self.snd_max)
        if self.state == S.SYN_RECEIVED:
            if not self.snd_una < ack <= self.snd_max:
                self._emit_raw(seg.ack, 0, _RST)
                return False
            self.state = S.ESTABLISHED
            self._connect_deadline = None
            self.snd_una = ack
            self._sbuf_seq = self.iss + 1
            self.cwnd = self.config.initial_window * self.mss
            syn_retransmitted = self._retries > 0
            self._retries = 0
            self._rto_at = None
            self._sample_rtt(seg, ack, now)
            if syn_retransmitted and self.rtt.samples == 0:
                self.rtt.reset_after_syn_timeout()
            self.snd_wnd = seg.window << self._snd_wscale
            self.max_snd_wnd = max(self.max_snd_wnd, self.snd_wnd)
            self._snd_wl1, self._snd_wl2 = unwrap(seg.seq, self.rcv_nxt), ack
            self._established(now)
            if self._fin_queued:
                self.state = S.FIN_WAIT_1
        if ack > self.snd_max:
            self._ack_now = True  # RFC 5961 §5.2: acks something not yet sent
            return False
        if ack < self.snd_una - self.max_snd_wnd:
            self._challenge_ack(now)  # RFC 5961 §5.2: too old to be a valid duplicate
            return False
        seq = unwrap(seg.seq, self.rcv_nxt)
        window = seg.window << self._snd_wscale
        sack_news = False
        if self.sack_enabled and seg.options.sack_blocks:
            sack_news = self._take_sack_blocks(seg.options.sack_blocks, ack)
            highest = self.scoreboard.highest
            if self._in_recovery and highest is not None and highest > self._rxt_snd_max and ack <= self.snd_una:
                # data sent after our last retransmission arrived while the hole did not: that
                # retransmission was lost too (RACK's reasoning, RFC 8985): resend the holes
                self._high_rxt = self.snd_una
                self._rxt_snd_max = self.snd_max
        if ack > self.snd_una:
            self._new_ack(ack, seg, now)
        elif ack == self.snd_una and self.snd_max > self.snd_una:
            # RFC 5681 §2: a duplicate ACK carries no data, no SYN/FIN, and leaves the window alone
            is_dup = not data_len and not flags & (_SYN | _FIN) and window == self.snd_wnd
            if is_dup or sack_news:
                self._duplicate_ack(now, sack_news)
        # window update (RFC 9293 §3.10.7.4: SND.WL1/WL2 guard against old segments)
        if self._snd_wl1 < seq or (self._snd_wl1 == seq and self._snd_wl2 <= ack):
            self.snd_wnd = window
            self.max_snd_wnd = max(self.max_snd_wnd, window)
            self._snd_wl1, self._snd_wl2 = seq, ack
        fin_acked = self._fin_queued and self.snd_una == self._fin_seq() + 1
        if self.state == S.FIN_WAIT_1 and fin_acked:
            self.state = S.FIN_WAIT_2
            if self._user_closed:
                # an orphan (closed, not half-closed) waits for the peer's FIN only so long (Linux's tcp_fin_timeout)
                self._time_wait_at = now + self.config.fin_wait_2_timeout
        elif self.state == S.CLOSING and fin_acked:
            self._enter_time_wait(now)
            return False
        elif self.state == S.LAST_ACK and fin_acked:
            self._enter_closed()
            return False
        elif self.state == S.TIME_WAIT:
            if flags & _FIN:
                self._ack_now = True
                self._time_wait_at = now + self.config.time_wait  # RFC 9293: restart the 2 MSL timeout
            return False
        return True

    def _new_ack(self, ack: int, seg: TcpRepr, now: float) -> None:
        acked = ack - self.snd_una
        self._sample_rtt(seg, ack, now)
        data_end = self._sbuf_seq + len(self._sbuf)
        drop = min(ack, data_end) - self._sbuf_seq
        if drop > 0:
            del self._sbuf[:drop]
            self._sbuf_seq += drop
        self.snd_una = ack
        if self.snd_nxt < ack:
            self.snd_nxt = ack
        self.scoreboard.advance(ack)
        self._retries = 0
        self._dupacks = 0
        self._first_unacked_at = now if self.snd_max > ack else None
        mss = self.mss
        if self._in_recovery:
            if ack >= self._recover:
                self._in_recovery = False  # RFC 6582 §3.2 step 3: full acknowledgment
                self.cwnd = min(self.ssthresh, max(self.snd_max - ack, mss) + mss)
            else:
                # partial acknowledgment: retransmit the next hole, deflate (RFC 6582 §3.2 step 4)
                self.cwnd = max(self.cwnd - acked + mss, mss)
                if not self.sack_enabled:
                    self._retransmit_first(now)
        elif self.cwnd < self.ssthresh:
            self.cwnd += min(acked, mss)  # slow start (RFC 5681 (2), with ABC L=1)
        else:
            self.cwnd += max(1, mss * mss // self.cwnd)  # congestion avoidance (RFC 5681 (3))
        self._rto_at = now + self.rtt.rto if self.snd_max > ack else None  # RFC 6298 §5.3
        self._arm_tail_loss_probe(now)
        if self._send_blocked and self.send_space >= self.config.send_buffer // 2:
            self._send_blocked = False
            self._events.append(SendSpace())

    def _duplicate_ack(self, now: float, sack_news: bool) -> None:
        self._dupacks += 1
        mss = self.mss
        if self._in_recovery:
            if not self.sack_enabled:
                self.cwnd += mss  # RFC 6582 §3.2 step 5: inflate
            return
        lost_by_sack = self.sack_enabled and self.scoreboard.sacked_bytes >= 3 * mss
        # RFC 5827 early retransmit: with fewer than 4 segments outstanding and nothing new to send,
        # 3 duplicates can never come; outstanding-1 of them are enough
        outstanding = -(-(self.snd_max - self.snd_una) // mss)
        threshold = 3
        if outstanding < 4 and not self._has_unsent():
            threshold = max(1, outstanding - 1)
        if (self._dupacks >= threshold or lost_by_sack) and self.snd_una >= self._recover:
            # RFC 5681 §3.2 / RFC 6582: fast retransmit and enter fast recovery
            flight = self.snd_max - self.snd_una
            self.ssthresh = max(flight // 2, 2 * mss)
            self.cwnd = self.ssthresh if self.sack_enabled else self.ssthresh + 3 * mss
            self._recover = self.snd_max
            self._in_recovery = True
            self._pto_at = None
            self.fast_recoveries += 1
            self._high_rxt = self.snd_una
            self._retransmit_first(now)

    def _take_sack_blocks(self, blocks: tuple[tuple[int, int], ...], ack: int) -> bool:
        news = False
        for left, right in blocks:
            start, end = unwrap(left, ack), unwrap(right, ack)
            if ack < start < end <= self.snd_max:  # RFC 2018: only blocks above the ACK mean anything
                news |= self.scoreboard.add(start, end)
        return news

    def _sample_rtt(self, seg: TcpRepr, ack: int, now: float) -> None:
        ts = seg.options.timestamps if self.ts_enabled else None
        if ts is not None and ts[1]:
            elapsed_ms = (self._ts_now(now) - ts[1]) & MASK
            if elapsed_ms < (1 << 31):
                self.rtt.sample(elapsed_ms / 1000.0)  # RFC 7323 §4 RTTM
            return
        if self._rtt_seq is not None and ack > self._rtt_seq:
            self.rtt.sample(now - self._rtt_time)
            self._rtt_seq = None

    def _receive_data(self, seq: int, payload: memoryview, segments: int = 1) -> None:
        """Seventh step: in-order data to the buffer, out-of-order data to the assembler.

        The assembler's offset 0 is always RCV.NXT: reading from it shifts the rest down.
        """
        start = seq
        data = payload
        if start < self.rcv_nxt:  # trim what we already have
            data = data[self.rcv_nxt - start :]
            start = self.rcv_nxt
        right = max(self._rcv_adv, self.rcv_nxt)
        if start + len(data) > right:
            data = data[: max(0, right - start)]  # beyond the window we offered
        if not data:
            self._ack_now = True
            return
        if start == self.rcv_nxt and self._ooo.is_empty():
            self._rbuf += data
            self.rcv_nxt += len(data)
            self._unacked_segments += segments
            if self._unacked_segments >= 2 or len(data) < self.mss // 2:
                self._ack_now = True  # RFC 5681 §4.2: at least every second full-sized segment
            elif self._dack_at is None:
                self._dack_at = self._last_rcv + self.config.delayed_ack
        else:
            stored = self._ooo.add(start - self.rcv_nxt, data)
            if stored == ASSEMBLER_FULL and start == self.rcv_nxt:
                self._ooo.clear()  # too many holes: keep the in-order data, the peer resends the rest (reneging)
                stored = self._ooo.add(0, data)
            if stored == ASSEMBLER_FULL:
                self.drops.count(DropReason.QUEUE_FULL)  # too many holes: the peer retransmits
            elif start > self.rcv_nxt:
                self._sack_history.insert(0, start)  # RFC 2018 §4: repeat the most recently reported blocks
                del self._sack_history[4:]
            ready = self._ooo.readable()
            if ready:
                self._rbuf += self._ooo.read(ready)
                self.rcv_nxt += ready
            self._ack_now = True  # RFC 5681 §4.2: out-of-order or hole-filling data is acked at once
            if not ready:
                return
        if not self._events or not isinstance(self._events[-1], DataAvailable):
            self._events.append(DataAvailable())

    def _receive_fin(self, now: float) -> None:
        """Eighth step (RFC 9293 §3.10.7.4)."""
        self._fin_rcvd_seq = None
        self.rcv_nxt += 1
        self._ooo.clear()  # nothing can follow a FIN
        self._ack_now = True
        self._events.append(PeerClosed())
        if self.state in (S.SYN_RECEIVED, S.ESTABLISHED):
            self.state = S.CLOSE_WAIT
        elif self.state == S.FIN_WAIT_1:
            if self.snd_una == self._fin_seq() + 1:
                self._enter_time_wait(now)
            else:
                self.state = S.CLOSING
        elif self.state == S.FIN_WAIT_2:
            self._enter_time_wait(now)

    def _peer_reset(self) -> None:
        if self.state == S.SYN_RECEIVED:
            self.fail("ECONNREFUSED", "connection refused")
        elif self.state in (S.CLOSING, S.LAST_ACK, S.TIME_WAIT):
            self._enter_closed()
        else:
            self.fail("ECONNRESET", "connection reset by peer")

    def _challenge_ack(self, now: float) -> None:
        """RFC 5961 §3.2/§4.2/§5.2, rate-limited (§7)."""
        second, count = self._challenge_window
        if int(now) != second:
            second, count = int(now), 0
        if count < self.config.challenge_ack_limit:
            count += 1
            self._ack_now = True
        self._challenge_window = (second, count)
