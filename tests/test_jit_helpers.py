"""Native helpers of the JIT (`engine.jit.helpers_ir`) against the interpreter's Python helpers.

Each emitter is compiled into a small test function
``i64 f(i64 r1, .., i64 r5, RunState* run)`` that makes one helper call,
run through ctypes, and compared with the Python helper of the Linux
table on the same (or an identical) map, packet or context.
"""

from __future__ import annotations

import ctypes
import itertools
import random
import struct
import time
from pathlib import Path

import pytest
from llvmlite import ir

from pybpf.elf.map_types import MapType
from pybpf.elf.specs import MapSpec
from pybpf.engine.jit import helpers_ir, native_maps
from pybpf.engine.jit.abi import RunState
from pybpf.engine.jit.helper_registry import NATIVE_EMITTERS, HelperSite
from pybpf.platform import ProgramType
from pybpf.platform.contexts import SK_BUFF
from pybpf.platform.helper_ids import HelperId as H
from pybpf.platform.program_type_info import context_access
from pybpf.runtime.context import ExecutionContext
from pybpf.runtime.helpers import HelperEnv
from pybpf.runtime.linux_helpers import linux_helpers
from pybpf.runtime.linux_helpers.packet import sync_packet_region
from pybpf.runtime.maps import create_map, lpm_key
from pybpf.runtime.memory import Memory, PointerTable, Region, pointer_slot
from pybpf.runtime.native.compiler import _get_engine

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TABLE = linux_helpers()
I64 = ir.IntType(64)
M64 = (1 << 64) - 1
_names = itertools.count()
_U64 = ctypes.c_uint64
TEST_FUNCTION = ctypes.CFUNCTYPE(_U64, _U64, _U64, _U64, _U64, _U64, ctypes.c_void_p)


def native(helper_id: int, runtime=None, r1_constant: int | None = None, text: list | None = None):
    """A ctypes callable ``f(r1..r5, run)`` making one native call of `helper_id`."""
    module = ir.Module(name=f"jit-helper-test-{next(_names)}")
    module.triple = _get_engine().triple
    name = f"pybpf_jit_helper_test_{next(_names)}"
    fn = ir.Function(module, ir.FunctionType(I64, [I64] * 5 + [ir.PointerType()]), name=name)
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    *args, run = fn.args
    site = HelperSite(builder, module, list(args), run, runtime, TABLE, 0, r1_constant, None)
    r0 = NATIVE_EMITTERS[int(helper_id)](site)
    assert r0 is not None, f"helper {helper_id} fell back to Python"
    builder.ret(r0)
    source = str(module)
    if text is not None:
        text.append(source)
    _get_engine().add(module.name, source)
    return TEST_FUNCTION(_get_engine().address(name))


def python(helper_id: int, env: HelperEnv, *args: int) -> int:
    """The interpreter's helper result, as the u64 r0 holds."""
    padded = (list(args) + [0] * 5)[:5]
    return TABLE.get(int(helper_id)).impl(env, *padded) & M64


class Scratch:
    """Native scratch memory registered in a `Memory` (keys, values, samples)."""

    def __init__(self, memory: Memory, size: int = 4096):
        self.region = memory.allocate(size, "scratch")
        self.next = self.region.start

    def put(self, data: bytes) -> int:
        address = self.next
        assert address + len(data) <= self.region.end, "scratch memory is full"
        ctypes.memmove(address, data, len(data))
        self.next += (len(data) + 7) // 8 * 8 + 8
        return address


@pytest.fixture
def runtime():
    return ExecutionContext(ncpus=4)


def new_map(runtime, *args, **kw):
    map_ = create_map(MapSpec(*args, **kw), runtime.memory, ncpus=runtime.ncpus)
    runtime.add_map(map_)
    return map_


def test_every_listed_helper_is_registered():
    assert set(helpers_ir.NATIVE_HELPERS) <= set(NATIVE_EMITTERS)
    for helper in (H.MAP_LOOKUP_ELEM, H.RINGBUF_SUBMIT, H.XDP_ADJUST_HEAD, H.KTIME_GET_NS):
        assert int(helper) in NATIVE_EMITTERS


