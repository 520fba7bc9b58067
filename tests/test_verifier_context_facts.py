"""Context accesses the verifier records for the JIT (`Report.context_accesses`).

For every load or store through the context pointer, the report maps the
instruction's program pc to the accessed offset from the context's start;
`mixed_context_pcs` are instructions whose base is the context on one path
or calling context and another pointer on another (rejected on the load
path, as the kernel's "same insn cannot be used with different pointers").
Callee code, inlined once per calling context, is reported at its own pc.
"""

from __future__ import annotations

from pathlib import Path

from pybpf.elf import load_object_spec
from pybpf.elf.specs import ObjectSpec, ProgramSpec
from pybpf.isa import assemble, with_pcs
from pybpf.verifier import AnalysisOptions
from pybpf.verifier.cache import VerifierCache, report_from_json, report_to_json
from pybpf.verifier.program import verify_program

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _verify(source: str, options: AnalysisOptions | None = None):
    prog = ProgramSpec("p", "xdp", tuple(assemble(source)))
    obj = ObjectSpec("p.o", {"p": prog}, {})
    return verify_program(prog, obj, prog_type="xdp", options=options)


def test_xdp_counter_data_and_data_end_loads() -> None:
    spec = load_object_spec(EXAMPLES / "xdp_counter.o")
    program = spec.programs["xdp_count"]
    report = verify_program(program, spec)
    assert report.ok
    insns = dict(with_pcs(program.instructions))
    # xdp_md: data at 0, data_end at 4, both read as 32-bit loads through r1
    assert sorted(report.context_accesses.values()) == [0, 4]
    for pc, offset in report.context_accesses.items():
        insn = insns[pc]
        assert insn.opcode == 0x61 and insn.src == 1  # ldxw from the context register
        assert insn.off == offset
    assert report.mixed_context_pcs == frozenset()


def test_ctx_spilled_to_the_stack_and_reloaded() -> None:
    report = _verify(
        """
        *(u64 *)(r10 - 8) = r1
        r1 = 0
        r6 = *(u64 *)(r10 - 8)
        r2 = *(u32 *)(r6 + 4)
        r3 = *(u32 *)(r6 + 0)
        r0 = 2
        exit
        """
    )
    assert report.ok, report.render()
    assert report.context_accesses == {3: 4, 4: 0}
    assert report.mixed_context_pcs == frozenset()


def test_stack_accesses_are_not_context_accesses() -> None:
    report = _verify("*(u64 *)(r10 - 8) = 1\nr0 = *(u64 *)(r10 - 8)\nr0 = 2\nexit")
    assert report.ok
    assert report.context_accesses == {}


CALLEE_GETS_CTX = """
    r6 = r1
    call local 3
    r1 = r6
    call local 1
    exit
    r0 = *(u32 *)(r1 + 12)
    r0 = 2
    exit
"""


def test_callee_receiving_ctx_reports_its_own_pcs() -> None:
    report = _verify(CALLEE_GETS_CTX)
    assert report.ok, report.render()
    # the callee's load (pc 5), analysed in two calling contexts, both times the context
    assert report.context_accesses == {5: 12}
    assert report.mixed_context_pcs == frozenset()


MIXED = """
    *(u64 *)(r10 - 8) = 0
    call local 4
    r1 = r10
    r1 += -8
    call local 1
    exit
    r0 = *(u32 *)(r1 + 0)
    r0 = 2
    exit
"""


def test_same_insn_with_ctx_and_stack_is_recorded_and_rejected() -> None:
    # PREVAIL's options: recorded, not rejected
    report = _verify(MIXED, AnalysisOptions(check_termination=False, linux_ctx_fields=False))
    assert report.ok, report.render()
    assert report.mixed_context_pcs == {6}
    assert report.context_accesses == {}
    # the load path: rejected with the kernel's reason
    pc = 6
    report = _verify(MIXED)
    assert not report.ok
    assert report.first_failure.pc == pc
    assert "same insn cannot be used with different pointers" in report.first_failure.message


def test_ctx_or_packet_on_joined_paths_is_mixed() -> None:
    source = """
        r2 = *(u32 *)(r1 + 0)
        r3 = *(u32 *)(r1 + 4)
        r4 = r2
        r4 += 8
        if r4 > r3 goto +1
        r1 = r2
        r0 = *(u32 *)(r1 + 0)
        r0 = 2
        exit
    """
    report = _verify(source, AnalysisOptions(check_termination=False, linux_ctx_fields=False))
    assert 6 in report.mixed_context_pcs
    assert 6 not in report.context_accesses
    report = _verify(source)
    assert not report.ok and report.first_failure.pc == 6


def test_failures_inside_a_callee_carry_the_callee_pc() -> None:
    report = _verify(CALLEE_GETS_CTX.replace("(r1 + 12)", "(r1 + 64)"))
    assert not report.ok
    assert report.first_failure.pc == 5


def test_cache_keeps_the_context_facts(tmp_path: Path) -> None:
    report = _verify(CALLEE_GETS_CTX)
    restored = report_from_json(report_to_json(report))
    assert restored.context_accesses == report.context_accesses == {5: 12}
    assert restored.mixed_context_pcs == report.mixed_context_pcs
    cache = VerifierCache(tmp_path)
    cache.put("k" * 64, report)
    fresh = VerifierCache(tmp_path)
    again = fresh.get("k" * 64)
    assert fresh.stats.disk_hits == 1
    assert again is not None and again.context_accesses == {5: 12}
    assert again.mixed_context_pcs == frozenset()


def test_cache_of_an_example_object(tmp_path: Path) -> None:
    from pybpf.verifier.cache import verify_cached

    spec = load_object_spec(EXAMPLES / "xdp_counter.o")
    program = spec.programs["xdp_count"]
    first = verify_cached(program, spec, cache=VerifierCache(tmp_path))
    second_cache = VerifierCache(tmp_path)
    second = verify_cached(program, spec, cache=second_cache)
    assert second_cache.stats.disk_hits == 1
    assert second.context_accesses == first.context_accesses
    assert sorted(second.context_accesses.values()) == [0, 4]
