"""Tiered JIT compilation: a fast first tier on a cache miss, optimised code swapped in later.

Programs here carry a nonce (a constant unique to the test run), so that
they miss the disk cache of the test process. Holding `compiler._lock`
(re-entrant) while an engine is built keeps its background compile from
adding the optimised object, so the first tier is observed without races.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from child_process import run_child
from pybpf.engine.interpreter import Interpreter
from pybpf.engine.jit import JitEngine
from pybpf.hooks.test_run import test_run as run_hook
from pybpf.isa.assembler import assemble
from pybpf.platform.program_types import ProgramType
from pybpf.runtime.native import compile_stats, compiler

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
_NONCE = (os.getpid() * 1_000_003 + time.time_ns()) & 0x3FFFFFFF


def program(seed: int, blocks: int = 40, *, reads: bool = True) -> str:
    """A deterministic program reading 8 bytes of r1 (unless not `reads`), with a loop."""
    load = "ldxdw %r2, [%r6+0]" if reads else f"mov %r2, {seed * 977}"
    lines = ["mov %r6, %r1", f"mov %r7, {(_NONCE + seed) & 0x7FFFFFFF}", load]
    lines += ["mov %r8, 0", "loop:"]
    for i in range(blocks):
        lines += [
            f"add %r7, {i * 7 + seed + 1}",
            "xor %r7, %r2",
            f"jset %r7, {1 << (i % 5)}, +2",
            f"mul %r7, {i + 3}",
            "rsh %r2, 1",
            "lsh %r7, 3",
            "arsh32 %r7, 1",
        ]
    lines += ["add %r8, 1", "jlt %r8, 20, loop", "mov %r0, %r7", "exit"]
    return "\n".join(lines) + "\n"


def results(engine: object, memory: object, inputs: list[bytes]) -> list[int]:
    out = []
    for data in inputs:
        region = memory.allocate_from(data, "in")  # type: ignore[attr-defined]
        out.append(engine.run(region.start))  # type: ignore[attr-defined]
    return out


INPUTS = [bytes(8), bytes(range(8)), b"\xff" * 8, (12345678901).to_bytes(8, "little")]


def test_a_miss_runs_the_first_tier_then_the_optimised_code() -> None:
    insns = assemble(program(1))
    interpreter = Interpreter(insns)
    expected = results(interpreter, interpreter.memory, INPUTS)
    with compiler._lock:
        jit = JitEngine(insns)
        assert jit.tier == 0 and jit.compiled.tier == 0
        assert jit.compiled.name in compile_stats().first_tier
        assert results(jit, jit.memory, INPUTS) == expected
        first_entry = jit.entry_address
    assert jit.wait_optimised(timeout=60)
    assert jit.tier == 2 and jit.compiled.tier == 2
    assert jit.entry_address != first_entry
    assert jit.compiled.name in compile_stats().compiled
    assert results(jit, jit.memory, INPUTS) == expected
    assert jit.run_repeated(jit.memory.allocate_from(INPUTS[1], "in").start, 7) == expected[1]
    # A second engine of the same program gets the optimised code at once.
    again = JitEngine(insns)
    assert again.tier == 2 and again.wait_optimised(timeout=0)


def test_tiering_off_compiles_the_optimised_code_at_once(monkeypatch) -> None:
    monkeypatch.setenv("PYBPF_JIT_TIERED", "0")
    insns = assemble(program(2))
    jit = JitEngine(insns)
    assert jit.tier == 2 and jit.wait_optimised(timeout=0)
    assert jit.compiled.name in compile_stats().compiled
    interpreter = Interpreter(insns)
    assert results(jit, jit.memory, INPUTS) == results(interpreter, interpreter.memory, INPUTS)


_CHILD = """
import json, sys
from pybpf.engine.jit import JitEngine
from pybpf.isa.assembler import assemble
from pybpf.runtime.native import compile_stats
jit = JitEngine(assemble(sys.argv[1]))
first = jit.tier
region = jit.memory.allocate_from(bytes(range(8)), "in")
r0 = jit.run(region.start)
optimised = jit.wait_optimised(timeout=60)
print(json.dumps({
    "first": first,
    "optimised": optimised,
    "tier": jit.tier,
    "loaded": jit.compiled.name in compile_stats().loaded,
    "r0": r0,
    "r0_after": jit.run(region.start),
}))
"""


def test_the_disk_cache_holds_the_optimised_object(tmp_path: Path) -> None:
    source = program(3)

    def child() -> dict:
        return run_child(_CHILD, source, tmp_path, unset=("PYBPF_JIT_TIERED",))

    interpreter = Interpreter(assemble(source))
    expected = results(interpreter, interpreter.memory, [bytes(range(8))])[0]
    first, second = child(), child()
    assert (first["first"], first["optimised"], first["tier"]) == (0, True, 2)
    assert first["loaded"] is False and first["r0"] == first["r0_after"] == expected
    assert (second["first"], second["tier"], second["loaded"]) == (2, 2, True)
    assert second["r0"] == expected
    assert not any(name.endswith("-t0") for name in os.listdir(tmp_path))


def test_a_long_run_survives_the_swap() -> None:
    insns = assemble(program(4, reads=False))
    data = bytes(range(64))
    interpreter = Interpreter(insns)
    expected = run_hook(interpreter, ProgramType.XDP, data=data).retval
    outcome: dict[str, object] = {}
    with compiler._lock:
        jit = JitEngine(insns)
        assert jit.tier == 0

        def runner() -> None:
            try:
                outcome["result"] = run_hook(jit, ProgramType.XDP, data=data, repeat=400_000)
            except BaseException as error:  # noqa: BLE001 - reported below
                outcome["error"] = error

        thread = threading.Thread(target=runner)
        thread.start()
        time.sleep(0.01)
    # The lock is free: the background compile adds the object and swaps.
    assert jit.wait_optimised(timeout=60)
    swapped_while_running = thread.is_alive()
    thread.join()
    assert "error" not in outcome
    assert outcome["result"].retval == expected & 0xFFFFFFFF  # type: ignore[attr-defined]
    assert run_hook(jit, ProgramType.XDP, data=data, repeat=3).retval == expected & 0xFFFFFFFF
    assert swapped_while_running  # otherwise the run was too short to test anything


def test_engines_compiling_concurrently_in_several_threads() -> None:
    sources = [program(10 + i, blocks=30 + i) for i in range(4)]
    engines: dict[int, JitEngine] = {}
    errors: list[BaseException] = []
    busy = JitEngine(assemble(program(9)))  # native code running during the compiles
    busy.wait_optimised(timeout=60)
    stop = threading.Event()

    def spin() -> None:
        region = busy.memory.allocate_from(bytes(8), "in")
        while not stop.is_set():
            busy.run_repeated(region.start, 200)

    def build(i: int) -> None:
        try:
            engines[i] = JitEngine(assemble(sources[i]))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        threads = [threading.Thread(target=build, args=(i,)) for i in range(len(sources))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        for i, source in enumerate(sources):
            interpreter = Interpreter(assemble(source))
            expected = results(interpreter, interpreter.memory, INPUTS)
            jit = engines[i]
            assert results(jit, jit.memory, INPUTS) == expected
            assert jit.wait_optimised(timeout=60) and jit.tier == 2
            assert results(jit, jit.memory, INPUTS) == expected
    finally:
        stop.set()
        spinner.join()


_TAILCALL_CHILD = """
import json, struct, sys
import pybpf
sys.path.insert(0, sys.argv[1])
from test_jit_tailcall import PACKETS, _dispatcher, _results
with _dispatcher("jit") as obj:
    first = _results(obj, PACKETS)
    engines = {name: p.engine for name, p in obj.programs.items()}
    tiers = {name: e.tier for name, e in engines.items()}
    for engine in engines.values():
        assert engine.wait_optimised(timeout=60)
    table = obj.context._entries
    registered = all(
        table[p.id] == p.engine.entry_address for p in obj.programs.values()
    )
    print(json.dumps({
        "tiers": tiers,
        "registered": registered,
        "same": _results(obj, PACKETS) == first,
        "optimised": sorted({e.tier for e in engines.values()}),
    }))
"""


def test_programs_register_the_optimised_entry_for_native_tail_calls(tmp_path: Path) -> None:
    env = {**os.environ, "PYBPF_CACHE_DIR": str(tmp_path)}
    env.pop("PYBPF_JIT_TIERED", None)
    out = subprocess.run(
        [sys.executable, "-c", _TAILCALL_CHILD, str(Path(__file__).resolve().parent)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    got = json.loads(out.stdout)
    assert 0 in got["tiers"].values()  # some program started in the first tier
    assert got["registered"] and got["same"] and got["optimised"] == [2]
