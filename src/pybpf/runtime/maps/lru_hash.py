"""BPF_MAP_TYPE_LRU_HASH and BPF_MAP_TYPE_LRU_PERCPU_HASH, native code and Python class.

An LRU hash is a preallocated hash map (see `hash`) that never says E2BIG:
creating a key in a full map evicts the least recently used element and
reuses it. Flags and errno are the hash map's (BPF_NOEXIST → EEXIST,
BPF_EXIST → ENOENT, unknown flags and BPF_F_LOCK → EINVAL, deleting a
missing key → ENOENT); map flags follow kernel/bpf/hashtab.c
(BPF_F_NO_PREALLOC is ENOTSUPP for LRU maps; BPF_F_NO_COMMON_LRU is
accepted and changes nothing here).

Recency, and how it differs from Linux. The kernel keeps approximate LRU
lists (kernel/bpf/bpf_lru_list.c: one common list with active/inactive
halves, or one per CPU with BPF_F_NO_COMMON_LRU); a program's lookup only
sets a `ref` bit, and the shrinker rotates referenced nodes to the active
list later, evicting a batch of unreferenced ones from the inactive tail.
Here there is one exact, global list ordered by last use: a program's
lookup (native `lookup` with `cpu >= 0`) and every successful update move
the element to the front, and eviction takes exactly the element at the
back. So "recently used elements survive" holds strictly here and only
approximately in Linux, and the kernel may evict earlier than a full map
(it frees nodes per CPU and in batches) where this map evicts only when
all `max_entries` elements are in use. Like Linux since 5.3, a lookup
from the `bpf()` syscall view (`Map.lookup`, native `cpu == -1`) does not
count as a use. Updating an existing key copies in place and needs no
free element (the kernel allocates a fresh one first, which can evict
another key even on a replace in a full map).

Layout: the hash map's element records `{u32 next; u32 hash; key}` with
two more u32s at their end, `lru_prev` and `lru_next` (indices, NO_INDEX
at the ends); the list's head (most recent) and tail (least recent) are
kept in the two u32 words after the bucket array. get_next_key is the
hash map's (same buckets and chains): both families are built by
`hashtable_ir.build_hash_family`, the LRU one with hooks that keep the list.
"""

from __future__ import annotations

from llvmlite import ir

from ...elf.specs import MapSpec
from ..native.irblocks import I32, I64, define, i32, i64, load, load_field, store, widen
from .base import MapError, PerCpuValues
from .hash import HashMap
from .hashtable_ir import (
    ELEM_HASH,
    ELEM_KEY,
    HashTableHooks,
    bucket,
    build_find_link,
    build_hash_family,
    unchain,
)
from .header import NO_INDEX, MapHeader
from .header_ir import element, families_native

LRU_HASH_PREFIX = "pybpf_lru_hash_"
LRU_PERCPU_HASH_PREFIX = "pybpf_lru_percpu_hash_"

BPF_F_NO_PREALLOC = 1 << 0
BPF_F_NO_COMMON_LRU = 1 << 1
ENOTSUPP = 524
"""The kernel-internal "not supported" errno `bpf()` returns for LRU without prealloc."""

LRU_PREV_FROM_END = 8
LRU_NEXT_FROM_END = 4


def _lru_link(b: ir.IRBuilder, header: ir.Value, index: ir.Value, from_end: int) -> ir.Value:
    """Address of element `index`'s lru_prev (from_end 8) or lru_next (4) word."""
    size = widen(b, load_field(b, MapHeader, header, "elem_size"))
    return b.sub(b.add(element(b, header, index), size), i64(from_end))


def _list_end(b: ir.IRBuilder, header: ir.Value, which: int) -> ir.Value:
    """Address of the list head (which 0, most recent) or tail (1, least recent)."""
    n_buckets = load_field(b, MapHeader, header, "n_buckets")
    return bucket(b, header, b.add(n_buckets, i32(which)))


def _point_neighbour(
    b: ir.IRBuilder, header: ir.Value, neighbour: ir.Value, from_end: int, value: ir.Value
) -> None:
    """Set `neighbour`'s link word to `value`, or the list end it stands for.

    With no neighbour (NO_INDEX) the list's head (from_end = next's 4: no
    previous element) or tail (prev's 8: no next element) takes `value`.
    """
    which = 0 if from_end == LRU_NEXT_FROM_END else 1
    with b.if_else(b.icmp_unsigned("!=", neighbour, i32(NO_INDEX))) as (then, otherwise):
        with then:
            store(b, value, _lru_link(b, header, neighbour, from_end))
        with otherwise:
            store(b, value, _list_end(b, header, which))


