"""wipstack's PPP against a real pppd (Debian's, in a User-Mode-Linux guest).

Each test boots a guest whose serial line is one end of a socketpair; wipstack runs on the
other end in a background thread.  Addresses are TEST-NET-1 only, and every guest is
stopped and removed by the harness, also when a test fails.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Iterator, Sequence
from ipaddress import IPv4Address

import pytest

from tests.harness.uml import PppdGuest, skip_unless_uml
from tests.helpers.threaded import ThreadedDriver
from wipstack.drivers.link import SocketLink
from wipstack.drivers.ppp_link import PppLinkDriver
from wipstack.ppp.automaton import State
from wipstack.ppp.config import CpConfig, IpcpConfig, LcpConfig, PapConfig, PppConfig
from wipstack.ppp.events import AuthFailed, IpcpUp, LinkDead, LinkTerminated
from wipstack.wire.icmp import IcmpRepr, IcmpType
from wipstack.wire.ipv4 import IpProtocol, Ipv4Repr

pytestmark = pytest.mark.interop

SERVER_IP = IPv4Address("192.0.2.1")
CLIENT_IP = IPv4Address("192.0.2.2")
DNS = (IPv4Address("198.51.100.53"), IPv4Address("198.51.100.54"))
SECRET = "alice * s3cret *"
UP_TIMEOUT = 30.0
# pppd's restart timer shortened so that teardown and retries do not take 3 s steps
FAST = ["lcp-restart", "1", "ipcp-restart", "1", "pap-restart", "1"]


def server_config(**lcp: object) -> PppConfig:
    """wipstack as the access server: requires PAP, assigns the client's address, offers DNS."""
    return PppConfig(
        lcp=LcpConfig(**lcp),  # type: ignore[arg-type]
        pap=PapConfig(require=True, secrets=(("alice", "s3cret"),)),
        ipcp=IpcpConfig(local_address=SERVER_IP, peer_address=CLIENT_IP, dns_servers=DNS),
        cp=CpConfig(restart_interval=1.0),
    )


def client_config(**lcp: object) -> PppConfig:
    """wipstack as the dialling client with PAP credentials."""
    return PppConfig(
        lcp=LcpConfig(**lcp),  # type: ignore[arg-type]
        pap=PapConfig(username="alice", password="s3cret"),
        ipcp=IpcpConfig(request_dns=True),
        cp=CpConfig(restart_interval=1.0),
    )


@contextlib.contextmanager
def pppd_and_wipstack(
    pppd_options: Sequence[str], config: PppConfig, *, secrets: Sequence[str] = ()
) -> Iterator[tuple[PppdGuest, ThreadedDriver, list[str]]]:
    """Boot pppd with ``pppd_options`` and run wipstack with ``config`` against it."""
    skip_unless_uml()
    log: list[str] = []
    with PppdGuest(["nodetach", "debug", "local", *pppd_options], secrets=secrets) as guest:
        sock: socket.socket = guest.start()
        driver = PppLinkDriver(config, SocketLink(sock), seed=7, log=log.append)
        threaded = ThreadedDriver(driver)
        threaded.start()
        try:
            yield guest, threaded, log
        finally:
            with contextlib.suppress(Exception):
                threaded.stop()
            guest.close(grace=0)


def echo_payload(size: int) -> bytes:
    """ICMP echo data that fills an IP datagram of ``size`` octets with every octet value."""
    return bytes(i & 0xFF for i in range(size - 28))


def echo_request(src: IPv4Address, dst: IPv4Address, seq: int, size: int) -> bytes:
    """An IPv4 ICMP Echo-Request of exactly ``size`` octets."""
    icmp = IcmpRepr.echo(0x5157, seq, echo_payload(size)).emit()
    return Ipv4Repr(src.packed, dst.packed, IpProtocol.ICMP, identification=seq).emit(icmp)


def our_events(threaded: ThreadedDriver, kind: type) -> list[object]:
    return threaded.call(lambda: [e for e in threaded.driver.events if isinstance(e, kind)])


def wait_ours_up(threaded: ThreadedDriver) -> None:
    assert threaded.wait_for(lambda d: d.session.ipcp.result is not None, UP_TIMEOUT), "IPCP never came up"


