"""A map's whole state as bytes, and back: what the daemon persists of a pinned map.

A map's region (`shared.MapMemory`) holds everything about it — header,
values, element records, buckets, recency lists, ring positions — as
offsets from the header, so its bytes are its state, wherever it is mapped
next. `snapshot` copies them under the map's spinlock (natively, so that no
locked operation of any process is half-done in the copy); `restore` writes
them into a fresh map of the same family and spec, then clears the lock
word and the sequence counter (the copy was taken with the lock held).

A snapshot is stamped with `LAYOUT`: the layout version of map regions.
Bytes stamped otherwise are refused, since another pybpf may lay a family
out differently. Families whose state is partly in Python (`Map.shareable`
False: program arrays, maps of maps, device maps) have no snapshot.
"""

from __future__ import annotations

import ctypes
import errno
import struct

from llvmlite import ir

from ...errors import MapError
from ..native import NativeModule
from ..native.irblocks import I64, define, i64, memcpy, spin_lock, spin_unlock
from .base import Map
from .header import MapHeader

LAYOUT = 1
"""Version of the map region layout; bump it when any family's layout changes."""
_STAMP = struct.Struct("<4sII")
"""magic, layout version, region size."""
MAGIC = b"PBMS"
SNAPSHOT = "pybpf_map_snapshot"


def _build(module: ir.Module) -> None:
    function, b = define(module, SNAPSHOT, I64, [I64, I64, I64])
    header, out, size = function.args
    lock = b.add(header, i64(MapHeader.lock.offset))
    spin_lock(b, lock)
    memcpy(b, out, header, size)
    spin_unlock(b, lock)
    b.ret(i64(0))


SNAPSHOT_NATIVE = NativeModule(
    "map_snapshot",
    _build,
    {SNAPSHOT: ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64)},
)


def snapshot(map_: Map) -> bytes:
    """The map's region as stamped bytes, copied under its lock."""
    if not map_.shareable:
        raise MapError(errno.EOPNOTSUPP, "snapshot", map_.name, "its state is not all in memory")
    size = map_.shared.size
    out = ctypes.create_string_buffer(size)
    SNAPSHOT_NATIVE.function(SNAPSHOT)(map_.address, out, size)
    return _STAMP.pack(MAGIC, LAYOUT, size) + out.raw


def restore(map_: Map, data: bytes) -> None:
    """Put a snapshot's state into `map_` (a fresh map of the same family and spec)."""
    magic, layout, size = _STAMP.unpack_from(data)
    body = memoryview(data)[_STAMP.size :]
    if magic != MAGIC or layout != LAYOUT:
        raise MapError(
            errno.EINVAL, "restore", map_.name, f"snapshot layout {layout} is not {LAYOUT}"
        )
    if size != map_.shared.size or len(body) != size:
        raise MapError(errno.EINVAL, "restore", map_.name, "snapshot size does not match the map")
    saved = MapHeader.from_buffer_copy(body[: ctypes.sizeof(MapHeader)])
    header = map_.header
    for field in ("type", "key_size", "value_size", "max_entries", "map_flags", "ncpus"):
        if getattr(saved, field) != getattr(header, field):
            raise MapError(errno.EINVAL, "restore", map_.name, f"snapshot {field} differs")
    ctypes.memmove(map_.address, bytes(body), size)
    header.lock = 0
    header.seq = 0
