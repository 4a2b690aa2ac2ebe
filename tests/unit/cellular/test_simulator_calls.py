"""ModemSimulator calls: packet and circuit dialling, data both ways, the escape, incoming calls, hang-ups."""

from __future__ import annotations

import pytest

from tests.unit.cellular.test_simulator import Rig
from wipstack.cellular.simulator import CallConnected, CallEnded, ModemState

GUARD = 1.0  # S12 = 50 fiftieths of a second


def online_packet_call(rig: Rig, apn: str = "internet") -> None:
    """ATE0, a context, ATD*99***1#, CONNECT."""
    rig.at("ATE0")
    assert rig.at(f'AT+CGDCONT=1,"IP","{apn}"') == b"\r\nOK\r\n"
    assert rig.at("ATD*99***1#") == b""
    assert rig.sim.state is ModemState.DIALLING
    assert rig.advance(0.5) == b"\r\nCONNECT\r\n"
    assert rig.sim.events() == [CallConnected("packet", apn)]
    assert rig.sim.state is ModemState.ONLINE


def escape(rig: Rig) -> bytes:
    """Guard time, "+++", guard time: what the modem said."""
    rig.advance(GUARD + 0.1)
    assert rig.send(b"+++") == b""
    return rig.advance(GUARD + 0.1)


@pytest.fixture
def rig() -> Rig:
    return Rig()


# --------------------------------------------------------------------------- packet calls
def test_packet_call_data_both_ways_escape_and_hang_up(rig: Rig) -> None:
    online_packet_call(rig)
    assert rig.send(b"\x7e\xff\x03AT\r") == b""  # online: nothing is echoed or interpreted
    assert rig.sim.peer_bytes_to_send() == b"\x7e\xff\x03AT\r"
    rig.sim.peer_receive(b"\x7e\x21\x45", rig.now)
    assert rig.sim.bytes_to_send() == b"\x7e\x21\x45"
    assert escape(rig) == b"\r\nOK\r\n"
    assert rig.sim.state is ModemState.ONLINE_COMMAND
    assert rig.sim.peer_bytes_to_send() == b"+++"  # the escape characters are data too
    assert rig.at("AT+CGACT?") == b"\r\n+CGACT: 1,1\r\n\r\nOK\r\n"
    assert rig.at("ATH") == b"\r\nOK\r\n"
    assert rig.sim.events() == [CallEnded("hangup")]
    assert rig.sim.state is ModemState.COMMAND
    assert rig.at("AT+CGACT?") == b"\r\n+CGACT: 1,0\r\n\r\nOK\r\n"
    assert rig.sim.counters.calls == 1 and rig.sim.counters.escapes == 1


def test_packet_call_ato_returns_online(rig: Rig) -> None:
    online_packet_call(rig)
    escape(rig)
    rig.sim.peer_receive(b"lost", rig.now)  # online command state: the peer's octets are dropped
    assert rig.sim.counters.peer_dropped_offline == 4
    assert rig.at("ATO") == b"\r\nCONNECT\r\n"
    assert rig.sim.state is ModemState.ONLINE
    rig.send(b"more")
    assert rig.sim.peer_bytes_to_send().endswith(b"more")
    assert escape(rig) == b"\r\nOK\r\n"


@pytest.mark.parametrize(
    "script",
    [
        [(0.0, b"x+++")],  # data right before the escape characters
        [(0.0, b"+++x")],  # data right after them
        [(0.0, b"++++")],  # a fourth "+"
        [(0.0, b"+"), (1.5, b"++")],  # too slow between the escape characters
    ],
)
def test_escape_needs_guard_times(rig: Rig, script: list[tuple[float, bytes]]) -> None:
    online_packet_call(rig)
    rig.advance(GUARD + 0.1)
    for delay, data in script:
        rig.advance(delay)
        assert rig.send(data) == b""
    assert rig.advance(GUARD + 0.1) == b""
    assert rig.sim.state is ModemState.ONLINE


def test_escape_split_byte_by_byte_within_the_guard_time(rig: Rig) -> None:
    online_packet_call(rig)
    rig.advance(GUARD + 0.1)
    for octet in b"+++":
        rig.send(bytes([octet]))
        rig.advance(0.2)
    assert rig.advance(GUARD) == b"\r\nOK\r\n"


def test_packet_dial_without_a_context_uses_the_default_one(rig: Rig) -> None:
    rig.at("ATE0")
    assert rig.at("ATD*99#") == b""
    assert rig.advance(0.5) == b"\r\nCONNECT\r\n"
    assert rig.sim.events() == [CallConnected("packet", "")]


