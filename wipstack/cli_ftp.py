"""``wipstack ftp get|put|ls``: wipstack's FTP client over a TUN device or a PPP link.

::

    sudo wipstack ftp --local 192.0.2.2 --peer 192.0.2.1 --server 192.0.2.1 --user u --password p get big.bin
    wipstack ftp --ppp-device /dev/ttyUSB0 --ppp-user alice --ppp-password s3cret \\
        --server ftp.example --user u --password p put firmware.bin /incoming/firmware.bin

Every byte goes through wipstack's TCP/IP (and PPP); the kernel only carries the TUN
frames or the serial line.  Long transfers show a progress bar with the rate on a terminal
and a summary line at the end; the exit status is 0 only when the server confirmed the
whole transfer.
"""

from __future__ import annotations

import argparse
import sys
import time
from ipaddress import IPv4Address
from pathlib import Path
from typing import BinaryIO

from wipstack.apps.ftp import FtpError, FtpSession, LoggedIn, SessionClosed, SessionEvent, Transfer
from wipstack.cli_net import EXIT_FAILED, EXIT_OK, EXIT_USAGE, NetApp, add_stack_arguments, add_tun_arguments
from wipstack.drivers.ports import TimerPort

CHUNK = 1 << 16


class Progress:
    """A one-line progress bar on a terminal (nothing otherwise), and the closing summary."""

    def __init__(self, label: str, total: int | None, stream: object = sys.stderr) -> None:
        self.label = label
        self.total = total
        self.stream = stream
        self.started = time.monotonic()
        self.shown_at = 0.0
        self.tty = bool(getattr(stream, "isatty", lambda: False)())

    def update(self, done: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self.tty or (not force and now - self.shown_at < 0.2):
            return
        self.shown_at = now
        rate = done * 8 / max(now - self.started, 1e-6)
        if self.total:
            fraction = min(1.0, done / self.total)
            bar = "#" * int(fraction * 30)
            text = (
                f"\r{self.label} [{bar:<30}] {fraction * 100:5.1f}% {done:,}/{self.total:,} B {rate / 1e6:.2f} Mbit/s"
            )
        else:
            text = f"\r{self.label} {done:,} B {rate / 1e6:.2f} Mbit/s"
        print(text, end="", file=self.stream, flush=True)  # type: ignore[call-overload]

    def summary(self, done: int) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        if self.tty:
            print(file=self.stream)  # type: ignore[call-overload]
        return f"{self.label}: {done:,} octets in {elapsed:.3f} s, {done * 8 / elapsed / 1e6:.2f} Mbit/s"


def add_ftp_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``wipstack ftp``."""
    ftp = commands.add_parser("ftp", help="FTP get/put/ls through wipstack over TUN or PPP")
    add_tun_arguments(ftp)
    add_stack_arguments(ftp)
    ppp = ftp.add_argument_group("PPP bearer (instead of TUN)")
    ppp.add_argument("--ppp-device", metavar="DEV", help="serial device or pyserial URL to run PPP on")
    ppp.add_argument("--ppp-pty", metavar="PATH", help="create a pty for PPP; PATH becomes a symlink to it")
    ppp.add_argument("--ppp-user", help="PAP user when the peer asks")
    ppp.add_argument("--ppp-password", default="", help="PAP password")
    ppp.add_argument("--baud", type=int, default=115200, help="serial speed (default 115200)")
    session = ftp.add_argument_group("FTP")
    session.add_argument("--server", required=True, help="FTP server name or address")
    session.add_argument("--port", type=int, default=21, help="control port (default 21)")
    session.add_argument("--user", default="anonymous", help="user (default anonymous)")
    session.add_argument("--password", default="wipstack@", help="password")
    session.add_argument("--account", help="account, for servers that ask (ACCT)")
    session.add_argument("--active", action="store_true", help="active mode (PORT): the server connects to us")
    session.add_argument("--ascii", action="store_true", help="TYPE A (line ends converted) instead of TYPE I")
    session.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a reply (default 30)")
    session.add_argument("--seed", type=int, help="seed of the random source")
    actions = ftp.add_subparsers(dest="action", required=True)
    get = actions.add_parser("get", help="download REMOTE to LOCAL (default: its base name; - for stdout)")
    get.add_argument("remote")
    get.add_argument("local", nargs="?")
    put = actions.add_parser("put", help="upload LOCAL to REMOTE (default: its base name)")
    put.add_argument("local")
    put.add_argument("remote", nargs="?")
    ls = actions.add_parser("ls", help="list PATH (LIST, or NLST with --names)")
    ls.add_argument("path", nargs="?")
    ls.add_argument("--names", action="store_true", help="names only (NLST)")


def run_ftp(args: argparse.Namespace) -> int:
    """``wipstack ftp``."""
    ppp = args.ppp_device or args.ppp_pty
    if not ppp and (args.tun_local is None or args.tun_peer is None):
        print("wipstack ftp needs a bearer: --local/--peer (TUN) or --ppp-device/--ppp-pty", file=sys.stderr)
        return EXIT_USAGE
    app = NetApp(args, seed=args.seed)
    try:
        app.install_signals()
        if ppp:
            if not _start_ppp(app, args):
                return EXIT_FAILED
        else:
            app.add_tun()
        found = app.lookup(args.server)
        if found is None or found.error is not None or not found.addresses:
            app.log(f"ftp: cannot resolve {args.server}")
            return EXIT_FAILED
        events: list[SessionEvent] = []
        session = FtpSession(
            app.stack, found.addresses[0], port=args.port, user=args.user, password=args.password,
            account=args.account, passive=not args.active, binary=not args.ascii, timeout=args.timeout,
            now=time.monotonic(), on_event=lambda s, e: events.append(e),
        )  # fmt: skip
        app.loop.add_port(TimerPort(session, "ftp"))
        stop = app.stop_requested
        app.loop.run(lambda: bool(stop) or any(isinstance(e, LoggedIn | SessionClosed) for e in events))
        if session.state.value != "ready":
            app.log(f"ftp: {session.error or 'interrupted'}")
            return EXIT_FAILED
        app.log(f"ftp: logged in to {IPv4Address(found.addresses[0])}:{args.port} as {args.user}")
        status = _run_action(app, session, args)
        session.quit()
        app.loop.run(lambda: session.state.value == "closed", 5.0)
        return status
    finally:
        app.close()


def _start_ppp(app: NetApp, args: argparse.Namespace) -> bool:
    from wipstack.drivers.link import ByteLink, PtyLink, SerialLink
    from wipstack.drivers.ports import PppPort
    from wipstack.ppp.config import IpcpConfig, PapConfig, PppConfig
    from wipstack.ppp.session import PppSession

    link: ByteLink = SerialLink(args.ppp_device, args.baud) if args.ppp_device else PtyLink(args.ppp_pty)
    config = PppConfig(pap=PapConfig(username=args.ppp_user, password=args.ppp_password),
                       ipcp=IpcpConfig(request_dns=True))  # fmt: skip
    port = PppPort(app.stack, PppSession(config, app.stack.rng), link, default_route=True, log=app.log)
    app.loop.add_port(port)
    port.open()
    app.loop.run(lambda: port.is_up or port.session.is_dead or bool(app.stop_requested), 60.0)
    if not port.is_up:
        app.log("ftp: the PPP link did not come up")
    return port.is_up


def _run_action(app: NetApp, session: FtpSession, args: argparse.Namespace) -> int:
    if args.action == "put":
        local = Path(args.local)
        try:
            source = local.open("rb")
        except OSError as exc:
            app.log(f"ftp: {exc}")
            return EXIT_FAILED
        with source:
            transfer = session.store(args.remote or local.name)
            return _upload(app, transfer, source, local.stat().st_size)
    if args.action == "get":
        size = _size(app, session, args.remote)
        transfer = session.retrieve(args.remote)
        if args.local == "-":
            return _download(app, transfer, sys.stdout.buffer, size)
        target = Path(args.local or Path(args.remote).name)
        partial = target.with_name(target.name + ".part")
        with partial.open("wb") as sink:
            status = _download(app, transfer, sink, size)
        if status == EXIT_OK:
            partial.replace(target)  # only a confirmed transfer gets the real name
        elif partial.stat().st_size == 0:
            partial.unlink()
        else:
            app.log(f"ftp: the incomplete download stays in {partial}")
        return status
    transfer = session.listing(args.path, names_only=args.names)
    return _download(app, transfer, sys.stdout.buffer, None, quiet=True)


def _size(app: NetApp, session: FtpSession, name: str) -> int | None:
    answer: list[int | None] = []

    def done(reply: object, error: FtpError | None) -> None:
        code = getattr(reply, "code", 0)
        text = getattr(reply, "lines", ("",))[-1]
        answer.append(int(text) if code == 213 and text.strip().isdigit() else None)  # RFC 3659 §4

    session.command("SIZE", name, done)
    app.loop.run(lambda: bool(answer) or bool(app.stop_requested), 60.0)
    return answer[0] if answer else None


def _download(app: NetApp, transfer: Transfer, sink: BinaryIO, size: int | None, *, quiet: bool = False) -> int:
    progress = Progress(f"get {transfer.argument}", size)
    received = 0

    def pump() -> bool:
        nonlocal received
        while data := transfer.recv(CHUNK):
            sink.write(data)
            received += len(data)
        progress.update(received)
        return transfer.done or bool(app.stop_requested)

    app.loop.run(pump)
    sink.flush()
    return _finish(app, transfer, progress, received, quiet)


def _upload(app: NetApp, transfer: Transfer, source: BinaryIO, size: int) -> int:
    progress = Progress(f"put {transfer.argument}", size)
    pending = b""
    sent = 0
    finished = False

    def pump() -> bool:
        nonlocal pending, sent, finished
        while not finished and transfer.state.value == "active":
            if not pending:
                pending = source.read(CHUNK)
                if not pending:
                    transfer.finish()
                    finished = True
                    break
            taken = transfer.send(pending)
            if not taken:
                break
            pending = pending[taken:]
            sent += taken
        progress.update(sent)
        return transfer.done or bool(app.stop_requested)

    app.loop.run(pump)
    return _finish(app, transfer, progress, sent, False)


def _finish(app: NetApp, transfer: Transfer, progress: Progress, moved: int, quiet: bool) -> int:
    summary = progress.summary(moved)
    if not transfer.ok:
        app.log(f"ftp: {transfer.verb} {transfer.argument or ''} failed: {transfer.error or 'interrupted'}")
        return EXIT_FAILED
    if not quiet:
        app.log(summary)
    return EXIT_OK
