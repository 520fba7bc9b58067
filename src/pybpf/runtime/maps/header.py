"""`MapHeader`: the native header every map starts with, and the flag and errno numbers.

The ctypes structure is the only definition of the layout: native code
reaches the fields through `irblocks.load_field(builder, MapHeader, …)`,
which reads the offsets from it. A map pointer handed to native code (the
`map` argument of every native operation, and what an engine passes for an
`lddw` of a map) is the address of this header.
"""

from __future__ import annotations

import ctypes
import errno

BPF_ANY = 0
"""Create a new element or update an existing one."""
BPF_NOEXIST = 1
"""Create a new element only if it did not exist."""
BPF_EXIST = 2
"""Update an existing element only."""
BPF_F_LOCK = 4
"""Update under the value's bpf_spin_lock (not modelled: always EINVAL)."""

ENOENT = errno.ENOENT
E2BIG = errno.E2BIG
EEXIST = errno.EEXIST
EINVAL = errno.EINVAL
EPERM = errno.EPERM

NO_INDEX = 0xFFFFFFFF
"""End of a hash chain or of the free list."""


def round_up(value: int, multiple: int = 8) -> int:
    """`value` rounded up to a multiple of `multiple` (the kernel's round_up)."""
    return (value + multiple - 1) // multiple * multiple


class MapHeader(ctypes.Structure):
    """Per-map state shared by Python and native code.

    `lock` is the spinlock word taken by updates and deletes; `seq` is a
    sequence counter every locked operation makes odd while it runs and even
    again after, so that lock-free readers (hash lookups, as the kernel's
    are under RCU) can tell that a writer ran beside them and retry. Values live at `values`: element `i`, CPU `c` is at
    `values + i * value_block + c * value_stride`, so one element's per-CPU
    values are contiguous in libbpf's buffer layout. Hash maps add `elems`
    (element records: next index, hash, key) and `buckets` (u32 chain heads).
    """

    _fields_ = [
        ("lock", ctypes.c_uint32),
        ("type", ctypes.c_uint32),
        ("key_size", ctypes.c_uint32),
        ("value_size", ctypes.c_uint32),
        ("max_entries", ctypes.c_uint32),
        ("map_flags", ctypes.c_uint32),
        ("value_stride", ctypes.c_uint32),  # round_up(value_size, 8), the kernel's elem_size
        ("value_block", ctypes.c_uint32),  # value_stride * ncpus (ncpus = 1 unless per-CPU)
        ("ncpus", ctypes.c_uint32),
        ("count", ctypes.c_uint32),  # live elements of a hash map
        ("n_buckets", ctypes.c_uint32),  # a power of two
        ("free_head", ctypes.c_uint32),  # first free hash element, NO_INDEX if full
        ("elem_size", ctypes.c_uint32),  # bytes per hash element record
        ("next_fresh", ctypes.c_uint32),  # hash: first element never handed out yet
        ("values", ctypes.c_uint64),
        ("elems", ctypes.c_uint64),
        ("buckets", ctypes.c_uint64),
        ("seq", ctypes.c_uint32),  # bumped twice by every locked operation (odd: writing)
        ("_seq_pad", ctypes.c_uint32),
    ]
