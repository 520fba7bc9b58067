"""The verifier on the project's own example programs.

`examples/*.o` are correct programs the Linux kernel accepts: every program
of them must verify. (Functions of `.text` are subprograms, verified in the
context of the programs that call them, not on their own, as by the kernel.)
`examples/unsafe/` holds programs with an `expect: accept|reject` verdict
each in `manifest.json`; each must get it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pybpf.elf import load_object_spec
from pybpf.verifier.program import verify_program

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
UNSAFE = EXAMPLES / "unsafe"


def _programs(objects: list[Path]) -> list[tuple[Path, str]]:
    found = []
    for path in objects:
        for name, program in load_object_spec(path).programs.items():
            if program.section != ".text":
                found.append((path, name))
    return found


# Examples whose sections name no program type (old cilium style): the type
# they are built for, as `--type` / `prog_type=` give it.
UNTYPED_SECTIONS = {"legacy_sections.o": "sched_cls"}


def _verify(path: Path, name: str):
    spec = load_object_spec(path)
    return verify_program(spec.programs[name], spec, prog_type=UNTYPED_SECTIONS.get(path.name))


EXAMPLE_PROGRAMS = _programs(sorted(EXAMPLES.glob("*.o")))


@pytest.mark.parametrize(
    ("path", "name"), EXAMPLE_PROGRAMS, ids=[f"{p.name}:{n}" for p, n in EXAMPLE_PROGRAMS]
)
def test_example_program_verifies(path: Path, name: str) -> None:
    report = _verify(path, name)
    first = report.first_failure
    assert report.ok, f"{first} at {first.source_line}" if first else report.render()


def _unsafe_cases() -> list:
    """`(object path, program, expected verdict)` from examples/unsafe/manifest.json."""
    manifest = UNSAFE / "manifest.json"
    if not manifest.is_file():
        return []
    data = json.loads(manifest.read_text())
    entries = data.get("programs", data) if isinstance(data, dict) else data
    if isinstance(entries, dict):
        entries = [{"object": k, **v} for k, v in entries.items()]
    cases = []
    for entry in entries:
        obj = UNSAFE / entry["object"]
        if obj.suffix != ".o":
            obj = obj.with_suffix(".o")
        names = [entry["program"]] if entry.get("program") else None
        if names is None and obj.is_file():
            names = [n for n, p in load_object_spec(obj).programs.items() if p.section != ".text"]
        for name in names or []:
            cases.append(pytest.param(obj, name, entry["expect"], id=f"{obj.name}:{name}"))
    return cases


# Verdicts the verifier does not give yet (strict: a fix shows), with why.
UNSAFE_KNOWN_FAILURES: dict[str, str] = {}
UNSAFE_CASES = [
    pytest.param(
        *case.values,
        id=case.id,
        marks=[pytest.mark.xfail(strict=True, reason=UNSAFE_KNOWN_FAILURES[case.id])]
        if case.id in UNSAFE_KNOWN_FAILURES
        else [],
    )
    for case in _unsafe_cases()
]


@pytest.mark.skipif(not UNSAFE_CASES, reason="examples/unsafe/manifest.json not there yet")
@pytest.mark.parametrize(("path", "name", "expect"), UNSAFE_CASES)
def test_unsafe_example_verdict(path: Path, name: str, expect: str) -> None:
    report = _verify(path, name)
    verdict = "accept" if report.ok else "reject"
    assert verdict == expect, report.render()


def test_failure_carries_source_line() -> None:
    """A rejected program's failure names its C source line (BTF line_info)."""
    spec = load_object_spec(EXAMPLES / "xdp_counter.o")
    text = next(p for p in spec.programs.values() if p.section == ".text")
    report = verify_program(text, spec)  # a subprogram alone: its arguments are unknown
    assert not report.ok
    assert report.first_failure.source_line
    assert "xdp_counter.c:" in report.first_failure.source_line
