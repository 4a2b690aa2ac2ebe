"""Retransmission timeout (RFC 6298): SRTT, RTTVAR, RTO, Karn's rule, exponential back-off."""

from __future__ import annotations

#: Clock granularity G of RFC 6298 §2 (our clock is a float; 1 ms is what timestamps carry).
GRANULARITY = 0.001


class RttEstimator:
    """The RFC 6298 estimator; ``rto`` is the current timeout, back-off included."""

    __slots__ = ("srtt", "rttvar", "rto", "backoff", "rto_min", "rto_max", "samples")

    def __init__(self, initial: float, rto_min: float, rto_max: float) -> None:
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.rto = initial
        self.backoff = 0  # RTO doublings since the last valid sample
        self.rto_min = rto_min
        self.rto_max = rto_max
        self.samples = 0

    def sample(self, rtt: float) -> None:
        """A valid measurement (never of a retransmitted segment: Karn's rule, RFC 6298 §3)."""
        rtt = max(rtt, 0.0)
        self.samples += 1
        if self.srtt is None:
            self.srtt = rtt  # §2.2
            self.rttvar = rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - rtt)  # §2.3, beta = 1/4
            self.srtt = 0.875 * self.srtt + 0.125 * rtt  # alpha = 1/8
        self.backoff = 0
        self.rto = min(self.rto_max, max(self.rto_min, self.srtt + max(GRANULARITY, 4 * self.rttvar)))

    def reset_after_syn_timeout(self) -> None:
        """RFC 6298 §5.7: a SYN timed out and no RTT was measured: start data transfer with 3 s."""
        self.backoff = 0
        self.rto = min(self.rto_max, max(self.rto_min, 3.0))

    def back_off(self) -> None:
        """The timer expired: double the RTO (§5.5), bounded by the maximum."""
        self.backoff += 1
        self.rto = min(self.rto_max, self.rto * 2)
