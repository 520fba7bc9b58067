"""The verifier on every program of ../shared/ebpf-samples, against PREVAIL's verdicts.

`prevail-tests/elf_inventory.json` says, per program, what PREVAIL
decides (see `pybpf.verifier.inventory`): safe programs must be accepted,
unsafe ones (and those a loader refuses) rejected; PREVAIL's own false
positives may go either way. Disagreements are strict xfails listed with a
reason in `verifier_samples_known_failures.txt`, so any change of verdict
shows; regenerate it with

    python benchmarks/bench_verifier.py --jobs 2 \\
        --write-known-failures tests/verifier_samples_known_failures.txt

The full sweep (686 programs, about a minute) is `slow`; the default run
checks a handful of objects. Each program has 60 s; one that exceeds it
is skipped with that reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import SHARED
from pybpf.verifier.inventory import sample_programs, verify_sample

SAMPLES = SHARED / "ebpf-samples"
INVENTORY = SHARED / "prevail-tests" / "elf_inventory.json"
LIMIT = 60.0
PROGRAMS = list(sample_programs(INVENTORY, SAMPLES)) if INVENTORY.is_file() else []


def _known_failures() -> dict[str, str]:
    path = Path(__file__).with_name("verifier_samples_known_failures.txt")
    known = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            program, _, reason = line.partition("  ")
            known[program] = reason.strip()
    return known


KNOWN_FAILURES = _known_failures()
# A quick default subset: small objects of several projects and program types.
QUICK_OBJECTS = {
    "linux/sockex1_kern.o",
    "linux/xdp1_kern.o",
    "linux/tracex1_kern.o",
    "build/wronghelper.o",
    "build/twotypes.o",
    "prototype-kernel/xdp_ddos01_blacklist_kern.o",
    "suricata/lb.o",
}


def _param(expected, marks=()):
    marks = list(marks)
    reason = KNOWN_FAILURES.get(expected.id)
    if reason is not None:
        marks.append(pytest.mark.xfail(strict=True, reason=reason))
    return pytest.param(expected, id=expected.id, marks=marks)


def _check(expected) -> None:
    result = verify_sample(SAMPLES, expected, LIMIT)
    if result["ok"] is None:
        pytest.skip(f"{expected.id}: {result['failure']}")
    verdict = "accepted" if result["ok"] else f"rejected: {result['failure']}"
    assert result["agrees"], f"PREVAIL: {expected.verdict} ({expected.reason}); pybpf {verdict}"


@pytest.mark.skipif(not PROGRAMS, reason="ebpf-samples or elf_inventory.json not found")
@pytest.mark.parametrize(
    "expected", [_param(e) for e in PROGRAMS if e.path in QUICK_OBJECTS] or [None]
)
def test_sample_verdict_quick(expected) -> None:
    _check(expected)


@pytest.mark.slow
@pytest.mark.skipif(not PROGRAMS, reason="ebpf-samples or elf_inventory.json not found")
@pytest.mark.parametrize("expected", [_param(e) for e in PROGRAMS] or [None])
def test_sample_verdict(expected) -> None:
    _check(expected)


@pytest.mark.skipif(not PROGRAMS, reason="ebpf-samples or elf_inventory.json not found")
def test_known_failures_name_sample_programs() -> None:
    ids = {e.id for e in PROGRAMS}
    stale = sorted(set(KNOWN_FAILURES) - ids)
    assert not stale, f"known failures that are not sample programs: {stale[:5]}"


@pytest.mark.skipif(not PROGRAMS, reason="ebpf-samples or elf_inventory.json not found")
def test_agreement_count(request: pytest.FixtureRequest) -> None:
    """The committed list implies the agreement count; print it."""
    agree = len(PROGRAMS) - len(KNOWN_FAILURES)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"\nebpf-samples agreement with PREVAIL: {agree}/{len(PROGRAMS)}")
    assert agree > 0
