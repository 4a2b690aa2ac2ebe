"""A real Linux pppd as a PPP peer, inside a User-Mode-Linux guest.

The host kernel needs no PPP support: the guest kernel (Debian's
``user-mode-linux`` package) loads ppp_async from /usr/lib/uml/modules/<ver>.
The guest's root file system is the host's ``/`` (hostfs, read-only), so the
host's pppd, ip, busybox, ... run inside it.  Its serial line /dev/ttyS1 is one
end of a host ``socket.socketpair()``; :meth:`PppdGuest.start` returns the
other end, on which the caller speaks HDLC-framed PPP (RFC 1662).

Typical use::

    with PppdGuest(["noauth", "local", "debug", "192.0.2.1:192.0.2.2"]) as guest:
        sock = guest.start()
        guest.wait_for_log(r"sent \\[LCP ConfReq", timeout=10)
        ...

Each guest has a run dir (``/tmp/ws-<name>-XXXXXX``) shared read-write with the
guest, where the guest sees it as ``/run``.  It holds ``console.log`` (kernel +
pppd output), the guest's private ``/etc/ppp`` (``etc-ppp/``) and the state
files written by tests/harness/guest_init.sh (the guest's PID 1).  It is
removed by :meth:`PppdGuest.close` unless WIPSTACK_KEEP_GUEST is set.
"""

from __future__ import annotations

import atexit
import codecs
import contextlib
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from tests.harness.uml_host import (
    UML_MODULES_ROOT,
    UML_PACKAGES,
    _apt_install,
    _child_setup,
    _ip_down_script,
    _ip_up_script,
    _missing_packages,
    _parse_env,
    _ram_dir,
    _uml_kernel_version,
    _which,
    process_group_pids,
)

GUEST_INIT = Path(__file__).with_name("guest_init.sh")
KEEP_ENV = "WIPSTACK_KEEP_GUEST"
REQUIRE_ENV = "WIPSTACK_REQUIRE_INTEROP"
_MCONSOLE_MAGIC = 0xCAFEBABE
_MCONSOLE_VERSION = 2
_POLL = 0.02  # seconds between polls of guest state files
_MODULE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
# run-dir files the harness itself writes or reads; ``files`` must not replace them
_RESERVED_RUN_FILES = frozenset(
    {"init", "fstab", "modprobe", "nap.fifo", "console.log", "pppd.args", "pppd.tty", "modules.list",
     "pre_cmd.sh", "cmd.sh", "post_cmd.sh", "modroot", "etc-ppp", "uml"}
)  # fmt: skip
# kernel parameters that shorten the guest's boot (~0.9 s to pppd's first frame instead of ~3.5 s)
BOOT_SPEEDUPS: tuple[str, ...] = (
    # skip the raid6/xor benchmarks (~0.9 s), zswap (no swap here) and crypto self-tests
    "initcall_blacklist=raid6_select_algo,calibrate_xor_blocks,init_zswap",
    "cryptomgr.notests",
)

_live_guests: weakref.WeakSet[PppdGuest] = weakref.WeakSet()


# --------------------------------------------------------------------------
# availability
# --------------------------------------------------------------------------


def uml_unavailable_reason() -> str | None:
    """None if PppdGuest can run here, else why not (for pytest.skip)."""
    if not hasattr(os, "geteuid") or os.uname().sysname != "Linux":
        return "UML pppd guests need a Linux host"
    if os.geteuid() != 0:
        return "UML pppd guests need root (hostfs root file system, pppd)"
    missing = _missing_packages()
    if missing:
        _apt_install(UML_PACKAGES)
        missing = _missing_packages()
        if missing:
            return "missing packages (apt-get install failed): " + " ".join(missing)
    version = _uml_kernel_version()
    if version is None:
        return f"no UML kernel modules under {UML_MODULES_ROOT}"
    ppp_dir = UML_MODULES_ROOT / version / "kernel" / "drivers" / "net" / "ppp"
    if not list(ppp_dir.glob("ppp_async.ko*")):
        return f"UML kernel {version} has no ppp_async module in {ppp_dir}"
    if _ram_dir() is None:
        return "no writable exec-able TMPDIR, /dev/shm or /tmp for UML's RAM file"
    with contextlib.suppress(OSError):
        if Path("/proc/sys/kernel/yama/ptrace_scope").read_text().strip() == "3":
            return "ptrace is disabled (kernel.yama.ptrace_scope=3); UML needs it"
    return None


