"""The interpreter's code generation shortcuts keep Linux semantics and exact counts.

Each shortcut of `engine.translate` (unrolled self-loops, folded ALU runs,
copied exit tails, frames skipped by functions that never name r10,
unwrapped addresses, context pointer readers cached at load sites) is
checked against a model computed here: r0, the `executed` count and, with a
budget, the exact instruction count at which the budget fault comes.
"""

from __future__ import annotations

import pytest

from pybpf.elf.map_types import MapType
from pybpf.elf.specs import MapSpec
from pybpf.engine.interpreter import Interpreter
from pybpf.engine.translate import INLINE_BUDGET, UNROLL_INSTRUCTIONS, UNROLL_MAX_COPIES
from pybpf.errors import ProgramFault
from pybpf.hooks.test_run import test_run
from pybpf.isa.assembler import assemble
from pybpf.platform import ProgramType
from pybpf.runtime.context import ExecutionContext
from pybpf.runtime.helpers import HelperEnv, HelperSpec, HelperTable, conformance_helpers
from pybpf.runtime.linux_helpers import linux_helpers
from pybpf.runtime.maps import create_map

M64 = (1 << 64) - 1


def _loop(body: int, iterations: int) -> str:
    """r0 = 0; r1 = N; do { r0 += r1; r0 ^= 0x5a; (body - 4) × r0 += 1; r1 -= 1 } while r1."""
    extra = "\n".join("add %r0, 1" for _ in range(body - 4))
    return (
        f"mov %r0, 0\nmov %r1, {iterations}\n"
        f"loop:\nadd %r0, %r1\nxor %r0, 0x5a\n{extra}\nsub %r1, 1\njne %r1, 0, loop\nexit\n"
    )


def _loop_model(body: int, iterations: int) -> tuple[int, int]:
    r0 = 0
    for r1 in range(iterations, 0, -1):
        r0 = ((((r0 + r1) & M64) ^ 0x5A) + body - 4) & M64
    return r0, 2 + body * iterations + 1


# Loop bodies run 16 copies per turn (the most), 12, 3, 2, and none.
LONGEST_UNROLLED = UNROLL_INSTRUCTIONS // 2
BODIES = (
    4,
    UNROLL_INSTRUCTIONS // UNROLL_MAX_COPIES,
    UNROLL_INSTRUCTIONS // UNROLL_MAX_COPIES + 1,
    21,
    LONGEST_UNROLLED,
    LONGEST_UNROLLED + 1,
)


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("iterations", (1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 15, 16, 17))
def test_unrolled_loops_count_every_instruction(body: int, iterations: int) -> None:
    vm = Interpreter(assemble(_loop(body, iterations)), helpers=conformance_helpers())
    assert (vm.run(), vm.executed) == _loop_model(body, iterations)


@pytest.mark.parametrize("body", BODIES)
def test_unrolled_loops_fault_at_the_exact_budget(body: int) -> None:
    # The budget is checked at each pass of the loop head: pass i has
    # executed 2 + body * i instructions, and the first one above the
    # budget faults with that count, whatever the unrolling.
    iterations = 9
    for budget in range(2 + body, 2 + body * iterations + 2):
        vm = Interpreter(
            assemble(_loop(body, iterations)), helpers=conformance_helpers(), budget=budget
        )
        passes = [2 + body * i for i in range(1, iterations + 1)]
        over = next((count for count in passes if count > budget), None)
        if over is None:
            assert (vm.run(), vm.executed) == _loop_model(body, iterations)
        else:
            with pytest.raises(ProgramFault, match=rf"\({over} executed\)"):
                vm.run()


# A loop of three blocks (a branch inside): each pass runs 5 instructions,
# and 1 more when the byte is small; the jump back is taken from two copies.
BRANCHY_LOOP = (
    "mov %r0, 0\nmov %r3, 0\nloop:\nmov %r4, %r3\nand %r4, 7\nadd %r0, %r4\n"
    "jgt %r4, 3, next\nxor %r0, 0x10\nnext:\nadd %r3, 1\njlt %r3, %r1, loop\nexit\n"
)


def _branchy_model(iterations: int) -> tuple[int, int, list[int]]:
    """(r0, executed, the count at each pass of the loop head) of `BRANCHY_LOOP`."""
    r0, executed, passes = 0, 2, []
    for r3 in range(iterations):
        passes.append(executed)  # what the head's budget check sees on entry, before the pass
        r0 = (r0 + (r3 & 7)) & M64
        executed += 6
        if r3 & 7 <= 3:
            r0 ^= 0x10
            executed += 1
    return r0, executed + 1, passes


