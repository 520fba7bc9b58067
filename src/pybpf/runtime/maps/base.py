"""`Map`: a live map in native memory, seen from Python as a mutable mapping over bytes.

Every family (one module each: `array`, `hash`) writes its operations once,
as LLVM IR compiled by `native.NativeModule`; this base class only checks
sizes, calls those native functions through ctypes and turns their negative
errno results into `MapError`. The same functions are what the engines call
(`Map.native` holds their addresses, `Map.address` the map pointer).

Native calling convention, shared by all families so an engine can call
any map the same way (all arguments are 64-bit, addresses as integers):

    lookup(map, key, cpu) -> address of the value, 0 if absent
    update(map, key, value, flags, cpu) -> 0 or -errno
    delete(map, key) -> 0 or -errno
    get_next_key(map, key or 0, next_key_out) -> 0 or -errno

Queue, stack and bloom filter maps (key size 0) also export

    push(map, value, flags) -> 0 or -errno
    pop(map, value_out) -> 0 or -errno
    peek(map, value_out) -> 0 or -errno

(a bloom filter's `peek` reads `value_out` as the value to test and has
no `pop`: it returns -EOPNOTSUPP). Families without them have zero
addresses in `NativeOps`; the Python methods raise `MapError(EINVAL)`.

`cpu` selects the per-CPU slot of per-CPU maps and is ignored by the
others. `update` with `cpu == -1` reads `value` as the full libbpf buffer
of `ncpus` values, each `round_up(value_size, 8)` bytes apart (the
syscall's view); a CPU number writes that CPU's value only (a program's
view). `lookup` with `cpu == -1` returns CPU 0's slot, the start of that
buffer.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...elf.specs import MapSpec
from ...errors import MapError
from ..memory import Memory, Region
from ..native import NativeModule
from . import fastcall
from .header import (
    BPF_ANY,
    EINVAL,
    ENOENT,
    EPERM,
    MapHeader,
    round_up,
)
from .shared import MapMemory, StoragePlan

LOOKUP = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
UPDATE = ctypes.CFUNCTYPE(
    ctypes.c_int64,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_uint64,
    ctypes.c_int64,
)
DELETE = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p)
GET_NEXT_KEY = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)

PUSH = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64)
POP = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p)
PEEK = POP

OPERATIONS = ("lookup", "update", "delete", "get_next_key")
"""The native operations every family exports, as `<prefix><operation>`."""
QUEUE_OPERATIONS = ("push", "pop", "peek")
"""The extra native operations of queue-like families (`Map.queue_ops`)."""


def prototypes(prefix: str) -> dict[str, object]:
    """The ctypes prototypes of one family's exported functions."""
    kinds = (LOOKUP, UPDATE, DELETE, GET_NEXT_KEY)
    return {f"{prefix}{name}": kind for name, kind in zip(OPERATIONS, kinds, strict=True)}


def queue_prototypes(prefix: str) -> dict[str, object]:
    """The ctypes prototypes of a queue-like family's push, pop and peek."""
    kinds = (PUSH, POP, PEEK)
    return {f"{prefix}{name}": kind for name, kind in zip(QUEUE_OPERATIONS, kinds, strict=True)}


@dataclass(frozen=True, slots=True)
class NativeOps:
    """Native addresses of a map's operations (see the module docstring for signatures)."""

    lookup: int
    update: int
    delete: int
    get_next_key: int
    push: int = 0
    pop: int = 0
    peek: int = 0


class MapMapping(MutableMapping):
    """A dict's operations over `lookup`, `update`, `delete` and `get_next_key` (None for
    absent keys, `MapError(ENOENT)` on deleting one): the one home of them for every kind
    of map handle (a live `Map`, the daemon's `RemoteMap`, a skeleton's typed view)."""

    def __getitem__(self, key: Any) -> Any:
        value = self.lookup(key)  # type: ignore[attr-defined]
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: Any, value: Any) -> None:
        self.update(key, value)  # type: ignore[attr-defined]

    def __delitem__(self, key: Any) -> None:
        try:
            self.delete(key)  # type: ignore[attr-defined]
        except MapError as error:
            if error.errno == ENOENT:
                raise KeyError(key) from None
            raise

    def __iter__(self) -> Iterator[Any]:
        key = self.get_next_key(None)  # type: ignore[attr-defined]
        while key is not None:
            yield key
            key = self.get_next_key(key)  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return sum(1 for _ in self)


