"""The Linux helper table (`runtime.linux_helpers`): maps, time, trace output, callbacks.

Programs are assembled (llvm syntax) and run in the interpreter with the
full Linux table; maps are created with `create_map` and registered in an
`ExecutionContext`, and a map pointer is loaded as a plain imm64, as the
loader patches it.
"""

from __future__ import annotations

import errno
import shutil
import struct
import subprocess
import time

import pytest

from pybpf.elf.loader import load_object_spec
from pybpf.elf.map_types import MapType
from pybpf.elf.specs import MapSpec
from pybpf.engine.interpreter import Interpreter
from pybpf.errors import ProgramFault
from pybpf.isa import assemble
from pybpf.isa.instruction import Instruction
from pybpf.platform.helper_prototypes import PROTOTYPES
from pybpf.runtime.context import ExecutionContext
from pybpf.runtime.helpers import HelperEnv
from pybpf.runtime.linux_helpers import linux_helpers
from pybpf.runtime.linux_helpers.trace import bprintf
from pybpf.runtime.maps import create_map

M64 = (1 << 64) - 1
HELPERS = linux_helpers()


def neg(code: int) -> int:
    """A negative errno as the unsigned r0 the interpreter returns."""
    return -code & M64


@pytest.fixture
def ctx():
    context = ExecutionContext(ncpus=4)
    yield context
    for map_ in context.maps():
        map_.close()


def new_map(ctx: ExecutionContext, kind: int, key_size=4, value_size=8, entries=4):
    map_ = create_map(MapSpec("m", kind, key_size, value_size, entries), ctx.memory, ncpus=4)
    ctx.add_map(map_)
    return map_


def run(ctx: ExecutionContext, source: str | list[Instruction], *args: int, cpu: int = 0) -> int:
    insns = assemble(source) if isinstance(source, str) else source
    engine = Interpreter(insns, helpers=HELPERS, memory=ctx.memory, runtime=ctx)
    try:
        if cpu:
            padded = (*args, 0, 0, 0, 0, 0)[:5]
            env = HelperEnv(ctx.memory, padded[0], engine, ctx, cpu=cpu)
            return engine.enter(padded, env)[0] & M64
        return engine.run(*args)
    finally:
        engine.close()


def key(index: int) -> bytes:
    return struct.pack("<I", index)


def u64(value: int) -> bytes:
    return struct.pack("<Q", value)


# -- the table ---------------------------------------------------------------------------


def test_table_has_each_helper_once_with_its_prototype():
    ids = [spec.id for spec in HELPERS]
    assert len(ids) == len(set(ids))
    for helper_id in (1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 23, 26, 28, 42, 44, 54, 65):
        assert helper_id in HELPERS
    for helper_id in (87, 88, 89, 118, 125, 160, 164, 165, 181):
        assert helper_id in HELPERS
    for spec in HELPERS:
        assert spec.prototype is PROTOTYPES[spec.id]
        assert spec.name == spec.prototype.name


# -- maps --------------------------------------------------------------------------------

LOOKUP = """
*(u32 *)(r10 - 4) = {key}
r2 = r10
r2 += -4
r1 = {map} ll
call 1
if r0 == 0 goto miss
r0 = *(u64 *)(r0 + 0)
exit
miss:
r0 = 0xdead
exit
"""

UPDATE = """
*(u32 *)(r10 - 4) = {key}
r1 = {value} ll
*(u64 *)(r10 - 16) = r1
r2 = r10
r2 += -4
r3 = r10
r3 += -16
r4 = {flags}
r1 = {map} ll
call 2
exit
"""

DELETE = """
*(u32 *)(r10 - 4) = {key}
r2 = r10
r2 += -4
r1 = {map} ll
call 3
exit
"""


def test_hash_lookup_update_delete_and_errnos(ctx):
    m = new_map(ctx, MapType.HASH, entries=2)
    a = m.address
    assert run(ctx, LOOKUP.format(key=1, map=a)) == 0xDEAD
    assert run(ctx, UPDATE.format(key=1, value=77, flags=0, map=a)) == 0
    assert m[key(1)] == u64(77)
    assert run(ctx, LOOKUP.format(key=1, map=a)) == 77
    assert run(ctx, UPDATE.format(key=1, value=5, flags=1, map=a)) == neg(errno.EEXIST)
    assert run(ctx, UPDATE.format(key=2, value=5, flags=2, map=a)) == neg(errno.ENOENT)
    assert run(ctx, UPDATE.format(key=2, value=5, flags=0, map=a)) == 0
    assert run(ctx, UPDATE.format(key=3, value=5, flags=0, map=a)) == neg(errno.E2BIG)
    assert run(ctx, UPDATE.format(key=3, value=5, flags=8, map=a)) == neg(errno.EINVAL)
    assert run(ctx, DELETE.format(key=1, map=a)) == 0
    assert run(ctx, DELETE.format(key=1, map=a)) == neg(errno.ENOENT)
    assert run(ctx, LOOKUP.format(key=1, map=a)) == 0xDEAD
    assert dict(m) == {key(2): u64(5)}


