"""The bounds-checked interpreter: Linux eBPF semantics, run as generated Python.

`Interpreter(insns, helpers=..., memory=..., budget=...)` translates the
program once (see `engine.translate`) and `run(r1, ..., r5)` executes it,
returning r0 as an unsigned 64-bit number. Every memory access is checked
against the `Memory` region table; a bad one raises `ProgramFault` with the
pc, the instruction, the address, the size and the nearest region.

Semantics follow Linux: division by zero gives 0, modulo by zero keeps the
dividend, ALU32 results zero-extend, shift counts are masked, INT_MIN / -1
wraps. `call imm` dispatches through the `HelperTable`; `callx` (0x8d)
takes the helper id from its dst register, as uBPF and the conformance
suite's `callx.data` do. bpf-to-bpf calls get a fresh 512-byte frame and
preserve r6-r9; more than 8 frames is a fault. `lddw rX, <func>`
(src=BPF_PSEUDO_FUNC) loads a token for a subprogram (`FUNC_TOKEN | pc`),
which helpers such as bpf_loop run with `call_function`, one frame below
their caller.

Atomics run as native locked instructions after the site's bounds check
(`runtime.native.calls.atomic_function`), or, without the C API, under
one Python lock (`ATOMIC_LOCK`).

Engine call interface (shared with the later JIT): the constructor above,
`run(r1=0, r2=0, r3=0, r4=0, r5=0) -> int`, the `executed` counter of the
last run, `memory` and `helpers` attributes, and `enter(args, env)` which
the tail-call loop uses to start a program with an existing `HelperEnv`.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterable
from typing import Any

from ..errors import ProgramFault
from ..isa.instruction import Instruction
from ..isa.opcodes import AtomicOp
from ..runtime.helpers import HelperEnv, HelperTable, TailCall
from ..runtime.linux_helpers.maps import cached_lookup, map_lookup_elem
from ..runtime.memory import (
    MAX_CALL_FRAMES,
    STACK_FRAME_SIZE,
    ContextRegion,
    Memory,
    Stack,
    access_fault,
)
from ..runtime.native.calls import atomic_function, memset_function
from .codegen_ops import CONTEXT_READER, atomic_names
from .common import follow_tail_calls, instruction_text, tail_call_in_frame, unknown_helper
from .translate import (
    CALLBACK_FRAME,
    EMPTY_CACHE,
    FUNC_TOKEN,
    MAP_LOOKUP_HELPER,
    MAX_DEPTH,
    RUNNER_NAME,
    Translation,
    cache_name,
    runner_code,
    translate,
)

DEFAULT_BUDGET = 10_000_000
"""A budget suitable for unverified programs (CLI, conformance)."""

_M64 = (1 << 64) - 1
_M32 = (1 << 32) - 1

# One lock for every atomic instruction in the process: Python code is not
# atomic between threads, and a read-modify-write must be.
ATOMIC_LOCK = threading.Lock()


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _sdiv(a: int, b: int, bits: int) -> int:
    a, b = _signed(a, bits), _signed(b, bits)
    if b == 0:
        return 0
    q = abs(a) // abs(b)  # C truncates toward zero; Python floors
    return (-q if (a < 0) != (b < 0) else q) & ((1 << bits) - 1)


def _smod(a: int, b: int, bits: int) -> int:
    mask = (1 << bits) - 1
    sa, sb = _signed(a, bits), _signed(b, bits)
    if sb == 0:
        return a & mask
    r = abs(sa) % abs(sb)  # the remainder takes the sign of the dividend
    return (-r if sa < 0 else r) & mask


def sdiv64(a: int, b: int) -> int:
    """Signed 64-bit division as BPF defines it (x / 0 = 0, INT_MIN / -1 = INT_MIN)."""
    return _sdiv(a, b, 64)


def smod64(a: int, b: int) -> int:
    """Signed 64-bit remainder as BPF defines it (x % 0 = x)."""
    return _smod(a, b, 64)


def sdiv32(a: int, b: int) -> int:
    """Signed 32-bit division, zero-extended."""
    return _sdiv(a, b, 32)


def smod32(a: int, b: int) -> int:
    """Signed 32-bit remainder, zero-extended (x % 0 = (u32)x)."""
    return _smod(a, b, 32)


def atomic_result(op: int, old: int, src: int, r0: int, mask: int) -> int:
    """The new memory value of an atomic `op` on `old` (before the lock is released)."""
    base = op & ~0x01
    if op == AtomicOp.XCHG:
        return src & mask
    if op == AtomicOp.CMPXCHG:
        return src & mask if old == r0 & mask else old
    if base == AtomicOp.ADD:
        return (old + src) & mask
    if base == AtomicOp.OR:
        return old | (src & mask)
    if base == AtomicOp.AND:
        return old & src
    if base == AtomicOp.XOR:
        return old ^ (src & mask)
    raise ProgramFault(f"invalid atomic operation 0x{op:x}")


class Interpreter:
    """A program translated once, run any number of times with bounds checks."""

    def __init__(
        self,
        insns: Iterable[Instruction],
        *,
        helpers: HelperTable | None = None,
        memory: Memory | None = None,
        budget: int | None = None,
        where: str | None = None,
        runtime: Any = None,
        cpu: int | None = None,
    ):
        self.insns = list(insns)
        # The simulated CPU of a run (per-CPU map slots): `cpu` when given,
        # else the calling thread's CPU in the execution context, else 0.
        self.cpu = cpu
        self._current_cpu = getattr(runtime, "current_cpu", None) if cpu is None else None
        # The execution context (maps, programs, trace output) helpers see as
        # `env.runtime`; None for bare bytecode such as the conformance suite.
        self.runtime = runtime
        self.helpers = helpers if helpers is not None else HelperTable()
        self.memory = memory if memory is not None else Memory()
        self.budget = budget
        self.executed = 0
        known = frozenset(spec.id for spec in self.helpers)
        self.translation: Translation = translate(self.insns, budget, where, known)
        self._by_pc = self.translation.layout.insns
        self._stacks: list[Stack] = []
        namespace = self._namespace()
        exec(self.translation.code, namespace)  # noqa: S102 - our own generated code
        self._module = namespace  # the generated module's globals
        self._entry = namespace[self.translation.entry_name]
        self._functions = {pc: namespace[f"f{pc}"] for pc in self.translation.layout.functions}

    @property
    def source(self) -> str:
        """The generated Python source (for debugging and curiosity)."""
        return self.translation.source

    # -- running ------------------------------------------------------------------

    def _cpu(self) -> int:
        """The simulated CPU of a run started now by the calling thread."""
        if self.cpu is not None:
            return self.cpu
        return self._current_cpu() if self._current_cpu is not None else 0

    def run(self, r1: int = 0, r2: int = 0, r3: int = 0, r4: int = 0, r5: int = 0) -> int:
        """Run the program with r1-r5 as given; return r0 as an unsigned 64-bit value.

        Follows tail calls (a helper raising `TailCall`) with the same r1.
        """
        m = _M64
        args = (r1 & m, r2 & m, r3 & m, r4 & m, r5 & m)
        env = HelperEnv(self.memory, args[0], self, self.runtime, self._cpu())
        self.executed = 0
        try:
            r0, self.executed = self.enter(args, env)
        except TailCall as call:
            r0 = self._follow_tail_calls(call, env)
        return r0

    def _follow_tail_calls(
        self, call: TailCall, env: HelperEnv, args: tuple[int, ...] | None = None
    ) -> int:
        r0, self.executed = follow_tail_calls(call, env, args or (env.ctx, 0, 0, 0, 0))
        return r0

    def prepare_run(self) -> None:
        """Allocate a stack now, so that the next run does not (a test run's timer)."""
        if not self._stacks:
            self._stacks.append(self.memory.allocate_stack())

    def run_repeated(self, r1: int, repeat: int) -> int:
        """Run the program `repeat` times with context pointer r1; return the last r0.

        What a test run's repeat loop does (net/bpf/test_run.c): every run is
        a separate invocation on the same context and packet, with a
        `HelperEnv` as fresh as its own (no tail calls counted, no helper
        scratch: one is reused only while runs leave it so) and a zeroed
        stack; only the set-up around the runs is hoisted out of the loop.
        The runs go through the entry function's generator of runs
        (`_runs`), which spares each one a call and its set-up.
        """
        r1 &= _M64
        memory, runtime = self.memory, self.runtime
        args = (r1, 0, 0, 0, 0)
        try:
            stack = self._stacks.pop()
        except IndexError:
            stack = memory.allocate_stack()
        r0 = n = 0
        cpu = self._cpu()
        env = HelperEnv(memory, r1, self, runtime, cpu)
        runs = self._runs(r1, stack.frames, env)
        try:
            for _ in range(repeat):
                # A run that left nothing in its HelperEnv (no tail call, no
                # helper scratch: the usual case) hands the next run an env
                # equal to a fresh one; any other gets a new one.
                if env.tail_calls or env._data is not None:
                    env = HelperEnv(memory, r1, self, runtime, cpu)
                try:
                    r0, n = runs.send(env)
                except TailCall as call:
                    # The generator ended with the exception: a new one runs on.
                    r0 = self._follow_tail_calls(call, env, args)
                    n = self.executed
                    env = HelperEnv(memory, r1, self, runtime, cpu)
                    runs = self._runs(r1, stack.frames, env)
        finally:
            runs.close()
            self._stacks.append(stack)
        self.executed = n
        return r0

    def _runs(self, r1: int, frames: list, env: HelperEnv) -> Any:
        """The entry function's generator of runs (`translate.runner_code`), started.

        Each `send(env)` runs the program once from pc 0 with `r1` on
        `frames`, as a call of the entry function does, and returns
        `(r0, executed)`.
        """
        runner = self._module.get(RUNNER_NAME)
        if runner is None:
            # Into the functions' own module: the runner shares their site
            # caches and calls them.
            exec(runner_code(self.translation), self._module)  # noqa: S102 - our own code
            runner = self._module[RUNNER_NAME]
        runs = runner(r1, frames, env)
        next(runs)  # to its first `yield`: the set-up done once
        return runs

    def enter(self, args: tuple[int, ...], env: HelperEnv) -> tuple[int, int]:
        """Run from pc 0 with a fresh stack; return (r0, executed instructions)."""
        try:
            stack = self._stacks.pop()  # one stack per concurrent or nested run
        except IndexError:
            stack = self.memory.allocate_stack()
        try:
            return self._entry(*args, 0, 0, 0, 0, 0, 0, stack.frames, env)
        finally:
            self._stacks.append(stack)

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

        This is how helpers such as bpf_loop call their callback. The callee
        gets a fresh frame one below the frame of the helper's caller (the
        call site records it), so callbacks count against the call depth
        limit as in Linux; r6-r9 start at 0. Without an `env` (a call from
        Python) the callee runs on a stack of its own, at depth 1.
        """
        pc = token ^ FUNC_TOKEN if (token & ~0xFFFFFFFF) == FUNC_TOKEN else -1
        function = self._functions.get(pc)
        if function is None or pc == 0:
            raise ProgramFault(f"0x{token & _M64:x} is not a callback of this program")
        m = _M64
        if env is None:
            env = HelperEnv(self.memory, r1 & m, self, self.runtime, self._cpu())
        frame = env.data.get(CALLBACK_FRAME)
        if frame is None:
            try:
                stack = self._stacks.pop()
            except IndexError:
                stack = self.memory.allocate_stack()
            try:
                r0, _ = function(
                    r1 & m, r2 & m, r3 & m, r4 & m, r5 & m, 0, 0, 0, 0, 0, 1, stack.frames, env
                )
            finally:
                self._stacks.append(stack)
            return r0
        depth, frames = frame
        if depth >= MAX_DEPTH - 1:
            raise ProgramFault(f"callback call depth exceeds {MAX_DEPTH} frames")
        try:
            r0, _ = function(
                r1 & m, r2 & m, r3 & m, r4 & m, r5 & m, 0, 0, 0, 0, 0, depth + 1, frames, env
            )
        finally:
            # The callback's own callback-taking calls overwrote it.
            env.data[CALLBACK_FRAME] = frame
        return r0

    def close(self) -> None:
        """Unregister this interpreter's stacks from the region table."""
        while self._stacks:
            self._stacks.pop().release()

    # -- what the generated code calls ------------------------------------------

    def instruction_text(self, pc: int) -> str:
        """The instruction at `pc` as text, for fault messages."""
        return instruction_text(self._by_pc, pc)

    def _lookup(self, address: int, size: int, write: int, pc: int) -> tuple[int, int, Any]:
        # The slow path of every store: refill the site's cache.
        region = self.memory.find(address, size)
        if region is None or (write and not region.writable):
            raise access_fault(
                self.memory, address, size, bool(write), pc, self.instruction_text(pc)
            )
        if isinstance(region, ContextRegion):
            # Check the field table, then let this one store through; the
            # bounds -1 make the next access of the site come back here.
            self._context_access(region.check_store, region, address, size, pc)
            return region.start, -1, region.view
        return region.start, region.size - size, region.view

    def _load(self, address: int, size: int, pc: int) -> tuple[int, int, Any, int]:
        # The slow path of every load: refill the site's cache and read.
        region = self.memory.find(address, size)
        if region is None:
            raise access_fault(self.memory, address, size, False, pc, self.instruction_text(pc))
        offset = address - region.start
        if isinstance(region, ContextRegion):
            # Never cached as memory: the field table answers every time, so
            # pointer fields moved by a helper are always current. A pointer
            # field's load caches its reader instead (bounds CONTEXT_READER,
            # the site's start the field's own address; see `engine.translate`).
            reader = region.reader(offset, size)
            if reader is not None:
                return address, CONTEXT_READER, reader, reader[0]
            try:
                return 0, -1, None, region.load(offset, size)
            except ProgramFault:
                self._context_access(region.load, region, address, size, pc)  # adds pc, address
                raise
        value = int.from_bytes(region.view[offset : offset + size], "little")
        return region.start, region.size - size, region.view, value

    def _context_access(
        self, access: Any, region: ContextRegion, address: int, size: int, pc: int
    ) -> Any:
        try:
            return access(address - region.start, size)
        except ProgramFault as fault:
            raise ProgramFault(
                fault.reason,
                pc=pc,
                instruction=self.instruction_text(pc),
                address=address,
                size=size,
                region=region.name,
            ) from None

    def _refuse_context_atomic(self, region: Any, address: int, size: int, pc: int) -> None:
        # The kernel never allows atomics on the context; neither do both atomic paths.
        if isinstance(region, ContextRegion):
            raise ProgramFault(
                f"atomic operation on context region {region.describe()}",
                pc=pc,
                instruction=self.instruction_text(pc),
                address=address,
                size=size,
                region=region.name,
            )

    def _atomic_lookup(self, address: int, size: int, pc: int) -> tuple[int, int, Any]:
        # The slow path of an atomic site: a writable region, never the context.
        region = self.memory.find(address, size)
        self._refuse_context_atomic(region, address, size, pc)
        if region is None or not region.writable:
            raise access_fault(self.memory, address, size, True, pc, self.instruction_text(pc))
        return region.start, region.size - size, region.view

    def _atomic(self, address: int, size: int, op: int, src: int, r0: int, pc: int) -> int:
        # Atomics the translation has no inline code for (invalid operations,
        # odd sizes): the general read-modify-write, which raises the fault.
        region = self.memory.find(address, size)
        self._refuse_context_atomic(region, address, size, pc)
        start, _, view = self._lookup(address, size, 1, pc)
        offset = address - start
        mask = _M64 if size == 8 else _M32
        with ATOMIC_LOCK:
            old = int.from_bytes(view[offset : offset + size], "little")
            new = atomic_result(op, old, src, r0, mask)
            view[offset : offset + size] = new.to_bytes(size, "little")
        return old

    def _budget(self, executed: int, pc: int) -> None:
        raise ProgramFault(
            f"instruction budget of {self.budget} exhausted ({executed} executed)",
            pc=pc,
            instruction=self.instruction_text(pc),
        )

    def _too_deep(self, pc: int) -> None:
        raise ProgramFault(
            f"call depth exceeds {MAX_DEPTH} frames",
            pc=pc,
            instruction=self.instruction_text(pc),
        )

    def _callx(
        self, env: HelperEnv, target: int, r1: int, r2: int, r3: int, r4: int, r5: int, pc: int
    ) -> int:
        spec = self.helpers.get(target)
        if spec is None:
            raise ProgramFault(
                f"callx to unknown helper {target}", pc=pc, instruction=self.instruction_text(pc)
            )
        return spec.impl(env, r1, r2, r3, r4, r5)

    def _map_lookup(self, env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> tuple:
        # The slow path of a map lookup site (see `translate._FunctionWriter.map_lookup`):
        # the helper's call, then what the site may cache for the next one.
        spec = self.helpers.get(MAP_LOOKUP_HELPER)
        r0 = spec.impl(env, r1, r2, r3, r4, r5) & _M64
        if (
            spec.impl is map_lookup_elem
            and env.runtime is self.runtime is not None
            and env.memory is self.memory
        ):
            site = cached_lookup(self.runtime, self.memory, r1)
            if site is not None:
                return (*site, r0)
        return 0, -1, None, r0

    def _unknown_helper(self, helper_id: int, pc: int) -> None:
        raise unknown_helper(self.runtime, helper_id, pc, self.instruction_text(pc))

    def _namespace(self) -> dict[str, Any]:
        ns: dict[str, Any] = {
            "U16": struct.Struct("<H").unpack_from,
            "U32": struct.Struct("<I").unpack_from,
            "U64": struct.Struct("<Q").unpack_from,
            "P16": struct.Struct("<H").pack_into,
            "P32": struct.Struct("<I").pack_into,
            "P64": struct.Struct("<Q").pack_into,
            "lk": self._lookup,
            "ld": self._load,
            "MEM": self.memory,
            "ZERO_FRAME": bytes(STACK_FRAME_SIZE),
            "atom": self._atomic,
            "lka": self._atomic_lookup,
            "ALOCK": ATOMIC_LOCK,
            "budget": self._budget,
            "deep": self._too_deep,
            "callx": self._callx,
            "nohelper": self._unknown_helper,
            "mlk": self._map_lookup,
            "TailCall": TailCall,
            "tailframe": tail_call_in_frame,
            "sdiv64": sdiv64,
            "smod64": smod64,
            "sdiv32": sdiv32,
            "smod32": smod32,
        }
        # One name per known helper id the program calls (unknown ids were
        # translated into a `nohelper` fault at the call site).
        for spec in self.helpers:
            ns[f"h{spec.id}"] = spec.impl
        if "MEMSET(" in self.translation.source:  # frames zeroed natively (`translate`)
            ns["MEMSET"] = memset_function()
        if self.translation.native_atomics:
            for name, (operation, bits) in atomic_names().items():
                ns[name] = atomic_function(operation, bits)
        # The persistent site caches of each function (see `engine.translate`).
        for pc in self.translation.layout.functions:
            ns[cache_name(pc)] = EMPTY_CACHE
        return ns


assert MAX_DEPTH == MAX_CALL_FRAMES
