"""CO-RE access specs: what a relocation's access string means in a BTF.

A relocation names a root type and an access string such as `0:1:2:3`.
As libbpf's `bpf_core_parse_spec`, the string becomes a *low-level* spec
(`raw`, one index per step, anonymous members included) and a
*high-level* one (`accessors`: the named members and array indices only),
with the bit offset of the accessed field from the root pointer.
`match_spec` finds the same path in a candidate target type, member by
member *name* (looking through anonymous structs and unions), as
`bpf_core_spec_match` does; enumerator relocations match by enumerator
name up to the flavor suffix. `format_spec` prints a spec as libbpf logs
it (`<byte_off> [7] struct foo.a[3].b (0:1:2:3 @ offset 20)`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LoadError
from .core_match import (
    essential_name,
    fields_are_compat,
    skip_mods,
    types_are_compat,
    types_match,
)
from .ext import CoreReloKind
from .spec import Spec
from .types import Array, Enum, Enum64, Struct, Type, Union, Void

#: libbpf's BPF_CORE_SPEC_MAX_LEN: the longest access path.
MAX_SPEC_LEN = 64

FIELD_KINDS = frozenset(
    {
        CoreReloKind.FIELD_BYTE_OFFSET,
        CoreReloKind.FIELD_BYTE_SIZE,
        CoreReloKind.FIELD_EXISTS,
        CoreReloKind.FIELD_SIGNED,
        CoreReloKind.FIELD_LSHIFT_U64,
        CoreReloKind.FIELD_RSHIFT_U64,
    }
)
TYPE_KINDS = frozenset(
    {
        CoreReloKind.TYPE_ID_LOCAL,
        CoreReloKind.TYPE_ID_TARGET,
        CoreReloKind.TYPE_EXISTS,
        CoreReloKind.TYPE_MATCHES,
        CoreReloKind.TYPE_SIZE,
    }
)
ENUMVAL_KINDS = frozenset({CoreReloKind.ENUMVAL_EXISTS, CoreReloKind.ENUMVAL_VALUE})

#: libbpf's short names of the relocation kinds (`core_relo_kind_str`).
KIND_NAMES = {
    CoreReloKind.FIELD_BYTE_OFFSET: "byte_off",
    CoreReloKind.FIELD_BYTE_SIZE: "byte_sz",
    CoreReloKind.FIELD_EXISTS: "field_exists",
    CoreReloKind.FIELD_SIGNED: "signed",
    CoreReloKind.FIELD_LSHIFT_U64: "lshift_u64",
    CoreReloKind.FIELD_RSHIFT_U64: "rshift_u64",
    CoreReloKind.TYPE_ID_LOCAL: "local_type_id",
    CoreReloKind.TYPE_ID_TARGET: "target_type_id",
    CoreReloKind.TYPE_EXISTS: "type_exists",
    CoreReloKind.TYPE_MATCHES: "type_matches",
    CoreReloKind.TYPE_SIZE: "type_size",
    CoreReloKind.ENUMVAL_EXISTS: "enumval_exists",
    CoreReloKind.ENUMVAL_VALUE: "enumval_value",
}


def kind_name(kind: int) -> str:
    """libbpf's name of a relocation kind (`byte_off`, …; `unknown` otherwise)."""
    return KIND_NAMES.get(kind, "unknown")  # type: ignore[call-overload]


class CoreSpecError(LoadError):
    """A relocation whose access string does not fit its type (libbpf: -EINVAL)."""


@dataclass(frozen=True, slots=True)
class Accessor:
    """One high-level step: a named member of composite `type_id`, or an array index.

    For an array step (`name` None), `type_id` is the element type and
    `index` the element; the first step (`&p[0]`) is an array step of the
    root type.
    """

    type_id: int
    index: int
    name: str | None = None


@dataclass(frozen=True, slots=True)
class AccessSpec:
    """A relocation's access path resolved in one BTF (`struct bpf_core_spec`)."""

    btf: Spec
    root_type_id: int
    kind: int
    accessors: tuple[Accessor, ...] = ()
    raw: tuple[int, ...] = ()
    bit_offset: int = 0


