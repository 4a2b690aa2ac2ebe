"""Values shared by the modem simulator's pieces: settings, states, result codes, events, counters.

Everything here is plain data.  :class:`SimulatorSettings` documents every default of the
simulated modem; the wire codes are the ones of ITU-T V.25ter §5.7 (basic result codes,
verbose and numeric) and 3GPP TS 27.007 §9.2 (``+CME ERROR`` values).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from wipstack.wire.v25ter import ResultCode

__all__ = [
    "CME_TEXT",
    "CallConnected",
    "CallEnded",
    "CmeError",
    "DialResult",
    "ModemState",
    "ResultCode",
    "SimState",
    "SimulatorCounters",
    "SimulatorEvent",
    "SimulatorSettings",
]


class SimState(enum.StrEnum):
    """What the SIM asks for (27.007 §8.3 ``+CPIN?``), or that there is none."""

    READY = "ready"
    PIN = "pin"
    PUK = "puk"
    ABSENT = "absent"


class DialResult(enum.StrEnum):
    """How the network answers a circuit-switched data call (``ATD<number>``)."""

    CONNECT = "connect"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    NO_CARRIER = "no-carrier"
    ERROR = "error"
    NO_DIALTONE = "no-dialtone"


class ModemState(enum.Enum):
    """The V.25ter command and online states of one AT port (DIALLING: a call is being set up or answered)."""

    COMMAND = "command"
    DIALLING = "dialling"
    ONLINE = "online"
    ONLINE_COMMAND = "online-command"


class CmeError(enum.IntEnum):
    """The ``+CME ERROR`` values the simulator uses (27.007 §9.2.1 general, §9.2.2 GPRS)."""

    OPERATION_NOT_ALLOWED = 3
    OPERATION_NOT_SUPPORTED = 4
    SIM_NOT_INSERTED = 10
    SIM_PIN_REQUIRED = 11
    SIM_PUK_REQUIRED = 12
    INCORRECT_PASSWORD = 16
    DIAL_STRING_TOO_LONG = 26
    INVALID_DIAL_CHARACTERS = 27
    NO_NETWORK_SERVICE = 30
    INCORRECT_PARAMETERS = 50
    SERVICE_OPTION_NOT_SUPPORTED = 132
    SERVICE_OPTION_NOT_SUBSCRIBED = 133
    SERVICE_OPTION_OUT_OF_ORDER = 134
    UNSPECIFIED_GPRS_ERROR = 148
    PDP_AUTHENTICATION_FAILURE = 149


#: The verbose form of each error (``AT+CMEE=2``), as 27.007 §9.2 words it.
CME_TEXT: dict[CmeError, str] = {
    CmeError.OPERATION_NOT_ALLOWED: "operation not allowed",
    CmeError.OPERATION_NOT_SUPPORTED: "operation not supported",
    CmeError.SIM_NOT_INSERTED: "SIM not inserted",
    CmeError.SIM_PIN_REQUIRED: "SIM PIN required",
    CmeError.SIM_PUK_REQUIRED: "SIM PUK required",
    CmeError.INCORRECT_PASSWORD: "incorrect password",
    CmeError.DIAL_STRING_TOO_LONG: "dial string too long",
    CmeError.INVALID_DIAL_CHARACTERS: "invalid characters in dial string",
    CmeError.NO_NETWORK_SERVICE: "no network service",
    CmeError.INCORRECT_PARAMETERS: "incorrect parameters",
    CmeError.SERVICE_OPTION_NOT_SUPPORTED: "service option not supported",
    CmeError.SERVICE_OPTION_NOT_SUBSCRIBED: "requested service option not subscribed",
    CmeError.SERVICE_OPTION_OUT_OF_ORDER: "service option temporarily out of order",
    CmeError.UNSPECIFIED_GPRS_ERROR: "unspecified GPRS error",
    CmeError.PDP_AUTHENTICATION_FAILURE: "PDP authentication failure",
}

#: 27.007 §7.2 registration states: 0 not registered, 1 home, 2 searching, 3 denied, 4 unknown, 5 roaming.
REGISTRATION_STATES = range(6)
#: Registration states in which calls may be made.
REGISTERED = (1, 5)


@dataclass(frozen=True)
class SimulatorSettings:
    """How the simulated modem and its network behave; every field can be changed live with ``configure``.

    String values are accepted for the enum fields (``sim_state="pin"``, ``dial_result="busy"``).
    """

    #: SIM state after power-on (``ready``, ``pin``: AT+CPIN needed, ``puk``, ``absent``).
    sim_state: SimState = SimState.READY
    #: The SIM's PIN (``AT+CPIN="1234"``); three wrong ones block the SIM (PUK needed).
    pin: str = "1234"
    #: The PUK that unblocks it (``AT+CPIN="<puk>","<new pin>"``).
    puk: str = "12345678"
    #: Wrong PINs accepted before the SIM asks for the PUK.
    pin_attempts: int = 3
    #: ``+CREG`` state once the search is over (1 home, 5 roaming, 3 denied, 0 or 4).
    creg_stat: int = 1
    #: ``+CGREG`` (packet domain) state once the search is over.
    cgreg_stat: int = 1
    #: Seconds of "searching" (stat 2) after power-on, PIN entry or AT+CFUN=1 before the stats above apply.
    registration_delay: float = 0.0
    #: Operator names for ``AT+COPS?`` (long alphanumeric, short alphanumeric, numeric MCC+MNC).
    operator_name: str = "wipstack"
    operator_short: str = "wip"
    operator_numeric: str = "00101"
    #: Location area code and cell id reported with ``AT+CREG=2``/``AT+CGREG=2`` (hexadecimal).
    lac: str = "1A2B"
    cell_id: str = "00C3"
    #: ``AT+CSQ`` signal strength (0-31, 99 unknown) and bit error rate (0-7, 99 unknown).
    rssi: int = 20
    ber: int = 99
    imei: str = "356938035643809"
    imsi: str = "001010123456789"
    manufacturer: str = "wipstack"
    model: str = "modem-sim"
    revision: str = "1.0"
    #: Accepted APNs (compared without case); None accepts any, including the empty one.
    apns: tuple[str, ...] | None = None
    #: How circuit-switched data calls (``ATD<number>``) end; packet calls depend on registration and APN.
    dial_result: DialResult = DialResult.CONNECT
    #: A cause the network rejects every PDP context activation with (e.g. 134 temporarily out of
    #: order, 148 unspecified, 149 authentication failure); None: activations follow ``apns``.
    packet_reject: CmeError | None = None
    #: Seconds between ATD/ATA/AT+CGDATA and CONNECT (or the failure).
    connect_delay: float = 0.5
    #: Seconds between two RINGs of an incoming call.
    ring_interval: float = 1.0
    #: RINGs before an unanswered caller gives up (no result code is sent for that).
    max_rings: int = 10
    #: The verbose CONNECT result (e.g. ``CONNECT 115200``); numeric mode always sends ``1``.
    connect_text: str = "CONNECT"
    #: True: the modem hangs - everything from the DTE is read and ignored and nothing is sent to it.
    mute: bool = False
    #: Command echo after power-on and ATZ (ATE1, like real modems).
    echo: bool = True
    #: Longest command line kept (characters after "AT"); a longer one is answered with ERROR.
    max_line: int = 512
    #: Octets held for the DTE and for the network peer each; more is dropped and counted.
    max_output: int = 1 << 16

    def __post_init__(self) -> None:
        object.__setattr__(self, "sim_state", SimState(self.sim_state))
        object.__setattr__(self, "dial_result", DialResult(self.dial_result))
        if self.packet_reject is not None:
            object.__setattr__(self, "packet_reject", CmeError(self.packet_reject))
        if self.apns is not None:
            object.__setattr__(self, "apns", tuple(self.apns))
        if self.creg_stat not in REGISTRATION_STATES or self.cgreg_stat not in REGISTRATION_STATES:
            raise ValueError("creg_stat and cgreg_stat are 27.007 registration states 0-5")
        if min(self.registration_delay, self.connect_delay) < 0 or self.ring_interval <= 0:
            raise ValueError("delays must not be negative and ring_interval must be positive")
        if not (0 <= self.rssi <= 31 or self.rssi == 99) or not (0 <= self.ber <= 7 or self.ber == 99):
            raise ValueError("rssi is 0-31 or 99, ber 0-7 or 99 (27.007 §8.5)")
        if self.max_rings < 0 or self.pin_attempts < 1 or self.max_line < 16 or self.max_output < 1:
            raise ValueError("max_rings >= 0, pin_attempts >= 1, max_line >= 16 and max_output >= 1")


@dataclass(frozen=True, slots=True)
class CallConnected:
    """A data call reached CONNECT: the driver connects the network peer now."""

    #: "packet" (ATD*99#, AT+CGDATA), "circuit" (ATD<number>) or "incoming" (answered).
    kind: str
    #: The APN of a packet call, the number dialled, or the caller's number.
    detail: str


@dataclass(frozen=True, slots=True)
class CallEnded:
    """A connected call ended: the driver disconnects the network peer now."""

    #: hangup (ATH), dtr, reset (ATZ, AT+CFUN), network (drop_call), peer (the peer hung up),
    #: registration (service lost), sim (SIM gone), deactivated (AT+CGACT=0, AT+CGATT=0) or
    #: mux (the 27.010 channel that carried the call closed).
    reason: str


SimulatorEvent = CallConnected | CallEnded


@dataclass
class SimulatorCounters:
    """What the simulator did and dropped (for tests and the driver's status line)."""

    command_lines: int = 0
    errors: int = 0
    lines_too_long: int = 0
    calls: int = 0
    dial_aborts: int = 0
    escapes: int = 0
    rings: int = 0
    missed_calls: int = 0
    refused_incoming: int = 0
    #: octets from the DTE bridged to the peer, and from the peer to the DTE.
    to_peer: int = 0
    from_peer: int = 0
    #: octets from the peer while no call was online (dropped).
    peer_dropped_offline: int = 0
    #: octets dropped because the DTE (or the peer) did not read its buffer.
    dte_output_dropped: int = 0
    peer_output_dropped: int = 0
    #: octets from the DTE ignored, and octets not sent to it, while muted.
    ignored_while_muted: int = 0
    muted_output: int = 0
    #: unsolicited result codes not sent because the port was in online data mode.
    urcs_suppressed: int = 0
    #: octets from the DTE right after a dial command's terminator (not an abort, V.25ter §6.3.1).
    ignored_after_dial: int = 0
