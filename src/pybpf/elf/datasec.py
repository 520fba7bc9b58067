"""Fix up the BTF `DATASEC`s of an object from its ELF symbol table, as libbpf does.

clang cannot know where the linker-visible variables of a section end up
when it emits BTF, so in an object file every DATASEC has size 0 and its
global variables offset 0 (static variables already have their offsets).
libbpf (`btf_fixup_datasec`) repairs this when it opens the object: the
section's size from the ELF section header, each global variable's offset
from its ELF symbol (an `STT_OBJECT` of global or weak binding with the
variable's name), hidden or internal symbols marked static, and the
variables sorted by offset. Every consumer of the BTF — the typed views of
global data, `obj.rodata.<var>`, `map dump`, the verifier — relies on those
offsets, so this runs once, right after the BTF is parsed.

`.kconfig` and `.ksyms` are left alone: their layout is the extern
resolver's business (libbpf skips them here too). A DATASEC that already
has a size (an object produced by `bpftool gen object`, the BPF static
linker) keeps its offsets; only the visibility rule applies.
"""

from __future__ import annotations

from dataclasses import replace

from ..btf.spec import Spec
from ..btf.types import Datasec, Linkage, Var
from ..errors import LoadError
from .reader import STT_OBJECT, ElfImage

__all__ = ["EXTERN_DATASECS", "fixup_datasecs"]

EXTERN_DATASECS = (".kconfig", ".ksyms")
"""DATASECs holding externs, laid out by the extern resolver, not by the ELF."""

_HIDDEN = ("STV_HIDDEN", "STV_INTERNAL")


def fixup_datasecs(image: ElfImage, btf: Spec) -> Spec:
    """A copy of `btf` with every DATASEC's size and variable offsets taken from the ELF.

    Raises `LoadError` when a section or a variable's symbol cannot be
    found, as libbpf fails `bpf_object__open` then.
    """
    types = list(btf.types)
    globals_ = _global_objects(image)
    for type_id, record in enumerate(btf.types):
        if isinstance(record, Datasec) and record.name not in EXTERN_DATASECS:
            types[type_id] = _fixup(image, btf, types, record, globals_)
    if types == btf.types:
        return btf
    return Spec(types, btf.strings, btf.where)


def _global_objects(image: ElfImage) -> dict[str, tuple[int, str]]:
    """`name -> (value, visibility)` of the first global or weak data symbol of each name."""
    found: dict[str, tuple[int, str]] = {}
    for sym in image.symbols:
        if sym.type == STT_OBJECT and sym.bind in ("STB_GLOBAL", "STB_WEAK"):
            found.setdefault(sym.name, (sym.value, sym.visibility))
    return found


def _fixup(
    image: ElfImage,
    btf: Spec,
    types: list,
    datasec: Datasec,
    globals_: dict[str, tuple[int, str]],
) -> Datasec:
    where = f"{image.path}: BTF DATASEC {datasec.name}"
    size = datasec.size
    fix_offsets = size == 0
    if fix_offsets:
        section = image.section_named(datasec.name)
        if section is None or section.size == 0:
            raise LoadError(f"{where}: no ELF section of that name to take its size from")
        size = section.size
    secinfos = []
    for info in datasec.vars:
        var = btf.type_by_id(info.type)
        if not isinstance(var, Var):
            raise LoadError(f"{where}: entry of type {info.type} is not a variable")
        if var.linkage in (Linkage.STATIC, Linkage.EXTERN):
            secinfos.append(info)  # clang already placed static variables
            continue
        symbol = globals_.get(var.name)
        if symbol is None:
            raise LoadError(f"{where}: no ELF symbol for variable {var.name}")
        offset, visibility = symbol
        if fix_offsets:
            info = replace(info, offset=offset)
        if visibility in _HIDDEN:
            # A hidden global is invisible outside the object: libbpf treats it as static.
            types[info.type] = replace(var, linkage=Linkage.STATIC)
        secinfos.append(info)
    for info in secinfos:
        if info.offset + info.size > size:
            name = getattr(btf.type_by_id(info.type), "name", info.type)
            raise LoadError(f"{where}: variable {name} lies outside the section ({size} bytes)")
    secinfos.sort(key=lambda info: info.offset)  # stable, as the kernel requires sorted VARs
    return replace(datasec, size=size, vars=tuple(secinfos))
