"""The IPv4 network layer: interfaces, routing, IPv4 in and out, ICMP and UDP sockets.

Sans-I/O like the rest of the core: :class:`~wipstack.net.stack.Stack` takes datagrams from
interfaces with ``now``, hands datagrams for interfaces back, and tells its next deadline.
The drivers (``wipstack.drivers``) move those datagrams over PPP links and TUN devices.
"""

from wipstack.net.config import StackConfig
from wipstack.net.interface import Interface
from wipstack.net.stack import Stack

__all__ = ["Interface", "Stack", "StackConfig"]
