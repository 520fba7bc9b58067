"""BPF_MAP_TYPE_HASH and BPF_MAP_TYPE_PERCPU_HASH, native code and Python class.

Layout, as a preallocated kernel hash map (kernel/bpf/hashtab.c): a bucket
array of `roundup_pow_of_two(max_entries)` u32 chain heads, and
`max_entries` element records `{u32 next; u32 hash; u8 key[]}` whose values
sit in the map's value region. Free elements are handed out from a LIFO
free list, then from the never-used tail (`next_fresh`), so creating a
map costs nothing per element. New elements go to the head of their chain,
as `hlist_nulls_add_head_rcu` does, and get_next_key walks bucket by
bucket, then down the chain; a missing key restarts at the first key.

The hash is 32-bit FNV-1a of the key bytes (the kernel uses jhash with a
random seed, so its order is not reproducible anyway).

Updating an existing key copies the new value in place. (The kernel
instead links a fresh element and frees the old one, so a program holding
the old value pointer keeps seeing the old bytes; in place is simpler and
keeps value addresses stable.) Every operation takes the map's spinlock;
value pointers stay valid after unlocking because elements are never freed.
"""

from __future__ import annotations

from llvmlite import ir

from ..native.irblocks import branch as _branch  # noqa: F401  (bloom_filter, queue_stack use it)
from .base import Map, PerCpuValues
from .hashtable_ir import ELEM_KEY, build_find_link, build_hash_family
from .header import NO_INDEX, MapHeader, round_up
from .header_ir import families_native
from .shared import StoragePlan

HASH_PREFIX = "pybpf_hash_"
PERCPU_HASH_PREFIX = "pybpf_percpu_hash_"


def build_hash_module(module: ir.Module) -> None:
    """Add the hash and per-CPU hash operations to `module`."""
    find_link = build_find_link(module)
    build_hash_family(module, HASH_PREFIX, find_link, percpu=False)
    build_hash_family(module, PERCPU_HASH_PREFIX, find_link, percpu=True)


HASH_NATIVE = families_native(
    "hash", build_hash_module, [(HASH_PREFIX, False), (PERCPU_HASH_PREFIX, True)]
)
"""Native code of both hash families, compiled on first use."""


class HashMap(Map):
    """BPF_MAP_TYPE_HASH: up to `max_entries` keys, preallocated."""

    lockless_reads = True

    module = HASH_NATIVE
    prefix = HASH_PREFIX
    elem_extra = 0
    """Bytes a family appends to each element record."""
    bucket_extra = 0
    """u32 words a family keeps after the bucket array."""

    def setup_storage(self, header: MapHeader, plan: StoragePlan) -> None:
        """Reserve the element records and the bucket array (all chains empty)."""
        entries = self.spec.max_entries
        header.elem_size = ELEM_KEY + round_up(self.spec.key_size) + self.elem_extra
        header.n_buckets = 1 << max(0, (entries - 1).bit_length())
        header.free_head = NO_INDEX
        header.next_fresh = 0
        header.count = 0
        header.elems = plan.reserve(entries * header.elem_size)
        header.buckets = plan.reserve(4 * (header.n_buckets + self.bucket_extra), fill=0xFF)

    def __len__(self) -> int:
        return self.header.count


class PerCpuHashMap(PerCpuValues, HashMap):
    """BPF_MAP_TYPE_PERCPU_HASH: a hash map holding one value per simulated CPU."""

    prefix = PERCPU_HASH_PREFIX
