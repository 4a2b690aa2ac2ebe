"""One AT conversation with a modem port (sans-I/O): lines, one outstanding command, online data.

A :class:`AtPort` is the engine under :class:`~wipstack.cellular.dialer.ModemDialer`.  Without
a multiplexer there is one port, the serial line itself; with 27.010 CMUX each DLCI the dialer
uses (1 for AT, 2 for the data call) gets its own port, so the call procedures never know
which it is.  A port knows nothing of calls: it sends a command, collects its answer and
reports what else the modem said.

Command mode (ITU-T V.25ter §5.7, 3GPP TS 27.007 §9.2)
    Input is split into lines at CR *or* LF (so ``<CR><LF>text<CR><LF>`` verbose responses,
    ``text<CR>`` numeric ones and stray bare CRs or LFs all work; empty lines are skipped).
    A line longer than :data:`MAX_LINE` is dropped and counted.  With a command outstanding
    each line is, in this order of tests:

    * a **final result code** -- ``OK``, ``CONNECT [text]``, ``ERROR``, ``+CME ERROR: <n>``,
      ``+CMS ERROR: <n>``, ``BUSY``, ``NO ANSWER``, ``NO DIALTONE``/``NO DIAL TONE`` or their
      V.25ter numeric forms (0 OK, 1 CONNECT, 3 NO CARRIER, 4 ERROR, 6 NO DIALTONE, 7 BUSY,
      8 NO ANSWER).  ``NO CARRIER`` ends only call-control commands (ATD, ATA, ATH); for any
      other command it is unsolicited (a call that dropped earlier);
    * the **echo** of a recently sent command (the modem may ignore ``ATE0``);
    * an **unsolicited result code** (``RING``/``2``, ``+CRING``, ``+CLIP``, ``+CREG``,
      ``+CGREG``, ``+CSQ``, ...).  A ``+CREG:``/``+CGREG:``/``+CEREG:`` line is the answer to the
      read command only in its read form ``<n>,<stat>[,...]`` (second field an unquoted number);
      the URC form ``<stat>[,"<lac>","<ci>"...]`` is unsolicited (27.007 §7.2 and +CGREG in §10.1);
    * otherwise an **information response** line of the command (at most
      :data:`MAX_INFO_LINES` kept).

    Without a command outstanding every line but an echo is unsolicited (a late answer to a
    command that timed out is reported the same way and ignored by the procedures).
    A command that gets no final result within its timeout is sent again (``attempts`` in
    all) and then reported as timed out.

Online (data) mode
    A ``CONNECT`` answering a command sent with ``connects=True`` switches the port online
    at that very octet: what follows in the same chunk is payload (one LF right after the
    CONNECT line's CR is its terminator, not payload).  Payload is handed over untouched
    except for the modem's own end-of-call report, found by :class:`CarrierWatch`.

The NO CARRIER rule (documented contract with the payload)
    The payload of every call the dialer makes is PPP in RFC 1662 HDLC-like framing, so
    every frame starts and ends with a 0x7E flag and, with the default ACCM, no CR or LF
    appears inside a frame (RFC 1662 §7.1); even with ACCM 0 a frame does not *begin* with
    CR or LF: it begins with the address 0xFF or, with ACFC, its protocol field, and CR/LF
    there would mean protocol 0x000D or 0x0Axx, none of them assigned.  Hence ``NO CARRIER``
    is recognised only **outside frames**: right after a flag (where it must be preceded by
    at least one CR or LF) or at the very start of the online stream (where the leading
    CR/LF is optional), then followed by CR or LF.  The same text anywhere else -- inside a
    frame's information field -- is payload.  Octets that could still become a NO CARRIER
    are held (at most 15) until they can be decided.
"""

from __future__ import annotations

import enum
import re
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Final, TypeAlias

#: Longest line kept in command mode (27.007 responses are far shorter).
MAX_LINE: Final = 512
#: Information response lines kept per command; more are dropped and counted.
MAX_INFO_LINES: Final = 32
#: Online payload waiting for :meth:`AtPort.take_payload`; beyond it octets are dropped and counted.
MAX_PAYLOAD_BUFFER: Final = 256 * 1024
#: Longest entry written to the transcript.
MAX_TRANSCRIPT_ENTRY: Final = 160
#: How many recent command texts are recognised as echo.
ECHO_MEMORY: Final = 4

