"""The modem simulator on real lines: the DTE on a pty or serial port, the network peer per call.

:class:`ModemSimDriver` runs a :class:`~wipstack.cellular.simulator.ModemSimulator` with its
own selector loop.  The DTE's line is a :class:`~wipstack.drivers.link.ByteLink` (a pty whose
slave a dialer opens, or a serial port).  The network peer is one of:

* :class:`PtyNetwork` - a second pty, open for the simulator's whole life (e.g. the serial
  line of a User-Mode-Linux guest running pppd as the operator's access server).  What it
  sends while no call is online is discarded (and counted by the simulator).
* :class:`ExecNetwork` - a command started for each call with a socketpair as its stdin and
  stdout, killed by PID (its own process group) when the call ends; its exit is the peer
  hanging up, so the DTE sees NO CARRIER.
* :class:`TcpNetwork` - a TCP connection opened for each call (refused: NO CARRIER).

A UNIX stream socket (:class:`ControlServer`) takes one command per line and answers one
line each (:func:`control_command`), so tests and developers can ring the modem, drop the
call, change the SIM, registration or dial result, reject packet calls, or mute the modem
while it runs.

Flow control: the DTE is not read while the peer has not taken what the DTE sent online, and
the peer is not read while the DTE has not taken what the peer sent; each direction holds at
most :data:`HIGH_WATER` octets in the driver (the simulator bounds its own buffers).
"""

from __future__ import annotations

import contextlib
import functools
import os
import selectors
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from wipstack.cellular.simulator import CallConnected, CallEnded, CmeError, ModemSimulator, ModemState
from wipstack.drivers.link import ByteLink, PtyLink, SocketLink

Clock = Callable[[], float]
Logger = Callable[[str], None]

#: Octets held by the driver for one direction before it stops reading the other side.
HIGH_WATER = 1 << 16
#: Seconds a killed network process gets between SIGTERM and SIGKILL.
KILL_GRACE = 2.0
#: Longest control line; a longer one is answered with an error and the client is dropped.
MAX_CONTROL_LINE = 1024
TCP_CONNECT_TIMEOUT = 5.0


class Network(Protocol):
    """Where a connected call's data goes."""

    description: str

    def connect(self, now: float) -> ByteLink | None:
        """The peer's link for a call that just connected (None: the peer cannot be reached)."""

    def disconnect(self) -> None:
        """The call ended: release the peer (the persistent pty stays)."""

    def standing_link(self) -> ByteLink | None:
        """A link that stays open between calls (read and discarded then), if any."""

    def poll(self, now: float) -> None:
        """Housekeeping (reaping killed processes)."""

    def close(self) -> None:
        """Release everything."""


class PtyNetwork:
    """A pty the peer opens at ``path``; it lives as long as the simulator."""

    def __init__(self, path: str) -> None:
        self.link = PtyLink(path)
        self.description = f"network pty {self.link.path} -> {self.link.slave_path}"

    def connect(self, now: float) -> ByteLink | None:
        return self.link

    def disconnect(self) -> None:
        return None

    def standing_link(self) -> ByteLink | None:
        return self.link

    def poll(self, now: float) -> None:
        return None

    def close(self) -> None:
        self.link.close()


