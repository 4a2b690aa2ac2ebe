"""CMUX against the Linux kernel's own 27.010 implementation: n_gsm in a UML guest drives the module.

::

    UML guest (Linux 6.1 n_gsm, initiator)                       python -m wipstack modem
      ttyS1 = the module's UART1 pty  --AT+CMUX=0, then frames-->  UART1: 27.010 responder
      /dev/gsmtty1: AT script  ..................... DLCI 1 .....  virtual UART 11 (AT)
      /dev/gsmtty2: pppd (PAP client) .............. DLCI 2 .....  virtual UART 12 (PPP server, bearer 12)
                                                                 UART2 (not multiplexed): AT from this test

The script starts bearer 12 as a PPP server before pppd opens gsmtty2 (DLCI 2): the module's
virtual UARTs exist as soon as the multiplexer is up.  Both DLCIs then run at the same time:
the AT script on gsmtty1 starts bearer 12 as a PPP server,
pppd on gsmtty2 dials it, and while PPP runs the script opens a TCP server, a guest client
connects through PPP and sends data (``+WIPACCEPT``, ``+WIPDATA``) and the module pings the
guest (``+WIPPING``), all as AT traffic on DLCI 1 next to the PPP traffic on DLCI 2.  UART2 of
the same module, not multiplexed, sees the bearer up.  At the end pppd stops: the module reports
``+CME ERROR: 816`` on DLCI 1.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests.harness.uml import skip_unless_uml
from tests.interop.at_helpers import start_modem
from tests.interop.cmux_helpers import (
    BEFORE,
    START_PPPD,
    CmuxLayout,
    cmux_guest,
    format_transcript,
    send,
    touch,
    wait,
    wait_file,
)

pytestmark = pytest.mark.interop

MODULE, GUEST = "192.0.2.1", "192.0.2.2"
USER, PASSWORD = "user", "pass"
PORT = 7100
FAST = ["lcp-restart", "1", "ipcp-restart", "1", "pap-restart", "1"]
PPPD = ["nodetach", "debug", "local", "noauth", "noipdefault", "user", USER, "lcp-max-configure", "60", *FAST]
#: the guest's TCP client: waits for the module's server, connects through PPP, sends 3000 octets
CLIENT = (
    "for i in $(seq 1 400); do [ -e /run/listening ] && break; sleep 0.1; done\n"
    "python3 -I -S -c \"import socket,time; s=socket.create_connection(('" + MODULE + f"',{PORT}),20); "
    "s.sendall(bytes(range(250))*12); time.sleep(1); open('/run/client.done','w').write('sent'); "
    "[time.sleep(0.2) for _ in range(150) if not __import__('os').path.exists('/run/at.done')]; s.close()\""
)


def test_at_on_dlci1_and_pppd_on_dlci2_of_linux_n_gsm_at_the_same_time() -> None:
    skip_unless_uml()
    script = [
        send("ATE0"),
        send("AT+CMEE=1"),
        send("AT+CMUX?", r"^\+CMUX: 0,0,5,31,10,3,30,10,2$"),
        send("AT+WIPCFG=1"),
        send("AT+WIPBR=1,12"),
        send(f'AT+WIPBR=2,12,15,"{MODULE}"'),
        send(f'AT+WIPBR=2,12,16,"{GUEST}"'),
        send(f'AT+WIPBR=4,12,1,"{USER}","{PASSWORD}"'),
        START_PPPD,  # pppd starts on gsmtty2 now; this script goes on on gsmtty1
        wait(rf"^\+WIPBR: 12,1,{MODULE},{GUEST},.*$", 90),
        send(f"AT+WIPCREATE=3,1,{PORT},2,2"),
        touch("/run/listening"),
        wait(r"^\+WIPACCEPT: 1,2$", 60),
        wait(r"^\+WIPDATA: 2,2,\d+$", 60),
        wait_file("/run/client.done", 60),
        send(f'AT+WIPPING="{GUEST}",2,300', r"^OK$", 20),
        wait(r"^\+WIPPING: 0,1,.*$", 30),
        send("AT+WIPBR?", r"^\+WIPBR: 12,1$"),
        touch("/run/at.done"),
    ]
    with tempfile.TemporaryDirectory(prefix="ws-ngsm-") as tmp:
        modem = start_modem(Path(tmp), "--seed", "9")
        guest = cmux_guest(PPPD, at_before_pppd=script, after_ip_up_cmd=CLIENT, layout=CmuxLayout(),
                           secrets=[f"{USER} * {PASSWORD} *"], name="ngsm", up_timeout=120)  # fmt: skip
        try:
            uart2 = modem.client(2)
            guest.start_on_tty(str(modem.uart1))
            guest.wait_attached(90)
            info = guest.wait_ip_up(120)
            assert info["local"] == GUEST and info["remote"] == MODULE, info
            # the other, plain UART of the same module sees bearer 12 up
            assert uart2.command("AT+WIPBR?").lines == ["+WIPBR: 12,1"]
            transcript = guest.wait_transcript(BEFORE, 180, check=False)
            assert transcript.get("ok"), format_transcript(transcript) + "\n" + guest.log_tail(40) + modem.stderr
            received = [s for s in transcript["steps"] if "+WIPDATA" in str(s.get("match"))]
            assert received, format_transcript(transcript)
            log = guest.log()
            assert "PAP authentication succeeded" in log, guest.log_tail()
            guest.wait(60)  # the client finished; the guest stops pppd (LCP Terminate) and powers off
            # the module saw PPP end on DLCI 2: bearer 12 is open but no longer started
            assert uart2.command("AT+WIPBR?").lines == ["+WIPBR: 12,0"], modem.stderr
        finally:
            guest.close(grace=0)
            modem.stop()
