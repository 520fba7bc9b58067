"""The JIT's compile path: SSA registers, the programs' own pipeline, objects in the shared engine."""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

import pytest

from child_process import run_child
from pybpf.elf.map_types import MapType
from pybpf.elf.specs import MapSpec
from pybpf.engine.interpreter import Interpreter
from pybpf.engine.jit import JitEngine
from pybpf.isa.assembler import assemble
from pybpf.runtime.context import ExecutionContext
from pybpf.runtime.helpers import HelperSpec, HelperTable
from pybpf.runtime.linux_helpers import linux_helpers
from pybpf.runtime.maps import create_map
from pybpf.runtime.native import compile_stats

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_jit_compile.py"


def prog(*lines: str) -> str:
    return "\n".join(lines) + "\nexit\n"


def both(source: str, *args: int, **kwargs: object) -> tuple[int, int]:
    insns = assemble(source)
    jit = JitEngine(insns, **kwargs)  # type: ignore[arg-type]
    return jit.run(*args), Interpreter(insns, **kwargs).run(*args)  # type: ignore[arg-type]


def test_registers_are_ssa_values_not_memory() -> None:
    jit = JitEngine(assemble(prog("mov %r0, %r1", "add %r0, 2", "jeq %r0, 7, +1", "mul %r0, 3")))
    body = jit.ir.split("_f0", 1)[1].split("define", 1)[0]
    assert "alloca" not in body and "phi" in body
    assert jit.run(5) == 7 and jit.run(1) == 9


def test_values_flow_around_loops_and_into_merges() -> None:
    # r6..r9 change in the loop; r3 is only written on one path; the
    # conditional jump to the next instruction gives a block two edges
    # from one predecessor.
    source = prog(
        "mov %r6, 0",
        "mov %r7, 1",
        "mov %r8, %r1",
        "loop:",
        "add %r6, %r7",
        "mul %r7, 3",
        "jset %r6, 1, +1",
        "mov %r3, %r6",
        "jeq %r6, 0, +0",
        "xor %r8, %r6",
        "add %r9, 1",
        "jlt %r9, 20, loop",
        "mov %r0, %r8",
        "add %r0, %r3",
        "add %r0, %r7",
    )
    for r1 in (0, 1, 12345, (1 << 64) - 1):
        jit, interpreter = both(source, r1)
        assert jit == interpreter


def test_a_block_reached_only_by_a_later_block_gets_phis() -> None:
    source = """
    mov %r0, %r1
    mov %r2, 0
    ja start
    back:
    add %r0, %r2
    add %r2, 1
    jgt %r2, 5, out
    start:
    lsh %r0, 1
    ja back
    out:
    exit
    """
    for r1 in (0, 3, 1 << 40):
        jit, interpreter = both(source, r1)
        assert jit == interpreter


def test_helpers_native_and_python_and_local_calls_keep_registers() -> None:
    helpers = linux_helpers()
    helpers.register(HelperSpec(100, "probe", lambda env, r1, *rest: r1 * 3 + 1))
    source = prog(
        "mov %r6, %r1",
        "mov %r1, %r6",
        "call 100",
        "mov %r7, %r0",
        "call 8",  # bpf_get_smp_processor_id, native
        "add %r7, %r0",
        "mov %r1, %r7",
        "call local f",
        "add %r0, %r6",
        "exit",
        "f:",
        "mov %r0, %r1",
        "mul %r0, 7",
    )
    jit, interpreter = both(source, 11, helpers=helpers)
    assert jit == interpreter == (11 * 3 + 1) * 7 + 11


def test_program_objects_call_the_map_families_in_the_shared_engine() -> None:
    runtime = ExecutionContext(ncpus=2)
    table = create_map(MapSpec("h", MapType.HASH, 4, 8, 16), runtime.memory, ncpus=2)
    runtime.add_map(table)
    table.update(struct.pack("<I", 3), struct.pack("<Q", 41))
    # The map's address repeats across processes (per-user address hints), so an
    # earlier run may have left this very program in the disk cache: a constant of
    # this run makes it one no earlier process compiled.
    nonce = int.from_bytes(os.urandom(4), "little") >> 1
    source = prog(
        f"mov %r4, {nonce}",
        "stw [%r10-4], 3",
        f"lddw %r1, {table.address}",
        "mov %r2, %r10",
        "add %r2, -4",
        "call 1",
        "mov %r1, %r0",
        "mov %r0, 0",
        "jeq %r1, 0, +2",
        "ldxdw %r0, [%r1]",
        "add %r0, 1",
    )
    jit = JitEngine(
        assemble(source), helpers=linux_helpers(), runtime=runtime, memory=runtime.memory
    )
    assert jit.compiled.name in compile_stats().compiled
    assert jit.run() == 42


_CACHE_SCRIPT = """
import json, sys
from pybpf.engine.jit import JitEngine
from pybpf.isa.assembler import assemble
from pybpf.runtime.helpers import HelperSpec
from pybpf.runtime.linux_helpers import linux_helpers
from pybpf.runtime.native import compile_stats
helpers = linux_helpers()
helpers.register(HelperSpec(100, "probe", lambda env, r1, *rest: r1 + 1000))
jit = JitEngine(assemble(sys.argv[1]), helpers=helpers)
stats = compile_stats()
print(json.dumps({
    "loaded": jit.compiled.name in stats.loaded,
    "r0": jit.run(5),
}))
"""


