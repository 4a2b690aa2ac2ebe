"""One UART of the virtual module: its mode, V.25ter settings, line assembly and output.

A channel is in one of four modes.  In COMMAND mode bytes are echoed and assembled into
command lines; in DATA mode they go to the socket the UART is mapped to (``AT+WIPDATA``),
watched for the ``+++`` escape; in PPP mode they belong to a PPP session (a UART bearer
started with ``AT+WIPBR=4``); in MUX mode a physical UART carries 27.010 frames whose DLCIs
are virtual UARTs, channels of their own (``AT+CMUX``, :mod:`at_frontend.cmux`).
Output waits in :attr:`Channel.out` until the driver takes
it, and a channel never holds more than about ``uart_buffer`` octets of socket data: the
rest stays in the socket, whose window then closes (flow control toward the network).
"""

from __future__ import annotations

import enum
from collections import deque
from typing import TYPE_CHECKING, Protocol

from at_frontend.escaping import EscapeDetector
from at_frontend.parser import Command, Line, LineAssembler
from at_frontend.responses import Framing

if TYPE_CHECKING:
    from at_frontend.config import ModuleConfig
    from wipstack.net.ppp_binding import PppBinding


class Mode(enum.Enum):
    """What the UART's bytes are."""

    COMMAND = "command"
    DATA = "data"
    PPP = "ppp"
    MUX = "mux"  # a 27.010 multiplexer runs on the UART (AT+CMUX); its DLCIs are channels of their own


class DataLink(Protocol):
    """A socket as a UART in data mode sees it (see :mod:`at_frontend.datamode`)."""

    def write(self, data: bytes, now: float) -> None:
        """Bytes from the host (after the ``+++`` detector)."""

    def can_accept(self) -> bool:
        """False while earlier host bytes still wait for socket space."""

    def read(self, limit: int, now: float) -> bytes:
        """Up to about ``limit`` octets for the UART (escaped as the mode says)."""

    @property
    def ended(self) -> bool:
        """The link is over: the channel returns to COMMAND mode (after what :meth:`read` gave)."""

    def detach(self, now: float) -> None:
        """The channel leaves data mode (``+++``, unmap, close)."""


class Channel:
    """The state of one UART (see the module docstring)."""

    def __init__(self, uart: int, config: ModuleConfig) -> None:
        self.uart = uart
        self.name = f"UART{uart}"
        self.config = config
        self.framing = Framing()
        self.mode = Mode.COMMAND
        self.assembler = LineAssembler(config.max_line)
        self.out = bytearray()
        self.held_urcs: deque[str] = deque()
        self.urcs_dropped = 0
        #: A command waits for its final result; what follows it on the line runs afterwards.
        self.busy = False
        self.remaining: list[Command] = []
        #: Input that arrived while busy, handled when the command completes.
        self.held_input = bytearray()
        self.input_dropped = 0
        #: Inside a command line's execution: unsolicited lines wait for its final result.
        self.executing = False
        self.queued_lines: deque[Line] = deque()
        self.last_line: str | None = None
        self.data: DataLink | None = None
        self.data_key: tuple[int, int] | None = None  # (protocol, index) mapped in data mode
        self.detector: EscapeDetector | None = None
        self.ppp: PppBinding | None = None
        self.ppp_bearer: int | None = None
        #: After switching mode on a CR, an LF right behind it still belongs to the command line.
        self.skip_lf_until: float | None = None

    # ------------------------------------------------------------------ output
    def info(self, text: str) -> None:
        """An information line of the running command."""
        self.out += self.framing.info(text)

    def urc(self, text: str) -> None:
        """An unsolicited line: now if the channel shows AT output, else held (bounded, in order)."""
        if len(self.held_urcs) >= self.config.max_held_urcs:
            self.held_urcs.popleft()
            self.urcs_dropped += 1
        self.held_urcs.append(text)
        self.release_urcs()

    def release_urcs(self) -> None:
        """Print the held unsolicited lines (after a final result, back in AT mode)."""
        if self.mode is not Mode.COMMAND or self.busy or self.executing:
            return
        while self.held_urcs:
            self.out += self.framing.urc(self.held_urcs.popleft())

    def take_output(self, limit: int) -> bytes:
        """Up to ``limit`` octets for the UART."""
        if not self.out:
            return b""
        chunk = bytes(self.out[:limit])
        del self.out[:limit]
        return chunk

    @property
    def output_room(self) -> int:
        """How much more socket data the channel may take before the UART drains it."""
        return max(0, self.config.uart_buffer - len(self.out))

    # ------------------------------------------------------------------ modes
    def enter_data(self, key: tuple[int, int], link: DataLink, now: float) -> None:
        """Map the UART to a socket (``CONNECT`` is written by the caller first)."""
        self.mode = Mode.DATA
        self.data = link
        self.data_key = key
        self.detector = EscapeDetector(
            lead_guard=max(1.0, self.config.escape_lead_min),
            lead_min=self.config.escape_lead_min,
            inter_char=self.config.escape_inter_char,
            trail_guard=self.config.escape_trail_guard,
            start=now,
        )
        self.assembler.reset()

    def leave_data(self, now: float) -> bytes:
        """Back to COMMAND mode; returns ``+`` the escape detector still held (they are data)."""
        held = self.detector.flush_held() if self.detector is not None else b""
        link = self.data
        self.mode = Mode.COMMAND
        self.data = None
        self.data_key = None
        self.detector = None
        if link is not None:
            link.detach(now)
        return held

    def enter_ppp(self, bearer: int, binding: PppBinding) -> None:
        """The UART carries a PPP session from now on."""
        self.mode = Mode.PPP
        self.ppp = binding
        self.ppp_bearer = bearer
        self.assembler.reset()

    def leave_ppp(self) -> None:
        """PPP is over: AT mode again."""
        self.mode = Mode.COMMAND
        self.ppp = None
        self.ppp_bearer = None
        self.assembler.reset()

    def reset_settings(self) -> None:
        """``ATZ`` / ``AT&F``: factory V.25ter settings."""
        self.framing = Framing(cmee=0)
