"""The verifier on the project's own example programs.

`examples/*.o` are correct programs the Linux kernel accepts: every program
of them must verify. (Functions of `.text` are subprograms, verified in the
context of the programs that call them, not on their own, as by the kernel.)
`examples/unsafe/` holds programs with an `expect: accept|reject` verdict
each in `manifest.json`; each must get it, and a rejection must be for the
program's flaw (`UNSAFE_REASONS`, or the kernel's recorded reason word for word).
"""

from __future__ import annotations

import json
import re
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


#: Why each rejected example must be rejected: a pattern its first failure's message
#: must match, in pybpf's words or the kernel's (the manifest's `kernel.reason`, which
#: is also accepted word for word). A rejection for some other reason is a wrong answer
#: that happens to have the right verdict.
UNSAFE_REASONS: dict[str, str] = {
    "pkt_read_nocheck": r"packet_size|R1 offset is outside of the packet",
    "pkt_read_off_by_one": r"packet_size|outside of the packet",
    "pkt_write_past_end": r"packet_size.*for write|outside of the packet",
    "map_value_nullcheck": r"Possible null access|map_value_or_null",
    "map_value_oob_const": r"shared_region_size.*for write|outside of the allowed memory range",
    "map_value_oob_var": r"shared_region_size|outside of the allowed memory range",
    "uninit_register": r"Invalid type \(r0\.type == number\)|!read_ok",
    "clobbered_arg_register": r"Invalid type \(r1\.type|R1 !read_ok",
    "uninit_stack_key": r"non-numerical value|invalid indirect read from stack",
    "uninit_stack_read": r"Invalid type \(r0\.type == number\)|invalid read from stack",
    "stack_below_frame": r"Lower bound must be at least r10\.stack_offset|invalid write to stack",
    "stack_above_frame": r"Upper bound must be at most total_stack_size|invalid write to stack",
    "loop_infinite": r"Loop counter is too large|program is too large|infinite loop",
    "loop_goto_self": r"Loop counter is too large|infinite loop",
    "loop_packet_unbounded": r"Loop counter is too large|program is too large|infinite loop",
    "ptr_leak_to_map": r"Only numbers can be stored to externally-visible regions|leaks addr",
    "helper_wrong_map_type": r"cannot pass map_type 1 into func bpf_ringbuf_output",
    "helper_size_unbounded": r"Invalid size \(r4|R4 invalid zero-sized read",
    "helper_pkt_key_unchecked": r"packet_size \(within\(r2|R2 offset is outside of the packet",
    "helper_not_allowed": r"cannot use helper bpf_skb_load_bytes|not available to",
    "ringbuf_leak": r"Unreleased reference|reference leak",
    "ringbuf_nullcheck": r"Possible null access|ringbuf_mem_or_null",
    "return_value_cgroup": r"should have been in \[0, 1\]",
    "ctx_read_past_end": r"Upper bound must be at most 24|invalid bpf_context access off=24",
    "ctx_write_readonly": r"field len is not writeable|invalid bpf_context access off=0",
    "ctx_modified_ptr": r"modified context pointer|modified ctx ptr",
    "scalar_deref": r"Invalid type \(r1\.type in|R1 invalid mem access 'scalar'",
    "jump_out_of_range": r"jump out of range from insn 1 to 102",
    "no_exit_fallthrough": r"last insn is not an exit or jmp",
    "ringbuf_write_past_end": r"alloc_mem_size.*for write|outside of the allowed memory range",
    "pkt_spill_adjust_head": r"Invalid type \(r2\.type in|R2 invalid mem access 'scalar'",
    "callback_oob": r"total_stack_size.*for write|variable-offset write to stack",
}


def _manifest_entries() -> dict[str, dict]:
    manifest = UNSAFE / "manifest.json"
    if not manifest.is_file():
        return {}
    data = json.loads(manifest.read_text())
    return {e["object"]: e for e in data.get("programs", [])} if isinstance(data, dict) else {}


MANIFEST_ENTRIES = _manifest_entries()


@pytest.mark.skipif(not UNSAFE_CASES, reason="examples/unsafe/manifest.json not there yet")
@pytest.mark.parametrize(("path", "name", "expect"), UNSAFE_CASES)
def test_unsafe_example_verdict(path: Path, name: str, expect: str) -> None:
    report = _verify(path, name)
    verdict = "accept" if report.ok else "reject"
    assert verdict == expect, report.render()
    if report.ok:
        return
    entry = MANIFEST_ENTRIES.get(path.name, {})
    kernel_reason = entry.get("kernel", {}).get("reason", "")
    pattern = UNSAFE_REASONS.get(entry.get("name", ""))
    message = report.first_failure.message
    if kernel_reason and kernel_reason in message:
        return  # the kernel's own words
    assert pattern is not None, (
        f"{path.name}: add the reason it must be rejected for to UNSAFE_REASONS"
    )
    assert re.search(pattern, message), f"rejected for another reason: {message}"


def test_failure_carries_source_line() -> None:
    """A rejected program's failure names its C source line (BTF line_info)."""
    spec = load_object_spec(EXAMPLES / "xdp_counter.o")
    text = next(p for p in spec.programs.values() if p.section == ".text")
    report = verify_program(text, spec)  # a subprogram alone: its arguments are unknown
    assert not report.ok
    assert report.first_failure.source_line
    assert "xdp_counter.c:" in report.first_failure.source_line
