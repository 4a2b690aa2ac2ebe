"""The 3GPP TS 27.010 multiplexer, basic option, as a sans-I/O state machine.

One :class:`Multiplexer` runs one end of a multiplexed serial line, as the *initiator* (the
side that sent ``AT+CMUX`` and opens DLCI 0, e.g. a modem driver) or the *responder* (the
module or modem that answered it).  The caller feeds line octets to :meth:`~Multiplexer.receive`,
drains framed octets with :meth:`~Multiplexer.bytes_to_send`, and calls
:meth:`~Multiplexer.on_timer` at :meth:`~Multiplexer.next_deadline`; every entry point takes
``now`` and nothing here reads a clock.  Frames come from :mod:`wipstack.wire.cmux`.

Design:

* **Links.**  Each DLCI is a small state machine (``CLOSED``, ``WAITING`` for DLCI 0,
  ``OPENING``, ``OPEN``, ``CLOSING``, §5.4.1, §5.4.2).  SABM and DISC are retransmitted on T1
  up to N2 times (§5.7.1, §5.7.3); the link then fails with reason ``"timeout"``.  DLCI 0 up
  is :class:`MuxStarted`; the end of the multiplexer (close-down either way, DISC 0, a
  refused or timed-out DLCI 0) is :class:`MuxClosed` after a :class:`ChannelClosed` for every
  DLCI that was not closed.  Reasons are ``"peer"``, ``"local"``, ``"refused"`` (DM to our
  SABM) and ``"timeout"``.  A closed multiplexer stays closed and ignores the line (the line
  is back in AT-command mode); output queued before the end can still be drained.
* **C/R** (§5.2.1.2, Table 1): our commands carry C/R=1 as initiator and 0 as responder,
  responses the reverse; UIH frames go out as commands.  SABM and DISC must arrive as
  commands (Linux n_gsm drops them otherwise, so do we); UA, DM and UIH are accepted with
  either C/R because peers differ there.  DLCIs 62 and 63 are not used (Linux stops at 61;
  an address 0xF9 could not even be received).
* **Control channel** (UIH on DLCI 0, §5.4.6).  Each message we send goes in a UIH frame of
  its own (Linux reads only the first message of a frame).  Commands we answer: MSC (echo,
  :class:`ModemStatusChanged`, its FC bit as :class:`FlowControlChanged`), PN (echo with N1
  clamped to what we accept, frame type UIH and convergence layer 1, the only ones we do),
  Test (echo), FCon/FCoff (whole multiplexer), CLD (answer, then close); any other command
  gets NSC carrying its type octet (§5.4.6.3.8).  Our own commands (CLD, MSC) wait for their
  response on T2 with N2 retransmissions; an MSC to a DLCI replaces one still unanswered.
  Unsolicited responses are counted and ignored.  After a DLCI opens, either side sends its
  MSC (RTC, RTR, DV set): the initiator as §5.4.6.3.7 describes, the responder so that a
  Linux host sees carrier (DCD) on its ``/dev/gsmtty*`` without ``CLOCAL``.
* **Output.**  Control frames (SABM, UA, DM, DISC, everything on DLCI 0) queue ahead of data
  and never wait; data frames (UIH of at most N1 octets, §5.7.2) queue per DLCI and move to
  the line round-robin only while the DLCI may send (not stopped by FCoff or by the peer's
  MSC FC bit, §5.4.6.3.5-§5.4.6.3.7).  Frames enter the line buffer whole and
  :meth:`~Multiplexer.bytes_to_send` hands out any prefix of it.  Answers provoked by the
  peer stop queueing once :data:`MAX_CONTROL_BACKLOG` octets wait (counted QUEUE_FULL), so
  a peer that floods us with Test commands while never reading cannot grow our memory.
* **Input** goes through one :class:`~wipstack.wire.cmux.CmuxDeframer` (at most one frame
  buffered); information over ``max(max_receive, n1)`` octets is dropped and counted there.
  Every drop of the deframer and of the state machine lands in :attr:`Multiplexer.counters`.

Not implemented: error recovery mode, convergence layers 2-4, power saving (PSC) and the
wake-up procedure (T3), RPN/RLS/SNC (answered with NSC), sending PN or Test commands.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Container
from dataclasses import dataclass, field

from wipstack.cellular.cmux_types import (
    ChannelClosed,
    ChannelOpened,
    DataReceived,
    FlowControlChanged,
    ModemStatusChanged,
    MuxClosed,
    MuxEvent,
    MuxParameters,
    MuxRole,
    MuxStarted,
)
from wipstack.errors import DropCounters, DropReason, MalformedPacket
from wipstack.wire.cmux import (
    DV,
    FC,
    RTC,
    RTR,
    CmuxDeframer,
    CmuxFrame,
    ControlMessage,
    ControlType,
    FrameType,
    ModemStatus,
    msc,
    parse_control_messages,
)

__all__ = [
    "DEFAULT_PARAMETERS",
    "MAX_CONTROL_BACKLOG",
    "MAX_DLCI",
    "ChannelClosed",
    "ChannelOpened",
    "DataReceived",
    "FlowControlChanged",
    "LinkState",
    "ModemStatus",
    "ModemStatusChanged",
    "Multiplexer",
    "MuxClosed",
    "MuxEvent",
    "MuxParameters",
    "MuxRole",
    "MuxStarted",
]

#: 27.007 §5.7 defaults (N1 31, T1 100 ms, N2 3, T2 300 ms).
DEFAULT_PARAMETERS = MuxParameters()
#: The highest DLCI a channel may use (0 is the control channel; 62 and 63 stay unused, as in Linux).
MAX_DLCI = 61
#: Octets of peer-provoked control answers that may wait for the line before more are dropped.
MAX_CONTROL_BACKLOG = 64 * 1024
#: The V.24 signals we advertise on an open DLCI: ready to communicate and receive, data valid.
OPEN_SIGNALS = RTC | RTR | DV
#: Octets in a PN value (§5.4.6.3.1): DLCI, I/CL, priority, T1, N1 (2, little-endian), N2, k.
PN_LENGTH = 8


# --- internal state ----------------------------------------------------------------------


class LinkState(enum.Enum):
    """Where one DLCI is (§5.4.1 establishment, §5.4.2 release)."""

    CLOSED = "closed"
    WAITING = "waiting for DLCI 0"  # open_channel before MuxStarted: SABM goes out then
    OPENING = "opening"  # SABM sent, T1 running
    OPEN = "open"
    CLOSING = "closing"  # DISC sent, T1 running


@dataclass(slots=True)
class _Link:
    state: LinkState = LinkState.CLOSED
    deadline: float | None = None  # T1 of the SABM or DISC in flight
    retries: int = 0
    negotiated_n1: int | None = None  # from a PN command (§5.4.6.3.1)
    peer_stopped: bool = False  # the peer's MSC FC bit
    frames: deque[tuple[bytes, int]] = field(default_factory=deque)  # (frame, data octets)
    queued: int = 0  # data octets in frames
    framed: int = 0  # line octets in frames


@dataclass(slots=True)
class _Command:
    message: ControlMessage
    deadline: float
    retries: int


class Multiplexer:
    """One end of a 27.010 basic option multiplexer (see the module docstring)."""

    def __init__(
        self,
        role: MuxRole,
        params: MuxParameters = DEFAULT_PARAMETERS,
        *,
        accept_dlcis: Container[int] = range(1, 64),
    ) -> None:
        self.role = role
        self.params = params
        self.accept_dlcis = accept_dlcis
        self._deframer = CmuxDeframer(params.receive_limit)
        #: Drops of the deframer and of the state machine, by reason.
        self.counters: DropCounters = self._deframer.drops
        self._command_cr = role is MuxRole.INITIATOR  # §5.2.1.2 Table 1
        self._links: dict[int, _Link] = {0: _Link()}
        self._commands: list[_Command] = []  # our control commands awaiting their response
        self._control: deque[bytes] = deque()  # control frames, ahead of all data
        self._control_octets = 0
        self._line = bytearray()  # whole frames handed out by bytes_to_send
        self._round_robin = 0
        self._mux_stopped = False  # the peer sent FCoff
        self._local_stopped: set[int] = set()  # DLCIs we asked the peer to stop (MSC FC)
        self._closing_down = False  # our CLD is outstanding
        self._closed = False
        self._pending: list[MuxEvent] = []  # events of calls that cannot return them
        self._pending_since: float | None = None

    # ------------------------------------------------------------------ state
    @property
    def started(self) -> bool:
        """DLCI 0 is established and the multiplexer has not closed."""
        return not self._closed and self._links[0].state is LinkState.OPEN

    @property
    def closed(self) -> bool:
        """The multiplexer is over (after :class:`MuxClosed`)."""
        return self._closed

    def is_open(self, dlci: int) -> bool:
        """Whether ``dlci`` is established (DLCI 0: the multiplexer is started)."""
        link = self._links.get(dlci)
        return not self._closed and link is not None and link.state is LinkState.OPEN

    @property
    def open_dlcis(self) -> frozenset[int]:
        """The established channels (DLCI 0 excluded)."""
        if self._closed:
            return frozenset()
        return frozenset(d for d, link in self._links.items() if d and link.state is LinkState.OPEN)

    def can_send(self, dlci: int) -> bool:
        """Open, not closing down, and not stopped by the peer (FCoff or its MSC FC bit)."""
        link = self._links.get(dlci)
        return (
            dlci >= 1
            and link is not None
            and link.state is LinkState.OPEN
            and not link.peer_stopped
            and not self._mux_stopped
            and not self._closing_down
            and not self._closed
        )

    def queued(self, dlci: int) -> int:
        """Data octets of ``dlci`` not yet given to :meth:`bytes_to_send`."""
        link = self._links.get(dlci)
        return 0 if link is None else link.queued

    @property
    def buffered(self) -> int:
        """Line octets held waiting for the rest of a frame (at most one frame)."""
        return self._deframer.buffered

    @property
    def output_pending(self) -> int:
        """Octets :meth:`bytes_to_send` could hand out now (flow-stopped data excluded)."""
        waiting = sum(link.framed for dlci, link in self._links.items() if link.frames and self.can_send(dlci))
        return len(self._line) + self._control_octets + waiting

    # ------------------------------------------------------------------ control
    def start(self, now: float) -> None:
        """Initiator: open DLCI 0 (SABM, T1/N2 retries); MuxStarted or MuxClosed follows."""
        if self.role is not MuxRole.INITIATOR:
            raise ValueError("only the initiator starts the multiplexer (§5.4.1)")
        if self._closed:
            raise ValueError("the multiplexer is closed")
        if self._links[0].state is LinkState.CLOSED:
            self._send_link_command(0, FrameType.SABM, LinkState.OPENING, now)

    def open_channel(self, dlci: int, now: float) -> None:
        """Open ``dlci`` (SABM); before DLCI 0 is up the SABM waits for it. ChannelOpened/Closed follows."""
        link = self._channel_link(dlci)
        if self._closed or self._closing_down:
            raise ValueError("the multiplexer is closed or closing down")
        if link.state is not LinkState.CLOSED:
            return
        if self.started:
            self._send_link_command(dlci, FrameType.SABM, LinkState.OPENING, now)
        elif self._links[0].state is LinkState.OPENING:
            link.state = LinkState.WAITING
        else:
            raise ValueError("DLCI 0 is not up: call start() first")

    def close_channel(self, dlci: int, now: float) -> None:
        """Close ``dlci`` (DISC; DLCI 0 ends the multiplexer). Data not yet handed out is discarded."""
        link = self._channel_link(dlci) if dlci != 0 else self._links[0]
        if self._closed or link.state in (LinkState.CLOSED, LinkState.CLOSING):
            return
        if link.state is LinkState.WAITING:
            link.state = LinkState.CLOSED
            self._defer(ChannelClosed(dlci, "local"), now)
            return
        self._discard_data(link)
        self._send_link_command(dlci, FrameType.DISC, LinkState.CLOSING, now)

    def close_down(self, now: float) -> None:
        """Send CLD (§5.4.6.3.3); its response, or T2 x N2 without one, brings MuxClosed."""
        if self._closed or self._closing_down:
            return
        if not self.started:
            self._close_all("local", self._pending)
            self._pending_since = now
            return
        self._closing_down = True
        for link in self._links.values():
            self._discard_data(link)
        self._send_command(ControlMessage(ControlType.CLD, True), now)

    def send(self, dlci: int, data: bytes) -> None:
        """Queue ``data`` on ``dlci`` in UIH frames of at most N1 information octets."""
        link = self._links.get(dlci)
        if dlci < 1 or link is None or link.state is not LinkState.OPEN or self._closed or self._closing_down:
            raise ValueError(f"DLCI {dlci} is not open")
        size = self._send_limit(link)
        view = memoryview(bytes(data))
        for start in range(0, len(view), size):
            chunk = bytes(view[start : start + size])
            frame = CmuxFrame(dlci, FrameType.UIH, False, self._command_cr, chunk).emit()
            link.frames.append((frame, len(chunk)))
            link.queued += len(chunk)
            link.framed += len(frame)

    def set_flow(self, dlci: int, stopped: bool, now: float) -> None:
        """Ask the peer to stop or resume sending on ``dlci`` (MSC with the FC bit, §5.4.6.3.7)."""
        if not self.is_open(dlci) or dlci == 0:
            raise ValueError(f"DLCI {dlci} is not open")
        if stopped == (dlci in self._local_stopped):
            return
        if stopped:
            self._local_stopped.add(dlci)
        else:
            self._local_stopped.discard(dlci)
        self._send_modem_status(dlci, now)

    # ------------------------------------------------------------------ line side
    def bytes_to_send(self, limit: int | None = None) -> bytes:
        """Framed octets for the line, at most ``limit``; a frame may straddle two calls."""
        line = self._line
        while self._control:
            line += self._control.popleft()
        self._control_octets = 0
        self._fill_data(limit)
        size = len(line) if limit is None else max(0, min(limit, len(line)))
        out = bytes(line[:size])
        del line[:size]
        return out

    def receive(self, data: bytes, now: float) -> list[MuxEvent]:
        """Consume octets from the line (any split); return what happened."""
        events = self._take_pending()
        if self._closed:
            return events
        for frame in self._deframer.feed(data):
            if self._closed:
                self.counters.count(DropReason.NOT_ALLOWED_IN_STATE)
                continue
            self._on_frame(frame, now, events)
        return events

    def next_deadline(self) -> float | None:
        """When :meth:`on_timer` must run next (T1, T2, or events waiting), or None."""
        deadlines = [link.deadline for link in self._links.values() if link.deadline is not None]
        deadlines += [command.deadline for command in self._commands]
        if self._pending_since is not None:
            deadlines.append(self._pending_since)
        return min(deadlines, default=None)

    def on_timer(self, now: float) -> list[MuxEvent]:
        """Retransmit or give up whatever timed out at ``now``."""
        events = self._take_pending()
        for dlci in sorted(self._links):
            link = self._links[dlci]
            if not self._closed and link.deadline is not None and link.deadline <= now:
                self._on_link_timeout(dlci, link, now, events)
        for command in list(self._commands):
            if not self._closed and command in self._commands and command.deadline <= now:
                self._on_command_timeout(command, now, events)
        return events

    # ------------------------------------------------------------------ frames in
    def _on_frame(self, frame: CmuxFrame, now: float, events: list[MuxEvent]) -> None:
        if frame.dlci > MAX_DLCI:
            self.counters.count(DropReason.BAD_VALUE)
            return
        peer_command = frame.command_response != self._command_cr  # §5.2.1.2 Table 1
        if frame.control in (FrameType.SABM, FrameType.DISC):
            if not peer_command:
                self.counters.count(DropReason.BAD_VALUE)  # SABM/DISC are always commands
            elif frame.control is FrameType.SABM:
                self._on_sabm(frame, now, events)
            else:
                self._on_disc(frame, events)
        elif frame.control is FrameType.UA:
            self._on_ua(frame.dlci, now, events)
        elif frame.control is FrameType.DM:
            self._on_dm(frame.dlci, events)
        elif frame.dlci == 0:
            self._on_control_frame(frame, now, events)
        else:
            self._on_data(frame, events)

    def _on_sabm(self, frame: CmuxFrame, now: float, events: list[MuxEvent]) -> None:
        dlci, link = frame.dlci, self._link(frame.dlci)
        if dlci == 0:
            if link.state is LinkState.CLOSING:
                self._respond(dlci, FrameType.DM, frame.poll_final)
                return
            self._respond(dlci, FrameType.UA, frame.poll_final)
            if link.state is not LinkState.OPEN:
                self._mux_started(now, events)
            return
        if link.state is LinkState.OPEN:
            self._respond(dlci, FrameType.UA, frame.poll_final)  # UA lost: answer again, no new event
        elif link.state is LinkState.OPENING or (link.state is not LinkState.CLOSING and self._accepts(dlci)):
            self._respond(dlci, FrameType.UA, frame.poll_final)
            self._channel_opened(dlci, link, now, events)
        else:
            self._respond(dlci, FrameType.DM, frame.poll_final)  # §5.4.1: not accepted

    def _on_disc(self, frame: CmuxFrame, events: list[MuxEvent]) -> None:
        dlci, link = frame.dlci, self._link(frame.dlci)
        if link.state in (LinkState.CLOSED, LinkState.WAITING):
            self._respond(dlci, FrameType.DM, frame.poll_final)  # §5.4.2: already disconnected
            return
        self._respond(dlci, FrameType.UA, frame.poll_final)
        if dlci == 0:
            self._close_all("peer", events)
        else:
            self._channel_closed(dlci, link, "local" if link.state is LinkState.CLOSING else "peer", events)

    def _on_ua(self, dlci: int, now: float, events: list[MuxEvent]) -> None:
        link = self._link(dlci)
        if link.state is LinkState.OPENING:
            if dlci == 0:
                self._mux_started(now, events)
            else:
                self._channel_opened(dlci, link, now, events)
        elif link.state is LinkState.CLOSING:
            self._link_gone(dlci, link, "local", events)
        else:
            self.counters.count(DropReason.UNEXPECTED_ID)  # no SABM or DISC of ours in flight

    def _on_dm(self, dlci: int, events: list[MuxEvent]) -> None:
        link = self._link(dlci)
        if link.state is LinkState.OPENING:
            self._link_gone(dlci, link, "refused", events)
        elif link.state is LinkState.CLOSING:
            self._link_gone(dlci, link, "local", events)
        elif link.state is LinkState.OPEN:
            self._link_gone(dlci, link, "peer", events)  # DM: the peer says the DLCI is disconnected
        else:
            self.counters.count(DropReason.UNEXPECTED_ID)

    def _on_data(self, frame: CmuxFrame, events: list[MuxEvent]) -> None:
        link = self._links.get(frame.dlci)
        if link is not None and link.state is LinkState.OPEN:
            if frame.information:
                events.append(DataReceived(frame.dlci, frame.information))
            return
        self.counters.count(DropReason.NOT_ALLOWED_IN_STATE)
        if self.started and (link is None or link.state is LinkState.CLOSED):
            self._respond(frame.dlci, FrameType.DM, frame.poll_final)  # tell the peer it is not connected

    # ------------------------------------------------------------------ control channel
    def _on_control_frame(self, frame: CmuxFrame, now: float, events: list[MuxEvent]) -> None:
        if self._links[0].state is not LinkState.OPEN:
            self.counters.count(DropReason.NOT_ALLOWED_IN_STATE)
            return
        try:
            messages = parse_control_messages(frame.information)
        except MalformedPacket as exc:
            self.counters.count(exc.reason)
            return
        for message in messages:
            if self._closed:
                return
            if message.command:
                self._on_command(message, now, events)
            else:
                self._on_response(message, events)

    def _on_command(self, message: ControlMessage, now: float, events: list[MuxEvent]) -> None:
        kind = message.type
        if kind == ControlType.MSC:
            self._on_msc(message, events)
        elif kind == ControlType.PN:
            self._on_pn(message)
        elif kind == ControlType.TEST:
            self._answer(ControlMessage(kind, False, message.value))  # §5.4.6.3.4: echo
        elif kind in (ControlType.FCON, ControlType.FCOFF):
            self._answer(ControlMessage(kind, False))
            stopped = kind == ControlType.FCOFF
            if stopped != self._mux_stopped:
                self._mux_stopped = stopped
                events.append(FlowControlChanged(None, stopped))
        elif kind == ControlType.CLD:
            self._answer(ControlMessage(kind, False))  # §5.4.6.3.3: respond, then close
            self._close_all("peer", events)
        else:
            self.counters.count(DropReason.BAD_CODE)
            self._answer(ControlMessage(ControlType.NSC, False, bytes((message.type_octet,))))  # §5.4.6.3.8

    def _on_msc(self, message: ControlMessage, events: list[MuxEvent]) -> None:
        try:
            status = ModemStatus.parse(message.value)
        except MalformedPacket as exc:
            self.counters.count(exc.reason)
            return
        if not 1 <= status.dlci <= MAX_DLCI:
            self.counters.count(DropReason.BAD_VALUE)
            return
        # Answered even for a DLCI not yet open: Linux may send it before our UA arrives.
        self._answer(ControlMessage(ControlType.MSC, False, message.value))
        events.append(ModemStatusChanged(status.dlci, status))
        link = self._links.get(status.dlci)
        if link is not None and link.state is LinkState.OPEN and status.fc != link.peer_stopped:
            link.peer_stopped = status.fc
            events.append(FlowControlChanged(status.dlci, status.fc))

    def _on_pn(self, message: ControlMessage) -> None:
        value = message.value
        if len(value) != PN_LENGTH:
            self.counters.count(DropReason.BAD_LENGTH)
            return
        dlci = value[0] & 0x3F
        if not 1 <= dlci <= MAX_DLCI:
            self.counters.count(DropReason.BAD_VALUE)
            return
        requested = value[4] | (value[5] << 8)
        n1 = max(1, min(requested, self.params.receive_limit))
        self._link(dlci).negotiated_n1 = n1
        # §5.4.6.3.1: our answer keeps UIH frames (I=0) and convergence layer 1 (CL=0), the only ones we do
        reply = bytes((dlci, 0x00, value[2], value[3], n1 & 0xFF, n1 >> 8, value[6], value[7]))
        self._answer(ControlMessage(ControlType.PN, False, reply))

    def _on_response(self, message: ControlMessage, events: list[MuxEvent]) -> None:
        command = self._match_response(message)
        if command is None:
            self.counters.count(DropReason.UNEXPECTED_ID)
            return
        self._commands.remove(command)
        if command.message.type == ControlType.CLD:
            self._close_all("local", events)

    def _match_response(self, message: ControlMessage) -> _Command | None:
        """The outstanding command ``message`` answers (an NSC answers the type it carries)."""
        if message.type == ControlType.NSC and message.value:
            refused = message.value[0]
            # §5.4.6.3.8 carries the type octet; Linux n_gsm sends it shifted right by one
            for refused_type in (refused >> 2, refused >> 1):
                for command in self._commands:
                    if command.message.type == refused_type:
                        return command
            return None
        for command in self._commands:
            if command.message.type != message.type:
                continue
            if message.type != ControlType.MSC or command.message.value[:1] == message.value[:1]:
                return command
        return None

    # ------------------------------------------------------------------ timers
    def _on_link_timeout(self, dlci: int, link: _Link, now: float, events: list[MuxEvent]) -> None:
        if link.retries > 0:
            link.retries -= 1  # §5.7.3: N2 retransmissions
            frame_type = FrameType.SABM if link.state is LinkState.OPENING else FrameType.DISC
            self._queue_control(CmuxFrame(dlci, frame_type, True, self._command_cr).emit())
            link.deadline = now + self.params.t1
        else:
            self._link_gone(dlci, link, "timeout", events)

    def _on_command_timeout(self, command: _Command, now: float, events: list[MuxEvent]) -> None:
        if command.retries > 0:
            command.retries -= 1
            self._queue_control(self._control_frame(command.message))
            command.deadline = now + self.params.t2
            return
        self._commands.remove(command)
        if command.message.type == ControlType.CLD:
            self._close_all("timeout", events)

    # ------------------------------------------------------------------ transitions
    def _mux_started(self, now: float, events: list[MuxEvent]) -> None:
        link = self._links[0]
        link.state, link.deadline = LinkState.OPEN, None
        events.append(MuxStarted())
        for dlci in sorted(self._links):
            if self._links[dlci].state is LinkState.WAITING:
                self._send_link_command(dlci, FrameType.SABM, LinkState.OPENING, now)

    def _channel_opened(self, dlci: int, link: _Link, now: float, events: list[MuxEvent]) -> None:
        link.state, link.deadline = LinkState.OPEN, None
        link.peer_stopped = False
        events.append(ChannelOpened(dlci))
        self._send_modem_status(dlci, now)

    def _channel_closed(self, dlci: int, link: _Link, reason: str, events: list[MuxEvent]) -> None:
        self._discard_data(link)
        link.state, link.deadline = LinkState.CLOSED, None
        link.peer_stopped = False
        link.negotiated_n1 = None
        self._local_stopped.discard(dlci)
        self._commands = [c for c in self._commands if not self._is_msc_for(c.message, dlci)]
        events.append(ChannelClosed(dlci, reason))

    def _link_gone(self, dlci: int, link: _Link, reason: str, events: list[MuxEvent]) -> None:
        """``dlci`` failed or finished closing; DLCI 0 takes the whole multiplexer with it."""
        if dlci == 0:
            self._close_all(reason, events)
        else:
            self._channel_closed(dlci, link, reason, events)

    def _close_all(self, reason: str, events: list[MuxEvent]) -> None:
        for dlci in sorted(self._links):
            link = self._links[dlci]
            if dlci and link.state is not LinkState.CLOSED:
                self._channel_closed(dlci, link, reason, events)
        self._links[0] = _Link()
        self._commands.clear()
        self._closing_down = False
        self._closed = True
        events.append(MuxClosed(reason))

    # ------------------------------------------------------------------ frames out
    def _send_link_command(self, dlci: int, frame_type: FrameType, state: LinkState, now: float) -> None:
        link = self._link(dlci)
        link.state = state
        link.retries = self.params.n2
        link.deadline = now + self.params.t1
        self._queue_control(CmuxFrame(dlci, frame_type, True, self._command_cr).emit())

    def _respond(self, dlci: int, frame_type: FrameType, final: bool) -> None:
        frame = CmuxFrame(dlci, frame_type, final, not self._command_cr).emit()
        self._queue_control(frame, provoked=True)

    def _answer(self, message: ControlMessage) -> None:
        self._queue_control(self._control_frame(message), provoked=True)

    def _send_command(self, message: ControlMessage, now: float) -> None:
        self._commands.append(_Command(message, now + self.params.t2, self.params.n2))
        self._queue_control(self._control_frame(message))

    def _send_modem_status(self, dlci: int, now: float) -> None:
        signals = OPEN_SIGNALS | (FC if dlci in self._local_stopped else 0)
        self._commands = [c for c in self._commands if not self._is_msc_for(c.message, dlci)]  # newest wins
        self._send_command(msc(dlci, signals, True), now)

    def _control_frame(self, message: ControlMessage) -> bytes:
        return CmuxFrame(0, FrameType.UIH, False, self._command_cr, message.emit()).emit()

    def _queue_control(self, frame: bytes, *, provoked: bool = False) -> None:
        if provoked and len(self._line) + self._control_octets + len(frame) > MAX_CONTROL_BACKLOG:
            self.counters.count(DropReason.QUEUE_FULL)  # the peer floods us and does not read
            return
        self._control.append(frame)
        self._control_octets += len(frame)

    def _fill_data(self, limit: int | None) -> None:
        """Move whole data frames of the DLCIs that may send to the line, round-robin."""
        ready = [dlci for dlci, link in sorted(self._links.items()) if link.frames and self.can_send(dlci)]
        if not ready:
            return
        start = self._round_robin % len(ready)
        ready = ready[start:] + ready[:start]
        while ready and (limit is None or len(self._line) < limit):
            for dlci in list(ready):
                link = self._links[dlci]
                frame, size = link.frames.popleft()
                link.queued -= size
                link.framed -= len(frame)
                self._line += frame
                if not link.frames:
                    ready.remove(dlci)
                if limit is not None and len(self._line) >= limit:
                    break
        self._round_robin += 1

    # ------------------------------------------------------------------ helpers
    def _link(self, dlci: int) -> _Link:
        link = self._links.get(dlci)
        if link is None:
            link = self._links[dlci] = _Link()
        return link

    def _channel_link(self, dlci: int) -> _Link:
        if not 1 <= dlci <= MAX_DLCI:
            raise ValueError(f"DLCI {dlci} outside 1..{MAX_DLCI}")
        return self._link(dlci)

    def _accepts(self, dlci: int) -> bool:
        """Whether a SABM from the peer may open ``dlci`` (§5.4.1)."""
        return self.started and not self._closing_down and dlci in self.accept_dlcis

    def _send_limit(self, link: _Link) -> int:
        if link.negotiated_n1 is None:
            return self.params.send_limit
        return min(self.params.send_limit, link.negotiated_n1)

    def _discard_data(self, link: _Link) -> None:
        link.frames.clear()
        link.queued = link.framed = 0

    @staticmethod
    def _is_msc_for(message: ControlMessage, dlci: int) -> bool:
        return message.type == ControlType.MSC and message.value[:1] == bytes(((dlci << 2) | 0x03,))

    def _defer(self, event: MuxEvent, now: float) -> None:
        self._pending.append(event)
        if self._pending_since is None:
            self._pending_since = now

    def _take_pending(self) -> list[MuxEvent]:
        events, self._pending, self._pending_since = self._pending, [], None
        return events
