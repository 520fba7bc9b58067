"""BPF_MAP_TYPE_RINGBUF: the kernel's shared-memory ring buffer, native code and Python class.

Layout, as kernel/bpf/ringbuf.c lays out `struct bpf_ringbuf` (one
page-aligned allocation, page = 4096 bytes):

    page 0             the map header (`RingBufHeader`, the map pointer)
    page 1             consumer page: u64 consumer_pos (user space writes it)
    page 2             producer page: u64 producer_pos, u64 pending_pos
    page 3 …           data area, `max_entries` bytes (a power of two)
    then               overflow tail, `max_entries` more bytes

Positions only grow; a position `p` lives at `data[p & mask]`. A record is
an 8-byte header `{u32 len; u32 pg_off}` followed by `len` bytes, the next
record starting `round_up(len + 8, 8)` later. `len` carries
BPF_RINGBUF_BUSY_BIT while the record is reserved and
BPF_RINGBUF_DISCARD_BIT once discarded; `pg_off` is the record header's
page number counted from the map header, which is how submit and discard
find the ring from a sample pointer alone, as in the kernel.

Wrap-around: the kernel maps the data pages twice in a row, so a record
that runs past the end of the area is contiguous in virtual memory and
its end physically lands at the start of the area. Here the area is
followed by an overflow tail of `max_entries` bytes (the largest possible
record), so a reserved record is contiguous too; submit and discard copy
what was written into the tail back to the start of the data area (before
clearing the busy bit), so a consumer reading `data[pos & mask]` sees the
same bytes as on Linux. Only the data area and its tail are a `Region`
programs may touch; the header and position pages are not.

Reservation follows the kernel (6.10+): under the ring's spinlock, it
advances pending_pos past committed records, refuses a record that would
put producer_pos more than `mask` bytes ahead of consumer_pos or of the
oldest uncommitted record, writes the busy header and publishes the new
producer_pos. The user-space side follows libbpf's ringbuf.c.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from llvmlite import ir

from ...elf.specs import MapSpec
from ..memory import Memory, Region
from ..native import NativeModule
from ..native.irblocks import (
    I32,
    I64,
    branch,
    define,
    errno,
    field_address,
    i32,
    i64,
    load,
    load_field,
    memcpy,
    pointer,
    return_if,
    spin_lock,
    spin_unlock,
    store,
)
from .base import OPERATIONS, Map, MapError, NativeOps, prototypes
from .header import EINVAL, MapHeader, round_up
from .header_ir import part
from .shared import MapMemory

RINGBUF_PREFIX = "pybpf_ringbuf_"

PAGE_SIZE = 4096
BPF_RINGBUF_BUSY_BIT = 1 << 31
BPF_RINGBUF_DISCARD_BIT = 1 << 30
BPF_RINGBUF_HDR_SZ = 8
RINGBUF_MAX_RECORD_SZ = 0xFFFFFFFF // 4
"""Largest sample the kernel reserves (UINT_MAX / 4)."""

BPF_RB_NO_WAKEUP = 1
BPF_RB_FORCE_WAKEUP = 2
BPF_RB_AVAIL_DATA = 0
BPF_RB_RING_SIZE = 1
BPF_RB_CONS_POS = 2
BPF_RB_PROD_POS = 3

BPF_F_NUMA_NODE = 1 << 2
"""The only flag a ringbuf may be created with."""

ENOTSUPP = 524
"""The kernel-internal errno ringbuf lookups/updates return (bpf() passes it through)."""
EAGAIN = _errno.EAGAIN

CONSUMER_PAGE = 1
PRODUCER_PAGE = 2
DATA_PAGE = 3


class RingBufHeader(MapHeader):
    """The map header of a ring buffer: `MapHeader` plus the ring's addresses.

    `consumer`/`producer` are the offsets (from the header) of consumer_pos
    and producer_pos (pending_pos follows producer_pos), `data` the data area's, `mask` its
    size minus one; `wakeups` counts the notifications the kernel would
    send to a waiting consumer (irq_work_queue in the kernel).
    """

    _fields_ = [
        ("mask", ctypes.c_uint64),
        ("consumer", ctypes.c_uint64),
        ("producer", ctypes.c_uint64),
        ("data", ctypes.c_uint64),
        ("wakeups", ctypes.c_uint64),
    ]


def _field(b: ir.IRBuilder, header: ir.Value, name: str) -> ir.Value:
    return load_field(b, RingBufHeader, header, name)


def _release_store(b: ir.IRBuilder, value: ir.Value, address: ir.Value) -> None:
    # smp_store_release; an xchg because llvmlite's store_atomic does not
    # take opaque pointers (see irblocks.spin_unlock).
    b.atomic_rmw("xchg", pointer(b, address), value, "release")


def _record_size(b: ir.IRBuilder, length: ir.Value) -> ir.Value:
    """round_up((len without busy/discard bits) + 8, 8) as i64."""
    size = b.and_(length, i32(~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT) & 0xFFFFFFFF))
    return b.and_(b.add(b.zext(size, I64), i64(BPF_RINGBUF_HDR_SZ + 7)), i64(~7))


def _build_reserve(module: ir.Module) -> ir.Function:
    function, b = define(module, f"{RINGBUF_PREFIX}reserve", I64, [I64, I64, I64])
    header, size, flags = function.args
    return_if(b, b.icmp_unsigned("!=", flags, i64(0)), i64(0), "flags")
    return_if(b, b.icmp_unsigned(">", size, i64(RINGBUF_MAX_RECORD_SZ)), i64(0), "max")
    length = b.and_(b.add(size, i64(BPF_RINGBUF_HDR_SZ + 7)), i64(~7))
    mask = _field(b, header, "mask")
    return_if(b, b.icmp_unsigned(">", length, b.add(mask, i64(1))), i64(0), "total")
    data = part(b, header, "data", RingBufHeader)
    producer = part(b, header, "producer", RingBufHeader)
    pending_at = b.add(producer, i64(8))
    lock = field_address(b, RingBufHeader, header, "lock")
    cons = b.load_atomic(
        pointer(b, part(b, header, "consumer", RingBufHeader)), "acquire", 8, typ=I64
    )
    spin_lock(b, lock)
    prod = load(b, producer, I64)
    pending = b.alloca(I64)
    b.store(load(b, pending_at, I64), pending)
    # Advance pending_pos past records already committed or discarded.
    walk = function.append_basic_block("pending.walk")
    step = function.append_basic_block("pending.step")
    done = function.append_basic_block("pending.done")
    b.branch(walk)
    b.position_at_end(walk)
    pend = b.load(pending)
    b.cbranch(b.icmp_unsigned("<", pend, prod), step, done)
    b.position_at_end(step)
    hdr_len = b.load_atomic(pointer(b, b.add(data, b.and_(pend, mask))), "acquire", 4, typ=I32)
    busy = b.icmp_unsigned("!=", b.and_(hdr_len, i32(BPF_RINGBUF_BUSY_BIT)), i32(0))
    advance = function.append_basic_block("pending.advance")
    b.cbranch(busy, done, advance)
    b.position_at_end(advance)
    b.store(b.add(pend, _record_size(b, hdr_len)), pending)
    b.branch(walk)
    b.position_at_end(done)
    pend = b.load(pending)
    store(b, pend, pending_at)
    new_prod = b.add(prod, length)
    full = b.or_(
        b.icmp_unsigned(">", b.sub(new_prod, cons), mask),
        b.icmp_unsigned(">", b.sub(new_prod, pend), mask),
    )
    no_room, room = branch(b, full, "full")
    b.position_at_end(no_room)
    spin_unlock(b, lock)
    b.ret(i64(0))
    b.position_at_end(room)
    hdr = b.add(data, b.and_(prod, mask))
    store(b, b.or_(b.trunc(size, I32), i32(BPF_RINGBUF_BUSY_BIT)), hdr)
    pg_off = b.trunc(b.lshr(b.sub(hdr, header), i64(12)), I32)
    store(b, pg_off, b.add(hdr, i64(4)))
    _release_store(b, new_prod, producer)
    spin_unlock(b, lock)
    b.ret(b.add(hdr, i64(BPF_RINGBUF_HDR_SZ)))
    return function


def _build_commit(module: ir.Module) -> ir.Function:
    # commit(sample, flags, discard): bpf_ringbuf_commit.
    function, b = define(module, "pybpf.ringbuf_commit", I64, [I64, I64, I64], internal=True)
    sample, flags, discard = function.args
    hdr = b.sub(sample, i64(BPF_RINGBUF_HDR_SZ))
    pg_off = b.zext(load(b, b.add(hdr, i64(4)), I32), I64)
    header = b.sub(b.and_(hdr, i64(~(PAGE_SIZE - 1))), b.shl(pg_off, i64(12)))
    data = part(b, header, "data", RingBufHeader)
    mask = _field(b, header, "mask")
    length = load(b, hdr, I32)
    size = b.zext(
        b.and_(length, i32(~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT) & 0xFFFFFFFF)),
        I64,
    )
    rec_pos = b.sub(hdr, data)
    end = b.add(b.add(rec_pos, i64(BPF_RINGBUF_HDR_SZ)), size)
    ring_size = b.add(mask, i64(1))
    spill, fits = branch(b, b.icmp_unsigned(">", end, ring_size), "spill")
    b.position_at_end(spill)
    # The part written into the overflow tail belongs at the start of the
    # area (where the kernel's second mapping of the data pages points).
    memcpy(b, data, b.add(data, ring_size), b.sub(end, ring_size))
    b.branch(fits)
    b.position_at_end(fits)
    new_len = b.xor(length, i32(BPF_RINGBUF_BUSY_BIT))
    discarded = b.or_(new_len, i32(BPF_RINGBUF_DISCARD_BIT))
    new_len = b.select(b.icmp_unsigned("!=", discard, i64(0)), discarded, new_len)
    b.atomic_rmw("xchg", pointer(b, hdr), new_len, "seq_cst")
    cons = b.load_atomic(
        pointer(b, part(b, header, "consumer", RingBufHeader)), "acquire", 8, typ=I64
    )
    caught_up = b.and_(
        b.icmp_unsigned("==", b.and_(cons, mask), rec_pos),
        b.icmp_unsigned("==", b.and_(flags, i64(BPF_RB_NO_WAKEUP)), i64(0)),
    )
    forced = b.icmp_unsigned("!=", b.and_(flags, i64(BPF_RB_FORCE_WAKEUP)), i64(0))
    wake, quiet = branch(b, b.or_(forced, caught_up), "wake")
    b.position_at_end(wake)
    wakeups = field_address(b, RingBufHeader, header, "wakeups")
    b.atomic_rmw("add", pointer(b, wakeups), i64(1), "monotonic")
    b.branch(quiet)
    b.position_at_end(quiet)
    b.ret(i64(0))
    return function


def build_ringbuf_module(module: ir.Module) -> None:
    """Add the ring buffer's operations to `module`."""
    reserve = _build_reserve(module)
    commit = _build_commit(module)

    for name, discard in (("submit", 0), ("discard", 1)):
        function, b = define(module, f"{RINGBUF_PREFIX}{name}", I64, [I64, I64])
        sample, flags = function.args
        b.ret(b.call(commit, [sample, flags, i64(discard)]))

    # output(map, data, size, flags) -> 0 / -EINVAL / -EAGAIN (bpf_ringbuf_output).
    function, b = define(module, f"{RINGBUF_PREFIX}output", I64, [I64, I64, I64, I64])
    header, source, size, flags = function.args
    allowed = i64(~(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP))
    return_if(b, b.icmp_unsigned("!=", b.and_(flags, allowed), i64(0)), errno(EINVAL), "flags")
    record = b.call(reserve, [header, size, i64(0)])
    return_if(b, b.icmp_unsigned("==", record, i64(0)), errno(EAGAIN), "reserved")
    memcpy(b, record, source, size)
    b.call(commit, [record, flags, i64(0)])
    b.ret(i64(0))

    # query(map, flags) (bpf_ringbuf_query): unknown flags give 0.
    function, b = define(module, f"{RINGBUF_PREFIX}query", I64, [I64, I64])
    header, flags = function.args
    cons = b.load_atomic(
        pointer(b, part(b, header, "consumer", RingBufHeader)), "acquire", 8, typ=I64
    )
    prod = b.load_atomic(
        pointer(b, part(b, header, "producer", RingBufHeader)), "acquire", 8, typ=I64
    )
    size = b.add(_field(b, header, "mask"), i64(1))
    result = i64(0)
    for value, code in (
        (b.sub(prod, cons), BPF_RB_AVAIL_DATA),
        (size, BPF_RB_RING_SIZE),
        (cons, BPF_RB_CONS_POS),
        (prod, BPF_RB_PROD_POS),
    ):
        result = b.select(b.icmp_unsigned("==", flags, i64(code)), value, result)
    b.ret(result)

    # The common map operations: none is supported on a ring buffer.
    function, b = define(module, f"{RINGBUF_PREFIX}lookup", I64, [I64, I64, I64])
    b.ret(i64(0))
    function, b = define(module, f"{RINGBUF_PREFIX}update", I64, [I64, I64, I64, I64, I64])
    b.ret(errno(ENOTSUPP))
    function, b = define(module, f"{RINGBUF_PREFIX}delete", I64, [I64, I64])
    b.ret(errno(ENOTSUPP))
    function, b = define(module, f"{RINGBUF_PREFIX}get_next_key", I64, [I64, I64, I64])
    b.ret(errno(ENOTSUPP))