def test_array_errnos(ctx):
    m = new_map(ctx, MapType.ARRAY)
    a = m.address
    assert run(ctx, LOOKUP.format(key=3, map=a)) == 0
    assert run(ctx, LOOKUP.format(key=4, map=a)) == 0xDEAD
    assert run(ctx, UPDATE.format(key=3, value=9, flags=0, map=a)) == 0
    assert run(ctx, UPDATE.format(key=3, value=9, flags=1, map=a)) == neg(errno.EEXIST)
    assert run(ctx, UPDATE.format(key=4, value=9, flags=0, map=a)) == neg(errno.E2BIG)
    assert run(ctx, DELETE.format(key=3, map=a)) == neg(errno.EINVAL)
    assert m[key(3)] == u64(9)


def test_lookup_returns_the_maps_own_value_address(ctx):
    m = new_map(ctx, MapType.ARRAY)
    source = """
    *(u32 *)(r10 - 4) = 2
    r2 = r10
    r2 += -4
    r1 = {map} ll
    call 1
    if r0 == 0 goto out
    r1 = 1234
    *(u64 *)(r0 + 0) = r1
    out:
    exit
    """
    assert run(ctx, source.format(map=m.address)) == m.address_of(key(2))
    assert m[key(2)] == u64(1234)


def test_lookup_checks_a_key_again_once_its_region_is_gone(ctx):
    # The helper remembers the region its last key was in; a key left behind
    # in a region removed since must fault, not be read.
    m = new_map(ctx, MapType.HASH)
    m[key(3)] = u64(33)
    lookup = HELPERS.get(1).impl
    env = HelperEnv(ctx.memory, 0, None, ctx)
    keys = ctx.memory.allocate_from(key(3), "keys")
    assert lookup(env, m.address, keys.start, 0, 0, 0) == m.address_of(key(3))
    ctx.memory.remove(keys)
    with pytest.raises(ProgramFault, match="out-of-bounds read of 4 bytes"):
        lookup(env, m.address, keys.start, 0, 0, 0)


def test_lookup_follows_a_map_built_anew(ctx):
    # `recreate` gives the map new native storage: the helper's binding to
    # the old map pointer must not survive it.
    m = new_map(ctx, MapType.HASH)
    m[key(1)] = u64(1)
    lookup = HELPERS.get(1).impl
    env = HelperEnv(ctx.memory, 0, None, ctx)
    keys = ctx.memory.allocate_from(key(1), "keys")
    assert lookup(env, m.address, keys.start, 0, 0, 0) == m.address_of(key(1))
    ctx.remove_map(m)
    m.recreate(MapSpec("m", MapType.HASH, 4, 8, 8))
    ctx.add_map(m)
    assert lookup(env, m.address, keys.start, 0, 0, 0) == 0  # empty now
    m[key(1)] = u64(2)
    assert lookup(env, m.address, keys.start, 0, 0, 0) == m.address_of(key(1))


def test_percpu_map_uses_the_running_cpu(ctx):
    m = new_map(ctx, MapType.PERCPU_ARRAY)
    assert run(ctx, UPDATE.format(key=1, value=11, flags=0, map=m.address), cpu=2) == 0
    assert m[key(1)] == [u64(0), u64(0), u64(11), u64(0)]
    assert run(ctx, LOOKUP.format(key=1, map=m.address), cpu=2) == 11
    assert run(ctx, LOOKUP.format(key=1, map=m.address), cpu=1) == 0
    h = new_map(ctx, MapType.PERCPU_HASH)
    assert run(ctx, UPDATE.format(key=7, value=3, flags=0, map=h.address), cpu=3) == 0
    assert h[key(7)][3] == u64(3)


