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

import ctypes

from llvmlite import ir

from ..native import NativeModule
from ..native.irblocks import (
    I32,
    I64,
    bytes_equal,
    define,
    errno,
    field_address,
    fnv1a,
    i32,
    i64,
    load,
    load_field,
    memcpy,
    memset,
    spin_lock,
    spin_unlock,
    store,
    store_field,
    widen,
)
from .array import check_update_flags
from .base import Map, PerCpuValues, prototypes
from .fastcall import add_entry_points, entry_prototypes
from .header import (
    BPF_EXIST,
    BPF_NOEXIST,
    E2BIG,
    EEXIST,
    EINVAL,
    ENOENT,
    NO_INDEX,
    MapHeader,
    round_up,
)

HASH_PREFIX = "pybpf_hash_"
PERCPU_HASH_PREFIX = "pybpf_percpu_hash_"

ELEM_NEXT = 0
ELEM_HASH = 4
ELEM_KEY = 8


def _elem(builder: ir.IRBuilder, header: ir.Value, index: ir.Value) -> ir.Value:
    size = widen(builder, load_field(builder, MapHeader, header, "elem_size"))
    elems = load_field(builder, MapHeader, header, "elems")
    return builder.add(elems, builder.mul(widen(builder, index), size))


def _value_block(builder: ir.IRBuilder, header: ir.Value, index: ir.Value) -> ir.Value:
    block = widen(builder, load_field(builder, MapHeader, header, "value_block"))
    values = load_field(builder, MapHeader, header, "values")
    return builder.add(values, builder.mul(widen(builder, index), block))


def _cpu_slot(builder: ir.IRBuilder, header: ir.Value, block: ir.Value, cpu: ir.Value):
    stride = widen(builder, load_field(builder, MapHeader, header, "value_stride"))
    cpu = builder.select(builder.icmp_signed("<", cpu, i64(0)), i64(0), cpu)
    return builder.add(block, builder.mul(cpu, stride))


def _bucket(builder: ir.IRBuilder, header: ir.Value, index: ir.Value) -> ir.Value:
    return builder.add(
        load_field(builder, MapHeader, header, "buckets"),
        builder.mul(widen(builder, index), i64(4)),
    )


def _branch(builder: ir.IRBuilder, condition: ir.Value, name: str) -> tuple:
    """Two new blocks `name.yes`/`name.no`, branched to on `condition`."""
    function = builder.function
    yes = function.append_basic_block(f"{name}.yes")
    no = function.append_basic_block(f"{name}.no")
    builder.cbranch(condition, yes, no)
    return yes, no


def _build_find_link(module: ir.Module) -> ir.Function:
    # find_link(map, key, hash) -> address of the u32 link (bucket head or
    # an element's `next`) that holds the key's element index, or 0.
    function, b = define(module, "pybpf.hash_find_link", I64, [I64, I64, I32], internal=True)
    header, key, hash_ = function.args
    mask = b.sub(load_field(b, MapHeader, header, "n_buckets"), i32(1))
    link = b.alloca(I64)
    b.store(_bucket(b, header, b.and_(hash_, mask)), link)
    key_size = load_field(b, MapHeader, header, "key_size")
    walk = function.append_basic_block("walk")
    b.branch(walk)
    b.position_at_end(walk)
    current = b.load(link)
    index = load(b, current, I32)
    end, live = _branch(b, b.icmp_unsigned("==", index, i32(NO_INDEX)), "end")
    b.position_at_end(end)
    b.ret(i64(0))
    b.position_at_end(live)
    elem = _elem(b, header, index)
    # Compare the stored hash first: most chain neighbours differ there.
    stored = load(b, b.add(elem, i64(ELEM_HASH)), I32)
    maybe, differ = _branch(b, b.icmp_unsigned("==", stored, hash_), "hash")
    b.position_at_end(maybe)
    equal = bytes_equal(b, b.add(elem, i64(ELEM_KEY)), key, key_size)
    found, differ2 = _branch(b, equal, "key")
    b.position_at_end(found)
    b.ret(current)
    for block in (differ, differ2):
        b.position_at_end(block)
        b.store(b.add(elem, i64(ELEM_NEXT)), link)
        b.branch(walk)
    return function


def _copy_value(b, header, index, value, cpu, percpu: bool) -> None:
    block = _value_block(b, header, index)
    if not percpu:
        memcpy(b, block, value, load_field(b, MapHeader, header, "value_size"))
        return
    every, one = _branch(b, b.icmp_signed("<", cpu, i64(0)), "all")
    done = b.function.append_basic_block("copied")
    b.position_at_end(every)
    memcpy(b, block, value, load_field(b, MapHeader, header, "value_block"))
    b.branch(done)
    b.position_at_end(one)
    memcpy(
        b,
        _cpu_slot(b, header, block, cpu),
        value,
        load_field(b, MapHeader, header, "value_size"),
    )
    b.branch(done)
    b.position_at_end(done)