# -- maps ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [MapType.ARRAY, MapType.PERCPU_ARRAY])
@pytest.mark.parametrize("constant", [True, False])
def test_array_lookup_matches_the_interpreter(runtime, kind, constant):
    array = new_map(runtime, "a", kind, 4, 12, 5)
    scratch = Scratch(runtime.memory)
    text: list[str] = []
    lookup = native(H.MAP_LOOKUP_ELEM, runtime, array.address if constant else None, text)
    if constant:  # inlined: no call at all
        assert "call" not in text[0].split("define", 1)[1]
    state = RunState()
    for cpu, index in itertools.product((0, 3, 4, 7), (0, 4, 5, 0xFFFFFFFF)):
        state.cpu = cpu
        key = scratch.put(struct.pack("<I", index))
        env = HelperEnv(runtime.memory, runtime=runtime, cpu=cpu)
        got = lookup(array.address, key, 0, 0, 0, ctypes.addressof(state))
        assert got == python(H.MAP_LOOKUP_ELEM, env, array.address, key), (cpu, index)


def _families():
    yield "hash", (MapType.HASH, 4, 8, 8), lambda i: struct.pack("<I", i)
    yield "percpu_hash", (MapType.PERCPU_HASH, 4, 8, 8), lambda i: struct.pack("<I", i)
    yield "lru_hash", (MapType.LRU_HASH, 4, 8, 4), lambda i: struct.pack("<I", i)
    yield "lru_percpu", (MapType.LRU_PERCPU_HASH, 4, 8, 4), lambda i: struct.pack("<I", i)
    yield "array", (MapType.ARRAY, 4, 8, 8), lambda i: struct.pack("<I", i)
    yield "percpu_array", (MapType.PERCPU_ARRAY, 4, 8, 8), lambda i: struct.pack("<I", i)
    yield (
        "lpm",
        (MapType.LPM_TRIE, 8, 8, 8),
        lambda i: lpm_key((i * 7) % 33, bytes([10, i % 4, 0, 0])),
    )


@pytest.mark.parametrize(("name", "spec", "make_key"), list(_families()), ids=lambda v: str(v))
@pytest.mark.parametrize("constant", [True, False])
def test_map_operations_match_the_interpreter(name, spec, make_key, constant):
    """The same random operations on two identical maps: one natively, one in Python."""
    flags = 1 if spec[0] == MapType.LPM_TRIE else 0  # BPF_F_NO_PREALLOC, as the kernel wants
    sides = []
    for _ in range(2):
        rt = ExecutionContext(ncpus=3)
        map_ = new_map(rt, name, *spec, flags=flags)
        sides.append((rt, map_, Scratch(rt.memory, 1 << 16)))
    (rt_n, map_n, mem_n), (rt_p, map_p, mem_p) = sides
    ops = {
        h: native(h, rt_n, map_n.address if constant else None)
        for h in (H.MAP_LOOKUP_ELEM, H.MAP_UPDATE_ELEM, H.MAP_DELETE_ELEM)
    }
    state = RunState()
    rng = random.Random(7)
    for step in range(300):
        helper = rng.choice(list(ops))
        index, cpu, flag = rng.randrange(12), rng.randrange(4), rng.choice((0, 0, 1, 2, 4))
        value = struct.pack("<Q", step)
        state.cpu = cpu
        key_n, key_p = mem_n.put(make_key(index)), mem_p.put(make_key(index))
        val_n, val_p = mem_n.put(value), mem_p.put(value)
        got = ops[helper](map_n.address, key_n, val_n, flag, 0, ctypes.addressof(state))
        env = HelperEnv(rt_p.memory, runtime=rt_p, cpu=cpu)
        want = python(helper, env, map_p.address, key_p, val_p, flag)
        if helper == H.MAP_LOOKUP_ELEM:
            assert (got == 0) == (want == 0), step
            if got:
                assert ctypes.string_at(got, 8) == ctypes.string_at(want, 8), step
        else:
            assert got == want, (step, helper)
    assert dict(map_n.items()) == dict(map_p.items())


def test_unknown_map_type_row_is_empty_until_filled(runtime):
    hashed = new_map(runtime, "h", MapType.HASH, 4, 8, 4)
    native(H.MAP_LOOKUP_ELEM, runtime, None)  # compiling fills the table
    row = int(MapType.HASH) * len(native_maps.COLUMNS)
    assert native_maps.MAP_OPS[row] == hashed.native.lookup
    assert native_maps.MAP_OPS[row + native_maps.COLUMNS.index("percpu")] == 0


