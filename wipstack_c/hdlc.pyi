"""Type stub for the Cython twin of ``wipstack._py.hdlc`` (same names and signatures)."""

from typing import Final, TypeAlias

_Buffer: TypeAlias = bytes | bytearray | memoryview

__all__ = [
    "DEFAULT_ACCM",
    "DEFAULT_MAX_FRAME",
    "ESCAPE",
    "FLAG",
    "MAX_FRAME_LIMIT",
    "HdlcDeframer",
    "hdlc_encode",
    "hdlc_escape",
    "hdlc_unescape",
]

FLAG: Final[int]
ESCAPE: Final[int]
DEFAULT_ACCM: Final[int]
DEFAULT_MAX_FRAME: Final[int]
MAX_FRAME_LIMIT: Final[int]

def hdlc_escape(data: _Buffer, accm: int) -> bytes: ...
def hdlc_unescape(data: _Buffer) -> bytes: ...
def hdlc_encode(frame: _Buffer, accm: int = 0xFFFFFFFF, fcs_bits: int = 16) -> bytes: ...

class HdlcDeframer:
    frames: int
    bad_fcs: int
    aborted: int
    too_long: int
    too_short: int
    bytes_in: int
    max_frame: int
    rx_accm: int
    fcs_bits: int
    def __init__(self, max_frame: int = 1508, rx_accm: int = 0xFFFFFFFF, fcs_bits: int = 16) -> None: ...
    def counters(self) -> dict[str, int]: ...
    def reset(self) -> None: ...
    def feed(self, data: _Buffer) -> list[bytes]: ...
