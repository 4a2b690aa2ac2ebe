"""``AT+WIPBR``: bearers -- PPP on the UARTs (client or server), the network device, GPRS.

==========  ======================================================================
bid         bearer
==========  ======================================================================
1, 2        UART1 / UART2: PPP over that UART, client (mode 0) or server (mode 1)
4           ETHER in WIPSoft 5.41; in wipstack a Linux TUN device (an extension)
5           GSM data call through the external cellular modem: dial-out (client, option 2 the
            number) or dial-in (server: RINGs counted against option 5, caller identity checked)
6           GPRS through the external cellular modem (APN option 11, cid option 12), or the
            network device when the module runs with ``gprs_backend="tun"`` and no modem
11-14       CMUX virtual UARTs (DLCI 1-4) over UART1, 21-24 over UART2, once ``AT+CMUX`` runs
            and the host has opened the DLCI: PPP client or server, like UART1/UART2
==========  ======================================================================

Life of a bearer: ``AT+WIPBR=1`` opens it (804 if already open), ``=2``/``=3`` set and get
options, ``=4`` starts it (the final result waits until the link is up in client mode;
in server mode ``OK`` comes at once and ``+WIPBR: <bid>,1,<local>,<remote>,<dns1>,<dns2>``
when the peer's IPCP is up), ``=5`` stops it, ``=0`` closes it, ``=6`` stores or frees its
options in flash.  One bearer is started at a time (WIPSoft 2.x); a failure while
starting is the 813-817 code of what failed; losing a started link prints that code
unsolicited, then ``+WIPBR: <bid>,0``.
"""

from __future__ import annotations

import enum
from collections import deque
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from at_frontend.channel import Channel, Mode
from at_frontend.config import SimState
from at_frontend.parser import Command, CommandKind
from at_frontend.registry import PENDING, Outcome, arg_count, command, require_started
from at_frontend.responses import CmeError, CommandError
from at_frontend.store import StoreCorrupt, StoreUnavailable, read_section
from wipstack.net.interface import Interface
from wipstack.net.ppp_binding import PppBinding
from wipstack.ppp.config import CpConfig, IpcpConfig, LcpConfig, PapConfig, PppConfig
from wipstack.ppp.events import AuthFailed, IpcpUp, LinkDead, LinkTerminated, LinkUp, PppEvent
from wipstack.ppp.session import PppSession

if TYPE_CHECKING:
    from at_frontend.module import Module

SET, READ, TEST = CommandKind.SET, CommandKind.READ, CommandKind.TEST

UART_BEARERS = (1, 2)
NETWORK_BEARER = 4
GSM, GPRS = 5, 6
CMUX_BEARERS = (11, 12, 13, 14, 21, 22, 23, 24)
KNOWN_BEARERS = (*UART_BEARERS, NETWORK_BEARER, GSM, GPRS, *CMUX_BEARERS)

#: option -> (kind, limit): "s" string of at most ``limit`` characters, "i" integer 0..limit, "a" IPv4 address
OPTIONS: dict[int, tuple[str, int]] = {
    0: ("s", 64),  # login
    1: ("s", 64),  # password
    2: ("s", 32),  # dial number
    5: ("i", 65535),  # ring count
    6: ("i", 1),  # MS-Windows null-modem handshake
    11: ("s", 96),  # APN
    12: ("i", 16),  # PDP context id (27.007 §10.1.1 <cid>; 0 means 1)
    15: ("a", 0),  # local IP address
    16: ("a", 0),  # peer IP address
    17: ("a", 0),  # primary DNS
    18: ("a", 0),  # secondary DNS
}
_LINE_OPTIONS = (0, 1, 2, 5, 6, 15, 16, 17, 18)
BEARER_OPTIONS: dict[int, tuple[int, ...]] = {
    **{bid: _LINE_OPTIONS for bid in (*UART_BEARERS, *CMUX_BEARERS)},
    NETWORK_BEARER: (15, 16, 17, 18),
    GSM: (0, 1, 2, 5, 15, 16, 17, 18),
    GPRS: (0, 1, 11, 12, 15, 16, 17, 18),
}
#: What the modem dialer's failures become (807-812, 847-849).
MODEM_BEARERS = (GSM, GPRS)
#: Addresses a UART PPP server hands out when options 15/16 are not set.
DEFAULT_SERVER_LOCAL = "192.168.1.1"
DEFAULT_SERVER_PEER = "192.168.1.2"
UNSET = "0.0.0.0"
#: LCP keep-alive of UART PPP links: a silent peer is declared gone (817) after 3 x 10 s.
ECHO_INTERVAL, ECHO_FAILURE = 10.0, 3