def native_loop(helper_id: int, runtime, r1_constant: int | None):
    """``f(map, key, n, run)``: n native calls of `helper_id` on keys 0..7 in turn; sums r0."""
    module = ir.Module(name=f"jit-helper-bench-{next(_names)}")
    module.triple = _get_engine().triple
    name = f"pybpf_jit_helper_bench_{next(_names)}"
    fn = ir.Function(module, ir.FunctionType(I64, [I64] * 3 + [ir.PointerType()]), name=name)
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    map_, key, n, run = fn.args
    entry, body, done = b.block, fn.append_basic_block("body"), fn.append_basic_block("done")
    b.cbranch(b.icmp_unsigned("!=", n, ir.Constant(I64, 0)), body, done)
    b.position_at_end(body)
    i, total = b.phi(I64), b.phi(I64)
    i.add_incoming(ir.Constant(I64, 0), entry)
    total.add_incoming(ir.Constant(I64, 0), entry)
    index = b.trunc(b.and_(i, ir.Constant(I64, 7)), ir.IntType(32))
    b.store(index, b.inttoptr(key, ir.PointerType()))  # a new key each time: nothing to hoist
    site = HelperSite(
        b,
        module,
        [map_, key] + [ir.Constant(I64, 0)] * 3,
        run,
        runtime,
        TABLE,
        0,
        r1_constant,
        None,
    )
    r0 = NATIVE_EMITTERS[int(helper_id)](site)
    following, summed = b.add(i, ir.Constant(I64, 1)), b.add(total, r0)
    tail = b.block
    i.add_incoming(following, tail)
    total.add_incoming(summed, tail)
    b.cbranch(b.icmp_unsigned("<", following, n), body, done)
    b.position_at_end(done)
    result = b.phi(I64)
    result.add_incoming(ir.Constant(I64, 0), entry)
    result.add_incoming(summed, tail)
    b.ret(result)
    _get_engine().add(module.name, str(module))
    prototype = ctypes.CFUNCTYPE(_U64, _U64, _U64, _U64, ctypes.c_void_p)
    return prototype(_get_engine().address(name))


@pytest.mark.parametrize(
    ("kind", "constant"),
    [(MapType.ARRAY, True), (MapType.HASH, True), (MapType.LPM_TRIE, True), (MapType.HASH, False)],
)
def test_native_lookup_speed(runtime, kind, constant):
    """ns per native lookup, measured in a native loop (printed with -s); a loose bound only."""
    key_size = 8 if kind == MapType.LPM_TRIE else 4
    flags = 1 if kind == MapType.LPM_TRIE else 0
    map_ = new_map(runtime, "m", kind, key_size, 8, 64, flags=flags)
    for index in range(8):
        key = struct.pack("<I", index) if key_size == 4 else lpm_key(32, bytes([index, 0, 0, 0]))
        map_.update(key, struct.pack("<Q", 1))
    scratch = Scratch(runtime.memory)
    key = scratch.put(bytes(key_size))
    loop = native_loop(H.MAP_LOOKUP_ELEM, runtime, map_.address if constant else None)
    state = RunState()
    n = 1_000_000
    loop(map_.address, key, 1000, ctypes.addressof(state))
    start = time.perf_counter_ns()
    loop(map_.address, key, n, ctypes.addressof(state))
    per_call = (time.perf_counter_ns() - start) / n
    print(f"\n{kind.name} ({'constant' if constant else 'dynamic'} map): {per_call:.1f} ns/lookup")
    assert per_call < 2000


# -- ring buffer -----------------------------------------------------------------------


