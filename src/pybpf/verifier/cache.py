"""Verification results cached by what decides them, so loading an object again is instant.

A verdict depends only on the program's bytes (as the ELF gives them,
before maps are linked), the layout of the object's maps (type, key and
value sizes, entries, flags, inner maps, frozen read-only data), the
program type, and the verifier itself. The key is a SHA-256 of all of
these; the verifier is named by pybpf's version *and* a digest of the
sources of `pybpf.verifier` and `pybpf.platform`, so a verifier under
development never answers with a verdict an older one cached.

Two levels: a dictionary per process, and one JSON file per key under
`$PYBPF_CACHE_DIR` (or `~/.cache/pybpf/verifier/`). The disk level is
skipped silently when the directory cannot be created, read or written:
a cache must never make a load fail. JSON rather than pickle, since the
files are read back from a directory other processes may write. A cached
report keeps the verdict, the failures (without their `Assertion`
objects), the unreachable-code notes, the invariants at failing labels
and the context facts the JIT needs (`context_accesses`,
`mixed_context_pcs`); the invariants before every instruction (`-v`)
are not stored.

`stats` counts memory hits, disk hits and misses (what the tests assert).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..elf.specs import MapSpec, ObjectSpec, ProgramSpec
from ..isa.instruction import encode
from .report import Failure, Report

__all__ = [
    "CacheStats",
    "VerifierCache",
    "cache_dir",
    "cache_key",
    "default_cache",
    "resolve_prog_type",
    "verifier_fingerprint",
    "verify_cached",
]

#: Bump when the JSON layout of a cached report changes (2: context accesses,
#: 3: value ranges and memory regions).
FORMAT = 3


@dataclass
class CacheStats:
    """How often the cache answered, and from where."""

    memory_hits: int = 0
    disk_hits: int = 0
    misses: int = 0

    @property
    def hits(self) -> int:
        """Answers that did not run the verifier."""
        return self.memory_hits + self.disk_hits


def cache_dir() -> Path:
    """Where the disk cache lives: `$PYBPF_CACHE_DIR`, else `~/.cache/pybpf/verifier`."""
    configured = os.environ.get("PYBPF_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pybpf" / "verifier"


_fingerprint: str | None = None


def verifier_fingerprint() -> str:
    """pybpf's version plus a digest of the verifier's and platform tables' sources."""
    global _fingerprint
    if _fingerprint is None:
        from .. import __version__

        digest = hashlib.sha256(__version__.encode())
        root = Path(__file__).resolve().parents[1]
        for package in ("verifier", "platform"):
            for path in sorted((root / package).rglob("*.py")):
                digest.update(str(path.relative_to(root)).encode())
                try:
                    digest.update(path.read_bytes())
                except OSError:  # pragma: no cover - a source vanished under us
                    pass
        _fingerprint = f"{__version__}-{digest.hexdigest()[:16]}"
    return _fingerprint


def _map_layout(spec: MapSpec) -> list[Any]:
    inner = _map_layout(spec.inner_map) if spec.inner_map is not None else None
    # Frozen data is part of the layout: a verifier may read .rodata constants.
    data = spec.initial_data.hex() if spec.frozen and spec.initial_data else None
    return [
        spec.name,
        spec.type,
        spec.key_size,
        spec.value_size,
        spec.max_entries,
        spec.flags,
        inner,
        bool(spec.frozen),
        data,
        [list(c) for c in spec.contents],
    ]


def cache_key(program: ProgramSpec, obj: ObjectSpec, prog_type: str) -> str:
    """The SHA-256 naming one verification (see the module docstring)."""
    digest = hashlib.sha256()
    digest.update(verifier_fingerprint().encode())
    digest.update(prog_type.encode())
    digest.update(b"\0")
    digest.update(program.section.encode())
    digest.update(b"\0")
    digest.update(encode(program.instructions))
    layout = {
        "maps": [_map_layout(m) for m in obj.maps.values()],
        "functions": [list(f) for f in program.functions],
        "relocations": [
            [r.pc, r.kind.value, r.map, r.offset, r.target_pc] for r in program.relocations
        ],
    }
    digest.update(json.dumps(layout, sort_keys=True, default=str).encode())
    return digest.hexdigest()


# -- reports as JSON -------------------------------------------------------------


def _label_to_json(label: Any) -> Any:
    return list(label) if isinstance(label, tuple) else label