class ExecNetwork:
    """A process per call whose stdin/stdout are the data stream (one end of a socketpair)."""

    def __init__(self, command: str, *, log: Logger | None = None, clock: Clock = time.monotonic) -> None:
        self.argv = shlex.split(command)
        if not self.argv:
            raise ValueError("--network-exec needs a command")
        self.description = f"network exec {command!r}"
        self.log = log or (lambda line: None)
        self.clock = clock
        self.process: subprocess.Popen[bytes] | None = None
        self.link: SocketLink | None = None
        self._dying: list[tuple[subprocess.Popen[bytes], float]] = []

    def connect(self, now: float) -> ByteLink | None:
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(self.argv, stdin=theirs.fileno(), stdout=theirs.fileno(), close_fds=True,
                                            start_new_session=True)  # fmt: skip
        except OSError as exc:
            ours.close()
            self.log(f"modem-sim: cannot start the network peer: {exc}")
            return None
        finally:
            theirs.close()
        self.log(f"modem-sim: network peer started, pid {self.process.pid}")
        self.link = SocketLink(ours, name=f"pid {self.process.pid}")
        return self.link

    def disconnect(self) -> None:
        if self.link is not None:
            self.link.close()
            self.link = None
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            _signal_group(process, signal.SIGTERM)
            self._dying.append((process, self.clock() + KILL_GRACE))

    def standing_link(self) -> ByteLink | None:
        return None

    def poll(self, now: float) -> None:
        still: list[tuple[subprocess.Popen[bytes], float]] = []
        for process, kill_at in self._dying:
            if process.poll() is not None:
                continue
            if now >= kill_at:
                _signal_group(process, signal.SIGKILL)
            still.append((process, kill_at))
        self._dying = still

    def close(self) -> None:
        self.disconnect()
        for process, _ in self._dying:
            _signal_group(process, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(KILL_GRACE)
        self._dying.clear()


def _signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    """Signal the process started with its own session, and its children, by its PID."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


class TcpNetwork:
    """A TCP connection per call."""

    def __init__(self, address: str, *, log: Logger | None = None) -> None:
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"--network-tcp needs HOST:PORT, not {address!r}")
        self.address = (host.strip("[]"), int(port))
        self.description = f"network tcp {address}"
        self.log = log or (lambda line: None)
        self.link: SocketLink | None = None

    def connect(self, now: float) -> ByteLink | None:
        try:
            sock = socket.create_connection(self.address, timeout=TCP_CONNECT_TIMEOUT)
        except OSError as exc:
            self.log(f"modem-sim: cannot connect to {self.address[0]}:{self.address[1]}: {exc}")
            return None
        self.link = SocketLink(sock, name=f"tcp {self.address[0]}:{self.address[1]}")
        return self.link

    def disconnect(self) -> None:
        if self.link is not None:
            self.link.close()
            self.link = None

    def standing_link(self) -> ByteLink | None:
        return None

    def poll(self, now: float) -> None:
        return None

    def close(self) -> None:
        self.disconnect()


# --------------------------------------------------------------------------- control socket
def control_command(sim: ModemSimulator, line: str, now: float) -> str:
    """Run one control line on ``sim``; the one-line answer ("OK ..." or "ERROR ...")."""
    words = line.split()
    if not words:
        return "ERROR empty command"
    verb, args = words[0].lower(), words[1:]
    try:
        if verb == "ring" and len(args) == 1:
            return "OK" if sim.incoming_call(args[0], now) else "ERROR busy or no service"
        if verb == "drop" and not args:
            return "OK" if sim.drop_call(now) else "ERROR no call"
        if verb == "dial-result" and len(args) == 1:
            sim.configure(dial_result=args[0])
            return "OK"
        if verb == "sim" and len(args) == 1:
            sim.configure(sim_state=args[0])
            return "OK"
        if verb in ("creg", "cgreg") and len(args) == 1 and args[0].isdigit():
            sim.configure(**{f"{verb}_stat": int(args[0])})
            return "OK"
        if verb == "packet-reject" and len(args) == 1:
            sim.configure(packet_reject=None if args[0] == "none" else CmeError(int(args[0])))
            return "OK"
        if verb in ("mute", "dtr") and len(args) == 1 and args[0] in ("on", "off"):
            if verb == "mute":
                sim.configure(mute=args[0] == "on")
            else:
                sim.set_dtr(args[0] == "on", now)
            return "OK"
        if verb == "status" and not args:
            counters = sim.counters
            return (f"OK {sim.status()} calls={counters.calls} to_peer={counters.to_peer} "
                    f"from_peer={counters.from_peer}")  # fmt: skip
    except ValueError as exc:
        return f"ERROR {exc}"
    return ("ERROR usage: ring N | drop | dial-result R | sim S | creg N | cgreg N | packet-reject CME|none"
            " | mute on|off | dtr on|off | status")  # fmt: skip


class _ControlClient:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.closing = False


class ControlServer:
    """A UNIX stream socket at ``path``: one command per line, one answer line each."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        with contextlib.suppress(FileNotFoundError):
            if self.path.is_socket():
                self.path.unlink()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(self.path))
        self.sock.listen(4)
        self.sock.setblocking(False)
        self.clients: dict[int, _ControlClient] = {}

    def accept(self) -> None:
        """A client connects."""
        with contextlib.suppress(BlockingIOError, InterruptedError):
            sock, _ = self.sock.accept()
            sock.setblocking(False)
            self.clients[sock.fileno()] = _ControlClient(sock)

    def readable(self, fd: int, handle: Callable[[str], str]) -> None:
        """Read a client's lines and queue the answers."""
        client = self.clients[fd]
        try:
            data = client.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            client.closing = True
            self._drop_if_done(fd)
            return
        client.inbox += data
        while b"\n" in client.inbox:
            raw, _, rest = bytes(client.inbox).partition(b"\n")
            client.inbox = bytearray(rest)
            client.outbox += handle(raw.decode("utf-8", "replace").strip()).encode() + b"\n"
        if len(client.inbox) > MAX_CONTROL_LINE:
            client.outbox += b"ERROR line too long\n"
            client.inbox.clear()
            client.closing = True
        self.writable(fd)

    def writable(self, fd: int) -> None:
        """Send queued answers."""
        client = self.clients.get(fd)
        if client is None:
            return
        with contextlib.suppress(BlockingIOError, InterruptedError):
            try:
                sent = client.sock.send(client.outbox) if client.outbox else 0
            except OSError:
                client.outbox.clear()
                client.closing = True
                sent = 0
            del client.outbox[:sent]
        self._drop_if_done(fd)

    def _drop_if_done(self, fd: int) -> None:
        client = self.clients[fd]
        if client.closing and not client.outbox:
            client.sock.close()
            del self.clients[fd]

    def close(self) -> None:
        """Close every client and the listening socket, and remove it from the file system."""
        for client in self.clients.values():
            client.sock.close()
        self.clients.clear()
        self.sock.close()
        with contextlib.suppress(OSError):
            self.path.unlink()