def test_ringbuf_helpers_match_the_interpreter():
    sides = []
    for _ in range(2):
        rt = ExecutionContext(ncpus=1)
        ring = new_map(rt, "events", MapType.RINGBUF, 0, 0, 4096)
        sides.append((rt, ring, Scratch(rt.memory)))
    (rt_n, ring_n, mem_n), (rt_p, ring_p, mem_p) = sides
    reserve = native(H.RINGBUF_RESERVE, rt_n, ring_n.address)
    dyn_reserve = native(H.RINGBUF_RESERVE, rt_n, None)
    submit = native(H.RINGBUF_SUBMIT, rt_n)
    discard = native(H.RINGBUF_DISCARD, rt_n)
    output = native(H.RINGBUF_OUTPUT, rt_n, ring_n.address)
    query = native(H.RINGBUF_QUERY, rt_n, ring_n.address)
    state = ctypes.addressof(RunState())
    env = HelperEnv(rt_p.memory, runtime=rt_p)
    for step in range(60):
        size = 8 + step % 5 * 8
        kind = step % 4
        if kind in (0, 1):
            make = reserve if step % 8 else dyn_reserve
            sample_n = make(ring_n.address, size, 0, 0, 0, state)
            sample_p = python(H.RINGBUF_RESERVE, env, ring_p.address, size, 0)
            assert (sample_n == 0) == (sample_p == 0)
            if sample_n:
                ctypes.memmove(sample_n, bytes([step]) * size, size)
                ctypes.memmove(sample_p, bytes([step]) * size, size)
                commit = submit if kind == 0 else discard
                helper = H.RINGBUF_SUBMIT if kind == 0 else H.RINGBUF_DISCARD
                assert commit(sample_n, 0, 0, 0, 0, state) == 0
                assert python(helper, env, sample_p, 0) == 0
        elif kind == 2:
            data_n, data_p = mem_n.put(bytes([step]) * size), mem_p.put(bytes([step]) * size)
            got = output(ring_n.address, data_n, size, 0, 0, state)
            assert got == python(H.RINGBUF_OUTPUT, env, ring_p.address, data_p, size, 0)
        else:
            for flag in range(5):
                got = query(ring_n.address, flag, 0, 0, 0, state)
                assert got == python(H.RINGBUF_QUERY, env, ring_p.address, flag)
        if step % 16 == 15:  # a consumer catches up now and then
            ring_n.consume(lambda _: 0)
            ring_p.consume(lambda _: 0)
    assert ring_n.records() == ring_p.records()
    assert ring_n.wakeups == ring_p.wakeups


# -- packet helpers --------------------------------------------------------------------


class Packet:
    """An XDP or skb context over a page, as `hooks.test_run` builds it."""

    def __init__(self, prog_type: ProgramType, data: bytes, headroom: int = 256, meta: int = 0):
        self.memory = Memory()
        self.buffer = (ctypes.c_ubyte * 4096)()
        self.base = ctypes.addressof(self.buffer)
        ctypes.memmove(self.base + headroom, data, len(data))
        start = self.base + headroom
        pointers = {"data_meta": start, "data": start + meta, "data_end": start + len(data)}
        if prog_type == ProgramType.XDP:
            pointers.update(hard_start=self.base, hard_end=self.base + 4096 - 320)
        else:
            pointers.update(head=self.base, end=self.base + 4096 - 320)
        chunk = (ctypes.c_ubyte * len(data)).from_buffer(self.buffer, headroom)
        self.memory.add(Region(start, len(data), True, "packet", chunk))
        access = context_access(prog_type)
        size = access.layout.size
        self.ctx = self.memory.allocate_context(bytes(size), "ctx", access, pointers)
        self.state = RunState()
        self.state.ctx = self.ctx.start
        self.state.ctx_pointers = self.ctx.pointers_address
        self.env = HelperEnv(self.memory, self.ctx.start)

    def offsets(self) -> dict[str, int]:
        return {name: value - self.base for name, value in self.ctx.pointers.items()}

    def bytes(self) -> bytes:
        return bytes(self.buffer)


FRAME = bytes.fromhex("020000000001020000000002") + b"\x08\x00" + bytes(range(50))


@pytest.mark.parametrize(
    ("helper", "prog_type"),
    [
        (H.XDP_ADJUST_HEAD, ProgramType.XDP),
        (H.XDP_ADJUST_TAIL, ProgramType.XDP),
        (H.XDP_ADJUST_META, ProgramType.XDP),
        (H.XDP_ADJUST_HEAD, ProgramType.SCHED_CLS),  # -ENOTSUPP outside XDP
    ],
)
@pytest.mark.parametrize("meta", [0, 8])
def test_xdp_adjust_matches_the_interpreter(helper, prog_type, meta):
    call = native(helper)
    offsets = [-300, -217, -216, -200, -64, -5, -4, -1, 0, 1, 3, 4, 8, 40, 49, 50, 51, 2000]
    offsets += [o + (1 << 32) for o in (-4, 4)] + [(1 << 32) - 4]
    for offset in offsets:
        n, p = Packet(prog_type, FRAME, meta=meta), Packet(prog_type, FRAME, meta=meta)
        got = call(n.ctx.start, offset & M64, 0, 0, 0, ctypes.addressof(n.state))
        want = python(helper, p.env, p.ctx.start, offset & M64)
        assert got == want, offset
        assert n.offsets() == p.offsets(), offset
        assert n.bytes() == p.bytes(), offset
        # The Python helpers still find the packet after native code moved it,
        # and sync_packet_region puts the region table back in step.
        assert python(helper, n.env, n.ctx.start, 0) == python(helper, p.env, p.ctx.start, 0)
        sync_packet_region(n.memory, n.ctx)
        if "data_meta" in n.ctx.pointers:
            region = n.memory.find(n.ctx.pointers["data_meta"])
            assert region is not None and region.name == "packet"
            assert region.end == n.ctx.pointers["data_end"]


