"""BPF_MAP_TYPE_ARRAY_OF_MAPS and BPF_MAP_TYPE_HASH_OF_MAPS: maps whose values are maps.

Each slot holds the inner map's pointer (`Map.address`, the u64 an `lddw`
of that map gives), stored by the array or hash family's native code with
an 8-byte value. A program's `bpf_map_lookup_elem` on the outer map returns
the inner map pointer itself, not a pointer to the slot, as the kernel's
`array_of_map_lookup_elem` / `htab_of_map_lookup_elem` do; so the native
lookup (`map_in_map_lookup`) calls the storage family's lookup through the
function pointer kept in the header (`MapInMapHeader.storage_lookup`) and
loads the slot. Update, delete and get_next_key are the storage family's.

From Python, a value is a `Map` (or the address of a map registered in
`context`) that must match the object's inner map spec: same type, key and
value size and flags, and for array inner maps the same max_entries
(`bpf_map_meta_equal`, `array_map_meta_equal`), else EINVAL. A lookup
returns the inner `Map` (the kernel's syscall returns its id; pybpf maps
have no ids). The array form keeps the fd-array rules (BPF_ANY only); the
hash form the hash rules (BPF_NOEXIST / BPF_EXIST).
"""

from __future__ import annotations

import ctypes
import struct
import threading
from typing import Any

from llvmlite import ir

from ...elf.map_types import MapType
from ...elf.specs import MapSpec
from ..memory import Memory
from ..native import NativeModule
from ..native.irblocks import I64, define, i64, load, load_field
from .array import ArrayMap
from .base import OPERATIONS, Map, MapError, NativeOps
from .hash import HashMap
from .header import BPF_ANY, E2BIG, EINVAL, ENOENT, MapHeader
from .shared import StoragePlan

BPF_F_INNER_MAP = 1 << 12
"""Inner array maps created with this flag may differ in max_entries."""

MAP_IN_MAP_LOOKUP = "pybpf_map_in_map_lookup"

_ARRAY_TYPES = frozenset({MapType.ARRAY, MapType.PERCPU_ARRAY})


class MapInMapHeader(MapHeader):
    """`MapHeader` plus the address of the storage family's native lookup."""

    _fields_ = [("storage_lookup", ctypes.c_uint64)]


def build_map_in_map_module(module: ir.Module) -> None:
    """Add `map_in_map_lookup(map, key, cpu) -> inner map pointer or 0` to `module`."""
    function, b = define(module, MAP_IN_MAP_LOOKUP, I64, [I64, I64, I64])
    header, key, cpu = function.args
    kind = ir.FunctionType(I64, [I64, I64, I64])
    target = b.inttoptr(load_field(b, MapInMapHeader, header, "storage_lookup"), kind.as_pointer())
    slot = b.call(target, [header, key, cpu])
    empty = function.append_basic_block("empty")
    found = function.append_basic_block("found")
    b.cbranch(b.icmp_unsigned("==", slot, i64(0)), empty, found)
    b.position_at_end(empty)
    b.ret(i64(0))
    b.position_at_end(found)
    b.ret(load(b, slot, I64))


MAP_IN_MAP_NATIVE = NativeModule(
    "map_in_map",
    build_map_in_map_module,
    {
        MAP_IN_MAP_LOOKUP: ctypes.CFUNCTYPE(
            ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64
        )
    },
)
"""Native lookup shared by both map-in-map families."""


def meta_equal(inner: MapSpec, candidate: MapSpec) -> bool:
    """Whether `candidate` may be stored where `inner` is the template (kernel rules)."""
    same = (
        inner.type == candidate.type
        and inner.key_size == candidate.key_size
        and inner.value_size == candidate.value_size
        and inner.flags == candidate.flags
    )
    if same and inner.type in _ARRAY_TYPES and not inner.flags & BPF_F_INNER_MAP:
        same = inner.max_entries == candidate.max_entries
    return same


