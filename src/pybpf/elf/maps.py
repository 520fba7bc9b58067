"""Map specs from an object: legacy `maps` sections, BTF `.maps`, global data.

Order and naming follow libbpf (`bpf_object__init_maps`): legacy maps in
section order (by symbol address inside a section), then BTF-defined maps in
`.maps` variable order, then one single-element array per global data
section (`.data`, `.rodata`, `.bss`, `.rodata.str1.1`, …) named after the
section. `MapLocation` records where each map lives in the ELF file, so that
relocations (which name a section and an offset) can find it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace

from ..btf.spec import Spec as BtfSpec
from ..btf.types import Array, Datasec, FuncProto, Ptr, Struct, Var
from ..errors import LoadError
from .externs import ExternSpec, kconfig_map_spec
from .map_types import MAP_IN_MAP_TYPES, MapType
from .reader import SHF_ALLOC, ElfImage, Section
from .specs import MapSpec

BPF_F_RDONLY_PROG = 0x80
BPF_F_MMAPABLE = 0x400
LEGACY_MIN_DEF_SIZE = 4  # libbpf accepts a definition holding just the type
IPROUTE2_DEF_SIZE = 36  # iproute2's struct bpf_elf_map
_U32 = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class MapLocation:
    """Where map `name` is defined: its section index, byte offset and size.

    `data` marks a global-data section, whose lddw references are addresses
    of variables inside the map's value rather than the map itself.
    """

    name: str
    section: int
    offset: int
    size: int
    data: bool = False


@dataclass
class MapTable:
    """The maps of an object in libbpf order, with their ELF locations.

    `externs` are the object's externs (`elf.externs`): a `__kconfig` one is
    a slot of the `.kconfig` map, which comes last, as libbpf creates it.
    """

    specs: dict[str, MapSpec]
    locations: list[MapLocation]
    externs: dict[str, ExternSpec] = field(default_factory=dict)

    def index(self, name: str) -> int:
        """Index of map `name` in `specs` order."""
        return list(self.specs).index(name)

    def at(self, section: int, offset: int) -> MapLocation | None:
        """The map defined at `offset` of `section` (or the section's data map)."""
        for loc in self.locations:
            if loc.section == section and loc.offset <= offset < loc.offset + max(loc.size, 1):
                return loc
        return None


def is_legacy_maps_section(section: Section) -> bool:
    """Sections holding `struct bpf_map_def` records: `maps` and `maps/<name>`."""
    return section.name == "maps" or section.name.startswith("maps/")


def is_global_data_section(section: Section) -> bool:
    """`.data*`, `.rodata*` and `.bss*` sections that become array maps."""
    if not section.flags & SHF_ALLOC or section.type not in ("SHT_PROGBITS", "SHT_NOBITS"):
        return False
    name = section.name
    return any(name == p or name.startswith(p + ".") for p in (".data", ".rodata", ".bss"))


def collect_maps(
    image: ElfImage,
    btf: BtfSpec | None,
    externs: dict[str, ExternSpec] | None = None,
    legacy_layout: str = "linux",
) -> MapTable:
    """Every map the object defines, in libbpf order (`.kconfig` last, when it has externs).

    `legacy_layout` says how `maps` section records read: "linux" (`bpf_map_def` and
    its iproute2 / samples extensions) or "windows" (eBPF for Windows' eight words).
    Map type numbers are kept as the object has them (the platform translates)."""
    table = MapTable({}, [], dict(externs or {}))
    inner_refs: list[tuple[str, int]] = []
    for section in image.sections:
        if is_legacy_maps_section(section):
            inner_refs += _legacy_maps(image, section, table, legacy_layout)
    # Inner map indexes count every legacy map, so link once all are known.
    _link_legacy_inner(table, inner_refs, image.path)
    maps_section = image.section_named(".maps")
    if maps_section is not None:
        _btf_maps(image, maps_section, btf, table)
    for section in image.sections:
        if is_global_data_section(section) and section.size > 0:
            loc = MapLocation(section.name, section.index, 0, section.size, data=True)
            _add(table, _global_data_map(section, btf), loc, image)
    kconfig = kconfig_map_spec(table.externs)
    if kconfig is not None:
        # No ELF section backs it: relocations reach it through `externs`.
        _add(table, kconfig, MapLocation(kconfig.name, -1, 0, kconfig.value_size, data=True), image)
    return table


def _add(table: MapTable, spec: MapSpec, loc: MapLocation, image: ElfImage) -> None:
    if spec.name in table.specs:
        raise LoadError(
            f"{image.path}: map {spec.name} defined twice (section {image.section_name(loc.section)})"
        )
    table.specs[spec.name] = spec
    table.locations.append(loc)


# --- legacy `maps` sections ---------------------------------------------------


def _legacy_maps(
    image: ElfImage, section: Section, table: MapTable, layout: str = "linux"
) -> list[tuple[str, int]]:
    """Add the maps of one legacy section; return its `(map, inner index)` pairs."""
    symbols = image.symbols_in(section.index)
    where = f"{image.path}: section {section.name}"
    if not symbols:
        if section.size:
            raise LoadError(f"{where}: map definitions without symbols")
        return []
    # Like libbpf, the definition size is the section size over the number of maps.
    if section.size % len(symbols):
        raise LoadError(f"{where}: {section.size} bytes cannot hold {len(symbols)} map definitions")
    def_size = section.size // len(symbols)
    if def_size < LEGACY_MIN_DEF_SIZE:
        raise LoadError(f"{where}: map definition of {def_size} bytes is too small")
    inner_refs: list[tuple[str, int]] = []
    for sym in symbols:
        if sym.value % 4 or sym.value + def_size > section.size:
            raise LoadError(
                f"{where}: map {sym.name} at offset {sym.value} is out of bounds or misaligned"
            )
        raw = section.data[sym.value : sym.value + def_size]
        decode = _windows_legacy_def if layout == "windows" else _legacy_def
        spec, inner_idx = decode(sym.name, raw, section.name)
        _add(table, spec, MapLocation(sym.name, section.index, sym.value, def_size), image)
        if inner_idx is not None:
            inner_refs.append((sym.name, inner_idx))
    return inner_refs


def _legacy_def(name: str, raw: bytes, section: str) -> tuple[MapSpec, int | None]:
    """Decode one definition; returns the spec and the inner map index, if any.

    The first five words are `struct bpf_map_def` everywhere. After them,
    iproute2's `struct bpf_elf_map` (36 bytes) has id, pinning, inner_id and
    inner_idx; samples/bpf's `struct bpf_load_map_def` has inner_map_idx and
    numa_node.
    """
    padded = raw.ljust(max(len(raw), IPROUTE2_DEF_SIZE), b"\0")
    words = [_U32.unpack_from(padded, i * 4)[0] for i in range(9)]
    map_type, key_size, value_size, max_entries, flags = words[:5]
    pinning = numa = 0
    inner: int | None = None
    if len(raw) >= IPROUTE2_DEF_SIZE:
        pinning = words[6]
        inner = words[8]
    elif len(raw) >= 24:
        inner = words[5]
        numa = words[6]
    if map_type not in MAP_IN_MAP_TYPES:
        inner = None
    spec = MapSpec(
        name, map_type, key_size, value_size, max_entries, flags,
        pinning=pinning, numa_node=numa, section=section,
    )  # fmt: skip
    return spec, inner


WINDOWS_MAP_IN_MAP = frozenset({6, 7})
"""eBPF for Windows' hash_of_maps and array_of_maps numbers."""


def _windows_legacy_def(name: str, raw: bytes, section: str) -> tuple[MapSpec, int | None]:
    """Decode one eBPF for Windows record: type, key_size, value_size, max_entries,
    inner_map_idx, pinning, id, inner_id (32 bytes; shorter records are zero-padded).
    The inner map is the record with id `inner_id` when that is set, else the one at
    `inner_map_idx`; an id reference is returned as `-(inner_id)` for the linker."""
    padded = raw[:32].ljust(32, b"\0")
    words = [_U32.unpack_from(padded, i * 4)[0] for i in range(8)]
    map_type, key_size, value_size, max_entries, inner_idx, pinning, map_id, inner_id = words
    inner: int | None = None
    if map_type in WINDOWS_MAP_IN_MAP:
        inner = -inner_id if inner_id else inner_idx
    spec = MapSpec(
        name, map_type, key_size, value_size, max_entries, 0,
        pinning=pinning, section=section, map_id=map_id,
    )  # fmt: skip
    return spec, inner


def _link_legacy_inner(table: MapTable, refs: list[tuple[str, int]], path: str) -> None:
    names = list(table.specs)
    by_id = {spec.map_id: spec_name for spec_name, spec in table.specs.items() if spec.map_id}
    for outer, idx in refs:
        if idx < 0:  # eBPF for Windows: the inner map named by its id
            if -idx not in by_id:
                section = table.specs[outer].section
                raise LoadError(
                    f"{path}: section {section}: map {outer}: no map with inner id {-idx}"
                )
            idx = names.index(by_id[-idx])
        if not 0 <= idx < len(names):
            section = table.specs[outer].section
            raise LoadError(
                f"{path}: section {section}: map {outer}: inner map index {idx} out of range"
            )
        inner_spec = table.specs[names[idx]]
        table.specs[outer] = replace(table.specs[outer], inner_map=inner_spec)


# --- BTF-defined `.maps` --------------------------------------------------------


def _btf_maps(image: ElfImage, section: Section, btf: BtfSpec | None, table: MapTable) -> None:
    where = f"{image.path}: section .maps"
    if btf is None:
        raise LoadError(f"{where}: BTF-defined maps need a .BTF section")
    found = btf.type_by_name(".maps", Datasec)
    if found is None:
        raise LoadError(f"{where}: no BTF DATASEC for .maps")
    _, datasec = found
    values_relocs = _values_relocations(image, section)
    # clang leaves DATASEC offsets at 0 (libbpf fixes them up from the symbol
    # table), so the ELF symbol of each variable says where it really is.
    offsets = {sym.name: sym.value for sym in image.symbols_in(section.index)}
    for secinfo in datasec.vars:
        var = btf.type_by_id(secinfo.type)
        if not isinstance(var, Var):
            raise LoadError(f"{where}: DATASEC entry {secinfo.type} is not a variable")
        offset = offsets.get(var.name, secinfo.offset)
        size = secinfo.size or btf.size_of(var.type)
        if offset + size > section.size:
            raise LoadError(f"{where}: map {var.name} lies outside the section")
        spec = _btf_map_def(btf, var.name, var.type, f"{where}: map {var.name}", ".maps")
        span = (offset, offset + size)
        spec = _with_contents(btf, spec, var.type, span, values_relocs, image)
        _add(table, spec, MapLocation(var.name, section.index, offset, size), image)


def _uint_attr(btf: BtfSpec, type_id: int, where: str, attr: str) -> int:
    """The value of `__uint(attr, N)`, encoded as `int (*attr)[N]`."""
    ptr = btf.resolve(type_id)
    if not isinstance(ptr, Ptr):
        raise LoadError(f"{where}: attribute {attr} is not a __uint() pointer")
    array = btf.resolve(ptr.type)
    if not isinstance(array, Array):
        raise LoadError(f"{where}: attribute {attr} is not a __uint() pointer to an array")
    return array.nelems


def _type_attr(btf: BtfSpec, type_id: int, where: str, attr: str) -> int:
    """The type id named by `__type(attr, T)`, encoded as `T *attr`."""
    ptr = btf.resolve(type_id)
    if not isinstance(ptr, Ptr):
        raise LoadError(f"{where}: attribute {attr} is not a __type() pointer")
    return ptr.type


_UINT_FIELDS = {
    "type": "type",
    "max_entries": "max_entries",
    "map_flags": "flags",
    "numa_node": "numa_node",
    "pinning": "pinning",
    "map_extra": "map_extra",
}


def _btf_map_def(btf: BtfSpec, name: str, type_id: int, where: str, section: str) -> MapSpec:
    """Decode a map definition struct (`struct { __uint(type, …); … }`)."""
    struct_type = btf.resolve(type_id)
    if not isinstance(struct_type, Struct):
        raise LoadError(f"{where}: definition is not a struct")
    fields: dict[str, int] = {"key_size": 0, "value_size": 0}
    inner: MapSpec | None = None
    has_values = False
    for member in struct_type.members:
        attr = member.name
        if attr in _UINT_FIELDS:
            fields[_UINT_FIELDS[attr]] = _uint_attr(btf, member.type, where, attr)
        elif attr in ("key_size", "value_size"):
            fields[attr] = _uint_attr(btf, member.type, where, attr)
        elif attr in ("key", "value"):
            target = _type_attr(btf, member.type, where, attr)
            fields[attr + "_type"] = target
            fields[attr + "_size"] = btf.size_of(target)
        elif attr == "values":
            has_values = True
            inner = _inner_map(btf, name, member.type, where)
        # Unknown attributes are skipped: newer compilers and libbpf versions add
        # some, and they do not change what the map is.
    if has_values:
        # Values of maps of maps and program arrays are fds: libbpf sets 4.
        fields["value_size"] = fields["value_size"] or 4
    return MapSpec(
        name=name,
        type=fields.get("type", 0),
        key_size=fields["key_size"],
        value_size=fields["value_size"],
        max_entries=fields.get("max_entries", 0),
        flags=fields.get("flags", 0),
        inner_map=inner,
        pinning=fields.get("pinning", 0),
        numa_node=fields.get("numa_node", 0),
        map_extra=fields.get("map_extra", 0),
        key_type=fields.get("key_type", 0),
        value_type=fields.get("value_type", 0),
        section=section,
    )


def _inner_map(btf: BtfSpec, outer: str, type_id: int, where: str) -> MapSpec | None:
    """The inner map spec of `__array(values, struct inner)`; None for prog arrays."""
    array = btf.resolve(type_id)
    if not isinstance(array, Array):
        raise LoadError(f"{where}: attribute values is not an array")
    ptr = btf.resolve(array.type)
    if not isinstance(ptr, Ptr):
        raise LoadError(f"{where}: attribute values is not an array of pointers")
    target = btf.resolve(ptr.type)
    if isinstance(target, FuncProto):
        return None  # a program array initialised with programs
    return _btf_map_def(btf, f"{outer}.inner", ptr.type, f"{where} (inner map)", ".maps")


def _values_offset(btf: BtfSpec, type_id: int) -> int | None:
    struct_type = btf.resolve(type_id)
    if isinstance(struct_type, Struct):
        for member in struct_type.members:
            if member.name == "values":
                return member.bit_offset // 8
    return None


def _values_relocations(image: ElfImage, section: Section) -> dict[int, str]:
    """Relocations in `.maps`: byte offset → symbol (map or program name)."""
    return {r.offset: r.symbol.name for r in image.relocations.get(section.index, [])}


def _with_contents(
    btf: BtfSpec,
    spec: MapSpec,
    type_id: int,
    span: tuple[int, int],
    relocs: dict[int, str],
    image: ElfImage,
) -> MapSpec:
    """Fill `contents` from relocations inside the map's `values` array."""
    values_at = _values_offset(btf, type_id)
    if values_at is None:
        return spec
    start = span[0] + values_at
    contents = []
    for offset, symbol in sorted(relocs.items()):
        if not start <= offset < span[1]:
            continue
        index, rest = divmod(offset - start, 8)
        if rest:
            raise LoadError(f"{image.path}: section .maps: misaligned values entry of {spec.name}")
        contents.append((index, symbol))
    return replace(spec, contents=tuple(contents))


# --- global data --------------------------------------------------------------


def _global_data_map(section: Section, btf: BtfSpec | None) -> MapSpec:
    """A single-element array holding the section's bytes, as libbpf creates."""
    read_only = section.name.startswith(".rodata")
    flags = BPF_F_MMAPABLE | (BPF_F_RDONLY_PROG if read_only else 0)
    value_type = 0
    if btf is not None:
        found = btf.type_by_name(section.name, Datasec)
        value_type = found[0] if found else 0
    return MapSpec(
        name=section.name,
        type=MapType.ARRAY,
        key_size=4,
        value_size=section.size,
        max_entries=1,
        flags=flags,
        initial_data=None if section.type == "SHT_NOBITS" else section.data,
        frozen=read_only,
        value_type=value_type,
        section=section.name,
    )
