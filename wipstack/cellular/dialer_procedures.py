"""Parsing helpers for the dialer's procedures: SIM status, registration status, caller numbers.

Pure functions over the lines an :class:`~wipstack.cellular.dialer_at.AtPort` collected;
kept apart from the state machine so that each rule can be tested on its own.
"""

from __future__ import annotations

import enum
import re
from typing import Final

from wipstack.cellular.dialer_at import Reply, ResultCode, result_code
from wipstack.cellular.dialer_types import CallFailure

#: 27.007 §9.2.1 verbose +CME ERROR texts we act on, by number.
CME_TEXTS: Final = {
    "SIM NOT INSERTED": 10,
    "SIM PIN REQUIRED": 11,
    "SIM PUK REQUIRED": 12,
    "SIM FAILURE": 13,
    "SIM BUSY": 14,
    "SIM WRONG": 15,
    "INCORRECT PASSWORD": 16,
    "SIM PIN2 REQUIRED": 17,
    "SIM PUK2 REQUIRED": 18,
}
CME_SIM_NOT_INSERTED: Final = 10
CME_SIM_PIN_REQUIRED: Final = 11
CME_SIM_BUSY: Final = 14
#: +CME ERROR numbers that mean "there is a SIM but it wants a code" (27.007 §9.2.1: PH-SIM PIN,
#: SIM PUK, incorrect password, SIM PIN2/PUK2, network and corporate personalisation).
CME_SIM_LOCKED: Final = frozenset({5, 12, 16, 17, 18, *range(40, 48)})

#: 27.007 §7.2 (+CREG) and §10.1 (+CGREG) <stat> values.
REG_NOT_SEARCHING: Final = 0
REG_HOME: Final = 1
REG_SEARCHING: Final = 2
REG_DENIED: Final = 3
REG_UNKNOWN: Final = 4
REG_ROAMING: Final = 5
#: Registered: home, roaming, and "CSFB not preferred" home/roaming (stat 9/10, 27.007 §7.2).
REGISTERED: Final = frozenset({REG_HOME, REG_ROAMING, 9, 10})
#: The network will not have us: not searching, or denied.
REFUSED: Final = frozenset({REG_NOT_SEARCHING, REG_DENIED})
STAT_MEANINGS: Final = {
    0: "not registered, not searching",
    1: "registered, home network",
    2: "not registered, searching",
    3: "registration denied",
    4: "unknown",
    5: "registered, roaming",
    6: "registered for SMS only, home network",
    7: "registered for SMS only, roaming",
    8: "attached for emergency bearer services only",
    9: "registered, CSFB not preferred, home network",
    10: "registered, CSFB not preferred, roaming",
}

#: Characters ATD accepts in a dial string (V.25ter §6.3.1, plus 27.007's international '+').
DIAL_STRING: Final = re.compile(r"\+?[0-9*#ABCDabcd,TPWtpw!@]{1,40}")
#: An APN (23.003 §9.1: labels of letters, digits and '-' joined by '.'; '_' is tolerated);
#: empty asks the network for its default (27.007 §10.1.1).
APN_TEXT: Final = re.compile(r"[A-Za-z0-9._\-]{0,100}")


class SimStatus(enum.Enum):
    """What ``AT+CPIN?`` told about the SIM."""

    READY = "ready"
    NEEDS_PIN = "needs PIN"
    BUSY = "busy"
    LOCKED = "locked"  # PUK, PIN2, PH-SIM PIN, network personalisation...
    ABSENT = "absent"


def cme_number(final: str) -> int | None:
    """The number of a ``+CME ERROR: <n>`` or its 27.007 §9.2.1 verbose text (None if unknown)."""
    if result_code(final) is not ResultCode.CME_ERROR:
        return None
    value = final.split(":", 1)[1].strip()
    if value.isdigit():
        return int(value)
    return CME_TEXTS.get(value.upper())


def sim_status(reply: Reply) -> tuple[SimStatus, str]:
    """Classify the answer to ``AT+CPIN?`` (27.007 §8.3) with a detail text."""
    if reply.ok:
        for line in reply.info:
            if line.upper().startswith("+CPIN:"):
                code = line.split(":", 1)[1].strip().upper()
                if code == "READY":
                    return SimStatus.READY, code
                if code == "SIM PIN":
                    return SimStatus.NEEDS_PIN, code
                return SimStatus.LOCKED, code
        return SimStatus.ABSENT, "no +CPIN line in the answer"
    number = cme_number(reply.final)
    if number == CME_SIM_BUSY:
        return SimStatus.BUSY, reply.final
    if number == CME_SIM_PIN_REQUIRED:
        return SimStatus.NEEDS_PIN, reply.final
    if number in CME_SIM_LOCKED:
        return SimStatus.LOCKED, reply.final
    # 10 SIM not inserted, 13 SIM failure, 15 SIM wrong, a plain ERROR or anything else.
    return SimStatus.ABSENT, reply.final


def registration_stat(reply: Reply, prefix: str) -> int | None:
    """``<stat>`` from the read-form answer ``<prefix> <n>,<stat>...`` (None if absent or unreadable)."""
    for line in reply.info:
        if line.upper().startswith(prefix):
            fields = line.split(":", 1)[1].split(",")
            if len(fields) >= 2 and fields[1].strip().isdigit():
                return int(fields[1].strip())
    return None


def describe_stat(stat: int | None) -> str:
    """Words for a registration ``<stat>``."""
    if stat is None:
        return "no status reported"
    return f"stat {stat} ({STAT_MEANINGS.get(stat, 'reserved')})"


def clip_number(line: str) -> str | None:
    """The calling number of ``+CLIP: "<number>",<type>,...`` (27.007 §7.6); None if withheld or empty."""
    value = line.split(":", 1)[1].split(",", 1)[0].strip().strip('"').strip()
    return value or None


def same_number(wanted: str, caller: str | None) -> bool:
    """Whether a caller matches the expected number.

    Digits are compared after dropping separators and an international ("+", "00") or trunk
    ("0") prefix; the numbers match when equal, or when one ends with the other and the
    shorter has at least 7 digits (a national form against an international one).
    """
    if caller is None:
        return False
    a, b = _significant_digits(wanted), _significant_digits(caller)
    if not a or not b:
        return False
    if a == b:
        return True
    short, long_ = sorted((a, b), key=len)
    return len(short) >= 7 and long_.endswith(short)


def _significant_digits(number: str) -> str:
    digits = "".join(c for c in number if c.isdigit())
    if number.strip().startswith("+"):
        return digits
    if digits.startswith("00"):
        return digits[2:]
    return digits.removeprefix("0")


def circuit_failure(reply: Reply) -> CallFailure:
    """What a non-CONNECT answer to ``ATD<number>`` means (V.25ter §6.3.1 result codes)."""
    return {
        ResultCode.BUSY: CallFailure.BUSY,
        ResultCode.NO_ANSWER: CallFailure.NO_ANSWER,
        ResultCode.NO_CARRIER: CallFailure.NO_CARRIER,
        ResultCode.NO_DIALTONE: CallFailure.NO_CARRIER,
    }.get(reply.code, CallFailure.DATA_FAILED)