class Map(MapMapping):
    """A live map: a native header, native storage and its values as a `Region`.

    `value_region` is that region (registered in `memory`; `values()` is the
    mapping method).

    Keys and values are raw bytes of exactly `key_size` and `value_size`
    bytes; a wrong size raises `MapError(EINVAL)` and changes nothing.
    Per-CPU families take and return lists of per-CPU values instead (see
    `PerCpuValues`). Iteration follows `get_next_key`, like
    `bpf_map_get_next_key` loops.
    """

    module: NativeModule
    """The family's native code (set by each family)."""
    prefix: str
    """Prefix of the family's exported function names (set by each family)."""
    percpu = False
    queue_ops = False
    """True for families exporting push/pop/peek (queue, stack, bloom filter)."""

    header_type: type[MapHeader] = MapHeader
    """The header structure at offset 0 of the map's region (families may extend it)."""
    shareable = True
    """Whether another process can run this family on the region alone (`attach_map`):
    False for families keeping state in Python (program, device and inner-map tables)."""
    lockless_reads = False
    """Whether `lookup` from Python only reads the region (no lock word, no recency
    list), so that a read-only mapping of it can be looked up."""

    def __init__(self, spec: MapSpec, memory: Memory, *, ncpus: int | None = None):
        self.spec = spec
        self.memory = memory
        self.name = spec.name
        self.ncpus = (ncpus or os.cpu_count() or 1) if self.percpu else 1
        self.check_spec(spec)
        stride = round_up(spec.value_size)
        header = self.header_type()
        header.type = spec.type
        header.key_size = spec.key_size
        header.value_size = spec.value_size
        header.max_entries = spec.max_entries
        header.map_flags = spec.flags
        header.value_stride = stride
        header.value_block = stride * self.ncpus
        header.ncpus = self.ncpus
        plan = StoragePlan(ctypes.sizeof(header))
        header.values = plan.reserve(spec.max_entries * header.value_block)
        self.setup_storage(header, plan)
        shared = MapMemory.create(plan.size, spec.name)
        ctypes.memmove(shared.address, ctypes.addressof(header), ctypes.sizeof(header))
        shared.fill(plan)
        self._bind(shared)

    def _bind(self, shared: MapMemory) -> None:
        """Take `shared` as this map's region: header, values region, native entry points."""
        self.shared = shared
        header = self.header_type.from_address(shared.address)
        header._region = shared  # keeps the mapping alive as long as the header
        self.header = header
        size = header.max_entries * header.value_block
        values = shared.view(header.values, size)
        self.value_region: Region = self.memory.add(
            Region(
                ctypes.addressof(values), size, shared.writable, f"map {self.name} values", values
            )
        )
        fn = self.module.function
        self._lookup = fn(f"{self.prefix}lookup")
        self._update = fn(f"{self.prefix}update")
        self._delete = fn(f"{self.prefix}delete")
        self._get_next_key = fn(f"{self.prefix}get_next_key")
        address = self.module.address
        operations = OPERATIONS + (QUEUE_OPERATIONS if self.queue_ops else ())
        self.native = NativeOps(*(address(f"{self.prefix}{op}") for op in operations))
        fastcall.bind(self, ncpus=self.ncpus, value_stride=header.value_stride)

    @classmethod
    def attached(cls, shared: MapMemory, memory: Memory, name: str) -> Map:
        """This family's map over a region another process made (see `maps.attach_map`).

        Nothing in the region is written: the header already describes the
        map, and the storage holds its entries.
        """
        if not cls.shareable:
            raise MapError(EINVAL, "attach", name, f"{cls.__name__} cannot be shared")
        if not shared.writable and not cls.lockless_reads:
            raise MapError(EPERM, "attach", name, f"{cls.__name__} cannot be mapped read-only")
        header = cls.header_type.from_address(shared.address)
        kind = cls if shared.writable else read_only_class(cls)
        self = kind.__new__(kind)
        self.spec = MapSpec(
            name,
            header.type,
            header.key_size,
            header.value_size,
            header.max_entries,
            header.map_flags,
        )
        self.memory = memory
        self.name = name
        self.ncpus = header.ncpus
        self._bind(shared)
        return self

    # -- hooks for families ---------------------------------------------------

    def check_spec(self, spec: MapSpec) -> None:
        """Refuse a spec the kernel would refuse at map creation (EINVAL)."""
        if spec.key_size == 0 or spec.value_size == 0 or spec.max_entries == 0:
            raise MapError(EINVAL, "create", spec.name, "zero key size, value size or entries")

    def setup_storage(self, header: MapHeader, plan: StoragePlan) -> None:
        """Reserve family-specific storage in `plan` and fill the header's fields for it.

        Runs before the region exists: offsets go into the header (which is
        copied to the region's start), never addresses.
        """

    # -- addresses for engines --------------------------------------------------

    @property
    def address(self) -> int:
        """The map pointer native operations take (the header's address)."""
        return ctypes.addressof(self.header)

    def address_of(self, key: bytes, cpu: int = 0) -> int | None:
        """The native address of `key`'s value (CPU `cpu`'s for per-CPU maps), or None."""
        address = self._lookup(self.address, self._key(key, "lookup"), cpu)
        return address or None

    def recreate(self, spec: MapSpec) -> None:
        """Build this map anew, empty, for `spec` (a new size, before its object loads).

        The Python object stays the same, so handles to it (libbpf's
        `struct bpf_map *`) stay valid; its native addresses change, so
        programs must be linked again. Every family takes the same
        constructor arguments, which is what makes this possible here once.
        """
        self.close()
        type(self).__init__(self, spec, self.memory, ncpus=self.ncpus if self.percpu else None)

    def pin(self, path: str) -> None:
        """Pin this map at `path`: in the daemon for a map from `pybpf.connect()`, else in
        this process's namespace (`pybpf.pins`), where it outlives its object."""
        client = getattr(self, "client", None)
        if client is not None:
            client.pin(self, path)
            return
        from ... import pins

        pins.pin(path, self)

    def close(self) -> None:
        """Take the values out of the memory's region table."""
        self.memory.remove(self.value_region)

    # -- the libbpf-style operations ---------------------------------------------

    def _error(self, result: int, op: str) -> None:
        if result < 0:
            raise MapError(-result, op, self.name)

    def _key(self, key: bytes, op: str) -> bytes:
        key = bytes(key)
        if len(key) != self.spec.key_size:
            raise MapError(
                EINVAL, op, self.name, f"key is {len(key)} bytes, expected {self.spec.key_size}"
            )
        return key

    def _value(self, value: bytes, op: str) -> bytes:
        value = bytes(value)
        if len(value) != self.spec.value_size:
            raise MapError(
                EINVAL,
                op,
                self.name,
                f"value is {len(value)} bytes, expected {self.spec.value_size}",
            )
        return value

    def lookup(self, key: bytes) -> bytes | None:
        """The value of `key`, or None when absent (per-CPU maps: a list of values)."""
        address = self._lookup(self.address, self._key(key, "lookup"), -1)
        if not address:
            return None
        return ctypes.string_at(address, self.spec.value_size)

    def update(self, key: bytes, value: bytes, flags: int = BPF_ANY) -> None:
        """Set `key` to `value` with BPF_ANY / BPF_NOEXIST / BPF_EXIST semantics."""
        key = self._key(key, "update")
        result = self._update(self.address, key, self._value(value, "update"), flags, 0)
        self._error(result, "update")

    def delete(self, key: bytes) -> None:
        """Remove `key` (ENOENT when absent; EINVAL for arrays)."""
        self._error(self._delete(self.address, self._key(key, "delete")), "delete")

    def get_next_key(self, key: bytes | None = None) -> bytes | None:
        """The key after `key` (the first key for None or a missing key), None at the end."""
        current = None if key is None else self._key(key, "get_next_key")
        out = ctypes.create_string_buffer(self.spec.key_size)
        result = self._get_next_key(self.address, current, out)
        if result == -ENOENT:
            return None
        self._error(result, "get_next_key")
        return out.raw

    # -- queue-like families ------------------------------------------------------

    def _queue_function(self, op: str):
        if not self.queue_ops:
            raise MapError(EINVAL, op, self.name, f"{type(self).__name__} has no {op}")
        return self.module.function(f"{self.prefix}{op}")

    def push(self, value: bytes, flags: int = BPF_ANY) -> None:
        """Push `value` (queue, stack; a bloom filter adds it), as `bpf_map_update_elem`."""
        push = self._queue_function("push")
        self._error(push(self.address, self._value(value, "push"), flags), "push")

    def pop(self) -> bytes:
        """Remove and return the next value (ENOENT when empty)."""
        pop = self._queue_function("pop")
        out = ctypes.create_string_buffer(max(self.spec.value_size, 1))
        self._error(pop(self.address, out), "pop")
        return out.raw[: self.spec.value_size]

    def peek(self) -> bytes:
        """Return the next value without removing it (ENOENT when empty)."""
        peek = self._queue_function("peek")
        out = ctypes.create_string_buffer(max(self.spec.value_size, 1))
        self._error(peek(self.address, out), "peek")
        return out.raw[: self.spec.value_size]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} at 0x{self.address:x}>"


