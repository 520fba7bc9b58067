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
hash map's (same buckets and chains), compiled from `hash`'s builder.
"""

from __future__ import annotations

import ctypes

from llvmlite import ir

from ...elf.specs import MapSpec
from ..native import NativeModule
from ..native.irblocks import (
    I32,
    I64,
    define,
    errno,
    fnv1a,
    i32,
    i64,
    load,
    load_field,
    memcpy,
    memset,
    store,
    store_field,
    widen,
)
from .array import check_update_flags
from .base import Map, MapError, PerCpuValues, prototypes
from .fastcall import add_entry_points, entry_prototypes
from .hash import (
    ELEM_HASH,
    ELEM_KEY,
    ELEM_NEXT,
    _branch,
    _bucket,
    _build_find_link,
    _copy_value,
    _cpu_slot,
    _elem,
    _locked,
    _value_block,
)
from .hash import (
    _build_family as _build_hash_family,
)
from .header import (
    BPF_EXIST,
    BPF_NOEXIST,
    EEXIST,
    EINVAL,
    ENOENT,
    NO_INDEX,
    MapHeader,
    round_up,
)

LRU_HASH_PREFIX = "pybpf_lru_hash_"
LRU_PERCPU_HASH_PREFIX = "pybpf_lru_percpu_hash_"
_CORE_PREFIX = "pybpf_lru_core_"

BPF_F_NO_PREALLOC = 1 << 0
BPF_F_NO_COMMON_LRU = 1 << 1
ENOTSUPP = 524
"""The kernel-internal "not supported" errno `bpf()` returns for LRU without prealloc."""

LRU_PREV_FROM_END = 8
LRU_NEXT_FROM_END = 4


def _lru_link(b: ir.IRBuilder, header: ir.Value, index: ir.Value, from_end: int) -> ir.Value:
    """Address of element `index`'s lru_prev (from_end 8) or lru_next (4) word."""
    size = widen(b, load_field(b, MapHeader, header, "elem_size"))
    return b.sub(b.add(_elem(b, header, index), size), i64(from_end))


def _list_end(b: ir.IRBuilder, header: ir.Value, which: int) -> ir.Value:
    """Address of the list head (which 0, most recent) or tail (1, least recent)."""
    n_buckets = load_field(b, MapHeader, header, "n_buckets")
    return _bucket(b, header, b.add(n_buckets, i32(which)))


def _build_list(module: ir.Module) -> tuple[ir.Function, ir.Function]:
    """Internal `unlink(map, index)` and `push_front(map, index)` on the LRU list."""
    unlink, b = define(module, "pybpf.lru_unlink", ir.VoidType(), [I64, I32], internal=True)
    header, index = unlink.args
    prev = load(b, _lru_link(b, header, index, LRU_PREV_FROM_END), I32)
    following = load(b, _lru_link(b, header, index, LRU_NEXT_FROM_END), I32)
    has_prev = b.icmp_unsigned("!=", prev, i32(NO_INDEX))
    with b.if_else(has_prev) as (then, otherwise):
        with then:
            store(b, following, _lru_link(b, header, prev, LRU_NEXT_FROM_END))
        with otherwise:
            store(b, following, _list_end(b, header, 0))
    has_next = b.icmp_unsigned("!=", following, i32(NO_INDEX))
    with b.if_else(has_next) as (then, otherwise):
        with then:
            store(b, prev, _lru_link(b, header, following, LRU_PREV_FROM_END))
        with otherwise:
            store(b, prev, _list_end(b, header, 1))
    b.ret_void()

    push, b = define(module, "pybpf.lru_push_front", ir.VoidType(), [I64, I32], internal=True)
    header, index = push.args
    head_address = _list_end(b, header, 0)
    head = load(b, head_address, I32)
    store(b, i32(NO_INDEX), _lru_link(b, header, index, LRU_PREV_FROM_END))
    store(b, head, _lru_link(b, header, index, LRU_NEXT_FROM_END))
    with b.if_else(b.icmp_unsigned("!=", head, i32(NO_INDEX))) as (then, otherwise):
        with then:
            store(b, index, _lru_link(b, header, head, LRU_PREV_FROM_END))
        with otherwise:
            store(b, index, _list_end(b, header, 1))
    store(b, index, head_address)
    b.ret_void()
    return unlink, push


