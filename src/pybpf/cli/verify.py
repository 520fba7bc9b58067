"""`pybpf verify`: prove the programs of an object safe, or say why not.

Exit codes: 0 when every selected program verifies, 1 when one is
rejected, 2 on bad input (a file that cannot be read or parsed, an unknown
section, program or --type, a section that names no program type and no
--type). Bad input is one line on stderr, never a traceback.

With `--kernel` each program is also loaded into the running kernel
(`verify_kernel`) and both verdicts are shown: exit 0 when both accept
every program, 1 when both reject a program and agree on all, 3 when they
disagree on one. Where `bpf()` is unavailable, a one-line note on stderr
says why and the exit code is that of plain `verify`.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import typer

from ..errors import PybpfError
from .main import app
from .options import PLATFORM

EXIT_REJECTED = 1
EXIT_BAD_INPUT = 2


def _bad_input(message: str) -> typer.Exit:
    print(f"pybpf: error: {message}", file=sys.stderr)
    return typer.Exit(EXIT_BAD_INPUT)


@app.command("verify")
def verify_command(
    obj: Path = typer.Argument(..., help="A BPF object file built by clang (-target bpf)."),
    section: str | None = typer.Option(
        None, "--section", "-s", help="Only programs of this ELF section."
    ),
    program: str | None = typer.Option(
        None, "--program", "-p", help="Only the program with this function name."
    ),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Print the invariants before every instruction."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document instead."),
    btf: Path | None = typer.Option(
        None,
        "--btf",
        metavar="FILE",
        help="Target BTF of CO-RE relocations (default: the kernel's, else pybpf's own).",
    ),
    type_name: str | None = typer.Option(
        None,
        "--type",
        metavar="TYPE",
        help="Verify as this program type, bpftool's names (xdp, tc, socket, cgroup/skb, …);"
        " needed when a section does not name one (`2/7`, `from-netdev`).",
    ),
    platform: str | None = PLATFORM,
    kernel: bool = typer.Option(
        False,
        "--kernel",
        help="Also load each program into the running kernel (root, bpf()) and show both"
        " verdicts with the kernel's log; exit 0 both accept, 1 both reject, 3 they disagree."
        " Without bpf(): a note, and plain verify's exit code.",
    ),
) -> None:
    """Verify the programs of OBJ; on rejection, show where, why, and how to fix it."""
    from ..btf.target import apply_core
    from ..elf.loader import load_object_spec
    from ..platform.program_types import ProgramType
    from ..platform.sections import program_type_by_name
    from ..program import program_type_of, untyped_section_message, verifier_prog_type
    from ..verifier.cache import resolve_prog_type
    from ..verifier.options import AnalysisOptions
    from ..verifier.program import verify_program
    from ..verifier.render import ProgramVerdict, render_json, render_text

    forced = None
    if type_name is not None:
        forced = program_type_by_name(type_name)
        if forced is None:
            raise _bad_input(f"--type {type_name!r}: unknown program type (bpftool's type names)")
    try:
        spec = load_object_spec(obj, platform)
    except OSError as error:
        raise _bad_input(f"{obj}: {error.strerror or error}") from None
    except PybpfError as error:
        raise _bad_input(str(error)) from None
    try:
        core = apply_core(spec, btf)  # as `pybpf.load`: the relocated code is verified
    except PybpfError as error:
        raise _bad_input(str(error)) from None
    spec = core.spec
    if spec.platform_note:  # conventions of both platforms: kept Linux, say why
        print(f"pybpf: note: {spec.platform_note}", file=sys.stderr)
    programs = _entry_programs(spec)
    if section is not None:
        programs = [p for p in programs if p.section == section]
        if not programs:
            known = ", ".join(sorted({p.section for p in _entry_programs(spec)})) or "none"
            raise _bad_input(f"{obj}: no program in section {section} (sections: {known})")
    if program is not None:
        programs = [p for p in programs if p.name == program]
        if not programs:
            known = ", ".join(p.name for p in _entry_programs(spec)) or "none"
            raise _bad_input(f"{obj}: no program named {program} (programs: {known})")
    if not programs:
        raise _bad_input(f"{obj}: no programs")

    failed = [p.name for p in programs if p.name in core.errors]
    if failed:
        raise _bad_input(str(core.errors[failed[0]]))
    kernel_note = None
    if kernel:
        from .verify_kernel import unavailable

        kernel_note = unavailable()
        if kernel_note is not None:
            print(f"pybpf: note: kernel comparison unavailable: {kernel_note}", file=sys.stderr)
    compare = kernel and kernel_note is None
    verdicts = []
    for program_spec in programs:
        # The type `pybpf.load` verifies (and runs) the program as: never from the path.
        linux_type = forced or program_type_of(program_spec.section, spec.platform)
        if linux_type == ProgramType.UNSPEC:
            message = untyped_section_message(program_spec.section, spec.platform)
            raise _bad_input(f"{obj}: program {program_spec.name}: {message}")
        section = program_spec.section
        prog_type = resolve_prog_type(program_spec, spec, verifier_prog_type(section, linux_type))
        start = time.perf_counter()
        # The options `pybpf.load` verifies with, so both give the same
        # verdict; the report keeps the state at a failure, and every
        # node's invariant only when -v asks for them.
        options = AnalysisOptions.for_load()
        options.collect_invariants = verbose
        report = verify_program(program_spec, spec, prog_type=prog_type, options=options)
        seconds = time.perf_counter() - start
        verdict = ProgramVerdict(program_spec, prog_type, report, seconds)
        if verbose:
            verdict.invariants = report.invariants
        verdicts.append(verdict)

    sides = []
    if compare:
        from .verify_kernel import kernel_side

        sides = [kernel_side(obj, v.program.name, forced_type=type_name, btf=btf) for v in verdicts]

    if as_json:
        document = render_json(verdicts, path=str(obj), verbose=verbose)
        if kernel:
            _add_kernel_json(document, verdicts, sides, kernel_note)
        typer.echo(json.dumps(document, indent=2))
    else:
        for index, verdict in enumerate(verdicts):
            for line in render_text(verdict, verbose=verbose):
                typer.echo(line)
            if compare:
                from .verify_kernel import render_kernel_text

                for line in render_kernel_text(verdict.ok, sides[index], verbose=verbose):
                    typer.echo(line)
        rejected = sum(not v.ok for v in verdicts)
        typer.echo(f"{len(verdicts) - rejected} of {len(verdicts)} program(s) verified")
        if compare:
            accepted = sum(side.accepted for side in sides)
            differ = sum(v.ok != side.accepted for v, side in zip(verdicts, sides, strict=True))
            typer.echo(
                f"{accepted} of {len(sides)} program(s) accepted by the kernel;"
                f" pybpf and the kernel disagree on {differ}"
            )
    if compare:
        from .verify_kernel import EXIT_DISAGREE

        if any(v.ok != side.accepted for v, side in zip(verdicts, sides, strict=True)):
            raise typer.Exit(EXIT_DISAGREE)
    if any(not v.ok for v in verdicts):
        raise typer.Exit(EXIT_REJECTED)


def _add_kernel_json(document: dict, verdicts: list, sides: list, note: str | None) -> None:
    """Put the kernel's side into `render_json`'s document (`--kernel --json`)."""
    from .verify_kernel import kernel_json

    document["kernel"] = {"available": note is None, "reason": note}
    if note is not None:
        return
    for entry, verdict, side in zip(document["programs"], verdicts, sides, strict=True):
        entry["kernel"] = kernel_json(verdict.ok, side)
    document["agree"] = all(v.ok == side.accepted for v, side in zip(verdicts, sides, strict=True))


def _entry_programs(spec) -> list:
    """The programs a loader would load: not the `.text` functions other programs call."""
    called = {fn for p in spec.programs.values() for fn, start in p.functions if start > 0}
    return [p for name, p in spec.programs.items() if not (p.section == ".text" and name in called)]
