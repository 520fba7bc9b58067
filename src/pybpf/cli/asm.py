"""`pybpf asm`: assemble a text file into raw bytecode."""

from __future__ import annotations

from pathlib import Path

import typer

from .main import app


@app.command("asm")
def asm_command(
    source: Path = typer.Argument(..., help="Assembly file (conformance or llvm-objdump syntax)."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the bytecode."),
) -> None:
    """Assemble FILE into raw little-endian eBPF bytecode."""
    from ..isa.assembler import assemble
    from ..isa.instruction import encode

    text = source.read_text()
    insns = assemble(text, where=str(source))
    data = encode(insns)
    # Write to a temporary file then rename, so a failure never leaves half a file.
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(output)
    typer.echo(f"{len(insns)} instructions, {len(data)} bytes written to {output}")
