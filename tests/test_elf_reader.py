"""The ELF reader (`struct`, no pyelftools) reads what pyelftools reads, on every sample object."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from child_process import modules_imported
from conftest import SAMPLES
from pybpf.elf.reader import ElfImage, read_elf
from pybpf.errors import LoadError

ROOT = Path(__file__).resolve().parents[1]
OBJECTS = [
    *sorted(SAMPLES.rglob("*.o")),
    *sorted((ROOT / "examples").rglob("*.o")),
    *sorted((ROOT / "tests" / "corpus").glob("*.o")),  # weak symbols (externs)
]
STT = {"STT_NOTYPE": 0, "STT_OBJECT": 1, "STT_FUNC": 2, "STT_SECTION": 3}


def _with_pyelftools(data: bytes) -> tuple[list, list, dict]:
    """Sections, symbols and relocations of code and .maps as pyelftools reads them."""
    elf = ELFFile(io.BytesIO(data))
    sections = []
    for section in elf.iter_sections():
        kind = section["sh_type"]
        kind = kind if isinstance(kind, str) else f"SHT_{kind:#x}"
        body = b"" if kind in ("SHT_NOBITS", "SHT_NULL") else section.data()
        sections.append((section.name, kind, section["sh_flags"], section["sh_size"], body))
    symtab = next(s for s in elf.iter_sections() if s["sh_type"] == "SHT_SYMTAB")
    symbols = []
    for sym in symtab.iter_symbols():
        kind = sym["st_info"]["type"]
        shndx = sym["st_shndx"]
        symbols.append(
            (
                sym.name,
                sym["st_value"],
                sym["st_size"],
                STT.get(kind, "other") if isinstance(kind, str) else "other",  # a number: unnamed
                str(sym["st_info"]["bind"]),
                {"SHN_UNDEF": 0, "SHN_ABS": 0xFFF1, "SHN_COMMON": 0xFFF2}.get(shndx, shndx),
                str(sym["st_other"]["visibility"]),
            )
        )
    relocations = {}
    for section in elf.iter_sections():
        if section["sh_type"] not in ("SHT_REL", "SHT_RELA"):
            continue
        target = elf.get_section(section["sh_info"])
        if not (target["sh_flags"] & 0x4 and target["sh_type"] == "SHT_PROGBITS") and (
            target.name != ".maps"
        ):
            continue
        relocations.setdefault(section["sh_info"], []).extend(
            (r["r_offset"], r["r_info_sym"], r["r_info_type"], r["r_addend"] if r.is_RELA() else 0)
            for r in section.iter_relocations()
        )
    return sections, symbols, relocations


def _as_records(image: ElfImage) -> tuple[list, list, dict]:
    sections = [(s.name, s.type, s.flags, s.size, s.data) for s in image.sections]
    symbols = [
        (
            s.name,
            s.value,
            s.size,
            s.type if s.type in STT.values() else "other",
            s.bind,
            s.section,
            s.visibility,
        )
        for s in image.symbols
    ]
    relocations = {
        target: [(r.offset, r.symbol.index, r.type, r.addend) for r in entries]
        for target, entries in image.relocations.items()
    }
    return sections, symbols, relocations


@pytest.mark.parametrize("path", OBJECTS, ids=[str(p) for p in OBJECTS])
def test_the_reader_reads_what_pyelftools_reads(path: Path) -> None:
    data = path.read_bytes()
    try:
        image = read_elf(data, str(path))
    except LoadError:
        with pytest.raises(Exception):  # noqa: B017 - what pybpf refuses, pyelftools cannot read
            _with_pyelftools(data)
        return
    assert _as_records(image) == _with_pyelftools(data)


def test_every_binding_type_and_visibility_reads_as_pyelftools_reads_it() -> None:
    """Symbols rewritten to each st_info (binding and type) and st_other value."""
    data = bytearray((ROOT / "examples" / "xdp_counter.o").read_bytes())
    elf = ELFFile(io.BytesIO(bytes(data)))
    symtab = next(s for s in elf.iter_sections() if s["sh_type"] == "SHT_SYMTAB")
    count = symtab.num_symbols()
    for start in range(0, 256, count - 1):
        for n in range(1, count):  # symbol 0 stays the null symbol
            entry = symtab["sh_offset"] + n * 24
            data[entry + 4] = (start + n) % 256  # st_info: binding << 4 | type
            data[entry + 5] = (start + n) % 8  # st_other: visibility
        image = read_elf(bytes(data), "rewritten.o")
        assert _as_records(image)[1] == _with_pyelftools(bytes(data))[1]


def test_the_samples_are_there() -> None:
    if not SAMPLES.is_dir():
        pytest.skip("no shared samples")
    assert len(OBJECTS) > 250  # the samples (~260) and the examples


def test_parsing_an_object_imports_no_pyelftools() -> None:
    code = (
        "from pybpf.elf import load_object_spec\n"
        f"load_object_spec({str(ROOT / 'examples' / 'xdp_counter.o')!r})"
    )
    assert modules_imported(code, ("elftools",)) == []
