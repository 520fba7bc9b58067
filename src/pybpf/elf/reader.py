"""Read the raw parts of a BPF ELF object: sections, symbols, relocations.

A BPF object is a 64-bit little-endian relocatable ELF file, and what
`elf/` needs of it is three tables: the section headers, the symbol table
and the REL/RELA entries. This module reads them with `struct` into small
records (pyelftools, which the loader used before, costs ~25 ms of imports
per process, a tenth of a warm `pybpf prog run`). Everything malformed
becomes a `LoadError` naming the section or symbol at fault. The checks
are those pyelftools made on the way: the ELF magic, class and data
encoding, a section header table inside the file with entries of at least
64 bytes, a symbol table linked to a string table, relocation entries of
their type's size (RELR's too); names are read up to their NUL (to the end of the
file, as pyelftools reads them) and decoded as UTF-8 with replacement.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..errors import LoadError

EM_NONE = 0
EM_BPF = 247
SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
SHF_COMPRESSED = 0x800
STT_NOTYPE = 0
STT_OBJECT = 1
STT_FUNC = 2
STT_SECTION = 3
SHN_UNDEF = 0
SHN_ABS = 0xFFF1
SHN_COMMON = 0xFFF2
SHN_XINDEX = 0xFFFF

PARSE_ERRORS = (
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
"""What reading malformed input raises (`struct` on short data, the checks below)."""

_IDENT_AND_MACHINE = 20  # e_ident, e_type and e_machine: the same in every ELF class
_ELF_HEADER = struct.Struct("<HHIQQQIHHHHHH")  # Elf64_Ehdr after e_ident: e_type … e_shstrndx
_SECTION_HEADER = struct.Struct("<IIQQQQIIQQ")  # Elf64_Shdr
_SYMBOL = struct.Struct("<IBBHQQ")  # Elf64_Sym
_REL = struct.Struct("<QQ")  # Elf64_Rel: r_offset, r_info
_RELA = struct.Struct("<QQq")  # Elf64_Rela: … r_addend

_SECTION_TYPES = {
    0: "SHT_NULL",
    1: "SHT_PROGBITS",
    2: "SHT_SYMTAB",
    3: "SHT_STRTAB",
    4: "SHT_RELA",
    5: "SHT_HASH",
    6: "SHT_DYNAMIC",
    7: "SHT_NOTE",
    8: "SHT_NOBITS",
    9: "SHT_REL",
    10: "SHT_SHLIB",
    11: "SHT_DYNSYM",
    14: "SHT_INIT_ARRAY",
    15: "SHT_FINI_ARRAY",
    16: "SHT_PREINIT_ARRAY",
    17: "SHT_GROUP",
    18: "SHT_SYMTAB_SHNDX",
    19: "SHT_RELR",
    20: "SHT_NUM",
    0x60000000: "SHT_LOOS",
    0x6FFFFFF3: "SHT_SUNW_LDYNSYM",
    0x6FFFFFF5: "SHT_GNU_ATTRIBUTES",
    0x6FFFFFF6: "SHT_GNU_HASH",
    0x6FFFFFF7: "SHT_GNU_LIBLIST",
    0x6FFFFFFC: "SHT_SUNW_syminfo",
    0x6FFFFFFD: "SHT_GNU_verdef",
    0x6FFFFFFE: "SHT_GNU_verneed",
    0x6FFFFFFF: "SHT_GNU_versym",
    0x80000000: "SHT_LOUSER",
    0xFFFFFFFF: "SHT_HIUSER",
}
"""sh_type → its name in the ELF gABI (the spelling `Section.type` uses; others `SHT_0x…`)."""

_BINDINGS = {
    0: "STB_LOCAL",
    1: "STB_GLOBAL",
    2: "STB_WEAK",
    3: "STB_NUM",
    10: "STB_LOOS",
    12: "STB_HIOS",
    13: "STB_LOPROC",
    15: "STB_HIPROC",
}
_VISIBILITIES = {
    0: "STV_DEFAULT",
    1: "STV_INTERNAL",
    2: "STV_HIDDEN",
    3: "STV_PROTECTED",
    4: "STV_EXPORTED",
    5: "STV_SINGLETON",
    6: "STV_ELIMINATE",
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
    """One symbol-table entry; `type` is its STT_* number, `section` its section index
    (SHN_* for special)."""

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
    """The parts of an object `elf/` uses, read eagerly."""

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
        machine, elfclass, little_endian = _identify(data)
    # Very old clang releases left e_machine at EM_NONE; PREVAIL accepts those too.
    if machine not in (EM_BPF, EM_NONE):
        raise LoadError(f"{path}: not a BPF object (machine {machine})")
    if elfclass != 64:
        raise LoadError(f"{path}: not a 64-bit ELF object")
    if not little_endian:
        raise LoadError(f"{path}: big-endian BPF objects are not supported")
    with _wrapped(f"{path}: ELF header"):
        table = _SectionTable(data)
    with _wrapped(f"{path}: section headers"):
        count = table.count()
    sections = []
    for index in range(count):
        with _wrapped(f"{path}: section {index}"):
            sections.append(_read_section(table, index, path))
    symtab_index = next((s.index for s in sections if s.type == "SHT_SYMTAB"), None)
    if symtab_index is None:
        raise LoadError(f"{path}: no symbol table")
    with _wrapped(f"{path}: section {sections[symtab_index].name}"):
        symbols = _read_symbols(table, symtab_index, path)
    relocations = _read_relocations(table, sections, symbols, path)
    return ElfImage(path, sections, symbols, relocations, little_endian)


def _identify(data: bytes) -> tuple[int, int, bool]:
    """(e_machine, ELF class 32 or 64, little-endian) from the identification bytes."""
    if data[:4] != b"\x7fELF":
        raise ValueError("Magic number does not match")
    elfclass = {1: 32, 2: 64}.get(data[4]) if len(data) > 4 else None
    if elfclass is None:
        raise ValueError(f"Invalid EI_CLASS {data[4:5]!r}")
    little_endian = {1: True, 2: False}.get(data[5]) if len(data) > 5 else None
    if little_endian is None:
        raise ValueError(f"Invalid EI_DATA {data[5:6]!r}")
    if len(data) < _IDENT_AND_MACHINE:
        raise ValueError(f"the file ends at byte {len(data)}, inside the ELF header")
    (machine,) = struct.unpack_from("<H" if little_endian else ">H", data, 18)
    return machine, elfclass, little_endian


class _SectionTable:
    """The section header table of a 64-bit little-endian object, read header by header."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        if len(data) < 16 + _ELF_HEADER.size:
            raise ValueError(f"the file ends at byte {len(data)}, inside the ELF header")
        fields = _ELF_HEADER.unpack_from(data, 16)
        self.shoff = fields[5]
        self.shentsize, self.shnum, self.shstrndx = fields[10], fields[11], fields[12]
        self._names: tuple[int, ...] | None = None  # the section name string table's header

    def header(self, index: int) -> tuple[int, ...]:
        """Section `index`'s Elf64_Shdr fields: name, type, flags, addr, offset, size, link,
        info, addralign, entsize."""
        if self.shoff > 0 and self.shentsize < _SECTION_HEADER.size:
            raise ValueError(f"Too small e_shentsize: {self.shentsize}")
        where = self.shoff + index * self.shentsize
        if where + _SECTION_HEADER.size > len(self.data):
            raise ValueError(f"section header {index} at offset {where} past the end of the file")
        return _SECTION_HEADER.unpack_from(self.data, where)

    def count(self) -> int:
        """How many sections: e_shnum, or section 0's sh_size when that is 0 (gABI)."""
        if self.shoff == 0:
            return 0
        return self.shnum if self.shnum else self.header(0)[5]

    def string(self, table_offset: int, offset: int) -> str:
        """The NUL-terminated name at `offset` of the string table at `table_offset`."""
        start = table_offset + offset
        end = self.data.find(b"\0", start)
        if end < 0:  # no terminator before the end of the file
            return ""
        return self.data[start:end].decode("utf-8", errors="replace")

    def section_name(self, name_offset: int) -> str:
        """A section's name, from the section header string table."""
        if self._names is None:
            index = self.shstrndx if self.shstrndx != SHN_XINDEX else self.header(0)[6]
            self._names = self.header(index)
        return self.string(self._names[4], name_offset)

    def linked_string_table(self, index: int) -> int:
        """The file offset of string table `index` (another section type is malformed)."""
        linked = self.header(index)
        if linked[1] != 3:  # SHT_STRTAB
            raise ValueError(f"section links section {index} of type {linked[1]}, not a STRTAB")
        return linked[4]