_U64 = ctypes.c_uint64
RESERVE = ctypes.CFUNCTYPE(_U64, _U64, _U64, _U64)
COMMIT = ctypes.CFUNCTYPE(ctypes.c_int64, _U64, _U64)
OUTPUT = ctypes.CFUNCTYPE(ctypes.c_int64, _U64, ctypes.c_void_p, _U64, _U64)
QUERY = ctypes.CFUNCTYPE(_U64, _U64, _U64)

RINGBUF_NATIVE = NativeModule(
    "ringbuf",
    build_ringbuf_module,
    {
        **prototypes(RINGBUF_PREFIX),
        f"{RINGBUF_PREFIX}reserve": RESERVE,
        f"{RINGBUF_PREFIX}submit": COMMIT,
        f"{RINGBUF_PREFIX}discard": COMMIT,
        f"{RINGBUF_PREFIX}output": OUTPUT,
        f"{RINGBUF_PREFIX}query": QUERY,
    },
)
"""Native code of the ring buffer, compiled on first use."""


@dataclass(frozen=True, slots=True)
class RingBufOps:
    """Native addresses of the ring buffer's own operations (for engines and helpers).

    reserve(map, size, flags) -> sample address or 0; submit(sample, flags)
    and discard(sample, flags) -> 0; output(map, data, size, flags) -> 0 or
    -errno; query(map, flags) -> value.
    """

    reserve: int
    submit: int
    discard: int
    output: int
    query: int


