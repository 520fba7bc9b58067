"""Redirect targets: BPF_MAP_TYPE_DEVMAP, DEVMAP_HASH, CPUMAP and XSKMAP.

Their values say where `bpf_redirect_map` sends a packet: a device
(`u32 ifindex`, or `struct bpf_devmap_val {u32 ifindex; u32 prog_fd}`), a
CPU (`u32 qsize`, or `struct bpf_cpumap_val {u32 qsize; u32 prog_fd}`) or
an AF_XDP socket (a socket fd). pybpf stores them and reports the target
(`redirect_target`); it sends no packet anywhere.

Update and delete follow kernel/bpf/devmap.c, cpumap.c and xskmap.c:
flags above BPF_EXIST give EINVAL, an index past `max_entries` E2BIG on
update and EINVAL on delete (array kinds), BPF_NOEXIST on an occupied slot
EEXIST; an ifindex (devmap) or qsize (cpumap) of 0 empties the slot; a
cpumap qsize above 16384 gives EOVERFLOW and a CPU that does not exist
ENODEV. Interfaces and sockets are not checked (there is no kernel to ask).

Storage is the hash family's native code for all four kinds, so that an
empty slot is absent and a program's lookup of it gives NULL, as in the
kernel. Deviation: iterating an array kind yields the occupied indices
(in order) where the kernel's get_next_key walks every index.
"""

from __future__ import annotations

import errno
import struct

from ...elf.map_types import MapType
from ...elf.specs import MapSpec
from ..memory import Memory
from .base import MapError
from .hash import HashMap
from .header import BPF_ANY, BPF_EXIST, BPF_NOEXIST, E2BIG, EEXIST, EINVAL, ENOENT

CPUMAP_MAX_QSIZE = 16384


class RedirectMap(HashMap):
    """Common rules of the redirect maps: u32 keys, 4- or 8-byte values."""

    shareable = False

    array_kind = True
    """Keys are indices below max_entries (all but devmap_hash)."""
    noexist_always_fails = True
    """BPF_NOEXIST gives EEXIST even on an empty slot (devmap, cpumap)."""
    exist_needs_entry = False
    """BPF_EXIST on an empty slot gives ENOENT (xskmap)."""
    value_sizes: tuple[int, ...] = (4, 8)

    def __init__(self, spec: MapSpec, memory: Memory, *, ncpus: int | None = None):
        self.cpus = ncpus
        super().__init__(spec, memory, ncpus=ncpus)

    def check_spec(self, spec: MapSpec) -> None:
        """u32 keys and the value sizes the kernel accepts (EINVAL otherwise)."""
        super().check_spec(spec)
        if spec.key_size != 4 or spec.value_size not in self.value_sizes:
            raise MapError(
                EINVAL,
                "create",
                spec.name,
                f"{spec.type_name} needs 4-byte keys, values {self.value_sizes}",
            )

    def _check_update(self, index: int, value: bytes, flags: int) -> bool:
        """Kind-specific checks; False means the value empties the slot."""
        return struct.unpack_from("<I", value)[0] != 0

    def update(self, key: bytes | int, value: bytes | int, flags: int = BPF_ANY) -> None:
        """Store a redirect target (`value` may be an int for 4-byte values)."""
        if isinstance(key, int):
            key = struct.pack("<I", key)
        if isinstance(value, int):
            value = struct.pack("<I", value).ljust(self.spec.value_size, b"\0")
        key = self._key(key, "update")
        value = self._value(value, "update")
        if flags > BPF_EXIST:
            raise MapError(EINVAL, "update", self.name)
        index = struct.unpack("<I", key)[0]
        if self.array_kind and index >= self.spec.max_entries:
            raise MapError(E2BIG, "update", self.name)
        present = self.address_of(key) is not None
        if flags == BPF_NOEXIST and (self.noexist_always_fails or present):
            raise MapError(EEXIST, "update", self.name)
        if not self._check_update(index, value, flags):
            if present:
                super().delete(key)
            return
        if flags == BPF_EXIST and not present and self.exist_needs_entry:
            raise MapError(ENOENT, "update", self.name)
        super().update(key, value, BPF_ANY)

    def delete(self, key: bytes | int) -> None:
        """Empty a slot (array kinds: EINVAL past the end, 0 when already empty)."""
        if isinstance(key, int):
            key = struct.pack("<I", key)
        key = self._key(key, "delete")
        if not self.array_kind:
            super().delete(key)
            return
        if struct.unpack("<I", key)[0] >= self.spec.max_entries:
            raise MapError(EINVAL, "delete", self.name)
        if self.address_of(key) is not None:
            super().delete(key)

    def __iter__(self):
        keys = list(super().__iter__())
        if self.array_kind:
            keys.sort(key=lambda k: struct.unpack("<I", k)[0])
        return iter(keys)

    def redirect_target(self, key: int) -> int | None:
        """What `bpf_redirect_map(map, key, …)` redirects to, or None (first u32 of the value).

        A device map gives the ifindex, a cpumap the CPU (`key`) when the
        slot is set, an xskmap the socket fd.
        """
        address = self.address_of(struct.pack("<I", key & 0xFFFFFFFF))
        if address is None:
            return None
        value = self.memory.read(address, 4)
        return struct.unpack("<I", value)[0]


