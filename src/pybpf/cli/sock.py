"""`pybpf sock run`: a command and its descendants under socket-address programs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from .main import BadInput, Interrupted, app
from .map import nonzero_map_reports, print_map
from .options import PLATFORM
from .prog import _parse_map_option, set_map_entries

sock_app = typer.Typer(
    name="sock",
    help="Decide the socket calls of real processes with socket-address programs.",
    no_args_is_help=True,
)
app.add_typer(sock_app, name="sock")


@sock_app.command("run")
def run_command(
    obj_path: Path = typer.Argument(..., metavar="OBJ", help="The eBPF object file."),
    command: list[str] = typer.Argument(
        ..., metavar="-- COMMAND [ARG]...", help="The command to run under the programs."
    ),
    programs: list[str] = typer.Option(
        None, "--program", help="Attach this program (repeatable; default: every socket program)."
    ),
    maps: list[str] = typer.Option(
        None, "--map", help="NAME=KEY:VALUE (hex bytes) stored before the command starts."
    ),
    engine: str = typer.Option(None, "--engine", help="jit or interpreter."),
    as_json: bool = typer.Option(False, "--json", help="Print the counters as JSON (stderr)."),
    platform: str = PLATFORM,
) -> int:
    """Run COMMAND with the socket programs of OBJ deciding every bind(), connect(),
    sendto()/sendmsg() with an address of it and all its descendants (seccomp user
    notification): a denied call fails with EPERM, a rewritten address takes effect.
    Exits with COMMAND's status; the decisions and the maps the programs changed go to
    stderr. Ctrl-C ends the command and the supervisor."""
    from ..hooks import sock
    from ..hooks.sock_supervisor import SupervisorError
    from ..object import load

    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise BadInput("no command given after OBJ (pybpf sock run OBJ -- COMMAND …)")
    updates = [_parse_map_option(option) for option in maps or ()]
    with load(obj_path, engine=engine, platform=platform) as obj:
        chosen = sock.programs_of(obj, programs)
        obj.load()
        set_map_entries(obj, updates)
        try:
            link = sock.run(obj, command, programs=[p.name for p in chosen])
        except SupervisorError as error:
            if error.bad_command:
                raise BadInput(str(error)) from None
            raise
        status = 130
        try:
            status = link.wait()
        except Interrupted:
            print("pybpf: interrupted: ending the command", file=sys.stderr)
        finally:
            counters = link.close()
        _report(obj, counters, as_json)
    return status


def _report(obj, counters, as_json: bool) -> None:
    reports = nonzero_map_reports(obj)
    if as_json:
        print(json.dumps({**counters.as_dict(), "maps": reports}), file=sys.stderr)
        return
    print(
        f"pybpf: {counters.calls} socket calls: {counters.allowed} allowed,"
        f" {counters.redirected} redirected, {counters.denied} denied,"
        f" {counters.passed} passed untouched, {counters.errors} errors",
        file=sys.stderr,
    )
    for message in counters.last_errors:
        print(f"pybpf: error: {message}", file=sys.stderr)
    for report in reports:
        print_map(report, err=True)
