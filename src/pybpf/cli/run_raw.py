"""`pybpf run-raw`: run raw bytecode in the interpreter and print r0."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .main import app


def _parse_hex(text: str) -> bytes:
    cleaned = "".join(text.split()).removeprefix("0x")
    try:
        return bytes.fromhex(cleaned)
    except ValueError as exc:
        raise typer.BadParameter(f"not hex bytes: {text!r}", param_hint="--mem") from exc


@app.command("run-raw")
def run_raw_command(
    program: Path = typer.Argument(..., help="Raw little-endian eBPF bytecode (8-byte slots)."),
    mem: str = typer.Option(
        None, "--mem", help="Input memory as hex bytes; r1 points to it, r2 is its length."
    ),
    budget: int = typer.Option(10_000_000, "--budget", help="Stop after this many instructions."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Run PROGRAM with r1/r2 pointing at --mem; print r0 in decimal and hex."""
    from ..engine.interpreter import Interpreter
    from ..errors import ProgramFault
    from ..isa.instruction import decode
    from ..runtime.helpers import conformance_helpers

    where = str(program)
    insns = decode(program.read_bytes(), where=where)
    vm = Interpreter(insns, helpers=conformance_helpers(), budget=budget, where=where)
    data = _parse_hex(mem) if mem is not None else None
    args = (0, 0)
    if data is not None:
        args = (vm.memory.allocate_from(data, "mem").start, len(data))
    try:
        r0 = vm.run(*args)
    except ProgramFault as exc:
        # Name the file as decode errors do; main() would print only the fault.
        typer.echo(f"pybpf: error: {where}: {exc}", err=True)
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(json.dumps({"r0": r0, "r0_hex": f"0x{r0:x}", "executed": vm.executed}))
    else:
        typer.echo(f"r0 = {r0} (0x{r0:x})")