def test_a_cached_object_resolves_the_fallback_and_native_helpers(tmp_path: Path) -> None:
    # bpf_ktime_get_ns (native, through an added symbol) and the Python fallback.
    source = prog(
        "mov %r6, %r1",
        "call 5",
        "mov %r7, %r0",
        "call 5",
        "sub %r0, %r7",
        "mov %r7, 0",
        "jgt %r0, 1000000000, +1",
        "mov %r7, 1",
        "mov %r1, %r6",
        f"add %r1, {os.getpid() % 1000}",
        "call 100",
        "add %r0, %r7",
    )

    def child() -> dict:
        return run_child(_CACHE_SCRIPT, source, tmp_path)

    first, second = child(), child()
    expected = 5 + os.getpid() % 1000 + 1000 + 1
    assert (first["loaded"], first["r0"]) == (False, expected)
    assert (second["loaded"], second["r0"]) == (True, expected)


def test_the_benchmark_program_compiles_and_matches_the_interpreter() -> None:
    sys.path.insert(0, str(BENCH.parent))
    try:
        import bench_jit_compile
    finally:
        sys.path.remove(str(BENCH.parent))
    helpers = HelperTable([HelperSpec(100, "probe", lambda env, r1, *rest: r1 * 3)])
    for spec in linux_helpers():
        if spec.id in (5, 7, 8):
            helpers.register(spec)
    insns = assemble(bench_jit_compile.generate(300))
    jit = JitEngine(insns, helpers=helpers)
    interpreter = Interpreter(insns, helpers=helpers)
    assert 250 <= len(insns) <= 320
    packet = jit.memory.allocate_from(bytes(range(bench_jit_compile.PACKET_SIZE)), "packet")
    other = interpreter.memory.allocate_from(bytes(range(bench_jit_compile.PACKET_SIZE)), "pkt")
    # ktime and prandom differ between runs: compare only that both run.
    assert isinstance(jit.run(packet.start), int)
    assert isinstance(interpreter.run(other.start), int)


def test_small_non_recursive_callees_are_inlined() -> None:
    from pybpf.engine.cfg import analyze
    from pybpf.engine.jit.translate import INLINE_BUDGET, _inlined

    small = "mov %r1, 4\ncall local f\nexit\nf:\nmov %r0, %r1\nmul %r0, 3\nexit\n"
    recursive = (
        "mov %r1, 3\ncall local f\nexit\n"
        "f:\nmov %r0, 0\njeq %r1, 0, +2\nsub %r1, 1\ncall local f\nadd %r0, 1\nexit\n"
    )
    big = "mov %r1, 4\ncall local f\nexit\nf:\n" + "add %r1, 1\n" * INLINE_BUDGET + "exit\n"
    assert _inlined(analyze(assemble(small))) == {3}
    assert _inlined(analyze(assemble(recursive))) == set()
    assert _inlined(analyze(assemble(big))) == set()
    jit = JitEngine(assemble(small))
    assert "alwaysinline" in jit.ir and jit.run() == 12
    for source in (recursive, big):
        jit_r0, interpreter_r0 = both(source)
        assert jit_r0 == interpreter_r0


def test_the_program_key_changes_with_the_pipeline_and_the_verifier_facts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cached object is never reused after the optimising pipeline or the facts change."""
    import shutil

    from pybpf.engine.jit import compile as jit_compile
    from pybpf.runtime.native import compiler

    insns = assemble(prog("mov %r0, %r1", "div %r0, %r2"))
    key = jit_compile.program_key(insns, HelperTable(), None, {})
    assert jit_compile.program_key(insns, HelperTable(), None, {}) == key
    assert jit_compile.program_key(insns, HelperTable(), None, {}, {0: {2: (1, 9)}}) != key
    assert jit_compile.program_key(insns, HelperTable(), None, {}, None, {0: "stack"}) != key
    # The pipeline lives in compiler.py, whose source is part of every key.
    copies = []
    for directory in jit_compile._SOURCE_DIRS:
        copy = tmp_path / directory.name
        shutil.copytree(directory, copy, ignore=shutil.ignore_patterns("__pycache__"))
        copies.append(copy)
    monkeypatch.setattr(jit_compile, "_SOURCE_DIRS", tuple(copies))
    monkeypatch.setattr(jit_compile, "_sources_digest", None)
    before = jit_compile.program_key(insns, HelperTable(), None, {})
    source = copies[1] / Path(compiler.__file__).name
    text = source.read_text()
    level = f"PROGRAM_SPEED_LEVEL = {compiler.PROGRAM_SPEED_LEVEL}"
    assert level in text
    source.write_text(text.replace(level, "PROGRAM_SPEED_LEVEL = 2"))
    monkeypatch.setattr(jit_compile, "_sources_digest", None)
    assert jit_compile.program_key(insns, HelperTable(), None, {}) != before
