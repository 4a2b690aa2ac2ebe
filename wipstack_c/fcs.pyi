"""Type stub for the Cython twin of ``wipstack._py.fcs`` (same names and signatures)."""

from typing import Final, TypeAlias

_Buffer: TypeAlias = bytes | bytearray | memoryview

__all__ = ["FCS16_GOOD", "FCS16_INIT", "FCS32_GOOD", "FCS32_INIT", "fcs16", "fcs32"]

FCS16_INIT: Final[int]
FCS16_GOOD: Final[int]
FCS32_INIT: Final[int]
FCS32_GOOD: Final[int]

def fcs16(data: _Buffer, initial: int = 0xFFFF) -> int: ...
def fcs32(data: _Buffer, initial: int = 0xFFFFFFFF) -> int: ...
