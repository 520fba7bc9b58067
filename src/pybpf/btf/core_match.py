"""CO-RE candidate matching: which target types may stand for a local type.

libbpf's rules (tools/lib/bpf/relo_core.c and libbpf.c): a candidate is a
target type of a compatible kind whose *essential* name equals the local
type's, the essential name being the name without its last `___flavor`
suffix (`task_struct___v1` → `task_struct`). Candidates are then checked
structurally: `types_are_compat` for type-based relocations,
`fields_are_compat` for each field on a field access path, `types_match`
for `bpf_core_type_matches`. Modifiers (const, volatile, restrict, type
tags) and typedefs are looked through everywhere except in the kind check
of the root type.

Functions here return True/False where libbpf returns 1/0, and raise
`CoreMatchError` where libbpf returns a negative error.
"""

from __future__ import annotations

import weakref

from ..errors import LoadError
from .spec import Spec
from .types import (
    QUALIFIERS,
    Array,
    Enum,
    Enum64,
    Float,
    FuncProto,
    Fwd,
    Int,
    Kind,
    Ptr,
    Struct,
    Type,
    Union,
    Void,
)

#: libbpf's bound on type chains and recursion while matching.
MAX_DEPTH = 32


class CoreMatchError(LoadError):
    """Malformed BTF met while matching (libbpf's -EINVAL during a candidate check)."""


def essential_name(name: str) -> str:
    """`name` without its flavor suffix: the part before the last `X___Y` separator.

    As libbpf's `bpf_core_essential_name_len`: the separator is three
    underscores with a non-underscore on both sides.
    """
    for i in range(len(name) - 5, -1, -1):
        if name[i] != "_" and name[i + 1 : i + 4] == "___" and name[i + 4] != "_":
            return name[: i + 1]
    return name


def _is_enum(record: Type) -> bool:
    return isinstance(record, (Enum, Enum64))


def _is_composite(record: Type) -> bool:
    return isinstance(record, (Struct, Union))


def kinds_compatible(a: Type, b: Type) -> bool:
    """libbpf's `btf_kind_core_compat`: the same kind, or enum and enum64."""
    return a.kind == b.kind or (_is_enum(a) and _is_enum(b))


def skip_mods(spec: Spec, type_id: int) -> tuple[int, Type]:
    """`(id, record)` after typedefs and modifiers (`skip_mods_and_typedefs`)."""
    for _ in range(MAX_DEPTH):
        record = spec.type_by_id(type_id)
        if not isinstance(record, QUALIFIERS):
            return type_id, record
        type_id = record.type
    raise CoreMatchError(f"{spec.where}: BTF type {type_id}: modifier chain too long")


# -- candidates ------------------------------------------------------------------

_indexes: weakref.WeakKeyDictionary[Spec, dict[str, list[int]]] = weakref.WeakKeyDictionary()


def _essential_index(spec: Spec) -> dict[str, list[int]]:
    """Type ids of `spec` by essential name, built once per spec."""
    index = _indexes.get(spec)
    if index is None:
        index = {}
        for name in spec.names():
            index.setdefault(essential_name(name), []).extend(spec.ids_by_name(name))
        for ids in index.values():
            ids.sort()
        _indexes[spec] = index
    return index


def find_candidates(local: Spec, local_id: int, target: Spec) -> list[int]:
    """Target type ids that may stand for local type `local_id` (`bpf_core_add_cands`).

    Same kind (enum and enum64 mix), non-empty name with the same essential
    name; in type-id order. The local type must be named.
    """
    record = local.type_by_id(local_id)
    wanted = essential_name(record.name)
    out = []
    for target_id in _essential_index(target).get(wanted, ()):
        candidate = target.types[target_id]
        if kinds_compatible(candidate, record):
            out.append(target_id)
    return out


# -- structural checks -------------------------------------------------------------


def _names_equal_essentially(a: str, b: str) -> bool:
    return essential_name(a) == essential_name(b)


def fields_are_compat(local: Spec, local_id: int, target: Spec, target_id: int) -> bool:
    """Whether a local field type may be read as the target's (`bpf_core_fields_are_compat`)."""
    for _ in range(MAX_DEPTH):
        local_id, lt = skip_mods(local, local_id)
        target_id, tt = skip_mods(target, target_id)
        if _is_composite(lt) and _is_composite(tt):
            return True
        if not kinds_compatible(lt, tt):
            return False
        if isinstance(lt, (Ptr, Float)):
            return True
        if isinstance(lt, (Fwd, Enum, Enum64)):
            # Either anonymous, or the same name up to the flavor.
            return not lt.name or not tt.name or _names_equal_essentially(lt.name, tt.name)
        if isinstance(lt, Int):
            # Old-style bitfield integers (a bit offset in the INT) are refused.
            return lt.bit_offset == 0 and tt.bit_offset == 0  # type: ignore[union-attr]
        if isinstance(lt, Array):
            local_id, target_id = lt.type, tt.type  # type: ignore[union-attr]
            continue
        return False
    raise CoreMatchError(f"{local.where}: BTF type {local_id}: type chain too long")


