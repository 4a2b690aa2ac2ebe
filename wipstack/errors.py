"""Exceptions and drop reasons shared by every layer.

Parsers raise :class:`MalformedPacket` carrying a :class:`DropReason`; the layer that calls
them counts the reason in a :class:`DropCounters` and drops the packet.  Nothing that a peer
sends may raise anything else out of a parser.
"""

from __future__ import annotations

import enum
from collections import Counter


class WipstackError(Exception):
    """Base class of every exception raised by wipstack."""


class ProtocolError(WipstackError):
    """A protocol rule was broken."""


class LocalProtocolError(ProtocolError):
    """Our user asked for something the protocol does not allow in the current state."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow."""


class DropReason(enum.Enum):
    """Why an inbound frame, packet or segment was dropped (the key of drop counters)."""

    # framing (RFC 1662)
    BAD_FCS = "bad FCS"
    FRAME_ABORTED = "frame aborted (0x7D 0x7E)"
    FRAME_TOO_LONG = "frame longer than the MRU"
    FRAME_TOO_SHORT = "frame shorter than its FCS and header"
    BAD_ADDRESS_CONTROL = "address/control field is not 0xFF 0x03"
    # generic
    TRUNCATED = "shorter than its header or length field"
    BAD_LENGTH = "length field inconsistent"
    BAD_CHECKSUM = "checksum mismatch"
    BAD_VERSION = "unsupported version"
    BAD_HEADER_LENGTH = "header length field invalid"
    BAD_OPTION = "malformed option"
    BAD_VALUE = "field value not allowed"
    UNKNOWN_PROTOCOL = "unknown protocol"
    # PPP control plane (RFC 1661)
    BAD_CODE = "unknown control-protocol code"
    UNEXPECTED_ID = "identifier does not match the outstanding request"
    NOT_ALLOWED_IN_PHASE = "protocol not allowed in the current PPP phase"
    NOT_ALLOWED_IN_STATE = "packet not allowed in the current state"
    # IPv4 layer (RFC 791, RFC 1122, RFC 1812)
    QUEUE_FULL = "queue full"
    NOT_FOR_US = "not addressed to us and not forwarding"
    NO_ROUTE = "no route to the destination"
    TTL_EXPIRED = "time to live exceeded in transit"
    NEEDS_FRAGMENTATION = "larger than the MTU with Don't Fragment set"
    REASSEMBLY_OVERLAP = "overlapping fragment (RFC 5722)"
    DUPLICATE_FRAGMENT = "exact duplicate of a fragment already held"
    REASSEMBLY_LIMIT = "reassembly limit reached"
    REASSEMBLY_TIMEOUT = "reassembly timed out"
    # transport
    PORT_UNREACHABLE = "no socket bound to the destination port"
    PROTOCOL_UNREACHABLE = "no handler for the IP protocol"
    RATE_LIMITED = "ICMP error rate limit"
    # TCP (RFC 9293, RFC 7323, RFC 5961)
    OUT_OF_WINDOW = "segment outside the receive window"
    PAWS = "timestamp older than TS.Recent (PAWS)"
    NO_ACK = "segment without ACK in a synchronized state"


class MalformedPacket(RemoteProtocolError):
    """An inbound packet failed validation; ``reason`` says why."""

    def __init__(self, reason: DropReason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


class DropCounters(Counter[DropReason]):
    """Counts of dropped inbound units by reason."""

    def count(self, reason: DropReason, n: int = 1) -> None:
        """Count ``n`` drops for ``reason``."""
        self[reason] += n
