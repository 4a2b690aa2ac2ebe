"""Example tests for ``at_frontend.parser``: line assembly and command-line parsing.

Every rule of the module docstring has at least one case here, and the command lines
real WIPSoft clients send are checked verbatim.
"""

from __future__ import annotations

import pytest

from at_frontend.parser import (
    MAX_ARGS,
    Arg,
    ArgError,
    AtSyntaxError,
    Command,
    CommandKind,
    Line,
    LineAssembler,
    is_repeat,
    parse_command_line,
)

ACTION, SET, READ, TEST = CommandKind.ACTION, CommandKind.SET, CommandKind.READ, CommandKind.TEST


def plain(*texts: str) -> tuple[Arg, ...]:
    """Unquoted arguments."""
    return tuple(Arg(text) for text in texts)


def feed_all(assembler: LineAssembler, *chunks: bytes) -> list[Line]:
    return [line for chunk in chunks for line in assembler.feed(chunk)]


# --------------------------------------------------------------------------- LineAssembler


class TestTerminators:
    @pytest.mark.parametrize("terminator", [b"\r", b"\n", b"\r\n"])
    def test_each_terminator_ends_one_line(self, terminator: bytes) -> None:
        assembler = LineAssembler()
        assert assembler.feed(b"ATE0" + terminator) == [Line("ATE0")]
        assert assembler.pending == ""

    @pytest.mark.parametrize("terminator", [b"\r", b"\n", b"\r\n"])
    def test_consecutive_lines(self, terminator: bytes) -> None:
        data = terminator.join([b"AT", b"ATI3", b"AT+CREG?"]) + terminator
        assert LineAssembler().feed(data) == [Line("AT"), Line("ATI3"), Line("AT+CREG?")]

    def test_crlf_split_across_feeds_is_one_terminator(self) -> None:
        assembler = LineAssembler()
        assert assembler.feed(b"ATE0\r") == [Line("ATE0")]
        assert assembler.feed(b"\nATV1\r") == [Line("ATV1")]
        assert assembler.feed(b"\n") == []

    def test_crlf_byte_at_a_time(self) -> None:
        assembler = LineAssembler()
        lines = feed_all(assembler, *(bytes([octet]) for octet in b"AT\r\nATE0\r\n"))
        assert lines == [Line("AT"), Line("ATE0")]

    def test_lf_without_cr_ends_a_line(self) -> None:
        assert LineAssembler().feed(b"AT\nATE0\n") == [Line("AT"), Line("ATE0")]

    def test_lfcr_is_two_terminators(self) -> None:
        # LF ends "AT"; the CR after it ends an empty line
        assert LineAssembler().feed(b"AT\n\r") == [Line("AT"), Line("")]

    def test_empty_lines_are_reported_empty(self) -> None:
        assert LineAssembler().feed(b"\r\r\n\n") == [Line(""), Line(""), Line("")]

    def test_cr_then_other_byte_then_lf(self) -> None:
        assert LineAssembler().feed(b"AT\rX\n") == [Line("AT"), Line("X")]

    def test_no_terminator_keeps_pending(self) -> None:
        assembler = LineAssembler()
        assert assembler.feed(b"AT+WIPCFG=") == []
        assert assembler.pending == "AT+WIPCFG="
        assert assembler.feed(b"1\r") == [Line("AT+WIPCFG=1")]

    def test_line_with_leading_garbage_is_kept_whole(self) -> None:
        assert LineAssembler().feed(b"\x1b~~AT\r") == [Line("\x1b~~AT")]

    def test_accepts_bytearray_and_memoryview(self) -> None:
        assembler = LineAssembler()
        assert assembler.feed(bytearray(b"AT\r")) == [Line("AT")]
        assert assembler.feed(memoryview(b"xxATE0\r")[2:]) == [Line("ATE0")]


