"""IPCP (RFC 1332, RFC 1877 DNS) as server (assigns addresses, offers DNS) and as client.

``Ipcp`` is driven through its automaton (``ipcp.fsm``) with explicit ``now`` values.
"""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from wipstack.errors import DropReason
from wipstack.ppp.automaton import State
from wipstack.ppp.config import UNSPECIFIED, CpConfig, IpcpConfig
from wipstack.ppp.cp import LayerEvent
from wipstack.ppp.ipcp import Ipcp, IpcpResult
from wipstack.wire.cp import CpCode, CpPacket, RawOption, emit_options, parse_options
from wipstack.wire.ipcp import IpcpOptionType, decode_ipcp_option, ipcp_option

SERVER_IP = IPv4Address("192.0.2.1")
CLIENT_IP = IPv4Address("192.0.2.2")
OTHER_IP = IPv4Address("192.0.2.99")
DNS1 = IPv4Address("198.51.100.53")
DNS2 = IPv4Address("198.51.100.54")

VJ = RawOption(IpcpOptionType.IP_COMPRESSION_PROTOCOL, bytes.fromhex("002d0f01"))


def addr(address: IPv4Address) -> RawOption:
    return ipcp_option(IpcpOptionType.IP_ADDRESS, address)


def dns1(address: IPv4Address) -> RawOption:
    return ipcp_option(IpcpOptionType.PRIMARY_DNS, address)


def dns2(address: IPv4Address) -> RawOption:
    return ipcp_option(IpcpOptionType.SECONDARY_DNS, address)


def server(dns: tuple[IPv4Address, ...] = (DNS1, DNS2), **cp: object) -> Ipcp:
    config = IpcpConfig(local_address=SERVER_IP, peer_address=CLIENT_IP, dns_servers=dns)
    return Ipcp(config, CpConfig(**cp))  # type: ignore[arg-type]


def client(request_dns: bool = True, **config: object) -> Ipcp:
    return Ipcp(IpcpConfig(request_dns=request_dns, **config), CpConfig())  # type: ignore[arg-type]


def packet(code: int, identifier: int, options: tuple[RawOption, ...] | list[RawOption] = ()) -> bytes:
    return CpPacket(code, identifier, emit_options(options)).emit()


def start(ipcp: Ipcp, now: float = 0.0) -> CpPacket:
    ipcp.fsm.open(now)
    ipcp.fsm.up(now)
    [ours] = ipcp.fsm.drain_packets()
    ipcp.fsm.drain_layer_events()
    return ours


def judge(ipcp: Ipcp, *options: RawOption, now: float = 1.0) -> CpPacket:
    """The answer to a peer Configure-Request with ``options``."""
    ipcp.fsm.receive(packet(CpCode.CONFIGURE_REQUEST, 0x42, options), now)
    [answer] = ipcp.fsm.drain_packets()
    assert answer.identifier == 0x42
    return answer


def respond(ipcp: Ipcp, ours: CpPacket, code: CpCode, *options: RawOption, now: float = 1.0) -> list[CpPacket]:
    ipcp.fsm.receive(packet(code, ours.identifier, options), now)
    return ipcp.fsm.drain_packets()


def values(p: CpPacket) -> dict[int, object]:
    return {o.type: decode_ipcp_option(o) for o in parse_options(p.data)}


# ------------------------------------------------------------------------------- server


