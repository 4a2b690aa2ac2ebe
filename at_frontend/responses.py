"""Result codes, `+CME ERROR` codes and how a channel's settings frame them (V.25ter §5.7–5.8).

With ``ATV1`` (verbose, the default) every line goes out as ``<CR><LF>text<CR><LF>``; with
``ATV0`` information text is ``text<CR><LF>`` and result codes are the bare number then
``<CR>``; ``ATQ1`` suppresses result codes (not information text).  ``AT+CMEE`` chooses
how a failure reads: 0 plain ``ERROR``, 1 ``+CME ERROR: <n>``, 2 ``+CME ERROR: <text>``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from wipstack.wire.v25ter import ResultCode as ResultCode  # re-exported: the module's result codes


class CmeError(enum.IntEnum):
    """3GPP 27.007 §9.2 codes we use, and the WIPSoft 8xx codes (the seed guide's table)."""

    OPERATION_NOT_ALLOWED = 3
    OPERATION_NOT_SUPPORTED = 4
    SIM_NOT_INSERTED = 10
    SIM_PIN_REQUIRED = 11
    INCORRECT_PASSWORD = 16
    INVALID_INDEX = 21
    TEXT_STRING_TOO_LONG = 24
    INVALID_CHARACTERS = 25
    NO_NETWORK_SERVICE = 30
    UNKNOWN = 100
    INVALID_OPTION = 800
    INVALID_OPTION_VALUE = 801
    NOT_ENOUGH_MEMORY = 802
    NOT_ALLOWED_IN_STACK_STATE = 803
    DEVICE_ALREADY_OPEN = 804
    INTERFACE_NOT_AVAILABLE = 805
    NOT_ALLOWED_ON_BEARER = 806
    BEARER_BUSY = 807
    BEARER_NO_ANSWER = 808
    BEARER_NO_CARRIER = 809
    BEARER_NO_SIM = 810
    BEARER_SIM_NOT_READY = 811
    BEARER_GPRS_FAILURE = 812
    BEARER_LCP_FAILED = 813
    BEARER_AUTH_FAILED = 814
    BEARER_IPCP_FAILED = 815
    BEARER_PEER_TERMINATED = 816
    BEARER_PEER_NO_ECHO = 817
    INCOMING_CALL_REFUSED = 818
    PING_CHANNEL_ERROR = 819
    FLASH_WRITE_ERROR = 820
    FLASH_READ_ERROR = 821
    BAD_INDEX = 830
    BAD_STATE = 831
    BAD_PORT_NUMBER = 832
    BAD_PORT_STATE = 833
    NOT_IMPLEMENTED = 834
    OPTION_NOT_SUPPORTED = 835
    MEMORY = 836
    BAD_PROTOCOL = 837
    NO_MORE_FREE_SOCKET = 838
    CHANNEL_CREATION_ERROR = 839
    INDEX_ALREADY_ACTIVE = 840
    PEER_CLOSED = 841
    HOST_UNREACHABLE = 842
    CONNECTION_RESET = 843
    STACK_ALREADY_STARTED = 844
    INDEX_RESERVED_BY_SERVER = 845
    INTERNAL_ERROR = 846
    GPRS_TIMEOUT = 847
    BEARER_CONNECT_IMPOSSIBLE = 848
    DATA_FLOW_FAILED = 849
    UNKNOWN_REASON = 850
    BAD_STATE_ANY = 851


#: The text of ``AT+CMEE=2`` (the seed guide's wording for the 8xx codes).
CME_TEXT: dict[CmeError, str] = {
    CmeError.OPERATION_NOT_ALLOWED: "operation not allowed",
    CmeError.OPERATION_NOT_SUPPORTED: "operation not supported",
    CmeError.SIM_NOT_INSERTED: "SIM not inserted",
    CmeError.SIM_PIN_REQUIRED: "SIM PIN required",
    CmeError.INCORRECT_PASSWORD: "incorrect password",
    CmeError.INVALID_INDEX: "invalid index",
    CmeError.TEXT_STRING_TOO_LONG: "text string too long",
    CmeError.INVALID_CHARACTERS: "invalid characters in text string",
    CmeError.NO_NETWORK_SERVICE: "no network service",
    CmeError.UNKNOWN: "unknown",
    CmeError.INVALID_OPTION: "invalid option",
    CmeError.INVALID_OPTION_VALUE: "invalid option value",
    CmeError.NOT_ENOUGH_MEMORY: "not enough memory",
    CmeError.NOT_ALLOWED_IN_STACK_STATE: "operation not allowed in the current WIP stack state",
    CmeError.DEVICE_ALREADY_OPEN: "device already open",
    CmeError.INTERFACE_NOT_AVAILABLE: "network interface not available",
    CmeError.NOT_ALLOWED_ON_BEARER: "operation not allowed on the selected bearer",
    CmeError.BEARER_BUSY: "bearer connection failure: line busy",
    CmeError.BEARER_NO_ANSWER: "bearer connection failure: no answer",
    CmeError.BEARER_NO_CARRIER: "bearer connection failure: no carrier",
    CmeError.BEARER_NO_SIM: "bearer connection failure: no SIM card present",
    CmeError.BEARER_SIM_NOT_READY: "bearer connection failure: SIM not ready (no pin code entered)",
    CmeError.BEARER_GPRS_FAILURE: "bearer connection failure: error during GPRS activation",
    CmeError.BEARER_LCP_FAILED: "bearer connection failure: PPP LCP negotiation failed",
    CmeError.BEARER_AUTH_FAILED: "bearer connection failure: PPP authentication failed",
    CmeError.BEARER_IPCP_FAILED: "bearer connection failure: PPP IPCP negotiation failed",
    CmeError.BEARER_PEER_TERMINATED: "bearer connection failure: PPP peer terminates session",
    CmeError.BEARER_PEER_NO_ECHO: "bearer connection failure: PPP peer does not answer to echo request",
    CmeError.INCOMING_CALL_REFUSED: "incoming call refused",
    CmeError.PING_CHANNEL_ERROR: "error on Ping channel",
    CmeError.FLASH_WRITE_ERROR: "error writing configuration in FLASH memory",
    CmeError.FLASH_READ_ERROR: "error reading configuration in FLASH memory",
    CmeError.BAD_INDEX: "bad index",
    CmeError.BAD_STATE: "bad state",
    CmeError.BAD_PORT_NUMBER: "bad port number",
    CmeError.BAD_PORT_STATE: "bad port state",
    CmeError.NOT_IMPLEMENTED: "not implemented",
    CmeError.OPTION_NOT_SUPPORTED: "option not supported",
    CmeError.MEMORY: "memory",
    CmeError.BAD_PROTOCOL: "bad protocol",
    CmeError.NO_MORE_FREE_SOCKET: "no more free socket",
    CmeError.CHANNEL_CREATION_ERROR: "error during channel creation",
    CmeError.INDEX_ALREADY_ACTIVE: "UDP/TCP socket or FTP session is already active",
    CmeError.PEER_CLOSED: "peer closed, or error in the FTP connection",
    CmeError.HOST_UNREACHABLE: "destination host unreachable",
    CmeError.CONNECTION_RESET: "connection reset by peer",
    CmeError.STACK_ALREADY_STARTED: "stack already started",
    CmeError.INDEX_RESERVED_BY_SERVER: "index already reserved by a TCP server",
    CmeError.INTERNAL_ERROR: "internal error: FCM subscription failure",
    CmeError.GPRS_TIMEOUT: "bearer connection failure: GPRS timeout expired",
    CmeError.BEARER_CONNECT_IMPOSSIBLE: "impossible to connect to the bearer",
    CmeError.DATA_FLOW_FAILED: "bearer up but data flow establishment failed",
    CmeError.UNKNOWN_REASON: "unknown reason",
    CmeError.BAD_STATE_ANY: "bad state",
}


class CommandError(Exception):
    """A command failed: the channel answers ``ERROR`` or ``+CME ERROR: <code>``.

    ``code`` None means a plain ``ERROR`` whatever ``AT+CMEE`` says (a syntax error).
    """

    def __init__(self, code: CmeError | None, detail: str = "") -> None:
        super().__init__(detail or (CME_TEXT.get(code, str(int(code))) if code is not None else "syntax error"))
        self.code = code
        self.detail = detail


@dataclass(slots=True)
class Framing:
    """A channel's V.25ter settings: echo (E), verbose (V), quiet (Q), and AT+CMEE."""

    echo: bool = True
    verbose: bool = True
    quiet: bool = False
    cmee: int = 0

    def info(self, text: str) -> bytes:
        """An information line (``+CREG: 0,1``)."""
        line = text.encode("latin-1", "replace")
        return b"\r\n" + line + b"\r\n" if self.verbose else line + b"\r\n"

    def result(self, code: ResultCode) -> bytes:
        """A final or intermediate result code (suppressed by ``ATQ1``)."""
        if self.quiet:
            return b""
        if self.verbose:
            return b"\r\n" + code.text.encode() + b"\r\n"
        return str(int(code)).encode() + b"\r"

    def error(self, code: CmeError | None) -> bytes:
        """The failure of a command as ``AT+CMEE`` asks."""
        if code is None or self.cmee == 0:
            return self.result(ResultCode.ERROR)
        if self.quiet:
            return b""
        text = str(int(code)) if self.cmee == 1 else CME_TEXT.get(code, str(int(code)))
        return self.info(f"+CME ERROR: {text}")

    def urc(self, text: str) -> bytes:
        """An unsolicited result code: framed like information text."""
        return self.info(text)
