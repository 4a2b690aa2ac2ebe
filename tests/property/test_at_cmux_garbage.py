"""A multiplexed UART of the module (``AT+CMUX=0``) under garbage: never wedged, always bounded.

The host side is a real initiator (:class:`~wipstack.cellular.cmux.Multiplexer`) with DLCIs 1
and 2 open.  Into the line go, in random splits: random octets, truncated and corrupted frames,
valid frames for DLCIs that are open, closed or refused, control messages of any type, and AT
command lines (including ``AT+CMUX`` and bearer commands) on the virtual UARTs.  Afterwards the
module's buffers are bounded and a host that types ``AT`` on DLCI 1 gets ``OK``.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.at_rig import Rig
from wipstack.wire.cmux import CmuxFrame, ControlMessage, FrameType

OK = b"\r\nOK\r\n"
LINES = [b"AT\r", b"ATE0\r", b"AT+CMUX=0\r", b"AT+CMUX?\r", b"AT+WIPCFG=1\r", b"AT+WIPBR=1,12\r",
         b"AT+WIPBR=4,12,1\r", b"AT+WIPBR=5,12\r", b"+++", b"\x7e\xff\x03\xc0\x21", b"A/", b"AT+CGMI\r"]  # fmt: skip


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["data", "control", "raw", "truncated", "corrupt"]))
    if kind == "raw":
        return draw(st.binary(max_size=80))
    dlci = draw(st.sampled_from([0, 1, 2, 3, 5, 40]))
    control = draw(st.sampled_from(list(FrameType)))
    if kind == "control" or dlci == 0:
        message = ControlMessage(draw(st.integers(0, 63)), draw(st.booleans()), draw(st.binary(max_size=6)))
        info = message.emit()
        control = FrameType.UIH
    else:
        info = draw(st.sampled_from(LINES)) if draw(st.booleans()) else draw(st.binary(max_size=40))
    frame = CmuxFrame(dlci, control, draw(st.booleans()), draw(st.booleans()), info).emit()
    if kind == "truncated":
        return frame[: draw(st.integers(1, max(1, len(frame) - 1)))]
    if kind == "corrupt":
        position = draw(st.integers(1, len(frame) - 2))
        return frame[:position] + bytes([frame[position] ^ 0x55]) + frame[position + 1 :]
    return frame


@given(data=st.data(), pieces=st.lists(frames(), max_size=25))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_garbage_on_a_multiplexed_uart_never_wedges_it(data: st.DataObject, pieces: list[bytes]) -> None:
    rig = Rig()
    rig.mux_host(1, (1, 2))
    stream = b"".join(pieces)
    cut_positions = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    start = 0
    for cut in [*cut_positions, len(stream)]:
        rig.module.receive(1, stream[start:cut], rig.now)
        rig.advance(data.draw(st.sampled_from([0.0, 0.01, 0.5])))
        start = cut
    rig.advance(3)
    for channel in rig.module.channels.values():
        assert len(channel.out) <= 1 << 17
        assert len(channel.held_input) <= rig.module.config.max_line * 4
    muxed = rig.module.muxes.get(1)
    host = rig.mux_hosts.get(1)
    if muxed is None or host is None or host.mux.closed:
        # the garbage closed the multiplexer (a DISC 0 or CLD got through): UART1 speaks AT again
        rig.mux_hosts.pop(1, None)
        rig.advance(1)
        rig.take(1)
        rig.send(b"\r")
        assert rig.at("AT").endswith(OK)
        return
    assert muxed.mux.buffered <= 1 << 16
    # what a host does after line trouble: idle flags (27.010 §5.2.6; they complete a frame the
    # garbage left open, which the module then drops on its FCS), and it reopens a DLCI that the
    # garbage closed (a forged DM or DISC: the module then answers the host's frames with DM)
    rig.module.receive(1, b"\xf9" * 160, rig.now)
    rig.advance(0.5)
    rig.take(11)
    answer = b""
    for _ in range(3):
        if not host.mux.is_open(1):
            host.mux.open_channel(1, rig.now)
            rig.advance(1)
        if rig.module.channels[11].mode.value != "command":
            rig.advance(1.2)
            rig.send(b"+++", 11)
            rig.advance(1.2)
        rig.send(b"\r", 11)
        rig.take(11)
        if not host.mux.is_open(1):
            continue
        answer = rig.at("AT", 11)
        if answer.endswith(OK):
            break
    assert answer.endswith(OK)
