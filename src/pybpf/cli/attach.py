"""`pybpf xdp attach` and `pybpf tc attach`: a program in front of a live interface.

The command loads the program, attaches it (`Program.attach_xdp` /
`attach_tc`, see `hooks.live`), says so on stderr and runs until Ctrl-C or
`--duration`; it then detaches and prints the counters: frames and bytes
per verdict, faults, frames returned from the paired side, and the map
entries the program left non-zero. Stopping with Ctrl-C is the normal
way out (exit 0).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import typer

from ..errors import PybpfError
from .main import BadInput, Interrupted
from .map import nonzero_map_reports, print_map
from .options import PLATFORM
from .prog import _parse_map_option, _pick_program, prepare_run
from .tc import tc_app
from .xdp import xdp_app

_OBJ = typer.Argument(..., metavar="OBJ", help="The eBPF object file.")
_IFACE = typer.Argument(..., metavar="IFACE", help="The interface whose frames the program sees.")
_SECTION = typer.Option(None, "--section", help="The program's ELF section.")
_PROGRAM = typer.Option(None, "--program", help="The program's name.")
_PASS_TO = typer.Option(
    None, "--pass-to", metavar="IFACE2", help="Hand passed frames to IFACE2 (a bump in the wire)."
)
_PASS_TO_TAP = typer.Option(
    None,
    "--pass-to-tap",
    metavar="NAME",
    help="Hand passed frames to TAP device NAME (created), i.e. to this host's stack.",
)
_NETNS = typer.Option(
    None, "--netns", metavar="NS", help="The interfaces' network namespace (name or path)."
)
_MAPS = typer.Option(
    None, "--map", metavar="NAME=KEY:VALUE", help="Set a map entry first (hex bytes)."
)
_DURATION = typer.Option(
    None, "--duration", metavar="SECONDS", min=0.0, help="Detach after SECONDS (default: Ctrl-C)."
)
_JSON = typer.Option(False, "--json", help="Print the counters as JSON.")
_PLATFORM = PLATFORM
_WORKERS = typer.Option(
    1, "--workers", min=1, metavar="N", help="Threads running the program (by flow hash)."
)


def add_attach_commands(xdp_app: typer.Typer, tc_app: typer.Typer) -> None:
    """Register `attach` on the xdp and tc groups."""

    @xdp_app.command("attach")
    def xdp_attach(
        iface: str = _IFACE,
        obj_path: Path = _OBJ,
        section: str = _SECTION,
        program: str = _PROGRAM,
        pass_to: str = _PASS_TO,
        pass_to_tap: str = _PASS_TO_TAP,
        netns: str = _NETNS,
        maps: list[str] = _MAPS,
        duration: float = _DURATION,
        workers: int = _WORKERS,
        as_json: bool = _JSON,
        platform: str = _PLATFORM,
    ) -> None:
        """Run an XDP program of OBJ on every frame arriving on IFACE until Ctrl-C.

        drop discards, tx sends back out of IFACE, redirect sends out of the
        target, pass hands the frame to --pass-to / --pass-to-tap; frames from
        that side go back out of IFACE. Without either, the program only
        observes (the kernel has the frames already).
        """
        attach = {"pass_to": pass_to, "pass_to_tap": pass_to_tap, "workers": workers}
        _run(
            obj_path, section, program, maps, iface, "xdp", attach, netns, duration, as_json,
            platform,
        )  # fmt: skip

    @tc_app.command("attach")
    def tc_attach(
        iface: str = _IFACE,
        obj_path: Path = _OBJ,
        ingress: bool = typer.Option(False, "--ingress", help="Frames arriving on IFACE."),
        egress: bool = typer.Option(
            False, "--egress", help="Frames leaving through IFACE (needs a pair)."
        ),
        section: str = _SECTION,
        program: str = _PROGRAM,
        pass_to: str = _PASS_TO,
        pass_to_tap: str = _PASS_TO_TAP,
        netns: str = _NETNS,
        maps: list[str] = _MAPS,
        duration: float = _DURATION,
        workers: int = _WORKERS,
        as_json: bool = _JSON,
        platform: str = _PLATFORM,
    ) -> None:
        """Run a tc program of OBJ on IFACE's ingress or egress frames until Ctrl-C.

        shot, stolen, queued and trap discard; redirect sends out of the
        target; any other verdict lets the frame through.
        """
        if ingress == egress:
            raise BadInput("give one of --ingress and --egress")
        attach = {
            "direction": "ingress" if ingress else "egress",
            "pass_to": pass_to,
            "pass_to_tap": pass_to_tap,
            "workers": workers,
        }
        _run(
            obj_path, section, program, maps, iface, "tc", attach, netns, duration, as_json,
            platform,
        )  # fmt: skip


def _netns_path(netns: str | None) -> str | None:
    if netns is None or "/" in netns:
        return netns
    return f"/run/netns/{netns}"


def _run(
    obj_path, section, program, maps, iface, hook, attach, netns, duration, as_json, platform
) -> None:
    from ..object import load

    if attach["pass_to"] is not None and attach["pass_to_tap"] is not None:
        raise BadInput("give --pass-to or --pass-to-tap, not both")
    updates = [_parse_map_option(option) for option in maps or ()]
    with load(obj_path, engine="jit", platform=platform) as obj:
        prog = _pick_program(obj, section, program)
        prepare_run(obj, prog, updates)
        method = prog.attach_xdp if hook == "xdp" else prog.attach_tc
        link = method(iface, netns=_netns_path(netns), **attach)
        onward = attach["pass_to"] or attach["pass_to_tap"]
        where = f", passing to {onward}" if onward else " (observing only)"
        print(f"{prog.name} attached to {iface}{where}; Ctrl-C detaches", file=sys.stderr)
        try:
            _wait(link, duration)
        except Interrupted:
            pass  # Ctrl-C is the way to detach: the counters below, exit 0
        try:
            counters = link.close()
        except PybpfError:  # the hook stopped (an interface went away): what it saw, then why
            _report(obj, link.final, as_json)
            raise
        _report(obj, counters, as_json)


def _wait(link: Any, duration: float | None) -> None:
    deadline = None if duration is None else time.monotonic() + duration
    while link.running:
        if deadline is not None and time.monotonic() >= deadline:
            return
        time.sleep(0.1)


def _report(obj: Any, counters: Any, as_json: bool) -> None:
    reports = nonzero_map_reports(obj)
    if as_json:
        typer.echo(json.dumps({**counters.as_dict(), "maps": reports}))
        return
    typer.echo(
        f"{counters.program} on {counters.hook}: {counters.frames} frames, {counters.bytes} bytes"
        f" in {counters.seconds:.1f} s"
    )
    typer.echo(f"{'verdict':<12}{'frames':>10}{'bytes':>12}")
    for action, count in counters.actions.items():
        if count.frames:
            typer.echo(f"{action:<12}{count.frames:>10}{count.bytes:>12}")
    first = next(iter(counters.actions), "the first")
    notes = [
        (counters.returned, "frames from the paired side sent out unchanged"),
        (counters.invalid_actions, f"frames got an unknown verdict (counted as {first})"),
        (counters.skipped, "frames too long for an sk_buff of one page: dropped"),
        (counters.send_errors, "frames the kernel refused to send"),
        (counters.redirect_errors, "redirects to an interface that does not exist: dropped"),
        (counters.ring_drops, "frames the kernel dropped: the receive ring was full"),
    ]
    for number, what in notes:
        if number:
            typer.echo(f"{number} {what}")
    if counters.faults:
        typer.echo(f"{counters.faults} runs faulted (dropped as {first}): {counters.first_fault}")
    for report in reports:
        print_map(report)


add_attach_commands(xdp_app, tc_app)
