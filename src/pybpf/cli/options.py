"""Options several commands share, defined once."""

from __future__ import annotations

import typer

PLATFORM = typer.Option(
    None,
    "--platform",
    metavar="NAME",
    help="Whose conventions OBJ follows: linux or windows (eBPF for Windows). Default:"
    " what the object says (a .ebpf_for_windows section, Windows-only sections or"
    " context types), else linux.",
)
