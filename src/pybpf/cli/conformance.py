"""`pybpf conformance`: run a directory of bpf_conformance `.data` files."""

from __future__ import annotations

import errno
import json
import os
from dataclasses import asdict
from pathlib import Path

import typer

from .main import BadInput, app


def _hex(value: int | None) -> str:
    return "-" if value is None else f"0x{value:x}"


@app.command("conformance")
def conformance_command(
    directory: Path = typer.Argument(..., help="Directory holding the .data files."),
    engine: str = typer.Option("interpreter", "--engine", help="Engine to run the programs on."),
    verbose: bool = typer.Option(
        False, "-v", "--verbose", help="List each failure with expected and actual r0."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print every result as JSON."),
) -> None:
    """Run every .data file in DIRECTORY; end with 'N passed, M failed'."""
    from ..engine.conformance import ENGINES, run_directory

    if engine not in ENGINES:
        raise typer.BadParameter(
            f"unknown engine {engine!r} (have: {', '.join(sorted(ENGINES))})", param_hint="--engine"
        )
    if not directory.exists():
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(directory))
    if not directory.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(directory))
    results = run_directory(directory, engine)
    if not results:  # nothing ran: never "0 passed, 0 failed" and success
        raise BadInput(f"{directory}: no .data files")
    ran = [r for r in results if r.skipped is None]
    passed = sum(r.passed for r in ran)
    failed = len(ran) - passed
    skipped = len(results) - len(ran)
    if as_json:
        summary = {"engine": engine, "passed": passed, "failed": failed, "skipped": skipped}
        typer.echo(json.dumps({**summary, "results": [asdict(r) for r in results]}, indent=2))
    else:
        if verbose:
            for r in ran:
                if not r.passed:
                    got = f"error: {r.error}" if r.error else f"got {_hex(r.actual)}"
                    typer.echo(f"FAIL {r.name}: expected {_hex(r.expected)}, {got}")
        tail = f", {skipped} skipped" if skipped else ""
        typer.echo(f"{passed} passed, {failed} failed{tail}")
    if failed:
        raise typer.Exit(1)