def test_bad_key_pointer_is_a_fault(ctx):
    m = new_map(ctx, MapType.HASH)
    source = f"r2 = 4096\nr1 = {m.address} ll\ncall 1\nexit"
    with pytest.raises(ProgramFault):
        run(ctx, source)
    # Three bytes of key inside the frame, one outside: still a fault.
    source = f"r2 = r10\nr2 += -3\nr1 = {m.address} ll\ncall 1\nexit"
    with pytest.raises(ProgramFault):
        run(ctx, source)


def test_unknown_map_pointer_is_a_fault(ctx):
    with pytest.raises(ProgramFault, match="not a map pointer"):
        run(ctx, "r2 = r10\nr2 += -4\nr1 = 0x1234 ll\ncall 1\nexit")


def test_push_pop_peek_without_native_support_is_einval(ctx):
    m = new_map(ctx, MapType.HASH)
    for helper_id in (87, 88, 89):
        source = f"r2 = r10\nr2 += -8\nr3 = 0\nr1 = {m.address} ll\ncall {helper_id}\nexit"
        assert run(ctx, source) == neg(errno.EINVAL)


class _Program:
    def __init__(self, engine):
        self.engine = engine


class _ProgArray:
    """A stand-in prog_array with the interface the prog_array family offers."""

    def __init__(self, address: int, programs: dict[int, _Program]):
        self.address = address
        self.programs = programs
        self.spec = MapSpec("jmp", MapType.PROG_ARRAY, 4, 4, 4)

    def tail_call_target(self, index: int):
        return self.programs.get(index)


def test_tail_call_through_a_prog_array(ctx):
    target = Interpreter(assemble("r0 = 42\nexit"), helpers=HELPERS, memory=ctx.memory)
    table = _ProgArray(0x7000, {1: _Program(target)})
    ctx.add_map(table)
    caller = """
    r1 = 0x7000 ll
    r2 = r1
    r1 = 0
    r3 = {index}
    call 12
    r0 += 1000
    exit
    """
    # the prog_array is not a real map: take it out before the fixture closes maps
    try:
        assert run(ctx, caller.format(index=1)) == 42
        assert run(ctx, caller.format(index=2)) == (1000 - errno.ENOENT) & M64
        assert run(ctx, caller.format(index=9)) == (1000 - errno.E2BIG) & M64
    finally:
        ctx.remove_map(table)
        target.close()


# -- time and CPU -------------------------------------------------------------------------


def test_clocks_cpu_numa_and_random(ctx):
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    now = run(ctx, "call 5\nexit")
    assert before <= now <= time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    assert run(ctx, "call 125\nexit") >= now - 10**9
    assert abs(run(ctx, "call 160\nexit") - now) < 10**9
    jiffies = run(ctx, "call 118\nexit")
    assert jiffies > (1 << 32) - 300 * 1000
    assert run(ctx, "call 8\nexit", cpu=3) == 3
    assert run(ctx, "call 42\nexit") == 0
    randoms = {run(ctx, "call 7\nexit") for _ in range(8)}
    assert len(randoms) > 1 and max(randoms) < 1 << 32


# -- trace_printk and snprintf --------------------------------------------------------------

PRINTK = """
r1 = {fmt} ll
r2 = {size}
r3 = {a} ll
r4 = {b} ll
r5 = {c} ll
call 6
exit
"""


def printk(ctx: ExecutionContext, fmt: bytes, *args: int) -> tuple[int, list[str]]:
    region = ctx.memory.allocate_from(fmt + b"\0", "fmt")
    try:
        a, b, c = (*args, 0, 0, 0)[:3]
        r0 = run(ctx, PRINTK.format(fmt=region.start, size=region.size, a=a, b=b, c=c))
    finally:
        ctx.memory.remove(region)
    return r0, ctx.read_trace()


@pytest.mark.parametrize(
    ("fmt", "args", "expected"),
    [
        (b"hello\n", (), "hello"),
        (b"%d %i %u", (-5 & M64, 7, -1 & M64), "-5 7 4294967295"),
        (b"%ld %lu", (-5 & M64, -1 & M64), "-5 18446744073709551615"),
        (b"%x %X %lx", (0xABCDEF, 0xABCDEF, 0x1234567890), "abcdef ABCDEF 1234567890"),
        (b"%llx %lld %lli", (-1 & M64, -2 & M64, 3), "ffffffffffffffff -2 3"),
        (b"%llu%%", (10**15,), "1000000000000000%"),
        (b"[%5d|%-5d|%05x]", (42, 42, 255), "[   42|42   |000ff]"),
        (b"%+d % d", (3, 3), "+3  3"),
        (b"%c%c", (ord("o"), ord("k")), "ok"),
        (b"%px", (0xFFFF888003C4E000,), "ffff888003c4e000"),
    ],
)
def test_trace_printk_formats_like_the_kernel(ctx, fmt, args, expected):
    r0, lines = printk(ctx, fmt, *args)
    assert lines == [expected]
    assert r0 == len(bprintf(fmt, list(args), ctx.memory).encode())