class BearerState(enum.Enum):
    """Where a bearer is in its life."""

    OPEN = "open"  # opened, not started
    STARTING = "starting"
    STARTED = "started"


class Bearer:
    """One opened bearer."""

    def __init__(self, bid: int) -> None:
        self.bid = bid
        self.state = BearerState.OPEN
        self.options: dict[int, str | int] = {}
        self.server = False
        self.controller: Channel | None = None  # the channel that started it (gets its URCs)
        self.waiting: list[Channel] = []  # channels whose ``AT+WIPBR=4`` waits for the outcome
        self.binding: PppBinding | None = None
        self.interface: Interface | None = None
        self.stopping = False
        self.link_up = False
        self.auth_failed = False
        self.dns: tuple[str, str] = (UNSET, UNSET)
        self.local = UNSET
        self.peer = UNSET

    def option_text(self, opt: int) -> str:
        """An option as ``AT+WIPBR=3`` shows it (strings and addresses quoted)."""
        if opt in (15, 16, 17, 18) and self.state is BearerState.STARTED:
            live = {15: self.local, 16: self.peer, 17: self.dns[0], 18: self.dns[1]}[opt]
            return f'"{live}"'
        kind, _ = OPTIONS[opt]
        value = self.options.get(opt, 0 if kind == "i" else (UNSET if kind == "a" else ""))
        return str(value) if kind == "i" else f'"{value}"'


