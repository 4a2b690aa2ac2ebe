"""Host side of the CMUX guest harness: a UML guest whose Linux n_gsm is the 27.010 initiator.

The guest side is tests/harness/guest_cmux.py (run in the guest by the host's python3 through
hostfs).  :func:`cmux_guest` builds a :class:`CmuxGuest` (a :class:`~tests.harness.uml.PppdGuest`)
whose shell snippets do, in the guest::

    pre_cmd   guest_cmux.py attach   AT+CMUX=0 on ttyS1, wait for OK, N_GSM0 as initiator,
                                     mknod /tmp/dev/gsmtty1..N, hold the line (a daemon)
              guest_cmux.py at       the ``at_before_pppd`` script on gsmtty<at_port>; pppd starts
                                     when it finishes, or at its :data:`START_PPPD` step while the
                                     rest of the script goes on in the background
    pppd      on /tmp/dev/gsmtty<pppd_port>
    cmd       guest_cmux.py at       once IPCP is up: the ``at_after_ip_up`` script (it waits for
                                     the first script to release the tty), then ``after_ip_up_cmd``
    post_cmd  (shell)                after pppd exited: SIGTERM the holder, which closes the held
                                     gsmttys and sets N_TTY back; wait for its done file

Typical use (the module's UART1 pty as the guest's ttyS1)::

    guest = cmux_guest(["local", "noauth", ...],
                       at_before_pppd=[send("AT+WIPCFG=1"), START_PPPD, wait(r"^\\+WIPBR: 12,1", 40)],
                       at_after_ip_up=[send("AT+WIPPING=...")])
    with guest:
        guest.start_on_tty(str(modem.uart1))
        guest.wait_attached(60)
        before = guest.wait_transcript(BEFORE, 60)
        ...

Transcripts are the JSON written by ``guest_cmux.py at`` (see its docstring): ``ok``, ``error``,
``failed_step``, ``steps`` (each with ``match`` and regex ``groups``) and ``lines``.

Linux 6.1.176's n_gsm, as seen by tests/interop/test_cmux_guest_harness.py: no PN; an MSC
command for every DLCI opened (DTR/RTS/DV) and another when it closes; and opening a DLCI
blocks its receive path while that MSC command is pending (gsm_dlci_open waits for the MSC
response, which that blocked path would have to deliver), so n_gsm retransmits the MSC every
T2 (N2 times) and frames from the module are only processed ~1-3 s later.  A responder must
answer each retransmission and must not rely on quick answers right after a UA.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.harness.uml import PppdGuest

GUEST_CMUX = Path(__file__).resolve().parents[1] / "harness" / "guest_cmux.py"
#: how the guest runs it: the host's /usr/bin/python3 (the guest PATH has no pyenv), -I -S: no site
#: packages, which also saves start-up time in the slow guest
GUEST_PYTHON = "python3 -I -S /run/guest_cmux.py"
ATTACH_READY = "cmux.ready"
ATTACH_DONE = "cmux.done"
ATTACH_PID = "cmux.pid"
BEFORE = "before"
AFTER = "after"

Step = dict[str, Any]
#: In ``at_before_pppd``: pppd starts here while the rest of the script runs on.
START_PPPD: Step = {"gate": True}


def send(command: str, expect: str | None = r"^OK$", timeout: float = 10.0, fail: str | None = None) -> Step:
    """Send ``command`` + CR; wait for a line matching ``expect`` (None: do not wait).

    ``fail``: a regex that fails the step at once (default ERROR / +CME ERROR / NO CARRIER;
    "" for none).
    """
    step: Step = {"send": command, "timeout": timeout}
    if expect is not None:
        step["expect"] = expect
    if fail is not None:
        step["fail"] = fail
    return step


def wait(pattern: str, timeout: float = 10.0) -> Step:
    """Wait for a line matching ``pattern``, after the line the previous ``wait`` matched."""
    return {"wait": pattern, "timeout": timeout}


def sleep(seconds: float) -> Step:
    return {"sleep": seconds}


def touch(path: str) -> Step:
    return {"touch": path}


def wait_file(path: str, timeout: float = 10.0) -> Step:
    return {"wait_file": path, "timeout": timeout}


@dataclass(frozen=True)
class CmuxLayout:
    """How the guest sets the multiplexer up.

    ``mru``/``mtu``/``t1``/``t2``/``n2``: the gsm_config fields (None: the kernel's default:
    64, 64, 10, 34, 3; t1/t2 in 10 ms units).  ``hold``: gsmtty numbers the attach daemon
    keeps open (raw, CLOCAL), so their DLCIs stay open between ``at`` runs; opening them waits
    for DLCI 0, so with a non-empty ``hold`` "attached" means the multiplexer is up.
    ``close_mux``: on detach make n_gsm send DISC on DLCI 0 (else Linux 6.1 sends nothing for
    DLCI 0, as when the holder is killed).  ``kernel_debug``: n_gsm's ``debug`` parameter.
    """

    line: str = "/dev/ttyS1"
    command: str = "AT+CMUX=0"
    ok_timeout: float = 10.0
    ports: int = 4
    at_port: int = 1
    pppd_port: int = 2
    dev_dir: str = "/tmp/dev"
    hold: tuple[int, ...] = (1,)
    mru: int | None = None
    mtu: int | None = None
    t1: int | None = None
    t2: int | None = None
    n2: int | None = None
    close_mux: bool = False
    detach_timeout: float = 15.0
    #: n_gsm's ``debug`` module parameter (bit 0: dump frames, bit 3: errors -> the console log)
    kernel_debug: int | None = None
    extra_attach_args: tuple[str, ...] = field(default=())

    def gsmtty(self, port: int) -> str:
        return f"{self.dev_dir}/gsmtty{port}"


def attach_command(layout: CmuxLayout) -> str:
    """Shell: attach n_gsm (returns once ready; non-zero and the reason in cmux.ready on failure)."""
    args = [
        "attach", "--line", layout.line, "--command", layout.command, "--ok-timeout", str(layout.ok_timeout),
        "--dev-dir", layout.dev_dir, "--ports", str(layout.ports),
        "--hold", ",".join(str(p) for p in layout.hold),
        "--ready", f"/run/{ATTACH_READY}", "--done", f"/run/{ATTACH_DONE}", "--pid-file", f"/run/{ATTACH_PID}",
    ]  # fmt: skip
    if layout.close_mux:
        args.append("--close-mux")
    for name in ("mru", "mtu", "t1", "t2", "n2"):
        value = getattr(layout, name)
        if value is not None:
            args += [f"--{name}", str(value)]
    args += list(layout.extra_attach_args)
    return f"{GUEST_PYTHON} {shlex.join(args)}"


def at_command(tty: str, which: str, *, detach_at_gate: bool = False) -> str:
    """Shell: run /run/at-<which>.json on ``tty``; transcript /run/at-<which>.out.json."""
    args = ["at", "--tty", tty, "--script", f"/run/at-{which}.json", "--out", f"/run/at-{which}.out.json"]
    if detach_at_gate:
        args.append("--detach-at-gate")
    return f"{GUEST_PYTHON} {shlex.join(args)}"


def detach_command(layout: CmuxLayout) -> str:
    """Shell (no python: the guest is small): SIGTERM the holder, wait (bounded) for its done file."""
    done, pid_file = f"/run/{ATTACH_DONE}", f"/run/{ATTACH_PID}"
    tenths = max(1, int(layout.detach_timeout * 10))
    return (
        f'read -r holder <{pid_file} && kill -TERM "$holder" || exit 1\n'
        f"t=0; while [ ! -e {done} ] && [ $t -lt {tenths} ]; do sleep 0.1; t=$((t + 1)); done\n"
        f'[ -e {done} ] || {{ echo "holder $holder did not detach"; exit 1; }}'
    )


def transcript_name(which: str) -> str:
    return f"at-{which}.out.json"


class CmuxError(AssertionError):
    """The guest's multiplexer set-up or an AT script failed (message: what the guest recorded)."""