def test_trace_printk_strings_and_addresses(ctx):
    data = ctx.memory.allocate_from(b"eth0\0\x0a\x00\x00\x01" + bytes(range(16)), "data")
    try:
        s, ip4, ip6 = data.start, data.start + 5, data.start + 9
        assert printk(ctx, b"dev %s up", s)[1] == ["dev eth0 up"]
        assert printk(ctx, b"%pI4 %pi4", ip4, ip4)[1] == ["10.0.0.1 010.000.000.001"]
        assert printk(ctx, b"%pI6", ip6)[1] == ["0001:0203:0405:0607:0809:0a0b:0c0d:0e0f"]
        assert printk(ctx, b"%pi6", ip6)[1] == ["000102030405060708090a0b0c0d0e0f"]
        # Unreadable memory prints as empty / zeros, as the kernel's nofault copies.
        assert printk(ctx, b"<%s>", 16)[1] == ["<>"]
        assert printk(ctx, b"%pI4", 16)[1] == ["0.0.0.0"]
    finally:
        ctx.memory.remove(data)


@pytest.mark.parametrize(
    "fmt",
    [b"%d %d %d %d", b"%q", b"%hd", b"%.3d", b"%sx", b"%pZ", b"%", b"%#x", b"\x01", b"%*d"],
)
def test_trace_printk_rejects_what_the_kernel_rejects(ctx, fmt):
    r0, lines = printk(ctx, fmt, 1, 2, 3)
    assert r0 == neg(errno.EINVAL)
    assert lines == []


def test_trace_printk_needs_a_nul_inside_the_size(ctx):
    region = ctx.memory.allocate_from(b"abc", "fmt")
    try:
        r0 = run(ctx, PRINTK.format(fmt=region.start, size=3, a=0, b=0, c=0))
    finally:
        ctx.memory.remove(region)
    assert r0 == neg(errno.EINVAL)


SNPRINTF = """
r1 = {out} ll
r2 = {size}
r3 = {fmt} ll
r4 = {data} ll
r5 = {data_len}
call 165
exit
"""


def snprintf(ctx, fmt: bytes, args: list[int], size: int, data_len: int | None = None):
    out = ctx.memory.allocate(max(size, 1), "out", data=b"\xee" * max(size, 1))
    fmt_region = ctx.memory.allocate_from(fmt + b"\0", "fmt", writable=False)
    data = ctx.memory.allocate_from(b"".join(u64(a) for a in args) or b"\0" * 8, "args")
    length = 8 * len(args) if data_len is None else data_len
    try:
        r0 = run(
            ctx,
            SNPRINTF.format(
                out=out.start, size=size, fmt=fmt_region.start, data=data.start, data_len=length
            ),
        )
        return r0, out.read()
    finally:
        for region in (out, fmt_region, data):
            ctx.memory.remove(region)


def test_snprintf_truncates_and_returns_the_full_length(ctx):
    r0, out = snprintf(ctx, b"n=%d s=%x", [-12 & M64, 255], 64)
    assert r0 == len("n=-12 s=ff") + 1
    assert out[:r0] == b"n=-12 s=ff\0"
    r0, out = snprintf(ctx, b"n=%d s=%x", [-12 & M64, 255], 5)
    assert r0 == 11
    assert out == b"n=-1\0"
    r0, out = snprintf(ctx, b"abc", [], 0, data_len=0)
    assert r0 == 4
    assert out == b"\xee"


def test_snprintf_errors(ctx):
    assert snprintf(ctx, b"%d", [1], 16, data_len=4)[0] == neg(errno.EINVAL)
    assert snprintf(ctx, b"%d %d", [1], 16)[0] == neg(errno.EINVAL)
    assert snprintf(ctx, b"%d", [0] * 13, 16)[0] == neg(errno.EINVAL)
    many = b" ".join([b"%d"] * 12)
    assert snprintf(ctx, many, list(range(12)), 64)[0] == len(" ".join(map(str, range(12)))) + 1


# -- callbacks ------------------------------------------------------------------------------