class Bearers:
    """The bearers of a module."""

    def __init__(self, module: Module) -> None:
        self.module = module
        self.opened: dict[int, Bearer] = {}

    # ------------------------------------------------------------------ commands
    def open(self, bid: int) -> None:
        if bid in self.opened:
            raise CommandError(CmeError.DEVICE_ALREADY_OPEN)
        self._check_available(bid)
        bearer = Bearer(bid)
        try:
            stored = read_section(self.module.store, f"bearer.{bid}")
        except (StoreCorrupt, StoreUnavailable):
            stored = None
        for key, value in (stored or {}).items():
            if key.isdigit() and int(key) in BEARER_OPTIONS.get(bid, ()) and isinstance(value, str | int):
                bearer.options[int(key)] = value
        self.opened[bid] = bearer

    def close(self, bid: int, now: float) -> None:
        bearer = self._get(bid)
        if bearer.state is not BearerState.OPEN:
            self.stop(bid, now)
        del self.opened[bid]

    def start(self, channel: Channel, bid: int, server: bool, login: str | None, password: str | None,
              now: float, caller: str | None = None) -> Outcome | None:  # fmt: skip
        bearer = self._get(bid)
        if bearer.state is BearerState.STARTED:
            return None  # a repeated start is harmless
        if bearer.state is BearerState.STARTING:
            bearer.waiting.append(channel)
            return PENDING
        if any(b.state is not BearerState.OPEN for b in self.opened.values()):
            raise CommandError(CmeError.NOT_ALLOWED_IN_STACK_STATE, "another bearer is started")
        if bid in UART_BEARERS or bid in CMUX_BEARERS:
            return self._start_uart(channel, bearer, server, login, password, now)
        cellular = self.module.cellular
        if bid in MODEM_BEARERS and cellular is not None:
            if server and bid == GPRS:
                raise CommandError(CmeError.NOT_ALLOWED_ON_BEARER, "GPRS has no server mode")
            return cellular.start(channel, bearer, server, login, password, caller, now)
        if server:
            raise CommandError(CmeError.NOT_ALLOWED_ON_BEARER, "only PPP on a UART has a server mode")
        if bid == GPRS:
            radio = self.module.config.radio
            if radio.sim is SimState.ABSENT:
                raise CommandError(CmeError.BEARER_NO_SIM)
            if radio.sim is SimState.PIN:
                raise CommandError(CmeError.BEARER_SIM_NOT_READY)
            if radio.gprs_registration == 2:
                raise CommandError(CmeError.BEARER_CONNECT_IMPOSSIBLE)  # still searching: clients retry
            if radio.gprs_registration not in (1, 5) or not radio.gprs_attached or radio.functionality != 1:
                raise CommandError(CmeError.BEARER_GPRS_FAILURE)
        self._start_network(channel, bearer)
        return None

    def stop(self, bid: int, now: float) -> None:
        bearer = self._get(bid)
        if bearer.state is BearerState.OPEN:
            return
        bearer.stopping = True
        if bearer.bid in MODEM_BEARERS and self.module.cellular is not None and bearer.binding is not None:
            bearer.binding.flush(now)
            bearer.binding.close(now, "User request")
            self.pump_bearer(bearer, now)
        elif bearer.binding is not None:
            bearer.binding.flush(now)  # datagrams already queued (RSTs of closed sockets) go first
            bearer.binding.close(now, "User request")
            self.pump_bearer(bearer, now)
        self._finish(bearer, None, now, announce=False)

    def stop_all(self, now: float) -> None:
        for bid in list(self.opened):
            self.close(bid, now)

    def set_option(self, bid: int, opt: int, raw: str) -> None:
        bearer = self._get(bid)
        if opt not in BEARER_OPTIONS.get(bid, ()):
            raise CommandError(CmeError.INVALID_OPTION)
        kind, limit = OPTIONS[opt]
        if kind == "i":
            if not raw.isdigit() or not 0 <= int(raw) <= limit:
                raise CommandError(CmeError.INVALID_OPTION_VALUE)
            bearer.options[opt] = int(raw)
        elif kind == "a":
            try:
                bearer.options[opt] = str(IPv4Address(raw))
            except ValueError:
                raise CommandError(CmeError.INVALID_OPTION_VALUE) from None
        else:
            if len(raw) > limit:
                raise CommandError(CmeError.INVALID_OPTION_VALUE)
            bearer.options[opt] = raw

    def get_option(self, bid: int, opt: int) -> str:
        bearer = self._get(bid)
        if opt not in BEARER_OPTIONS.get(bid, ()):
            raise CommandError(CmeError.INVALID_OPTION)
        return bearer.option_text(opt)

    def store(self, bid: int, action: int) -> None:
        bearer = self._get(bid)
        from at_frontend.stackcfg import erase_section, write_section

        name = f"bearer.{bid}"
        if action == 1:
            write_section(self.module, name, {str(k): v for k, v in bearer.options.items()})
        else:
            erase_section(self.module, name)

    # ------------------------------------------------------------------ loop side
    def poll(self, now: float) -> None:
        for bearer in list(self.opened.values()):
            if bearer.binding is not None:
                bearer.binding.flush(now)
                self.pump_bearer(bearer, now)

    def pump(self, channel: Channel, now: float) -> None:
        """The UART's PPP session took input: collect its output and events."""
        bid = channel.ppp_bearer
        if bid is not None and bid in self.opened:
            self.pump_bearer(self.opened[bid], now)

    def next_deadline(self) -> float | None:
        deadlines = [b.binding.next_deadline() for b in self.opened.values() if b.binding is not None]
        present = [d for d in deadlines if d is not None]
        return min(present) if present else None

    def on_timer(self, now: float) -> None:
        for bearer in list(self.opened.values()):
            binding = bearer.binding
            if binding is not None:
                deadline = binding.next_deadline()
                if deadline is not None and deadline <= now:
                    binding.on_timer(now)
                    self.pump_bearer(bearer, now)

    def pump_bearer(self, bearer: Bearer, now: float) -> None:
        binding = bearer.binding
        if binding is None:
            return
        if bearer.bid in MODEM_BEARERS and self.module.cellular is not None:
            self.module.cellular.pump(now)
            return
        channel = self.module.channels.get(bearer.bid)
        if channel is None or channel.ppp is not binding:
            binding.bytes_to_send()  # the UART left PPP mode: nowhere to go
        elif not channel.executing:  # frames wait until the command's final result is out
            channel.out += binding.bytes_to_send()

    def interface_names(self) -> list[str]:
        return [b.interface.name for b in self.opened.values() if b.interface is not None]

    # ------------------------------------------------------------------ internals
    def _check_available(self, bid: int) -> None:
        if bid not in KNOWN_BEARERS:
            raise CommandError(CmeError.INVALID_OPTION_VALUE, f"no bearer {bid}")
        if bid in UART_BEARERS and bid not in self.module.channels:
            raise CommandError(CmeError.INTERFACE_NOT_AVAILABLE, f"no UART{bid}")
        if bid in CMUX_BEARERS and bid not in self.module.channels:
            raise CommandError(CmeError.INTERFACE_NOT_AVAILABLE, f"UART{bid // 10} is not multiplexed (AT+CMUX)")
        if bid in MODEM_BEARERS and self.module.cellular is not None:
            return
        if bid == GPRS and self.module.config.gprs_backend is None:
            raise CommandError(CmeError.INTERFACE_NOT_AVAILABLE, "GPRS needs a cellular modem")
        if bid == GSM:
            raise CommandError(CmeError.INTERFACE_NOT_AVAILABLE, "GSM data calls need a cellular modem")
        if bid in (NETWORK_BEARER, GPRS) and self.module.host is None:
            raise CommandError(CmeError.INTERFACE_NOT_AVAILABLE, "no network device on this host")

    def _get(self, bid: int) -> Bearer:
        bearer = self.opened.get(bid)
        if bearer is None:
            if bid not in KNOWN_BEARERS:
                raise CommandError(CmeError.INVALID_OPTION_VALUE, f"no bearer {bid}")
            raise CommandError(CmeError.NOT_ALLOWED_IN_STACK_STATE, f"bearer {bid} is not open")
        return bearer

    def _start_network(self, channel: Channel, bearer: Bearer) -> None:
        host = self.module.host
        assert host is not None
        options = {k: str(v) for k, v in bearer.options.items()}
        try:
            interface = host.open_network(bearer.bid, options)
        except OSError as exc:
            raise CommandError(CmeError.INTERFACE_NOT_AVAILABLE, str(exc)) from None
        stack = self.module.stack
        bearer.interface = interface
        bearer.controller = channel
        bearer.local = str(IPv4Address(interface.address))
        bearer.peer = str(IPv4Address(interface.peer)) if interface.peer else UNSET
        if interface.name not in stack.interfaces:
            stack.add_interface(interface)
        stack.routes.add_default(interface.name)
        dns = [str(bearer.options.get(o, UNSET)) for o in (17, 18)]
        servers = [IPv4Address(d).packed for d in dns if d != UNSET]
        if servers:
            stack.dns.servers = servers
        bearer.dns = (dns[0], dns[1])
        bearer.state = BearerState.STARTED

    def _start_uart(self, channel: Channel, bearer: Bearer, server: bool, login: str | None, password: str | None,
                    now: float) -> Outcome | None:  # fmt: skip
        target = self.module.channels[bearer.bid]
        if target is not channel and (target.mode is not Mode.COMMAND or target.busy):
            raise CommandError(CmeError.NOT_ALLOWED_ON_BEARER, f"{target.name} is busy")
        binding = self.attach_ppp(bearer, channel, server, login, password, f"uart{bearer.bid}")
        target.enter_ppp(bearer.bid, binding)
        binding.open(now)
        self.pump_bearer(bearer, now)
        if server or target is channel:
            return None  # OK now: a server waits for its client; the UART itself carries PPP from here
        bearer.waiting.append(channel)
        return PENDING

    def attach_ppp(self, bearer: Bearer, channel: Channel, server: bool, login: str | None, password: str | None,
                   name: str) -> PppBinding:  # fmt: skip
        """A PPP session for ``bearer`` (client, or server with the bearer's addresses and credentials)."""
        options = bearer.options
        if server:
            user = login if login is not None else str(options.get(0, ""))
            secret = password if password is not None else str(options.get(1, ""))
            dns = tuple(IPv4Address(str(options[o])) for o in (17, 18) if str(options.get(o, UNSET)) != UNSET)
            if not dns:
                dns = tuple(IPv4Address(s) for s in self.module.stack.dns.servers)
            config = PppConfig(
                pap=PapConfig(require=bool(user), secrets=((user, secret),) if user else ()),
                ipcp=IpcpConfig(
                    local_address=IPv4Address(str(options.get(15, DEFAULT_SERVER_LOCAL))),
                    peer_address=IPv4Address(str(options.get(16, DEFAULT_SERVER_PEER))),
                    accept_peer=False,
                    dns_servers=dns,
                ),
                lcp=LcpConfig(echo_interval=ECHO_INTERVAL, echo_failure=ECHO_FAILURE),
                cp=CpConfig(passive=True, silent=True),  # a server waits for its client to speak first
            )
        else:
            client_user = (login if login is not None else str(options.get(0, ""))) or None
            config = PppConfig(
                lcp=LcpConfig(echo_interval=ECHO_INTERVAL, echo_failure=ECHO_FAILURE),
                pap=PapConfig(username=client_user,
                              password=password if password is not None else str(options.get(1, ""))),  # fmt: skip
                ipcp=IpcpConfig(request_dns=True),
            )
        session = PppSession(config, self.module.stack.rng)  # the module's injected random source
        binding = PppBinding(self.module.stack, session, name, default_route=not server, use_peer_dns=not server)
        bearer.binding = binding
        bearer.server = server
        bearer.controller = channel
        bearer.state = BearerState.STARTING
        bearer.link_up = bearer.auth_failed = bearer.stopping = False
        binding.on_event = lambda event: self._ppp_event(bearer, event)
        return binding

    def _ppp_event(self, bearer: Bearer, event: PppEvent) -> None:
        now = self.module.now
        if isinstance(event, LinkUp):
            bearer.link_up = True
        elif isinstance(event, AuthFailed):
            bearer.auth_failed = True
        elif isinstance(event, IpcpUp):
            result = event.result
            bearer.interface = bearer.binding.interface if bearer.binding is not None else None
            bearer.local, bearer.peer = str(result.local_address), str(result.peer_address)
            servers = [str(a) for a in result.dns_servers]
            if bearer.server:
                offered = [str(IPv4Address(s)) for s in self.module.stack.dns.servers]
                servers = [str(bearer.options.get(17, UNSET)), str(bearer.options.get(18, UNSET))]
                if servers == [UNSET, UNSET] and offered:
                    servers = (offered + [UNSET])[:2]
            servers = (servers + [UNSET, UNSET])[:2]
            bearer.dns = (servers[0], servers[1])
            bearer.state = BearerState.STARTED
            if bearer.server and bearer.controller is not None:
                bearer.controller.urc(
                    f"+WIPBR: {bearer.bid},1,{bearer.local},{bearer.peer},{bearer.dns[0]},{bearer.dns[1]}"
                )
            self._complete_waiting(bearer, None)
        elif isinstance(event, LinkTerminated | LinkDead):
            if bearer.stopping:
                return
            if isinstance(event, LinkDead):
                code = CmeError.BEARER_PEER_NO_ECHO
            elif bearer.auth_failed:
                code = CmeError.BEARER_AUTH_FAILED
            elif bearer.state is BearerState.STARTED:
                code = CmeError.BEARER_PEER_TERMINATED
            elif bearer.link_up:
                code = CmeError.BEARER_IPCP_FAILED
            else:
                code = CmeError.BEARER_LCP_FAILED
            self._finish(bearer, code, now, announce=True)

    def _finish(self, bearer: Bearer, code: CmeError | None, now: float, *, announce: bool) -> None:
        """The bearer is down (stopped, failed or lost): back to OPEN, the UART to AT mode."""
        was_started = bearer.state is BearerState.STARTED
        binding = bearer.binding
        cellular = self.module.cellular
        if bearer.bid in MODEM_BEARERS and cellular is not None:
            if binding is not None:
                binding.detach()
            cellular.bearer_down(bearer, binding, now)  # the last Terminate frames, then hang up
        elif binding is not None:
            binding.detach()
            channel = self.module.channels.get(bearer.bid)
            if channel is not None and channel.ppp is binding:
                channel.out += binding.bytes_to_send()  # the last Terminate frames
                channel.leave_ppp()
        elif bearer.interface is not None and self.module.host is not None:
            if bearer.interface.name in self.module.stack.interfaces:
                self.module.stack.remove_interface(bearer.interface.name)
            self.module.host.close_network(bearer.bid)
        bearer.binding = None
        bearer.interface = None
        bearer.state = BearerState.OPEN
        self._complete_waiting(bearer, code or CmeError.BEARER_PEER_TERMINATED)
        controller = bearer.controller
        if controller is not None:  # an "up" line still held (its UART carried the PPP) is stale now
            stale = f"+WIPBR: {bearer.bid},1,"
            controller.held_urcs = deque(u for u in controller.held_urcs if not u.startswith(stale))
        if announce and controller is not None and (was_started or bearer.server):
            if code is not None:
                controller.urc(f"+CME ERROR: {int(code)}")
            controller.urc(f"+WIPBR: {bearer.bid},0")
        for channel in list(self.module.channels.values()):
            channel.release_urcs()

    def line_closed(self, bid: int, now: float) -> None:
        """The DLCI of CMUX bearer ``bid`` closed: a started (or starting) bearer is lost (816)."""
        bearer = self.opened.get(bid)
        if bearer is not None and bearer.state is not BearerState.OPEN:
            self._finish(bearer, CmeError.BEARER_PEER_TERMINATED, now, announce=True)

    def forget(self, bid: int, fallback: Channel) -> None:
        """The virtual UART of CMUX bearer ``bid`` is gone: the bearer closes; URCs go to ``fallback``."""
        self.opened.pop(bid, None)
        for bearer in self.opened.values():
            if bearer.controller is not None and bearer.controller.uart == bid:
                bearer.controller = fallback

    def finish(self, bearer: Bearer, code: CmeError | None, now: float, *, announce: bool) -> None:
        """Public face of :meth:`_finish` for the cellular line."""
        self._finish(bearer, code, now, announce=announce)

    def _complete_waiting(self, bearer: Bearer, code: CmeError | None) -> None:
        waiting, bearer.waiting = bearer.waiting, []
        for channel in waiting:
            self.module.complete(channel, code)