def test_pppd_client_dials_our_pap_server_and_gets_address_and_dns() -> None:
    options = ["noauth", "noipdefault", "user", "alice", "usepeerdns", *FAST]
    with pppd_and_wipstack(options, server_config(), secrets=[SECRET]) as (guest, ours, log):
        info = guest.wait_ip_up(UP_TIMEOUT)
        wait_ours_up(ours)
        assert info["local"] == str(CLIENT_IP) and info["remote"] == str(SERVER_IP)
        assert info.get("DNS1") == str(DNS[0]) and info.get("DNS2") == str(DNS[1])
        resolv = guest.etc_ppp_file("resolv.conf") or ""
        assert f"nameserver {DNS[0]}" in resolv and f"nameserver {DNS[1]}" in resolv
        result = ours.call(lambda: ours.driver.session.ipcp.result)
        assert result is not None and result.peer_address == CLIENT_IP
        assert "PAP peer authentication succeeded for alice" in log
        guest.wait_for_log(r"PAP authentication succeeded", 5)


def test_our_client_against_pppd_server_requiring_pap() -> None:
    options = ["require-pap", f"{SERVER_IP}:{CLIENT_IP}", *FAST]
    with pppd_and_wipstack(options, client_config(), secrets=[SECRET]) as (guest, ours, log):
        wait_ours_up(ours)
        info = guest.wait_ip_up(UP_TIMEOUT)
        result = ours.call(lambda: ours.driver.session.ipcp.result)
        assert result is not None
        assert result.local_address == CLIENT_IP and result.peer_address == SERVER_IP
        assert info["remote"] == str(CLIENT_IP)
        guest.wait_for_log(r"PAP peer authentication succeeded for alice", 5)


def test_pppd_default_options_get_vj_configure_rejected_and_ccp_ipv6cp_protocol_rejected() -> None:
    # what Debian's pppd does by itself: asyncmap 0, magic, pcomp, accomp, VJ, CCP, and with
    # +ipv6 also IPV6CP; Debian's /etc/ppp/options adds the 30 s echo keep-alive
    options = ["noauth", "+ipv6", "lcp-echo-interval", "30", "lcp-echo-failure", "4", f"{CLIENT_IP}:{SERVER_IP}", *FAST]
    config = PppConfig(ipcp=IpcpConfig(local_address=SERVER_IP), cp=CpConfig(restart_interval=1.0))
    with pppd_and_wipstack(options, config) as (guest, ours, log):
        guest.wait_ip_up(UP_TIMEOUT)
        wait_ours_up(ours)
        pppd_log = guest.log()
        assert re.search(r"sent \[LCP ConfReq id=0x\w+ <asyncmap 0x0> <magic 0x\w+> <pcomp> <accomp>\]", pppd_log)
        assert re.search(r"rcvd \[IPCP ConfRej id=0x\w+ <compress VJ 0f 01>\]", pppd_log)
        guest.wait_for_log(r"rcvd \[LCP ProtRej id=0x\w+ 80 fd", 10)
        guest.wait_for_log(r"rcvd \[LCP ProtRej id=0x\w+ 80 57", 10)
        assert any(re.match(r"sent \[IPCP ConfRej id=0x\w+ <compress VJ 0f 01>\]", line) for line in log)
        protocol_rejects = ours.call(lambda: ours.driver.session.protocol_rejects_sent)
        assert protocol_rejects >= 2
        assert ours.call(lambda: ours.driver.session.ipcp.fsm.state) == State.OPENED


def test_wrong_pap_password_fails_cleanly_on_both_sides() -> None:
    options = ["noauth", "noipdefault", "user", "alice", *FAST]
    with pppd_and_wipstack(options, server_config(), secrets=["alice * wrong *"]) as (guest, ours, log):
        status = guest.wait(UP_TIMEOUT)
        assert status == 19  # pppd: EXIT_AUTH_TOPEER_FAILED
        assert re.search(r"PAP authentication failed", guest.log())
        assert ours.wait_for(lambda d: d.session.is_dead, 15)
        failures = our_events(ours, AuthFailed)
        assert failures and "alice" in failures[0].reason  # type: ignore[attr-defined]
        assert not our_events(ours, IpcpUp)
        assert guest.ip_up() is None


