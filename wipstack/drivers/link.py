"""Byte-stream links a PPP session runs over: ptys, serial ports, inherited fds, stdio.

Every link is non-blocking and exposes ``read_fd``/``write_fd`` for the runner's selector,
``read()`` (b"" at end of stream) and ``write()`` (may write only part).  This module and the
runner are the only places that touch file descriptors and terminals.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import termios
import tty
from pathlib import Path
from typing import Any, Protocol

READ_CHUNK = 65536


class ByteLink(Protocol):
    """A full-duplex byte stream."""

    name: str

    @property
    def read_fd(self) -> int:
        """The fd to wait on for input."""

    @property
    def write_fd(self) -> int:
        """The fd to wait on for output space."""

    def read(self) -> bytes:
        """Available bytes; b"" means the stream ended. Never blocks."""

    def write(self, data: bytes) -> int:
        """Write as much as possible without blocking; returns the count written."""

    def close(self) -> None:
        """Release the link."""


def set_raw(fd: int) -> None:
    """Raw 8-bit mode applied at once (TCSANOW): TCSAFLUSH would discard bytes already queued."""
    tty.setraw(fd, termios.TCSANOW)
    attrs = termios.tcgetattr(fd)
    attrs[2] = (attrs[2] & ~(termios.CRTSCTS | termios.HUPCL)) | termios.CLOCAL | termios.CREAD
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


class FdLink:
    """A link over one or two already-open file descriptors (socket, pty master, tty, pipes)."""

    def __init__(self, read_fd: int, write_fd: int | None = None, *, name: str = "fd", owns: bool = True) -> None:
        self.name = name
        self._read_fd = read_fd
        self._write_fd = read_fd if write_fd is None else write_fd
        self._owns = owns
        self._closed = False
        for fd in {self._read_fd, self._write_fd}:
            os.set_blocking(fd, False)

    @property
    def read_fd(self) -> int:
        """The fd to wait on for input."""
        return self._read_fd

    @property
    def write_fd(self) -> int:
        """The fd to wait on for output space."""
        return self._write_fd

    def read(self) -> bytes:
        """Available bytes; b"" at end of stream (EIO on a pty master means the slave hung up)."""
        try:
            return os.read(self._read_fd, READ_CHUNK)
        except OSError as exc:
            if exc.errno == errno.EIO:
                return b""
            raise

    def write(self, data: bytes) -> int:
        """Write without blocking; 0 when the peer's buffer is full."""
        try:
            return os.write(self._write_fd, data)
        except BlockingIOError:
            return 0

    def close(self) -> None:
        """Close the fds we own."""
        if self._closed:
            return
        self._closed = True
        if self._owns:
            for fd in {self._read_fd, self._write_fd}:
                with contextlib.suppress(OSError):
                    os.close(fd)


class SocketLink(FdLink):
    """A connected stream socket, e.g. one end of ``socket.socketpair()``."""

    def __init__(self, sock: socket.socket, *, name: str = "socket") -> None:
        self._sock = sock
        sock.setblocking(False)
        super().__init__(sock.fileno(), name=name, owns=False)

    def read(self) -> bytes:
        """Available bytes; b"" when the peer closed."""
        try:
            return self._sock.recv(READ_CHUNK)
        except ConnectionResetError:
            return b""

    def write(self, data: bytes) -> int:
        """Send without blocking."""
        try:
            return self._sock.send(data)
        except BlockingIOError:
            return 0

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()


class PtyLink(FdLink):
    """A new pty pair: we hold the master; a peer such as pppd opens the slave via ``path``.

    The slave is put in raw mode with TCSANOW, and we keep a slave fd open ourselves so the
    master does not see a hang-up (EIO) before the peer opens it or while it reopens it.
    """

    def __init__(self, symlink: str | os.PathLike[str] | None = None) -> None:
        master, slave = os.openpty()
        set_raw(slave)
        self.slave_path = os.ttyname(slave)
        self._slave_fd = slave
        self.symlink = Path(symlink) if symlink is not None else None
        if self.symlink is not None:
            tmp = self.symlink.with_name(f".{self.symlink.name}.{os.getpid()}")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self.slave_path)
            tmp.replace(self.symlink)  # atomic: a reader never sees a half-made link
        super().__init__(master, name=str(self.symlink or self.slave_path))

    @property
    def path(self) -> str:
        """The path a peer should open: the stable symlink if one was asked for."""
        return str(self.symlink or self.slave_path)

    def close(self) -> None:
        """Close both ends and remove the symlink."""
        if self.symlink is not None and self.symlink.is_symlink():
            with contextlib.suppress(OSError):
                if os.readlink(self.symlink) == self.slave_path:
                    self.symlink.unlink()
        with contextlib.suppress(OSError):
            os.close(self._slave_fd)
        super().close()


class SerialLink(FdLink):
    """A serial port through pyserial: a device path or a pyserial URL (``rfc2217://…``)."""

    def __init__(self, url: str, baudrate: int = 115200, *, rtscts: bool = False) -> None:
        import serial  # pyserial; imported here so the rest of wipstack does not need it

        self._port: Any = serial.serial_for_url(url, baudrate=baudrate, rtscts=rtscts, timeout=0)
        try:
            fd = self._port.fileno()
        except Exception as exc:  # noqa: BLE001 - pyserial raises several kinds here
            self._port.close()
            raise ValueError(f"{url}: this pyserial port has no file descriptor to wait on") from exc
        if os.isatty(fd):
            set_raw(fd)
        super().__init__(fd, name=url, owns=False)

    def set_dtr(self, on: bool) -> None:
        """Raise or drop DTR (a modem hangs up a call when it drops, V.25ter ``&D2``)."""
        with contextlib.suppress(OSError, ValueError, AttributeError):
            self._port.dtr = on

    def carrier(self) -> bool | None:
        """DCD, or None when the port cannot tell (a pty)."""
        try:
            return bool(self._port.cd)
        except (OSError, ValueError, AttributeError):
            return None

    def close(self) -> None:
        """Close the port."""
        self._port.close()


class StdioLink(FdLink):
    """Our own stdin/stdout are the line (pppd's ``pty`` option or ``socat EXEC:``)."""

    def __init__(self) -> None:
        for fd in (0, 1):
            if os.isatty(fd):
                set_raw(fd)
        super().__init__(0, 1, name="stdio", owns=False)