def test_csum_diff_matches_the_interpreter():
    call = native(H.CSUM_DIFF)
    memory = Memory()
    scratch = Scratch(memory, 1 << 16)
    env = HelperEnv(memory)
    rng = random.Random(3)
    state = ctypes.addressof(RunState())
    cases = [(0, 0, 0), (4, 0, 0), (0, 4, 0), (4, 4, 0xFFFF), (3, 4, 0), (256, 260, 1), (40, 20, 9)]
    cases += [
        (rng.randrange(0, 200) * 4, rng.randrange(0, 60) * 4, rng.getrandbits(64))
        for _ in range(40)
    ]
    for from_size, to_size, seed in cases:
        old = scratch.put(rng.randbytes(max(from_size, 1)))
        new = scratch.put(rng.randbytes(max(to_size, 1)))
        got = call(old, from_size, new, to_size, seed, state)
        assert got == python(H.CSUM_DIFF, env, old, from_size, new, to_size, seed)
    zero = scratch.put(bytes(8))
    assert call(zero, 0, zero, 8, 0, state) == 0 == python(H.CSUM_DIFF, env, zero, 0, zero, 8, 0)


IPV4 = bytes.fromhex("02000000000102000000000208004500001c000040004011") + bytes(2)
IPV4 += bytes([10, 0, 0, 1, 10, 0, 0, 2]) + bytes.fromhex("0035003500080000")


@pytest.mark.parametrize("helper", [H.L3_CSUM_REPLACE, H.L4_CSUM_REPLACE])
def test_csum_replace_matches_the_interpreter(helper):
    call = native(helper)
    rng = random.Random(5)
    flag_choices = [0, 2, 4, 3, 0x10 | 2, 0x20 | 4, 0x20 | 0x40 | 2, 0x20, 0x80, 1 << 40]
    for step in range(200):
        offset = rng.choice([24, 40, 41, 60, 62, 1 << 16, -2 & M64, 36])
        flags = rng.choice(flag_choices)
        old = rng.choice([0, rng.getrandbits(16), rng.getrandbits(32), rng.getrandbits(64)])
        new = rng.choice([0, rng.getrandbits(16), rng.getrandbits(32)])
        frame = bytearray(IPV4)
        frame[40:42] = rng.choice([b"\0\0", b"\x12\x34", b"\xff\xff"])
        n, p = (
            Packet(ProgramType.SCHED_CLS, bytes(frame)),
            Packet(ProgramType.SCHED_CLS, bytes(frame)),
        )
        got = call(n.ctx.start, offset, old, new, flags, ctypes.addressof(n.state))
        want = python(helper, p.env, p.ctx.start, offset, old, new, flags)
        assert got == want, (step, offset, flags)
        assert n.bytes() == p.bytes(), (step, offset, flags)


# -- clocks, randomness, CPU -------------------------------------------------------------


@pytest.mark.parametrize(
    ("helper", "clock"),
    [
        (H.KTIME_GET_NS, time.CLOCK_MONOTONIC),
        (H.KTIME_GET_BOOT_NS, getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)),
    ],
)
def test_clocks_read_the_host_clock(helper, clock):
    call = native(helper)
    state = ctypes.addressof(RunState())
    before = time.clock_gettime_ns(clock)
    got = call(0, 0, 0, 0, 0, state)
    after = time.clock_gettime_ns(clock)
    assert before <= got <= after


