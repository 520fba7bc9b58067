"""Engines side by side: the Linux kernel, pybpf's JIT and pybpf's interpreter on six workloads.

Workloads (one XDP program each, all on examples/packets/udp_dns.bin, a
UDP packet from 10.0.0.1 to port 53):

a. compute loop: benchmarks/progs/compute_loop.o, 1000 iterations of
   integer mixing seeded from the packet (~12,000 executed instructions);
b. hash counter: examples/xdp_counter.o `xdp_count` (hash map lookup
   through the helper, two atomic adds, a bpf-to-bpf call);
c. LPM firewall: examples/xdp_firewall.o with 40 rules in its LPM trie
   (the packet's source matches a /24 DROP rule inside a /8 PASS rule);
d. ring buffer: benchmarks/progs/ringbuf_event.o, one 16-byte event per run
   through bpf_ringbuf_reserve/submit (the ring is drained before every
   timed run and each run is sized to fit in it);
e. read-only hash lookup: benchmarks/progs/hash_lookup.o (Ethernet/IPv4
   checks and one hash map lookup; the threads' workload);
f. trial division: benchmarks/progs/trial_division.o, the primes below
   1000 + the packet's first byte counted by trial division (~5,300
   64-bit remainders per run on udp_dns.bin), no helpers.

Every engine runs the same object file on the same packet. The kernel's
figure is the duration `bpf_prog_test_run_opts` reports (its mean ns per
run over `repeat` runs, through `pybpf.testing.kernel`); pybpf's is
`TestRunResult.duration` of `Program.test_run(repeat=N)`, likewise the
elapsed time divided by `repeat`. The JIT is timed in its optimised tier;
beside it, "JIT opt. compile" is what compiling that tier costs (the
program's IR parsed, run through the optimising pipeline and emitted as an
object by `compiler.emit_program_object`, as the background compile does;
the median of `COMPILE_SAMPLES`, measured apart from the disk cache, which
would otherwise hide it). The rounds are interleaved (kernel,
JIT, interpreter, kernel, ...) and each cell is the median over rounds.
Each engine's repeat count is calibrated so that one timed run takes about
`--budget` seconds, capped by `--repeat`: the interpreter gets far fewer
runs than the kernel, the per-run figure normalises that.

Before timing, each workload runs a few times in a fresh instance in every
engine and the results are compared with the kernel's (retval, packet
out, and map contents: the counter's hash map and .bss, the firewall's
verdict array, the ring buffer's records) and with the expected values;
during timing every run's retval and, at the end, the counters (which
must equal the number of runs made) are checked again. Mismatches are
printed loudly and make the exit status 1.

`--threads` adds the scaling of workloads b (shared counters) and e (a
read-only hash lookup) from one to two Python threads, each calling
`test_run(repeat=N)` on its own program instance or on the same one:
aggregate runs per second (wall clock) for each engine. Workload e is not
in the default `--only` list.

    python benchmarks/bench_engines.py [--repeat N] [--rounds R] [--budget S]
        [--only a,b,c,d,e,f] [--threads] [--thread-workloads b,e] [--record] [--json]

The JIT column reads "n/a (JIT unavailable)" while `pybpf.load` has no
`engine=` argument or the JIT cannot be built. `--record` appends a dated
section to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import json
import mmap
import platform
import statistics
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pybpf
from pybpf.testing import kernel

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
PROGS = ROOT / "benchmarks" / "progs"
EXAMPLES = ROOT / "examples"
PACKET = EXAMPLES / "packets" / "udp_dns.bin"

XDP_ABORTED, XDP_DROP, XDP_PASS = 0, 1, 2
IPPROTO_UDP = 17

ENGINES = ("kernel", "jit", "interpreter")
LABELS = {"kernel": "kernel", "jit": "pybpf JIT", "interpreter": "pybpf interpreter"}
JIT_UNAVAILABLE = "n/a (JIT unavailable)"
CHECK_REPEAT = 5
"""Runs of the agreement check (small: its map contents are compared in full)."""
COMPILE_SAMPLES = 3
"""Compiles of a program's optimised tier timed for the "JIT opt. compile" column."""


# -- the workloads -------------------------------------------------------------------


def compute_loop_result(packet: bytes, iterations: int = 1000) -> int:
    """What compute_loop.c computes (and writes to packet bytes 8..11) for `packet`."""
    w0, w1 = struct.unpack_from("<II", packet)
    acc = w0 ^ w1
    for i in range(iterations):
        acc = (((acc ^ (acc >> 7)) * 0x9E3779B1) + i) & 0xFFFFFFFF
    return acc


