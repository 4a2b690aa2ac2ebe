"""GSM and GPRS bearers through ``wipstack modem-sim`` to a real pppd, the operator's side, in UML.

::

    this test --AT--> UART1  wipstack modem  --27.007 on a pty-->  wipstack modem-sim
                                                                     | after CONNECT: bridged
                                                                     v
                                                      pppd in a UML guest (ttyS1 = the network pty)

* GPRS: ``AT+WIPBR=1,6``, APN, credentials, ``AT+WIPBR=4,6,0``: the module's dialer runs the
  27.007 dialogue (CPIN, CGREG, CGDCONT, ATD*99***1#), then wipstack's PPP client logs in to
  pppd (PAP) and gets pppd's addresses and DNS; a TCP exchange with an echo server in the
  guest; pppd hanging up gives ``+CME ERROR: 816`` and ``+WIPBR: 6,0``; a wrong password 814.
* GSM dial-out (``ATD<number>``) to pppd, and dial-in: pppd in the guest is the caller, the
  simulator rings (``ring`` on its control socket), the module answers after the ring count
  (option 5) and serves PPP (``+WIPBR: 5,1,...``).
* The simulator's failures through the real processes: busy 807, no answer 808, no SIM 810,
  registration denied 812, a modem that stops answering 848, and the modem line dropping
  mid-transfer (809).
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.uml import PppdGuest, skip_unless_uml
from tests.interop.at_helpers import (
    AGENT_SCRIPT,
    AtClient,
    ModemProcess,
    PeerAgent,
    all_byte_values,
    dle_escape,
    start_modem,
)
from tests.interop.cellular_helpers import ModemSimProcess, start_modem_sim

pytestmark = pytest.mark.interop

OPERATOR = "203.0.113.1"  # pppd's end: the operator's access server
ASSIGNED = "203.0.113.2"  # the address pppd hands the module
DNS1, DNS2 = "203.0.113.53", "198.51.100.53"
USER, PASSWORD = "user", "pass"
TCP_ECHO_PORT, UDP_ECHO_PORT = 7007, 7008
FAST = ["lcp-restart", "1", "ipcp-restart", "1", "pap-restart", "1"]
#: pppd as the access server: waits silently for the caller's LCP, requires PAP, assigns addresses and DNS.
ACCESS_SERVER = ["nodetach", "debug", "local", "silent", "passive", "require-pap", f"{OPERATOR}:{ASSIGNED}",
                 "ms-dns", DNS1, "ms-dns", DNS2, *FAST]  # fmt: skip


@contextlib.contextmanager
def cellular_rig(directory: Path, *sim_args: str, guest: PppdGuest | None = None, modem_args: tuple[str, ...] = (),
                 network_exec: str | None = None) -> Iterator[tuple[ModemSimProcess, ModemProcess, AtClient]]:
    """modem-sim (its network pty on ``guest``'s serial line if given) and a module using it as its modem."""
    sim = start_modem_sim(directory, *sim_args, network_exec=network_exec)
    modem: ModemProcess | None = None
    try:
        if guest is not None:
            guest.start_on_tty(str(sim.network))
        modem = start_modem(directory, "--modem", str(sim.dte), "--seed", "5", *modem_args)
        at = modem.client(1)
        at.command("AT+CMEE=1")
        at.command("AT+WIPCFG=1")
        yield sim, modem, at
    finally:
        if modem is not None:
            modem.stop()
        if guest is not None:
            guest.close(grace=0)
        sim.stop()


def story(sim: ModemSimProcess, modem: ModemProcess, at: AtClient, guest: PppdGuest | None) -> str:
    text = f"{at.story()}\n--- modem stderr:\n{modem.stderr}\n--- modem-sim stderr:\n{sim.stderr[-4000:]}"
    if guest is not None:
        text += f"\n--- guest log tail:\n{guest.log_tail(30)}"
    return text


def gprs_options(at: AtClient, password: str = PASSWORD) -> None:
    at.command("AT+WIPBR=1,6")
    at.command('AT+WIPBR=2,6,11,"internet"')
    at.command(f'AT+WIPBR=2,6,0,"{USER}"')
    at.command(f'AT+WIPBR=2,6,1,"{password}"')


def test_gprs_bearer_through_the_simulator_to_pppd_tcp_then_hang_up() -> None:
    skip_unless_uml()
    cmd = f"exec python3 /run/agent.py {OPERATOR} /run {TCP_ECHO_PORT} {UDP_ECHO_PORT} 300"
    guest = PppdGuest(ACCESS_SERVER, secrets=[f"{USER} * {PASSWORD} *"], cmd=cmd, name="gprs", up_timeout=120)
    with tempfile.TemporaryDirectory(prefix="ws-gprs-") as tmp, \
            cellular_rig(Path(tmp), "--apn", "internet", guest=guest) as (sim, modem, at):  # fmt: skip
        (guest.run_dir / "agent.py").write_text(AGENT_SCRIPT)
        agent = PeerAgent(guest.run_dir)
        gprs_options(at)
        response = at.command("AT+WIPBR=4,6,0", timeout=90, expect=None)
        assert response.final == "OK", story(sim, modem, at, guest)
        assert at.command("AT+WIPBR=3,6,15").lines == [f'+WIPBR: 6,15,"{ASSIGNED}"']
        assert at.command("AT+WIPBR=3,6,16").lines == [f'+WIPBR: 6,16,"{OPERATOR}"']
        assert at.command("AT+WIPBR=3,6,17").lines == [f'+WIPBR: 6,17,"{DNS1}"']
        assert at.command("AT+WIPBR=3,6,18").lines == [f'+WIPBR: 6,18,"{DNS2}"']
        log = guest.log()
        assert "PAP peer authentication succeeded" in log or "user user logged in" in log, guest.log_tail()
        # a TCP exchange with the echo server in the guest, every octet value, continuous mode
        agent.wait_ready(60, alive=guest.is_running)
        data = all_byte_values(32768, seed=3)
        at.command(f'AT+WIPCREATE=2,1,"{OPERATOR}",{TCP_ECHO_PORT}')
        at.wait_for(r"\+WIPREADY: 2,1", 30)
        at.command("AT+WIPDATA=2,1,1", expect="CONNECT")
        at.send(dle_escape(data))
        assert at.read_unescaped(len(data), timeout=90) == data, story(sim, modem, at, guest)
        at.escape()
        at.command("AT+WIPCLOSE=2,1")
        # the operator hangs up: pppd terminates the link
        guest.stop_pppd()
        at.wait_for(r"^\+CME ERROR: 816$", 30)
        at.wait_for(r"^\+WIPBR: 6,0$", 10)
        assert at.command("AT+WIPBR?").lines == ["+WIPBR: 6,0"]
        assert "calls=1" in sim.control("status"), sim.control("status")


def test_gprs_wrong_credentials_give_814() -> None:
    skip_unless_uml()
    guest = PppdGuest(ACCESS_SERVER, secrets=[f"{USER} * {PASSWORD} *"], name="gprs-auth", up_timeout=120)
    with tempfile.TemporaryDirectory(prefix="ws-gprs-") as tmp, \
            cellular_rig(Path(tmp), guest=guest) as (sim, modem, at):  # fmt: skip
        gprs_options(at, password="wrong")
        response = at.command("AT+WIPBR=4,6,0", timeout=90, expect=None)
        assert response.final == "+CME ERROR: 814", story(sim, modem, at, guest)
        assert at.command("AT+WIPBR?").lines == ["+WIPBR: 6,0"]


def test_gsm_dial_out_to_pppd_and_stop() -> None:
    skip_unless_uml()
    guest = PppdGuest(ACCESS_SERVER, secrets=[f"{USER} * {PASSWORD} *"], name="gsm-out", up_timeout=120)
    with tempfile.TemporaryDirectory(prefix="ws-gsm-") as tmp, \
            cellular_rig(Path(tmp), guest=guest) as (sim, modem, at):  # fmt: skip
        at.command("AT+WIPBR=1,5")
        at.command('AT+WIPBR=2,5,2,"+15550100"')
        at.command(f'AT+WIPBR=2,5,0,"{USER}"')
        at.command(f'AT+WIPBR=2,5,1,"{PASSWORD}"')
        response = at.command("AT+WIPBR=4,5,0", timeout=90, expect=None)
        assert response.final == "OK", story(sim, modem, at, guest)
        assert at.command("AT+WIPBR=3,5,15").lines == [f'+WIPBR: 5,15,"{ASSIGNED}"']
        info = guest.wait_ip_up(20)
        assert info["local"] == OPERATOR and info["remote"] == ASSIGNED, info
        at.command("AT+WIPBR=5,5")
        guest.wait_for_log(r"(LCP terminated by peer|Connection terminated)", 20)
        assert "ATD+15550100" in sim.stderr


def test_gsm_dial_in_from_pppd_after_the_ring_count() -> None:
    skip_unless_uml()
    caller = ["nodetach", "debug", "local", "noauth", "noipdefault", "user", USER, "lcp-max-configure", "100", *FAST]
    guest = PppdGuest(caller, secrets=[f"{USER} * {PASSWORD} *"], name="gsm-in", up_timeout=120)
    with tempfile.TemporaryDirectory(prefix="ws-gsm-") as tmp, \
            cellular_rig(Path(tmp), "--ring-interval", "0.5", guest=guest) as (sim, modem, at):  # fmt: skip
        at.command("AT+WIPBR=1,5")
        at.command("AT+WIPBR=2,5,5,3")  # answer on the third RING
        at.command('AT+WIPBR=2,5,15,"198.51.100.1"')
        at.command('AT+WIPBR=2,5,16,"198.51.100.2"')
        at.command(f'AT+WIPBR=4,5,1,"{USER}","{PASSWORD}"', timeout=20)
        assert sim.control("ring +15550199") == "OK"
        up = at.wait_for(r"^\+WIPBR: 5,1,([0-9.]+),([0-9.]+),.*$", 60)
        assert up[1] == "198.51.100.1" and up[2] == "198.51.100.2", story(sim, modem, at, guest)
        info = guest.wait_ip_up(30)
        assert info["local"] == "198.51.100.2" and info["remote"] == "198.51.100.1", info
        log = sim.stderr
        before_answer = log[: log.index("ATA")]  # the module answered on the third RING, not earlier
        assert before_answer.count("RING") == 3, log[-3000:]


def test_simulated_failures_reach_the_host_as_their_codes() -> None:
    with tempfile.TemporaryDirectory(prefix="ws-cell-") as tmp, \
            cellular_rig(Path(tmp), "--connect-delay", "0.2",
                         modem_args=("--modem-registration-timeout", "3")) as (sim, modem, at):  # fmt: skip
        at.command("AT+WIPBR=1,5")
        at.command('AT+WIPBR=2,5,2,"+15550100"')
        for result, code in (("busy", 807), ("no-answer", 808), ("no-carrier", 809)):
            assert sim.control(f"dial-result {result}") == "OK"
            response = at.command("AT+WIPBR=4,5,0", timeout=30, expect=None)
            assert response.final == f"+CME ERROR: {code}", story(sim, modem, at, None)
        at.command("AT+WIPBR=0,5")
        gprs_options(at)
        for control, code in (("sim absent", 810), ("sim ready", None), ("cgreg 3", 812), ("cgreg 2", 847),
                              ("cgreg 1", None), ("mute on", 848)):  # fmt: skip
            assert sim.control(control) == "OK", control
            if code is None:
                continue
            response = at.command("AT+WIPBR=4,6,0", timeout=60, expect=None)
            assert response.final == f"+CME ERROR: {code}", (control, story(sim, modem, at, None))
        assert sim.control("mute off") == "OK"
        assert at.command("AT").final == "OK"  # the module never wedged


def test_modem_line_dropping_mid_transfer_gives_809() -> None:
    skip_unless_uml()
    cmd = f"exec python3 /run/agent.py {OPERATOR} /run {TCP_ECHO_PORT} {UDP_ECHO_PORT} 300"
    guest = PppdGuest(ACCESS_SERVER, secrets=[f"{USER} * {PASSWORD} *"], cmd=cmd, name="gprs-drop", up_timeout=120)
    with tempfile.TemporaryDirectory(prefix="ws-gprs-") as tmp, \
            cellular_rig(Path(tmp), guest=guest) as (sim, modem, at):  # fmt: skip
        (guest.run_dir / "agent.py").write_text(AGENT_SCRIPT)
        agent = PeerAgent(guest.run_dir)
        gprs_options(at)
        assert at.command("AT+WIPBR=4,6,0", timeout=90, expect=None).final == "OK", story(sim, modem, at, guest)
        agent.wait_ready(60, alive=guest.is_running)
        at.command(f'AT+WIPCREATE=2,1,"{OPERATOR}",{TCP_ECHO_PORT}')
        at.wait_for(r"\+WIPREADY: 2,1", 30)
        at.command("AT+WIPDATA=2,1,1", expect="CONNECT")
        at.send(dle_escape(all_byte_values(8192, seed=4)))
        at.read_unescaped(4096, timeout=60)
        sim.stop()  # the modem goes away under a running transfer
        at.escape()  # the socket is still mapped (TCP does not know yet): the URCs wait for AT mode
        at.wait_for(r"^\+CME ERROR: 809$", 30)
        at.wait_for(r"^\+WIPBR: 6,0$", 30)
        assert at.command("AT").final == "OK"


def test_gprs_over_a_multiplexed_modem_line_to_a_wipstack_access_server() -> None:
    """``wipstack modem --modem-cmux``: the dialer runs 27.010 toward the modem (no UML needed)."""
    server = (f"{sys.executable} -m wipstack ppp --stdio --require-pap --secret {USER}:{PASSWORD} "
              f"{OPERATOR}:{ASSIGNED} --dns {DNS1} --quiet")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="ws-cmux-") as tmp, \
            cellular_rig(Path(tmp), "--connect-delay", "0.2", modem_args=("--modem-cmux",),
                         network_exec=server) as (sim, modem, at):  # fmt: skip
        gprs_options(at)
        assert at.command("AT+WIPBR=4,6,0", timeout=60, expect=None).final == "OK", story(sim, modem, at, None)
        assert at.command("AT+WIPBR=3,6,15").lines == [f'+WIPBR: 6,15,"{ASSIGNED}"']
        at.command(f'AT+WIPPING="{OPERATOR}",2,200')
        at.wait_all(r"\+WIPPING: 0,\d,\d+", 2, 15)
        assert "AT+CMUX=0" in sim.stderr, sim.stderr[-2000:]
        at.command("AT+WIPBR=5,6", timeout=20)
        # at once: the start waits for the modem to finish hanging up (+++, ATH on DLCI 1)
        assert at.command("AT+WIPBR=4,6,0", timeout=60, expect=None).final == "OK", story(sim, modem, at, None)
        assert "calls=2" in sim.control("status")
