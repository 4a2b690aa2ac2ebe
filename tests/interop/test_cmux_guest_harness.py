"""Self-tests of the CMUX guest harness (tests/harness/guest_cmux.py, tests/interop/cmux_helpers.py).

No wipstack multiplexer is involved: the module's side of the serial line is played by hand
here (:class:`HandMadeResponder`), with the 27.010 frame codec of ``wipstack/wire/cmux.py``::

    this test (the "module", by hand)  <--socketpair-->  ttyS1 of a UML guest: Linux 6.1 n_gsm as
    AT+CMUX=0 -> OK; UA to SABM/DISC;                    the initiator, gsmtty1 (AT script),
    MSC/PN/... responses; OK to "AT"                     gsmtty2 (pppd)

The interop tests check the real n_gsm against the harness and record the octets it sends
(printed with ``-s``; they are the known-answer vectors for the multiplexer).  The tests
without UML run the ``at`` script engine on a host pty and feed its line splitter garbage.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.harness import guest_cmux
from tests.harness.uml import PppdGuest, skip_unless_uml
from tests.interop.cmux_helpers import (
    AFTER,
    BEFORE,
    GUEST_CMUX,
    START_PPPD,
    CmuxError,
    CmuxLayout,
    cmux_guest,
    send,
    touch,
    wait,
    wait_file,
)
from wipstack.wire.cmux import (
    DV,
    RTC,
    RTR,
    CmuxDeframer,
    CmuxFrame,
    ControlMessage,
    ControlType,
    FrameType,
    ModemStatus,
    msc,
    parse_control_messages,
)

BOOT_TIMEOUT = 60.0  # UML boot + python3 start-up in the guest (slow under load)
# lcp-max-terminate 1: on SIGTERM one Terminate-Request, then pppd exits
PPPD_OPTIONS = ["local", "noauth", "debug", "lcp-restart", "1", "lcp-max-terminate", "1"]
SABM_DLCI0 = bytes.fromhex("f9033f011cf9")  # 27.010 §5.4.1: the initiator opens DLCI 0 first
SABM_DLCI1 = bytes.fromhex("f9073f01def9")
SABM_DLCI2 = bytes.fromhex("f90b3f0159f9")
DISC_DLCI0 = bytes.fromhex("f90353 01fdf9".replace(" ", ""))
DISC_DLCI1 = bytes.fromhex("f9075301 3ff9".replace(" ", ""))
DISC_DLCI2 = bytes.fromhex("f90b5301b8f9")
LCP_CONF_REQ_ESCAPED = bytes.fromhex("7eff7d23c021")  # RFC 1662: flag, FF, 03 escaped, LCP 0xC021
FAST_PPP = ["lcp-restart", "1", "ipcp-restart", "1", "lcp-max-terminate", "1"]
MODULE_SIGNALS = DV | RTC | RTR  # what the hand-made module announces in its MSC (27.010 §5.4.6.3.7)


# ---------------------------------------------------------------------------- the module, by hand


@dataclass
class Octets:
    """One frame (or the pre-multiplexer octets) seen on the line."""

    t: float
    direction: str  # "rx": from the guest, "tx": to the guest
    octets: bytes
    frame: CmuxFrame | None = None
    messages: list[ControlMessage] = field(default_factory=list)

    def describe(self) -> str:
        what = ""
        if self.frame is not None:
            f = self.frame
            what = f"DLCI {f.dlci} {f.control.name}{'(P/F)' if f.poll_final else ''} C/R={int(f.command_response)}"
            what += "".join(
                f" [{_control_name(m.type)} {'cmd' if m.command else 'rsp'} {m.value.hex()}]" for m in self.messages
            )
            if f.dlci != 0 and f.information:
                what += f" {f.information!r}"
        return f"{self.t:8.3f} {self.direction} {self.octets.hex(' ')}  {what}"


def _control_name(kind: int) -> str:
    try:
        return ControlType(kind).name
    except ValueError:
        return f"type 0x{kind:02x}"


class HandMadeResponder:
    """The module's end of ttyS1: ``AT+CMUX=0`` -> ``cmux_reply``, then a 27.010 responder by hand.

    Replies: UA to SABM and DISC (F=1); a DLCI 0 command message gets the response with the
    same value (27.010 §5.4.6.3: PN, MSC, TEST, CLD, ... responses echo the command); after
    the UA opening DLCI n > 0 the module sends its own MSC command (DV, RTC, RTR); ``AT\\r`` on
    DLCI 1 is answered ``\\r\\nOK\\r\\n``.  With ``relay``, DLCI 2 is joined to that socket
    (e.g. a second guest's pppd): its UIH data goes there, and what comes back is sent in UIH
    frames of at most ``relay_mtu`` octets (n_gsm's MRU).  Frames the module sends use C/R=0 for
    commands and C/R=1 for responses (27.010 §5.2.1.2, Table 1: responder side).
    """

    def __init__(
        self,
        sock: socket.socket,
        cmux_reply: bytes = b"\r\nOK\r\n",
        answer_sabm: bool = True,
        relay: socket.socket | None = None,
        relay_mtu: int = 64,
    ) -> None:
        self.sock = sock
        self.cmux_reply = cmux_reply
        self.answer_sabm = answer_sabm
        self.relay = relay
        self.relay_mtu = relay_mtu
        self._send_lock = threading.Lock()
        self.started = time.monotonic()
        self.before_mux = bytearray()
        self.raw_rx = bytearray()  # everything n_gsm sent after the multiplexer started
        self.seen: list[Octets] = []
        self.data: dict[int, bytearray] = {}
        self.eof = threading.Event()
        self.error: BaseException | None = None
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._deframer = CmuxDeframer(max_information=1500)
        self._thread = threading.Thread(target=self._run, name="hand-made-module", daemon=True)
        self._thread.start()
        self._relay_thread: threading.Thread | None = None
        if relay is not None:
            self._relay_thread = threading.Thread(target=self._relay_back, name="dlci2-relay", daemon=True)
            self._relay_thread.start()

    # ----- the thread -----

    def _recv(self) -> bytes | None:
        ready, _, _ = select.select([self.sock], [], [], 0.2)
        if not ready:
            return None
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        return data

    def _run(self) -> None:
        try:
            self._at_phase()
            while not self._stop.is_set():
                data = self._recv()
                if data:
                    self.raw_rx += data
                    for frame in self._deframer.feed(data):
                        self._on_frame(frame)
        except EOFError:
            pass
        except BaseException as exc:  # reported by the test through check()
            self.error = exc
        finally:
            self.eof.set()
            with self._changed:
                self._changed.notify_all()

    def _at_phase(self) -> None:
        while b"\r" not in self.before_mux and not self._stop.is_set():
            data = self._recv()
            if data:
                self.before_mux += data
        self._note(Octets(self._now(), "rx", bytes(self.before_mux)))
        if self.cmux_reply:
            self._send_raw(self.cmux_reply)
        rest = self.before_mux[self.before_mux.index(b"\r") + 1 :]
        self.raw_rx += rest
        for frame in self._deframer.feed(rest):
            self._on_frame(frame)

    def _now(self) -> float:
        return round(time.monotonic() - self.started, 3)

    def _note(self, entry: Octets) -> None:
        with self._changed:
            self.seen.append(entry)
            self._changed.notify_all()

    def _relay_back(self) -> None:
        """The relay peer -> UIH frames on DLCI 2 (each at most relay_mtu octets of information)."""
        assert self.relay is not None
        with contextlib.suppress(OSError, EOFError):
            while not self._stop.is_set():
                ready, _, _ = select.select([self.relay], [], [], 0.2)
                if not ready:
                    continue
                data = self.relay.recv(4096)
                if not data:
                    return
                for i in range(0, len(data), self.relay_mtu):
                    chunk = data[i : i + self.relay_mtu]
                    self._send(CmuxFrame(2, FrameType.UIH, poll_final=False, command_response=False, information=chunk))

    def _send_raw(self, octets: bytes) -> None:
        with self._send_lock:
            self.sock.sendall(octets)
        self._note(Octets(self._now(), "tx", octets))

    def _send(self, frame: CmuxFrame) -> None:
        octets = frame.emit()
        with self._send_lock:
            self.sock.sendall(octets)
        messages = parse_control_messages(frame.information) if frame.dlci == 0 and frame.information else []
        self._note(Octets(self._now(), "tx", octets, frame, messages))

    def _on_frame(self, frame: CmuxFrame) -> None:
        messages = []
        if frame.dlci == 0 and frame.control == FrameType.UIH:
            messages = parse_control_messages(frame.information)
        self._note(Octets(self._now(), "rx", frame.emit(), frame, messages))
        if frame.control == FrameType.SABM and not self.answer_sabm:
            return
        if frame.control in (FrameType.SABM, FrameType.DISC):
            self._send(CmuxFrame(frame.dlci, FrameType.UA, poll_final=True, command_response=True))
            if frame.control == FrameType.SABM and frame.dlci != 0:
                self._send_control(msc(frame.dlci, MODULE_SIGNALS, command=True))
        elif frame.control == FrameType.UIH and frame.dlci == 0:
            for message in messages:
                if message.command:  # 27.010 §5.4.6.3: the response carries the command's value
                    self._send_control(ControlMessage(message.type, command=False, value=message.value))
        elif frame.control == FrameType.UIH:
            if frame.dlci == 2 and self.relay is not None:
                self.relay.sendall(frame.information)
                return
            buffer = self.data.setdefault(frame.dlci, bytearray())
            buffer += frame.information
            if frame.dlci == 1 and b"AT\r" in buffer:
                del buffer[: buffer.index(b"AT\r") + 3]
                self._send(CmuxFrame(1, FrameType.UIH, poll_final=False, command_response=False,
                                     information=b"\r\nOK\r\n"))  # fmt: skip

    def _send_control(self, message: ControlMessage) -> None:
        self._send(CmuxFrame(0, FrameType.UIH, poll_final=False, command_response=False, information=message.emit()))

    # ----- for the test -----

    def drops(self) -> dict[str, int]:
        """Octets the deframer could not use, by reason (a clean n_gsm line has none)."""
        return {reason.name: n for reason, n in self._deframer.drops.items() if n}

    def check(self) -> None:
        if self.error is not None:
            raise AssertionError(f"the hand-made module failed: {self.error!r}\n{self.story()}")

    def frames(self, direction: str = "rx") -> list[Octets]:
        with self._changed:
            return [o for o in self.seen if o.direction == direction and o.frame is not None]

    def wait_frame(self, match: Callable[[CmuxFrame], bool], timeout: float, what: str) -> Octets:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                self.check()
                for entry in self.seen:
                    if entry.direction == "rx" and entry.frame is not None and match(entry.frame):
                        return entry
                left = deadline - time.monotonic()
                if left <= 0 or self.eof.is_set():
                    raise AssertionError(f"no {what} from n_gsm within {timeout:g} s\n{self.story()}")
                self._changed.wait(min(left, 0.5))

    def wait_data(self, dlci: int, needle: bytes, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while needle not in self.data.get(dlci, b""):
                self.check()
                left = deadline - time.monotonic()
                if left <= 0 or self.eof.is_set():
                    raise AssertionError(f"no {needle.hex()} on DLCI {dlci} within {timeout:g} s\n{self.story()}")
                self._changed.wait(min(left, 0.5))

    def wait_eof(self, timeout: float) -> None:
        if not self.eof.wait(timeout):
            raise AssertionError(f"the guest did not close the line within {timeout:g} s\n{self.story()}")
        self.check()

    def story(self) -> str:
        with self._changed:
            return "--- line (s since boot):\n" + "\n".join(o.describe() for o in self.seen)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        if self._relay_thread is not None:
            self._relay_thread.join(5)


@contextlib.contextmanager
def responding(
    guest: PppdGuest,
    cmux_reply: bytes = b"\r\nOK\r\n",
    answer_sabm: bool = True,
    relay: socket.socket | None = None,
) -> Iterator[HandMadeResponder]:
    module = HandMadeResponder(guest.start(), cmux_reply, answer_sabm, relay)
    try:
        yield module
    except BaseException:
        print(module.story())
        print("--- guest log tail:\n" + guest.log_tail(60))
        raise
    finally:
        module.stop()


def control_commands(module: HandMadeResponder, kind: ControlType, direction: str = "rx") -> list[ControlMessage]:
    return [m for o in module.frames(direction) for m in o.messages if m.type == kind and m.command]


def control_responses(module: HandMadeResponder, kind: ControlType) -> list[ControlMessage]:
    return [m for o in module.frames("rx") for m in o.messages if m.type == kind and not m.command]


# ---------------------------------------------------------------------------- with UML


@pytest.mark.interop
@pytest.mark.parametrize("close_mux", [False, True], ids=["holder-killed", "close-mux"])
def test_n_gsm_initiator_against_a_hand_made_responder(close_mux: bool) -> None:
    skip_unless_uml()
    guest = cmux_guest(
        PPPD_OPTIONS,
        at_before_pppd=[send("AT", expect=r"^OK$", timeout=30)],
        layout=CmuxLayout(close_mux=close_mux),
        name="cmux-self",
    )
    with guest, responding(guest) as module:
        state = guest.wait_attached(BOOT_TIMEOUT)
        # the serial line before the multiplexer: the command, then our OK
        assert bytes(module.before_mux) == b"AT+CMUX=0\r"
        assert state["command_lines"] == ["OK"]
        assert state["ldisc_before"] == 0
        config = state["config"]
        assert (config["encapsulation"], config["initiator"], config["i"], config["adaption"]) == (0, 1, 1, 1)
        assert sorted(state["devices"]) == ["1", "2", "3", "4"]
        assert state["nodes"]["2"] == "/tmp/dev/gsmtty2"

        first = module.frames()[0]
        assert first.octets == SABM_DLCI0, module.story()
        module.wait_frame(lambda f: f.dlci == 1 and f.control == FrameType.SABM, 30, "SABM on DLCI 1")

        # the AT script on gsmtty1: "AT\r" in one UIH on DLCI 1, our OK back
        transcript = guest.wait_transcript(BEFORE, BOOT_TIMEOUT)
        assert transcript["steps"][0]["match"] == "OK" and transcript["lines"][-1]["text"] == "OK"
        at_frame = module.wait_frame(lambda f: f.dlci == 1 and f.control == FrameType.UIH, 5, "UIH on DLCI 1")
        assert at_frame.frame is not None and at_frame.frame.information == b"AT\r"
        assert at_frame.octets == bytes.fromhex("f907ef07 41540d d3f9".replace(" ", ""))

        # n_gsm's MSC for DLCI 1 (27.010 §5.4.6.3.7): DTR (RTC), RTS (RTR) and DV set
        msc_dlci1 = [m for m in control_commands(module, ControlType.MSC) if m.value[0] >> 2 == 1]
        assert msc_dlci1, module.story()
        status = ModemStatus.parse(msc_dlci1[0].value)
        assert (status.dlci, status.rtc, status.rtr, status.dv, status.fc) == (1, True, True, True, False)

        # pppd on gsmtty2: SABM on DLCI 2, then its LCP Configure-Request inside UIH frames
        sabm2 = module.wait_frame(lambda f: f.dlci == 2 and f.control == FrameType.SABM, 30, "SABM on DLCI 2")
        assert sabm2.octets == SABM_DLCI2
        module.wait_data(2, LCP_CONF_REQ_ESCAPED, 30)
        # n_gsm answers the module's MSC command with the same value (27.010 §5.4.6.3.7)
        ours = [m.value for m in control_commands(module, ControlType.MSC, "tx")]
        deadline = time.monotonic() + 20
        while not {m.value for m in control_responses(module, ControlType.MSC)} >= set(ours[:1]):
            assert time.monotonic() < deadline, module.story()
            time.sleep(0.1)

        # stop: pppd closes gsmtty2 (DISC on DLCI 2); post_cmd stops the holder (DISC on DLCI 1)
        assert guest.stop_pppd(timeout=30) in (5, 16)
        guest.wait(timeout=60)
        module.wait_eof(30)
        assert guest.pre_cmd_status() == 0 and guest.post_cmd_status() == 0
        done = guest.detach_state()
        assert done is not None and done["ldisc"] == "N_TTY", done
        rx = [o.octets for o in module.frames()]
        assert DISC_DLCI2 in rx and DISC_DLCI1 in rx, module.story()
        last_disc1 = len(rx) - 1 - rx[::-1].index(DISC_DLCI1)  # DISC may be retransmitted (every T1)
        after = module.frames()[last_disc1 + 1 :]
        assert all(o.frame is not None and o.frame.dlci == 0 for o in after), module.story()
        closing = [o.octets for o in after if o.frame is not None and o.frame.control != FrameType.UIH]
        # the holder killed: the line discipline goes away silently; close-mux: DISC on DLCI 0
        assert closing == ([DISC_DLCI0] if close_mux else []), module.story()
        # no PN in Linux 6.1: it opens DLCIs with SABM straight away (27.010 §5.4.6.3.1 is optional)
        pn = control_commands(module, ControlType.PN)
        assert module.drops() == {}, module.drops()
        # each frame as re-emitted by the codec is exactly what n_gsm sent (flags included)
        assert all(o.octets in module.raw_rx for o in module.frames()), module.story()
        print(f"\nPN commands from n_gsm: {[m.value.hex() for m in pn]}")
        print(module.story())


@pytest.mark.interop
def test_pppd_over_dlci2_to_a_second_guest_runs_both_at_scripts_around_ip_up() -> None:
    """The lead's flow end to end, with a real pppd server (a second guest) behind DLCI 2."""
    skip_unless_uml()
    server = PppdGuest(["noauth", "local", "debug", "192.0.2.1:192.0.2.2", *FAST_PPP], name="cmux-server")
    client = cmux_guest(
        ["noauth", "local", "debug", "noipdefault", *FAST_PPP],
        # pppd starts at START_PPPD while this script waits for IPCP, then uses DLCI 1 again
        at_before_pppd=[send("AT"), START_PPPD, wait_file("/run/ip-up.env", 60), send("AT")],
        at_after_ip_up=[send("AT", timeout=30)],  # waits for the first script to release gsmtty1
        after_ip_up_cmd="busybox ping -c 1 -W 10 192.0.2.1",
        name="cmux-client",
        up_timeout=60,
    )
    with server, client, responding(client, relay=server.start()) as module:
        client.wait_attached(BOOT_TIMEOUT)
        assert client.wait_ip_up(90) == {"interface": "ppp0", "local": "192.0.2.2", "remote": "192.0.2.1"}
        before = client.wait_transcript(BEFORE, 60)
        after = client.wait_transcript(AFTER, 60)
        assert [st["match"] for st in before["steps"] if "send" in st["step"]] == ["OK", "OK"]
        assert after["steps"][0]["match"] == "OK"
        client.wait(timeout=60)  # cmd done -> pppd stopped -> holder detached -> power off
        assert client.cmd_status() == 0, client.cmd_output()
        assert "1 packets received" in client.cmd_output()
        assert client.post_cmd_status() == 0 and (client.detach_state() or {}).get("ldisc") == "N_TTY"
        at_frames = [o.frame for o in module.frames() if o.frame is not None and o.frame.dlci == 1]
        assert [f.information for f in at_frames if f.information] == [b"AT\r"] * 3
        assert module.drops() == {}


@pytest.mark.interop
def test_attach_reports_a_refused_cmux_and_the_guest_still_stops() -> None:
    skip_unless_uml()
    guest = cmux_guest(PPPD_OPTIONS, at_before_pppd=[send("AT")], name="cmux-refused")
    with guest, responding(guest, cmux_reply=b"\r\n+CME ERROR: 3\r\n") as module:
        with pytest.raises(CmuxError, match=r"answered '\+CME ERROR: 3'"):
            guest.wait_attached(BOOT_TIMEOUT)
        guest.wait(timeout=60)  # pppd finds no gsmtty2 and exits; the guest powers off
        module.wait_eof(30)
        assert guest.pre_cmd_status() == 1
        assert guest.transcript(BEFORE) is None  # the AT script never ran
        assert module.frames() == [] and bytes(module.before_mux) == b"AT+CMUX=0\r"
        assert guest.post_cmd_status() in (None, 0, 1)


@pytest.mark.interop
def test_no_ua_to_the_sabm_on_dlci0_is_a_clear_attach_error() -> None:
    skip_unless_uml()
    guest = cmux_guest(PPPD_OPTIONS, name="cmux-no-ua", layout=CmuxLayout(extra_attach_args=("--mux-timeout", "5")))
    with guest, responding(guest, answer_sabm=False) as module:
        with pytest.raises(CmuxError, match=r"control channel \(DLCI 0\) did not open"):
            guest.wait_attached(BOOT_TIMEOUT)
        guest.wait(timeout=60)
        module.wait_eof(30)
        state = guest.attach_state()
        assert state is not None and state["ok"] is False
        # the SABM and N2 retransmissions (every T1), then n_gsm gives up with a DISC on DLCI 0
        n2 = state["config"]["n2"]
        assert [o.octets for o in module.frames()] == [SABM_DLCI0] * (1 + n2) + [DISC_DLCI0], module.story()
        assert guest.pre_cmd_status() == 1
        print(f"\nunanswered SABM on DLCI 0 (N2={n2}):\n{module.story()}")


# ---------------------------------------------------------------------------- the at engine on a host pty


class PtyModem:
    """The far end of a host pty: answers whole lines from a table, records what it got."""

    def __init__(self, replies: dict[bytes, bytes]) -> None:
        self.master, slave = os.openpty()
        self.path = os.ttyname(slave)
        self._slave = slave  # kept open so the pty lives until close()
        self.replies = replies
        self.received = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        pending = bytearray()
        with contextlib.suppress(OSError):
            while not self._stop.is_set():
                ready, _, _ = select.select([self.master], [], [], 0.1)
                if not ready:
                    continue
                data = os.read(self.master, 4096)
                self.received += data
                pending += data
                while b"\r" in pending:
                    line, _, rest = bytes(pending).partition(b"\r")
                    pending[:] = rest
                    reply = self.replies.get(line)
                    if reply:
                        os.write(self.master, reply)

    def hang_up(self) -> None:
        self._stop.set()
        self._thread.join(2)
        os.close(self._slave)
        os.close(self.master)

    def close(self) -> None:
        if not self._stop.is_set():
            self.hang_up()


def run_at(tmp: Path, tty: str, steps: list[dict[str, Any]], *extra: str) -> tuple[int, dict[str, Any]]:
    script, out = tmp / "script.json", tmp / "out.json"
    script.write_text(json.dumps(steps))
    # output to a file, not a pipe: with --detach-at-gate the background half keeps it open
    with open(tmp / "at.log", "ab") as log:
        proc = subprocess.run(
            [sys.executable, str(GUEST_CMUX), "at", "--tty", tty, "--script", str(script), "--out", str(out), *extra],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            timeout=60,
            check=False,
        )
    return proc.returncode, json.loads(out.read_text())


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


def test_at_script_send_wait_and_urc_that_came_early(tmp: Path) -> None:
    modem = PtyModem({b"AT": b"\r\nOK\r\n", b"AT+GO": b"\r\n+URC: 7,x\r\nOK\r\n"})
    try:
        flag = tmp / "flag"
        steps = [
            send("AT"),
            send("AT+GO"),
            wait(r"^\+URC: (\d+),(\w)$", 5),  # arrived while the send above waited for OK
            touch(str(flag)),
            wait_file(str(flag), 2),
            {"sleep": 0.1},
        ]
        status, out = run_at(tmp, modem.path, steps)
    finally:
        modem.close()
    assert status == 0 and out["ok"] is True and out["finished"] is True, out
    assert modem.received == b"AT\rAT+GO\r"
    results = out["steps"]
    assert isinstance(results, list)
    assert results[1]["match"] == "OK" and results[2]["groups"] == ["7", "x"]
    assert [line["text"] for line in out["lines"]] == ["OK", "+URC: 7,x", "OK"]


def test_at_script_failures_are_reported_with_the_step(tmp: Path) -> None:
    modem = PtyModem({b"AT+BAD": b"\r\n+CME ERROR: 3\r\n"})
    try:
        status, out = run_at(tmp, modem.path, [send("AT+BAD"), send("AT")])
        assert status == 1 and out["ok"] is False and out["failed_step"] == 0, out
        assert "+CME ERROR: 3" in str(out["error"])
        status, out = run_at(tmp, modem.path, [wait("^NEVER$", 0.3)])
        assert status == 1 and out["failed_step"] == 0 and "within 0.3 s" in str(out["error"])
        status, out = run_at(tmp, modem.path, [{"bogus": 1}])
        assert status == 1 and "unknown step" in str(out["error"])
    finally:
        modem.close()
    status, out = run_at(tmp, "/nonexistent/tty", [send("AT")])
    assert status == 2 and out["ok"] is False and "open" in str(out["error"])


def test_at_script_hangup_is_recorded(tmp: Path) -> None:
    modem = PtyModem({})
    threading.Timer(0.5, modem.hang_up).start()
    try:
        status, out = run_at(tmp, modem.path, [wait("^x$", 10)])
    finally:
        time.sleep(0.6)
        modem.close()
    assert status == 1 and out["hangup"] is True, out


def test_at_detach_at_gate_returns_early_and_the_script_goes_on(tmp: Path) -> None:
    modem = PtyModem({b"AT": b"\r\nOK\r\n"})
    release = tmp / "release"
    try:
        status, out = run_at(tmp, modem.path, [send("AT"), START_PPPD, wait_file(str(release), 20), send("AT")],
                             "--detach-at-gate")  # fmt: skip
        assert status == 0
        assert out["finished"] is False  # the script is still running in the background
        release.touch()
        deadline = time.monotonic() + 20
        while not (data := json.loads((tmp / "out.json").read_text()))["finished"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert data["ok"] is True and modem.received == b"AT\rAT\r"
    finally:
        release.touch()
        modem.close()


def test_gsm_config_layout_and_ioctl_numbers() -> None:
    # include/uapi/linux/gsmmux.h (6.1): 11 unsigned ints + unused[8]; _IOR/_IOW('G', 0/1, struct gsm_config)
    assert guest_cmux.GSM_CONFIG.size == 76
    assert guest_cmux.GSMIOC_GETCONF == 0x804C4700 and guest_cmux.GSMIOC_SETCONF == 0x404C4701
    assert guest_cmux.GSM_CONFIG_FIELDS[-2:] == ("k", "i")


# ---------------------------------------------------------------------------- the line splitter


def reference_lines(data: bytes, limit: int) -> list[str]:
    """Complete lines (ended by CR or LF), empty ones dropped, each cut to ``limit`` octets."""
    parts = data.replace(b"\n", b"\r").split(b"\r")[:-1]
    return [part[:limit].decode("utf-8", errors="backslashreplace") for part in parts if part]


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=600) | st.lists(st.sampled_from([b"\r", b"\n", b"OK", b"\xff", b"x" * 40])).map(b"".join),
    cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=20),
)
def test_line_reader_garbage_in_any_split(data: bytes, cuts: list[int]) -> None:
    reader = guest_cmux.LineReader(fd=-1, started=time.monotonic(), max_line=64)
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    for start, end in zip(bounds, bounds[1:], strict=False):
        reader._split(data[start:end])
    assert [text for _, text in reader.lines] == reference_lines(data, 64)
    assert reader.cut_lines == sum(1 for part in data.replace(b"\n", b"\r").split(b"\r") if len(part) > 64)


def test_line_reader_cuts_overlong_lines() -> None:
    reader = guest_cmux.LineReader(fd=-1, started=time.monotonic())
    reader._split(b"x" * (guest_cmux.MAX_LINE + 100) + b"\r\nOK\r\n")
    assert [len(t) for _, t in reader.lines] == [guest_cmux.MAX_LINE, 2] and reader.cut_lines == 1


def test_pppd_guest_rejects_bad_harness_arguments() -> None:
    with pytest.raises(ValueError, match="absolute"):
        PppdGuest([], tty="ttyS1")
    with pytest.raises(ValueError, match="module name"):
        PppdGuest([], modules=["n_gsm; reboot"])
    with pytest.raises(ValueError, match="harness's own"):
        PppdGuest([], files={"init": "x"})
    with pytest.raises(ValueError, match="plain name"):
        PppdGuest([], keep_files=["../x"])
    guest = PppdGuest([], tty="/tmp/dev/gsmtty2", modules=("n_gsm",), files={"a.json": "[]"})
    assert guest.pid is None and guest.run_file("a.json") is None  # constructing a guest starts nothing
