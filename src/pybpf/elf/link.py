"""Build `ProgramSpec`s: a program's function plus every function it calls.

This is libbpf's `bpf_object__relocate_calls`: starting from the entry
function, each call (or function address) whose callee is not yet part of
the program appends the callee's instructions at the end, once, and the
call's `imm` becomes the distance to the callee's new position. Callees may
call further functions; those are appended in turn. func_info, line_info
and CO-RE relocations travel with the instructions they describe.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..errors import LoadError
from ..isa.instruction import Instruction, with_pcs
from ..isa.opcodes import CALL, LDDW, CallSrc
from .code import CodeSection, Function, SectionReloc, instructions_between
from .specs import ProgramSpec, Relocation, RelocationKind

_LOW32 = 0xFFFFFFFF


@dataclass
class _Builder:
    """The program being assembled: instructions and the records that follow them."""

    sections: dict[int, CodeSection]
    path: str
    insns: list[Instruction] = field(default_factory=list)
    pc: int = 0  # slots so far
    placed: dict[tuple[int, int], int] = field(default_factory=dict)  # (section, start) → pc
    functions: list[tuple[str, int]] = field(default_factory=list)
    queue: list[tuple[Function, int, int]] = field(default_factory=list)  # (function, pc, index)
    relocations: list[Relocation] = field(default_factory=list)
    func_infos: list = field(default_factory=list)
    line_infos: list = field(default_factory=list)
    core_relos: list = field(default_factory=list)

    def place(self, function: Function) -> int:
        """Append `function` unless already there; return its pc in the program."""
        key = (function.section, function.start)
        if key in self.placed:
            return self.placed[key]
        base = self.pc
        self.placed[key] = base
        self.functions.append((function.name, base))
        self.queue.append((function, base, len(self.insns)))
        code = self.sections[function.section]
        body = instructions_between(code, function.start, function.end)
        self.insns.extend(body)
        self.pc += sum(i.slots for i in body)
        self._copy_ext_info(code, function, base)
        return base

    def _copy_ext_info(self, code: CodeSection, function: Function, base: int) -> None:
        delta = base - function.start
        for records, out in (
            (code.func_infos, self.func_infos),
            (code.line_infos, self.line_infos),
            (code.core_relos, self.core_relos),
        ):
            out.extend(
                replace(r, pc=r.pc + delta)
                for r in records
                if function.start <= r.pc < function.end
            )


def build_program(
    entry: Function, sections: dict[int, CodeSection], path: str, license: str
) -> ProgramSpec:
    """The program whose entry point is `entry`, with its callees appended."""
    builder = _Builder(sections, path)
    builder.place(entry)
    # The queue grows while we walk it: each appended function is scanned too.
    done = 0
    while done < len(builder.queue):
        _relocate_function(builder, *builder.queue[done])
        done += 1
    section = sections[entry.section].name
    # libbpf's SEC("?xdp"): an xdp program that starts with autoload off; the
    # `?` is not part of the section name from then on.
    autoload = not section.startswith("?")
    return ProgramSpec(
        name=entry.name,
        section=section.removeprefix("?"),
        autoload=autoload,
        instructions=tuple(builder.insns),
        functions=tuple(builder.functions),
        relocations=tuple(sorted(builder.relocations, key=lambda r: r.pc)),
        core_relocations=tuple(builder.core_relos),
        func_infos=tuple(builder.func_infos),
        line_infos=tuple(sorted(builder.line_infos, key=lambda r: r.pc)),
        license=license,
    )


def _relocate_function(builder: _Builder, function: Function, base: int, first: int) -> None:
    """Resolve the calls of one placed function (`base` pc, `first` index)."""
    code = builder.sections[function.section]
    body = instructions_between(code, function.start, function.end)
    for n, (local_pc, insn) in enumerate(with_pcs(body)):
        section_pc = function.start + local_pc
        pc = base + local_pc
        reloc = code.relocs.get(section_pc)
        if reloc is not None and reloc.target is None:
            builder.relocations.append(_record(reloc, pc))
            continue
        target = _call_target(code, function, section_pc, insn, reloc)
        if target is None:
            continue
        target_pc, symbol = _place_target(builder, target, function, section_pc)
        kind = reloc.kind if reloc else RelocationKind.CALL
        builder.insns[first + n] = _retarget(insn, target_pc - pc - 1)
        builder.relocations.append(Relocation(pc, kind, symbol, target_pc=target_pc))


def _call_target(
    code: CodeSection,
    function: Function,
    section_pc: int,
    insn: Instruction,
    reloc: SectionReloc | None,
) -> tuple[int, int] | None:
    """`(section, pc)` called or referenced by `insn`, or None if it calls nothing local."""
    if reloc is not None:
        return reloc.target
    if insn.opcode == CALL and insn.src == CallSrc.LOCAL:
        # A call to a static function of the same section carries no relocation.
        return (function.section, section_pc + insn.imm + 1)
    return None


def _place_target(
    builder: _Builder, target: tuple[int, int], caller: Function, at: int
) -> tuple[int, str]:
    """Place the callee of `target`; return its pc in the program and its name.

    The name is the callee function's (`name+N` for a call N slots into it),
    which says more than the section symbol static calls are relocated against.
    """
    section_index, target_pc = target
    code = builder.sections.get(section_index)
    callee = code.function_at(target_pc) if code else None
    if callee is None or target_pc not in code.index_of:
        where = builder.sections[caller.section].name
        raise LoadError(
            f"{builder.path}: section {where} / pc {at} (function {caller.name}): "
            f"call target {target_pc} is not inside a function"
        )
    base = builder.place(callee)
    # libbpf allows calls into the middle of a function (a label of it).
    skip = target_pc - callee.start
    return base + skip, (f"{callee.name}+{skip}" if skip else callee.name)


def _retarget(insn: Instruction, distance: int) -> Instruction:
    if insn.opcode == LDDW:
        # A function address keeps the distance in the low half of the 64-bit imm.
        return replace(insn, imm=distance & _LOW32)
    return replace(insn, imm=distance)


def _record(reloc: SectionReloc, pc: int) -> Relocation:
    return Relocation(pc, reloc.kind, reloc.symbol, reloc.map, reloc.offset)
