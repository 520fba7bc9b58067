"""BPF_MAP_TYPE_BLOOM_FILTER, native code and Python class.

Semantics follow kernel/bpf/bloom_filter.c: no keys (key_size 0), the low
4 bits of `map_extra` give the number of hash functions (0 means 5; any
other bit is EINVAL at creation). `push(value, BPF_ANY)` adds a value (any
other flag is EINVAL), `peek(value)` answers 0 when the value may have been
added and ENOENT when it certainly was not. There is no pop, delete or
get_next_key (EOPNOTSUPP) and no lookup or update with a key (EINVAL, as
for programs; the `bpf()` syscall turns those into peek and push, and so
does `BloomFilterMap.update`).

The bit array has the kernel's size: `max_entries * hashes * 7 / 5` bits
rounded up to a power of two, at least 64, or 2**32 bits when that
overflows. Bit positions come from double hashing of the value's FNV-1a
hash (`h1 + i * h2`) rather than the kernel's seeded jhash, so the exact
bits (and which values are false positives) differ from Linux; a value
once pushed is always found. Bits are set with atomic `or`s, so pushes
need no lock, like the kernel's `set_bit`.

Header fields reused: `elems` is the bit array (u32 words), `n_buckets`
the bit mask (number of bits - 1), `elem_size` the number of hashes.
"""

from __future__ import annotations

import errno as _errno

from llvmlite import ir

from ...elf.specs import MapSpec
from ..native import NativeModule
from ..native.irblocks import (
    I32,
    I64,
    counted_loop,
    define,
    errno,
    fnv1a,
    i32,
    i64,
    load,
    load_field,
    pointer,
)
from .base import Map, MapError, prototypes, queue_prototypes
from .hash import _branch
from .header import BPF_ANY, EINVAL, ENOENT, MapHeader
from .header_ir import part
from .queue_stack import ACCESS_FLAGS, BPF_F_NUMA_NODE, check_access_flags
from .shared import StoragePlan

BLOOM_PREFIX = "pybpf_bloom_"
EOPNOTSUPP = _errno.EOPNOTSUPP
DEFAULT_HASHES = 5
"""Hash functions used when `map_extra` leaves the number at 0 (as Linux)."""


def bloom_bits(max_entries: int, hashes: int) -> int:
    """The bit array size the kernel picks for `max_entries` and `hashes`."""
    bits = max_entries * hashes // 5 * 7
    if bits > 1 << 31:
        return 1 << 32
    return max(64, 1 << max(0, (bits - 1).bit_length()))


def _positions(b: ir.IRBuilder, header: ir.Value, value: ir.Value, each) -> None:
    """Call `each(b, word_address, bit_mask)` for each of the value's bit positions."""
    h1 = fnv1a(b, value, load_field(b, MapHeader, header, "value_size"))
    # A second, independent-enough hash from the first (murmur3's finaliser), odd
    # so that the probe sequence visits distinct bits.
    h2 = b.mul(b.xor(h1, b.lshr(h1, i32(16))), i32(0x85EBCA6B))
    h2 = b.mul(b.xor(h2, b.lshr(h2, i32(13))), i32(0xC2B2AE35))
    h2 = b.or_(b.xor(h2, b.lshr(h2, i32(16))), i32(1))
    mask = load_field(b, MapHeader, header, "n_buckets")
    words = part(b, header, "elems")
    with counted_loop(b, i32(0), load_field(b, MapHeader, header, "elem_size")) as i:
        bit = b.and_(b.add(h1, b.mul(i, h2)), mask)
        word = b.add(words, b.mul(b.zext(b.lshr(bit, i32(5)), I64), i64(4)))
        each(b, word, b.shl(i32(1), b.and_(bit, i32(31))))