@command("+WIPBR")
def wipbr(module: Module, channel: Channel, cmd: Command) -> Outcome | None:
    """``AT+WIPBR=<cmdtype>,<bid>[,...]`` (cmdtypes 0-6), ``?`` and ``=?``."""
    bearers = module.bearers
    if cmd.kind is READ:
        for bid, bearer in sorted(bearers.opened.items()):
            channel.info(f"+WIPBR: {bid},{int(bearer.state is BearerState.STARTED)}")
        return None
    if cmd.kind is TEST:
        channel.info("+WIPBR: (0-6),(1,2,4,5,6,11-14,21-24)")
        return None
    if cmd.kind is not SET:
        raise CommandError(None)
    require_started(module)
    arg_count(cmd, 2, 6)
    cmdtype = cmd.args[0].as_int(0, 6)
    try:
        bid = cmd.args[1].as_int(0, 255)
    except ValueError:
        raise CommandError(CmeError.INVALID_OPTION_VALUE) from None
    now = module.now
    if cmdtype == 0:
        arg_count(cmd, 2, 2)
        bearers.close(bid, now)
    elif cmdtype == 1:
        arg_count(cmd, 2, 2)
        bearers.open(bid)
    elif cmdtype in (2, 3):
        arg_count(cmd, 6 - cmdtype, 6 - cmdtype)  # set: <opt>,<value>; get: <opt>
        try:
            opt = cmd.args[2].as_int(0, 255)
        except ValueError:
            raise CommandError(CmeError.INVALID_OPTION) from None
        if cmdtype == 2:
            bearers.set_option(bid, opt, cmd.args[3].text)
        else:
            channel.info(f"+WIPBR: {bid},{opt},{bearers.get_option(bid, opt)}")
    elif cmdtype == 4:
        mode = cmd.args[2].as_int(0, 1) if len(cmd.args) > 2 and not cmd.args[2].is_empty else 0
        login = cmd.args[3].text if len(cmd.args) > 3 and not cmd.args[3].is_empty else None
        password = cmd.args[4].text if len(cmd.args) > 4 and not cmd.args[4].is_empty else None
        caller = cmd.args[5].text if len(cmd.args) > 5 and not cmd.args[5].is_empty else None
        if caller is not None and bid != GSM:
            raise CommandError(CmeError.INVALID_OPTION, "a caller identity is for the GSM server only")
        return bearers.start(channel, bid, mode == 1, login, password, now, caller)
    elif cmdtype == 5:
        arg_count(cmd, 2, 2)
        bearers.stop(bid, now)
    else:
        arg_count(cmd, 3, 3)
        bearers.store(bid, cmd.args[2].as_int(0, 1))
    return None
