"""The dialer's 27.010 multiplexer link: DLCI 1 for AT commands, DLCI 2 for the data call.

After ``AT+CMUX=0`` answered OK the serial line carries basic-option frames (27.007 §5.7,
27.010 §5.2.6).  :class:`MuxLink` owns an *initiator* :class:`~wipstack.cellular.cmux.Multiplexer`
and two :class:`~wipstack.cellular.dialer_at.AtPort`\\ s:

* it starts the multiplexer (SABM on DLCI 0, 27.010 §5.4.1) and, once DLCI 0 is up, opens
  DLCI 1 and DLCI 2 (SABM on each); the link is *ready* when both are open;
* it hands each DLCI's information to its port and reports the port's events to the dialer
  through ``sink`` -- the dialer cannot tell a DLCI from the bare serial line;
* it moves each port's output into the multiplexer as far as the DLCI's flow control lets it
  (27.010 §5.4.6.3.7 MSC FC bit, FCon/FCoff), so a stopped DLCI keeps its octets in the port;
  and when the dialer's consumer lets received payload pile up to half the buffer it stops
  the modem on DLCI 2 with our own MSC FC bit, resuming once :meth:`ModemDialer.take_data`
  drained it (without CMUX the dialer can only drop and count);
* if DLCI 0 closes (DISC, CLD, or the multiplexer gave up after N2 retries) the dialer is told
  through ``closed``; if only DLCI 2 closes while a call is up, the port reports it as a lost
  carrier.

The NO CARRIER rule of :mod:`.dialer_at` applies to DLCI 2 unchanged (the data call is PPP).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable

from wipstack.cellular.cmux import (
    ChannelClosed,
    ChannelOpened,
    DataReceived,
    Multiplexer,
    MuxClosed,
    MuxEvent,
    MuxParameters,
    MuxRole,
    MuxStarted,
)
from wipstack.cellular.dialer_at import MAX_PAYLOAD_BUFFER, AtPort, CarrierLost, PortDrop, PortEvent, TimedOut

#: The DLCI that carries the AT conversation (init, registration, URCs).
CONTROL_DLCI = 1
#: The DLCI that carries the data call (ATD, CONNECT, payload, NO CARRIER).
DATA_DLCI = 2
#: Received payload at which DLCI 2 is flow-stopped, and below which it is resumed.
FLOW_STOP_AT = MAX_PAYLOAD_BUFFER // 2
FLOW_RESUME_BELOW = MAX_PAYLOAD_BUFFER // 4


class MuxLink:
    """An initiator multiplexer with an AT port on DLCI 1 and one on DLCI 2."""

    def __init__(
        self,
        transcript: deque[str],
        drops: Counter[PortDrop],
        now: float,
        sink: Callable[[AtPort, list[PortEvent]], None],
        ready: Callable[[], None],
        closed: Callable[[str], None],
        params: MuxParameters | None = None,
    ) -> None:
        self.mux = Multiplexer(MuxRole.INITIATOR, params if params is not None else MuxParameters())
        self.control = AtPort(f"[{CONTROL_DLCI}]", transcript, drops)
        self.data = AtPort(f"[{DATA_DLCI}]", transcript, drops)
        self._ports = {CONTROL_DLCI: self.control, DATA_DLCI: self.data}
        self._transcript = transcript
        self._sink = sink
        self._ready = ready
        self._closed = closed
        self._data_stopped = False
        self.active = True
        transcript.append("! starting the 27.010 multiplexer: DLCI 0, then DLCIs 1 and 2")
        self.mux.start(now)
        for dlci in self._ports:
            self.mux.open_channel(dlci, now)  # each SABM waits for DLCI 0 (§5.4.1)

    @property
    def ready(self) -> bool:
        """DLCIs 1 and 2 are both open."""
        return self.active and all(self.mux.is_open(dlci) for dlci in self._ports)

    def ports(self) -> list[AtPort]:
        """The AT ports over the multiplexer."""
        return [self.control, self.data]

    def output_pending(self) -> int:
        """Octets not yet taken by :meth:`bytes_to_send` (in the ports and the multiplexer)."""
        return self.control.output_pending + self.data.output_pending + self.mux.output_pending

    def receive(self, data: bytes, now: float) -> None:
        """Frames from the modem."""
        self._handle(self.mux.receive(data, now), now)

    def on_timer(self, now: float) -> None:
        """The multiplexer's T1/T2 retransmissions."""
        self._handle(self.mux.on_timer(now), now)

    def next_deadline(self) -> float | None:
        """The multiplexer's next retransmission."""
        return self.mux.next_deadline() if self.active else None

    def bytes_to_send(self) -> bytes:
        """Frames for the modem, after moving the ports' output into their DLCIs."""
        for dlci, port in self._ports.items():
            if port.output_pending and self.mux.can_send(dlci):
                self.mux.send(dlci, port.take_output())
        return self.mux.bytes_to_send()

    def resume_flow(self, now: float) -> None:
        """Let the modem send on DLCI 2 again once the payload buffer has been drained."""
        if self._data_stopped and self.data.payload_pending < FLOW_RESUME_BELOW and self.mux.is_open(DATA_DLCI):
            self._data_stopped = False
            self.mux.set_flow(DATA_DLCI, False, now)

    def reopen(self, now: float) -> None:
        """Open again whichever of DLCIs 1 and 2 the modem closed."""
        for dlci in self._ports:
            if not self.mux.is_open(dlci):
                self.mux.open_channel(dlci, now)

    def close(self, now: float) -> None:
        """Close the multiplexer down (CLD, 27.010 §5.4.6.3.3); the modem returns to AT mode."""
        if self.active:
            self.mux.close_down(now)

    def _handle(self, events: list[MuxEvent], now: float) -> None:
        for event in events:
            if not self.active:
                return
            if isinstance(event, MuxStarted):
                self._transcript.append("! multiplexer started (DLCI 0 up)")
            elif isinstance(event, ChannelOpened):
                self._transcript.append(f"! DLCI {event.dlci} open")
                if self.ready:
                    self._ready()
            elif isinstance(event, DataReceived):
                port = self._ports.get(event.dlci)
                if port is not None:
                    self._sink(port, port.receive(event.data, now))
                    if port is self.data:
                        self._throttle(now)
            elif isinstance(event, ChannelClosed):
                self._channel_closed(event.dlci, event.reason)
            elif isinstance(event, MuxClosed):
                self.active = False
                self._transcript.append(f"! multiplexer closed: {event.reason}")
                self._closed(event.reason)

    def _throttle(self, now: float) -> None:
        # 27.010 §5.4.6.3.7: the MSC FC bit stops the modem on DLCI 2 while our consumer lags.
        if not self._data_stopped and self.data.payload_pending >= FLOW_STOP_AT and self.mux.is_open(DATA_DLCI):
            self._data_stopped = True
            self.mux.set_flow(DATA_DLCI, True, now)

    def _channel_closed(self, dlci: int, reason: str) -> None:
        port = self._ports.get(dlci)
        if port is None:
            return
        port.note(f"DLCI {dlci} closed: {reason}")
        if dlci == DATA_DLCI:
            self._data_stopped = False
        events: list[PortEvent] = []
        if port.online:
            events.append(CarrierLost("channel closed"))
        pending = port.pending_command
        port.reset()
        if pending is not None:
            events.append(TimedOut(pending))  # its answer can no longer come
        if events:
            self._sink(port, events)
