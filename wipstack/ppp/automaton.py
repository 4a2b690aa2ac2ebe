"""The RFC 1661 §4.1 option-negotiation automaton, encoded once as data.

Theory of operation: every control protocol (LCP, IPCP, ...) runs the same finite-state
automaton.  This module knows nothing about options, packets or time; it only says, for a
(state, event) pair, which actions to run in which order and which state follows.  The
engine in ``wipstack.ppp.cp`` classifies inputs into events, looks them up here and runs the
actions.  A pair missing from ``TRANSITIONS`` is the RFC's "-" (the event cannot occur in
that state); the engine counts and ignores it.

The optional behaviours marked r (Restart), p (Passive) and x (Crossed connection) in the
RFC's table are not part of the table here; the engine implements Passive on its own.
``tests/data/rfc1661_table.txt`` holds the RFC's table text; a test checks the two agree.
"""

from __future__ import annotations

import enum


class State(enum.IntEnum):
    """Automaton states, numbered as in RFC 1661 §4.2."""

    INITIAL = 0
    STARTING = 1
    CLOSED = 2
    STOPPED = 3
    CLOSING = 4
    STOPPING = 5
    REQ_SENT = 6
    ACK_RCVD = 7
    ACK_SENT = 8
    OPENED = 9

    def __str__(self) -> str:
        return _STATE_NAMES[self]


_STATE_NAMES = {
    State.INITIAL: "Initial",
    State.STARTING: "Starting",
    State.CLOSED: "Closed",
    State.STOPPED: "Stopped",
    State.CLOSING: "Closing",
    State.STOPPING: "Stopping",
    State.REQ_SENT: "Req-Sent",
    State.ACK_RCVD: "Ack-Rcvd",
    State.ACK_SENT: "Ack-Sent",
    State.OPENED: "Opened",
}


class Event(enum.Enum):
    """Automaton events (RFC 1661 §4.3); values are the RFC's abbreviations."""

    UP = "Up"
    DOWN = "Down"
    OPEN = "Open"
    CLOSE = "Close"
    TO_PLUS = "TO+"
    TO_MINUS = "TO-"
    RCR_PLUS = "RCR+"
    RCR_MINUS = "RCR-"
    RCA = "RCA"
    RCN = "RCN"
    RTR = "RTR"
    RTA = "RTA"
    RUC = "RUC"
    RXJ_PLUS = "RXJ+"
    RXJ_MINUS = "RXJ-"
    RXR = "RXR"


class Action(enum.Enum):
    """Automaton actions (RFC 1661 §4.4); values are the RFC's abbreviations."""

    TLU = "tlu"  # This-Layer-Up
    TLD = "tld"  # This-Layer-Down
    TLS = "tls"  # This-Layer-Started
    TLF = "tlf"  # This-Layer-Finished
    IRC = "irc"  # Initialize-Restart-Count
    ZRC = "zrc"  # Zero-Restart-Count
    SCR = "scr"  # Send-Configure-Request
    SCA = "sca"  # Send-Configure-Ack
    SCN = "scn"  # Send-Configure-Nak/Rej
    STR = "str"  # Send-Terminate-Request
    STA = "sta"  # Send-Terminate-Ack
    SCJ = "scj"  # Send-Code-Reject
    SER = "ser"  # Send-Echo-Reply


Transition = tuple[tuple[Action, ...], State]

S, E, A = State, Event, Action


def _t(*actions_then_state: Action | State) -> Transition:
    *actions, state = actions_then_state
    assert isinstance(state, State)
    return tuple(a for a in actions if isinstance(a, Action)), state


