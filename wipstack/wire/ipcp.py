"""IPCP configuration options (RFC 1332 §3, RFC 1877 §1).

Option values after Type and Length::

      1 IP-Addresses (deprecated)  Source-IP-Address (32 bits), Destination-IP-Address (32 bits)
      2 IP-Compression-Protocol    IP-Compression-Protocol (16 bits), Data ...
      3 IP-Address                 IP-Address (32 bits); 0.0.0.0 asks the peer to assign one
    129 Primary-DNS-Address        (32 bits)  RFC 1877
    130 Primary-NBNS-Address       (32 bits)
    131 Secondary-DNS-Address      (32 bits)
    132 Secondary-NBNS-Address     (32 bits)
"""

from __future__ import annotations

import enum
from ipaddress import IPv4Address
from typing import Any

from construct import Adapter, Bytes, Construct, GreedyBytes, Int16ub, Struct

from wipstack.errors import MalformedPacket
from wipstack.wire.cp import RawOption, decode_value, encode_value

VJ_COMPRESSION = 0x002D


class IpcpOptionType(enum.IntEnum):
    """IPCP option types."""

    IP_ADDRESSES = 1
    IP_COMPRESSION_PROTOCOL = 2
    IP_ADDRESS = 3
    PRIMARY_DNS = 129
    PRIMARY_NBNS = 130
    SECONDARY_DNS = 131
    SECONDARY_NBNS = 132


class _Ipv4AddressAdapter(Adapter):  # type: ignore[misc]
    """Four octets as an ``ipaddress.IPv4Address``."""

    def _decode(self, obj: bytes, context: Any, path: Any) -> IPv4Address:
        return IPv4Address(obj)

    def _encode(self, obj: IPv4Address | str, context: Any, path: Any) -> bytes:
        return IPv4Address(obj).packed


Ipv4AddressField = _Ipv4AddressAdapter(Bytes(4))

IP_COMPRESSION_VALUE = Struct("protocol" / Int16ub, "data" / GreedyBytes)
IP_ADDRESSES_VALUE = Struct("source" / Ipv4AddressField, "destination" / Ipv4AddressField)

#: The value format of every option type IPCP understands.
IPCP_OPTION_VALUES: dict[int, Construct] = {
    IpcpOptionType.IP_ADDRESSES: IP_ADDRESSES_VALUE,
    IpcpOptionType.IP_COMPRESSION_PROTOCOL: IP_COMPRESSION_VALUE,
    IpcpOptionType.IP_ADDRESS: Ipv4AddressField,
    IpcpOptionType.PRIMARY_DNS: Ipv4AddressField,
    IpcpOptionType.PRIMARY_NBNS: Ipv4AddressField,
    IpcpOptionType.SECONDARY_DNS: Ipv4AddressField,
    IpcpOptionType.SECONDARY_NBNS: Ipv4AddressField,
}


def ipcp_option(option_type: IpcpOptionType, value: Any) -> RawOption:
    """Build an IPCP option: ``ipcp_option(IpcpOptionType.IP_ADDRESS, IPv4Address("192.0.2.1"))``."""
    return encode_value(IPCP_OPTION_VALUES, option_type, value)


def decode_ipcp_option(option: RawOption) -> Any:
    """The typed value of an IPCP option (IPv4Address or Container)."""
    return decode_value(IPCP_OPTION_VALUES, option)


def format_ipcp_option(option: RawOption) -> str:
    """pppd's rendering of an option, e.g. ``<addr 192.0.2.1>`` or ``<compress VJ 0f 01>``."""
    try:
        value = decode_ipcp_option(option)
    except MalformedPacket:
        return f"<opt{option.type} {option.data.hex(' ')}>".replace(" >", ">")
    kind = option.type
    if kind == IpcpOptionType.IP_ADDRESS:
        return f"<addr {value}>"
    if kind == IpcpOptionType.IP_ADDRESSES:
        return f"<addrs {value.source} {value.destination}>"
    if kind == IpcpOptionType.IP_COMPRESSION_PROTOCOL:
        name = "VJ" if value.protocol == VJ_COMPRESSION else f"0x{value.protocol:x}"
        extra = f" {value.data.hex(' ')}" if value.data else ""
        return f"<compress {name}{extra}>"
    names = {
        IpcpOptionType.PRIMARY_DNS: "ms-dns1",
        IpcpOptionType.SECONDARY_DNS: "ms-dns2",
        IpcpOptionType.PRIMARY_NBNS: "ms-wins1",
        IpcpOptionType.SECONDARY_NBNS: "ms-wins2",
    }
    return f"<{names[IpcpOptionType(kind)]} {value}>"
