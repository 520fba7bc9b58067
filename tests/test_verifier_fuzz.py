"""Soundness of the verifier, tested (issue 5, item 7).

Every program the verifier accepts must run in the bounds-checked
interpreter without a fault, on any input. Two fuzzers look for
counterexamples:

* `xdp_programs()` (tests/fuzz_programs.py) writes XDP programs out of
  plausible shapes (ALU, stack, guarded packet accesses, map lookups,
  helper calls, loops), some with the usual mistakes; each is verified
  against two real maps and, if accepted, run on random packets.
* `mutations()` changes one to three instructions of the example programs
  (offsets, immediates, registers, opcodes within a class, bounds checks
  turned into no-ops); accepted mutants run on random packets.

Every fault of an accepted program, and every exception of the verifier
itself, fails the test with the program: there is no filter of "known"
faults (a counterexample becomes a test in tests/test_verifier_regressions.py,
strict xfail while the bug is open, and is fixed, not filtered).
Statistics are printed (`pytest -s`). The default runs are sized for the
suite; the `slow` variants run ten times as many examples.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz_programs import (
    ExampleHarness,
    Harness,
    describe,
    mutations,
    packets,
    xdp_programs,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

GENERATED_EXAMPLES = 1200
MUTATED_EXAMPLES = 1000
SLOW_FACTOR = 10

_SETTINGS = dict(
    deadline=None,
    database=None,
    derandomize=True,  # the default run is reproducible; the slow run explores
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

inputs = st.lists(packets, min_size=3, max_size=3)


def _fail_on_any(faults: list, crashes: list, render) -> None:
    found = [render(item, "fault") for item in faults]
    found += [render(item, "verifier crash") for item in crashes]
    assert not found, f"{len(found)} counterexample(s):\n\n" + "\n\n".join(found[:5])


def _run_generated(n: int, derandomize: bool) -> None:
    harness = Harness()
    opts = {**_SETTINGS, "derandomize": derandomize}

    @settings(max_examples=n, **opts)
    @given(xdp_programs(), inputs)
    def check(source: str, data: list[bytes]) -> None:
        harness.check(source, data)

    check()
    try:
        _fail_on_any(
            harness.faults,
            harness.crashes,
            lambda item, what: f"{what}: {describe(item[1])}\n{item[0]}",
        )
    finally:
        print("\n" + harness.summary("generated XDP programs"))


def _run_mutated(n: int, derandomize: bool) -> None:
    stats: Counter[str] = Counter()
    harnesses = [ExampleHarness(str(p), stats) for p in sorted(EXAMPLES.glob("*.o"))]
    targets = [(h, name) for h in harnesses for name in h.programs()]
    opts = {**_SETTINGS, "derandomize": derandomize}

    @settings(max_examples=n, **opts)
    @given(st.data(), inputs)
    def check(data: st.DataObject, packets_: list[bytes]) -> None:
        harness, name = data.draw(st.sampled_from(targets))
        insns, what = data.draw(mutations(harness.obj.programs[name].spec.instructions))
        harness.check(name, insns, what, packets_)

    try:
        check()
        faults = [f for h in harnesses for f in h.faults]
        crashes = [c for h in harnesses for c in h.crashes]
        rate = stats["accepted"] / stats["generated"] if stats["generated"] else 0.0
        try:
            _fail_on_any(
                faults,
                crashes,
                lambda item, what: (
                    f"{what}: {item[0]}:{item[1]} mutated {item[2]}: {describe(item[3])}"
                ),
            )
        finally:
            print(
                f"\nmutated example programs ({len(targets)} programs): generated "
                f"{stats['generated']}, accepted {stats['accepted']} ({rate:.0%}), rejected "
                f"{stats['rejected']}, runs {stats['runs']}, skipped runs {stats['skipped']}, "
                f"faults {stats['faults']}, verifier crashes {stats['verifier_crashes']}"
            )
    finally:
        for h in harnesses:
            h.close()


def test_generated_programs_never_fault() -> None:
    _run_generated(GENERATED_EXAMPLES, derandomize=True)


def test_mutated_examples_never_fault() -> None:
    _run_mutated(MUTATED_EXAMPLES, derandomize=True)


# The long runs are reproducible too (CI runs them: a new counterexample must
# not make CI fail at random); PYBPF_FUZZ_RANDOM=1 explores with fresh seeds.
RANDOM_SEEDS = bool(os.environ.get("PYBPF_FUZZ_RANDOM"))


@pytest.mark.slow
def test_generated_programs_never_fault_long() -> None:
    _run_generated(GENERATED_EXAMPLES * SLOW_FACTOR, derandomize=not RANDOM_SEEDS)


@pytest.mark.slow
def test_mutated_examples_never_fault_long() -> None:
    _run_mutated(MUTATED_EXAMPLES * SLOW_FACTOR, derandomize=not RANDOM_SEEDS)


def test_generators_reach_acceptance() -> None:
    """The generator is useful only if the verifier accepts a fair share of its programs."""
    harness = Harness()

    @settings(max_examples=100, **_SETTINGS)
    @given(xdp_programs())
    def check(source: str) -> None:
        harness.check(source, [])

    check()
    assert harness.stats["accepted"] >= 15, harness.summary("acceptance")
