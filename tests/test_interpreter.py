"""Semantics of the bounds-checked interpreter, one table row per rule.

Programs are written in the conformance assembly syntax. Results are
compared as unsigned 64-bit numbers, which is what `run` returns.
"""

from __future__ import annotations

import pytest

from pybpf.engine.interpreter import Interpreter
from pybpf.errors import DecodeError, NotSupportedError, ProgramFault
from pybpf.isa.assembler import assemble
from pybpf.isa.instruction import Instruction
from pybpf.runtime.helpers import HelperSpec, HelperTable, conformance_helpers
from pybpf.runtime.memory import GUARD_SIZE, STACK_FRAME_SIZE, Memory

M64 = (1 << 64) - 1


def run(source: str, mem: bytes | None = None, **kwargs: object) -> int:
    """Assemble and run `source`; r1/r2 point at a copy of `mem` when given."""
    kwargs.setdefault("helpers", conformance_helpers())
    kwargs.setdefault("budget", 100_000)
    vm = Interpreter(assemble(source), **kwargs)  # type: ignore[arg-type]
    if mem is None:
        return vm.run()
    region = vm.memory.allocate_from(mem, "mem")
    return vm.run(region.start, len(mem))


def prog(*lines: str) -> str:
    return "\n".join(lines) + "\nexit\n"


ALU_CASES = [
    # division and modulo by zero
    ("div64 reg by 0 gives 0", prog("mov %r0, 7", "mov %r1, 0", "div %r0, %r1"), 0),
    ("div64 imm by 0 gives 0", prog("mov %r0, 7", "div %r0, 0"), 0),
    ("div32 by 0 gives 0", prog("mov %r0, 7", "mov %r1, 0", "div32 %r0, %r1"), 0),
    ("mod64 by 0 keeps dividend", prog("mov %r0, -7", "mov %r1, 0", "mod %r0, %r1"), M64 - 6),
    ("mod32 by 0 keeps low half", prog("lddw %r0, 0x1234567890", "mod32 %r0, 0"), 0x34567890),
    ("sdiv by 0 gives 0", prog("mov %r0, -7", "sdiv %r0, 0"), 0),
    ("smod by 0 keeps dividend", prog("mov %r0, -7", "smod %r0, 0"), M64 - 6),
    (
        "div32 uses only the low halves",
        prog("lddw %r0, 0x100000008", "lddw %r1, 0x100000002", "div32 %r0, %r1"),
        4,
    ),
    # ALU32 zero-extends
    ("add32 wraps and zero-extends", prog("mov %r0, -1", "add32 %r0, 1"), 0),
    ("mov32 -1 zero-extends", prog("mov32 %r0, -1"), 0xFFFFFFFF),
    ("neg32 zero-extends", prog("mov %r0, 1", "neg32 %r0"), 0xFFFFFFFF),
    ("arsh32 sign is bit 31", prog("mov32 %r0, 0x80000000", "arsh32 %r0, 4"), 0xF8000000),
    # shifts mask the count
    ("lsh64 reg count & 63", prog("mov %r0, 1", "mov %r1, 65", "lsh %r0, %r1"), 2),
    ("lsh32 reg count & 31", prog("mov %r0, 1", "mov %r1, 33", "lsh32 %r0, %r1"), 2),
    ("rsh64 imm count & 63", prog("mov %r0, 8", "rsh %r0, 67"), 1),
    ("arsh64 keeps the sign", prog("mov %r0, -16", "arsh %r0, 2"), M64 - 3),
    # signed division wraps at INT_MIN
    ("sdiv64 INT_MIN / -1", prog("lddw %r0, 0x8000000000000000", "sdiv %r0, -1"), 1 << 63),
    ("smod64 INT_MIN % -1", prog("lddw %r0, 0x8000000000000000", "smod %r0, -1"), 0),
    ("sdiv32 INT_MIN / -1", prog("mov32 %r0, 0x80000000", "sdiv32 %r0, -1"), 0x80000000),
    ("sdiv truncates toward zero", prog("mov %r0, -7", "sdiv %r0, 2"), M64 - 2),
    ("smod takes the dividend's sign", prog("mov %r0, -7", "smod %r0, 2"), M64),
    ("smod32 negative", prog("mov32 %r0, -7", "mov %r1, 2", "smod32 %r0, %r1"), 0xFFFFFFFF),
    ("neg64 INT_MIN wraps", prog("lddw %r0, 0x8000000000000000", "neg %r0"), 1 << 63),
    ("mul64 wraps", prog("lddw %r0, 0x8000000000000000", "mul %r0, -1"), 1 << 63),
    ("imm sign-extends for ALU64", prog("mov %r0, 0", "add %r0, 0xffffff80"), M64 - 127),
    # movsx
    ("movsx864", prog("mov %r1, 0x80", "movsx864 %r0, %r1"), M64 - 127),
    ("movsx1664", prog("mov %r1, 0x8000", "movsx1664 %r0, %r1"), M64 - 0x7FFF),
    ("movsx3264", prog("mov32 %r1, 0x80000000", "movsx3264 %r0, %r1"), M64 - 0x7FFFFFFF),
    ("movsx832 zero-extends", prog("mov %r1, 0xff", "movsx832 %r0, %r1"), 0xFFFFFFFF),
    ("movsx1632", prog("mov %r1, 0x7fff", "movsx1632 %r0, %r1"), 0x7FFF),
    # byte order
    ("be16", prog("lddw %r0, 0x1122334455667788", "be16 %r0"), 0x8877),
    ("be32", prog("lddw %r0, 0x1122334455667788", "be32 %r0"), 0x88776655),
    ("be64", prog("lddw %r0, 0x1122334455667788", "be64 %r0"), 0x8877665544332211),
    ("le16 truncates", prog("lddw %r0, 0x1122334455667788", "le16 %r0"), 0x7788),
    ("le64 is identity", prog("lddw %r0, 0x1122334455667788", "le64 %r0"), 0x1122334455667788),
    ("bswap16", prog("lddw %r0, 0x1122334455667788", "bswap16 %r0"), 0x8877),
    ("bswap32", prog("lddw %r0, 0x1122334455667788", "bswap32 %r0"), 0x88776655),
    ("bswap64", prog("lddw %r0, 0x1122334455667788", "bswap64 %r0"), 0x8877665544332211),
]