def _locked(module: ir.Module, name: str, inner: ir.Function, prelude=None) -> None:
    """Exported `name`: run `prelude` checks, then `inner` under the map lock."""
    function, b = define(module, name, inner.function_type.return_type, inner.function_type.args)
    if prelude is not None:
        prelude(b, function)
    header = function.args[0]
    lock = field_address(b, MapHeader, header, "lock")
    spin_lock(b, lock)
    result = b.call(inner, list(function.args))
    spin_unlock(b, lock)
    b.ret(result)


def _build_family(module: ir.Module, prefix: str, find_link: ir.Function, percpu: bool) -> None:
    def check_cpu(b: ir.IRBuilder, cpu: ir.Value, header: ir.Value, failure: ir.Value) -> None:
        if not percpu:
            return
        ncpus = widen(b, load_field(b, MapHeader, header, "ncpus"))
        bad, good = _branch(b, b.icmp_signed(">=", cpu, ncpus), "cpu")
        b.position_at_end(bad)
        b.ret(failure)
        b.position_at_end(good)

    # lookup
    inner, b = define(module, f"{prefix}lookup.locked", I64, [I64, I64, I64], internal=True)
    header, key, cpu = inner.args
    check_cpu(b, cpu, header, i64(0))
    hash_ = fnv1a(b, key, load_field(b, MapHeader, header, "key_size"))
    link = b.call(find_link, [header, key, hash_])
    missing, present = _branch(b, b.icmp_unsigned("==", link, i64(0)), "missing")
    b.position_at_end(missing)
    b.ret(i64(0))
    b.position_at_end(present)
    block = _value_block(b, header, load(b, link, I32))
    b.ret(_cpu_slot(b, header, block, cpu) if percpu else block)
    _locked(module, f"{prefix}lookup", inner)

    # update
    inner, b = define(module, f"{prefix}update.locked", I64, [I64] * 5, internal=True)
    header, key, value, flags, cpu = inner.args
    hash_ = fnv1a(b, key, load_field(b, MapHeader, header, "key_size"))
    link = b.call(find_link, [header, key, hash_])
    exists, absent = _branch(b, b.icmp_unsigned("!=", link, i64(0)), "exists")
    b.position_at_end(exists)
    refuse, replace = _branch(b, b.icmp_unsigned("==", flags, i64(BPF_NOEXIST)), "noexist")
    b.position_at_end(refuse)
    b.ret(errno(EEXIST))
    b.position_at_end(replace)
    _copy_value(b, header, load(b, link, I32), value, cpu, percpu)
    b.ret(i64(0))
    b.position_at_end(absent)
    refuse, create = _branch(b, b.icmp_unsigned("==", flags, i64(BPF_EXIST)), "exist")
    b.position_at_end(refuse)
    b.ret(errno(ENOENT))
    b.position_at_end(create)
    free_head = load_field(b, MapHeader, header, "free_head")
    reuse, fresh = _branch(b, b.icmp_unsigned("!=", free_head, i32(NO_INDEX)), "free")
    got = b.function.append_basic_block("allocated")
    b.position_at_end(reuse)
    store_field(b, MapHeader, header, "free_head", load(b, _elem(b, header, free_head), I32))
    b.branch(got)
    b.position_at_end(fresh)
    next_fresh = load_field(b, MapHeader, header, "next_fresh")
    full, take = _branch(
        b,
        b.icmp_unsigned(">=", next_fresh, load_field(b, MapHeader, header, "max_entries")),
        "full",
    )
    b.position_at_end(full)
    b.ret(errno(E2BIG))  # what the kernel returns when a preallocated map is full
    b.position_at_end(take)
    store_field(b, MapHeader, header, "next_fresh", b.add(next_fresh, i32(1)))
    b.branch(got)
    b.position_at_end(got)
    index = b.phi(I32)
    index.add_incoming(free_head, reuse)
    index.add_incoming(next_fresh, take)
    elem = _elem(b, header, index)
    store(b, hash_, b.add(elem, i64(ELEM_HASH)))
    memcpy(b, b.add(elem, i64(ELEM_KEY)), key, load_field(b, MapHeader, header, "key_size"))
    if percpu:
        # A program's update of a new key sets its CPU and zeroes the others
        # (the kernel's pcpu_init_value); reused elements hold stale bytes.
        block_size = load_field(b, MapHeader, header, "value_block")
        memset(b, _value_block(b, header, index), 0, block_size)
    _copy_value(b, header, index, value, cpu, percpu)
    bucket = _bucket(
        b, header, b.and_(hash_, b.sub(load_field(b, MapHeader, header, "n_buckets"), i32(1)))
    )
    store(b, load(b, bucket, I32), b.add(elem, i64(ELEM_NEXT)))
    store(b, index, bucket)
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
    store(b, load(b, elem, I32), link)  # unlink
    store(b, load_field(b, MapHeader, header, "free_head"), elem)
    store_field(b, MapHeader, header, "free_head", index)
    count = load_field(b, MapHeader, header, "count")
    store_field(b, MapHeader, header, "count", b.sub(count, i32(1)))
    b.ret(i64(0))
    _locked(module, f"{prefix}delete", inner)

    # get_next_key
    inner, b = define(module, f"{prefix}get_next_key.locked", I64, [I64] * 3, internal=True)
    header, key, out = inner.args
    key_size = load_field(b, MapHeader, header, "key_size")
    n_buckets = load_field(b, MapHeader, header, "n_buckets")
    start = b.alloca(I32)
    b.store(i32(0), start)
    scan = inner.append_basic_block("scan")
    given, _null = _branch(b, b.icmp_unsigned("!=", key, i64(0)), "given")
    b.position_at_end(_null)
    b.branch(scan)
    b.position_at_end(given)
    hash_ = fnv1a(b, key, key_size)
    link = b.call(find_link, [header, key, hash_])
    found, _missing = _branch(b, b.icmp_unsigned("!=", link, i64(0)), "found")
    b.position_at_end(_missing)
    b.branch(scan)  # a missing key restarts at the first key, as in Linux
    b.position_at_end(found)
    following = load(b, _elem(b, header, load(b, link, I32)), I32)
    chained, chain_end = _branch(b, b.icmp_unsigned("!=", following, i32(NO_INDEX)), "chained")
    b.position_at_end(chained)
    memcpy(b, out, b.add(_elem(b, header, following), i64(ELEM_KEY)), key_size)
    b.ret(i64(0))
    b.position_at_end(chain_end)
    b.store(b.add(b.and_(hash_, b.sub(n_buckets, i32(1))), i32(1)), start)
    b.branch(scan)
    b.position_at_end(scan)
    # Buckets from `start` on: the first non-empty one's head is the answer.
    loop = inner.append_basic_block("bucket")
    b.branch(loop)
    b.position_at_end(loop)
    current = b.load(start)
    done, more = _branch(b, b.icmp_unsigned(">=", current, n_buckets), "done")
    b.position_at_end(done)
    b.ret(errno(ENOENT))
    b.position_at_end(more)
    head = load(b, _bucket(b, header, current), I32)
    hit, empty = _branch(b, b.icmp_unsigned("!=", head, i32(NO_INDEX)), "hit")
    b.position_at_end(hit)
    memcpy(b, out, b.add(_elem(b, header, head), i64(ELEM_KEY)), key_size)
    b.ret(i64(0))
    b.position_at_end(empty)
    b.store(b.add(current, i32(1)), start)
    b.branch(loop)
    _locked(module, f"{prefix}get_next_key", inner)


