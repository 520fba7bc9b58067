"""What `pybpf xdp replay` and `pybpf tc replay` share: loading, options, the summary."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from .main import BadInput, Interrupted
from .map import nonzero_map_reports, print_map
from .options import PLATFORM
from .prog import _parse_map_option, _pick_program, prepare_run


def add_replay_command(group: typer.Typer, kind: str, replay_name: str) -> None:
    """Register `replay` on `group` (`kind`: "an XDP", "a tc"), running `hooks.replay.<replay_name>`."""

    @group.command("replay")
    def replay_command(
        obj_path: Path = typer.Argument(..., metavar="OBJ", help="The eBPF object file."),
        pcap: Path = typer.Option(
            ..., "--pcap", metavar="IN", help="The capture (pcap or pcapng)."
        ),
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
        platform: str = PLATFORM,
    ) -> None:
        from ..hooks import replay

        run_replay(
            getattr(replay, replay_name),
            obj_path,
            pcap,
            section,
            program,
            out,
            maps,
            as_json,
            platform,
        )

    replay_command.__doc__ = f"""Run every frame of IN through {kind} program of OBJ in the JIT;
    print the frames and bytes per verdict and the map entries the program left non-zero.

    Ctrl-C stops the replay: what ran is counted, written and printed (exit 130).
    """


def run_replay(
    replay: Callable[..., Any],
    obj_path: Path,
    pcap: Path,
    section: str | None,
    program: str | None,
    out: Path | None,
    maps: list[str] | None,
    as_json: bool,
    platform: str | None = None,
) -> None:
    """Load OBJ, pick the program, set --map entries, replay, print the summary.

    Ctrl-C and a damaged capture still print what ran (then exit 130 / 2)."""
    from ..hooks.captures import CaptureError
    from ..hooks.replay import ReplayResult
    from ..object import load

    if not pcap.is_file():
        raise BadInput(f"--pcap {pcap}: no such file")
    updates = [_parse_map_option(option) for option in maps or ()]
    with load(obj_path, engine="jit", platform=platform) as obj:
        prog = _pick_program(obj, section, program)
        prepare_run(obj, prog, updates)
        result = ReplayResult()
        try:
            with _progress(pcap, enabled=not as_json) as progress:
                replay(prog, pcap, out, progress=progress, result=result)
        except (Interrupted, CaptureError) as stopped:
            # What ran before Ctrl-C or the damage is counted and written: show it
            # (nothing to show for a file that is no capture at all).
            result.interrupted = isinstance(stopped, Interrupted)
            if result.frames or result.interrupted:
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
    reports = nonzero_map_reports(obj)
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
    typer.echo(f"{'verdict':<12}{'frames':>10}{'bytes':>12}  file")
    for action, count in result.actions.items():
        if count.frames:
            where = result.outputs.get(action, "")
            typer.echo(f"{action:<12}{count.frames:>10}{count.bytes:>12}  {where}".rstrip())
    if result.invalid_actions:
        first = next(iter(result.actions), "the first")
        typer.echo(f"{result.invalid_actions} frames got an unknown verdict (counted as {first})")
    if result.skipped:
        typer.echo(f"{result.skipped} frames too long for an sk_buff of one page: not run")
    if result.faults:
        first = next(iter(result.actions), "the first")
        typer.echo(f"{result.faults} runs faulted (counted as {first}): {result.first_fault}")
    for report in reports:
        print_map(report)
