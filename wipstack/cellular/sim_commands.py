"""The AT commands of the simulated modem: one handler per command name.

A handler gets the port, the parsed command and ``now``.  It writes information text
through the port, changes port or radio state, and then either returns None (the command
succeeded: the line goes on, and ends with OK), returns :data:`PENDING` (the rest of the line
is dropped and the final result comes later - a call set-up - or was already sent - ATO's
CONNECT), or raises :class:`~wipstack.cellular.sim_radio.CommandError` with the final result.

Errors follow 27.007 §9.1: syntax errors, unknown commands and bad values of V.25ter basic
commands give ERROR; MT errors and bad parameters of extended commands give +CME ERROR
(shown as ERROR with AT+CMEE=0).  Deviations from real modems are noted where they occur.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from wipstack.cellular.cmux_types import MuxParameters
from wipstack.cellular.sim_parser import Command, CommandKind
from wipstack.cellular.sim_radio import CIDS, PDP_TYPES, CommandError, PdpContext
from wipstack.cellular.sim_types import REGISTERED, CmeError, ModemState, ResultCode, SimState

if TYPE_CHECKING:
    from wipstack.cellular.sim_port import SimulatedPort

__all__ = ["HANDLERS", "PENDING", "execute"]


class _Pending:
    """The final result is not OK-now: a call set-up runs, or the command sent it itself."""


PENDING: Final = _Pending()
Outcome = _Pending | None
Handler = Callable[["SimulatedPort", Command, float], Outcome]
HANDLERS: dict[str, Handler] = {}

SET, READ, TEST, ACTION = CommandKind.SET, CommandKind.READ, CommandKind.TEST, CommandKind.ACTION
BAD_PARAMETER = CmeError.INCORRECT_PARAMETERS
#: Dial modifiers that do not change the number (V.25ter §6.3.1, 27.007 §6.2 I/G).
DIAL_MODIFIERS = frozenset("TPW,!@-.()/IG> ")
DIAL_DIGITS = frozenset("0123456789*#+ABCD")
MAX_DIAL_DIGITS = 40
MAX_APN = 100  # 23.003 §9.1: an APN is at most 100 octets
BAUD_RATES = (300, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
CBST_SPEEDS = (0, 4, 6, 7, 12, 14, 68, 70, 71, 75)
#: S3 (line end), S4 (line feed), S5 (backspace): the line assembler uses fixed values, so only those are accepted.
FIXED_S_REGISTERS = (3, 4, 5)


def command(*names: str) -> Callable[[Handler], Handler]:
    """Register a handler under ``names``."""

    def register(handler: Handler) -> Handler:
        for name in names:
            HANDLERS[name] = handler
        return handler

    return register


def execute(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    """Run one command; an unknown one is an ERROR."""
    handler = HANDLERS.get(cmd.name)
    if handler is None:
        raise CommandError(ResultCode.ERROR)
    return handler(port, cmd, now)


# --------------------------------------------------------------------------- argument helpers
def basic_value(cmd: Command, allowed: range) -> int:
    """The number of a V.25ter basic command (missing: 0); ERROR outside ``allowed``."""
    text = cmd.args[0].text if cmd.args else "0"
    if len(text) > 3 or int(text) not in allowed:
        raise CommandError(ResultCode.ERROR)
    return int(text)


def int_arg(cmd: Command, index: int, allowed: range | tuple[int, ...], default: int | None = None) -> int:
    """Parameter ``index`` as an integer in ``allowed``; omitted gives ``default`` (or +CME ERROR: 50)."""
    args = cmd.args
    if index >= len(args) or (not args[index].text and not args[index].quoted):
        if default is None:
            raise CommandError(BAD_PARAMETER)
        return default
    text = args[index].text
    if args[index].quoted or not (text.isascii() and text.isdigit()) or len(text) > 9 or int(text) not in allowed:
        raise CommandError(BAD_PARAMETER)
    return int(text)


def str_arg(cmd: Command, index: int, default: str | None = None, max_length: int = MAX_APN) -> str:
    """Parameter ``index`` as text (quoted or not) of printable ASCII."""
    if index >= len(cmd.args):
        if default is None:
            raise CommandError(BAD_PARAMETER)
        return default
    text = cmd.args[index].text
    if len(text) > max_length or not all(char in string.printable and char not in "\r\n\t\x0b\x0c" for char in text):
        raise CommandError(BAD_PARAMETER)
    return text


def only(cmd: Command, *kinds: CommandKind) -> None:
    """ERROR unless the command is of one of ``kinds``."""
    if cmd.kind not in kinds:
        raise CommandError(ResultCode.ERROR)


# --------------------------------------------------------------------------- V.25ter basics
@command("E")
def _echo(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    port.profile.echo = bool(basic_value(cmd, range(2)))
    return None


@command("V")
def _verbose(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    port.profile.verbose = bool(basic_value(cmd, range(2)))
    return None


@command("Q")
def _quiet(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    port.profile.quiet = bool(basic_value(cmd, range(2)))
    return None


@command("&C")
def _dcd(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    port.profile.dcd_mode = basic_value(cmd, range(2))
    return None


@command("&D")
def _dtr(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    port.profile.dtr_mode = basic_value(cmd, range(3))
    return None


@command("X")
def _result_level(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    port.profile.result_level = basic_value(cmd, range(5))  # stored; the simulator always reports fully
    return None


@command("L", "M")
def _speaker(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    basic_value(cmd, range(4))  # speaker volume and mode: nothing to simulate
    return None


@command("Z")
def _reset(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    basic_value(cmd, range(1))
    call = port.radio.call
    if call is not None and call.owner is port:
        port.radio.end_call("reset", None, now)
    port.profile = port.stored_profile.copy()
    return None


@command("&F")
def _factory(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    basic_value(cmd, range(1))
    port.profile = port.factory_profile()
    return None


@command("&W")
def _store(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    basic_value(cmd, range(1))
    port.stored_profile = port.profile.copy()  # kept until power-off: the simulator has no NVRAM
    return None


@command("I")
def _identification(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    basic_value(cmd, range(10))
    settings = port.radio.settings
    port.info(settings.manufacturer, settings.model, settings.revision)
    return None


@command("S")
def _s_register(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    number_text = cmd.args[0].text
    if len(number_text) > 3 or int(number_text) > 255:
        raise CommandError(ResultCode.ERROR)
    registers = port.profile.s_registers
    number = int(number_text)
    if cmd.kind is READ:
        port.info(f"{registers.get(number, 0):03d}")  # V.25ter §5.3.2: three digits
        return None
    value_text = cmd.args[1].text
    if len(value_text) > 3 or int(value_text) > 255:
        raise CommandError(ResultCode.ERROR)
    value = int(value_text)
    if number in FIXED_S_REGISTERS and value != registers[number]:
        raise CommandError(ResultCode.ERROR)  # deviation from V.25ter §6.2.1-§6.2.3
    registers[number] = value
    return None


@command("D")
def _dial(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    if port.state is not ModemState.COMMAND:
        raise CommandError(CmeError.OPERATION_NOT_ALLOWED)  # a call is up (online command state)
    compact = "".join(cmd.args[0].text.split()).upper()
    gprs = _gprs_dial(compact)
    if gprs is not None:
        port.radio.dial_packet(port, gprs[1], False, now)
    else:
        voice = compact.endswith(";")  # V.25ter §6.3.1: ";" ends a voice dial string
        port.radio.dial_circuit(port, _dial_number(compact.rstrip(";")), voice, now)
    port.enter_dialling(now)
    return PENDING


def _gprs_dial(compact: str) -> tuple[bool, int | None] | None:
    """27.007 §10.2.1.1 ``*99[*[<called_address>][*[<L2P>][*[<cid>[,...]]]]]#``; None: not a packet dial."""
    if not (compact.startswith("*99") and compact.endswith("#")):
        return None
    body = compact[3:-1]
    if not body:
        return True, None
    if not body.startswith("*"):
        return None  # e.g. *991#: an ordinary number
    fields = body[1:].split("*")
    if len(fields) > 3:
        raise CommandError(BAD_PARAMETER)
    l2p = fields[1] if len(fields) > 1 else ""
    if l2p not in ("", "PPP", "1"):
        raise CommandError(CmeError.OPERATION_NOT_SUPPORTED)  # only PPP (27.007 L2P 1) reaches the DTE
    cid_text = fields[2].split(",")[0] if len(fields) > 2 else ""
    if not cid_text:
        return True, None
    if not (cid_text.isascii() and cid_text.isdigit()) or len(cid_text) > 3 or int(cid_text) not in CIDS:
        raise CommandError(BAD_PARAMETER)
    return True, int(cid_text)


