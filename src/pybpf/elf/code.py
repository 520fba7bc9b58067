"""Code sections: decode, split into functions, resolve relocations.

Each executable section is decoded once. Its relocations are resolved into
`SectionReloc` records keyed by the pc inside the section, and map
references are rewritten in place (libbpf's `bpf_program__record_reloc`
and `bpf_object__relocate_data`): a map becomes `src=MAP_FD, imm=index`, a
global-data address `src=MAP_VALUE, imm=index | offset << 32`. Calls are
left for `link.py`, which builds programs out of functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..btf.ext import CoreRelocation, ExtInfo, FuncInfo, LineInfo
from ..errors import DecodeError, LoadError
from ..isa.instruction import Instruction, decode, pc_index
from ..isa.opcodes import CALL, LDDW, CallSrc, PseudoSrc
from .externs import KCONFIG_MAP
from .maps import MapTable
from .reader import SHN_UNDEF, STT_FUNC, ElfImage, RawRelocation, Section, Symbol
from .specs import RelocationKind

INSN_SIZE = 8


@dataclass(frozen=True, slots=True)
class SectionReloc:
    """A resolved relocation at a pc of a section.

    `target` is `(section index, pc)` of the callee for CALL and FUNC.
    """

    kind: RelocationKind
    symbol: str
    map: str | None = None
    offset: int = 0
    target: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Function:
    """A function of a code section: slots `[start, end)` of the section."""

    name: str
    section: int
    start: int
    end: int


@dataclass
class CodeSection:
    """A decoded executable section with its functions and resolved relocations."""

    section: Section
    insns: list[Instruction]
    index_of: dict[int, int]  # pc → index in insns
    functions: list[Function]
    relocs: dict[int, SectionReloc] = field(default_factory=dict)
    func_infos: tuple[FuncInfo, ...] = ()
    line_infos: tuple[LineInfo, ...] = ()
    core_relos: tuple[CoreRelocation, ...] = ()

    @property
    def name(self) -> str:
        """The section name."""
        return self.section.name

    def function_at(self, pc: int) -> Function | None:
        """The function containing slot `pc`."""
        for function in self.functions:
            if function.start <= pc < function.end:
                return function
        return None


def load_code_sections(
    image: ElfImage, maps: MapTable, ext: ExtInfo | None
) -> dict[int, CodeSection]:
    """Every non-empty executable section, by section index, relocated."""
    result: dict[int, CodeSection] = {}
    for section in image.sections:
        if section.is_code and section.size > 0:
            result[section.index] = _decode_section(image, section, ext)
    for code in result.values():
        _resolve_relocations(image, code, maps, result)
    return result


def _decode_section(image: ElfImage, section: Section, ext: ExtInfo | None) -> CodeSection:
    where = f"{image.path}: section {section.name}"
    try:
        insns = decode(section.data, where=where)
    except DecodeError as exc:
        raise LoadError(str(exc)) from None
    index_of = pc_index(insns)
    total = sum(i.slots for i in insns)
    functions = _functions(image, section, total, index_of, where)
    code = CodeSection(section, insns, index_of, functions)
    if ext is not None:
        code.func_infos = ext.func_infos.get(section.name, ())
        code.line_infos = tuple(sorted(ext.line_infos.get(section.name, ()), key=lambda r: r.pc))
        code.core_relos = ext.core_relos.get(section.name, ())
    return code


def _functions(
    image: ElfImage, section: Section, total: int, index_of: dict[int, int], where: str
) -> list[Function]:
    """The functions of a section from its STT_FUNC symbols.

    A section without function symbols (old compilers) is one function
    named after the section, as PREVAIL and old libbpf name it. A symbol of
    size 0 extends to the next function or the end of the section.
    """
    symbols = [s for s in image.symbols_in(section.index) if s.type == STT_FUNC]
    if not symbols:
        return [Function(section.name, section.index, 0, total)]
    starts = []
    for sym in symbols:
        if sym.value % INSN_SIZE or sym.value // INSN_SIZE not in index_of:
            raise LoadError(
                f"{where}: function {sym.name} starts inside an instruction ({sym.value})"
            )
        starts.append(sym.value // INSN_SIZE)
    functions = []
    for n, sym in enumerate(symbols):
        start = starts[n]
        following = starts[n + 1] if n + 1 < len(starts) else total
        end = start + sym.size // INSN_SIZE if sym.size else following
        if sym.size % INSN_SIZE or end > total or (end < total and end not in index_of):
            raise LoadError(f"{where}: function {sym.name} has invalid size {sym.size}")
        if start == end:
            continue  # an empty alias symbol; its twin carries the code
        functions.append(Function(sym.name, section.index, start, end))
    return functions


def _resolve_relocations(
    image: ElfImage, code: CodeSection, maps: MapTable, sections: dict[int, CodeSection]
) -> None:
    where = f"{image.path}: section {code.name}"
    for raw in image.relocations.get(code.section.index, []):
        pc, rest = divmod(raw.offset, INSN_SIZE)
        index = code.index_of.get(pc)
        if rest or index is None:
            raise LoadError(f"{where}: relocation at offset {raw.offset} is not on an instruction")
        insn = code.insns[index]
        at = f"{where} / offset {raw.offset} / symbol {raw.symbol.name or raw.symbol.index}"
        if insn.opcode == CALL:
            reloc, insn = _call_reloc(image, insn, raw, sections, at)
        elif insn.opcode == LDDW:
            reloc, insn = _lddw_reloc(image, insn, raw, maps, sections, at)
        else:
            raise LoadError(f"{at}: relocation on an instruction that is neither lddw nor call")
        code.insns[index] = insn
        code.relocs[pc] = reloc


def _symbol_name(image: ElfImage, sym: Symbol) -> str:
    return image.section_name(sym.section) if sym.is_section else sym.name


def _call_reloc(
    image: ElfImage,
    insn: Instruction,
    raw: RawRelocation,
    sections: dict[int, CodeSection],
    at: str,
) -> tuple[SectionReloc, Instruction]:
    sym = raw.symbol
    if sym.section == SHN_UNDEF:
        # A call to an undefined function is a kfunc (libbpf RELO_EXTERN_CALL);
        # it stays unresolved until a runtime can bind it.
        call = Instruction(insn.opcode, insn.dst, CallSrc.KFUNC, insn.off, insn.imm)
        return SectionReloc(RelocationKind.KFUNC, sym.name), call
    if sym.section not in sections:
        raise LoadError(
            f"{at}: call target is in section {image.section_name(sym.section)}, not code"
        )
    if sym.value % INSN_SIZE:
        raise LoadError(f"{at}: call target is not instruction-aligned")
    # libbpf: global functions have imm = -1; for section symbols imm + 1 is
    # the callee's slot inside the section.
    target = sym.value // INSN_SIZE + insn.imm + 1
    call = Instruction(insn.opcode, insn.dst, CallSrc.LOCAL, insn.off, insn.imm)
    return SectionReloc(
        RelocationKind.CALL, _symbol_name(image, sym), target=(sym.section, target)
    ), call


def _lddw_reloc(
    image: ElfImage,
    insn: Instruction,
    raw: RawRelocation,
    maps: MapTable,
    sections: dict[int, CodeSection],
    at: str,
) -> tuple[SectionReloc, Instruction]:
    sym = raw.symbol
    low = insn.imm & 0xFFFFFFFF
    low = low - (1 << 32) if low & 0x80000000 else low
    if sym.section == SHN_UNDEF:
        return _extern_reloc(insn, sym.name, maps, low)
    if sym.section in sections:
        offset = sym.value + low
        if offset % INSN_SIZE:
            raise LoadError(f"{at}: function address is not instruction-aligned")
        target = (sym.section, offset // INSN_SIZE)
        func = Instruction(insn.opcode, insn.dst, PseudoSrc.FUNC, insn.off, insn.imm)
        return SectionReloc(RelocationKind.FUNC, _symbol_name(image, sym), target=target), func
    # Old clang puts a section-relative offset in imm for section symbols;
    # named symbols carry it in st_value (and RELA objects in the addend).
    offset = sym.value + raw.addend + (low if sym.is_section else 0)
    loc = maps.at(sym.section, offset)
    if loc is None:
        if not 0 <= sym.section < len(image.sections):
            raise LoadError(f"{at}: symbol in special section {sym.section:#x}")
        raise LoadError(
            f"{at}: lddw refers to section {image.section_name(sym.section)}, which holds no map"
        )
    index = maps.index(loc.name)
    if loc.data:
        # Global data: the address of a variable inside the single value.
        value_offset = sym.value + raw.addend + low
        if not 0 <= value_offset <= loc.size:
            raise LoadError(f"{at}: offset {value_offset} is outside {loc.name} ({loc.size} bytes)")
        imm = index | (value_offset << 32)
        new = Instruction(insn.opcode, insn.dst, PseudoSrc.MAP_VALUE, insn.off, imm)
        reloc = SectionReloc(
            RelocationKind.MAP_VALUE, _symbol_name(image, sym), loc.name, value_offset
        )
        return reloc, new
    new = Instruction(insn.opcode, insn.dst, PseudoSrc.MAP_FD, insn.off, index)
    return SectionReloc(RelocationKind.MAP, _symbol_name(image, sym), loc.name), new


def _extern_reloc(
    insn: Instruction, name: str, maps: MapTable, low: int
) -> tuple[SectionReloc, Instruction]:
    """An extern's lddw: a `.kconfig` slot, the 0 of an absent weak ksym, or unresolved."""
    extern = maps.externs.get(name)
    if extern is not None and extern.is_kconfig:
        index = maps.index(KCONFIG_MAP)
        offset = extern.offset + low
        new = Instruction(
            insn.opcode, insn.dst, PseudoSrc.MAP_VALUE, insn.off, index | offset << 32
        )
        return SectionReloc(RelocationKind.KCONFIG, name, KCONFIG_MAP, offset), new
    if extern is not None and extern.weak:
        # No kernel symbols exist here: libbpf gives a weak ksym it cannot find 0.
        zero = Instruction(insn.opcode, insn.dst, PseudoSrc.IMM64, insn.off, 0)
        return SectionReloc(RelocationKind.WEAK_KSYM, name), zero
    return SectionReloc(RelocationKind.EXTERN, name), insn


def instructions_between(code: CodeSection, start: int, end: int) -> list[Instruction]:
    """The instructions of slots `[start, end)` of a section."""
    first = code.index_of[start]
    last = code.index_of[end] if end in code.index_of else len(code.insns)
    return code.insns[first:last]
