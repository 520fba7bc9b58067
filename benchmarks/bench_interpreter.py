"""Interpreter speed on a tight loop: median nanoseconds per executed instruction.

The program is a counting loop of ALU operations closed by a conditional
jump (the shape of a checksum or hash loop), run for about a million
executed instructions per repeat. The figure printed is the median over the
repeats of wall time divided by the interpreter's own `executed` count.

Before anything is timed, each program's r0 and executed-instruction count
are checked against a model computed here in plain Python, independently of
the engine (`expected_*`): a mismatch prints what differs and exits 1, and
`--record` writes only after every check passed.

    python benchmarks/bench_interpreter.py [--iterations N] [--repeats R] [--record]

`--record` appends a dated section to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time
from pathlib import Path

from pybpf.engine.interpreter import Interpreter
from pybpf.isa.instruction import Instruction
from pybpf.runtime.helpers import conformance_helpers

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def tight_loop(iterations: int) -> list[Instruction]:
    """r0 = 0; r1 = N; do { r0 += r1; r0 ^= 0x5a; r1 -= 1 } while (r1 != 0); exit."""
    return [
        Instruction(0xB7, dst=0, imm=0),  # mov r0, 0
        Instruction(0xB7, dst=1, imm=iterations),  # mov r1, N
        Instruction(0x0F, dst=0, src=1),  # add r0, r1
        Instruction(0xA7, dst=0, imm=0x5A),  # xor r0, 0x5a
        Instruction(0x17, dst=1, imm=1),  # sub r1, 1
        Instruction(0x55, dst=1, off=-4, imm=0),  # jne r1, 0, -4
        Instruction(0x95),  # exit
    ]


def byte_scan(length: int) -> list[Instruction]:
    """Sum the bytes of the input (r1, r2 = length), xoring in 7 after each small byte.

    A second, less friendly shape: a bounds-checked load per iteration and a
    loop of three blocks, so every iteration goes through the dispatcher.
    """
    return [
        Instruction(0xB7, dst=0, imm=0),  # mov r0, 0
        Instruction(0xB7, dst=3, imm=0),  # mov r3, 0
        Instruction(0xBF, dst=4, src=1),  # loop: mov r4, r1
        Instruction(0x0F, dst=4, src=3),  # add r4, r3
        Instruction(0x71, dst=5, src=4),  # ldxb r5, [r4]
        Instruction(0x0F, dst=0, src=5),  # add r0, r5
        Instruction(0x25, dst=5, off=1, imm=100),  # jgt r5, 100, +1
        Instruction(0xA7, dst=0, imm=7),  # xor r0, 7
        Instruction(0x07, dst=3, imm=1),  # add r3, 1
        Instruction(0xAD, dst=3, src=2, off=-8),  # jlt r3, r2, loop
        Instruction(0x95),  # exit
    ]


M64 = (1 << 64) - 1


def expected_tight_loop(iterations: int) -> tuple[int, int]:
    """(r0, executed instructions) of `tight_loop`, computed without any engine."""
    r0 = 0
    for r1 in range(iterations, 0, -1):
        r0 = ((r0 + r1) & M64) ^ 0x5A
    return r0, 2 + 4 * iterations + 1


def expected_byte_scan(data: bytes) -> tuple[int, int]:
    """(r0, executed instructions) of `byte_scan` over `data`, without any engine."""
    r0, executed = 0, 3  # two movs before the loop, exit after it
    for byte in data:
        r0 = (r0 + byte) & M64
        executed += 7
        if byte <= 100:  # jgt not taken: the xor runs
            r0 ^= 7
            executed += 1
    return r0, executed


class CheckFailed(Exception):
    """The engine's result differs from the model: nothing may be timed or recorded."""


def measure(
    insns: list[Instruction],
    repeats: int,
    expected: tuple[int, int],
    data: bytes | None = None,
) -> tuple[float, int]:
    """Median ns per executed instruction, and the instructions executed per run.

    The warm-up run is checked against `expected` (r0, executed) first.
    """
    vm = Interpreter(insns, helpers=conformance_helpers(), budget=None)
    args = (0, 0)
    if data is not None:
        args = (vm.memory.allocate_from(data, "input", writable=False).start, len(data))
    r0 = vm.run(*args)  # warm up: the first run allocates the stack
    if (r0, vm.executed) != expected:
        raise CheckFailed(
            f"r0 {r0:#x} after {vm.executed} instructions, expected {expected[0]:#x} after "
            f"{expected[1]}"
        )
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        vm.run(*args)
        elapsed = time.perf_counter_ns() - start
        samples.append(elapsed / vm.executed)
    return statistics.median(samples), vm.executed


def record(command: str, rows: list[tuple[str, float, int]], repeats: int) -> None:
    """Append a dated section with the results to docs/benchmarks.md."""
    date = datetime.date.today().isoformat()
    if not DOC.exists():
        DOC.parent.mkdir(parents=True, exist_ok=True)
        DOC.write_text("# Benchmarks\n")
    lines = [f"\n## Interpreter — {date}\n", f"Command: `{command}`\n"]
    lines.append("| program | executed instructions per run | median ns per instruction |")
    lines.append("|---|---:|---:|")
    lines += [f"| {name} | {executed:,} | **{median:.1f}** |" for name, median, executed in rows]
    lines.append(
        f"\nMedian of {repeats} timed runs after one warm-up run; Python "
        f"{platform.python_version()} on {platform.machine()} ({platform.platform()}). "
        "Goal (issue 16): at most 25 ns per executed instruction on the tight loop "
        "(uBPF's C interpreter: about 4.5 ns).\n"
    )
    section = "\n".join(lines)
    with DOC.open("a") as out:
        out.write(section)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the median."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=250_000, help="loop iterations")
    parser.add_argument("--repeats", type=int, default=11, help="timed runs")
    parser.add_argument("--record", action="store_true", help="append to docs/benchmarks.md")
    args = parser.parse_args(argv)
    rows = []
    scanned = bytes(range(256)) * 500
    programs = (
        (
            "tight loop (add, xor, sub, jne)",
            tight_loop(args.iterations),
            None,
            expected_tight_loop(args.iterations),
        ),
        (
            "byte scan (ldxb, branches, 3 blocks)",
            byte_scan(0),
            scanned,
            expected_byte_scan(scanned),
        ),
    )
    for name, insns, data, expected in programs:
        try:
            median, executed = measure(insns, args.repeats, expected, data)
        except CheckFailed as error:
            print(f"{name}: check failed: {error}; nothing recorded", file=sys.stderr)
            return 1
        rows.append((name, median, executed))
        print(
            f"{name}: {median:.1f} ns per executed instruction "
            f"(median of {args.repeats}, {executed:,} instructions per run)"
        )
    if args.record:
        given = argv if argv is not None else sys.argv[1:]
        record(" ".join(["python benchmarks/bench_interpreter.py", *given]), rows, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