class TestServer:
    def test_server_requests_its_own_address_only(self) -> None:
        assert parse_options(start(server()).data) == [addr(SERVER_IP)]

    @pytest.mark.parametrize("proposed", [UNSPECIFIED, OTHER_IP], ids=["0.0.0.0", "wrong"])
    def test_server_naks_address_with_the_assigned_one(self, proposed: IPv4Address) -> None:
        ipcp = server()
        start(ipcp)
        answer = judge(ipcp, addr(proposed))
        assert answer.code == CpCode.CONFIGURE_NAK
        assert parse_options(answer.data) == [addr(CLIENT_IP)]

    def test_server_acks_the_assigned_address(self) -> None:
        ipcp = server()
        start(ipcp)
        answer = judge(ipcp, addr(CLIENT_IP), dns1(DNS1), dns2(DNS2))
        assert answer.code == CpCode.CONFIGURE_ACK
        assert answer.data == emit_options([addr(CLIENT_IP), dns1(DNS1), dns2(DNS2)])
        assert ipcp.his.address == CLIENT_IP

    def test_server_naks_zero_dns_with_the_offered_servers(self) -> None:
        ipcp = server()
        start(ipcp)
        answer = judge(ipcp, addr(CLIENT_IP), dns1(UNSPECIFIED), dns2(UNSPECIFIED))
        assert answer.code == CpCode.CONFIGURE_NAK
        assert parse_options(answer.data) == [dns1(DNS1), dns2(DNS2)]

    def test_server_naks_wrong_dns(self) -> None:
        ipcp = server()
        start(ipcp)
        answer = judge(ipcp, addr(CLIENT_IP), dns1(OTHER_IP))
        assert answer.code == CpCode.CONFIGURE_NAK
        assert parse_options(answer.data) == [dns1(DNS1)]

    def test_server_without_dns_rejects_dns_options(self) -> None:
        ipcp = server(dns=())
        start(ipcp)
        answer = judge(ipcp, addr(UNSPECIFIED), dns1(UNSPECIFIED), dns2(UNSPECIFIED))
        assert answer.code == CpCode.CONFIGURE_REJECT  # Reject wins over the address Nak
        assert parse_options(answer.data) == [dns1(UNSPECIFIED), dns2(UNSPECIFIED)]

    def test_server_with_one_dns_rejects_the_secondary(self) -> None:
        ipcp = server(dns=(DNS1,))
        start(ipcp)
        answer = judge(ipcp, addr(CLIENT_IP), dns1(DNS1), dns2(UNSPECIFIED))
        assert answer.code == CpCode.CONFIGURE_REJECT
        assert parse_options(answer.data) == [dns2(UNSPECIFIED)]

    @pytest.mark.parametrize(
        "octets",
        [
            "0206002d0f01",  # VJ compression, max slot 15, compress slot id
            "010ac0000202c0000201",  # IP-Addresses (RFC 1172)
            "8206c6336435",  # primary NBNS
            "8406c6336436",  # secondary NBNS
            "0204 0061",  # some other compression protocol
            "6306c0000202",  # unassigned type
        ],
        ids=["vj", "ip-addresses", "nbns1", "nbns2", "other-compression", "unassigned"],
    )
    def test_server_rejects_unsupported_options_verbatim(self, octets: str) -> None:
        ipcp = server()
        start(ipcp)
        [option] = parse_options(bytes.fromhex(octets))
        answer = judge(ipcp, option, addr(CLIENT_IP))
        assert answer.code == CpCode.CONFIGURE_REJECT
        assert answer.data == bytes.fromhex(octets)

    def test_server_rejects_duplicate_address_option(self) -> None:
        ipcp = server()
        start(ipcp)
        answer = judge(ipcp, addr(CLIENT_IP), addr(CLIENT_IP))
        assert answer.code == CpCode.CONFIGURE_REJECT
        assert parse_options(answer.data) == [addr(CLIENT_IP)]

    def test_server_rejects_malformed_address(self) -> None:
        ipcp = server()
        start(ipcp)
        bad = RawOption(IpcpOptionType.IP_ADDRESS, b"\xc0\x00\x02")
        answer = judge(ipcp, bad)
        assert answer.code == CpCode.CONFIGURE_REJECT
        assert answer.data == bad.emit()

    def test_server_rejects_address_after_max_failure_naks(self) -> None:
        ipcp = server(max_failure=2)
        start(ipcp)
        codes = [judge(ipcp, addr(OTHER_IP), now=float(n)).code for n in range(3)]
        assert codes == [CpCode.CONFIGURE_NAK, CpCode.CONFIGURE_NAK, CpCode.CONFIGURE_REJECT]

    def test_server_naks_a_request_without_address_with_the_assigned_one(self) -> None:
        ipcp = server()
        start(ipcp)
        answer = judge(ipcp, dns1(DNS1))
        assert answer.code == CpCode.CONFIGURE_NAK
        assert addr(CLIENT_IP) in parse_options(answer.data)

    def test_server_layer_up_result(self) -> None:
        ipcp = server()
        ours = start(ipcp)
        respond(ipcp, ours, CpCode.CONFIGURE_ACK, *parse_options(ours.data))
        judge(ipcp, addr(CLIENT_IP))
        assert ipcp.fsm.state == State.OPENED
        assert ipcp.result == IpcpResult(SERVER_IP, CLIENT_IP, ())


