"""Verifier time, peak memory and agreement over the ebpf-samples corpus.

Verifies every program of ../shared/ebpf-samples that
prevail-tests/elf_inventory.json lists, each in a child process of its own
with a per-program time limit, and prints the total time, the slowest ten
programs, the ten with the highest peak memory, and the comparison with
PREVAIL's verdicts: agreement, acceptances beyond PREVAIL (programs it
wrongly rejects that pybpf accepts), disagreements, verifier crashes and
time-outs, each counted apart.

    python benchmarks/bench_verifier.py [--shared DIR] [--limit S] [--jobs N]
                                        [--json OUT] [--record]
                                        [--write-known-failures FILE]
                                        [--write-beyond-prevail FILE]
    python benchmarks/bench_verifier.py --loops [--rounds N]

`--loops` times instead the loop programs of benchmarks/progs (a
1000-iteration compute loop, a 1024-byte scan of a map value, 32 x 32
nested loops, trial division: a loop of 1000 to 1255 rounds around a short
one): pybpf's load-path verification (`verify_program` with the
load options, the object parsed once) beside the kernel's load of the same
program (libbpf open and load: parsing, maps, the kernel's verifier and
JIT), each the median of `--rounds` runs, with the kernel's own
"verification time" from its statistics log and the ratio pybpf / kernel
load. The verdicts must agree (exit 1 otherwise); without bpf() only
pybpf's side is shown.

`--record` appends a dated section to docs/benchmarks.md; `--json` writes
every program's outcome, time, peak memory and first failure (what
tests/verifier_samples_known_failures.txt and
tests/verifier_samples_beyond_prevail.txt are regenerated from, see
tests/test_verifier_samples.py).

Peak memory is the child's peak resident set size (`ru_maxrss` from
`wait4`): the parent parses the object, then forks one child per program,
which verifies it and exits. This is the real peak of a process verifying
that program: everything resident counts (the interpreter, imports, the
parsed object, the verifier's states, native allocations, allocator
fragmentation), and a transient peak counts even if it is freed before
the end. `tracemalloc` would see only Python's own allocations after it is
started (no interpreter baseline, no native memory, no fragmentation), so
it under-reports what the machine must provide, and its bookkeeping slows
verification severalfold, which would spoil the times measured in the same
run. The child's RSS before it starts verifying (`base`: the inherited
pages it has mapped, mostly the interpreter, pybpf and the parsed object)
is printed too, so the verifier's own share is about `peak - base`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from pybpf.verifier.inventory import (
    CLASSES,
    Expected,
    beyond_prevail_lines,
    classify,
    known_failure_lines,
    sample_object,
    sample_programs,
    verify_sample,
)

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
MB = 1024 * 1024
#: `ru_maxrss` unit: kilobytes on Linux, bytes on macOS.
MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024


def _rss_now() -> float | None:
    """This process's resident set size in MB (Linux), None where unknown."""
    try:
        resident = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident * os.sysconf("SC_PAGE_SIZE") / MB


def _child(samples: Path, expected: Expected, limit: float, out: Path) -> None:
    """In the forked child: verify, write the result, exit without cleanup."""
    code = 0
    try:
        base = _rss_now()  # what the child holds before verifying: inherited pages it has mapped
        result = verify_sample(samples, expected, limit)
        out.write_text(json.dumps({**result, "base_mb": base}))
    except BaseException:  # noqa: BLE001 - the parent reports the missing result
        code = 1
    os._exit(code)


def _finish(expected: Expected, out: Path, status: int, usage) -> dict:
    try:
        result = json.loads(out.read_text())
    except (OSError, ValueError):
        # The child died before writing (a signal, e.g. the OOM killer): a crash.
        how = (
            f"signal {os.WTERMSIG(status)}"
            if os.WIFSIGNALED(status)
            else f"exit status {os.waitstatus_to_exitcode(status)}"
        )
        result = {
            "id": expected.id,
            "expected": expected.verdict,
            "outcome": "crash",
            "ok": None,
            "failure": f"verifying child process ended with {how}",
            "seconds": 0.0,
            "base_mb": None,
        }
        result["class"] = classify(expected, "crash")
        result["agrees"] = False
    result["peak_mb"] = usage.ru_maxrss * MAXRSS_UNIT / MB
    return result