def test_coarse_clock_and_jiffies_are_close_to_python():
    state = ctypes.addressof(RunState())
    env = HelperEnv(Memory())
    coarse = native(H.KTIME_GET_COARSE_NS)(0, 0, 0, 0, 0, state)
    assert abs(coarse - python(H.KTIME_GET_COARSE_NS, env)) < 50_000_000
    jiffies = native(H.JIFFIES64)(0, 0, 0, 0, 0, state)
    assert 0 <= python(H.JIFFIES64, env) - jiffies <= 2


def test_prandom_and_cpu():
    state = RunState()
    state.cpu = 3
    prandom = native(H.GET_PRANDOM_U32)
    values = [prandom(0, 0, 0, 0, 0, ctypes.addressof(state)) for _ in range(1000)]
    assert all(0 <= v < 1 << 32 for v in values)
    assert len(set(values)) > 990
    assert state.prandom != 0
    assert native(H.GET_SMP_PROCESSOR_ID)(0, 0, 0, 0, 0, ctypes.addressof(state)) == 3
    assert native(H.GET_NUMA_NODE_ID)(0, 0, 0, 0, 0, ctypes.addressof(state)) == 0


# -- the context's native pointer table --------------------------------------------------


def test_pointer_table_is_a_dict_backed_by_native_memory():
    slots = {"data": 0, "data_end": 1, "data_meta": 2, "hard_start": 3}
    table = PointerTable(slots, {"data": 100, "data_end": 164, "other": 7})
    assert dict(table) == {"data": 100, "data_end": 164, "other": 7}
    assert "data_meta" not in table and "other" in table
    words = (ctypes.c_uint64 * 4).from_address(table.address)
    assert list(words) == [100, 164, 0, 0]
    words[1] = 200  # native code moves data_end
    assert table["data_end"] == 200
    table["data"] += 8
    assert words[0] == 108
    del table["data"]
    assert words[0] == 0 and "data" not in table
    with pytest.raises(KeyError):
        table["data_meta"]


def test_a_pointer_tables_reader_sees_its_slot_as_it_is_now():
    table = PointerTable({"data": 0, "data_end": 1}, {"data": 100, "data_end": 164})
    end = table.reader("data_end")
    assert table.reader("other") is None and end[0] == 164
    words = (ctypes.c_uint64 * 2).from_address(table.address)
    words[1] = 1 << 63  # native code moves data_end; the whole u64 reads back
    assert end[0] == 1 << 63
    table["data_end"] = 170
    assert end[0] == 170 and table.reader("data")[0] == 100
    del table["data_end"]
    assert end[0] == 0


def test_pointer_slots_match_the_translator():
    from pybpf.engine.jit.context_loads import pointer_slot as translator_slot

    for layout in (context_access(ProgramType.XDP).layout, SK_BUFF):
        for name in layout.pointers:
            assert pointer_slot(layout, name) == translator_slot(layout, name)
    assert pointer_slot(ProgramType.XDP, "hard_end") == 4
    assert pointer_slot(ProgramType.SCHED_CLS, "end") == 6


# -- end to end ---------------------------------------------------------------------------


def _jit_available() -> bool:
    try:
        from pybpf.engine.jit import JitEngine  # noqa: F401
    except ImportError:
        return False
    return True


needs_jit = pytest.mark.skipif(not _jit_available(), reason="engine.jit.JitEngine is missing")

UDP = bytes.fromhex("02000000000102000000000208004500001c0000400040110000")
UDP += bytes([10, 0, 0, 1, 10, 0, 0, 2]) + bytes.fromhex("1234003500080000")
TCP = UDP[:23] + b"\x06" + UDP[24:]
ARP = UDP[:12] + b"\x08\x06" + UDP[14:]


@needs_jit
@pytest.mark.parametrize(
    ("name", "program"),
    [("xdp_counter.o", "xdp_count"), ("xdp_events.o", "xdp_events"), ("xdp_firewall.o", None)],
)
def test_examples_give_the_interpreters_results(name, program):
    import pybpf

    frames = [UDP, TCP, ARP, UDP[:20], UDP]
    results = {}
    for engine in ("interpreter", "jit"):
        with pybpf.load(EXAMPLES / name, engine=engine) as obj:
            prog = obj.programs[program] if program else next(iter(obj.programs.values()))
            runs = [prog.test_run(data=frame, repeat=3) for frame in frames]
            contents = {}
            for map_name, map_ in obj.maps.items():
                if hasattr(map_, "records"):
                    contents[map_name] = map_.records()
                elif map_.spec.type != MapType.PROG_ARRAY:
                    contents[map_name] = sorted(map_.items())
            results[engine] = ([(r.retval, r.data_out) for r in runs], contents)
    assert results["jit"] == results["interpreter"]


