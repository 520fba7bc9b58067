"""pybpfd: the round trip of a request, and the CLI's wall time as a user types it.

Starts a daemon of its own (a fresh runtime directory), loads
examples/xdp_counter.o in it (pinned) and measures, in one run:

- round trip: `daemon.status` and `map.lookup` (a request per lookup, the
  path of families kept in the daemon) from one client, median of
  rounds of N calls, beside `Map.lookup` on the same map mapped into this
  process (no request);
- `prog.run`: one test run of the loaded program through the daemon,
  beside `Program.test_run` in-process on the same object file;
- CLI wall time: `pybpf prog list`, `pybpf map dump pinned …` and
  `pybpf --version` (the start-up floor) as processes, median of R runs,
  import time included.

    python benchmarks/bench_daemon.py [--calls N] [--rounds R] [--cli-runs R] [--record]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pybpf

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
COUNTER = ROOT / "examples" / "xdp_counter.o"
UDP = bytes(12) + b"\x08\x00" + bytes([0x45] + [0] * 8 + [17] + [0] * 10) + bytes(8)


def per_call(loop, calls: int, rounds: int) -> float:
    """Median µs per call over `rounds` runs of `calls` calls."""
    loop(min(calls, 100))
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        loop(calls)
        samples.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(samples)


def wall(command: list[str], env: dict[str, str], runs: int) -> float:
    """Median ms of running `command` to completion."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def measure(calls: int, rounds: int, cli_runs: int) -> list[tuple[str, float, str]]:
    """(what, figure, unit) rows."""
    runtime = Path(tempfile.mkdtemp(prefix="pybpfd-bench-"))
    env = {**os.environ, "PYBPF_RUNTIME_DIR": str(runtime)}
    cli = shutil.which("pybpf") or "pybpf"
    subprocess.run([cli, "daemon", "start"], env=env, check=True, capture_output=True)
    rows = []
    try:
        client = pybpf.connect(runtime / "pybpfd.sock")
        obj = client.load(COUNTER)
        obj.pin("/sys/fs/bpf/bench")
        counts = obj.maps["proto_count"]
        counts[b"\x11\0\0\0"] = b"\1" + bytes(7)
        key_hex = (b"\x11\0\0\0").hex()
        map_id = counts.id
        prog = obj.programs["xdp_count"]

        def status(n: int) -> None:
            for _ in range(n):
                client.call("daemon.status")

        def rpc_lookup(n: int) -> None:
            for _ in range(n):
                client.call("map.lookup", id=map_id, key=key_hex)

        def shared_lookup(n: int) -> None:
            lookup = counts.lookup
            for _ in range(n):
                lookup(b"\x11\0\0\0")

        def remote_run(n: int) -> None:
            for _ in range(n):
                prog.test_run(UDP)

        with pybpf.load(COUNTER) as local_obj:
            local = local_obj.programs["xdp_count"]
            local.test_run(UDP)

            def local_run(n: int) -> None:
                for _ in range(n):
                    local.test_run(UDP)

            rows += [
                ("request round trip (daemon.status)", per_call(status, calls, rounds), "µs"),
                ("map lookup by request (map.lookup)", per_call(rpc_lookup, calls, rounds), "µs"),
                ("map lookup on the mapped region", per_call(shared_lookup, calls, rounds), "µs"),
                (
                    "test run through the daemon (prog.run)",
                    per_call(remote_run, calls, rounds),
                    "µs",
                ),
                (
                    "test run in-process (Program.test_run)",
                    per_call(local_run, calls, rounds),
                    "µs",
                ),
            ]
        client.close()
        rows += [
            ("`pybpf --version`", wall([cli, "--version"], env, cli_runs), "ms"),
            ("`pybpf prog list`", wall([cli, "prog", "list"], env, cli_runs), "ms"),
            (
                "`pybpf map dump id N`",
                wall([cli, "map", "dump", "id", str(map_id)], env, cli_runs),
                "ms",
            ),
        ]
    finally:
        subprocess.run([cli, "daemon", "stop"], env=env, capture_output=True)
        shutil.rmtree(runtime, ignore_errors=True)
    return rows


def record(command: str, rows: list, calls: int, rounds: int, cli_runs: int) -> None:
    """Append the figures to docs/benchmarks.md."""
    lines = [
        "",
        f"## pybpfd: request round trip and CLI wall time ({datetime.date.today()})",
        "",
        f"`{command}` — {calls:,} calls per round, median of {rounds} rounds; CLI: median of "
        f"{cli_runs} runs. Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs.",
        "",
        "| what | median |",
        "|---|---:|",
        *(f"| {what} | {value:.1f} {unit} |" for what, value, unit in rows),
        "",
    ]
    with DOC.open("a") as out:
        out.write("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=7, help="rounds")
    parser.add_argument("--cli-runs", type=int, default=9, help="runs of each CLI command")
    parser.add_argument("--record", action="store_true", help="append to docs/benchmarks.md")
    args = parser.parse_args(argv)
    rows = measure(args.calls, args.rounds, args.cli_runs)
    for what, value, unit in rows:
        print(f"{what:42} {value:9.1f} {unit}")
    if args.record:
        command = "python benchmarks/bench_daemon.py " + " ".join(argv or sys.argv[1:])
        record(command.replace(" --record", ""), rows, args.calls, args.rounds, args.cli_runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
