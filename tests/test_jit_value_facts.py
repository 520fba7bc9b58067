"""Verifier facts in the JIT: operand ranges that remove checks, memory regions as alias scopes.

The verifier reports, for each division, remainder and register shift, the
unsigned range it proved for the register operands (`Report.value_ranges`);
the JIT then leaves out the checks that range makes redundant (the zero
and -1 divisor selects, the shift-count mask) and divides in 32 bits when
both operands of a 64-bit unsigned division fit. Every case here runs the
JIT with ranges against the interpreter on operands inside those ranges
(the interpreter gets no facts: it is the reference), and checks that the
facts really changed the IR. The memory regions (`Report.memory_regions`)
put stack and other accesses in different LLVM alias scopes: a program
that keeps a counter on the stack while storing to the packet runs as the
interpreter runs it, and the optimising pipeline keeps the counter in a
register.
"""

from __future__ import annotations

import itertools

import pytest

from fuzz_programs import Harness
from pybpf.engine.interpreter import Interpreter
from pybpf.engine.jit import JitEngine
from pybpf.isa import assemble
from pybpf.isa.instruction import Instruction
from pybpf.isa.opcodes import EXIT, AluOp, InsnClass, Source
from pybpf.verifier.cache import report_from_json, report_to_json

M32 = (1 << 32) - 1
M64 = (1 << 64) - 1
EDGES = [
    0, 1, 2, 3, 7, 31, 32, 35, 63, 64, 0x7F, 0x80, 1254, 0xFFFF, 0x7FFFFFFF, 0x80000000,
    M32 - 1, M32, 1 << 32, (1 << 63) - 1, 1 << 63, M64 - 1, M64, 0x8000000080000000,
]  # fmt: skip

DIVISIONS = [(AluOp.DIV, 0), (AluOp.MOD, 0), (AluOp.DIV, 1), (AluOp.MOD, 1)]
SHIFTS = [(AluOp.LSH, 0), (AluOp.RSH, 0), (AluOp.ARSH, 0)]

# (dst range, src range): each removes a different check.
DIVISION_RANGES = [
    ((0, M32), (1, M32)),  # non-zero divisor; 64-bit unsigned ones go to 32 bits
    ((4, 1254), (2, 35)),  # the trial-division benchmark's ranges
    ((0, M64), (1, M64 - 1)),  # neither 0 nor -1, any dividend (INT_MIN included)
    ((0, M64), (1, M64)),  # may be -1: signed operations keep that check
]
SHIFT_RANGES = [((0, M64), (0, 31)), ((0, M64), (0, 63))]


def _program(cls: InsnClass, op: AluOp, off: int) -> list[Instruction]:
    body = Instruction(cls | op | Source.X, dst=1, src=2, off=off)
    return [body, Instruction(0xBF, dst=0, src=1), Instruction(EXIT)]


def _inside(bounds: tuple[int, int]) -> list[int]:
    lo, hi = bounds
    return sorted({v for v in EDGES if lo <= v <= hi} | {lo, hi})


def _cases() -> list[tuple[str, InsnClass, AluOp, int, tuple[int, int], tuple[int, int]]]:
    cases = []
    for cls in (InsnClass.ALU64, InsnClass.ALU):
        for (op, off), (dst, src) in itertools.chain(
            itertools.product(DIVISIONS, DIVISION_RANGES), itertools.product(SHIFTS, SHIFT_RANGES)
        ):
            if cls == InsnClass.ALU and (src[1] > M32 or dst[1] > M32):
                continue  # ranges beyond 32 bits say nothing of a 32-bit operation
            name = f"{cls.name}-{op.name}-off{off}-src{src[0]}..{src[1]:#x}"
            cases.append((name, cls, op, off, dst, src))
    return cases


CASES = _cases()


