"""What generated skeletons (`pybpf gen skeleton`) are made of: the typed parts and their checks.

A skeleton module, as `pybpf.gen.skeleton` writes it, declares ctypes
classes for the object's BTF types and a `<Name>Skeleton` class built from
the pieces here, as a C skeleton from `bpftool gen skeleton` is built on
libbpf's `bpf_object_skeleton`:

* `Skeleton`: `open(path=None, **load_options)` (the object recorded at
  generation by default; `LoadError` when the object no longer matches the
  skeleton), `load()`, `close()` (`destroy()`), a context manager, and the
  typed parts `maps`, `progs`, `rodata`, `bss`, `data`, `data_<name>` …;
* `Var`: one global variable of a section (`skel.rodata.cfg_port = 80`),
  read from and written to the section's map through the object's
  `GlobalVariables` view, so a frozen `.rodata` refuses writes after load
  with `MapError(EPERM)`;
* `MapView` / `PerCpuMapView`: a map whose keys and values are the
  generated classes (a `Struct` instance, an `int`, an `IntEnum` …);
* codecs (`integer`, `enum`, `struct`, `array`, `chars` …) turning the
  bytes of one BTF type into the Python value the skeleton hands out.

`fingerprint(spec)` condenses what a skeleton relies on (maps, programs,
variables and the layout of every type they use) into one hash, recorded in
the generated module and compared when it opens an object.
"""

from __future__ import annotations

import ctypes
import enum as _enum
import errno
import hashlib
import os
import struct as _struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar, overload

from .btf.spec import MAX_RESOLVE_DEPTH, Spec
from .btf.types import (
    Array,
    Datasec,
    Enum,
    Enum64,
    Float,
    Int,
    IntEncoding,
    Linkage,
    Ptr,
    Struct,
    Union,
)
from .btf.types import Var as BtfVar
from .elf.externs import KCONFIG_MAP
from .elf.map_types import MapType
from .elf.specs import MapSpec, ObjectSpec
from .errors import LoadError, MapError
from .object import Object
from .program import Program
from .runtime.global_data import is_global_data
from .runtime.maps import Map
from .runtime.maps.base import MapMapping

__all__ = [
    "Codec",
    "MapAttr",
    "MapView",
    "Part",
    "PerCpuMapAttr",
    "PerCpuMapView",
    "ProgAttr",
    "RawMapAttr",
    "Section",
    "Skeleton",
    "StructBase",
    "UnionBase",
    "Var",
    "array",
    "boolean",
    "chars",
    "entry_programs",
    "enum",
    "enum_value",
    "fingerprint",
    "get_bits",
    "integer",
    "is_section",
    "raw",
    "real",
    "section_variables",
    "set_bits",
    "struct",
]

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")
E = TypeVar("E", bound=_enum.IntEnum)
C = TypeVar("C", bound=ctypes.Structure | ctypes.Union)
S = TypeVar("S", bound="Skeleton")
P = TypeVar("P", bound="Part")

ZERO_KEY = b"\0\0\0\0"

# -- generated C types ------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A field value as plain Python (ctypes arrays as lists, structs as dicts)."""
    if isinstance(value, (StructBase, UnionBase)):
        return value.to_dict()
    if isinstance(value, ctypes.Array):
        return [_plain(item) for item in value]
    return value


def _shown(value: Any) -> Any:
    """A field value for `repr`: ctypes arrays as lists, the rest as it is."""
    if isinstance(value, ctypes.Array):
        return [_shown(item) for item in value]
    return value


class _Members:
    """Methods shared by generated structs and unions (`MEMBERS`: the C member names)."""

    MEMBERS: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        """The members by C name, nested structs as dicts and arrays as lists."""
        return {name: _plain(getattr(self, name)) for name in self.MEMBERS}

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={_shown(getattr(self, name))!r}" for name in self.MEMBERS)
        return f"{type(self).__name__}({inner})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return bytes(self) == bytes(other)  # type: ignore[call-overload]

    def __hash__(self) -> int:
        # By value, so that map keys can key dicts (`dict(skel.maps.flows.items())`):
        # do not change a struct while it is a key.
        return hash((type(self).__name__, bytes(self)))  # type: ignore[call-overload]


