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
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from at_frontend.config import ModuleConfig
from at_frontend.module import Module
from at_frontend.store import ConfigStore, MemoryStore
from wipstack.net import Interface, Stack
from wipstack.net.ppp_binding import PppBinding
from wipstack.ppp.config import CpConfig, IpcpConfig, PapConfig, PppConfig
from wipstack.ppp.session import PppSession

STEP = 0.001  # virtual seconds per settling round


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
    ) -> None:
        self.now = 0.0
        self.stack = Stack(random.Random(seed))
        self.store = store if store is not None else MemoryStore()
        self.host = host if host is not None else FakeHost()
        self.module = Module(self.stack, config, store=self.store, host=self.host, now=self.now)
        self.output: dict[int, bytearray] = {uart: bytearray() for uart in self.module.channels}
        self.ppp_peers: dict[int, PppPeer] = {}
        self.network: NetworkPeer | None = None
        if not echo:
            for uart in self.module.channels:
                self.module.channels[uart].framing.echo = False

    # ------------------------------------------------------------------ typing
    def send(self, data: bytes, uart: int = 1) -> None:
        """Raw bytes typed on ``uart`` (then the rig settles)."""
        self.module.receive(uart, data, self.now)
        self.settle()

    def at(self, line: str, uart: int = 1, *, settle: float = 0.05) -> bytes:
        """Type ``line`` + CR on ``uart``; what it printed meanwhile (output is consumed)."""
        self.take(uart)
        self.module.receive(uart, line.encode("latin-1") + b"\r", self.now)
        self.advance(settle)
        return self.take(uart)

    def take(self, uart: int = 1) -> bytes:
        """What ``uart`` printed since the last take."""
        self.settle()
        data = bytes(self.output[uart])
        self.output[uart].clear()
        return data

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
        return stacks

    def _deadlines(self) -> list[float | None]:
        deadlines: list[float | None] = [self.module.next_deadline()]
        deadlines += [s.next_deadline() for s in self._stacks()]
        deadlines += [p.binding.next_deadline() for p in self.ppp_peers.values()]
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
        deadline = self.module.next_deadline()
        if deadline is not None and deadline <= now:
            self.module.on_timer(now)

    def _move(self) -> bool:
        moved = False
        now = self.now
        self.module.poll(now)
        for uart in self.module.channels:
            data = self.module.bytes_to_send(uart, 1 << 16, now)
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
                self.module.receive(uart, data, now)
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
