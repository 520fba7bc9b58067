"""`pybpf gen skeleton OBJ`: a typed Python module for an object, as `bpftool gen skeleton`.

The text comes from `pybpf.gen.skeleton.render_skeleton`; this module only
writes it: to stdout (as bpftool does) or to `-o FILE`.
"""

from __future__ import annotations

import keyword
from pathlib import Path

import typer

from .main import BadInput, app

gen_app = typer.Typer(name="gen", help="Generate code from an object file.", no_args_is_help=True)
app.add_typer(gen_app, name="gen")


@gen_app.command("skeleton")
def skeleton_command(
    obj: Path = typer.Argument(..., help="The eBPF object file (clang -target bpf)."),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Write the module to FILE instead of stdout."
    ),
    name: str | None = typer.Option(
        None,
        "--name",
        help="Name of the skeleton (classes <Name>Skeleton …); default: the object's file name.",
    ),
) -> None:
    """Write a typed Python module for OBJ: classes for its BTF types, maps, programs, globals."""
    from ..elf.specs import ObjectSpec
    from ..gen.skeleton import render_skeleton

    if name is not None and (not name.isidentifier() or keyword.iskeyword(name)):
        raise BadInput(f"--name {name!r} is not a Python identifier")
    text = render_skeleton(ObjectSpec.from_file(obj), name=name)
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text)
