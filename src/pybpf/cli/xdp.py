"""`pybpf xdp replay`: a capture file through an XDP program, one capture per verdict."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from .main import BadInput, Interrupted, app
from .map import map_entries, map_report, print_map
from .prog import _parse_map_option, _pick_program

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
        help="Write each action's frames, as the program left them, to DIR/<action>.pcap.",
    ),
    maps: list[str] = typer.Option(
        None, "--map", metavar="NAME=KEY:VALUE", help="Set a map entry first (hex bytes)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Run every frame of IN through an XDP program of OBJ in the JIT; print the frames
    and bytes per action and the map entries the program left non-zero.

    Ctrl-C stops the replay: what ran is counted, written and printed (exit 130).
    """
    from ..hooks.captures import CaptureError
    from ..hooks.xdp_replay import ReplayResult, replay_xdp
    from ..object import load

    if not pcap.is_file():
        raise BadInput(f"--pcap {pcap}: no such file")
    updates = [_parse_map_option(option) for option in maps or ()]
    with load(obj_path, engine="jit") as obj:
        prog = _pick_program(obj, section, program)
        for other in obj.programs.values():
            other.autoload = other is prog
        for name, key, value in updates:
            if name not in obj.maps:
                known = ", ".join(obj.maps) or "none"
                raise BadInput(f"--map {name}: {obj.path} has no such map (maps: {known})")
            obj.maps[name].update(key, value)
        result = ReplayResult()
        try:
            with _progress(pcap, enabled=not as_json) as progress:
                replay_xdp(prog, pcap, out, progress=progress, result=result)
        except (Interrupted, CaptureError) as stopped:
            # What ran before Ctrl-C or the damage is counted and written: show it.
            result.interrupted = isinstance(stopped, Interrupted)
            _report(prog, obj, result, as_json)
            raise
        _report(prog, obj, result, as_json)


class _progress:
    """A progress bar on stderr for long captures (a terminal only)."""

    def __init__(self, path: Path, *, enabled: bool) -> None:
        size = path.stat().st_size
        self._bar: Any = None
        if enabled and sys.stderr.isatty() and size > 64 << 20:
            import click

            self._bar = click.progressbar(length=size, label=path.name, file=sys.stderr)
        self._done = 0

    def __enter__(self) -> Any:
        if self._bar is None:
            return None
        self._bar.__enter__()

        def update(done: int, _total: int) -> None:
            self._bar.update(done - self._done)
            self._done = done

        return update

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


def _report(prog: Any, obj: Any, result: Any, as_json: bool) -> None:
    live = obj.maps.live()
    reports = [
        map_report(m, entries) for m in live.values() if (entries := map_entries(m, skip_zero=True))
    ]
    if as_json:
        record = {"program": prog.name, **result.as_dict(), "maps": reports}
        typer.echo(json.dumps(record))
        return
    rate = result.frames / result.seconds if result.seconds else 0.0
    state = " (interrupted)" if result.interrupted else ""
    typer.echo(
        f"{prog.name}: {result.frames} frames, {result.bytes} bytes in {result.seconds:.3f} s"
        f" ({rate:,.0f} frames/s){state}"
    )
    typer.echo(f"{'action':<10}{'frames':>10}{'bytes':>12}  file")
    for action, count in result.actions.items():
        if count.frames:
            where = result.outputs.get(action, "")
            typer.echo(f"{action:<10}{count.frames:>10}{count.bytes:>12}  {where}".rstrip())
    if result.invalid_actions:
        typer.echo(f"{result.invalid_actions} frames got an unknown action (counted as aborted)")
    if result.faults:
        typer.echo(f"{result.faults} runs faulted (counted as aborted): {result.first_fault}")
    for report in reports:
        print_map(report)
