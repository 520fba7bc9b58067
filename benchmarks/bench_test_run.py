"""XDP hash-counter test run: the kernel's `bpf_prog_test_run` and pybpf's interpreter side by side.

The program is examples/xdp_counter.o (`xdp_count`: about 50 executed
instructions, a hash map lookup through a helper, two atomic adds) on
examples/packets/udp_dns.bin. Both sides report the mean ns per run that
their own test run measures (`duration`): the kernel's through libbpf's
`bpf_prog_test_run_opts` (the `pybpf.testing.kernel` seam; skipped when
the kernel or libbpf is unavailable), pybpf's through
`Program.test_run(repeat=N)` in the bounds-checked interpreter. The figure
printed is the median over the timed runs, after one warm-up run each.

    python benchmarks/bench_test_run.py [--repeat N] [--kernel-repeat N] [--runs R] [--record]

`--repeat` is pybpf's repeat count (default 200,000, a few seconds;
`--repeat 1000000` is the issue's figure); the kernel runs 1,000,000
repeats by default. `--record` appends a dated section to docs/benchmarks.md.

Before anything is timed, both sides run the program `CHECK_RUNS` times on
fresh objects and their return value, packet out and maps (`proto_count`,
`.bss`'s `packets_seen`) are compared with a model computed here from the
packet's bytes (`model`), and with each other: any difference prints what
differs and exits 1, and nothing is recorded.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import struct
import sys
from pathlib import Path
from typing import Any

import pybpf
from pybpf.testing import kernel

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
OBJECT = ROOT / "examples" / "xdp_counter.o"
PACKET = ROOT / "examples" / "packets" / "udp_dns.bin"
PROGRAM = "xdp_count"


CHECK_RUNS = 10
XDP_DROP, XDP_PASS = 1, 2
BLOCKED_PORT = 53  # xdp_counter.c's .rodata default


def model(data: bytes, runs: int) -> dict[str, Any]:
    """What `runs` runs of xdp_count on `data` must give, from the C source's logic."""
    counts: dict[int, int] = {}
    retval = XDP_PASS
    if len(data) >= 34 and data[12:14] == b"\x08\x00":  # Ethernet + a whole IPv4 header
        protocol = data[23]
        counts[protocol] = runs
        udp = 14 + (data[14] & 0x0F) * 4
        if protocol == 17 and udp + 8 <= len(data):
            if struct.unpack_from("!H", data, udp + 2)[0] == BLOCKED_PORT:
                retval = XDP_DROP
    return {"retval": retval, "data_out": data, "proto_count": counts, "packets_seen": runs}


def _counts(items: Any) -> dict[int, int]:
    return {struct.unpack("<I", key)[0]: struct.unpack("<Q", value)[0] for key, value in items}


def observe_pybpf(data: bytes, runs: int) -> dict[str, Any]:
    """pybpf's return value, packet out and maps after `runs` runs on a fresh object."""
    with pybpf.load(OBJECT, engine="interpreter") as obj:
        result = obj.programs[PROGRAM].test_run(data=data, repeat=runs)
        return {
            "retval": result.retval,
            "data_out": result.data_out,
            "proto_count": _counts(obj.maps["proto_count"].items()),
            "packets_seen": obj.bss.packets_seen,
        }


def observe_kernel(data: bytes, runs: int) -> dict[str, Any] | None:
    """The same from the kernel (None when it is not available)."""
    if not kernel.kernel_available():
        return None
    try:
        obj = kernel.KernelObject(OBJECT)
    except kernel.KernelError:
        return None
    try:
        result = obj.test_run(PROGRAM, data, repeat=runs)
        bss = next(name for name in obj.map_names() if name.endswith(".bss"))
        seen = obj.map(bss).lookup(bytes(4))
        return {
            "retval": result.retval,
            "data_out": result.data_out,
            "proto_count": _counts(obj.map("proto_count").items()),
            "packets_seen": struct.unpack("<Q", seen)[0] if seen else None,
        }
    finally:
        obj.close()


def check(data: bytes) -> list[str]:
    """Differences between the model, pybpf and the kernel (empty: all agree)."""
    expected = model(data, CHECK_RUNS)
    sides = {"pybpf": observe_pybpf(data, CHECK_RUNS), "kernel": observe_kernel(data, CHECK_RUNS)}
    problems = []
    for side, seen in sides.items():
        if seen is None:
            continue
        for what, value in expected.items():
            if seen[what] != value:
                problems.append(f"{side}: {what} is {seen[what]!r}, expected {value!r}")
    return problems


