"""Verifier time and agreement over the ebpf-samples corpus.

Verifies every program of ../shared/ebpf-samples that
prevail-tests/elf_inventory.json lists, one at a time with a per-program
time limit, and prints the total time, the slowest ten programs and the
agreement with PREVAIL's verdicts.

    python benchmarks/bench_verifier.py [--shared DIR] [--limit S] [--jobs N]
                                        [--json OUT] [--record]

`--record` appends a dated section to docs/benchmarks.md; `--json` writes
every program's verdict, time and first failure (what
tests/verifier_sample_known_failures.txt is regenerated from, see
tests/test_verifier_samples.py).
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import platform
import sys
import time
from pathlib import Path

from pybpf.verifier.inventory import (
    Expected,
    known_failure_lines,
    sample_programs,
    verify_sample,
)

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"


def _work(args: tuple[Path, Expected, float]) -> dict:
    return verify_sample(*args)


def run(shared: Path, limit: float, jobs: int) -> list[dict]:
    """Verify every sample program; results in inventory order."""
    samples = shared / "ebpf-samples"
    programs = list(sample_programs(shared / "prevail-tests" / "elf_inventory.json", samples))
    work = [(samples, e, limit) for e in programs]
    if jobs <= 1:
        return [_work(w) for w in work]
    # Programs of one object go to one worker in a row (chunks), so it parses the object once.
    with multiprocessing.get_context("fork").Pool(jobs, maxtasksperchild=200) as pool:
        return pool.map(_work, work, chunksize=4)


def summary(results: list[dict]) -> str:
    """Markdown: agreement, total time, the slowest ten."""
    total = sum(r["seconds"] for r in results)
    agree = sum(1 for r in results if r.get("agrees"))
    timeouts = [r for r in results if r["ok"] is None]
    lines = [
        f"Programs: {len(results)}; agreement with PREVAIL's verdicts: **{agree}/{len(results)}**"
        f"; time limit exceeded: {len(timeouts)}.",
        f"Total verification time (sum over programs): **{total:.1f} s**.",
        "",
        "| slowest programs | s | verdict |",
        "|---|---:|---|",
    ]
    for r in sorted(results, key=lambda r: -r["seconds"])[:10]:
        verdict = {True: "pass", False: "fail", None: "timeout"}[r["ok"]]
        lines.append(f"| `{r['id']}` | {r['seconds']:.2f} | {verdict} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--limit", type=float, default=60.0, help="seconds per program")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--record", action="store_true")
    parser.add_argument(
        "--write-known-failures", type=Path, help="write the disagreements (strict xfails) here"
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    results = run(args.shared, args.limit, args.jobs)
    wall = time.perf_counter() - start
    text = summary(results)
    print(text)
    print(f"\nWall time: {wall:.1f} s with {args.jobs} job(s).")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.write_known_failures:
        args.write_known_failures.write_text(known_failure_lines(results))
    if args.record:
        today = datetime.date.today().isoformat()
        section = (
            f"\n## Verifier over ebpf-samples — {today}\n\n"
            f"Command: `python benchmarks/bench_verifier.py --jobs {args.jobs} --record`\n\n"
            f"{text}\n\nEach program verified once after its object is parsed (parsing not "
            f"counted), limit {args.limit:g} s per program; wall time {wall:.1f} s with "
            f"{args.jobs} job(s). Python {platform.python_version()} on {platform.machine()} "
            f"({platform.platform()}); the machine is shared, so single runs vary.\n"
        )
        with DOC.open("a") as f:
            f.write(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