class TestEditingAndDecoding:
    @pytest.mark.parametrize("erase", [b"\x08", b"\x7f"])
    def test_erase_deletes_previous_character(self, erase: bytes) -> None:
        assert LineAssembler().feed(b"ATE1" + erase + b"0\r") == [Line("ATE0")]

    def test_erase_across_feeds(self) -> None:
        assembler = LineAssembler()
        assembler.feed(b"ATX")
        assert assembler.feed(b"\x08I3\r") == [Line("ATI3")]

    def test_erase_never_goes_below_empty(self) -> None:
        assert LineAssembler().feed(b"A\x08\x08\x08\x7fAT\r") == [Line("AT")]

    def test_erase_does_not_reach_into_previous_line(self) -> None:
        assert LineAssembler().feed(b"AT\r\x08\x08ATE0\r") == [Line("AT"), Line("ATE0")]

    def test_nul_is_dropped(self) -> None:
        assert LineAssembler().feed(b"A\x00T\x00\r") == [Line("AT")]

    def test_nul_between_cr_and_lf_does_not_split_the_pair(self) -> None:
        assert LineAssembler().feed(b"AT\r\x00\nATE0\r") == [Line("AT"), Line("ATE0")]

    def test_high_bytes_decode_as_latin1(self) -> None:
        assert LineAssembler().feed(b'AT+X="\xe9\xff"\r') == [Line('AT+X="\u00e9\u00ff"')]

    def test_reset_forgets_partial_line_and_pending_cr(self) -> None:
        assembler = LineAssembler()
        assembler.feed(b"AT\rgarbage")
        assembler.reset()
        assert assembler.pending == ""
        # the LF is not swallowed as the second half of the CR fed before the reset
        assert assembler.feed(b"\n") == [Line("")]

    def test_invalid_max_line(self) -> None:
        with pytest.raises(ValueError):
            LineAssembler(max_line=0)


class TestTooLong:
    def test_line_of_exactly_max_line_is_fine(self) -> None:
        assert LineAssembler(max_line=8).feed(b"AT+X=123\r") == [Line("AT+X=123")]

    def test_overlong_line_reported_once_truncated(self) -> None:
        assembler = LineAssembler(max_line=8)
        assert assembler.feed(b"AT+X=123456789") == []
        assert assembler.pending == "AT+X=123"
        assert assembler.feed(b"more and more") == []
        assert len(assembler.pending) == 8
        assert assembler.feed(b"\r\n") == [Line("AT+X=123", too_long=True)]

    def test_next_line_after_overlong_one_works(self) -> None:
        assembler = LineAssembler(max_line=16)
        lines = assembler.feed(b"AT+WIPCFG=" + b"9" * 100 + b"\r\nATE0\r\n")
        assert lines == [Line("AT+WIPCFG=999999", too_long=True), Line("ATE0")]

    def test_erase_while_discarding_is_ignored(self) -> None:
        assembler = LineAssembler(max_line=4)
        assert assembler.feed(b"ATE01\x08\x08\r") == [Line("ATE0", too_long=True)]

    def test_erase_before_overflow_makes_room(self) -> None:
        assert LineAssembler(max_line=4).feed(b"ATE1\x080\r") == [Line("ATE0")]

    def test_default_max_line(self) -> None:
        assembler = LineAssembler()
        assert assembler.max_line == 512
        assert assembler.feed(b"A" * 513 + b"\r") == [Line("A" * 512, too_long=True)]


# --------------------------------------------------------------------------- prefix and A/


class TestPrefix:
    @pytest.mark.parametrize("line", ["AT", "at", "At", "aT", "  AT", "\tat", "AT  ", "AT;"])
    def test_bare_at_is_empty(self, line: str) -> None:
        assert parse_command_line(line) == []

    @pytest.mark.parametrize("line", ["", " ", "A", "T", "TA", "xAT", "A T", "A/", "a/", "+CMEE=1", "\x1bAT"])
    def test_missing_prefix_is_a_syntax_error(self, line: str) -> None:
        with pytest.raises(AtSyntaxError) as caught:
            parse_command_line(line)
        assert caught.value.reason

    @pytest.mark.parametrize("line", ["A/", "a/", " A/ ", "a/\t"])
    def test_is_repeat(self, line: str) -> None:
        assert is_repeat(line)

    @pytest.mark.parametrize("line", ["AT", "A", "/", "A//", "AT/", "A /", ""])
    def test_is_not_repeat(self, line: str) -> None:
        assert not is_repeat(line)


# --------------------------------------------------------------------------- basic commands