class ReadOnlyMap:
    """Mixin of a map mapped read-only (`Map.attached`): every write is EPERM, nothing touched.

    A store into a read-only mapping would fault, so the writing methods
    refuse before any native code runs. Being the class's own methods, they
    are not replaced by fast entry points (`fastcall`), while `lookup` is.
    """

    name: str

    def _refuse(self, op: str) -> None:
        raise MapError(EPERM, op, self.name, "map is read-only here")

    def update(self, key: bytes, value: object, flags: int = BPF_ANY) -> None:
        """Refused: MapError(EPERM)."""
        self._refuse("update")

    def delete(self, key: bytes) -> None:
        """Refused: MapError(EPERM)."""
        self._refuse("delete")

    def push(self, value: bytes, flags: int = BPF_ANY) -> None:
        """Refused: MapError(EPERM)."""
        self._refuse("push")

    def pop(self) -> bytes:
        """Refused: MapError(EPERM)."""
        self._refuse("pop")
        return b""


_read_only_classes: dict[type, type] = {}


def read_only_class(family: type[Map]) -> type[Map]:
    """`family` with `ReadOnlyMap`'s refusals in front (one class per family)."""
    made = _read_only_classes.get(family)
    if made is None:
        made = type(f"ReadOnly{family.__name__}", (ReadOnlyMap, family), {})
        _read_only_classes[family] = made
    return made


