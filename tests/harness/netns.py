"""Throw-away Linux network namespaces for interop tests against the host kernel.

A :class:`NetNamespace` is created with ``ip netns add`` under a name unique to this
process (``<prefix>-test-<pid>-<counter>``), so parallel test runs never collide.
Commands run inside it with ``ip netns exec``: :meth:`NetNamespace.run` waits for
them, :meth:`NetNamespace.popen` starts them in their own process group and tracks
them.  :meth:`NetNamespace.close` kills the tracked process groups and anything else
still running in the namespace (by PID), then deletes it; it is idempotent and also
runs at interpreter exit for namespaces a test forgot.

Devices moved into the namespace (veth ends, a TUN interface) are destroyed with it,
so close a :class:`~wipstack.drivers.tun.TunDevice` before its namespace if its fd
is to stay meaningful until then.

Typical use::

    skip_unless_netns_tun()
    with NetNamespace() as ns:
        ns.run("ip", "link", "set", "lo", "up")
        proc = ns.popen("ping", "-c", "1", "192.0.2.2", stdout=subprocess.PIPE)
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import itertools
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Any

from wipstack.drivers.tun import tun_unavailable_reason

REQUIRE_ENV = "WIPSTACK_REQUIRE_INTEROP"
# where the tools are looked up (pytest may run with a PATH lacking the sbin dirs)
_TOOL_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PREFIX = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_KILL_WAIT = 5.0  # seconds to wait for a killed process to be reaped
_NETNS_DIR = "/run/netns"

_counter = itertools.count()
_counter_lock = threading.Lock()
_live_namespaces: weakref.WeakSet[NetNamespace] = weakref.WeakSet()

_prctl: Callable[..., int] | None
try:  # prctl(PR_SET_PDEATHSIG), resolved before fork so the child only calls it
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # pragma: no cover - non-glibc host
    _prctl = None
_PR_SET_PDEATHSIG = 1


def which(tool: str) -> str | None:
    """A tool's path, also looked up in the sbin dirs."""
    return shutil.which(tool) or shutil.which(tool, path=_TOOL_PATH)


def ping_command() -> list[str] | None:
    """argv prefix of an IPv4 ping taking ``-c N -W SECONDS -s SIZE``: iputils' ``ping``, else ``busybox ping``."""
    ping = which("ping")
    if ping is not None:
        return [ping]
    busybox = which("busybox")
    if busybox is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            applets = subprocess.run(
                [busybox, "--list"], stdin=subprocess.DEVNULL, capture_output=True, timeout=10, check=False
            ).stdout.split()
            if b"ping" in applets:
                return [busybox, "ping"]
    return None


def _ip() -> str:
    ip = which("ip")
    if ip is None:
        raise FileNotFoundError("iproute2's `ip` is not installed (Debian package iproute2)")
    return ip


def _run(argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False)


def list_netns() -> list[str]:
    """The names ``ip netns list`` shows."""
    proc = _run([_ip(), "netns", "list"])
    return [line.split()[0] for line in proc.stdout.decode(errors="replace").splitlines() if line.strip()]


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group that popen() started (its id is the leader's PID), then reap the leader."""
    if proc.returncode is None:
        # the leader is not reaped yet (at most a zombie), so its PID still names our process group
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=_KILL_WAIT)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


@atexit.register
def _close_live_namespaces() -> None:
    for ns in list(_live_namespaces):
        with contextlib.suppress(Exception):
            ns.close()


