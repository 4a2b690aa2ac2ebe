"""``AT+WIPCFG``: start and stop the IP stack, its options, version, and the flash store.

Options (``AT+WIPCFG=2,<opt>,<value>``), each mapped onto wipstack's configuration:

====  =====================================  ===========  ========  ===============================
opt   meaning                                range        default   wipstack setting
====  =====================================  ===========  ========  ===============================
0     TTL of datagrams we originate          1-255        64        ``StackConfig.ttl``
1     TOS of datagrams we originate          0-255        0         ``StackConfig.tos``
2     lifetime of incomplete fragments (s)   1-65535      60        ``StackConfig.fragment_timeout``
3     TCP receive window of new sockets      536-65535    16384     ``TcpConfig.receive_buffer``
4     MSS assumed for peers that send none   536-1460     536       ``TcpConfig.default_mss``
12    TCP timeout (s): connect and data      0-65535      0         ``connect_timeout``/``data_timeout``
====  =====================================  ===========  ========  ===============================

Option 12 is what three independent clients set (``AT+WIPCFG=2,12,10``); 0 keeps wipstack's
own limits (75 s to connect, failure after 12 retransmission timeouts).  Any other option
number is ``+CME ERROR: 800``; a value out of range is 801.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from at_frontend.parser import Command, CommandKind
from at_frontend.registry import arg_count, command
from at_frontend.responses import CmeError, CommandError
from at_frontend.store import (
    JsonValue,
    StoreCorrupt,
    StoreUnavailable,
    delete_section,
    read_section,
    update_section,
)

if TYPE_CHECKING:
    from at_frontend.channel import Channel
    from at_frontend.module import Module

SET, READ, TEST = CommandKind.SET, CommandKind.READ, CommandKind.TEST

#: option -> (low, high, default)
OPTIONS: dict[int, tuple[int, int, int]] = {
    0: (1, 255, 64),
    1: (0, 255, 0),
    2: (1, 65535, 60),
    3: (536, 65535, 16384),
    4: (536, 1460, 536),
    12: (0, 65535, 0),
}
SECTION = "wipcfg"
#: The send buffer of sockets the frontend opens (WIPSoft's default, +WIPOPT option 4).
DEFAULT_SEND_BUFFER = 10240
DEFAULT_CONNECT_TIMEOUT = 75.0


class StackSettings:
    """The ``+WIPCFG`` state of a module: started or not, and the option values."""

    def __init__(self, module: Module) -> None:
        self.module = module
        self.started = False
        self.values: dict[int, int] = {opt: default for opt, (_, _, default) in OPTIONS.items()}
        self.load_error: CmeError | None = None

    def load_stored(self) -> None:
        """Apply the stored options (at start-up); a bad store gives 821 and the defaults."""
        try:
            stored = read_section(self.module.store, SECTION)
        except (StoreCorrupt, StoreUnavailable):
            self.load_error = CmeError.FLASH_READ_ERROR
            self.module.urc(min(self.module.channels), f"+CME ERROR: {int(CmeError.FLASH_READ_ERROR)}")
            stored = None
        for key, value in (stored or {}).items():
            if key.isdigit() and int(key) in OPTIONS and isinstance(value, int):
                low, high, _ = OPTIONS[int(key)]
                if low <= value <= high:
                    self.values[int(key)] = value
        self.apply()

    def apply(self) -> None:
        """Push the option values into the stack's and TCP layer's configuration."""
        stack = self.module.stack
        values = self.values
        stack.set_config(replace(stack.config, ttl=values[0], tos=values[1], fragment_timeout=float(values[2])))
        timeout = values[12]
        stack.tcp.config = replace(
            stack.tcp.config,
            receive_buffer=max(1024, values[3]),
            send_buffer=DEFAULT_SEND_BUFFER,
            default_mss=values[4],
            connect_timeout=float(timeout) if timeout else DEFAULT_CONNECT_TIMEOUT,
            data_timeout=float(timeout),
        )

    def store(self) -> None:
        """``AT+WIPCFG=4,1``: write the options to flash."""
        write_section(self.module, SECTION, {str(opt): value for opt, value in self.values.items()})

    def free(self) -> None:
        """``AT+WIPCFG=4,0``: forget the stored options (the current values stay)."""
        erase_section(self.module, SECTION)

    def stop(self) -> None:
        """``AT+WIPCFG=0``: close every socket and stop every bearer."""
        self.module.pings.cancel_all()
        self.module.ftp.close_all()
        self.module.sockets.close_all(self.module.now)
        self.module.stack.tcp.flush(self.module.now)  # the RSTs leave before the bearers go
        self.module.bearers.stop_all(self.module.now)
        self.started = False


def write_section(module: Module, name: str, values: dict[str, JsonValue]) -> None:
    """Store one section in flash (820 when it cannot be written; a corrupt store is replaced)."""
    try:
        try:
            update_section(module.store, name, values)
        except StoreCorrupt:
            module.store.save({name: values})  # the old content is lost anyway: start afresh
    except StoreUnavailable:
        raise CommandError(CmeError.FLASH_WRITE_ERROR) from None


def erase_section(module: Module, name: str) -> None:
    """Forget one stored section (821 when the store cannot be read, 820 when it cannot be written)."""
    try:
        delete_section(module.store, name)
    except StoreCorrupt:
        raise CommandError(CmeError.FLASH_READ_ERROR) from None
    except StoreUnavailable:
        raise CommandError(CmeError.FLASH_WRITE_ERROR) from None


@command("+WIPCFG")
def wipcfg(module: Module, channel: Channel, cmd: Command) -> None:
    """``AT+WIPCFG=<mode>[,<opt>,<value>]`` (modes 0-4), ``?`` and ``=?``."""
    settings = module.stack_config
    if cmd.kind is READ:
        for opt, value in sorted(settings.values.items()):
            channel.info(f"+WIPCFG: {opt},{value}")
        return
    if cmd.kind is TEST:
        channel.info("+WIPCFG: (0-4),(0-4,12),(0-65535)")
        return
    if cmd.kind is not SET:
        raise CommandError(None)
    arg_count(cmd, 1, 3)
    mode = cmd.args[0].as_int(0, 4)
    if mode == 0:
        arg_count(cmd, 1, 1)
        settings.stop()
    elif mode == 1:
        arg_count(cmd, 1, 1)
        if settings.started:
            raise CommandError(CmeError.STACK_ALREADY_STARTED)
        settings.started = True
    elif mode == 2:
        arg_count(cmd, 3, 3)
        try:
            opt = cmd.args[1].as_int(0, 65535)
        except ValueError:
            raise CommandError(CmeError.INVALID_OPTION) from None
        if opt not in OPTIONS:
            raise CommandError(CmeError.INVALID_OPTION)
        low, high, _ = OPTIONS[opt]
        try:
            value = cmd.args[2].as_int(low, high)
        except ValueError:
            raise CommandError(CmeError.INVALID_OPTION_VALUE) from None
        settings.values[opt] = value
        settings.apply()
    elif mode == 3:
        arg_count(cmd, 1, 1)
        from wipstack import __version__

        channel.info(f"WIP stack: {module.config.wip_version}")
        channel.info(f"wipstack {__version__} (userspace TCP/IP, Python)")
    else:
        arg_count(cmd, 2, 2)
        action = cmd.args[1].as_int(0, 1)
        settings.store() if action == 1 else settings.free()