@pytest.mark.parametrize("iterations", (1, 2, 4, 5, 9, 20))
def test_a_loop_of_several_blocks_turns_without_the_dispatcher(iterations: int) -> None:
    vm = Interpreter(assemble(BRANCHY_LOOP), helpers=conformance_helpers())
    r0, executed, _ = _branchy_model(iterations)
    assert (vm.run(iterations), vm.executed) == (r0, executed)
    assert (vm.run_repeated(iterations, 3), vm.executed) == (r0, executed)
    body = vm.source.split("while True:")[-1]  # the loop head's own `while`
    assert "continue" in body
    assert "b = 1" not in body  # the jump back is no transfer through the dispatcher


def test_a_loop_of_several_blocks_faults_at_the_exact_budget() -> None:
    iterations = 9
    r0, executed, passes = _branchy_model(iterations)
    for budget in range(2, executed + 2):
        vm = Interpreter(assemble(BRANCHY_LOOP), helpers=conformance_helpers(), budget=budget)
        # The head checks n with its own 4 instructions added: the first count over the budget.
        counts = [count + 4 for count in passes]
        over = next((count for count in counts if count > budget), None)
        if over is None:
            assert (vm.run(iterations), vm.executed) == (r0, executed)
        else:
            with pytest.raises(ProgramFault, match=rf"\({over} executed\)"):
                vm.run(iterations)


def test_short_loops_are_unrolled_and_long_ones_are_not() -> None:
    short = Interpreter(assemble(_loop(4, 3)), helpers=conformance_helpers())
    long = Interpreter(assemble(_loop(LONGEST_UNROLLED + 1, 3)), helpers=conformance_helpers())
    assert "if not (" in short.source
    assert "if not (" not in long.source


