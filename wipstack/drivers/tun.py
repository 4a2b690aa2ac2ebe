"""A Linux TUN device as wipstack's IP bearer: raw IPv4 datagrams, one per read/write.

The device is opened with ``IFF_TUN | IFF_NO_PI`` (through python-pytun), so every read
returns exactly one IP datagram and every write injects exactly one, with no packet-info
header in front.  The fd is non-blocking: ``read_packet()`` returns None when nothing is
waiting and ``write_packet()`` returns False (and counts a drop) instead of blocking.

The two ends of the point-to-point link::

    wipstack (this process, reads/writes the fd)  <-- tunN -->  the Linux kernel (the interface)
    address "local", e.g. 192.0.2.2                             address "peer", e.g. 192.0.2.1

:meth:`TunDevice.configure_kernel_side` gives the kernel's interface its address (the
"peer" one) and points it at wipstack's (the "local" one).  The interface may be moved
into a network namespace first (:meth:`TunDevice.move_to_netns`); the fd keeps working
from wherever this process runs, so wipstack can stay in the host namespace while the
kernel it talks to lives in a test's namespace.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import re
import shutil
import subprocess
from types import TracebackType
from typing import Any

MAX_PACKET = 65535  # largest IPv4 datagram; one read() returns one whole datagram
MIN_MTU = 68  # RFC 791: every IPv4 link must carry 68-octet datagrams
TUN_DEVICE = "/dev/net/tun"
# where `ip` is looked up when PATH lacks the sbin dirs
_TOOL_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_IFNAME = re.compile(r"[A-Za-z0-9_.%-]{1,15}")  # IFNAMSIZ - 1; "%d" lets the kernel number it
# write() errors that mean "the packet was not taken", not "the driver is broken":
# EAGAIN/ENOBUFS: the kernel's queue is full; EIO: the kernel side of the link is down
# EINVAL: the kernel refused the datagram itself (e.g. a version nibble a fault injector flipped)
_DROP_ERRNOS = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS, errno.EIO, errno.EINVAL})


def _ip_command() -> str:
    """The path of iproute2's ``ip``."""
    ip = shutil.which("ip") or shutil.which("ip", path=_TOOL_PATH)
    if ip is None:
        raise FileNotFoundError("iproute2's `ip` is not installed (Debian package iproute2)")
    return ip


def _run_ip(args: list[str], netns: str | None) -> None:
    """Run ``ip [-n netns] args...``; RuntimeError with ip's message when it fails."""
    argv = [_ip_command(), *(["-n", netns] if netns is not None else []), *args]
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{' '.join(argv)}: timed out") from exc
    if proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip() or f"exit status {proc.returncode}"
        raise RuntimeError(f"{' '.join(argv)}: {message}")


def _ipv4(address: str, what: str) -> str:
    try:
        return str(ipaddress.IPv4Address(address))
    except ValueError as exc:
        raise ValueError(f"{what} must be an IPv4 address, not {address!r}") from exc


