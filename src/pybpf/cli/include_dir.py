"""`pybpf include-dir`: where the headers for building programs of a platform are."""

from __future__ import annotations

from pathlib import Path

import typer

from .main import BadInput, app

INCLUDE = Path(__file__).resolve().parent.parent / "platform" / "include"


@app.command("include-dir")
def include_dir_command(
    platform: str = typer.Option(
        "linux", "--platform", metavar="NAME", help="linux or windows (eBPF for Windows)."
    ),
) -> None:
    """Print the directory of headers for programs of a platform, for `clang -I`.

    windows: eBPF for Windows' helpers (by its ids), map types and definitions,
    contexts and return values (bpf_helpers.h, ebpf_nethooks.h), written for pybpf
    from its documented interface. linux: libbpf-dev's headers are the ones to
    use; the directory only has pybpf_linux.h, which includes them.
    """
    from ..platform.platforms import platform_named

    try:
        name = platform_named(platform).name
    except Exception as error:
        raise BadInput(str(error)) from None
    typer.echo(str(INCLUDE / name))
