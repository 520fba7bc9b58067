"""A map from another process beside the same map in-process: lookups and updates per call.

One hash map of u32 → u64 (1,024 entries, 1,000 keys present) lives in
its shared region (`runtime/maps/shared.py`). The parent times
`Map.lookup` / `Map.update` on it in-process; a child process, given the
region's descriptor, maps it (`attach_map`) and times the same calls on
the same keys. The two take turns, round by round, so both see the same
machine load; each figure is the median over the rounds of (wall time of
N calls) / N. A second child maps the region read-only and times
lookups. Issue 15's goal: a lookup from another process costs no more
than twice an in-process one.

    python benchmarks/bench_shared_maps.py [--calls N] [--rounds R] [--record]

`--record` appends a dated section to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

from pybpf.elf.map_types import MapType
from pybpf.elf.specs import MapSpec
from pybpf.runtime.maps import attach_map, create_map
from pybpf.runtime.memory import Memory

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
MAX_ENTRIES = 1024
KEYS = 1000


def loops(m, calls: int):
    """(lookup loop, update loop) over the benchmark's keys on map `m`."""
    keys = [struct.pack("<I", i % KEYS) for i in range(calls)]
    value = struct.pack("<Q", 7)
    lookup, update = m.lookup, m.update

    def lookups() -> None:
        for k in keys:
            lookup(k)

    def updates() -> None:
        for k in keys:
            update(k, value)

    return lookups, updates


def per_call(loop, calls: int) -> float:
    """ns per call of one run of `loop`."""
    start = time.perf_counter_ns()
    loop()
    return (time.perf_counter_ns() - start) / calls


def child(fd: int, calls: int, writable: bool) -> None:
    """The other process: map the region, then time a loop each time the parent asks."""
    m = attach_map(fd, Memory(), "bench", writable=writable)
    lookups, updates = loops(m, calls)
    lookups()  # warm up
    for line in sys.stdin:
        loop = updates if line.strip() == "update" else lookups
        print(per_call(loop, calls), flush=True)


def measure(calls: int, rounds: int) -> dict[str, list[float]]:
    """Per-call times of every side, one sample per round each."""
    m = create_map(MapSpec("bench", MapType.HASH, 4, 8, MAX_ENTRIES), Memory())
    for i in range(KEYS):
        m.update(struct.pack("<I", i), struct.pack("<Q", i))
    lookups, updates = loops(m, calls)
    lookups()

    def spawn(writable: bool) -> subprocess.Popen:
        fd = os.dup(m.shared.fd)
        args = [sys.executable, __file__, "--child", str(fd), "--calls", str(calls)]
        if not writable:
            args.append("--read-only")
        process = subprocess.Popen(
            args, pass_fds=[fd], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        os.close(fd)
        return process

    writer, reader = spawn(True), spawn(False)

    def ask(process: subprocess.Popen, what: str) -> float:
        process.stdin.write(what + "\n")
        process.stdin.flush()
        return float(process.stdout.readline())

    samples: dict[str, list[float]] = {
        key: []
        for key in (
            "lookup in-process",
            "lookup other process",
            "lookup other process, read-only",
            "update in-process",
            "update other process",
        )
    }
    try:
        for _ in range(rounds):
            samples["lookup in-process"].append(per_call(lookups, calls))
            samples["lookup other process"].append(ask(writer, "lookup"))
            samples["lookup other process, read-only"].append(ask(reader, "lookup"))
            samples["update in-process"].append(per_call(updates, calls))
            samples["update other process"].append(ask(writer, "update"))
    finally:
        for process in (writer, reader):
            process.stdin.close()
            process.wait(timeout=30)
    return samples


def table(samples: dict[str, list[float]]) -> list[tuple[str, float, float]]:
    """(side, median ns per call, ratio to the same operation in-process)."""
    medians = {side: statistics.median(values) for side, values in samples.items()}
    out = []
    for side, median in medians.items():
        base = medians[side.split()[0] + " in-process"]
        out.append((side, median, median / base))
    return out


def record(command: str, rows: list, calls: int, rounds: int) -> None:
    """Append the figures to docs/benchmarks.md."""
    lines = [
        "",
        f"## Shared maps: another process beside in-process ({datetime.date.today()})",
        "",
        f"`{command}` — {calls:,} calls per run, median of {rounds} alternating rounds, "
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs.",
        "",
        "| side | ns per call | × in-process |",
        "|---|---:|---:|",
        *(f"| {side} | {ns:.0f} | {ratio:.2f} |" for side, ns, ratio in rows),
        "",
    ]
    with DOC.open("a") as out:
        out.write("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with --child, be its other process)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000, help="calls per timed run")
    parser.add_argument("--rounds", type=int, default=9, help="alternating rounds")
    parser.add_argument("--record", action="store_true", help="append to docs/benchmarks.md")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--read-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        child(args.child, args.calls, not args.read_only)
        return 0
    rows = table(measure(args.calls, args.rounds))
    for side, ns, ratio in rows:
        print(f"{side:34} {ns:8.0f} ns  x{ratio:.2f}")
    if args.record:
        command = "python benchmarks/bench_shared_maps.py " + " ".join(argv or sys.argv[1:])
        record(command.replace(" --record", ""), rows, args.calls, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
