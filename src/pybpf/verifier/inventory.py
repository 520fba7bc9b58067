"""PREVAIL's verdicts on the ebpf-samples corpus (prevail-tests/elf_inventory.json).

The inventory lists, per project and object, each section's programs as
`{function, reject_load}`, plus `test_overrides` per section (or per
program under `programs`): `expected_failure` (PREVAIL rejects a program
that is safe), `reject` (the program is unsafe) and `reject_load` (the
loader refuses it). Every other program PREVAIL accepts.

`sample_programs(inventory, samples_dir)` turns that into one `Expected`
per program found on disk, with PREVAIL's verdict: accept, reject, or
"prevail_rejects" (PREVAIL's false positives: rejecting them agrees with
PREVAIL; accepting them is an acceptance beyond PREVAIL, counted apart).

`verify_sample` gives each program one of five outcomes (`classify`):
agreement, acceptance beyond PREVAIL, disagreement, verifier crash, time
limit exceeded. Only the first is counted as agreement; a crash is never
a verdict, so it is never counted as a rejection (nor as a success).
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..elf import load_object_spec
from ..errors import PybpfError
from .options import AnalysisOptions
from .program import verify_program

__all__ = [
    "CLASSES",
    "Expected",
    "beyond_prevail_lines",
    "classify",
    "known_failure_lines",
    "sample_object",
    "sample_programs",
    "verdict_agrees",
    "verify_sample",
]

#: What `classify` answers, in report order.
CLASSES = ("agree", "beyond_prevail", "disagree", "crash", "timeout")


@dataclass(frozen=True, slots=True)
class Expected:
    """One sample program and PREVAIL's verdict on it."""

    project: str
    object: str
    section: str
    function: str
    #: "accept", "reject" (unsafe, or the loader refuses it) or
    #: "prevail_rejects" (PREVAIL's false positive: either verdict is fine).
    verdict: str
    reason: str = ""

    @property
    def path(self) -> str:
        """The object's path relative to the samples directory."""
        return f"{self.project}/{self.object}"

    @property
    def id(self) -> str:
        """A stable name: `project/object:section:function`."""
        return f"{self.path}:{self.section}:{self.function}"

    @property
    def prevail_accepts(self) -> bool:
        """PREVAIL's own verdict."""
        return self.verdict == "accept"


def _override(entry: dict, section: str, function: str) -> dict | None:
    overrides = entry.get("test_overrides", {})
    by_program = overrides.get("programs", {}).get(section, {}).get(function)
    return by_program or overrides.get("sections", {}).get(section)


def sample_programs(inventory: Path, samples_dir: Path) -> Iterator[Expected]:
    """Every program of the inventory whose object is in `samples_dir`, in inventory order."""
    data = json.loads(Path(inventory).read_text())
    for project, pdata in data["projects"].items():
        for obj, entry in pdata["objects"].items():
            if not (Path(samples_dir) / project / obj).exists():
                continue
            for section, programs in entry["sections"].items():
                for program in programs:
                    function = program["function"]
                    override = _override(entry, section, function)
                    status = override.get("status") if override else None
                    if program.get("reject_load"):
                        verdict, reason = "reject", program.get("reject_load_reason", "")
                    elif status in ("reject", "reject_load"):
                        verdict, reason = "reject", status
                    elif status == "expected_failure":
                        verdict = "prevail_rejects"
                        reason = f"{override.get('kind', '')}: {override.get('reason', '')}"
                    else:
                        verdict, reason = "accept", ""
                    yield Expected(project, obj, section, function, verdict, reason)


def verdict_agrees(expected: Expected, ok: bool) -> bool:
    """Whether pybpf's verdict (`ok`: accepted) is PREVAIL's.

    A program PREVAIL wrongly rejects agrees only when pybpf rejects it too;
    accepting it is an acceptance beyond PREVAIL (`classify`), not agreement.
    """
    if expected.verdict == "accept":
        return ok
    return not ok


def classify(expected: Expected, outcome: str) -> str:
    """One of `CLASSES` for pybpf's `outcome` ("accepted", "rejected", "crash", "timeout")."""
    if outcome in ("crash", "timeout"):
        return outcome
    ok = outcome == "accepted"
    if expected.verdict == "prevail_rejects" and ok:
        return "beyond_prevail"
    return "agree" if verdict_agrees(expected, ok) else "disagree"


