"""BPF_MAP_TYPE_LPM_TRIE, native code and Python class.

Keys have the kernel's layout, `struct bpf_lpm_trie_key`: a native-endian
u32 `prefixlen` followed by `key_size - 4` data bytes compared bit by bit
from the most significant bit of `data[0]` (network order), so
`max_prefixlen` is `8 * (key_size - 4)`. Semantics follow
kernel/bpf/lpm_trie.c as of Linux 6.13+:

- creation needs BPF_F_NO_PREALLOC, no flags outside NO_PREALLOC, NUMA
  and the access flags, 1 to 256 data bytes and a value (else EINVAL);
- lookup is the longest prefix match: among entries whose `prefixlen` is
  at most the key's and whose first `prefixlen` bits equal the key's, the
  longest one (programs look up with `prefixlen = max_prefixlen`);
- update matches exactly (same prefixlen, same first prefixlen bits):
  flags above BPF_EXIST or a prefixlen above the maximum are EINVAL,
  BPF_NOEXIST on an existing entry EEXIST, BPF_EXIST on a missing one
  ENOENT, a new entry in a full map ENOSPC; an update stores the key's data
  bytes as given (bits past prefixlen included), as the kernel's node does;
- delete matches exactly (EINVAL above the maximum, ENOENT if absent);
- get_next_key follows the kernel's post-order walk of its trie: more
  specific prefixes before the prefixes that cover them, and otherwise
  ordered by the first differing bit (0 before 1). A missing or invalid
  key (or none) gives the first entry; the last gives ENOENT.

Structure: not a trie but a table of `max_entries` slots `{u32 prefixlen;
u8 data[]}` (a freed slot has prefixlen 0xFFFFFFFF) scanned in full by
every operation, values at the matching index of the value region. That
makes every operation O(entries) instead of O(prefix bits), but the
order above is exactly the post-order of the kernel's (canonical) trie, so
all observable results are the kernel's. Slots never move, so a value
pointer stays valid until its entry is deleted; an update of an existing
entry writes the value in place (the kernel swaps in a new node). Every
operation holds the map's spinlock (the kernel's lookups are lock-free
under RCU).

Header fields used: `elems` (the slot table), `elem_size` (slot stride),
`next_fresh` (slots ever used: the scan bound), `count` (entries).
"""

from __future__ import annotations

import struct

from llvmlite import ir

from ...elf.specs import MapSpec
from ..native.irblocks import (
    I1,
    I8,
    I32,
    I64,
    branch,
    bytes_equal,
    counted_loop,
    define,
    errno,
    i32,
    i64,
    load,
    load_field,
    memcpy,
    return_if,
    store,
    store_field,
    widen,
)
from .base import Map, MapError
from .header import BPF_EXIST, EINVAL, ENOENT, NO_INDEX, MapHeader
from .header_ir import element, families_native, locked, split_on_existence, value_block
from .queue_stack import ACCESS_FLAGS, BPF_F_NUMA_NODE, check_access_flags
from .shared import StoragePlan

LPM_PREFIX = "pybpf_lpm_trie_"
BPF_F_NO_PREALLOC = 1 << 0
ENOSPC = 28
LPM_DATA_SIZE_MIN = 1
LPM_DATA_SIZE_MAX = 256
FREE = NO_INDEX
"""`prefixlen` of a free slot."""


def lpm_key(prefixlen: int, data: bytes) -> bytes:
    """A `struct bpf_lpm_trie_key` as bytes: native-endian prefixlen, then `data`."""
    return struct.pack("=I", prefixlen) + bytes(data)


def _data_size(b: ir.IRBuilder, header: ir.Value) -> ir.Value:
    return b.sub(load_field(b, MapHeader, header, "key_size"), i32(4))


def _tail_mask(b: ir.IRBuilder, bits: ir.Value) -> ir.Value:
    """i8 mask of the first `bits & 7` bits of a byte (0xFF when that is 0)."""
    rem = b.and_(bits, i32(7))
    partial = b.and_(b.lshr(i32(0xFF00), rem), i32(0xFF))
    return b.trunc(b.select(b.icmp_unsigned("==", rem, i32(0)), i32(0xFF), partial), I8)


