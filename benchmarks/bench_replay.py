"""Capture replay through an XDP firewall: pybpf's native replay beside the kernel's test run in a loop.

The program is examples/xdp_firewall.o (`xdp_firewall`: Ethernet and IPv4
header checks, an LPM trie lookup on the source address, an atomic
per-verdict counter) with four /16 rules, two dropping; the capture holds
IPv4/UDP frames of 64, 96 and 128 bytes from random sources in
10.0.0.0/14, written to a temporary pcap file and read once before timing
(so it is in the page cache).

* pybpf: `replay_xdp` (`pybpf xdp replay` without --out): the frame loop in
  native code, the program in the JIT. Frames per second over the whole
  file, median of the timed runs after one warm-up.
* kernel: what a user gets by looping `bpf_prog_test_run_opts` (libbpf,
  through ctypes, buffers allocated once) over the same frames, one
  syscall per frame: frames per second over the first `--kernel-frames`
  frames, median of the timed runs. Skipped without root and libbpf.

Both sides' verdict counts over the kernel's frames are compared.

    python benchmarks/bench_replay.py [--frames N] [--kernel-frames N] [--runs R] [--record]
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import platform
import random
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

import pybpf
from pybpf.hooks.captures import Capture
from pybpf.hooks.replay import ACTIONS, replay_xdp
from pybpf.testing import kernel

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
OBJECT = ROOT / "examples" / "xdp_firewall.o"
PROGRAM = "xdp_firewall"
RULES = [(bytes([10, p, 0, 0]), 16, 1 if p % 2 else 2) for p in range(4)]


def rule_entries() -> list[tuple[bytes, bytes]]:
    """(key, value) of the LPM rules: /16 prefixes, odd ones drop."""
    return [
        (struct.pack("<I4s", length, prefix), struct.pack("<I", action))
        for prefix, length, action in RULES
    ]


def write_capture(path: Path, frames: int, seed: int = 1) -> None:
    """`frames` IPv4/UDP frames of 64-128 bytes, 4096 distinct ones repeated."""
    rnd = random.Random(seed)
    records = []
    for i in range(4096):
        size = rnd.choice([64, 96, 128])
        src = bytes([10, rnd.randrange(4), rnd.randrange(256), rnd.randrange(256)])
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, size - 14, i, 0, 64, 17, 0, src, bytes([10, 0, 0, 1])
        )
        udp = struct.pack("!HHHH", 1024 + i % 1000, 53, size - 34, 0)
        frame = bytes(6) + bytes([2, 0, 0, 0, 0, 1]) + b"\x08\x00" + ip + udp
        frame += bytes(size - len(frame))
        records.append(struct.pack("<IIII", i // 1000, i % 1000, size, size) + frame)
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 0x40000, 1))
        for n in range(frames):
            f.write(records[n % len(records)])


def pybpf_runs(path: Path, runs: int) -> tuple[list[float], dict[str, int], int]:
    """Frames per second of each timed replay, the verdict counts, and the frame count."""
    with pybpf.load(OBJECT, engine="jit") as obj:
        for key, value in rule_entries():
            obj.maps["rules"][key] = value
        prog = obj.programs[PROGRAM]
        replay_xdp(prog, path)  # warm-up: compiles, and the optimised tier replaces the first
        time.sleep(0.5)
        replay_xdp(prog, path)
        rates, counts, frames = [], {}, 0
        for _ in range(runs):
            started = time.perf_counter()
            result = replay_xdp(prog, path)
            rates.append(result.frames / (time.perf_counter() - started))
            counts = {a: c.frames for a, c in result.actions.items() if c.frames}
            frames = result.frames
    return rates, counts, frames


def kernel_runs(path: Path, frames: int, runs: int) -> tuple[list[float], dict[str, int]] | None:
    """Frames per second of each timed kernel loop over the first `frames` frames, and the
    verdict counts; None when the kernel or libbpf is unavailable."""
    if not kernel.kernel_available():
        return None
    with Capture(path) as capture:
        data = []
        for frame in capture.frames():
            data.append(frame)
            if len(data) == frames:
                break
    obj = kernel.KernelObject(OBJECT)
    try:
        rules = obj.map("rules")
        for key, value in rule_entries():
            rules.update(key, value)
        fd = obj.program(PROGRAM)
        lib = kernel._lib()
        out = ctypes.create_string_buffer(4096)
        opts = kernel._TestRunOpts(sz=ctypes.sizeof(kernel._TestRunOpts))
        opts.data_out = ctypes.cast(out, ctypes.c_void_p)
        opts.repeat = 1
        buffers = [ctypes.create_string_buffer(f, len(f)) for f in data]
        rates, counts = [], {}
        for _ in range(runs + 1):  # the first is the warm-up
            tally = [0] * len(ACTIONS)
            started = time.perf_counter()
            for buf in buffers:
                opts.data_in = ctypes.cast(buf, ctypes.c_void_p)
                opts.data_size_in = len(buf)
                opts.data_size_out = 4096
                if lib.bpf_prog_test_run_opts(fd, ctypes.byref(opts)):
                    raise OSError(ctypes.get_errno(), "bpf_prog_test_run_opts")
                tally[opts.retval if opts.retval < len(ACTIONS) else 0] += 1
            rates.append(len(buffers) / (time.perf_counter() - started))
            counts = {ACTIONS[i]: n for i, n in enumerate(tally) if n}
        return rates[1:], counts
    finally:
        obj.close()


def record(command: str, ours: float, theirs: float | None, args: argparse.Namespace) -> None:
    """Append a dated section with the medians to docs/benchmarks.md."""
    date = datetime.date.today().isoformat()
    k = "skipped" if theirs is None else f"{theirs:,.0f}"
    ratio = "—" if theirs is None else f"**{ours / theirs:,.1f}×**"
    lines = [
        f"\n## XDP capture replay — {date}\n",
        f"Command: `{command}`\n",
        "| program | kernel test_run loop, frames/s | pybpf replay, frames/s | pybpf / kernel |",
        "|---|---:|---:|---:|",
        f"| `{OBJECT.name}` `{PROGRAM}`, 64-128-byte IPv4/UDP | {k} | **{ours:,.0f}** | {ratio} |",
        "",
        f"Medians of {args.runs} timed runs after warm-up: pybpf `replay_xdp` over "
        f"{args.frames:,} frames (the capture in the page cache, the JIT's optimised tier), "
        f"the kernel's `bpf_prog_test_run_opts` once per frame over the first "
        f"{args.kernel_frames:,} frames from Python through libbpf (buffers allocated once). "
        f"Python {platform.python_version()} on {platform.machine()} ({platform.platform()}); "
        "one core each; the machine is shared, so single runs vary.",
    ]
    with DOC.open("a", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Measure both sides, print frames per second and the ratio; optionally record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2_000_000)
    parser.add_argument("--kernel-frames", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--record", action="store_true", help="append to docs/benchmarks.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "firewall.pcap"
        write_capture(path, args.frames)
        path.read_bytes()  # into the page cache
        rates, counts, frames = pybpf_runs(path, args.runs)
        ours = statistics.median(rates)
        print(f"pybpf replay:     {ours:,.0f} frames/s over {frames:,} frames ({counts})")
        measured = kernel_runs(path, args.kernel_frames, args.runs)
        theirs = None
        if measured is None:
            print(f"kernel: skipped ({kernel.unavailable_reason() or 'unavailable'})")
        else:
            krates, kcounts = measured
            theirs = statistics.median(krates)
            print(
                f"kernel test_run:  {theirs:,.0f} frames/s over {args.kernel_frames:,} ({kcounts})"
            )
            print(f"pybpf / kernel:   {ours / theirs:,.1f}×")
            with pybpf.load(OBJECT, engine="jit") as obj:
                for key, value in rule_entries():
                    obj.maps["rules"][key] = value
                head = Path(tmp) / "head.pcap"
                write_capture(head, args.kernel_frames)
                mine = replay_xdp(obj.programs[PROGRAM], head)
                same = {a: c.frames for a, c in mine.actions.items() if c.frames}
            if same != kcounts:
                print(f"warning: verdicts differ (kernel {kcounts}, pybpf {same})", file=sys.stderr)
                return 1
    if args.record:
        command = "python benchmarks/bench_replay.py " + " ".join(argv or sys.argv[1:])
        record(command.strip(), ours, theirs, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
