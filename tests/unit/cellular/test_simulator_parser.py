"""The simulator's V.25ter line assembler and command-line parser."""

from __future__ import annotations

import pytest

from wipstack.cellular.sim_parser import (
    Arg,
    AtSyntaxError,
    Command,
    CommandKind,
    CommandLineAssembler,
    LineComplete,
    RepeatLine,
    parse_command_line,
)

SET, READ, TEST, ACTION = CommandKind.SET, CommandKind.READ, CommandKind.TEST, CommandKind.ACTION


def feed(assembler: CommandLineAssembler, data: bytes) -> list[LineComplete | RepeatLine]:
    items = [assembler.push(octet) for octet in data]
    return [item for item in items if item is not None]


def test_assembler_waits_for_at_and_ends_at_cr() -> None:
    assembler = CommandLineAssembler(32)
    assert feed(assembler, b"noise\nat+csq\r\nATE0\r") == [LineComplete("+csq"), LineComplete("E0")]


def test_assembler_backspace_and_control_characters() -> None:
    assembler = CommandLineAssembler(32)
    assert feed(assembler, b"AT\x08\x08E1\x7f0\x01\r") == [LineComplete("E0")]


def test_assembler_repeat_and_reset() -> None:
    assembler = CommandLineAssembler(32)
    assert feed(assembler, b"A/") == [RepeatLine()]
    feed(assembler, b"AT+CS")
    assert assembler.pending == 3
    assembler.reset()
    assert feed(assembler, b"Q\r") == []


def test_assembler_too_long_line_is_bounded() -> None:
    assembler = CommandLineAssembler(16)
    feed(assembler, b"AT" + b"x" * 100)
    assert assembler.pending == 16
    assert feed(assembler, b"\r") == [LineComplete("x" * 16, too_long=True)]


@pytest.mark.parametrize(
    ("line", "commands"),
    [
        ("", []),
        ("E0V1&D2", [Command("E", SET, (Arg("0"),)), Command("V", SET, (Arg("1"),)), Command("&D", SET, (Arg("2"),))]),
        ("Z", [Command("Z", ACTION)]),
        ("S0=2S7?", [Command("S", SET, (Arg("0"), Arg("2"))), Command("S", READ, (Arg("7"),))]),
        ("s12=", [Command("S", SET, (Arg("12"), Arg("0")))]),
        ("D*99***1#", [Command("D", SET, (Arg("*99***1#"),))]),
        ("E0 d 555;", [Command("E", SET, (Arg("0"),)), Command("D", SET, (Arg("555;"),))]),
        ("+creg?;+CGREG=?", [Command("+CREG", READ), Command("+CGREG", TEST)]),
        (
            '+CGDCONT=1,"IP","a,b;c"',
            [Command("+CGDCONT", SET, (Arg("1"), Arg("IP", True), Arg("a,b;c", True)))],
        ),
        ("+CGDATA=,1", [Command("+CGDATA", SET, (Arg(""), Arg("1")))]),
        ("+CMEE= 1 ;+CSQ", [Command("+CMEE", SET, (Arg("1"),)), Command("+CSQ", ACTION)]),
    ],
)
def test_parse(line: str, commands: list[Command]) -> None:
    assert parse_command_line(line) == commands


@pytest.mark.parametrize(
    "line",
    ["?", "&", "&1", "S", "S0", "+", '+X="a', '+X="a"b', '+X=a"b', "+X junk", "+" + "A" * 20, "E0!", "+X=" + ",1" * 20],
)
def test_parse_errors(line: str) -> None:
    with pytest.raises(AtSyntaxError):
        parse_command_line(line)
