"""The modem dialer under garbage, arbitrary chunking and arbitrary timing.

* Random octets from the modem, split anywhere and interleaved with timer runs, in any phase
  of a call attempt, never raise and never grow memory beyond the documented caps.
* Garbage while idle, then a sane modem (answers split anywhere): the call still connects.
* Online, PPP-framed payload without the modem's report passes through byte-exact whatever
  the splits, even when frames carry the text NO CARRIER.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.cellular.test_dialer_support import SaneModem
from wipstack.cellular.dialer import MAX_EVENTS, TRANSCRIPT_SIZE, ModemDialer
from wipstack.cellular.dialer_at import MAX_LINE, MAX_PAYLOAD_BUFFER, MAX_TRANSCRIPT_ENTRY
from wipstack.cellular.dialer_types import CallConnected, CallEnded, DialerSettings, DialerState

# Octets and fragments that reach the interesting branches: line ends, result codes, URCs, flags.
fragments = st.one_of(
    st.binary(max_size=40),
    st.sampled_from(
        [
            b"\r",
            b"\n",
            b"\r\n",
            b"OK",
            b"ERROR",
            b"CONNECT",
            b"CONNECT 9600",
            b"NO CARRIER",
            b"RING",
            b"+CRING: ASYNC",
            b'+CLIP: "+3361",145',
            b"+CPIN: READY",
            b"+CPIN: SIM PIN",
            b"+CME ERROR: 14",
            b"+CGREG: 0,1",
            b"+CGREG: 0,2",
            b"+CREG: 1",
            b"0",
            b"1",
            b"2",
            b"3",
            b"\x7e",
            b"\x7e\xff\x03",
            b"\xf9",
            b"AT",
            b"x" * (MAX_LINE + 1),
        ]
    ),
)
garbage = st.lists(fragments, max_size=60).map(b"".join)
# A step is either octets from the modem or a jump of the clock.
steps = st.lists(
    st.one_of(garbage.map(lambda data: ("data", data)), st.floats(0.0, 30.0).map(lambda dt: ("time", dt))),
    max_size=30,
)


def check_bounds(dialer: ModemDialer) -> None:
    for port in dialer._ports():
        assert port.line_buffered <= MAX_LINE
        assert port.payload_pending <= MAX_PAYLOAD_BUFFER
        assert port.output_pending < 4096  # commands only: nobody sends payload here
    assert len(dialer.transcript) <= TRANSCRIPT_SIZE
    assert all(len(entry) <= MAX_TRANSCRIPT_ENTRY for entry in dialer.transcript)
    assert len(dialer._lines) <= 32


def play(dialer: ModemDialer, script: list[tuple[str, object]], hang: bool, now: float, *, drain: bool) -> float:
    """Feed ``script`` (octets from the modem, or seconds passing); hang up halfway if ``hang``."""
    for index, (kind, value) in enumerate(script):
        dialer.bytes_to_send()
        if kind == "data":
            assert isinstance(value, bytes)
            dialer.receive(value, now)
        else:
            assert isinstance(value, float)
            now += value
            deadline = dialer.next_deadline()
            if deadline is not None and deadline <= now:
                dialer.on_timer(now)
        if hang and index == len(script) // 2:
            dialer.hang_up(now)
        if drain:
            dialer.take_data()
        check_bounds(dialer)
        if drain:
            assert len(dialer.events()) <= MAX_EVENTS
    return now


def run_timers(dialer: ModemDialer, now: float, rounds: int) -> float:
    """Fire the dialer's timers until it has none left (at most ``rounds``); the time reached."""
    for _ in range(rounds):
        deadline = dialer.next_deadline()
        if deadline is None:
            break
        now = max(now, deadline)
        dialer.on_timer(now)
        dialer.bytes_to_send()
    return now


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["packet", "circuit", "listen"]), steps, st.booleans(), st.booleans())
def test_garbage_in_any_phase_never_raises(call: str, script: list[tuple[str, object]], dtr: bool, hang: bool) -> None:
    dialer = ModemDialer(DialerSettings(use_dtr=dtr, pin="1234", registration_timeout=20.0))
    now = 0.0
    if call == "packet":
        dialer.dial_packet("internet", 1, now)
    elif call == "circuit":
        dialer.dial_circuit("0612345678", now)
    else:
        dialer.listen(2, "+3361", now)
    now = play(dialer, script, hang, now, drain=True)
    # However it ended up, the dialer keeps running its timers to completion.
    now = run_timers(dialer, now, 200)
    if dialer.state is DialerState.ONLINE:
        dialer.hang_up(now)
    check_bounds(dialer)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


