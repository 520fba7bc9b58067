"""Runs from several threads: one simulated CPU per OS thread, and native runs release the GIL.

The kernel runs a test run on the CPU of the calling thread; pybpf gives
each OS thread its own simulated CPU in an execution context
(`ExecutionContext.current_cpu`, round-robin on first use), so threads
running programs at once update different slots of per-CPU maps.
"""

from __future__ import annotations

import struct
import threading
from pathlib import Path

import pytest

import pybpf
from pybpf.engine.interpreter import Interpreter
from pybpf.engine.jit import JitEngine
from pybpf.isa.assembler import assemble
from pybpf.runtime.context import ExecutionContext
from pybpf.runtime.linux_helpers import linux_helpers

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NCPUS = 4
XDP_DROP = 1


def packet(source: int = 0x0A000001) -> bytes:
    """An IPv4/UDP frame from `source`."""
    ip = bytes([0x45, 0, 0, 40, 0, 0, 0, 0, 64, 17, 0, 0])
    ip += struct.pack(">II", source, 0x0A000002)
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + bytes(20)


def per_cpu(obj: pybpf.Object, name: str, index: int) -> list[int]:
    values = obj.maps[name][struct.pack("<I", index)]
    return [int.from_bytes(value, "little") for value in values]


def test_threads_get_cpus_round_robin_and_keep_them() -> None:
    context = ExecutionContext(ncpus=3)
    got: list[int] = []

    def work() -> None:
        first = context.current_cpu()
        assert context.current_cpu() == first  # stable for the thread
        got.append(first)

    assert context.current_cpu() == 0  # the first thread to ask
    for _ in range(4):
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
    assert got == [1, 2, 0, 1]
    assert context.current_cpu() == 0
    # Another context numbers its threads on its own.
    assert ExecutionContext(ncpus=3).current_cpu() == 0


@pytest.mark.parametrize("engine", ["jit", "interpreter"])
def test_two_threads_count_in_their_own_per_cpu_slots(engine: str) -> None:
    runs = 200_000 if engine == "jit" else 2_000
    with pybpf.load(EXAMPLES / "xdp_ratelimit.o", engine=engine, ncpus=NCPUS) as obj:
        program = obj.programs["xdp_ratelimit"]
        assert program.engine is not None and program.engine_kind == engine
        limit = 3  # the object's default .rodata `limit`
        barrier = threading.Barrier(2, timeout=30)
        cpus: dict[int, int] = {}
        retvals: dict[int, int] = {}

        def work(tag: int) -> None:
            cpus[tag] = obj.context.current_cpu()
            barrier.wait()  # both test runs start together
            retvals[tag] = program.test_run(packet(), repeat=runs).retval

        threads = [threading.Thread(target=work, args=(tag,)) for tag in (1, 2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert retvals == {1: XDP_DROP, 2: XDP_DROP}
        assert cpus[1] != cpus[2]
        passed, dropped = per_cpu(obj, "totals", 0), per_cpu(obj, "totals", 1)
        assert sum(passed) + sum(dropped) == 2 * runs
        for cpu in range(NCPUS):
            if cpu in cpus.values():
                # Each CPU's bucket counted only its own thread's packets:
                # the first `limit` passed there, the rest were dropped.
                assert (passed[cpu], dropped[cpu]) == (limit, runs - limit)
            else:
                assert (passed[cpu], dropped[cpu]) == (0, 0)
        bucket = next(i for i in range(64) if sum(per_cpu(obj, "buckets", i)))
        assert sorted(per_cpu(obj, "buckets", bucket)) == [0] * (NCPUS - 2) + [runs, runs]


def test_a_fixed_cpu_is_kept() -> None:
    context = ExecutionContext(ncpus=NCPUS)
    source = assemble("call 8\nexit")  # bpf_get_smp_processor_id
    arguments = {"helpers": linux_helpers(), "memory": context.memory, "runtime": context}
    fixed = JitEngine(source, cpu=2, **arguments)
    free = JitEngine(source, **arguments)
    interpreter = Interpreter(source, **arguments)
    assert (fixed.run(), free.run(), interpreter.run()) == (2, 0, 0)
    got: list[tuple[int, int, int]] = []
    thread = threading.Thread(
        target=lambda: got.append((fixed.run(), free.run(), interpreter.run()))
    )
    thread.start()
    thread.join()
    assert got == [(2, 1, 1)]
    assert Interpreter(source, cpu=3, **arguments).run() == 3


def test_jit_test_run_releases_the_gil() -> None:
    # While one thread is in a long native test run, this thread keeps
    # running Python: it reads the per-CPU counter the native loop is
    # incrementing and sees values strictly between the start and the end.
    # With the GIL held for the whole native call it could only see those two.
    runs = 20_000_000
    with pybpf.load(EXAMPLES / "xdp_ratelimit.o", engine="jit", ncpus=NCPUS) as obj:
        program = obj.programs["xdp_ratelimit"]
        program.test_run(packet())  # compiled, and this thread's CPU taken
        cpu: list[int] = []

        def work() -> None:
            cpu.append(obj.context.current_cpu())
            program.test_run(packet(), repeat=runs)

        worker = threading.Thread(target=work)
        seen: set[int] = set()
        worker.start()
        while worker.is_alive():
            if cpu:
                seen.add(per_cpu(obj, "totals", 1)[cpu[0]])
        worker.join()
        final = per_cpu(obj, "totals", 1)[cpu[0]]
        assert final == runs - 3
        between = {value for value in seen if 0 < value < final}
        assert len(between) >= 2, sorted(seen)
