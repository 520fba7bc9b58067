"""The Python side of JIT-compiled programs: runs, and helpers called through Python.

Native code reaches Python through one process-wide ctypes callback with
the signature `abi.FALLBACK_PROTOTYPE`, exported to every compiled module
as the external symbol `FALLBACK_SYMBOL` (resolved with `llvm.add_symbol`
when a module is linked, so no address is baked into the cached objects).

Its `helper_id` argument packs what the Python side needs besides r1..r5
(`encode_call`): the helper id (low 32 bits), the caller's frame depth
(so callback-taking helpers run their callback one frame below, as the
interpreter does), the pc (for fault messages) and a kind: a helper call,
a `callx` (the id came from a register) or a fault the native code found
(a call chain deeper than 8 frames, an invalid atomic operation). A plain
helper id (all other bits 0) is a valid call of kind helper.

Each concurrent run owns a `RunSlot`: a `RunState`, a `Stack` and the
run's `HelperEnv`. `RunState.handle` is the slot's number in a process-wide
table, which is how the callback finds the env. When a helper raises, the
exception is kept on the slot, `status` is set to 1 and the callback
returns 0; the native code unwinds and the engine re-raises.

After a native tail call (`native_tailcall`) the slot runs another
program's code: `RunState.tail_target` names it, and the callback runs
the helper for that program's engine (its helper table, its instructions
in fault messages; `env.engine` is set to it, as the interpreter's
tail-call loop does). `env.tail_calls` is brought up to
`RunState.tail_calls` before every helper, so a tail call made in Python
counts the native ones.
"""

from __future__ import annotations

import ctypes
import itertools
import threading
import weakref
from typing import Any

from ...errors import ProgramFault
from ...isa.opcodes import SIZE_BYTES, Size
from ...runtime.helpers import TailCall
from ...runtime.linux_helpers.packet import sync_packet_region
from ...runtime.memory import ContextRegion, Memory, Stack
from ..common import tail_call_in_frame
from ..translate import CALLBACK_FRAME, CALLBACK_HELPERS, MAX_DEPTH, TAIL_CALL_HELPER
from .abi import FALLBACK_PROTOTYPE, STATUS_TAIL_DONE, RunState

FALLBACK_SYMBOL = "pybpf_jit_fallback_v1"
"""The external symbol every compiled module calls for Python helpers."""

KIND_HELPER = 0
KIND_CALLX = 1
KIND_FAULT = 2

FAULT_TOO_DEEP = 0
FAULT_ATOMIC = 1
FAULT_CONTEXT = 2  # | offset << 8: a load of a context field pybpf cannot give

_M64 = (1 << 64) - 1
_PC_BITS = 26


def encode_call(kind: int, helper_id: int, depth: int = 0, pc: int = 0) -> int:
    """The `helper_id` argument of a fallback call (a signed 64-bit value).

    Bits 0-31 the id (or fault code), 32-35 the caller's depth, 36-61 the
    pc (0 when beyond 26 bits), 62-63 the kind.
    """
    if pc >= 1 << _PC_BITS:
        pc = 0
    code = (kind << 62) | (pc << 36) | ((depth & 0xF) << 32) | (helper_id & 0xFFFFFFFF)
    return code - (1 << 64) if code >> 63 else code


class RunSlot:
    """The native state of one run: `RunState`, stack, and the Python side's env."""

    __slots__ = (
        "state",
        "address",
        "stack",
        "engine",
        "running",
        "env",
        "error",
        "handle",
        "__weakref__",
    )

    def __init__(self, engine: Any, memory: Memory):
        self.engine = engine
        #: The engine whose code the slot ran last time it entered Python
        #: (`engine`, or a native tail call's target).
        self.running = engine
        self.stack: Stack = memory.allocate_stack(RUN_STACK_FRAMES, name="jit stack")
        self.state = RunState()
        self.address = ctypes.addressof(self.state)
        frames = self.stack.frames
        self.state.stack_top0 = frames[0].top
        self.state.stack_stride = frames[1].top - frames[0].top
        self.state.stack_last = frames[-1].top
        self.state.caller = getattr(engine.runtime, "caller_record_address", 0)
        self.env: Any = None
        self.error: BaseException | None = None
        self.handle = next(_handles)
        self.state.handle = self.handle
        _slots[self.handle] = self

    def take_error(self) -> BaseException:
        """The exception that stopped the run; clears it and `status`."""
        error = self.error
        self.error = None
        status = self.state.status
        self.state.status = 0
        if error is None:  # a native part set status without a Python exception
            return ProgramFault(f"native code stopped the run (status {status})")
        return error

    def release(self) -> None:
        """Unregister the slot and its stack (the engine is closing)."""
        _slots.pop(self.handle, None)
        if self.stack.frames:
            self.stack.release()


RUN_STACK_FRAMES = 2 * MAX_DEPTH
"""Frames of a run's stack: a program's 8, and room for a tail call made in a
subprogram to run its target natively on the frames that follow (see
`native_tailcall`); a target that would not fit runs on a stack of its own."""

