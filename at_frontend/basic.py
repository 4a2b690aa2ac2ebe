"""V.25ter basics and the 3GPP 27.007 / Wavecom commands clients send around the +WIP ones.

The radio answers come from the module's :class:`~at_frontend.config.RadioState` (a
documented simulation until a cellular modem is attached).  Settings that only matter on
a real modem (``AT&C``, ``AT&D``, ``ATX``, S-registers other than the escape ones, ``+IPR``,
``+IFC``) are accepted and remembered so that reads give back what was written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from at_frontend.config import SimState
from at_frontend.parser import Command, CommandKind
from at_frontend.registry import CONNECT, Outcome, arg_count, command, require_kind
from at_frontend.responses import CmeError, CommandError

if TYPE_CHECKING:
    from at_frontend.channel import Channel
    from at_frontend.module import Module

SET, READ, TEST, ACTION = CommandKind.SET, CommandKind.READ, CommandKind.TEST, CommandKind.ACTION


@dataclass(slots=True)
class BasicState:
    """What the basic commands remember (module-wide, like the module's own settings)."""

    line_settings: dict[str, str] = field(default_factory=dict)
    registration_modes: dict[str, int] = field(default_factory=dict)
    pdp_contexts: dict[int, tuple[str, str]] = field(default_factory=dict)
    line_parameters: dict[str, str] = field(default_factory=dict)


def _flag(cmd: Command, default: int = 0, high: int = 1) -> int:
    """The number of a basic command (``E1``), ``default`` when absent (``E``)."""
    if cmd.kind is ACTION:
        return default
    require_kind(cmd, SET)
    return cmd.args[0].as_int(0, high) if cmd.args else default


def _bad_value(cmd: Command) -> CommandError:
    return CommandError(None, f"bad value for {cmd.name}")


# ---------------------------------------------------------------------------- V.25ter settings


#: ``ATE0/1`` echo of command characters, ``ATV0/1`` numeric/verbose results, ``ATQ1`` no result codes.
FRAMING_FLAGS = {"E": "echo", "V": "verbose", "Q": "quiet"}


@command(*FRAMING_FLAGS)
def framing_flag(module: Module, channel: Channel, cmd: Command) -> None:
    """``ATE``, ``ATV``, ``ATQ`` with 0 or 1 (absent: 0)."""
    try:
        setattr(channel.framing, FRAMING_FLAGS[cmd.name], bool(_flag(cmd)))
    except ValueError:
        raise _bad_value(cmd) from None


@command("Z", "&F")
def reset(module: Module, channel: Channel, cmd: Command) -> None:
    """``ATZ`` / ``AT&F``: factory settings of the channel (E1 V1 Q0, CMEE 0)."""
    if cmd.kind is SET and cmd.args and cmd.args[0].text not in ("0", ""):
        raise _bad_value(cmd)
    channel.reset_settings()


@command("&C", "&D", "&K", "&S", "&W", "&V", "X", "L", "M", "S")
def accepted_setting(module: Module, channel: Channel, cmd: Command) -> None:
    """Modem-line settings that mean nothing on a virtual UART: accepted, remembered."""
    settings = module.basic.line_settings
    if cmd.kind is READ:
        channel.info(settings.get(cmd.name, "0").zfill(3) if cmd.name.startswith("S") else settings.get(cmd.name, "0"))
    elif cmd.kind is SET and cmd.args:
        settings[cmd.name] = cmd.args[0].text


@command("H")
def hang_up(module: Module, channel: Channel, cmd: Command) -> None:
    """``ATH``: no call to hang up on a virtual UART."""


@command("O")
def online(module: Module, channel: Channel, cmd: Command) -> Outcome | None:
    """``ATO``: back to data mode on the socket this UART was last mapped to."""
    if module.sockets.resume_data(channel):
        return CONNECT
    raise CommandError(None, "no data connection to return to")


@command("I")
def identification(module: Module, channel: Channel, cmd: Command) -> None:
    """``ATI`` model, ``ATI3`` revision (Wavecom)."""
    value = cmd.args[0].text if cmd.kind is SET and cmd.args else "0"
    config = module.config
    answers = {"0": config.model, "3": config.revision, "5": config.wip_version, "6": config.manufacturer}
    if value not in answers:
        raise _bad_value(cmd)
    channel.info(answers[value])


@command("D", "A")
def dial(module: Module, channel: Channel, cmd: Command) -> None:
    """``ATD`` / ``ATA``: no circuit-switched calls without a modem (the GSM bearer issue)."""
    raise CommandError(None, "no data calls on a virtual UART")


@command("+CMEE")
def cmee(module: Module, channel: Channel, cmd: Command) -> None:
    """``AT+CMEE=<n>``: 0 ERROR, 1 numeric, 2 verbose ``+CME ERROR``."""
    if cmd.kind is READ:
        channel.info(f"+CMEE: {channel.framing.cmee}")
    elif cmd.kind is TEST:
        channel.info("+CMEE: (0-2)")
    elif cmd.kind is SET:
        arg_count(cmd, 1, 1)
        channel.framing.cmee = cmd.args[0].as_int(0, 2)
    else:
        channel.framing.cmee = 0


# ---------------------------------------------------------------------------- identity


def _identity(text_of: str) -> object:
    def handler(module: Module, channel: Channel, cmd: Command) -> None:
        if cmd.kind is TEST:
            return
        require_kind(cmd, ACTION)
        channel.info(getattr(module.config, text_of))

    return handler


command("+CGMI", "+GMI")(_identity("manufacturer"))  # type: ignore[arg-type]
command("+CGMM", "+GMM")(_identity("model"))  # type: ignore[arg-type]
command("+CGMR", "+GMR")(_identity("revision"))  # type: ignore[arg-type]
command("+CGSN", "+GSN")(_identity("imei"))  # type: ignore[arg-type]


@command("+WOPEN")
def wopen(module: Module, channel: Channel, cmd: Command) -> None:
    """``AT+WOPEN``: the IP application always runs (clients poll ``AT+WOPEN?``)."""
    if cmd.kind is READ:
        channel.info("+WOPEN: 1")
    elif cmd.kind is TEST:
        channel.info("+WOPEN: (0-8)")
    elif cmd.kind is SET:
        arg_count(cmd, 1, 2)
        if cmd.args[0].as_int(0, 8) not in (0, 1):
            raise CommandError(CmeError.OPERATION_NOT_SUPPORTED)
    else:
        raise CommandError(None)


# ---------------------------------------------------------------------------- radio (simulated)


@command("+CPIN")
def cpin(module: Module, channel: Channel, cmd: Command) -> None:
    """``AT+CPIN?`` / ``AT+CPIN=<pin>`` (27.007 §8.3)."""
    radio = module.config.radio
    if cmd.kind is READ:
        if radio.sim is SimState.ABSENT:
            raise CommandError(CmeError.SIM_NOT_INSERTED)
        channel.info(f"+CPIN: {radio.sim.value}")
    elif cmd.kind is SET:
        arg_count(cmd, 1, 2)
        if radio.sim is SimState.ABSENT:
            raise CommandError(CmeError.SIM_NOT_INSERTED)
        if radio.sim is not SimState.PIN:
            raise CommandError(CmeError.OPERATION_NOT_ALLOWED)  # 27.007 §8.3: no PIN is pending
        if cmd.args[0].text != radio.pin:
            raise CommandError(CmeError.INCORRECT_PASSWORD)
        radio.sim = SimState.READY
    elif cmd.kind is not TEST:
        raise CommandError(None)


def _registration(name: str, attribute: str) -> object:
    def handler(module: Module, channel: Channel, cmd: Command) -> None:
        radio = module.config.radio
        modes = module.basic.registration_modes
        mode = modes.get(name, 0)
        if cmd.kind is READ:
            stat = getattr(radio, attribute) if radio.functionality == 1 else 0
            extra = f',"{radio.lac}","{radio.cell_id}"' if mode == 2 and stat in (1, 5) else ""
            channel.info(f"{name}: {mode},{stat}{extra}")
        elif cmd.kind is TEST:
            channel.info(f"{name}: (0-2)")
        elif cmd.kind is SET:
            arg_count(cmd, 1, 1)
            modes[name] = cmd.args[0].as_int(0, 2)
        else:
            raise CommandError(None)

    return handler


command("+CREG")(_registration("+CREG", "registration"))  # type: ignore[arg-type]
command("+CGREG")(_registration("+CGREG", "gprs_registration"))  # type: ignore[arg-type]


@command("+CSQ")
def csq(module: Module, channel: Channel, cmd: Command) -> None:
    """``AT+CSQ``: ``+CSQ: <rssi>,<ber>``."""
    if cmd.kind is TEST:
        channel.info("+CSQ: (0-31,99),(0-7,99)")
        return
    require_kind(cmd, ACTION)
    radio = module.config.radio
    channel.info(f"+CSQ: {radio.rssi if radio.functionality == 1 else 99},{radio.ber}")


@command("+CGATT")
def cgatt(module: Module, channel: Channel, cmd: Command) -> None:
    """``AT+CGATT``: GPRS attach state."""
    radio = module.config.radio
    if cmd.kind is READ:
        channel.info(f"+CGATT: {int(radio.gprs_attached)}")
    elif cmd.kind is TEST:
        channel.info("+CGATT: (0-1)")
    elif cmd.kind is SET:
        arg_count(cmd, 1, 1)
        radio.gprs_attached = bool(cmd.args[0].as_int(0, 1))
    else:
        raise CommandError(None)


@command("+CFUN")
def cfun(module: Module, channel: Channel, cmd: Command) -> None:
    """``AT+CFUN``: 1 full functionality, 0 minimum (radio off); ``AT+CFUN=1,1`` resets."""
    radio = module.config.radio
    if cmd.kind is READ:
        channel.info(f"+CFUN: {radio.functionality}")
    elif cmd.kind is TEST:
        channel.info("+CFUN: (0,1),(0,1)")
    elif cmd.kind is SET:
        arg_count(cmd, 1, 2)
        level = cmd.args[0].as_int(0, 1)
        radio.functionality = level
        if len(cmd.args) == 2 and cmd.args[1].as_int(0, 1) == 1:
            channel.reset_settings()
            # a reset module announces it is ready when AT+WIND asked for it (Wavecom: bit 2
            # "+WIND: 3", ready except phonebook; bit 3 "+WIND: 4", ready for all commands)
            mask = int(module.basic.line_parameters.get("+WIND", "0").split(",")[0] or 0)
            if level == 1 and mask & 4:
                channel.urc("+WIND: 3")
            if level == 1 and mask & 8:
                channel.urc("+WIND: 4")
    else:
        raise CommandError(None)


@command("+CGCLASS")
def cgclass(module: Module, channel: Channel, cmd: Command) -> None:
    """``AT+CGCLASS``: mobile class B (GSM and GPRS, one at a time)."""
    if cmd.kind is READ:
        channel.info('+CGCLASS: "B"')
    elif cmd.kind is TEST:
        channel.info('+CGCLASS: ("B","CC","CG")')
    elif cmd.kind is SET:
        arg_count(cmd, 1, 1)
        if cmd.args[0].text.upper() not in ("B", "CC", "CG"):
            raise CommandError(CmeError.OPERATION_NOT_SUPPORTED)
    else:
        raise CommandError(None)


@command("+CGDCONT")
def cgdcont(module: Module, channel: Channel, cmd: Command) -> None:
    """``AT+CGDCONT=<cid>,"IP","<apn>"``: PDP contexts, kept for the GPRS bearer."""
    contexts = module.basic.pdp_contexts
    if cmd.kind is READ:
        for cid, (pdp_type, apn) in sorted(contexts.items()):
            channel.info(f'+CGDCONT: {cid},"{pdp_type}","{apn}","0.0.0.0",0,0')
    elif cmd.kind is TEST:
        channel.info('+CGDCONT: (1-4),"IP",,,(0-1),(0-1)')
    elif cmd.kind is SET:
        arg_count(cmd, 1, 6)
        cid = cmd.args[0].as_int(1, 4)
        if len(cmd.args) == 1:
            contexts.pop(cid, None)
        else:
            contexts[cid] = (cmd.args[1].as_str(8).upper() or "IP", cmd.args[2].as_str(96) if len(cmd.args) > 2 else "")
    else:
        raise CommandError(None)


@command("+IFC", "+IPR", "+ICF", "+WIND")
def line_parameter(module: Module, channel: Channel, cmd: Command) -> None:
    """Flow control, rate, framing, Wavecom indications: remembered, read back."""
    defaults = {"+IFC": "2,2", "+IPR": "115200", "+ICF": "3,4", "+WIND": "0"}
    values = module.basic.line_parameters
    if cmd.kind is READ:
        channel.info(f"{cmd.name}: {values.get(cmd.name, defaults[cmd.name])}")
    elif cmd.kind is TEST:
        ranges = {"+IFC": "(0-2),(0-2)", "+IPR": "(),(1200-921600)", "+ICF": "(1-6),(0-4)", "+WIND": "(0-4194303)"}
        channel.info(f"{cmd.name}: {ranges[cmd.name]}")
    elif cmd.kind is SET:
        arg_count(cmd, 1, 2)
        highs = {"+IFC": 2, "+IPR": 921600, "+ICF": 6, "+WIND": 4194303}
        for arg in cmd.args:
            arg.as_int(0, highs[cmd.name])
        values[cmd.name] = ",".join(arg.text for arg in cmd.args)
    else:
        raise CommandError(None)
