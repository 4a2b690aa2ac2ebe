"""The virtual WIPSoft module on real lines: UARTs as ptys or serial ports, TUN bearers.

:class:`ModulePort` is one port of the :class:`~wipstack.drivers.netloop.NetLoop` that
carries every UART of an :class:`at_frontend.module.Module`: it reads a UART only while
the module wants input (flow control toward the host), writes only what the line takes
(flow control toward the sockets), and runs the module's timers.  :class:`TunHost` gives
the module its network bearer (``AT+WIPBR`` bearer 4, and GPRS with ``--gprs-over-tun``):
a TUN device whose kernel side may live in a network namespace.  With ``modem=`` the
external cellular modem of the GSM/GPRS bearers is one more line of the port: its octets go
to and from the module's :class:`~at_frontend.cellular.CellularLine`, whose DTR is mirrored
onto the serial port, and its end of stream is reported as a lost line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from ipaddress import IPv4Address

from at_frontend.module import Module
from wipstack.drivers.link import ByteLink
from wipstack.drivers.netloop import NetLoop
from wipstack.drivers.ports import TunPort
from wipstack.drivers.tun import TunDevice
from wipstack.net.interface import Interface

Logger = Callable[[str], None]

#: Octets taken from the module for one UART before it waits for the line to drain.
MAX_PENDING = 1 << 16
#: The key of the cellular modem's line among the UART links.
MODEM = 0


class ModulePort:
    """Every UART of ``module`` on its byte link (see the module docstring)."""

    def __init__(self, module: Module, links: dict[int, ByteLink], *, log: Logger | None = None,
                 clock: Callable[[], float] = time.monotonic, modem: ByteLink | None = None) -> None:  # fmt: skip
        self.module = module
        self.links = dict(links)
        self.modem = modem
        if modem is not None:  # the cellular modem's line is one more "UART" here, keyed MODEM
            self.links[MODEM] = modem
        self.name = "uarts"
        self.log = log or (lambda line: None)
        self.clock = clock
        self.eof: set[int] = set()
        self._pending: dict[int, bytearray] = {uart: bytearray() for uart in self.links}
        self._uart_of_fd = {link.read_fd: uart for uart, link in self.links.items()}
        self._uart_of_write_fd = {link.write_fd: uart for uart, link in self.links.items()}
        self._dtr = True

    def read_fds(self) -> list[int]:
        return [link.read_fd for uart, link in self.links.items()
                if uart not in self.eof and self._wants_input(uart)]  # fmt: skip

    def _wants_input(self, uart: int) -> bool:
        if uart == MODEM:
            return self.module.cellular is None or self.module.cellular.wants_input()
        return self.module.wants_input(uart)

    def write_fds(self) -> list[int]:
        return [link.write_fd for uart, link in self.links.items() if self._pending[uart] and uart not in self.eof]

    def on_readable(self, fd: int, now: float) -> None:
        uart = self._uart_of_fd[fd]
        try:
            data = self.links[uart].read()
        except BlockingIOError:
            return
        if not data:
            self.eof.add(uart)
            self.log("modem: line closed" if uart == MODEM else f"UART{uart}: line closed")
            if uart == MODEM and self.module.cellular is not None:
                self.module.cellular.line_lost(now)
            return
        if uart == MODEM:
            if self.module.cellular is not None:
                self.module.cellular.receive(data, now)
            return
        self.module.receive(uart, data, now)

    def on_writable(self, fd: int, now: float) -> None:
        self._write(self._uart_of_write_fd[fd])

    def flush(self, now: float) -> None:
        self.module.poll(now)
        for uart in self.links:
            pending = self._pending[uart]
            room = MAX_PENDING - len(pending)
            if room > 0:
                if uart != MODEM:
                    pending += self.module.bytes_to_send(uart, room, now)
                elif self.module.cellular is not None:
                    pending += self.module.cellular.bytes_to_send(room, now)
            self._write(uart)
        self._mirror_dtr()

    def _mirror_dtr(self) -> None:
        cellular = self.module.cellular
        if cellular is None or self.modem is None or cellular.dtr == self._dtr:
            return
        self._dtr = cellular.dtr
        set_dtr = getattr(self.modem, "set_dtr", None)
        if set_dtr is not None:
            set_dtr(self._dtr)

    def next_deadline(self) -> float | None:
        return self.module.next_deadline()

    def on_timer(self, now: float) -> None:
        self.module.on_timer(now)

    def close(self) -> None:
        for link in self.links.values():
            link.close()

    def _write(self, uart: int) -> None:
        pending = self._pending[uart]
        if not pending or uart in self.eof:
            return
        try:
            written = self.links[uart].write(bytes(pending))
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.eof.add(uart)
            pending.clear()
            if uart == MODEM and self.module.cellular is not None:
                self.log("modem: line lost (write failed)")
                self.module.cellular.line_lost(self.clock())  # a write can be the first to notice
            return
        del pending[:written]


class TunHost:
    """The module's network bearer: a TUN device per started bearer (``ModuleHost``)."""

    def __init__(self, loop: NetLoop, *, netns: str | None = None, configure: bool = True, mtu: int = 1500,
                 log: Logger | None = None) -> None:  # fmt: skip
        self.loop = loop
        self.netns = netns
        self.configure = configure
        self.mtu = mtu
        self.log = log or (lambda line: None)
        self.ports: dict[int, TunPort] = {}

    def open_network(self, bearer: int, options: dict[int, str]) -> Interface:
        local, peer = options.get(15), options.get(16)
        if not local or not peer or local == "0.0.0.0" or peer == "0.0.0.0":
            raise OSError("the network bearer needs its local (15) and peer (16) addresses")
        device = TunDevice(mtu=self.mtu)
        try:
            if self.netns:
                device.move_to_netns(self.netns)
            if self.configure:
                device.configure_kernel_side(local, peer, netns=self.netns)
        except BaseException:
            device.close()
            raise
        interface = Interface(device.name, IPv4Address(local).packed, peer=IPv4Address(peer).packed, mtu=self.mtu)
        port = TunPort(self.loop.stack, interface, device)
        self.loop.add_port(port)
        self.ports[bearer] = port
        self.log(
            f"bearer {bearer}: {device.name} {local} peer {peer}" + (f" (netns {self.netns})" if self.netns else "")
        )
        return interface

    def close_network(self, bearer: int) -> None:
        port = self.ports.pop(bearer, None)
        if port is not None:
            port.flush(self.loop.clock())  # what the stack queued last (RSTs of closed sockets)
            self.loop.remove_port(port)
            port.close()
