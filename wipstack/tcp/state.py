"""TCP connection states (RFC 9293 §3.3.2), spelled as in the RFC."""

from __future__ import annotations

import enum


class TcpState(enum.Enum):
    """The states of a connection; ``str()`` gives the RFC's name."""

    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN-SENT"
    SYN_RECEIVED = "SYN-RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN-WAIT-1"
    FIN_WAIT_2 = "FIN-WAIT-2"
    CLOSE_WAIT = "CLOSE-WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST-ACK"
    TIME_WAIT = "TIME-WAIT"

    def __str__(self) -> str:
        return self.value


S = TcpState
#: States in which the connection is synchronized (both ISNs known).
SYNCHRONIZED = frozenset({S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT, S.CLOSING, S.LAST_ACK, S.TIME_WAIT})
#: States in which data from the peer is still accepted (RFC 9293 §3.10.7.4, seventh step).
RECEIVING = frozenset({S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2})
#: States in which we may still send data.
SENDING = frozenset({S.ESTABLISHED, S.CLOSE_WAIT})
#: States after our FIN was queued.
FIN_QUEUED = frozenset({S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSING, S.LAST_ACK, S.TIME_WAIT})
del S
