"""Helpers of the FTP interop tests (``test_ftp_kernel.py``, ``test_ftp_pppd.py``).

* FTP servers in a test network namespace, bound to all of its addresses (the namespace
  holds only loopback and the kernel's end of our TUN link):

  - :func:`start_pyftpdlib`: pyftpdlib (``python -c PYFTPDLIB_SCRIPT``) with a user and a
    password, a temporary root, a passive port range and optional quirks (advertise a
    closed passive port, connect to the wrong active port, a rate limit);
  - :func:`start_vsftpd`: ``/usr/sbin/vsftpd`` with a config file of its own: anonymous
    login rooted in a temporary dir (downloads from the root, uploads into ``pub/``, the
    only directory the ``ftp`` user may write), a banned "e-mail" password for the
    wrong-password case, a passive port range, active mode (``port_enable``), optional
    rate limit and ``pasv_enable``/``port_enable`` switched off for the refused-data cases;
  - :func:`start_tiny_server`: :data:`TINY_FTP_SERVER`, a small RFC 959 server in plain
    python3 (USER PASS TYPE PASV EPSV PORT RETR STOR SIZE QUIT and a few more) for the UML
    guest, where pyftpdlib is not installed; it runs in a namespace too.

  :class:`FtpServer` knows the host path behind every remote name, kills the server by PID
  (every process of it) and shows its log when something fails.

* :class:`WipFtp`: wipstack's :class:`~wipstack.apps.ftp.FtpSession` on a running
  :class:`~wipstack.drivers.netloop.NetLoop` (a TUN link from ``tcp_kernel_helpers.running_wip``
  or a PPP link); every session callback runs on the loop's thread, a transfer is pumped
  from its events there, and the test's thread only waits.  Downloads and uploads report
  the SHA-256, the octets on the wire (``Transfer.bytes``) and the rate.

* AT-UART helpers for ``+WIPFILE`` (the test de-escapes DLE/ETX itself) and
  :func:`run_cli` for ``python -m wipstack ftp``.

Addresses are TEST-NET-1 only: the kernel 192.0.2.1, wipstack 192.0.2.2.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.harness.netns import REQUIRE_ENV, NetNamespace
from wipstack.apps.ftp import (
    FtpError,
    FtpSession,
    LoggedIn,
    SessionClosed,
    SessionEvent,
    SessionState,
    Transfer,
    TransferEvent,
    TransferState,
)
from wipstack.drivers.netloop import NetLoop
from wipstack.drivers.ports import TimerPort
from wipstack.wire.ftp import FtpReply

ROOT = Path(__file__).resolve().parents[2]
KERNEL = "192.0.2.1"
WIPSTACK = "192.0.2.2"
FTP_PORT = 21
USER, PASSWORD = "wip", "s3cret-pw"
WRONG_PASSWORD = "not-the-password"
VSFTPD_USER, VSFTPD_PASSWORD = "anonymous", "wip@example.org"
VSFTPD_BANNED_PASSWORD = "banned@example.org"  # in vsftpd's banned_email_file: 530 Login incorrect
PASV_MIN, PASV_MAX = 30000, 30099
VSFTPD = "/usr/sbin/vsftpd"
CHUNK = 1 << 16
SERVER_KINDS = ("pyftpdlib", "vsftpd")

# ---------------------------------------------------------------------------- payloads


def all_values(size: int = 256 * 1024) -> bytes:
    """Every octet value 0-255, in order, repeated up to ``size`` octets."""
    return (bytes(range(256)) * (size // 256 + 1))[:size]


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


#: name -> (size, factory); the 256-value file is 256 KiB of 0x00..0xff repeated.
SIZES: dict[str, int] = {"0B": 0, "1B": 1, "256values": 256 * 1024, "1MB": 1_000_000, "20MB": 20_000_000}


def payload(name: str, seed: int = 1) -> bytes:
    size = SIZES[name]
    if name == "256values":
        return all_values(size)
    if name == "1B":
        return b"\x10"  # a DLE: the AT side must escape even a one-octet file
    return random_bytes(size, seed)


def text_payload(lines: int = 20_000, seed: int = 5) -> bytes:
    """A text file with LF line ends (~1 MB): printable lines of varied length, some empty."""
    rng = random.Random(seed)
    alphabet = b"abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789.,;:-_"
    out = bytearray()
    for i in range(lines):
        if i % 97 == 0:
            out += b"\n"
            continue
        out += bytes(rng.choice(alphabet) for _ in range(rng.randrange(1, 120))) + b"\n"
    return bytes(out)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def mbit(octets: int, seconds: float) -> float:
    return octets * 8 / max(seconds, 1e-9) / 1e6


def require_vsftpd() -> None:
    if not os.access(VSFTPD, os.X_OK):
        reason = f"{VSFTPD} is not installed (Debian package vsftpd)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason} ({REQUIRE_ENV}=1)", pytrace=False)
        pytest.skip(reason)


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------------------- servers

#: argv[1]: JSON {host, port, root, user, password, pasv: [lo, hi], log, quirk, rate}.
#: quirk "closed-pasv": PASV/EPSV advertise a port nothing listens on;
#: quirk "wrong-port": an active connection goes to the PORT port + 1 (closed on wipstack).
#: rate > 0: ThrottledDTPHandler, that many octets/s each way.  Prints "ready" when it listens.
PYFTPDLIB_SCRIPT = r"""
import json, logging, socket, sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, ThrottledDTPHandler
from pyftpdlib.servers import FTPServer