@pytest.mark.parametrize(
    ("name", "cls", "op", "off", "dst", "src"), CASES, ids=[c[0] for c in CASES]
)
def test_operations_with_proven_ranges_match_the_interpreter(
    name: str, cls: InsnClass, op: AluOp, off: int, dst: tuple[int, int], src: tuple[int, int]
) -> None:
    insns = _program(cls, op, off)
    interpreter = Interpreter(insns)
    jit = JitEngine(insns, value_ranges={0: {1: dst, 2: src}})
    for a, b in itertools.product(_inside(dst), _inside(src)):
        assert jit.run(a, b) == interpreter.run(a, b), (name, hex(a), hex(b))


def _ir(insns: list[Instruction], ranges: dict[int, dict[int, tuple[int, int]]]) -> str:
    entry = JitEngine(insns, value_ranges=ranges).ir
    return entry.split("_repeat")[0]  # the program's function, not the repeat loop


def test_a_divisor_proven_non_zero_needs_no_select_and_fits_32_bits() -> None:
    insns = _program(InsnClass.ALU64, AluOp.MOD, 0)
    plain = _ir(insns, {})
    assert "select" in plain and "urem i64" in plain
    proven = _ir(insns, {0: {1: (0, M32), 2: (1, M32)}})
    assert "select" not in proven and "urem i32" in proven and "urem i64" not in proven
    # The dividend may pass 32 bits: a 64-bit remainder, still without the zero check.
    wide = _ir(insns, {0: {1: (0, 1 << 32), 2: (1, M32)}})
    assert "select" not in wide and "urem i64" in wide


def test_a_signed_divisor_that_may_be_minus_one_keeps_that_check() -> None:
    insns = _program(InsnClass.ALU64, AluOp.DIV, 1)
    assert "select" not in _ir(insns, {0: {2: (1, M64 - 1)}})
    assert "select" in _ir(insns, {0: {2: (1, M64)}})  # -1 is M64 unsigned
    assert "select" in _ir(insns, {0: {2: (0, 10)}})  # 0 is possible


def test_a_shift_count_proven_below_the_width_is_not_masked() -> None:
    insns = _program(InsnClass.ALU64, AluOp.RSH, 0)
    assert "and i64" in _ir(insns, {})
    assert "and i64" not in _ir(insns, {0: {2: (0, 63)}})
    assert "and i64" in _ir(insns, {0: {2: (0, 64)}})


DIVIDE_BY_PROVEN = """
call 7
mov %r6, %r0
and %r6, 7
add %r6, 1
call 7
div %r0, %r6
exit
"""
"""r0 = a random u32 / (1 + (another random u32 & 7)): the divisor is proven in [1, 8]."""

DIVIDE_BY_MAYBE_ZERO = DIVIDE_BY_PROVEN.replace("add %r6, 1\n", "")


def test_the_verifier_reports_division_operand_ranges() -> None:
    harness = Harness(allow_ptr_leaks=False)
    proven = harness.verify(assemble(DIVIDE_BY_PROVEN))
    assert proven.ok, proven.render()
    # The verifier gives helper results no range: only the divisor's is known.
    assert proven.value_ranges == {5: {6: (1, 8)}}
    maybe = harness.verify(assemble(DIVIDE_BY_MAYBE_ZERO))
    assert maybe.ok, maybe.render()
    assert maybe.value_ranges == {4: {6: (0, 7)}}


RANDOM = [0xFFFFFFF8, 100, 12345, 0, 7, 0xFFFFFFFF]
"""What the test's bpf_get_prandom_u32 returns, in turn: (divisor source, dividend) pairs."""


def _sequence_helpers() -> object:
    from pybpf.runtime.helpers import HelperSpec, HelperTable

    values = itertools.cycle(RANDOM)
    helpers = HelperTable()
    helpers.register(HelperSpec(7, "get_prandom_u32", lambda env, *args: next(values)))
    return helpers


