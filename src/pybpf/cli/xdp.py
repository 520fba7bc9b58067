"""`pybpf xdp`: XDP programs on capture files and live interfaces."""

from __future__ import annotations

import typer

from .main import app
from .replay import add_replay_command

xdp_app = typer.Typer(
    name="xdp", help="Run XDP programs on capture files and live interfaces.", no_args_is_help=True
)
app.add_typer(xdp_app, name="xdp")
add_replay_command(xdp_app, "an XDP", "replay_xdp")
