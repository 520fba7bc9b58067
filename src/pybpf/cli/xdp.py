"""`pybpf xdp`: XDP programs on capture files."""

from __future__ import annotations

from pathlib import Path

import typer

from .main import app
from .replay import run_replay

xdp_app = typer.Typer(
    name="xdp", help="Run XDP programs on packets from capture files.", no_args_is_help=True
)
app.add_typer(xdp_app, name="xdp")


@xdp_app.command("replay")
def replay_command(
    obj_path: Path = typer.Argument(..., metavar="OBJ", help="The eBPF object file."),
    pcap: Path = typer.Option(..., "--pcap", metavar="IN", help="The capture (pcap or pcapng)."),
    section: str = typer.Option(None, "--section", help="The program's ELF section."),
    program: str = typer.Option(None, "--program", help="The program's name."),
    out: Path = typer.Option(
        None,
        "--out",
        metavar="DIR",
        help="Write each verdict's frames, as the program left them, to DIR/<verdict>.pcap.",
    ),
    maps: list[str] = typer.Option(
        None, "--map", metavar="NAME=KEY:VALUE", help="Set a map entry first (hex bytes)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Run every frame of IN through a xdp program of OBJ in the JIT; print the frames
    and bytes per verdict and the map entries the program left non-zero.

    Ctrl-C stops the replay: what ran is counted, written and printed (exit 130).
    """
    from ..hooks.replay import replay_xdp

    run_replay(replay_xdp, obj_path, pcap, section, program, out, maps, as_json)
