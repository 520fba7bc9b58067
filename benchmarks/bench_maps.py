"""Map lookup and update from Python: pybpf's `Map` next to the kernel's bpf() syscall.

Both sides use a hash map of u32 → u64 (1,024 entries, 1,000 keys
present) and the same keys, in the same run:

- kernel: libbpf's `bpf_map_lookup_elem` / `bpf_map_update_elem` called
  through ctypes with prebuilt key and value buffers, i.e. one bpf()
  syscall per call and as little Python as ctypes allows;
- pybpf: `Map.lookup(key)` / `Map.update(key, value)` on bytes, from
  `create_map(MapSpec(...), Memory())`: native entry points called as
  builtins (`runtime/maps/fastcall.py`), or the ctypes path with
  `PYBPF_NO_FASTCALL=1`.

Each figure is the median over the repeats of (wall time of N calls) / N.
The kernel column is left out when `pybpf.testing.kernel.kernel_available()`
is False (no root, no libbpf or no bpf()).

    python benchmarks/bench_maps.py [--calls N] [--repeats R] [--record]

`--record` appends a dated section to docs/benchmarks.md.

Before anything is timed, each side fills a fresh map with a distinct value
per key and checks what its lookups return (every key its value, an absent
key nothing, an updated key its new value); after timing, the timed map's
keys must hold what the update loop wrote. A wrong answer prints what
differs and exits 1, and nothing is recorded.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import platform
import statistics
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pybpf.elf.map_types import MapType
from pybpf.elf.specs import MapSpec
from pybpf.runtime.maps import create_map, fastcall
from pybpf.runtime.memory import Memory
from pybpf.testing import kernel

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
MAX_ENTRIES = 1024
KEYS = 1000


def timed(loop: Callable[[], None], calls: int, repeats: int) -> float:
    """Median ns per call over `repeats` runs of `loop` (which makes `calls` calls)."""
    loop()  # warm up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        loop()
        samples.append((time.perf_counter_ns() - start) / calls)
    return statistics.median(samples)


def value_of(key: int) -> int:
    """The distinct value the checks store under `key`."""
    return key * 7919 + 3


class CheckFailed(Exception):
    """A lookup returned something else than the map holds: nothing is timed or recorded."""


def pybpf_lookup(m: Any) -> Callable[[int], int | None]:
    """key → value (None when absent) through pybpf's `Map.lookup`."""

    def lookup(key: int) -> int | None:
        found = m.lookup(struct.pack("<I", key))
        return None if found is None else struct.unpack("<Q", found)[0]

    return lookup


def kernel_lookup(fd: int) -> Callable[[int], int | None]:
    """key → value (None on ENOENT) through libbpf's `bpf_map_lookup_elem`."""
    lib = kernel.libbpf()

    def lookup(key: int) -> int | None:
        out = ctypes.c_uint64()
        if lib.bpf_map_lookup_elem(fd, ctypes.byref(ctypes.c_uint32(key)), ctypes.byref(out)) < 0:
            return None
        return out.value

    return lookup


def check_answers(
    side: str, lookup: Callable[[int], int | None], expect: Callable[[int], int]
) -> None:
    """Every present key gives `expect(key)`, an absent key gives nothing."""
    for key in range(KEYS):
        got = lookup(key)
        if got != expect(key):
            raise CheckFailed(f"{side}: key {key} gave {got!r}, expected {expect(key)}")
    if lookup(KEYS + 5) is not None:
        raise CheckFailed(f"{side}: absent key {KEYS + 5} gave a value")


def check_fresh() -> None:
    """Each side: a fresh map with distinct values, looked up, one key updated."""
    m = create_map(MapSpec("check", MapType.HASH, 4, 8, MAX_ENTRIES), Memory())
    for key in range(KEYS):
        m.update(struct.pack("<I", key), struct.pack("<Q", value_of(key)))
    check_answers("pybpf", pybpf_lookup(m), value_of)
    m.update(struct.pack("<I", 3), struct.pack("<Q", 42))
    if pybpf_lookup(m)(3) != 42:
        raise CheckFailed("pybpf: an updated key kept its old value")
    m.close()
    if not kernel.kernel_available():
        return
    lib = kernel.libbpf()
    raw = kernel.raw_map(4, 8, MAX_ENTRIES)
    try:
        for key in range(KEYS):
            value = ctypes.c_uint64(value_of(key))
            lib.bpf_map_update_elem(
                raw.fd, ctypes.byref(ctypes.c_uint32(key)), ctypes.byref(value), 0
            )
        check_answers("kernel", kernel_lookup(raw.fd), value_of)
    finally:
        kernel.close_map(raw)


def pybpf_loops(calls: int) -> tuple[Callable[[], None], Callable[[], None], Callable[[], None]]:
    """(lookup loop, update loop, cleanup) on a pybpf hash map."""
    hmap = create_map(MapSpec("bench", MapType.HASH, 4, 8, MAX_ENTRIES), Memory())
    keys = [struct.pack("<I", i % KEYS) for i in range(calls)]
    value = struct.pack("<Q", 7)
    for i in range(KEYS):
        hmap.update(keys[i], value)
    lookup, update = hmap.lookup, hmap.update

    def lookups() -> None:
        for k in keys:
            lookup(k)

    def updates() -> None:
        for k in keys:
            update(k, value)

    lookups.after = pybpf_lookup(hmap)  # type: ignore[attr-defined]  # for the check after
    return lookups, updates, hmap.close


