"""The verdict corpus (examples/verdicts): small programs and the kernel's verdict on each.

Each `examples/verdicts/CATEGORY.c` holds several programs of one category
(its first line: `// category: NAME — what it covers`); each program is
preceded by a `//` line saying what it does or which flaw it has, and its
name says what its author meant the kernel to answer (`ok_…` accepted,
`bad_…` rejected). Some are C, some naked-function assembly where C cannot
express the flaw.

`manifest.json` holds one entry per program: object, program, section,
category, description, intent, and what the running kernel answered when
recorded (`kernel`: verdict, the line of its verifier log that explains a
rejection, the kernel release). `python -m pybpf.testing.verdict_corpus`
re-records it on this machine (root, libbpf, bpf()), and refuses to write
an entry whose kernel verdict contradicts its name.

`pybpf_verdict` gives pybpf's answer for an entry exactly as `pybpf verify`
(and so `pybpf.load`) computes it.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The corpus in a source checkout: src/pybpf/testing → examples/verdicts.
CORPUS_DIR = Path(__file__).resolve().parents[3] / "examples" / "verdicts"
MANIFEST = CORPUS_DIR / "manifest.json"

_CATEGORY = re.compile(r"^//\s*category:\s*(\w+)")


@dataclass(frozen=True)
class Entry:
    """One program of the corpus and the kernel's recorded verdict on it."""

    name: str
    object: str
    program: str
    section: str
    category: str
    description: str
    intent: str
    kernel: dict[str, Any]

    @property
    def path(self) -> Path:
        """The object file."""
        return CORPUS_DIR / self.object

    @property
    def kernel_verdict(self) -> str:
        """ "accept" or "reject", as recorded."""
        return self.kernel["verdict"]


def load_manifest(path: str | os.PathLike | None = None) -> list[Entry]:
    """Every entry of the manifest, in order."""
    raw = json.loads(Path(path or MANIFEST).read_text())
    return [Entry(**item) for item in raw["programs"]]


def _describe(source: Path) -> tuple[str, dict[str, str]]:
    """The category of a source and the `//` line before each program function."""
    lines = source.read_text().splitlines()
    match = _CATEGORY.match(lines[0]) if lines else None
    if match is None:
        raise ValueError(f"{source}: first line must be '// category: NAME …'")
    descriptions: dict[str, str] = {}
    comment = ""
    for line in lines[1:]:
        stripped = line.strip()
        if stripped.startswith("//"):
            comment = stripped[2:].strip()
            continue
        found = re.search(r"\bint\s+((?:ok|bad)_\w+)\s*\(", stripped)
        if found:
            descriptions[found.group(1)] = comment
            comment = ""
    return match.group(1), descriptions


def discover(directory: Path = CORPUS_DIR) -> list[dict[str, Any]]:
    """Manifest entries (without kernel verdicts) for every program of every object."""
    from ..elf.loader import load_object_spec

    entries = []
    for source in sorted(directory.glob("*.c")):
        category, descriptions = _describe(source)
        obj = source.with_suffix(".o")
        spec = load_object_spec(obj)
        for name, program in spec.programs.items():
            if program.section == ".text" or name not in descriptions:
                continue
            entries.append(
                {
                    "name": name,
                    "object": obj.name,
                    "program": name,
                    "section": program.section,
                    "category": category,
                    "description": descriptions[name],
                    "intent": "accept" if name.startswith("ok_") else "reject",
                    "kernel": {},
                }
            )
    return entries


def pybpf_verdict(path: str | os.PathLike, program: str) -> tuple[bool, str]:
    """pybpf's verdict on one program as `pybpf verify` gives it: (accepted, first error)."""
    from ..btf.target import apply_core
    from ..elf.loader import load_object_spec
    from ..errors import PybpfError
    from ..program import program_type_of, verifier_prog_type
    from ..verifier.cache import resolve_prog_type
    from ..verifier.options import AnalysisOptions
    from ..verifier.program import verify_program

    try:
        core = apply_core(load_object_spec(path), None)
        if program in core.errors:
            return False, str(core.errors[program])
        spec = core.spec
        program_spec = spec.programs[program]
        section = program_spec.section
        prog_type = resolve_prog_type(
            program_spec, spec, verifier_prog_type(section, program_type_of(section))
        )
        report = verify_program(
            program_spec, spec, prog_type=prog_type, options=AnalysisOptions.for_load()
        )
    except PybpfError as error:  # refused before or during analysis: a rejection
        return False, f"{type(error).__name__}: {error}"
    first = report.first_failure
    return report.ok, "" if first is None else first.message


def record(path: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Ask the running kernel about every program of the corpus and write the manifest."""
    from .verdicts import kernel_load

    manifest = Path(path or MANIFEST)
    release = platform.release()
    entries = discover(manifest.parent)
    wrong = []
    for item in entries:
        result = kernel_load(manifest.parent / item["object"], item["program"])
        item["kernel"] = {"verdict": result.verdict, "reason": result.reason, "release": release}
        if result.verdict != item["intent"]:
            wrong.append(f"{item['name']}: kernel says {result.verdict} ({result.reason})")
    if wrong:
        raise SystemExit("names contradict the kernel's verdict:\n  " + "\n  ".join(wrong))
    document = {
        "description": (
            "Programs of our own, each with the running Linux kernel's verdict (root, "
            "privileged) and the line of its verifier log that explains a rejection. "
            "Re-record with: python -m pybpf.testing.verdict_corpus"
        ),
        "programs": entries,
    }
    manifest.write_text(json.dumps(document, indent=1) + "\n")
    return entries


def main(argv: list[str] | None = None) -> int:
    """Re-record the manifest; print one line per program and the totals."""
    import argparse

    from .kernel import kernel_available, unavailable_reason

    parser = argparse.ArgumentParser(
        prog="python -m pybpf.testing.verdict_corpus",
        description="Record the running kernel's verdict on every program of examples/verdicts.",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the kernel's verdicts, write nothing"
    )
    parser.add_argument("manifest", nargs="?", help=f"the manifest to write (default: {MANIFEST})")
    args = parser.parse_args(argv)
    if not kernel_available():
        print(f"error: the kernel cannot be asked: {unavailable_reason()}", file=sys.stderr)
        return 1
    if args.dry_run:
        from .verdicts import kernel_load

        for item in discover():
            result = kernel_load(CORPUS_DIR / item["object"], item["program"])
            mark = "" if result.verdict == item["intent"] else "   <-- intent " + item["intent"]
            print(f"{item['name']:36} {result.verdict:7} {result.reason}{mark}")
        return 0
    if args.manifest is not None and Path(args.manifest).name != MANIFEST.name:
        parser.error(f"the manifest must be called {MANIFEST.name}, next to the objects")
    entries = record(args.manifest)
    for item in entries:
        print(f"{item['name']:36} {item['kernel']['verdict']:7} {item['kernel']['reason']}")
    accepted = sum(item["kernel"]["verdict"] == "accept" for item in entries)
    print(f"{len(entries)} programs: {accepted} accepted, {len(entries) - accepted} rejected")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