class PerCpuValues:
    """Mixin for per-CPU maps: values are lists of `ncpus` byte strings.

    `update` accepts such a list, or a single value which is written to
    every CPU (libbpf itself always wants the full `ncpus` buffer; the
    broadcast is a convenience). `lookup` returns the list.
    """

    percpu = True

    def lookup(self, key: bytes) -> list[bytes] | None:  # type: ignore[override]
        """Every CPU's value of `key` (CPU order), or None when absent."""
        address = self._lookup(self.address, self._key(key, "lookup"), -1)
        if not address:
            return None
        block = ctypes.string_at(address, self.header.value_block)
        stride, size = self.header.value_stride, self.spec.value_size
        return [block[cpu * stride : cpu * stride + size] for cpu in range(self.ncpus)]

    def update(self, key: bytes, value: bytes | Sequence[bytes], flags: int = BPF_ANY) -> None:  # type: ignore[override]
        """Set every CPU's value of `key` (a list of `ncpus` values, or one broadcast)."""
        key = self._key(key, "update")
        if isinstance(value, (bytes, bytearray, memoryview)):
            values = [self._value(value, "update")] * self.ncpus
        else:
            values = [self._value(item, "update") for item in value]
            if len(values) != self.ncpus:
                raise MapError(
                    EINVAL, "update", self.name, f"{len(values)} values for {self.ncpus} CPUs"
                )
        stride = self.header.value_stride
        block = b"".join(item.ljust(stride, b"\0") for item in values)
        self._error(self._update(self.address, key, block, flags, -1), "update")


# `lookup`/`update` as native builtins calling the same native operations
# (see `fastcall`); the Python methods above remain their fallback path.
fastcall.register(Map, "lookup", fastcall.LOOKUP)
fastcall.register(Map, "update", fastcall.UPDATE)
fastcall.register(PerCpuValues, "lookup", fastcall.PERCPU_LOOKUP)
