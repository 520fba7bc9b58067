"""bench_maps checks what lookups return before (and after) it times."""

from __future__ import annotations

import pytest

from benchmark_module import load_benchmark

bench = load_benchmark("bench_maps")


def test_the_checks_pass_on_both_sides():
    bench.check_fresh()  # pybpf, and the kernel where bpf() works
    results = bench.measure(2 * bench.KEYS, 1)  # the check after timing runs inside
    assert set(results["pybpf"]) == {"lookup", "update"}


def test_a_wrong_lookup_stops_the_benchmark_and_records_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "DOC", tmp_path / "benchmarks.md")
    monkeypatch.setattr(bench, "pybpf_lookup", lambda m: lambda key: 0)
    with pytest.raises(bench.CheckFailed):
        bench.check_fresh()
    assert bench.main(["--calls", "100", "--repeats", "1", "--record"]) == 1
    assert not (tmp_path / "benchmarks.md").exists()
