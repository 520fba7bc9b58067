"""bench_interpreter checks the engine before it times: its model, and a mismatch caught."""

from __future__ import annotations

import pytest

from benchmark_module import load_benchmark

bench = load_benchmark("bench_interpreter")


@pytest.mark.parametrize("iterations", [1, 7, 1000])
def test_the_model_of_the_tight_loop_matches_the_interpreter(iterations):
    expected = bench.expected_tight_loop(iterations)
    _, executed = bench.measure(bench.tight_loop(iterations), 1, expected)
    assert executed == expected[1] == 4 * iterations + 3


def test_the_model_of_the_byte_scan_matches_the_interpreter():
    data = bytes([0, 100, 101, 255, 7]) * 3
    expected = bench.expected_byte_scan(data)
    _, executed = bench.measure(bench.byte_scan(0), 1, expected, data)
    assert executed == expected[1]


def test_a_wrong_result_fails_the_check_and_records_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "DOC", tmp_path / "benchmarks.md")
    wrong = bench.expected_tight_loop(10)
    with pytest.raises(bench.CheckFailed):
        bench.measure(bench.tight_loop(10), 1, (wrong[0] ^ 1, wrong[1]))
    monkeypatch.setattr(bench, "expected_byte_scan", lambda data: (0, 0))
    assert bench.main(["--iterations", "10", "--repeats", "1", "--record"]) == 1
    assert not (tmp_path / "benchmarks.md").exists()