class NetNamespace:
    """A network namespace of our own, deleted by close() (or at exit).

    Its name is ``<prefix>-test-<pid>-<counter>``.  Only loopback exists in a new
    namespace, and it is down: ``ns.run("ip", "link", "set", "lo", "up")``.
    """

    def __init__(self, prefix: str = "wipstack") -> None:
        if not _PREFIX.fullmatch(prefix):
            raise ValueError(f"bad namespace prefix {prefix!r}")
        self._procs: list[subprocess.Popen[bytes]] = []
        self._closed = False
        ip = _ip()
        for _attempt in range(100):
            with _counter_lock:
                name = f"{prefix}-test-{os.getpid()}-{next(_counter)}"
            proc = _run([ip, "netns", "add", name])
            if proc.returncode == 0:
                break
            # a leftover of an earlier process that had our PID: take the next counter value
            if not os.path.exists(os.path.join(_NETNS_DIR, name)):
                raise RuntimeError(f"ip netns add {name}: {proc.stderr.decode(errors='replace').strip()}")
        else:  # pragma: no cover - 100 stale namespaces with our PID
            raise RuntimeError(f"ip netns add: no free name for {prefix}-test-{os.getpid()}-N")
        self.name: str = name
        _live_namespaces.add(self)

    # ----- running commands -----

    def _argv(self, argv: tuple[str, ...]) -> list[str]:
        if not argv:
            raise ValueError("no command given")
        if self._closed:
            raise RuntimeError(f"network namespace {self.name} is closed")
        return [_ip(), "netns", "exec", self.name, *argv]

    def run(
        self, *argv: str, check: bool = True, timeout: float = 30, input: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        """Run argv inside the namespace and wait; stdout and stderr are captured.

        check=True raises subprocess.CalledProcessError on a non-zero exit (its stderr
        attached); a command still running after timeout seconds is killed
        (subprocess.TimeoutExpired).
        """
        proc = subprocess.run(
            self._argv(argv),
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, proc.args, proc.stdout, proc.stderr)
        return proc

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        """``ip -n <name> args...`` (iproute2 acting on this namespace)."""
        if self._closed:
            raise RuntimeError(f"network namespace {self.name} is closed")
        proc = _run([_ip(), "-n", self.name, *args])
        if check and proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, proc.args, proc.stdout, proc.stderr)
        return proc

    def popen(self, *argv: str, **kwargs: Any) -> subprocess.Popen[bytes]:
        """Start argv inside the namespace without waiting (subprocess.Popen keyword arguments).

        The process gets its own process group and is killed with it (SIGKILL to the
        group) by close(); it also gets SIGTERM if the thread that started it dies.
        stdin defaults to /dev/null.  Binary streams only (no text/encoding/errors).
        """
        for key in ("text", "universal_newlines", "encoding", "errors", "start_new_session", "process_group"):
            if kwargs.get(key):
                raise ValueError(f"popen() does not take {key}=")
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        user_setup: Callable[[], object] | None = kwargs.pop("preexec_fn", None)

        def child_setup() -> None:
            if _prctl is not None:
                _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
            if user_setup is not None:
                user_setup()

        proc: subprocess.Popen[bytes] = subprocess.Popen(
            self._argv(argv), start_new_session=True, preexec_fn=child_setup, **kwargs
        )
        self._procs.append(proc)
        return proc

    def pids(self) -> list[int]:
        """PIDs of the processes running in the namespace (``ip netns pids``)."""
        if self._closed:
            return []
        proc = _run([_ip(), "netns", "pids", self.name])
        return [int(tok) for tok in proc.stdout.split() if tok.isdigit()]

    # ----- life cycle -----

    def _kill_all(self) -> None:
        procs, self._procs = self._procs, []
        for proc in procs:
            _kill_group(proc)
        # anything else still in the namespace (started by a tracked process, or by hand)
        deadline = time.monotonic() + _KILL_WAIT
        while (pids := [pid for pid in self.pids() if pid != os.getpid()]) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)

    def close(self) -> None:
        """Kill the tracked process groups and whatever else runs inside, then ``ip netns del``. Idempotent.

        RuntimeError if the namespace could not be deleted (close() may then be retried).
        """
        if self._closed:
            return
        self._kill_all()
        proc = _run([_ip(), "netns", "del", self.name])
        if proc.returncode != 0 and os.path.exists(os.path.join(_NETNS_DIR, self.name)):
            raise RuntimeError(f"ip netns del {self.name}: {proc.stderr.decode(errors='replace').strip()}")
        self._closed = True
        _live_namespaces.discard(self)

    @property
    def closed(self) -> bool:
        """True once the namespace was deleted."""
        return self._closed

    def __enter__(self) -> NetNamespace:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<NetNamespace {self.name}{' closed' if self._closed else ''}>"


# --------------------------------------------------------------------------
# availability
# --------------------------------------------------------------------------

_reason_cache: list[str | None] = []


def netns_tun_unavailable_reason() -> str | None:
    """None if namespaces and TUN devices can be made here, else why not (computed once per process)."""
    if _reason_cache:
        return _reason_cache[0]
    reason = _probe()
    _reason_cache.append(reason)
    return reason


def _probe() -> str | None:
    if not hasattr(os, "geteuid") or os.uname().sysname != "Linux":
        return "network namespaces and TUN need a Linux host"
    if os.geteuid() != 0:
        return "network namespaces and TUN devices need root"
    if which("ip") is None:
        return "iproute2's `ip` is not installed (apt-get install iproute2)"
    reason = tun_unavailable_reason()
    if reason is not None:
        return reason
    try:
        with NetNamespace(prefix="wipstack-probe") as ns:
            ns.run("ip", "link", "set", "lo", "up", timeout=10)
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        detail = exc.stderr.decode(errors="replace").strip() if isinstance(exc, subprocess.CalledProcessError) else ""
        return f"cannot create a network namespace: {exc} {detail}".strip()
    return None


def skip_unless_netns_tun() -> None:
    """pytest.skip() when netns + TUN tests cannot run; pytest.fail() instead if WIPSTACK_REQUIRE_INTEROP=1."""
    import pytest

    reason = netns_tun_unavailable_reason()
    if reason is None:
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1)", pytrace=False)
    pytest.skip(reason)
