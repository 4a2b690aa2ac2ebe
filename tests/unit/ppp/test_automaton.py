"""The transition table in wipstack.ppp.automaton is the RFC 1661 §4.1 table, cell by cell."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wipstack.ppp.automaton import TIMER_STATES, TRANSITIONS, Action, Event, State

TABLE = Path(__file__).resolve().parents[2] / "data" / "rfc1661_table.txt"
ROW = re.compile(r"^\s*(Up|Down|Open|Close|TO\+|TO-|RCR\+|RCR-|RCA|RCN|RTR|RTA|RUC|RXJ\+|RXJ-|RXR)\s*\|(.*)$")


def parse_rfc_table() -> dict[tuple[State, Event], tuple[tuple[Action, ...], State] | None]:
    """Read both halves of the RFC's table; '-' cells map to None."""
    cells: dict[tuple[State, Event], tuple[tuple[Action, ...], State] | None] = {}
    half_states: list[State] = []
    for line in TABLE.read_text().splitlines():
        header = re.match(r"^\s*\|\s+((?:\d\s+)+\d)\s*$", line)
        if header:
            half_states = [State(int(n)) for n in header.group(1).split()]
            continue
        row = ROW.match(line)
        if not row:
            continue
        event = Event(row.group(1))
        entries = row.group(2).split()
        assert len(entries) == len(half_states), line
        for state, entry in zip(half_states, entries, strict=True):
            if entry == "-":
                cells[(state, event)] = None
                continue
            entry = entry.rstrip("rpx")  # optional behaviours are not part of the table
            actions_text, _, target = entry.rpartition("/")
            actions = tuple(Action(a) for a in actions_text.split(",") if a)
            cells[(state, event)] = (actions, State(int(target)))
    return cells


RFC = parse_rfc_table()


def test_rfc_table_text_is_complete() -> None:
    assert len(RFC) == len(State) * len(Event)


@pytest.mark.parametrize("key", sorted(RFC, key=lambda k: (k[0].value, k[1].value)), ids=str)
def test_transition_matches_rfc(key: tuple[State, Event]) -> None:
    assert TRANSITIONS.get(key) == RFC[key]


def test_no_transition_beyond_the_rfc() -> None:
    assert set(TRANSITIONS) == {k for k, v in RFC.items() if v is not None}


@given(st.sampled_from(State), st.sampled_from(Event))
def test_every_defined_transition_ends_in_a_state(state: State, event: Event) -> None:
    transition = TRANSITIONS.get((state, event))
    if transition is not None:
        actions, target = transition
        assert isinstance(target, State)
        assert all(isinstance(a, Action) for a in actions)
        # RFC 1661 §4.4: irc always comes before the scr/str it prepares
        if Action.IRC in actions and (Action.SCR in actions or Action.STR in actions):
            sends = [i for i, a in enumerate(actions) if a in (Action.SCR, Action.STR)]
            assert actions.index(Action.IRC) < min(sends)


def test_timer_runs_exactly_in_the_states_that_wait_for_an_answer() -> None:
    # TO+/TO- can only occur where the RFC table defines them
    timed = {s for (s, e) in TRANSITIONS if e in (Event.TO_PLUS, Event.TO_MINUS)}
    assert timed == TIMER_STATES


def test_state_names_are_the_rfc_names() -> None:
    assert [str(s) for s in State] == [
        "Initial",
        "Starting",
        "Closed",
        "Stopped",
        "Closing",
        "Stopping",
        "Req-Sent",
        "Ack-Rcvd",
        "Ack-Sent",
        "Opened",
    ]