def test_packet_dial_with_an_unknown_apn_ends_in_no_carrier() -> None:
    rig = Rig(apns=("internet",))
    rig.at("ATE0")
    rig.at('AT+CGDCONT=1,"IP","wrong"')
    assert rig.at("ATD*99***1#") == b""
    assert rig.advance(0.5) == b"\r\nNO CARRIER\r\n"
    assert rig.sim.events() == []
    assert rig.at("AT+CEER") == b"\r\n+CEER: missing or unknown APN 'wrong'\r\n\r\nOK\r\n"
    assert rig.at('AT+CGDCONT=1,"IP","INTERNET";D*99***1#') == b""  # APNs compare without case
    assert rig.advance(0.5) == b"\r\nCONNECT\r\n"


def test_cgdata_reports_the_gprs_cause() -> None:
    rig = Rig(apns=("internet",))
    rig.at("ATE0")
    assert rig.at('AT+CMEE=1;+CGDCONT=1,"IP","wrong";+CGDATA="PPP",1') == b""
    assert rig.advance(0.5) == b"\r\n+CME ERROR: 133\r\n"
    assert rig.at('AT+CGDCONT=2,"IPV6","internet";+CGDATA="PPP",2') == b""
    assert rig.advance(0.5) == b"\r\n+CME ERROR: 132\r\n"
    assert rig.at('AT+CGDATA="M-RAW_IP",1') == b"\r\n+CME ERROR: 4\r\n"
    assert rig.at('AT+CGDCONT=3,"IP","internet";+CGDATA="PPP",3') == b""
    assert rig.advance(0.5) == b"\r\nCONNECT\r\n"
    assert rig.sim.events() == [CallConnected("packet", "internet")]


def test_packet_reject_cause_from_the_network() -> None:
    rig = Rig(packet_reject=134)
    rig.at("ATE0")
    assert rig.at('AT+CMEE=1;+CGDCONT=1,"IP","internet";+CGDATA="PPP",1') == b""
    assert rig.advance(0.5) == b"\r\n+CME ERROR: 134\r\n"
    assert rig.at("AT+CEER") == b"\r\n+CEER: activation rejected: service option temporarily out of order\r\n\r\nOK\r\n"
    rig.sim.configure(packet_reject=149)
    assert rig.at("AT+CGACT=1,1") == b"\r\n+CME ERROR: 149\r\n"
    assert rig.at("ATD*99***1#") == b""
    assert rig.advance(0.5) == b"\r\nNO CARRIER\r\n"
    rig.sim.configure(packet_reject=None)
    assert rig.at("ATD*99***1#") == b""
    assert rig.advance(0.5) == b"\r\nCONNECT\r\n"


def test_packet_dial_without_packet_service() -> None:
    rig = Rig(cgreg_stat=0)
    rig.at("ATE0")
    rig.at('AT+CMEE=1;+CGDCONT=1,"IP","internet"')
    assert rig.at("ATD*99***1#") == b""
    assert rig.advance(0.5) == b"\r\nNO CARRIER\r\n"
    assert rig.at("AT+CGDATA=,1") == b""
    assert rig.advance(0.5) == b"\r\n+CME ERROR: 30\r\n"
    assert rig.at("AT+CGATT=1") == b"\r\n+CME ERROR: 30\r\n"
    assert rig.at("AT+CGACT=1,1") == b"\r\n+CME ERROR: 30\r\n"


@pytest.mark.parametrize(("sim", "code"), [("pin", b"11"), ("puk", b"12"), ("absent", b"10")])
def test_packet_dial_needs_the_sim(sim: str, code: bytes) -> None:
    rig = Rig(sim_state=sim)
    rig.at("ATE0")
    rig.at("AT+CMEE=1")
    assert rig.at("ATD*99#") == b"\r\n+CME ERROR: " + code + b"\r\n"
    assert rig.sim.state is ModemState.COMMAND


def test_packet_dial_with_an_undefined_or_bad_cid(rig: Rig) -> None:
    rig.at("ATE0")
    rig.at("AT+CMEE=1")
    assert rig.at("ATD*99***3#") == b"\r\n+CME ERROR: 50\r\n"
    assert rig.at("ATD*99***99#") == b"\r\n+CME ERROR: 50\r\n"
    assert rig.at("ATD*99**X25*1#") == b"\r\n+CME ERROR: 4\r\n"
    rig.at('AT+CGDCONT=3,"IP","a"')
    assert rig.at("ATD*99**PPP*3#") == b""
    assert rig.advance(0.5) == b"\r\nCONNECT\r\n"


