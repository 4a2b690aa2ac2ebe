"""Scripted AT sessions, byte for byte: ``AT+WIPCFG`` (stack start/stop, options, version, flash)."""

from __future__ import annotations

import pytest

from at_frontend.store import MemoryStore, encode_store
from tests.helpers.at_rig import Rig
from wipstack import __version__

OK = b"\r\nOK\r\n"
ERROR = b"\r\nERROR\r\n"

DEFAULTS = {0: 64, 1: 0, 2: 60, 3: 16384, 4: 536, 12: 0}
#: option -> (low, high)
RANGES = {0: (1, 255), 1: (0, 255), 2: (1, 65535), 3: (536, 65535), 4: (536, 1460), 12: (0, 65535)}


def info(*lines: str) -> bytes:
    return b"".join(b"\r\n" + line.encode() + b"\r\n" for line in lines) + OK


def cme(code: int | str) -> bytes:
    return b"\r\n+CME ERROR: " + str(code).encode() + b"\r\n"


def listing(values: dict[int, int]) -> bytes:
    """What ``AT+WIPCFG?`` prints for these option values."""
    return info(*(f"+WIPCFG: {opt},{value}" for opt, value in sorted(values.items())))


@pytest.fixture
def rig() -> Rig:
    rig = Rig()
    assert rig.at("AT+CMEE=1") == OK
    return rig


# ---------------------------------------------------------------------------- read, test, version


def test_read_lists_every_option_with_its_default(rig: Rig) -> None:
    assert rig.at("AT+WIPCFG?") == (
        b"\r\n+WIPCFG: 0,64\r\n\r\n+WIPCFG: 1,0\r\n\r\n+WIPCFG: 2,60\r\n\r\n+WIPCFG: 3,16384\r\n"
        b"\r\n+WIPCFG: 4,536\r\n\r\n+WIPCFG: 12,0\r\n\r\nOK\r\n"
    )


def test_test_form_gives_the_ranges(rig: Rig) -> None:
    assert rig.at("AT+WIPCFG=?") == info("+WIPCFG: (0-4),(0-4,12),(0-65535)")


def test_version_lines(rig: Rig) -> None:
    assert rig.at("AT+WIPCFG=3") == info(
        "WIP stack: WIPSOFT v2.02 compatible", f"wipstack {__version__} (userspace TCP/IP, Python)"
    )


def test_version_does_not_need_the_stack_started_and_works_when_it_is(rig: Rig) -> None:
    before = rig.at("AT+WIPCFG=3")
    assert rig.at("AT+WIPCFG=1") == OK
    assert rig.at("AT+WIPCFG=3") == before


def test_action_form_is_a_syntax_error(rig: Rig) -> None:
    assert rig.at("AT+WIPCFG") == ERROR


# ---------------------------------------------------------------------------- modes 0 and 1


def test_start_then_already_started_then_stop_then_start_again(rig: Rig) -> None:
    assert rig.at("AT+WIPCFG=1") == OK
    assert rig.at("AT+WIPCFG=1") == cme(844)
    assert rig.at("AT+WIPCFG=0") == OK
    assert rig.at("AT+WIPCFG=1") == OK


def test_stop_when_not_started_is_ok(rig: Rig) -> None:
    assert rig.at("AT+WIPCFG=0") == OK
    assert rig.at("AT+WIPCFG=0") == OK


@pytest.mark.parametrize(("cmee", "answer"), [(0, ERROR), (1, cme(844)), (2, cme("stack already started"))])
def test_already_started_in_each_cmee_mode(cmee: int, answer: bytes) -> None:
    rig = Rig()
    assert rig.at(f"AT+CMEE={cmee};+WIPCFG=1") == OK
    assert rig.at("AT+WIPCFG=1") == answer


def test_wip_commands_need_the_stack_started(rig: Rig) -> None:
    assert rig.at("AT+WIPBR=1,4") == cme(803)
    assert rig.at("AT+WIPCFG=1") == OK
    assert rig.at("AT+WIPBR=1,4") == OK
    assert rig.at("AT+WIPCFG=0") == OK
    assert rig.at("AT+WIPBR=1,4") == cme(803)


