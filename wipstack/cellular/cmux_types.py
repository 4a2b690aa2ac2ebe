"""Public vocabulary of the 27.010 multiplexer: role, system parameters and events.

Plain data (an enum, frozen dataclasses, h11 style) so that callers can match on events
without touching the state machine in :mod:`wipstack.cellular.cmux`, which re-exports
every name here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeAlias

from wipstack.wire.cmux import MAX_LENGTH_FIELD, ModemStatus


class MuxRole(enum.Enum):
    """Which end of the line we are (§5.2.1.2: the C/R bit depends on it)."""

    INITIATOR = "initiator"
    RESPONDER = "responder"


@dataclass(frozen=True, slots=True)
class MuxParameters:
    """System parameters of the basic option (27.007 §5.7 ``AT+CMUX`` defaults, 27.010 §5.7).

    ``n1`` is the largest information field we send (a value above the 15-bit length field,
    as ``AT+CMUX`` allows with 32768, sends 32767); we accept up to ``max(max_receive, n1)``
    octets, so a peer that keeps to the N1 it agreed is never refused.  ``t1`` and ``t2`` are
    in seconds, ``n2`` is the number of retransmissions after the first attempt.
    """

    n1: int = 31
    t1: float = 0.1
    n2: int = 3
    t2: float = 0.3
    max_receive: int = 1500

    def __post_init__(self) -> None:
        if not 1 <= self.n1 <= MAX_LENGTH_FIELD + 1:
            raise ValueError(f"N1 {self.n1} outside 1..{MAX_LENGTH_FIELD + 1}")
        if not self.t1 > 0 or not self.t2 > 0:
            raise ValueError(f"T1 {self.t1} and T2 {self.t2} must be positive")
        if not 0 <= self.n2 <= 255:
            raise ValueError(f"N2 {self.n2} outside 0..255")
        if not 1 <= self.max_receive <= MAX_LENGTH_FIELD:
            raise ValueError(f"max_receive {self.max_receive} outside 1..{MAX_LENGTH_FIELD}")

    @property
    def send_limit(self) -> int:
        """Information octets per frame we send."""
        return min(self.n1, MAX_LENGTH_FIELD)

    @property
    def receive_limit(self) -> int:
        """Information octets per frame we accept."""
        return min(max(self.max_receive, self.n1), MAX_LENGTH_FIELD)


# --- events ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MuxStarted:
    """DLCI 0 is established: channels can be opened."""


@dataclass(frozen=True, slots=True)
class MuxClosed:
    """The multiplexer is over (``"peer"``, ``"local"``, ``"refused"`` or ``"timeout"``)."""

    reason: str


@dataclass(frozen=True, slots=True)
class ChannelOpened:
    """``dlci`` is established (our SABM was answered by UA, or we answered a SABM by UA)."""

    dlci: int


@dataclass(frozen=True, slots=True)
class ChannelClosed:
    """``dlci`` is closed (``"peer"``, ``"local"``, ``"refused"`` or ``"timeout"``)."""

    dlci: int
    reason: str


@dataclass(frozen=True, slots=True)
class DataReceived:
    """Information of a UIH (or UI) frame on the open channel ``dlci``."""

    dlci: int
    data: bytes


@dataclass(frozen=True, slots=True)
class ModemStatusChanged:
    """The peer sent an MSC command for ``dlci`` (§5.4.6.3.7)."""

    dlci: int
    status: ModemStatus


@dataclass(frozen=True, slots=True)
class FlowControlChanged:
    """The peer stopped or resumed our sending: ``dlci`` None is FCoff/FCon, else its MSC FC bit."""

    dlci: int | None
    stopped: bool


MuxEvent: TypeAlias = (
    MuxStarted | MuxClosed | ChannelOpened | ChannelClosed | DataReceived | ModemStatusChanged | FlowControlChanged
)
