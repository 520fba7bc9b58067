"""Live maps: one module per family, each with its operations compiled from LLVM IR.

`create_map(spec, memory)` turns a `MapSpec` into the live `Map` of its
family; families not written yet raise `NotSupportedError`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from ...elf.map_types import MapType, map_type_name
from ...elf.specs import MapSpec
from ...errors import NotSupportedError
from ...lazy import lazy_attributes
from ..memory import Memory
from .base import Map, MapError, NativeOps
from .header import BPF_ANY, BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, MapHeader
from .shared import MapMemory

if TYPE_CHECKING:
    from .array import ArrayMap, PerCpuArrayMap
    from .bloom_filter import BloomFilterMap
    from .devmap import CpuMap, DevMap, DevMapHash, XskMap
    from .hash import HashMap, PerCpuHashMap
    from .lpm_trie import LpmTrieMap, lpm_key
    from .lru_hash import LruHashMap, LruPerCpuHashMap
    from .map_in_map import ArrayOfMapsMap, HashOfMapsMap
    from .perf_event_array import PerfEventArrayMap
    from .prog_array import ProgArrayMap
    from .queue_stack import QueueMap, StackMap
    from .ringbuf import RingBufMap
    from .stack_trace import StackTraceMap

_HOMES: dict[str, str] = {
    "ArrayMap": ".array",
    "PerCpuArrayMap": ".array",
    "BloomFilterMap": ".bloom_filter",
    "CpuMap": ".devmap",
    "DevMap": ".devmap",
    "DevMapHash": ".devmap",
    "XskMap": ".devmap",
    "HashMap": ".hash",
    "PerCpuHashMap": ".hash",
    "LpmTrieMap": ".lpm_trie",
    "lpm_key": ".lpm_trie",
    "LruHashMap": ".lru_hash",
    "LruPerCpuHashMap": ".lru_hash",
    "ArrayOfMapsMap": ".map_in_map",
    "HashOfMapsMap": ".map_in_map",
    "PerfEventArrayMap": ".perf_event_array",
    "ProgArrayMap": ".prog_array",
    "QueueMap": ".queue_stack",
    "StackMap": ".queue_stack",
    "RingBufMap": ".ringbuf",
    "StackTraceMap": ".stack_trace",
}
"""Each family's names → its module, imported on first use (an object with a hash
and an array map never imports the other eighteen families)."""

_FAMILY_NAMES: dict[int, str] = {
    MapType.ARRAY: "ArrayMap",
    MapType.PERCPU_ARRAY: "PerCpuArrayMap",
    MapType.HASH: "HashMap",
    MapType.PERCPU_HASH: "PerCpuHashMap",
    MapType.LRU_HASH: "LruHashMap",
    MapType.LRU_PERCPU_HASH: "LruPerCpuHashMap",
    MapType.LPM_TRIE: "LpmTrieMap",
    MapType.QUEUE: "QueueMap",
    MapType.STACK: "StackMap",
    MapType.BLOOM_FILTER: "BloomFilterMap",
    MapType.RINGBUF: "RingBufMap",
    MapType.PERF_EVENT_ARRAY: "PerfEventArrayMap",
    MapType.PROG_ARRAY: "ProgArrayMap",
    MapType.ARRAY_OF_MAPS: "ArrayOfMapsMap",
    MapType.HASH_OF_MAPS: "HashOfMapsMap",
    MapType.DEVMAP: "DevMap",
    MapType.DEVMAP_HASH: "DevMapHash",
    MapType.CPUMAP: "CpuMap",
    MapType.XSKMAP: "XskMap",
    MapType.STACK_TRACE: "StackTraceMap",
}


__getattr__ = lazy_attributes(__name__, _HOMES, globals())
"""A family's class (or `lpm_key`), its module imported on first use."""


class _Families(Mapping[int, "type[Map]"]):
    """BPF_MAP_TYPE_* number → map class; a family's module is imported when it is asked for."""

    def __getitem__(self, kind: int) -> type[Map]:
        return __getattr__(_FAMILY_NAMES[kind])

    def __contains__(self, kind: object) -> bool:
        return kind in _FAMILY_NAMES

    def __iter__(self) -> Iterator[int]:
        return iter(_FAMILY_NAMES)

    def __len__(self) -> int:
        return len(_FAMILY_NAMES)


FAMILIES: Mapping[int, type[Map]] = _Families()
"""The map class of each supported BPF_MAP_TYPE_* number."""


def create_map(spec: MapSpec, memory: Memory, *, ncpus: int | None = None) -> Map:
    """A new live map for `spec`, its values registered as a region of `memory`.

    `ncpus` is the number of simulated CPUs of per-CPU maps (default
    `os.cpu_count()`); other families ignore it.
    """
    family = FAMILIES.get(spec.type)
    if family is None:
        raise NotSupportedError(
            f"map {spec.name!r}: type {map_type_name(spec.type)} is not supported yet"
        )
    return family(spec, memory, ncpus=ncpus)


def attach_map(fd: int, memory: Memory, name: str, *, writable: bool = True) -> Map:
    """The map whose region is behind `fd` (made by another process), run here in-process.

    The descriptor is taken over. Its header says the family; families
    that keep state in Python (`Map.shareable` False) raise `MapError`.
    `writable` False maps it read-only: lookups work, updates raise
    `MapError(EPERM)` before touching it.
    """
    shared = MapMemory.attach(fd, writable=writable)
    kind = MapHeader.from_address(shared.address).type
    family = FAMILIES.get(kind)
    if family is None:
        raise NotSupportedError(f"map {name!r}: type {map_type_name(kind)} is not supported yet")
    return family.attached(shared, memory, name)


__all__ = [
    "BPF_ANY",
    "BPF_EXIST",
    "BPF_F_LOCK",
    "BPF_NOEXIST",
    "FAMILIES",
    "ArrayMap",
    "ArrayOfMapsMap",
    "BloomFilterMap",
    "CpuMap",
    "DevMap",
    "DevMapHash",
    "HashMap",
    "HashOfMapsMap",
    "LpmTrieMap",
    "LruHashMap",
    "LruPerCpuHashMap",
    "Map",
    "MapError",
    "NativeOps",
    "PerCpuArrayMap",
    "PerCpuHashMap",
    "PerfEventArrayMap",
    "ProgArrayMap",
    "QueueMap",
    "RingBufMap",
    "StackTraceMap",
    "StackMap",
    "XskMap",
    "attach_map",
    "create_map",
    "lpm_key",
]
