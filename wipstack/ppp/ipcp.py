"""IPCP (RFC 1332) with the DNS extensions of RFC 1877, for client and server roles.

Client: we ask for 0.0.0.0 (or our configured address) and take the address the peer Naks
back; with ``request_dns`` we also ask for DNS servers the same way.  Server: we Nak the
peer's address with the one we assign, offer our DNS servers, and Reject VJ compression
and everything else we do not implement.  ``fatal`` reports a negotiation that cannot
succeed (no address for us); the session closes IPCP with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from ipaddress import IPv4Address

from wipstack.errors import MalformedPacket
from wipstack.ppp.automaton import Event
from wipstack.ppp.config import UNSPECIFIED, CpConfig, IpcpConfig
from wipstack.ppp.cp import ControlProtocol, Verdict
from wipstack.wire.cp import CpCode, CpPacket, RawOption
from wipstack.wire.ipcp import IPCP_OPTION_VALUES, IpcpOptionType, decode_ipcp_option, ipcp_option
from wipstack.wire.ppp import PppProtocol

_DNS_SLOTS = {IpcpOptionType.PRIMARY_DNS: 0, IpcpOptionType.SECONDARY_DNS: 1}


@dataclass(frozen=True, slots=True)
class IpcpOptions:
    """One of the four IPCP option sets; None means "not negotiated"."""

    address: IPv4Address | None = None
    dns1: IPv4Address | None = None
    dns2: IPv4Address | None = None


@dataclass(frozen=True, slots=True)
class IpcpResult:
    """The outcome of IPCP: our address, the peer's, and the DNS servers we learned."""

    local_address: IPv4Address
    peer_address: IPv4Address
    dns_servers: tuple[IPv4Address, ...]