def with_callback(main: str, callback: str) -> list[Instruction]:
    """`main` then `callback`, with every `ld_pseudo rX, 4, CB` pointing at the callback."""
    first = assemble(main.replace("CB", "0"))
    callee = sum(insn.slots for insn in first)
    insns = []
    pc = 0
    for insn in first:
        if insn.opcode == 0x18 and insn.src == 4:
            insn = Instruction(insn.opcode, insn.dst, 4, insn.off, callee - pc - 1)
        insns.append(insn)
        pc += insn.slots
    return insns + assemble(callback)


LOOP_MAIN = """
r1 = 0
*(u64 *)(r10 - 8) = r1
r1 = {count}
ld_pseudo r2, 4, CB
r3 = r10
r3 += -8
r4 = {flags}
call 181
r1 = *(u64 *)(r10 - 8)
r0 <<= 32
r0 += r1
exit
"""

# callback(index, ctx): *ctx += index; stop (return 1) at index == 5
LOOP_CALLBACK = """
r3 = *(u64 *)(r2 + 0)
r3 += r1
*(u64 *)(r2 + 0) = r3
r0 = 0
if r1 != 5 goto out
r0 = 1
out:
exit
"""


def test_bpf_loop_runs_the_callback_and_stops_on_one(ctx):
    program = with_callback(LOOP_MAIN.format(count=4, flags=0), LOOP_CALLBACK)
    assert run(ctx, program) == (4 << 32) + 0 + 1 + 2 + 3
    program = with_callback(LOOP_MAIN.format(count=100, flags=0), LOOP_CALLBACK)
    assert run(ctx, program) == (6 << 32) + 15
    program = with_callback(LOOP_MAIN.format(count=0, flags=0), LOOP_CALLBACK)
    assert run(ctx, program) == 0


def test_bpf_loop_errors(ctx):
    program = with_callback(LOOP_MAIN.format(count=3, flags=1), LOOP_CALLBACK)
    assert run(ctx, program) >> 32 == neg(errno.EINVAL) & 0xFFFFFFFF
    program = with_callback(LOOP_MAIN.format(count=(1 << 23) + 1, flags=0), LOOP_CALLBACK)
    assert run(ctx, program) >> 32 == neg(errno.E2BIG) & 0xFFFFFFFF


RECURSIVE = """
r1 = 1
ld_pseudo r2, 4, {offset}
r3 = 0
r4 = 0
call 181
exit
"""


def test_callbacks_count_against_the_call_depth(ctx):
    # pc 0-6 the program, pc 7-13 a callback that bpf_loops over itself:
    # the eighth nested frame is a fault, as the kernel's MAX_CALL_FRAMES.
    program = assemble(RECURSIVE.format(offset=5)) + assemble(RECURSIVE.format(offset=-2))
    with pytest.raises(ProgramFault, match="depth"):
        run(ctx, program)


def test_a_func_pointer_is_not_memory(ctx):
    program = with_callback("ld_pseudo r1, 4, CB\nr0 = *(u64 *)(r1 + 0)\nexit", "exit")
    with pytest.raises(ProgramFault):
        run(ctx, program)


FOR_EACH_MAIN = """
r1 = 0
*(u64 *)(r10 - 8) = r1
r1 = {map} ll
ld_pseudo r2, 4, CB
r3 = r10
r3 += -8
r4 = 0
call 164
r1 = *(u64 *)(r10 - 8)
r0 <<= 32
r0 += r1
exit
"""

# callback(map, key, value, ctx): *ctx += *value; *value += 100; stop when *key == {stop}
FOR_EACH_CALLBACK = """
r5 = *(u64 *)(r3 + 0)
r6 = *(u64 *)(r4 + 0)
r6 += r5
*(u64 *)(r4 + 0) = r6
r5 += 100
*(u64 *)(r3 + 0) = r5
r0 = 0
r2 = *(u32 *)(r2 + 0)
if r2 != {stop} goto out
r0 = 1
out:
exit
"""


def test_for_each_array_element(ctx):
    m = new_map(ctx, MapType.ARRAY)
    for i in range(4):
        m[key(i)] = u64(i + 1)
    program = with_callback(FOR_EACH_MAIN.format(map=m.address), FOR_EACH_CALLBACK.format(stop=99))
    assert run(ctx, program) == (4 << 32) + 10
    assert [m[key(i)] for i in range(4)] == [u64(i + 101) for i in range(4)]
    program = with_callback(FOR_EACH_MAIN.format(map=m.address), FOR_EACH_CALLBACK.format(stop=1))
    assert run(ctx, program) == (2 << 32) + 101 + 102