FOLDED = [
    # A run of ALU instructions on r0 (folded into one assignment) and its result.
    ("mov %r0, %r1\nadd %r0, 0x22\nlsh %r0, 60\nrsh %r0, 58", ((7 + 0x22) << 60 & M64) >> 58),
    ("mov %r0, -1\nadd32 %r0, 3\nneg %r0\narsh %r0, 1", M64),  # 2, -2, -1
    ("mov %r0, 100\ndiv %r0, 7\nmod %r0, 5\nmul %r0, -3", ((100 // 7) % 5) * -3 & M64),
    ("mov %r0, 0x1234\nbe16 %r0\nor %r0, 0x10000\nxor %r0, 1", (0x3412 | 0x10000) ^ 1),
    ("mov %r0, 9\nsdiv %r0, -2\nsmod %r0, 3\nand %r0, 0xff", 0xFF),  # -4, -1, 0xff
    ("lddw %r0, 0x123456789\nmov32 %r0, %r0\nadd %r0, %r0\nsub %r0, 1", 0x23456789 * 2 - 1),
    # Inner 64-bit masks left out, x << k; x >> k as one mask (`codegen_ops.folded_value`):
    ("mov %r0, 3\nsub %r0, 5\nlsh %r0, 32\nrsh %r0, 32", 0xFFFFFFFE),  # -2 wraps first
    ("mov %r0, 3\nsub %r0, 5\nlsh %r0, 32\nrsh %r0, 31", 0x1FFFFFFFC),  # not a pair
    ("mov %r0, 3\nsub %r0, 5\nlsh %r0, 2\nand %r0, 0x3c", 0x38),
    ("mov %r0, 3\nsub %r0, 5\nmul %r0, 3\nrsh %r0, 60", 0xF),
    ("mov %r0, 3\nsub %r0, 5\nor %r0, 1\nrsh %r0, 62", 3),
    ("mov %r0, 1\nsub %r0, 2\nrsh32 %r0, 28\narsh32 %r0, 1", 7),
    ("mov %r0, 1\nsub %r0, 3\nxor32 %r0, 1\nneg %r0", (-((-2 & 0xFFFFFFFF) ^ 1)) & M64),
    ("mov %r0, 1\nlsh %r0, 63\nadd %r0, %r0", 0),  # src == dst: not folded
    # A constant near the top written as a small one of the other sign (`_add_or_sub`):
    ("mov %r0, 2\nadd %r0, -4", M64 - 1),
    ("mov %r0, 2\nsub %r0, -4\nadd %r0, -7", M64),
    ("mov %r0, 2\nadd32 %r0, -4", 0xFFFFFFFE),
    ("lddw %r0, 0x1ffffffff\nsub32 %r0, -2", 1),
    (
        "lddw %r0, 0x8000000000000001\nadd %r0, 0x7fffffff\nsub %r0, -0x80000000",
        0x8000000000000000 + 0xFFFFFFFF + 1,
    ),
]


@pytest.mark.parametrize(("body", "expected"), FOLDED)
def test_folded_alu_runs_compute_what_each_instruction_does(body: str, expected: int) -> None:
    vm = Interpreter(assemble(f"mov %r1, 7\n{body}\nexit\n"), helpers=conformance_helpers())
    assert vm.run() == expected
    assert vm.executed == 1 + (body.count("\n") + 1) + 1


# Decrements that a jump's outcome shows cannot wrap, beside those it does not
# cover: (program, r1 → expected r0 for each r1 tried).
BOUNDED = [
    # jne r1, 0 taken: r1 >= 1, so r1 - 1 >= 0; the other edge keeps the wrap.
    (
        "jne %r1, 0, dec\nsub %r1, 1\nmov %r0, %r1\nexit\ndec:\nsub %r1, 1\nmov %r0, %r1\nexit\n",
        {0: M64, 1: 0, 5: 4},
    ),
    # jgt r1, 4 taken: r1 >= 5; a larger decrement than that still wraps.
    (
        "jgt %r1, 4, big\nmov %r0, 0\nexit\nbig:\nadd %r1, -5\nmov %r0, %r1\nsub %r0, 6\nexit\n",
        {5: M64 - 5, 11: 0, 12: 1, 4: 0},
    ),
    ("jgt %r1, 4, big\nmov %r0, 0\nexit\nbig:\nmov %r0, %r1\nsub %r0, 6\nexit\n", {5: M64, 6: 0}),
    # jlt r1, 3 not taken: r1 >= 3; a write of r1 in between forgets it.
    (
        "jlt %r1, 3, out\nmov %r1, 1\nsub %r1, 3\nmov %r0, %r1\nexit\nout:\nmov %r0, 9\nexit\n",
        {3: M64 - 1, 7: M64 - 1},
    ),
    # A 32-bit jump proves nothing of the 64-bit register.
    (
        "jne32 %r1, 0, dec\nmov %r0, 0\nexit\ndec:\nsub %r1, 1\nmov %r0, %r1\nexit\n",
        {1 << 32: 0, (1 << 32) + 1: 1 << 32},
    ),
]


@pytest.mark.parametrize(("source", "cases"), BOUNDED)
def test_decrements_shown_not_to_wrap_give_what_masked_ones_do(
    source: str, cases: dict[int, int]
) -> None:
    vm = Interpreter(assemble(source), helpers=conformance_helpers())
    for r1, expected in cases.items():
        assert vm.run(r1) == expected, r1


def test_a_decrement_after_its_jump_has_no_mask() -> None:
    # The unrolled copies after the first know r1 >= 1 from the jump back;
    # the frame pointer's offsets are unwrapped too.
    loop = Interpreter(assemble(_loop(4, 3)), helpers=conformance_helpers())
    assert "r1 = r1 - 1\n" in loop.source
    assert "r1 = (r1 - 1) & 0xffffffffffffffff" in loop.source  # the first copy's
    frame = Interpreter(
        assemble("mov %r2, %r10\nadd %r2, -8\nstdw [%r2], 3\nldxdw %r0, [%r10-8]\nexit\n"),
        helpers=conformance_helpers(),
    )
    assert "r2 = r10 - 8\n" in frame.source
    assert frame.run() == 3


def test_a_copied_exit_tail_counts_once_per_path() -> None:
    # Both branches jump to `mov r0, 2; exit` (copied into each of them).
    source = "mov %r0, 1\njeq %r1, 0, tail\nmov %r0, 5\njeq %r1, 1, tail\nexit\ntail:\nadd %r0, 2\nexit\n"
    for r1, expected in ((0, (3, 4)), (1, (7, 6)), (2, (5, 5))):
        vm = Interpreter(assemble(source), helpers=conformance_helpers())
        assert (vm.run(r1), vm.executed) == expected
    assert "b = " not in vm.source  # no dispatcher left: every path is straight code


def test_merge_points_with_branches_are_copied_and_count_once_per_path() -> None:
    # Two if/else in a row: each merge point's code to the exit (a branch
    # inside) is copied into both blocks jumping to it.
    source = (
        "mov %r0, 0\njeq %r1, 0, a\nadd %r0, 1\na:\nadd %r0, 2\njgt %r1, 5, b\n"
        "add %r0, 10\nb:\nadd %r0, 100\nexit\n"
    )
    vm = Interpreter(assemble(source), helpers=conformance_helpers())
    for r1, expected in ((0, (112, 7)), (3, (113, 8)), (9, (103, 7))):
        assert (vm.run(r1), vm.executed) == expected
        assert (vm.run_repeated(r1, 2), vm.executed) == expected
    assert "b = " not in vm.source


def test_a_callee_without_r10_leaves_the_stack_to_functions_that_use_it() -> None:
    # The caller's frame is zeroed and used; the callee, which never names
    # r10, has no frame set-up; the caller's second call sees its own frame.
    source = (
        "stdw [%r10-8], 0x55\ncall local\nldxdw %r0, [%r10-8]\nadd %r0, %r6\nexit\n"
        "local:\nmov %r0, 3\nexit\n"
    )
    vm = Interpreter(assemble(source), helpers=conformance_helpers())
    assert vm.run() == 0x55
    functions = vm.source.split("def f")
    assert "F.bottom" in functions[1] or "ZERO_FRAME" in functions[1]
    assert "F.bottom" not in functions[2] and "ZERO_FRAME" not in functions[2]


ACCESSES = ("ldxw %r0, [%r1{off}]", "stw [%r1{off}], 7", "lock add32 [%r1{off}], %r2")


@pytest.mark.parametrize("access", ACCESSES)
@pytest.mark.parametrize(
    ("base", "offset"),
    [(M64 - 3, 16), (8, -16), (M64, 1)],
)
def test_addresses_wrap_at_64_bits_before_the_bounds_check(
    access: str, base: int, offset: int
) -> None:
    source = access.format(off=f"{offset:+d}")
    vm = Interpreter(assemble(f"mov %r0, 0\n{source}\nexit\n"), budget=100)
    with pytest.raises(ProgramFault) as info:
        vm.run(base)
    assert info.value.address == (base + offset) & M64


def test_offsets_reach_their_region_from_either_side() -> None:
    source = (
        "ldxb %r0, [%r1+2]\nldxb %r2, [%r1-1]\nadd %r0, %r2\n"
        "stb [%r1-1], 1\nmov %r3, 5\nlock add32 [%r1+3], %r3\nexit\n"
    )
    vm = Interpreter(assemble(source))
    region = vm.memory.allocate_from(bytes([10, 20, 30, 40, 1, 0, 0, 0]), "data")
    # r1 one past the region's start: offset +2 reads byte 3, -1 byte 0.
    assert vm.run(region.start + 1) == 40 + 10
    assert region.read() == bytes([1, 20, 30, 40, 6, 0, 0, 0])


@pytest.mark.parametrize("offset", (6, -3))
def test_a_site_keeps_checking_its_bounds_as_its_base_moves(offset: int) -> None:
    # Load and store sites hold their region's start minus the offset
    # (`codegen_ops._rebase`): every run's access is still checked against
    # the cached region, and another region refills the site.
    source = f"ldxb %r0, [%r1{offset:+d}]\nstb [%r1{offset:+d}], 9\nexit\n"
    vm = Interpreter(assemble(source))
    first = vm.memory.allocate_from(bytes(range(1, 9)), "first")
    second = vm.memory.allocate_from(bytes(range(101, 109)), "second")
    for region, index in ((first, 0), (first, 7), (second, 2), (first, 3)):
        before = region.read()[index]
        assert vm.run(region.start + index - offset) == before
        assert region.read()[index] == 9
    for address in (first.start + 8, first.start - 1, second.start + 8):
        with pytest.raises(ProgramFault) as info:
            vm.run(address - offset)
        assert info.value.address == address


XDP_ADJUST_HEAD = 44

# Reads ctx->data at one site twice, with bpf_xdp_adjust_head(ctx, 4) in
# between: the second read must see the moved pointer (r0 = the move, 4).
MOVING_DATA = """
    mov %r6, %r1
    mov %r7, 0
loop:
    ldxw %r2, [%r6+0]
    jne %r7, 0, second
    mov %r9, %r2
    mov %r1, %r6
    mov %r2, 4
    call 44
    mov %r7, 1
    ja loop
second:
    mov %r0, %r2
    sub %r0, %r9
    exit
"""


@pytest.mark.parametrize("repeat", (1, 3))
def test_a_context_pointer_load_sees_a_helper_move_it(repeat: int) -> None:
    result = test_run(
        assemble(MOVING_DATA),
        ProgramType.XDP,
        data=bytes(range(64)),
        repeat=repeat,
        helpers=linux_helpers(),
    )
    assert result.retval == 4
    # The program moved the frame's start by 4 in each run (the frame is not reset).
    assert result.data_out == bytes(range(4 * repeat, 64))


# Loads through r1 in the first block try a context pointer's reader first
# (`codegen_ops.load`, context=True): data_end - data, the IPv4 protocol
# byte (a plain packet load) and ingress_ifindex (a plain context field).
CONTEXT_FIRST = """
    ldxw %r2, [%r1+4]
    ldxw %r3, [%r1+0]
    ldxw %r4, [%r1+12]
    mov %r0, %r2
    sub %r0, %r3
    lsh %r0, 16
    ldxb %r5, [%r3+23]
    or %r0, %r5
    lsh %r0, 8
    or %r0, %r4
    exit
"""


@pytest.mark.parametrize("repeat", (1, 3))
def test_context_first_loads_read_pointers_fields_and_packets(repeat: int) -> None:
    assert "if not o and H" in Interpreter(assemble(CONTEXT_FIRST)).source
    data = bytes(range(64))
    result = test_run(
        assemble(CONTEXT_FIRST), ProgramType.XDP, data=data, repeat=repeat, helpers=linux_helpers()
    )
    ifindex = 1  # the loopback device a test run uses
    assert result.retval == ((64 << 16 | data[23]) << 8 | ifindex) & 0xFFFFFFFF


def test_a_context_first_site_checks_any_other_region_as_any_site() -> None:
    vm = Interpreter(assemble("ldxh %r0, [%r1+6]\nexit\n"))
    assert "if not o and H" in vm.source
    first = vm.memory.allocate_from(bytes(range(8)), "first")
    second = vm.memory.allocate_from(bytes(range(100, 108)), "second")
    for region in (first, first, second, first):
        assert vm.run_repeated(region.start, 2) == int.from_bytes(region.read()[6:8], "little")
    for address in (first.start + 1, second.start - 7, 0):
        with pytest.raises(ProgramFault) as info:
            vm.run(address)
        assert info.value.address == address + 6


def test_sites_at_a_constant_address_check_their_region_is_still_there() -> None:
    # A global variable's address (`lddw`) makes the site check only that it
    # holds a region: a load, a store and an atomic, then the region goes away.
    vm = Interpreter(assemble("exit\n"))
    region = vm.memory.allocate_from(bytes(16), "globals")
    source = (
        f"lddw %r2, {region.start}\nstdw [%r2+8], 5\nmov %r3, 2\n"
        "lock add [%r2+8], %r3\nldxdw %r0, [%r2+8]\nexit\n"
    )
    vm = Interpreter(assemble(source), memory=vm.memory)
    assert "if H0 < 0:" in vm.source
    assert vm.run() == 7
    assert vm.run_repeated(0, 3) == 7
    vm.memory.remove(region)
    for run in (vm.run, lambda: vm.run_repeated(0, 2)):
        with pytest.raises(ProgramFault) as info:
            run()
        assert info.value.address == region.start + 8


@pytest.mark.parametrize("offset", (16, -1))
def test_a_constant_address_outside_its_region_faults_every_time(offset: int) -> None:
    vm = Interpreter(assemble("exit\n"))
    region = vm.memory.allocate_from(bytes(16), "globals")
    source = f"lddw %r2, {region.start}\nldxb %r0, [%r2{offset:+d}]\nexit\n"
    vm = Interpreter(assemble(source), memory=vm.memory)
    for _ in range(3):
        with pytest.raises(ProgramFault) as info:
            vm.run_repeated(0, 2)
        assert info.value.address == region.start + offset


def test_each_repeated_run_gets_a_fresh_helper_env() -> None:
    seen: list[tuple[int, bool]] = []

    def scratch(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
        seen.append((env.tail_calls, "mark" in env.data))
        env.data["mark"] = True
        return 0

    table = linux_helpers()
    table.register(HelperSpec(0x7FFF, "scratch", scratch))
    insns = assemble("call 0x7fff\ncall 0x7fff\nmov %r0, 2\nexit\n")
    test_run(insns, ProgramType.XDP, data=bytes(64), repeat=4, helpers=table)
    # Within a run the second call sees the first's scratch; no run sees an earlier run's.
    assert seen == [(0, False), (0, True)] * 4


def test_helper_tables_without_scratch_helpers_still_run() -> None:
    vm = Interpreter(assemble("mov %r0, 1\nexit\n"), helpers=HelperTable())
    assert vm.run_repeated(0, 3) == 1 and vm.executed == 2


# -- map lookup sites (`translate._FunctionWriter.map_lookup`) ----------------------

# r0 = *lookup(map, key at r1) or 0xdead: r1 is a constant map pointer at the
# call (an lddw in the same block), so the call is a caching lookup site.
LOOKUP_AT_R1 = """
r2 = r1
r1 = {map} ll
call 1
if r0 == 0 goto miss
r0 = *(u64 *)(r0 + 0)
exit
miss:
r0 = 0xdead
exit
"""


@pytest.fixture
def context():
    ctx = ExecutionContext(ncpus=4)
    yield ctx
    for map_ in ctx.maps():
        map_.close()


def _map(ctx: ExecutionContext, kind: int, entries: int = 4):
    map_ = create_map(MapSpec("m", kind, 4, 8, entries), ctx.memory, ncpus=4)
    ctx.add_map(map_)
    return map_


def _u32(value: int) -> bytes:
    return value.to_bytes(4, "little")


def test_a_map_lookup_site_checks_each_key_against_live_regions(context) -> None:
    m = _map(context, MapType.HASH)
    for k in (1, 2, 3):
        m[_u32(k)] = (k * 11).to_bytes(8, "little")
    vm = Interpreter(
        assemble(LOOKUP_AT_R1.format(map=m.address)),
        helpers=linux_helpers(),
        memory=context.memory,
        runtime=context,
    )
    assert "mlk(" in vm.source  # the call is a lookup site
    keys = context.memory.allocate_from(b"".join(_u32(k) for k in (1, 2, 3, 9)), "keys")
    other = context.memory.allocate_from(_u32(2), "other keys")
    # Every key of a region, another region's, then the first region again.
    for address, value in [(keys.start + 4 * i, v) for i, v in enumerate((11, 22, 33, 0xDEAD))] + [
        (other.start, 22),
        (keys.start, 11),
    ]:
        assert vm.run_repeated(address, 2) == value
    # A key running past its region's end faults, as the helper's check does.
    with pytest.raises(ProgramFault, match="out-of-bounds read of 4 bytes"):
        vm.run(keys.start + 14)
    # A key in a region removed since it was cached faults too.
    assert vm.run(other.start) == 22
    context.memory.remove(other)
    with pytest.raises(ProgramFault, match="out-of-bounds read of 4 bytes"):
        vm.run(other.start)
    # And a map gone from the context is no map any more, cached lookup or not.
    assert vm.run(keys.start) == 11
    context.remove_map(m)
    with pytest.raises(ProgramFault, match="is not a map pointer"):
        vm.run(keys.start)
    context.add_map(m)


def test_a_per_cpu_map_lookup_site_reads_the_running_cpus_slot(context) -> None:
    m = _map(context, MapType.PERCPU_ARRAY)
    m[_u32(1)] = [(10 + cpu).to_bytes(8, "little") for cpu in range(4)]
    vm = Interpreter(
        assemble(LOOKUP_AT_R1.format(map=m.address)),
        helpers=linux_helpers(),
        memory=context.memory,
        runtime=context,
    )
    key = context.memory.allocate_from(_u32(1), "key")
    for cpu in (2, 2, 1, 3, 1):
        env = HelperEnv(context.memory, key.start, vm, context, cpu=cpu)
        assert vm.enter((key.start, 0, 0, 0, 0), env)[0] == 10 + cpu


def test_a_lookup_site_calls_any_other_helper_1_every_time(context) -> None:
    calls: list[int] = []

    def lookup(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
        calls.append(r2)
        return 0

    table = HelperTable([HelperSpec(1, "counting_lookup", lookup)])
    m = _map(context, MapType.HASH)
    vm = Interpreter(
        assemble(LOOKUP_AT_R1.format(map=m.address)),
        helpers=table,
        memory=context.memory,
        runtime=context,
    )
    key = context.memory.allocate_from(_u32(1), "key")
    assert vm.run_repeated(key.start, 3) == 0xDEAD
    assert calls == [key.start] * 3


# -- leaf callees inlined (`translate._FunctionWriter.inline_call`) ------------------

# The caller sets r1-r9, calls a leaf that writes every one of them, and sums
# them with the leaf's r0: a call leaves the caller's registers as they were.
LEAF_CALLER = (
    "mov %r1, 1\nmov %r2, 2\nmov %r3, 3\nmov %r4, 4\nmov %r5, 5\n"
    "mov %r6, 6\nmov %r7, 7\nmov %r8, 8\nmov %r9, 9\ncall leaf\n"
    "add %r0, %r1\nadd %r0, %r2\nadd %r0, %r3\nadd %r0, %r4\nadd %r0, %r5\n"
    "add %r0, %r6\nadd %r0, %r7\nadd %r0, %r8\nadd %r0, %r9\nexit\n"
    "leaf:\nmov %r0, %r1\nmul %r0, 1000\njeq %r2, 2, two\nexit\n"
    "two:\nmov %r6, 60\nmov %r7, 70\nmov %r8, 80\nmov %r9, 90\n"
    "mov %r1, 10\nmov %r2, 20\nmov %r3, 30\nmov %r4, 40\nmov %r5, 50\n"
    "add %r0, %r6\nexit\n"
)


def test_an_inlined_leaf_leaves_the_callers_registers_as_a_call_does() -> None:
    vm = Interpreter(assemble(LEAF_CALLER), helpers=conformance_helpers())
    caller = vm.source.split("def f")[1]
    assert "deep(" in caller and "r0, n = f" not in caller  # inlined, depth still checked
    assert vm.run() == 1000 + 60 + sum(range(1, 10))
    assert vm.executed == 20 + 14  # the caller's 20 instructions, the leaf's 3 + 11


def _chain(depth: int) -> str:
    # The entry calls f1, which calls f2 ... up to f(depth - 1), which calls
    # a leaf: `depth` functions and the leaf, each adding 1 to the leaf's r0.
    names = [f"f{level}" for level in range(1, depth)] + ["leaf"]
    parts = [f"call {names[0]}\nadd %r0, 1\nexit\n"]
    for name, callee in zip(names, names[1:], strict=False):
        parts.append(f"{name}:\ncall {callee}\nadd %r0, 1\nexit\n")
    parts.append("leaf:\nmov %r0, 100\nexit\n")
    return "".join(parts)


@pytest.mark.parametrize(("depth", "fits"), [(7, True), (8, False)])
def test_an_inlined_leaf_counts_as_a_frame(depth: int, fits: bool) -> None:
    vm = Interpreter(assemble(_chain(depth)), helpers=conformance_helpers())
    assert "r0, n = f" not in vm.source.split("def f")[depth]  # the leaf is inlined
    if fits:
        assert vm.run() == 100 + depth
    else:
        with pytest.raises(ProgramFault, match="call depth exceeds 8 frames"):
            vm.run()


def test_each_inlined_copy_of_a_leaf_has_its_own_load_sites() -> None:
    # The leaf reads *(u8 *)r1; the caller calls it on two regions, many times.
    source = (
        "mov %r6, %r1\nmov %r7, %r2\nmov %r8, 0\n"
        "loop:\nmov %r1, %r6\ncall leaf\nmov %r9, %r0\nmov %r1, %r7\ncall leaf\n"
        "add %r9, %r0\nadd %r8, %r9\njlt %r8, 100, loop\nmov %r0, %r8\nexit\n"
        "leaf:\nldxb %r0, [%r1]\nexit\n"
    )
    vm = Interpreter(assemble(source), helpers=conformance_helpers())
    first = vm.memory.allocate_from(bytes([3]), "first")
    second = vm.memory.allocate_from(bytes([4]), "second")
    assert vm.run(first.start, second.start) == 105  # 15 turns of 3 + 4
    assert vm.run(second.start, first.start) == 105


def test_every_run_and_every_call_starts_with_a_zeroed_frame() -> None:
    # The callee reads its frame's last word and leaves 0x55 there; the
    # caller calls it twice per run and reads its own frame the same way.
    source = (
        "ldxdw %r6, [%r10-8]\nstdw [%r10-8], 0x55\ncall f\nmov %r7, %r0\ncall f\n"
        "add %r0, %r7\nadd %r0, %r6\nexit\n"
        "f:\nldxdw %r0, [%r10-8]\nstdw [%r10-8], 0x55\nldxdw %r1, [%r10-512]\n"
        "add %r0, %r1\nstdw [%r10-512], 7\nexit\n"
    )
    vm = Interpreter(assemble(source), helpers=conformance_helpers())
    assert vm.run_repeated(0, 3) == 0
    assert vm.run() == 0


def test_a_function_inlines_at_most_its_budget_and_calls_the_rest() -> None:
    leaf_size = 3
    calls = INLINE_BUDGET // leaf_size + 2
    source = "mov %r6, 0\n" + "call leaf\nadd %r6, %r0\n" * calls
    source += "mov %r0, %r6\nexit\nleaf:\nmov %r0, 2\nadd %r0, 1\nexit\n"
    vm = Interpreter(assemble(source), helpers=conformance_helpers())
    assert vm.run() == 3 * calls
    assert vm.executed == 1 + 2 * calls + 2 + leaf_size * calls
    caller = vm.source.split("def f")[1]
    assert caller.count("r0, n = f") == calls - INLINE_BUDGET // leaf_size


# Programs whose exits sit at each place the runner of repeated runs
# (`translate._FunctionWriter.write_runner`) turns them into a yield: a
# straight body, the dispatcher's level, a self-loop's `while` (a long body
# is not unrolled, and its exit tail is copied into the loop).
LONG_BODY = "\n".join("add %r0, 1" for _ in range(UNROLL_INSTRUCTIONS // 2))
RUNNER_PROGRAMS = {
    "straight": "mov %r0, %r1\njgt %r1, 9, big\nadd %r0, 3\nexit\nbig:\nmov %r0, 1\nexit\n",
    "dispatched": (
        "mov %r0, 0\nmov %r2, %r1\nloop:\nadd %r0, %r2\nsub %r2, 1\njne %r2, 0, loop\n"
        "jgt %r0, 20, big\nexit\nbig:\nmov %r0, 7\nexit\n"
    ),
    "exit in a loop": f"mov %r0, 0\nloop:\n{LONG_BODY}\nsub %r1, 1\njne %r1, 0, loop\nexit\n",
    # r6 and the frame as the run before left them would show: each run starts afresh.
    "fresh registers and frame": (
        "ldxdw %r0, [%r10-8]\nadd %r0, %r6\nmov %r6, 5\nstdw [%r10-8], 9\nadd %r0, %r1\nexit\n"
    ),
}


@pytest.mark.parametrize("name", RUNNER_PROGRAMS)
@pytest.mark.parametrize("r1", (1, 4, 12))
def test_repeated_runs_give_what_single_runs_do(name: str, r1: int) -> None:
    vm = Interpreter(assemble(RUNNER_PROGRAMS[name]), helpers=conformance_helpers())
    single = vm.run(r1), vm.executed
    for repeat in (1, 2, 5):
        assert (vm.run_repeated(r1, repeat), vm.executed) == single
    assert (vm.run(r1), vm.executed) == single


def test_an_exit_inside_a_loop_leaves_the_loop_for_the_next_run() -> None:
    vm = Interpreter(assemble(RUNNER_PROGRAMS["exit in a loop"]), helpers=conformance_helpers())
    lines = [line.strip() for line in vm.translation.runner_source.splitlines()]
    leaving = [lines[i + 1] for i, line in enumerate(lines) if line == "b = -1"]
    assert "break" in leaving  # out of the loop's `while`, then out of the dispatcher
    body = len(LONG_BODY.splitlines())
    assert (vm.run_repeated(3, 4), vm.executed) == (3 * body, 1 + 3 * (body + 2) + 1)


def test_a_fault_in_a_repeated_run_leaves_later_runs_working() -> None:
    # The runner ends with the fault; the next repeated run starts a new one.
    vm = Interpreter(assemble("ldxdw %r0, [%r1+0]\nexit\n"), helpers=conformance_helpers())
    region = vm.memory.allocate_from((42).to_bytes(8, "little"), "data")
    with pytest.raises(ProgramFault):
        vm.run_repeated(region.start + 8, 3)
    assert vm.run_repeated(region.start, 3) == 42
