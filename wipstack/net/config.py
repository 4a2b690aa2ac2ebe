"""Configuration of the network layer, with the defaults a small embedded stack uses."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StackConfig:
    """Knobs of the IPv4 layer and its sockets (``+WIPCFG`` options 0-2 map onto the first three)."""

    ttl: int = 64  # +WIPCFG option 0: TTL of datagrams we originate (RFC 1700 default)
    tos: int = 0  # +WIPCFG option 1: TOS of datagrams we originate
    fragment_timeout: float = 60.0  # +WIPCFG option 2: lifetime of an incomplete datagram (RFC 1122 §3.3.2)
    max_reassembly_datagrams: int = 8  # datagrams in reassembly at once
    max_reassembly_bytes: int = 256 * 1024  # octets held by all of them together
    max_fragments_per_datagram: int = 64  # holes/ranges per datagram (the assembler's cap)
    forwarding: bool = False  # route datagrams between interfaces (RFC 1812 router behaviour)
    icmp_error_rate: float = 100.0  # ICMP errors we may send per second (token bucket, RFC 1812 §4.3.2.8)
    icmp_error_burst: int = 50
    udp_receive_queue: int = 64  # datagrams queued per UDP socket before drops are counted
    udp_receive_bytes: int = 256 * 1024  # octets queued per UDP socket
    udp_checksum: bool = True  # compute checksums on UDP we send (RFC 1122 §4.1.3.4: MUST default on)
    ephemeral_ports: tuple[int, int] = (49152, 65535)  # RFC 6335 §6 dynamic range, inclusive

    def __post_init__(self) -> None:
        if not 1 <= self.ttl <= 255:
            raise ValueError(f"TTL {self.ttl} out of 1..255")  # RFC 1122 §3.2.1.7: never send TTL 0
        if not 0 <= self.tos <= 255:
            raise ValueError(f"TOS {self.tos} out of 0..255")
        if self.fragment_timeout <= 0:
            raise ValueError("the fragment timeout must be positive")
        for name in ("max_reassembly_datagrams", "max_reassembly_bytes", "max_fragments_per_datagram",
                     "udp_receive_queue", "udp_receive_bytes", "icmp_error_burst"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        low, high = self.ephemeral_ports
        if not 1 <= low <= high <= 65535:
            raise ValueError(f"ephemeral port range {low}..{high} invalid")
