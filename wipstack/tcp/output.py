"""The sending side of a TCP connection: segments, windows, retransmission, probes (RFC 9293 §3.8).

RFC 5681 slow start and congestion avoidance, RFC 6582 NewReno and RFC 6675-style SACK
recovery, RFC 3042 limited transmit, RFC 8985 tail loss probes, zero-window probing (persist)
and keep-alive probes, SWS avoidance on both sides, and the emission of every segment with
its window, timestamps and SACK blocks.
"""

from __future__ import annotations

from wipstack.tcp.seq import MASK
from wipstack.tcp.state import SYNCHRONIZED
from wipstack.tcp.tcb import _ACK, _FIN, _FLAG_OBJECTS, _NO_OPTIONS, _PSH, _RST, _SYN, S, Tcb
from wipstack.wire.tcp import TcpOptions, TcpRepr


class TcpOutput(Tcb):
    """Everything that puts segments on the wire."""

    def _arm_tail_loss_probe(self, now: float) -> None:
        """RFC 8985 §7.2: PTO = 2 SRTT (+ a delayed ACK when one segment is out), before the RTO."""
        srtt = self.rtt.srtt
        if not self.config.tail_loss_probe or not self.sack_enabled or srtt is None or self._in_recovery:
            self._pto_at = None
            return
        flight = self.snd_max - self.snd_una
        if flight <= 0:
            self._pto_at = None
            return
        pto = 2 * srtt + (0.2 if flight <= self.mss else 0.0)
        when = now + max(pto, 0.01)
        self._pto_at = when if self._rto_at is None or when < self._rto_at else None

    def _tail_loss_probe(self, now: float) -> None:
        """RFC 8985 §7.3: send one new segment if allowed, else resend the last one, to draw SACKs."""
        self._pto_at = None
        if self._in_recovery or self.snd_max <= self.snd_una or self.state not in SYNCHRONIZED:
            return
        self.tail_loss_probes += 1
        data_end = self._sbuf_seq + len(self._sbuf)
        window_end = self.snd_una + self.snd_wnd
        if self.snd_nxt == self.snd_max and self.snd_max < data_end and window_end > self.snd_max:
            end = min(self.snd_max + self.mss, data_end, window_end)
            self._send_segment(self.snd_max, end, now, fin=False, retransmission=False)
        else:
            end = min(self.snd_max, data_end)
            start = max(self.snd_una, end - self.mss)
            fin = self._fin_queued and self.snd_max == data_end + 1
            if end > start or fin:
                self._send_segment(start, end, now, fin=fin, retransmission=True)
        self._rto_at = now + self.rtt.rto  # RFC 8985 §7.3: the RTO follows the probe

    def _persist_probe(self, now: float) -> None:
        """Zero-window probe: an out-of-window ACK that makes the peer tell its window (never spins)."""
        self._persist_at = None
        if self.snd_max > self.snd_una and self.snd_wnd > 0:
            return  # data in flight into an open window: the retransmission timer is in charge
        if not self._has_unsent() and self.snd_max == self.snd_una:
            return  # nothing is held back
        self._emit(self.snd_una - 1, self.rcv_nxt, _ACK, b"")
        self._persist_backoff += 1
        interval = min(self.config.persist_max, self.rtt.rto * (1 << min(self._persist_backoff, 16)))
        self._persist_at = now + interval

    def _keepalive_probe(self, now: float) -> None:
        self._keepalive_at = None
        if not self.config.keepalive or self.state not in SYNCHRONIZED:
            return
        if self._keepalive_probes >= self.config.keepalive_count:
            self.fail("ETIMEDOUT", "connection timed out (keep-alive unanswered)")
            return
        self._keepalive_probes += 1
        self._emit(self.snd_una - 1, self.rcv_nxt, _ACK, b"")  # RFC 1122 §4.2.3.6
        self._keepalive_at = now + self.config.keepalive_interval

    # ------------------------------------------------------------------ output
    def _output(self, now: float) -> None:
        """Send what the windows allow, then any ACK that is due."""
        sent_any = False
        if self.state in SYNCHRONIZED and self.state != S.TIME_WAIT:
            sent_any = self._send_data(now)
        if self._ack_now and not sent_any:
            self._emit(self.snd_nxt if self.snd_nxt <= self.snd_max else self.snd_max, self.rcv_nxt, _ACK, b"")
        if self.state in SYNCHRONIZED and self._rto_at is None and self._persist_at is None:
            # never without a timer while something waits: outstanding data has the retransmission
            # timer; data the peer's window (zero, or too small for SWS avoidance) holds back has
            # the persist timer, whose probes recover a lost window update (RFC 9293 §3.8.6.1)
            if self.snd_max > self.snd_una:
                self._rto_at = now + self.rtt.rto
            elif self._has_unsent():
                self._persist_at = now + self.rtt.rto

    def _has_unsent(self) -> bool:
        return self.snd_nxt < self._sbuf_seq + len(self._sbuf) or (self._fin_queued and self.snd_nxt <= self._fin_seq())

    def _fin_seq(self) -> int:
        return self._sbuf_seq + len(self._sbuf)

    def _send_data(self, now: float) -> bool:
        sent_any = False
        mss = self.mss
        data_end = self._sbuf_seq + len(self._sbuf)
        budget = 256  # segments per call, so a huge window cannot stall the loop
        while budget > 0:
            budget -= 1
            # SACK recovery: holes first (RFC 6675 §5 NextSeg rule 1)
            if self._in_recovery and self.sack_enabled:
                highest = self.scoreboard.highest
                if highest is not None and self._pipe() + mss <= self.cwnd:
                    hole = self.scoreboard.next_unsacked(max(self._high_rxt, self.snd_una), highest)
                    if hole is not None:
                        start, end = hole
                        end = min(end, start + mss)
                        self._send_segment(start, end, now, retransmission=True)
                        self._high_rxt = end
                        self._rxt_snd_max = self.snd_max
                        sent_any = True
                        continue
            seq = self.snd_nxt
            if self.snd_una < seq < self.snd_max:
                # after an RTO: skip what the peer holds, but never the left edge (RFC 2018 §8: it
                # may have reneged on a block that starts at SND.UNA)
                sacked_end = self.scoreboard.is_sacked(seq)
                if sacked_end is not None:
                    self.snd_nxt = min(sacked_end, self.snd_max)
                    continue
            flight = self._pipe() if self._in_recovery and self.sack_enabled else self._flight()
            window_end = self.snd_una + self.snd_wnd
            cwnd = self.cwnd
            if not self._in_recovery and 0 < self._dupacks < 3 and seq >= self.snd_max:
                cwnd += self._dupacks * mss  # RFC 3042 limited transmit: new data keeps the dupacks coming
            room = min(window_end - seq, cwnd - flight)
            fin_pending = self._fin_queued and seq <= data_end
            available = data_end - seq
            if available <= 0:
                # a FIN alone needs one octet of window (the peer must accept it) and room in cwnd
                if fin_pending and seq == data_end and window_end > seq and flight < self.cwnd:
                    self._send_segment(seq, seq, now, fin=True, retransmission=seq < self.snd_max)
                    sent_any = True
                break
            length = min(mss, available, room)
            if seq < self.snd_max:
                length = min(length, self.snd_max - seq)  # a retransmission never grows
            if length <= 0:
                break
            if length < mss and seq >= self.snd_max and not self._may_send_small(length, available, flight):
                break
            end = seq + length
            self._send_segment(seq, end, now, fin=fin_pending and end == data_end, retransmission=seq < self.snd_max)
            sent_any = True
        return sent_any

    def _may_send_small(self, length: int, available: int, flight: int) -> bool:
        """RFC 9293 §3.8.6.2.1 sender SWS avoidance with Nagle (§3.7.4)."""
        if length == available and (not self.nagle or flight == 0 or self._fin_queued):
            return True
        return self.max_snd_wnd > 0 and length >= self.max_snd_wnd // 2

    def _flight(self) -> int:
        return max(0, self.snd_nxt - self.snd_una - self.scoreboard.sacked_between(self.snd_una, self.snd_nxt))

    def _pipe(self) -> int:
        """RFC 6675 §4 pipe: outstanding octets not SACKed, minus holes we consider lost and have not resent."""
        highest = self.scoreboard.highest or self.snd_una
        outstanding = self.snd_max - self.snd_una - self.scoreboard.sacked_bytes
        lost_unsent = 0
        start = max(self._high_rxt, self.snd_una)
        while start < highest:
            hole = self.scoreboard.next_unsacked(start, highest)
            if hole is None:
                break
            lost_unsent += hole[1] - hole[0]
            start = hole[1]
        return max(0, outstanding - lost_unsent)

    def _retransmit_first(self, now: float) -> None:
        end = min(self.snd_una + self.mss, self._sbuf_seq + len(self._sbuf), self.snd_max)
        fin = self._fin_queued and self.snd_max == self._fin_seq() + 1 and end == self._fin_seq()
        if end > self.snd_una or fin:
            self._send_segment(self.snd_una, end, now, fin=fin, retransmission=True)
            self._high_rxt = max(self._high_rxt, end)
            self._rxt_snd_max = self.snd_max
            self._rto_at = now + self.rtt.rto  # the fast retransmission gets a full RTO (as Linux does)

    def _send_segment(self, start: int, end: int, now: float, *, fin: bool = False, retransmission: bool) -> None:
        offset = start - self._sbuf_seq
        payload = bytes(self._sbuf[offset : offset + (end - start)])
        flags = _ACK | (_PSH if payload and end == self._sbuf_seq + len(self._sbuf) else 0) | (_FIN if fin else 0)
        self._emit(start, self.rcv_nxt, flags, payload)
        self.segments_sent += 1
        if retransmission:
            self.retransmitted_segments += 1
        top = end + (1 if fin else 0)
        if not retransmission and self._rtt_seq is None and not self.ts_enabled:
            self._rtt_seq, self._rtt_time = start, now
        if retransmission:
            self._rtt_seq = None if self._rtt_seq is not None and self._rtt_seq < top else self._rtt_seq
        if top > self.snd_nxt:
            self.snd_nxt = top
        if top > self.snd_max:
            self.snd_max = top
        if self._first_unacked_at is None:
            self._first_unacked_at = now
        self._persist_at = None  # the window let data through: probing is over
        self._persist_backoff = 0
        if self._rto_at is None:
            self._rto_at = now + self.rtt.rto
        if not retransmission:
            self._arm_tail_loss_probe(now)

    def _send_syn(self, now: float, *, ack: bool) -> None:
        config = self.config
        ts = (self._ts_now(now), self._ts_recent if ack else 0) if config.timestamps and (
            not ack or self.ts_enabled
        ) else None  # fmt: skip
        options = TcpOptions(
            mss=self.our_mss,
            window_scale=self._rcv_wscale if config.window_scaling and (not ack or self.wscale_enabled) else None,
            sack_permitted=config.sack and (not ack or self.sack_enabled),
            timestamps=ts,
        )
        window = min(config.receive_buffer, 0xFFFF)  # never scaled in a SYN (RFC 7323 §2.2)
        flags = _FLAG_OBJECTS[_SYN | _ACK if ack else _SYN]
        self._out.append(
            (
                TcpRepr(
                    self.local[1],
                    self.remote[1],
                    self.iss & MASK,
                    self.rcv_nxt & MASK if ack else 0,
                    flags,
                    window,
                    0,
                    options,
                ),
                b"",
            )  # fmt: skip
        )
        self._rcv_adv = self.rcv_nxt + window
        if ack:
            self._last_ack_sent = self.rcv_nxt  # RFC 7323 §4.3: TS.Recent follows what we acknowledge
        self.snd_nxt = self.snd_max = self.iss + 1
        self._rto_at = now + self.rtt.rto
        if self._rtt_seq is None and self._retries == 0:
            self._rtt_seq, self._rtt_time = self.iss, now

    def _window(self) -> int:
        return max(0, self.config.receive_buffer - len(self._rbuf))

    def _emit(self, seq: int, ack: int, flags: int, payload: bytes, *, window: int | None = None) -> None:
        """Queue one segment; every segment but RST carries ACK, our window and options."""
        if window is None:
            free = self._window()
            adv = self._rcv_adv - self.rcv_nxt
            # receiver SWS avoidance: only move the right edge by a useful amount
            if free > adv and free - adv >= min(self.config.receive_buffer // 2, self.mss):
                adv = free
            adv = max(adv, 0)
            # round up: rounding down would move the right edge left (RFC 7323 §2.4, as Linux does)
            window = min((adv + (1 << self._rcv_wscale) - 1) >> self._rcv_wscale, 0xFFFF)
            self._rcv_adv = self.rcv_nxt + (window << self._rcv_wscale)
        options = None
        ts = (self._ts_now_cached, self._ts_recent) if self.ts_enabled and not flags & _RST else None
        blocks = self._sack_blocks() if self.sack_enabled and flags & _ACK else ()
        if ts is not None or blocks:
            options = TcpOptions(timestamps=ts, sack_blocks=blocks)
        wire_ack = ack & MASK if flags & _ACK else 0
        repr_ = TcpRepr(
            self.local[1], self.remote[1], seq & MASK, wire_ack, _FLAG_OBJECTS[flags], window, 0,
            options if options is not None else _NO_OPTIONS,
        )  # fmt: skip
        self._out.append((repr_, payload))
        if flags & _ACK:
            self._last_ack_sent = ack
            self._ack_now = False
            self._dack_at = None
            self._unacked_segments = 0

    def _emit_raw(self, wire_seq: int, wire_ack: int, flags: int) -> None:
        """A bare RST answering a bad segment (RFC 9293 §3.10.7)."""
        repr_ = TcpRepr(self.local[1], self.remote[1], wire_seq & MASK, wire_ack & MASK, _FLAG_OBJECTS[flags], 0)
        self._out.append((repr_, b""))

    def _sack_blocks(self) -> tuple[tuple[int, int], ...]:
        """Up to 3 blocks (4 without timestamps): the block of the newest segment first, then the
        blocks most recently reported, then the rest highest first (RFC 2018 §4)."""
        if self._ooo.is_empty():
            return ()
        ranges = [(self.rcv_nxt + s, self.rcv_nxt + e) for s, e in self._ooo.ranges()]
        ranges = [(s, e) for s, e in ranges if s > self.rcv_nxt]
        ordered: list[tuple[int, int]] = []
        for start in self._sack_history:
            for block in ranges:
                if block[0] <= start < block[1] and block not in ordered:
                    ordered.append(block)
        ordered += [block for block in reversed(ranges) if block not in ordered]
        limit = 3 if self.ts_enabled else 4
        return tuple((s & MASK, e & MASK) for s, e in ordered[:limit])
