"""The verifier on every program of ../shared/ebpf-samples, against PREVAIL's verdicts.

`prevail-tests/elf_inventory.json` says, per program, what PREVAIL
decides (see `pybpf.verifier.inventory`): safe programs must be accepted,
unsafe ones (and those a loader refuses) rejected. PREVAIL's own false
positives are rejected (agreement) unless listed in
`verifier_samples_beyond_prevail.txt` (acceptances beyond PREVAIL, which
must then be accepted; they are not counted as agreement). Disagreements
and verifier crashes are strict xfails listed with a reason in
`verifier_samples_known_failures.txt`, so any change of verdict shows;
regenerate both with

    python benchmarks/bench_verifier.py --jobs 2 \\
        --write-known-failures tests/verifier_samples_known_failures.txt \\
        --write-beyond-prevail tests/verifier_samples_beyond_prevail.txt

The full sweep (686 programs, a few minutes) is `slow`; the default run
checks a handful of objects. Each program has 60 s; a crash or a program
that exceeds the limit fails.
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


#: Agreement with PREVAIL may not drop below this (issue 11 item 6) unless a
#: difference with Linux is recorded and explained (docs/verifier.md). Counted
#: honestly (2026-12-06): 684 before, less the 9 programs PREVAIL wrongly rejects
#: that pybpf accepts, which the old count took for agreement.
AGREEMENT_FLOOR = 676


def _listed(name: str) -> dict[str, str]:
    """`id → reason` of a list beside this file: `id  reason` lines, # comments."""
    known = {}
    for line in Path(__file__).with_name(name).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            program, _, reason = line.partition("  ")
            known[program.strip()] = reason.strip()
    return known


KNOWN_FAILURES = _listed("verifier_samples_known_failures.txt")
BEYOND_PREVAIL = set(_listed("verifier_samples_beyond_prevail.txt"))
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
    assert result["outcome"] not in ("crash", "timeout"), (
        f"{result['outcome']}: {result['failure']}"
    )
    verdict = "accepted" if result["ok"] else f"rejected: {result['failure']}"
    if expected.id in BEYOND_PREVAIL:
        assert result["class"] == "beyond_prevail", f"no longer accepted: pybpf {verdict}"
        return
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
    assert all(KNOWN_FAILURES.values()), "every known failure needs its reason"
    false_positives = {e.id for e in PROGRAMS if e.verdict == "prevail_rejects"}
    wrong = sorted(BEYOND_PREVAIL - false_positives)
    assert not wrong, f"listed beyond PREVAIL but PREVAIL does not wrongly reject them: {wrong[:5]}"
    both = sorted(BEYOND_PREVAIL & set(KNOWN_FAILURES))
    assert not both, f"listed both as beyond PREVAIL and as known failures: {both[:5]}"


@pytest.mark.skipif(not PROGRAMS, reason="ebpf-samples or elf_inventory.json not found")
def test_agreement_count(request: pytest.FixtureRequest) -> None:
    """The committed lists imply the counts (the sweep checks every program against
    them); agreement excludes acceptances beyond PREVAIL, and may not drop below
    the floor."""
    agree = len(PROGRAMS) - len(KNOWN_FAILURES) - len(BEYOND_PREVAIL)
    crashes = sum(1 for reason in KNOWN_FAILURES.values() if reason.startswith("verifier crash"))
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"\nebpf-samples agreement with PREVAIL: {agree}/{len(PROGRAMS)}; beyond PREVAIL: "
            f"{len(BEYOND_PREVAIL)}; disagreements: {len(KNOWN_FAILURES) - crashes}; "
            f"verifier crashes: {crashes}"
        )
    assert agree >= AGREEMENT_FLOOR, (
        f"agreement {agree} below {AGREEMENT_FLOOR}: record and explain each new difference"
    )