@pytest.mark.parametrize(
    ("source", "expected"), [c[1:] for c in ALU_CASES], ids=[c[0] for c in ALU_CASES]
)
def test_alu_semantics(source: str, expected: int) -> None:
    assert run(source) == expected


MEM = bytes([0x80, 0xFF, 0x01, 0x02, 0xF0, 0xDE, 0xBC, 0x8A])

LOAD_CASES = [
    ("ldxb", "ldxb %r0, [%r1]", 0x80),
    ("ldxh", "ldxh %r0, [%r1+2]", 0x0201),
    ("ldxw", "ldxw %r0, [%r1+4]", 0x8ABCDEF0),
    ("ldxdw", "ldxdw %r0, [%r1]", 0x8ABCDEF00201FF80),
    ("ldxsb", "ldxsb %r0, [%r1]", M64 - 0x7F),
    ("ldxsh", "ldxsh %r0, [%r1]", M64 - 0x7F),
    ("ldxsw", "ldxsw %r0, [%r1+4]", 0xFFFFFFFF8ABCDEF0),
    ("unaligned ldxw", "ldxw %r0, [%r1+1]", 0xF00201FF),
]


@pytest.mark.parametrize(
    ("source", "expected"), [c[1:] for c in LOAD_CASES], ids=[c[0] for c in LOAD_CASES]
)
def test_loads(source: str, expected: int) -> None:
    assert run(prog(source), MEM) == expected


def test_stores_through_r1_and_the_stack() -> None:
    source = prog(
        "stb [%r1+0], 0x1ff",  # only the low byte is stored
        "mov %r2, 0x3344",
        "stxh [%r1+1], %r2",
        "stw [%r10-4], -1",
        "ldxw %r3, [%r10-4]",
        "stxw [%r1+4], %r3",
        "stxdw [%r10-13], %r3",  # unaligned stack slot
        "ldxdw %r0, [%r10-13]",
        "ldxdw %r4, [%r1]",
        "add %r0, %r4",
    )
    assert run(source, bytes(8)) == (0xFFFFFFFF + 0xFFFFFFFF003344FF) & M64