class TestBasicCommands:
    @pytest.mark.parametrize(
        ("line", "expected"),
        [
            ("ATE0", [Command("E", SET, plain("0"))]),
            ("ATE", [Command("E", ACTION)]),
            ("ate1", [Command("E", SET, plain("1"))]),
            ("ATV1", [Command("V", SET, plain("1"))]),
            ("ATQ0", [Command("Q", SET, plain("0"))]),
            ("ATZ", [Command("Z", ACTION)]),
            ("AT&F", [Command("&F", ACTION)]),
            ("at&w", [Command("&W", ACTION)]),
            ("ATI", [Command("I", ACTION)]),
            ("ATI3", [Command("I", SET, plain("3"))]),
            ("ATH", [Command("H", ACTION)]),
            ("ATH0", [Command("H", SET, plain("0"))]),
            ("ATO", [Command("O", ACTION)]),
            ("ATX4", [Command("X", SET, plain("4"))]),
            ("AT&D2", [Command("&D", SET, plain("2"))]),
            ("AT&C1", [Command("&C", SET, plain("1"))]),
            ("ATE00", [Command("E", SET, plain("00"))]),
            ("ATE?", [Command("E", READ)]),
        ],
    )
    def test_single(self, line: str, expected: list[Command]) -> None:
        assert parse_command_line(line) == expected

    def test_concatenated(self) -> None:
        assert parse_command_line("ATE0V1") == [Command("E", SET, plain("0")), Command("V", SET, plain("1"))]
        assert parse_command_line("ATE0V1Q0") == [
            Command("E", SET, plain("0")),
            Command("V", SET, plain("1")),
            Command("Q", SET, plain("0")),
        ]
        assert parse_command_line("AT&FE0&C1&D2") == [
            Command("&F", ACTION),
            Command("E", SET, plain("0")),
            Command("&C", SET, plain("1")),
            Command("&D", SET, plain("2")),
        ]
        assert parse_command_line("ATZE") == [Command("Z", ACTION), Command("E", ACTION)]

    def test_spaces_are_ignored(self) -> None:
        assert parse_command_line("AT E 0 V1") == [Command("E", SET, plain("0")), Command("V", SET, plain("1"))]
        assert parse_command_line("AT & F") == [Command("&F", ACTION)]
        assert parse_command_line("ATE 1 2") == [Command("E", SET, plain("12"))]

    def test_semicolon_between_basic_commands_is_tolerated(self) -> None:
        assert parse_command_line("ATE0;V1;") == [Command("E", SET, plain("0")), Command("V", SET, plain("1"))]

    @pytest.mark.parametrize("line", ["AT&", "AT&1", "AT&&F", "AT& ", "AT&+X"])
    def test_ampersand_needs_a_letter(self, line: str) -> None:
        with pytest.raises(AtSyntaxError):
            parse_command_line(line)

    @pytest.mark.parametrize(
        "line", ["AT=5", "AT,", "AT?", "AT0", "ATE0,1", "ATE=1", "ATE0?", 'AT"x"', "AT\u00e9", "AT\x00"]
    )
    def test_illegal_command_start(self, line: str) -> None:
        with pytest.raises(AtSyntaxError):
            parse_command_line(line)


class TestSRegisters:
    @pytest.mark.parametrize(
        ("line", "expected"),
        [
            ("ATS0=2", [Command("S0", SET, plain("2"))]),
            ("AT S0=2", [Command("S0", SET, plain("2"))]),
            ("ats7 = 60", [Command("S7", SET, plain("60"))]),
            ("ATS0?", [Command("S0", READ)]),
            ("ATS12?", [Command("S12", READ)]),
            ("ATS07=1", [Command("S7", SET, plain("1"))]),
            ("ATS00?", [Command("S0", READ)]),
            ("ATS0=", [Command("S0", SET, plain(""))]),
            ("ATS0", [Command("S0", ACTION)]),
            ("ATS?", [Command("S", READ)]),
            ("ATS0=2E0", [Command("S0", SET, plain("2")), Command("E", SET, plain("0"))]),
            ("ATS0?V1", [Command("S0", READ), Command("V", SET, plain("1"))]),
            ("ATE0S0=1", [Command("E", SET, plain("0")), Command("S0", SET, plain("1"))]),
        ],
    )
    def test_forms(self, line: str, expected: list[Command]) -> None:
        assert parse_command_line(line) == expected

    def test_non_numeric_value_is_a_syntax_error(self) -> None:
        with pytest.raises(AtSyntaxError):
            parse_command_line('ATS0="2"')