def test_contexts_define_undefine_and_activate(rig: Rig) -> None:
    rig.at("ATE0")
    rig.at("AT+CMEE=1")
    assert rig.at('AT+CGDCONT=1,"IP","a";+CGDCONT=2,"ip","b","10.0.0.1",0,0') == b"\r\nOK\r\n"
    assert rig.at("AT+CGACT=1,2;+CGACT?") == b"\r\n+CGACT: 1,0\r\n+CGACT: 2,1\r\n\r\nOK\r\n"
    assert rig.at("AT+CGDCONT=2") == b"\r\n+CME ERROR: 3\r\n"  # active: cannot be undefined
    assert rig.at("AT+CGACT=0;+CGDCONT=2;+CGDCONT?") == b'\r\n+CGDCONT: 1,"IP","a","",0,0\r\n\r\nOK\r\n'
    assert rig.at('AT+CGDCONT=17,"IP","a"') == b"\r\n+CME ERROR: 50\r\n"
    assert rig.at('AT+CGDCONT=1,"X25","a"') == b"\r\n+CME ERROR: 50\r\n"
    assert rig.at("AT+CGACT=1,5") == b"\r\n+CME ERROR: 50\r\n"


def test_detach_ends_the_packet_call_and_reports_cgreg(rig: Rig) -> None:
    online_packet_call(rig)
    escape(rig)
    assert rig.at("AT+CGREG=1;+CGATT=0") == b"\r\nNO CARRIER\r\n\r\n+CGREG: 0\r\n\r\nOK\r\n"
    assert rig.sim.events() == [CallEnded("deactivated")]
    assert rig.at("AT+CGATT?") == b"\r\n+CGATT: 0\r\n\r\nOK\r\n"
    assert rig.at("ATD*99***1#") == b""  # 27.007 §10.2.1.1: dialling attaches again
    assert rig.advance(0.5) == b"\r\n+CGREG: 1\r\n\r\nCONNECT\r\n"


def test_losing_packet_service_drops_the_call(rig: Rig) -> None:
    online_packet_call(rig)
    rig.sim.configure(cgreg_stat=0)
    assert rig.sim.bytes_to_send() == b"\r\nNO CARRIER\r\n"
    assert rig.sim.events() == [CallEnded("registration")]


def test_sim_removed_during_a_call(rig: Rig) -> None:
    online_packet_call(rig)
    rig.sim.configure(sim_state="absent")
    assert rig.sim.bytes_to_send() == b"\r\nNO CARRIER\r\n"
    assert rig.sim.events() == [CallEnded("sim")]


def test_numeric_mode_and_connect_text() -> None:
    rig = Rig(connect_text="CONNECT 115200")
    rig.at("ATE0")
    rig.at("ATD*99#")
    assert rig.advance(0.5) == b"\r\nCONNECT 115200\r\n"
    escape(rig)
    assert rig.at("ATV0H") == b"0\r"
    assert rig.at("ATD*99#") == b""
    assert rig.advance(0.5) == b"1\r"


def test_dial_while_a_call_is_up_is_not_allowed(rig: Rig) -> None:
    online_packet_call(rig)
    escape(rig)
    assert rig.at("AT+CMEE=1;D*99#") == b"\r\n+CME ERROR: 3\r\n"
    assert rig.sim.state is ModemState.ONLINE_COMMAND


# --------------------------------------------------------------------------- circuit-switched calls
@pytest.mark.parametrize(
    ("result", "text"),
    [
        ("connect", b"CONNECT"),
        ("busy", b"BUSY"),
        ("no-answer", b"NO ANSWER"),
        ("no-carrier", b"NO CARRIER"),
        ("error", b"ERROR"),
        ("no-dialtone", b"NO DIALTONE"),
    ],
)
def test_circuit_dial_results(result: str, text: bytes) -> None:
    rig = Rig(dial_result=result)
    rig.at("ATE0")
    assert rig.at("ATD+49 (30) 1234-5") == b""
    assert rig.advance(0.4) == b""
    assert rig.advance(0.1) == b"\r\n" + text + b"\r\n"
    connected = result == "connect"
    assert rig.sim.events() == ([CallConnected("circuit", "+493012345")] if connected else [])
    assert rig.sim.state is (ModemState.ONLINE if connected else ModemState.COMMAND)


def test_circuit_dial_result_changed_during_set_up(rig: Rig) -> None:
    rig.at("ATE0")
    rig.at("ATD5551234")
    rig.sim.configure(dial_result="busy")
    assert rig.advance(0.5) == b"\r\nBUSY\r\n"