def kernel_loops(calls: int) -> tuple[Callable[[], None], Callable[[], None], Callable[[], None]]:
    """(lookup loop, update loop, cleanup) on a kernel hash map through libbpf + ctypes."""
    lib = kernel.libbpf()
    m = kernel.raw_map(4, 8, MAX_ENTRIES)
    fd = m.fd
    key_bufs = [ctypes.c_uint32(i) for i in range(KEYS)]
    keys = [ctypes.byref(key_bufs[i % KEYS]) for i in range(calls)]
    value = ctypes.c_uint64(7)
    value_ref = ctypes.byref(value)
    for k in keys[:KEYS]:
        if lib.bpf_map_update_elem(fd, k, value_ref, 0) < 0:
            raise RuntimeError("bpf_map_update_elem failed while filling the map")
    lookup, update = lib.bpf_map_lookup_elem, lib.bpf_map_update_elem

    def lookups() -> None:
        for k in keys:
            lookup(fd, k, value_ref)

    def updates() -> None:
        for k in keys:
            update(fd, k, value_ref, 0)

    lookups.after = kernel_lookup(fd)  # type: ignore[attr-defined]
    return lookups, updates, lambda: kernel.close_map(m)


def measure(calls: int, repeats: int) -> dict[str, dict[str, float]]:
    """{'pybpf'|'kernel': {'lookup': ns, 'update': ns}}; no 'kernel' when unavailable."""
    results = {}
    sides = [("pybpf", pybpf_loops)]
    if kernel.kernel_available():
        sides.append(("kernel", kernel_loops))
    for side, make in sides:
        lookups, updates, cleanup = make(calls)
        try:
            results[side] = {
                "lookup": timed(lookups, calls, repeats),
                "update": timed(updates, calls, repeats),
            }
            check_answers(side, lookups.after, lambda key: 7)  # what the update loop wrote
        finally:
            cleanup()
    return results


def rows(
    results: dict[str, dict[str, float]],
) -> list[tuple[str, float | None, float, float | None]]:
    """(operation, kernel ns, pybpf ns, pybpf/kernel)."""
    out = []
    for op in ("lookup", "update"):
        ours = results["pybpf"][op]
        theirs = results.get("kernel", {}).get(op)
        out.append((op, theirs, ours, None if theirs is None else ours / theirs))
    return out


def record(command: str, table: list, calls: int, repeats: int) -> None:
    """Append a dated section with the results to docs/benchmarks.md."""
    date = datetime.date.today().isoformat()
    path = "native entry points" if fastcall.FASTCALL_ENABLED else "ctypes (PYBPF_NO_FASTCALL=1)"
    lines = [
        f"\n## Map lookup and update from Python — {date}, pybpf via {path}\n",
        f"Command: `{command}`\n",
    ]
    lines.append(
        "| operation | kernel bpf() via libbpf + ctypes, ns | pybpf `Map`, ns | pybpf / kernel |"
    )
    lines.append("|---|---:|---:|---:|")
    for op, theirs, ours, ratio in table:
        k = "skipped" if theirs is None else f"{theirs:,.0f}"
        r = "—" if ratio is None else f"**{ratio:.2f}**"
        lines.append(f"| {op} | {k} | {ours:,.0f} | {r} |")
    lines.append(
        f"\nHash map u32 → u64, {MAX_ENTRIES} entries with {KEYS} keys present; median "
        f"over {repeats} timed runs of {calls:,} calls each, after one warm-up run. "
        "Kernel side: libbpf's `bpf_map_lookup_elem`/`bpf_map_update_elem` through "
        "ctypes with prebuilt buffers (one bpf() syscall each); pybpf side: "
        "`Map.lookup(bytes)`/`Map.update(bytes, bytes)`. Goal: pybpf at most a third "
        f"of the kernel's time. Python {platform.python_version()} on "
        f"{platform.machine()} ({platform.platform()}); the machine is shared, so "
        "single runs vary.\n"
    )
    with DOC.open("a") as out:
        out.write("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000, help="calls per timed run")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs")
    parser.add_argument("--record", action="store_true", help="append to docs/benchmarks.md")
    args = parser.parse_args(argv)
    try:
        check_fresh()
        results = measure(args.calls, args.repeats)
    except CheckFailed as error:
        print(f"check failed: {error}; nothing recorded", file=sys.stderr)
        return 1
    if "kernel" not in results:
        print(f"kernel column skipped: {kernel.unavailable_reason()}")
    table = rows(results)
    for op, theirs, ours, ratio in table:
        k = "skipped" if theirs is None else f"{theirs:.0f} ns"
        r = "" if ratio is None else f", pybpf/kernel = {ratio:.2f}"
        print(f"{op}: kernel {k}, pybpf {ours:.0f} ns{r}")
    if args.record:
        given = argv if argv is not None else sys.argv[1:]
        record(
            " ".join(["python benchmarks/bench_maps.py", *given]), table, args.calls, args.repeats
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