class StructBase(_Members, ctypes.Structure):
    """Base of generated structs: packed ctypes layout with explicit padding, as BTF gives it.

    Generated classes never use ctypes bitfields (whose layout differs
    between compilers): a bitfield is a property over a byte array, and so
    is an enum member (giving the `IntEnum`), so that the layout is exactly
    BTF's on every host.
    """

    _pack_ = 1
    _layout_ = "ms"  # with _pack_ = 1 and no bitfields the same as "gcc-sysv"; silences 3.14


class UnionBase(_Members, ctypes.Union):
    """Base of generated unions."""

    _pack_ = 1
    _layout_ = "ms"


def get_bits(storage: Any, shift: int, width: int, signed: bool) -> int:
    """The bitfield `width` bits wide at bit `shift` of `storage` (a ctypes byte array)."""
    value = (int.from_bytes(bytes(storage), "little") >> shift) & ((1 << width) - 1)
    if signed and value >> (width - 1):
        value -= 1 << width
    return value


def set_bits(storage: Any, shift: int, width: int, value: int) -> None:
    """Store `value` into the bitfield at bit `shift` of `storage` (range-checked)."""
    low = -(1 << (width - 1))
    if not isinstance(value, int) or not low <= value < (1 << width):
        raise ValueError(f"{value!r} does not fit a {width}-bit field")
    mask = ((1 << width) - 1) << shift
    old = int.from_bytes(bytes(storage), "little")
    new = (old & ~mask) | ((value << shift) & mask)
    ctypes.memmove(storage, new.to_bytes(len(storage), "little"), len(storage))


def enum_value(cls: type[E], value: int) -> E:
    """`cls(value)`, or the plain int when the enum has no such enumerator."""
    try:
        return cls(value)
    except ValueError:
        return value  # type: ignore[return-value]  # an IntEnum is an int too


# -- codecs: bytes of one BTF type <-> the value a skeleton hands out ---------------


class Codec(Generic[T]):
    """Turns the `size` bytes of one type into a Python value and back.

    `encode` raises `ValueError` or `TypeError` for a value that does not
    fit; the skeleton parts turn those into `MapError(EINVAL)`.
    """

    size: int = 0

    def decode(self, raw: bytes) -> T:
        """The value held by `raw` (exactly `size` bytes)."""
        raise NotImplementedError

    def encode(self, value: T) -> bytes:
        """The `size` bytes of `value`."""
        raise NotImplementedError


class _Integer(Codec[int]):
    def __init__(self, size: int, signed: bool):
        self.size = size
        self.signed = signed

    def decode(self, raw: bytes) -> int:
        return int.from_bytes(raw, "little", signed=self.signed)

    def encode(self, value: int) -> bytes:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an int, not {type(value).__name__}")
        bits = 8 * self.size
        low, high = (-(1 << (bits - 1)), 1 << (bits - 1)) if self.signed else (0, 1 << bits)
        if not low <= value < high:
            kind = "signed" if self.signed else "unsigned"
            raise ValueError(f"{value} does not fit a {self.size}-byte {kind} integer")
        return value.to_bytes(self.size, "little", signed=self.signed)


class _Boolean(Codec[bool]):
    size = 1

    def decode(self, raw: bytes) -> bool:
        return raw != b"\0"

    def encode(self, value: bool) -> bytes:
        return b"\1" if value else b"\0"


class _Real(Codec[float]):
    def __init__(self, size: int):
        self.size = size
        self.format = {4: "<f", 8: "<d"}[size]

    def decode(self, raw: bytes) -> float:
        return _struct.unpack(self.format, raw)[0]

    def encode(self, value: float) -> bytes:
        return _struct.pack(self.format, float(value))