def test_stop_closes_sockets_and_bearers() -> None:
    rig = Rig()
    rig.start_network_bearer()
    assert rig.at("AT+WIPCREATE=1,1,7000") == OK + b"\r\n+WIPREADY: 1,1\r\n"
    assert rig.at("AT+WIPCFG=0") == OK
    assert rig.host.closed == [4]
    assert rig.at("AT+WIPBR?") == OK
    assert rig.at("AT+WIPCREATE?") == OK
    assert rig.at("AT+WIPCREATE=1,1,7000") == cme(803)
    assert rig.at("AT+WIPCFG=1") == OK
    assert rig.at("AT+WIPBR=1,4") == OK  # closed, not just stopped: no 804
    assert rig.at("AT+WIPBR?") == info("+WIPBR: 4,0")


def test_stop_then_start_keeps_the_option_values(rig: Rig) -> None:
    assert rig.at("AT+WIPCFG=1;+WIPCFG=2,0,99") == OK
    assert rig.at("AT+WIPCFG=0;+WIPCFG=1") == OK
    assert rig.at("AT+WIPCFG?") == listing({**DEFAULTS, 0: 99})


# ---------------------------------------------------------------------------- mode 2: options


@pytest.mark.parametrize("opt", sorted(RANGES))
def test_option_range_bounds(rig: Rig, opt: int) -> None:
    low, high = RANGES[opt]
    assert rig.at(f"AT+WIPCFG=2,{opt},{low}") == OK
    assert rig.at("AT+WIPCFG?") == listing({**DEFAULTS, opt: low})
    assert rig.at(f"AT+WIPCFG=2,{opt},{high}") == OK
    assert rig.at("AT+WIPCFG?") == listing({**DEFAULTS, opt: high})
    assert rig.at(f"AT+WIPCFG=2,{opt},{high + 1}") == cme(801)
    if low > 0:
        assert rig.at(f"AT+WIPCFG=2,{opt},{low - 1}") == cme(801)
    assert rig.at("AT+WIPCFG?") == listing({**DEFAULTS, opt: high})  # failures change nothing


@pytest.mark.parametrize("value", ["x", "-1", '"abc"', "", "1.5", "99999999999999999999"])
def test_bad_option_values_are_801(rig: Rig, value: str) -> None:
    assert rig.at(f"AT+WIPCFG=2,0,{value}") == cme(801)


def test_quoted_numbers_are_accepted(rig: Rig) -> None:
    assert rig.at('AT+WIPCFG=2,"0","32"') == OK
    assert rig.at("AT+WIPCFG?") == listing({**DEFAULTS, 0: 32})


@pytest.mark.parametrize("opt", ["5", "6", "7", "11", "13", "65535", "65536", "x", ""])
def test_unknown_options_are_800(rig: Rig, opt: str) -> None:
    assert rig.at(f"AT+WIPCFG=2,{opt},1") == cme(800)


def test_option_12_as_three_clients_set_it(rig: Rig) -> None:
    assert rig.at("AT+WIPCFG=2,12,10") == OK
    assert rig.at("AT+WIPCFG=2,12,3") == OK
    assert rig.at("AT+WIPCFG?") == listing({**DEFAULTS, 12: 3})


def test_options_while_started(rig: Rig) -> None:
    assert rig.at("AT+WIPCFG=1") == OK
    assert rig.at("AT+WIPCFG=2,1,16") == OK
    assert rig.at("AT+WIPCFG?") == listing({**DEFAULTS, 1: 16})