_handles = itertools.count(1)
# Weak: a slot lives as long as its engine keeps it (the engine is its only owner).
_slots: weakref.WeakValueDictionary[int, RunSlot] = weakref.WeakValueDictionary()


def _to_i64(value: int) -> int:
    value &= _M64
    return value - (1 << 64) if value >> 63 else value


def _sync_packet(slot: RunSlot) -> None:
    # Native xdp_adjust_* move the context's packet pointers but not the
    # region table; a Python helper checking packet memory must see the
    # packet where the pointers now say it is.
    ctx = slot.state.ctx
    if not slot.state.ctx_pointers or not ctx:
        return
    memory = slot.engine.memory
    region = memory.find(ctx)
    if isinstance(region, ContextRegion) and region.start == ctx:
        sync_packet_region(memory, region)


def _running_engine(slot: RunSlot, target: int) -> Any:
    # The engine of program `target` (native tail calls), found through the
    # execution context the program that started the run belongs to.
    runtime = slot.engine.runtime
    engine = runtime.native_engine(target) if runtime is not None else None
    if engine is None:  # closed while running: keep what is known
        return slot.engine
    return engine


def _dispatch(slot: RunSlot, code: int, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    state = slot.state
    target = state.tail_target
    engine = slot.running = _running_engine(slot, target) if target else slot.engine
    env = slot.env
    if env is not None:
        env.engine = engine
        env.tail_calls = state.tail_calls
    kind = (code >> 62) & 3
    helper_id = code & 0xFFFFFFFF
    pc = (code >> 36) & ((1 << _PC_BITS) - 1)
    if kind != KIND_FAULT:
        _sync_packet(slot)
    if kind == KIND_HELPER:
        spec = engine.helpers.get(helper_id)
        if spec is None:
            engine.unknown_helper(helper_id, pc)
        if helper_id in CALLBACK_HELPERS:
            env.data[CALLBACK_FRAME] = ((code >> 32) & 0xF, slot)
        if helper_id == TAIL_CALL_HELPER:
            try:
                return spec.impl(env, r1, r2, r3, r4, r5)
            except TailCall as call:
                return _chain(slot, env, call)
        return spec.impl(env, r1, r2, r3, r4, r5)
    if kind == KIND_CALLX:
        spec = engine.helpers.get(helper_id)
        if spec is None:
            raise ProgramFault(
                f"callx to unknown helper {helper_id}",
                pc=pc,
                instruction=engine.instruction_text(pc),
            )
        return spec.impl(env, r1, r2, r3, r4, r5)
    if helper_id == FAULT_TOO_DEEP:
        raise ProgramFault(
            f"call depth exceeds {MAX_DEPTH} frames", pc=pc, instruction=engine.instruction_text(pc)
        )
    insn = engine.instruction_at(pc)
    if helper_id & 0xFF == FAULT_CONTEXT:
        _context_fault(engine, env, insn, helper_id >> 8, pc)
    imm = insn.imm & 0xFFFFFFFF if insn is not None else 0
    raise ProgramFault(f"invalid atomic operation 0x{imm:x}")


def _context_fault(engine: Any, env: Any, insn: Any, offset: int, pc: int) -> None:
    """Raise the interpreter's fault for a load of an unsupported context field."""
    region = engine.memory.find(env.ctx)
    size = SIZE_BYTES[Size(insn.opcode & 0x18)]
    try:
        region.access.check(offset, size, write=False)
    except ProgramFault as fault:
        raise ProgramFault(str(fault), pc=pc, instruction=engine.instruction_text(pc)) from None
    raise ProgramFault(f"context field at offset {offset} is not supported by pybpf", pc=pc)


def _chain(slot: RunSlot, env: Any, call: TailCall) -> int:
    # A tail call the Python helper made: run the chain here (the targets on
    # stacks of their own) and tell the native call site, which returns the
    # chain's r0 from its function (`native_tailcall`).
    r0, _ = tail_call_in_frame(call, env)
    state = slot.state
    state.tail_calls = env.tail_calls
    state.tail_r0 = r0 & _M64
    state.status = STATUS_TAIL_DONE
    return 0


def _fallback(run: Any, code: int, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    state = run[0]
    slot = _slots[state.handle]
    try:
        return _to_i64(_dispatch(slot, code & _M64, r1, r2, r3, r4, r5))
    except BaseException as error:  # noqa: BLE001 - every exception goes back to the engine
        slot.error = error
        state.status = 1
        return 0


FALLBACK = FALLBACK_PROTOTYPE(_fallback)
"""The ctypes callback object (kept alive for the life of the process)."""

_registered = False
_lock = threading.Lock()


def register_symbol() -> None:
    """Make `FALLBACK_SYMBOL` resolvable by modules linked from now on."""
    global _registered
    with _lock:
        if not _registered:
            import llvmlite.binding as llvm

            llvm.add_symbol(FALLBACK_SYMBOL, ctypes.cast(FALLBACK, ctypes.c_void_p).value)
            _registered = True
