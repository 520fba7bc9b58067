"""Differential testing of the JIT against the interpreter on random verified programs (issue 6, item 6).

Random XDP programs from the verifier fuzzer's generator
(tests/fuzz_programs.py) are verified; each accepted program runs in the
bounds-checked interpreter and in the JIT, each engine with its own
execution context holding maps of the same specs and contents, on the same
random packets. r0, the packet after the run and every map's contents must
be identical after every run. The JIT gets the verifier's facts as `Program`
gives them (context loads, the operand ranges that let it leave out
division and shift checks, the stack / not-stack alias scopes). Programs calling helpers whose results
depend on the moment or on a random generator (ktime, prandom) are left
out, since their results legitimately differ. Programs are verified without
the root loader's allow_ptr_leaks and allow_uninit_stack: a program that
returns or stores an address, or reads stack bytes it never wrote, would
give each engine's own addresses or leftovers, which is no disagreement.
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz_programs import Harness, packets, xdp_programs
from pybpf.errors import NotSupportedError, ProgramFault, TestRunError
from pybpf.isa import assemble
from pybpf.isa.opcodes import CALL

NONDETERMINISTIC_HELPERS = frozenset({5, 7, 118, 125, 160})
"""ktime_get_ns, get_prandom_u32, jiffies64, ktime_get_boot_ns, ktime_get_coarse_ns.

jiffies64 ticks every few ms, so two runs of the same program can see two
values (found by the long run: a jiffies64 result stored in the packet).
"""

_SETTINGS = dict(
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _maps_contents(harness: Harness) -> list[dict[bytes, bytes]]:
    return [{bytes(k): bytes(map_[k]) for k in map_} for map_ in harness.maps]


class Differential:
    """Two harnesses with identical maps: one runs the interpreter, one the JIT."""

    def __init__(self) -> None:
        self.interp = Harness(allow_ptr_leaks=False)
        self.jit = Harness(allow_ptr_leaks=False)
        self.stats: Counter[str] = Counter()
        self.mismatches: list[str] = []

    def check(self, source: str, inputs: list[bytes]) -> None:
        from pybpf.engine.interpreter import Interpreter
        from pybpf.engine.jit import JitEngine
        from pybpf.engine.jit.context_loads import context_loads
        from pybpf.hooks.test_run import test_run
        from pybpf.platform.program_types import ProgramType

        insns = assemble(source)
        self.stats["generated"] += 1
        if any(
            i.opcode == CALL and i.src == 0 and i.imm in NONDETERMINISTIC_HELPERS for i in insns
        ):
            self.stats["nondeterministic"] += 1
            return
        report = self.interp.verify(insns)
        if not report.ok:
            self.stats["rejected"] += 1
            return
        self.stats["accepted"] += 1
        a = Interpreter(
            self.interp.link(insns),
            helpers=self.interp.helpers,
            memory=self.interp.context.memory,
            runtime=self.interp.context,
            budget=1_000_000,
        )
        linked = self.jit.link(insns)
        b = JitEngine(
            linked,
            helpers=self.jit.helpers,
            memory=self.jit.context.memory,
            runtime=self.jit.context,
            context_loads=context_loads(linked, report, ProgramType.XDP),
            value_ranges=report.value_ranges,
            memory_regions=report.memory_regions,
        )
        if report.value_ranges:
            self.stats["with value ranges"] += 1
        try:
            for data in inputs:
                try:
                    want = test_run(a, ProgramType.XDP, data=data)
                except (ProgramFault, NotSupportedError, TestRunError):
                    # A verifier gap (the soundness fuzzer's business) or an
                    # input the test run refuses: nothing to compare.
                    self.stats["skipped"] += 1
                    return
                got = test_run(b, ProgramType.XDP, data=data)
                self.stats["runs"] += 1
                wanted_maps, got_maps = _maps_contents(self.interp), _maps_contents(self.jit)
                if (want.retval, want.data_out, wanted_maps) != (
                    got.retval,
                    got.data_out,
                    got_maps,
                ):
                    self.mismatches.append(
                        f"{source}\npacket {data.hex()}\ninterpreter: r0={want.retval} "
                        f"out={want.data_out.hex()} maps={wanted_maps}\njit: r0={got.retval} "
                        f"out={got.data_out.hex()} maps={got_maps}"
                    )
                    return
        finally:
            a.close()
            b.close()


def _run(n: int) -> Differential:
    diff = Differential()

    @settings(max_examples=n, **_SETTINGS)
    @given(xdp_programs(), st.lists(packets, min_size=2, max_size=2))
    def check(source: str, inputs: list[bytes]) -> None:
        diff.check(source, inputs)

    check()
    print(f"\ninterpreter vs JIT: {dict(diff.stats)}")
    assert not diff.mismatches, diff.mismatches[0]
    return diff


def test_jit_matches_interpreter_on_generated_programs() -> None:
    diff = _run(300)
    assert diff.stats["runs"] >= 100, diff.stats


@pytest.mark.slow
def test_jit_matches_interpreter_on_generated_programs_long() -> None:
    _run(3000)


# -- mutated example programs ----------------------------------------------------------


def _object_state(obj) -> dict[str, object]:
    """Every map's contents (per-CPU values as lists), ring buffers as their records."""
    from pybpf.elf.map_types import MapType

    state: dict[str, object] = {}
    for name, map_ in obj.maps.live().items():
        kind = map_.spec.type
        if kind == MapType.PROG_ARRAY:
            continue
        if kind == MapType.RINGBUF:
            state[name] = [bytes(r.data) for r in map_.records() if not r.discarded]
            continue
        items = {}
        for key, value in map_.items():
            items[bytes(key)] = (
                [bytes(v) for v in value] if isinstance(value, list) else bytes(value)
            )
        state[name] = items
    return state