class MapOfMaps:
    """Mixin of both families: slots hold inner map pointers, Python sees `Map`s."""

    spec: MapSpec
    name: str
    header: MapHeader
    native: NativeOps
    header_type = MapInMapHeader
    shareable = False

    def _adopt(self, spec: MapSpec, header: MapHeader) -> None:
        if spec.inner_map is None:
            raise MapError(EINVAL, "create", spec.name, "map of maps without an inner map")
        if spec.value_size != 4:
            raise MapError(EINVAL, "create", spec.name, "map of maps values must be 4 bytes")
        self.inner_spec = spec.inner_map
        self.context: Any = None
        """The `ExecutionContext` used to resolve map addresses given as ints."""
        self._inner: dict[bytes, Map] = {}
        self._guard = threading.Lock()
        # The native code stores 8-byte pointers; the spec keeps the kernel's 4.
        header.value_size = 8

    def _finish(self) -> None:
        self.header.storage_lookup = self.native.lookup
        ops = dict(
            zip(
                OPERATIONS,
                (
                    self.native.lookup,
                    self.native.update,
                    self.native.delete,
                    self.native.get_next_key,
                ),
                strict=True,
            )
        )
        ops["lookup"] = MAP_IN_MAP_NATIVE.address(MAP_IN_MAP_LOOKUP)
        self.native = NativeOps(**ops)

    def _inner_map(self, value: Any) -> Map:
        if isinstance(value, int) and self.context is not None:
            value = self.context.map_at(value)
        if not isinstance(value, Map):
            raise MapError(EINVAL, "update", self.name, f"{value!r} is not a map")
        if not meta_equal(self.inner_spec, value.spec):
            raise MapError(
                EINVAL, "update", self.name, f"map {value.name!r} does not match the inner map"
            )
        return value

    def _store(self, key: bytes, value: Any, flags: int) -> None:
        inner = self._inner_map(value)
        pointer = struct.pack("<Q", inner.address)
        with self._guard:
            result = self._update(self.address, key, pointer, flags, 0)
            if result < 0:
                raise MapError(-result, "update", self.name)
            self._inner[key] = inner

    def update(self, key: bytes, value: Any, flags: int = BPF_ANY) -> None:
        """Store inner map `value` (a matching `Map`, or its address) at `key`."""
        self._store(self._key(key, "update"), value, flags)

    def lookup(self, key: bytes) -> Map | None:
        """The inner map at `key`, or None."""
        key = self._key(key, "lookup")
        if not self._lookup(self.address, key, -1):
            return None
        return self._inner.get(key)

    def inner_address(self, key: bytes) -> int | None:
        """What a program's lookup returns: the inner map pointer, or None."""
        lookup = MAP_IN_MAP_NATIVE.function(MAP_IN_MAP_LOOKUP)
        return lookup(self.address, self._key(key, "lookup"), 0) or None


class ArrayOfMapsMap(MapOfMaps, ArrayMap):
    """BPF_MAP_TYPE_ARRAY_OF_MAPS: u32 index → inner map, fd-array update rules."""

    def __init__(self, spec: MapSpec, memory: Memory, *, ncpus: int | None = None):
        super().__init__(spec, memory, ncpus=ncpus)
        self._finish()

    def setup_storage(self, header: MapHeader, plan: StoragePlan) -> None:
        """8-byte slots for the inner map pointers."""
        super().setup_storage(header, plan)
        self._adopt(self.spec, header)

    def update(self, key: bytes, value: Any, flags: int = BPF_ANY) -> None:
        """Store an inner map at index `key`: BPF_ANY only (EINVAL), E2BIG past the end."""
        if flags != BPF_ANY:
            raise MapError(EINVAL, "update", self.name, "fd arrays only take BPF_ANY")
        key = self._key(key, "update")
        if struct.unpack("<I", key)[0] >= self.spec.max_entries:
            raise MapError(E2BIG, "update", self.name)
        self._store(key, value, flags)

    def lookup(self, key: bytes) -> Map | None:
        """The inner map at index `key`, or None when the slot is empty."""
        key = self._key(key, "lookup")
        slot = self._lookup(self.address, key, -1)
        if not slot or not ctypes.c_uint64.from_address(slot).value:
            return None
        return self._inner.get(key)

    def delete(self, key: bytes) -> None:
        """Empty slot `key` (ENOENT when empty, E2BIG past the end is ENOENT too)."""
        key = self._key(key, "delete")
        with self._guard:
            slot = self._lookup(self.address, key, -1)
            if not slot or not ctypes.c_uint64.from_address(slot).value:
                raise MapError(ENOENT, "delete", self.name)
            ctypes.c_uint64.from_address(slot).value = 0
            self._inner.pop(key, None)


class HashOfMapsMap(MapOfMaps, HashMap):
    """BPF_MAP_TYPE_HASH_OF_MAPS: key → inner map, with the hash map's flag rules."""

    def __init__(self, spec: MapSpec, memory: Memory, *, ncpus: int | None = None):
        super().__init__(spec, memory, ncpus=ncpus)
        self._finish()

    def setup_storage(self, header: MapHeader, plan: StoragePlan) -> None:
        """Hash storage with 8-byte values for the inner map pointers."""
        super().setup_storage(header, plan)
        self._adopt(self.spec, header)

    def delete(self, key: bytes) -> None:
        """Remove `key` (ENOENT when absent)."""
        key = self._key(key, "delete")
        with self._guard:
            HashMap.delete(self, key)
            self._inner.pop(key, None)
