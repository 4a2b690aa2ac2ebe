"""The modem simulator under garbage from the DTE and the network peer, with random splits and timing.

* Random octets (raw, AT-shaped lines naming real commands with random parameters - AT+CMUX=0
  among them - and pieces of 27.010 frames), cut at random points and fed at random moments,
  never raise; the buffers toward the DTE and the peer stay bounded; afterwards, once a
  multiplexer is closed down and any call dropped, ``AT&F`` and ``AT`` are answered normally.
* At a fixed moment, the answer does not depend on how the input was split (whole, at random
  points, octet by octet).
* The command-line parser raises AtSyntaxError or nothing.
"""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wipstack.cellular.cmux import MAX_CONTROL_BACKLOG, Multiplexer
from wipstack.cellular.cmux_types import MuxParameters, MuxRole
from wipstack.cellular.sim_commands import HANDLERS
from wipstack.cellular.sim_parser import AtSyntaxError, parse_command_line
from wipstack.cellular.simulator import MUX_QUEUE, ModemSimulator, ModemState, SimulatorSettings
from wipstack.wire.cmux import FLAG, CmuxFrame, FrameType

MAX_OUTPUT = 2048
MUX_BOUND = 5 * MAX_OUTPUT + 2 * 4 * MUX_QUEUE + MAX_CONTROL_BACKLOG
NAMES = sorted(name for name in HANDLERS if name != "D") + ["D*99#", "D*99***1#", "D555", "S0", "S12", "S3"]
SUFFIXES = ["", "?", "=?", "=", "=0", "=1", "=2", '="1234"', "=1,1", '=1,"IP","internet"', "=1,", "=,,", "0", "1"]


def uih(dlci: int, data: bytes) -> bytes:
    """A 27.010 UIH frame from the initiator."""
    return CmuxFrame(dlci, FrameType.UIH, False, True, data).emit()


# pieces that move the modem between states, so the garbage reaches every one of them
SCRIPTED = st.sampled_from(
    [
        b"ATD*99#\r", b"ATD555\r", b"ATA\r", b"ATO\r", b"ATH\r", b"AT+CGDATA\r", b"+++", b"AT+CMUX=0\r",
        CmuxFrame(0, FrameType.SABM, True, True).emit(), CmuxFrame(1, FrameType.SABM, True, True).emit(),
        CmuxFrame(1, FrameType.DISC, True, True).emit(), uih(1, b"ATD*99#\r"), uih(1, b"ATH\r"), uih(1, b"+++"),
        uih(0, bytes([0xC3, 0x01])),  # CLD
    ]
)  # fmt: skip


@st.composite
def at_lines(draw: st.DrawFn) -> bytes:
    """One AT line of real command names with random parameters and endings."""
    commands = draw(st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(SUFFIXES)), min_size=1, max_size=3))
    ending = draw(st.sampled_from(["\r", "\r\n", "", "\x08\r", "+++"]))
    return ("AT" + ";".join(name + suffix for name, suffix in commands) + ending).encode("latin-1")


GARBAGE = st.lists(st.one_of(at_lines(), st.binary(max_size=8), SCRIPTED, SCRIPTED), max_size=16).map(b"".join)
#: AT+CMUX=0 and DLCIs 0-2 opened, so that the garbage also reaches the channels' AT interpreters
MUX_OPENING = b"AT+CMUX=0\r" + b"".join(CmuxFrame(dlci, FrameType.SABM, True, True).emit() for dlci in range(3))
STREAMS = st.one_of(st.binary(max_size=300), GARBAGE, GARBAGE.map(lambda garbage: MUX_OPENING + garbage))
PAUSES = st.sampled_from([0.0, 0.0, 0.05, 0.3, 0.6, 1.2, 3.0])


