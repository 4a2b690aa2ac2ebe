"""The transmission control block (RFC 9293 §3.3.1): every variable of a connection, and its endings.

:class:`~wipstack.tcp.connection.TcpConnection` is built in three layers, one file each:
this block of state, the sending side (:mod:`wipstack.tcp.output`), and the arrival of
segments with the user calls (:mod:`wipstack.tcp.connection`).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from wipstack.accel import Assembler
from wipstack.errors import DropCounters
from wipstack.tcp.config import TcpConfig
from wipstack.tcp.events import Closed, ConnectionFailed, TcpEvent
from wipstack.tcp.rtt import RttEstimator
from wipstack.tcp.scoreboard import Scoreboard
from wipstack.tcp.seq import MASK
from wipstack.tcp.state import SENDING, TcpState
from wipstack.wire.tcp import TcpFlags, TcpOptions, TcpRepr

S = TcpState
Endpoint = tuple[bytes, int]
Outgoing = tuple[TcpRepr, bytes]

# flags as plain ints on the data path: IntFlag arithmetic costs a new enum object per operation
_ACK = TcpFlags.ACK.value
_SYN = TcpFlags.SYN.value
_FIN = TcpFlags.FIN.value
_RST = TcpFlags.RST.value
_PSH = TcpFlags.PSH.value
_FLAG_OBJECTS = [TcpFlags(i) for i in range(256)]
TS_OPTION_LEN = 12  # NOP NOP TS(10)
MAX_WINDOW_SCALE = 14  # RFC 7323 §2.3


def window_scale_for(buffer: int) -> int:
    """The smallest shift that lets ``buffer`` octets be offered in the 16-bit window field."""
    shift = 0
    while (buffer >> shift) > 0xFFFF and shift < MAX_WINDOW_SCALE:
        shift += 1
    return shift


class Tcb:
    """The state of one connection (see the module docstring)."""

    def __init__(
        self,
        config: TcpConfig,
        local: Endpoint,
        remote: Endpoint,
        *,
        iss: int,
        mss: int,
        ts_offset: int,
        now: float,
    ) -> None:
        self.config = config
        self.owner: Any = None  # the TcpSocket wrapping this connection, if any
        self.local = local
        self.remote = remote
        self.state = S.CLOSED
        self.nagle = config.nagle
        self.ttl: int | None = None  # per-connection IP TTL/TOS (None: the stack's defaults)
        self.tos: int | None = None
        self.drops = DropCounters()
        self.error: ConnectionFailed | None = None
        self._events: deque[TcpEvent] = deque()
        self._out: list[Outgoing] = []
        # ---- send side (absolute sequence numbers) ----
        self.iss = iss
        self.snd_una = iss
        self.snd_nxt = iss
        self.snd_max = iss
        self.snd_wnd = 0
        self.max_snd_wnd = 0
        self._snd_wl1 = 0
        self._snd_wl2 = 0
        self._snd_wscale = 0
        self._sbuf = bytearray()
        self._sbuf_seq = iss + 1  # sequence number of _sbuf[0] (the first data octet follows the SYN)
        self._fin_queued = False
        self._send_blocked = False
        self.our_mss = mss  # what we announce (from the interface MTU)
        self.peer_mss = config.default_mss
        self.cwnd = 0
        self.ssthresh = 1 << 30
        self._dupacks = 0
        self._in_recovery = False
        self._recover = iss
        self._high_rxt = iss
        self._rxt_snd_max = iss  # SND.MAX when a hole was last retransmitted (lost-retransmission check)
        self.scoreboard = Scoreboard()
        self.rtt = RttEstimator(config.rto_initial, config.rto_min, config.rto_max)
        self._rtt_seq: int | None = None  # timed segment (no timestamps): Karn's rule
        self._rtt_time = 0.0
        self._retries = 0
        self._first_unacked_at: float | None = None
        # ---- statistics (like Linux's tcp_info) ----
        self.segments_sent = 0
        self.retransmitted_segments = 0
        self.timeouts = 0
        self.fast_recoveries = 0
        # ---- receive side ----
        self.irs = 0
        self.rcv_nxt = 0
        self._rbuf = bytearray()
        self._ooo = Assembler(config.receive_buffer, config.max_out_of_order_ranges)  # offset 0 = RCV.NXT
        self._fin_rcvd_seq: int | None = None
        self._rcv_wscale = window_scale_for(config.receive_buffer) if config.window_scaling else 0
        self._rcv_adv = 0  # right edge we advertised (the window never shrinks, RFC 9293 §3.8.6)
        self._unacked_segments = 0
        self._ack_now = False
        self._sack_history: list[int] = []  # starts of recently received out-of-order segments, newest first
        # ---- options negotiated ----
        self.ts_enabled = False
        self.sack_enabled = False
        self.wscale_enabled = False
        self._ts_offset = ts_offset
        self._ts_recent = 0
        self._last_ack_sent = 0
        # ---- timers (absolute deadlines) ----
        self._rto_at: float | None = None
        self._dack_at: float | None = None
        self._persist_at: float | None = None
        self._persist_backoff = 0
        self._keepalive_at: float | None = None
        self._pto_at: float | None = None  # tail loss probe (RFC 8985 §7)
        self.tail_loss_probes = 0
        self._keepalive_probes = 0
        self._time_wait_at: float | None = None
        self._connect_deadline: float | None = None
        self._last_rcv = now
        self._user_closed = False
        self._challenge_window = (0, 0)
        self._ts_now_cached = 0
        self._ts_now(now)

    # ------------------------------------------------------------------ properties
    @property
    def mss(self) -> int:
        """Payload octets per segment (options we always send subtracted)."""
        mss = min(self.peer_mss, self.our_mss)
        return max(1, mss - (TS_OPTION_LEN if self.ts_enabled else 0))

    @property
    def readable(self) -> int:
        """In-order octets waiting for :meth:`recv`."""
        return len(self._rbuf)

    @property
    def send_space(self) -> int:
        """Octets :meth:`send` would accept now."""
        if self.state not in SENDING or self._fin_queued:
            return 0
        return max(0, self.config.send_buffer - len(self._sbuf))

    @property
    def unsent(self) -> int:
        """Octets accepted by :meth:`send` and not yet acknowledged."""
        return len(self._sbuf)

    @property
    def has_events(self) -> bool:
        """Events are waiting for :meth:`next_event`."""
        return bool(self._events)

    @property
    def is_closed(self) -> bool:
        """CLOSED: the layer may forget this connection."""
        return self.state == S.CLOSED

    # ------------------------------------------------------------------ endings
    def _ts_now(self, now: float) -> int:
        value = (int(now * 1000) + self._ts_offset) & MASK
        self._ts_now_cached = value
        return value

    def _enter_time_wait(self, now: float) -> None:
        self.state = S.TIME_WAIT
        self._rto_at = self._persist_at = self._keepalive_at = None
        self._time_wait_at = now + self.config.time_wait
        self._ack_now = True

    def _enter_closed(self) -> None:
        if self.state != S.CLOSED:
            self.state = S.CLOSED
            self._rto_at = self._dack_at = self._persist_at = self._keepalive_at = self._time_wait_at = None
            self._connect_deadline = self._pto_at = None
            self._ack_now = False
            self._events.append(Closed())

    def fail(self, errno_name: str, reason: str) -> None:
        """End the connection with an error (no RST sent: see :meth:`abort`)."""
        if self.state == S.CLOSED:
            return
        self.error = ConnectionFailed(errno_name, reason)
        self._events.append(self.error)
        self._sbuf.clear()
        self._enter_closed()


_NO_OPTIONS = TcpOptions()


_NO_OPTIONS = TcpOptions()