class _Enum(Codec[E]):
    def __init__(self, cls: type[E], size: int, signed: bool):
        self.cls = cls
        self.size = size
        self.integer = _Integer(size, signed)

    def decode(self, raw: bytes) -> E:
        return enum_value(self.cls, self.integer.decode(raw))

    def encode(self, value: E) -> bytes:
        return self.integer.encode(int(value))


class _Struct(Codec[C]):
    def __init__(self, cls: type[C]):
        self.cls = cls
        self.size = ctypes.sizeof(cls)

    def decode(self, raw: bytes) -> C:
        return self.cls.from_buffer_copy(raw)

    def encode(self, value: C) -> bytes:
        if isinstance(value, (bytes, bytearray)) and len(value) == self.size:
            return bytes(value)
        if not isinstance(value, self.cls):
            raise TypeError(f"expected {self.cls.__name__}, not {type(value).__name__}")
        return bytes(value)  # type: ignore[call-overload]


class _Chars(Codec[bytes]):
    """A `char[N]`: bytes up to the first NUL, as ctypes reads `c_char` arrays."""

    def __init__(self, size: int):
        self.size = size

    def decode(self, raw: bytes) -> bytes:
        return raw.split(b"\0", 1)[0]

    def encode(self, value: bytes) -> bytes:
        if not isinstance(value, (bytes, bytearray)):
            raise TypeError(f"expected bytes, not {type(value).__name__}")
        if len(value) > self.size:
            raise ValueError(f"{len(value)} bytes for a char[{self.size}]")
        return bytes(value).ljust(self.size, b"\0")


class _Array(Codec[list[T]]):
    def __init__(self, element: Codec[T], count: int):
        self.element = element
        self.count = count
        self.size = element.size * count

    def decode(self, raw: bytes) -> list[T]:
        step = self.element.size
        return [self.element.decode(raw[i * step : (i + 1) * step]) for i in range(self.count)]

    def encode(self, value: list[T]) -> bytes:
        items = list(value)
        if len(items) > self.count:
            raise ValueError(f"{len(items)} elements for an array of {self.count}")
        out = b"".join(self.element.encode(item) for item in items)
        return out.ljust(self.size, b"\0")


class _Raw(Codec[bytes]):
    """Bytes BTF says nothing more about, exactly `size` of them."""

    def __init__(self, size: int):
        self.size = size

    def decode(self, raw: bytes) -> bytes:
        return raw

    def encode(self, value: bytes) -> bytes:
        if not isinstance(value, (bytes, bytearray)) or len(value) != self.size:
            raise ValueError(f"expected {self.size} bytes")
        return bytes(value)


def raw(size: int) -> Codec[bytes]:
    """`size` bytes as they are (a type the skeleton has no class for)."""
    return _Raw(size)


def integer(size: int, signed: bool = False) -> Codec[int]:
    """An integer of `size` bytes (also pointers, as 8-byte addresses)."""
    return _Integer(size, signed)


def boolean() -> Codec[bool]:
    """A C `bool` (`_Bool`)."""
    return _Boolean()


def real(size: int) -> Codec[float]:
    """A `float` (4) or `double` (8)."""
    return _Real(size)


def enum(cls: type[E], size: int, signed: bool = False) -> Codec[E]:
    """An enum as its generated `IntEnum` class (a plain int for values it does not name)."""
    return _Enum(cls, size, signed)


def struct(cls: type[C]) -> Codec[C]:
    """A struct or union as its generated ctypes class (a copy: write it back to change it)."""
    return _Struct(cls)


def chars(size: int) -> Codec[bytes]:
    """A `char[size]` as bytes."""
    return _Chars(size)


def array(element: Codec[T], count: int) -> Codec[list[T]]:
    """An array as a list of its elements."""
    return _Array(element, count)


def _encode(codec: Codec[Any], value: Any, op: str, map_name: str, what: str) -> bytes:
    try:
        return codec.encode(value)
    except (TypeError, ValueError) as exc:
        raise MapError(errno.EINVAL, op, map_name, f"{what}: {exc}") from None