class TunDevice:
    """A Linux TUN device (IFF_TUN | IFF_NO_PI) carrying raw IPv4 datagrams, via python-pytun.

    ``name=None`` lets the kernel pick ``tunN``; a name (e.g. ``"wip0"``, at most 15
    characters) creates that device or attaches to an existing persistent TUN device of
    that name in this process's network namespace.  ``persist`` sets the device's persist
    flag either way: a non-persistent device disappears when :meth:`close` closes the fd
    (also when it was attached to, or moved into another namespace), a persistent one
    stays until deleted (``ip link del``).  ``mtu`` is set on the interface at once.

    Raises OSError (``pytun.Error``) when the device cannot be created or attached, and
    ImportError when python-pytun is missing; :func:`tun_unavailable_reason` says why
    beforehand.
    """

    def __init__(self, name: str | None = None, *, mtu: int = 1500, persist: bool = False) -> None:
        if name is not None and not _IFNAME.fullmatch(name):
            raise ValueError(f"bad interface name {name!r} (1 to 15 of A-Z a-z 0-9 _ . - %)")
        if not MIN_MTU <= mtu <= MAX_PACKET:
            raise ValueError(f"mtu must be in {MIN_MTU}..{MAX_PACKET}, not {mtu}")
        import pytun  # python-pytun; imported here so the rest of wipstack does not need it

        self.tx_dropped = 0  # packets write_packet() could not hand to the kernel
        self.netns: str | None = None  # where the interface is, if move_to_netns() moved it
        self._closed = False
        self._dev: Any = pytun.TunTapDevice(name=name or "", flags=pytun.IFF_TUN | pytun.IFF_NO_PI)
        try:
            self.name: str = self._dev.name
            self._dev.persist(persist)
            if self._dev.mtu != mtu:
                self._dev.mtu = mtu
            self.mtu: int = mtu
            self._fd: int = self._dev.fileno()
            os.set_blocking(self._fd, False)
        except BaseException:
            self._dev.close()
            raise

    # ----- the fd -----

    def fileno(self) -> int:
        """The device's fd, for a selector (readable: a datagram is waiting)."""
        if self._closed:
            raise ValueError(f"TUN device {self.name} is closed")
        return self._fd

    def read_packet(self) -> bytes | None:
        """One IP datagram from the kernel; None when nothing is waiting. Never blocks."""
        try:
            return os.read(self.fileno(), MAX_PACKET)
        except BlockingIOError:
            return None

    def write_packet(self, packet: bytes) -> bool:
        """Hand one IP datagram to the kernel; never blocks.

        Returns False, and counts the packet in ``tx_dropped``, when the kernel does not
        take it because its queue is full (EAGAIN, ENOBUFS) or the kernel side of the
        link is down (EIO); other errors (EINVAL for a malformed packet, ...) raise.
        """
        try:
            os.write(self.fileno(), packet)
        except OSError as exc:
            if exc.errno not in _DROP_ERRNOS:
                raise
            self.tx_dropped += 1
            return False
        return True

    # ----- the kernel's side -----

    def configure_kernel_side(self, local: str, peer: str, *, netns: str | None = None) -> None:
        """Configure the KERNEL's end of the point-to-point link and bring it up.

        ``local`` is wipstack's own address (this end of the fd); ``peer`` is the address
        the kernel's interface takes.  Runs ``ip addr replace <peer> peer <local> dev
        <name>`` and ``ip link set dev <name> mtu <mtu> up``, with ``ip -n <netns>`` when
        a namespace is given or the device was moved into one (``netns=None`` means where
        the device is now).  Idempotent.  RuntimeError when ``ip`` fails.
        """
        local = _ipv4(local, "local (wipstack's address)")
        peer = _ipv4(peer, "peer (the kernel's address)")
        if self._closed:
            raise ValueError(f"TUN device {self.name} is closed")
        where = netns if netns is not None else self.netns
        _run_ip(["addr", "replace", f"{peer}/32", "peer", f"{local}/32", "dev", self.name], where)
        _run_ip(["link", "set", "dev", self.name, "mtu", str(self.mtu), "up"], where)

    def move_to_netns(self, netns: str) -> None:
        """Move the interface into network namespace ``netns`` (``ip link set dev <name> netns <ns>``).

        The fd stays ours and keeps working from this process's namespace.  Moving takes
        the interface down and drops its addresses: call configure_kernel_side() after.
        """
        if self._closed:
            raise ValueError(f"TUN device {self.name} is closed")
        _run_ip(["link", "set", "dev", self.name, "netns", netns], self.netns)
        self.netns = netns

    # ----- life cycle -----

    def close(self) -> None:
        """Close the fd; a non-persistent device disappears with it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._dev.close()

    @property
    def closed(self) -> bool:
        """True once close() ran."""
        return self._closed

    def __enter__(self) -> TunDevice:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"fd={self._fd}"
        where = f" netns={self.netns}" if self.netns is not None else ""
        return f"<TunDevice {self.name} mtu={self.mtu}{where} {state}>"


def tun_unavailable_reason() -> str | None:
    """None if a TunDevice can be created here, else why not (for pytest.skip or an error message)."""
    if not hasattr(os, "geteuid") or os.uname().sysname != "Linux":
        return "TUN devices need a Linux host"
    if os.geteuid() != 0:
        return "creating a TUN device needs root (CAP_NET_ADMIN)"
    if not os.path.exists(TUN_DEVICE):
        return f"no {TUN_DEVICE} (modprobe tun, or run the container with --device {TUN_DEVICE})"
    try:
        import pytun  # noqa: F401
    except ImportError:
        return "python-pytun is not installed (pip install python-pytun)"
    try:
        with TunDevice():
            pass
    except OSError as exc:
        return f"cannot create a TUN device: {exc}"
    return None