def resolve_size(btf: Spec, type_id: int) -> int:
    """`btf__resolve_size`; CoreSpecError for a type without a size."""
    try:
        return btf.size_of(type_id)
    except LoadError as error:
        raise CoreSpecError(str(error)) from None


def _members(record: Type) -> tuple:
    return record.members if isinstance(record, (Struct, Union)) else ()


def parse_spec(btf: Spec, type_id: int, access: str, kind: int) -> AccessSpec:
    """The local spec of a relocation (`bpf_core_parse_spec`); CoreSpecError if malformed."""

    def bad(reason: str) -> CoreSpecError:
        return CoreSpecError(
            f"parsing [{type_id}] {_kind_str(btf, type_id)} {_name_or_anon(btf, type_id)} "
            f"+ {access} failed: {reason}"
        )

    if not access or access.startswith(":"):
        raise bad("empty access string")
    if kind in TYPE_KINDS:
        if access != "0":
            raise bad("a type relocation's access string must be 0")
        return AccessSpec(btf, type_id, kind)
    try:
        raw = tuple(int(part) for part in access.split(":"))
    except ValueError:
        raise bad("access string is not a list of numbers") from None
    if any(i < 0 for i in raw):
        raise bad("negative index")
    if len(raw) > MAX_SPEC_LEN:
        raise bad("access path too long")
    current, record = skip_mods(btf, type_id)
    accessors = [Accessor(current, raw[0])]
    if kind in ENUMVAL_KINDS:
        if not isinstance(record, (Enum, Enum64)) or len(raw) > 1 or raw[0] >= len(record.values):
            raise bad("not an enumerator of an enum")
        accessors[0] = Accessor(current, raw[0], record.values[raw[0]].name)
        return AccessSpec(btf, type_id, kind, tuple(accessors), raw)
    if kind not in FIELD_KINDS:
        raise bad(f"unknown relocation kind {kind}")
    bit_offset = raw[0] * resolve_size(btf, current) * 8
    for step, index in enumerate(raw[1:], start=1):
        current, record = skip_mods(btf, current)
        if isinstance(record, (Struct, Union)):
            if index >= len(record.members):
                raise bad(f"member #{index} out of range")
            member = record.members[index]
            bit_offset += member.bit_offset
            if member.name:
                accessors.append(Accessor(current, index, member.name))
            current = member.type
        elif isinstance(record, Array):
            element, _ = skip_mods(btf, record.type)
            if not _is_flex(btf, accessors[-1], record) and index >= record.nelems:
                raise bad(f"index {index} out of array bounds")
            accessors.append(Accessor(element, index))
            current = element
            bit_offset += index * resolve_size(btf, element) * 8
        else:
            raise bad(
                f"step {step} reaches type [{current}] of unexpected kind {_kind_str(btf, current)}"
            )
    return AccessSpec(btf, type_id, kind, tuple(accessors), raw, bit_offset)


def _is_flex(btf: Spec, last: Accessor, array: Array) -> bool:
    # A flexible array: zero-length, the last member of the enclosing struct.
    if last.name is None or array.nelems > 0:
        return False
    return last.index == len(_members(btf.type_by_id(last.type_id))) - 1


def match_spec(local: AccessSpec, target: Spec, target_id: int) -> AccessSpec | None:
    """The target spec of `local` in candidate `target_id`, or None (`bpf_core_spec_match`)."""
    kind = local.kind
    if kind in TYPE_KINDS:
        check = types_match if kind == CoreReloKind.TYPE_MATCHES else types_are_compat
        ok = check(local.btf, local.root_type_id, target, target_id)
        return AccessSpec(target, target_id, kind) if ok else None
    if kind in ENUMVAL_KINDS:
        enum_id, record = skip_mods(target, target_id)
        if not isinstance(record, (Enum, Enum64)):
            return None
        wanted = essential_name(local.accessors[0].name or "")
        for index, value in enumerate(record.values):
            if essential_name(value.name) == wanted:
                return AccessSpec(
                    target, target_id, kind, (Accessor(enum_id, index, value.name),), (index,)
                )
        return None
    builder = _TargetBuilder(target)
    current = target_id
    for step, acc in enumerate(local.accessors):
        current, record = skip_mods(target, current)
        if acc.name is not None:
            found = builder.match_member(local.btf, acc, current)
            if found is None:
                return None
            current = found
            continue
        if step > 0:
            if not isinstance(record, Array):
                return None
            if not _is_flex(target, builder.accessors[-1], record) and acc.index >= record.nelems:
                return None
            current, _ = skip_mods(target, record.type)
        builder.push_raw(acc.index)
        builder.accessors.append(Accessor(current, acc.index))
        builder.bit_offset += acc.index * resolve_size(target, current) * 8
    return AccessSpec(
        target,
        target_id,
        kind,
        tuple(builder.accessors),
        tuple(builder.raw),
        builder.bit_offset,
    )