PPP_FLAG: Final = 0x7E
_NO_CARRIER: Final = b"NO CARRIER"
#: CR/LF octets allowed before NO CARRIER in the online stream.
_MAX_LEAD: Final = 4
_LINE_END = re.compile(rb"[\r\n]")


class PortDrop(enum.Enum):
    """What a port threw away (the keys of :attr:`AtPort.drops`)."""

    LINE_TOO_LONG = "command-mode line longer than MAX_LINE"
    INFO_OVERFLOW = "more information lines than MAX_INFO_LINES"
    PAYLOAD_OVERFLOW = "payload octets beyond MAX_PAYLOAD_BUFFER (consumer not draining)"


class ResultCode(enum.Enum):
    """V.25ter result codes (§5.7.1, Table 1) plus the 27.007 error reports (§9.2)."""

    OK = "OK"
    CONNECT = "CONNECT"
    RING = "RING"
    NO_CARRIER = "NO CARRIER"
    ERROR = "ERROR"
    NO_DIALTONE = "NO DIALTONE"
    BUSY = "BUSY"
    NO_ANSWER = "NO ANSWER"
    CME_ERROR = "+CME ERROR"
    CMS_ERROR = "+CMS ERROR"


_NUMERIC_CODES: Final = {
    "0": ResultCode.OK,
    "1": ResultCode.CONNECT,
    "2": ResultCode.RING,
    "3": ResultCode.NO_CARRIER,
    "4": ResultCode.ERROR,
    "6": ResultCode.NO_DIALTONE,
    "7": ResultCode.BUSY,
    "8": ResultCode.NO_ANSWER,
}
_VERBOSE_CODES: Final = {
    "OK": ResultCode.OK,
    "RING": ResultCode.RING,
    "NO CARRIER": ResultCode.NO_CARRIER,
    "ERROR": ResultCode.ERROR,
    "NO DIALTONE": ResultCode.NO_DIALTONE,
    "NO DIAL TONE": ResultCode.NO_DIALTONE,
    "BUSY": ResultCode.BUSY,
    "NO ANSWER": ResultCode.NO_ANSWER,
}
#: Line prefixes of unsolicited result codes we may see interleaved with responses.
URC_PREFIXES: Final = (
    "RING",
    "+CRING:",
    "+CLIP:",
    "+CCWA:",
    "+CREG:",
    "+CGREG:",
    "+CEREG:",
    "+CSQ:",
    "+CMTI:",
    "+CMT:",
    "+CDS:",
    "+CBM:",
    "+CUSD:",
    "+CIEV:",
    "+CGEV:",
    "+CTZV:",
    "+WIND:",
    "^",
    "NO CARRIER",
)
_REGISTRATION_PREFIXES: Final = ("+CREG:", "+CGREG:", "+CEREG:")


def result_code(line: str) -> ResultCode | None:
    """The result code a stripped line carries, or None for any other line."""
    upper = line.upper()
    if upper in _VERBOSE_CODES:
        return _VERBOSE_CODES[upper]
    if line in _NUMERIC_CODES:
        return _NUMERIC_CODES[line]
    if upper == "CONNECT" or upper.startswith("CONNECT "):
        return ResultCode.CONNECT
    if upper.startswith("+CME ERROR:"):
        return ResultCode.CME_ERROR
    if upper.startswith("+CMS ERROR:"):
        return ResultCode.CMS_ERROR
    return None


def is_registration_read_form(line: str) -> bool:
    """True for ``+CREG: <n>,<stat>...`` (read answer), False for the URC ``+CREG: <stat>...`` (27.007 §7.2)."""
    fields = line.split(":", 1)[1].split(",")
    return len(fields) >= 2 and fields[0].strip().isdigit() and fields[1].strip().isdigit()


def is_unsolicited(line: str, info_prefix: str | None) -> bool:
    """Whether a non-final line is an unsolicited result code rather than the command's information."""
    upper = line.upper()
    if info_prefix is not None and upper.startswith(info_prefix):
        if info_prefix in _REGISTRATION_PREFIXES:
            return not is_registration_read_form(line)
        return False
    return line in ("2",) or upper.startswith(URC_PREFIXES)


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to one command: its information lines and final result code."""

    command: str
    info: tuple[str, ...]
    code: ResultCode
    #: the final line as received (e.g. ``"+CME ERROR: 10"``, ``"CONNECT 115200"``)
    final: str
    #: octets after the final line in the same chunk, when the port detached after it (CMUX)
    trailing: bytes = b""

    @property
    def ok(self) -> bool:
        """The command succeeded (``OK``)."""
        return self.code is ResultCode.OK

    @property
    def connect_text(self) -> str:
        """What followed ``CONNECT`` (empty for numeric ``1`` or bare ``CONNECT``)."""
        return self.final[len("CONNECT") :].strip() if self.final.upper().startswith("CONNECT") else ""

    def describe(self) -> str:
        """``command -> final`` for error details (the last info line too, if any)."""
        info = f" ({self.info[-1]})" if self.info else ""
        return f"{self.command} -> {self.final}{info}"


@dataclass(frozen=True, slots=True)
class Completed:
    """The outstanding command got its final result code."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class TimedOut:
    """The outstanding command got no final result code after all its attempts."""

    command: str


