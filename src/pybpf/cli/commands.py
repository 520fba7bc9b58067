"""Which modules register which command on `app`: a command imports only its own.

`pybpf prog run …` imports the module of `prog run` (and what it imports),
not the other commands' nor the daemon's `prog` subcommands (their
imports and typer's building of their parameters are start-up a run does
not need); `pybpf prog …` with another subcommand imports the modules of
every `prog` subcommand; `pybpf --help`, an option first or an unknown
name imports every module, in `ALL`'s order (the order the help lists the
commands in).
"""

from __future__ import annotations

import importlib

ALL = (
    "asm",
    "attach",
    "conformance",
    "daemon",
    "disasm",
    "feature",
    "gen",
    "include_dir",
    "loaded",
    "map",
    "prog",
    "run_raw",
    "sock",
    "tc",
    "verify",
    "xdp",
)
"""Every command module, in the order they register."""

MODULES: dict[str, tuple[str, ...]] = {
    "asm": ("asm",),
    "conformance": ("conformance",),
    "disasm": ("disasm",),
    "feature": ("feature",),
    "include-dir": ("include_dir",),
    "run-raw": ("run_raw",),
    "verify": ("verify",),
    "map": ("map", "loaded"),  # `map dump`; the daemon's map commands
    "prog": ("prog", "loaded"),  # `prog run`; the daemon's prog commands
    "tc": ("tc", "attach"),  # `tc replay`; `tc attach`
    "xdp": ("xdp", "attach"),  # `xdp replay`; `xdp attach`
    "daemon": ("daemon",),
    "gen": ("gen",),
    "link": ("loaded",),
    "net": ("loaded",),
    "sock": ("sock",),
}
"""Top-level command → the modules that register it and its subcommands
(tests/test_cli_startup.py checks each gives the same command as `ALL`)."""


SUBCOMMAND_MODULES: dict[tuple[str, str], tuple[str, ...]] = {
    ("prog", "run"): ("prog",),  # not `loaded`: the daemon's prog and map commands
    ("map", "dump"): ("map",),
}
"""(command, subcommand) → the module that registers that subcommand, when it is not
all of `MODULES[command]` (tests/test_cli_startup.py checks each gives the same
subcommand as `ALL`)."""


def register(command: str | None = None, subcommand: str | None = None) -> None:
    """Import the modules of `command` (every module when None or unknown), only the
    one of `subcommand` where `SUBCOMMAND_MODULES` names it."""
    if command is None:
        names = ALL
    else:
        names = SUBCOMMAND_MODULES.get((command, subcommand or ""), MODULES.get(command, ALL))
    for name in names:
        importlib.import_module(f"{__package__}.{name}")
