"""27.010 CMUX: how fast the multiplexer frames and deframes, next to PPP's HDLC framing.

Side by side in one run, in-process (CPU only, no line speed): 4 MB of random payload
through an initiator and a responder :class:`~wipstack.cellular.cmux.Multiplexer` on one
DLCI, for the basic option's default N1 (31 octets, what ``AT+CMUX=0`` gives), 127 (the
longest one-octet length) and 1500; and the same payload through wipstack's RFC 1662 HDLC
framer and deframer in 1500-octet frames (the PPP layer that runs on top of a DLCI).  The
ratio column compares each row with HDLC; a serial line of 115200 bit/s carries 0.0115 MB/s,
so any row far above that means the multiplexer is not what limits a real UART.
"""

from __future__ import annotations

import random
import time

from wipstack import accel
from wipstack.cellular.cmux import DataReceived, Multiplexer, MuxParameters, MuxRole

PAYLOAD = 4 * 1024 * 1024
CHUNK = 4096


def _mux_pair(n1: int) -> tuple[Multiplexer, Multiplexer]:
    params = MuxParameters(n1=n1, max_receive=max(n1, 127))
    initiator, responder = Multiplexer(MuxRole.INITIATOR, params), Multiplexer(MuxRole.RESPONDER, params)
    now = 0.0
    initiator.start(now)
    initiator.open_channel(1, now)
    for _ in range(10):
        responder.receive(initiator.bytes_to_send(), now)
        initiator.receive(responder.bytes_to_send(), now)
    assert initiator.is_open(1) and responder.is_open(1)
    return initiator, responder


def bench_mux(n1: int, data: bytes) -> float:
    """Seconds to carry ``data`` initiator -> responder on DLCI 1."""
    initiator, responder = _mux_pair(n1)
    received = 0
    started = time.perf_counter()
    for offset in range(0, len(data), CHUNK):
        initiator.send(1, data[offset : offset + CHUNK])
        for event in responder.receive(initiator.bytes_to_send(), 0.0):
            if isinstance(event, DataReceived):
                received += len(event.data)
    elapsed = time.perf_counter() - started
    assert received == len(data), (received, len(data))
    return elapsed


def bench_hdlc(data: bytes) -> float:
    """Seconds to frame ``data`` in 1500-octet PPP frames and deframe it again."""
    deframer = accel.HdlcDeframer(rx_accm=0)
    received = 0
    started = time.perf_counter()
    for offset in range(0, len(data), 1500):
        for frame in deframer.feed(accel.hdlc_encode(b"\xff\x03\x00\x21" + data[offset : offset + 1500], 0)):
            received += len(frame) - 4
    elapsed = time.perf_counter() - started
    assert received == len(data), (received, len(data))
    return elapsed


def run() -> None:
    data = random.Random(1).randbytes(PAYLOAD)
    hdlc = bench_hdlc(data)
    rows = [(f"PPP HDLC framing, 1500-octet frames ({accel.IMPLEMENTATION})", hdlc)]
    rows += [(f"CMUX basic option, N1 = {n1}", bench_mux(n1, data)) for n1 in (31, 127, 1500)]
    print(f"\nCMUX (27.010 basic option), {PAYLOAD >> 20} MB through framer and deframer, one CPU")
    print(f"{'path':<40} {'MB/s':>8} {'vs HDLC':>8}")
    for name, seconds in rows:
        rate = PAYLOAD / seconds / 1e6
        print(f"{name:<40} {rate:8.1f} {hdlc / seconds:8.2f}")
