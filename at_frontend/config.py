"""What the virtual module says about itself, and its simulated radio (documented defaults).

Without a cellular modem attached, the 27.007 commands that +WIP clients send around the
+WIP ones (``AT+CPIN?``, ``AT+CREG?``, ``AT+CSQ``…) are answered from :class:`RadioState`:
by default the SIM is ready and the module is registered on its home network with a fair
signal, which is what clients wait for before they start the IP stack.  Tests and users
change it to rehearse failures (a missing SIM gives 810, a PIN not entered 811).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class SimState(enum.Enum):
    """27.007 §8.3 ``+CPIN`` states we simulate."""

    READY = "READY"
    PIN = "SIM PIN"
    ABSENT = "ABSENT"


@dataclass(slots=True)
class RadioState:
    """The simulated radio side, changed by ``AT+CPIN=``, ``AT+CGATT=``, ``AT+CFUN=``."""

    sim: SimState = SimState.READY
    pin: str = "0000"
    registration: int = 1  # 27.007 §7.2 <stat>: 1 registered, home network
    gprs_registration: int = 1
    lac: str = "0001"
    cell_id: str = "0001"
    rssi: int = 20  # 27.007 §8.5: 20 is -73 dBm
    ber: int = 99  # not known
    gprs_attached: bool = True
    functionality: int = 1
    operator: str = "WIPSTACK"


@dataclass(slots=True)
class ModuleConfig:
    """Identity strings, limits and timing of the virtual module."""

    manufacturer: str = "WAVECOM MODEM"
    model: str = "MULTIBAND  900E  1800"
    revision: str = "R7.46.0.201108091301.WMP50 wipstack"
    imei: str = "012345678901234"
    wip_version: str = "WIPSOFT v2.02 compatible"
    #: Longest command line accepted (V.25ter leaves it to the DCE; Wavecom takes 512).
    max_line: int = 512
    #: Unsolicited lines held for a channel in data mode or busy; older ones are dropped (counted).
    max_held_urcs: int = 64
    #: Output bytes a channel may hold for its UART before socket data is left in the socket.
    uart_buffer: int = 8192
    #: ``+++`` escape: leading silence accepted (nominal guard 1 s), gap between '+', trailing silence.
    escape_lead_min: float = 0.5
    escape_inter_char: float = 1.0
    escape_trail_guard: float = 0.5
    #: GPRS (bearer 6) without a cellular modem: run it over the host's network bearer
    #: ("tun": a Linux TUN device), so clients that only know GPRS work unchanged; None: 805.
    gprs_backend: str | None = None
    radio: RadioState = field(default_factory=RadioState)
