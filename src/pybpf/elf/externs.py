"""Extern variables of an object (`__kconfig`, `__ksym`), laid out as libbpf lays them out.

An extern is an undefined ELF symbol whose BTF `VAR` sits in the `.kconfig`
or `.ksyms` DATASEC. libbpf (`bpf_object__collect_externs`) gives every
`.kconfig` extern a slot in one read-only array map called `.kconfig`:
externs sorted by alignment (largest first), then size, then name, each
at the next offset its alignment allows. Loads of a kconfig extern
(`lddw rX, CONFIG_HZ`) then become loads of that map's value at the slot,
exactly like global data, and the runtime fills the map at load time
(`pybpf.runtime.externs`).

`.ksyms` externs name kernel symbols. There is no kernel here: a weak one
resolves to 0 (what libbpf gives a weak ksym the kernel lacks, and what
`bpf_ksym_exists()` tests), so its `lddw` becomes the constant 0 at once;
a strong one stays an unresolved `EXTERN` relocation, and loading a
program that uses it fails with `NotSupportedError` naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..btf.spec import Spec
from ..btf.types import Array, Datasec, Enum64, Func, Int, IntEncoding, Var
from ..btf.types import Enum as BtfEnum
from ..errors import LoadError
from .map_types import MapType
from .reader import SHN_UNDEF, ElfImage
from .specs import MapSpec

__all__ = ["KCONFIG_MAP", "ExternSpec", "KconfigKind", "collect_externs", "kconfig_map_spec"]

KCONFIG_MAP = ".kconfig"
KSYMS = ".ksyms"
BPF_F_RDONLY_PROG = 0x80
BPF_F_MMAPABLE = 0x400


class KconfigKind(str, Enum):
    """How a `.kconfig` value is written (libbpf's `enum kcfg_type`)."""

    BOOL = "bool"  # y/n, 0/1
    CHAR = "char"  # one byte: y/n/m or a number
    INT = "int"  # 1, 2, 4 or 8 bytes
    TRISTATE = "tristate"  # enum libbpf_tristate: n=0, y=1, m=2
    CHAR_ARRAY = "char_array"  # a quoted string


@dataclass(frozen=True, slots=True)
class ExternSpec:
    """One extern: its name, section (`.kconfig`/`.ksyms`), weakness, and kconfig slot.

    `offset`/`size`/`kind`/`signed` describe the slot in the `.kconfig` map
    (for `.ksyms` externs they are 0/None). `type_id` is the BTF type of
    the variable (0 for a typeless ksym).
    """

    name: str
    section: str
    weak: bool
    type_id: int = 0
    offset: int = 0
    size: int = 0
    kind: KconfigKind | None = None
    signed: bool = False

    @property
    def is_kconfig(self) -> bool:
        """True for a `__kconfig` extern (a slot of the `.kconfig` map)."""
        return self.section == KCONFIG_MAP


def collect_externs(image: ElfImage, btf: Spec | None) -> dict[str, ExternSpec]:
    """Every extern variable of the object, by name, with `.kconfig` slots laid out.

    Raises `LoadError` as libbpf fails open: an extern without BTF, in an
    unknown section, or of a type `.kconfig` cannot hold.
    """
    undefined = [s for s in image.symbols if s.section == SHN_UNDEF and s.name and not s.is_section]
    if not undefined:
        return {}
    sections = _extern_sections(btf)
    found: list[ExternSpec] = []
    for sym in undefined:
        entry = sections.get(sym.name)
        if entry is None:
            continue  # an undefined function without BTF: a kfunc call, elf/code.py's business
        section, type_id, record = entry
        weak = sym.bind == "STB_WEAK"
        if section == KSYMS:
            found.append(ExternSpec(sym.name, KSYMS, weak, type_id))
            continue
        if isinstance(record, Func):
            raise LoadError(f"{image.path}: extern function {sym.name} cannot be in .kconfig")
        assert btf is not None
        kind, signed = _kconfig_kind(btf, record.type)
        if kind is None:
            raise LoadError(f"{image.path}: extern (kcfg) {sym.name}: type is unsupported")
        size = btf.size_of(record.type)
        found.append(ExternSpec(sym.name, KCONFIG_MAP, weak, record.type, 0, size, kind, signed))
    return _layout(found, btf)


def kconfig_map_spec(externs: dict[str, ExternSpec]) -> MapSpec | None:
    """The `.kconfig` array map holding every kconfig extern, or None when there is none."""
    slots = [e for e in externs.values() if e.is_kconfig]
    if not slots:
        return None
    size = max(e.offset + e.size for e in slots)
    return MapSpec(
        name=KCONFIG_MAP,
        type=MapType.ARRAY,
        key_size=4,
        value_size=size,
        max_entries=1,
        flags=BPF_F_RDONLY_PROG | BPF_F_MMAPABLE,
        initial_data=None,  # filled when the object loads (runtime.externs)
        frozen=True,
        section=KCONFIG_MAP,
    )


def _extern_sections(btf: Spec | None) -> dict[str, tuple[str, int, object]]:
    """`name -> (DATASEC name, type id, VAR or FUNC record)` of `.kconfig`/`.ksyms` entries."""
    out: dict[str, tuple[str, int, object]] = {}
    if btf is None:
        return out
    for _, record in btf:
        if isinstance(record, Datasec) and record.name in (KCONFIG_MAP, KSYMS):
            for info in record.vars:
                entry = btf.type_by_id(info.type)
                if isinstance(entry, (Var, Func)) and entry.name:
                    type_id = entry.type if isinstance(entry, Var) else 0
                    if record.name == KSYMS and isinstance(entry, Var):
                        # A typeless ksym (`extern const void x __ksym`) has type void.
                        type_id = btf.skip_qualifiers(entry.type)
                    out[entry.name] = (record.name, type_id, entry)
    return out


def _kconfig_kind(btf: Spec, type_id: int) -> tuple[KconfigKind | None, bool]:
    """libbpf's `find_kcfg_type`: what a `.kconfig` extern of this type holds."""
    record = btf.resolve(type_id)
    if isinstance(record, Int):
        if record.encoding & IntEncoding.BOOL:
            return (KconfigKind.BOOL if record.size == 1 else None), False
        signed = bool(record.encoding & IntEncoding.SIGNED)
        if record.size == 1:
            return KconfigKind.CHAR, signed
        if record.size in (2, 4, 8):
            return KconfigKind.INT, signed
        return None, False
    if isinstance(record, (BtfEnum, Enum64)):
        ok = record.name == "libbpf_tristate" and (isinstance(record, Enum64) or record.size == 4)
        return (KconfigKind.TRISTATE if ok else None), False
    if isinstance(record, Array):
        if record.nelems and _kconfig_kind(btf, record.type)[0] == KconfigKind.CHAR:
            return KconfigKind.CHAR_ARRAY, False
    return None, False


def _alignment(btf: Spec, type_id: int) -> int:
    record = btf.resolve(type_id)
    if isinstance(record, Array):
        return _alignment(btf, record.type)
    return min(max(btf.size_of(type_id), 1), 8)


def _layout(found: list[ExternSpec], btf: Spec | None) -> dict[str, ExternSpec]:
    """Offsets of the `.kconfig` slots, in libbpf's order (align desc, size asc, name)."""
    kconfig = [e for e in found if e.is_kconfig]
    if btf is not None:
        kconfig.sort(key=lambda e: (-_alignment(btf, e.type_id), e.size, e.name))
    offset = 0
    placed = {}
    for extern in kconfig:
        align = _alignment(btf, extern.type_id) if btf is not None else 1
        start = -(-offset // align) * align
        placed[extern.name] = ExternSpec(
            extern.name,
            extern.section,
            extern.weak,
            extern.type_id,
            start,
            extern.size,
            extern.kind,
            extern.signed,
        )
        offset = start + extern.size
    return {e.name: placed.get(e.name, e) for e in sorted(found, key=lambda e: e.name)}