# ------------------------------------------------------------------------------- client


class TestClient:
    def test_client_asks_for_address_and_dns_with_zeros(self) -> None:
        ours = start(client())
        assert parse_options(ours.data) == [addr(UNSPECIFIED), dns1(UNSPECIFIED), dns2(UNSPECIFIED)]

    def test_client_without_request_dns_asks_only_for_address(self) -> None:
        assert parse_options(start(client(request_dns=False)).data) == [addr(UNSPECIFIED)]

    def test_client_takes_naked_address_and_dns(self) -> None:
        ipcp = client()
        ours = start(ipcp)
        [nxt] = respond(ipcp, ours, CpCode.CONFIGURE_NAK, addr(CLIENT_IP), dns1(DNS1), dns2(DNS2))
        assert nxt.code == CpCode.CONFIGURE_REQUEST
        assert parse_options(nxt.data) == [addr(CLIENT_IP), dns1(DNS1), dns2(DNS2)]

    def test_client_result_after_ack(self) -> None:
        ipcp = client()
        ours = start(ipcp)
        [ours] = respond(ipcp, ours, CpCode.CONFIGURE_NAK, addr(CLIENT_IP), dns1(DNS1), dns2(DNS2))
        respond(ipcp, ours, CpCode.CONFIGURE_ACK, *parse_options(ours.data), now=2.0)
        answer = judge(ipcp, addr(SERVER_IP), now=2.0)
        assert answer.code == CpCode.CONFIGURE_ACK
        assert ipcp.fsm.drain_layer_events() == [LayerEvent.UP]
        assert ipcp.result == IpcpResult(CLIENT_IP, SERVER_IP, (DNS1, DNS2))

    def test_client_dns_reject_stops_asking_for_dns(self) -> None:
        ipcp = client()
        ours = start(ipcp)
        [nxt] = respond(ipcp, ours, CpCode.CONFIGURE_REJECT, dns1(UNSPECIFIED), dns2(UNSPECIFIED))
        assert parse_options(nxt.data) == [addr(UNSPECIFIED)]
        assert ipcp.fatal is None

    def test_client_address_reject_when_asking_zero_is_fatal(self) -> None:
        ipcp = client()
        ours = start(ipcp)
        respond(ipcp, ours, CpCode.CONFIGURE_REJECT, addr(UNSPECIFIED))
        assert ipcp.fatal is not None

    def test_client_with_configured_address_survives_address_reject(self) -> None:
        ipcp = client(request_dns=False, local_address=CLIENT_IP)
        ours = start(ipcp)
        [nxt] = respond(ipcp, ours, CpCode.CONFIGURE_REJECT, addr(CLIENT_IP))
        assert ipcp.fatal is None
        assert nxt.data == b""

    def test_client_reject_of_options_not_sent_dropped(self) -> None:
        ipcp = client()
        ours = start(ipcp)
        assert respond(ipcp, ours, CpCode.CONFIGURE_REJECT, VJ) == []
        assert ipcp.fsm.drops[DropReason.BAD_OPTION] == 1

    def test_client_with_fixed_address_ignores_nak_when_not_accepting(self) -> None:
        ipcp = client(request_dns=False, local_address=CLIENT_IP, accept_local=False)
        ours = start(ipcp)
        [nxt] = respond(ipcp, ours, CpCode.CONFIGURE_NAK, addr(OTHER_IP))
        assert values(nxt)[IpcpOptionType.IP_ADDRESS] == CLIENT_IP

    def test_client_endless_address_naks_of_zero_become_fatal_after_max_failure(self) -> None:
        ipcp = Ipcp(IpcpConfig(), CpConfig(max_failure=2))
        ours = start(ipcp)
        for n in range(3):
            assert ipcp.fatal is None
            [ours] = respond(ipcp, ours, CpCode.CONFIGURE_NAK, addr(UNSPECIFIED), now=float(n))
        assert ipcp.fatal is not None

    def test_client_dns_naks_past_max_failure_drop_dns(self) -> None:
        ipcp = Ipcp(IpcpConfig(local_address=CLIENT_IP, request_dns=True), CpConfig(max_failure=1))
        ours = start(ipcp)
        [ours] = respond(ipcp, ours, CpCode.CONFIGURE_NAK, dns1(DNS1))
        [ours] = respond(ipcp, ours, CpCode.CONFIGURE_NAK, dns1(DNS1), now=2.0)
        assert IpcpOptionType.PRIMARY_DNS not in values(ours)

    @pytest.mark.parametrize("proposed", [SERVER_IP, OTHER_IP])
    def test_client_accepts_any_peer_address_when_it_has_none_to_assign(self, proposed: IPv4Address) -> None:
        ipcp = client()
        start(ipcp)
        assert judge(ipcp, addr(proposed)).code == CpCode.CONFIGURE_ACK

    def test_client_rejects_peer_asking_for_an_address(self) -> None:
        ipcp = client()
        start(ipcp)
        answer = judge(ipcp, addr(UNSPECIFIED))
        assert answer.code == CpCode.CONFIGURE_REJECT

    def test_client_not_accepting_peer_addresses_rejects_them(self) -> None:
        ipcp = client(accept_peer=False)
        start(ipcp)
        assert judge(ipcp, addr(SERVER_IP)).code == CpCode.CONFIGURE_REJECT

    def test_assigned_address_is_acked_when_peer_addresses_are_not_accepted(self) -> None:
        # a server that assigns the peer's address (and takes no other): the Nak, then the Ack
        config = IpcpConfig(local_address=SERVER_IP, peer_address=CLIENT_IP, accept_peer=False)
        ipcp = Ipcp(config, CpConfig())
        start(ipcp)
        answer = judge(ipcp, addr(UNSPECIFIED))
        assert answer.code == CpCode.CONFIGURE_NAK and values(answer)[IpcpOptionType.IP_ADDRESS] == CLIENT_IP
        assert judge(ipcp, addr(CLIENT_IP)).code == CpCode.CONFIGURE_ACK
        assert judge(ipcp, addr(SERVER_IP)).code == CpCode.CONFIGURE_NAK

    def test_client_offering_no_dns_rejects_peer_dns_request(self) -> None:
        ipcp = client()
        start(ipcp)
        answer = judge(ipcp, addr(SERVER_IP), dns1(UNSPECIFIED))
        assert answer.code == CpCode.CONFIGURE_REJECT
        assert parse_options(answer.data) == [dns1(UNSPECIFIED)]

    def test_client_rejected_address_without_peer_address_falls_back_to_config(self) -> None:
        ipcp = client(request_dns=False)
        ours = start(ipcp)
        [ours] = respond(ipcp, ours, CpCode.CONFIGURE_NAK, addr(CLIENT_IP))
        respond(ipcp, ours, CpCode.CONFIGURE_ACK, addr(CLIENT_IP))
        judge(ipcp)  # the peer asks for nothing
        assert ipcp.result == IpcpResult(CLIENT_IP, UNSPECIFIED, ())

    def test_client_nak_with_unknown_hint_still_assigns_the_address(self) -> None:
        ipcp = client(request_dns=False)
        ours = start(ipcp)
        [nxt] = respond(ipcp, ours, CpCode.CONFIGURE_NAK, addr(CLIENT_IP), RawOption(0x63, b"\x01\x02"))
        assert values(nxt)[IpcpOptionType.IP_ADDRESS] == CLIENT_IP

    def test_client_peer_acking_zero_address_is_not_an_address(self) -> None:
        ipcp = client(request_dns=False)
        ours = start(ipcp)
        respond(ipcp, ours, CpCode.CONFIGURE_ACK, addr(UNSPECIFIED))
        judge(ipcp, addr(SERVER_IP))
        assert ipcp.fatal is not None or ipcp.result is None

    def test_layer_down_clears_the_result(self) -> None:
        ipcp = server()
        ours = start(ipcp)
        respond(ipcp, ours, CpCode.CONFIGURE_ACK, *parse_options(ours.data))
        judge(ipcp, addr(CLIENT_IP))
        ipcp.fsm.receive(CpPacket(CpCode.TERMINATE_REQUEST, 1).emit(), 5.0)
        assert ipcp.result is None

    @pytest.mark.parametrize("code", [9, 10, 11, 12])
    def test_lcp_only_codes_are_code_rejected(self, code: int) -> None:
        ipcp = server()
        start(ipcp)
        ipcp.fsm.receive(CpPacket(code, 1, bytes(4)).emit(), 1.0)
        [answer] = ipcp.fsm.drain_packets()
        assert answer.code == CpCode.CODE_REJECT
