"""`Spec`: a parsed BTF type table with lookups by id and by name."""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import LoadError
from .types import (
    QUALIFIERS,
    Array,
    Datasec,
    Enum,
    Enum64,
    Float,
    Int,
    Ptr,
    Struct,
    Type,
    Union,
    Var,
    Void,
)

# Guards against reference cycles in malformed BTF (the kernel uses the same
# bound, MAX_RESOLVE_DEPTH, when it resolves modifiers).
MAX_RESOLVE_DEPTH = 32
POINTER_SIZE = 8


class Spec:
    """The types of one `.BTF` section (type id 0 is `void`).

    `types[i]` is the record of type id `i`; `strings` is the raw string
    section, kept so that `.BTF.ext` records can name files and lines.
    """

    def __init__(self, types: list[Type], strings: bytes, where: str = "<btf>"):
        self.types: list[Type] = types
        self.strings = strings
        self.where = where
        self._by_name: dict[str, list[int]] = {}
        for type_id, record in enumerate(types):
            if record.name:
                self._by_name.setdefault(record.name, []).append(type_id)

    def __len__(self) -> int:
        return len(self.types)

    def __iter__(self) -> Iterator[tuple[int, Type]]:
        return iter(enumerate(self.types))

    def __repr__(self) -> str:
        return f"<btf.Spec {self.where}: {len(self.types)} types>"

    def type_by_id(self, type_id: int) -> Type:
        """The type record of `type_id`; LoadError if out of range."""
        if not 0 <= type_id < len(self.types):
            raise LoadError(f"{self.where}: BTF type id {type_id} out of range")
        return self.types[type_id]

    def names(self) -> list[str]:
        """Every distinct non-empty type name."""
        return list(self._by_name)

    def ids_by_name(self, name: str) -> list[int]:
        """Every type id whose record is called `name`."""
        return list(self._by_name.get(name, ()))

    def type_by_name(self, name: str, kind: type | None = None) -> tuple[int, Type] | None:
        """The first `(id, type)` called `name` (optionally of class `kind`)."""
        for type_id in self._by_name.get(name, ()):
            record = self.types[type_id]
            if kind is None or isinstance(record, kind):
                return type_id, record
        return None

    def string(self, offset: int) -> str:
        """The NUL-terminated string at `offset` of the string section."""
        return read_string(self.strings, offset, self.where)

    def skip_qualifiers(self, type_id: int) -> int:
        """Follow typedefs and cv-qualifiers from `type_id` to the real type."""
        for _ in range(MAX_RESOLVE_DEPTH):
            record = self.type_by_id(type_id)
            if not isinstance(record, QUALIFIERS):
                return type_id
            type_id = record.type
        raise LoadError(f"{self.where}: BTF type {type_id}: qualifier chain too long")

    def resolve(self, type_id: int) -> Type:
        """The record of `type_id` with typedefs and qualifiers removed."""
        return self.type_by_id(self.skip_qualifiers(type_id))

    def size_of(self, type_id: int) -> int:
        """Size in bytes of `type_id`, resolving typedefs, modifiers, arrays and vars."""
        for _ in range(MAX_RESOLVE_DEPTH):
            record = self.resolve(type_id)
            if isinstance(record, (Int, Struct, Union, Enum, Enum64, Float, Datasec)):
                return record.size
            if isinstance(record, Ptr):
                return POINTER_SIZE
            if isinstance(record, Array):
                return record.nelems * self.size_of(record.type)
            if isinstance(record, Var):
                type_id = record.type
                continue
            if isinstance(record, Void):
                return 0
            raise LoadError(f"{self.where}: BTF type {type_id} ({record.kind.name}) has no size")
        raise LoadError(f"{self.where}: BTF type {type_id}: type chain too long")

    def type_name(self, type_id: int) -> str:
        """A short C-like name of `type_id` (`struct foo`, `u32 *`, …)."""
        return _describe(self, type_id, 0)


def _describe(spec: Spec, type_id: int, depth: int) -> str:
    if depth > MAX_RESOLVE_DEPTH or not 0 <= type_id < len(spec.types):
        return f"<type {type_id}>"
    record = spec.types[type_id]
    if isinstance(record, Void):
        return "void"
    if isinstance(record, (Struct, Union, Enum, Enum64)):
        keyword = {"STRUCT": "struct", "UNION": "union"}.get(record.kind.name, "enum")
        return f"{keyword} {record.name or '(anon)'}"
    if isinstance(record, Ptr):
        return _describe(spec, record.type, depth + 1) + " *"
    if isinstance(record, Array):
        return f"{_describe(spec, record.type, depth + 1)}[{record.nelems}]"
    if record.name:
        return record.name
    inner = getattr(record, "type", None)
    if inner is not None:
        return f"{record.kind.name.lower()} {_describe(spec, inner, depth + 1)}"
    return f"<{record.kind.name.lower()}>"


def read_string(table: bytes, offset: int, where: str) -> str:
    """The NUL-terminated string at `offset` of a BTF string table."""
    if not 0 <= offset < max(len(table), 1):
        raise LoadError(f"{where}: BTF string offset {offset} out of range")
    if not table:
        return ""
    end = table.find(b"\0", offset)
    if end < 0:
        raise LoadError(f"{where}: BTF string at offset {offset} is not terminated")
    try:
        return table[offset:end].decode()
    except UnicodeDecodeError as exc:
        raise LoadError(f"{where}: BTF string at offset {offset} is not UTF-8") from exc