def test_for_each_hash_element(ctx):
    m = new_map(ctx, MapType.HASH, entries=8)
    for k in (3, 5, 9):
        m[key(k)] = u64(k)
    program = with_callback(FOR_EACH_MAIN.format(map=m.address), FOR_EACH_CALLBACK.format(stop=99))
    assert run(ctx, program) == (3 << 32) + 17
    assert {k: m[key(k)] for k in (3, 5, 9)} == {k: u64(k + 100) for k in (3, 5, 9)}
    first = struct.unpack("<I", next(iter(m)))[0]
    program = with_callback(
        FOR_EACH_MAIN.format(map=m.address), FOR_EACH_CALLBACK.format(stop=first)
    )
    assert run(ctx, program) >> 32 == 1


def test_for_each_percpu_sees_this_cpus_values(ctx):
    m = new_map(ctx, MapType.PERCPU_ARRAY, entries=2)
    m[key(0)] = [u64(1), u64(2), u64(3), u64(4)]
    program = with_callback(FOR_EACH_MAIN.format(map=m.address), FOR_EACH_CALLBACK.format(stop=99))
    assert run(ctx, program, cpu=2) == (2 << 32) + 3
    assert m[key(0)] == [u64(1), u64(2), u64(103), u64(4)]


PUSH = """
r1 = {value} ll
*(u64 *)(r10 - 8) = r1
r2 = r10
r2 += -8
r3 = {flags}
r1 = {map} ll
call 87
exit
"""

TAKE = """
r1 = 0
*(u64 *)(r10 - 8) = r1
r2 = r10
r2 += -8
r1 = {map} ll
call {helper}
r1 = *(u64 *)(r10 - 8)
r0 <<= 32
r0 += r1
exit
"""


def test_queue_push_pop_peek(ctx):
    q = new_map(ctx, MapType.QUEUE, key_size=0, entries=2)
    assert run(ctx, PUSH.format(value=1, flags=0, map=q.address)) == 0
    assert run(ctx, PUSH.format(value=2, flags=0, map=q.address)) == 0
    assert run(ctx, PUSH.format(value=3, flags=0, map=q.address)) == neg(errno.E2BIG)
    assert run(ctx, PUSH.format(value=3, flags=2, map=q.address)) == 0  # BPF_EXIST: drop oldest
    assert run(ctx, TAKE.format(map=q.address, helper=89)) == 2
    assert run(ctx, TAKE.format(map=q.address, helper=88)) == 2
    assert run(ctx, TAKE.format(map=q.address, helper=88)) == 3
    assert run(ctx, TAKE.format(map=q.address, helper=88)) >> 32 == neg(errno.ENOENT) & 0xFFFFFFFF


LOOP_C = r"""
typedef unsigned long long __u64;
typedef unsigned int __u32;
static long (*bpf_trace_printk)(const char *fmt, __u32 fmt_size, ...) = (void *)6;
static long (*bpf_loop)(__u32 nr_loops, void *callback_fn, void *ctx, __u64 flags) = (void *)181;

struct acc { __u64 sum; };

static long step(__u32 index, void *ctx)
{
    struct acc *acc = ctx;
    acc->sum += index;
    return index == 9 ? 1 : 0;
}

__attribute__((section("xdp"), used))
int sum_loop(void *ctx)
{
    struct acc acc = { 0 };
    long n = bpf_loop(100, step, &acc, 0);
    char fmt[] = "n=%ld s=%llu\n";
    bpf_trace_printk(fmt, sizeof(fmt), n, acc.sum);
    return (int)(n * 1000 + acc.sum);
}

char _license[] __attribute__((section("license"), used)) = "GPL";
"""


def test_clang_program_with_bpf_loop_and_trace_printk(ctx, tmp_path):
    clang = shutil.which("clang-16") or shutil.which("clang")
    if clang is None:
        pytest.skip("clang is not installed")
    source = tmp_path / "loop.c"
    source.write_text(LOOP_C)
    obj = tmp_path / "loop.o"
    subprocess.run([clang, "-O2", "-target", "bpf", "-c", str(source), "-o", str(obj)], check=True)
    spec = load_object_spec(obj).programs["sum_loop"]
    assert run(ctx, list(spec.instructions)) == 10 * 1000 + 45
    assert ctx.read_trace() == ["n=10 s=45"]