def build_hash_module(module: ir.Module) -> None:
    """Add the hash and per-CPU hash operations to `module`."""
    find_link = _build_find_link(module)
    _build_family(module, HASH_PREFIX, find_link, percpu=False)
    _build_family(module, PERCPU_HASH_PREFIX, find_link, percpu=True)
    add_entry_points(module, HASH_PREFIX, percpu=False)
    add_entry_points(module, PERCPU_HASH_PREFIX, percpu=True)


HASH_NATIVE = NativeModule(
    "hash",
    build_hash_module,
    {
        **prototypes(HASH_PREFIX),
        **prototypes(PERCPU_HASH_PREFIX),
        **entry_prototypes(HASH_PREFIX, percpu=False),
        **entry_prototypes(PERCPU_HASH_PREFIX, percpu=True),
    },
)
"""Native code of both hash families, compiled on first use."""


class HashMap(Map):
    """BPF_MAP_TYPE_HASH: up to `max_entries` keys, preallocated."""

    module = HASH_NATIVE
    prefix = HASH_PREFIX

    def setup_storage(self, header: MapHeader) -> None:
        """Allocate the element records and the bucket array (all chains empty)."""
        entries = self.spec.max_entries
        header.elem_size = ELEM_KEY + round_up(self.spec.key_size)
        header.n_buckets = 1 << max(0, (entries - 1).bit_length())
        header.free_head = NO_INDEX
        header.next_fresh = 0
        header.count = 0
        self._elems = (ctypes.c_ubyte * (entries * header.elem_size))()
        self._buckets = (ctypes.c_uint32 * header.n_buckets)()
        ctypes.memset(self._buckets, 0xFF, ctypes.sizeof(self._buckets))
        header.elems = ctypes.addressof(self._elems)
        header.buckets = ctypes.addressof(self._buckets)

    def __len__(self) -> int:
        return self.header.count


class PerCpuHashMap(PerCpuValues, HashMap):
    """BPF_MAP_TYPE_PERCPU_HASH: a hash map holding one value per simulated CPU."""

    prefix = PERCPU_HASH_PREFIX
