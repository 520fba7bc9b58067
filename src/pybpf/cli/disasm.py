"""`pybpf disasm`: list the maps, programs, relocations and code of an object."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ..errors import LoadError
from .main import app
from .options import PLATFORM


@app.command("disasm")
def disasm_command(
    obj: Path = typer.Argument(..., help="A BPF object file built by clang (-target bpf)."),
    section: str | None = typer.Option(
        None, "--section", "-s", help="Only programs of this ELF section."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document instead."),
    btf: Path | None = typer.Option(
        None,
        "--btf",
        metavar="FILE",
        help="Target BTF of CO-RE relocations (default: the kernel's, else pybpf's own).",
    ),
    platform: str | None = PLATFORM,
) -> None:
    """Disassemble OBJ: maps, programs, relocations and instructions with source lines.

    Programs with CO-RE relocations are shown relocated, as they load, each
    relocation with what it resolved to against the target BTF.
    """
    from ..btf.target import apply_core
    from ..elf.loader import load_object_spec

    core = apply_core(load_object_spec(obj, platform), btf)
    spec = core.spec
    programs = [p for p in spec.programs.values() if section is None or p.section == section]
    if section is not None and not programs:
        known = ", ".join(sorted({p.section for p in spec.programs.values()})) or "none"
        raise LoadError(f"{obj}: no program in section {section} (sections: {known})")
    if as_json:
        typer.echo(json.dumps(_object_json(spec, programs, core), indent=2))
        return
    for line in _object_text(spec, programs, core):
        typer.echo(line)


def _core_results(core, p) -> dict:
    """The CO-RE results of program `p` by pc ({} when none were applied)."""
    return {r.pc: r for r in core.results.get(p.name, ())}


def _core_error(core, p) -> str | None:
    error = core.errors.get(p.name)
    return str(error) if error is not None else None


# --- plain text ---------------------------------------------------------------


def _object_text(spec, programs, core) -> list[str]:
    btf = f"{len(spec.btf)} BTF types" if spec.btf is not None else "no BTF"
    license = repr(spec.license) if spec.license else "(none)"
    lines = [f"{spec.path}: license {license}, {btf}"]
    if spec.kern_version:
        lines[0] += f", kern_version {spec.kern_version:#x}"
    lines += ["", f"maps ({len(spec.maps)}):"]
    for index, m in enumerate(spec.maps.values()):
        lines.append(f"  [{index}] {_map_line(m)}")
    lines += ["", f"programs ({len(programs)}):"]
    for p in programs:
        lines.append(f"  {p.section:<32} {p.name:<32} {sum(i.slots for i in p.instructions)} insns")
    for p in programs:
        lines += [""] + _program_text(spec, p, core)
    return lines


def _map_line(m) -> str:
    text = (
        f"{m.name}: {m.type_name} key {m.key_size} value {m.value_size} "
        f"max_entries {m.max_entries} flags {m.flags:#x}"
    )
    if m.inner_map is not None:
        text += f" inner ({_map_line(m.inner_map)})"
    if m.pinning:
        text += f" pinning {m.pinning}"
    if m.initial_data is not None:
        text += f" data {len(m.initial_data)} bytes"
    if m.frozen:
        text += " frozen"
    if m.contents:
        text += " values " + ", ".join(f"[{i}]={name}" for i, name in m.contents)
    return text


def _program_text(spec, p, core) -> list[str]:
    from ..isa.disasm import format_program, source_annotator

    lines = [f"Disassembly of program {p.name} (section {p.section}):"]
    if p.relocations:
        lines.append(f"  relocations ({len(p.relocations)}):")
        lines += [f"    pc {r.pc}: {r.describe()}" for r in p.relocations]
    results = _core_results(core, p)
    if p.core_relocations:
        lines.append(f"  CO-RE relocations ({len(p.core_relocations)}):")
        lines += [f"    pc {c.pc}: {_core_text(spec, c, results)}" for c in p.core_relocations]
        error = _core_error(core, p)
        if error is not None:
            lines.append(f"    failed: {error}")
    notes: dict[int, list[str]] = {}
    for r in p.relocations:
        notes.setdefault(r.pc, []).append(f"\t\t; {r.describe()}")
    for c in p.core_relocations:
        notes.setdefault(c.pc, []).append(f"\t\t; CO-RE {_core_text(spec, c, results)}")
    labels = {pc: name for name, pc in p.functions}
    lines += format_program(
        p.instructions,
        labels=labels,
        annotate=source_annotator(p.line_infos),
        annotate_after=lambda pc: notes.get(pc, ()),
    )
    return lines


def _core_text(spec, c, results: dict) -> str:
    result = results.get(c.pc)
    if result is not None:  # `byte_off struct iphdr.protocol -> 9 (access 0:9)`
        return f"{result.describe()} (access {c.access})"
    type_name = spec.btf.type_name(c.type_id) if spec.btf is not None else f"type {c.type_id}"
    return f"{c.kind_name} {type_name} access {c.access}"


# --- JSON -----------------------------------------------------------------------


def _object_json(spec, programs, core) -> dict:
    return {
        "path": spec.path,
        "license": spec.license,
        "kern_version": spec.kern_version,
        "btf_types": len(spec.btf) if spec.btf is not None else None,
        "maps": [_map_json(m) for m in spec.maps.values()],
        "programs": [_program_json(spec, p, core) for p in programs],
    }


def _map_json(m) -> dict:
    return {
        "name": m.name,
        "type": m.type_name,
        "type_id": m.type,
        "key_size": m.key_size,
        "value_size": m.value_size,
        "max_entries": m.max_entries,
        "flags": m.flags,
        "pinning": m.pinning,
        "section": m.section,
        "inner_map": _map_json(m.inner_map) if m.inner_map is not None else None,
        "frozen": m.frozen,
        "initial_data": m.initial_data.hex() if m.initial_data is not None else None,
        "values": [{"index": i, "symbol": name} for i, name in m.contents],
    }


def _program_json(spec, p, core) -> dict:
    from ..isa.disasm import format_instruction
    from ..isa.instruction import with_pcs

    sources = {info.pc: info for info in p.line_infos}
    results = _core_results(core, p)
    insns = []
    for pc, insn in with_pcs(p.instructions):
        entry = {"pc": pc, "text": format_instruction(insn, pc), "hex": insn.encode().hex()}
        info = sources.get(pc)
        if info is not None:
            entry["source"] = {"file": info.file_name, "line": info.line_number, "text": info.line}
        insns.append(entry)
    return {
        "name": p.name,
        "section": p.section,
        "license": p.license,
        "functions": [{"name": name, "pc": pc} for name, pc in p.functions],
        "relocations": [
            {
                "pc": r.pc,
                "kind": r.kind.value,
                "symbol": r.symbol,
                "map": r.map,
                "offset": r.offset,
                "target_pc": r.target_pc,
            }
            for r in p.relocations
        ],
        "core_relocations": [
            {
                "pc": c.pc,
                "kind": c.kind_name,
                "access": c.access,
                "type_id": c.type_id,
                "type": spec.btf.type_name(c.type_id) if spec.btf is not None else None,
                "resolved": results[c.pc].to_json() if c.pc in results else None,
            }
            for c in p.core_relocations
        ],
        "core_error": _core_error(core, p),
        "instructions": insns,
    }