class Ipcp:
    """The IPCP option handler; ``fsm`` is its RFC 1661 automaton."""

    def __init__(self, config: IpcpConfig, cp_config: CpConfig) -> None:
        self.config = config
        self.want = IpcpOptions(
            address=config.local_address,
            dns1=UNSPECIFIED if config.request_dns else None,
            dns2=UNSPECIFIED if config.request_dns else None,
        )
        self.request = self.want
        self.got = IpcpOptions()
        self.his = IpcpOptions()
        self.result: IpcpResult | None = None
        self.fatal: str | None = None
        self.fsm = ControlProtocol("IPCP", PppProtocol.IPCP, self, cp_config)

    # ------------------------------------------------------------- OptionHandler
    def reset(self) -> None:
        """Start again from what we want."""
        self.request = self.want
        self.got = IpcpOptions()

    def build_request(self) -> list[RawOption]:
        """IP-Address, then the DNS options we still ask for."""
        req = self.request
        options = []
        if req.address is not None:
            options.append(ipcp_option(IpcpOptionType.IP_ADDRESS, req.address))
        if req.dns1 is not None:
            options.append(ipcp_option(IpcpOptionType.PRIMARY_DNS, req.dns1))
        if req.dns2 is not None:
            options.append(ipcp_option(IpcpOptionType.SECONDARY_DNS, req.dns2))
        return options

    def request_acked(self, options: list[RawOption]) -> None:
        """What we asked for is now ours."""
        self.got = self.request

    def apply_nak(self, options: list[RawOption], treat_as_reject: bool) -> bool:
        """Take the address and DNS servers the peer suggests (RFC 1332 §3.3, RFC 1877 §1)."""
        req = self.request
        for option in options:
            if option.type not in IPCP_OPTION_VALUES:
                continue  # RFC 1661 §5.3: a hint about an option we do not know is ignored
            try:
                value = decode_ipcp_option(option)
            except MalformedPacket:
                return False
            kind = option.type
            if kind == IpcpOptionType.IP_ADDRESS and req.address is not None:
                if treat_as_reject and req.address == UNSPECIFIED:
                    self.fatal = "peer keeps refusing our address request"
                elif req.address == UNSPECIFIED or self.config.accept_local:
                    req = replace(req, address=value)
            elif kind == IpcpOptionType.PRIMARY_DNS and req.dns1 is not None:
                req = replace(req, dns1=None if treat_as_reject else value)
            elif kind == IpcpOptionType.SECONDARY_DNS and req.dns2 is not None:
                req = replace(req, dns2=None if treat_as_reject else value)
        self.request = req
        return True

    def apply_reject(self, options: list[RawOption]) -> bool:
        """Stop asking for what the peer rejects; without an address we cannot run IP."""
        sent = {(o.type, o.data) for o in self.build_request()}
        if any((o.type, o.data) not in sent for o in options):
            return False
        req = self.request
        for option in options:
            if option.type == IpcpOptionType.IP_ADDRESS:
                if req.address == UNSPECIFIED:
                    self.fatal = "peer refused to assign us an IP address"
                req = replace(req, address=None)
            elif option.type == IpcpOptionType.PRIMARY_DNS:
                req = replace(req, dns1=None)
            elif option.type == IpcpOptionType.SECONDARY_DNS:
                req = replace(req, dns2=None)
        self.request = req
        return True

    def judge_request(self, options: list[RawOption], reject_if_disagree: bool) -> Verdict:
        """Ack, Nak or Reject the peer's request; VJ compression is always Rejected."""
        naks: list[RawOption] = []
        rejects: list[RawOption] = []
        his = IpcpOptions()
        seen: set[int] = set()
        for option in options:
            kind = option.type
            if kind in seen:
                rejects.append(option)
                continue
            seen.add(kind)
            try:
                value = decode_ipcp_option(option)
            except MalformedPacket:
                rejects.append(option)
                continue
            suggestion: RawOption | None = None
            if kind == IpcpOptionType.IP_ADDRESS:
                assigned = self.config.peer_address
                if assigned != UNSPECIFIED and value != assigned:
                    suggestion = ipcp_option(IpcpOptionType.IP_ADDRESS, assigned)  # RFC 1332 §3.3
                elif assigned != UNSPECIFIED:
                    his = replace(his, address=value)  # the address we assign: agreed
                elif value == UNSPECIFIED or not self.config.accept_peer:
                    rejects.append(option)  # the peer wants an address and we have none for it
                    continue
                else:
                    his = replace(his, address=value)
            elif kind in _DNS_SLOTS:
                slot = _DNS_SLOTS[IpcpOptionType(kind)]
                if slot >= len(self.config.dns_servers):
                    rejects.append(option)  # RFC 1877: we have no such server to offer
                    continue
                offered = self.config.dns_servers[slot]
                if value != offered:
                    suggestion = ipcp_option(IpcpOptionType(kind), offered)
                else:
                    his = replace(his, **{"dns1" if slot == 0 else "dns2": value})
            else:
                rejects.append(option)  # IP-Compression-Protocol (VJ), IP-Addresses, NBNS, unknown
                continue
            if suggestion is not None and reject_if_disagree:
                rejects.append(option)  # RFC 1661 §4.6 Max-Failure: Naks have become Rejects
            elif suggestion is not None:
                naks.append(suggestion)
        assigned = self.config.peer_address
        if IpcpOptionType.IP_ADDRESS not in seen and assigned != UNSPECIFIED and not reject_if_disagree:
            # RFC 1332 §3.3: the peer did not ask for an address; append the one we assign
            naks.append(ipcp_option(IpcpOptionType.IP_ADDRESS, assigned))
        if rejects:
            return Verdict(CpCode.CONFIGURE_REJECT, tuple(rejects))
        if naks:
            return Verdict(CpCode.CONFIGURE_NAK, tuple(naks))
        self.his = his
        return Verdict(CpCode.CONFIGURE_ACK, tuple(options))

    def layer_up(self, now: float) -> None:
        """Record the negotiated addresses."""
        local = self.got.address if self.got.address is not None else self.config.local_address
        peer = self.his.address if self.his.address is not None else self.config.peer_address
        dns = tuple(d for d in (self.got.dns1, self.got.dns2) if d is not None and d != UNSPECIFIED)
        if local == UNSPECIFIED:
            # the peer acked 0.0.0.0: we still have no address (pppd: "Could not determine
            # local IP address")
            self.fatal = "Could not determine local IP address"
        self.result = IpcpResult(local, peer, dns)

    def layer_down(self, now: float) -> None:
        """The addresses are no longer valid."""
        self.result = None

    def layer_finished(self, now: float) -> None:
        """Nothing to release."""

    def extra_event(self, packet: CpPacket) -> Event | None:
        """IPCP has no codes beyond 1-7: everything else is Code-Rejected (RUC)."""
        return None

    def extra_received(self, packet: CpPacket, now: float) -> list[CpPacket]:
        """Never called: ``extra_event`` classifies nothing as RXR."""
        return []
