"""The unsafe example programs (examples/unsafe) and the Linux kernel's verdicts.

Every manifest entry names an object with one specific flaw (or its safe
twin, built from the same source with -DSAFE). Here: the manifest is
consistent with the files, every object parses with pybpf's ELF loader
(runs everywhere, from the committed objects), and, where the kernel can
be asked (root, libbpf, bpf()), its verdict equals the manifest's `expect`
(or `kernel_expect`, where root is let through what pybpf rejects).
"""

from __future__ import annotations

import platform

import pytest

from pybpf.elf import load_object_spec
from pybpf.testing.kernel import kernel_available, unavailable_reason
from pybpf.testing.verdicts import MANIFEST, UNSAFE_DIR, kernel_verdict, load_manifest

ENTRIES = load_manifest()
BY_NAME = {entry.name: entry for entry in ENTRIES}
VERDICTS = ("accept", "reject")

needs_kernel = pytest.mark.skipif(not kernel_available(), reason=unavailable_reason() or "kernel")


def test_manifest_covers_every_example() -> None:
    sources = {path.stem for path in UNSAFE_DIR.glob("*.c")}
    flawed = {entry.name for entry in ENTRIES if not entry.name.endswith(".safe")}
    assert flawed == sources, f"sources without an entry or entries without a source: {MANIFEST}"
    objects = {path.name for path in UNSAFE_DIR.glob("*.o")}
    assert {entry.object for entry in ENTRIES} == objects
    assert len(BY_NAME) == len(ENTRIES), "duplicate names"


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_entry_is_well_formed(entry) -> None:
    assert entry.expect in VERDICTS and entry.kernel_expect in VERDICTS
    assert entry.flaw and entry.category
    if entry.twin is not None:
        twin = BY_NAME[entry.twin]
        assert twin.twin == entry.name and twin.program == entry.program
        # exactly one of the pair is the safe one, and the safe one is accepted
        assert entry.name.endswith(".safe") != twin.name.endswith(".safe")
        safe = entry if entry.name.endswith(".safe") else twin
        assert safe.expect == safe.kernel_expect == "accept"


def test_the_set_has_flaws_and_twins() -> None:
    """A verifier that rejects (or accepts) everything must fail on this set."""
    expected = [entry.expect for entry in ENTRIES]
    assert expected.count("reject") >= 20 and expected.count("accept") >= 20


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_object_parses(entry) -> None:
    spec = load_object_spec(entry.path)
    assert entry.program in spec.programs
    assert spec.programs[entry.program].section == entry.prog_type
    assert spec.programs[entry.program].instructions


@needs_kernel
@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_kernel_verdict_matches_manifest(entry) -> None:
    accepted, reason = kernel_verdict(entry.path, entry.program)
    assert ("accept" if accepted else "reject") == entry.kernel_expect, reason
    if accepted:
        assert reason == ""
    else:
        assert reason
    recorded = entry.kernel
    if _version(recorded.get("release", "")) == _version(platform.release()):
        # same kernel version as when recorded (whatever the build suffix after the
        # first "-"): the same reason, word for word
        assert reason == recorded["reason"]


def _version(release: str) -> str:
    """The kernel version of a release string: "6.18.44" of "6.18.44-fc-v669"."""
    return release.partition("-")[0]
