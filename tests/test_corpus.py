"""The corpus (tests/corpus) against the kernel's recorded answers, in both engines.

Each program of tests/corpus/manifest.json is loaded by pybpf (verifier
on), configured as the kernel's run was (globals before load, autoload,
map entries), run on the same inputs, and must give what the kernel gave:
the load verdict, then per run the retval, data_out and ctx_out (or the
errno of a refused run), then every map, global-data section and ring
buffer after the runs. For program types Linux cannot test-run (kprobe,
tracepoint) the manifest holds expectations derived from the C source
(`results_from: "source"`), compared the same way.

Gaps found in pybpf are listed in KNOWN_FAILURES with their cause, as
strict xfails: when one is fixed the test turns XPASS and fails, and the
entry must go. `python -m pybpf.testing.corpus` re-records the manifest.
"""

from __future__ import annotations

from typing import Any

import pytest

from pybpf.testing.corpus import MANIFEST, compare_table, differences, load_manifest, run_pybpf

ENTRIES = load_manifest()
ENGINES = ("interpreter", "jit")

#: (program name, engine or "*") -> the pybpf gap that makes it differ from the kernel.
KNOWN_FAILURES: dict[tuple[str, str], str] = {
    ("xdp_meta_mark", "*"): (
        'the kernel (6.18) refuses bpf_xdp_adjust_meta in this SEC("xdp") program (\'program '
        "of this type cannot use helper bpf_xdp_adjust_meta#54'); pybpf accepts and runs it"
    ),
    ("xdp_fib_forward", "*"): (
        "bpf_fib_lookup with empty tables: the kernel first checks forwarding on the input "
        "device (lo, forwarding off here) and answers FWD_DISABLED (5); pybpf answers "
        "NOT_FWDED (4)"
    ),
}


def _known(name: str, engine: str) -> str | None:
    return KNOWN_FAILURES.get((name, engine)) or KNOWN_FAILURES.get((name, "*"))


def _params() -> list[Any]:
    out = []
    for entry in ENTRIES:
        for engine in ENGINES:
            reason = _known(entry["name"], engine)
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            out.append(pytest.param(entry, engine, id=f"{entry['name']}-{engine}", marks=marks))
    return out


def test_manifest_covers_the_corpus():
    # at least forty programs, every object in the manifest exists, every
    # accepted kernel-runnable entry has one result per input
    assert len(ENTRIES) >= 40
    for entry in ENTRIES:
        assert (MANIFEST.parent / entry["object"]).is_file(), entry["object"]
        kernel = entry["kernel"]
        assert kernel["verdict"] in ("accept", "reject")
        if entry["results_from"] == "kernel" and kernel["verdict"] == "accept":
            assert len(kernel["runs"]) == len(entry["inputs"]), entry["name"]
        if entry["results_from"] == "source":
            assert len(entry["expected"]["retvals"]) == len(entry["inputs"]), entry["name"]


@pytest.mark.parametrize(("entry", "engine"), _params())
def test_corpus_program(entry: dict[str, Any], engine: str) -> None:
    got = run_pybpf(entry, engine)
    assert differences(entry, got) == []


def test_differences_name_what_differs():
    # the comparison the figures come from finds a changed retval, map and verdict
    entry = next(e for e in ENTRIES if e["results_from"] == "kernel" and e["kernel"]["maps"])
    got = run_pybpf(entry, "interpreter")
    assert differences(entry, got) == []
    bad = dict(got, runs=[dict(r, retval=(r.get("retval") or 0) + 1) for r in got["runs"]])
    assert ("run", "run 0: retval") in differences(entry, bad)
    name = next(iter(entry["kernel"]["maps"]))
    bad = dict(got, maps=dict(got["maps"], **{name: [["00", "01"]]}))
    assert ("state", f"map {name} after the runs") in differences(entry, bad)
    assert differences(entry, dict(got, verdict="reject"))[0][0] == "verdict"


def test_compare_table_counts():
    entries = [e for e in ENTRIES if e["name"] in ("globals_mixed", "xdp_fib_forward")]
    lines = compare_table("interpreter", entries)
    assert "everything equal                   1 / 2" in lines[5]
    assert any(line.startswith("  differs: xdp_fib_forward: ") for line in lines)
