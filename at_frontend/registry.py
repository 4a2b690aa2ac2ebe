"""The command registry: AT command name -> handler.

A handler takes the module, the channel the command came on and the parsed command.  It
returns ``None`` when the command is done (``OK`` follows once the whole line has run),
:data:`PENDING` when the final result comes later (``AT+WIPBR=4`` waits for the link), or
:data:`CONNECT` when the channel has switched to data mode.  It raises
:class:`~at_frontend.responses.CommandError` to fail with ``ERROR`` / ``+CME ERROR``.
Information text goes out with ``channel.info(...)`` while the handler runs.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

from at_frontend.parser import Arg, Command, CommandKind
from at_frontend.responses import CmeError, CommandError

if TYPE_CHECKING:
    from at_frontend.channel import Channel
    from at_frontend.module import Module


class Outcome(enum.Enum):
    """What a handler returns besides ``None`` (done)."""

    PENDING = "pending"
    CONNECT = "connect"


PENDING = Outcome.PENDING
CONNECT = Outcome.CONNECT

Handler: TypeAlias = "Callable[[Module, Channel, Command], Outcome | None]"

COMMANDS: dict[str, Handler] = {}


def command(*names: str) -> Callable[[Handler], Handler]:
    """Register a handler under ``names`` (upper case, ``+`` included for extended commands)."""

    def register(handler: Handler) -> Handler:
        for name in names:
            COMMANDS[name] = handler
        return handler

    return register


def require_kind(cmd: Command, *kinds: CommandKind) -> None:
    """Plain ``ERROR`` for a form the command does not have (``AT+CSQ?``)."""
    if cmd.kind not in kinds:
        raise CommandError(None, f"{cmd.name} has no {cmd.kind.value} form")


def int_arg(arg: Arg, low: int, high: int, code: CmeError) -> int:
    """``arg`` as an integer in ``low..high``, else ``+CME ERROR: <code>``."""
    try:
        return arg.as_int(low, high)
    except ValueError:
        raise CommandError(code) from None


def require_started(module: Module) -> None:
    """803 until ``AT+WIPCFG=1`` started the IP stack."""
    if not module.started:
        raise CommandError(CmeError.NOT_ALLOWED_IN_STACK_STATE, "the IP stack is not started (AT+WIPCFG=1)")


def arg_count(cmd: Command, low: int, high: int) -> None:
    """``+CME ERROR`` (invalid option) unless ``low <= len(args) <= high``."""
    if not low <= len(cmd.args) <= high:
        raise CommandError(CmeError.INVALID_OPTION, f"{cmd.name} takes {low}..{high} parameters, got {len(cmd.args)}")