def _build_prefix_match(module: ir.Module) -> ir.Function:
    # prefix_match(a, b, bits) -> i1: the first `bits` bits at a and b are equal.
    function, b = define(module, "pybpf.lpm_prefix_match", I1, [I64, I64, I32], internal=True)
    a, other, bits = function.args
    whole = b.lshr(bits, i32(3))
    return_if(b, b.not_(bytes_equal(b, a, other, whole)), ir.Constant(I1, 0), "bytes")
    partial, exact = branch(b, b.icmp_unsigned("!=", b.and_(bits, i32(7)), i32(0)), "partial")
    b.position_at_end(exact)
    b.ret(ir.Constant(I1, 1))
    b.position_at_end(partial)
    x = b.xor(load(b, b.add(a, widen(b, whole)), I8), load(b, b.add(other, widen(b, whole)), I8))
    b.ret(b.icmp_unsigned("==", b.and_(x, _tail_mask(b, bits)), ir.Constant(I8, 0)))
    return function


def _build_before(module: ir.Module) -> ir.Function:
    # before(a, b) -> i1: entry/key a comes strictly before b in the kernel's
    # post-order. Over the shorter prefix, the first differing bit decides
    # (0 first): with the bits above it equal, comparing the masked bytes
    # unsigned gives the same answer. Else the longer (more specific) first.
    function, b = define(module, "pybpf.lpm_before", I1, [I64, I64], internal=True)
    a, other = function.args
    la, lb = load(b, a, I32), load(b, other, I32)
    shorter = b.select(b.icmp_unsigned("<", la, lb), la, lb)
    nbytes = b.lshr(b.add(shorter, i32(7)), i32(3))
    last_mask = _tail_mask(b, shorter)
    decided = function.append_basic_block("decided")
    with counted_loop(b, i32(0), nbytes) as i:
        mask = b.select(
            b.icmp_unsigned("==", i, b.sub(nbytes, i32(1))), last_mask, ir.Constant(I8, 0xFF)
        )
        x = b.and_(load(b, b.add(a, widen(b, b.add(i, i32(4)))), I8), mask)
        y = b.and_(load(b, b.add(other, widen(b, b.add(i, i32(4)))), I8), mask)
        unequal = b.icmp_unsigned("!=", x, y)
        verdict = b.icmp_unsigned("<", x, y)
        here = b.block
        next_byte = function.append_basic_block("next_byte")
        b.cbranch(unequal, decided, next_byte)
        b.position_at_end(next_byte)
    b.ret(b.icmp_unsigned(">", la, lb))
    b.position_at_end(decided)
    result = b.phi(I1)
    result.add_incoming(verdict, here)
    b.ret(result)
    return function


def _build_find_exact(module: ir.Module, prefix_match: ir.Function) -> ir.Function:
    # find_exact(map, key, free_out) -> slot index or NO_INDEX; stores the
    # first free slot below next_fresh (or NO_INDEX) at free_out.
    function, b = define(module, "pybpf.lpm_find_exact", I32, [I64, I64, I64], internal=True)
    header, key, free_out = function.args
    store(b, i32(NO_INDEX), free_out)
    plen = load(b, key, I32)
    with counted_loop(b, i32(0), load_field(b, MapHeader, header, "next_fresh")) as i:
        slot = element(b, header, i)
        length = load(b, slot, I32)
        free, used = branch(b, b.icmp_unsigned("==", length, i32(FREE)), "free")
        following = function.append_basic_block("following")
        b.position_at_end(free)
        first = b.icmp_unsigned("==", load(b, free_out, I32), i32(NO_INDEX))
        with b.if_then(first):
            store(b, i, free_out)
        b.branch(following)
        b.position_at_end(used)
        same_length, _other = branch(b, b.icmp_unsigned("==", length, plen), "length")
        b.position_at_end(_other)
        b.branch(following)
        b.position_at_end(same_length)
        match = b.call(prefix_match, [b.add(slot, i64(4)), b.add(key, i64(4)), plen])
        found, _differ = branch(b, match, "match")
        b.position_at_end(found)
        b.ret(i)
        b.position_at_end(_differ)
        b.branch(following)
        b.position_at_end(following)
    b.ret(i32(NO_INDEX))
    return function


def _check_prefixlen(b: ir.IRBuilder, header: ir.Value, key: ir.Value) -> None:
    too_long = b.icmp_unsigned(">", load(b, key, I32), b.mul(_data_size(b, header), i32(8)))
    return_if(b, too_long, errno(EINVAL), "prefixlen")


