"""Which modules register which command on `app`: a command imports only its own.

`pybpf prog run …` imports the modules of `prog` (and what they import),
not the other fifteen commands' (their imports and typer's building of
their parameters are start-up a run does not need); `pybpf --help`, an
option first or an unknown name imports every module, in `ALL`'s order
(the order the help lists the commands in).
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


def register(command: str | None = None) -> None:
    """Import the modules of `command` (every module when None or unknown)."""
    for name in MODULES.get(command, ALL) if command is not None else ALL:
        importlib.import_module(f"{__package__}.{name}")
