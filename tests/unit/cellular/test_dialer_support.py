"""Test support for the dialer (no tests here): a scripted modem side and a fake clock.

The modem is played byte for byte: :meth:`Conversation.expect` asserts exactly which octets
the dialer wrote since the last exchange and then feeds the modem's answer, split the way the
test asks (whole, octet by octet, or at fixed cuts).  Time only moves when a test says so,
either by a fixed amount or to the dialer's own next deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from wipstack.cellular.dialer import ModemDialer
from wipstack.cellular.dialer_types import DialerEvent

Splitter = Callable[[bytes], list[bytes]]
OK = b"\r\nOK\r\n"
CPIN_READY = b"\r\n+CPIN: READY\r\n\r\nOK\r\n"


def whole(data: bytes) -> list[bytes]:
    return [data]


def octets(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def pairs(data: bytes) -> list[bytes]:
    return [data[i : i + 2] for i in range(0, len(data), 2)]


SPLITTERS: dict[str, Splitter] = {"whole": whole, "octets": octets, "pairs": pairs}


class Conversation:
    """The modem side of a dialer conversation, with a clock that only the test moves."""

    def __init__(self, dialer: ModemDialer, split: Splitter = whole, now: float = 0.0) -> None:
        self.dialer = dialer
        self.split = split
        self.now = now
        self.seen: list[DialerEvent] = []

    def expect(self, sent: bytes, reply: bytes = b"") -> None:
        """The dialer must have written exactly ``sent``; the modem then answers ``reply``."""
        assert self.dialer.bytes_to_send() == sent
        if reply:
            self.says(reply)

    def exchange(self, pairs: Iterable[tuple[bytes, bytes]]) -> None:
        for sent, reply in pairs:
            self.expect(sent, reply)

    def says(self, data: bytes) -> None:
        for chunk in self.split(data):
            self.dialer.receive(chunk, self.now)

    def silent(self) -> None:
        """The dialer has nothing to send."""
        assert self.dialer.bytes_to_send() == b""

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.dialer.on_timer(self.now)

    def to_deadline(self) -> float:
        """Move the clock to the dialer's next deadline and run it; returns the time moved."""
        deadline = self.dialer.next_deadline()
        assert deadline is not None
        assert deadline >= self.now
        moved = deadline - self.now
        self.now = deadline
        self.dialer.on_timer(self.now)
        return moved

    def events(self) -> list[DialerEvent]:
        new = self.dialer.events()
        self.seen += new
        return new


def init_exchange(*, echo: bool = False, extra: Iterable[tuple[bytes, bytes]] = ()) -> list[tuple[bytes, bytes]]:
    """The init sequence answered by a well-behaved modem (echoing ``AT``/``ATE0`` if ``echo``)."""
    out = [
        (b"AT\r", (b"AT\r" if echo else b"") + OK),
        (b"ATE0\r", (b"ATE0\r" if echo else b"") + OK),
        (b"ATV1\r", OK),
        (b"AT+CMEE=1\r", OK),
        *extra,
        (b"AT+CPIN?\r", CPIN_READY),
    ]
    return out


def registered(command: bytes = b"AT+CGREG?\r", stat: int = 1) -> tuple[bytes, bytes]:
    name = command[2:-2]
    return command, b"\r\n" + name + b": 0," + str(stat).encode() + b"\r\n" + OK


def ppp_frame(payload: bytes) -> bytes:
    """A PPP-looking frame: flag, FF 03, payload, two FCS octets, flag (FCS not checked here)."""
    return b"\x7e\xff\x03" + payload + b"\x12\x34\x7e"


class SaneModem:
    """A modem that answers every command the dialer sends, for tests that need no script."""

    ANSWERS = {
        b"AT+CPIN?": CPIN_READY,
        b"AT+CGREG?": b"\r\n+CGREG: 0,1\r\n" + OK,
        b"AT+CREG?": b"\r\n+CREG: 0,1\r\n" + OK,
    }

    def __init__(self) -> None:
        self.pending = bytearray()
        self.commands: list[bytes] = []

    def answer(self, written: bytes) -> bytes:
        """What the modem says back to the octets the dialer wrote."""
        self.pending += written
        out = bytearray()
        while b"\r" in self.pending:
            line, _, rest = bytes(self.pending).partition(b"\r")
            self.pending = bytearray(rest)
            if not line:
                continue
            self.commands.append(line)
            if line.startswith(b"ATD") or line == b"ATA":
                out += b"\r\nCONNECT 115200\r\n"
            else:
                out += self.ANSWERS.get(line, OK)
        return bytes(out)