class TestDial:
    @pytest.mark.parametrize(
        ("line", "number"),
        [
            ("ATD*99***1#", "*99***1#"),
            ("atd*99#", "*99#"),
            ("ATDT 0123 456;", "T 0123 456;"),
            ("ATD  +44,1234 ", "+44,1234"),
            ('ATD"quote', '"quote'),
            ("ATD", ""),
        ],
    )
    def test_dial_consumes_the_rest(self, line: str, number: str) -> None:
        assert parse_command_line(line) == [Command("D", SET, plain(number))]

    def test_dial_after_other_commands(self) -> None:
        assert parse_command_line("ATE0D*99#") == [Command("E", SET, plain("0")), Command("D", SET, plain("*99#"))]
        assert parse_command_line("AT+CMEE=1;D*99#;E0") == [
            Command("+CMEE", SET, plain("1")),
            Command("D", SET, plain("*99#;E0")),
        ]


# --------------------------------------------------------------------------- extended commands


class TestExtendedForms:
    @pytest.mark.parametrize(
        ("line", "expected"),
        [
            ("AT+CREG?", Command("+CREG", READ)),
            ("AT+WIPCFG=?", Command("+WIPCFG", TEST)),
            ("AT+WIPCFG = ?", Command("+WIPCFG", TEST)),
            ("AT+CGMI", Command("+CGMI", ACTION)),
            ("AT+CMEE=1", Command("+CMEE", SET, plain("1"))),
            ("at+cmee=1", Command("+CMEE", SET, plain("1"))),
            ("AT+X=", Command("+X", SET, plain(""))),
            ("AT#FOO", Command("#FOO", ACTION)),
            ("AT%ver?", Command("%VER", READ)),
            ("AT*E2=1", Command("*E2", SET, plain("1"))),
            ("AT$QCPDP=?", Command("$QCPDP", TEST)),
            ("AT^SYSINFO", Command("^SYSINFO", ACTION)),
            ("AT+A!%-./:_9", Command("+A!%-./:_9", ACTION)),
            ("AT +CPIN?", Command("+CPIN", READ)),
            ("AT+C MEE=1", Command("+CMEE", SET, plain("1"))),
        ],
    )
    def test_forms(self, line: str, expected: Command) -> None:
        assert parse_command_line(line) == [expected]

    def test_semicolon_separation(self) -> None:
        expected = [Command("+CMEE", SET, plain("1")), Command("+WIPCFG", SET, plain("1"))]
        assert parse_command_line("AT+CMEE=1;+WIPCFG=1") == expected
        assert parse_command_line("AT+CMEE=1;+WIPCFG=1;") == expected
        assert parse_command_line("AT+CMEE=1 ; +WIPCFG=1 ;") == expected

    def test_mixed_read_test_action_on_one_line(self) -> None:
        assert parse_command_line("AT+CREG?;+WIPCFG=?;+CGMI;E0") == [
            Command("+CREG", READ),
            Command("+WIPCFG", TEST),
            Command("+CGMI", ACTION),
            Command("E", SET, plain("0")),
        ]

    def test_basic_after_extended_without_semicolon_is_argument_text(self) -> None:
        assert parse_command_line("AT+CMEE=1E0") == [Command("+CMEE", SET, plain("1E0"))]

    def test_basic_then_extended(self) -> None:
        assert parse_command_line("ATE0+CMEE=1") == [Command("E", SET, plain("0")), Command("+CMEE", SET, plain("1"))]

    @pytest.mark.parametrize("line", ["AT+", "AT+=1", "AT+?", "AT+;", "AT#", "AT+ =1", "AT+CMEE=1;+"])
    def test_missing_name(self, line: str) -> None:
        with pytest.raises(AtSyntaxError):
            parse_command_line(line)

    @pytest.mark.parametrize("line", ["AT+CREG?1", "AT+CREG?E0", "AT+X=?1", "AT+X=??", 'AT+X"a"', "AT+X,1", "AT+X@"])
    def test_junk_after_name_or_form(self, line: str) -> None:
        with pytest.raises(AtSyntaxError):
            parse_command_line(line)