def trial_division_result(packet: bytes, base: int = 1000, max_divisor: int = 64) -> int:
    """What trial_division.c counts (and writes to packet bytes 8..11) for `packet`."""
    bound = base + packet[0]
    primes = 0
    for n in range(2, bound):
        d = 2
        while d < max_divisor and d * d <= n and n % d:
            d += 1
        primes += d >= max_divisor or d * d > n
    return primes


def lpm_key(prefixlen: int, address: str) -> bytes:
    """struct ipv4_lpm_key: prefix length (host order), address (network order)."""
    return struct.pack("<I", prefixlen) + bytes(int(part) for part in address.split("."))


def firewall_rules() -> dict[bytes, bytes]:
    """40 rules; udp_dns.bin's source 10.0.0.1 matches 10.0.0.0/24 DROP inside 10.0.0.0/8 PASS."""
    rules = {
        lpm_key(8, "10.0.0.0"): XDP_PASS,
        lpm_key(16, "10.0.0.0"): XDP_PASS,
        lpm_key(24, "10.0.0.0"): XDP_DROP,
        lpm_key(32, "10.0.0.2"): XDP_PASS,
        lpm_key(12, "172.16.0.0"): XDP_DROP,
        lpm_key(16, "192.168.0.0"): XDP_PASS,
    }
    for i in range(24):
        rules[lpm_key(24, f"192.168.{i}.0")] = XDP_DROP if i % 3 == 0 else XDP_PASS
    for i in range(10):
        rules[lpm_key(16, f"10.{i + 1}.0.0")] = XDP_DROP
    return {key: struct.pack("<I", action) for key, action in rules.items()}


def _u32(n: int) -> bytes:
    return struct.pack("<I", n)


def _u64_of(raw: bytes | None) -> int | None:
    return None if raw is None else struct.unpack_from("<Q", raw)[0]


def _counter_state(side: Side) -> dict[str, Any]:
    counts = side.map("proto_count")
    keys = sorted(side.keys("proto_count"))
    return {
        "proto_count": {struct.unpack("<I", k)[0]: _u64_of(counts.lookup(k)) for k in keys},
        "packets_seen": _u64_of(side.map(".bss").lookup(_u32(0))),
    }


def _counter_expected(runs: int) -> dict[str, Any]:
    return {"proto_count": {IPPROTO_UDP: runs}, "packets_seen": runs}


def _lookup_setup(side: Side) -> None:
    side.map("proto_action").update(_u32(IPPROTO_UDP), struct.pack("<Q", XDP_DROP))


def _lookup_state(side: Side) -> dict[str, Any]:
    actions = side.map("proto_action")
    keys = sorted(side.keys("proto_action"))
    return {"proto_action": {struct.unpack("<I", k)[0]: _u64_of(actions.lookup(k)) for k in keys}}


def _lookup_expected(runs: int) -> dict[str, Any]:
    return {"proto_action": {IPPROTO_UDP: XDP_DROP}}


def _firewall_setup(side: Side) -> None:
    rules = side.map("rules")
    for key, value in firewall_rules().items():
        rules.update(key, value)


def _firewall_state(side: Side) -> dict[str, Any]:
    verdicts = side.map("verdicts")
    return {"verdicts": [_u64_of(verdicts.lookup(_u32(i))) for i in range(4)]}


def _firewall_expected(runs: int) -> dict[str, Any]:
    return {"verdicts": [0, runs, 0, 0]}


def _ring_state(side: Side) -> dict[str, Any]:
    return {"events": side.ring_records("events")}


RING_RECORDS = (1 << 24) // 24
"""Records of ringbuf_event.o's 16 MiB ring (8-byte header + 16-byte event each)."""


@dataclass(frozen=True)
class Workload:
    """One benchmark program and what it must produce."""

    key: str
    title: str
    path: Path
    program: str
    expected_retval: int
    summary: str
    setup: Callable[[Side], None] | None = None
    state: Callable[[Side], dict[str, Any]] | None = None
    expected_state: Callable[[int], dict[str, Any]] | None = None
    counts_runs: bool = False
    """True when `expected_state(total runs)` must hold after the timed runs too."""
    ring: str | None = None
    """Ring buffer map drained before every timed run."""
    max_repeat: int | None = None
    result_word: Callable[[bytes], int] | None = None
    """The u32 the program writes to packet bytes 8..11 (None: it writes nothing)."""

    def expected_data_out(self, packet: bytes) -> bytes:
        """The packet after the program (the compute workloads write their result into it)."""
        if self.result_word is not None:
            return packet[:8] + _u32(self.result_word(packet)) + packet[12:]
        return packet


