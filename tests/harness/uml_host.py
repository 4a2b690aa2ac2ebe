"""Host-side helpers of the UML harness (tests/harness/uml.py): tools, packages, the UML kernel,
the RAM dir, process groups, and the guest's ip-up/ip-down hooks."""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

UML_PACKAGES = ("user-mode-linux", "ppp", "kmod", "iproute2", "busybox-static")
UML_MODULES_ROOT = Path("/usr/lib/uml/modules")
# where the tools are looked up (pytest may run with a PATH lacking the sbin dirs)
_TOOL_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_install_attempted = False
_install_lock = threading.Lock()

_prctl: Callable[..., int] | None
try:  # prctl(PR_SET_PDEATHSIG), resolved before fork so the child only calls it
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # pragma: no cover - non-glibc host
    _prctl = None
_PR_SET_PDEATHSIG = 1


def _which(tool: str) -> str | None:
    return shutil.which(tool) or shutil.which(tool, path=_TOOL_PATH)


def _missing_packages() -> list[str]:
    """Debian packages whose tools are missing on this host."""
    wanted = {
        "user-mode-linux": "linux.uml",
        "ppp": "pppd",
        "kmod": "modprobe",
        "iproute2": "ip",
        "busybox-static": "busybox",
    }
    return [pkg for pkg, tool in wanted.items() if _which(tool) is None]


def _apt_install(packages: Sequence[str]) -> None:
    """Install packages with apt-get (once per process); errors are ignored."""
    global _install_attempted
    with _install_lock:
        if _install_attempted or _which("apt-get") is None:
            return
        _install_attempted = True
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")

        def apt_get(*args: str) -> bool:
            try:
                return (
                    subprocess.run(
                        ["apt-get", *args],
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        timeout=900,
                        check=False,
                    ).returncode
                    == 0
                )
            except (OSError, subprocess.TimeoutExpired):
                return False

        install = ("install", "-y", "-q", "--no-install-recommends", *packages)
        if not apt_get(*install):  # stale package lists are the usual cause
            apt_get("update", "-q")
            apt_get(*install)


_kernel_version_cache: str | None = None


def _uml_kernel_version() -> str | None:
    """The UML kernel's release (e.g. "6.1.176"), for its modules dir."""
    global _kernel_version_cache
    if _kernel_version_cache is not None:
        return _kernel_version_cache
    uml = _which("linux.uml")
    version = None
    if uml is not None:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            out = subprocess.run(
                [uml, "--version"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            ).stdout.split()
            if out and (UML_MODULES_ROOT / out[-1]).is_dir():
                version = out[-1]
    if version is None and UML_MODULES_ROOT.is_dir():  # fall back to the newest installed modules
        dirs = [d.name for d in UML_MODULES_ROOT.iterdir() if d.is_dir()]
        if dirs:
            version = max(dirs, key=lambda v: [int(x) if x.isdigit() else 0 for x in re.split(r"[.-]", v)])
    _kernel_version_cache = version
    return version


def _exec_ok(path: str) -> bool:
    try:
        return os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK) and not os.statvfs(path).f_flag & os.ST_NOEXEC
    except OSError:
        return False


def _ram_dir() -> str | None:
    """A dir for UML's RAM file: it is mmap()ed with PROT_EXEC, so no noexec mount."""
    candidates = [os.environ.get(v, "") for v in ("TMPDIR", "TMP", "TEMP")] + ["/dev/shm", "/tmp"]
    return next((c for c in candidates if c and _exec_ok(c)), None)


def process_group_pids(pgid: int) -> list[int]:
    """PIDs of the live (incl. zombie) processes in process group pgid, from /proc."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) "
        if len(fields) > 2 and int(fields[2]) == pgid:
            pids.append(int(entry))
    return pids


def _child_setup() -> None:
    """In the UML child, before exec: die with SIGTERM when our thread dies."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _ip_up_script() -> str:
    return (
        "#!/bin/sh\n"
        "# pppd runs this once IPCP is up: $1=interface $2=tty $3=speed $4=local $5=remote\n"
        "printf 'PPP_IFACE=%s\\nPPP_LOCAL=%s\\nPPP_REMOTE=%s\\nDNS1=%s\\nDNS2=%s\\n' "
        '"$1" "$4" "$5" "$DNS1" "$DNS2" >/run/ip-up.tmp\n'
        "rm -f /run/ip-down.env\n"
        "mv -f /run/ip-up.tmp /run/ip-up.env\n"
        'echo "wipstack-guest: ip-up $*" >/dev/console\n'
    )


def _ip_down_script() -> str:
    return (
        "#!/bin/sh\n"
        'printf \'PPP_IFACE=%s\\nPPP_LOCAL=%s\\nPPP_REMOTE=%s\\n\' "$1" "$4" "$5" >/run/ip-down.tmp\n'
        "mv -f /run/ip-down.tmp /run/ip-down.env\n"
        'echo "wipstack-guest: ip-down $*" >/dev/console\n'
    )


def _parse_env(text: str | None) -> dict[str, str] | None:
    if text is None:
        return None
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