def _build_list(module: ir.Module) -> tuple[ir.Function, ir.Function]:
    """Internal `unlink(map, index)` and `push_front(map, index)` on the LRU list."""
    unlink, b = define(module, "pybpf.lru_unlink", ir.VoidType(), [I64, I32], internal=True)
    header, index = unlink.args
    prev = load(b, _lru_link(b, header, index, LRU_PREV_FROM_END), I32)
    following = load(b, _lru_link(b, header, index, LRU_NEXT_FROM_END), I32)
    _point_neighbour(b, header, prev, LRU_NEXT_FROM_END, following)
    _point_neighbour(b, header, following, LRU_PREV_FROM_END, prev)
    b.ret_void()

    push, b = define(module, "pybpf.lru_push_front", ir.VoidType(), [I64, I32], internal=True)
    header, index = push.args
    head_address = _list_end(b, header, 0)
    head = load(b, head_address, I32)
    store(b, i32(NO_INDEX), _lru_link(b, header, index, LRU_PREV_FROM_END))
    store(b, head, _lru_link(b, header, index, LRU_NEXT_FROM_END))
    _point_neighbour(b, header, head, LRU_PREV_FROM_END, index)
    store(b, index, head_address)
    b.ret_void()
    return unlink, push


def _lru_hooks(find_link: ir.Function, unlink: ir.Function, push: ir.Function) -> HashTableHooks:
    """The hash table's hooks that keep the LRU list in order of use."""

    def touch(b: ir.IRBuilder, header: ir.Value, index: ir.Value) -> None:
        b.call(unlink, [header, index])
        b.call(push, [header, index])

    def on_lookup_hit(b: ir.IRBuilder, header: ir.Value, index: ir.Value, cpu: ir.Value) -> None:
        # A program's lookup (cpu >= 0) is a use; the syscall's (-1) is not.
        with b.if_then(b.icmp_signed(">=", cpu, i64(0))):
            touch(b, header, index)

    def evict(b: ir.IRBuilder, header: ir.Value) -> ir.Value:
        # The least recently used element, out of its chain and the list.
        victim = load(b, _list_end(b, header, 1), I32)
        elem = element(b, header, victim)
        hash_ = load(b, b.add(elem, i64(ELEM_HASH)), I32)
        link = b.call(find_link, [header, b.add(elem, i64(ELEM_KEY)), hash_])
        unchain(b, header, link, victim)
        b.call(unlink, [header, victim])
        return victim

    return HashTableHooks(
        on_lookup_hit=on_lookup_hit,
        on_replace=touch,
        on_insert=lambda b, header, index: b.call(push, [header, index]),
        on_delete=lambda b, header, index: b.call(unlink, [header, index]),
        when_full=evict,
    )


def build_lru_hash_module(module: ir.Module) -> None:
    """Add the LRU and per-CPU LRU hash operations to `module`."""
    find_link = build_find_link(module)
    hooks = _lru_hooks(find_link, *_build_list(module))
    build_hash_family(module, LRU_HASH_PREFIX, find_link, percpu=False, hooks=hooks)
    build_hash_family(module, LRU_PERCPU_HASH_PREFIX, find_link, percpu=True, hooks=hooks)


LRU_NATIVE = families_native(
    "lru_hash",
    build_lru_hash_module,
    [(LRU_HASH_PREFIX, False), (LRU_PERCPU_HASH_PREFIX, True)],
)
"""Native code of both LRU hash families, compiled on first use."""


class LruHashMap(HashMap):
    """BPF_MAP_TYPE_LRU_HASH: a hash map that evicts its least recently used key when full."""

    module = LRU_NATIVE
    prefix = LRU_HASH_PREFIX
    elem_extra = 8  # lru_prev, lru_next
    bucket_extra = 2  # the LRU list's head and tail

    def check_spec(self, spec: MapSpec) -> None:
        """The hash map's checks, and ENOTSUPP for BPF_F_NO_PREALLOC (as Linux)."""
        super().check_spec(spec)
        if spec.flags & BPF_F_NO_PREALLOC:
            raise MapError(ENOTSUPP, "create", spec.name, "LRU maps are always preallocated")


class LruPerCpuHashMap(PerCpuValues, LruHashMap):
    """BPF_MAP_TYPE_LRU_PERCPU_HASH: an LRU hash map holding one value per simulated CPU."""

    prefix = LRU_PERCPU_HASH_PREFIX