ATOMIC_CASES = [
    # (program after "stdw [%r10-8], 0x10" with r1 = 3, expected (memory, r0, r1))
    ("add", "lock add [%r10-8], %r1", (0x13, 0, 3)),
    ("or", "lock or [%r10-8], %r1", (0x13, 0, 3)),
    ("and", "lock and [%r10-8], %r1", (0x0, 0, 3)),
    ("xor", "lock xor [%r10-8], %r1", (0x13, 0, 3)),
    ("fetch add", "lock fetch add [%r10-8], %r1", (0x13, 0, 0x10)),
    ("fetch or", "lock fetch or [%r10-8], %r1", (0x13, 0, 0x10)),
    ("fetch and", "lock fetch and [%r10-8], %r1", (0x0, 0, 0x10)),
    ("fetch xor", "lock fetch xor [%r10-8], %r1", (0x13, 0, 0x10)),
    ("xchg", "lock xchg [%r10-8], %r1", (0x3, 0, 0x10)),
    ("cmpxchg miss", "lock cmpxchg [%r10-8], %r1", (0x10, 0x10, 3)),
    ("cmpxchg hit", "mov %r0, 0x10\nlock cmpxchg [%r10-8], %r1", (0x3, 0x10, 3)),
    ("add32", "lock add32 [%r10-8], %r1", (0x13, 0, 3)),
    ("fetch add32", "lock fetch add32 [%r10-8], %r1", (0x13, 0, 0x10)),
    ("xchg32", "lock xchg32 [%r10-8], %r1", (0x3, 0, 0x10)),
    ("cmpxchg32 hit", "lddw %r0, 0xffffffff00000010\nlock cmpxchg32 [%r10-8], %r1", (0x3, 0x10, 3)),
]


@pytest.mark.parametrize(
    ("body", "expected"), [c[1:] for c in ATOMIC_CASES], ids=[c[0] for c in ATOMIC_CASES]
)
def test_atomics(body: str, expected: tuple[int, int, int]) -> None:
    # Pack memory, r0 and r1 into one result: memory << 32 | r0 << 16 | r1.
    source = prog(
        "mov %r0, 0",
        "stdw [%r10-8], 0x10",
        "mov %r1, 3",
        body,
        "ldxdw %r2, [%r10-8]",
        "lsh %r2, 32",
        "lsh %r0, 16",
        "or %r0, %r2",
        "or %r0, %r1",
    )
    memory, r0, r1 = expected
    assert run(source) == (memory << 32) | (r0 << 16) | r1


def test_atomic_on_input_memory() -> None:
    source = prog(
        "mov %r3, 5",
        "lock fetch add32 [%r1+4], %r3",
        "ldxw %r0, [%r1+4]",
        "lsh %r0, 32",
        "or %r0, %r3",
    )
    # The fetch leaves the old value (7) in r3; memory then holds 12.
    assert run(source, bytes(4) + (7).to_bytes(4, "little")) == (12 << 32) | 7


JUMP_CASES = [
    ("jsgt signed", prog("mov %r0, 0", "mov %r1, -1", "jsgt %r1, 0, +1", "mov %r0, 1"), 1),
    ("jgt unsigned", prog("mov %r0, 0", "mov %r1, -1", "jgt %r1, 0, +1", "mov %r0, 1"), 0),
    (
        "jslt32 uses bit 31",
        prog("mov %r0, 0", "mov32 %r1, 0x80000000", "jslt32 %r1, 0, +1", "mov %r0, 1"),
        0,
    ),
    (
        "jeq32 ignores high half",
        prog("mov %r0, 0", "lddw %r1, 0x100000005", "jeq32 %r1, 5, +1", "mov %r0, 1"),
        0,
    ),
    ("jset", prog("mov %r0, 0", "mov %r1, 6", "jset %r1, 4, +1", "mov %r0, 1"), 0),
    ("ja32", prog("mov %r0, 0", "ja32 +1", "mov %r0, 1"), 0),
]


