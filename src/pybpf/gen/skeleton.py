"""`pybpf gen skeleton`: the text of a typed Python module for one object, like bpftool's.

`bpftool gen skeleton` writes a C header with `struct <name>_bpf` (its
`maps`, `progs`, and `rodata`/`data`/`bss` pointers to structs mirroring the
sections) and `__open`/`__load`/`__destroy`. `render_skeleton(spec)` writes
the Python counterpart, built on `pybpf.skeleton`:

* a ctypes class for every struct and union a map key or value or a global
  variable uses (nested ones too), named after its C name (an anonymous
  one after where it is used), with BTF's exact layout (packed, explicit
  padding; bitfields and enum members as properties), and an `IntEnum`
  for every enum;
* `<Name>Maps`, `<Name>Progs` and one class per global-data section
  (`<Name>Rodata`, `<Name>Bss`, `<Name>DataCustom` for `.data.custom` …),
  whose attributes are the maps (typed views), programs and variables;
* `<Name>Skeleton` with `open()` / `open_and_load()` / `load()` /
  `close()`, recording the object's path and `pybpf.skeleton.fingerprint`.

As in bpftool, static variables are left out (they are private to the
object), global-data maps appear under `maps` by their section idents
(`maps.rodata`, `maps.data_custom`), and sections are attributes
(`skel.rodata`, `skel.data_custom`). Everything here is rendering: the
behaviour lives in `pybpf.skeleton`.
"""

from __future__ import annotations

import json
import keyword
import os
import re
from pathlib import Path

from ..btf.spec import MAX_RESOLVE_DEPTH, Spec
from ..btf.types import (
    QUALIFIERS,
    Array,
    Enum,
    Enum64,
    Float,
    Int,
    IntEncoding,
    Linkage,
    Ptr,
    Struct,
    Type,
    Typedef,
    Union,
)
from ..elf.map_types import MapType
from ..elf.specs import MapSpec, ObjectSpec
from ..skeleton import (
    Part,
    Section,
    Skeleton,
    StructBase,
    entry_programs,
    fingerprint,
    is_section,
    section_variables,
)

__all__ = ["default_name", "generate_skeleton", "render_skeleton"]

TYPED_FAMILIES = {
    MapType.HASH,
    MapType.ARRAY,
    MapType.LRU_HASH,
    MapType.LPM_TRIE,
}
PERCPU_FAMILIES = {MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH}

_INT_CTYPES = {1: "int8", 2: "int16", 4: "int32", 8: "int64"}
_AMBIGUOUS = {"l", "O", "I"}  # pycodestyle E741/E742/E743


def default_name(path: str | os.PathLike[str]) -> str:
    """bpftool's skeleton name for an object file: its base name up to the first dot."""
    return _identifier(Path(path).name.split(".")[0] or "bpf")


def _identifier(text: str) -> str:
    name = re.sub(r"\W", "_", text)
    if name.startswith("__"):  # Python would mangle it inside a class body
        name = "_" + name.lstrip("_")
    return name if name.isidentifier() else f"_{name}"


def _camel(name: str) -> str:
    camel = "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)
    return camel if camel.isidentifier() else f"Bpf{camel}"


def _section_ident(section: str) -> str:
    """bpftool's ident of a global-data section: `.data.custom` -> `data_custom`."""
    return _identifier(section.lstrip(".").replace(".", "_"))


def _attribute(name: str, reserved: set[str]) -> str:
    """A Python attribute for C name `name`, clear of keywords and the names in `reserved`."""
    out = _identifier(name)
    while keyword.iskeyword(out) or out in reserved:
        out += "_"
    return out


def _noqa(name: str) -> str:
    return "  # noqa: E741" if name in _AMBIGUOUS else ""


def _reserved(*classes: type) -> set[str]:
    return {name for cls in classes for name in dir(cls)}


_STRUCT_RESERVED = _reserved(StructBase) | {"MEMBERS"}
_SECTION_RESERVED = _reserved(Section) | {"SECTION"}
_PART_RESERVED = _reserved(Part)
_SKELETON_RESERVED = _reserved(Skeleton) | {"obj", "maps", "progs"}