@settings(max_examples=200, deadline=None)
@given(garbage, st.lists(st.integers(0, 10_000), max_size=30))
def test_garbage_then_sane_modem_connects(noise: bytes, cuts: list[int]) -> None:
    dialer = ModemDialer()
    dialer.receive(noise, 0.0)  # the modem babbled before we dialled
    dialer.receive(b"\r\n", 0.0)  # and ended its line
    dialer.events()
    dialer.dial_packet("internet", 1, 0.0)
    modem = SaneModem()
    for _ in range(40):
        answer = modem.answer(dialer.bytes_to_send())
        if not answer:
            break
        for chunk in chunked(answer, cuts):
            dialer.receive(chunk, 0.0)
    assert dialer.state is DialerState.ONLINE
    assert dialer.events()[-1] == CallConnected("packet", None, "115200")
    assert modem.commands[-1] == b"ATD*99***1#"


frame_payload = st.one_of(
    st.binary(max_size=60),
    st.sampled_from([b"\r\nNO CARRIER\r\n", b"NO CARRIER", b"\r\n", b"+++", b"\r\nOK\r\n"]),
)
frames = st.lists(st.lists(frame_payload, max_size=4).map(b"".join), max_size=12)


@settings(max_examples=200, deadline=None)
@given(frames, st.lists(st.integers(0, 10_000), max_size=30))
def test_online_framed_payload_passes_through(contents: list[bytes], cuts: list[int]) -> None:
    dialer = ModemDialer()
    dialer.dial_circuit("123", 0.0)
    modem = SaneModem()
    while dialer.state is not DialerState.ONLINE:
        dialer.receive(modem.answer(dialer.bytes_to_send()), 0.0)
    # RFC 1662 framing: each frame opens with address/control after its flag (never CR or LF).
    stream = b"".join(b"\x7e\xff\x03" + body.replace(b"\x7e", b"\x7d\x5e") + b"\x7e" for body in contents)
    for chunk in chunked(stream, cuts):
        dialer.receive(chunk, 1.0)
    assert dialer.take_data() == stream
    assert dialer.state is DialerState.ONLINE
    dialer.receive(b"\r\nNO CARRIER\r\n", 1.0)
    assert dialer.events()[-1] == CallEnded("no carrier")


@settings(max_examples=200, deadline=None)
@given(garbage, st.lists(st.integers(0, 10_000), max_size=30))
def test_online_garbage_is_conserved_unless_the_call_ends(noise: bytes, cuts: list[int]) -> None:
    dialer = ModemDialer()
    dialer.dial_circuit("123", 0.0)
    modem = SaneModem()
    while dialer.state is not DialerState.ONLINE:
        dialer.receive(modem.answer(dialer.bytes_to_send()), 0.0)
    dialer.events()
    for chunk in chunked(noise + b"x", cuts):
        dialer.receive(chunk, 1.0)
    received = dialer.take_data()
    if dialer.state is DialerState.ONLINE:
        assert received == (noise + b"x")[:MAX_PAYLOAD_BUFFER]
    else:
        assert dialer.events() == [CallEnded("no carrier")]
        assert (noise + b"x").startswith(received)


@settings(max_examples=150, deadline=None)
@given(steps, st.booleans())
def test_cmux_garbage_never_raises(script: list[tuple[str, object]], hang: bool) -> None:
    """Garbage where the multiplexer's frames should be, in any phase, with timers running."""
    dialer = ModemDialer(DialerSettings(use_cmux=True))
    dialer.dial_packet("internet", 1, 0.0)
    modem = SaneModem()
    for _ in range(3):  # AT, ATE0, AT+CMUX=0: the line is the multiplexer's from here
        dialer.receive(modem.answer(dialer.bytes_to_send()), 0.0)
    assert modem.commands == [b"AT", b"ATE0", b"AT+CMUX=0"]
    now = 0.0
    now = play(dialer, script, hang, now, drain=False)
    now = run_timers(dialer, now, 500)
    # Nobody answered the multiplexer properly: the attempt has ended one way or another.
    assert dialer.state is DialerState.IDLE