@pytest.mark.parametrize(
    ("source", "expected"), [c[1:] for c in JUMP_CASES], ids=[c[0] for c in JUMP_CASES]
)
def test_jumps(source: str, expected: int) -> None:
    assert run(source) == expected


def test_loop_and_executed_counter() -> None:
    vm = Interpreter(
        assemble(
            prog(
                "mov %r0, 0",
                "mov %r1, 10",
                "loop:",
                "add %r0, %r1",
                "sub %r1, 1",
                "jne %r1, 0, loop",
            )
        )
    )
    assert vm.run() == 55
    assert vm.executed == 2 + 10 * 3 + 1


CALL_PROGRAM = """
mov %r6, 6
mov %r7, 7
mov %r8, 8
mov %r9, 9
stdw [%r10-8], 1
mov %r1, 20
call local callee
jne %r6, 6, fail
jne %r7, 7, fail
jne %r8, 8, fail
jne %r9, 9, fail
ldxdw %r2, [%r10-8]
jne %r2, 1, fail
sub %r0, %r10
exit
fail:
mov %r0, -1
exit
callee:
ldxdw %r2, [%r10-8]
jne %r2, 0, fail2
stdw [%r10-8], 2
mov %r6, 0
mov %r7, 0
mov %r8, 0
mov %r9, 0
mov %r0, %r10
exit
fail2:
mov %r0, -2
exit
"""


def test_local_call_preserves_r6_to_r9_and_gets_a_fresh_frame() -> None:
    # The callee returns its r10; the caller subtracts its own.
    distance = run(CALL_PROGRAM)
    assert distance == STACK_FRAME_SIZE + GUARD_SIZE


def test_recursion_deeper_than_eight_frames_faults() -> None:
    source = "call local f\nexit\nf:\ncall local f\nexit\n"
    with pytest.raises(ProgramFault, match="depth") as info:
        run(source)
    assert info.value.pc == 2


def test_helper_table_dispatch_and_negative_results() -> None:
    seen = []

    def helper(env, r1, r2, r3, r4, r5):  # noqa: ANN001, ANN202
        seen.append((r1, r2, r3, r4, r5))
        return -22

    helpers = HelperTable([HelperSpec(7, "probe", helper)])
    result = run(
        prog("mov %r1, 1", "mov %r2, 2", "mov %r3, 3", "mov %r4, 4", "mov %r5, 5", "call 7"),
        helpers=helpers,
    )
    assert result == M64 - 21
    assert seen == [(1, 2, 3, 4, 5)]


def test_unknown_helper_faults_naming_it() -> None:
    with pytest.raises(ProgramFault, match="unknown helper 99") as info:
        run(prog("mov %r0, 0", "call 99"))
    assert info.value.pc == 1


def test_callx_dispatches_on_the_register_value() -> None:
    assert run(prog("mov %r1, 42", "mov %r2, 5", "callx %r2")) == 42
    with pytest.raises(ProgramFault, match="callx"):
        run(prog("mov %r2, 6", "callx %r2"))


def test_tail_call_replaces_the_program_with_the_same_context() -> None:
    memory = Memory()
    target = Interpreter(assemble(prog("mov %r0, %r1", "add %r0, 1000")), memory=memory)

    def tail_call(env, r1, r2, r3, r4, r5):  # noqa: ANN001, ANN202
        env.tail_call(target)
        return -1  # only reached when the chain limit is hit

    helpers = HelperTable([HelperSpec(12, "tail_call", tail_call)])
    first = Interpreter(
        assemble(prog("mov %r1, 0", "call 12", "mov %r0, 7")), memory=memory, helpers=helpers
    )
    assert first.run(5) == 1005


def test_tail_call_chain_is_limited_to_33() -> None:
    def tail_call(env, r1, r2, r3, r4, r5):  # noqa: ANN001, ANN202
        env.tail_call(env.engine)
        return env.tail_calls

    helpers = HelperTable([HelperSpec(12, "tail_call", tail_call)])
    vm = Interpreter(assemble(prog("call 12")), helpers=helpers)
    assert vm.run() == 33


# -- faults ---------------------------------------------------------------------