def test_verified_ranges_compile_to_code_that_agrees_with_the_interpreter() -> None:
    harness = Harness(allow_ptr_leaks=False)
    for source in (DIVIDE_BY_PROVEN, DIVIDE_BY_MAYBE_ZERO):
        insns = assemble(source)
        report = harness.verify(insns)
        interpreter = Interpreter(insns, helpers=_sequence_helpers())
        jit = JitEngine(insns, helpers=_sequence_helpers(), value_ranges=report.value_ranges)
        results = [jit.run() for _ in range(len(RANDOM) // 2)]
        assert results == [interpreter.run() for _ in range(len(RANDOM) // 2)]
        function = jit.ir.split("_repeat")[0]
        if source is DIVIDE_BY_PROVEN:
            assert results == [100 // 1, 0 // 2, M32 // 8]
            assert "select" not in function
        else:
            assert results == [0, 0 // 1, M32 // 7]  # 100 / 0 is 0 in Linux
            assert "select" in function


def test_the_verifier_cache_keeps_the_facts() -> None:
    harness = Harness(allow_ptr_leaks=False)
    for source in (DIVIDE_BY_PROVEN, STACK_AND_PACKET):
        report = harness.verify(assemble(source))
        again = report_from_json(report_to_json(report))
        assert again.value_ranges == report.value_ranges
        assert again.memory_regions == report.memory_regions
    assert again.memory_regions != {}


STACK_AND_PACKET = """
ldxw %r2, [%r1+0]
ldxw %r3, [%r1+4]
mov %r4, %r2
add %r4, 8
jgt %r4, %r3, out
ldxw %r5, [%r2+4]
stxdw [%r10-8], %r5
mov %r6, 0
loop:
ldxdw %r5, [%r10-8]
add %r5, %r6
stxdw [%r10-8], %r5
stxw [%r2+0], %r5
add %r6, 1
jlt %r6, 100, loop
ldxdw %r0, [%r10-8]
and %r0, 3
exit
out:
mov %r0, 0
exit
"""
"""A running sum on the stack, stored to the packet in every round."""


def _optimised_function(ir_text: str) -> str:
    import llvmlite.binding as llvm

    from pybpf.runtime.native import compiler

    module = llvm.parse_assembly(ir_text)
    machine = compiler._get_engine().program_machine
    options = llvm.create_pipeline_tuning_options(speed_level=compiler.PROGRAM_SPEED_LEVEL)
    builder = llvm.create_pass_builder(machine, options)
    builder.getModulePassManager().run(module, builder)
    return str(module).split("_repeat")[0]


def test_stack_and_packet_accesses_get_alias_scopes_that_llvm_uses() -> None:
    from pybpf.engine.jit.context_loads import context_loads
    from pybpf.hooks.test_run import test_run
    from pybpf.platform.program_types import ProgramType

    harness = Harness(allow_ptr_leaks=False)
    insns = assemble(STACK_AND_PACKET)
    report = harness.verify(insns)
    assert report.ok, report.render()
    stack, other = "stack", "not-stack"
    # pcs 0, 1: context fields; 5, 11: the packet; 6, 8, 10, 14: the stack slot.
    assert report.memory_regions == {
        0: other, 1: other, 5: other, 6: stack, 8: stack, 10: stack, 11: other, 14: stack
    }  # fmt: skip
    loads = context_loads(insns, report, ProgramType.XDP)
    memory = harness.context.memory
    plain = JitEngine(insns, runtime=harness.context, memory=memory, context_loads=loads)
    scoped = JitEngine(
        insns,
        runtime=harness.context,
        memory=memory,
        context_loads=loads,
        memory_regions=report.memory_regions,
    )
    interpreter = Interpreter(insns, runtime=harness.context, memory=memory)
    packet = bytes(range(7, 39))
    want = test_run(interpreter, ProgramType.XDP, data=packet)
    for engine in (plain, scoped):
        got = test_run(engine, ProgramType.XDP, data=packet)
        assert (got.retval, got.data_out) == (want.retval, want.data_out)
    assert "!alias.scope" in scoped.ir and "!alias.scope" not in plain.ir
    # Without scopes every round reloads the sum from the stack after the packet
    # store; with them LLVM keeps it in a register (fewer loads and stores left).
    without, with_scopes = _optimised_function(plain.ir), _optimised_function(scoped.ir)
    assert with_scopes.count("store ") < without.count("store ")
    assert with_scopes.count(" load ") < without.count(" load ")
