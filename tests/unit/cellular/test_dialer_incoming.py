"""Incoming GSM data calls: ring counting, caller identity, answering."""

from __future__ import annotations

import pytest

from tests.unit.cellular.test_dialer_support import OK, SPLITTERS, Conversation, Splitter, init_exchange
from wipstack.cellular.dialer import (
    CallConnected,
    CallEnded,
    CallFailed,
    CallFailure,
    DialerSettings,
    DialerState,
    IncomingRefused,
    ModemDialer,
    ModemReady,
    Ringing,
)

CLIP = b'\r\n+CLIP: "+33612345678",145,,,,0\r\n'
RING = b"\r\nRING\r\n"
LISTEN_INIT = init_exchange(extra=[])[:4] + [(b"ATS0=0\r", OK), (b"AT+CLIP=1\r", OK)] + init_exchange()[4:]


def listening(
    ring_count: int, caller: str | None, settings: DialerSettings | None = None, split: Splitter = SPLITTERS["whole"]
) -> Conversation:
    dialer = ModemDialer(settings)
    dialer.listen(ring_count, caller, now=0.0)
    c = Conversation(dialer, split)
    c.exchange(LISTEN_INIT)
    assert c.events() == [ModemReady()]
    assert dialer.state is DialerState.LISTENING
    c.silent()
    return c


@pytest.mark.parametrize("split", SPLITTERS.values(), ids=SPLITTERS.keys())
def test_listening_answers_after_ring_count(split: Splitter) -> None:
    c = listening(2, None, split=split)
    c.says(RING + CLIP)
    assert c.events() == [Ringing(1, None)]
    c.silent()
    c.advance(3.0)
    c.says(RING + CLIP)
    assert c.events() == [Ringing(2, "+33612345678")]
    assert c.dialer.state is DialerState.ANSWERING
    c.expect(b"ATA\r", b"\r\nCONNECT 9600\r\n\x7e")
    assert c.events() == [CallConnected("incoming", "+33612345678", "9600")]
    assert c.dialer.state is DialerState.ONLINE
    assert c.dialer.take_data() == b"\x7e"


@pytest.mark.parametrize("anyone", [None, ""])
def test_listening_ring_count_zero_answers_first_ring(anyone: str | None) -> None:
    c = listening(0, anyone)
    c.says(RING)
    assert c.events() == [Ringing(1, None)]
    c.expect(b"ATA\r", b"\r\nCONNECT\r\n")
    assert c.events() == [CallConnected("incoming", None, "")]


@pytest.mark.parametrize("ring", [b"\r\n+CRING: REL ASYNC\r\n", b"2\r"])
def test_listening_cring_and_numeric_ring_count(ring: bytes) -> None:
    c = listening(1, None)
    c.says(ring)
    assert c.events() == [Ringing(1, None)]
    c.expect(b"ATA\r")


@pytest.mark.parametrize("wanted", ["+33612345678", "0612345678", "0033612345678", "+33 6 12 34 56 78"])
def test_listening_caller_matches_waits_for_clip(wanted: str) -> None:
    c = listening(1, wanted)
    c.says(RING)
    assert c.events() == [Ringing(1, None)]
    c.silent()  # not answered before its +CLIP came
    c.advance(0.2)
    c.says(CLIP)
    c.expect(b"ATA\r", b"\r\nCONNECT 9600\r\n")
    assert c.events() == [CallConnected("incoming", "+33612345678", "9600")]


def test_listening_wrong_caller_is_refused_and_listening_goes_on() -> None:
    c = listening(1, "+33699999999")
    c.says(RING + CLIP)
    c.expect(b"ATH\r", OK)
    assert c.events() == [
        Ringing(1, None),
        IncomingRefused("+33612345678", "caller +33612345678 is not +33699999999"),
    ]
    assert c.dialer.state is DialerState.LISTENING
    c.advance(20.0)
    c.says(RING + b'\r\n+CLIP: "+33699999999",145\r\n')
    c.expect(b"ATA\r", b"\r\nCONNECT\r\n")
    assert c.events() == [Ringing(1, None), CallConnected("incoming", "+33699999999", "")]


@pytest.mark.parametrize("clip", [b'\r\n+CLIP: "",128,,,,1\r\n', b""], ids=["withheld", "no-clip"])
def test_listening_caller_required_but_unknown_is_refused(clip: bytes) -> None:
    c = listening(1, "+33612345678", DialerSettings(clip_wait=1.5))
    c.says(RING + clip)
    if not clip:
        c.silent()
        assert c.to_deadline() == 1.5
    c.expect(b"ATH\r", OK)
    assert c.events()[-1] == IncomingRefused(None, "caller withheld")


def test_listening_ring_gap_forgets_the_call() -> None:
    c = listening(2, None, DialerSettings(ring_gap=8.0))
    c.says(RING)
    assert c.to_deadline() == 8.0
    c.says(RING)
    assert c.events() == [Ringing(1, None), Ringing(1, None)]
    c.silent()


def test_listening_no_carrier_forgets_the_call() -> None:
    c = listening(2, None)
    c.says(RING + b"\r\nNO CARRIER\r\n" + RING)
    assert c.events() == [Ringing(1, None), Ringing(1, None)]
    c.silent()


@pytest.mark.parametrize(
    ("answer", "failure"),
    [(b"\r\nNO CARRIER\r\n", CallFailure.NO_CARRIER), (b"\r\nERROR\r\n", CallFailure.DATA_FAILED)],
)
def test_answering_failure(answer: bytes, failure: CallFailure) -> None:
    c = listening(1, None)
    c.says(RING)
    c.expect(b"ATA\r", answer)
    events = c.events()
    assert isinstance(events[-1], CallFailed)
    assert events[-1].failure is failure
    assert c.dialer.state is DialerState.IDLE


def test_listening_hang_up_stops_without_a_command() -> None:
    c = listening(1, None)
    c.dialer.hang_up(now=1.0)
    assert c.events() == [CallEnded("local")]
    assert c.dialer.state is DialerState.IDLE
    c.silent()
    c.says(RING)
    assert c.events() == []


def test_listening_ringing_events_are_bounded_when_not_drained() -> None:
    c = listening(10**6, None)
    c.says(RING * 1000)
    assert len(c.dialer.events()) == 256
    assert c.dialer.events_dropped == 1000 - 256
