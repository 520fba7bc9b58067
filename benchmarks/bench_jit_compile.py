"""JIT compile time: a generated ~1000-instruction program, cold and from the disk cache.

The program (`generate`) is a realistic mix: ALU on 32- and 64-bit
registers (including divisions and shifts), loads from a packet buffer
(r1), stack stores and loads, forward branches, two counted loops, a
bpf-to-bpf call and helper calls (bpf_ktime_get_ns, bpf_get_prandom_u32,
bpf_get_smp_processor_id natively, a table helper through the Python
fallback, and, with `--maps` semantics, map lookups on a hash and an
array map through the native map emitters).

Measured, each in a fresh child process with its own empty
`PYBPF_CACHE_DIR` (so nothing is cached, and the map families are
compiled once in a warm-up before the clock starts):

* cold: `JitEngine(...)` of the program (checking, IR building, LLVM
  optimisation and code generation), with maps;
* cache: the same program without maps (map addresses are part of the
  key and differ between processes) is compiled in one child, then a
  second child times `JitEngine(...)` again, which loads the object from
  the disk cache; once after a warm-up with another (tiny) program, and
  once as the first JIT use of the process (which includes creating the
  LLVM engine).

With tiered compilation (the default, see docs/jit.md) a cold compile
returns first-tier code; the background thread then compiles the
optimised object. The table gives both: "first tier" is `JitEngine(...)`
returning, "optimised" the time from the same start until
`wait_optimised()` returns (the engine then runs the optimised code),
and its LLVM column the background compile itself. The disk cache holds
the optimised object, which is what the cache rows load.
`PYBPF_JIT_TIERED=0` in the environment measures the untiered compile.

Each figure is the median over `--rounds` child processes; the table
also splits the cold compile into IR building and LLVM (`engine.add`).

    python benchmarks/bench_jit_compile.py [--rounds N] [--insns N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

PACKET_SIZE = 256


def generate(target: int = 1000, *, maps: tuple[int, int] | None = None, seed: int = 1) -> str:
    """Assembler text of a program of about `target` instructions.

    r1 points to a `PACKET_SIZE`-byte buffer. `maps` gives the addresses
    of a hash map (4-byte keys) and an array map (4-byte keys) to look up.
    """
    rng = random.Random(seed)
    lines: list[str] = []
    count = 0
    labels = 0

    def emit(*text: str) -> None:
        nonlocal count
        for line in text:
            lines.append(line)
            if not line.endswith(":"):
                count += 2 if line.startswith("lddw") else 1

    def label() -> str:
        nonlocal labels
        labels += 1
        return f"l{labels}"

    def reg() -> str:
        return f"%r{rng.choice((0, 2, 3, 4, 5))}"

    def alu() -> None:
        op = rng.choice(("add", "sub", "mul", "or", "and", "xor", "lsh", "rsh", "arsh"))
        wide = "" if rng.random() < 0.7 else "32"
        dst = reg()
        if rng.random() < 0.5:
            emit(f"{op}{wide} {dst}, {rng.randrange(1, 63)}")
        else:
            emit(f"{op}{wide} {dst}, {reg()}")
        if rng.random() < 0.3:  # keep results alive, as real programs do
            emit(f"{rng.choice(('add', 'xor'))} %r7, {dst}")

    def block() -> None:
        kind = rng.random()
        if kind < 0.45:
            alu()
        elif kind < 0.55:
            size = rng.choice(("b", "h", "w", "dw"))
            emit(f"ldx{size} {reg()}, [%r6+{rng.randrange(0, 64)}]")
        elif kind < 0.65:
            slot = -8 * rng.randrange(1, 32)
            emit(f"stxdw [%r10{slot}], {reg()}", f"ldxdw {reg()}, [%r10{slot}]")
        elif kind < 0.7:
            emit(f"stw [%r10-{8 * rng.randrange(1, 32)}], {rng.randrange(1 << 16)}")
        elif kind < 0.72:
            size = rng.choice(("b", "h", "w", "dw"))
            emit(f"stx{size} [%r6+{rng.randrange(64, 128)}], {reg()}")
        elif kind < 0.73:
            emit(f"div {reg()}, {reg()}", f"mod32 {reg()}, {rng.randrange(1, 99)}")
        elif kind < 0.85:
            skip = label()
            op = rng.choice(("jeq", "jne", "jgt", "jge", "jlt", "jsgt", "jslt", "jset"))
            emit(f"{op} {reg()}, {rng.randrange(256)}, {skip}")
            for _ in range(rng.randrange(1, 5)):
                alu()
            emit(f"{skip}:")
        else:
            alu()

    def helper(number: int) -> None:
        # r1..r5 are clobbered: the packet pointer lives in r6.
        emit(f"call {number}", "add %r7, %r0")

    emit("mov %r6, %r1", "mov %r7, 0", "mov %r8, 0", "mov %r0, 1")
    for reg_name in ("%r2", "%r3", "%r4", "%r5"):
        emit(f"ldxw {reg_name}, [%r6+{rng.randrange(0, 60)}]")
    loops = 2
    calls = 0
    while count < target - 14:
        progress = count / target
        if loops and progress > (0.3 if loops == 2 else 0.6):
            loops -= 1
            head = label()
            emit("mov %r8, 0", f"{head}:")
            for _ in range(12):
                block()
            emit("add %r8, 1", f"jlt %r8, 16, {head}")
        elif progress > 0.15 * (calls + 1):
            calls += 1
            helper((5, 7, 8)[calls % 3])  # ktime_get_ns, get_prandom_u32, smp_processor_id
            if maps is not None:
                hash_map, array = maps
                emit(
                    "stw [%r10-4], 3",
                    f"lddw %r1, {hash_map if calls % 2 else array}",
                    "mov %r2, %r10",
                    "add %r2, -4",
                    "call 1",
                )
                done = label()
                emit(f"jeq %r0, 0, {done}", "ldxdw %r3, [%r0]", "add %r7, %r3", f"{done}:")
            emit("mov %r1, %r7", "call local mix", "add %r7, %r0")
            emit("mov %r1, %r7", "call 100", "xor %r7, %r0")  # the Python fallback
        else:
            block()
    emit("add %r0, %r7", "exit")
    emit("mix:", "mov %r0, %r1", "lsh %r0, 13", "xor %r0, %r1", "rsh %r0, 7")
    emit("stxdw [%r10-8], %r0", "ldxdw %r2, [%r10-8]", "mul %r0, %r2", "exit")
    return "\n".join(lines) + "\n"


# -- the child ---------------------------------------------------------------------


def child(mode: str, target: int) -> dict[str, Any]:
    """Run in a child process: time one `JitEngine(...)` and report in JSON."""
    started = time.perf_counter()
    from pybpf.elf.map_types import MapType
    from pybpf.elf.specs import MapSpec
    from pybpf.engine.jit import JitEngine
    from pybpf.isa.assembler import assemble
    from pybpf.runtime.context import ExecutionContext
    from pybpf.runtime.helpers import HelperSpec
    from pybpf.runtime.linux_helpers import linux_helpers
    from pybpf.runtime.maps import create_map
    from pybpf.runtime.native import compiler

    imported = time.perf_counter() - started
    helpers = linux_helpers()
    helpers.register(HelperSpec(100, "probe", lambda env, r1, *rest: r1 * 3))
    runtime = ExecutionContext(ncpus=2)
    maps = None
    if mode == "cold":
        hash_map = create_map(MapSpec("h", MapType.HASH, 4, 8, 16), runtime.memory, ncpus=2)
        array = create_map(MapSpec("a", MapType.ARRAY, 4, 8, 16), runtime.memory, ncpus=2)
        runtime.add_map(hash_map)
        runtime.add_map(array)
        maps = (hash_map.address, array.address)
    if mode != "cache-first":
        # Warm-up: LLVM itself, the fallback and the map families, with a tiny program.
        warm = generate(40, maps=maps, seed=2)
        warmed = JitEngine(assemble(warm), helpers=helpers, runtime=runtime, memory=runtime.memory)
        warmed.wait_optimised()
    insns = assemble(generate(target, maps=maps))
    before = dict(compiler.compile_stats().seconds)
    started = time.perf_counter()
    engine = JitEngine(insns, helpers=helpers, runtime=runtime, memory=runtime.memory)
    total = time.perf_counter() - started
    stats = compiler.compile_stats()
    loaded = engine.compiled.name in stats.loaded
    first = {k: v for k, v in stats.seconds.items() if k not in before}
    tier = engine.tier
    if not engine.wait_optimised(timeout=60):
        raise SystemExit("the optimised code never came")
    optimised = time.perf_counter() - started
    background = {k: v for k, v in stats.seconds.items() if k not in before and k not in first}
    return {
        "insns": len(insns),
        "seconds": total,
        "llvm": sum(first.values()),
        "optimised": optimised,
        "optimised_llvm": sum(background.values()),
        "tier": tier,
        "import": imported,
        "loaded": loaded,
    }


def run_child(mode: str, target: int, cache: str) -> dict[str, Any]:
    env = dict(os.environ, PYBPF_CACHE_DIR=cache)
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--insns", str(target)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--insns", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", choices=("cold", "cache", "cache-first"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.insns)))
        return 0
    cold: list[dict[str, Any]] = []
    first: list[dict[str, Any]] = []
    cached: list[dict[str, Any]] = []
    cached_first: list[dict[str, Any]] = []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="pybpf-bench-") as cache:
            cold.append(run_child("cold", args.insns, cache))
        with tempfile.TemporaryDirectory(prefix="pybpf-bench-") as cache:
            first.append(run_child("cache", args.insns, cache))
            cached.append(run_child("cache", args.insns, cache))
            cached_first.append(run_child("cache-first", args.insns, cache))
    if not all(r["loaded"] for r in cached + cached_first) or any(
        r["loaded"] for r in cold + first
    ):
        print("error: the cache did not behave as expected", file=sys.stderr)
        return 1

    def ms(rows: list[dict[str, Any]], field: str) -> float:
        return statistics.median(r[field] for r in rows) * 1000

    tiered = cold[0]["tier"] == 0
    table = {
        "cold compile (maps)" + (", first tier" if tiered else ""): (cold, cold[0]["insns"]),
        "cold compile (no maps)" + (", first tier" if tiered else ""): (first, first[0]["insns"]),
        "disk-cache load (no maps)": (cached, cached[0]["insns"]),
        "disk-cache load, first JIT use": (cached_first, cached[0]["insns"]),
    }
    if tiered:
        # (rows, n, field of the total, field of its LLVM part)
        optimised = {
            "cold compile (maps), optimised": (cold, cold[0]["insns"]),
            "cold compile (no maps), optimised": (first, first[0]["insns"]),
        }
    else:
        optimised = {}
    rows_of = {
        **{name: (rows, n, "seconds", "llvm") for name, (rows, n) in table.items()},
        **{name: (rows, n, "optimised", "optimised_llvm") for name, (rows, n) in optimised.items()},
    }
    order = list(table)[:2] + list(optimised) + list(table)[2:]
    if args.json:
        print(
            json.dumps(
                {
                    name: {
                        "insns": rows_of[name][1],
                        "ms": ms(rows_of[name][0], rows_of[name][2]),
                        "llvm_ms": ms(rows_of[name][0], rows_of[name][3]),
                    }
                    for name in order
                }
            )
        )
        return 0
    print(f"JIT compile time, median of {args.rounds} child processes")
    print()
    print("| case | insns | total, ms | of which engine.add, ms | rest, ms |")
    print("|---|---:|---:|---:|---:|")
    for name in order:
        rows, n, total_field, llvm_field = rows_of[name]
        total, llvm = ms(rows, total_field), ms(rows, llvm_field)
        print(f"| {name} | {n} | {total:.1f} | {llvm:.1f} | {total - llvm:.1f} |")
    if tiered:
        print()
        print(
            "Optimised rows: from the start of `JitEngine(...)` until `wait_optimised()`;"
            " engine.add is the background compile (parse, passes, code generation, adding)."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
