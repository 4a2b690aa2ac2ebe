"""``AT+CMUX``: 3GPP TS 27.010 multiplexing on a module UART (the module is the responder).

After ``AT+CMUX=0`` answers ``OK`` the UART carries basic-option frames and has four
*virtual UARTs*, each a :class:`~at_frontend.channel.Channel` with its own AT parser, V.25ter
settings, data mode and PPP mode, reached through DLCIs 1 to 4 once the host (Linux's n_gsm,
an embedded mux driver) has established DLCI 0 and opened them.  Virtual UART ``d`` over UART
``u`` has the channel id ``10 * u + d``, which is also its ``AT+WIPBR`` bearer id (11-14 over
UART1, 21-24 over UART2, as in WIPSoft).  The virtual UARTs exist for as long as the
multiplexer does, so a bearer can be opened and started (a PPP server waiting for its
client) on a DLCI the host opens only later, as pppd opening ``/dev/gsmtty2`` does; what a
virtual UART says while its DLCI is closed is lost, like a line nobody listens to.  Closing a
DLCI takes a started bearer on it down (816); the close-down (``CLD``) or a ``DISC`` of DLCI 0
removes the virtual UARTs (their bearers close) and returns the UART to AT commands.

Flow control: the physical UART is always read, so control frames (the host's own flow
control among them) are never stuck behind data.  A virtual UART that cannot take more input
(its socket is full) asks the host to pause its DLCI with an MSC flow-control bit (27.010
§5.4.6.3.7); what the host sent before it noticed waits in a per-DLCI backlog of at most
:data:`MAX_BACKLOG` octets (beyond that a host ignoring the flow control loses data, counted
in :attr:`MuxedUart.dropped`).  Output is framed only while the host has not stopped the DLCI
(FCoff or its MSC FC bit) and only as much as the line takes, so the rest waits in the
channel and behind it in the socket.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from at_frontend.channel import Channel
from at_frontend.parser import Command, CommandKind
from at_frontend.registry import Outcome, command
from at_frontend.responses import CmeError, CommandError
from wipstack.cellular.cmux import (
    ChannelClosed,
    ChannelOpened,
    DataReceived,
    FlowControlChanged,
    Multiplexer,
    MuxClosed,
    MuxEvent,
    MuxParameters,
    MuxRole,
)

if TYPE_CHECKING:
    from at_frontend.module import Module

#: DLCIs that are virtual UARTs (WIPSoft has four per physical UART).
VIRTUAL_PORTS = (1, 2, 3, 4)
#: ``AT+CMUX`` ranges (27.007 §5.7): N1 1..32768 octets, T1 1..255 (10 ms), N2 0..100, T2 2..255 (10 ms).
MAX_N1 = 32768
#: The longest information field a one-octet length field can give (27.010 §5.2.1.5).
MAX_ONE_OCTET_LENGTH = 127
#: Octets held for a virtual UART that asked its host to stop (MSC FC) while frames were in flight.
MAX_BACKLOG = 1 << 16


def virtual_id(uart: int, dlci: int) -> int:
    """The channel (and bearer) id of DLCI ``dlci`` over UART ``uart``."""
    return 10 * uart + dlci


class MuxedUart:
    """A physical UART in multiplexer mode: the responder and its virtual UARTs."""

    def __init__(self, module: Module, channel: Channel, params: MuxParameters) -> None:
        self.module = module
        self.channel = channel
        self.params = params
        self.mux = Multiplexer(MuxRole.RESPONDER, params, accept_dlcis=VIRTUAL_PORTS)
        self.ports: dict[int, Channel] = {}  # dlci -> virtual UART
        for dlci in VIRTUAL_PORTS:
            port = Channel(virtual_id(channel.uart, dlci), module.config)
            port.name = f"{channel.name} DLCI{dlci}"
            self.ports[dlci] = port
            module.channels[port.uart] = port
        self.paused: set[int] = set()  # DLCIs we asked the host to stop (MSC FC)
        self.backlog: dict[int, bytearray] = {dlci: bytearray() for dlci in VIRTUAL_PORTS}
        self.dropped = 0  # octets lost because a host kept sending on a stopped DLCI
        self.frames_in = 0

    # ------------------------------------------------------------------ line side
    def receive(self, data: bytes, now: float) -> None:
        self._handle(self.mux.receive(data, now), now)

    def wants_input(self) -> bool:
        """Always: per-DLCI flow control and bounded backlogs keep the line readable."""
        return True

    def bytes_to_send(self, limit: int, now: float) -> bytes:
        window = max(self.params.n1 * 4, 256)  # data framed ahead per DLCI
        self._drain_backlogs(now)
        for dlci, port in self.ports.items():
            if not self.mux.is_open(dlci):
                port.out.clear()  # nobody listens on a closed DLCI
                continue
            self.module.fill_from_socket(port, now)
            while port.out and self.mux.can_send(dlci) and self.mux.queued(dlci) < window:
                self.mux.send(dlci, port.take_output(window - self.mux.queued(dlci)))
        self._update_flow(now)
        return self.mux.bytes_to_send(limit)

    def next_deadline(self) -> float | None:
        return self.mux.next_deadline()

    def on_timer(self, now: float) -> None:
        deadline = self.mux.next_deadline()
        if deadline is not None and deadline <= now:
            self._handle(self.mux.on_timer(now), now)

    # ------------------------------------------------------------------ events
    def _handle(self, events: list[MuxEvent], now: float) -> None:
        for event in events:
            if isinstance(event, ChannelOpened):
                self.ports[event.dlci].out.clear()  # a fresh DLCI starts with a quiet line
            elif isinstance(event, DataReceived):
                port = self.ports.get(event.dlci)
                if port is not None:
                    self.frames_in += 1
                    self._input(event.dlci, port, event.data, now)
            elif isinstance(event, ChannelClosed):
                self._close_port(event.dlci, now)
            elif isinstance(event, MuxClosed):
                self.module.end_mux(self.channel, now)
                return
            elif isinstance(event, FlowControlChanged):
                pass  # honoured through can_send() when framing output
        self.module.poll(now)

    def _input(self, dlci: int, port: Channel, data: bytes, now: float) -> None:
        backlog = self.backlog[dlci]
        if not backlog and self.module.wants_input(port.uart):
            self.module.deliver_input(port, data, now)
            return
        room = MAX_BACKLOG - len(backlog)
        if len(data) > room:
            self.dropped += len(data) - max(room, 0)
            data = data[: max(room, 0)]
        backlog += data

    def _drain_backlogs(self, now: float) -> None:
        for dlci, backlog in self.backlog.items():
            port = self.ports.get(dlci)
            while backlog and port is not None and self.module.wants_input(port.uart):
                chunk = bytes(backlog[:4096])
                del backlog[:4096]
                self.module.deliver_input(port, chunk, now)

    def _close_port(self, dlci: int, now: float) -> None:
        """The host closed the DLCI: a started bearer on it is lost, the virtual UART stays."""
        self.paused.discard(dlci)
        self.backlog[dlci].clear()
        port = self.ports.get(dlci)
        if port is not None:
            self.module.port_closed(port, now)

    def close_all(self, now: float) -> None:
        """The multiplexer is over: every virtual UART goes."""
        for dlci in list(self.ports):
            port = self.ports.pop(dlci)
            self.paused.discard(dlci)
            self.module.remove_channel(port, self.channel, now)

    def _update_flow(self, now: float) -> None:
        """Ask the host to pause a DLCI whose virtual UART cannot take input (MSC FC, §5.4.6.3.7)."""
        for dlci, port in self.ports.items():
            if not self.mux.is_open(dlci):
                continue
            stop = bool(self.backlog[dlci]) or not self.module.wants_input(port.uart)
            if stop != (dlci in self.paused):
                self.mux.set_flow(dlci, stop, now)
                if stop:
                    self.paused.add(dlci)
                else:
                    self.paused.discard(dlci)


def _timer_arg(cmd: Command, position: int, low: int, high: int, default: int) -> int:
    if len(cmd.args) <= position or cmd.args[position].is_empty:
        return default
    try:
        return cmd.args[position].as_int(low, high)
    except ValueError:
        raise CommandError(CmeError.OPERATION_NOT_SUPPORTED) from None


@command("+CMUX")
def cmux(module: Module, channel: Channel, cmd: Command) -> Outcome | None:
    """``AT+CMUX=<mode>[,<subset>[,<port_speed>[,<N1>[,<T1>[,<N2>[,<T2>[,<T3>[,<k>]]]]]]]]`` (27.007 §5.7)."""
    if cmd.kind is CommandKind.TEST:
        channel.info("+CMUX: (0),(0),(1-6),(1-32768),(1-255),(0-100),(2-255),(1-255),(1-7)")
        return None
    if cmd.kind is CommandKind.READ:
        muxed = module.muxes.get(channel.uart if channel.uart in module.physical_uarts else channel.uart // 10)
        if muxed is None:
            channel.info("+CMUX: ")  # not multiplexing (27.007 leaves the read form empty then)
        else:
            p = muxed.params
            channel.info(f"+CMUX: 0,0,5,{p.n1},{round(p.t1 * 100)},{p.n2},{round(p.t2 * 100)},10,2")
        return None
    if cmd.kind is not CommandKind.SET:
        raise CommandError(None)
    if channel.uart not in module.physical_uarts:
        raise CommandError(CmeError.OPERATION_NOT_ALLOWED, "AT+CMUX on a virtual UART")
    if not 1 <= len(cmd.args) <= 9:
        raise CommandError(CmeError.OPERATION_NOT_SUPPORTED)
    mode = _timer_arg(cmd, 0, 0, 1, 0)
    if mode != 0:
        raise CommandError(CmeError.OPERATION_NOT_SUPPORTED, "only the basic option (mode 0)")
    if _timer_arg(cmd, 1, 0, 2, 0) != 0:
        raise CommandError(CmeError.OPERATION_NOT_SUPPORTED, "only UIH frames (subset 0)")
    _timer_arg(cmd, 2, 1, 6, 5)  # port speed: the UART's speed is the driver's business
    n1 = _timer_arg(cmd, 3, 1, MAX_N1, 31)
    t1 = _timer_arg(cmd, 4, 1, 255, 10)
    n2 = _timer_arg(cmd, 5, 0, 100, 3)
    t2 = _timer_arg(cmd, 6, 2, 255, 30)
    _timer_arg(cmd, 7, 1, 255, 10)  # T3 (wake-up response timer): no power saving here
    _timer_arg(cmd, 8, 1, 7, 2)  # k: error-recovery window, not used by the basic option
    if t2 <= t1:
        raise CommandError(CmeError.OPERATION_NOT_SUPPORTED, "T2 must exceed T1 (27.010 §5.7.4)")
    # accept frames a little over N1 (Linux n_gsm sends up to its own MTU, 64 by default, whatever
    # AT+CMUX said) but not more: a corrupted length field is then dropped at once, not waited for
    params = MuxParameters(n1=n1, t1=t1 / 100, n2=n2, t2=t2 / 100, max_receive=max(n1, MAX_ONE_OCTET_LENGTH))
    module.start_mux(channel, params)
    return None