# -- the parts of a skeleton ----------------------------------------------------------


class Part:
    """One typed part of a skeleton (`maps`, `progs`, a section); declarations are descriptors."""

    def __init__(self, obj: Object):
        self._object = obj

    @classmethod
    def declarations(cls) -> list[Any]:
        """The declared members (`Var`, `MapAttr`, `ProgAttr` …) in declaration order."""
        return [value for value in vars(cls).values() if isinstance(value, _Declared)]

    @classmethod
    def mismatch(cls, spec: ObjectSpec) -> str | None:
        """Why `spec` does not have what this part declares, or None."""
        for declared in cls.declarations():
            reason = declared.mismatch(cls, spec)
            if reason is not None:
                return reason
        return None

    def __repr__(self) -> str:
        names = ", ".join(d.name for d in self.declarations())
        return f"<{type(self).__name__}: {names}>"


class _Declared:
    """A member a part declares (checked against the object when a skeleton opens)."""

    name: str

    def mismatch(self, owner: type[Part], spec: ObjectSpec) -> str | None:
        raise NotImplementedError


class Section(Part):
    """The variables of one global-data section (bpftool's `skel->rodata` …).

    Reads give the current value; writes go through the object's
    `GlobalVariables` view (`MapError(EPERM)` for `.rodata` once loaded).
    """

    SECTION: ClassVar[str] = ""

    def section_map(self) -> Map:
        """The section's array map."""
        return self._object.maps[self.SECTION]

    def section_bytes(self) -> bytes:
        """The section's bytes."""
        return self.section_map().lookup(ZERO_KEY) or b""

    def as_dict(self) -> dict[str, Any]:
        """Every declared variable's current value by name."""
        # by C name; the attribute may differ (`__config_x` is `_config_x` in Python)
        return {var.name: var.__get__(self, type(self)) for var in self.declarations()}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.SECTION}: {self.as_dict()!r}>"


class Var(_Declared, Generic[T]):
    """A global variable at `offset` of its section, typed by `codec`."""

    def __init__(self, name: str, offset: int, codec: Codec[T]):
        self.name = name
        self.offset = offset
        self.codec = codec

    @overload
    def __get__(self, instance: None, owner: type[Section]) -> Var[T]: ...
    @overload
    def __get__(self, instance: Section, owner: type[Section]) -> T: ...
    def __get__(self, instance: Section | None, owner: type[Section]) -> Var[T] | T:
        if instance is None:
            return self
        raw = instance.section_bytes()[self.offset : self.offset + self.codec.size]
        return self.codec.decode(raw)

    def __set__(self, instance: Section, value: T) -> None:
        section = instance.SECTION
        raw = _encode(self.codec, value, "update", section, self.name)
        setattr(instance._object.variables(section), self.name, raw)

    def mismatch(self, owner: type[Part], spec: ObjectSpec) -> str | None:
        section = getattr(owner, "SECTION", "")
        found = section_variables(spec, section).get(self.name)
        if found is None:
            return f"{section} has no variable {self.name}"
        _, offset, size, _ = found
        if (offset, size) != (self.offset, self.codec.size):
            return (
                f"{section} variable {self.name} is {size} bytes at offset {offset},"
                f" the skeleton's {self.codec.size} at {self.offset}"
            )
        return None


class _TypedMap(MapMapping, Generic[K, V]):
    """What both typed map views share: the raw map, the codecs, and the mapping protocol.

    Subclasses give `lookup`, `update` and `delete` in their value shape.
    """

    def __init__(self, map_: Map, key: Codec[K], value: Codec[V]):
        self.map = map_
        self.key_codec = key
        self.value_codec = value

    def _key(self, key: K, op: str) -> bytes:
        return _encode(self.key_codec, key, op, self.map.name, "key")

    def lookup(self, key: K) -> Any:
        """The value of `key` in the subclass's shape, or None when absent."""
        raise NotImplementedError

    def delete(self, key: K) -> None:
        """Remove `key` (`MapError(ENOENT)` when absent)."""
        self.map.delete(self._key(key, "delete"))

    def __iter__(self) -> Iterator[K]:
        for raw in self.map:
            yield self.key_codec.decode(raw)

    def __len__(self) -> int:
        return len(self.map)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.map.name!r}: {len(self)} entries>"