def build_bloom_module(module: ir.Module) -> None:
    """Add the bloom filter operations to `module`."""
    function, b = define(module, f"{BLOOM_PREFIX}lookup", I64, [I64, I64, I64])
    b.ret(i64(0))
    for name, arity in (("delete", 2), ("get_next_key", 3), ("pop", 2)):
        function, b = define(module, f"{BLOOM_PREFIX}{name}", I64, [I64] * arity)
        b.ret(errno(EOPNOTSUPP))

    push, b = define(module, f"{BLOOM_PREFIX}push", I64, [I64, I64, I64])
    header, value, flags = push.args
    bad, good = _branch(b, b.icmp_unsigned("!=", flags, i64(BPF_ANY)), "flags")
    b.position_at_end(bad)
    b.ret(errno(EINVAL))
    b.position_at_end(good)

    def set_bit(b: ir.IRBuilder, word: ir.Value, bit: ir.Value) -> None:
        b.atomic_rmw("or", pointer(b, word), bit, "monotonic")

    _positions(b, header, value, set_bit)
    b.ret(i64(0))

    # update(map, key, value, flags, cpu): the syscall's push.
    function, b = define(module, f"{BLOOM_PREFIX}update", I64, [I64] * 5)
    b.ret(b.call(push, [function.args[0], function.args[2], function.args[3]]))

    function, b = define(module, f"{BLOOM_PREFIX}peek", I64, [I64, I64])
    header, value = function.args

    def test_bit(b: ir.IRBuilder, word: ir.Value, bit: ir.Value) -> None:
        clear, present = _branch(
            b, b.icmp_unsigned("==", b.and_(load(b, word, I32), bit), i32(0)), "bit"
        )
        b.position_at_end(clear)
        b.ret(errno(ENOENT))
        b.position_at_end(present)

    _positions(b, header, value, test_bit)
    b.ret(i64(0))


BLOOM_NATIVE = NativeModule(
    "bloom_filter",
    build_bloom_module,
    {**prototypes(BLOOM_PREFIX), **queue_prototypes(BLOOM_PREFIX)},
)
"""Native code of the bloom filter family, compiled on first use."""


class BloomFilterMap(Map):
    """BPF_MAP_TYPE_BLOOM_FILTER: push values, then ask whether one may be present.

    `value in bloom` and `bloom.contains(value)` answer with a bool;
    `peek(value)` raises `MapError(ENOENT)` when it is certainly absent.
    """

    module = BLOOM_NATIVE
    prefix = BLOOM_PREFIX
    queue_ops = True

    def check_spec(self, spec: MapSpec) -> None:
        """EINVAL as the kernel: key size 0, a value size, entries, 4 bits of map_extra."""
        if spec.key_size != 0 or spec.value_size == 0 or spec.max_entries == 0:
            raise MapError(
                EINVAL, "create", spec.name, "needs key size 0, a value size and max_entries"
            )
        if spec.map_extra & ~0xF:
            raise MapError(EINVAL, "create", spec.name, "map_extra above the 4 hash bits")
        check_access_flags(spec, BPF_F_NUMA_NODE | ACCESS_FLAGS)

    def setup_storage(self, header: MapHeader, plan: StoragePlan) -> None:
        """Allocate the zeroed bit array."""
        hashes = self.spec.map_extra & 0xF or DEFAULT_HASHES
        bits = bloom_bits(self.spec.max_entries, hashes)
        self.hashes = hashes
        self.bits = bits
        header.elems = plan.reserve(bits // 8)
        header.n_buckets = bits - 1
        header.elem_size = hashes

    def peek(self, value: bytes) -> bytes:  # type: ignore[override]
        """`value` itself when it may be present; MapError(ENOENT) when it is not."""
        peek = self._queue_function("peek")
        value = self._value(value, "peek")
        self._error(peek(self.address, value), "peek")
        return value

    def contains(self, value: bytes) -> bool:
        """True when `value` may have been pushed (false positives are possible)."""
        try:
            self.peek(value)
        except MapError as error:
            if error.errno == ENOENT:
                return False
            raise
        return True

    def __contains__(self, value: object) -> bool:
        return isinstance(value, (bytes, bytearray, memoryview)) and self.contains(bytes(value))

    def lookup(self, key: bytes = b"") -> bytes | None:
        """Not available: a bloom filter holds no values to return (EINVAL)."""
        raise MapError(EINVAL, "lookup", self.name, "a bloom filter answers peek(value)")

    def update(self, key: bytes, value: bytes, flags: int = BPF_ANY) -> None:
        """A push (the key must be empty)."""
        self._key(key, "update")
        self.push(value, flags)

    def __iter__(self):
        return iter(())

    def __len__(self) -> int:
        return 0