def test_option_errors_with_cmee_0(rig: Rig) -> None:
    assert rig.at("AT+CMEE=0") == OK
    assert rig.at("AT+WIPCFG=2,5,1") == ERROR
    assert rig.at("AT+WIPCFG=2,0,0") == ERROR


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("AT+WIPCFG=2,0", 800),
        ("AT+WIPCFG=2", 800),
        ("AT+WIPCFG=2,0,1,2", 800),
        ("AT+WIPCFG=0,1", 800),
        ("AT+WIPCFG=1,1", 800),
        ("AT+WIPCFG=3,1", 800),
        ("AT+WIPCFG=4", 800),
        ("AT+WIPCFG=4,1,1", 800),
        ("AT+WIPCFG=4,2", 801),
        ("AT+WIPCFG=5", 801),
        ("AT+WIPCFG=x", 801),
        ("AT+WIPCFG=", 801),
    ],
)
def test_malformed_modes(rig: Rig, line: str, code: int) -> None:
    assert rig.at(line) == cme(code)


# ---------------------------------------------------------------------------- effect on the stack


def test_options_reach_the_stack_configuration(rig: Rig) -> None:
    assert rig.at("AT+WIPCFG=2,0,17;+WIPCFG=2,1,184;+WIPCFG=2,2,30") == OK
    assert rig.at("AT+WIPCFG=2,3,20000;+WIPCFG=2,4,1460") == OK
    config, tcp = rig.stack.config, rig.stack.tcp.config
    assert (config.ttl, config.tos, config.fragment_timeout) == (17, 184, 30.0)
    assert (tcp.receive_buffer, tcp.default_mss) == (20000, 1460)


def test_option_12_sets_the_tcp_timeouts(rig: Rig) -> None:
    tcp = rig.stack.tcp.config
    assert (tcp.connect_timeout, tcp.data_timeout) == (75.0, 0.0)  # 0: wipstack's own limits
    assert rig.at("AT+WIPCFG=2,12,10") == OK
    tcp = rig.stack.tcp.config
    assert (tcp.connect_timeout, tcp.data_timeout) == (10.0, 10.0)
    assert rig.at("AT+WIPCFG=2,12,0") == OK
    tcp = rig.stack.tcp.config
    assert (tcp.connect_timeout, tcp.data_timeout) == (75.0, 0.0)


def test_defaults_reach_the_stack_at_start_up() -> None:
    rig = Rig()
    assert rig.stack.config.ttl == 64
    assert rig.stack.tcp.config.send_buffer == 10240  # WIPSoft's default send buffer


def test_ttl_option_on_the_wire() -> None:
    rig = Rig()
    network = rig.start_network_bearer()
    ttls: list[int] = []
    receive = network.stack.receive

    def spy(interface, packet, now):  # type: ignore[no-untyped-def]
        ttls.append(bytes(packet)[8])
        return receive(interface, packet, now)

    network.stack.receive = spy  # type: ignore[method-assign]
    assert rig.at("AT+WIPCFG=2,0,33") == OK
    assert rig.at('AT+WIPPING="192.0.2.1"') == OK + b"\r\n+WIPPING: 0,0,0\r\n"
    assert ttls == [33]


# ---------------------------------------------------------------------------- mode 4: flash


def test_store_then_a_new_module_restores_the_options() -> None:
    rig = Rig()
    assert rig.at("AT+CMEE=1;+WIPCFG=2,0,100;+WIPCFG=2,12,10") == OK
    assert rig.at("AT+WIPCFG=4,1") == OK
    again = Rig(store=rig.store)
    assert again.take(1) == b""  # no error at start-up
    assert again.at("AT+WIPCFG?") == listing({**DEFAULTS, 0: 100, 12: 10})
    assert again.stack.config.ttl == 100
    assert again.stack.tcp.config.connect_timeout == 10.0
    assert again.at("AT+CMEE=1;+WIPBR=1,4") == cme(803)  # options restored, stack not started


def test_store_keeps_what_was_stored_not_what_came_later() -> None:
    rig = Rig()
    assert rig.at("AT+WIPCFG=2,1,8;+WIPCFG=4,1;+WIPCFG=2,1,16") == OK
    assert Rig(store=rig.store).at("AT+WIPCFG?") == listing({**DEFAULTS, 1: 8})


def test_free_forgets_the_stored_options_but_keeps_the_current_ones() -> None:
    rig = Rig()
    assert rig.at("AT+WIPCFG=2,0,100;+WIPCFG=4,1") == OK
    assert rig.at("AT+WIPCFG=4,0") == OK
    assert rig.at("AT+WIPCFG?") == listing({**DEFAULTS, 0: 100})
    assert Rig(store=rig.store).at("AT+WIPCFG?") == listing(DEFAULTS)