def run(shared: Path, limit: float, jobs: int) -> list[dict]:
    """Verify every sample program, each in its own child; results in inventory order.

    The parent parses each object once (the children inherit it), and keeps
    up to `jobs` children running.
    """
    samples = shared / "ebpf-samples"
    programs = list(sample_programs(shared / "prevail-tests" / "elf_inventory.json", samples))
    results: list[dict | None] = [None] * len(programs)
    running: dict[int, tuple[int, Path]] = {}  # pid → (index, result file)

    def reap() -> None:
        pid, status, usage = os.wait4(-1, 0)
        index, out = running.pop(pid)
        results[index] = _finish(programs[index], out, status, usage)

    with tempfile.TemporaryDirectory(prefix="bench_verifier.") as tmp:
        for index, expected in enumerate(programs):
            while len(running) >= max(jobs, 1):
                reap()
            try:
                sample_object(samples, expected)  # parsed here, inherited by the child
            except Exception:  # noqa: BLE001 - the child meets it again and reports it
                pass
            out = Path(tmp) / f"{index}.json"
            pid = os.fork()
            if pid == 0:
                _child(samples, expected, limit, out)
            running[pid] = (index, out)
        while running:
            reap()
    return results  # type: ignore[return-value]


def counts(results: list[dict]) -> Counter[str]:
    """How many programs fall in each of `CLASSES`."""
    return Counter(r["class"] for r in results)


def summary(results: list[dict]) -> str:
    """Markdown: the comparison with PREVAIL, total time, the slowest ten, the largest ten."""
    total = sum(r["seconds"] for r in results)
    n = counts(results)
    disagree = [r for r in results if r["class"] == "disagree"]
    false_rejections = sum(1 for r in disagree if r["expected"] == "accept")
    missed = len(disagree) - false_rejections
    slowest = max(results, key=lambda r: r["seconds"])
    largest = max(results, key=lambda r: r["peak_mb"])
    lines = [
        f"Programs: {len(results)}; agreement with PREVAIL's verdicts: "
        f"**{n['agree']}/{len(results)}**; accepted where PREVAIL wrongly rejects "
        f"(beyond PREVAIL, not counted as agreement): {n['beyond_prevail']}; "
        f"disagreements: {n['disagree']} ({false_rejections} safe programs rejected, "
        f"{missed} unsafe or unloadable programs accepted); verifier crashes: "
        f"**{n['crash']}**; time limit exceeded: {n['timeout']}.",
        f"Total verification time (sum over programs): **{total:.1f} s**; slowest program "
        f"**{slowest['seconds']:.2f} s** (`{slowest['id']}`).",
        f"Peak memory (peak RSS of the process verifying one program): highest "
        f"**{largest['peak_mb']:.0f} MB** (`{largest['id']}`, of which {_base(largest)} "
        f"resident before verifying); median {_median([r['peak_mb'] for r in results]):.0f} MB.",
        "",
        "| slowest programs | s | peak MB | verdict |",
        "|---|---:|---:|---|",
    ]
    for r in sorted(results, key=lambda r: -r["seconds"])[:10]:
        lines.append(f"| `{r['id']}` | {r['seconds']:.2f} | {r['peak_mb']:.0f} | {_verdict(r)} |")
    lines += [
        "",
        "| highest peak memory | peak MB | base MB | s | verdict |",
        "|---|---:|---:|---:|---|",
    ]
    for r in sorted(results, key=lambda r: -r["peak_mb"])[:10]:
        lines.append(
            f"| `{r['id']}` | {r['peak_mb']:.0f} | {_base(r)} | {r['seconds']:.2f} "
            f"| {_verdict(r)} |"
        )
    problems = [r for r in results if r["class"] in ("crash", "timeout")]
    if problems:
        lines += ["", "Crashes and time-outs:", ""]
        lines += [f"- `{r['id']}`: {r['outcome']}: {r['failure']}" for r in problems]
    return "\n".join(lines)


def _verdict(r: dict) -> str:
    return {"accepted": "pass", "rejected": "fail"}.get(r["outcome"], r["outcome"])


def _base(r: dict) -> str:
    return "?" if r.get("base_mb") is None else f"{r['base_mb']:.0f}"


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0


#: The loop programs of `--loops` (object in benchmarks/progs, program name).
LOOP_PROGRAMS = ("compute_loop", "loop_scan", "loop_nested", "trial_division")
PROGS = ROOT / "benchmarks" / "progs"


