"""Entry point of the `pybpf` command.

Each subcommand lives in its own module under `pybpf.cli` and registers
itself on `app`. Errors that pybpf raises on purpose (`PybpfError`) are
printed as one line on stderr with exit code 1; usage errors exit 2 (click's
convention). No traceback ever reaches the user for bad input.
"""

from __future__ import annotations

import sys

import typer

from ..errors import PybpfError

app = typer.Typer(
    name="pybpf",
    help="Load, verify, disassemble and run eBPF programs outside the kernel.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_commands() -> None:
    # Imported here so that each command module can import `app` from this one.
    from . import commands  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the process exit code."""
    _register_commands()
    try:
        app(args=argv, prog_name="pybpf", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except PybpfError as exc:
        print(f"pybpf: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        name = f" {exc.filename}" if exc.filename else ""
        print(f"pybpf: error:{name}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
