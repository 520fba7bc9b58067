"""The native calling convention of JIT-compiled programs (shared by every JIT part).

Every eBPF function (the entry at pc 0 and each bpf-to-bpf subprogram at
pc P) becomes one LLVM function with external linkage::

    i64 @<prefix>_f<P>(i64 r1, i64 r2, i64 r3, i64 r4, i64 r5, i64 depth, %RunState* run)

returning r0. `depth` is the call depth (0 for the entry); the function's
frame pointer r10 is `run->stack_top0 + depth * run->stack_stride` (the
frames of a `runtime.memory.Stack`, registered in the region table so the
Python helpers can read program stack memory).

`RunState` is one native struct per concurrent run (a thread's run, or a
nested run from a Python callback), allocated by the engine and passed
to everything native. Its layout is defined here, once, as a ctypes
structure; IR code reaches fields by index (`RUN_FIELD[name]`).

Helpers:

* native helpers are emitted inline or as calls to native functions with
  the signature ``i64 (i64 r1, i64 r2, i64 r3, i64 r4, i64 r5, %RunState*)``;
* every other helper goes through the Python fallback, a ctypes callback
  with the signature of `FALLBACK_PROTOTYPE`
  ``i64 fallback(RunState* run, i64 helper_id, i64 r1, .., i64 r5)``.
  It runs the helper table's Python implementation with the run's
  `HelperEnv`. When the implementation raises (a `ProgramFault`, a
  `TailCall`, anything), the exception is stored on the Python side and
  `run->status` is set non-zero; generated code checks `status` after
  every fallback call and after every bpf-to-bpf call and returns at once
  when it is set, so the engine re-raises the exception after the native
  call returns.

Native tail calls (`engine.jit.native_tailcall`): `bpf_tail_call` to a
program whose JIT entry is in the execution context's native entry table
(`RunState.tail_table`, see `ExecutionContext.native_entries`) calls the
target's function at pc 0 on the same `RunState`, its frames from the
calling function's on (`stack_top0` moved while it runs), and the calling
function returns the target's r0: as in Linux, a tail call replaces the
frame that made it, not the whole run. `tail_target` is the id of the
program running after native tail calls (0: the engine's own), for the
Python fallback to find the engine whose helpers and instructions are
running. `STATUS_TAIL_DONE` tells a tail-call site that the Python
fallback ran the chain itself (its r0 in `tail_r0`).
"""

from __future__ import annotations

import ctypes

FUNC_PREFIX = "bpf"
"""Default symbol prefix; each compiled program gets its own unique prefix."""


class RunState(ctypes.Structure):
    """Per-run native state (see module docstring).

    `stack_top0` is r10 of frame 0 and `stack_stride` the distance between
    frames; `ctx` the context pointer r1 of the run; `cpu` the simulated CPU
    (per-CPU map slot); `tail_calls` how many tail calls this run has made;
    `status` non-zero when a Python helper raised (the run unwinds);
    `handle` identifies the run's `HelperEnv` to the Python fallback;
    `prandom` the state of bpf_get_prandom_u32; `ctx_pointers` the address
    of the context region's native array of pointer fields (0 without a
    context region), `frame_start` / `frame_end` the bounds of the packet
    buffer the context's data pointers may move within (XDP headroom and
    tailroom; 0 when not a packet program); `tail_table` the address of
    the execution context's native entry table (0: no native tail calls),
    `tail_target` the id of the program a native tail call started (0: the
    engine's own program), `tail_r0` the r0 of a run a native tail call
    finished (valid while `status` is `STATUS_TAIL_DONE`), `stack_last`
    r10 of the run stack's last frame (a native tail call runs its target
    on the frames from the caller's on, when they fit below it); `caller`
    the address of the execution context's `runtime.caller.CallerRecord`
    (0 without an execution context).
    """

    _fields_ = [
        ("stack_top0", ctypes.c_uint64),
        ("stack_stride", ctypes.c_uint64),
        ("ctx", ctypes.c_uint64),
        ("cpu", ctypes.c_uint32),
        ("tail_calls", ctypes.c_uint32),
        ("status", ctypes.c_uint32),
        ("reserved", ctypes.c_uint32),
        ("handle", ctypes.c_uint64),
        ("prandom", ctypes.c_uint64),
        ("ctx_pointers", ctypes.c_uint64),
        ("frame_start", ctypes.c_uint64),
        ("frame_end", ctypes.c_uint64),
        ("tail_table", ctypes.c_uint64),
        ("tail_target", ctypes.c_uint64),
        ("tail_r0", ctypes.c_uint64),
        ("stack_last", ctypes.c_uint64),
        ("caller", ctypes.c_uint64),
    ]


STATUS_OK = 0
"""`RunState.status`: the run goes on."""
STATUS_ERROR = 1
"""`RunState.status`: a Python helper raised (or native code found a fault); unwind."""
STATUS_TAIL_DONE = 2
"""`RunState.status`: the Python fallback ran a tail-call chain, r0 in `tail_r0`."""

RUN_FIELD = {name: index for index, (name, _) in enumerate(RunState._fields_)}
"""Field name → index in the LLVM struct type of `RunState`."""

FALLBACK_PROTOTYPE = ctypes.CFUNCTYPE(
    ctypes.c_int64,
    ctypes.POINTER(RunState),
    ctypes.c_int64,
    ctypes.c_uint64,
    ctypes.c_uint64,
    ctypes.c_uint64,
    ctypes.c_uint64,
    ctypes.c_uint64,
)
"""``i64 fallback(RunState*, i64 helper_id, u64 r1..r5)``: a helper run in Python."""
