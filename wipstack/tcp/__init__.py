"""TCP (RFC 9293) on the wipstack IPv4 layer: connections, listeners, sockets.

Sans-I/O like the rest of the core: :class:`~wipstack.tcp.layer.TcpLayer` is the stack's
transport handler for protocol 6; connections take segments with ``now``, queue segments
for the stack, and expose their next deadline.
"""

from wipstack.tcp.config import TcpConfig
from wipstack.tcp.state import TcpState

__all__ = ["TcpConfig", "TcpState"]
