"""Running bpf_conformance `.data` files against an engine.

A file (format: `shared/conformance/FORMAT.md`) holds a program (`-- asm`,
or `-- raw` 64-bit words, which win), optional input memory (`-- mem`) and
the expected 64-bit r0 (`-- result`) or error text (`-- error`). The runner
contract: r1 points to a copy of the memory and r2 holds its length (both 0
without memory), r10 is a 512-byte stack, helper 5 returns its first
argument.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import PybpfError
from ..isa.instruction import Instruction, decode
from ..runtime.helpers import HelperTable, conformance_helpers
from ..runtime.memory import Memory
from .interpreter import DEFAULT_BUDGET, Interpreter

_M64 = (1 << 64) - 1
_KNOWN_SECTIONS = {"asm", "result", "mem", "raw", "c", "no register offset", "error"}

EngineFactory = Callable[..., Any]
"""``factory(insns, *, helpers, memory, budget, where)`` → object with ``run(r1, r2)``."""


def _jit(insns: list[Instruction], **options: Any) -> Any:
    # Imported on use: the JIT pulls in llvmlite and the native compiler.
    from .jit import JitEngine

    return JitEngine(insns, **options)


ENGINES: dict[str, EngineFactory] = {"interpreter": Interpreter, "jit": _jit}
"""Engines the runner can use, by name."""


@dataclass(frozen=True, slots=True)
class ConformanceCase:
    """One parsed `.data` file."""

    name: str
    path: Path | None
    asm: str | None
    raw: bytes | None
    mem: bytes | None
    expected: int | None
    error: str | None
    skip: str | None = None


@dataclass(frozen=True, slots=True)
class ConformanceResult:
    """The outcome of one case: passed or not, expected and actual r0, or the error."""

    name: str
    passed: bool
    expected: int | None
    actual: int | None = None
    error: str | None = None
    skipped: str | None = None


def _strip_comment(line: str) -> str:
    return line.split("#", 1)[0].strip()


def parse_case(text: str, name: str = "<case>", path: Path | None = None) -> ConformanceCase:
    """Parse the text of a `.data` file into a `ConformanceCase`."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    unknown = None
    for line in text.splitlines():
        header = re.match(r"^\s*--\s*(.*?)\s*$", line)
        if header:
            keyword = header.group(1)
            if keyword not in _KNOWN_SECTIONS:
                unknown = keyword
            current = sections.setdefault(keyword, [])
            continue
        if current is not None:
            current.append(line)

    def body(key: str) -> str | None:
        lines = sections.get(key)
        return None if lines is None else "\n".join(lines)

    raw = None
    if "raw" in sections:
        words = [int(w, 0) for ln in sections["raw"] for w in _strip_comment(ln).split()]
        raw = b"".join((w & _M64).to_bytes(8, "little") for w in words)
    mem = None
    if "mem" in sections:
        mem = bytes(int(b, 16) for ln in sections["mem"] for b in _strip_comment(ln).split())
    expected = None
    result_words = " ".join(_strip_comment(ln) for ln in sections.get("result", [])).split()
    if result_words:
        expected = int(result_words[0], 0) & _M64
    error = body("error")
    error = error.strip() if error is not None else None
    skip = None
    if unknown is not None:
        skip = f"unknown section '-- {unknown}'"
    elif expected is None and error is None:
        skip = "no result and no error"
    return ConformanceCase(name, path, body("asm"), raw, mem, expected, error, skip)


def load_case(path: Path) -> ConformanceCase:
    """Parse the `.data` file at `path`."""
    return parse_case(path.read_text(), path.stem, path)


def program_of(case: ConformanceCase) -> list[Instruction]:
    """The instructions of a case (`-- raw` replaces `-- asm`)."""
    where = str(case.path) if case.path else case.name
    if case.raw is not None:
        return decode(case.raw, where=where)
    from ..isa.assembler import assemble

    return assemble(case.asm or "", where=where)


def run_case(
    case: ConformanceCase,
    engine: str = "interpreter",
    helpers: HelperTable | None = None,
    budget: int = DEFAULT_BUDGET,
) -> ConformanceResult:
    """Run one case on `engine`; never raises for a failing program."""
    if case.skip:
        return ConformanceResult(case.name, False, case.expected, skipped=case.skip)
    factory = ENGINES[engine]
    memory = Memory()
    try:
        insns = program_of(case)
        vm = factory(
            insns,
            helpers=helpers if helpers is not None else conformance_helpers(),
            memory=memory,
            budget=budget,
            where=case.name,
        )
        if case.mem is not None:
            region = memory.allocate_from(case.mem, "mem")
            r0 = vm.run(region.start, len(case.mem))
        else:
            r0 = vm.run(0, 0)
    except PybpfError as exc:
        passed = case.error is not None and str(exc).rstrip() == case.error
        return ConformanceResult(case.name, passed, case.expected, error=str(exc))
    passed = case.error is None and r0 == case.expected
    return ConformanceResult(case.name, passed, case.expected, actual=r0)


def case_files(directory: Path) -> list[Path]:
    """Every `.data` file in `directory`, sorted by name."""
    return sorted(directory.glob("*.data"))


def run_directory(
    directory: Path, engine: str = "interpreter", files: Iterable[Path] | None = None
) -> list[ConformanceResult]:
    """Run every `.data` file in `directory` (or just `files`)."""
    paths = list(files) if files is not None else case_files(directory)
    return [run_case(load_case(p), engine) for p in paths]