def _read_section(table: _SectionTable, index: int, path: str) -> Section:
    (name_offset, code, flags, _addr, offset, size, link, info, _align, entsize) = table.header(
        index
    )
    name = table.section_name(name_offset)
    kind = _SECTION_TYPES.get(code, f"SHT_{code:#x}")
    if kind in ("SHT_SYMTAB", "SHT_DYNSYM"):
        table.linked_string_table(link)
    elif kind in ("SHT_REL", "SHT_RELA"):
        expected = _REL.size if kind == "SHT_REL" else _RELA.size
        if entsize != expected:
            raise ValueError(f"Expected sh_entsize of {kind} section to be {expected}")
    elif kind == "SHT_RELR" and entsize != 8:
        raise ValueError(f"Expected RELR entry size to be 8, got {entsize}")
    if kind in ("SHT_NOBITS", "SHT_NULL"):
        data = b""
    else:
        if flags & SHF_COMPRESSED:
            raise LoadError(
                f"{path}: section {name or index}: compressed sections are not supported"
            )
        data = table.data[offset : offset + size]
        if len(data) != size:
            raise LoadError(
                f"{path}: section {name or index}: {size} bytes declared, {len(data)} in the file"
            )
    return Section(index, name, kind, flags, size, data, info)


def _read_symbols(table: _SectionTable, symtab_index: int, path: str) -> list[Symbol]:
    (_name, _type, _flags, _addr, offset, size, link, _info, _align, entsize) = table.header(
        symtab_index
    )
    if entsize != _SYMBOL.size or size % entsize:
        name = table.section_name(_name)
        raise LoadError(f"{path}: section {name}: invalid symbol table (entry size {entsize})")
    strings = table.linked_string_table(link)
    if offset + size > len(table.data):
        raise ValueError(f"the symbol table ends past the end of the file ({offset + size} bytes)")
    symbols = []
    for index in range(size // entsize):
        name_offset, info, other, shndx, value, sym_size = _SYMBOL.unpack_from(
            table.data, offset + index * entsize
        )
        bind = info >> 4
        visibility = other & 7
        symbols.append(
            Symbol(
                index,
                table.string(strings, name_offset),
                value,
                sym_size,
                info & 0xF,
                _BINDINGS.get(bind, str(bind)),
                shndx,
                _VISIBILITIES.get(visibility, str(visibility)),
            )  # fmt: skip
        )
    return symbols


def _read_relocations(
    table: _SectionTable, sections: list[Section], symbols: list[Symbol], path: str
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
            result.setdefault(target, []).extend(_read_entries(section, symbols, path))
    return result


def _read_entries(section: Section, symbols: list[Symbol], path: str) -> Iterator[RawRelocation]:
    entry = _RELA if section.type == "SHT_RELA" else _REL
    for n in range(len(section.data) // entry.size):
        fields = entry.unpack_from(section.data, n * entry.size)
        offset, info = fields[0], fields[1]
        sym_index = info >> 32
        if not 0 <= sym_index < len(symbols):
            raise LoadError(
                f"{path}: section {section.name}: relocation {n} names missing symbol {sym_index}"
            )
        addend = fields[2] if entry is _RELA else 0
        yield RawRelocation(offset, symbols[sym_index], info & 0xFFFFFFFF, addend)


def _relocates_something_we_read(target: Section) -> bool:
    return target.is_code or target.name == ".maps"


@contextmanager
def _wrapped(where: str) -> Iterator[None]:
    """Turn what malformed input raises inside the block into a LoadError naming `where`."""
    try:
        yield
    except LoadError:
        raise
    except PARSE_ERRORS as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LoadError(f"{where}: malformed ELF: {reason}") from None
