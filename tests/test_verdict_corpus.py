"""The verdict corpus (examples/verdicts) against the Linux kernel's verdicts.

194 programs of our own, one category per source (asm_basics, packet,
stack, maps, rodata, ringbuf, sockets, loops, ctx, helpers, returns,
calls, license), about half accepted and half rejected by the kernel, each
with the kernel's verdict and the line of its verifier log that explains a
rejection (`manifest.json`, recorded by `python -m pybpf.testing.verdict_corpus`).

Everywhere: pybpf's verdict (as `pybpf verify` and `pybpf.load` give it)
must equal the stored kernel verdict; the programs where it does not yet
are listed in KNOWN_GAPS, one place, with the kind of gap, as strict xfails
(a fix turns the test XPASS and fails: remove the entry). Where `bpf()`
works: the live kernel must give the stored verdict (and, on the kernel
release that recorded it, the same reason line), and `pybpf verify --kernel`
shows both sides.

`test_agreement_summary` prints agreement per category, for accepted and
rejected programs separately (`pytest -s` shows it).
"""

from __future__ import annotations

import collections
import functools
import json
import platform

import pytest

from pybpf.cli.main import main
from pybpf.testing.kernel import kernel_available, unavailable_reason
from pybpf.testing.verdict_corpus import CORPUS_DIR, discover, load_manifest, pybpf_verdict
from pybpf.testing.verdicts import kernel_load

ENTRIES = load_manifest()
BY_NAME = {entry.name: entry for entry in ENTRIES}

FALSE_REJECTION = "false rejection"  # the kernel accepts, pybpf rejects
MISSED_REJECTION = "missed rejection"  # the kernel rejects, pybpf accepts

#: program -> (kind of gap, what pybpf gets wrong). The one list of pybpf's disagreements.
KNOWN_GAPS: dict[str, tuple[str, str]] = {
    # -- false rejections ---------------------------------------------------------------
    # -- missed rejections --------------------------------------------------------------
}

needs_kernel = pytest.mark.skipif(not kernel_available(), reason=unavailable_reason() or "kernel")


@functools.cache
def pybpf_says(name: str) -> tuple[bool, str]:
    entry = BY_NAME[name]
    return pybpf_verdict(entry.path, entry.program)


def _params() -> list:
    out = []
    for entry in ENTRIES:
        gap = KNOWN_GAPS.get(entry.name)
        marks = [pytest.mark.xfail(strict=True, reason=f"{gap[0]}: {gap[1]}")] if gap else []
        out.append(pytest.param(entry, id=entry.name, marks=marks))
    return out


def test_manifest_is_the_corpus() -> None:
    """Every program of every object has an entry, with a kernel verdict that fits its name."""
    assert len(ENTRIES) >= 150 and len(BY_NAME) == len(ENTRIES)
    found = {(item["object"], item["program"]) for item in discover()}
    assert found == {(e.object, e.program) for e in ENTRIES}
    assert {e.object for e in ENTRIES} == {p.name for p in CORPUS_DIR.glob("*.o")}
    for entry in ENTRIES:
        assert entry.kernel_verdict == entry.intent, entry.name
        assert entry.description and entry.category
        assert bool(entry.kernel["reason"]) == (entry.kernel_verdict == "reject"), entry.name
    accepted = sum(e.kernel_verdict == "accept" for e in ENTRIES)
    assert 0.4 <= accepted / len(ENTRIES) <= 0.6, "about half accepted, half rejected"


def test_known_gaps_name_corpus_programs() -> None:
    for name, (kind, why) in KNOWN_GAPS.items():
        assert name in BY_NAME, name
        assert kind == (FALSE_REJECTION if BY_NAME[name].intent == "accept" else MISSED_REJECTION)
        assert why


@pytest.mark.parametrize("entry", _params())
def test_pybpf_gives_the_kernels_verdict(entry) -> None:
    ok, message = pybpf_says(entry.name)
    got = "accept" if ok else "reject"
    assert got == entry.kernel_verdict, (
        f"pybpf: {message or 'accepted'}; kernel: {entry.kernel['reason'] or 'accepted'}"
    )


@needs_kernel
@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_live_kernel_gives_the_stored_verdict(entry) -> None:
    result = kernel_load(entry.path, entry.program)
    assert result.verdict == entry.kernel_verdict, result.reason
    if entry.kernel.get("release") == platform.release():
        assert result.reason == entry.kernel["reason"]


def test_agreement_summary(capsys) -> None:
    """Agreement with the kernel per category, accepted and rejected programs apart."""
    table: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for entry in ENTRIES:
        ok, _ = pybpf_says(entry.name)
        side = entry.kernel_verdict
        table[entry.category][f"{side}_total"] += 1
        table[entry.category][f"{side}_agree"] += ok == (side == "accept")
        gap = KNOWN_GAPS.get(entry.name) is not None
        assert gap == (ok != (side == "accept")), f"{entry.name}: KNOWN_GAPS out of date"
    lines = [f"{'category':12} {'kernel accepts':>16} {'kernel rejects':>16}"]
    totals = collections.Counter()
    for category in sorted(table):
        row = table[category]
        totals.update(row)
        lines.append(
            f"{category:12} {row['accept_agree']:>7}/{row['accept_total']:<8}"
            f" {row['reject_agree']:>7}/{row['reject_total']:<8}"
        )
    lines.append(
        f"{'all':12} {totals['accept_agree']:>7}/{totals['accept_total']:<8}"
        f" {totals['reject_agree']:>7}/{totals['reject_total']:<8}"
    )
    with capsys.disabled():
        print("\npybpf agrees with the kernel on:\n" + "\n".join(lines))