#: RFC 1661 §4.1, row by row (event), column by column (state).
TRANSITIONS: dict[tuple[State, Event], Transition] = {
    # Up
    (S.INITIAL, E.UP): _t(S.CLOSED),
    (S.STARTING, E.UP): _t(A.IRC, A.SCR, S.REQ_SENT),
    # Down
    (S.CLOSED, E.DOWN): _t(S.INITIAL),
    (S.STOPPED, E.DOWN): _t(A.TLS, S.STARTING),
    (S.CLOSING, E.DOWN): _t(S.INITIAL),
    (S.STOPPING, E.DOWN): _t(S.STARTING),
    (S.REQ_SENT, E.DOWN): _t(S.STARTING),
    (S.ACK_RCVD, E.DOWN): _t(S.STARTING),
    (S.ACK_SENT, E.DOWN): _t(S.STARTING),
    (S.OPENED, E.DOWN): _t(A.TLD, S.STARTING),
    # Open
    (S.INITIAL, E.OPEN): _t(A.TLS, S.STARTING),
    (S.STARTING, E.OPEN): _t(S.STARTING),
    (S.CLOSED, E.OPEN): _t(A.IRC, A.SCR, S.REQ_SENT),
    (S.STOPPED, E.OPEN): _t(S.STOPPED),
    (S.CLOSING, E.OPEN): _t(S.STOPPING),
    (S.STOPPING, E.OPEN): _t(S.STOPPING),
    (S.REQ_SENT, E.OPEN): _t(S.REQ_SENT),
    (S.ACK_RCVD, E.OPEN): _t(S.ACK_RCVD),
    (S.ACK_SENT, E.OPEN): _t(S.ACK_SENT),
    (S.OPENED, E.OPEN): _t(S.OPENED),
    # Close
    (S.INITIAL, E.CLOSE): _t(S.INITIAL),
    (S.STARTING, E.CLOSE): _t(A.TLF, S.INITIAL),
    (S.CLOSED, E.CLOSE): _t(S.CLOSED),
    (S.STOPPED, E.CLOSE): _t(S.CLOSED),
    (S.CLOSING, E.CLOSE): _t(S.CLOSING),
    (S.STOPPING, E.CLOSE): _t(S.CLOSING),
    (S.REQ_SENT, E.CLOSE): _t(A.IRC, A.STR, S.CLOSING),
    (S.ACK_RCVD, E.CLOSE): _t(A.IRC, A.STR, S.CLOSING),
    (S.ACK_SENT, E.CLOSE): _t(A.IRC, A.STR, S.CLOSING),
    (S.OPENED, E.CLOSE): _t(A.TLD, A.IRC, A.STR, S.CLOSING),
    # TO+
    (S.CLOSING, E.TO_PLUS): _t(A.STR, S.CLOSING),
    (S.STOPPING, E.TO_PLUS): _t(A.STR, S.STOPPING),
    (S.REQ_SENT, E.TO_PLUS): _t(A.SCR, S.REQ_SENT),
    (S.ACK_RCVD, E.TO_PLUS): _t(A.SCR, S.REQ_SENT),
    (S.ACK_SENT, E.TO_PLUS): _t(A.SCR, S.ACK_SENT),
    # TO-
    (S.CLOSING, E.TO_MINUS): _t(A.TLF, S.CLOSED),
    (S.STOPPING, E.TO_MINUS): _t(A.TLF, S.STOPPED),
    (S.REQ_SENT, E.TO_MINUS): _t(A.TLF, S.STOPPED),
    (S.ACK_RCVD, E.TO_MINUS): _t(A.TLF, S.STOPPED),
    (S.ACK_SENT, E.TO_MINUS): _t(A.TLF, S.STOPPED),
    # RCR+
    (S.CLOSED, E.RCR_PLUS): _t(A.STA, S.CLOSED),
    (S.STOPPED, E.RCR_PLUS): _t(A.IRC, A.SCR, A.SCA, S.ACK_SENT),
    (S.CLOSING, E.RCR_PLUS): _t(S.CLOSING),
    (S.STOPPING, E.RCR_PLUS): _t(S.STOPPING),
    (S.REQ_SENT, E.RCR_PLUS): _t(A.SCA, S.ACK_SENT),
    (S.ACK_RCVD, E.RCR_PLUS): _t(A.SCA, A.TLU, S.OPENED),
    (S.ACK_SENT, E.RCR_PLUS): _t(A.SCA, S.ACK_SENT),
    (S.OPENED, E.RCR_PLUS): _t(A.TLD, A.SCR, A.SCA, S.ACK_SENT),
    # RCR-
    (S.CLOSED, E.RCR_MINUS): _t(A.STA, S.CLOSED),
    (S.STOPPED, E.RCR_MINUS): _t(A.IRC, A.SCR, A.SCN, S.REQ_SENT),
    (S.CLOSING, E.RCR_MINUS): _t(S.CLOSING),
    (S.STOPPING, E.RCR_MINUS): _t(S.STOPPING),
    (S.REQ_SENT, E.RCR_MINUS): _t(A.SCN, S.REQ_SENT),
    (S.ACK_RCVD, E.RCR_MINUS): _t(A.SCN, S.ACK_RCVD),
    (S.ACK_SENT, E.RCR_MINUS): _t(A.SCN, S.REQ_SENT),
    (S.OPENED, E.RCR_MINUS): _t(A.TLD, A.SCR, A.SCN, S.REQ_SENT),
    # RCA
    (S.CLOSED, E.RCA): _t(A.STA, S.CLOSED),
    (S.STOPPED, E.RCA): _t(A.STA, S.STOPPED),
    (S.CLOSING, E.RCA): _t(S.CLOSING),
    (S.STOPPING, E.RCA): _t(S.STOPPING),
    (S.REQ_SENT, E.RCA): _t(A.IRC, S.ACK_RCVD),
    (S.ACK_RCVD, E.RCA): _t(A.SCR, S.REQ_SENT),
    (S.ACK_SENT, E.RCA): _t(A.IRC, A.TLU, S.OPENED),
    (S.OPENED, E.RCA): _t(A.TLD, A.SCR, S.REQ_SENT),
    # RCN
    (S.CLOSED, E.RCN): _t(A.STA, S.CLOSED),
    (S.STOPPED, E.RCN): _t(A.STA, S.STOPPED),
    (S.CLOSING, E.RCN): _t(S.CLOSING),
    (S.STOPPING, E.RCN): _t(S.STOPPING),
    (S.REQ_SENT, E.RCN): _t(A.IRC, A.SCR, S.REQ_SENT),
    (S.ACK_RCVD, E.RCN): _t(A.SCR, S.REQ_SENT),
    (S.ACK_SENT, E.RCN): _t(A.IRC, A.SCR, S.ACK_SENT),
    (S.OPENED, E.RCN): _t(A.TLD, A.SCR, S.REQ_SENT),
    # RTR
    (S.CLOSED, E.RTR): _t(A.STA, S.CLOSED),
    (S.STOPPED, E.RTR): _t(A.STA, S.STOPPED),
    (S.CLOSING, E.RTR): _t(A.STA, S.CLOSING),
    (S.STOPPING, E.RTR): _t(A.STA, S.STOPPING),
    (S.REQ_SENT, E.RTR): _t(A.STA, S.REQ_SENT),
    (S.ACK_RCVD, E.RTR): _t(A.STA, S.REQ_SENT),
    (S.ACK_SENT, E.RTR): _t(A.STA, S.REQ_SENT),
    (S.OPENED, E.RTR): _t(A.TLD, A.ZRC, A.STA, S.STOPPING),
    # RTA
    (S.CLOSED, E.RTA): _t(S.CLOSED),
    (S.STOPPED, E.RTA): _t(S.STOPPED),
    (S.CLOSING, E.RTA): _t(A.TLF, S.CLOSED),
    (S.STOPPING, E.RTA): _t(A.TLF, S.STOPPED),
    (S.REQ_SENT, E.RTA): _t(S.REQ_SENT),
    (S.ACK_RCVD, E.RTA): _t(S.REQ_SENT),
    (S.ACK_SENT, E.RTA): _t(S.ACK_SENT),
    (S.OPENED, E.RTA): _t(A.TLD, A.SCR, S.REQ_SENT),
    # RUC
    (S.CLOSED, E.RUC): _t(A.SCJ, S.CLOSED),
    (S.STOPPED, E.RUC): _t(A.SCJ, S.STOPPED),
    (S.CLOSING, E.RUC): _t(A.SCJ, S.CLOSING),
    (S.STOPPING, E.RUC): _t(A.SCJ, S.STOPPING),
    (S.REQ_SENT, E.RUC): _t(A.SCJ, S.REQ_SENT),
    (S.ACK_RCVD, E.RUC): _t(A.SCJ, S.ACK_RCVD),
    (S.ACK_SENT, E.RUC): _t(A.SCJ, S.ACK_SENT),
    (S.OPENED, E.RUC): _t(A.SCJ, S.OPENED),
    # RXJ+
    (S.CLOSED, E.RXJ_PLUS): _t(S.CLOSED),
    (S.STOPPED, E.RXJ_PLUS): _t(S.STOPPED),
    (S.CLOSING, E.RXJ_PLUS): _t(S.CLOSING),
    (S.STOPPING, E.RXJ_PLUS): _t(S.STOPPING),
    (S.REQ_SENT, E.RXJ_PLUS): _t(S.REQ_SENT),
    (S.ACK_RCVD, E.RXJ_PLUS): _t(S.REQ_SENT),
    (S.ACK_SENT, E.RXJ_PLUS): _t(S.ACK_SENT),
    (S.OPENED, E.RXJ_PLUS): _t(S.OPENED),
    # RXJ-
    (S.CLOSED, E.RXJ_MINUS): _t(A.TLF, S.CLOSED),
    (S.STOPPED, E.RXJ_MINUS): _t(A.TLF, S.STOPPED),
    (S.CLOSING, E.RXJ_MINUS): _t(A.TLF, S.CLOSED),
    (S.STOPPING, E.RXJ_MINUS): _t(A.TLF, S.STOPPED),
    (S.REQ_SENT, E.RXJ_MINUS): _t(A.TLF, S.STOPPED),
    (S.ACK_RCVD, E.RXJ_MINUS): _t(A.TLF, S.STOPPED),
    (S.ACK_SENT, E.RXJ_MINUS): _t(A.TLF, S.STOPPED),
    (S.OPENED, E.RXJ_MINUS): _t(A.TLD, A.IRC, A.STR, S.STOPPING),
    # RXR
    (S.CLOSED, E.RXR): _t(S.CLOSED),
    (S.STOPPED, E.RXR): _t(S.STOPPED),
    (S.CLOSING, E.RXR): _t(S.CLOSING),
    (S.STOPPING, E.RXR): _t(S.STOPPING),
    (S.REQ_SENT, E.RXR): _t(S.REQ_SENT),
    (S.ACK_RCVD, E.RXR): _t(S.ACK_RCVD),
    (S.ACK_SENT, E.RXR): _t(S.ACK_SENT),
    (S.OPENED, E.RXR): _t(A.SER, S.OPENED),
}

#: States in which the restart timer runs (RFC 1661 §4.6).
TIMER_STATES = frozenset({S.CLOSING, S.STOPPING, S.REQ_SENT, S.ACK_RCVD, S.ACK_SENT})

#: The states in which Configure-Requests are outstanding or being answered (negotiation).
NEGOTIATING_STATES = frozenset({State.REQ_SENT, State.ACK_RCVD, State.ACK_SENT})

del S, E, A
