"""BTF type records: one frozen dataclass per BTF kind.

Types refer to each other by type id (an index into the BTF type table,
0 meaning `void`), never by Python reference, so that a record stays a plain
value: equal records compare equal and the table can be walked without
cycles. `btf.Spec` resolves ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Kind(IntEnum):
    """BTF_KIND_* values (linux/btf.h)."""

    VOID = 0
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


class IntEncoding(IntEnum):
    """BTF_INT_* encoding bits of an `Int`."""

    NONE = 0
    SIGNED = 1
    CHAR = 2
    BOOL = 4


class Linkage(IntEnum):
    """Linkage of a `Func` (BTF_FUNC_*) or `Var` (BTF_VAR_*)."""

    STATIC = 0
    GLOBAL = 1
    EXTERN = 2


@dataclass(frozen=True, slots=True)
class Void:
    """Type id 0: `void`."""

    name: str = ""
    kind = Kind.VOID


@dataclass(frozen=True, slots=True)
class Int:
    """An integer type of `size` bytes (`bits` wide, at `bit_offset`)."""

    name: str
    size: int
    encoding: int
    bit_offset: int
    bits: int
    kind = Kind.INT

    @property
    def signed(self) -> bool:
        """True for a signed integer."""
        return bool(self.encoding & IntEncoding.SIGNED)


@dataclass(frozen=True, slots=True)
class Ptr:
    """A pointer to `type`."""

    name: str
    type: int
    kind = Kind.PTR


@dataclass(frozen=True, slots=True)
class Array:
    """`nelems` elements of `type`, indexed by `index_type`."""

    name: str
    type: int
    index_type: int
    nelems: int
    kind = Kind.ARRAY


@dataclass(frozen=True, slots=True)
class Member:
    """A struct or union member; `bit_offset` from the start of the aggregate.

    `bitfield_size` is 0 for an ordinary member.
    """

    name: str
    type: int
    bit_offset: int
    bitfield_size: int = 0


@dataclass(frozen=True, slots=True)
class Struct:
    """A struct of `size` bytes."""

    name: str
    size: int
    members: tuple[Member, ...]
    kind = Kind.STRUCT


@dataclass(frozen=True, slots=True)
class Union:
    """A union of `size` bytes."""

    name: str
    size: int
    members: tuple[Member, ...]
    kind = Kind.UNION


@dataclass(frozen=True, slots=True)
class EnumValue:
    """One enumerator."""

    name: str
    value: int


@dataclass(frozen=True, slots=True)
class Enum:
    """An enum of `size` bytes (BTF_KIND_ENUM, 32-bit values)."""

    name: str
    size: int
    values: tuple[EnumValue, ...]
    signed: bool = False
    kind = Kind.ENUM


@dataclass(frozen=True, slots=True)
class Enum64:
    """An enum with 64-bit values (BTF_KIND_ENUM64)."""

    name: str
    size: int
    values: tuple[EnumValue, ...]
    signed: bool = False
    kind = Kind.ENUM64


@dataclass(frozen=True, slots=True)
class Fwd:
    """A forward declaration of a struct (or union when `union`)."""

    name: str
    union: bool = False
    kind = Kind.FWD


@dataclass(frozen=True, slots=True)
class Typedef:
    """`typedef type name`."""

    name: str
    type: int
    kind = Kind.TYPEDEF


@dataclass(frozen=True, slots=True)
class Volatile:
    """`volatile type`."""

    name: str
    type: int
    kind = Kind.VOLATILE


@dataclass(frozen=True, slots=True)
class Const:
    """`const type`."""

    name: str
    type: int
    kind = Kind.CONST


@dataclass(frozen=True, slots=True)
class Restrict:
    """`restrict type`."""

    name: str
    type: int
    kind = Kind.RESTRICT


@dataclass(frozen=True, slots=True)
class Func:
    """A function; `type` is its `FuncProto`."""

    name: str
    type: int
    linkage: int
    kind = Kind.FUNC


@dataclass(frozen=True, slots=True)
class Param:
    """A function parameter (unnamed in prototypes of pointers)."""

    name: str
    type: int


@dataclass(frozen=True, slots=True)
class FuncProto:
    """A function prototype; `type` is the return type."""

    name: str
    type: int
    params: tuple[Param, ...]
    kind = Kind.FUNC_PROTO


@dataclass(frozen=True, slots=True)
class Var:
    """A global variable of `type`."""

    name: str
    type: int
    linkage: int
    kind = Kind.VAR


@dataclass(frozen=True, slots=True)
class VarSecinfo:
    """Where a variable (`type` = its `Var` id) lives inside a `Datasec`."""

    type: int
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class Datasec:
    """An ELF data section (`.data`, `.maps`, …) and the variables in it."""

    name: str
    size: int
    vars: tuple[VarSecinfo, ...]
    kind = Kind.DATASEC


@dataclass(frozen=True, slots=True)
class Float:
    """A floating point type of `size` bytes."""

    name: str
    size: int
    kind = Kind.FLOAT


@dataclass(frozen=True, slots=True)
class DeclTag:
    """A tag on `type` (component_idx -1) or on one of its members/params."""

    name: str
    type: int
    component_idx: int
    kind = Kind.DECL_TAG


@dataclass(frozen=True, slots=True)
class TypeTag:
    """A tag on a pointee type (`__attribute__((btf_type_tag(...)))`)."""

    name: str
    type: int
    kind = Kind.TYPE_TAG


Type = (
    Void
    | Int
    | Ptr
    | Array
    | Struct
    | Union
    | Enum
    | Enum64
    | Fwd
    | Typedef
    | Volatile
    | Const
    | Restrict
    | Func
    | FuncProto
    | Var
    | Datasec
    | Float
    | DeclTag
    | TypeTag
)
"""Any BTF type record."""

# Kinds that only qualify or rename another type: sizes and member lookups
# look straight through them.
QUALIFIERS = (Typedef, Volatile, Const, Restrict, TypeTag)