# -- pybpf verify --kernel ---------------------------------------------------------------

CLI_OBJECTS = ("asm_basics.o", "returns.o", "sockets.o")


@needs_kernel
@pytest.mark.parametrize("name", CLI_OBJECTS)
def test_verify_kernel_json_gives_both_sides(name, capsys) -> None:
    code = main(["verify", "--kernel", "--json", str(CORPUS_DIR / name)])
    document = json.loads(capsys.readouterr().out)
    assert document["kernel"] == {"available": True, "reason": None}
    disagree = False
    for program in document["programs"]:
        entry = BY_NAME[program["name"]]
        kernel = program["kernel"]
        assert kernel["verdict"] == ("pass" if entry.kernel_verdict == "accept" else "fail")
        assert (kernel["reason"] == "") == (kernel["verdict"] == "pass")
        assert kernel["log"], "the kernel's log lines are kept"
        pybpf_ok, _ = pybpf_says(entry.name)
        assert (program["verdict"] == "pass") == pybpf_ok
        assert kernel["agree"] == (pybpf_ok == (entry.kernel_verdict == "accept"))
        disagree = disagree or not kernel["agree"]
    assert document["agree"] == (not disagree)
    both_accept = all(p["verdict"] == "pass" for p in document["programs"])
    assert code == (3 if disagree else 0 if both_accept else 1)


@needs_kernel
def test_verify_kernel_text_names_whose_rejection(capsys) -> None:
    obj = str(CORPUS_DIR / "asm_basics.o")
    assert main(["verify", "--kernel", obj, "--program", "bad_div_imm_zero"]) == 1
    out = capsys.readouterr().out
    assert "pybpf: FAIL  kernel (" in out and "-> both reject" in out
    assert "kernel error: div by zero" in out
    assert "| 1: (37) r0 /= 0" in out
    assert main(["verify", "--kernel", obj, "--program", "ok_div_imm"]) == 0
    assert "-> both accept" in capsys.readouterr().out
    # a disagreement, while KNOWN_GAPS lists one
    for name, (kind, _) in sorted(KNOWN_GAPS.items())[:1]:
        entry = BY_NAME[name]
        assert main(["verify", "--kernel", str(entry.path), "--program", entry.program]) == 3
        out = capsys.readouterr().out
        if kind == MISSED_REJECTION:
            assert "DISAGREE: the kernel rejects a program pybpf accepts" in out
            assert f"kernel error: {entry.kernel['reason']}" in out
        else:
            assert "DISAGREE: pybpf rejects a program the kernel accepts" in out


def test_verify_kernel_without_bpf_is_a_note(monkeypatch, capsys) -> None:
    """No bpf(): one line saying why, the output and exit code of plain verify."""
    from pybpf.cli import verify_kernel

    monkeypatch.setattr(verify_kernel, "unavailable", lambda: "needs root for the bpf() syscall")
    obj = str(CORPUS_DIR / "asm_basics.o")
    assert main(["verify", "--kernel", obj, "--program", "ok_div_imm"]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        "pybpf: note: kernel comparison unavailable: needs root for the bpf() syscall"
    )
    assert "kernel" not in captured.out
    assert main(["verify", "--kernel", "--json", obj, "--program", "bad_div_imm_zero"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["kernel"] == {
        "available": False,
        "reason": "needs root for the bpf() syscall",
    }
    assert "kernel" not in document["programs"][0]


@needs_kernel
def test_verify_kernel_honours_type(capsys) -> None:
    """Sections that name no type (cilium's `2/7`): `--type` goes to the kernel too."""
    obj = CORPUS_DIR.parent / "legacy_sections.o"
    assert main(["verify", "--kernel", "--json", "--type", "tc", str(obj)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [p["kernel"]["verdict"] for p in document["programs"]] == ["pass", "pass"]


def _unsafe_objects() -> list[str]:
    from pybpf.testing.verdicts import load_manifest as unsafe_manifest

    return sorted({entry.object for entry in unsafe_manifest()})


@needs_kernel
@pytest.mark.parametrize("name", _unsafe_objects())
def test_verify_kernel_on_the_unsafe_examples(name, capsys) -> None:
    """`pybpf verify --kernel` over examples/unsafe: the kernel side is the manifest's."""
    from pybpf.testing.verdicts import UNSAFE_DIR
    from pybpf.testing.verdicts import load_manifest as unsafe_manifest

    wanted = {e.program: e.kernel_expect for e in unsafe_manifest() if e.object == name}
    main(["verify", "--kernel", "--json", str(UNSAFE_DIR / name)])
    document = json.loads(capsys.readouterr().out)
    for program in document["programs"]:
        if program["name"] in wanted:
            verdict = "pass" if wanted[program["name"]] == "accept" else "fail"
            assert program["kernel"]["verdict"] == verdict, program["kernel"]["reason"]
            agree = (program["verdict"] == "pass") == (verdict == "pass")
            assert program["kernel"]["agree"] == agree