def _ring_expected_events(packet: bytes) -> Callable[[int], dict[str, Any]]:
    sport, dport = struct.unpack_from("!HH", packet, 34)
    event = packet[26:30] + packet[30:34] + struct.pack("<HHI", sport, dport, len(packet))
    return lambda runs: {"events": [event] * runs}


def workloads(packet: bytes) -> dict[str, Workload]:
    """The workloads by key, for `packet` (expected values depend on it)."""
    acc = compute_loop_result(packet)
    return {
        "a": Workload(
            "a",
            "compute loop (1000 iterations)",
            PROGS / "compute_loop.o",
            "compute_loop",
            XDP_PASS if acc & 1 else XDP_DROP,
            "`compute_loop.o`: 1000 iterations of xor-shift/multiply/add seeded from the "
            "packet, ~12,000 executed instructions, no helpers",
            result_word=compute_loop_result,
        ),
        "b": Workload(
            "b",
            "XDP hash counter",
            EXAMPLES / "xdp_counter.o",
            "xdp_count",
            XDP_DROP,
            "`xdp_counter.o` `xdp_count`: ~50 instructions, hash map lookup through the "
            "helper, two atomic adds, a bpf-to-bpf call",
            state=_counter_state,
            expected_state=_counter_expected,
            counts_runs=True,
        ),
        "c": Workload(
            "c",
            "LPM-trie firewall",
            EXAMPLES / "xdp_firewall.o",
            "xdp_firewall",
            XDP_DROP,
            "`xdp_firewall.o`: LPM trie lookup over 40 rules (longest match a /24), array "
            "lookup, one atomic add",
            setup=_firewall_setup,
            state=_firewall_state,
            expected_state=_firewall_expected,
            counts_runs=True,
        ),
        "d": Workload(
            "d",
            "ring buffer output",
            PROGS / "ringbuf_event.o",
            "ringbuf_event",
            XDP_PASS,
            "`ringbuf_event.o`: bpf_ringbuf_reserve + submit of a 16-byte event built "
            "from the packet headers",
            state=_ring_state,
            expected_state=_ring_expected_events(packet),
            ring="events",
            max_repeat=RING_RECORDS - 1000,
        ),
        "e": Workload(
            "e",
            "XDP hash lookup, read-only",
            PROGS / "hash_lookup.o",
            "hash_lookup",
            XDP_DROP,
            "`hash_lookup.o`: Ethernet/IPv4 checks and one hash map lookup through the "
            "helper; no writes (the threads' workload without shared counters)",
            setup=_lookup_setup,
            state=_lookup_state,
            expected_state=_lookup_expected,
        ),
        "f": Workload(
            "f",
            "trial division",
            PROGS / "trial_division.o",
            "trial_division",
            XDP_PASS,
            "`trial_division.o`: primes below 1000 + the packet's first byte counted by "
            "trial division (~5,300 64-bit remainders by a variable divisor per run), no "
            "helpers",
            result_word=trial_division_result,
        ),
    }


# -- one engine's instance of a workload ---------------------------------------------


class Unavailable(Exception):
    """An engine cannot run a workload here; the message says why."""


@dataclass
class Run:
    """One test run: r0 of the last run, the packet after it, mean ns per run."""

    retval: int
    data_out: bytes
    duration: int


def load_accepts_engine() -> bool:
    """True when `pybpf.load` takes `engine=` (the JIT's public switch)."""
    try:
        return "engine" in inspect.signature(pybpf.load).parameters
    except (TypeError, ValueError):
        return False