@pytest.mark.parametrize(
    ("variant", "check"),
    [
        (["asyncmap", "0xa0000"], lambda link: link.tx_accm == 0x000A0000),
        (["mru", "296"], lambda link: link.peer_mru == 296),
        (["default-asyncmap"], lambda link: link.tx_accm == 0xFFFFFFFF),
        (["nopcomp", "noaccomp"], lambda link: not link.tx_pfc and not link.tx_acfc),
    ],
    ids=["asyncmap-0xa0000", "mru-296", "default-asyncmap", "nopcomp-noaccomp"],
)
def test_pppd_option_variants_negotiate_and_apply(variant: list[str], check: object) -> None:
    options = ["noauth", f"{CLIENT_IP}:{SERVER_IP}", *variant, *FAST]
    config = PppConfig(ipcp=IpcpConfig(local_address=SERVER_IP), cp=CpConfig(restart_interval=1.0))
    with pppd_and_wipstack(options, config) as (guest, ours, log):
        guest.wait_ip_up(UP_TIMEOUT)
        wait_ours_up(ours)
        link = ours.call(lambda: ours.driver.session.link)
        assert link is not None and check(link)  # type: ignore[operator]
        # the guest's kernel answers pings: every octet value crosses the negotiated framing
        # both ways, in datagrams as large as the peer's MRU allows
        replies: list[bytes] = []
        ours.call(lambda: setattr(ours.driver, "on_ip", replies.append))
        size = min(link.peer_mru, 1500)
        for seq in range(3):
            request = echo_request(SERVER_IP, CLIENT_IP, seq, size)
            assert ours.call(lambda r=request: ours.driver.session.send_ip(r, time.monotonic()))
        assert ours.wait_for(lambda d: len(replies) >= 3, 10), replies
        for seq, reply in enumerate(replies[:3]):
            ip, payload = Ipv4Repr.parse(reply)
            icmp = IcmpRepr.parse(payload)
            assert ip.src == CLIENT_IP.packed and icmp.type == IcmpType.ECHO_REPLY
            assert icmp.echo_seq == seq and icmp.payload == echo_payload(size)


def test_keepalive_both_ways() -> None:
    options = ["noauth", f"{CLIENT_IP}:{SERVER_IP}", "lcp-echo-interval", "1", "lcp-echo-failure", "3", *FAST]
    config = PppConfig(
        lcp=LcpConfig(echo_interval=1.0, echo_failure=3),
        ipcp=IpcpConfig(local_address=SERVER_IP),
        cp=CpConfig(restart_interval=1.0),
    )
    with pppd_and_wipstack(options, config) as (guest, ours, log):
        guest.wait_ip_up(UP_TIMEOUT)
        wait_ours_up(ours)
        time.sleep(10.5)  # pppd sends an Echo-Request every second; we must answer them all
        assert guest.is_running() and "No response to" not in guest.log()
        assert ours.call(lambda: ours.driver.session.lcp.echo_replies) >= 8
        # pppd stops logging echoes once the link runs; our log shows that we answered each
        assert sum(line.startswith("sent [LCP EchoRep") for line in log) >= 8
        frozen_at = time.monotonic()
        guest.freeze()  # the peer falls silent
        try:
            assert ours.wait_for(lambda d: any(isinstance(e, LinkDead) for e in d.events), 30)
            detected = time.monotonic() - frozen_at
        finally:
            guest.thaw()
        dead = our_events(ours, LinkDead)
        assert "No response to 3 echo-requests" in dead[0].reason  # type: ignore[attr-defined]
        print(f"silent pppd declared dead after {detected:.2f} s (interval 1 s x 3 failures)")


def test_we_terminate_and_pppd_ends_cleanly() -> None:
    options = ["noauth", f"{CLIENT_IP}:{SERVER_IP}", *FAST]
    config = PppConfig(ipcp=IpcpConfig(local_address=SERVER_IP), cp=CpConfig(restart_interval=1.0))
    with pppd_and_wipstack(options, config) as (guest, ours, log):
        guest.wait_ip_up(UP_TIMEOUT)
        wait_ours_up(ours)
        ours.call(lambda: ours.driver.session.close(time.monotonic(), "User request"))
        assert ours.wait_for(lambda d: d.session.is_dead, 10)
        guest.wait_for_log(r'rcvd \[LCP TermReq id=0x\w+ "User request"\]', 10)
        guest.wait_for_log(r"sent \[LCP TermAck", 5)
        assert any(line.startswith("rcvd [LCP TermAck") for line in log)
        assert guest.wait(15) in (0, 5, 16)  # pppd exits once the link is gone


def test_pppd_terminates_and_we_end_cleanly() -> None:
    options = ["noauth", f"{CLIENT_IP}:{SERVER_IP}", *FAST]
    config = PppConfig(ipcp=IpcpConfig(local_address=SERVER_IP), cp=CpConfig(restart_interval=1.0))
    with pppd_and_wipstack(options, config) as (guest, ours, log):
        guest.wait_ip_up(UP_TIMEOUT)
        wait_ours_up(ours)
        status = guest.stop_pppd(timeout=15)
        assert status == 5  # pppd: terminated by a signal, after its Terminate-Request was acked
        assert ours.wait_for(lambda d: d.session.is_dead, 10)
        ended = our_events(ours, LinkTerminated)
        assert ended and ended[0].reason == "User request"  # type: ignore[attr-defined]
        assert any(line.startswith("sent [LCP TermAck") for line in log)