def test_circuit_voice_dial_never_connects(rig: Rig) -> None:
    rig.at("ATE0")
    assert rig.at("ATD5551234;") == b""
    assert rig.advance(0.5) == b"\r\nNO CARRIER\r\n"


def test_circuit_dial_string_errors(rig: Rig) -> None:
    rig.at("ATE0")
    rig.at("AT+CMEE=1")
    assert rig.at("ATD12x4") == b"\r\n+CME ERROR: 27\r\n"
    assert rig.at("ATD" + "1" * 41) == b"\r\n+CME ERROR: 26\r\n"
    assert rig.at("ATD") == b"\r\nERROR\r\n"
    rig.sim.configure(creg_stat=0)
    assert rig.at("ATD5551234") == b"\r\nNO DIALTONE\r\n"


def test_dial_aborted_by_a_character_but_not_by_the_lf_of_crlf(rig: Rig) -> None:
    rig.at("ATE0")
    assert rig.send(b"ATD5551234\r\n") == b""
    rig.advance(0.2)
    assert rig.send(b"x") == b"\r\nNO CARRIER\r\n"
    assert rig.sim.counters.dial_aborts == 1
    assert rig.advance(1.0) == b""
    assert rig.at("AT") == b"\r\nOK\r\n"


# --------------------------------------------------------------------------- incoming calls
def test_incoming_rings_with_clip_then_ata(rig: Rig) -> None:
    rig.at("ATE0")
    rig.at("AT+CLIP=1")
    assert rig.sim.incoming_call("+4930123", rig.now)
    ring = b'\r\nRING\r\n\r\n+CLIP: "+4930123",145\r\n'
    assert rig.sim.bytes_to_send() == ring
    assert rig.advance(0.9) == b""
    assert rig.advance(0.1) == ring
    assert rig.advance(1.0) == ring
    assert rig.at("ATA") == b""
    assert rig.advance(0.5) == b"\r\nCONNECT\r\n"
    assert rig.sim.events() == [CallConnected("incoming", "+4930123")]
    assert rig.advance(5.0) == b""  # no more RINGs once answered
    assert not rig.sim.incoming_call("555", rig.now)  # busy
    assert rig.sim.counters.refused_incoming == 1


def test_incoming_extended_ring_and_national_number(rig: Rig) -> None:
    rig.at("ATE0")
    rig.at("AT+CRC=1;+CLIP=1")
    rig.sim.incoming_call("0301234", rig.now)
    assert rig.sim.bytes_to_send() == b'\r\n+CRING: REL ASYNC\r\n\r\n+CLIP: "0301234",129\r\n'
    rig.at("AT+CBST=7,0,0")
    assert rig.advance(1.0) == b'\r\n+CRING: ASYNC\r\n\r\n+CLIP: "0301234",129\r\n'


def test_incoming_auto_answer_after_s0_rings(rig: Rig) -> None:
    rig.at("ATE0S0=2")
    rig.sim.incoming_call("555", rig.now)
    assert rig.sim.bytes_to_send() == b"\r\nRING\r\n"
    assert rig.advance(1.0) == b"\r\nRING\r\n"
    assert rig.sim.state is ModemState.DIALLING
    assert rig.advance(0.5) == b"\r\nCONNECT\r\n"
    assert rig.sim.events() == [CallConnected("incoming", "555")]


def test_incoming_unanswered_stops_after_max_rings_without_a_result() -> None:
    rig = Rig(max_rings=3)
    rig.at("ATE0")
    rig.sim.incoming_call("555", rig.now)
    assert rig.advance(10.0) == b"\r\nRING\r\n" * 3
    assert rig.sim.counters.rings == 3 and rig.sim.counters.missed_calls == 1
    assert rig.at("ATA") == b"\r\nNO CARRIER\r\n"


def test_incoming_rejected_with_ath_or_abandoned_by_the_caller(rig: Rig) -> None:
    rig.at("ATE0")
    rig.sim.incoming_call("555", rig.now)
    rig.sim.bytes_to_send()
    assert rig.at("ATH") == b"\r\nOK\r\n"
    assert rig.advance(3.0) == b""
    rig.sim.incoming_call("556", rig.now)
    rig.sim.bytes_to_send()
    assert rig.sim.drop_call(rig.now)  # the caller gives up: no NO CARRIER for a call never answered
    assert rig.advance(3.0) == b""