@needs_jit
def test_jit_adjust_head_program_matches_the_interpreter():
    from pybpf.engine.interpreter import Interpreter
    from pybpf.engine.jit import JitEngine
    from pybpf.hooks.test_run import test_run
    from pybpf.isa import assemble

    source = """
    r6 = r1
    r2 = -4
    call 44
    if r0 != 0 goto out
    r2 = *(u32 *)(r6 + 0)
    r3 = *(u32 *)(r6 + 4)
    r4 = r2
    r4 += 4
    if r4 > r3 goto pass
    *(u32 *)(r2 + 0) = 0x11223344
    r1 = r6
    r2 = 6
    call 65
    pass:
    r0 = 2
    out:
    exit
    """
    insns = assemble(source)
    want = test_run(Interpreter(insns, helpers=TABLE), ProgramType.XDP, data=FRAME)
    # A refusal of the translator is a failure: the program is valid and the JIT must take it.
    jit = JitEngine(insns, helpers=TABLE, context_loads={4: 0, 5: 1})
    got = test_run(jit, ProgramType.XDP, data=FRAME)
    assert (got.retval, got.data_out) == (want.retval, want.data_out)


@needs_jit
def test_jit_lookup_through_a_register_uses_the_table_or_python():
    """r1 not known statically: MAP_OPS by map type; an empty row runs the Python helper."""
    from pybpf.engine.jit import JitEngine
    from pybpf.isa import assemble

    rt = ExecutionContext(ncpus=2)
    array = new_map(rt, "a", MapType.ARRAY, 4, 8, 4)
    array.update(struct.pack("<I", 1), struct.pack("<Q", 0x55))
    source = f"""
    lddw r6, 0x{array.address:x}
    mov r1, r6
    mov r2, r10
    add r2, -4
    stw [r10-4], 1
    call 1
    jeq r0, 0, +1
    ldxdw r0, [r0]
    exit
    """
    jit = JitEngine(assemble(source), helpers=TABLE, runtime=rt, memory=rt.memory)
    assert jit.run() == 0x55
    row = int(MapType.ARRAY) * len(native_maps.COLUMNS)
    saved = native_maps.MAP_OPS[row]
    native_maps.MAP_OPS[row] = 0  # as in a process that loaded the object from the disk cache
    try:
        assert jit.run() == 0x55
    finally:
        native_maps.MAP_OPS[row] = saved


@pytest.mark.parametrize("helper", [H.SKB_LOAD_BYTES, H.SKB_STORE_BYTES])
def test_skb_bytes_match_the_interpreter(helper):
    # Random offsets (inside, at the edge, past the packet, past the helpers' limits),
    # sizes and flags: r0, the buffer and the packet equal the Python helper's.
    call = native(helper)
    rng = random.Random(11)
    for step in range(300):
        offset = rng.choice([0, 1, 14, 30, len(IPV4) - 4, len(IPV4), 0xFFFF, 0x10000, 1 << 31])
        size = rng.choice([1, 2, 4, 8, 16, 0])
        flags = rng.choice([0, 1, 2, 3, 4, 1 << 33]) if helper == H.SKB_STORE_BYTES else 0
        fill = rng.randbytes(16)
        results = []
        for packet in (
            Packet(ProgramType.SCHED_CLS, IPV4, headroom=64),
            Packet(ProgramType.SCHED_CLS, IPV4, headroom=64),
        ):
            buffer = Scratch(packet.memory).put(fill)
            results.append((packet, buffer))
        (n, n_buf), (p, p_buf) = results
        got = call(n.ctx.start, offset, n_buf, size, flags, ctypes.addressof(n.state))
        want = python(helper, p.env, p.ctx.start, offset, p_buf, size, flags)
        assert got == want, (step, offset, size, flags)
        assert n.bytes() == p.bytes(), (step, offset, size, flags)
        assert ctypes.string_at(n_buf, 16) == ctypes.string_at(p_buf, 16), (step, offset, size)