def skip_unless_uml() -> None:
    """pytest.skip() when guests cannot run; pytest.fail() instead if WIPSTACK_REQUIRE_INTEROP=1."""
    import pytest

    reason = uml_unavailable_reason()
    if reason is None:
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1)", pytrace=False)
    pytest.skip(reason)


# --------------------------------------------------------------------------
# host process helpers
# --------------------------------------------------------------------------


@atexit.register
def _close_live_guests() -> None:
    for guest in list(_live_guests):
        with contextlib.suppress(Exception):
            guest.close()


# --------------------------------------------------------------------------
# the guest
# --------------------------------------------------------------------------


class PppdGuest:
    """A UML guest running ``pppd <tty> nodetach <pppd_options>`` (tty: /dev/ttyS1 by default).

    ``secrets`` are lines for the guest's pap-secrets and chap-secrets
    ("client server secret [ip]").  ``pre_cmd`` is shell code run in the guest
    before pppd starts (pppd starts only once it has finished; a child it leaves
    in the background lives on, e.g. a daemon holding ttyS1 with a line
    discipline); ``cmd`` is shell code run once IPCP is up (env PPP_IFACE,
    PPP_LOCAL, PPP_REMOTE, DNS1, DNS2), after which the guest stops pppd
    (gracefully); ``post_cmd`` is shell code run after pppd has exited, just
    before the guest powers off (e.g. to stop that daemon cleanly).  The exit
    statuses of the three are kept (pre_cmd_status(), cmd_status(),
    post_cmd_status()).  ``up_timeout`` bounds the guest's wait for IPCP before
    ``cmd`` (status 124 if it never came up).

    ``tty`` is the guest device pppd runs on (e.g. ``/tmp/dev/gsmtty2``, made by
    pre_cmd); ``modules`` are extra guest kernel modules loaded at boot with the
    PPP ones (e.g. ``("n_gsm",)``); ``files`` are extra files (name -> content)
    put in the run dir before the guest boots, where the guest sees them as
    ``/run/<name>``; ``keep_files`` are run-dir file names (e.g. transcripts the
    guest writes) that :meth:`run_file` still returns after :meth:`close`.
    """

    def __init__(
        self,
        pppd_options: Sequence[str],
        *,
        secrets: Sequence[str] = (),
        pre_cmd: str | None = None,
        cmd: str | None = None,
        mem: str = "64M",
        name: str = "pppd",
        up_timeout: float = 60.0,
        tty: str = "/dev/ttyS1",
        modules: Sequence[str] = (),
        post_cmd: str | None = None,
        files: Mapping[str, str | bytes] | None = None,
        keep_files: Sequence[str] = (),
    ) -> None:
        if isinstance(pppd_options, str):
            raise TypeError("pppd_options must be a sequence of strings, not a string")
        for opt in pppd_options:
            if "\0" in opt or "\n" in opt:
                raise ValueError(f"bad pppd option {opt!r}")
        if not tty.startswith("/") or any(c in tty for c in "\0\n"):
            raise ValueError(f"bad pppd tty {tty!r}: an absolute guest path")
        if isinstance(modules, str):
            raise TypeError("modules must be a sequence of module names, not a string")
        for module in modules:
            if not _MODULE_NAME.match(module):
                raise ValueError(f"bad module name {module!r}")
        files = dict(files or {})
        for file_name in [*files, *keep_files]:
            if "/" in file_name or file_name in ("", ".", "..") or "\0" in file_name:
                raise ValueError(f"bad run-dir file name {file_name!r} (a plain name)")
        clash = _RESERVED_RUN_FILES.intersection(files)
        if clash:
            raise ValueError(f"files would replace the harness's own run-dir files: {sorted(clash)}")
        self.pppd_options = list(pppd_options)
        self.secrets = list(secrets)
        self.pre_cmd = pre_cmd
        self.cmd = cmd
        self.post_cmd = post_cmd
        self.tty = tty
        self.modules = list(modules)
        self.files = files
        self.keep_files = list(keep_files)
        self.mem = mem
        self.name = re.sub(r"[^A-Za-z0-9_-]", "-", name)[:16] or "pppd"
        self.up_timeout = up_timeout
        self._run_dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._frozen: list[int] = []  # pids stopped by freeze()
        self._closed = False
        self._started_at: float | None = None
        self._log_pos = 0
        self._log_text = ""
        self._log_decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._saved: dict[str, str] = {}  # state files read just before the run dir is removed

    # ----- properties -----

    @property
    def run_dir(self) -> Path:
        """The host run dir (the guest's /run); gone after close() unless kept."""
        if self._run_dir is None:
            raise RuntimeError("guest not started")
        return self._run_dir

    @property
    def etc_ppp(self) -> Path:
        """The host dir that is the guest's /etc/ppp (e.g. resolv.conf from usepeerdns)."""
        return self.run_dir / "etc-ppp"

    @property
    def pid(self) -> int | None:
        """PID of the UML main process; it is also the process group id."""
        return self._proc.pid if self._proc is not None else None

    @property
    def started_at(self) -> float | None:
        """time.monotonic() just before the UML process was spawned."""
        return self._started_at

    @property
    def sock(self) -> socket.socket | None:
        """Our end of the serial line, as returned by start()."""
        return self._sock

    # ----- lifecycle -----

    def __enter__(self) -> PppdGuest:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            if not self._closed and self._proc is not None:
                self.close()

    def start(self) -> socket.socket:
        """Boot the guest; return our (blocking) end of its serial line ttyS1."""
        self._check_startable()
        try:
            self._prepare_run_dir()
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self._spawn(theirs.fileno())
            except BaseException:
                ours.close()
                raise
            finally:
                theirs.close()
            self._sock = ours
            return ours
        except BaseException:
            self.close()
            raise

    def start_on_tty(self, path: str) -> None:
        """Boot the guest with ttyS1 on the host terminal ``path`` (e.g. a pty slave we offer)."""
        self._check_startable()
        try:
            self._prepare_run_dir()
            fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
            try:
                self._spawn(fd)
            finally:
                os.close(fd)
        except BaseException:
            self.close()
            raise

    def _check_startable(self) -> None:
        if self._proc is not None or self._closed:
            raise RuntimeError("a PppdGuest can be started only once")
        reason = uml_unavailable_reason()
        if reason is not None:
            raise RuntimeError(f"cannot run a UML guest: {reason}")

    def _prepare_run_dir(self) -> None:
        # short path: the mconsole unix socket lives at <run dir>/uml/mconsole (108-byte limit)
        run = Path(tempfile.mkdtemp(prefix=f"ws-{self.name}-", dir="/tmp"))
        self._run_dir = run
        version = _uml_kernel_version()
        assert version is not None
        # modprobe -d <root> looks in <root>/lib/modules/<uname -r>
        (run / "modroot" / "lib" / "modules").mkdir(parents=True)
        (run / "modroot" / "lib" / "modules" / version).symlink_to(UML_MODULES_ROOT / version)
        self._write(run / "modprobe", '#!/bin/sh\nexec modprobe -d /run/modroot "$@"\n', 0o755)
        os.mkfifo(run / "nap.fifo")
        etc = run / "etc-ppp"
        etc.mkdir()
        self._write(etc / "options", "")  # the host's /etc/ppp/options must not apply
        secrets = "".join(line + "\n" for line in self.secrets if line.strip())
        self._write(etc / "pap-secrets", secrets, 0o600)
        self._write(etc / "chap-secrets", secrets, 0o600)
        self._write(etc / "ip-up", _ip_up_script(), 0o755)
        self._write(etc / "ip-down", _ip_down_script(), 0o755)
        self._write(run / "pppd.args", "".join(opt + "\0" for opt in self.pppd_options))
        self._write(run / "pppd.tty", self.tty + "\n")
        self._write(run / "modules.list", " ".join(self.modules) + "\n")
        if self.pre_cmd:
            self._write(run / "pre_cmd.sh", self.pre_cmd + "\n")
        if self.cmd:
            self._write(run / "cmd.sh", self.cmd + "\n")
        if self.post_cmd:
            self._write(run / "post_cmd.sh", self.post_cmd + "\n")
        for file_name, content in self.files.items():
            path = run / file_name
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        self._write(
            run / "fstab",
            (
                "proc /proc proc defaults 0 0\n"
                "sysfs /sys sysfs defaults 0 0\n"
                f"hostfs /run hostfs {run} 0 0\n"
                "/run/etc-ppp /etc/ppp none bind 0 0\n"
                "tmpfs /tmp tmpfs mode=1777 0 0\n"
            ),
        )
        # a private copy: editing the repo while a guest runs cannot break it
        self._write(run / "init", GUEST_INIT.read_text(), 0o755)
        (run / "console.log").touch()

    @staticmethod
    def _write(path: Path, text: str, mode: int = 0o644) -> None:
        path.write_text(text)
        path.chmod(mode)

    def _spawn(self, line_fd: int) -> None:
        """Start UML with ``line_fd`` (inherited) as the guest's serial line ttyS1."""
        run = self.run_dir
        uml = _which("linux.uml")
        ram_dir = _ram_dir()
        assert uml is not None and ram_dir is not None
        args = [
            uml,
            f"mem={self.mem}",
            "root=/dev/root",
            "rootfstype=hostfs",
            "rootflags=/",
            "ro",
            f"init={run}/init",
            *BOOT_SPEEDUPS,
            # console -> stderr (the log file); ttyS1 -> the socketpair
            "con=null",
            "con0=null,fd:2",
            "ssl=null",
            f"ssl1=fd:{line_fd}",
            f"uml_dir={run}",
            "umid=uml",
            # ctrl-alt-del (mconsole cad) -> SIGINT to init instead of a reboot
            "sysctl.kernel.ctrl-alt-del=0",
            "sysctl.kernel.modprobe=/run/modprobe",
            f"sysctl.kernel.hostname={self.name}",
            # unknown NAME=value parameters end up in init's environment
            f"WS_DIR={run}",
            f"WS_UP_TIMEOUT={max(1, int(self.up_timeout))}",
        ]
        env = dict(os.environ, TMPDIR=ram_dir, TMP=ram_dir, TEMP=ram_dir)
        with open(run / "console.log", "ab") as log:
            self._started_at = time.monotonic()
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                pass_fds=(line_fd,),
                close_fds=True,
                start_new_session=True,  # own process group: every UML helper can be killed
                preexec_fn=_child_setup,
            )
        _live_guests.add(self)

    # ----- state files -----

    def _read(self, name: str) -> str | None:
        """A file of the run dir (as saved at close() once the dir is gone)."""
        if name in self._saved:
            return self._saved[name]
        if self._run_dir is None:
            return None
        try:
            return (self._run_dir / name).read_text(errors="replace")
        except OSError:
            return None

    def _read_int(self, name: str) -> int | None:
        text = self._read(name)
        try:
            return int(text.strip()) if text else None
        except ValueError:
            return None

    def log(self) -> str:
        """The guest console log so far (kernel messages, pppd's debug output)."""
        if self._run_dir is not None and "console.log" not in self._saved:
            with contextlib.suppress(OSError), open(self._run_dir / "console.log", "rb") as f:
                f.seek(self._log_pos)
                data = f.read()
                self._log_pos += len(data)
                self._log_text += self._log_decoder.decode(data)
        return self._log_text

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def run_file(self, name: str) -> str | None:
        """A file of the run dir (the guest's /run), or None; after close() only ``keep_files`` (and the
        harness's own state files) are still there."""
        return self._read(name)

    def etc_ppp_file(self, name: str) -> str | None:
        """A file of the guest's /etc/ppp (e.g. "resolv.conf"), also after close()."""
        return self._read(f"etc-ppp/{name}")

    def ip_up(self) -> dict[str, str] | None:
        """Once IPCP came up: interface, local, remote (and DNS1/DNS2 if the peer gave them).

        None before the first ip-up; the last ip-up stays visible after IPCP goes down (see ip_down()).
        """
        env = _parse_env(self._read("ip-up.env"))
        if env is None or "PPP_IFACE" not in env:
            return None
        info = {
            "interface": env["PPP_IFACE"],
            "local": env.get("PPP_LOCAL", ""),
            "remote": env.get("PPP_REMOTE", ""),
        }
        info.update({k: env[k] for k in ("DNS1", "DNS2") if env.get(k)})
        return info

    def ip_down(self) -> dict[str, str] | None:
        """After the ip-down hook ran (IPCP went down again): its arguments, else None."""
        return _parse_env(self._read("ip-down.env"))

    def pppd_exit_status(self) -> int | None:
        """pppd's exit code once it exited (recorded by the guest's init)."""
        return self._read_int("pppd.rc")

    def cmd_output(self) -> str:
        """Output (stdout+stderr) of ``cmd`` so far."""
        return self._read("cmd.out") or ""

    def cmd_status(self) -> int | None:
        """Exit status of ``cmd`` once it finished (124: IPCP never came up)."""
        return self._read_int("cmd.rc")

    def pre_cmd_status(self) -> int | None:
        """Exit status of ``pre_cmd`` once it finished."""
        return self._read_int("pre_cmd.rc")

    def post_cmd_status(self) -> int | None:
        """Exit status of ``post_cmd`` once it finished (it runs after pppd exited)."""
        return self._read_int("post_cmd.rc")

    # ----- waiting -----

    def is_running(self) -> bool:
        """True while the UML main process has not exited."""
        if self._proc is None or self._proc.returncode is not None:
            return False
        try:  # WNOWAIT: look without reaping, so the pid (= process group id) stays ours
            return os.waitid(os.P_PID, self._proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
        except ChildProcessError:
            return False

    def _wait_until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{what}: not done after {timeout:g} s\n--- guest log tail ---\n" + self.log_tail())
            time.sleep(_POLL)

    def wait_for_log(self, pattern: str | re.Pattern[str], timeout: float) -> re.Match[str]:
        """Wait until the console log matches pattern (re.search); TimeoutError with the log tail."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            running = self.is_running()
            match = regex.search(self.log())
            if match:
                return match
            if not running:  # the log cannot grow any more
                raise TimeoutError(
                    f"guest exited before the log matched {regex.pattern!r}\n--- guest log tail ---\n{self.log_tail()}"
                )
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"log did not match {regex.pattern!r} within {timeout:g} s\n"
                    f"--- guest log tail ---\n{self.log_tail()}"
                )
            time.sleep(_POLL)

    def wait_ip_up(self, timeout: float) -> dict[str, str]:
        """Wait until pppd's ip-up hook ran; return ip_up()."""
        self._wait_until(lambda: self.ip_up() is not None or not self.is_running(), timeout, "IPCP up (ip-up hook)")
        info = self.ip_up()
        if info is None:
            raise TimeoutError("guest stopped before IPCP came up\n--- guest log tail ---\n" + self.log_tail())
        return info

    def wait(self, timeout: float) -> int:
        """Wait until the guest powered off; return pppd's exit code."""
        if self._proc is None:
            raise RuntimeError("guest not started")
        self._wait_until(lambda: not self.is_running(), timeout, "guest power-off")
        self._reap()
        status = self.pppd_exit_status()
        if status is None:
            raise RuntimeError(
                "guest stopped without recording pppd's exit status\n--- guest log tail ---\n" + self.log_tail()
            )
        return status

    # ----- control -----

    def _mconsole(self, command: str, timeout: float = 1.0) -> bool:
        """Send one command (cad, halt, ...) to UML's management console; True if it was accepted."""
        if self._run_dir is None:
            return False
        path = str(self._run_dir / "uml" / "mconsole")  # exists once the guest kernel is up
        data = command.encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.bind("")  # autobind to an abstract address, so UML can reply
                s.settimeout(timeout)
                s.sendto(struct.pack("=III512s", _MCONSOLE_MAGIC, _MCONSOLE_VERSION, len(data), data), path)
                err, _more, _length = struct.unpack_from("=iii", s.recv(4096))
                return int(err) == 0
        except (OSError, struct.error):
            return False

    def _untraced_pids(self) -> list[int]:
        """The UML processes that are not ptrace()d: the kernel and its helpers, not guest processes."""
        pids = []
        for pid in process_group_pids(self.pid or -1):
            with contextlib.suppress(OSError):
                status = Path(f"/proc/{pid}/status").read_text()
                if re.search(r"^TracerPid:\s*0$", status, re.M):
                    pids.append(pid)
        return pids

    def freeze(self) -> None:
        """SIGSTOP the UML kernel process and its helpers: the peer goes silent.

        The ptrace()d processes that run guest code must not get SIGSTOP/SIGCONT
        (UML panics on unexpected stops); they wait for their stopped tracer anyway.
        """
        if self.pid is None or not self.is_running():
            raise RuntimeError("guest not running")
        if self._frozen:
            return
        os.kill(self.pid, signal.SIGSTOP)  # the kernel first: then no new processes appear
        self._frozen = [self.pid] + [p for p in self._untraced_pids() if p != self.pid]
        for pid in self._frozen[1:]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT what freeze() stopped."""
        frozen, self._frozen = self._frozen, []
        for pid in reversed(frozen):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def stop_pppd(self, timeout: float = 10.0) -> int:
        """Gracefully stop pppd: SIGTERM in the guest, so it sends LCP Terminate-Request.

        Returns pppd's exit code; the guest then powers off by itself (see wait()).
        """
        if self._proc is None:
            raise RuntimeError("guest not started")
        deadline = time.monotonic() + timeout
        if self._frozen:
            self.thaw()
        # init traps SIGINT (= ctrl-alt-del) only once init.ready exists
        self._wait_until(
            lambda: self._read("init.ready") is not None or not self.is_running(), timeout, "guest init ready"
        )
        if self.pppd_exit_status() is None and self.is_running():
            self._mconsole("cad")
        self._wait_until(
            lambda: self.pppd_exit_status() is not None or not self.is_running(),
            max(0.0, deadline - time.monotonic()),
            "pppd exit after SIGTERM",
        )
        status = self.pppd_exit_status()
        if status is None:
            raise RuntimeError(
                "guest stopped without recording pppd's exit status\n--- guest log tail ---\n" + self.log_tail()
            )
        return status

    def _reap(self) -> None:
        """Kill what is left of the UML process group, then reap the main process."""
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None:
            # the main process is not reaped yet, so its pid is still our process group's id
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        deadline = time.monotonic() + 5
        while process_group_pids(proc.pid) and time.monotonic() < deadline:
            time.sleep(_POLL)

    def close(self, grace: float = 0.0) -> None:
        """Stop everything and remove the run dir (unless WIPSTACK_KEEP_GUEST is set).

        grace > 0: stop pppd gracefully (LCP Terminate-Request) and let the guest
        power off, for up to grace seconds; then (or with grace=0 at once) halt
        the guest and SIGKILL its process group.  Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        try:
            if self._proc is not None:
                self._stop_uml(grace)
        finally:
            _live_guests.discard(self)
            if self._sock is not None:
                self._sock.close()
            self._save_and_remove_run_dir()

    def _stop_uml(self, grace: float) -> None:
        try:
            if self.is_running():
                if self._frozen:
                    self.thaw()
                if grace > 0:
                    deadline = time.monotonic() + grace
                    with contextlib.suppress(TimeoutError, RuntimeError):
                        self.stop_pppd(timeout=grace)
                    with contextlib.suppress(TimeoutError):  # init powers off right after pppd exits
                        self._wait_until(
                            lambda: not self.is_running(), max(1.0, deadline - time.monotonic()), "power-off"
                        )
                if self.is_running() and self._mconsole("halt"):
                    with contextlib.suppress(TimeoutError):
                        self._wait_until(lambda: not self.is_running(), 2.0, "halt")
        finally:
            self._reap()

    def _save_and_remove_run_dir(self) -> None:
        if self._run_dir is None:
            return
        names = ["pppd.rc", "ip-up.env", "ip-down.env", "cmd.out", "cmd.rc", "init.ready", "pre_cmd.rc"]
        names += ["post_cmd.rc", *self.keep_files]
        etc = self._run_dir / "etc-ppp"
        with contextlib.suppress(OSError):
            names += [f"etc-ppp/{p.name}" for p in etc.iterdir() if p.is_file()]
        saved = {}
        for name in names:
            text = self._read(name)
            if text is not None:
                saved[name] = text
        saved["console.log"] = self.log()
        self._saved = saved
        if os.environ.get(KEEP_ENV):
            sys.stderr.write(f"{KEEP_ENV} set: kept guest run dir {self._run_dir}\n")
            return
        shutil.rmtree(self._run_dir, ignore_errors=True)