def test_ata_without_a_call_is_no_carrier(rig: Rig) -> None:
    assert rig.at("ATA") == b"ATA\r\r\nNO CARRIER\r\n"


def test_no_incoming_call_without_registration() -> None:
    rig = Rig(creg_stat=0)
    assert not rig.sim.incoming_call("555", rig.now)


# --------------------------------------------------------------------------- the call ends
@pytest.mark.parametrize(("end", "reason"), [("drop_call", "network"), ("peer_hung_up", "peer")])
def test_network_ends_the_call_with_no_carrier(rig: Rig, end: str, reason: str) -> None:
    online_packet_call(rig)
    assert getattr(rig.sim, end)(rig.now)
    assert rig.sim.bytes_to_send() == b"\r\nNO CARRIER\r\n"
    assert rig.sim.events() == [CallEnded(reason)]
    assert rig.sim.state is ModemState.COMMAND
    assert rig.at("AT") == b"\r\nOK\r\n"


def test_drop_in_online_command_state(rig: Rig) -> None:
    online_packet_call(rig)
    escape(rig)
    rig.sim.drop_call(rig.now)
    assert rig.sim.bytes_to_send() == b"\r\nNO CARRIER\r\n"
    assert rig.at("ATO") == b"\r\nNO CARRIER\r\n"


def test_drop_during_set_up(rig: Rig) -> None:
    rig.at("ATE0")
    rig.at("ATD*99#")
    assert rig.sim.drop_call(rig.now)
    assert rig.sim.bytes_to_send() == b"\r\nNO CARRIER\r\n"
    assert rig.sim.events() == []
    assert rig.advance(1.0) == b""


def test_dtr_drop_with_d2_hangs_up(rig: Rig) -> None:
    online_packet_call(rig)
    rig.sim.set_dtr(False, rig.now)
    assert rig.sim.bytes_to_send() == b"\r\nOK\r\n"
    assert rig.sim.events() == [CallEnded("dtr")]
    assert rig.sim.state is ModemState.COMMAND


def test_dtr_drop_with_d1_goes_to_online_command(rig: Rig) -> None:
    online_packet_call(rig)
    escape(rig)
    rig.at("AT&D1O")
    rig.sim.set_dtr(False, rig.now)
    assert rig.sim.bytes_to_send() == b"\r\nOK\r\n"
    assert rig.sim.state is ModemState.ONLINE_COMMAND
    assert rig.sim.events() == []


def test_dtr_ignored_with_d0(rig: Rig) -> None:
    online_packet_call(rig)
    escape(rig)
    rig.at("AT&D0O")
    rig.sim.set_dtr(False, rig.now)
    assert rig.sim.bytes_to_send() == b""
    assert rig.sim.state is ModemState.ONLINE


def test_dtr_off_disables_auto_answer_with_d2(rig: Rig) -> None:
    rig.at("ATE0S0=1")
    rig.sim.set_dtr(False, rig.now)
    rig.sim.incoming_call("555", rig.now)
    assert rig.advance(2.5) == b"\r\nRING\r\n" * 3
    assert rig.sim.state is ModemState.COMMAND


def test_atz_and_cfun_end_the_call(rig: Rig) -> None:
    online_packet_call(rig)
    escape(rig)
    assert rig.at("ATZ") == b"\r\nOK\r\n"
    assert rig.sim.events() == [CallEnded("reset")]
    rig.at("ATE0D*99#")
    rig.advance(0.5)
    rig.sim.events()
    escape(rig)
    assert rig.at("AT+CFUN=4") == b"\r\nNO CARRIER\r\n\r\nOK\r\n"
    assert rig.sim.events() == [CallEnded("reset")]


def test_peer_octets_without_a_call_are_dropped(rig: Rig) -> None:
    rig.sim.peer_receive(b"early", rig.now)
    assert rig.sim.bytes_to_send() == b""
    assert rig.sim.counters.peer_dropped_offline == 5


def test_peer_output_is_bounded_when_nobody_reads() -> None:
    rig = Rig(max_output=100)
    online_packet_call(rig)
    rig.send(b"x" * 150)
    assert rig.sim.peer_output_pending == 100
    assert rig.sim.counters.peer_output_dropped == 50
    assert rig.sim.peer_bytes_to_send(30) == b"x" * 30


def test_a_new_call_starts_with_an_empty_peer_buffer(rig: Rig) -> None:
    online_packet_call(rig)
    rig.send(b"unread")
    rig.sim.drop_call(rig.now)
    rig.at("ATD*99#")
    rig.advance(0.5)
    assert rig.sim.peer_bytes_to_send() == b""