class MapView(_TypedMap[K, V]):
    """A map with typed keys and values (`skel.maps.<name>`); `map` is the raw `pybpf.Map`."""

    def lookup(self, key: K) -> V | None:
        """The value of `key`, or None when absent."""
        raw = self.map.lookup(self._key(key, "lookup"))
        return None if raw is None else self.value_codec.decode(raw)

    def update(self, key: K, value: V, flags: int = 0) -> None:  # type: ignore[override]
        """Set `key` to `value` (`flags`: BPF_ANY, BPF_NOEXIST, BPF_EXIST)."""
        raw = _encode(self.value_codec, value, "update", self.map.name, "value")
        self.map.update(self._key(key, "update"), raw, flags)


class PerCpuMapView(_TypedMap[K, V]):
    """A per-CPU map with typed keys and values: each value is a list, one per CPU."""

    def lookup(self, key: K) -> list[V] | None:
        """Every CPU's value of `key`, or None when absent."""
        raw = self.map.lookup(self._key(key, "lookup"))
        return None if raw is None else [self.value_codec.decode(item) for item in raw]

    def update(self, key: K, values: Sequence[V], flags: int = 0) -> None:  # type: ignore[override]
        """Set every CPU's value of `key` (one value per CPU)."""
        raws = [
            _encode(self.value_codec, value, "update", self.map.name, "value") for value in values
        ]
        self.map.update(self._key(key, "update"), raws, flags)  # type: ignore[arg-type]


class _MapDeclared(_Declared):
    key_size: int | None = None
    value_size: int | None = None

    def mismatch(self, owner: type[Part], spec: ObjectSpec) -> str | None:
        map_spec = spec.maps.get(self.name)
        if map_spec is None:
            return f"no map {self.name}"
        for what, declared, actual in (
            ("key", self.key_size, map_spec.key_size),
            ("value", self.value_size, map_spec.value_size),
        ):
            if declared is not None and declared != actual:
                return f"map {self.name}: {what} is {actual} bytes, the skeleton's {declared}"
        return None


class MapAttr(_MapDeclared, Generic[K, V]):
    """`skel.maps.<name>`: a `MapView` with the generated key and value types."""

    def __init__(self, name: str, key: Codec[K], value: Codec[V]):
        self.name = name
        self.key = key
        self.value = value
        self.key_size = key.size
        self.value_size = value.size

    @overload
    def __get__(self, instance: None, owner: type[Part]) -> MapAttr[K, V]: ...
    @overload
    def __get__(self, instance: Part, owner: type[Part]) -> MapView[K, V]: ...
    def __get__(self, instance: Part | None, owner: type[Part]) -> MapAttr[K, V] | MapView[K, V]:
        if instance is None:
            return self
        return MapView(instance._object.maps[self.name], self.key, self.value)


class PerCpuMapAttr(_MapDeclared, Generic[K, V]):
    """`skel.maps.<name>` of a per-CPU map: a `PerCpuMapView`."""

    def __init__(self, name: str, key: Codec[K], value: Codec[V]):
        self.name = name
        self.key = key
        self.value = value
        self.key_size = key.size
        self.value_size = value.size

    @overload
    def __get__(self, instance: None, owner: type[Part]) -> PerCpuMapAttr[K, V]: ...
    @overload
    def __get__(self, instance: Part, owner: type[Part]) -> PerCpuMapView[K, V]: ...
    def __get__(
        self, instance: Part | None, owner: type[Part]
    ) -> PerCpuMapAttr[K, V] | PerCpuMapView[K, V]:
        if instance is None:
            return self
        return PerCpuMapView(instance._object.maps[self.name], self.key, self.value)


