"""Events a PPP session reports to its user (frozen dataclasses, h11 style)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from wipstack.ppp.ipcp import IpcpResult
from wipstack.ppp.lcp import LinkParameters


class Phase(enum.Enum):
    """Link phases (RFC 1661 §3.2)."""

    DEAD = "Dead"
    ESTABLISH = "Establish"
    AUTHENTICATE = "Authenticate"
    NETWORK = "Network"
    TERMINATE = "Terminate"


@dataclass(frozen=True, slots=True)
class PhaseChanged:
    """The link entered ``phase``."""

    phase: Phase


@dataclass(frozen=True, slots=True)
class LinkUp:
    """LCP reached Opened with these parameters."""

    link: LinkParameters


@dataclass(frozen=True, slots=True)
class LinkDown:
    """LCP left Opened."""


@dataclass(frozen=True, slots=True)
class AuthSucceeded:
    """An authentication finished well: ``peer`` True when the peer authenticated to us."""

    peer: bool
    peer_id: str | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class AuthFailed:
    """An authentication failed; the link is being terminated."""

    peer: bool
    reason: str


@dataclass(frozen=True, slots=True)
class IpcpUp:
    """IPCP reached Opened: IP can flow."""

    result: IpcpResult


@dataclass(frozen=True, slots=True)
class IpcpDown:
    """IPCP left Opened."""


@dataclass(frozen=True, slots=True)
class LinkDead:
    """The keep-alive found the peer silent."""

    reason: str


@dataclass(frozen=True, slots=True)
class LinkTerminated:
    """LCP finished: the link is over (``reason`` from us or from the peer)."""

    reason: str


PppEvent = PhaseChanged | LinkUp | LinkDown | AuthSucceeded | AuthFailed | IpcpUp | IpcpDown | LinkDead | LinkTerminated
