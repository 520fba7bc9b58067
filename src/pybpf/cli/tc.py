"""`pybpf tc`: tc (sched_cls) programs on capture files and live interfaces."""

from __future__ import annotations

import typer

from .main import app
from .replay import add_replay_command

tc_app = typer.Typer(
    name="tc", help="Run tc programs on capture files and live interfaces.", no_args_is_help=True
)
app.add_typer(tc_app, name="tc")
add_replay_command(tc_app, "a tc", "replay_tc")