@st.composite
def chunked(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` cut at random points (possibly into empty pieces)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=10)))
    return [data[start:end] for start, end in pairwise([0, *cuts, len(data)])]


def fire(sim: ModemSimulator, now: float) -> None:
    """Run due timers; they must settle (a timer that stays due would spin a driver)."""
    for _ in range(50):
        deadline = sim.next_deadline()
        if deadline is None or deadline > now:
            return
        sim.on_timer(now)
    raise AssertionError("a timer stays due after on_timer")


@given(data=st.data(), stream=STREAMS)
@settings(max_examples=300, deadline=None)
def test_garbage_never_raises_stays_bounded_and_at_still_works(data: st.DataObject, stream: bytes) -> None:
    sim = ModemSimulator(SimulatorSettings(max_output=MAX_OUTPUT, connect_delay=0.1, max_line=64))
    now = 0.0
    for piece in data.draw(chunked(stream)):
        now += data.draw(PAUSES)
        fire(sim, now)
        sim.receive(piece, now)
        if data.draw(st.booleans()):
            sim.peer_receive(data.draw(st.binary(max_size=64)), now)
        if data.draw(st.integers(0, 5)) == 0:
            sim.incoming_call("+4930123", now)
        # one port's buffer without a multiplexer; with one, four channels' plus their frame queues
        assert sim.dte_output_pending <= (MAX_OUTPUT if sim.mux is None else MUX_BOUND)
        assert sim.peer_output_pending <= MAX_OUTPUT
        if data.draw(st.booleans()):
            sim.bytes_to_send()
            sim.peer_bytes_to_send()
        sim.events()
    # recover the way a DTE would (close a multiplexer, the network ends any call), then the modem must answer
    now += 5.0
    fire(sim, now)
    if sim.mux is not None:
        close_multiplexer(sim, now)
    if sim.state is not ModemState.COMMAND:
        sim.drop_call(now)
    sim.receive(b"\r", now)  # finish a half-typed line
    if sim.state is not ModemState.COMMAND:
        sim.drop_call(now)  # the line was a dial
    sim.drop_call(now)  # or a ringing call
    sim.receive(b"AT&F\r", now)
    sim.bytes_to_send()
    sim.receive(b"AT\r", now)
    assert sim.bytes_to_send() == b"AT\r\r\nOK\r\n"
    assert sim.state is ModemState.COMMAND


def close_multiplexer(sim: ModemSimulator, now: float) -> None:
    """A 27.010 initiator starts DLCI 0 (again) and closes the multiplexer down with CLD.

    Flags first: garbage may have left the responder inside a frame whose length field
    promises up to N1 more octets, which would swallow our SABM.
    """
    host = Multiplexer(MuxRole.INITIATOR, MuxParameters())
    sim.receive(bytes([FLAG]) * (MuxParameters().receive_limit + 8), now)
    host.start(now)
    for step in range(2):
        for _ in range(50):
            to_modem, to_host = host.bytes_to_send(), sim.bytes_to_send()
            if to_modem:
                sim.receive(to_modem, now)
            if to_host:
                host.receive(to_host, now)
            if not to_modem and not to_host:
                break
        if step == 0:
            assert host.started
            host.close_down(now)
    assert sim.mux is None


@given(data=st.data(), stream=STREAMS)
@settings(max_examples=300, deadline=None)
def test_splitting_never_matters_at_a_fixed_moment(data: st.DataObject, stream: bytes) -> None:
    whole = ModemSimulator()
    whole.receive(stream, 1.0)
    split = ModemSimulator()
    for piece in data.draw(chunked(stream)):
        split.receive(piece, 1.0)
    octets = ModemSimulator()
    for octet in stream:
        octets.receive(bytes([octet]), 1.0)
    expected = whole.bytes_to_send()
    assert split.bytes_to_send() == expected
    assert octets.bytes_to_send() == expected
    assert split.state is whole.state is octets.state
    assert split.peer_bytes_to_send() == octets.peer_bytes_to_send() == whole.peer_bytes_to_send()


@given(text=st.one_of(st.text(max_size=80), st.text(alphabet='+=?;,"AaDdSs&0123456789 EeCG#*', max_size=80)))
@settings(max_examples=500)
def test_parser_raises_only_syntax_errors(text: str) -> None:
    try:
        commands = parse_command_line(text)
    except AtSyntaxError:
        return
    for command in commands:
        assert command.name == command.name.upper()


@pytest.mark.parametrize("online_command", [False, True])
@pytest.mark.parametrize("sim_state", ["ready", "pin", "absent"])
def test_every_command_with_every_parameter_shape(sim_state: str, online_command: bool) -> None:
    """A sweep, not a sample: each command name with each parameter shape raises nothing and gets an answer."""
    for name in NAMES:
        for suffix in SUFFIXES:
            sim = ModemSimulator(SimulatorSettings(sim_state=sim_state, connect_delay=0.0, echo=False))
            if online_command:
                sim.receive(b"ATD555\r", 0.0)
                sim.on_timer(0.0)
                sim.receive(b"+++", 2.0)
                sim.on_timer(3.0)
                sim.bytes_to_send()
            sim.receive(f"AT{name}{suffix}\r".encode(), 4.0)
            fire(sim, 5.0)
            quiet = (name, suffix) == ("Q", "1")
            assert sim.bytes_to_send() or quiet, (name, suffix)