def _median_time(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def _kernel_side(path: Path, name: str, rounds: int) -> dict | None:
    """The kernel's verdict, load time (median) and reported verification time, or None."""
    from pybpf.testing.kernel import kernel_available
    from pybpf.testing.verdicts import kernel_load

    if not kernel_available():
        return None
    stats = kernel_load(path, name, log_level=4)  # BPF_LOG_STATS: "verification time N usec"
    usec = next(
        (int(line.split()[2]) for line in stats.log_lines if line.startswith("verification time")),
        None,
    )
    seconds = _median_time(lambda: kernel_load(path, name, log_level=0), rounds)
    return {"accepted": stats.accepted, "seconds": seconds, "verifier_seconds": usec and usec / 1e6}


def loops(rounds: int, record: bool = False) -> int:
    """`--loops`: pybpf's and the kernel's time on the loop programs; 1 on a verdict
    difference. `record` appends the table to docs/benchmarks.md when every verdict
    agreed with the kernel's (and the kernel was there to ask)."""
    from pybpf.elf import load_object_spec
    from pybpf.verifier.program import verify_program

    rows = [
        "| program | verdict (kernel / pybpf) | kernel load ms | kernel verifier ms "
        "| pybpf ms | pybpf / kernel load |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        print(row)
    status = 0
    unchecked = False
    for name in LOOP_PROGRAMS:
        path = PROGS / f"{name}.o"
        spec = load_object_spec(path)
        program = spec.programs[name]
        accepted = verify_program(program, spec).ok
        ours = _median_time(lambda p=program, s=spec: verify_program(p, s), rounds)
        kernel = _kernel_side(path, name, rounds)
        verdict = "pass" if accepted else "fail"
        if kernel is None:
            rows.append(f"| `{name}` | ? / {verdict} | – | – | {ours * 1e3:.1f} | – |")
            print(rows[-1])
            unchecked = True
            continue
        if kernel["accepted"] != accepted:
            status = 1
        kernel_verdict = "pass" if kernel["accepted"] else "fail"
        verifier = kernel["verifier_seconds"]
        rows.append(
            f"| `{name}` | {kernel_verdict} / {verdict} | {kernel['seconds'] * 1e3:.1f} "
            f"| {'?' if verifier is None else f'{verifier * 1e3:.1f}'} | {ours * 1e3:.1f} "
            f"| {ours / kernel['seconds']:.1f}x |"
        )
        print(rows[-1])
    if status:
        print("pybpf's verdict differs from the kernel's: times not comparable", file=sys.stderr)
    elif record and unchecked:
        print("no kernel to compare verdicts with: nothing recorded", file=sys.stderr)
        return 1
    elif record:
        _record_loops(rows, rounds)
    return status


def _record_loops(rows: list[str], rounds: int) -> None:
    today = datetime.date.today().isoformat()
    section = (
        f"\n## Verifier on loops beside the kernel — {today}\n\n"
        f"Command: `python benchmarks/bench_verifier.py --loops --rounds {rounds} --record`\n\n"
        + "\n".join(rows)
        + f"\n\nMedians of {rounds} runs per side. pybpf: `verify_program` with the load "
        "path's options (loops as the kernel walks them, long ones widened), the object "
        "parsed once beforehand. Kernel: wall time of libbpf's open and load of the same "
        "object (parsing, maps, BTF, `BPF_PROG_LOAD`: verifier and JIT); the kernel's own "
        "verification time (`BPF_LOG_STATS`) beside it. Python "
        f"{platform.python_version()} on {platform.machine()} ({platform.platform()}); "
        "the machine is shared, so single runs vary.\n"
    )
    with DOC.open("a") as f:
        f.write(section)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--limit", type=float, default=60.0, help="seconds per program")
    parser.add_argument("--jobs", type=int, default=1, help="children running at once")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--record", action="store_true")
    parser.add_argument(
        "--write-known-failures", type=Path, help="write the disagreements (strict xfails) here"
    )
    parser.add_argument(
        "--write-beyond-prevail", type=Path, help="write the acceptances beyond PREVAIL here"
    )
    parser.add_argument("--loops", action="store_true", help="time the loop programs only")
    parser.add_argument("--rounds", type=int, default=5, help="runs per side with --loops")
    args = parser.parse_args(argv)
    if args.loops:
        return loops(args.rounds, args.record)
    start = time.perf_counter()
    results = run(args.shared, args.limit, args.jobs)
    wall = time.perf_counter() - start
    text = summary(results)
    print(text)
    print(f"\nWall time: {wall:.1f} s with {args.jobs} job(s).")
    assert set(counts(results)) <= set(CLASSES)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.write_known_failures:
        args.write_known_failures.write_text(known_failure_lines(results))
    if args.write_beyond_prevail:
        args.write_beyond_prevail.write_text(beyond_prevail_lines(results))
    if args.record:
        today = datetime.date.today().isoformat()
        section = (
            f"\n## Verifier over ebpf-samples — {today}\n\n"
            f"Command: `python benchmarks/bench_verifier.py --jobs {args.jobs} --record`\n\n"
            f"{text}\n\nEach program verified once, in a child process forked after its "
            f"object is parsed (parsing not counted in the time), limit {args.limit:g} s per "
            f"program; peak memory is the child's peak RSS (`ru_maxrss`), including what it "
            f"held before verifying (interpreter, imports, parsed object: the base column); "
            f"wall time "
            f"{wall:.1f} s with {args.jobs} job(s). Python {platform.python_version()} on "
            f"{platform.machine()} ({platform.platform()}); the machine is shared, so single "
            f"runs vary.\n"
        )
        with DOC.open("a") as f:
            f.write(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