class CmuxGuest(PppdGuest):
    """A :class:`PppdGuest` with pppd on a gsmtty of Linux's n_gsm; see :func:`cmux_guest`."""

    def __init__(
        self,
        pppd_options: Sequence[str],
        *,
        layout: CmuxLayout,
        at_before_pppd: Sequence[Step] = (),
        at_after_ip_up: Sequence[Step] = (),
        after_ip_up_cmd: str | None = None,
        files: Mapping[str, str | bytes] | None = None,
        **guest_args: Any,
    ) -> None:
        self.layout = layout
        self.scripts = {BEFORE: list(at_before_pppd), AFTER: list(at_after_ip_up)}
        at_tty = layout.gsmtty(layout.at_port)
        pre = []
        if layout.kernel_debug is not None:
            pre.append(f"echo {int(layout.kernel_debug)} >/sys/module/n_gsm/parameters/debug")
        pre.append(attach_command(layout) + " || exit 1")
        if at_before_pppd:
            gated = any(step.get("gate") for step in at_before_pppd)
            pre.append(at_command(at_tty, BEFORE, detach_at_gate=gated))
        cmd_lines = []
        if at_after_ip_up:
            cmd_lines.append(at_command(at_tty, AFTER) + "; rc=$?")
        else:
            cmd_lines.append("rc=0")
        if after_ip_up_cmd:
            cmd_lines.append(f"( {after_ip_up_cmd}\n) || rc=$?")
        cmd_lines.append("exit $rc")
        all_files: dict[str, str | bytes] = {"guest_cmux.py": GUEST_CMUX.read_text()}
        all_files.update({f"at-{w}.json": json.dumps(s) for w, s in self.scripts.items() if s})
        all_files.update(files or {})
        keep = [ATTACH_READY, ATTACH_DONE, transcript_name(BEFORE), transcript_name(AFTER)]
        guest_args.setdefault("mem", "128M")  # python3 processes (holder, AT scripts, agents) need room
        super().__init__(
            pppd_options,
            tty=layout.gsmtty(layout.pppd_port),
            modules=("n_gsm",),
            pre_cmd="\n".join(pre),
            cmd="\n".join(cmd_lines) if (at_after_ip_up or after_ip_up_cmd) else None,
            post_cmd=f"[ -e /run/{ATTACH_PID} ] || exit 0\n{detach_command(layout)}",
            files=all_files,
            keep_files=[*keep, *guest_args.pop("keep_files", ())],
            **guest_args,
        )

    # ----- what the guest recorded -----

    def _json(self, name: str) -> dict[str, Any] | None:
        text = self.run_file(name)
        if not text:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return None  # being written: the guest replaces files atomically, so only a torn read of a copy
        return data if isinstance(data, dict) else None

    def attach_state(self) -> dict[str, Any] | None:
        """The attach JSON: ok, error, command_lines, config_default, config, devices, nodes, pid."""
        return self._json(ATTACH_READY)

    def detach_state(self) -> dict[str, Any] | None:
        """Written by the holder once it gave the line back to N_TTY (after post_cmd's SIGTERM)."""
        return self._json(ATTACH_DONE)

    def transcript(self, which: str) -> dict[str, Any] | None:
        """The transcript of the ``at`` script ``which`` (:data:`BEFORE` or :data:`AFTER`) so far."""
        return self._json(transcript_name(which))

    # ----- waiting -----

    def _poll(self, get: Any, what: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            running = self.is_running()
            value = get()
            if value is not None:
                return value  # type: ignore[no-any-return]
            if not running:
                raise CmuxError(f"guest stopped before {what}\n--- guest log tail ---\n{self.log_tail()}")
            if time.monotonic() >= deadline:
                raise CmuxError(f"no {what} within {timeout:g} s\n--- guest log tail ---\n{self.log_tail()}")
            time.sleep(0.05)

    def wait_attached(self, timeout: float) -> dict[str, Any]:
        """The attach state once n_gsm is configured; CmuxError with the guest's reason otherwise."""
        state = self._poll(self.attach_state, "n_gsm attach", timeout)
        if not state.get("ok"):
            raise CmuxError(f"n_gsm attach failed: {state.get('error')}\n--- guest log tail ---\n{self.log_tail()}")
        return state

    def wait_transcript(self, which: str, timeout: float, *, check: bool = True) -> dict[str, Any]:
        """The finished transcript of script ``which``; with ``check``, CmuxError unless it passed."""

        def finished() -> dict[str, Any] | None:
            data = self.transcript(which)
            return data if data is not None and data.get("finished") else None

        data = self._poll(finished, f"finished AT script {which!r}", timeout)
        if check and not data.get("ok"):
            raise CmuxError(f"AT script {which!r} failed: {data.get('error')}\n{format_transcript(data)}")
        return data


def cmux_guest(
    pppd_options: Sequence[str],
    *,
    at_before_pppd: Sequence[Step] = (),
    at_after_ip_up: Sequence[Step] = (),
    after_ip_up_cmd: str | None = None,
    layout: CmuxLayout | None = None,
    name: str = "cmux",
    **guest_args: Any,
) -> CmuxGuest:
    """A guest whose pppd runs on gsmtty<pppd_port> of n_gsm over ttyS1 (see the module docstring).

    ``guest_args`` go to :class:`PppdGuest` (secrets, up_timeout, mem, files, keep_files).
    """
    return CmuxGuest(
        pppd_options,
        layout=layout or CmuxLayout(),
        at_before_pppd=at_before_pppd,
        at_after_ip_up=at_after_ip_up,
        after_ip_up_cmd=after_ip_up_cmd,
        name=name,
        **guest_args,
    )


def format_transcript(data: Mapping[str, Any], lines: int = 40) -> str:
    """A readable dump of a transcript: the steps and the last received lines."""
    out = [f"--- AT transcript on {data.get('tty')}: ok={data.get('ok')} error={data.get('error')}"]
    for step in data.get("steps", []):
        status = "ok" if step.get("ok") else f"FAILED: {step.get('error')}"
        out.append(f"  [{step.get('index')}] {json.dumps(step.get('step'))} -> {status} match={step.get('match')!r}")
    out.append("--- lines received (s since start):")
    out += [f"  {line['t']:8.3f} {line['text']}" for line in data.get("lines", [])[-lines:]]
    return "\n".join(out)
