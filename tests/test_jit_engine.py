"""The JIT engine's interface: calls, helpers, tail calls, callbacks, threads, the disk cache."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from child_process import run_child
from pybpf.engine.interpreter import Interpreter
from pybpf.engine.jit import JitEngine
from pybpf.errors import DecodeError, NotSupportedError, ProgramFault
from pybpf.isa.assembler import assemble
from pybpf.isa.instruction import Instruction, with_pcs
from pybpf.runtime.helpers import HelperSpec, HelperTable, conformance_helpers
from pybpf.runtime.memory import GUARD_SIZE, STACK_FRAME_SIZE, Memory

M64 = (1 << 64) - 1


def prog(*lines: str) -> str:
    return "\n".join(lines) + "\nexit\n"


def both(source: str, **kwargs: object) -> tuple[JitEngine, Interpreter]:
    insns = assemble(source)
    return JitEngine(insns, **kwargs), Interpreter(insns, **kwargs)  # type: ignore[arg-type]


def with_callback(source: str, placeholder: int, label_pc: int) -> list[Instruction]:
    """`source` with its `lddw %rX, <placeholder>` turned into `lddw %rX, <func at label_pc>`."""
    insns = assemble(source)
    for index, (pc, insn) in enumerate(with_pcs(insns)):
        if insn.opcode == 0x18 and insn.imm == placeholder:
            insns[index] = Instruction(0x18, dst=insn.dst, src=4, imm=label_pc - pc - 1)
    return insns


CALL_PROGRAM = """
mov %r6, 11
mov %r7, 22
mov %r8, 33
mov %r9, 44
stdw [%r10-8], 7
call local f
sub %r0, %r10
add %r0, %r6
add %r0, %r7
add %r0, %r8
add %r0, %r9
ldxdw %r1, [%r10-8]
add %r0, %r1
exit
f:
mov %r6, 0
mov %r7, 0
mov %r8, 0
mov %r9, 0
stdw [%r10-8], 99
mov %r0, %r10
exit
"""


def test_local_call_preserves_r6_to_r9_and_the_callers_frame() -> None:
    jit, interpreter = both(CALL_PROGRAM)
    expected = STACK_FRAME_SIZE + GUARD_SIZE + 11 + 22 + 33 + 44 + 7
    assert jit.run() == expected == interpreter.run()


# f(n) fills its whole frame with n, recurses with n-1, then adds its first
# and last stack word: each of the 8 frames (main, f(6) .. f(0)) must still
# hold its own n.
DEEP_PROGRAM = """
mov %r1, 6
call local f
exit
f:
mov %r2, %r10
add %r2, -512
fill:
stxdw [%r2], %r1
add %r2, 8
jne %r2, %r10, fill
mov %r0, 0
jeq %r1, 0, leaf
mov %r6, %r1
sub %r1, 1
call local f
mov %r1, %r6
leaf:
ldxdw %r3, [%r10-512]
add %r0, %r3
ldxdw %r3, [%r10-8]
add %r0, %r3
mul %r0, 3
exit
"""


def test_eight_frames_of_stack_each_keep_their_own_bytes() -> None:
    jit, interpreter = both(DEEP_PROGRAM)
    result = jit.run()
    assert result == interpreter.run()
    expected = 0
    for n in range(7):
        expected = (expected + 2 * n) * 3
    assert result == expected


def test_recursion_deeper_than_eight_frames_faults_at_the_call() -> None:
    jit = JitEngine(assemble("call local f\nexit\nf:\ncall local f\nexit\n"))
    with pytest.raises(ProgramFault, match="depth") as info:
        jit.run()
    assert info.value.pc == 2


def test_helpers_get_r1_to_r5_and_negative_results_wrap() -> None:
    seen = []

    def helper(env, r1, r2, r3, r4, r5):  # noqa: ANN001, ANN202
        seen.append((r1, r2, r3, r4, r5, env.cpu))
        return -22

    helpers = HelperTable([HelperSpec(7, "probe", helper)])
    source = prog("mov %r1, 1", "mov %r2, 2", "mov %r3, 3", "mov %r4, -4", "mov %r5, 5", "call 7")
    jit = JitEngine(assemble(source), helpers=helpers, cpu=3)
    assert jit.run() == M64 - 21
    assert seen == [(1, 2, 3, M64 - 3, 5, 3)]
    assert jit.executed == 0


def test_fault_in_a_helper_propagates_out_of_a_nested_call() -> None:
    memory = Memory()
    cell = memory.allocate(8, "cell")
    calls = []

    def boom(env, r1, r2, r3, r4, r5):  # noqa: ANN001, ANN202
        calls.append(r1)
        if r1 == 1:
            raise ProgramFault("boom", pc=99)
        return 5

    helpers = HelperTable([HelperSpec(7, "boom", boom)])
    source = """
    mov %r6, %r1
    mov %r1, %r2
    call local f
    stdw [%r6], 1
    exit
    f:
    call local g
    add %r0, 1
    exit
    g:
    call 7
    add %r0, 10
    exit
    """
    jit = JitEngine(assemble(source), helpers=helpers, memory=memory)
    with pytest.raises(ProgramFault, match="boom"):
        jit.run(cell.start, 1)
    assert cell.read() == bytes(8)  # nothing after the failing call ran
    assert jit.run(cell.start, 2) == 16  # the engine (and its run slot) still works
    assert cell.read() == (1).to_bytes(8, "little")
    assert calls == [1, 2]


def test_unknown_helpers_fault_when_reached_not_at_construction() -> None:
    jit = JitEngine(assemble(prog("mov %r0, 3", "jeq %r1, 0, +1", "call 99")))
    assert jit.run(0) == 3
    with pytest.raises(ProgramFault, match="unknown helper 99") as info:
        jit.run(1)
    assert info.value.pc == 2


def test_unimplemented_linux_helper_is_not_supported_with_a_runtime() -> None:
    jit = JitEngine(assemble(prog("call 1")), runtime=object())
    with pytest.raises(NotSupportedError, match="map_lookup_elem"):
        jit.run()


def test_callx_dispatches_on_the_register_value() -> None:
    helpers = conformance_helpers()
    jit = JitEngine(assemble(prog("mov %r1, 42", "mov %r0, 5", "callx %r0")), helpers=helpers)
    assert jit.run() == 42
    bad = JitEngine(assemble(prog("mov %r2, 6", "callx %r2")), helpers=helpers)
    with pytest.raises(ProgramFault, match="callx"):
        bad.run()


def test_malformed_program_fails_at_construction_like_the_interpreter() -> None:
    insns = [Instruction(0x05, off=5), Instruction(0x95)]
    with pytest.raises(DecodeError) as jit_error:
        JitEngine(insns)
    with pytest.raises(DecodeError) as interpreter_error:
        Interpreter(insns)
    assert str(jit_error.value) == str(interpreter_error.value)


def _tail_call_helpers(target: object) -> HelperTable:
    def tail_call(env, r1, r2, r3, r4, r5):  # noqa: ANN001, ANN202
        env.tail_call(target)
        return -1

    return HelperTable([HelperSpec(12, "tail_call", tail_call)])


@pytest.mark.parametrize("target_engine", [Interpreter, JitEngine])
def test_tail_call_through_the_fallback(target_engine: type) -> None:
    memory = Memory()
    target = target_engine(assemble(prog("mov %r0, %r1", "add %r0, 1000")), memory=memory)
    first = JitEngine(
        assemble(prog("mov %r1, 0", "call local f", "mov %r0, 7", "exit", "f:", "call 12")),
        memory=memory,
        helpers=_tail_call_helpers(target),
    )
    assert first.run(5) == 1005


def test_tail_call_chain_is_limited_to_33() -> None:
    def tail_call(env, r1, r2, r3, r4, r5):  # noqa: ANN001, ANN202
        env.tail_call(env.engine)
        return env.tail_calls

    helpers = HelperTable([HelperSpec(12, "tail_call", tail_call)])
    assert JitEngine(assemble(prog("call 12")), helpers=helpers).run() == 33


def _loop_helper(env, r1, r2, r3, r4, r5):  # noqa: ANN001, ANN202
    # bpf_loop: call the callback r1 times with (index, ctx) until it returns non-zero.
    for index in range(r1):
        if env.engine.call_function(r2, index, r3, env=env):
            return index + 1
    return r1


LOOP_PROGRAM = """
stdw [%r10-8], 0
mov %r1, 5
lddw %r2, 0x1234
mov %r3, %r10
add %r3, -8
mov %r4, 0
call 181
ldxdw %r1, [%r10-8]
mul %r0, 10000
add %r0, %r1
exit
cb:
stxdw [%r10-16], %r1
ldxdw %r3, [%r2]
ldxdw %r4, [%r10-16]
add %r3, %r4
add %r3, 100
stxdw [%r2], %r3
mov %r0, 0
exit
"""


def test_callback_of_a_python_helper_runs_one_frame_below() -> None:
    insns = with_callback(LOOP_PROGRAM, 0x1234, 12)
    helpers = HelperTable([HelperSpec(181, "loop", _loop_helper)])
    jit = JitEngine(insns, helpers=helpers)
    interpreter = Interpreter(insns, helpers=helpers)
    # 5 iterations; the callback adds index + 100 to the caller's stack slot
    # (zeroing its own frame on entry must not touch the caller's).
    assert jit.run() == 5 * 10000 + (0 + 1 + 2 + 3 + 4) + 500 == interpreter.run()
    # A callback token from Python, without a running program: its own run, depth 1.
    cell = jit.memory.allocate(8, "cell")
    assert jit.call_function(0xB9F0_0000_0000_0000 | 12, 3, cell.start) == 0
    assert int.from_bytes(cell.read(), "little") == 103
    with pytest.raises(ProgramFault, match="not a callback"):
        jit.call_function(0xB9F0_0000_0000_0000 | 0)


COUNTER_PROGRAM = prog("ldxdw %r0, [%r1]", "add %r0, 1", "stxdw [%r1], %r0")


def test_run_repeated_equals_n_single_runs() -> None:
    memory = Memory()
    cell = memory.allocate(8, "counter")
    jit = JitEngine(assemble(COUNTER_PROGRAM), memory=memory)
    assert jit.run_repeated(cell.start, 1000) == 1000
    for _ in range(5):
        jit.run(cell.start)
    assert int.from_bytes(cell.read(), "little") == 1005
    assert jit.run_repeated(cell.start, 0) == 0


def test_run_repeated_finishes_tail_calls_in_python_and_goes_on() -> None:
    memory = Memory()
    cells = memory.allocate(16, "counters")
    target = JitEngine(
        assemble(prog("ldxdw %r0, [%r1+8]", "add %r0, 1", "stxdw [%r1+8], %r0")), memory=memory
    )
    source = prog("ldxdw %r0, [%r1]", "add %r0, 1", "stxdw [%r1], %r0", "jne %r0, 3, +1", "call 12")
    jit = JitEngine(assemble(source), memory=memory, helpers=_tail_call_helpers(target))
    # Run 3 tail-calls (its r0 is the target's), the other 9 count on.
    assert jit.run_repeated(cells.start, 10) == 10
    data = cells.read()
    assert (int.from_bytes(data[:8], "little"), int.from_bytes(data[8:], "little")) == (10, 1)


def test_run_repeated_raises_a_helper_fault() -> None:
    def fail(env, r1, r2, r3, r4, r5):  # noqa: ANN001, ANN202
        raise ProgramFault("stop")

    jit = JitEngine(assemble(prog("call 7")), helpers=HelperTable([HelperSpec(7, "f", fail)]))
    with pytest.raises(ProgramFault, match="stop"):
        jit.run_repeated(0, 5)


XORSHIFT = """
mov %r0, 88172645
mov %r2, 0
loop:
mov %r3, %r0
lsh %r3, 13
xor %r0, %r3
mov %r3, %r0
rsh %r3, 7
xor %r0, %r3
mov %r3, %r0
lsh %r3, 17
xor %r0, %r3
add %r2, 1
jlt %r2, %r1, loop
exit
"""


def test_native_code_releases_the_gil() -> None:
    jit = JitEngine(assemble(XORSHIFT))
    assert jit.run(1000) == Interpreter(assemble(XORSHIFT)).run(1000)
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(jit.run(100_000_000)))
    spins = 0
    started = time.perf_counter()
    worker.start()
    while worker.is_alive():
        spins += 1
    elapsed = time.perf_counter() - started
    worker.join()
    assert len(result) == 1
    # The main thread kept running Python while the native loop ran.
    assert spins > 1000, (spins, elapsed)


def test_two_threads_run_one_engine_each_on_its_own_stack() -> None:
    barrier = threading.Barrier(2, timeout=10)

    def meet(env, r1, r2, r3, r4, r5):  # noqa: ANN001, ANN202
        barrier.wait()  # both runs are inside the program at once
        return 0

    source = prog(
        "stxdw [%r10-8], %r1",
        "call 7",
        "ldxdw %r0, [%r10-8]",
    )
    jit = JitEngine(assemble(source), helpers=HelperTable([HelperSpec(7, "meet", meet)]))
    results: dict[int, list[int]] = {1: [], 2: []}

    def work(tag: int) -> None:
        for _ in range(20):
            results[tag].append(jit.run(tag))

    threads = [threading.Thread(target=work, args=(tag,)) for tag in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {1: [1] * 20, 2: [2] * 20}


def test_context_loads_read_the_native_pointer_array() -> None:
    from pybpf.platform.program_type_info import context_access
    from pybpf.platform.program_types import ProgramType
    from pybpf.runtime.memory import pointer_slot

    access = context_access(ProgramType.XDP)
    memory = Memory()
    packet = memory.allocate_from(bytes(range(40, 60)), "packet")
    pointers = {
        "data": packet.start + 2,
        "data_end": packet.end,
        "data_meta": packet.start + 2,
    }
    ctx = memory.allocate_context(bytes(24), "ctx", access, pointers)
    source = prog(
        "ldxw %r2, [%r1]",  # data
        "ldxw %r3, [%r1+4]",  # data_end
        "ldxb %r0, [%r2]",
        "lsh %r0, 32",
        "sub %r3, %r2",
        "add %r0, %r3",
    )
    loads = {0: pointer_slot(access, "data"), 1: pointer_slot(access, "data_end")}
    jit = JitEngine(assemble(source), memory=memory, context_loads=loads)
    assert jit.run(ctx.start) == (42 << 32) + 18


def test_ir_is_available_and_names_the_entry() -> None:
    jit = JitEngine(assemble(prog("mov %r0, 1")))
    assert "_f0" in jit.ir and "_repeat" in jit.source


_CACHE_SCRIPT = """
import json, sys
from pybpf.engine.jit import JitEngine
from pybpf.isa.assembler import assemble
from pybpf.runtime.native import compile_stats
jit = JitEngine(assemble(sys.argv[1]))
stats = compile_stats()
print(json.dumps({
    "name": jit.compiled.name,
    "compiled": jit.compiled.name in stats.compiled,
    "loaded": jit.compiled.name in stats.loaded,
    "r0": jit.run(5),
}))
"""


def test_second_process_loads_the_program_from_the_disk_cache(tmp_path: Path) -> None:
    source = prog("mov %r0, %r1", f"add %r0, {os.getpid() % 1000}", "mul %r0, 3")

    def child() -> dict:
        return run_child(_CACHE_SCRIPT, source, tmp_path)

    first, second = child(), child()
    expected = (5 + os.getpid() % 1000) * 3
    assert (first["compiled"], first["loaded"], first["r0"]) == (True, False, expected)
    assert (second["compiled"], second["loaded"], second["r0"]) == (False, True, expected)
    assert first["name"] == second["name"]


def test_invalid_fields_fail_at_construction() -> None:
    with pytest.raises(DecodeError, match="byte swap width"):
        JitEngine([Instruction(0xD4, dst=1, imm=8), Instruction(0x95)])
    with pytest.raises(DecodeError, match="atomic"):
        JitEngine([Instruction(0xDB, dst=1, src=2, imm=0x10), Instruction(0x95)])


def test_emitters_see_a_constant_r1_and_only_take_linux_helpers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from llvmlite import ir

    from pybpf.engine.jit import helper_registry
    from pybpf.runtime.linux_helpers import linux_helpers

    helper_id = 8  # get_smp_processor_id
    seen: list[int | None] = []

    def emitter(site: helper_registry.HelperSite) -> ir.Value | None:
        seen.append(site.r1_constant)
        if site.r1_constant is None:
            return None  # the fallback: the Python helper
        return ir.Constant(ir.IntType(64), site.r1_constant + 1)

    helper_registry.load_emitters()
    monkeypatch.setitem(helper_registry.NATIVE_EMITTERS, helper_id, emitter)
    source = prog(
        f"mov %r7, {time.time_ns() & 0x7FFFFFFF}",  # a new program: no cached object skips the emitter
        "lddw %r1, 0x1122334455667788",
        "mov %r2, 1",
        f"call {helper_id}",
        "mov %r6, %r0",
        "mov %r1, 0x100",
        "add %r1, 1",
        f"call {helper_id}",
        "add %r0, %r6",
    )
    jit = JitEngine(assemble(source), helpers=linux_helpers(), cpu=5)
    assert seen == [0x1122334455667788, None]
    assert jit.run() == 0x1122334455667789 + 5  # the second call ran the Python helper
    # A table giving the id a meaning of its own never reaches the emitter.
    probe = HelperTable([HelperSpec(helper_id, "probe", lambda env, *args: 40)])
    seen.clear()
    assert JitEngine(assemble(source), helpers=probe).run() == 80
    assert seen == []


def test_every_run_sees_a_clean_stack_also_when_repeated() -> None:
    jit = JitEngine(assemble(prog("ldxdw %r0, [%r10-8]", "stdw [%r10-8], 9")))
    assert jit.run() == 0
    assert jit.run() == 0
    assert jit.run_repeated(0, 50) == 0


def test_a_fault_inside_a_callback_propagates_through_the_helper() -> None:
    def fail(env, r1, r2, r3, r4, r5):  # noqa: ANN001, ANN202
        raise ProgramFault("inside the callback")

    source = prog(
        "mov %r1, 3",
        "lddw %r2, 0x1234",
        "mov %r3, 0",
        "mov %r4, 0",
        "call 181",
        "mov %r0, 77",
        "exit",
        "cb:",
        "call 1000",
    )
    insns = with_callback(source, 0x1234, 8)
    helpers = HelperTable([HelperSpec(181, "loop", _loop_helper), HelperSpec(1000, "fail", fail)])
    jit = JitEngine(insns, helpers=helpers)
    with pytest.raises(ProgramFault, match="inside the callback"):
        jit.run()
    with pytest.raises(ProgramFault, match="inside the callback"):
        Interpreter(insns, helpers=helpers).run()