def build_lpm_module(module: ir.Module) -> None:
    """Add the LPM trie operations to `module`."""
    prefix_match = _build_prefix_match(module)
    before = _build_before(module)
    find_exact = _build_find_exact(module, prefix_match)

    # lookup: the longest matching prefix, scanning every slot.
    inner, b = define(module, f"{LPM_PREFIX}lookup.locked", I64, [I64, I64, I64], internal=True)
    header, key, _cpu = inner.args
    best = b.alloca(I32)
    best_length = b.alloca(I32)
    b.store(i32(NO_INDEX), best)
    b.store(i32(0), best_length)
    plen = load(b, key, I32)
    with counted_loop(b, i32(0), load_field(b, MapHeader, header, "next_fresh")) as i:
        slot = element(b, header, i)
        length = load(b, slot, I32)
        # Free slots have prefixlen 0xFFFFFFFF, above any key's: never candidates.
        candidate = b.and_(
            b.icmp_unsigned("<=", length, plen),
            b.or_(
                b.icmp_unsigned("==", b.load(best), i32(NO_INDEX)),
                b.icmp_unsigned(">", length, b.load(best_length)),
            ),
        )
        check, skip = branch(b, candidate, "candidate")
        following = inner.append_basic_block("following")
        b.position_at_end(check)
        match = b.call(prefix_match, [b.add(slot, i64(4)), b.add(key, i64(4)), length])
        with b.if_then(match):
            b.store(i, best)
            b.store(length, best_length)
        b.branch(following)
        b.position_at_end(skip)
        b.branch(following)
        b.position_at_end(following)
    found = b.load(best)
    b.ret(
        b.select(b.icmp_unsigned("==", found, i32(NO_INDEX)), i64(0), value_block(b, header, found))
    )
    locked(module, f"{LPM_PREFIX}lookup", inner)

    # update
    inner, b = define(module, f"{LPM_PREFIX}update.locked", I64, [I64] * 5, internal=True)
    header, key, value, flags, _cpu = inner.args
    free = b.alloca(I32)
    index = b.call(find_exact, [header, key, b.ptrtoint(free, I64)])
    key_size = load_field(b, MapHeader, header, "key_size")
    value_size = load_field(b, MapHeader, header, "value_size")
    replace, create = split_on_existence(b, b.icmp_unsigned("!=", index, i32(NO_INDEX)), flags)
    b.position_at_end(replace)
    memcpy(b, element(b, header, index), key, key_size)
    memcpy(b, value_block(b, header, index), value, value_size)
    b.ret(i64(0))
    b.position_at_end(create)
    count = load_field(b, MapHeader, header, "count")
    max_entries = load_field(b, MapHeader, header, "max_entries")
    return_if(b, b.icmp_unsigned(">=", count, max_entries), errno(ENOSPC), "full")
    free_slot = b.load(free)
    next_fresh = load_field(b, MapHeader, header, "next_fresh")
    fresh = b.icmp_unsigned("==", free_slot, i32(NO_INDEX))
    with b.if_then(fresh):
        store_field(b, MapHeader, header, "next_fresh", b.add(next_fresh, i32(1)))
    target = b.select(fresh, next_fresh, free_slot)
    memcpy(b, element(b, header, target), key, key_size)
    memcpy(b, value_block(b, header, target), value, value_size)
    store_field(b, MapHeader, header, "count", b.add(count, i32(1)))
    b.ret(i64(0))

    def update_prelude(b: ir.IRBuilder, function: ir.Function) -> None:
        header, key, _value, flags, _cpu = function.args
        return_if(b, b.icmp_unsigned(">", flags, i64(BPF_EXIST)), errno(EINVAL), "flags")
        _check_prefixlen(b, header, key)

    locked(module, f"{LPM_PREFIX}update", inner, update_prelude)

    # delete
    inner, b = define(module, f"{LPM_PREFIX}delete.locked", I64, [I64, I64], internal=True)
    header, key = inner.args
    free = b.alloca(I32)
    index = b.call(find_exact, [header, key, b.ptrtoint(free, I64)])
    return_if(b, b.icmp_unsigned("==", index, i32(NO_INDEX)), errno(ENOENT), "missing")
    store(b, i32(FREE), element(b, header, index))
    count = load_field(b, MapHeader, header, "count")
    store_field(b, MapHeader, header, "count", b.sub(count, i32(1)))
    b.ret(i64(0))
    locked(
        module,
        f"{LPM_PREFIX}delete",
        inner,
        lambda b, function: _check_prefixlen(b, function.args[0], function.args[1]),
    )

    # get_next_key: the first entry after `key` in post-order (or the first).
    inner, b = define(module, f"{LPM_PREFIX}get_next_key.locked", I64, [I64] * 3, internal=True)
    header, key, out = inner.args
    # Every alloca in the entry block: one inside the loop would grow the stack.
    after = b.alloca(I64)  # the key to start after, 0 for "from the first"
    free = b.alloca(I32)
    later = b.alloca(I1)
    better = b.alloca(I1)
    best = b.alloca(I32)
    result = b.alloca(I64)
    b.store(i64(0), after)
    given = b.icmp_unsigned("!=", key, i64(0))
    with b.if_then(given):
        valid = b.icmp_unsigned("<=", load(b, key, I32), b.mul(_data_size(b, header), i32(8)))
        with b.if_then(valid):
            exact = b.call(find_exact, [header, key, b.ptrtoint(free, I64)])
            with b.if_then(b.icmp_unsigned("!=", exact, i32(NO_INDEX))):
                b.store(key, after)
    b.store(i32(NO_INDEX), best)
    start = b.load(after)
    with counted_loop(b, i32(0), load_field(b, MapHeader, header, "next_fresh")) as i:
        slot = element(b, header, i)
        used = b.icmp_unsigned("!=", load(b, slot, I32), i32(FREE))
        with b.if_then(used):
            b.store(ir.Constant(I1, 1), later)
            with b.if_then(b.icmp_unsigned("!=", start, i64(0))):
                b.store(b.call(before, [start, slot]), later)
            with b.if_then(b.load(later)):
                current = b.load(best)
                first = b.icmp_unsigned("==", current, i32(NO_INDEX))
                b.store(first, better)
                with b.if_then(b.not_(first)):
                    b.store(b.call(before, [slot, element(b, header, current)]), better)
                with b.if_then(b.load(better)):
                    b.store(i, best)
    found = b.load(best)
    b.store(errno(ENOENT), result)
    with b.if_then(b.icmp_unsigned("!=", found, i32(NO_INDEX))):
        memcpy(b, out, element(b, header, found), load_field(b, MapHeader, header, "key_size"))
        b.store(i64(0), result)
    b.ret(b.load(result))
    locked(module, f"{LPM_PREFIX}get_next_key", inner)