def test_out_of_bounds_read_reports_pc_address_size_and_region() -> None:
    memory = Memory()
    vm = Interpreter(assemble(prog("mov %r0, 0", "ldxw %r0, [%r1+6]")), memory=memory)
    region = memory.allocate(8, "packet")
    with pytest.raises(ProgramFault) as info:
        vm.run(region.start, 8)
    fault = info.value
    assert (fault.pc, fault.address, fault.size, fault.region) == (1, region.start + 6, 4, "packet")
    assert fault.instruction


def test_out_of_bounds_write_faults() -> None:
    with pytest.raises(ProgramFault) as info:
        run(prog("stdw [%r1+1], 0"), bytes(8))
    assert (info.value.size, info.value.region) == (8, "mem")


def test_null_pointer_faults() -> None:
    with pytest.raises(ProgramFault) as info:
        run(prog("ldxb %r0, [%r1]"))
    assert info.value.address == 0


def test_write_to_read_only_region_faults_but_read_works() -> None:
    memory = Memory()
    region = memory.allocate_from(b"\x05\x00\x00\x00", "rodata", writable=False)
    vm = Interpreter(assemble(prog("ldxw %r0, [%r1]")), memory=memory)
    assert vm.run(region.start) == 5
    writer = Interpreter(assemble(prog("stw [%r1], 1")), memory=memory)
    with pytest.raises(ProgramFault, match="read-only") as info:
        writer.run(region.start)
    assert info.value.region == "rodata"
    atomic = Interpreter(assemble(prog("mov %r2, 1", "lock add32 [%r1], %r2")), memory=memory)
    with pytest.raises(ProgramFault, match="read-only"):
        atomic.run(region.start)


@pytest.mark.parametrize(
    "source",
    [
        prog("ldxdw %r0, [%r10-520]"),
        prog("stdw [%r10+0], 1"),
        prog("mov %r1, %r10", "add %r1, -513", "ldxb %r0, [%r1]"),
        prog("mov %r1, %r10", "stxb [%r1], %r1"),
    ],
    ids=["below-frame", "above-frame", "computed-below", "computed-above"],
)
def test_stack_overflow_into_guard_gap_faults(source: str) -> None:
    with pytest.raises(ProgramFault) as info:
        run(source)
    assert info.value.region is not None and info.value.region.startswith("stack")


def test_budget_exhaustion_stops_a_runaway_loop() -> None:
    with pytest.raises(ProgramFault, match="budget") as info:
        run("loop:\nja loop\nexit\n", budget=1000)
    assert info.value.pc == 0


def test_a_run_sees_a_clean_stack() -> None:
    vm = Interpreter(assemble(prog("ldxdw %r0, [%r10-8]", "stdw [%r10-8], 9")))
    assert vm.run() == 0
    assert vm.run() == 0


# -- translation-time errors -----------------------------------------------------


@pytest.mark.parametrize(
    ("insns", "pc"),
    [
        ([Instruction(0x05, off=5), Instruction(0x95)], 0),  # jump past the end
        (
            [
                Instruction(0xB7, dst=0),
                Instruction(0x18, dst=1, imm=1),
                Instruction(0x05, off=-2),
                Instruction(0x95),
            ],
            3,
        ),  # into lddw
        ([Instruction(0xB7, dst=0)], 0),  # falls off the end
        ([Instruction(0x85, src=1, imm=10), Instruction(0x95)], 0),  # call outside
        ([Instruction(0xB7, dst=10), Instruction(0x95)], 0),  # writes r10
    ],
    ids=["jump-out", "jump-into-lddw", "fall-off", "bad-call", "write-r10"],
)
def test_malformed_programs_fail_at_translation(insns: list[Instruction], pc: int) -> None:
    with pytest.raises(DecodeError) as info:
        Interpreter(insns)
    assert info.value.pc == pc


def test_legacy_packet_loads_of_double_words_are_not_supported() -> None:
    # LD_ABS/LD_IND of W, H, B run (tests/test_packet_loads.py); DW does not exist.
    Interpreter([Instruction(0x30, imm=0), Instruction(0x95)]).close()
    for opcode in (0x38, 0x58):
        with pytest.raises(NotSupportedError):
            Interpreter([Instruction(opcode, imm=0), Instruction(0x95)])


