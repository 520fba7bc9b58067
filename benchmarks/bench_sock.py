"""Socket hook overhead: a supervised connect() beside the same call unsupervised and
under the kernel's own cgroup connect4 hook.

One child process (`python -c`) calls connect() on a UDP socket to
127.0.0.1 (no packet is sent: a UDP connect only sets the destination, and
runs connect4 hooks as a TCP one does) --calls times after a warm-up, timing
each call with perf_counter_ns, and reports the median and the 99th
percentile. The same child runs

* plain: no hook;
* kernel: in a cgroup (v2) with `examples/sock/connect4_policy.o` attached
  as `cgroup/connect4` (bpftool), when this machine allows it;
* pybpf jit / pybpf interpreter: under `pybpf.hooks.sock.run` with the same
  object (every call decided: the policy's maps are empty, so every
  connect is allowed and recorded, in both implementations);
* pybpf jit, no sync wake-up: the same without
  SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, as on a kernel before 6.6.

The added cost of a hook is its median minus plain's. Runs alternate the
modes (--rounds times) and the medians of the rounds are reported.

    python benchmarks/bench_sock.py [--calls N] [--rounds R] [--record]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pybpf
from pybpf.hooks import seccomp, sock

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
OBJECT = ROOT / "examples" / "sock" / "connect4_policy.o"
CGROUP_ROOTS = ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")

CHILD = """
import json, socket, sys, time
calls, warm = int(sys.argv[1]), 200
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
times = []
for i in range(warm + calls):
    t0 = time.perf_counter_ns()
    s.connect(("127.0.0.1", 9 + i % 64))
    t1 = time.perf_counter_ns()
    if i >= warm:
        times.append(t1 - t0)