def _label_from_json(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def report_to_json(report: Report) -> dict[str, Any]:
    """A cached report: verdict, failures, notes, invariants at the failing labels."""
    failing = {f.label for f in report.failures}
    return {
        "format": FORMAT,
        "failures": [
            {
                "label": _label_to_json(f.label),
                "message": f.message,
                "source_line": f.source_line,
            }
            for f in report.failures
        ],
        "unreachable": list(report.unreachable),
        "invariants": [
            [_label_to_json(label), sorted(inv)]
            for label, inv in report.invariants.items()
            if label in failing
        ],
        "context_accesses": [[pc, off] for pc, off in sorted(report.context_accesses.items())],
        "mixed_context_pcs": sorted(report.mixed_context_pcs),
        "value_ranges": [
            [pc, reg, lo, hi]
            for pc, regs in sorted(report.value_ranges.items())
            for reg, (lo, hi) in sorted(regs.items())
        ],
        "memory_regions": [[pc, region] for pc, region in sorted(report.memory_regions.items())],
    }


def report_from_json(data: dict[str, Any]) -> Report:
    """The report `report_to_json` stored (failures without their assertion objects)."""
    if data.get("format") != FORMAT:
        raise ValueError("cache format")
    failures = [
        Failure(_label_from_json(f["label"]), None, f["message"], f.get("source_line"))
        for f in data["failures"]
    ]
    invariants = {_label_from_json(label): set(inv) for label, inv in data.get("invariants", [])}
    return Report(
        failures=failures,
        unreachable=list(data["unreachable"]),
        invariants=invariants,
        context_accesses={int(pc): int(off) for pc, off in data["context_accesses"]},
        mixed_context_pcs=frozenset(int(pc) for pc in data["mixed_context_pcs"]),
        value_ranges=_ranges_from_json(data["value_ranges"]),
        memory_regions={int(pc): str(region) for pc, region in data["memory_regions"]},
    )


def _ranges_from_json(rows: list[list[int]]) -> dict[int, dict[int, tuple[int, int]]]:
    ranges: dict[int, dict[int, tuple[int, int]]] = {}
    for pc, reg, lo, hi in rows:
        ranges.setdefault(int(pc), {})[int(reg)] = (int(lo), int(hi))
    return ranges


# -- the cache ---------------------------------------------------------------------


class VerifierCache:
    """Reports by key, in memory and (when writable) on disk."""

    def __init__(self, directory: Path | None = None, *, disk: bool = True) -> None:
        self._directory = directory
        self.disk = disk
        self.memory: dict[str, Report] = {}
        self.stats = CacheStats()
        self._trimmed = False

    @property
    def directory(self) -> Path:
        """The disk cache's directory (resolved from the environment when not given)."""
        return self._directory if self._directory is not None else cache_dir()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> Report | None:
        """The cached report for `key`, or None."""
        report = self.memory.get(key)
        if report is not None:
            self.stats.memory_hits += 1
            return report
        if self.disk:
            path = self._path(key)
            try:
                report = report_from_json(json.loads(path.read_text()))
                os.utime(path)  # recently used: trimming removes the least recently used
            except (OSError, ValueError, KeyError, TypeError):
                report = None
            if report is not None:
                self.memory[key] = report
                self.stats.disk_hits += 1
                return report
        return None

    def put(self, key: str, report: Report) -> None:
        """Remember `report`; a failure to write the disk level is ignored."""
        self.memory[key] = report
        if not self.disk:
            return
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename, so a concurrent reader never sees half a file.
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w") as out:
                    json.dump(report_to_json(report), out)
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            return
        if not self._trimmed:
            # Once per process that verifies: reports of programs no longer loaded
            # would otherwise pile up forever (bounded as the JIT's objects are).
            self._trimmed = True
            from ..runtime.native.object_cache import cache_limit_bytes, trim_files

            trim_files(self.directory, ".json", cache_limit_bytes(), keep=path)

    def lookup(self, key: str, compute: Callable[[], Report]) -> Report:
        """The cached report for `key`, else `compute()` (counted as a miss) stored."""
        report = self.get(key)
        if report is None:
            self.stats.misses += 1
            report = compute()
            self.put(key, report)
        return report

    def clear(self) -> None:
        """Forget the in-memory level and reset the counters (the disk level stays)."""
        self.memory.clear()
        self.stats = CacheStats()


#: The process-wide cache `pybpf.load` uses.
default_cache = VerifierCache()


def resolve_prog_type(program: ProgramSpec, obj: ObjectSpec, prog_type: str | None = None) -> str:
    """The PREVAIL program type name to verify with (the section's, unless given).

    From the section name only, never the object's path (PREVAIL's cilium
    path convention is for its sample-inventory comparison alone).
    """
    if prog_type is not None:
        return prog_type
    from ..platform.sections import prevail_program_type

    return prevail_program_type(program.section).program_type.name


def verify_cached(
    program: ProgramSpec,
    obj: ObjectSpec,
    prog_type: str | None = None,
    *,
    cache: VerifierCache | None = None,
) -> Report:
    """`verify_program`'s report, from `cache` (the process-wide one by default) when known."""
    kind = resolve_prog_type(program, obj, prog_type)
    store = cache if cache is not None else default_cache

    def compute() -> Report:
        from .program import verify_program  # the analysis is imported only on a miss

        return verify_program(program, obj, prog_type=kind)

    return store.lookup(cache_key(program, obj, kind), compute)
