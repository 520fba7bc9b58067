"""Start-up: wall time of fresh `pybpf` processes, beside a bare Python's.

Each command runs as a new process, as a user types it: `python -c pass`
(the floor no command can go below), `import pybpf`, `pybpf --help`,
`pybpf --version`, and the README's demo, `pybpf prog run
examples/xdp_counter.o --data-in examples/packets/udp_dns.bin` and `pybpf
disasm examples/xdp_counter.o --section xdp`. `pybpf` is `python -m pybpf` of this
tree's `src` (PYTHONPATH), so what is measured is this checkout whatever
is installed. Every command runs `--warmup` times first, so the JIT's and
the verifier's disk caches and the bytecode are warm (a user's second run), then `--runs`
times, round-robin so that a busy moment of the machine spreads over all
commands; the figure is the median wall time, printed with the CPU time
(user + system) of the same runs and the goal beside.

    python benchmarks/bench_startup.py [--runs N] [--warmup W] [--record]

Before anything is timed, each command runs once and must exit 0 and
print what it should (`checks`): the help lists every command, the
version is this tree's, the demo's test run returns XDP_DROP and shows
the maps a model of xdp_count computed from the packet's bytes predicts,
and the disassembly names the program. A failed check prints what
differs and exits 1; `--record` appends a dated section to
docs/benchmarks.md only when every check passed.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
DOC = ROOT / "docs" / "benchmarks.md"
OBJECT = ROOT / "examples" / "xdp_counter.o"
PACKET = ROOT / "examples" / "packets" / "udp_dns.bin"
PYBPF = [sys.executable, "-m", "pybpf"]

XDP_DROP, XDP_PASS = 1, 2
BLOCKED_PORT = 53  # xdp_counter.c's .rodata default

COMMANDS = (
    "asm",
    "conformance",
    "disasm",
    "feature",
    "include-dir",
    "run-raw",
    "verify",
    "map",
    "prog",
    "tc",
    "xdp",
    "daemon",
    "gen",
    "link",
    "net",
    "sock",
)
"""The commands `pybpf --help` lists, in its order (a lazily registered one must not go missing)."""


Check = Callable[[str], list[str]]


@dataclass(frozen=True)
class Case:
    """One command timed as a fresh process, and how its output is checked."""

    name: str
    argv: list[str]
    check: Check
    goal: float | None  # seconds of wall time (None: no goal, shown for comparison)


def model_output(data: bytes) -> list[str]:
    """The lines `pybpf prog run` prints for one run of xdp_count on `data` (duration as N).

    From the C source's logic (examples/xdp_counter.c): every packet counts in
    `.bss`'s packets_seen; an IPv4 packet counts under its protocol in
    `proto_count`; UDP to `blocked_port` is dropped."""
    retval, protocol = XDP_PASS, None
    if len(data) >= 34 and data[12:14] == b"\x08\x00":
        protocol = data[23]
        udp = 14 + (data[14] & 0x0F) * 4
        if protocol == 17 and udp + 8 <= len(data):
            if struct.unpack_from("!H", data, udp + 2)[0] == BLOCKED_PORT:
                retval = XDP_DROP
    lines = [f"Return value: {retval}, duration (average): Nns (jit)"]
    if protocol is not None:
        lines += [
            "map proto_count (hash): 1 element(s)",
            f"  key: {struct.pack('<I', protocol).hex()}  value: {struct.pack('<Q', 1).hex()}"
            f"  ({protocol}: 1)",
        ]
    lines += [
        "map .rodata (array): 1 element(s)",
        f"  key: 00000000  value: {struct.pack('<H', BLOCKED_PORT).hex()}"
        f'  (0: {{"blocked_port": {BLOCKED_PORT}}})',
        "map .bss (array): 1 element(s)",
        '  key: 00000000  value: 0100000000000000  (0: {"packets_seen": 1})',
    ]
    return lines


def check_run(stdout: str) -> list[str]:
    """What differs between `prog run`'s output and the model's (empty: the same)."""
    seen = [
        re.sub(r"duration \(average\): \d+ns", "duration (average): Nns", line)
        for line in stdout.splitlines()
    ]
    expected = model_output(PACKET.read_bytes())
    if seen == expected:
        return []
    return [f"prog run printed {seen!r}, expected {expected!r}"]


def check_help(stdout: str) -> list[str]:
    """The help starts with the usage line and lists every command, in order."""
    problems = []
    if not stdout.startswith("Usage: pybpf "):
        problems.append(f"--help does not start with the usage line: {stdout[:60]!r}")
    section = stdout.partition("\nCommands:\n")[2].partition("\n\n")[0]
    listed = [line.split()[0] for line in section.splitlines() if line.startswith("  ")]
    if listed != list(COMMANDS):
        problems.append(f"--help lists {listed}, expected {list(COMMANDS)}")
    return problems


def check_version(stdout: str) -> list[str]:
    """`pybpf --version` prints this tree's version."""
    expected = f"pybpf {tree_version()}\n"
    return [] if stdout == expected else [f"--version printed {stdout!r}, expected {expected!r}"]


def check_disasm(stdout: str) -> list[str]:
    """The disassembly names the object's program and its first instruction."""
    if "xdp_count" in stdout and re.search(r"^\s*0:", stdout, re.MULTILINE):
        return []
    return [f"disasm does not show xdp_count's instructions: {stdout[:200]!r}"]