# --------------------------------------------------------------------------- the loop
class ModemSimDriver:
    """Runs ``sim`` between ``dte`` and ``network`` (see the module docstring)."""

    def __init__(self, sim: ModemSimulator, dte: ByteLink, network: Network | None = None, *,
                 control: ControlServer | None = None, log: Logger | None = None,
                 clock: Clock = time.monotonic) -> None:  # fmt: skip
        self.sim = sim
        self.dte = dte
        self.network = network
        self.control = control
        self.log = log or (lambda line: None)
        self.clock = clock
        self.peer: ByteLink | None = None
        self.dte_eof = False
        self._to_dte = bytearray()
        self._to_peer = bytearray()
        # poll keeps no kernel state: an fd number reused by the next control client (or the next
        # call's socket) cannot stay silently unregistered, as it would with epoll
        self._selector = selectors.PollSelector()
        self._interest: dict[int, int] = {}
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)

    @property
    def wakeup_fd(self) -> int:
        """For ``signal.set_wakeup_fd``: a signal then ends the current wait at once."""
        return self._wake_w

    def run(self, stop: Callable[[], bool], duration: float | None = None) -> None:
        """Serve until ``stop()`` holds or ``duration`` seconds pass."""
        stop_at = None if duration is None else self.clock() + duration
        while not stop():
            now = self.clock()
            if stop_at is not None and now >= stop_at:
                return
            self._pump(now)
            wait = 1.0
            for deadline in (self.sim.next_deadline(), stop_at):
                if deadline is not None:
                    wait = min(wait, max(0.0, deadline - now))
            self._step(wait)
            now = self.clock()
            deadline = self.sim.next_deadline()
            if deadline is not None and deadline <= now:
                self.sim.on_timer(now)
            if self.network is not None:
                self.network.poll(now)

    # ------------------------------------------------------------------ moving octets
    def _pump(self, now: float) -> None:
        self._take_peer_output()
        for event in self.sim.events():
            if isinstance(event, CallConnected):
                self.log(f"modem-sim: call connected ({event.kind} {event.detail!r})")
                self._connect_peer(now)
            elif isinstance(event, CallEnded):
                self.log(f"modem-sim: call ended ({event.reason})")
                self._disconnect_peer()
        self._take_peer_output()
        if len(self._to_dte) < HIGH_WATER:
            self._to_dte += self.sim.bytes_to_send(HIGH_WATER - len(self._to_dte))

    def _take_peer_output(self) -> None:
        if self.peer is None:
            self.sim.peer_bytes_to_send()  # no peer: the DTE's data goes nowhere
        elif len(self._to_peer) < HIGH_WATER:
            self._to_peer += self.sim.peer_bytes_to_send(HIGH_WATER - len(self._to_peer))

    def _connect_peer(self, now: float) -> None:
        if self.network is None:
            return
        self._to_peer.clear()
        self.peer = self.network.connect(now)
        if self.peer is None:
            self.sim.peer_hung_up(now)  # the peer cannot be reached: NO CARRIER

    def _disconnect_peer(self) -> None:
        if self.peer is not None and self._to_peer:
            with contextlib.suppress(OSError):
                self.peer.write(bytes(self._to_peer))  # best effort: the DTE's last octets
        self._to_peer.clear()
        self.peer = None
        if self.network is not None:
            self.network.disconnect()

    def _peer_link(self) -> ByteLink | None:
        if self.peer is not None:
            return self.peer
        return self.network.standing_link() if self.network is not None else None

    # ------------------------------------------------------------------ one round of waiting
    def _step(self, wait: float) -> None:
        readers: dict[int, Callable[[], None]] = {self._wake_r: self._drain_wakeup}
        writers: dict[int, Callable[[], None]] = {}
        online_backlog = len(self._to_peer) + self.sim.peer_output_pending
        if not self.dte_eof and (self.sim.state is not ModemState.ONLINE or online_backlog < HIGH_WATER):
            readers[self.dte.read_fd] = self._read_dte
        if self._to_dte and not self.dte_eof:
            writers[self.dte.write_fd] = self._write_dte
        peer = self._peer_link()
        if peer is not None and len(self._to_dte) + self.sim.dte_output_pending < HIGH_WATER:
            readers[peer.read_fd] = self._read_peer
        if self.peer is not None and self._to_peer:
            writers[self.peer.write_fd] = self._write_peer
        if self.control is not None:
            control = self.control
            readers[control.sock.fileno()] = control.accept
            for fd, client in control.clients.items():
                readers[fd] = functools.partial(control.readable, fd, self._control_line)
                if client.outbox:
                    writers[fd] = functools.partial(control.writable, fd)
        self._set_interest(readers, writers)
        for key, mask in self._selector.select(wait):
            fd = key.fd
            if mask & selectors.EVENT_READ and fd in readers:
                readers[fd]()
            if mask & selectors.EVENT_WRITE and fd in writers:
                writers[fd]()

    def _set_interest(self, readers: dict[int, Callable[[], None]], writers: dict[int, Callable[[], None]]) -> None:
        wanted = dict.fromkeys(readers, selectors.EVENT_READ)
        for fd in writers:
            wanted[fd] = wanted.get(fd, 0) | selectors.EVENT_WRITE
        for fd in list(self._interest):
            if wanted.get(fd) != self._interest[fd]:
                with contextlib.suppress(KeyError, ValueError, OSError):
                    self._selector.unregister(fd)
                del self._interest[fd]
        for fd, mask in wanted.items():
            if fd not in self._interest:
                self._selector.register(fd, mask)
                self._interest[fd] = mask

    def _drain_wakeup(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._wake_r, 512):
                pass

    def _read_dte(self) -> None:
        try:
            data = self.dte.read()
        except BlockingIOError:
            return
        if not data:
            self.dte_eof = True
            self.log("modem-sim: the DTE's line closed")
            return
        self.sim.receive(data, self.clock())

    def _write_dte(self) -> None:
        try:
            written = self.dte.write(bytes(self._to_dte))
        except OSError:
            self.dte_eof = True
            return
        del self._to_dte[:written]

    def _read_peer(self) -> None:
        link = self._peer_link()
        if link is None:
            return
        try:
            data = link.read()
        except BlockingIOError:
            return
        except OSError:
            data = b""
        now = self.clock()
        if data:
            self.sim.peer_receive(data, now)  # dropped (counted) by the simulator unless online
        elif link is self.peer:
            self.log("modem-sim: the network peer hung up")
            self.sim.peer_hung_up(now)
            self._pump(now)

    def _write_peer(self) -> None:
        if self.peer is None:
            return
        try:
            written = self.peer.write(bytes(self._to_peer))
        except OSError:
            written = len(self._to_peer)  # the peer is gone; its read side reports the hang-up
        del self._to_peer[:written]

    def _control_line(self, line: str) -> str:
        answer = control_command(self.sim, line, self.clock())
        self.log(f"modem-sim: control {line!r}: {answer}")
        return answer

    def close(self) -> None:
        """Kill the peer, close the control socket and the links."""
        self.peer = None
        if self.network is not None:
            self.network.close()
        if self.control is not None:
            self.control.close()
        self.dte.close()
        self._selector.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