def test_region_freed_by_a_helper_is_no_longer_reachable() -> None:
    # The per-site cache must not keep a removed region alive for the program.
    memory = Memory()
    victim = memory.allocate(8, "victim")

    def free(env, r1, r2, r3, r4, r5):  # noqa: ANN001, ANN202
        env.memory.remove(victim)
        return 0

    helpers = HelperTable([HelperSpec(1, "free", free)])
    source = "mov %r6, 2\nloop:\nldxdw %r0, [%r1]\ncall 1\nsub %r6, 1\njne %r6, 0, loop\nexit\n"
    vm = Interpreter(assemble(source), memory=memory, helpers=helpers)
    with pytest.raises(ProgramFault) as info:
        vm.run(victim.start)
    assert info.value.pc == 1 and info.value.address == victim.start


def test_interpreters_share_memory_with_the_host() -> None:
    memory = Memory()
    shared = bytearray(8)
    region = memory.wrap(shared, "shared")
    Interpreter(assemble(prog("stdw [%r1], 0x77")), memory=memory).run(region.start)
    assert shared[0] == 0x77


def test_atomics_are_atomic_across_threads() -> None:
    import threading

    memory = Memory()
    counter = memory.allocate(8, "counter")
    vm = Interpreter(assemble(prog("mov %r2, 1", "lock add [%r1], %r2")), memory=memory)

    def worker() -> None:
        for _ in range(500):
            vm.run(counter.start)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert int.from_bytes(counter.read(), "little") == 2000


def test_long_chains_of_checks_translate() -> None:
    # 3000 bounds-check-like branches in a row, all to one shared exit block:
    # the emitter must not recurse once per block.
    count = 3000
    fail = 1 + 2 * count + 1
    insns = [Instruction(0xB7, dst=0, imm=0)]
    for i in range(count):
        pc = 1 + 2 * i
        insns.append(Instruction(0x15, dst=1, off=fail - pc - 1, imm=i + 1))  # jeq r1, i+1, fail
        insns.append(Instruction(0x07, dst=0, imm=1))  # add r0, 1
    insns += [Instruction(0x95), Instruction(0xB7, dst=0, imm=-1), Instruction(0x95)]
    vm = Interpreter(insns)
    assert vm.run(0) == count
    assert vm.run(10) == M64


def test_region_freed_between_runs_is_no_longer_reachable() -> None:
    # Site caches persist across runs; a region removed in between must fault.
    memory = Memory()
    victim = memory.allocate(8, "victim", data=b"\x2a" + bytes(7))
    vm = Interpreter(assemble(prog("ldxdw %r0, [%r1]", "stdw [%r1], 7")), memory=memory)
    assert vm.run(victim.start) == 0x2A
    assert vm.run(victim.start) == 7  # the second run uses the cached region
    memory.remove(victim)
    with pytest.raises(ProgramFault) as info:
        vm.run(victim.start)
    assert info.value.pc == 0 and info.value.address == victim.start


def test_region_made_read_only_between_runs_refuses_stores() -> None:
    memory = Memory()
    region = memory.allocate(8, "data")
    vm = Interpreter(assemble(prog("stdw [%r1], 7", "lock add [%r1], %r1")), memory=memory)
    vm.run(region.start)
    region.writable = False  # as freezing .rodata does
    with pytest.raises(ProgramFault) as info:
        vm.run(region.start)
    assert info.value.pc == 0 and "read-only" in str(info.value)


def test_atomics_use_the_site_cache_and_still_fault_on_context_or_read_only() -> None:
    memory = Memory()
    counter = memory.allocate(8, "counter")
    vm = Interpreter(
        assemble(prog("mov %r2, 5", "lock fetch add [%r1], %r2", "mov %r0, %r2")), memory=memory
    )
    assert [vm.run(counter.start) for _ in range(3)] == [0, 5, 10]
    assert int.from_bytes(counter.read(), "little") == 15
    frozen = memory.allocate(8, "frozen", writable=False)
    with pytest.raises(ProgramFault) as info:
        vm.run(frozen.start)
    assert info.value.pc == 1
