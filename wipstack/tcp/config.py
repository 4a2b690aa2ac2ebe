"""TCP configuration: defaults close to Linux's, each bounded as the RFCs ask."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TcpConfig:
    """Knobs of TCP connections (per stack; sockets may override some of them)."""

    mss: int | None = None  # MSS we announce; None: the route's interface MTU - 40 (RFC 9293 §3.7.1)
    default_mss: int = 536  # peer MSS when it sends none (RFC 9293 §3.7.1, RFC 6691)
    receive_buffer: int = 256 * 1024  # octets; sets the window we offer (with window scaling)
    send_buffer: int = 256 * 1024  # octets accepted from the application before send() pushes back
    initial_window: int = 10  # segments (RFC 6928)
    nagle: bool = True  # RFC 9293 §3.7.4; +WIPOPT's no-delay option turns it off per socket
    delayed_ack: float = 0.04  # RFC 1122 §4.2.3.2: MUST be under 0.5 s; every 2nd full segment acked at once
    window_scaling: bool = True  # RFC 7323 §2
    timestamps: bool = True  # RFC 7323 §3-§5 (RTTM and PAWS)
    sack: bool = True  # RFC 2018
    tail_loss_probe: bool = True  # RFC 8985 §7 (with SACK): probe a silent tail after 2 SRTT, not the RTO
    rto_initial: float = 1.0  # RFC 6298 §2.1
    rto_min: float = 0.2  # RFC 6298 §2.4 says 1 s; Linux and most stacks use 200 ms
    rto_max: float = 60.0  # RFC 6298 §2.5
    syn_retries: int = 6  # SYN retransmissions before "connection timed out"
    data_retries: int = 12  # RTO expirations in a row before the connection fails (RFC 1122 R2)
    connect_timeout: float = 75.0  # seconds for an active open to complete
    data_timeout: float = 0.0  # seconds unacknowledged data may wait before failing (0: by data_retries)
    time_wait: float = 60.0  # 2*MSL (RFC 9293 §3.4.2 MSL=2 min; Linux uses 60 s)
    fin_wait_2_timeout: float = 60.0  # a closed connection waits this long for the peer's FIN
    keepalive: bool = False  # RFC 1122 §4.2.3.6: off by default
    keepalive_idle: float = 7200.0
    keepalive_interval: float = 75.0
    keepalive_count: int = 9
    persist_max: float = 60.0  # largest interval between zero-window probes
    backlog: int = 16  # accepted connections waiting for accept()
    max_half_open: int = 64  # connections in SYN-RECEIVED per listener (SYN flood bound)
    max_connections: int = 4096  # connections in total
    max_out_of_order_ranges: int = 32  # holes the receive assembler keeps (the rest is dropped)
    challenge_ack_limit: int = 1000  # RFC 5961 §7: challenge ACKs per second

    def __post_init__(self) -> None:
        if self.mss is not None and not 64 <= self.mss <= 65495:
            raise ValueError(f"MSS {self.mss} out of 64..65495")
        if self.receive_buffer < 1024 or self.send_buffer < 1024:
            raise ValueError("TCP buffers must be at least 1024 octets")
        if self.receive_buffer > (1 << 30) or self.send_buffer > (1 << 30):
            raise ValueError("TCP buffers are at most 1 GiB (window scale 14)")
        if not 0 < self.delayed_ack < 0.5:
            raise ValueError("the delayed-ACK timer must be under 0.5 s (RFC 1122 §4.2.3.2)")
        if not 0 < self.rto_min <= self.rto_initial <= self.rto_max:
            raise ValueError("need 0 < rto_min <= rto_initial <= rto_max")
        if self.backlog < 1 or self.max_half_open < 1 or self.max_connections < 1:
            raise ValueError("backlog, max_half_open and max_connections must be at least 1")
