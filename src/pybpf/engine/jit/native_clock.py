"""Native clocks, randomness and CPU identity for JIT-compiled programs.

* `bpf_ktime_get_ns` / `_boot_ns` / `_coarse_ns` call the C library's
  `clock_gettime` with the clock ids `linux_helpers.time` uses. The IR
  names it `CLOCK_SYMBOL`, which `llvm.add_symbol` maps to the address
  ctypes finds, so linking never depends on MCJIT searching the process.
* `bpf_jiffies64`: the same formula as the Python helper, on
  CLOCK_MONOTONIC, split as ``s * HZ + ns_rest * HZ / 1e9`` so no
  intermediate product overflows 64 bits.
* `bpf_get_prandom_u32`: SplitMix64 on `run->prandom` (the upper 32 bits
  of each output). Not the Python helper's generator, so the two engines
  give different numbers, as two kernels would; any seed, including 0,
  gives a full-period sequence. A zero state is seeded on first use from
  the clock and the RunState's address; an engine may seed it instead.
* `bpf_get_smp_processor_id`: `run->cpu`; `bpf_get_numa_node_id`: 0.
"""

from __future__ import annotations

import ctypes
import ctypes.util

from llvmlite import ir

from ...platform.helper_ids import HelperId
from ...runtime.linux_helpers.time import _BOOTTIME, _COARSE, _MONOTONIC, HZ, INITIAL_JIFFIES
from ...runtime.native.irblocks import I32, I64, PTR, i64, load
from .native_site import (
    add_symbol,
    declare,
    run_address,
    run_cpu,
    run_field,
    store_run_field,
)

CLOCK_SYMBOL = "pybpf_jit_clock_gettime_v1"
"""The symbol compiled programs call for `clock_gettime(clockid_t, struct timespec *)`."""

MONOTONIC, BOOTTIME, COARSE = _MONOTONIC, _BOOTTIME, _COARSE
"""The clock ids of the Python helpers (the same clocks in both engines)."""

NS = 1_000_000_000
GOLDEN = 0x9E3779B97F4A7C15


def _libc_clock_gettime() -> int:
    """The address of the C library's clock_gettime (0 when there is none)."""
    # The process's own symbols first (libc is always loaded into CPython on
    # Linux): find_library would spawn a subprocess on every first import.
    for find in (lambda: None, lambda: ctypes.util.find_library("c")):
        try:
            libc = ctypes.CDLL(find())
            return ctypes.cast(libc.clock_gettime, ctypes.c_void_p).value or 0
        except (OSError, AttributeError, TypeError):
            continue
    return 0


_CLOCK_ADDRESS = _libc_clock_gettime()
AVAILABLE = bool(_CLOCK_ADDRESS)
"""Whether the clocks can run natively (else their calls use the Python helpers)."""

if AVAILABLE:  # from import on: cached objects name the symbol without any emitter running
    add_symbol(CLOCK_SYMBOL, _CLOCK_ADDRESS)


def _now(site: object, clock: int) -> ir.Value:
    """Nanoseconds of `clock`, as i64."""
    b: ir.IRBuilder = site.builder  # type: ignore[attr-defined]
    function = declare(site.module, CLOCK_SYMBOL, I32, [I32, PTR])  # type: ignore[attr-defined]
    # The timespec lives in the function's entry block, so that a call in
    # a loop does not grow the stack.
    entry = b.function.entry_basic_block
    with b.goto_block(entry):
        if entry.instructions:
            b.position_before(entry.instructions[0])
        timespec = b.alloca(ir.ArrayType(I64, 2))
    b.call(function, [ir.Constant(I32, clock), timespec])
    at = b.ptrtoint(timespec, I64)
    seconds, nanos = load(b, at, I64), load(b, b.add(at, i64(8)), I64)
    return b.add(b.mul(seconds, i64(NS)), nanos)


def _clock(clock: int):
    def emit(site: object) -> ir.Value | None:
        return _now(site, clock) if AVAILABLE else None

    emit.__doc__ = f"Native clock_gettime({clock}) in nanoseconds."
    return emit


def emit_jiffies64(site: object) -> ir.Value | None:
    """INITIAL_JIFFIES + HZ ticks per second of CLOCK_MONOTONIC."""
    if not AVAILABLE:
        return None
    b: ir.IRBuilder = site.builder  # type: ignore[attr-defined]
    now = _now(site, MONOTONIC)
    seconds, rest = b.udiv(now, i64(NS)), b.urem(now, i64(NS))
    ticks = b.add(b.mul(seconds, i64(HZ)), b.udiv(b.mul(rest, i64(HZ)), i64(NS)))
    return b.add(ticks, i64(INITIAL_JIFFIES))


def emit_prandom(site: object) -> ir.Value:
    """SplitMix64 step on `run->prandom`; the upper half of the output.

    A state of 0 (a run slot nobody seeded) is first seeded from
    CLOCK_MONOTONIC and the RunState's address, so that processes do not
    all draw the same sequence.
    """
    b: ir.IRBuilder = site.builder  # type: ignore[attr-defined]
    state = run_field(site, "prandom")
    if AVAILABLE:
        before = b.block
        seed = b.append_basic_block("prandom.seed")
        seeded = b.append_basic_block("prandom.seeded")
        b.cbranch(b.icmp_unsigned("==", state, i64(0)), seed, seeded)
        b.position_at_end(seed)
        fresh = b.xor(_now(site, MONOTONIC), b.mul(run_address(site), i64(GOLDEN)))
        seed_end = b.block
        b.branch(seeded)
        b.position_at_end(seeded)
        merged = b.phi(I64)
        merged.add_incoming(state, before)
        merged.add_incoming(fresh, seed_end)
        state = merged
    state = b.add(state, i64(GOLDEN))
    store_run_field(site, "prandom", state)
    z = b.mul(b.xor(state, b.lshr(state, i64(30))), i64(0xBF58476D1CE4E5B9))
    z = b.mul(b.xor(z, b.lshr(z, i64(27))), i64(0x94D049BB133111EB))
    z = b.xor(z, b.lshr(z, i64(31)))
    return b.lshr(z, i64(32))


def emit_smp_processor_id(site: object) -> ir.Value:
    """The simulated CPU of the run."""
    return run_cpu(site)


def emit_numa_node_id(site: object) -> ir.Value:
    """Always node 0, as the Python helper."""
    return i64(0)


EMITTERS = {
    HelperId.KTIME_GET_NS: _clock(MONOTONIC),
    HelperId.KTIME_GET_BOOT_NS: _clock(BOOTTIME),
    HelperId.KTIME_GET_COARSE_NS: _clock(COARSE),
    HelperId.JIFFIES64: emit_jiffies64,
    HelperId.GET_PRANDOM_U32: emit_prandom,
    HelperId.GET_SMP_PROCESSOR_ID: emit_smp_processor_id,
    HelperId.GET_NUMA_NODE_ID: emit_numa_node_id,
}
"""Helper id → emitter, for `helpers_ir` to register."""
