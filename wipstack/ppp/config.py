"""Configuration of a PPP session, with defaults from the RFCs and pppd."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address

UNSPECIFIED = IPv4Address(0)


@dataclass(frozen=True, slots=True)
class CpConfig:
    """Timers and counters of the option-negotiation automaton (RFC 1661 §4.6)."""

    restart_interval: float = 3.0  # RFC 1661 §4.6: "SHOULD be configurable, default 3 seconds"
    max_configure: int = 10  # Max-Configure
    max_terminate: int = 2  # Max-Terminate
    max_failure: int = 5  # Max-Failure: Naks before Naks turn into Rejects
    passive: bool = False  # stay in Stopped after TO- and wait for the peer (RFC 1661 §4.1 note p)
    silent: bool = False  # send nothing until the peer's first Configure-Request (pppd "silent")


@dataclass(frozen=True, slots=True)
class LcpConfig:
    """What LCP asks for and allows (RFC 1661 §6, RFC 1662 §7)."""

    mru: int = 1500  # our MRU; the option is only sent when it differs from 1500
    min_peer_mru: int = 128  # a smaller MRU from the peer is Nak'd up to this
    accm: int = 0x00000000  # receive ACCM we ask for; 0 asks the peer to escape nothing
    request_accm: bool = True
    request_magic: bool = True
    request_pfc: bool = True
    request_acfc: bool = True
    allow_pfc: bool = True
    allow_acfc: bool = True
    echo_interval: float = 0.0  # seconds between Echo-Requests once Opened; 0 disables
    echo_failure: int = 3  # unanswered Echo-Requests before the link is declared dead
    max_loopback: int = 5  # repeated Magic-Number collisions before "loopback detected"


@dataclass(frozen=True, slots=True)
class PapConfig:
    """PAP (RFC 1334) as authenticatee (credentials) and as authenticator (secrets)."""

    username: str | None = None  # our Peer-ID when the peer asks us to authenticate
    password: str = ""
    require: bool = False  # ask the peer to authenticate with PAP
    secrets: tuple[tuple[str, str], ...] = ()  # (peer-id, password) pairs we accept
    restart_interval: float = 3.0  # Authenticate-Request retransmission
    max_requests: int = 10  # Authenticate-Requests before giving up
    wait_timeout: float = 30.0  # how long the authenticator waits for a request
    max_failures: int = 1  # failed attempts before the authenticator ends the link


@dataclass(frozen=True, slots=True)
class IpcpConfig:
    """IPCP addresses and DNS (RFC 1332, RFC 1877)."""

    local_address: IPv4Address = UNSPECIFIED  # 0.0.0.0 asks the peer to assign one
    peer_address: IPv4Address = UNSPECIFIED  # the address we assign to (and insist on for) the peer
    accept_local: bool = True  # take the address the peer Naks us
    accept_peer: bool = True  # accept any address the peer proposes when we have none for it
    request_dns: bool = False  # ask for DNS servers (client, pppd "usepeerdns")
    dns_servers: tuple[IPv4Address, ...] = ()  # DNS servers we offer (server, pppd "ms-dns")


@dataclass(frozen=True, slots=True)
class PppConfig:
    """Everything a PPP session needs."""

    lcp: LcpConfig = field(default_factory=LcpConfig)
    pap: PapConfig = field(default_factory=PapConfig)
    ipcp: IpcpConfig = field(default_factory=IpcpConfig)
    cp: CpConfig = field(default_factory=CpConfig)
    ncp_cp: CpConfig | None = None  # automaton settings for IPCP; defaults to ``cp``