def _dial_number(text: str) -> str:
    number = "".join(char for char in text if char not in DIAL_MODIFIERS)
    if not number:
        raise CommandError(ResultCode.ERROR)
    if not set(number) <= DIAL_DIGITS:
        raise CommandError(CmeError.INVALID_DIAL_CHARACTERS)
    if len(number) > MAX_DIAL_DIGITS:
        raise CommandError(CmeError.DIAL_STRING_TOO_LONG)
    return number


@command("A")
def _answer(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    basic_value(cmd, range(1))
    port.radio.answer(port, now)
    port.enter_dialling(now)
    return PENDING


@command("H")
def _hang_up(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    basic_value(cmd, range(1))
    call = port.radio.call
    if call is not None:
        # the call belongs to the MT: ATH on another 27.010 channel ends it too, and its own channel sees NO CARRIER
        port.radio.end_call("hangup", None if call.owner is port else ResultCode.NO_CARRIER, now)
    else:
        port.radio.reject_incoming()
    return None


@command("O")
def _online(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    basic_value(cmd, range(1))
    call = port.radio.call
    if port.state is not ModemState.ONLINE_COMMAND or call is None or call.owner is not port:
        raise CommandError(ResultCode.NO_CARRIER)
    port.go_online(now)
    return PENDING


# --------------------------------------------------------------------------- identification (27.007 §5)
def _identity(port: SimulatedPort, cmd: Command, text: str) -> Outcome:
    only(cmd, ACTION, TEST)
    if cmd.kind is ACTION:
        port.info(text)
    return None


@command("+CGMI", "+GMI")
def _manufacturer(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    return _identity(port, cmd, port.radio.settings.manufacturer)


@command("+CGMM", "+GMM")
def _model(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    return _identity(port, cmd, port.radio.settings.model)


@command("+CGMR", "+GMR")
def _revision(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    return _identity(port, cmd, port.radio.settings.revision)


@command("+CGSN", "+GSN")
def _serial(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    return _identity(port, cmd, port.radio.settings.imei)


@command("+CIMI")
def _imsi(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    if cmd.kind is ACTION:
        port.radio.require_sim()
    return _identity(port, cmd, port.radio.settings.imsi)


@command("+GCAP")
def _capabilities(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    return _identity(port, cmd, "+GCAP: +CGSM")


# --------------------------------------------------------------------------- settings of the port
def _flag(port: SimulatedPort, cmd: Command, name: str, value: int, allowed: range = range(2)) -> int | None:
    """The shared shape of a numeric parameter command: test, read, or set (returns the new value)."""
    if cmd.kind is TEST:
        low, high = allowed[0], allowed[-1]
        port.info(f"{name}: ({low})" if low == high else f"{name}: ({low},{high})" if high == low + 1
                  else f"{name}: ({low}-{high})")  # fmt: skip
    elif cmd.kind is READ:
        port.info(f"{name}: {value}")
    elif cmd.kind is SET:
        if len(cmd.args) > 1:
            raise CommandError(BAD_PARAMETER)
        return int_arg(cmd, 0, allowed, allowed[0])
    else:
        raise CommandError(ResultCode.ERROR)
    return None


@command("+CMEE")
def _cmee(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    value = _flag(port, cmd, "+CMEE", port.profile.cmee, range(3))
    if value is not None:
        port.profile.cmee = value
    return None


@command("+CRC")
def _crc(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    value = _flag(port, cmd, "+CRC", int(port.profile.crc))
    if value is not None:
        port.profile.crc = bool(value)
    return None


@command("+CLIP")
def _clip(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    if cmd.kind is READ:
        port.info(f"+CLIP: {int(port.profile.clip)},1")  # <m> 1: CLIP provisioned
        return None
    value = _flag(port, cmd, "+CLIP", int(port.profile.clip))
    if value is not None:
        port.profile.clip = bool(value)
    return None


@command("+FCLASS")
def _fclass(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    _flag(port, cmd, "+FCLASS", 0, range(1))  # data only
    return None


@command("+IPR")
def _ipr(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    if cmd.kind is TEST:
        port.info(f"+IPR: (0),({','.join(map(str, BAUD_RATES))})")
    elif cmd.kind is READ:
        port.info(f"+IPR: {port.profile.baud}")
    elif cmd.kind is SET:
        port.profile.baud = int_arg(cmd, 0, (0, *BAUD_RATES))  # stored; a pty has no speed
    else:
        raise CommandError(ResultCode.ERROR)
    return None


@command("+IFC")
def _ifc(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    if cmd.kind is TEST:
        port.info("+IFC: (0-2),(0-2)")
    elif cmd.kind is READ:
        port.info("+IFC: {},{}".format(*port.profile.flow))
    elif cmd.kind is SET:
        port.profile.flow = (int_arg(cmd, 0, range(3), 2), int_arg(cmd, 1, range(3), 2))
    else:
        raise CommandError(ResultCode.ERROR)
    return None


@command("+CBST")
def _cbst(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    if cmd.kind is TEST:
        port.info(f"+CBST: ({','.join(map(str, CBST_SPEEDS))}),(0),(0-3)")
    elif cmd.kind is READ:
        port.info("+CBST: {},{},{}".format(*port.profile.bearer))
    elif cmd.kind is SET:
        speed, name, ce = int_arg(cmd, 0, CBST_SPEEDS, 7), int_arg(cmd, 1, range(1), 0), int_arg(cmd, 2, range(4), 1)
        port.profile.bearer = (speed, name, ce)
    else:
        raise CommandError(ResultCode.ERROR)
    return None


@command("+CEER")
def _ceer(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    return _identity(port, cmd, f"+CEER: {port.radio.last_failure}")


@command("+CPAS")
def _cpas(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    radio = port.radio
    status = 4 if radio.call is not None else 3 if radio.ringing is not None else 0  # 27.007 §8.1
    return _identity(port, cmd, "+CPAS: (0,3,4)" if cmd.kind is TEST else f"+CPAS: {status}")


# --------------------------------------------------------------------------- SIM, power, network (27.007 §7-§8)
@command("+CPIN")
def _cpin(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    radio = port.radio
    if cmd.kind is TEST:
        return None
    if cmd.kind is READ:
        if radio.sim_state is SimState.ABSENT:
            raise CommandError(CmeError.SIM_NOT_INSERTED)
        text = {SimState.READY: "READY", SimState.PIN: "SIM PIN", SimState.PUK: "SIM PUK"}[radio.sim_state]
        port.info(f"+CPIN: {text}")
        return None
    only(cmd, SET)
    if len(cmd.args) > 2:
        raise CommandError(BAD_PARAMETER)
    new_pin = str_arg(cmd, 1, max_length=8) if len(cmd.args) > 1 else None
    radio.enter_pin(str_arg(cmd, 0, max_length=16), new_pin, now)
    return None


@command("+CFUN")
def _cfun(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    radio = port.radio
    if cmd.kind is TEST:
        port.info("+CFUN: (0,1,4),(0,1)")
    elif cmd.kind is READ:
        port.info(f"+CFUN: {radio.functionality}")
    elif cmd.kind is SET:
        level, reset = int_arg(cmd, 0, (0, 1, 4)), int_arg(cmd, 1, range(2), 0)
        radio.set_functionality(level, bool(reset), now)
    else:
        raise CommandError(ResultCode.ERROR)
    return None


def _registration(port: SimulatedPort, cmd: Command, name: str, level: int, stat: int) -> int | None:
    if cmd.kind is READ:
        text = port.registration_text(stat, level)
        port.info(f"{name}: {level},{text}")
        return None
    return _flag(port, cmd, name, level, range(3))


@command("+CREG")
def _creg(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    value = _registration(port, cmd, "+CREG", port.profile.creg, port.radio.cs_stat())
    if value is not None:
        port.profile.creg = value
    return None


@command("+CGREG")
def _cgreg(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    value = _registration(port, cmd, "+CGREG", port.profile.cgreg, port.radio.ps_stat())
    if value is not None:
        port.profile.cgreg = value
    return None


@command("+COPS")
def _cops(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    radio, settings = port.radio, port.radio.settings
    names = (settings.operator_name, settings.operator_short, settings.operator_numeric)
    in_service = radio.cs_stat() in REGISTERED or radio.ps_stat() in REGISTERED
    if cmd.kind is TEST:
        available = '(2,"{}","{}","{}")'.format(*names) if in_service else ""
        port.info(f"+COPS: {available},,(0-4),(0-2)")
    elif cmd.kind is READ:
        mode = 2 if radio.deregistered else 0
        port.info(f'+COPS: {mode},{port.profile.cops_format},"{names[port.profile.cops_format]}"'
                  if in_service else f"+COPS: {mode}")  # fmt: skip
    elif cmd.kind is SET:
        mode = int_arg(cmd, 0, range(5), 0)
        cops_format = int_arg(cmd, 1, range(3), port.profile.cops_format)
        if mode == 1 and str_arg(cmd, 2, "") not in names:
            raise CommandError(CmeError.NO_NETWORK_SERVICE)  # manual selection of a network we do not offer
        # mode 4 (manual, then automatic) falls back to automatic selection of our network
        port.profile.cops_format = cops_format
        if mode != 3:
            radio.deregistered = mode == 2
            radio.update_registration(now)
    else:
        raise CommandError(ResultCode.ERROR)
    return None


@command("+CSQ")
def _csq(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    radio, settings = port.radio, port.radio.settings
    only(cmd, ACTION, TEST)
    if cmd.kind is TEST:
        port.info("+CSQ: (0-31,99),(0-7,99)")
    elif radio.functionality != 1:
        port.info("+CSQ: 99,99")  # the receiver is off
    else:
        port.info(f"+CSQ: {settings.rssi},{settings.ber}")
    return None


# --------------------------------------------------------------------------- packet domain (27.007 §10)
@command("+CGATT")
def _cgatt(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    if cmd.kind is TEST:
        port.info("+CGATT: (0,1)")
    elif cmd.kind is READ:
        port.info(f"+CGATT: {int(port.radio.attached())}")
    elif cmd.kind is SET:
        port.radio.set_attached(bool(int_arg(cmd, 0, range(2))), now)
    else:
        raise CommandError(ResultCode.ERROR)
    return None


@command("+CGDCONT")
def _cgdcont(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    radio = port.radio
    if cmd.kind is TEST:
        port.info(*(f'+CGDCONT: (1-{CIDS[-1]}),"{pdp_type}",,,(0-3),(0-4)' for pdp_type in PDP_TYPES))
    elif cmd.kind is READ:
        port.info(*(f'+CGDCONT: {c.cid},"{c.pdp_type}","{c.apn}","{c.address}",{c.data_compression},'
                    f"{c.header_compression}" for _, c in sorted(radio.contexts.items())))  # fmt: skip
    elif cmd.kind is SET:
        cid = int_arg(cmd, 0, CIDS)
        if len(cmd.args) == 1:
            radio.undefine_context(cid)
            return None
        pdp_type = str_arg(cmd, 1).upper()
        apn = str_arg(cmd, 2, "")
        if pdp_type not in PDP_TYPES or '"' in apn:
            raise CommandError(BAD_PARAMETER)
        context = PdpContext(cid, pdp_type, apn, str_arg(cmd, 3, "", 64), int_arg(cmd, 4, range(4), 0),
                             int_arg(cmd, 5, range(5), 0))  # fmt: skip
        radio.define_context(context)
    else:
        raise CommandError(ResultCode.ERROR)
    return None


@command("+CGACT")
def _cgact(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    radio = port.radio
    if cmd.kind is TEST:
        port.info("+CGACT: (0,1)")
    elif cmd.kind is READ:
        port.info(*(f"+CGACT: {cid},{int(c.active)}" for cid, c in sorted(radio.contexts.items())))
    elif cmd.kind is SET:
        state = int_arg(cmd, 0, range(2))
        cids = [int_arg(cmd, index, CIDS) for index in range(1, len(cmd.args))]
        radio.activate(cids, bool(state), now)
    else:
        raise CommandError(ResultCode.ERROR)
    return None


@command("+CGDATA")
def _cgdata(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    if cmd.kind is TEST:
        port.info('+CGDATA: ("PPP")')
        return None
    only(cmd, SET, ACTION)
    if port.state is not ModemState.COMMAND:
        raise CommandError(CmeError.OPERATION_NOT_ALLOWED)
    if str_arg(cmd, 0, "").upper() not in ("", "PPP"):
        raise CommandError(CmeError.OPERATION_NOT_SUPPORTED)  # only PPP between the MT and the TE
    cid = int_arg(cmd, 1, CIDS) if len(cmd.args) > 1 and cmd.args[1].text else None
    port.radio.dial_packet(port, cid, True, now)
    port.enter_dialling(now)
    return PENDING


# --------------------------------------------------------------------------- multiplexing (27.007 §5.7)
CMUX_TEST = "+CMUX: (0),(0),(1-6),(1-32768),(1-255),(0-100),(2-255),(1-255),(1-7)"


@command("+CMUX")
def _cmux(port: SimulatedPort, cmd: Command, now: float) -> Outcome:
    """``AT+CMUX=0[,0[,<speed>[,<N1>[,<T1>[,<N2>[,<T2>[,<T3>[,<k>]]]]]]]]``: basic option, UIH frames only."""
    if cmd.kind is TEST:
        port.info(CMUX_TEST)
        return None
    if cmd.kind is READ:
        params = port.mux_parameters
        if params is None:
            raise CommandError(CmeError.OPERATION_NOT_ALLOWED)  # no multiplexer runs
        t1, t2 = round(params.t1 * 100), round(params.t2 * 100)
        port.info(f"+CMUX: 0,0,5,{params.n1},{t1},{params.n2},{t2},10,2")
        return None
    only(cmd, SET)
    if not port.allows_mux or port.radio.call is not None or port.state is not ModemState.COMMAND:
        raise CommandError(CmeError.OPERATION_NOT_ALLOWED)  # on a channel already, or a call is up
    if int_arg(cmd, 0, range(2)) != 0 or int_arg(cmd, 1, range(3), 0) != 0:
        raise CommandError(CmeError.OPERATION_NOT_SUPPORTED)  # advanced option, UI or I frames
    int_arg(cmd, 2, range(1, 7), 5)  # port speed: a pty has none
    n1 = int_arg(cmd, 3, range(1, 32769), 31)
    t1, n2, t2 = int_arg(cmd, 4, range(1, 256), 10), int_arg(cmd, 5, range(101), 3), int_arg(cmd, 6, range(2, 256), 30)
    int_arg(cmd, 7, range(1, 256), 10)  # T3 (wake-up) and k (error recovery window) are not used
    int_arg(cmd, 8, range(1, 8), 2)
    port.mux_request = MuxParameters(n1=n1, t1=t1 / 100, n2=n2, t2=t2 / 100)  # T1, T2 in tens of milliseconds
    return None