class Side:
    """A workload loaded in one engine: run it, read its maps, drain its ring."""

    engine = ""

    def __init__(self, workload: Workload):
        self.workload = workload
        self.runs = 0
        self._count = threading.Lock()  # two threads may share one side

    def _counted(self, repeat: int) -> None:
        with self._count:
            self.runs += repeat

    def run(self, data: bytes, repeat: int) -> Run:
        raise NotImplementedError

    def map(self, name: str) -> Any:
        """A map with raw-bytes `lookup(key)` and `update(key, value)`."""
        raise NotImplementedError

    def keys(self, name: str) -> list[bytes]:
        raise NotImplementedError

    def ring_records(self, name: str) -> list[bytes]:
        """The committed, not discarded records in the ring, consumed."""
        raise NotImplementedError

    def drain(self, name: str) -> None:
        """Advance the ring's consumer position to its producer position."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _setup(self) -> None:
        if self.workload.setup is not None:
            self.workload.setup(self)


class KernelSide(Side):
    """The workload loaded into the Linux kernel by libbpf (the kernel's JIT runs it)."""

    engine = "kernel"

    def __init__(self, workload: Workload, cpu: int | None = 0):
        super().__init__(workload)
        if not kernel.kernel_available():
            raise Unavailable(kernel.unavailable_reason() or "kernel unavailable")
        try:
            self.obj = kernel.KernelObject(workload.path)
        except kernel.KernelError as error:
            raise Unavailable(str(error)) from error
        self.cpu = cpu
        self._maps: dict[str, kernel.KernelMap] = {}
        self._rings: dict[str, tuple[mmap.mmap, mmap.mmap]] = {}
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    def run(self, data: bytes, repeat: int) -> Run:
        result = self.obj.test_run(self.workload.program, data, repeat=repeat, cpu=self.cpu)
        self._counted(repeat)
        return Run(result.retval, result.data_out, result.duration)

    def map(self, name: str) -> kernel.KernelMap:
        if name not in self._maps:
            self._maps[name] = self.obj.map(name)
        return self._maps[name]

    def keys(self, name: str) -> list[bytes]:
        return list(self.map(name).keys())

    def ring_records(self, name: str) -> list[bytes]:
        return self.map(name).consume()

    def drain(self, name: str) -> None:
        # As libbpf's ring_buffer: the consumer page (read-write) at offset 0,
        # the producer page (read-only) after it; consuming = storing consumer_pos.
        if name not in self._rings:
            fd, page = self.map(name).fd, mmap.PAGESIZE
            consumer = mmap.mmap(fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            producer = mmap.mmap(fd, page, mmap.MAP_SHARED, mmap.PROT_READ, offset=page)
            self._rings[name] = (consumer, producer)
        consumer, producer = self._rings[name]
        struct.pack_into("<Q", consumer, 0, struct.unpack_from("<Q", producer, 0)[0])

    def close(self) -> None:
        for consumer, producer in self._rings.values():
            consumer.close()
            producer.close()
        self._rings.clear()
        self.obj.close()


class PybpfSide(Side):
    """The workload loaded by pybpf, running in its JIT or its interpreter."""

    def __init__(self, workload: Workload, engine: str):
        super().__init__(workload)
        self.engine = engine
        kwargs: dict[str, Any] = {}
        if load_accepts_engine():
            kwargs["engine"] = engine
        elif engine == "jit":
            raise Unavailable("JIT unavailable: pybpf.load has no engine= argument")
        try:
            self.obj = pybpf.load(workload.path, **kwargs)
        except (pybpf.PybpfError, ImportError) as error:
            raise Unavailable(f"{type(error).__name__}: {error}") from error
        try:
            self.prog = self.obj.programs[workload.program]
            self._setup()
            try:
                self.prog.engine  # noqa: B018 - builds the engine (and loads the object)
            except Exception as error:  # an engine that cannot be built here (a JIT in progress)
                raise Unavailable(f"{type(error).__name__}: {error}") from error
            kind = getattr(self.prog, "engine_kind", "interpreter")
            if kind != engine:
                raise Unavailable(f"asked for the {engine}, the program runs in the {kind}")
            # Measure the optimised code, not the first tier of a cold compile.
            wait = getattr(self.prog.engine, "wait_optimised", None)
            if wait is not None:
                wait(60)
        except BaseException:
            self.close()
            raise

    def optimised_compile_seconds(self, samples: int = COMPILE_SAMPLES) -> float | None:
        """Median seconds of compiling the program's optimised tier from its IR (None: no JIT)."""
        ir_text = getattr(self.prog.engine, "ir", None)
        if self.engine != "jit" or not isinstance(ir_text, str):
            return None
        from pybpf.runtime.native import compiler

        machine = compiler._get_engine().new_program_machine()
        seconds = []
        for _ in range(samples):
            context = compiler.llvm.create_context()
            try:
                started = time.perf_counter()
                compiler.emit_program_object(machine, "bench-compile", ir_text, context=context)
                seconds.append(time.perf_counter() - started)
            finally:
                context.close()
        return statistics.median(seconds)

    def run(self, data: bytes, repeat: int) -> Run:
        result = self.prog.test_run(data=data, repeat=repeat)
        self._counted(repeat)
        return Run(result.retval, result.data_out, result.duration)

    def map(self, name: str) -> Any:
        return self.obj.maps[name]

    def keys(self, name: str) -> list[bytes]:
        return list(self.obj.maps[name].keys())

    def ring_records(self, name: str) -> list[bytes]:
        ring = self.obj.maps[name]
        records = [record.data for record in ring.records() if not record.discarded]
        ring.consumer_pos = ring.producer_pos
        return records

    def drain(self, name: str) -> None:
        ring = self.obj.maps[name]
        ring.consumer_pos = ring.producer_pos

    def close(self) -> None:
        self.obj.close()


def open_side(workload: Workload, engine: str, **kwargs: Any) -> Side:
    """The workload in `engine`; `Unavailable` when that engine cannot run it here."""
    if engine == "kernel":
        return KernelSide(workload, **kwargs)
    return PybpfSide(workload, engine)


def cell_reason(engine: str, reason: str) -> str:
    """The table cell of an engine that could not run."""
    if reason.startswith("raised "):
        return f"n/a ({reason.split(' in the ')[0]})"
    if engine == "jit":
        return JIT_UNAVAILABLE
    if engine == "kernel":
        return "n/a (no kernel)"
    return "n/a"


# -- agreement check -----------------------------------------------------------------


@dataclass
class Report:
    """Everything measured for one workload."""

    workload: Workload
    ns: dict[str, float] = field(default_factory=dict)
    samples: dict[str, list[int]] = field(default_factory=dict)
    repeat: dict[str, int] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)
    compile_seconds: float | None = None
    """What compiling the JIT's optimised tier takes (`PybpfSide.optimised_compile_seconds`)."""

    def ratio(self, engine: str) -> float | None:
        if engine not in self.ns or "kernel" not in self.ns:
            return None
        return self.ns[engine] / self.ns["kernel"]

    def as_json(self) -> dict[str, Any]:
        w = self.workload
        return {
            "workload": w.key,
            "title": w.title,
            "object": str(w.path.relative_to(ROOT)),
            "program": w.program,
            "ns_per_run": self.ns,
            "ratio_to_kernel": {e: self.ratio(e) for e in self.ns if e != "kernel"},
            "samples": self.samples,
            "repeat": self.repeat,
            "unavailable": self.unavailable,
            "mismatches": self.mismatches,
            "jit_optimised_compile_s": self.compile_seconds,
        }


def mismatch(report: Report, message: str) -> None:
    """Record a disagreement and print it where it cannot be missed."""
    text = f"{report.workload.key}. {report.workload.title}: {message}"
    report.mismatches.append(text)
    print(f"!!! MISMATCH !!! {text}", file=sys.stderr, flush=True)


def check_agreement(report: Report, data: bytes, engines: tuple[str, ...]) -> None:
    """Run each engine CHECK_REPEAT times in a fresh instance; compare with the kernel and the expected."""
    w = report.workload
    observed: dict[str, dict[str, Any]] = {}
    for engine in engines:
        try:
            side = open_side(w, engine)
        except Unavailable as error:
            report.unavailable[engine] = str(error)
            continue
        try:
            result = side.run(data, CHECK_REPEAT)
            observed[engine] = {
                "retval": result.retval,
                "data_out": result.data_out,
                "state": w.state(side) if w.state else None,
            }
        except Exception as error:  # a fault is a disagreement too; the engine is not timed
            mismatch(report, f"{LABELS[engine]} raised {type(error).__name__}: {error}")
            report.unavailable[engine] = f"raised {type(error).__name__} in the agreement check"
        finally:
            side.close()
    expected = {
        "retval": w.expected_retval,
        "data_out": w.expected_data_out(data),
        "state": w.expected_state(CHECK_REPEAT) if w.expected_state else None,
    }
    reference = "kernel" if "kernel" in observed else None
    for engine, seen in observed.items():
        for item, value in seen.items():
            if value != expected[item]:
                mismatch(
                    report,
                    f"{LABELS[engine]} {item} {_show(value)} != expected {_show(expected[item])}",
                )
            if reference and engine != reference and value != observed[reference][item]:
                mismatch(
                    report,
                    f"{LABELS[engine]} {item} {_show(value)} != kernel's "
                    f"{_show(observed[reference][item])}",
                )


def _show(value: Any) -> str:
    text = value.hex() if isinstance(value, bytes) else repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


# -- timing --------------------------------------------------------------------------


def calibrate(side: Side, data: bytes, cap: int, budget: float) -> int:
    """A repeat count that makes one timed run take about `budget` seconds (1..cap)."""
    ring = side.workload.ring
    if ring:
        side.drain(ring)
    first = side.run(data, 1)  # warm-up: builds caches, faults pages in
    probe = max(1, min(cap, int(budget / 10 * 1e9 / max(first.duration, 1))))
    # A short probe's mean includes the test run's fixed set-up cost, which
    # makes fast engines look slow: probe again with the larger count until
    # the estimate stops growing.
    for _ in range(4):
        if ring:
            side.drain(ring)
        measured = side.run(data, probe)
        estimate = max(1, min(cap, int(budget * 1e9 / max(measured.duration, 1))))
        if estimate <= probe * 2 or probe >= cap:
            return estimate
        probe = max(probe, estimate // 10)
    return estimate


def measure(
    report: Report,
    data: bytes,
    engines: tuple[str, ...],
    repeat: int,
    rounds: int,
    budget: float,
) -> None:
    """Interleaved timed runs (kernel, JIT, interpreter per round); median ns per run per engine."""
    w = report.workload
    cap = min(repeat, w.max_repeat) if w.max_repeat else repeat
    sides: dict[str, Side] = {}
    try:
        for engine in engines:
            if engine in report.unavailable:
                continue
            try:
                sides[engine] = open_side(w, engine)
            except Unavailable as error:
                report.unavailable[engine] = str(error)
                continue
            report.repeat[engine] = calibrate(sides[engine], data, cap, budget)
            if engine == "jit":
                report.compile_seconds = sides[engine].optimised_compile_seconds()
            report.samples[engine] = []
        for _ in range(rounds):
            for engine, side in sides.items():
                if w.ring:
                    side.drain(w.ring)
                result = side.run(data, report.repeat[engine])
                report.samples[engine].append(result.duration)
                if result.retval != w.expected_retval:
                    mismatch(
                        report,
                        f"{LABELS[engine]} timed run retval {result.retval} != {w.expected_retval}",
                    )
        for engine, side in sides.items():
            report.ns[engine] = statistics.median(report.samples[engine])
            if w.counts_runs and w.state and w.expected_state:
                state, want = w.state(side), w.expected_state(side.runs)
                if state != want:
                    mismatch(
                        report, f"{LABELS[engine]} after {side.runs:,} runs: {state} != {want}"
                    )
    finally:
        for side in sides.values():
            side.close()


def bench_workload(
    workload: Workload,
    data: bytes,
    *,
    repeat: int,
    rounds: int,
    budget: float,
    engines: tuple[str, ...] = ENGINES,
) -> Report:
    """Agreement check, then interleaved timing, for one workload."""
    report = Report(workload)
    check_agreement(report, data, engines)
    measure(report, data, engines, repeat, rounds, budget)
    return report


# -- threads -------------------------------------------------------------------------


@dataclass
class Scaling:
    """Aggregate runs per second of one workload in one engine, 1 vs 2 threads."""

    engine: str
    workload: str = "b"
    repeat: int = 0
    one: float | None = None
    own: float | None = None
    shared: float | None = None
    unavailable: str | None = None
    errors: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "workload": self.workload,
            "repeat_per_thread": self.repeat,
            "runs_per_s": {
                "1 thread": self.one,
                "2 threads own": self.own,
                "2 threads same": self.shared,
            },
            "unavailable": self.unavailable,
            "errors": self.errors,
        }


def _threaded(sides: list[Side], data: bytes, repeat: int) -> tuple[float, list[str]]:
    """Each side run by its own thread, all started together: aggregate runs/s and errors."""
    barrier = threading.Barrier(len(sides) + 1)
    errors: list[str] = []
    retvals: list[int] = []

    def work(side: Side) -> None:
        barrier.wait()
        try:
            retvals.append(side.run(data, repeat).retval)
        except Exception as error:  # reported, not raised: the other thread keeps going
            errors.append(f"{type(error).__name__}: {error}")

    threads = [threading.Thread(target=work, args=(side,)) for side in sides]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter_ns()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter_ns() - start
    errors += [f"retval {r}" for r in retvals if r != XDP_DROP]
    return len(sides) * repeat * 1e9 / elapsed, errors


def bench_threads(
    workload: Workload, data: bytes, engine: str, *, repeat: int, rounds: int, budget: float
) -> Scaling:
    """`workload` in `engine` on 1 thread, 2 threads × own instance, 2 × same."""
    scaling = Scaling(engine, workload=workload.key)
    extra = {"cpu": None} if engine == "kernel" else {}  # let the scheduler spread the threads
    try:
        first = open_side(workload, engine, **extra)
    except Unavailable as error:
        scaling.unavailable = str(error)
        return scaling
    second: Side | None = None
    try:
        second = open_side(workload, engine, **extra)
        scaling.repeat = n = calibrate(first, data, repeat, budget)
        calibrate(second, data, repeat, budget / 10)
        one, own, shared = [], [], []
        for _ in range(rounds):
            rate, errors = _threaded([first], data, n)
            one.append(rate)
            scaling.errors += errors
            rate, errors = _threaded([first, second], data, n)
            own.append(rate)
            scaling.errors += errors
            rate, errors = _threaded([first, first], data, n)
            shared.append(rate)
            scaling.errors += errors
        scaling.one, scaling.own, scaling.shared = (
            statistics.median(one),
            statistics.median(own),
            statistics.median(shared),
        )
        for side in (first, second):
            if workload.state and workload.expected_state:
                state, want = workload.state(side), workload.expected_state(side.runs)
                if state != want:
                    scaling.errors.append(f"after {side.runs:,} runs: {state} != {want}")
    finally:
        first.close()
        if second is not None:
            second.close()
    for error in scaling.errors:
        print(f"!!! MISMATCH !!! threads, {LABELS[engine]}: {error}", file=sys.stderr)
    return scaling


# -- output --------------------------------------------------------------------------


def _ns(report: Report, engine: str) -> str:
    if engine in report.ns:
        return f"{report.ns[engine]:,.0f}"
    reason = report.unavailable.get(engine, "not run")
    return cell_reason(engine, reason)


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:,.1f}"


