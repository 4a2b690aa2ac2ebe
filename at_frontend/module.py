"""The virtual WIPSoft module: UART channels, command execution, and the services behind them.

Sans-I/O, like the rest of the core: the driver hands it the bytes each UART received with
:meth:`Module.receive`, takes what each UART must send with :meth:`Module.bytes_to_send`
(only as much as the line can take: the rest waits, and behind it the sockets), asks
:meth:`Module.wants_input` before reading a UART, and calls :meth:`Module.poll` after each
round of the network loop and :meth:`Module.on_timer` at :meth:`Module.next_deadline`.

Everything the +WIP commands do goes through wipstack's public API: the :class:`Stack`,
its TCP and UDP sockets, its resolver and ping sessions, and PPP sessions for the UART
bearers.  Things that need the operating system (a TUN device for the network bearer)
are asked of the :class:`ModuleHost` the driver provides.
"""

from __future__ import annotations

from typing import Protocol

from at_frontend.channel import Channel, DataLink, Mode
from at_frontend.config import ModuleConfig
from at_frontend.parser import ArgError, AtSyntaxError, Command, Line, is_repeat, parse_command_line
from at_frontend.registry import COMMANDS, CONNECT, PENDING
from at_frontend.responses import CmeError, CommandError, ResultCode
from at_frontend.store import ConfigStore, MemoryStore
from wipstack.cellular.cmux import MuxParameters
from wipstack.cellular.dialer import ModemDialer
from wipstack.net.interface import Interface
from wipstack.net.stack import Stack

_CR_LF = b"\r\n"
#: An LF this soon after the CR that switched a UART to data mode is the rest of a CRLF.
LF_WINDOW = 0.1


class ModuleHost(Protocol):
    """What the driver does for the module when the operating system is involved."""

    def open_network(self, bearer: int, options: dict[int, str]) -> Interface:
        """Create the network device of ``bearer`` (a TUN device); raises ``OSError``."""

    def close_network(self, bearer: int) -> None:
        """Remove it again."""


