"""``AT+WIPPING``: the ICMP echo service, one session at a time, on wipstack's ping sessions.

``AT+WIPPING=<host>[,<repeat>[,<interval>[,<timeout>[,<nwrite>[,<ttl>]]]]]`` answers ``OK``
once the host is known (a name is resolved first: ``+CME ERROR: 842`` if it cannot be) and
then one ``+WIPPING: <timeout_expired>,<packet_idx>,<response_time>`` per request, index
from 0, time in milliseconds (the timeout for a request that got no reply).  A host with no
route is pinged all the same: its requests time out, as on the module.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from at_frontend.channel import Channel
from at_frontend.parser import Command, CommandKind
from at_frontend.registry import PENDING, Outcome, arg_count, command, require_started
from at_frontend.responses import CmeError, CommandError
from wipstack.net.icmp import PingConfig, PingSession
from wipstack.net.udp import SocketError

if TYPE_CHECKING:
    from at_frontend.module import Module

SET, READ, TEST = CommandKind.SET, CommandKind.READ, CommandKind.TEST


@dataclass(slots=True)
class PingParameters:
    """The values of the last ``AT+WIPPING`` (``AT+WIPPING?`` shows them)."""

    host: str = ""
    repeat: int = 1
    interval: int = 2000  # ms
    timeout: int = 2000  # ms
    nwrite: int = 64  # ICMP data octets
    ttl: int = 0  # 0: the stack's TTL (+WIPCFG option 0)


class PingService:
    """The module's ping session."""

    def __init__(self, module: Module) -> None:
        self.module = module
        self.parameters = PingParameters()
        self.channel: Channel | None = None
        self.session: PingSession | None = None
        self.unrouted = False  # the session is not the stack's: no route, it only times out
        self.resolving: int | None = None

    @property
    def busy(self) -> bool:
        return self.session is not None or self.resolving is not None

    def start(self, channel: Channel, parameters: PingParameters) -> Outcome | None:
        if self.busy:
            raise CommandError(CmeError.NOT_ALLOWED_IN_STACK_STATE, "a ping session is running")
        self.parameters = parameters
        self.channel = channel
        try:
            destination = IPv4Address(parameters.host).packed
        except ValueError:
            self.resolving = self.module.stack.dns.resolve(parameters.host, self.module.now)
            return PENDING
        self._begin(destination)
        return None

    def _begin(self, destination: bytes) -> None:
        p = self.parameters
        config = PingConfig(count=p.repeat, interval=p.interval / 1000, timeout=p.timeout / 1000, size=p.nwrite,
                            ttl=p.ttl or None)  # fmt: skip
        now = self.module.now
        try:
            self.session = self.module.stack.ping(destination, config, now)
            self.unrouted = False
        except SocketError:
            self.session = PingSession(destination, config, self.module.stack.rng, now)
            self.unrouted = True
            self.session.due_requests(now)

    def cancel_all(self) -> None:
        if self.resolving is not None:
            self.module.stack.dns.cancel(self.resolving)
        self.resolving = None
        if self.session is not None and self.session in self.module.stack.pings:
            self.module.stack.pings.remove(self.session)
        self.session = None

    def poll(self, now: float) -> None:
        if self.resolving is not None:
            result = self.module.stack.dns.result(self.resolving)
            if result is not None:
                self.resolving = None
                channel = self.channel
                if result.error is not None or not result.addresses:
                    if channel is not None:
                        self.module.complete(channel, CmeError.HOST_UNREACHABLE)
                    return
                self._begin(result.addresses[0])
                if channel is not None:
                    self.module.complete(channel)
        session = self.session
        if session is None:
            return
        while (reply := session.next_reply()) is not None:
            if reply.timed_out:
                line = f"+WIPPING: 1,{reply.sequence},{self.parameters.timeout}"
            else:
                line = f"+WIPPING: 0,{reply.sequence},{round((reply.rtt or 0.0) * 1000)}"
            if self.channel is not None:
                self.channel.urc(line)
        if session.done:
            self.session = None

    def next_deadline(self) -> float | None:
        if self.session is not None and self.unrouted:
            return self.session.next_deadline()
        return None

    def on_timer(self, now: float) -> None:
        if self.session is not None and self.unrouted:
            self.session.due_requests(now)
            self.session.expire(now)


@command("+WIPPING")
def wipping(module: Module, channel: Channel, cmd: Command) -> Outcome | None:
    """``AT+WIPPING=<host>[,<repeat>[,<interval>[,<timeout>[,<nwrite>[,<ttl>]]]]]``."""
    if cmd.kind is READ:
        p = module.pings.parameters
        channel.info(f'+WIPPING: "{p.host}",{p.repeat},{p.interval},{p.timeout},{p.nwrite},{p.ttl}')
        return None
    if cmd.kind is TEST:
        channel.info("+WIPPING: ,(1-65535),(1-65535),(1-65535),(1-1500),(0-255)")
        return None
    if cmd.kind is not SET:
        raise CommandError(None)
    require_started(module)
    arg_count(cmd, 1, 6)
    host = cmd.args[0].text
    if not host or len(host) > 255:
        raise CommandError(CmeError.INVALID_OPTION_VALUE, "no host")
    defaults = PingParameters()
    values = [defaults.repeat, defaults.interval, defaults.timeout, defaults.nwrite, defaults.ttl]
    ranges = [(1, 65535), (1, 65535), (1, 65535), (1, 1500), (0, 255)]
    for i, arg in enumerate(cmd.args[1:]):
        if arg.is_empty:
            continue
        try:
            values[i] = arg.as_int(*ranges[i])
        except ValueError:
            raise CommandError(CmeError.INVALID_OPTION_VALUE) from None
    parameters = PingParameters(host, *values)
    return module.pings.start(channel, parameters)