@dataclass(frozen=True, slots=True)
class Unsolicited:
    """A line that answers no outstanding command (a URC, or a late or stray result)."""

    line: str


@dataclass(frozen=True, slots=True)
class CarrierLost:
    """The call on this port ended: NO CARRIER in the online stream (the port is back in command mode)."""

    reason: str = "no carrier"


PortEvent: TypeAlias = Completed | TimedOut | Unsolicited | CarrierLost


@dataclass(slots=True)
class _Pending:
    text: str
    logged: str
    deadline: float
    timeout: float
    attempts_left: int
    info_prefix: str | None
    connects: bool
    call_control: bool
    detach_on_ok: bool
    info: list[str] = field(default_factory=list)


class _Match(enum.Enum):
    NO = 0
    PARTIAL = 1
    FULL = 2


def _match_no_carrier(candidate: bytes, lead_optional: bool) -> _Match:
    """How ``candidate`` compares with ``[CR|LF]{1..4} NO CARRIER (CR|LF)`` (lead optional at stream start)."""
    lead = 0
    while lead < len(candidate) and candidate[lead] in b"\r\n":
        lead += 1
    if lead > _MAX_LEAD:
        return _Match.NO
    rest = candidate[lead:]
    if not rest:
        return _Match.PARTIAL
    if lead == 0 and not lead_optional:
        return _Match.NO
    if len(rest) <= len(_NO_CARRIER):
        return _Match.PARTIAL if _NO_CARRIER.startswith(rest) else _Match.NO
    if len(rest) == len(_NO_CARRIER) + 1 and rest.startswith(_NO_CARRIER) and rest[-1] in b"\r\n":
        return _Match.FULL
    return _Match.NO


class CarrierWatch:
    """Finds the modem's end-of-call ``NO CARRIER`` between the PPP frames of an online stream."""

    def __init__(self) -> None:
        self._held = bytearray()
        self._hold_at_start = False
        self._at_boundary = True
        self._at_start = True

    @property
    def held(self) -> int:
        """Octets held back because they may begin a NO CARRIER."""
        return len(self._held)

    def release(self) -> bytes:
        """Give up on the held octets (leaving online mode): they are payload after all."""
        out = bytes(self._held)
        self._held.clear()
        return out

    def feed(self, data: bytes) -> tuple[bytes, int | None]:
        """The payload in ``data`` and, if NO CARRIER ended the call, the index just after it."""
        out = bytearray()
        i, n = 0, len(data)
        while i < n:
            octet = data[i]
            if self._held:
                verdict = _match_no_carrier(bytes(self._held) + bytes((octet,)), self._hold_at_start)
                if verdict is _Match.FULL:
                    self._held.clear()
                    return bytes(out), i + 1
                if verdict is _Match.PARTIAL:
                    self._held.append(octet)
                    i += 1
                    continue
                # Not an end-of-call report: the held octets were the start of a frame.
                out += self._held
                self._held.clear()
                self._at_boundary = self._at_start = False
                continue
            if self._at_boundary:
                if octet == PPP_FLAG:
                    out.append(octet)
                    self._at_start = False
                    i += 1
                    continue
                if _match_no_carrier(bytes((octet,)), self._at_start) is _Match.PARTIAL:
                    self._held.append(octet)
                    self._hold_at_start = self._at_start
                    i += 1
                    continue
                self._at_boundary = self._at_start = False
            # Inside a frame (RFC 1662 §4.1): nothing to look at until the next flag.
            flag = data.find(PPP_FLAG, i)
            if flag < 0:
                out += data[i:]
                break
            out += data[i : flag + 1]
            i = flag + 1
            self._at_boundary = True
            self._at_start = False
        return bytes(out), None


