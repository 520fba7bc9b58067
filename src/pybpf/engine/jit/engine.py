"""`JitEngine`: a verified program compiled to native code, with the interpreter's interface.

`JitEngine(insns, helpers=..., memory=..., runtime=..., context_loads=...)`
checks the program (`engine.cfg`, raising the interpreter's errors at
construction), compiles it through LLVM (`engine.jit.compile`; the disk
cache makes a second process skip the compile) and runs it through ctypes
`CFUNCTYPE` calls, which release the GIL: several threads run one engine
in parallel, each run on its own `RunSlot` (a `RunState` and a `Stack`,
pooled like the interpreter's stacks).

`value_ranges` (pc → register → proven unsigned range, the verifier's
`Report.value_ranges`) lets the translation leave out the division and
shift checks those ranges make redundant (`engine.jit.ops`);
`memory_regions` (pc → "stack" or "not-stack", `Report.memory_regions`)
puts each load and store in an LLVM alias scope. Give it only facts the
verifier proved for exactly these instructions.

The JIT trusts the verifier: no bounds checks, no instruction budget
(`budget` is accepted and ignored), and no instruction count: `executed`
is 0 after every run. Helpers with no native emitter and callbacks go
through Python exactly as in the interpreter (see `engine.jit.fallback`).
A tail call to a program whose JIT entry is registered in the execution
context (`ExecutionContext.register_native_entry`, done by `Program`)
runs natively (`engine.jit.native_tailcall`); any other tail call raises
`TailCall` from Python and is followed here, as the interpreter does.

The simulated CPU of a run (per-CPU map slots, bpf_get_smp_processor_id)
is `cpu` when given, else the calling thread's CPU in the execution
context (`ExecutionContext.current_cpu`), else 0.

Tiers (`engine.jit.compile`): after a disk-cache miss the engine first runs
quickly generated code (`tier` 0) while the optimised code is compiled in
the background; when it is ready the engine's entry points are swapped
(`tier` 2; each is one attribute assignment, and a run reads the ones it
uses when it starts, so runs in progress finish in the old code, which
stays loaded) and `on_optimised` callbacks run (`Program` re-registers its
native tail-call entry there). `wait_optimised()` waits for that.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ...errors import DecodeError, ProgramFault
from ...isa.instruction import Instruction, check_fields
from ...runtime.helpers import HelperEnv, HelperTable, TailCall
from ...runtime.memory import ContextRegion, Memory
from ..cfg import analyze
from ..common import follow_tail_calls, instruction_text, unknown_helper
from ..translate import CALLBACK_FRAME, FUNC_TOKEN, MAX_DEPTH
from .abi import STATUS_TAIL_DONE
from .compile import TIER_OPTIMISED, CompiledProgram, compile_program, ir_text
from .fallback import RunSlot
from .native_maps import fill_map_ops

_M64 = (1 << 64) - 1
_U64 = ctypes.c_uint64

FUNCTION_PROTOTYPE = ctypes.CFUNCTYPE(_U64, _U64, _U64, _U64, _U64, _U64, _U64, ctypes.c_void_p)
"""A compiled eBPF function: ``u64 f(r1..r5, depth, RunState*)``."""

REPEAT_PROTOTYPE = ctypes.CFUNCTYPE(_U64, _U64, _U64, ctypes.c_void_p)
"""The native repeat loop: ``u64 repeat(r1, n, RunState*)``."""

REPEAT_FIRST_CHUNK = 256
"""Runs in the first native call of `run_repeated`; later calls double it (see there)."""
REPEAT_CHUNK_SECONDS = 0.05
"""A native call of `run_repeated` stops growing once it takes this long."""


class JitEngine:
    """A program compiled to native code once, run any number of times."""

    def __init__(
        self,
        insns: Iterable[Instruction],
        *,
        helpers: HelperTable | None = None,
        memory: Memory | None = None,
        budget: int | None = None,
        where: str | None = None,
        runtime: Any = None,
        context_loads: Mapping[int, int] | None = None,
        value_ranges: Mapping[int, Mapping[int, tuple[int, int]]] | None = None,
        memory_regions: Mapping[int, str] | None = None,
        cpu: int | None = None,
    ):
        self.insns = list(insns)
        self.runtime = runtime
        self.helpers = helpers if helpers is not None else HelperTable()
        self.memory = memory if memory is not None else Memory()
        self.budget = budget  # accepted for the common interface; native code runs unmetered
        self.cpu = cpu  # None: the calling thread's CPU (see the module docstring)
        self._current_cpu = getattr(runtime, "current_cpu", None) if cpu is None else None
        self.executed = 0
        self.context_loads = dict(context_loads or {})
        self.value_ranges = dict(value_ranges or {})
        self.memory_regions = dict(memory_regions or {})
        self.layout = analyze(self.insns, where)
        self._by_pc = self.layout.insns
        for pc, insn in self._by_pc.items():
            # The decoder's own checks, for instruction lists built without it:
            # LLVM must never see a field value it has no meaning for.
            problem = check_fields(insn)
            if problem is not None:
                raise DecodeError(problem, pc=pc, where=where)
        self._ir: str | None = None
        # The native map-operation table the compiled code reads for maps it
        # could not name at compile time; on a disk-cache hit no emitter ran
        # to fill it, so fill it here for every live map.
        fill_map_ops(runtime)
        self._native, self._ir = compile_program(
            self.layout,
            self.insns,
            helpers=self.helpers,
            runtime=runtime,
            context_loads=self.context_loads,
            value_ranges=self.value_ranges,
            memory_regions=self.memory_regions,
        )
        self._tail_table = getattr(runtime, "native_entries_address", None)
        self._pool: list[RunSlot] = []
        self._slots: list[RunSlot] = []  # every slot made, for close()
        self._tier_lock = threading.Lock()
        self._on_optimised: list[Callable[[JitEngine], None]] = []
        self._install(self._native.current)
        self._native.subscribe(self._install)

    def _install(self, compiled: CompiledProgram) -> None:
        # The entry points of `compiled` (the first tier, or the optimised code
        # replacing it): each assignment is atomic for the threads running the
        # engine, and mixing tiers is harmless (the same program, the same ABI).
        with self._tier_lock:
            current = getattr(self, "compiled", None)
            if current is not None and current.tier >= compiled.tier:
                return
            self._functions = {
                pc: FUNCTION_PROTOTYPE(address) for pc, address in compiled.functions.items()
            }
            self._entry = self._functions[0]
            self._repeat = REPEAT_PROTOTYPE(compiled.repeat)
            #: The native address of the entry function (what native tail calls call).
            self.entry_address: int = compiled.functions[0]
            self.compiled: CompiledProgram = compiled
            #: The tier of the code runs start in: 0 (fast to compile) or 2 (optimised).
            self.tier: int = compiled.tier
            callbacks: list[Callable[[JitEngine], None]] = []
            if compiled.tier == TIER_OPTIMISED:
                callbacks, self._on_optimised = self._on_optimised, []
        for callback in callbacks:
            callback(self)

    def on_optimised(self, callback: Callable[[JitEngine], None]) -> None:
        """Call `callback(engine)` once the optimised code runs (now if it already does)."""
        with self._tier_lock:
            if self.tier != TIER_OPTIMISED:
                self._on_optimised.append(callback)
                return
        callback(self)

    def wait_optimised(self, timeout: float | None = None) -> bool:
        """Wait until the engine runs optimised code (tier 2); False if it does not by `timeout`.

        Also False when the background compile failed (the first tier keeps running).
        """
        self._native.wait(timeout)
        return self.tier == TIER_OPTIMISED

    # -- introspection ------------------------------------------------------------

    @property
    def ir(self) -> str:
        """The LLVM IR of the program (built on demand after a cache hit)."""
        if self._ir is None:
            self._ir = ir_text(
                self.layout,
                self.insns,
                helpers=self.helpers,
                runtime=self.runtime,
                context_loads=self.context_loads,
                value_ranges=self.value_ranges,
                memory_regions=self.memory_regions,
            )
        return self._ir

    @property
    def source(self) -> str:
        """Same as `ir` (the interpreter's `source` is its generated Python)."""
        return self.ir

    def instruction_at(self, pc: int) -> Instruction | None:
        """The instruction at `pc`, or None."""
        return self._by_pc.get(pc)

    def instruction_text(self, pc: int) -> str:
        """The instruction at `pc` as text, for fault messages."""
        return instruction_text(self._by_pc, pc)

    def unknown_helper(self, helper_id: int, pc: int) -> None:
        """Raise what the interpreter raises for a call of a helper not in the table."""
        raise unknown_helper(self.runtime, helper_id, pc, self.instruction_text(pc))

    # -- run slots ------------------------------------------------------------------

    def _acquire(self, env: HelperEnv, ctx: int) -> RunSlot:
        try:
            slot = self._pool.pop()  # one slot per concurrent or nested run
        except IndexError:
            slot = RunSlot(self, self.memory)
            self._slots.append(slot)
        slot.env = env
        state = slot.state
        state.ctx = ctx
        state.cpu = env.cpu
        state.tail_calls = env.tail_calls
        state.status = 0
        state.tail_target = 0
        state.tail_table = self._tail_table() if self._tail_table is not None else 0
        region = self.memory.find(ctx) if ctx else None
        if isinstance(region, ContextRegion) and region.start == ctx:
            pointers = region.pointers
            state.ctx_pointers = getattr(region, "pointers_address", 0)
            state.frame_start = pointers.get("hard_start", 0)
            state.frame_end = pointers.get("hard_end", 0)
        else:
            state.ctx_pointers = state.frame_start = state.frame_end = 0
        return slot

    def _release(self, slot: RunSlot) -> None:
        slot.env = None
        self._pool.append(slot)

    # -- running ------------------------------------------------------------------

    def _env(self, ctx: int) -> HelperEnv:
        cpu = self.cpu
        if cpu is None:
            cpu = self._current_cpu() if self._current_cpu is not None else 0
        return HelperEnv(self.memory, ctx, self, self.runtime, cpu)

    @staticmethod
    def _finish(slot: RunSlot, r0: int) -> int:
        # After a native call: r0, the r0 a native tail call finished the run
        # with, or the exception a Python helper raised.
        state = slot.state
        status = state.status
        if not status:
            return r0
        if status == STATUS_TAIL_DONE:
            state.status = 0
            return state.tail_r0
        raise slot.take_error()

    def run(self, r1: int = 0, r2: int = 0, r3: int = 0, r4: int = 0, r5: int = 0) -> int:
        """Run the program with r1-r5 as given; return r0 as an unsigned 64-bit value.

        Follows tail calls (a helper raising `TailCall`) with the same r1.
        """
        m = _M64
        args = (r1 & m, r2 & m, r3 & m, r4 & m, r5 & m)
        env = self._env(args[0])
        self.executed = 0
        try:
            r0, _ = self.enter(args, env)
        except TailCall as call:
            r0 = self._follow_tail_calls(call, env)
        self.executed = 0
        return r0

    def _follow_tail_calls(
        self, call: TailCall, env: HelperEnv, args: tuple[int, ...] | None = None
    ) -> int:
        r0, _ = follow_tail_calls(call, env, args or (env.ctx, 0, 0, 0, 0))
        return r0

    def enter(self, args: tuple[int, ...], env: HelperEnv) -> tuple[int, int]:
        """Run from pc 0 with a fresh frame; return (r0, 0): the JIT counts no instructions."""
        slot = self._acquire(env, args[0])
        try:
            if args[1] | args[2] | args[3] | args[4] or env.tail_calls:
                r0 = self._entry(*args, 0, slot.address)
            else:
                # The usual run (only a context pointer, no tail call yet): the
                # repeat loop once, since a 3-argument ctypes call costs half.
                r0 = self._repeat(args[0], 1, slot.address)
            # The run's tail-call counter is shared with whoever started this
            # program (a tail call from a subprogram returns here).
            env.tail_calls = slot.state.tail_calls
            r0 = self._finish(slot, r0)
        finally:
            self._release(slot)
        return r0, 0

    def prepare_run(self) -> None:
        """Set up a run slot now, so that the next run does not (a test run's timer)."""
        if not self._pool:
            self._release(self._acquire(self._env(0), 0))

    def open_native_run(self, ctx: int) -> RunSlot:
        """A run slot for native code that calls `entry_address` itself (a replay loop):
        its `RunState` is at `slot.address`, set up for context `ctx`. Give it back with
        `close_native_run`; `finish_native_run` turns a run a Python helper stopped into
        its r0 (or raises what the helper raised)."""
        return self._acquire(self._env(ctx), ctx)

    def finish_native_run(self, slot: RunSlot, r0: int) -> int:
        """r0 of a run native code made on `slot` whose `status` is set: a tail-call
        chain the Python fallback ran, or one made in Python (followed here);
        the exception a helper raised otherwise. Resets the slot for the next run."""
        env = slot.env
        try:
            return self._finish(slot, r0)
        except TailCall as call:
            return self._follow_tail_calls(call, env)
        finally:
            slot.state.status = 0

    def run_slot(self, slot: RunSlot) -> int:
        """One run on a slot from `open_native_run`, on the context it was opened for
        (which the caller rewrites between runs): r0, a run a Python helper stopped
        finished as `finish_native_run` does. For a hook running one program over and
        over, without the per-run set-up of `run`."""
        state = slot.state
        state.tail_calls = state.status = state.tail_target = 0
        slot.env.tail_calls = 0
        if self._tail_table is not None:
            state.tail_table = self._tail_table()
        r0 = self._repeat(state.ctx, 1, slot.address)
        return self.finish_native_run(slot, r0) if state.status else r0

    def close_native_run(self, slot: RunSlot) -> None:
        """Return a slot from `open_native_run`."""
        self._release(slot)

    def run_repeated(self, r1: int, repeat: int) -> int:
        """Run the program `repeat` times with context pointer r1; return the last r0.

        The loop runs in native code, native tail calls included. A run
        that a Python helper stops (a tail call made in Python, an
        exception) is finished in Python as the interpreter would
        (following the tail call), then the native loop goes on with a
        fresh `HelperEnv`. Runs that never raise share one `HelperEnv`
        (the fallback brings its tail-call count up to the native one
        before each helper).
        """
        r1 &= _M64
        self.executed = 0
        args = (r1, 0, 0, 0, 0)
        remaining = repeat
        r0 = 0
        chunk = REPEAT_FIRST_CHUNK
        while remaining > 0:
            # In chunks, so that Python regains control now and then: a signal
            # handler (Ctrl-C) runs between two native calls. A chunk doubles
            # while it takes under REPEAT_CHUNK_SECONDS, so a long loop makes
            # one native call per ~50 ms and the per-run cost is unchanged.
            runs = min(remaining, chunk)
            env = self._env(r1)
            slot = self._acquire(env, r1)
            started = time.perf_counter()
            try:
                result = self._repeat(r1, runs, slot.address)
                error = slot.take_error() if slot.state.status else None
            finally:
                self._release(slot)
            if error is None:
                r0 = result
                remaining -= runs
                if time.perf_counter() - started < REPEAT_CHUNK_SECONDS:
                    chunk *= 2
                continue
            remaining -= result  # runs started, including the one that stopped
            if not isinstance(error, TailCall):
                raise error
            r0 = self._follow_tail_calls(error, env, args)
        self.executed = 0
        return r0

    def call_function(
        self,
        token: int,
        r1: int = 0,
        r2: int = 0,
        r3: int = 0,
        r4: int = 0,
        r5: int = 0,
        env: HelperEnv | None = None,
    ) -> int:
        """Run the subprogram an `lddw rX, <func>` pointed to; return its r0.

        As the interpreter: a callback of a helper (bpf_loop ...) runs one
        frame below the helper's caller, on the caller's run (the fallback
        records depth and slot in `env.data[CALLBACK_FRAME]`); without that
        record it runs on a slot of its own at depth 1.
        """
        pc = token ^ FUNC_TOKEN if (token & ~0xFFFFFFFF) == FUNC_TOKEN else -1
        function = self._functions.get(pc)
        if function is None or pc == 0:
            raise ProgramFault(f"0x{token & _M64:x} is not a callback of this program")
        m = _M64
        args = (r1 & m, r2 & m, r3 & m, r4 & m, r5 & m)
        direct = env is None
        if env is None:
            env = self._env(args[0])
        frame = env.data.get(CALLBACK_FRAME)
        if frame is None or not isinstance(frame[1], RunSlot) or frame[1].running is not self:
            slot = self._acquire(env, env.ctx)
            try:
                r0 = function(*args, 1, slot.address)
                r0 = self._callback_result(slot, r0, direct)
            finally:
                self._release(slot)
            return r0
        depth, slot = frame
        if depth >= MAX_DEPTH - 1:
            raise ProgramFault(f"callback call depth exceeds {MAX_DEPTH} frames")
        try:
            r0 = function(*args, depth + 1, slot.address)
        finally:
            # The callback's own callback-taking calls overwrote it.
            env.data[CALLBACK_FRAME] = frame
        return self._callback_result(slot, r0, direct)

    def _callback_result(self, slot: RunSlot, r0: int, direct: bool) -> int:
        # A tail call in a callback replaced the callback's frame only (its
        # r0 came back as the callback's): nothing more to do here.
        return self._finish(slot, r0)

    def close(self) -> None:
        """Unregister this engine's stacks and run slots (the native code stays loaded)."""
        self._pool.clear()
        while self._slots:
            self._slots.pop().release()