class Module:
    """See the module docstring.  ``uarts`` names the UARTs (1 and 2 on a Wavecom module)."""

    def __init__(
        self,
        stack: Stack,
        config: ModuleConfig | None = None,
        *,
        store: ConfigStore | None = None,
        host: ModuleHost | None = None,
        uarts: tuple[int, ...] = (1, 2),
        modem: ModemDialer | None = None,
        now: float = 0.0,
    ) -> None:
        # imported here: these modules register their commands and import Module for types
        from at_frontend import basic, bearers, cellular, cmux, ftp, ping, sockets, stackcfg

        self.stack = stack
        self.config = config or ModuleConfig()
        self.store: ConfigStore = store if store is not None else MemoryStore()
        self.host = host
        self.now = now
        self.channels: dict[int, Channel] = {uart: Channel(uart, self.config) for uart in uarts}
        self.physical_uarts = tuple(uarts)
        #: UARTs in 27.010 multiplexer mode (``AT+CMUX``); their virtual UARTs are in :attr:`channels`.
        self.muxes: dict[int, cmux.MuxedUart] = {}
        #: The external cellular modem of the GSM and GPRS bearers (None: not attached).
        self.cellular = cellular.CellularLine(self, modem) if modem is not None else None
        self.stack_config = stackcfg.StackSettings(self)
        self.bearers = bearers.Bearers(self)
        self.sockets = sockets.SocketTable(self)
        self.pings = ping.PingService(self)
        self.ftp = ftp.FtpService(self)
        self.basic = basic.BasicState()
        self.stack_config.load_stored()

    # ------------------------------------------------------------------ driver side
    def receive(self, uart: int, data: bytes, now: float) -> None:
        """Bytes the UART received."""
        self.now = now
        self.deliver_input(self.channels[uart], data, now)
        self.poll(now)

    def deliver_input(self, channel: Channel, data: bytes, now: float) -> None:
        """Bytes for ``channel`` (a UART, or a virtual UART of a multiplexed one)."""
        if channel.mode is Mode.COMMAND and channel.busy:
            self._hold_input(channel, data)
        else:
            self._dispatch_input(channel, data, now)

    def wants_input(self, uart: int) -> bool:
        """False when the UART should not be read now (flow control toward the host)."""
        channel = self.channels[uart]
        if channel.mode is Mode.MUX:
            return self.muxes[uart].wants_input()
        if channel.mode is Mode.DATA and channel.data is not None:
            return channel.data.can_accept()
        if channel.mode is Mode.PPP:
            return len(channel.out) < self.config.uart_buffer * 8
        return len(channel.held_input) < self.config.max_line * 4

    def bytes_to_send(self, uart: int, limit: int, now: float) -> bytes:
        """Up to ``limit`` octets for the UART."""
        self.now = now
        channel = self.channels[uart]
        self.fill_from_socket(channel, now)
        out = channel.take_output(limit)  # in multiplexer mode: what was said before AT+CMUX's OK
        if channel.mode is Mode.MUX and len(out) < limit:
            out += self.muxes[uart].bytes_to_send(limit - len(out), now)
        return out

    def poll(self, now: float) -> None:
        """Collect what happened in the stack since the last round (PPP output, DNS, pings)."""
        self.now = now
        self.bearers.poll(now)
        self.sockets.poll(now)
        self.pings.poll(now)
        self.ftp.poll(now)
        if self.cellular is not None:
            self.cellular.poll(now)
        for channel in list(self.channels.values()):
            self.fill_from_socket(channel, now)

    def next_deadline(self) -> float | None:
        """When :meth:`on_timer` is due."""
        deadlines = [self.bearers.next_deadline(), self.pings.next_deadline(), self.sockets.next_deadline(),
                     self.ftp.next_deadline()]  # fmt: skip
        deadlines += [muxed.next_deadline() for muxed in self.muxes.values()]
        if self.cellular is not None:
            deadlines.append(self.cellular.next_deadline())
        for channel in self.channels.values():
            if channel.detector is not None:
                deadlines.append(channel.detector.next_deadline())
        present = [d for d in deadlines if d is not None]
        return min(present) if present else None

    def on_timer(self, now: float) -> None:
        """Run due timers: escape guard times, bearer and ping timers."""
        self.now = now
        for channel in list(self.channels.values()):
            detector = channel.detector
            if channel.mode is Mode.DATA and detector is not None:
                deadline = detector.next_deadline()
                if deadline is not None and deadline <= now:
                    result = detector.on_timer(now)
                    if result.data and channel.data is not None:
                        channel.data.write(result.data, now)
                    if result.escaped:
                        self._escape(channel, result.rest, now)
        self.bearers.on_timer(now)
        self.pings.on_timer(now)
        self.sockets.on_timer(now)
        self.ftp.on_timer(now)
        for muxed in list(self.muxes.values()):
            muxed.on_timer(now)
        if self.cellular is not None:
            self.cellular.on_timer(now)
        self.poll(now)

    # ------------------------------------------------------------------ services side
    def urc(self, uart: int, text: str) -> None:
        """An unsolicited result code for ``uart``."""
        channel = self.channels.get(uart)
        if channel is not None:
            channel.urc(text)

    def complete(self, channel: Channel, error: CmeError | None = None) -> None:
        """The pending command of ``channel`` finished (``error`` None: it succeeded)."""
        if not channel.busy:
            return
        channel.busy = False
        remaining, channel.remaining = channel.remaining, []
        if error is not None:
            channel.out += channel.framing.error(error)
        else:
            self._run_commands(channel, remaining)
        channel.release_urcs()
        self._resume(channel)

    def complete_in_data_mode(self, channel: Channel, key: tuple[int, int], link: DataLink) -> None:
        """The pending command of ``channel`` ends in data mode (``AT+WIPFILE``): CONNECT, then data."""
        if not channel.busy:
            return
        channel.busy = False
        channel.remaining = []  # the rest of the line is ignored, as after any CONNECT
        self.connect_data(channel)
        channel.enter_data(key, link, self.now)
        held, channel.held_input = bytes(channel.held_input), bytearray()
        if held:
            self._dispatch_input(channel, held, self.now)

    def connect_data(self, channel: Channel) -> None:
        """A command put the channel in data mode: say CONNECT (also after a pending command)."""
        channel.out += channel.framing.result(ResultCode.CONNECT)

    @property
    def started(self) -> bool:
        """``AT+WIPCFG=1`` was given (and not undone)."""
        return self.stack_config.started

    # ------------------------------------------------------------------ multiplexer (AT+CMUX)
    def start_mux(self, channel: Channel, params: MuxParameters) -> None:
        """``AT+CMUX`` succeeded on ``channel``: after its ``OK`` the UART carries 27.010 frames."""
        from at_frontend.cmux import MuxedUart

        self.muxes[channel.uart] = MuxedUart(self, channel, params)
        channel.mode = Mode.MUX
        channel.assembler.reset()

    def end_mux(self, channel: Channel, now: float) -> None:
        """Close-down (or DISC of DLCI 0): the virtual UARTs go, the UART answers AT commands again."""
        muxed = self.muxes.pop(channel.uart, None)
        if muxed is None:
            return
        muxed.close_all(now)
        channel.out += muxed.mux.bytes_to_send()  # the last responses (CLD, UA) still go out framed
        channel.mode = Mode.COMMAND
        channel.assembler.reset()
        channel.release_urcs()

    def port_closed(self, port: Channel, now: float) -> None:
        """The DLCI of a virtual UART closed: data mode ends, a started bearer on it is lost (816)."""
        if port.mode is Mode.DATA:
            self.sockets.unmapped(port, now)
            port.leave_data(now)
        self.bearers.line_closed(port.uart, now)
        port.busy = False
        port.out.clear()

    def remove_channel(self, port: Channel, fallback: Channel, now: float) -> None:
        """A virtual UART goes (the multiplexer ended): its bearer closes, its sockets report to ``fallback``."""
        self.port_closed(port, now)
        self.bearers.forget(port.uart, fallback)
        for entry in self.sockets.entries.values():
            if entry.owner is port:
                entry.owner = fallback
            if entry.mapped is port:
                entry.mapped = None
        for ftp_entry in self.ftp.entries.values():
            if ftp_entry.owner is port:
                ftp_entry.owner = fallback
        if self.pings.channel is port:
            self.pings.channel = fallback
        self.channels.pop(port.uart, None)
        fallback.release_urcs()

    # ------------------------------------------------------------------ input
    def _hold_input(self, channel: Channel, data: bytes) -> None:
        room = self.config.max_line * 4 - len(channel.held_input)
        if len(data) > room:
            channel.input_dropped += len(data) - max(room, 0)
            data = data[: max(room, 0)]
        channel.held_input += data

    def _dispatch_input(self, channel: Channel, data: bytes, now: float) -> None:
        if channel.skip_lf_until is not None and data:
            if data[:1] == b"\n" and now < channel.skip_lf_until:
                data = data[1:]  # the LF of the CRLF that ended the command line (a later LF is data)
            channel.skip_lf_until = None
        while data:
            if channel.mode is Mode.MUX:
                self.muxes[channel.uart].receive(data, now)
                return
            if channel.mode is Mode.PPP and channel.ppp is not None:
                channel.ppp.receive_bytes(data, now)
                self.bearers.pump(channel, now)
                return
            if channel.mode is Mode.DATA:
                data = self._data_input(channel, data, now)
                continue
            if channel.busy:
                self._hold_input(channel, data)
                return
            data = self._command_input(channel, data, now)

    def _command_input(self, channel: Channel, data: bytes, now: float) -> bytes:
        """Consume command-mode bytes up to the first line that changes the mode; return the rest."""
        start = 0
        size = len(data)
        while start < size:
            # a piece ends at a line end, or at "/" (A/ runs as soon as its "/" arrives, V.25ter §5.2.4)
            ends = [i for i in (data.find(b"\r", start), data.find(b"\n", start), data.find(b"/", start)) if i >= 0]
            end = min(ends) + 1 if ends else size
            piece = data[start:end]
            if channel.framing.echo:
                channel.out += piece
            start = end
            for line in channel.assembler.feed(piece):
                channel.queued_lines.append(line)
            if is_repeat(channel.assembler.pending):
                channel.assembler.reset()  # V.25ter §5.2.4: A/ needs no line end
                channel.queued_lines.append(Line("A/"))
            self._run_queued_lines(channel)
            if channel.mode is not Mode.COMMAND or channel.busy:
                if piece.endswith(b"\r"):
                    if start < size and data[start : start + 1] == b"\n":
                        start += 1
                    elif start == size:
                        channel.skip_lf_until = now + LF_WINDOW
                rest = data[start:]
                if channel.busy and rest:
                    self._hold_input(channel, rest)
                    return b""
                return rest
        return b""

    def _run_queued_lines(self, channel: Channel) -> None:
        while channel.queued_lines and channel.mode is Mode.COMMAND and not channel.busy:
            self._execute_line(channel, channel.queued_lines.popleft())

    def _execute_line(self, channel: Channel, line: Line) -> None:
        framing = channel.framing
        if line.too_long:
            channel.out += framing.error(CmeError.TEXT_STRING_TOO_LONG)
            return
        text = line.text.lstrip("".join(map(chr, range(33))))  # noise before "AT" (V.25ter ignores it)
        if not text:
            return  # empty lines are ignored
        if is_repeat(text):
            if channel.last_line is None:
                channel.out += framing.error(None)
                return
            text = channel.last_line
        try:
            commands = parse_command_line(text)
        except AtSyntaxError:
            channel.out += framing.error(None)
            return
        channel.last_line = text
        self._run_commands(channel, commands)
        channel.release_urcs()

    def _run_commands(self, channel: Channel, commands: list[Command]) -> None:
        """Run a line's commands in order; the first failure ends the line (V.25ter §5.4)."""
        channel.executing = True
        try:
            for position, cmd in enumerate(commands):
                handler = COMMANDS.get(cmd.name) or (COMMANDS.get("S") if cmd.name[:1] == "S" else None)
                if handler is None:
                    channel.out += channel.framing.error(None)
                    return
                try:
                    outcome = handler(self, channel, cmd)
                except CommandError as exc:
                    channel.out += channel.framing.error(exc.code)
                    return
                except ArgError:
                    channel.out += channel.framing.error(CmeError.INVALID_OPTION_VALUE)
                    return
                if outcome is PENDING:
                    channel.busy = True
                    channel.remaining = commands[position + 1 :]
                    return
                if outcome is CONNECT:
                    self.connect_data(channel)
                    return  # the rest of the line is ignored: the UART carries data now
            channel.out += channel.framing.result(ResultCode.OK)
        finally:
            channel.executing = False

    def _resume(self, channel: Channel) -> None:
        """After a pending command: the lines and bytes that waited."""
        self._run_queued_lines(channel)
        if channel.busy or channel.mode is not Mode.COMMAND:
            return
        held, channel.held_input = bytes(channel.held_input), bytearray()
        if held:
            self._dispatch_input(channel, held, self.now)

    # ------------------------------------------------------------------ data mode
    def _data_input(self, channel: Channel, data: bytes, now: float) -> bytes:
        """Host bytes in data mode; returns what belongs to AT mode after an escape."""
        detector, link = channel.detector, channel.data
        if detector is None or link is None:
            channel.mode = Mode.COMMAND
            return data
        result = detector.feed(data, now)
        if result.data:
            link.write(result.data, now)
        if result.escaped:
            self._escape(channel, b"", now)
            return result.rest
        return b""

    def _escape(self, channel: Channel, rest: bytes, now: float) -> None:
        """``+++`` recognised: OK, AT mode, the socket stays open."""
        link = channel.data
        if link is not None and getattr(link, "escape_as_etx", False):
            link.end_of_data(now)  # type: ignore[attr-defined]  # an FTP upload: +++ ends the file
            channel.held_input += rest  # AT mode comes back with the final result
            if channel.detector is not None:
                channel.detector.reset(now)
            return
        self.sockets.unmapped(channel, now)
        channel.leave_data(now)
        channel.out += channel.framing.result(ResultCode.OK)
        channel.release_urcs()
        if rest:
            self._dispatch_input(channel, rest, now)

    def fill_from_socket(self, channel: Channel, now: float) -> None:
        """Move socket data of a channel in data mode into its output (as much as it has room for)."""
        link = channel.data
        if channel.mode is not Mode.DATA or link is None:
            return
        room = channel.output_room
        if room > 0:
            chunk = link.read(room, now)
            if chunk:
                channel.out += chunk
        if link.ended:
            held = channel.leave_data(now)
            if held:
                pass  # the socket is gone: '+' still held by the detector have nowhere to go
            self.sockets.unmapped(channel, now)
            channel.release_urcs()
            held, channel.held_input = bytes(channel.held_input), bytearray()
            if held:
                self._dispatch_input(channel, held, now)


def line_bytes(text: str) -> bytes:
    """``text`` framed as a verbose line (helper for the data-mode markers)."""
    return _CR_LF + text.encode() + _CR_LF


__all__ = ["CommandError", "Module", "ModuleHost", "line_bytes"]