@dataclass(frozen=True, slots=True)
class Record:
    """One committed record: its bytes, and whether the producer discarded it."""

    data: bytes
    discarded: bool


class RingBufRegion(Region):
    """The data area (plus overflow tail) of a ring buffer, as a program sees it.

    `ringbuf` is the owning map, so helpers can tell a ring buffer sample
    pointer from any other pointer.
    """

    __slots__ = ("ringbuf",)


class RingBufMap(Map):
    """BPF_MAP_TYPE_RINGBUF: a multi-producer, single-consumer ring of records.

    `key_size` and `value_size` must be 0 and `max_entries` (the data size in
    bytes) a power of two and a multiple of the page size, else
    `MapError(EINVAL)` at creation, as in the kernel. Lookups, updates,
    deletes and key iteration fail with ENOTSUPP (errno 524) like the
    kernel's; a ring buffer is empty as a mapping.
    """

    module = RINGBUF_NATIVE
    prefix = RINGBUF_PREFIX

    header_type = RingBufHeader

    def __init__(self, spec: MapSpec, memory: Memory, *, ncpus: int | None = None):
        self.spec = spec
        self.memory = memory
        self.name = spec.name
        self.ncpus = 1
        self.check_spec(spec)
        size = spec.max_entries
        shared = MapMemory.create(DATA_PAGE * PAGE_SIZE + 2 * size, spec.name)
        header = RingBufHeader.from_address(shared.address)
        header.type = spec.type
        header.max_entries = size
        header.map_flags = spec.flags
        header.ncpus = 1
        header.mask = size - 1
        header.consumer = CONSUMER_PAGE * PAGE_SIZE
        header.producer = PRODUCER_PAGE * PAGE_SIZE
        header.data = DATA_PAGE * PAGE_SIZE
        self._bind(shared)

    def _bind(self, shared: MapMemory) -> None:
        """Take `shared` as the ring: positions, data area, native entry points."""
        self.shared = shared
        header = RingBufHeader.from_address(shared.address)
        header._region = shared
        self.header = header
        self.size = size = header.max_entries
        self._consumer = _U64.from_address(shared.address + header.consumer)
        self._producer = _U64.from_address(shared.address + header.producer)
        self._pending = _U64.from_address(shared.address + header.producer + 8)
        chunk = shared.view(header.data, 2 * size)
        region = RingBufRegion(
            ctypes.addressof(chunk), 2 * size, True, f"ringbuf {self.name} data", chunk
        )
        region.ringbuf = self
        self.value_region = self.memory.add(region)
        self._data = memoryview(chunk).cast("B")[:size]
        fn = self.module.function
        self._reserve = fn(f"{RINGBUF_PREFIX}reserve")
        self._submit = fn(f"{RINGBUF_PREFIX}submit")
        self._discard = fn(f"{RINGBUF_PREFIX}discard")
        self._output = fn(f"{RINGBUF_PREFIX}output")
        self._query = fn(f"{RINGBUF_PREFIX}query")
        address = self.module.address
        self.native = NativeOps(*(address(f"{RINGBUF_PREFIX}{op}") for op in OPERATIONS))
        self.ringbuf_ops = RingBufOps(
            *(address(f"{RINGBUF_PREFIX}{op}") for op in RingBufOps.__slots__)
        )

    def check_spec(self, spec: MapSpec) -> None:
        """ringbuf_map_alloc: no key or value, a power-of-two, page-aligned size."""
        size = spec.max_entries
        if spec.flags & ~BPF_F_NUMA_NODE:
            raise MapError(EINVAL, "create", spec.name, "unsupported ringbuf map flags")
        if spec.key_size or spec.value_size:
            raise MapError(EINVAL, "create", spec.name, "ringbuf key and value size must be 0")
        if size <= 0 or size & (size - 1) or size % PAGE_SIZE:
            raise MapError(
                EINVAL,
                "create",
                spec.name,
                f"ringbuf size {size} is not a power of two and a multiple of {PAGE_SIZE}",
            )

    # -- shared memory, as a consumer mmaps it -------------------------------------

    @property
    def consumer_pos(self) -> int:
        """The consumer position (user space advances it)."""
        return self._consumer.value

    @consumer_pos.setter
    def consumer_pos(self, value: int) -> None:
        self._consumer.value = value

    @property
    def producer_pos(self) -> int:
        """The producer position (end of the last reserved record)."""
        return self._producer.value

    @property
    def pending_pos(self) -> int:
        """The oldest record not yet committed, as of the last reservation."""
        return self._pending.value

    @property
    def wakeups(self) -> int:
        """How many consumer notifications submits have sent."""
        return self.header.wakeups

    def data(self) -> bytes:
        """A copy of the data area (`max_entries` bytes), as user space maps it."""
        return bytes(self._data)

    def read(self, position: int, size: int) -> bytes:
        """`size` bytes from position `position`, wrapping as the double mapping does."""
        offset = position & (self.size - 1)
        first = self._data[offset : offset + size]
        if len(first) == size:
            return bytes(first)
        return bytes(first) + bytes(self._data[: size - len(first)])

    # -- producer side (what the helpers call) -------------------------------------

    def reserve(self, size: int, flags: int = 0) -> int | None:
        """Reserve a `size`-byte sample; its address, or None when it does not fit."""
        return self._reserve(self.address, size, flags) or None

    def submit(self, sample: int, flags: int = 0) -> None:
        """Commit a reserved sample (clears its busy bit)."""
        self._check_sample(sample)
        self._submit(sample, flags)

    def discard(self, sample: int, flags: int = 0) -> None:
        """Discard a reserved sample (the consumer skips it)."""
        self._check_sample(sample)
        self._discard(sample, flags)

    def output(self, data: bytes, flags: int = 0) -> None:
        """Copy `data` into a new record (bpf_ringbuf_output); MapError on failure."""
        data = bytes(data)
        result = self._output(self.address, data, len(data), flags)
        if result < 0:
            raise MapError(-result, "output", self.name)

    def query(self, flags: int) -> int:
        """bpf_ringbuf_query: BPF_RB_AVAIL_DATA, _RING_SIZE, _CONS_POS, _PROD_POS."""
        return self._query(self.address, flags)

    def _check_sample(self, sample: int) -> None:
        region = self.value_region
        if not region.contains(sample - BPF_RINGBUF_HDR_SZ, BPF_RINGBUF_HDR_SZ):
            raise MapError(EINVAL, "submit", self.name, f"0x{sample:x} is not a sample")
        (length,) = struct.unpack_from(
            "<I", region.view, sample - BPF_RINGBUF_HDR_SZ - region.start
        )
        if not length & BPF_RINGBUF_BUSY_BIT:
            raise MapError(EINVAL, "submit", self.name, "sample is not reserved")

    # -- consumer side (libbpf's ringbuf.c) -----------------------------------------

    def records(self) -> list[Record]:
        """The committed records between consumer and producer, without consuming them.

        Stops at the first record still reserved (busy), as a consumer does.
        """
        found = []
        position, end = self.consumer_pos, self.producer_pos
        while position < end:
            length, _ = struct.unpack("<II", self.read(position, BPF_RINGBUF_HDR_SZ))
            if length & BPF_RINGBUF_BUSY_BIT:
                break
            size = length & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT)
            data = self.read(position + BPF_RINGBUF_HDR_SZ, size)
            found.append(Record(data, bool(length & BPF_RINGBUF_DISCARD_BIT)))
            position += round_up(size + BPF_RINGBUF_HDR_SZ)
        return found

    def consume(self, callback: Callable[[bytes], int | None], limit: int | None = None) -> int:
        """Hand every committed, non-discarded record to `callback`; advance consumer_pos.

        As libbpf's ring_buffer__consume: stops at a busy record; a negative
        callback result stops consumption (the record counts as consumed)
        and is returned; otherwise returns how many records were handed over.
        """
        count = 0
        position = self.consumer_pos
        while True:
            progressed = False
            end = self.producer_pos
            while position < end:
                length, _ = struct.unpack("<II", self.read(position, BPF_RINGBUF_HDR_SZ))
                if length & BPF_RINGBUF_BUSY_BIT:
                    return count
                progressed = True
                size = length & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT)
                sample = position + BPF_RINGBUF_HDR_SZ
                position += round_up(size + BPF_RINGBUF_HDR_SZ)
                if not length & BPF_RINGBUF_DISCARD_BIT:
                    result = callback(self.read(sample, size))
                    if isinstance(result, int) and result < 0:
                        self.consumer_pos = position
                        return result
                    count += 1
                self.consumer_pos = position
                if limit is not None and count >= limit:
                    return count
            if not progressed:
                return count

    def poll(self, callback: Callable[[bytes], int | None], timeout_ms: int = 0) -> int:
        """Wait up to `timeout_ms` (-1: forever) for data, then `consume` it."""
        deadline = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000
        while self.producer_pos == self.consumer_pos:
            if deadline is not None and time.monotonic() >= deadline:
                return 0
            time.sleep(0.001)
        return self.consume(callback)

    # -- the common map operations are not supported --------------------------------

    def lookup(self, key: bytes) -> bytes | None:
        """Not supported on a ring buffer: MapError(ENOTSUPP)."""
        raise MapError(ENOTSUPP, "lookup", self.name, "not supported on a ringbuf")

    def update(self, key: bytes, value: bytes, flags: int = 0) -> None:
        """Not supported on a ring buffer: MapError(ENOTSUPP)."""
        raise MapError(ENOTSUPP, "update", self.name, "not supported on a ringbuf")

    def delete(self, key: bytes) -> None:
        """Not supported on a ring buffer: MapError(ENOTSUPP)."""
        raise MapError(ENOTSUPP, "delete", self.name, "not supported on a ringbuf")

    def get_next_key(self, key: bytes | None = None) -> bytes | None:
        """Not supported on a ring buffer: MapError(ENOTSUPP)."""
        raise MapError(ENOTSUPP, "get_next_key", self.name, "not supported on a ringbuf")

    def address_of(self, key: bytes, cpu: int = 0) -> int | None:
        """A ring buffer has no values to point at: always None."""
        return None

    def __iter__(self):
        return iter(())

    def __len__(self) -> int:
        return 0
