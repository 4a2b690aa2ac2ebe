"""ITU-T V.25ter (V.250) basic result codes, shared by the virtual module and the modem simulator."""

from __future__ import annotations

import enum


class ResultCode(enum.IntEnum):
    """V.25ter §5.7.1 final result codes: the value is the numeric form (ATV0), the name the verbose one."""

    OK = 0
    CONNECT = 1
    RING = 2
    NO_CARRIER = 3
    ERROR = 4
    NO_DIALTONE = 6
    BUSY = 7
    NO_ANSWER = 8

    @property
    def text(self) -> str:
        """The verbose form (``NO CARRIER``)."""
        return self.name.replace("_", " ")