def check_silent(stdout: str) -> list[str]:
    """Nothing printed."""
    return [] if stdout == "" else [f"printed {stdout[:200]!r}, expected nothing"]


def tree_version() -> str:
    """`__version__` of this tree's pybpf, read from its source (no import here)."""
    text = (SRC / "pybpf" / "__init__.py").read_text()
    found = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    return found.group(1) if found else "?"


def cases() -> list[Case]:
    """The commands timed, in the order printed."""
    demo = ["prog", "run", str(OBJECT), "--data-in", str(PACKET)]
    return [
        Case("python -c pass (the floor)", [sys.executable, "-c", "pass"], check_silent, None),
        Case("import pybpf", [sys.executable, "-c", "import pybpf"], check_silent, None),
        Case("pybpf --help", [*PYBPF, "--help"], check_help, 0.15),
        Case("pybpf --version", [*PYBPF, "--version"], check_version, 0.15),
        Case("pybpf prog run (the demo)", [*PYBPF, *demo], check_run, 0.3),
        Case(
            "pybpf disasm (the demo)",
            [*PYBPF, "disasm", str(OBJECT), "--section", "xdp"],
            check_disasm,
            None,
        ),
    ]


def environment(pycache: str) -> dict[str, str]:
    """The children's environment: this tree's `src` first on the path, bytecode cached.

    An installed package has its bytecode compiled (pip does it), so a
    user's command does not compile pybpf's ~120 modules from source
    (~0.25 s). Here the children write and read bytecode under `pycache`
    (`PYTHONPYCACHEPREFIX`, a directory of this run, so the tree stays
    untouched) even where the environment says not to
    (`PYTHONDONTWRITEBYTECODE`); the first check run and the warm-ups fill it.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = f"{SRC}{os.pathsep}{path}" if path else str(SRC)
    env["PYTHONPYCACHEPREFIX"] = pycache
    return env


def run(case: Case, env: dict[str, str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """One fresh process of `case`: (wall seconds, CPU seconds, the finished process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(case.argv, env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done


def check(case: Case, done: subprocess.CompletedProcess) -> list[str]:
    """What is wrong with one finished run of `case` (empty: nothing)."""
    if done.returncode != 0:
        return [f"{case.name}: exit {done.returncode}: {done.stderr.strip()[-300:]}"]
    return [f"{case.name}: {problem}" for problem in case.check(done.stdout)]


def measure(
    all_cases: list[Case], runs: int, warmup: int, env: dict[str, str]
) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds of each case over `runs` round-robin runs after `warmup`."""
    for _ in range(warmup):
        for case in all_cases:
            run(case, env)
    walls: dict[str, list[float]] = {case.name: [] for case in all_cases}
    cpus: dict[str, list[float]] = {case.name: [] for case in all_cases}
    for _ in range(runs):
        for case in all_cases:
            wall, cpu, _done = run(case, env)
            walls[case.name].append(wall)
            cpus[case.name].append(cpu)
    return {name: (statistics.median(walls[name]), statistics.median(cpus[name])) for name in walls}


def table(all_cases: list[Case], results: dict[str, tuple[float, float]]) -> list[str]:
    """The results as Markdown table rows."""
    rows = [
        "| command | median wall, s | median CPU, s | goal (wall), s |",
        "|---|---:|---:|---:|",
    ]
    for case in all_cases:
        wall, cpu = results[case.name]
        goal = "—" if case.goal is None else f"{case.goal:.2f}"
        rows.append(f"| {case.name} | **{wall:.3f}** | {cpu:.3f} | {goal} |")
    return rows


def record(command: str, rows: list[str], args: argparse.Namespace) -> None:
    """Append a dated section with the medians to docs/benchmarks.md."""
    date = datetime.date.today().isoformat()
    lines = [
        f"\n## Start-up: fresh processes — {date}\n",
        f"Command: `{command}`\n",
        *rows,
        "",
        f"Medians of {args.runs} runs of each command as a new process, round-robin, after "
        f"{args.warmup} warm-up runs each (the JIT's and the verifier's disk caches warm); "
        "`pybpf` is `python -m pybpf` of this tree. "
        f"Python {platform.python_version()} on {platform.machine()} ({platform.platform()}), "
        f"{os.cpu_count()} CPUs; the machine is shared, so single runs vary.",
    ]
    with DOC.open("a", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Check every command, time them, print the medians; optionally record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11, help="timed runs per command")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs per command first")
    parser.add_argument("--record", action="store_true", help="append to docs/benchmarks.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pybpf-pycache-") as pycache:
        return _check_and_time(args, argv, environment(pycache))


def _check_and_time(args: argparse.Namespace, argv: list[str] | None, env: dict[str, str]) -> int:
    all_cases = cases()
    problems = []
    for case in all_cases:
        problems += check(case, run(case, env)[2])
    if problems:
        for problem in problems:
            print(f"check failed: {problem}", file=sys.stderr)
        print("nothing timed or recorded", file=sys.stderr)
        return 1
    results = measure(all_cases, args.runs, args.warmup, env)
    rows = table(all_cases, results)
    print("\n".join(rows))
    if args.record:
        given = argv if argv is not None else sys.argv[1:]
        record(" ".join(["python benchmarks/bench_startup.py", *given]), rows, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