class DevMap(RedirectMap):
    """BPF_MAP_TYPE_DEVMAP: index → ifindex (or struct bpf_devmap_val)."""

    def _check_update(self, index: int, value: bytes, flags: int) -> bool:
        ifindex = struct.unpack_from("<I", value)[0]
        if ifindex == 0 and len(value) == 8 and struct.unpack_from("<i", value, 4)[0] > 0:
            raise MapError(EINVAL, "update", self.name, "a program needs an ifindex")
        return ifindex != 0


class DevMapHash(DevMap):
    """BPF_MAP_TYPE_DEVMAP_HASH: any u32 key → ifindex (or struct bpf_devmap_val)."""

    array_kind = False
    noexist_always_fails = False

    def _check_update(self, index: int, value: bytes, flags: int) -> bool:
        # Every element needs a device: dev_get_by_index(0) fails.
        if struct.unpack_from("<I", value)[0] == 0:
            raise MapError(EINVAL, "update", self.name, "ifindex 0")
        return True


class CpuMap(RedirectMap):
    """BPF_MAP_TYPE_CPUMAP: CPU → queue size (or struct bpf_cpumap_val)."""

    def _check_update(self, index: int, value: bytes, flags: int) -> bool:
        qsize = struct.unpack_from("<I", value)[0]
        if qsize > CPUMAP_MAX_QSIZE:
            raise MapError(errno.EOVERFLOW, "update", self.name)
        if self.cpus is not None and index >= self.cpus:
            raise MapError(errno.ENODEV, "update", self.name, f"no CPU {index}")
        return qsize != 0

    def redirect_target(self, key: int) -> int | None:
        """The CPU a redirect through `key` goes to, or None when the slot is empty."""
        return key & 0xFFFFFFFF if super().redirect_target(key) is not None else None


class XskMap(RedirectMap):
    """BPF_MAP_TYPE_XSKMAP: queue index → AF_XDP socket fd."""

    value_sizes = (4,)
    noexist_always_fails = False
    exist_needs_entry = True

    def _check_update(self, index: int, value: bytes, flags: int) -> bool:
        return True


REDIRECT_FAMILIES = {
    MapType.DEVMAP: DevMap,
    MapType.DEVMAP_HASH: DevMapHash,
    MapType.CPUMAP: CpuMap,
    MapType.XSKMAP: XskMap,
}
"""The redirect map class of each map type."""

__all__ = ["CpuMap", "DevMap", "DevMapHash", "REDIRECT_FAMILIES", "RedirectMap", "XskMap"]