class _Timeout(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Timeout


_OBJECTS: dict[str, object] = {}


def sample_object(samples: Path, expected: Expected) -> object:
    """The parsed object of `expected` (cached: only the most recent object is kept).

    Raises what the ELF loader raises for an object it refuses.
    """
    path = str(Path(samples) / expected.path)
    spec = _OBJECTS.get(path)
    if spec is None:
        _OBJECTS.clear()  # programs come object by object: keep only the current one
        # PREVAIL's verdicts are its Linux platform's: read every sample as Linux, the
        # one eBPF for Windows object among them (invalid/timeout-29db…) included.
        spec = _OBJECTS[path] = load_object_spec(path, "linux")
    return spec


def verify_sample(samples: Path, expected: Expected, limit: float) -> dict:
    """Verify one sample program within `limit` seconds (SIGALRM; main thread only).

    A dict: `id`, `expected`, `outcome` ("accepted", "rejected", "crash" or
    "timeout"), `ok` (the verdict: True or False, None for a crash or a
    time-out), `failure` (the first failure, the crash, or why the loader
    refused the object), `seconds` (verification only), `class` (`classify`)
    and `agrees` (True only for agreement with PREVAIL).

    A loader's refusal (a `PybpfError` while reading the object, or the
    program missing from it) is a rejection, as `pybpf.load` would refuse
    it. Any exception of the verifier itself, and any other exception, is a
    crash.
    """
    out: dict = {"id": expected.id, "expected": expected.verdict}
    start = time.perf_counter()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        try:
            spec = sample_object(samples, expected)
            program = spec.programs.get(expected.function)  # type: ignore[attr-defined]
        except PybpfError as e:  # the loader refuses the object: a rejection
            out.update(outcome="rejected", failure=f"{type(e).__name__}: {e}")
        else:
            if program is None:
                out.update(outcome="rejected", failure=f"program {expected.function} not found")
            else:
                start = time.perf_counter()  # the object's parsing is not counted
                # PREVAIL's own defaults: no termination check, context size only.
                options = AnalysisOptions(check_termination=False, linux_ctx_fields=False)
                report = verify_program(program, spec, options=options)  # type: ignore[arg-type]
                first = report.first_failure
                out.update(
                    outcome="accepted" if report.ok else "rejected",
                    failure=str(first) if first else None,
                )
    except _Timeout:
        out.update(outcome="timeout", failure=f"time limit ({limit:g} s) exceeded")
    except Exception as e:  # noqa: BLE001 - a crash of the verifier is a result to report
        out.update(outcome="crash", failure=f"{type(e).__name__}: {e}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    out["seconds"] = time.perf_counter() - start
    out["ok"] = {"accepted": True, "rejected": False}.get(out["outcome"])
    out["class"] = classify(expected, out["outcome"])
    out["agrees"] = out["class"] == "agree"
    return out


def _reason(result: dict) -> str:
    failure = result.get("failure") or "accepted"
    if result.get("class") == "crash":
        return "verifier crash: " + failure
    if "'memset'" in failure or "'memcpy'" in failure:
        return (
            "calls the compiler builtin memset/memcpy: PREVAIL models it as a builtin, "
            "pybpf's loader cannot link it (" + failure + ")"
        )
    if "not supported by pybpf" in failure:
        return "helper without a prototype (socket pointers, ctx-or-null): " + failure
    if result.get("expected") == "reject":
        return "unsafe program accepted: " + failure
    return "rejected where PREVAIL accepts: " + failure


def known_failure_lines(results: list[dict]) -> str:
    """The known-failures file: one `id  reason` line per disagreement or crash.

    Time-outs are left out (they depend on the machine; the test fails on
    them). Acceptances beyond PREVAIL are not failures: `beyond_prevail_lines`.
    """
    lines = [
        "# Sample programs whose verdict disagrees with PREVAIL's (elf_inventory.json),",
        "# and verifier crashes.",
        "# Regenerate: python benchmarks/bench_verifier.py --jobs 2 \\",
        "#     --write-known-failures tests/verifier_samples_known_failures.txt",
    ]
    for r in results:
        if r.get("class") in ("disagree", "crash"):
            lines.append(f"{r['id']}  {_reason(r)}")
    return "\n".join(lines) + "\n"


def beyond_prevail_lines(results: list[dict]) -> str:
    """The list of programs PREVAIL wrongly rejects and pybpf accepts, one id a line."""
    lines = [
        "# Sample programs PREVAIL rejects although they are safe (expected_failure in",
        "# elf_inventory.json) and pybpf accepts: acceptances beyond PREVAIL, not agreement.",
        "# Regenerate: python benchmarks/bench_verifier.py --jobs 2 \\",
        "#     --write-beyond-prevail tests/verifier_samples_beyond_prevail.txt",
    ]
    lines += [r["id"] for r in results if r.get("class") == "beyond_prevail"]
    return "\n".join(lines) + "\n"