cfg = json.loads(sys.argv[1])
logging.basicConfig(filename=cfg["log"], level=logging.INFO, format="%(asctime)s %(message)s")
authorizer = DummyAuthorizer()
authorizer.add_user(cfg["user"], cfg["password"], cfg["root"], perm="elradfmwMT")


def closed_port():
    s = socket.socket()
    s.bind(("0.0.0.0", 0))
    port = s.getsockname()[1]
    s.close()  # never listened: a SYN to it is answered with RST
    return port


class Handler(FTPHandler):
    if cfg["quirk"] == "closed-pasv":
        def ftp_EPSV(self, line):
            self.respond("229 Entering extended passive mode (|||%d|)." % closed_port())

        def ftp_PASV(self, line):
            port = closed_port()
            ip = self.socket.getsockname()[0].replace(".", ",")
            self.respond("227 Entering passive mode (%s,%d,%d)." % (ip, port >> 8, port & 255))

    if cfg["quirk"] == "wrong-port":
        def ftp_PORT(self, line):
            parts = line.split(",")
            port = (int(parts[4]) * 256 + int(parts[5])) % 65535 + 1
            parts[4:] = [str(port >> 8), str(port & 255)]
            return FTPHandler.ftp_PORT(self, ",".join(parts))


Handler.authorizer = authorizer
Handler.passive_ports = range(cfg["pasv"][0], cfg["pasv"][1] + 1)
Handler.banner = "wipstack interop pyftpdlib"
if cfg["rate"]:
    class Throttled(ThrottledDTPHandler):
        read_limit = cfg["rate"]
        write_limit = cfg["rate"]
    Handler.dtp_handler = Throttled
server = FTPServer((cfg["host"], cfg["port"]), Handler)
print("ready", flush=True)
server.serve_forever(timeout=0.2)
"""


#: ``python3 -c TINY_FTP_SERVER <root> <addr> <port> <user> <password> <log> <lifetime s> [<delay s>]``: a small
#: RFC 959 server in the standard library only (the UML guest has no pyftpdlib).  USER PASS TYPE
#: (A, I, L 8) PASV EPSV PORT RETR STOR SIZE QUIT, plus SYST NOOP PWD CWD FEAT MODE STRU.  It
#: answers 150 *before* it opens or accepts the data connection (RFC 959 §5.4: "150 File status
#: okay; about to open data connection"), and with ``<delay>`` waits that long between the 150 and
#: its connect() in active mode.  Each session runs in a thread; STOR logs
#: ``STOR <name> <n> octets sha256=<hex>``; ``<root>/../ftp.ready`` once it listens.
TINY_FTP_SERVER = r"""
import hashlib, os, socket, sys, threading, time

ROOT, ADDR, PORT, USER, PASSWORD, LOG = sys.argv[1:7]
PORT, LIFETIME = int(PORT), float(sys.argv[7])
CONNECT_DELAY = float(sys.argv[8]) if len(sys.argv) > 8 else 0.0
lock = threading.Lock()


def log(line):
    with lock, open(LOG, "a") as f:
        f.write(line + "\n")


def path_of(name):
    name = name.strip().lstrip("/")
    if not name or ".." in name.split("/"):
        return None
    return os.path.join(ROOT, name)