def pybpf_runs(data: bytes, repeat: int, runs: int) -> tuple[list[int], int]:
    """pybpf's ns per run for each timed test run, and the retval (in the interpreter:
    the JIT is the default engine, and this benchmark is the interpreter's)."""
    with pybpf.load(OBJECT, engine="interpreter") as obj:
        prog = obj.programs[PROGRAM]
        retval = prog.test_run(data=data, repeat=min(repeat, 1000)).retval  # warm-up
        samples = []
        for _ in range(runs):
            result = prog.test_run(data=data, repeat=repeat)
            samples.append(result.duration)
            retval = result.retval
    return samples, retval


def kernel_runs(data: bytes, repeat: int, runs: int) -> tuple[list[int], int] | None:
    """The kernel's ns per run for each timed test run and the retval, or None if unavailable."""
    if not kernel.kernel_available():
        return None
    try:
        obj = kernel.KernelObject(OBJECT)
    except kernel.KernelError as error:
        print(f"kernel column skipped: {error}", file=sys.stderr)
        return None
    try:
        retval = obj.test_run(PROGRAM, data, repeat=1000).retval  # warm-up
        samples = [obj.test_run(PROGRAM, data, repeat=repeat).duration for _ in range(runs)]
    finally:
        obj.close()
    return samples, retval


def record(command: str, results: dict, args: argparse.Namespace) -> None:
    """Append a dated section with the medians to docs/benchmarks.md."""
    date = datetime.date.today().isoformat()
    ours = results["pybpf"]
    theirs = results.get("kernel")
    k = "skipped" if theirs is None else f"{theirs:,.0f}"
    ratio = "—" if theirs is None else f"**{ours / theirs:,.0f}×**"
    lines = [
        f"\n## XDP hash-counter test run — {date}\n",
        f"Command: `{command}`\n",
        "| program | kernel test_run (JIT), ns per run | pybpf interpreter, ns per run "
        "| pybpf / kernel |",
        "|---|---:|---:|---:|",
        f"| `{OBJECT.name}` `{PROGRAM}` on `{PACKET.name}` | {k} | **{ours:,.0f}** | {ratio} |",
        "",
        f"Medians of {args.runs} timed test runs after one warm-up each: pybpf "
        f"`Program.test_run(repeat={args.repeat:,})`, kernel `bpf_prog_test_run_opts` with "
        f"repeat={args.kernel_repeat:,} (both report their own mean ns per run). About 50 "
        "executed instructions, one hash map lookup through the helper, two atomic adds. "
        f"Python {platform.python_version()} on {platform.machine()} ({platform.platform()}); "
        "the machine is shared, so single runs vary.",
    ]
    with DOC.open("a", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Measure both sides, print ns per run and the ratio; optionally record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200_000, help="pybpf repeat count")
    parser.add_argument("--kernel-repeat", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="timed test runs per side")
    parser.add_argument("--record", action="store_true", help="append to docs/benchmarks.md")
    args = parser.parse_args(argv)
    data = PACKET.read_bytes()
    problems = check(data)
    if problems:
        for problem in problems:
            print(f"check failed: {problem}", file=sys.stderr)
        print("nothing timed or recorded", file=sys.stderr)
        return 1
    results: dict[str, float] = {}
    samples, retval = pybpf_runs(data, args.repeat, args.runs)
    results["pybpf"] = statistics.median(samples)
    print(f"pybpf interpreter: {results['pybpf']:,.0f} ns per run (retval {retval}, {samples})")
    measured = kernel_runs(data, args.kernel_repeat, args.runs)
    if measured is None:
        print(f"kernel: skipped ({kernel.unavailable_reason() or 'unavailable'})")
    else:
        ksamples, kretval = measured
        results["kernel"] = statistics.median(ksamples)
        print(f"kernel test_run:   {results['kernel']:,.0f} ns per run (retval {kretval})")
        print(f"pybpf / kernel:    {results['pybpf'] / results['kernel']:,.0f}×")
        if kretval != retval:
            print(
                f"check failed: retvals differ (kernel {kretval}, pybpf {retval})", file=sys.stderr
            )
            return 1
    if args.record:
        command = "python benchmarks/bench_test_run.py " + " ".join(argv or sys.argv[1:])
        record(command.strip(), results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