class MutatedDifferential:
    """One example object opened twice: mutants run in the interpreter on one, the JIT on the other."""

    def __init__(self, path: str):
        import pybpf

        self.path = path
        self.objs = [pybpf.load(path, verify=False) for _ in range(2)]
        for obj in self.objs:
            obj.load()
        self.stats: Counter[str] = Counter()
        self.mismatches: list[str] = []

    def programs(self) -> list[str]:
        from fuzz_programs import is_example_runnable_type

        return [
            name
            for name, prog in self.objs[0].programs.items()
            if prog.section != ".text" and is_example_runnable_type(prog.prog_type)
        ]

    def check(self, name: str, insns: list, what: list[str], inputs: list[bytes]) -> None:
        from dataclasses import replace

        from pybpf.engine.interpreter import Interpreter
        from pybpf.engine.jit import JitEngine
        from pybpf.engine.jit.context_loads import context_loads
        from pybpf.hooks.test_run import test_run
        from pybpf.program import Program
        from pybpf.verifier.options import AnalysisOptions
        from pybpf.verifier.program import verify_program

        self.stats["generated"] += 1
        if any(
            i.opcode == CALL and i.src == 0 and i.imm in NONDETERMINISTIC_HELPERS for i in insns
        ):
            self.stats["nondeterministic"] += 1
            return
        a_obj, b_obj = self.objs
        original = a_obj.programs[name]
        spec = replace(original.spec, instructions=tuple(insns))
        options = AnalysisOptions.for_load()
        options.allow_ptr_leaks = options.allow_uninit_stack = False
        report = verify_program(
            spec, a_obj.spec, prog_type=original.verifier_prog_type, options=options
        )
        if not report.ok:
            self.stats["rejected"] += 1
            return
        self.stats["accepted"] += 1
        a_prog, b_prog = Program(a_obj, spec), Program(b_obj, spec)
        engines = []
        try:
            if a_prog.unresolved:
                self.stats["unresolved"] += 1
                return
            context = a_obj.context
            engines.append(
                Interpreter(
                    a_prog.instructions,
                    helpers=a_obj.helpers,
                    memory=context.memory,
                    runtime=context,
                    budget=1_000_000,
                )
            )
            loads = context_loads(b_prog.instructions, report, original.prog_type)
            engines.append(
                JitEngine(
                    b_prog.instructions,
                    helpers=b_obj.helpers,
                    memory=b_obj.context.memory,
                    runtime=b_obj.context,
                    context_loads=loads,
                    value_ranges=report.value_ranges,
                    memory_regions=report.memory_regions,
                )
            )
            if report.value_ranges:
                self.stats["with value ranges"] += 1
            for data in inputs:
                try:
                    want = test_run(engines[0], original.prog_type, data=data)
                except (ProgramFault, NotSupportedError, TestRunError):
                    self.stats["skipped"] += 1
                    return
                got = test_run(engines[1], original.prog_type, data=data)
                self.stats["runs"] += 1
                mine, theirs = _object_state(a_obj), _object_state(b_obj)
                if (want.retval, want.data_out, mine) != (got.retval, got.data_out, theirs):
                    self.mismatches.append(
                        f"{self.path}:{name} mutated {what}\npacket {data.hex()}\n"
                        f"interpreter: r0={want.retval} out={want.data_out.hex()} maps={mine}\n"
                        f"jit: r0={got.retval} out={got.data_out.hex()} maps={theirs}"
                    )
                    return
        finally:
            for engine in engines:
                engine.close()
            a_prog.close()
            b_prog.close()

    def close(self) -> None:
        for obj in self.objs:
            obj.close()


def _run_mutated(n: int) -> Counter:
    from pathlib import Path

    from fuzz_programs import mutations

    examples = Path(__file__).resolve().parents[1] / "examples"
    harnesses = [MutatedDifferential(str(p)) for p in sorted(examples.glob("*.o"))]
    targets = [(h, name) for h in harnesses for name in h.programs()]
    stats: Counter[str] = Counter()

    @settings(max_examples=n, **_SETTINGS)
    @given(st.data(), st.lists(packets, min_size=2, max_size=2))
    def check(data: st.DataObject, inputs: list[bytes]) -> None:
        harness, name = data.draw(st.sampled_from(targets))
        insns, what = data.draw(mutations(harness.objs[0].programs[name].spec.instructions))
        harness.check(name, insns, what, inputs)

    try:
        check()
        for h in harnesses:
            stats.update(h.stats)
        print(f"\nmutated examples, interpreter vs JIT: {dict(stats)}")
        mismatches = [m for h in harnesses for m in h.mismatches]
        assert not mismatches, mismatches[0]
    finally:
        for h in harnesses:
            h.close()
    return stats


def test_jit_matches_interpreter_on_mutated_examples() -> None:
    stats = _run_mutated(200)
    assert stats["runs"] >= 50, stats


@pytest.mark.slow
def test_jit_matches_interpreter_on_mutated_examples_long() -> None:
    _run_mutated(2000)