class _Types:
    """The generated classes of one object's BTF types, in dependency order."""

    def __init__(self, btf: Spec | None, taken: set[str]):
        self.btf = btf
        self.taken = taken  # module-level names already used
        self.names: dict[int, str] = {}  # type id -> class name
        self.members: dict[int, tuple[str, ...]] = {}  # struct/union id -> public names
        self.blocks: list[str] = []
        self.uses_enum = False
        self.uses_ctypes = False
        self.uses_builtins = False
        self.aliases: dict[str, str] = {}  # class name -> module-level alias

    def unshadowed(self, hint: str, members: set[str]) -> str:
        """`hint` spelled so that no member name of the class being written hides it."""
        if hint not in members:
            return hint
        if hint in ("int", "bytes", "float", "bool"):
            self.uses_builtins = True
            return f"builtins.{hint}"
        if hint not in self.aliases:
            alias = f"_{hint}"
            while alias in self.taken:
                alias += "_"
            self.taken.add(alias)
            self.aliases[hint] = alias
            self.blocks.append(f"{alias} = {hint}")
        return self.aliases[hint]

    # -- resolving ---------------------------------------------------------------

    def resolve(self, type_id: int) -> tuple[int, Type, str]:
        """`(id, record, typedef name)` with typedefs and qualifiers stripped."""
        assert self.btf is not None
        typedef = ""
        for _ in range(MAX_RESOLVE_DEPTH):
            record = self.btf.type_by_id(type_id)
            if not isinstance(record, QUALIFIERS):
                return type_id, record, typedef
            if isinstance(record, Typedef) and not typedef:
                typedef = record.name
            type_id = record.type
        raise ValueError(f"BTF type {type_id}: qualifier chain too long")

    def class_name(self, type_id: int, context: str) -> str:
        """The class of struct/union/enum `type_id` (emitted on first use)."""
        real, record, typedef = self.resolve(type_id)
        if real not in self.names:
            wanted = record.name or typedef or f"{context}_t"
            name = _identifier(wanted)
            while name in self.taken or keyword.iskeyword(name):
                name += "_"
            self.taken.add(name)
            self.names[real] = name
            if isinstance(record, (Enum, Enum64)):
                self._emit_enum(name, record)
            elif isinstance(record, (Struct, Union)):
                self._emit_aggregate(real, name, record)
        return self.names[real]

    # -- what one type becomes ------------------------------------------------------

    def ctype(self, type_id: int, context: str) -> str:
        """The ctypes expression of `type_id` as a struct field."""
        self.uses_ctypes = True
        _, record, _ = self.resolve(type_id)
        if isinstance(record, Int):
            return _int_ctype(record)
        if isinstance(record, (Enum, Enum64)):
            return _plain_int_ctype(record.size, record.signed)
        if isinstance(record, Ptr):
            return "ctypes.c_uint64"
        if isinstance(record, Float):
            return {4: "ctypes.c_float", 8: "ctypes.c_double"}.get(
                record.size, f"(ctypes.c_uint8 * {record.size})"
            )
        if isinstance(record, Array):
            return f"({self.ctype(record.type, context)} * {record.nelems})"
        if isinstance(record, (Struct, Union)):
            return self.class_name(type_id, context)
        assert self.btf is not None
        return f"(ctypes.c_uint8 * {self.btf.size_of(type_id)})"

    def field_hint(self, type_id: int, context: str) -> str:
        """The type of a struct field as ctypes hands it out."""
        _, record, _ = self.resolve(type_id)
        if isinstance(record, Int):
            if record.encoding & IntEncoding.BOOL:
                return "bool"
            if _is_char(record):
                return "bytes"
            return "int" if record.size in _INT_CTYPES else "ctypes.Array[ctypes.c_uint8]"
        if isinstance(record, (Enum, Enum64, Ptr)):
            return "int"
        if isinstance(record, Float):
            return "float" if record.size in (4, 8) else "ctypes.Array[ctypes.c_uint8]"
        if isinstance(record, Array):
            _, element, _ = self.resolve(record.type)
            if isinstance(element, Int) and _is_char(element):
                return "bytes"
            return self._array_hint(type_id, context)
        if isinstance(record, (Struct, Union)):
            return self.class_name(type_id, context)
        return "ctypes.Array[ctypes.c_uint8]"

    def _array_hint(self, type_id: int, context: str) -> str:
        _, record, _ = self.resolve(type_id)
        if isinstance(record, Array):
            return f"ctypes.Array[{self._array_hint(record.type, context)}]"
        inner = self.ctype(type_id, context)
        return "ctypes.Array[ctypes.c_uint8]" if "*" in inner else inner

    def codec(self, type_id: int, context: str) -> tuple[str, str]:
        """`(codec expression, value type)` of `type_id` as a whole map key, value or variable."""
        _, record, _ = self.resolve(type_id)
        assert self.btf is not None
        if isinstance(record, Int):
            if record.encoding & IntEncoding.BOOL:
                return "_skel.boolean()", "bool"
            signed = ", signed=True" if record.signed else ""
            return f"_skel.integer({record.size}{signed})", "int"
        if isinstance(record, Ptr):
            return "_skel.integer(8)", "int"
        if isinstance(record, Float) and record.size in (4, 8):
            return f"_skel.real({record.size})", "float"
        if isinstance(record, (Enum, Enum64)):
            name = self.class_name(type_id, context)
            signed = ", signed=True" if record.signed else ""
            return f"_skel.enum({name}, {record.size}{signed})", name
        if isinstance(record, (Struct, Union)):
            name = self.class_name(type_id, context)
            return f"_skel.struct({name})", name
        if isinstance(record, Array):
            _, element, _ = self.resolve(record.type)
            if isinstance(element, Int) and _is_char(element):
                return f"_skel.chars({record.nelems})", "bytes"
            inner, hint = self.codec(record.type, context)
            return f"_skel.array({inner}, {record.nelems})", f"list[{hint}]"
        return f"_skel.raw({self.btf.size_of(type_id)})", "bytes"

    # -- class definitions ------------------------------------------------------------

    def _emit_enum(self, name: str, record: Enum | Enum64) -> None:
        self.uses_enum = True
        lines = [f"class {name}(enum.IntEnum):", f'    """enum {record.name or "(anon)"}."""', ""]
        seen: set[str] = set()
        for value in record.values:
            member = _attribute(value.name, seen | {"name", "value", "mro"})
            seen.add(member)
            lines.append(f"    {member} = {value.value}{_noqa(member)}")
        if not record.values:
            lines.append("    pass")
        self.blocks.append("\n".join(lines))

    def _emit_aggregate(self, type_id: int, name: str, record: Struct | Union) -> None:
        assert self.btf is not None
        self.uses_ctypes = True
        is_union = isinstance(record, Union)
        fields: list[tuple[str, str]] = []
        hints: list[tuple[str, str]] = []
        properties: list[str] = []
        public: list[str] = []
        anonymous: list[str] = []
        used = set(_STRUCT_RESERVED)
        position = 0

        def pad_to(offset: int) -> None:
            nonlocal position
            if offset > position:
                fields.append((f"_pad_{position}", f"ctypes.c_uint8 * {offset - position}"))
                position = offset

        members = list(record.members)
        if not is_union:
            members.sort(key=lambda m: m.bit_offset)
        names = {_identifier(m.name) for m in members if m.name}
        index = 0
        while index < len(members):
            member = members[index]
            context = f"{name}_{member.name or f'anon{index}'}"
            start = member.bit_offset // 8
            if member.bitfield_size:
                run = [member]
                end = (member.bit_offset + member.bitfield_size + 7) // 8
                while not is_union and index + len(run) < len(members):
                    after = members[index + len(run)]
                    if not after.bitfield_size or after.bit_offset // 8 > end:
                        break
                    run.append(after)
                    end = max(end, (after.bit_offset + after.bitfield_size + 7) // 8)
                if start < position and not is_union:
                    raise ValueError(f"struct {record.name}: overlapping bitfields")
                if not is_union:
                    pad_to(start)
                storage = f"_bits_{start}" if not is_union else f"_bits_{member.name}"
                fields.append((storage, f"ctypes.c_uint8 * {end - start}"))
                for bit in run:
                    _, inner, _ = self.resolve(bit.type)
                    signed = isinstance(inner, Int) and inner.signed
                    attr = _attribute(bit.name, used)
                    used.add(attr)
                    public.append(attr)
                    shift = bit.bit_offset - 8 * start
                    properties.append(
                        f"    @property\n"
                        f"    def {attr}(self) -> int:{_noqa(attr).replace('E741', 'E743')}\n"
                        f"        return _skel.get_bits(self.{storage}, {shift},"
                        f" {bit.bitfield_size}, {signed})\n\n"
                        f"    @{attr}.setter\n"
                        f"    def {attr}(self, value: int) -> None:\n"
                        f"        _skel.set_bits(self.{storage}, {shift},"
                        f" {bit.bitfield_size}, value)"
                    )
                if not is_union:
                    position = end
                index += len(run)
                continue
            if not is_union:
                if member.bit_offset % 8 or start < position:
                    raise ValueError(f"struct {record.name}: member {member.name} is misplaced")
                pad_to(start)
            size = self.btf.size_of(member.type)
            _, inner, _ = self.resolve(member.type)
            if not member.name and isinstance(inner, (Struct, Union)):
                attr = _attribute(f"_anon{index}", used)
                used.add(attr)
                fields.append((attr, self.ctype(member.type, context)))
                anonymous.append(attr)
                public.extend(self.members.get(self.resolve(member.type)[0], ()))
            elif isinstance(inner, (Enum, Enum64)):
                attr = _attribute(member.name or f"_anon{index}", used)
                used.add(attr)
                enum_name = self.unshadowed(self.class_name(member.type, context), names)
                storage = f"_raw_{attr}"
                fields.append((storage, self.ctype(member.type, context)))
                public.append(attr)
                properties.append(
                    f"    @property\n"
                    f"    def {attr}(self) -> {enum_name}:{_noqa(attr).replace('E741', 'E743')}\n"
                    f"        return _skel.enum_value({enum_name}, self.{storage})\n\n"
                    f"    @{attr}.setter\n"
                    f"    def {attr}(self, value: int) -> None:\n"
                    f"        self.{storage} = int(value)"
                )
            else:
                attr = _attribute(member.name or f"_anon{index}", used)
                used.add(attr)
                fields.append((attr, self.ctype(member.type, context)))
                hint = self.field_hint(member.type, context)
                hints.append((attr, self.unshadowed(hint, names)))
                public.append(attr)
            if not is_union:
                position = start + size
            index += 1
        if is_union:
            fields.append(("_size_", f"ctypes.c_uint8 * {record.size}"))
        else:
            pad_to(record.size)
        self.members[type_id] = tuple(public)
        kind = "union" if is_union else "struct"
        base = "_skel.UnionBase" if is_union else "_skel.StructBase"
        lines = [
            f"class {name}({base}):",
            f'    """{kind} {record.name or "(anon)"} ({record.size} bytes)."""',
            "",
            _tuple_line("MEMBERS", public),
        ]
        if anonymous:
            lines.append(_tuple_line("_anonymous_", anonymous))
        lines.append("    _fields_ = [")
        lines.extend(f'        ("{field}", {ctype}),' for field, ctype in fields)
        lines.append("    ]")
        lines.extend(f"    {attr}: {hint}{_noqa(attr)}" for attr, hint in hints)
        for block in properties:
            lines.append("")
            lines.append(block)
        self.blocks.append("\n".join(lines))


def _tuple_line(attr: str, names: list[str]) -> str:
    """`    attr = ("a", "b")`, one name a line when too long (as `ruff format` does)."""
    if len(names) == 1:
        return f'    {attr} = ("{names[0]}",)'
    line = f"    {attr} = (" + ", ".join(f'"{name}"' for name in names) + ")"
    if len(line) <= 100:
        return line
    return f"    {attr} = (\n" + "".join(f'        "{name}",\n' for name in names) + "    )"


def _is_char(record: Int) -> bool:
    return record.size == 1 and record.name == "char"


def _plain_int_ctype(size: int, signed: bool) -> str:
    if size not in _INT_CTYPES:
        return f"(ctypes.c_uint8 * {size})"
    return f"ctypes.c_{'' if signed else 'u'}{_INT_CTYPES[size]}"


def _int_ctype(record: Int) -> str:
    if record.encoding & IntEncoding.BOOL and record.size == 1:
        return "ctypes.c_bool"
    if _is_char(record):
        return "ctypes.c_char"
    return _plain_int_ctype(record.size, record.signed)


def _size_codec(size: int) -> tuple[str, str]:
    if size in _INT_CTYPES:
        return f"_skel.integer({size})", "int"
    return f"_skel.raw({size})", "bytes"


def _map_line(types: _Types, attr: str, spec: MapSpec) -> str:
    family = spec.type
    typed = family in TYPED_FAMILIES or family in PERCPU_FAMILIES
    if types.btf is None or not typed or not (spec.key_type or spec.value_type) or is_section(spec):
        return f'    {attr} = _skel.RawMapAttr("{spec.name}")'
    codecs = []
    for what, type_id, size in (
        ("key", spec.key_type, spec.key_size),
        ("value", spec.value_type, spec.value_size),
    ):
        codec = None
        if type_id and types.btf.size_of(type_id) == size:
            codec = types.codec(type_id, f"{spec.name}_{what}")
        codecs.append(codec or _size_codec(size))
    (key, key_hint), (value, value_hint) = codecs
    kind = "PerCpuMapAttr" if family in PERCPU_FAMILIES else "MapAttr"
    head = f"    {attr}: _skel.{kind}[{key_hint}, {value_hint}] = _skel.{kind}"
    return _call(head, [f'"{spec.name}"', key, value])


def _call(head: str, args: list[str], tail: str = "") -> str:
    """`head(args)` (head: `    name: T = func`) laid out as `ruff format` lays it out."""
    target, func = head.rsplit(" = ", 1)
    if len(f"{head}(") <= 100 or len(f"{head}({', '.join(args)}){tail}") <= 100:
        return _call_lines(head, args, tail, 4)
    return f"{target} = ({tail}\n{_call_lines('        ' + func, args, '', 8)}\n    )"


def _call_lines(head: str, args: list[str], tail: str, indent: int) -> str:
    one = f"{head}({', '.join(args)}){tail}"
    if len(one) <= 100:
        return one
    pad = " " * (indent + 4)
    middle = f"{pad}{', '.join(args)}"
    if len(middle) <= 100:
        return f"{head}({tail}\n{middle}\n{' ' * indent})"
    lines = "".join(f"{pad}{arg},\n" for arg in args)
    return f"{head}({tail}\n{lines}{' ' * indent})"


def render_skeleton(
    spec: ObjectSpec, *, name: str | None = None, object_path: str | None = None
) -> str:
    """The source text of the skeleton module of `spec`; see the module docstring.

    `name` (a Python identifier) names the classes (`xdp_counter` ->
    `XdpCounterSkeleton`); by default the object's file name, as bpftool's.
    `object_path` is the path `open()` uses by default (`spec.path` made
    absolute). `ValueError` for a name that is not an identifier.
    """
    name = name if name is not None else default_name(spec.path)
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"skeleton name {name!r} is not a Python identifier")
    camel = _camel(name)
    path = object_path if object_path is not None else os.path.abspath(spec.path)
    file_name = Path(spec.path).name
    sections = [m for m in spec.maps.values() if is_section(m)]
    part_names = {
        f"{camel}Skeleton",
        f"{camel}Maps",
        f"{camel}Progs",
        *(f"{camel}{_camel(_section_ident(m.name))}" for m in sections),
    }
    types = _Types(spec.btf, {"ctypes", "enum", "_skel", "annotations", *part_names})

    # maps: user maps by name, global data by section ident (bpftool's maps.rodata)
    map_lines = []
    used = set(_PART_RESERVED)
    for map_spec in spec.maps.values():
        wanted = _section_ident(map_spec.name) if is_section(map_spec) else map_spec.name
        attr = _attribute(wanted, used)
        used.add(attr)
        map_lines.append(_map_line(types, attr, map_spec))

    prog_lines = []
    used = set(_PART_RESERVED)
    for program in entry_programs(spec):
        attr = _attribute(program, used)
        used.add(attr)
        prog_lines.append(f'    {attr} = _skel.ProgAttr("{program}")')

    section_blocks = []
    parts = [("maps", f"{camel}Maps"), ("progs", f"{camel}Progs")]
    used_parts = set(_SKELETON_RESERVED)
    for map_spec in sections:
        variables = [
            (var_name, type_id, offset)
            for var_name, (type_id, offset, _size, linkage) in section_variables(
                spec, map_spec.name
            ).items()
            if linkage != Linkage.STATIC
        ]
        if not variables:
            continue
        ident = _section_ident(map_spec.name)
        class_name = f"{camel}{_camel(ident)}"
        lines = [
            f"class {class_name}(_skel.Section):",
            f'    """The variables of {map_spec.name} (`skel.{ident}`)."""',
            "",
            f'    SECTION = "{map_spec.name}"',
        ]
        used = set(_SECTION_RESERVED)
        for var_name, type_id, offset in sorted(variables, key=lambda v: v[2]):
            attr = _attribute(var_name, used)
            used.add(attr)
            codec, hint = types.codec(type_id, var_name)
            head = f"    {attr}: _skel.Var[{hint}] = _skel.Var"
            lines.append(_call(head, [f'"{var_name}"', str(offset), codec], _noqa(attr)))
        section_blocks.append("\n".join(lines))
        attr = _attribute(ident, used_parts)
        used_parts.add(attr)
        parts.append((attr, class_name))

    out = [
        f'"""Skeleton of {file_name}, written by `pybpf gen skeleton` (regenerate, do not edit).',
        "",
        f"`with {camel}Skeleton.open() as skel: …` opens the object; see `pybpf.skeleton`.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
    ]
    imports = []
    if types.uses_builtins:
        imports.append("import builtins")
    if types.uses_ctypes:
        imports.append("import ctypes")
    if types.uses_enum:
        imports.append("import enum")
    if imports:
        out.extend([*imports, ""])
    out.extend(["from pybpf import skeleton as _skel", ""])
    for block in types.blocks:
        out.extend(["", block, ""])
    maps_doc = f'    """The maps of {file_name} (`skel.maps`)."""'
    progs_doc = f'    """The programs of {file_name} (`skel.progs`)."""'
    for class_name, doc, lines in (
        (f"{camel}Maps", maps_doc, map_lines),
        (f"{camel}Progs", progs_doc, prog_lines),
    ):
        out.extend(["", f"class {class_name}(_skel.Part):", doc])
        if lines:
            out.extend(["", *lines])
        out.append("")
    for block in section_blocks:
        out.extend(["", block, ""])
    out.extend(
        [
            "",
            f"class {camel}Skeleton(_skel.Skeleton):",
            f'    """{file_name}: `open()` (the object below by default), `load()`, `close()`."""',
            "",
            f"    OBJECT_PATH = {json.dumps(path)}",
            f'    FINGERPRINT = "{fingerprint(spec)}"',
            "    PARTS = {",
        ]
    )
    out.extend(f'        "{attr}": {class_name},' for attr, class_name in parts)
    out.append("    }")
    out.append("")
    out.extend(f"    {attr}: {class_name}" for attr, class_name in parts)
    return "\n".join(out) + "\n"


def generate_skeleton(path: str | os.PathLike[str], *, name: str | None = None) -> str:
    """The skeleton module text of the object file at `path` (see `render_skeleton`)."""
    return render_skeleton(ObjectSpec.from_file(path), name=name)
