"""Type stub for the Cython twin of ``wipstack._py.checksum`` (same names and signatures)."""

from typing import TypeAlias

_Buffer: TypeAlias = bytes | bytearray | memoryview

__all__ = ["inet_checksum", "inet_sum", "pseudo_header_sum"]

def inet_sum(data: _Buffer, initial: int = 0) -> int: ...
def inet_checksum(data: _Buffer, initial: int = 0) -> int: ...
def pseudo_header_sum(src: _Buffer, dst: _Buffer, protocol: int, length: int) -> int: ...
