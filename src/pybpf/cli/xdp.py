"""`pybpf xdp`: XDP programs on capture files."""

from __future__ import annotations

import typer

from .main import app
from .replay import add_replay_command

xdp_app = typer.Typer(
    name="xdp", help="Run XDP programs on packets from capture files.", no_args_is_help=True
)
app.add_typer(xdp_app, name="xdp")
add_replay_command(xdp_app, "an XDP", "replay_xdp")