times.sort()
print(json.dumps({"median": times[len(times) // 2], "p99": times[int(len(times) * 0.99)]}))
"""


def _child(calls: int) -> list[str]:
    return [sys.executable, "-c", CHILD, str(calls)]


def plain(calls: int) -> dict[str, int]:
    out = subprocess.run(_child(calls), capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def supervised(calls: int, engine: str, sync_wake_up: bool = True) -> dict[str, int]:
    if not sync_wake_up:  # as on a kernel before 6.6: the scheduler wakes each side
        set_flag, seccomp.set_sync_wake_up = seccomp.set_sync_wake_up, lambda listener: False
    try:
        return _supervised(calls, engine)
    finally:
        if not sync_wake_up:
            seccomp.set_sync_wake_up = set_flag


def _supervised(calls: int, engine: str) -> dict[str, int]:
    with pybpf.load(OBJECT, engine=engine) as obj:
        link = sock.run(obj, _child(calls), stdout=subprocess.PIPE, text=True)
        try:
            link.wait(120)
            out = link._hook.supervisor.process.stdout.read()
        finally:
            counters = link.close()
    if counters.errors or counters.allowed < calls:
        raise RuntimeError(f"supervised run decided {counters.allowed} of {calls}: {counters}")
    return json.loads(out)


class KernelCgroup:
    """connect4_policy.o attached to a fresh cgroup v2 (bpftool), or why it cannot be."""

    def __init__(self) -> None:
        self.reason = self._setup()

    def _setup(self) -> str | None:
        bpftool = shutil.which("bpftool") or (
            "/usr/sbin/bpftool" if os.path.exists("/usr/sbin/bpftool") else None
        )
        root = next((r for r in CGROUP_ROOTS if os.path.exists(f"{r}/cgroup.procs")), None)
        if os.geteuid() != 0 or bpftool is None or root is None:
            return "needs root, bpftool and a cgroup v2 mount"
        self.bpftool = bpftool
        self.pin = tempfile.mktemp(prefix="pybpf_bench_", dir="/sys/fs/bpf")
        self.cgroup = f"{root}/pybpf-bench-{os.getpid()}"
        try:
            os.mkdir(self.cgroup)
            subprocess.run(
                [bpftool, "prog", "load", str(OBJECT), self.pin], check=True, capture_output=True
            )
            subprocess.run(
                [bpftool, "cgroup", "attach", self.cgroup, "connect4", "pinned", self.pin],
                check=True,
                capture_output=True,
            )
        except (OSError, subprocess.CalledProcessError) as error:
            self.close()
            return f"cannot attach to a cgroup here: {error}"
        return None

    def run(self, calls: int) -> dict[str, int]:
        script = f'echo $$ > {self.cgroup}/cgroup.procs && exec "$@"'
        out = subprocess.run(
            ["sh", "-c", script, "sh", *_child(calls)], capture_output=True, text=True, check=True
        )
        return json.loads(out.stdout)

    def close(self) -> None:
        if getattr(self, "pin", None) and os.path.exists(self.pin):
            subprocess.run(
                [self.bpftool, "cgroup", "detach", self.cgroup, "connect4", "pinned", self.pin],
                capture_output=True,
            )
            os.unlink(self.pin)
        if getattr(self, "cgroup", None) and os.path.isdir(self.cgroup):
            os.rmdir(self.cgroup)


def measure(calls: int, rounds: int) -> tuple[dict[str, dict[str, float]], str | None]:
    kernel = KernelCgroup()
    modes = {
        "plain": lambda: plain(calls),
        "pybpf jit": lambda: supervised(calls, "jit"),
        "pybpf interpreter": lambda: supervised(calls, "interpreter"),
        "pybpf jit, no sync wake-up": lambda: supervised(calls, "jit", sync_wake_up=False),
    }
    if kernel.reason is None:
        modes["kernel cgroup"] = lambda: kernel.run(calls)
    samples: dict[str, list[dict[str, int]]] = {name: [] for name in modes}
    try:
        for _ in range(rounds):
            for name, run_mode in modes.items():
                samples[name].append(run_mode())
    finally:
        kernel.close()
    results = {
        name: {key: statistics.median(s[key] for s in runs) for key in ("median", "p99")}
        for name, runs in samples.items()
    }
    return results, kernel.reason


def record(results: dict[str, dict[str, float]], calls: int, rounds: int, note: str | None) -> None:
    base = results["plain"]["median"]
    rows = "\n".join(
        f"| {name} | {r['median'] / 1000:.1f} | {r['p99'] / 1000:.1f} | {(r['median'] - base) / 1000:+.1f} |"
        for name, r in results.items()
    )
    kernel_note = f" The kernel's cgroup hook was not measured: {note}." if note else ""
    section = f"""
## Socket hook overhead per connect() — {datetime.date.today().isoformat()}

Command: `python benchmarks/bench_sock.py --record`

| hook | median µs | p99 µs | added to plain, median µs |
|---|---:|---:|---:|
{rows}

One child calls connect() on a UDP socket to 127.0.0.1 {calls:,} times after
200 warm-up calls, timing each (perf_counter_ns around the call, so the
Python call itself is in every figure); medians over {rounds} alternating
rounds. pybpf decides each call under the seccomp supervisor with
`examples/sock/connect4_policy.o` (empty policy: every call allowed and
recorded in its maps), the kernel runs the same object as a cgroup connect4
program.{kernel_note} "no sync wake-up" is the supervisor without
SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (as on kernels before 6.6). Python
{platform.python_version()} on {platform.machine()} ({platform.platform()}),
{os.cpu_count()} shared cores.
"""
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    DOC.write_text(text.rstrip() + "\n" + section)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--record", action="store_true", help="append to docs/benchmarks.md")
    args = parser.parse_args()
    reason = seccomp.unsupported_reason()
    if reason:
        print(f"skipped: {reason}")
        return 0
    results, note = measure(args.calls, args.rounds)
    base = results["plain"]["median"]
    for name, r in results.items():
        print(
            f"{name:<18} median {r['median'] / 1000:8.1f} µs  p99 {r['p99'] / 1000:8.1f} µs"
            f"  added {(r['median'] - base) / 1000:+8.1f} µs"
        )
    if note:
        print(f"kernel cgroup hook not measured: {note}")
    if args.record:
        record(results, args.calls, args.rounds, note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
