"""pybpf's verdict on the precision programs (tests/verifier_precision) equals the kernel's.

Each program there is one pattern where the kernel's path-sensitive
verifier is more precise than an analysis that joins states (issue 11,
item 1), or a twin the kernel rejects. manifest.json holds the verdict the
kernel gave (root, privileged); the first test compares pybpf's load-path
verdict with it, the second, where `bpf()` works, checks the manifest
against the running kernel. Programs pybpf still gets wrong are strict
xfails in KNOWN_FAILURES with the reason, so a fix turns them XPASS.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import pytest

from pybpf.elf import load_object_spec
from pybpf.testing.kernel import kernel_available, unavailable_reason
from pybpf.testing.verdicts import kernel_verdict
from pybpf.verifier.program import verify_program

HERE = Path(__file__).resolve().parent / "verifier_precision"
ENTRIES = json.loads((HERE / "manifest.json").read_text())["programs"]

#: program name -> why pybpf's verdict still differs from the kernel's.
KNOWN_FAILURES: dict[str, str] = {}

needs_kernel = pytest.mark.skipif(not kernel_available(), reason=unavailable_reason() or "kernel")


def _params(entries: list[dict]) -> list:
    out = []
    for entry in entries:
        reason = KNOWN_FAILURES.get(entry["name"])
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        out.append(pytest.param(entry, id=entry["name"], marks=marks))
    return out


def test_manifest_covers_every_program() -> None:
    sources = {path.stem for path in HERE.glob("*.c")}
    assert {entry["object"][:-2] for entry in ENTRIES} == sources
    assert {path.name for path in HERE.glob("*.o")} == {entry["object"] for entry in ENTRIES}
    assert set(KNOWN_FAILURES) <= {entry["name"] for entry in ENTRIES}
    verdicts = [entry["kernel"]["verdict"] for entry in ENTRIES]
    assert verdicts.count("reject") >= 4 and verdicts.count("accept") >= 12


@pytest.mark.parametrize("entry", _params(ENTRIES))
def test_pybpf_verdict_is_the_kernels(entry: dict) -> None:
    spec = load_object_spec(HERE / entry["object"])
    report = verify_program(spec.programs[entry["name"]], spec)
    verdict = "accept" if report.ok else "reject"
    assert verdict == entry["kernel"]["verdict"], report.render()


@needs_kernel
@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["name"])
def test_manifest_is_the_running_kernels(entry: dict) -> None:
    accepted, reason = kernel_verdict(HERE / entry["object"], entry["name"])
    assert ("accept" if accepted else "reject") == entry["kernel"]["verdict"], reason
    if entry["kernel"]["release"] == platform.release():
        assert reason == entry["kernel"]["reason"]