class TestArguments:
    def test_unquoted_and_quoted(self) -> None:
        assert parse_command_line('AT+X=1,"two",three') == [
            Command("+X", SET, (Arg("1"), Arg("two", quoted=True), Arg("three")))
        ]

    def test_spaces_around_commas_are_ignored(self) -> None:
        assert parse_command_line('AT+X = 1 , "a b" ,  c d  ') == [
            Command("+X", SET, (Arg("1"), Arg("a b", quoted=True), Arg("c d")))
        ]

    def test_quoted_keeps_spaces_commas_semicolons_and_case(self) -> None:
        assert parse_command_line('AT+X=" A,b;C ",1') == [Command("+X", SET, (Arg(" A,b;C ", quoted=True), Arg("1")))]

    def test_unquoted_keeps_case(self) -> None:
        assert parse_command_line("at+x=MixedCase") == [Command("+X", SET, plain("MixedCase"))]

    @pytest.mark.parametrize(
        ("quoted", "text"),
        [
            (r'"\22"', '"'),
            (r'"\5C"', "\\"),
            (r'"\5c"', "\\"),
            (r'"a\2Cb"', "a,b"),
            (r'"\41\42C"', "ABC"),
            (r'"\e9"', "\u00e9"),
            (r'"C:\path"', "C:\\path"),  # not a hex escape: kept as is
            (r'"\4"', "\\4"),
            (r'"\"', "\\"),  # the backslash cannot escape the closing quote
            (r'"\5C22"', "\\22"),
        ],
    )
    def test_hex_escapes(self, quoted: str, text: str) -> None:
        assert parse_command_line("AT+X=" + quoted) == [Command("+X", SET, (Arg(text, quoted=True),))]

    def test_empty_parameters(self) -> None:
        [command] = parse_command_line("AT+X=,1,,")
        assert command.args == plain("", "1", "", "")
        assert [arg.is_empty for arg in command.args] == [True, False, True, True]

    def test_empty_quoted_is_not_empty_parameter(self) -> None:
        [command] = parse_command_line('AT+X=""')
        assert command.args == (Arg("", quoted=True),)
        assert not command.args[0].is_empty

    @pytest.mark.parametrize("line", ['AT+X="abc', 'AT+X=1,"', 'AT+X="a";+Y="b', 'AT+X="a\\22'])
    def test_unterminated_quote(self, line: str) -> None:
        with pytest.raises(AtSyntaxError, match="unterminated"):
            parse_command_line(line)

    @pytest.mark.parametrize("line", ['AT+X="a"b', 'AT+X="a""b"', 'AT+X=a"b"', 'AT+X=1,2"'])
    def test_quote_mixed_with_plain_text(self, line: str) -> None:
        with pytest.raises(AtSyntaxError):
            parse_command_line(line)

    def test_argument_limit(self) -> None:
        [command] = parse_command_line("AT+X=" + ",".join(["1"] * MAX_ARGS))
        assert len(command.args) == MAX_ARGS
        with pytest.raises(AtSyntaxError, match="parameters"):
            parse_command_line("AT+X=" + ",".join(["1"] * (MAX_ARGS + 1)))
        with pytest.raises(AtSyntaxError):
            parse_command_line("AT+X=" + "," * MAX_ARGS)