class RawMapAttr(_MapDeclared):
    """`skel.maps.<name>` of a map without typed keys and values (ring buffers, program
    arrays, global data): the `pybpf.Map` itself."""

    def __init__(self, name: str):
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type[Part]) -> RawMapAttr: ...
    @overload
    def __get__(self, instance: Part, owner: type[Part]) -> Map: ...
    def __get__(self, instance: Part | None, owner: type[Part]) -> RawMapAttr | Map:
        if instance is None:
            return self
        return instance._object.maps[self.name]


class ProgAttr(_Declared):
    """`skel.progs.<name>`: the object's `pybpf.Program` of that name."""

    def __init__(self, name: str):
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type[Part]) -> ProgAttr: ...
    @overload
    def __get__(self, instance: Part, owner: type[Part]) -> Program: ...
    def __get__(self, instance: Part | None, owner: type[Part]) -> ProgAttr | Program:
        if instance is None:
            return self
        return instance._object.programs[self.name]

    def mismatch(self, owner: type[Part], spec: ObjectSpec) -> str | None:
        if self.name not in entry_programs(spec):
            return f"no program {self.name}"
        return None


class Skeleton:
    """Base of generated skeletons (bpftool's `struct <name>_bpf` with its `__open`,
    `__load` and `__destroy`).

    A generated subclass sets `OBJECT_PATH` (the object it was generated
    from), `FINGERPRINT` (`fingerprint()` of that object) and `PARTS`
    (attribute name -> `Part` class: `maps`, `progs`, `rodata` …).
    """

    OBJECT_PATH: ClassVar[str] = ""
    FINGERPRINT: ClassVar[str] = ""
    PARTS: ClassVar[dict[str, type[Part]]] = {}

    def __init__(self, obj: Object):
        #: The live `pybpf.Object` behind the skeleton.
        self.obj = obj
        for attribute, part in self.PARTS.items():
            setattr(self, attribute, part(obj))

    @classmethod
    def check(cls, spec: ObjectSpec) -> None:
        """Raise `LoadError` naming the first difference when `spec` is not the skeleton's object."""
        reason = None
        for part in cls.PARTS.values():
            reason = part.mismatch(spec)
            if reason is not None:
                break
        if reason is None and fingerprint(spec) != cls.FINGERPRINT:
            reason = "its maps, programs, variables or their types changed"
        if reason is not None:
            raise LoadError(
                f"{spec.path}: does not match {cls.__name__} (generated from"
                f" {cls.OBJECT_PATH}): {reason}; regenerate it with `pybpf gen skeleton`"
            )

    @classmethod
    def open(cls: type[S], path: str | os.PathLike[str] | None = None, **load_options: Any) -> S:
        """Open the object (the one recorded at generation when `path` is None).

        `load_options` are `pybpf.load`'s (`engine`, `verify`, `btf`,
        `kconfig`, …). Global variables, including `.rodata`, can be set
        until `load()` (or the first run).
        """
        where = cls.OBJECT_PATH if path is None else os.fspath(path)
        spec = ObjectSpec.from_file(where)
        cls.check(spec)
        return cls(Object(spec, **load_options))

    @classmethod
    def open_and_load(
        cls: type[S], path: str | os.PathLike[str] | None = None, **load_options: Any
    ) -> S:
        """`open` then `load` (closed again if loading fails)."""
        skeleton = cls.open(path, **load_options)
        try:
            skeleton.load()
        except BaseException:
            skeleton.close()
            raise
        return skeleton

    def load(self) -> None:
        """Verify the programs and freeze `.rodata` (`Object.load`)."""
        self.obj.load()

    def close(self) -> None:
        """Free the object's maps and programs (idempotent)."""
        self.obj.close()

    destroy = close

    def __enter__(self: S) -> S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.obj!r}>"


