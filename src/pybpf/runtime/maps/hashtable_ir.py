"""The native code of a preallocated hash table, shared by the hash and LRU families.

Layout (see `hash` for the semantics): a bucket array of
`n_buckets` (a power of two) u32 chain heads, and element records
`{u32 next; u32 hash; u8 key[]}` (`elem_size` bytes apart, a family may
append its own words) whose values sit in the map's value region. Free
elements come from a LIFO free list, then from the never-used tail
(`next_fresh`). New elements go to the head of their chain, and
get_next_key walks bucket by bucket, then down the chain.

`build_hash_family` writes lookup, update, delete and get_next_key once;
a family that keeps more state per element (the LRU list) hooks into it
with `HashTableHooks`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llvmlite import ir

from ..native.irblocks import (
    I32,
    I64,
    branch,
    bytes_equal,
    define,
    errno,
    fnv1a,
    i32,
    i64,
    load,
    load_field,
    memcpy,
    memset,
    return_if,
    store,
    store_field,
    widen,
)
from .header import E2BIG, EINVAL, ENOENT, NO_INDEX, MapHeader
from .header_ir import (
    check_cpu,
    check_update_flags,
    copy_value,
    cpu_slot,
    element,
    locked,
    part,
    read_locklessly,
    split_on_existence,
    value_block,
)

ELEM_NEXT = 0
ELEM_HASH = 4
ELEM_KEY = 8

ElementHook = Callable[[ir.IRBuilder, ir.Value, ir.Value], None]
"""`hook(builder, header, index)`: emitted with the map locked."""


@dataclass(frozen=True)
class HashTableHooks:
    """What a family adds to the hash table's operations (all optional).

    `on_lookup_hit(b, header, index, cpu)` runs when a lookup finds its key,
    `on_replace` after an update copied a new value into an existing
    element, `on_insert` once a new element is in its chain, `on_delete`
    once a deleted element is out of its chain. `when_full(b, header)`
    runs when no element is free: it must return the index of an element it
    took out of the table (and leave the builder in a block that may
    branch on); without it a full map returns E2BIG, as the kernel does.
    """

    on_lookup_hit: Callable[[ir.IRBuilder, ir.Value, ir.Value, ir.Value], None] | None = None
    on_replace: ElementHook | None = None
    on_insert: ElementHook | None = None
    on_delete: ElementHook | None = None
    when_full: Callable[[ir.IRBuilder, ir.Value], ir.Value] | None = None


def bucket(b: ir.IRBuilder, header: ir.Value, index: ir.Value) -> ir.Value:
    """Address of the u32 word `index` of the bucket array."""
    return b.add(part(b, header, "buckets"), b.mul(widen(b, index), i64(4)))


def hash_bucket(b: ir.IRBuilder, header: ir.Value, hash_: ir.Value) -> ir.Value:
    """Address of the chain head for an i32 `hash_`."""
    mask = b.sub(load_field(b, MapHeader, header, "n_buckets"), i32(1))
    return bucket(b, header, b.and_(hash_, mask))


def key_hash(b: ir.IRBuilder, header: ir.Value, key: ir.Value) -> ir.Value:
    """The i32 hash of the key at `key` (FNV-1a of `key_size` bytes)."""
    return fnv1a(b, key, load_field(b, MapHeader, header, "key_size"))


def build_find_link(module: ir.Module) -> ir.Function:
    """Internal `find_link(map, key, hash) -> i64`, the table's one search.

    The result is the address of the u32 link (a bucket head or an
    element's `next`) that holds the key's element index, or 0 when the key
    is absent; storing into it unlinks or replaces the element.
    """
    function, b = define(module, "pybpf.hash_find_link", I64, [I64, I64, I32], internal=True)
    header, key, hash_ = function.args
    link = b.alloca(I64)
    steps = b.alloca(I32)
    b.store(hash_bucket(b, header, hash_), link)
    b.store(i32(0), steps)
    key_size = load_field(b, MapHeader, header, "key_size")
    max_entries = load_field(b, MapHeader, header, "max_entries")
    walk = function.append_basic_block("walk")
    b.branch(walk)
    b.position_at_end(walk)
    # A chain holds at most max_entries elements; a lock-free reader racing a writer
    # that moves elements between chains may see a longer walk, even a cycle: it gives
    # up (its seqlock check then retries).
    taken = b.load(steps)
    b.store(b.add(taken, i32(1)), steps)
    return_if(b, b.icmp_unsigned(">", taken, max_entries), i64(0), "too_long")
    current = b.load(link)
    index = load(b, current, I32)
    return_if(b, b.icmp_unsigned("==", index, i32(NO_INDEX)), i64(0), "end")
    elem = element(b, header, index)
    # Compare the stored hash first: most chain neighbours differ there.
    stored = load(b, b.add(elem, i64(ELEM_HASH)), I32)
    maybe, differ = branch(b, b.icmp_unsigned("==", stored, hash_), "hash")
    b.position_at_end(maybe)
    equal = bytes_equal(b, b.add(elem, i64(ELEM_KEY)), key, key_size)
    found, differ2 = branch(b, equal, "key")
    b.position_at_end(found)
    b.ret(current)
    for block in (differ, differ2):
        b.position_at_end(block)
        b.store(b.add(elem, i64(ELEM_NEXT)), link)
        b.branch(walk)
    return function


def _allocate(b: ir.IRBuilder, header: ir.Value, hooks: HashTableHooks) -> ir.Value:
    """A free element's index: the free list, the fresh tail, else `when_full`."""
    got = b.function.append_basic_block("allocated")
    free_head = load_field(b, MapHeader, header, "free_head")
    reuse, not_free = branch(b, b.icmp_unsigned("!=", free_head, i32(NO_INDEX)), "free")
    b.position_at_end(reuse)
    store_field(b, MapHeader, header, "free_head", load(b, element(b, header, free_head), I32))
    b.branch(got)
    b.position_at_end(not_free)
    next_fresh = load_field(b, MapHeader, header, "next_fresh")
    max_entries = load_field(b, MapHeader, header, "max_entries")
    full, take = branch(b, b.icmp_unsigned(">=", next_fresh, max_entries), "full")
    b.position_at_end(take)
    store_field(b, MapHeader, header, "next_fresh", b.add(next_fresh, i32(1)))
    b.branch(got)
    b.position_at_end(full)
    if hooks.when_full is None:
        b.ret(errno(E2BIG))  # what the kernel returns when a preallocated map is full
    else:
        victim = hooks.when_full(b, header)
        evicted = b.block
        b.branch(got)
    b.position_at_end(got)
    index = b.phi(I32)
    index.add_incoming(free_head, reuse)
    index.add_incoming(next_fresh, take)
    if hooks.when_full is not None:
        index.add_incoming(victim, evicted)
    return index


def _add_count(b: ir.IRBuilder, header: ir.Value, delta: int) -> None:
    count = load_field(b, MapHeader, header, "count")
    store_field(b, MapHeader, header, "count", b.add(count, i32(delta)))


def unchain(b: ir.IRBuilder, header: ir.Value, link: ir.Value, index: ir.Value) -> None:
    """Take element `index`, held by `link`, out of its chain and the count."""
    store(b, load(b, b.add(element(b, header, index), i64(ELEM_NEXT)), I32), link)
    _add_count(b, header, -1)


def build_hash_family(
    module: ir.Module,
    prefix: str,
    find_link: ir.Function,
    percpu: bool,
    hooks: HashTableHooks | None = None,
) -> None:
    """Add `{prefix}lookup/update/delete/get_next_key` of a hash table to `module`.

    Updates, deletes and get_next_key run under the map's lock, lookups
    without it (`read_locklessly`) unless the family records hits; `find_link` comes from
    `build_find_link` (one per module). `hooks` adds a family's own work.
    """
    hooks = hooks or HashTableHooks()
    # lookup(map, key, cpu) -> value address or 0
    inner, b = define(module, f"{prefix}lookup.locked", I64, [I64, I64, I64], internal=True)
    header, key, cpu = inner.args
    if percpu:
        check_cpu(b, header, cpu, i64(0))
    link = b.call(find_link, [header, key, key_hash(b, header, key)])
    return_if(b, b.icmp_unsigned("==", link, i64(0)), i64(0), "missing")
    index = load(b, link, I32)
    if hooks.on_lookup_hit is not None:
        hooks.on_lookup_hit(b, header, index, cpu)
    block = value_block(b, header, index)
    b.ret(cpu_slot(b, header, block, cpu) if percpu else block)
    if hooks.on_lookup_hit is None:  # a pure read: no lock, as the kernel's RCU lookups
        read_locklessly(module, f"{prefix}lookup", inner)
    else:  # the family records the hit (LRU): a write, under the lock
        locked(module, f"{prefix}lookup", inner)

    # update(map, key, value, flags, cpu) -> 0 / -errno
    inner, b = define(module, f"{prefix}update.locked", I64, [I64] * 5, internal=True)
    header, key, value, flags, cpu = inner.args
    hash_ = key_hash(b, header, key)
    link = b.call(find_link, [header, key, hash_])
    replace, create = split_on_existence(b, b.icmp_unsigned("!=", link, i64(0)), flags)
    b.position_at_end(replace)
    index = load(b, link, I32)
    copy_value(b, header, value_block(b, header, index), value, cpu, percpu)
    if hooks.on_replace is not None:
        hooks.on_replace(b, header, index)
    b.ret(i64(0))
    b.position_at_end(create)
    index = _allocate(b, header, hooks)
    elem = element(b, header, index)
    store(b, hash_, b.add(elem, i64(ELEM_HASH)))
    memcpy(b, b.add(elem, i64(ELEM_KEY)), key, load_field(b, MapHeader, header, "key_size"))
    block = value_block(b, header, index)
    if percpu:
        # A program's update of a new key sets its CPU and zeroes the others
        # (the kernel's pcpu_init_value); reused elements hold stale bytes.
        memset(b, block, 0, load_field(b, MapHeader, header, "value_block"))
    copy_value(b, header, block, value, cpu, percpu)
    head = hash_bucket(b, header, hash_)
    store(b, load(b, head, I32), b.add(elem, i64(ELEM_NEXT)))
    store(b, index, head)
    if hooks.on_insert is not None:
        hooks.on_insert(b, header, index)
    _add_count(b, header, 1)
    b.ret(i64(0))

    def update_prelude(b: ir.IRBuilder, function: ir.Function) -> None:
        header, _key, _value, flags, cpu = function.args
        check_update_flags(b, function, flags)
        if percpu:
            check_cpu(b, header, cpu, errno(EINVAL))

    locked(module, f"{prefix}update", inner, update_prelude)

    # delete(map, key) -> 0 / -ENOENT
    inner, b = define(module, f"{prefix}delete.locked", I64, [I64, I64], internal=True)
    header, key = inner.args
    link = b.call(find_link, [header, key, key_hash(b, header, key)])
    return_if(b, b.icmp_unsigned("==", link, i64(0)), errno(ENOENT), "missing")
    index = load(b, link, I32)
    unchain(b, header, link, index)
    if hooks.on_delete is not None:
        hooks.on_delete(b, header, index)
    store(b, load_field(b, MapHeader, header, "free_head"), element(b, header, index))
    store_field(b, MapHeader, header, "free_head", index)
    b.ret(i64(0))
    locked(module, f"{prefix}delete", inner)

    _build_get_next_key(module, prefix, find_link)


def _build_get_next_key(module: ir.Module, prefix: str, find_link: ir.Function) -> None:
    # get_next_key(map, key, out): the element after `key` in its chain, else
    # the head of the next non-empty bucket; a missing key restarts at the
    # first key, as in Linux. A seqlock reader, as lookup is (the kernel's
    # walk is under RCU): it never writes the map, so a read-only mapping
    # of it can iterate; stores go to `out` only, rewritten on a retry.
    inner, b = define(module, f"{prefix}get_next_key.read", I64, [I64] * 3, internal=True)
    header, key, out = inner.args
    key_size = load_field(b, MapHeader, header, "key_size")
    n_buckets = load_field(b, MapHeader, header, "n_buckets")
    start = b.alloca(I32)
    b.store(i32(0), start)
    scan = inner.append_basic_block("scan")
    given, none = branch(b, b.icmp_unsigned("!=", key, i64(0)), "given")
    b.position_at_end(none)
    b.branch(scan)
    b.position_at_end(given)
    hash_ = key_hash(b, header, key)
    link = b.call(find_link, [header, key, hash_])
    found, missing = branch(b, b.icmp_unsigned("!=", link, i64(0)), "found")
    b.position_at_end(missing)
    b.branch(scan)
    b.position_at_end(found)
    following = load(b, element(b, header, load(b, link, I32)), I32)
    chained, chain_end = branch(b, b.icmp_unsigned("!=", following, i32(NO_INDEX)), "chained")
    b.position_at_end(chained)
    memcpy(b, out, b.add(element(b, header, following), i64(ELEM_KEY)), key_size)
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
    return_if(b, b.icmp_unsigned(">=", current, n_buckets), errno(ENOENT), "done")
    head = load(b, bucket(b, header, current), I32)
    hit, empty = branch(b, b.icmp_unsigned("!=", head, i32(NO_INDEX)), "hit")
    b.position_at_end(hit)
    memcpy(b, out, b.add(element(b, header, head), i64(ELEM_KEY)), key_size)
    b.ret(i64(0))
    b.position_at_end(empty)
    b.store(b.add(current, i32(1)), start)
    b.branch(loop)
    read_locklessly(module, f"{prefix}get_next_key", inner)