def _build_family(
    module: ir.Module,
    prefix: str,
    find_link: ir.Function,
    unlink: ir.Function,
    push_front: ir.Function,
    get_next_key: ir.Function,
    percpu: bool,
) -> None:
    def touch(b: ir.IRBuilder, header: ir.Value, index: ir.Value) -> None:
        b.call(unlink, [header, index])
        b.call(push_front, [header, index])

    def check_cpu(b: ir.IRBuilder, cpu: ir.Value, header: ir.Value, failure: ir.Value) -> None:
        if not percpu:
            return
        ncpus = widen(b, load_field(b, MapHeader, header, "ncpus"))
        bad, good = _branch(b, b.icmp_signed(">=", cpu, ncpus), "cpu")
        b.position_at_end(bad)
        b.ret(failure)
        b.position_at_end(good)

    # lookup: a program's lookup (cpu >= 0) is a use; the syscall's (-1) is not.
    inner, b = define(module, f"{prefix}lookup.locked", I64, [I64, I64, I64], internal=True)
    header, key, cpu = inner.args
    check_cpu(b, cpu, header, i64(0))
    hash_ = fnv1a(b, key, load_field(b, MapHeader, header, "key_size"))
    link = b.call(find_link, [header, key, hash_])
    missing, present = _branch(b, b.icmp_unsigned("==", link, i64(0)), "missing")
    b.position_at_end(missing)
    b.ret(i64(0))
    b.position_at_end(present)
    index = load(b, link, I32)
    with b.if_then(b.icmp_signed(">=", cpu, i64(0))):
        touch(b, header, index)
    block = _value_block(b, header, index)
    b.ret(_cpu_slot(b, header, block, cpu) if percpu else block)
    _locked(module, f"{prefix}lookup", inner)

    # update
    inner, b = define(module, f"{prefix}update.locked", I64, [I64] * 5, internal=True)
    header, key, value, flags, cpu = inner.args
    key_size = load_field(b, MapHeader, header, "key_size")
    hash_ = fnv1a(b, key, key_size)
    link = b.call(find_link, [header, key, hash_])
    exists, absent = _branch(b, b.icmp_unsigned("!=", link, i64(0)), "exists")
    b.position_at_end(exists)
    refuse, replace = _branch(b, b.icmp_unsigned("==", flags, i64(BPF_NOEXIST)), "noexist")
    b.position_at_end(refuse)
    b.ret(errno(EEXIST))
    b.position_at_end(replace)
    index = load(b, link, I32)
    _copy_value(b, header, index, value, cpu, percpu)
    touch(b, header, index)
    b.ret(i64(0))
    b.position_at_end(absent)
    refuse, create = _branch(b, b.icmp_unsigned("==", flags, i64(BPF_EXIST)), "exist")
    b.position_at_end(refuse)
    b.ret(errno(ENOENT))
    b.position_at_end(create)
    got = b.function.append_basic_block("allocated")
    free_head = load_field(b, MapHeader, header, "free_head")
    reuse, not_free = _branch(b, b.icmp_unsigned("!=", free_head, i32(NO_INDEX)), "free")
    b.position_at_end(reuse)
    store_field(b, MapHeader, header, "free_head", load(b, _elem(b, header, free_head), I32))
    b.branch(got)
    b.position_at_end(not_free)
    next_fresh = load_field(b, MapHeader, header, "next_fresh")
    full, take = _branch(
        b,
        b.icmp_unsigned(">=", next_fresh, load_field(b, MapHeader, header, "max_entries")),
        "full",
    )
    b.position_at_end(take)
    store_field(b, MapHeader, header, "next_fresh", b.add(next_fresh, i32(1)))
    b.branch(got)
    b.position_at_end(full)
    # Evict the least recently used element: out of its chain and the list.
    victim = load(b, _list_end(b, header, 1), I32)
    victim_elem = _elem(b, header, victim)
    victim_link = b.call(
        find_link,
        [
            header,
            b.add(victim_elem, i64(ELEM_KEY)),
            load(b, b.add(victim_elem, i64(ELEM_HASH)), I32),
        ],
    )
    store(b, load(b, b.add(victim_elem, i64(ELEM_NEXT)), I32), victim_link)
    b.call(unlink, [header, victim])
    count = load_field(b, MapHeader, header, "count")
    store_field(b, MapHeader, header, "count", b.sub(count, i32(1)))
    evicted = b.block
    b.branch(got)
    b.position_at_end(got)
    index = b.phi(I32)
    index.add_incoming(free_head, reuse)
    index.add_incoming(next_fresh, take)
    index.add_incoming(victim, evicted)
    elem = _elem(b, header, index)
    store(b, hash_, b.add(elem, i64(ELEM_HASH)))
    memcpy(b, b.add(elem, i64(ELEM_KEY)), key, key_size)
    if percpu:
        # A new key's other CPUs start at zero (the kernel's pcpu_init_value).
        memset(
            b, _value_block(b, header, index), 0, load_field(b, MapHeader, header, "value_block")
        )
    _copy_value(b, header, index, value, cpu, percpu)
    bucket = _bucket(
        b, header, b.and_(hash_, b.sub(load_field(b, MapHeader, header, "n_buckets"), i32(1)))
    )
    store(b, load(b, bucket, I32), b.add(elem, i64(ELEM_NEXT)))
    store(b, index, bucket)
    b.call(push_front, [header, index])
    count = load_field(b, MapHeader, header, "count")
    store_field(b, MapHeader, header, "count", b.add(count, i32(1)))
    b.ret(i64(0))

    def update_prelude(b: ir.IRBuilder, function: ir.Function) -> None:
        header, _key, _value, flags, cpu = function.args
        check_update_flags(b, function, flags)
        check_cpu(b, cpu, header, errno(EINVAL))

    _locked(module, f"{prefix}update", inner, update_prelude)

    # delete
    inner, b = define(module, f"{prefix}delete.locked", I64, [I64, I64], internal=True)
    header, key = inner.args
    hash_ = fnv1a(b, key, load_field(b, MapHeader, header, "key_size"))
    link = b.call(find_link, [header, key, hash_])
    missing, present = _branch(b, b.icmp_unsigned("==", link, i64(0)), "missing")
    b.position_at_end(missing)
    b.ret(errno(ENOENT))
    b.position_at_end(present)
    index = load(b, link, I32)
    elem = _elem(b, header, index)
    store(b, load(b, elem, I32), link)  # out of the chain
    b.call(unlink, [header, index])
    store(b, load_field(b, MapHeader, header, "free_head"), elem)
    store_field(b, MapHeader, header, "free_head", index)
    count = load_field(b, MapHeader, header, "count")
    store_field(b, MapHeader, header, "count", b.sub(count, i32(1)))
    b.ret(i64(0))
    _locked(module, f"{prefix}delete", inner)

    # get_next_key: the hash map's walk (it takes the lock itself).
    function, b = define(module, f"{prefix}get_next_key", I64, [I64] * 3)
    b.ret(b.call(get_next_key, list(function.args)))


