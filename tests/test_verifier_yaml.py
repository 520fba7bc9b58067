"""PREVAIL's YAML verifier cases, one parametrized test per case.

Cases listed in `verifier_known_failures.txt` are strict xfails: when the
verifier improves and one passes, the test fails until the list is
regenerated (`python -m pybpf.verifier.prevail_yaml DIR --write-known-failures
tests/verifier_known_failures.txt`), so every improvement and every
regression shows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import SHARED
from pybpf.verifier.prevail_yaml import (
    format_table,
    iter_all_cases,
    pass_counts,
    read_known_failures,
    run_case,
)

CASES_DIR = SHARED / "prevail-tests"
KNOWN_FAILURES = read_known_failures(Path(__file__).with_name("verifier_known_failures.txt"))
CASES = list(iter_all_cases(CASES_DIR)) if CASES_DIR.is_dir() else []


def _param(case):
    marks = []
    reason = KNOWN_FAILURES.get(case.id)
    if reason is not None:
        marks.append(pytest.mark.xfail(strict=True, reason=reason))
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.skipif(not CASES, reason="PREVAIL YAML cases not found")
@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_yaml_case(case) -> None:
    result = run_case(case)
    assert result.ok, result.describe()


@pytest.mark.skipif(not CASES, reason="PREVAIL YAML cases not found")
def test_known_failures_name_existing_cases() -> None:
    ids = {c.id for c in CASES}
    stale = sorted(set(KNOWN_FAILURES) - ids)
    assert not stale, f"known failures that are not cases: {stale[:5]}"


@pytest.mark.skipif(not CASES, reason="PREVAIL YAML cases not found")
def test_pass_count_table(request: pytest.FixtureRequest) -> None:
    """Print the per-file pass counts (shown in the test output)."""
    results = [run_case(c) for c in CASES]
    table = format_table(pass_counts(results))
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("")
        reporter.write_line("PREVAIL YAML pass counts:")
        for line in table.splitlines():
            reporter.write_line(line)
    passed = sum(r.ok for r in results)
    assert passed == len(CASES) - len(KNOWN_FAILURES)
