"""`pybpf feature [probe] [--platform linux|windows] [--json]`: what this pybpf supports.

As `bpftool feature probe`: the program types it loads and test-runs, the
map types it has, the helpers it implements and, for Linux, which of them
each program type may call (see `pybpf.features`).
"""

from __future__ import annotations

import json

import typer

from .main import BadInput, app


@app.command("feature")
def feature_command(
    what: str = typer.Argument("probe", help="`probe` (the only one, as bpftool's default)."),
    platform: str = typer.Option("linux", "--platform", help="linux or windows."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Program types, map types and helpers this pybpf supports, per platform."""
    from .. import features

    if what != "probe":
        raise BadInput(f"feature {what!r}: only `probe` is known")
    if platform not in features.PLATFORMS:
        raise BadInput(f"--platform {platform!r}: expected linux or windows")
    document = features.report(platform)
    if as_json:
        typer.echo(json.dumps(document))
        return
    typer.echo(f"Scanning program types ({platform})...")
    for t in document["program_types"]:
        state = "is" if t["load"] else "is NOT"
        run = ", test runs" if t["test_run"] else ""
        typer.echo(f"program_type {t['name']} {state} available{run}")
    typer.echo("\nScanning map types...")
    for m in document["map_types"]:
        typer.echo(f"map_type {m['name']} {'is' if m['supported'] else 'is NOT'} available")
    typer.echo(f"\nHelpers implemented ({len(document['helpers'])}):")
    names = [h["name"] for h in document["helpers"]]
    typer.echo("\t" + "\n\t".join(names))
    by_type = document.get("helpers_by_program_type", {})
    ids = {h["id"]: h["name"] for h in document["helpers"]}
    for name, allowed in by_type.items():
        typer.echo(f"\nEligible helpers for program type {name}:")
        typer.echo("\t" + "\n\t".join(ids[i] for i in allowed))
