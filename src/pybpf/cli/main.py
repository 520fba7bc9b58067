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


def _register_commands() -> None:
    # Imported here so that each command module can import `app` from this one.
    from . import commands  # noqa: F401


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
        _register_commands()
        result = app(args=argv, prog_name="pybpf", standalone_mode=False)
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