LPM_NATIVE = families_native("lpm_trie", build_lpm_module, [(LPM_PREFIX, False)])
"""Native code of the LPM trie family, compiled on first use."""


class LpmTrieMap(Map):
    """BPF_MAP_TYPE_LPM_TRIE: longest-prefix match over `struct bpf_lpm_trie_key` keys.

    Build keys with `lpm_key(prefixlen, data)`. `max_prefixlen` is the
    number of data bits.
    """

    module = LPM_NATIVE
    prefix = LPM_PREFIX

    def check_spec(self, spec: MapSpec) -> None:
        """EINVAL where the kernel's trie_alloc refuses the attributes."""
        data_size = spec.key_size - 4
        if (
            spec.max_entries == 0
            or not spec.flags & BPF_F_NO_PREALLOC
            or not LPM_DATA_SIZE_MIN <= data_size <= LPM_DATA_SIZE_MAX
            or spec.value_size == 0
        ):
            raise MapError(
                EINVAL,
                "create",
                spec.name,
                "an LPM trie needs BPF_F_NO_PREALLOC, 1 to 256 data bytes, a value and entries",
            )
        check_access_flags(spec, BPF_F_NO_PREALLOC | BPF_F_NUMA_NODE | ACCESS_FLAGS)

    @property
    def max_prefixlen(self) -> int:
        """Bits of key data: the longest prefix an entry can have."""
        return 8 * (self.spec.key_size - 4)

    def setup_storage(self, header: MapHeader, plan: StoragePlan) -> None:
        """Allocate the slot table (empty: no slot used yet)."""
        header.elem_size = (self.spec.key_size + 3) // 4 * 4  # keep prefixlen words aligned
        header.next_fresh = 0
        header.count = 0
        header.elems = plan.reserve(self.spec.max_entries * header.elem_size)

    def __len__(self) -> int:
        return self.header.count