class TestRealClientLines:
    @pytest.mark.parametrize(
        ("line", "expected"),
        [
            ('AT+WIPBR=2,6,11,"internet"', [Command("+WIPBR", SET, (*plain("2", "6", "11"), Arg("internet", True)))]),
            (
                "AT+WIPBR=2,6,11,wirelesslogic-hsdpa.co.uk",
                [Command("+WIPBR", SET, plain("2", "6", "11", "wirelesslogic-hsdpa.co.uk"))],
            ),
            ("AT+WIPBR=4,6,0,,,", [Command("+WIPBR", SET, plain("4", "6", "0", "", "", ""))]),
            ('AT+WIPBR=2,6,0,""', [Command("+WIPBR", SET, (*plain("2", "6", "0"), Arg("", True)))]),
            (
                'AT+WIPCREATE=6,1,"smtp.x",25,"",""',
                [
                    Command(
                        "+WIPCREATE",
                        SET,
                        (*plain("6", "1"), Arg("smtp.x", True), Arg("25"), Arg("", True), Arg("", True)),
                    )
                ],
            ),
            ("at+wipbr=4,2,0", [Command("+WIPBR", SET, plain("4", "2", "0"))]),
            (
                'AT+WIPCREATE=1,1,14551,"77.67.201.231",14550',
                [Command("+WIPCREATE", SET, (*plain("1", "1", "14551"), Arg("77.67.201.231", True), Arg("14550")))],
            ),
            ("AT+WIPCREATE=2,1,192.0.2.1,80", [Command("+WIPCREATE", SET, plain("2", "1", "192.0.2.1", "80"))]),
            (
                'AT+WIPPING="192.0.2.1",3,1000',
                [Command("+WIPPING", SET, (Arg("192.0.2.1", True), *plain("3", "1000")))],
            ),
            ("AT+CMEE=1;+WIPCFG=1", [Command("+CMEE", SET, plain("1")), Command("+WIPCFG", SET, plain("1"))]),
            ("ATE0", [Command("E", SET, plain("0"))]),
            ("ATE0V1", [Command("E", SET, plain("0")), Command("V", SET, plain("1"))]),
            ("AT&F", [Command("&F", ACTION)]),
            ("ATI3", [Command("I", SET, plain("3"))]),
            ("AT+CREG?", [Command("+CREG", READ)]),
            ("AT+WIPCFG=?", [Command("+WIPCFG", TEST)]),
            ("AT+WIPDATA=2,1,1", [Command("+WIPDATA", SET, plain("2", "1", "1"))]),
            ("AT S0=2", [Command("S0", SET, plain("2"))]),
        ],
    )
    def test_line(self, line: str, expected: list[Command]) -> None:
        assert parse_command_line(line) == expected

    def test_wipbr_args_through_the_helpers(self) -> None:
        [command] = parse_command_line("AT+WIPBR=2,6,11,wirelesslogic-hsdpa.co.uk")
        bearer, option, value, apn = command.args
        assert (bearer.as_int(0, 9), option.as_int(0, 6), value.as_int(0, 255)) == (2, 6, 11)
        assert apn.as_str(96) == "wirelesslogic-hsdpa.co.uk"

    def test_assembled_then_parsed(self) -> None:
        assembler = LineAssembler()
        lines = feed_all(assembler, b"ATE0\r", b"\nAT+WIPCFG=1\r\nAT+WIPBR=1,6\n", b"\r\n")
        parsed = [parse_command_line(line.text) for line in lines if line.text]
        assert parsed == [
            [Command("E", SET, plain("0"))],
            [Command("+WIPCFG", SET, plain("1"))],
            [Command("+WIPBR", SET, plain("1", "6"))],
        ]


# --------------------------------------------------------------------------- Arg helpers


class TestArgHelpers:
    @pytest.mark.parametrize(
        ("arg", "lo", "hi", "value"),
        [
            (Arg("0"), 0, 1, 0),
            (Arg("1"), 0, 1, 1),
            (Arg("007"), 0, 10, 7),
            (Arg("65535"), 1, 65535, 65535),
            (Arg("42", quoted=True), 0, 100, 42),
            (Arg("0000"), 0, 0, 0),
        ],
    )
    def test_as_int_accepts(self, arg: Arg, lo: int, hi: int, value: int) -> None:
        assert arg.as_int(lo, hi) == value

    @pytest.mark.parametrize(
        ("arg", "lo", "hi"),
        [
            (Arg(""), 0, 1),
            (Arg("", quoted=True), 0, 1),
            (Arg("2"), 0, 1),
            (Arg("0"), 1, 65535),
            (Arg("65536"), 1, 65535),
            (Arg("+1"), 0, 9),
            (Arg("-1"), -5, 5),
            (Arg("1_0"), 0, 100),
            (Arg(" 1"), 0, 9),
            (Arg("0x10"), 0, 100),
            (Arg("\u0663"), 0, 9),  # ARABIC-INDIC DIGIT THREE: int() would accept it
            (Arg("1" * 5000), 0, 10**6),  # too many digits for int() by default
            (Arg("5"), 9, 1),
        ],
    )
    def test_as_int_rejects(self, arg: Arg, lo: int, hi: int) -> None:
        with pytest.raises(ArgError) as caught:
            arg.as_int(lo, hi)
        assert isinstance(caught.value, ValueError)
        assert caught.value.reason

    def test_as_str(self) -> None:
        assert Arg("abc").as_str(3) == "abc"
        assert Arg("", quoted=True).as_str(0) == ""
        with pytest.raises(ArgError):
            Arg("abcd").as_str(3)

    def test_is_empty(self) -> None:
        assert Arg("").is_empty
        assert not Arg("", quoted=True).is_empty
        assert not Arg("0").is_empty

    def test_value_objects_are_frozen_and_hashable(self) -> None:
        command = Command("+X", SET, (Arg("1"),))
        with pytest.raises(AttributeError):
            command.name = "+Y"  # type: ignore[misc]
        with pytest.raises(AttributeError):
            Line("AT").text = "x"  # type: ignore[misc]
        assert hash(command) == hash(Command("+X", SET, (Arg("1"),)))
