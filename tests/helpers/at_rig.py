"""An AT test rig: a virtual module, what its UARTs print, and peers to talk to, in virtual time.

``Rig`` holds a :class:`Module` on its own stack with UART1 and UART2.  ``rig.at("AT+X")``
types a line on a UART and returns what the UART printed until things settle; ``rig.send``
types raw bytes; ``rig.advance(seconds)`` runs time forward (timers of the module, its stack
and every peer).  Two kinds of peers:

* :meth:`Rig.ppp_peer` -- another wipstack whose PPP client (or server) is wired to a UART's
  byte stream, as pppd would be on the pty;
* :meth:`Rig.network_peer` -- the other end of the network bearer (``AT+WIPBR`` bearer 4 or
  GPRS over it): a :class:`FakeHost` hands the module an interface whose datagrams go
  straight to a peer stack, as the Linux kernel would be behind a TUN device.

Peers are ordinary wipstack stacks, so tests put TCP/UDP servers and clients on them.

:meth:`Rig.mux_host` plays the host side of ``AT+CMUX``: a 27.010 initiator on a UART whose
DLCIs are then typed on and read like UARTs, with the virtual UART's channel id
(``10 * uart + dlci``) in place of the UART number (``rig.at("AT", 11)``, ``rig.ppp_peer(12)``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from at_frontend.config import ModuleConfig
from at_frontend.module import Module
from at_frontend.store import ConfigStore, MemoryStore
from wipstack.cellular.cmux import DataReceived, Multiplexer, MuxEvent, MuxParameters, MuxRole
from wipstack.cellular.dialer import ModemDialer
from wipstack.net import Interface, Stack
from wipstack.net.ppp_binding import PppBinding
from wipstack.ppp.config import CpConfig, IpcpConfig, PapConfig, PppConfig
from wipstack.ppp.session import PppSession

if TYPE_CHECKING:
    from wipstack.cellular.simulator import ModemSimulator

STEP = 0.001  # virtual seconds per settling round
LINE_CHUNK = 4096  # octets a multiplexing host writes to its UART per settling round


class MuxHost:
    """The host's 27.010 initiator on one UART of the module (see the module docstring)."""

    def __init__(self, uart: int, params: MuxParameters | None = None) -> None:
        self.uart = uart
        self.mux = Multiplexer(MuxRole.INITIATOR, params or MuxParameters())
        self.events: list[MuxEvent] = []
        self.connected = True  # False: the line is cut, frames go nowhere

    def dlci_of(self, channel_id: int) -> int:
        assert channel_id // 10 == self.uart, channel_id
        return channel_id % 10


@dataclass
class PppPeer:
    """A wipstack PPP endpoint on a UART's byte stream."""

    uart: int
    stack: Stack
    binding: PppBinding
    to_module: bytearray = field(default_factory=bytearray)
    connected: bool = True  # False: the "pty" is closed, bytes go nowhere


@dataclass
class NetworkPeer:
    """The far side of the network bearer."""

    stack: Stack
    interface: Interface
    module_interface: Interface | None = None


class FakeHost:
    """ModuleHost for tests: the network bearer is a wire to ``peer`` (no TUN device)."""

    def __init__(self, peer_address: str = "192.0.2.1") -> None:
        self.peer_address = peer_address
        self.peer: NetworkPeer | None = None
        self.opened: list[int] = []
        self.closed: list[int] = []
        self.fail: OSError | None = None

    def open_network(self, bearer: int, options: dict[int, str]) -> Interface:
        if self.fail is not None:
            raise self.fail
        local = options.get(15, "192.0.2.2")
        interface = Interface(f"tun{bearer}", IPv4Address(local).packed, peer=IPv4Address(self.peer_address).packed)
        self.opened.append(bearer)
        if self.peer is not None:
            self.peer.module_interface = interface
        return interface

    def close_network(self, bearer: int) -> None:
        self.closed.append(bearer)
        if self.peer is not None:
            self.peer.module_interface = None


@dataclass
class CellularNetwork:
    """A simulated modem on the module's modem line, and the operator's PPP access server behind it."""

    simulator: ModemSimulator
    server_config: PppConfig
    seed: int = 21
    caller: bool = False  # the far end calls the module (a PPP client) instead of serving it
    peer: PppPeer | None = None  # the access server of the current call
    calls: list[str] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)