class Session:
    def __init__(self, conn, peer):
        self.conn, self.peer = conn, peer
        self.user, self.logged_in, self.type = None, False, "A"
        self.listener, self.port_addr = None, None

    def reply(self, text):
        self.conn.sendall(text.encode() + b"\r\n")

    def drop_data_setup(self):
        if self.listener is not None:
            self.listener.close()
        self.listener, self.port_addr = None, None

    def open_data(self):
        # called after the 150: accept the client's connection (passive) or connect (active)
        try:
            if self.listener is not None:
                self.listener.settimeout(30)
                data, _ = self.listener.accept()
            elif self.port_addr is not None:
                time.sleep(CONNECT_DELAY)
                data = socket.create_connection(self.port_addr, timeout=30)
            else:
                return None
            data.settimeout(60)
            return data
        except OSError as exc:
            log("data connection failed: %r" % exc)
            return None
        finally:
            self.drop_data_setup()

    def run(self):
        self.reply("220 wipstack tiny FTP server")
        reader = self.conn.makefile("rb")
        for raw in reader:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            log("< " + (line if verb != "PASS" else "PASS ****"))
            if verb == "QUIT":
                self.reply("221 Goodbye.")
                break
            if verb == "USER":
                self.user, self.logged_in = arg, False
                self.reply("331 Password required.")
            elif verb == "PASS":
                if self.user == USER and arg == PASSWORD:
                    self.logged_in = True
                    self.reply("230 Logged in.")
                else:
                    self.reply("530 Login incorrect.")
            elif not self.logged_in:
                self.reply("530 Please log in with USER and PASS.")
            elif verb == "TYPE":
                kind = arg.upper().split()
                if kind and kind[0] in ("A", "I", "L"):
                    self.type = "A" if kind[0] == "A" else "I"
                    self.reply("200 Type set to %s." % self.type)
                else:
                    self.reply("504 Type not implemented.")
            elif verb in ("PASV", "EPSV"):
                self.drop_data_setup()
                s = socket.socket()
                s.bind((self.conn.getsockname()[0], 0))
                s.listen(1)
                self.listener = s
                port = s.getsockname()[1]
                if verb == "EPSV":
                    self.reply("229 Entering Extended Passive Mode (|||%d|)" % port)
                else:
                    host = self.conn.getsockname()[0].replace(".", ",")
                    self.reply("227 Entering Passive Mode (%s,%d,%d)" % (host, port >> 8, port & 255))
            elif verb == "PORT":
                self.drop_data_setup()
                try:
                    n = [int(x) for x in arg.split(",")]
                    assert len(n) == 6 and all(0 <= x <= 255 for x in n)
                except (ValueError, AssertionError):
                    self.reply("501 Bad PORT argument.")
                    continue
                self.port_addr = ("%d.%d.%d.%d" % tuple(n[:4]), n[4] * 256 + n[5])
                self.reply("200 PORT command successful.")
            elif verb == "SIZE":
                p = path_of(arg)
                if p and os.path.isfile(p):
                    self.reply("213 %d" % os.path.getsize(p))
                else:
                    self.reply("550 No such file.")
            elif verb == "RETR":
                p = path_of(arg)
                if not p or not os.path.isfile(p):
                    self.drop_data_setup()
                    self.reply("550 No such file.")
                    continue
                self.reply("150 Opening data connection for %s (%d bytes)." % (arg, os.path.getsize(p)))
                data = self.open_data()
                if data is None:
                    self.reply("425 Can't open data connection.")
                    continue
                t0, sent = time.monotonic(), 0
                try:
                    with open(p, "rb") as f:  # streamed: the guest has 64 MB of memory
                        if self.type == "A":
                            chunks = iter([f.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")])
                        else:
                            chunks = iter(lambda: f.read(65536), b"")
                        for chunk in chunks:
                            data.sendall(chunk)
                            sent += len(chunk)
                    data.close()
                except OSError as exc:
                    data.close()
                    self.reply("426 Connection closed; transfer aborted.")
                    log("RETR %s failed after %d octets: %r" % (arg, sent, exc))
                    continue
                log("RETR %s %d octets time=%.3f" % (arg, sent, time.monotonic() - t0))
                self.reply("226 Transfer complete.")
            elif verb == "STOR":
                p = path_of(arg)
                if not p:
                    self.drop_data_setup()
                    self.reply("553 Bad file name.")
                    continue
                self.reply("150 Ok to send data.")
                data = self.open_data()
                if data is None:
                    self.reply("425 Can't open data connection.")
                    continue
                h, stored, wire, cr, t0 = hashlib.sha256(), 0, 0, b"", time.monotonic()
                try:
                    with open(p, "wb") as f:  # streamed to the file, hashed on the way
                        while True:
                            b = data.recv(1 << 16)
                            if not b:
                                break
                            wire += len(b)
                            if self.type == "A":  # CRLF -> LF, a CR at a chunk's end waits for the next
                                b = cr + b
                                cr = b"\r" if b.endswith(b"\r") else b""
                                b = (b[:-1] if cr else b).replace(b"\r\n", b"\n")
                            f.write(b)
                            h.update(b)
                            stored += len(b)
                        if cr:
                            f.write(cr)
                            h.update(cr)
                            stored += 1
                    data.close()
                except OSError as exc:
                    data.close()
                    self.reply("426 Connection closed; transfer aborted.")
                    log("STOR %s failed after %d octets: %r" % (arg, wire, exc))
                    continue
                log("STOR %s %d octets wire=%d sha256=%s time=%.3f"
                    % (arg, stored, wire, h.hexdigest(), time.monotonic() - t0))
                self.reply("226 Transfer complete.")
            elif verb == "SYST":
                self.reply("215 UNIX Type: L8")
            elif verb in ("NOOP", "MODE", "STRU"):
                self.reply("200 OK.")
            elif verb == "PWD":
                self.reply('257 "/" is the current directory.')
            elif verb == "CWD":
                self.reply("250 OK.")
            elif verb == "FEAT":
                self.reply("211-Features:\r\n EPSV\r\n PASV\r\n SIZE\r\n211 End")
            else:
                self.reply("502 Command not implemented.")
        self.drop_data_setup()
        self.conn.close()


def serve(conn, peer):
    try:
        Session(conn, peer).run()
    except OSError as exc:
        log("session %s:%d ended: %r" % (peer[0], peer[1], exc))


server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((ADDR, PORT))
server.listen(8)
server.settimeout(0.5)
open(os.path.join(os.path.dirname(ROOT.rstrip("/")), "ftp.ready"), "w").close()
deadline = time.monotonic() + LIFETIME
while time.monotonic() < deadline:
    try:
        conn, peer = server.accept()
    except socket.timeout:
        continue
    threading.Thread(target=serve, args=(conn, peer), daemon=True).start()
log("server done")
"""


def process_tree(root: int) -> list[int]:
    """``root`` and its living descendants (from /proc: ``ppid`` of every process)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


@dataclass
class FtpServer:
    """A running FTP server in a namespace (see the module docstring)."""

    kind: str
    ns: NetNamespace
    workdir: Path
    root: Path  # the directory remote names are relative to
    upload_dir: str  # prefix of names that may be uploaded ("pub/" for vsftpd)
    user: str
    password: str
    wrong_password: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    port: int = FTP_PORT
    _uploads: int = 0

    def path(self, name: str) -> Path:
        return self.root / name.lstrip("/")

    def put(self, name: str, data: bytes) -> str:
        """A file the server can serve; its remote name."""
        target = self.path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(0o644)
        return name

    def upload_name(self, stem: str) -> str:
        """A new remote name an upload may take (vsftpd's anonymous user cannot overwrite)."""
        self._uploads += 1
        return f"{self.upload_dir}{stem}-{self._uploads}"

    def read(self, name: str) -> bytes:
        return self.path(name).read_bytes()

    def pids(self) -> list[int]:
        """The server's process and all its descendants (vsftpd forks two per session; by default
        they even get PID and network namespaces of their own, so ``ip netns pids`` misses them)."""
        return process_tree(self.proc.pid) if self.proc.poll() is None else []

    def kill(self) -> None:
        """SIGKILL every process of the server, by PID (a crash: the kernel closes its sockets).

        The children first (found while the main process still lives), then the main process.
        """
        for _ in range(50):
            pids = self.pids()
            if not pids:
                break
            for pid in reversed(pids):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)

    def stop(self) -> None:
        self.kill()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def log(self) -> str:
        text = ""
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace")
        return f"--- {self.kind} log ({self.log_path}):\n{text[-4000:]}"


def _wait_listening(ns: NetNamespace, port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 15) -> None:
    """Until a TCP connection to 127.0.0.1:port in the namespace gets a 220 greeting."""
    probe = (
        "import socket, sys, time\n"
        "end = time.monotonic() + float(sys.argv[2])\n"
        "while True:\n"
        "    try:\n"
        "        s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=2)\n"
        "        line = s.makefile('rb').readline()\n"
        "        s.close()\n"
        "        if line.startswith(b'220'):\n"
        "            break\n"
        "    except OSError:\n"
        "        pass\n"
        "    if time.monotonic() > end:\n"
        "        sys.exit('no 220 greeting')\n"
        "    time.sleep(0.05)\n"
    )
    result = ns.run(sys.executable, "-c", probe, str(port), str(timeout), check=False, timeout=timeout + 10)
    if result.returncode != 0:
        err = b""
        if proc.poll() is not None and proc.stderr is not None:
            err = proc.stderr.read()
        detail = err.decode(errors="replace")
        raise AssertionError(f"{what} is not answering on port {port} (exit {proc.poll()}): {detail}")


def start_pyftpdlib(
    ns: NetNamespace, workdir: Path, *, quirk: str | None = None, rate: int = 0, port: int = FTP_PORT
) -> FtpServer:
    """pyftpdlib in ``ns`` on 0.0.0.0:``port``, user :data:`USER`, root ``workdir/root``."""
    root = workdir / "root"
    root.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "pyftpdlib.log"
    cfg = {"host": "0.0.0.0", "port": port, "root": str(root), "user": USER, "password": PASSWORD,
           "pasv": [PASV_MIN, PASV_MAX], "log": str(log_path), "quirk": quirk, "rate": rate}  # fmt: skip
    proc = ns.popen(sys.executable, "-c", PYFTPDLIB_SCRIPT, json.dumps(cfg), stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE)  # fmt: skip
    server = FtpServer("pyftpdlib", ns, workdir, root, "", USER, PASSWORD, WRONG_PASSWORD, proc, log_path, port)
    try:
        _wait_listening(ns, port, proc, "pyftpdlib")
    except BaseException:
        server.stop()
        raise
    return server


def vsftpd_config(workdir: Path, *, port: int = FTP_PORT, rate: int = 0, pasv: bool = True, active: bool = True) -> str:
    """vsftpd.conf for an anonymous server rooted in ``workdir/root`` (see the module docstring)."""
    lines = {
        "listen": "YES",  # standalone (no inetd), IPv4, on every address of the namespace
        "listen_ipv6": "NO",
        "listen_port": str(port),
        "background": "NO",  # stays our child: killed by PID
        "seccomp_sandbox": "NO",  # as root in a namespace the sandbox's syscall filter gets in the way
        "secure_chroot_dir": str(workdir / "empty"),
        "anonymous_enable": "YES",
        "local_enable": "NO",
        "anon_root": str(workdir / "root"),
        "ftp_username": "ftp",
        "no_anon_password": "NO",
        "deny_email_enable": "YES",  # the wrong-password case: this password is refused with 530
        "banned_email_file": str(workdir / "banned"),
        "write_enable": "YES",
        "anon_upload_enable": "YES",
        "anon_umask": "022",
        "pasv_enable": "YES" if pasv else "NO",
        "pasv_min_port": str(PASV_MIN),
        "pasv_max_port": str(PASV_MAX),
        "port_enable": "YES" if active else "NO",
        "connect_from_port_20": "NO",
        # TYPE A: downloads converted (LF -> CRLF on the wire, RFC 959 §3.1.1.1); uploads stored as
        # they come (the default ascii_upload_enable=NO), so the stored file shows our wire octets
        "ascii_download_enable": "YES",
        "ascii_upload_enable": "NO",
        "xferlog_enable": "YES",
        "dual_log_enable": "YES",
        "log_ftp_protocol": "YES",
        "vsftpd_log_file": str(workdir / "vsftpd.log"),
        "xferlog_file": str(workdir / "xferlog"),
        "idle_session_timeout": "120",
        "data_connection_timeout": "60",
        "max_clients": "50",
        "use_localtime": "NO",
    }
    if rate:
        lines["anon_max_rate"] = str(rate)
    return "".join(f"{key}={value}\n" for key, value in lines.items())


def start_vsftpd(
    ns: NetNamespace, workdir: Path, *, rate: int = 0, pasv: bool = True, active: bool = True, port: int = FTP_PORT
) -> FtpServer:
    """vsftpd in ``ns`` with its own config in ``workdir``; anonymous, uploads into ``pub/``."""
    require_vsftpd()
    workdir.chmod(0o755)
    (workdir / "empty").mkdir(mode=0o755, exist_ok=True)
    root = workdir / "root"
    root.mkdir(mode=0o755, exist_ok=True)  # not writable by ftp: vsftpd refuses a writable chroot
    pub = root / "pub"
    pub.mkdir(exist_ok=True)
    shutil.chown(pub, user="ftp")
    (workdir / "banned").write_text(VSFTPD_BANNED_PASSWORD + "\n")
    conf = workdir / "vsftpd.conf"
    conf.write_text(vsftpd_config(workdir, port=port, rate=rate, pasv=pasv, active=active))
    log_path = workdir / "vsftpd.log"
    proc = ns.popen(VSFTPD, str(conf), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    server = FtpServer("vsftpd", ns, workdir, root, "pub/", VSFTPD_USER, VSFTPD_PASSWORD, VSFTPD_BANNED_PASSWORD,
                       proc, log_path, port)  # fmt: skip
    try:
        _wait_listening(ns, port, proc, "vsftpd")
    except BaseException:
        server.stop()
        raise
    return server


def start_tiny_server(
    ns: NetNamespace, workdir: Path, *, port: int = FTP_PORT, lifetime: float = 120, connect_delay: float = 0.0
) -> FtpServer:
    """:data:`TINY_FTP_SERVER` in ``ns`` on 0.0.0.0 (the guest runs it itself: see test_ftp_pppd)."""
    root = workdir / "root"
    root.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "tiny.log"
    proc = ns.popen(sys.executable, "-c", TINY_FTP_SERVER, str(root), "0.0.0.0", str(port), USER, PASSWORD,
                    str(log_path), str(lifetime), str(connect_delay), stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE)  # fmt: skip
    server = FtpServer("tiny", ns, workdir, root, "", USER, PASSWORD, WRONG_PASSWORD, proc, log_path, port)
    try:
        _wait_listening(ns, port, proc, "the tiny FTP server")
    except BaseException:
        server.stop()
        raise
    return server


@contextlib.contextmanager
def ftp_server(kind: str, ns: NetNamespace, **options: Any) -> Iterator[FtpServer]:
    """A server of ``kind`` ("pyftpdlib", "vsftpd", "tiny") in a new temporary dir, stopped afterwards."""
    starters: dict[str, Callable[..., FtpServer]] = {
        "pyftpdlib": start_pyftpdlib,
        "vsftpd": start_vsftpd,
        "tiny": start_tiny_server,
    }
    workdir = Path(tempfile.mkdtemp(prefix=f"ws-ftp-{kind}-"))
    try:
        server = starters[kind](ns, workdir, **options)
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------------------- wipstack's FTP client


@dataclass
class FtpResult:
    """How one transfer ended, seen from wipstack's side."""

    name: str
    upload: bool
    ok: bool
    state: str
    error: FtpError | None
    reply: FtpReply | None
    size: int  # local octets (read or given)
    sha256: str
    wire: int  # octets on the data connection (Transfer.bytes)
    seconds: float  # from the request to the end
    data: bytes | None = None  # the download, when kept

    @property
    def rate(self) -> float:
        """Mbit/s of local octets over the whole request (TYPE, EPSV, the transfer, 226)."""
        return mbit(self.size, self.seconds)

    def describe(self) -> str:
        what = "put" if self.upload else "get"
        end = "ok" if self.ok else f"FAILED ({self.error})" if self.state == "failed" else f"STILL {self.state}"
        return f"{what} {self.name}: {self.size:,} octets ({self.wire:,} on the wire) in {self.seconds:.3f} s, " \
               f"{self.rate:.1f} Mbit/s, {end}"  # fmt: skip


class _Job:
    """One transfer pumped on the loop's thread from its TransferEvents."""

    def __init__(
        self, transfer: Transfer, data: bytes | None, keep: bool, threshold: int | None, recv_size: int = CHUNK
    ) -> None:
        self.transfer = transfer
        self.recv_size = recv_size
        self.view = memoryview(data) if data is not None else None
        self.offset = 0
        self.finished = False
        self.digest = hashlib.sha256()
        self.received = 0
        self.kept: bytearray | None = bytearray() if keep else None
        self.threshold = threshold
        self.reached = threading.Event()  # ``threshold`` octets moved (for the kill tests)
        self.done = threading.Event()
        self.paused = False
        self._busy = False

    def pump(self) -> None:
        if self._busy:  # recv() may complete the transfer, whose event comes back here
            return
        self._busy = True
        try:
            t = self.transfer
            if self.view is None:
                while not self.paused and (data := t.recv(self.recv_size)):
                    self.digest.update(data)
                    self.received += len(data)
                    if self.kept is not None:
                        self.kept += data
            else:
                while not self.paused and not self.finished and t.state is TransferState.ACTIVE:
                    if self.offset >= len(self.view):
                        t.finish()
                        self.finished = True
                        break
                    taken = t.send(bytes(self.view[self.offset : self.offset + CHUNK]))
                    if not taken:
                        break
                    self.offset += taken
            moved = self.offset if self.view is not None else self.received
            if self.threshold is not None and moved >= self.threshold:
                self.reached.set()
            if t.done:
                self.done.set()
        finally:
            self._busy = False


class WipFtp:
    """An FtpSession on a running loop; created on, and driven from, the loop's thread."""

    def __init__(
        self,
        loop: NetLoop,
        host: str,
        *,
        port: int = FTP_PORT,
        user: str = USER,
        password: str = PASSWORD,
        passive: bool = True,
        binary: bool = True,
        timeout: float = 30.0,
        poll: bool = True,
    ) -> None:
        """``poll``: also pump the running transfer on every round of the loop, as ``wipstack ftp``
        does (its pump is the loop's ``until`` callback), not only on TransferEvents."""
        self.loop = loop
        self.events: list[SessionEvent] = []
        self.job: _Job | None = None
        self.poll = poll

        def create() -> FtpSession:
            session = FtpSession(loop.stack, host, port=port, user=user, password=password, passive=passive,
                                 binary=binary, timeout=timeout, now=loop.clock(), on_event=self._on_event)  # fmt: skip
            self.timers = TimerPort(session, "ftp-timers", self._kick if poll else None)
            loop.add_port(self.timers)
            return session

        self.session: FtpSession = loop.call(create)

    def _kick(self) -> None:  # loop thread, every round
        job = self.job
        if job is not None and not job.done.is_set():
            job.pump()

    def _on_event(self, session: FtpSession, event: SessionEvent) -> None:  # loop thread
        self.events.append(event)
        job = self.job
        if isinstance(event, TransferEvent) and job is not None and event.transfer is job.transfer:
            job.pump()

    @property
    def closed(self) -> SessionClosed | None:
        return next((e for e in self.events if isinstance(e, SessionClosed)), None)

    def login(self, timeout: float = 20) -> bool:
        """Wait for LoggedIn (True) or SessionClosed (False)."""
        wait_until(lambda: any(isinstance(e, LoggedIn | SessionClosed) for e in self.events), timeout, "the login")
        return any(isinstance(e, LoggedIn) for e in self.events)

    def start(self, name: str, data: bytes | None = None, *, keep: bool = False, threshold: int | None = None,
              listing: bool = False, recv_size: int = CHUNK) -> _Job:  # fmt: skip
        """Start a download (``data`` None), an upload, or a LIST; the job pumps itself."""

        def begin() -> _Job:
            if listing:
                transfer = self.session.listing(name or None, names_only=True)
            elif data is None:
                transfer = self.session.retrieve(name)
            else:
                transfer = self.session.store(name)
            job = _Job(transfer, data, keep, threshold, recv_size)
            self.job = job
            job.pump()
            return job

        return self.loop.call(begin)

    def finish(self, job: _Job, name: str, started: float, timeout: float) -> FtpResult:
        """Wait for the end of ``job``; after ``timeout`` the result of a transfer still running
        (``state`` "active"..., ``ok`` False: a hang fails the caller's assertion in bounded time)."""
        deadline = time.monotonic() + timeout
        while not job.done.wait(0.05):
            if self.loop.error is not None:
                raise AssertionError(f"the network loop died: {self.loop.error!r}") from self.loop.error
            if time.monotonic() >= deadline:
                break
        elapsed = time.monotonic() - started
        t = job.transfer
        upload = job.view is not None

        def collect() -> FtpResult:
            return FtpResult(
                name, upload, t.ok, t.state.value, t.error, t.reply,
                len(job.view) if job.view is not None else job.received,
                hashlib.sha256(job.view).hexdigest() if job.view is not None else job.digest.hexdigest(),
                t.bytes, elapsed, bytes(job.kept) if job.kept is not None else None,
            )  # fmt: skip

        return self.loop.call(collect)

    def download(self, name: str, *, keep: bool = False, timeout: float = 60, recv_size: int = CHUNK) -> FtpResult:
        started = time.monotonic()
        return self.finish(self.start(name, keep=keep, recv_size=recv_size), name, started, timeout)

    def upload(self, name: str, data: bytes, *, timeout: float = 60) -> FtpResult:
        started = time.monotonic()
        return self.finish(self.start(name, data), name, started, timeout)

    def state(self) -> SessionState:
        return self.loop.call(lambda: self.session.state)

    def quit(self, timeout: float = 15) -> SessionClosed:
        """QUIT (or nothing, if the session is already closed); the SessionClosed event."""
        self.loop.call(self.session.quit)
        wait_until(lambda: self.closed is not None, timeout, "the session to close")
        closed = self.closed
        assert closed is not None
        return closed

    def abort(self) -> None:
        """Close everything now (no QUIT): for a session stuck in a transfer."""
        self.loop.call(self.session.abort)


# ---------------------------------------------------------------------------- the AT UART


@dataclass
class EtxReader:
    """Continuous-mode download decoding: DLE x is the octet x, a bare ETX ends the file."""

    data: bytearray = field(default_factory=bytearray)
    raw: int = 0  # octets taken from the UART
    ended: bool = False
    _dle: bool = False

    def feed(self, chunk: bytes) -> int:
        """Decode ``chunk``; the number of its octets used (all, or up to and with the ETX)."""
        for i, byte in enumerate(chunk):
            if self._dle:
                self.data.append(byte)
                self._dle = False
            elif byte == 0x10:
                self._dle = True
            elif byte == 0x03:
                self.ended = True
                self.raw += i + 1
                return i + 1
            else:
                self.data.append(byte)
        self.raw += len(chunk)
        return len(chunk)


FINAL_RESULT = re.compile(rb"\r\n(OK|\+CME ERROR: \d+|ERROR)\r\n")


def at_pump(at: Any, timeout: float) -> None:
    """Read what the module sent (AtClient keeps it in ``raw`` while in data mode)."""
    at._pump(timeout)


def at_download(at: Any, timeout: float, *, on_data: Callable[[int], None] | None = None) -> tuple[bytes, str]:
    """After ``CONNECT`` of ``+WIPFILE=4,1,1``: the de-escaped file and the final result after its ETX."""
    reader = EtxReader()
    deadline = time.monotonic() + timeout
    while not reader.ended:
        if at.raw:
            used = reader.feed(bytes(at.raw))
            del at.raw[:used]
            if on_data is not None:
                on_data(len(reader.data))
            continue
        if time.monotonic() >= deadline:
            raise AssertionError(f"no ETX within {timeout:g} s after {len(reader.data):,} octets\n{at.story()}")
        at_pump(at, min(0.2, max(0.0, deadline - time.monotonic())))
    return bytes(reader.data), at_final_after_data(at, max(1.0, deadline - time.monotonic()))


def at_final_after_data(at: Any, timeout: float) -> str:
    """The final result that ends a +WIPFILE data phase; the UART is in AT mode again afterwards."""
    deadline = time.monotonic() + timeout
    while (match := FINAL_RESULT.search(at.raw)) is None:
        if time.monotonic() >= deadline:
            raise AssertionError(f"no final result within {timeout:g} s; raw {bytes(at.raw[-200:])!r}\n{at.story()}")
        at_pump(at, min(0.2, max(0.0, deadline - time.monotonic())))
    final = bytes(match.group(1)).decode()  # before the buffer changes under the match
    junk = bytes(at.raw[: match.start()])
    assert junk == b"", f"octets between the data and the final result: {junk[:200]!r}"
    del at.raw[: match.end()]
    at.data_mode = False
    at.transcript.append(f"{final} (after +WIPFILE data)")
    at._parse_lines()
    return final


def start_bearer(at: Any, *, gprs: bool = False) -> None:
    """Start the stack and the TUN bearer (4, or 6 with ``--gprs-over-tun``): us 192.0.2.2, the kernel .1."""
    bid = 6 if gprs else 4
    at.command("AT+CMEE=1")
    at.command("AT+WIPCFG=1")
    at.command(f"AT+WIPBR=1,{bid}")
    if gprs:
        at.command(f'AT+WIPBR=2,{bid},11,"internet.test"')
    at.command(f'AT+WIPBR=2,{bid},15,"{WIPSTACK}"')
    at.command(f'AT+WIPBR=2,{bid},16,"{KERNEL}"')
    at.command(f"AT+WIPBR=4,{bid},0", timeout=20)


# ---------------------------------------------------------------------------- the CLI


@dataclass
class CliRun:
    code: int
    stdout: bytes
    stderr: str
    seconds: float


def cli_argv(ns: NetNamespace, server: FtpServer, *args: str, password: str | None = None) -> list[str]:
    return [sys.executable, "-m", "wipstack", "ftp", "--netns", ns.name, "--local", WIPSTACK, "--peer", KERNEL,
            "--server", KERNEL, "--user", server.user, "--password", server.password if password is None else password,
            "--timeout", "15", "--seed", "3", *args]  # fmt: skip


def start_cli(argv: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))  # fmt: skip


def run_cli(argv: list[str], cwd: Path, timeout: float = 60) -> CliRun:
    started = time.monotonic()
    proc = start_cli(argv, cwd)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"wipstack ftp still running after {timeout:g} s: {err.decode(errors='replace')}") from exc
    return CliRun(proc.returncode, out, err.decode(errors="replace"), time.monotonic() - started)
