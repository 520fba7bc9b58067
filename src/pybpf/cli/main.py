"""Entry point of the `pybpf` command.

Each subcommand lives in its own module under `pybpf.cli` and registers
itself on `app`. Every error is one line on stderr, `pybpf: error: …`,
never a traceback or a framed panel, and every command exits with the
same codes:

* 0 — done (the program verified, the run finished);
* 1 — rejected or failed: the verifier rejected a program, a run faulted
  or was refused (`VerifierError`, `ProgramFault`, `TestRunError`,
  `MapError`, `NotSupportedError`);
* 2 — bad input: an unknown command or option, a missing or malformed
  argument, a file that cannot be read or written, a broken ELF object or
  bytecode, an unknown program or section, an interface that is missing or
  down (click's usage errors, `OSError`, `LoadError`, `DecodeError`,
  `AsmError`, `InterfaceError`, `BadInput`);
* 130 — interrupted (Ctrl-C): `pybpf: interrupted`, as a shell reports
  SIGINT.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import typer
from typer.exceptions import TyperException

from ..errors import AsmError, DecodeError, InterfaceError, LoadError, PybpfError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

BAD_INPUT_ERRORS: tuple[type[Exception], ...] = (LoadError, DecodeError, AsmError, InterfaceError)
"""pybpf errors that mean the input is bad (exit 2); every other `PybpfError` exits 1."""


class BadInput(PybpfError):
    """A command-line argument pybpf cannot use (exit 2); the message names it."""


class Interrupted(BaseException):
    """SIGINT while a command runs (raised by `main`'s handler; not a KeyboardInterrupt,
    which click would turn into a bare "Aborted!")."""


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"pybpf {__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="pybpf",
    help="Load, verify, disassemble and run eBPF programs outside the kernel.",
    epilog="Exit codes: 0 ok, 1 rejected or failed, 2 bad input, 130 interrupted.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version,
        is_eager=True,
        help="Print pybpf's version and exit.",
    ),
) -> None:
    """Load, verify, disassemble and run eBPF programs outside the kernel."""


def _register_commands(argv: list[str] | None = None) -> None:
    """Register the command `argv` runs (every command for the help, an option first or
    an unknown name; a group's every subcommand unless the one named is known alone).
    Imported here so that each command module can import `app` from this one."""
    from . import commands

    args = sys.argv[1:] if argv is None else argv
    words = []
    for arg in args[:2]:
        if arg.startswith("-"):
            break
        words.append(arg)
    commands.register(*words)


_UNSURE = object()


class _PlainCoercion:
    """Typer's coercion of a str, bool, int, Path or list[str] parameter, without pydantic.

    Typer 0.2x coerces every value through a pydantic `TypeAdapter`, and
    importing pydantic is ~60 ms of a command's start-up. The values the
    command line gives are strings (or the declared default): for those the
    result is plain, and this gives it; anything else (a bad number, a value
    out of range, another type) goes to typer's own coercion, so its errors
    read as before. Installed by `_without_pydantic` only where typer has
    the lazily built `_runtime_param` this replaces; elsewhere typer runs as
    it is.
    """

    def __init__(self, annotation: Any, minimum: Any, maximum: Any) -> None:
        self.annotation = annotation
        self.minimum = minimum
        self.maximum = maximum

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None:  # what typer gives for a value not given
            return () if param.multiple or param.nargs == -1 else None
        plain = self._plain(value)
        if plain is _UNSURE:
            param._runtime_param = None  # typer builds its own (pydantic) coercion
            return param.get_runtime_param().coerce(value, param=param, ctx=ctx)
        return plain

    def _plain(self, value: Any) -> Any:
        kind = self.annotation
        if kind is str or kind is bool:
            return value if type(value) is kind else _UNSURE
        if kind is Path:
            if type(value) is str and value:
                return Path(value)
            return value if isinstance(value, Path) else _UNSURE
        if kind is int:
            if type(value) is str and value.isascii() and value.isdigit():
                value = int(value)
            if type(value) is not int:
                return _UNSURE
            low, high = self.minimum, self.maximum
            if (low is not None and value < low) or (high is not None and value > high):
                return _UNSURE
            return value
        if kind == list[str] and isinstance(value, (list, tuple)):
            return list(value) if all(type(item) is str for item in value) else _UNSURE
        return _UNSURE


def _without_pydantic(command: Any) -> None:
    """Give `command`'s plain parameters (and its subcommands') `_PlainCoercion`."""
    for param in getattr(command, "params", ()):
        _plain_param(param)
    help_option = getattr(command, "get_help_option", None)
    if help_option is not None:  # --help is made per context, not one of `params`

        def plain_help_option(ctx: Any, made: Any = help_option) -> Any:
            option = made(ctx)
            if option is not None:
                _plain_param(option)
            return option

        command.get_help_option = plain_help_option
    for sub in getattr(command, "commands", {}).values():
        _without_pydantic(sub)


def _plain_param(param: Any) -> None:
    """`_PlainCoercion` for `param` when typer would coerce it lazily and the type is plain."""
    descriptor = getattr(param, "type_descriptor", None)
    info = getattr(descriptor, "parameter_info", None)
    if info is None or getattr(param, "_runtime_param", _UNSURE) is not None:
        return  # not typer's lazily coerced parameter: leave it to typer
    if getattr(info, "parser", None) is not None or getattr(info, "click_type", None):
        return
    annotation = descriptor.annotation
    if annotation in (str, bool, int, Path) or annotation == list[str]:
        param._runtime_param = _PlainCoercion(
            annotation, getattr(info, "min", None), getattr(info, "max", None)
        )


def _command(argv: list[str] | None = None) -> Any:
    """The click command of `app` with what `argv` runs registered, coercing without pydantic."""
    _register_commands(argv)
    command = typer.main.get_command(app)
    _without_pydantic(command)
    return command


def _interrupt(_signum: int, _frame: object) -> None:
    raise Interrupted()


def _error(message: str, code: int) -> int:
    print(f"pybpf: error: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the process exit code."""
    previous = None
    try:
        previous = signal.signal(signal.SIGINT, _interrupt)
    except ValueError:  # not the main thread (an embedding application): keep its handler
        pass
    try:
        result = _command(argv).main(args=argv, prog_name="pybpf", standalone_mode=False)
        return result if isinstance(result, int) else EXIT_OK
    except Interrupted:
        print("pybpf: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:  # a KeyboardInterrupt seen by click itself
        print("pybpf: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except TyperException as exc:  # click's usage errors: unknown command/option, bad value
        format_message = getattr(exc, "format_message", None)
        message = format_message() if format_message is not None else str(exc)
        if type(exc).__name__ == "NoArgsIsHelpError":  # `pybpf`, `pybpf prog` alone: the help
            print(message, file=sys.stderr)
            return EXIT_BAD_INPUT
        return _error(" ".join(message.split()), EXIT_BAD_INPUT)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_FAILED)
    except (BadInput, *BAD_INPUT_ERRORS) as exc:
        return _error(str(exc), EXIT_BAD_INPUT)
    except PybpfError as exc:
        return _error(str(exc), EXIT_FAILED)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _error(f"{where}{exc.strerror or exc}", EXIT_BAD_INPUT)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