def types_are_compat(
    local: Spec, local_id: int, target: Spec, target_id: int, level: int = MAX_DEPTH
) -> bool:
    """Whether two types are compatible for type-based relocations (`__bpf_core_types_are_compat`)."""
    if level <= 0:
        raise CoreMatchError(f"{local.where}: BTF type {local_id}: nesting too deep")
    if not kinds_compatible(local.type_by_id(local_id), target.type_by_id(target_id)):
        return False
    for _ in range(MAX_DEPTH):
        local_id, lt = skip_mods(local, local_id)
        target_id, tt = skip_mods(target, target_id)
        if not kinds_compatible(lt, tt):
            return False
        if isinstance(lt, (Void, Struct, Union, Enum, Enum64, Fwd)):
            return True
        if isinstance(lt, Int):
            return lt.bit_offset == 0 and tt.bit_offset == 0  # type: ignore[union-attr]
        if isinstance(lt, (Ptr, Array)):
            local_id, target_id = lt.type, tt.type  # type: ignore[union-attr]
            continue
        if isinstance(lt, FuncProto):
            assert isinstance(tt, FuncProto)
            if len(lt.params) != len(tt.params):
                return False
            for lp, tp in zip(lt.params, tt.params, strict=True):
                if level <= 1:
                    raise CoreMatchError(f"{local.where}: BTF type {local_id}: nesting too deep")
                lp_id, _ = skip_mods(local, lp.type)
                tp_id, _ = skip_mods(target, tp.type)
                if not types_are_compat(local, lp_id, target, tp_id, level - 1):
                    return False
            local_id, target_id = lt.type, tt.type
            continue
        return False
    raise CoreMatchError(f"{local.where}: BTF type {local_id}: type chain too long")


def types_match(
    local: Spec,
    local_id: int,
    target: Spec,
    target_id: int,
    behind_ptr: bool = False,
    level: int = MAX_DEPTH,
) -> bool:
    """`bpf_core_type_matches`: the stricter relation of `__bpf_core_types_match`.

    Names match up to the flavor; ints match in size and signedness; arrays
    in length; enums in size and by every local enumerator's name;
    structs and unions by every local member (recursively, except behind a
    pointer, where a forward declaration of the right kind also matches);
    function prototypes argument by argument.
    """
    if level <= 0:
        raise CoreMatchError(f"{local.where}: BTF type {local_id}: nesting too deep")
    for _ in range(MAX_DEPTH):
        local_id, lt = skip_mods(local, local_id)
        target_id, tt = skip_mods(target, target_id)
        if not _names_match(lt.name, tt.name):
            return False
        lk, tk = lt.kind, tt.kind
        if isinstance(lt, Void):
            return lk == tk
        if isinstance(lt, Fwd):
            if behind_ptr and lk != tk:
                # A forward declaration's kind flag says struct (0) or union (1).
                return (tk == Kind.STRUCT and not lt.union) or (tk == Kind.UNION and lt.union)
            return lk == tk and lt.union == tt.union  # type: ignore[union-attr]
        if _is_enum(lt):
            return _is_enum(tt) and _enums_match(lt, tt)  # type: ignore[arg-type]
        if _is_composite(lt):
            if behind_ptr:
                if lk == tk:
                    return True
                return isinstance(tt, Fwd) and tt.union == (lk == Kind.UNION)
            if lk != tk:
                return False
            return _composites_match(local, lt, target, tt, behind_ptr, level)  # type: ignore[arg-type]
        if isinstance(lt, Int):
            return isinstance(tt, Int) and lt.size == tt.size and lt.signed == tt.signed
        if isinstance(lt, Ptr):
            if lk != tk:
                return False
            behind_ptr = True
            local_id, target_id = lt.type, tt.type  # type: ignore[union-attr]
            continue
        if isinstance(lt, Array):
            if lk != tk or lt.nelems != tt.nelems:  # type: ignore[union-attr]
                return False
            local_id, target_id = lt.type, tt.type  # type: ignore[union-attr]
            continue
        if isinstance(lt, FuncProto):
            if lk != tk or len(lt.params) != len(tt.params):  # type: ignore[union-attr]
                return False
            for lp, tp in zip(lt.params, tt.params, strict=True):  # type: ignore[union-attr]
                if not types_match(local, lp.type, target, tp.type, behind_ptr, level - 1):
                    return False
            local_id, target_id = lt.type, tt.type  # type: ignore[union-attr]
            continue
        return False
    raise CoreMatchError(f"{local.where}: BTF type {local_id}: type chain too long")


def _names_match(local_name: str, target_name: str) -> bool:
    # libbpf's bpf_core_names_match: an anonymous target matches only an anonymous local.
    if not target_name:
        return not local_name
    return _names_equal_essentially(local_name, target_name)


def _enums_match(lt: Enum | Enum64, tt: Enum | Enum64) -> bool:
    if lt.size != tt.size or len(lt.values) > len(tt.values):
        return False
    return all(any(_names_match(lv.name, tv.name) for tv in tt.values) for lv in lt.values)


def _composites_match(
    local: Spec,
    lt: Struct | Union,
    target: Spec,
    tt: Struct | Union,
    behind_ptr: bool,
    level: int,
) -> bool:
    if len(lt.members) > len(tt.members):
        return False
    for lm in lt.members:
        if not any(
            _names_match(lm.name, tm.name)
            and types_match(local, lm.type, target, tm.type, behind_ptr, level - 1)
            for tm in tt.members
        ):
            return False
    return True
