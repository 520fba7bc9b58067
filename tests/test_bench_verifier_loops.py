"""bench_verifier --loops compares verdicts before it reports times."""

from __future__ import annotations

import pytest

import pybpf.verifier.program as program_module
from benchmark_module import load_benchmark
from pybpf.testing.kernel import kernel_available, unavailable_reason
from pybpf.verifier.report import Failure, Report

bench = load_benchmark("bench_verifier")
needs_kernel = pytest.mark.skipif(not kernel_available(), reason=unavailable_reason() or "kernel")


def test_every_loop_program_is_timed_and_agrees(capsys):
    assert bench.loops(1) == 0
    out = capsys.readouterr().out
    for name in bench.LOOP_PROGRAMS:
        row = next(line for line in out.splitlines() if f"`{name}`" in line)
        assert "/ pass" in row  # pybpf accepts each; the kernel, where it runs, too
        if kernel_available():
            assert "| pass / pass |" in row


@needs_kernel
def test_a_verdict_unlike_the_kernels_fails_the_benchmark(monkeypatch, capsys):
    def reject(program_spec, object_spec, **kwargs):
        return Report(failures=[Failure(0, None, "rejected on purpose")])

    monkeypatch.setattr(program_module, "verify_program", reject)
    assert bench.loops(1) == 1
    assert "| pass / fail |" in capsys.readouterr().out


@needs_kernel
def test_record_writes_only_after_every_verdict_agreed(monkeypatch, tmp_path):
    doc = tmp_path / "benchmarks.md"
    monkeypatch.setattr(bench, "DOC", doc)
    monkeypatch.setattr(bench, "LOOP_PROGRAMS", ("compute_loop",))
    assert bench.loops(1, record=True) == 0
    text = doc.read_text()
    assert "## Verifier on loops beside the kernel" in text
    assert "| `compute_loop` | pass / pass |" in text

    def reject(program_spec, object_spec, **kwargs):
        return Report(failures=[Failure(0, None, "rejected on purpose")])

    monkeypatch.setattr(program_module, "verify_program", reject)
    assert bench.loops(1, record=True) == 1
    assert doc.read_text() == text  # nothing appended