class Rig:
    """See the module docstring."""

    def __init__(
        self,
        config: ModuleConfig | None = None,
        *,
        store: ConfigStore | None = None,
        host: FakeHost | None = None,
        seed: int = 1,
        echo: bool = False,
        modem: ModemDialer | None = None,
    ) -> None:
        self.now = 0.0
        self.stack = Stack(random.Random(seed))
        self.store = store if store is not None else MemoryStore()
        self.host = host if host is not None else FakeHost()
        self.module = Module(self.stack, config, store=self.store, host=self.host, now=self.now, modem=modem)
        self.cellular: CellularNetwork | None = None
        self.output: dict[int, bytearray] = {uart: bytearray() for uart in self.module.channels}
        self.ppp_peers: dict[int, PppPeer] = {}
        self.mux_hosts: dict[int, MuxHost] = {}
        self.network: NetworkPeer | None = None
        if not echo:
            for uart in self.module.channels:
                self.module.channels[uart].framing.echo = False

    # ------------------------------------------------------------------ typing
    def send(self, data: bytes, uart: int = 1) -> None:
        """Raw bytes typed on ``uart`` (or on a virtual UART of a multiplexed one; then the rig settles)."""
        self._type(uart, data)
        self.settle()

    def _type(self, uart: int, data: bytes) -> None:
        host = self.mux_hosts.get(uart // 10)
        if host is not None and uart >= 10:
            host.mux.send(host.dlci_of(uart), data)
        else:
            self.module.receive(uart, data, self.now)

    def at(self, line: str, uart: int = 1, *, settle: float = 0.05) -> bytes:
        """Type ``line`` + CR on ``uart``; what it printed meanwhile (output is consumed)."""
        self.take(uart)
        self._type(uart, line.encode("latin-1") + b"\r")
        self.advance(settle)
        return self.take(uart)

    def take(self, uart: int = 1) -> bytes:
        """What ``uart`` printed since the last take."""
        self.settle()
        output = self.output.setdefault(uart, bytearray())
        data = bytes(output)
        output.clear()
        return data

    def mux_host(self, uart: int = 1, dlcis: tuple[int, ...] = (1, 2, 3, 4), *,
                 params: MuxParameters | None = None) -> MuxHost:  # fmt: skip
        """``AT+CMUX=0`` on ``uart``, then an initiator opens DLCI 0 and ``dlcis`` (virtual time passes)."""
        assert self.at("AT+CMUX=0", uart) == b"\r\nOK\r\n"
        host = MuxHost(uart, params)
        self.mux_hosts[uart] = host
        host.mux.start(self.now)
        self.advance(0.05)
        for dlci in dlcis:
            host.mux.open_channel(dlci, self.now)
        self.advance(0.05)
        return host

    # ------------------------------------------------------------------ time
    def settle(self) -> None:
        """Move bytes and datagrams around until nothing moves (no time passes)."""
        for _ in range(10_000):
            moved = self._move()
            if not moved:
                return
        raise AssertionError("the rig did not settle")

    def advance(self, seconds: float) -> None:
        """Run virtual time forward by ``seconds``, firing every timer on the way."""
        end = self.now + seconds
        for _ in range(1_000_000):
            self.settle()
            deadlines = [d for d in self._deadlines() if d is not None and d <= end]
            if not deadlines:
                break
            self.now = max(self.now, min(deadlines))
            self._fire(self.now)
        self.now = end
        self._fire(self.now)
        self.settle()

    def _stacks(self) -> list[Stack]:
        stacks = [self.stack] + [p.stack for p in self.ppp_peers.values()]
        if self.network is not None:
            stacks.append(self.network.stack)
        if self.cellular is not None and self.cellular.peer is not None:
            stacks.append(self.cellular.peer.stack)
        return stacks

    def _deadlines(self) -> list[float | None]:
        deadlines: list[float | None] = [self.module.next_deadline()]
        deadlines += [s.next_deadline() for s in self._stacks()]
        deadlines += [p.binding.next_deadline() for p in self.ppp_peers.values()]
        deadlines += [h.mux.next_deadline() for h in self.mux_hosts.values()]
        if self.cellular is not None:
            deadlines.append(self.cellular.simulator.next_deadline())
            if self.cellular.peer is not None:
                deadlines.append(self.cellular.peer.binding.next_deadline())
        return deadlines

    def _fire(self, now: float) -> None:
        for stack in self._stacks():
            deadline = stack.next_deadline()
            if deadline is not None and deadline <= now:
                stack.on_timer(now)
        for peer in self.ppp_peers.values():
            deadline = peer.binding.next_deadline()
            if deadline is not None and deadline <= now:
                peer.binding.on_timer(now)
        if self.cellular is not None:
            sim = self.cellular.simulator
            deadline = sim.next_deadline()
            if deadline is not None and deadline <= now:
                sim.on_timer(now)
            peer = self.cellular.peer
            if peer is not None:
                deadline = peer.binding.next_deadline()
                if deadline is not None and deadline <= now:
                    peer.binding.on_timer(now)
        for host in self.mux_hosts.values():
            deadline = host.mux.next_deadline()
            if deadline is not None and deadline <= now:
                self._mux_events(host, host.mux.on_timer(now))
        deadline = self.module.next_deadline()
        if deadline is not None and deadline <= now:
            self.module.on_timer(now)

    def _mux_events(self, host: MuxHost, events: list[MuxEvent]) -> None:
        for event in events:
            host.events.append(event)
            if isinstance(event, DataReceived):
                channel_id = 10 * host.uart + event.dlci
                channel = self.module.channels.get(channel_id)
                peer = self.ppp_peers.get(channel_id)
                if peer is not None and peer.connected and channel is not None and channel.ppp is not None:
                    peer.binding.receive_bytes(event.data, self.now)
                else:
                    self.output.setdefault(channel_id, bytearray()).extend(event.data)

    def _move(self) -> bool:
        moved = False
        now = self.now
        self.module.poll(now)
        for uart in self.module.physical_uarts:
            data = self.module.bytes_to_send(uart, 1 << 16, now)
            host = self.mux_hosts.get(uart)
            if host is not None and host.mux.closed and self.module.channels[uart].mode.value != "mux":
                del self.mux_hosts[uart]  # close-down done on both sides: the UART speaks AT again
                host = None
            if host is not None:
                if data and host.connected:
                    self._mux_events(host, host.mux.receive(data, now))
                    moved = True
                out = host.mux.bytes_to_send(LINE_CHUNK)  # a line moves a few KB per round, not everything
                if out and host.connected:
                    moved = True
                    self.module.receive(uart, out, now)
                continue
            if not data:
                continue
            moved = True
            peer = self.ppp_peers.get(uart)
            if peer is not None and peer.connected and self.module.channels[uart].ppp is not None:
                peer.binding.receive_bytes(data, now)
            else:
                self.output[uart] += data
        for uart, peer in self.ppp_peers.items():
            peer.binding.flush(now)
            data = peer.binding.bytes_to_send()
            if data and peer.connected:
                moved = True
                self._type(uart, data)
        if self.cellular is not None:
            moved = self._move_cellular(self.cellular, now) or moved
        network = self.network
        if network is not None and network.module_interface is not None:
            for packet in network.module_interface.take_output():
                moved = True
                network.stack.receive(network.interface, packet, now)
            for packet in network.interface.take_output():
                moved = True
                if network.module_interface.name in self.stack.interfaces:
                    self.stack.receive(network.module_interface, packet, now)
        return moved

    def _move_cellular(self, net: CellularNetwork, now: float) -> bool:
        from wipstack.cellular.simulator import CallConnected, CallEnded

        moved = False
        cellular = self.module.cellular
        assert cellular is not None
        sim = net.simulator
        data = cellular.bytes_to_send(1 << 16, now)
        if data:
            moved = True
            sim.receive(data, now)
        for event in sim.events():
            moved = True
            if isinstance(event, CallConnected):
                net.calls.append(event.kind)
                stack = Stack(random.Random(net.seed + len(net.calls)))
                session = PppSession(net.server_config, random.Random(net.seed))
                binding = PppBinding(stack, session, "ppp0", default_route=net.caller)
                net.peer = PppPeer(0, stack, binding)
                binding.open(now)
            elif isinstance(event, CallEnded):
                net.ended.append(event.reason)
                net.peer = None
        peer = net.peer
        if peer is not None:
            data = sim.peer_bytes_to_send()
            if data:
                moved = True
                peer.binding.receive_bytes(data, now)
            peer.binding.flush(now)
            data = peer.binding.bytes_to_send()
            if data:
                moved = True
                sim.peer_receive(data, now)
        data = sim.bytes_to_send()
        if data:
            moved = True
            cellular.receive(data, now)
        return moved

    def cellular_network(self, simulator: ModemSimulator, *, user: str | None = "user", password: str = "pass",
                         local: str = "203.0.113.1", peer: str = "203.0.113.2",
                         dns: tuple[str, ...] = ("203.0.113.53",),
                         caller: bool = False) -> CellularNetwork:  # fmt: skip
        """Attach ``simulator`` to the module's modem line, an access server behind it (PAP if ``user``).

        ``caller``: the far end is instead a PPP *client* that calls the module (GSM dial-in) and
        logs in with ``user``/``password``.
        """
        if caller:
            client = PppConfig(pap=PapConfig(username=user, password=password), cp=CpConfig(restart_interval=1.0))
            self.cellular = CellularNetwork(simulator, client, caller=True)
            return self.cellular
        config = PppConfig(
            pap=PapConfig(require=user is not None, secrets=((user, password),) if user else ()),
            ipcp=IpcpConfig(local_address=IPv4Address(local), peer_address=IPv4Address(peer), accept_peer=False,
                            dns_servers=tuple(IPv4Address(d) for d in dns)),  # fmt: skip
            cp=CpConfig(restart_interval=1.0),
        )
        self.cellular = CellularNetwork(simulator, config)
        return self.cellular

    # ------------------------------------------------------------------ peers
    def ppp_peer(self, uart: int = 2, *, server: bool = False, user: str | None = None, password: str = "",
                 local: str = "192.0.2.1", peer: str = "192.0.2.2", seed: int = 7) -> PppPeer:  # fmt: skip
        """A wipstack PPP client (default) or server on ``uart``'s line; returns it (started)."""
        stack = Stack(random.Random(seed))
        if server:
            config = PppConfig(
                pap=PapConfig(require=user is not None, secrets=((user, password),) if user else ()),
                ipcp=IpcpConfig(local_address=IPv4Address(local), peer_address=IPv4Address(peer)),
                cp=CpConfig(restart_interval=1.0),
            )
        else:
            config = PppConfig(pap=PapConfig(username=user, password=password), cp=CpConfig(restart_interval=1.0))
        binding = PppBinding(stack, PppSession(config, random.Random(seed + 1)), "ppp0", default_route=True)
        result = PppPeer(uart, stack, binding)
        self.ppp_peers[uart] = result
        binding.open(self.now)
        self.settle()
        return result

    def network_peer(self, address: str = "192.0.2.1", *, seed: int = 9) -> NetworkPeer:
        """A stack on the far side of the network bearer (bearer 4, or GPRS over it)."""
        stack = Stack(random.Random(seed))
        interface = stack.add_interface(Interface("eth0", IPv4Address(address).packed, prefix_len=24))
        self.host.peer_address = address
        self.network = NetworkPeer(stack, interface)
        self.host.peer = self.network
        return self.network

    # ------------------------------------------------------------------ recipes
    def start_stack(self, uart: int = 1) -> None:
        """``AT+CMEE=1``, ``AT+WIPCFG=1``."""
        assert self.at("AT+CMEE=1", uart) == b"\r\nOK\r\n"
        assert self.at("AT+WIPCFG=1", uart) == b"\r\nOK\r\n"

    def start_network_bearer(self, uart: int = 1, local: str = "192.0.2.2", peer: str = "192.0.2.1") -> NetworkPeer:
        """Stack started, bearer 4 up with ``local``, a network peer at ``peer``."""
        network = self.network_peer(peer)
        self.start_stack(uart)
        for line in ("AT+WIPBR=1,4", f'AT+WIPBR=2,4,15,"{local}"', f'AT+WIPBR=2,4,16,"{peer}"', "AT+WIPBR=4,4,0"):
            assert self.at(line, uart) == b"\r\nOK\r\n", line
        return network
