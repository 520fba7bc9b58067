"""Read the raw parts of a BPF ELF object: sections, symbols, relocations.

This is the only module that talks to pyelftools. It copies what the rest
of `elf/` needs into small records, so that pyelftools' lazy parsing (and
its exceptions) stays in one place. Everything malformed becomes a
`LoadError` naming the section or symbol at fault.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from ..errors import LoadError

EM_BPF = 247
SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
STT_NOTYPE = 0
STT_OBJECT = 1
STT_FUNC = 2
STT_SECTION = 3
SHN_UNDEF = 0
SHN_ABS = 0xFFF1
SHN_COMMON = 0xFFF2

try:  # pyelftools' bundled construct raises its own errors for short reads
    from elftools.construct.core import ConstructError
except ImportError:  # pragma: no cover - layout of other pyelftools versions
    ConstructError = ELFError  # type: ignore[misc,assignment]

PARSE_ERRORS = (
    ELFError,
    ConstructError,
    struct.error,
    IndexError,
    KeyError,
    ValueError,
    UnicodeDecodeError,
    TypeError,
    AttributeError,
    OverflowError,
    EOFError,
)
"""What pyelftools and the struct module raise on malformed input."""

_SHN_NAMES = {"SHN_UNDEF": SHN_UNDEF, "SHN_ABS": SHN_ABS, "SHN_COMMON": SHN_COMMON}
_STT_NAMES = {
    "STT_NOTYPE": STT_NOTYPE,
    "STT_OBJECT": STT_OBJECT,
    "STT_FUNC": STT_FUNC,
    "STT_SECTION": STT_SECTION,
}


@dataclass(frozen=True, slots=True)
class Section:
    """One ELF section; `data` is empty for SHT_NOBITS (`.bss`)."""

    index: int
    name: str
    type: str
    flags: int
    size: int
    data: bytes
    info: int = 0  # for REL/RELA: the index of the section relocated

    @property
    def is_code(self) -> bool:
        """True for a section of executable instructions."""
        return self.type == "SHT_PROGBITS" and bool(self.flags & SHF_EXECINSTR)


@dataclass(frozen=True, slots=True)
class Symbol:
    """One symbol-table entry; `section` is its section index (SHN_* for special)."""

    index: int
    name: str
    value: int
    size: int
    type: int
    bind: str
    section: int
    visibility: str = "STV_DEFAULT"

    @property
    def is_section(self) -> bool:
        """True for an STT_SECTION symbol (relocations against a section)."""
        return self.type == STT_SECTION


@dataclass(frozen=True, slots=True)
class RawRelocation:
    """One REL/RELA entry against `target` section: byte `offset`, symbol and type."""

    offset: int
    symbol: Symbol
    type: int
    addend: int = 0


@dataclass
class ElfImage:
    """The parts of an object `elf/` uses, read eagerly from pyelftools."""

    path: str
    sections: list[Section]
    symbols: list[Symbol]
    relocations: dict[int, list[RawRelocation]]  # target section index → entries
    little_endian: bool

    def section_named(self, name: str) -> Section | None:
        """The first section called `name`, or None."""
        for section in self.sections:
            if section.name == name:
                return section
        return None

    def section_name(self, index: int) -> str:
        """The name of section `index`, or a placeholder for special indexes."""
        if 0 <= index < len(self.sections):
            return self.sections[index].name
        return f"<section {index}>"

    def symbols_in(self, index: int) -> list[Symbol]:
        """The non-section symbols defined in section `index`, by address."""
        found = [s for s in self.symbols if s.section == index and not s.is_section and s.name]
        return sorted(found, key=lambda s: (s.value, s.index))


def read_elf(data: bytes, path: str) -> ElfImage:
    """Read `data` (a whole object file) into an `ElfImage`."""
    with _wrapped(f"{path}: ELF header"):
        elf = ELFFile(io.BytesIO(data))
    # Very old clang releases left e_machine at EM_NONE; PREVAIL accepts those too.
    if elf["e_machine"] not in ("EM_BPF", EM_BPF, "EM_NONE"):
        raise LoadError(f"{path}: not a BPF object (machine {elf['e_machine']})")
    if elf.elfclass != 64:
        raise LoadError(f"{path}: not a 64-bit ELF object")
    if not elf.little_endian:
        raise LoadError(f"{path}: big-endian BPF objects are not supported")
    with _wrapped(f"{path}: section headers"):
        count = elf.num_sections()
    sections = []
    for index in range(count):
        with _wrapped(f"{path}: section {index}"):
            sections.append(_read_section(elf, index, path))
    symtab_index = next((s.index for s in sections if s.type == "SHT_SYMTAB"), None)
    if symtab_index is None:
        raise LoadError(f"{path}: no symbol table")
    with _wrapped(f"{path}: section {sections[symtab_index].name}"):
        symbols = _read_symbols(elf, symtab_index, path)
    relocations = _read_relocations(elf, sections, symbols, symtab_index, path)
    return ElfImage(path, sections, symbols, relocations, elf.little_endian)


def _read_section(elf: ELFFile, index: int, path: str) -> Section:
    section = elf.get_section(index)
    header = section.header
    try:
        name = section.name
    except UnicodeDecodeError:
        raise LoadError(f"{path}: section {index}: name is not valid text") from None
    kind = header["sh_type"]
    kind = kind if isinstance(kind, str) else f"SHT_{kind:#x}"
    size = header["sh_size"]
    if kind in ("SHT_NOBITS", "SHT_NULL"):
        data = b""
    else:
        data = section.data()
        if len(data) != size:
            raise LoadError(
                f"{path}: section {name or index}: {size} bytes declared, {len(data)} in the file"
            )
    return Section(index, name, kind, header["sh_flags"], size, data, header["sh_info"])


def _read_symbols(elf: ELFFile, symtab_index: int, path: str) -> list[Symbol]:
    symtab = elf.get_section(symtab_index)
    entsize = symtab.header["sh_entsize"]
    if entsize != 24 or symtab.header["sh_size"] % entsize:
        raise LoadError(
            f"{path}: section {symtab.name}: invalid symbol table (entry size {entsize})"
        )
    symbols = []
    for index in range(symtab.num_symbols()):
        sym = symtab.get_symbol(index)
        where = f"{path}: symbol {index}"
        try:
            name = sym.name
        except UnicodeDecodeError:
            raise LoadError(f"{where}: name is not valid text") from None
        shndx = sym["st_shndx"]
        shndx = _SHN_NAMES.get(shndx, shndx) if isinstance(shndx, str) else shndx
        if not isinstance(shndx, int):
            raise LoadError(f"{where} ({name}): unknown section index {shndx}")
        info = sym["st_info"]
        stype = _STT_NAMES.get(info["type"], -1) if isinstance(info["type"], str) else info["type"]
        symbols.append(
            Symbol(
                index,
                name,
                sym["st_value"],
                sym["st_size"],
                stype,
                str(info["bind"]),
                shndx,
                str(sym["st_other"]["visibility"]),
            )  # fmt: skip
        )
    return symbols


def _read_relocations(
    elf: ELFFile, sections: list[Section], symbols: list[Symbol], symtab_index: int, path: str
) -> dict[int, list[RawRelocation]]:
    result: dict[int, list[RawRelocation]] = {}
    for section in sections:
        if section.type not in ("SHT_REL", "SHT_RELA"):
            continue
        target = section.info
        if not 0 < target < len(sections):
            raise LoadError(f"{path}: section {section.name}: relocates missing section {target}")
        if not _relocates_something_we_read(sections[target]):
            continue  # debug info, BTF and the like: nothing pybpf uses
        with _wrapped(f"{path}: section {section.name}"):
            result.setdefault(target, []).extend(_read_entries(elf, section, symbols, path))
    return result


def _read_entries(
    elf: ELFFile, section: Section, symbols: list[Symbol], path: str
) -> Iterator[RawRelocation]:
    rel = elf.get_section(section.index)
    if rel.header["sh_entsize"] not in (16, 24):
        raise LoadError(f"{path}: section {section.name}: bad relocation entry size")
    for n, entry in enumerate(rel.iter_relocations()):
        sym_index = entry["r_info_sym"]
        if not 0 <= sym_index < len(symbols):
            raise LoadError(
                f"{path}: section {section.name}: relocation {n} names missing symbol {sym_index}"
            )
        addend = entry["r_addend"] if entry.is_RELA() else 0
        yield RawRelocation(entry["r_offset"], symbols[sym_index], entry["r_info_type"], addend)


def _relocates_something_we_read(target: Section) -> bool:
    return target.is_code or target.name == ".maps"


@contextmanager
def _wrapped(where: str) -> Iterator[None]:
    """Turn pyelftools' exceptions inside the block into a LoadError naming `where`."""
    try:
        yield
    except LoadError:
        raise
    except PARSE_ERRORS as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LoadError(f"{where}: malformed ELF: {reason}") from None
