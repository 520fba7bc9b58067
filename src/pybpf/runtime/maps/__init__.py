"""Live maps: one module per family, each with its operations compiled from LLVM IR.

`create_map(spec, memory)` turns a `MapSpec` into the live `Map` of its
family; families not written yet raise `NotSupportedError`.
"""

from __future__ import annotations

from ...elf.map_types import MapType, map_type_name
from ...elf.specs import MapSpec
from ...errors import NotSupportedError
from ..memory import Memory
from .array import ArrayMap, PerCpuArrayMap
from .base import Map, MapError, NativeOps
from .hash import HashMap, PerCpuHashMap
from .header import BPF_ANY, BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST

FAMILIES: dict[int, type[Map]] = {
    MapType.ARRAY: ArrayMap,
    MapType.PERCPU_ARRAY: PerCpuArrayMap,
    MapType.HASH: HashMap,
    MapType.PERCPU_HASH: PerCpuHashMap,
}
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


__all__ = [
    "BPF_ANY",
    "BPF_EXIST",
    "BPF_F_LOCK",
    "BPF_NOEXIST",
    "FAMILIES",
    "ArrayMap",
    "HashMap",
    "Map",
    "MapError",
    "NativeOps",
    "PerCpuArrayMap",
    "PerCpuHashMap",
    "create_map",
]
