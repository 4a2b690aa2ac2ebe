"""One AT interpreter of the simulated modem: command lines, result codes, data mode and the escape.

A :class:`SimulatedPort` is what the DTE sees on one line: the serial line, or one DLCI of a
27.010 multiplexer (which the facade, :mod:`wipstack.cellular.simulator`, runs).  It owns
everything V.25ter makes per-interface: echo, ATV/ATQ formatting, +CMEE, +CREG/+CGREG URC
levels, S-registers, &C/&D, and the command and online states of V.25ter:

    COMMAND --ATD/ATA/AT+CGDATA--> DIALLING --(connect_delay)--> ONLINE --(+++ with guard times)--> ONLINE_COMMAND
    ONLINE_COMMAND --ATO--> ONLINE;  ATH / DTR off (&D2) / NO CARRIER --> COMMAND

Formatting (V.25ter §5.7.1): verbose results are ``CR LF text CR LF``, numeric ones
``code CR``; information text is ``CR LF text CR LF`` (``text CR LF`` with ATV0); extended
result codes (+CME ERROR, URCs) are formatted like information text.  ATQ1 suppresses result
codes, including unsolicited ones, but not information text.  While online, the DTE's octets
go to the radio for the network peer and URCs are not sent (counted).

The escape (Hayes; S2 and S12 as most 27.007 modems keep them): the S2 character three
times, the first at least S12 fiftieths of a second after the previous octet, each within
that time of the one before, and nothing for that time afterwards; the "+" are forwarded as
data, as a modem cannot know in advance that they will form an escape.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from wipstack.cellular.cmux_types import MuxParameters
from wipstack.cellular.sim_commands import PENDING, execute
from wipstack.cellular.sim_parser import AtSyntaxError, CommandLineAssembler, LineComplete, parse_command_line
from wipstack.cellular.sim_radio import CommandError, FinalResult, SimulatedRadio
from wipstack.cellular.sim_types import CME_TEXT, REGISTERED, CmeError, ModemState, ResultCode

__all__ = ["PortProfile", "SimulatedPort"]

#: V.25ter §6.3.1: octets within this time after a dial command's terminator do not abort it.
DIAL_IGNORE_WINDOW = 0.125
#: S-registers V.25ter §6.2-§6.3 defines, with their defaults.
DEFAULT_S_REGISTERS = {0: 0, 1: 0, 2: 43, 3: 13, 4: 10, 5: 8, 6: 2, 7: 50, 8: 2, 10: 14, 12: 50}


@dataclass
class PortProfile:
    """The per-port settings ATZ restores and AT&W stores (a V.25ter "profile")."""

    echo: bool = True
    verbose: bool = True
    quiet: bool = False
    cmee: int = 0
    creg: int = 0
    cgreg: int = 0
    crc: bool = False
    clip: bool = False
    dcd_mode: int = 1  # &C
    dtr_mode: int = 2  # &D
    result_level: int = 4  # X
    baud: int = 115200  # +IPR
    flow: tuple[int, int] = (2, 2)  # +IFC
    bearer: tuple[int, int, int] = (7, 0, 1)  # +CBST: 9600 bit/s V.32, asynchronous, non-transparent
    cops_format: int = 0
    s_registers: dict[int, int] = field(default_factory=lambda: dict(DEFAULT_S_REGISTERS))

    def copy(self) -> PortProfile:
        """An independent copy."""
        return dataclasses.replace(self, s_registers=dict(self.s_registers))


class SimulatedPort:
    """One AT interpreter over the shared radio (see the module docstring)."""

    def __init__(self, radio: SimulatedRadio, name: str = "line") -> None:
        self.radio = radio
        self.name = name
        self.state = ModemState.COMMAND
        self.profile = self.factory_profile()
        self.stored_profile = self.profile.copy()
        self.dtr = True
        #: Only the physical line's port may start 27.010 (AT+CMUX); the driver then switches it.
        self.allows_mux = False
        self.mux_request: MuxParameters | None = None
        #: The parameters of the multiplexer this port runs on (a DLCI's port), for AT+CMUX?.
        self.mux_parameters: MuxParameters | None = None
        self._assembler = CommandLineAssembler(radio.settings.max_line)
        self._last_line = ""
        self._output = bytearray()
        self._ignore_until = 0.0
        self._last_data_at = 0.0
        self._escape_count = 0
        self._last_escape_at = 0.0
        self._escape_at: float | None = None
        radio.attach_port(self)

    def factory_profile(self) -> PortProfile:
        """The settings of AT&F (echo as the simulator is configured)."""
        return PortProfile(echo=self.radio.settings.echo)

    # ------------------------------------------------------------------ DTE side
    def receive(self, data: bytes, now: float) -> int:
        """Octets from the DTE, split anywhere; how many were taken (all, unless AT+CMUX switched the line)."""
        self.radio.now = now
        if self.radio.settings.mute:
            self.radio.counters.ignored_while_muted += len(data)
            return len(data)
        self._assembler.max_line = self.radio.settings.max_line
        index = 0
        while index < len(data) and self.mux_request is None:
            if self.state is ModemState.ONLINE:
                self._receive_data(data[index:], now)
                return len(data)
            if self.state is ModemState.DIALLING:
                index = self._receive_while_dialling(data, index, now)
            else:
                index = self._receive_commands(data, index, now)
        return index

    def take_output(self, limit: int | None = None) -> bytes:
        """Octets for the DTE."""
        count = len(self._output) if limit is None else min(limit, len(self._output))
        data = bytes(self._output[:count])
        del self._output[:count]
        return data

    @property
    def output_pending(self) -> int:
        """Octets waiting for the DTE."""
        return len(self._output)

    @property
    def online(self) -> bool:
        """In online data mode."""
        return self.state is ModemState.ONLINE

    @property
    def carrier(self) -> bool:
        """DCD as &C makes it: always on (&C0) or on while this port's call is connected (&C1)."""
        call = self.radio.call
        return self.profile.dcd_mode == 0 or (call is not None and call.owner is self and call.connected)

    def set_dtr(self, on: bool, now: float) -> None:
        """Circuit 108/2 from the DTE (V.25ter §6.2.9 &D)."""
        self.radio.now = now
        falling = self.dtr and not on
        self.dtr = on
        if not falling or self.profile.dtr_mode == 0:
            return
        if self.state is ModemState.ONLINE and self.profile.dtr_mode == 1:
            self._to_online_command()  # &D1: online command state, OK
        elif self.profile.dtr_mode == 2 and self.state in (ModemState.ONLINE, ModemState.ONLINE_COMMAND):
            self.radio.end_call("dtr", None, now)  # &D2: orderly cleardown, then OK in command state
            self.final(ResultCode.OK)
        elif self.profile.dtr_mode == 2 and self.state is ModemState.DIALLING:
            self.radio.abort_setup(self)

    # ------------------------------------------------------------------ timers
    def next_deadline(self) -> float | None:
        """When the escape sequence's closing guard time ends."""
        return self._escape_at

    def on_timer(self, now: float) -> None:
        """The escape completes when nothing followed the third S2 character for the guard time."""
        if self._escape_at is not None and self._escape_at <= now:
            self._escape_at = None
            self._escape_count = 0
            if self.state is ModemState.ONLINE:
                self.radio.counters.escapes += 1
                self._to_online_command()

    def _to_online_command(self) -> None:
        self.state = ModemState.ONLINE_COMMAND
        self._assembler.reset()
        self.final(ResultCode.OK)

    # ------------------------------------------------------------------ command mode
    def _receive_commands(self, data: bytes, index: int, now: float) -> int:
        start = index
        while index < len(data):
            item = self._assembler.push(data[index])
            index += 1
            if item is None:
                continue
            self._echo(data[start:index])
            start = index
            if isinstance(item, LineComplete):
                self._run_line(item.text, item.too_long, now)
            else:
                self._run_line(self._last_line, False, now)  # A/
            if self.state not in (ModemState.COMMAND, ModemState.ONLINE_COMMAND) or self.mux_request is not None:
                return index  # the rest is data, or 27.010 frames after AT+CMUX's OK
        self._echo(data[start:index])
        return index

    def _echo(self, data: bytes) -> None:
        if data and self.profile.echo:
            self._write(data)

    def _run_line(self, text: str, too_long: bool, now: float) -> None:
        counters = self.radio.counters
        counters.command_lines += 1
        self.radio.last_commands.append("AT" + text)
        self.radio.trace(f"{self.name} > AT{text}")
        if too_long:
            counters.lines_too_long += 1
            self.final(ResultCode.ERROR)
            return
        self._last_line = text
        try:
            commands = parse_command_line(text)
        except AtSyntaxError:
            self.final(ResultCode.ERROR)
            return
        for command in commands:
            try:
                outcome = execute(self, command, now)
            except CommandError as error:
                self.mux_request = None  # a failed line does not start the multiplexer
                self.final(error.result)
                return
            if outcome is PENDING:
                return  # the final result comes later (a call) or was already sent (ATO's CONNECT)
        self.final(ResultCode.OK)

    def _receive_while_dialling(self, data: bytes, index: int, now: float) -> int:
        if now < self._ignore_until:
            self.radio.counters.ignored_after_dial += len(data) - index
            return len(data)  # e.g. the LF of a CR LF terminator (V.25ter §6.3.1)
        self.radio.abort_setup(self)  # any character aborts the set-up; it is consumed
        return index + 1

    def enter_dialling(self, now: float) -> None:
        """A call set-up for this port started (by a command or by auto-answer)."""
        self.state = ModemState.DIALLING
        self._ignore_until = now + DIAL_IGNORE_WINDOW

    # ------------------------------------------------------------------ online data
    def _receive_data(self, data: bytes, now: float) -> None:
        escape = self.profile.s_registers[2]
        guard = self.profile.s_registers[12] / 50
        if escape > 127 or escape not in data:
            self._escape_count, self._escape_at = 0, None  # an escape character > 127 disables the escape
        else:
            for octet in data:
                self._escape_octet(octet, escape, guard, now)
        self._last_data_at = now
        self.radio.from_dte(self, data)

    def _escape_octet(self, octet: int, escape: int, guard: float, now: float) -> None:
        if octet != escape:
            self._escape_count, self._escape_at = 0, None
        elif self._escape_count == 0:
            if now - self._last_data_at >= guard:  # leading guard time
                self._escape_count, self._last_escape_at = 1, now
        elif self._escape_count < 3 and now - self._last_escape_at <= guard:
            self._escape_count += 1
            self._last_escape_at = now
            if self._escape_count == 3:
                self._escape_at = now + guard  # trailing guard time
        else:
            self._escape_count, self._escape_at = 0, None  # a fourth "+" or too slow: plain data
        self._last_data_at = now

    def data_from_peer(self, data: bytes) -> None:
        """Octets of the network peer (the radio only calls this while online)."""
        self._write(data)

    # ------------------------------------------------------------------ calls (called by the radio)
    def call_connected(self, now: float) -> None:
        """Set-up done: CONNECT, online data mode."""
        self.state = ModemState.ONLINE
        self._last_data_at = now
        self._escape_count, self._escape_at = 0, None
        self.result_connect()

    def result_connect(self) -> None:
        """The CONNECT result code (its configured verbose text)."""
        self._result(ResultCode.CONNECT, self.radio.settings.connect_text)

    def go_online(self, now: float) -> None:
        """ATO: back to online data mode."""
        self.call_connected(now)

    def call_failed(self, result: FinalResult) -> None:
        """Set-up failed or was aborted: its final result, command mode."""
        self.state = ModemState.COMMAND
        self.final(result)

    def call_ended(self, notify: ResultCode | None) -> None:
        """The connected call ended; ``notify`` (NO CARRIER) unless the DTE ended it itself."""
        self.state = ModemState.COMMAND
        self._escape_count, self._escape_at = 0, None
        self._assembler.reset()
        if notify is not None:
            self.final(notify)

    def auto_answers(self, rings: int) -> bool:
        """S0 > 0 rings reached, in command state, and DTR allows it (&D2: not while DTR is off)."""
        s0 = self.profile.s_registers[0]
        dtr_ok = self.dtr or self.profile.dtr_mode != 2
        return 0 < s0 <= rings and self.state is ModemState.COMMAND and dtr_ok

    def ring(self, caller: str) -> None:
        """RING (or +CRING: <type> with AT+CRC=1), then +CLIP with AT+CLIP=1 (27.007 §6.11, §7.6)."""
        if self.state is ModemState.ONLINE:
            self.radio.counters.urcs_suppressed += 1
            return
        if self.profile.crc:
            ce = self.profile.bearer[2]
            self.extended_result("+CRING: " + ("ASYNC" if ce == 0 else "REL ASYNC"))
        else:
            self._result(ResultCode.RING)
        if self.profile.clip:
            number_type = 145 if caller.startswith("+") else 129  # 24.008 §10.5.4.7: international or not
            self.extended_result(f'+CLIP: "{caller}",{number_type}')

    def registration_changed(self, cs_changed: bool, ps_changed: bool) -> None:
        """+CREG/+CGREG URCs as AT+CREG/AT+CGREG ask (27.007 §7.2, §10.1.19)."""
        if cs_changed and self.profile.creg:
            self.extended_result("+CREG: " + self.registration_text(self.radio.cs_stat(), self.profile.creg))
        if ps_changed and self.profile.cgreg:
            self.extended_result("+CGREG: " + self.registration_text(self.radio.ps_stat(), self.profile.cgreg))

    def registration_text(self, stat: int, level: int) -> str:
        """``<stat>[,<lac>,<ci>]``: the location only at level 2 and when registered."""
        if level == 2 and stat in REGISTERED:
            settings = self.radio.settings
            return f'{stat},"{settings.lac}","{settings.cell_id}"'
        return str(stat)

    def factory_reset(self) -> None:
        """AT+CFUN=1,1: the port restarts with factory settings."""
        self.profile = self.factory_profile()
        self.back_to_command_state()

    def back_to_command_state(self) -> None:
        """Command state with nothing half typed (also when a multiplexer gives the line back)."""
        self.state = ModemState.COMMAND
        self._assembler.reset()
        self._escape_count, self._escape_at = 0, None

    # ------------------------------------------------------------------ output
    def final(self, result: FinalResult) -> None:
        """A final result code, formatted for this port (+CME ERROR per AT+CMEE)."""
        if isinstance(result, CmeError):
            self.radio.counters.errors += 1
            if self.profile.cmee == 0:
                self._result(ResultCode.ERROR)
            else:
                value = CME_TEXT[result] if self.profile.cmee == 2 else str(int(result))
                self.extended_result(f"+CME ERROR: {value}")
            return
        if result is ResultCode.ERROR:
            self.radio.counters.errors += 1
        self._result(result)

    def _result(self, code: ResultCode, text: str | None = None) -> None:
        verbose = text or code.text
        self.radio.trace(f"{self.name} < {verbose}")
        if self.profile.quiet:
            return
        self._write(f"\r\n{verbose}\r\n".encode() if self.profile.verbose else f"{int(code)}\r".encode())

    def extended_result(self, text: str) -> None:
        """An extended (+CME ERROR) or unsolicited result code; not sent in online data mode."""
        if self.state is ModemState.ONLINE:
            self.radio.counters.urcs_suppressed += 1
            return
        self.radio.trace(f"{self.name} < {text}")
        if not self.profile.quiet:
            self._write_text([text])

    def info(self, *lines: str) -> None:
        """Information text (ATQ does not suppress it)."""
        for line in lines:
            self.radio.trace(f"{self.name} < {line}")
        self._write_text(list(lines))

    def _write_text(self, lines: list[str]) -> None:
        encoded = [line.encode("latin-1", "replace") for line in lines]
        if self.profile.verbose:
            self._write(b"\r\n" + b"\r\n".join(encoded) + b"\r\n")
        else:
            self._write(b"".join(line + b"\r\n" for line in encoded))

    def _write(self, data: bytes) -> None:
        counters = self.radio.counters
        if self.radio.settings.mute:
            counters.muted_output += len(data)
            return
        room = self.radio.settings.max_output - len(self._output)
        if room < len(data):
            counters.dte_output_dropped += len(data) - max(room, 0)
            data = data[: max(room, 0)]
        self._output += data
