"""Smoke test of benchmarks/bench_engines.py: every workload with tiny repeat counts.

The benchmark checks, before and while timing, that each engine's retval,
packet out and map contents equal the expected values and the kernel's;
here those checks must find nothing. Kernel cells are measured only with
root and a working bpf() (otherwise they are reported unavailable and the
kernel-only test skips); the JIT column is either measured or reported
"n/a (JIT unavailable)". Runs in a few seconds.
"""

from __future__ import annotations

import json
import struct

import pytest

import pybpf
from benchmark_module import load_benchmark
from pybpf.testing.kernel import kernel_available, unavailable_reason

bench = load_benchmark("bench_engines")
DATA = bench.PACKET.read_bytes()
WORKLOADS = bench.workloads(DATA)
TINY = {"repeat": 20, "rounds": 1, "budget": 0.0005}

needs_kernel = pytest.mark.skipif(not kernel_available(), reason=unavailable_reason() or "kernel")


def test_trial_division_counts_the_primes_below_its_bound() -> None:
    """The Python model of trial_division.c against a sieve, and the interpreter against it."""
    bound = 1000 + DATA[0]
    sieve = bytearray([1]) * bound
    sieve[0] = sieve[1] = 0
    for n in range(2, bound):
        if sieve[n]:
            sieve[n * n :: n] = bytes(len(sieve[n * n :: n]))
    assert bench.trial_division_result(DATA) == sum(sieve)
    w = WORKLOADS["f"]
    kwargs = {"engine": "interpreter"} if bench.load_accepts_engine() else {}
    with pybpf.load(w.path, **kwargs) as obj:
        result = obj.programs[w.program].test_run(data=DATA)
    assert struct.unpack_from("<I", result.data_out, 8)[0] == sum(sieve)
    assert result.retval == w.expected_retval


def test_compute_loop_runs_to_the_expected_value() -> None:
    """The interpreter computes what the Python model of compute_loop.c does."""
    w = WORKLOADS["a"]
    kwargs = {"engine": "interpreter"} if bench.load_accepts_engine() else {}
    with pybpf.load(w.path, **kwargs) as obj:
        result = obj.programs[w.program].test_run(data=DATA, repeat=3)
    acc = bench.compute_loop_result(DATA)
    assert struct.unpack_from("<I", result.data_out, 8)[0] == acc
    assert result.retval == w.expected_retval == (2 if acc & 1 else 1)


@pytest.mark.parametrize("key", sorted(WORKLOADS))
def test_workload_agrees_across_engines(key: str) -> None:
    report = bench.bench_workload(WORKLOADS[key], DATA, **TINY)
    assert report.mismatches == []
    assert report.ns["interpreter"] > 0
    assert ("kernel" in report.ns) == kernel_available()
    if "jit" not in report.ns:
        assert "jit" in report.unavailable
        assert bench.JIT_UNAVAILABLE in bench.results_table([report])
    else:  # the optimised tier's compile time is measured beside the run time
        assert report.compile_seconds is not None and report.compile_seconds > 0
        assert f"{report.compile_seconds * 1000:,.1f}" in bench.results_table([report])


@needs_kernel
def test_kernel_retval_equals_pybpf() -> None:
    w = WORKLOADS["b"]
    kernel_side = bench.open_side(w, "kernel")
    pybpf_side = bench.open_side(w, "interpreter")
    try:
        k, p = kernel_side.run(DATA, 3), pybpf_side.run(DATA, 3)
        assert k.retval == p.retval == w.expected_retval
        assert k.data_out == p.data_out == DATA
        assert w.state(kernel_side) == w.state(pybpf_side) == w.expected_state(3)
    finally:
        kernel_side.close()
        pybpf_side.close()


def test_threads_scaling_runs() -> None:
    scalings = [
        bench.bench_threads(WORKLOADS["b"], DATA, engine, **TINY) for engine in bench.ENGINES
    ]
    for s in scalings:
        assert s.errors == []
        if s.unavailable is None:
            assert s.one > 0 and s.own > 0 and s.shared > 0
    assert (scalings[0].unavailable is None) == kernel_available()
    assert scalings[2].unavailable is None  # the interpreter always runs
    assert "runs/s" in bench.scaling_table(scalings)


def test_command_line_json(capsys: pytest.CaptureFixture[str]) -> None:
    status = bench.main(
        ["--only", "d", "--repeat", "20", "--rounds", "1", "--budget", "0.0005", "--json"]
    )
    out = json.loads(capsys.readouterr().out)
    assert status == 0
    assert [w["workload"] for w in out["workloads"]] == ["d"]
    assert out["workloads"][0]["mismatches"] == []