def _ratio(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.2f}×" if value < 10 else f"{value:,.0f}×"


def results_table(reports: list[Report]) -> str:
    """The markdown table of ns per run and ratios to the kernel."""
    lines = [
        "| workload | kernel, ns/run | pybpf JIT, ns/run | JIT / kernel | JIT opt. compile, ms "
        "| pybpf interpreter, ns/run | interpreter / kernel | repeat (kernel / JIT / interp.) "
        "| agree |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in reports:
        repeats = " / ".join(f"{r.repeat[e]:,}" if e in r.repeat else "—" for e in ENGINES)
        agree = "**MISMATCH**" if r.mismatches else "yes"
        lines.append(
            f"| {r.workload.key}. {r.workload.title} | {_ns(r, 'kernel')} | {_ns(r, 'jit')} "
            f"| {_ratio(r.ratio('jit'))} | {_ms(r.compile_seconds)} | {_ns(r, 'interpreter')} "
            f"| {_ratio(r.ratio('interpreter'))} | {repeats} | {agree} |"
        )
    return "\n".join(lines)


def scaling_table(scalings: list[Scaling]) -> str:
    """The markdown table of runs/s for 1 and 2 threads."""
    lines = [
        "| engine (workload) | repeat per thread | 1 thread, runs/s | 2 threads, own instances, "
        "runs/s | × | 2 threads, same instance, runs/s | × |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in scalings:
        if s.unavailable is not None:
            na = cell_reason(s.engine, s.unavailable)
            lines.append(f"| {LABELS[s.engine]} ({s.workload}) | — | {na} | {na} | — | {na} | — |")
            continue
        assert s.one and s.own and s.shared
        lines.append(
            f"| {LABELS[s.engine]} ({s.workload}) | {s.repeat:,} | {s.one:,.0f} | {s.own:,.0f} "
            f"| {s.own / s.one:.2f} | {s.shared:,.0f} | {s.shared / s.one:.2f} |"
        )
    return "\n".join(lines)


def notes(reports: list[Report], scalings: list[Scaling]) -> list[str]:
    """Why cells are missing, one line each."""
    seen: dict[str, str] = {}
    for r in reports:
        for engine, reason in r.unavailable.items():
            seen.setdefault(f"{LABELS[engine]}: {reason}", r.workload.key)
    for s in scalings:
        if s.unavailable:
            seen.setdefault(f"{LABELS[s.engine]}: {s.unavailable}", "threads")
    return [f"- {text}" for text in seen]


def describe(args: argparse.Namespace) -> str:
    """How the figures were measured, for the recorded section."""
    return (
        f"Medians of {args.rounds} interleaved rounds (kernel, JIT, interpreter) after a "
        "warm-up and a calibration run each; each engine's repeat count makes one timed "
        f"test run last about {args.budget} s, capped at {args.repeat:,}. Kernel: "
        "`bpf_prog_test_run_opts` duration (mean ns per run, the kernel's own JIT, pinned "
        "to CPU 0); pybpf: `TestRunResult.duration` of `Program.test_run(repeat=N)` (mean ns "
        "per run), in the optimised tier, whose compile time (IR to object, median of "
        f"{COMPILE_SAMPLES}) is the JIT opt. compile column. Same object file and packet "
        "(`udp_dns.bin`) everywhere; retval, packet "
        "out and map contents checked against the kernel's. "
        f"Python {platform.python_version()} on {platform.machine()} ({platform.platform()}); "
        "the machine is shared, so single runs vary."
    )


def record(
    command: str, reports: list[Report], scalings: list[Scaling], args: argparse.Namespace
) -> None:
    """Append a dated section with both tables to docs/benchmarks.md."""
    date = datetime.date.today().isoformat()
    lines = [
        f"\n## Engines side by side — {date}\n",
        f"Command: `{command}`\n",
        results_table(reports),
        "",
    ]
    lines += [f"- {r.workload.key}. {r.workload.summary}" for r in reports]
    lines += ["", describe(args)]
    if scalings:
        lines += [
            "",
            "Workloads from one to two Python threads, each calling "
            "`test_run(repeat=N)` (aggregate runs per second, wall clock; the kernel "
            "threads unpinned):",
            "",
            scaling_table(scalings),
        ]
    missing = notes(reports, scalings)
    if missing:
        lines += ["", "Not measured:", "", *missing]
    with DOC.open("a", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Measure, print the tables (or JSON); optionally record; 1 on any mismatch."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat", type=int, default=1_000_000, help="most runs per timed test run"
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per workload")
    parser.add_argument(
        "--budget", type=float, default=0.25, help="seconds per timed test run (sets repeat counts)"
    )
    parser.add_argument("--only", default="a,b,c,d,f", help="workloads to run, e.g. a,c")
    parser.add_argument(
        "--threads", action="store_true", help="also 1 vs 2 threads on --thread-workloads"
    )
    parser.add_argument(
        "--thread-workloads", default="b,e", help="workloads of the thread test, e.g. b,e"
    )
    parser.add_argument(
        "--thread-repeat",
        type=int,
        default=50_000_000,
        help="most runs per thread in the thread test (long enough to dwarf thread start-up)",
    )
    parser.add_argument("--record", action="store_true", help="append to docs/benchmarks.md")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args(argv)
    data = PACKET.read_bytes()
    table = workloads(data)
    wanted = [key.strip() for key in args.only.split(",") if key.strip()]
    unknown = [key for key in wanted if key not in table]
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}: choose from {', '.join(table)}")
    reports = []
    for key in wanted:
        if not args.json:
            print(f"{key}. {table[key].title} ...", file=sys.stderr, flush=True)
        reports.append(
            bench_workload(
                table[key], data, repeat=args.repeat, rounds=args.rounds, budget=args.budget
            )
        )
    scalings = []
    thread_keys = [k.strip() for k in args.thread_workloads.split(",") if k.strip()]
    for key in thread_keys if args.threads else []:
        for engine in ENGINES:
            if not args.json:
                print(f"threads ({key}): {LABELS[engine]} ...", file=sys.stderr, flush=True)
            scalings.append(
                bench_threads(
                    table[key],
                    data,
                    engine,
                    repeat=args.thread_repeat,
                    rounds=args.rounds,
                    budget=max(args.budget, 1.0),
                )
            )
    if args.json:
        print(
            json.dumps(
                {
                    "workloads": [r.as_json() for r in reports],
                    "threads": [s.as_json() for s in scalings],
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
                indent=2,
            )
        )
    else:
        print(results_table(reports))
        if scalings:
            print()
            print(scaling_table(scalings))
        missing = notes(reports, scalings)
        if missing:
            print("\nNot measured:")
            print("\n".join(missing))
    if args.record:
        command = "python benchmarks/bench_engines.py " + " ".join(argv or sys.argv[1:])
        record(command.strip(), reports, scalings, args)
    failed = any(r.mismatches for r in reports) or any(s.errors for s in scalings)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