# -- what a skeleton records about its object ------------------------------------------


def is_section(map_spec: MapSpec) -> bool:
    """True for a global-data map whose variables a skeleton exposes (`.kconfig` included)."""
    return map_spec.type == MapType.ARRAY and (
        is_global_data(map_spec.name) or map_spec.name == KCONFIG_MAP
    )


def entry_programs(spec: ObjectSpec) -> list[str]:
    """The names of `spec`'s programs as `Object.programs` has them (no `.text` callees)."""
    callees = {fn for p in spec.programs.values() for fn, start in p.functions if start > 0}
    return [
        name
        for name, program in spec.programs.items()
        if not (program.section == ".text" and name in callees)
    ]


def section_variables(spec: ObjectSpec, section: str) -> dict[str, tuple[int, int, int, int]]:
    """`name -> (BTF type id, offset, size, linkage)` of the variables of global-data `section`."""
    btf = spec.btf
    map_spec = spec.maps.get(section)
    if btf is None or map_spec is None:
        return {}
    datasec = btf.resolve(map_spec.value_type) if map_spec.value_type else None
    if not isinstance(datasec, Datasec):
        found = btf.type_by_name(map_spec.section or section, Datasec)
        if found is None:
            return {}
        datasec = found[1]
    out: dict[str, tuple[int, int, int, int]] = {}
    for info in datasec.vars:
        var = btf.type_by_id(info.type)
        if isinstance(var, BtfVar) and info.offset + info.size <= map_spec.value_size:
            out[var.name] = (var.type, info.offset, info.size, var.linkage)
    return out


@dataclass(frozen=True)
class _Signer:
    btf: Spec

    def sign(self, type_id: int, depth: int = 0) -> str:
        """A canonical text of `type_id`'s layout (names, sizes, offsets, enumerators)."""
        if depth > MAX_RESOLVE_DEPTH:
            return "?"
        record = self.btf.resolve(type_id)
        if isinstance(record, Int):
            code = "b" if record.encoding & IntEncoding.BOOL else "s" if record.signed else "u"
            return f"i{record.size}{code}{record.bits}"
        if isinstance(record, Ptr):
            return "ptr"
        if isinstance(record, Float):
            return f"f{record.size}"
        if isinstance(record, Array):
            return f"{self.sign(record.type, depth + 1)}[{record.nelems}]"
        if isinstance(record, (Enum, Enum64)):
            values = ",".join(f"{v.name}={v.value}" for v in record.values)
            return f"enum {record.name}:{record.size}:{int(record.signed)}{{{values}}}"
        if isinstance(record, (Struct, Union)):
            members = ";".join(
                f"{m.name}@{m.bit_offset}:{m.bitfield_size}={self.sign(m.type, depth + 1)}"
                for m in record.members
            )
            return f"{record.kind.name.lower()} {record.name}:{record.size}{{{members}}}"
        return record.kind.name.lower()


def fingerprint(spec: ObjectSpec) -> str:
    """A hash of what a skeleton of `spec` relies on: maps, programs, variables, their types."""
    lines = []
    signer = _Signer(spec.btf) if spec.btf is not None else None

    def sign(type_id: int) -> str:
        return signer.sign(type_id) if signer is not None and type_id else "-"

    for map_spec in spec.maps.values():
        section = is_section(map_spec)
        lines.append(
            f"map {map_spec.name} {map_spec.type} {map_spec.key_size} {map_spec.value_size}"
            f" {map_spec.max_entries} {sign(map_spec.key_type)}"
            f" {'' if section else sign(map_spec.value_type)}"
        )
        if section:
            for name, (type_id, offset, size, linkage) in section_variables(
                spec, map_spec.name
            ).items():
                if linkage != Linkage.STATIC:
                    lines.append(f"  var {name} {offset} {size} {sign(type_id)}")
    lines.extend(f"prog {name}" for name in entry_programs(spec))
    return "sha256:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()