class _TargetBuilder:
    """The target spec under construction, with libbpf's speculative push and pop."""

    def __init__(self, target: Spec):
        self.target = target
        self.accessors: list[Accessor] = []
        self.raw: list[int] = []
        self.bit_offset = 0

    def push_raw(self, index: int) -> None:
        if len(self.raw) >= MAX_SPEC_LEN:
            raise CoreSpecError("CO-RE access path too deep in the target BTF")
        self.raw.append(index)

    def match_member(self, local: Spec, acc: Accessor, target_id: int) -> int | None:
        """Find local member `acc` in target composite `target_id` (`bpf_core_match_member`).

        Returns the matched member's type id (the next step's type), or None.
        """
        target_id, record = skip_mods(self.target, target_id)
        if not isinstance(record, (Struct, Union)):
            return None
        local_member = _members(local.type_by_id(acc.type_id))[acc.index]
        for index, member in enumerate(record.members):
            self.push_raw(index)
            self.bit_offset += member.bit_offset
            if not member.name:
                # An anonymous struct or union: its members are the parent's.
                found = self.match_member(local, acc, member.type)
                if found is not None:
                    return found
            elif member.name == local_member.name:
                if not fields_are_compat(local, local_member.type, self.target, member.type):
                    self.bit_offset -= member.bit_offset
                    self.raw.pop()
                    return None
                self.accessors.append(Accessor(target_id, index, member.name))
                return member.type
            self.bit_offset -= member.bit_offset
            self.raw.pop()
        return None


# -- formatting -----------------------------------------------------------------------


def _kind_str(btf: Spec, type_id: int) -> str:
    record = btf.types[type_id] if 0 <= type_id < len(btf.types) else Void()
    return "void" if isinstance(record, Void) else record.kind.name.lower()


def _name_or_anon(btf: Spec, type_id: int) -> str:
    record = btf.types[type_id] if 0 <= type_id < len(btf.types) else Void()
    return record.name or "<anon>"


def format_spec(spec: AccessSpec) -> str:
    """A spec as libbpf prints it (`bpf_core_format_spec`)."""
    btf, root = spec.btf, spec.root_type_id
    text = f"<{kind_name(spec.kind)}> [{root}] {_kind_str(btf, root)} {_name_or_anon(btf, root)}"
    if spec.kind in TYPE_KINDS:
        return text
    if spec.kind in ENUMVAL_KINDS:
        _, record = skip_mods(btf, root)
        value = record.values[spec.raw[0]]  # type: ignore[union-attr]
        shown = value.value
        if isinstance(record, Enum) and not record.signed:
            shown &= 0xFFFFFFFF  # BTF_KIND_ENUM values are stored as s32
        return f"{text}::{value.name} = {shown}"
    return f"{text}{access_path(spec)} ({raw_path(spec)})"


def access_path(spec: AccessSpec) -> str:
    """The C view of a field spec's accessors (`.a[3].b`)."""
    out = ""
    for step, acc in enumerate(spec.accessors):
        if acc.name is not None:
            out += f".{acc.name}"
        elif step > 0 or acc.index > 0:
            out += f"[{acc.index}]"
    return out


def raw_path(spec: AccessSpec) -> str:
    """The low-level path and bit offset as libbpf prints them (`0:1:2 @ offset 8`)."""
    raw = ":".join(str(i) for i in spec.raw)
    if spec.bit_offset % 8:
        return f"{raw} @ offset {spec.bit_offset // 8}.{spec.bit_offset % 8}"
    return f"{raw} @ offset {spec.bit_offset // 8}"