def build_lru_hash_module(module: ir.Module) -> None:
    """Add the LRU and per-CPU LRU hash operations to `module`."""
    find_link = _build_find_link(module)
    # The plain hash family's code, kept internal: only its get_next_key is used.
    _build_hash_family(module, _CORE_PREFIX, find_link, percpu=False)
    for name in ("lookup", "update", "delete", "get_next_key"):
        module.get_global(f"{_CORE_PREFIX}{name}").linkage = "internal"
    get_next_key = module.get_global(f"{_CORE_PREFIX}get_next_key")
    unlink, push_front = _build_list(module)
    for prefix, percpu in ((LRU_HASH_PREFIX, False), (LRU_PERCPU_HASH_PREFIX, True)):
        _build_family(module, prefix, find_link, unlink, push_front, get_next_key, percpu)
        add_entry_points(module, prefix, percpu)


LRU_NATIVE = NativeModule(
    "lru_hash",
    build_lru_hash_module,
    {
        **prototypes(LRU_HASH_PREFIX),
        **prototypes(LRU_PERCPU_HASH_PREFIX),
        **entry_prototypes(LRU_HASH_PREFIX, percpu=False),
        **entry_prototypes(LRU_PERCPU_HASH_PREFIX, percpu=True),
    },
)
"""Native code of both LRU hash families, compiled on first use."""


class LruHashMap(Map):
    """BPF_MAP_TYPE_LRU_HASH: a hash map that evicts its least recently used key when full."""

    module = LRU_NATIVE
    prefix = LRU_HASH_PREFIX

    def check_spec(self, spec: MapSpec) -> None:
        """The hash map's checks, and ENOTSUPP for BPF_F_NO_PREALLOC (as Linux)."""
        super().check_spec(spec)
        if spec.flags & BPF_F_NO_PREALLOC:
            raise MapError(ENOTSUPP, "create", spec.name, "LRU maps are always preallocated")

    def setup_storage(self, header: MapHeader) -> None:
        """Element records, buckets (all chains empty) and an empty LRU list."""
        entries = self.spec.max_entries
        header.elem_size = ELEM_KEY + round_up(self.spec.key_size) + 8
        header.n_buckets = 1 << max(0, (entries - 1).bit_length())
        header.free_head = NO_INDEX
        header.next_fresh = 0
        header.count = 0
        self._elems = (ctypes.c_ubyte * (entries * header.elem_size))()
        # Two more words after the buckets: the LRU list's head and tail.
        self._buckets = (ctypes.c_uint32 * (header.n_buckets + 2))()
        ctypes.memset(self._buckets, 0xFF, ctypes.sizeof(self._buckets))
        header.elems = ctypes.addressof(self._elems)
        header.buckets = ctypes.addressof(self._buckets)

    def __len__(self) -> int:
        return self.header.count


class LruPerCpuHashMap(PerCpuValues, LruHashMap):
    """BPF_MAP_TYPE_LRU_PERCPU_HASH: an LRU hash map holding one value per simulated CPU."""

    prefix = LRU_PERCPU_HASH_PREFIX