class AtPort:
    """One AT conversation (the serial line, or one CMUX DLCI): commands, lines and online data."""

    def __init__(self, name: str, transcript: deque[str], drops: Counter[PortDrop]) -> None:
        self.name = name
        self.transcript = transcript
        self.drops = drops
        self._output = bytearray()
        self._line = bytearray()
        self._discarding = False
        self._swallow_lf = False
        self._pending: _Pending | None = None
        self._recent: deque[str] = deque(maxlen=ECHO_MEMORY)
        self._online = False
        self._detached = False
        self._watch = CarrierWatch()
        self._payload = bytearray()

    # --- state -------------------------------------------------------------------------

    @property
    def online(self) -> bool:
        """The port carries payload (after CONNECT, until NO CARRIER or :meth:`leave_online`)."""
        return self._online

    @property
    def busy(self) -> bool:
        """A command is outstanding."""
        return self._pending is not None

    @property
    def pending_command(self) -> str | None:
        """The outstanding command's text."""
        return self._pending.text if self._pending else None

    @property
    def dialling(self) -> bool:
        """The outstanding command may answer CONNECT (ATD or ATA)."""
        return self._pending is not None and self._pending.connects

    @property
    def line_buffered(self) -> int:
        """Octets of an unfinished command-mode line."""
        return len(self._line)

    def note(self, text: str) -> None:
        """Write a remark to the transcript."""
        self._log("!", text)

    def reset(self) -> None:
        """Forget everything in flight (the line was lost)."""
        self._output.clear()
        self._line.clear()
        self._discarding = self._swallow_lf = False
        self._pending = None
        self._online = False
        self._detached = False
        self._watch = CarrierWatch()

    # --- output --------------------------------------------------------------------------

    @property
    def output_pending(self) -> int:
        """Octets waiting for :meth:`take_output`."""
        return len(self._output)

    def take_output(self, limit: int | None = None) -> bytes:
        """Octets for the modem (at most ``limit``)."""
        size = len(self._output) if limit is None else min(limit, len(self._output))
        out = bytes(self._output[:size])
        del self._output[:size]
        return out

    def command(
        self,
        text: str,
        now: float,
        timeout: float,
        attempts: int = 1,
        *,
        info_prefix: str | None = None,
        connects: bool = False,
        call_control: bool = False,
        detach_on_ok: bool = False,
        logged: str | None = None,
    ) -> None:
        """Send ``text`` + CR and wait for its final result code (``logged`` replaces it in the transcript)."""
        if self._pending is not None:
            raise RuntimeError(f"{self.name}: {self._pending.text} is still outstanding")
        if self._online:
            raise RuntimeError(f"{self.name}: online, cannot send {text}")
        self._pending = _Pending(
            text=text,
            logged=logged or text,
            deadline=now + timeout,
            timeout=timeout,
            attempts_left=max(1, attempts) - 1,
            info_prefix=info_prefix,
            connects=connects,
            call_control=call_control or connects,
            detach_on_ok=detach_on_ok,
        )
        self._transmit_command()

    def _transmit_command(self) -> None:
        assert self._pending is not None
        self._recent.append(self._pending.text.upper())
        self._output += self._pending.text.encode("latin-1") + b"\r"
        self._log(">", self._pending.logged)

    def send_raw(self, data: bytes, logged: str) -> None:
        """Send octets outside any command (``+++``, a dial-abort CR)."""
        self._output += data
        self._log(">", logged)

    def limit_deadline(self, deadline: float) -> None:
        """Wait for the outstanding command no later than ``deadline``, without sending it again."""
        if self._pending is not None:
            self._pending.deadline = min(self._pending.deadline, deadline)
            self._pending.attempts_left = 0

    def cancel(self) -> None:
        """Stop waiting for the outstanding command (a late answer will be unsolicited)."""
        self._pending = None

    def send_payload(self, data: bytes) -> None:
        """Queue online payload for the modem."""
        self._output += data

    # --- online data ---------------------------------------------------------------------

    @property
    def payload_pending(self) -> int:
        """Payload octets waiting for :meth:`take_payload`."""
        return len(self._payload)

    def take_payload(self) -> bytes:
        """Drain the payload received while online."""
        out = bytes(self._payload)
        self._payload.clear()
        return out

    def leave_online(self) -> None:
        """Back to command mode (after ``+++`` or a DTR drop); held octets become payload."""
        if self._online:
            self._store_payload(self._watch.release())
            self._online = False
            self._line.clear()
            self._discarding = False

    def _store_payload(self, data: bytes) -> None:
        room = MAX_PAYLOAD_BUFFER - len(self._payload)
        if len(data) > room:
            self.drops[PortDrop.PAYLOAD_OVERFLOW] += len(data) - max(room, 0)
            data = data[: max(room, 0)]
        self._payload += data

    # --- input ---------------------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> list[PortEvent]:
        """Octets from the modem, split anywhere."""
        events: list[PortEvent] = []
        i, n = 0, len(data)
        while i < n and not self._detached:
            if self._swallow_lf:
                self._swallow_lf = False
                if data[i] == 0x0A:
                    i += 1
                    continue
            if self._online:
                payload, end = self._watch.feed(data[i:])
                self._store_payload(payload)
                if end is None:
                    break
                self._online = False
                self._log("<", "NO CARRIER")
                events.append(CarrierLost())
                i += end
                continue
            match = _LINE_END.search(data, i)
            if match is None:
                self._append_line(data[i:])
                break
            self._append_line(data[i : match.start()])
            i = match.end()
            line, self._line = self._line, bytearray()
            discarded, self._discarding = self._discarding, False
            if discarded:
                continue
            self._handle_line(line.decode("latin-1").strip(), data[match.start()] == 0x0D, events)
            if self._detached:
                # The rest of the chunk is the first multiplexer octets (minus the OK's LF).
                rest = data[i + 1 :] if data[match.start()] == 0x0D and data[i : i + 1] == b"\n" else data[i:]
                last = events[-1]
                assert isinstance(last, Completed)
                reply = last.reply
                events[-1] = Completed(Reply(reply.command, reply.info, reply.code, reply.final, rest))
        return events

    def _append_line(self, chunk: bytes) -> None:
        if self._discarding:
            return
        if len(self._line) + len(chunk) > MAX_LINE:
            self.drops[PortDrop.LINE_TOO_LONG] += 1
            self._line.clear()
            self._discarding = True
            return
        self._line += chunk

    def _handle_line(self, line: str, ended_by_cr: bool, events: list[PortEvent]) -> None:
        if not line:
            return
        pending = self._pending
        if pending is None:
            if line.upper() not in self._recent:
                self._log("<", line)
                events.append(Unsolicited(line))
            return
        code = result_code(line)
        if code is ResultCode.NO_CARRIER and not pending.call_control:
            code = None  # a call that dropped earlier, not this command's answer
        if code is not None and code is not ResultCode.RING:
            self._log("<", line)
            self._pending = None
            if code is ResultCode.CONNECT and pending.connects:
                # V.25ter §6.3.1: payload starts right after the CONNECT line.
                self._online = True
                self._watch = CarrierWatch()
                self._swallow_lf = ended_by_cr
            elif code is ResultCode.OK and pending.detach_on_ok:
                self._detached = True
            events.append(Completed(Reply(pending.text, tuple(pending.info), code, line)))
            return
        if line.upper() in self._recent:
            return  # echo (ATE0 not yet in effect, or ignored)
        self._log("<", line)
        if code is not None or is_unsolicited(line, pending.info_prefix):
            events.append(Unsolicited(line))
        elif len(pending.info) < MAX_INFO_LINES:
            pending.info.append(line)
        else:
            self.drops[PortDrop.INFO_OVERFLOW] += 1

    # --- timers --------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When the outstanding command times out."""
        return self._pending.deadline if self._pending else None

    def on_timer(self, now: float) -> list[PortEvent]:
        """Resend or give up on a command whose deadline has passed."""
        pending = self._pending
        if pending is None or now < pending.deadline:
            return []
        if pending.attempts_left > 0:
            pending.attempts_left -= 1
            pending.deadline = now + pending.timeout
            pending.info.clear()
            self._log("!", f"no answer to {pending.logged}, sending it again")
            self._transmit_command()
            return []
        self._pending = None
        self._log("!", f"no answer to {pending.logged}")
        return [TimedOut(pending.text)]

    # --- transcript ----------------------------------------------------------------------

    def _log(self, direction: str, text: str) -> None:
        entry = f"{self.name}{direction} {text}" if self.name else f"{direction} {text}"
        if len(entry) > MAX_TRANSCRIPT_ENTRY:
            entry = entry[: MAX_TRANSCRIPT_ENTRY - 3] + "..."
        self.transcript.append(entry)