def test_free_with_nothing_stored_is_ok(rig: Rig) -> None:
    assert rig.at("AT+WIPCFG=4,0") == OK
    assert rig.store.saves == 0


def test_store_keeps_the_bearer_sections() -> None:
    rig = Rig()
    rig.start_stack()
    assert rig.at('AT+WIPBR=1,4;+WIPBR=2,4,17,"192.0.2.53";+WIPBR=6,4,1') == OK
    assert rig.at("AT+WIPCFG=2,0,42;+WIPCFG=4,1") == OK
    again = Rig(store=rig.store)
    again.start_stack()
    assert again.at("AT+WIPCFG?") == listing({**DEFAULTS, 0: 42})
    assert again.at("AT+WIPBR=1,4") == OK
    assert again.at("AT+WIPBR=3,4,17") == info('+WIPBR: 4,17,"192.0.2.53"')


def test_a_corrupt_store_gives_821_unsolicited_at_start_up_and_the_defaults() -> None:
    store = MemoryStore()
    store.blob = b"junk"
    rig = Rig(store=store)
    assert rig.take(1) == b"\r\n+CME ERROR: 821\r\n"
    assert rig.take(2) == b""  # only the first UART hears it
    assert rig.at("AT+WIPCFG?") == listing(DEFAULTS)
    assert rig.stack.config.ttl == 64


def test_an_unreadable_store_gives_821_at_start_up() -> None:
    store = MemoryStore({"wipcfg": {"0": 99}})
    store.fail_next_load = True
    rig = Rig(store=store)
    assert rig.take(1) == b"\r\n+CME ERROR: 821\r\n"
    assert rig.at("AT+WIPCFG?") == listing(DEFAULTS)


def test_storing_over_a_corrupt_store_replaces_it() -> None:
    store = MemoryStore()
    store.blob = b"junk"
    rig = Rig(store=store)
    assert rig.take(1) == b"\r\n+CME ERROR: 821\r\n"
    assert rig.at("AT+CMEE=1;+WIPCFG=2,0,7;+WIPCFG=4,1") == OK
    again = Rig(store=store)
    assert again.take(1) == b""
    assert again.at("AT+WIPCFG?") == listing({**DEFAULTS, 0: 7})


def test_freeing_a_corrupt_store_is_821() -> None:
    rig = Rig()
    assert rig.at("AT+CMEE=1") == OK
    rig.store.blob = b"junk"
    assert rig.at("AT+WIPCFG=4,0") == cme(821)


def test_a_failing_save_is_820_and_the_old_store_stays() -> None:
    rig = Rig()
    assert rig.at("AT+CMEE=1;+WIPCFG=2,0,10;+WIPCFG=4,1") == OK
    assert rig.at("AT+WIPCFG=2,0,20") == OK
    rig.store.fail_next_save = True
    assert rig.at("AT+WIPCFG=4,1") == cme(820)
    assert Rig(store=rig.store).at("AT+WIPCFG?") == listing({**DEFAULTS, 0: 10})
    assert rig.at("AT+WIPCFG=4,1") == OK  # the failure was once
    assert Rig(store=rig.store).at("AT+WIPCFG?") == listing({**DEFAULTS, 0: 20})


def test_a_failing_free_is_820() -> None:
    rig = Rig()
    assert rig.at("AT+CMEE=1;+WIPCFG=4,1") == OK
    rig.store.fail_next_save = True
    assert rig.at("AT+WIPCFG=4,0") == cme(820)


def test_stored_values_out_of_range_or_unknown_are_ignored() -> None:
    store = MemoryStore()
    store.blob = encode_store({"wipcfg": {"0": 999, "1": 5, "77": 3, "2": "x", "4": 600}})
    rig = Rig(store=store)
    assert rig.take(1) == b""
    assert rig.at("AT+WIPCFG?") == listing({**DEFAULTS, 1: 5, 4: 600})
