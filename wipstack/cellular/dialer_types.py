"""Public vocabulary of the cellular modem dialer: settings, states, failures and events.

Everything here is plain data (frozen dataclasses and enums, h11 style) so that the
``at_frontend`` glue can map outcomes to WIPSoft error codes without touching the dialer's
internals.  The behaviour lives in :mod:`wipstack.cellular.dialer` (the call procedures)
and :mod:`wipstack.cellular.dialer_at` (one AT conversation on one port).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal, TypeAlias

from wipstack.errors import LocalProtocolError


class CallFailure(enum.Enum):
    """Why a dial or listen attempt ended without a call (the module's WIPSoft code in brackets)."""

    BUSY = "busy"  # 807
    NO_ANSWER = "no answer"  # 808
    NO_CARRIER = "no carrier"  # 809
    NO_SIM = "no SIM"  # 810
    SIM_NOT_READY = "SIM not ready"  # 811
    NETWORK = "network"  # 812
    REGISTRATION_TIMEOUT = "registration timeout"  # 847
    NOT_RESPONDING = "modem not responding"  # 848
    DATA_FAILED = "data phase failed"  # 849


class DialerState(enum.Enum):
    """Where the dialer is (one call at a time)."""

    IDLE = "idle"
    INITIALISING = "initialising"
    REGISTERING = "registering"
    DIALLING = "dialling"
    LISTENING = "listening"
    ANSWERING = "answering"
    ONLINE = "online"
    HANGING_UP = "hanging up"


CallKind: TypeAlias = Literal["packet", "circuit", "incoming"]


@dataclass(frozen=True, slots=True)
class ModemReady:
    """The init sequence finished: the modem answers, speaks V.25ter verbose and its SIM is ready."""


@dataclass(frozen=True, slots=True)
class CallConnected:
    """The modem said CONNECT: the line (or DLCI 2 under CMUX) now carries payload."""

    kind: CallKind
    #: the remote number of an incoming call (from ``+CLIP``), else None
    caller: str | None
    #: what followed ``CONNECT`` (e.g. ``"115200"``), "" if nothing
    connect_text: str


@dataclass(frozen=True, slots=True)
class CallFailed:
    """The dial or listen attempt ended without a call."""

    failure: CallFailure
    #: human-readable detail, usually the command and the modem's answer
    detail: str


@dataclass(frozen=True, slots=True)
class Ringing:
    """An incoming call rang (``RING`` or ``+CRING``) while listening."""

    #: rings counted so far for this call, from 1
    count: int
    #: the caller from ``+CLIP`` if it has been reported yet
    caller: str | None


@dataclass(frozen=True, slots=True)
class IncomingRefused:
    """An incoming call was hung up because its caller did not match (the dialer keeps listening)."""

    caller: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class CallEnded:
    """An online call ended: ``"no carrier"``, ``"line lost"``, ``"channel closed"`` or ``"local"`` (our hang-up)."""

    reason: str


DialerEvent: TypeAlias = ModemReady | CallConnected | CallFailed | Ringing | IncomingRefused | CallEnded


@dataclass(frozen=True, slots=True)
class DialerSettings:
    """Timers (seconds), retries and options of one dialer."""

    #: how long one AT command may wait for its final result code
    command_timeout: float = 5.0
    #: how many times a command is sent again after a timeout (ATD/ATA/ATH-after-abort excepted)
    retries: int = 2
    #: how long ``+CREG``/``+CGREG`` may report "searching" before the attempt fails
    registration_timeout: float = 60.0
    #: pause between two registration polls
    registration_poll: float = 1.0
    #: how long ATD (or ATA) may wait for CONNECT/BUSY/NO CARRIER/...
    dial_timeout: float = 90.0
    #: silence before and after ``+++`` (the modem's S12 guard defaults to 1 s; 0.1 s of margin)
    escape_guard: float = 1.1
    #: hang up by dropping DTR first (the driver mirrors :attr:`ModemDialer.dtr` on the line);
    #: ignored under CMUX, where a DTR drop would end the multiplexer and ATH on DLCI 1 is used
    use_dtr: bool = False
    #: how long DTR stays low for a DTR hang-up (V.25ter &D2 needs a drop of some tens of ms)
    dtr_hold: float = 0.5
    #: user init strings sent after ``AT+CMEE=1`` (e.g. ``"AT+CFUN=1"``, ``"AT+CBST=7,0,1"``)
    extra_init: tuple[str, ...] = ()
    #: SIM PIN, entered once with ``AT+CPIN=`` when the SIM asks for it
    pin: str | None = None
    #: run a 27.010 multiplexer: AT on DLCI 1, the data call on DLCI 2
    use_cmux: bool = False
    #: a ringing call whose next RING does not come within this time is forgotten
    ring_gap: float = 8.0
    #: after the last counted RING, how long to wait for ``+CLIP`` when a caller must be checked
    clip_wait: float = 1.0

    def __post_init__(self) -> None:
        """Refuse settings that would make timers meaningless."""
        for name in ("command_timeout", "registration_poll", "dial_timeout", "ring_gap"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        for name in ("registration_timeout", "escape_guard", "dtr_hold", "clip_wait"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must not be negative")
        if self.retries < 0:
            raise ValueError("retries must not be negative")
        for text in self.extra_init:
            if not text or any(c in text for c in "\r\n") or not text.isprintable():
                raise ValueError(f"init string {text!r} must be one printable line")
        if self.pin is not None and not (self.pin.isdigit() and 4 <= len(self.pin) <= 8):
            raise ValueError("a SIM PIN is 4 to 8 digits")


class DialerStateError(LocalProtocolError, ValueError):
    """The call asked for cannot be done in the dialer's current state."""
