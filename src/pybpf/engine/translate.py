"""Translation of an eBPF program into Python source, compiled once and cached.

Each eBPF function becomes one Python function

    def f<entry>(r1, r2, r3, r4, r5, r6, r7, r8, r9, n, d, S, E) -> (r0, n)

whose registers are Python locals (so a bpf-to-bpf call is a Python call and
r6-r9 of the caller are preserved for free), `n` counts executed
instructions, `d` is the call depth, `S` the list of stack frames and `E`
the `HelperEnv`. Basic blocks become a state machine: a `while True` loop
around a binary if-tree on the block id `b`. Three shortcuts keep the
common paths away from the dispatcher:

* a block with a single incoming edge is inlined at that edge, so straight
  code and if/else diamonds become nested Python `if`s;
* a merge point from which the code runs to `exit` without a loop, in at
  most `TAIL_COPY_LENGTH` instructions counting every copy (`r0 = 2; exit`,
  or the rest of a packet parser after an if/else), is copied into every
  block jumping to it, so a function whose only merge points are such
  tails has no dispatcher at all;
* a loop head becomes an inner `while`, in which a jump back to it is a
  `continue`, and a merge point inside the loop whose code runs back to
  the head (or to `exit`) within `TAIL_COPY_LENGTH` instructions is copied
  as above, so a loop of a few blocks turns without the dispatcher;
* a block that jumps to itself (the tight loop) becomes an inner `while`;
  when short and free of calls, each turn of it runs 2 to 16 copies of the
  body (`unrolled_loop`), adding the instruction count once per turn and
  taking it back on an early exit. With a budget, a turn that could cross
  it runs the plain loop instead, so a budget fault comes at the same
  instruction count as without unrolling.

Within a block, a run of ALU instructions on one register folds into one
assignment (`r3 = r1; r3 += 0x22` becomes `r3 = (r1 + 0x22) & M`; see
`codegen_ops.alu_fusable` and `codegen_ops.folded_value`). A decrement the
code before it shows cannot go below 0 (`r1 -= 1` where a `jne r1, 0` was
just taken, `r10 - 8`) leaves out the 64-bit mask (`_FunctionWriter._learn`,
kept along the nested code of inlined blocks, forgotten at loop heads and
when the register is written). A function that
never names r10 has no way to its stack frame and skips the frame's set-up
(zeroing, views). A small leaf subprogram (no calls, no frame, no loops) is
inlined at its call sites (`_FunctionWriter.inline_call`).

Instruction counts are added where they are read (an exit's return, a
call, a loop head, a transfer through the dispatcher), once per path of
inlined blocks (`_FunctionWriter.block`); when a budget is set it is
checked at loop heads only, since a run without back edges is bounded by
the program length. Memory accesses are inlined against a per-site cache of
the last region used, with the region table as the slow path (`lk`). The
offset is computed without the 64-bit wrap: a sum past 2**64 or below 0
lies in no site's bounds, and the slow path wraps it before looking it up.
A load or store site holds its region's start minus the instruction's
offset, so that the offset is the base register minus it, one subtraction
(`codegen_ops._offset`). A site whose base register holds a constant the
block set (a global variable's `lddw` address) checks only that it holds a
region: it is filled for that one address alone, and emptied as every site
when a region goes away (`codegen_ops._constant_site`).
A load of a context pointer field (`xdp_md->data`) caches the field's
reader instead of a region (bounds `CONTEXT_READER`, start the field's
address), so that each pass reads the pointer as helpers left it, without
the region and field tables; a load through r1 in the program's first
block, before r1 is written (the context pointer as the program got it),
tests for such a reader first. Atomics check their site as stores do and
then call a native locked read-modify-write (`runtime.native.calls`), or
without the C API take the process-wide lock `ALOCK`. A map lookup
whose map pointer is an `lddw` constant caches the key's region and the
map's native lookup (`_FunctionWriter.map_lookup`). The
site caches of a function live in locals during a run and persist between
runs in a module global `C<entry>` (per engine, since each engine executes
the code in its own namespace), stamped with the `Memory.generation` they
were filled under: a run takes them over only when no region has been
removed (or made read-only) since, so the bounds check of every access
still holds against live regions only.

A test run's repeat loop runs the entry function's code as a generator of
runs (`_FunctionWriter.write_runner`, compiled on first use): one `send`
per run instead of a call, with the frame's views and the site caches kept
in its locals from one run to the next while no region went away.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass

from ..isa.instruction import Instruction, encode
from ..isa.opcodes import (
    CALL,
    CALLX,
    EXIT,
    FRAME_POINTER,
    LDDW,
    STACK_SIZE,
    AluOp,
    CallSrc,
    InsnClass,
    Mode,
)
from ..runtime.native import calls
from . import codegen_ops as ops
from .cfg import (
    LEGACY_PACKET_LOADS,
    Function,
    ProgramLayout,
    analyze,
    func_target,
    is_jump,
    jump_target,
    local_call_target,
)
from .codegen_ops import M64, hexlit

MAX_INLINE_INDENT = 40
"""Beyond this nesting, blocks go through the dispatcher (Python caps indentation at 100)."""

MAX_INLINE_CHAIN = 200
"""Longest run of blocks inlined into each other (bounds the emitter's recursion)."""

TAIL_COPY_LENGTH = 32
"""Longest tail ending in `exit` that is copied into every block jumping to it
(counting the copies of merge points inside it: `_FunctionWriter._tail_size`)."""

MAX_FOLDED = 4
"""Most ALU instructions folded into one assignment (`_FunctionWriter.straight`)."""

UNROLL_INSTRUCTIONS = 64
UNROLL_MAX_COPIES = 16
"""A self-loop's `while` runs as many copies of its body per turn as fit in
`UNROLL_INSTRUCTIONS` instructions, at most `UNROLL_MAX_COPIES` (a loop
longer than half of it is not unrolled)."""

MAX_DEPTH = 8
"""Call frames available to one run (kernel MAX_CALL_FRAMES)."""

INLINE_INSTRUCTIONS = 64
INLINE_INDENT = 20
INLINE_BUDGET = 1024
"""A bpf-to-bpf callee is inlined at its call sites when it is a leaf (no
calls, no stack frame, no packet loads), its code needs no dispatcher, it
has at most `INLINE_INSTRUCTIONS` instructions and nests at most
`INLINE_INDENT` levels (`_FunctionWriter.inline_call`); a function inlines
at most `INLINE_BUDGET` instructions in all (later call sites call), so
that many calls of one leaf do not multiply the code to compile."""

FUNC_TOKEN = 0xB9F0_0000_0000_0000
"""Tag of the value an `lddw rX, <func>` loads: `FUNC_TOKEN | callee pc`.

It is no native address (those stay below 2**57), so a program that
dereferences it faults; engines turn it back into the callee with
`call_function`.
"""

CALLBACK_HELPERS = frozenset({164, 170, 180, 181, 209})
"""Helpers that take a callback (for_each_map_elem, timer_set_callback,
find_vma, loop, user_ringbuf_drain): their call sites record the caller's
frame depth and stack in `E.data[CALLBACK_FRAME]`, so the callback runs in
the next frame and counts against the call depth limit, as in Linux."""

CALLBACK_FRAME = "callback_frame"

TAIL_CALL_HELPER = 12
"""bpf_tail_call: its call sites catch `TailCall` and return the chain's r0
from the function that made the call (Linux replaces only that frame)."""

MAP_LOOKUP_HELPER = 1
"""bpf_map_lookup_elem: a call site whose r1 is a constant (`lddw r1, <map>` in the
same block) caches the map's native lookup with the region of its last key
(`_FunctionWriter.map_lookup`)."""

_PARAMS = "r1, r2, r3, r4, r5, r6, r7, r8, r9, n, d, S, E"
_RESET = "<reset site caches>"  # placeholder: the number of sites is known only at the end
_SAVE = "<save site caches>"  # placeholder, as _RESET


@dataclass(frozen=True, slots=True)
class Translation:
    """The generated module for one program: source, code object and layout."""

    source: str
    code: object
    layout: ProgramLayout
    entry_name: str
    #: Whether the code calls the native atomic functions (`codegen_ops.atomic_names`).
    native_atomics: bool = False
    #: The source of `RUNNER_NAME`, the entry function as a generator of runs
    #: (`_FunctionWriter.write_runner`); compiled on first use (`runner_code`).
    runner_source: str = ""


def function_name(entry: int) -> str:
    """The Python name of the function generated for the eBPF function at `entry`."""
    return f"f{entry}"


def cache_name(entry: int) -> str:
    """The module global holding the persistent site caches of the function at `entry`.

    Engines bind it to `EMPTY_CACHE` before the first run: a tuple
    `(generation, L0, H0, V0, L1, ...)` whose stamp no generation matches.
    """
    return f"C{entry}"


EMPTY_CACHE = (-1,)
"""The initial value of every `cache_name` global (no generation is -1)."""


class _FunctionWriter:
    """Emits the Python source of one eBPF function."""

    def __init__(
        self,
        fn: Function,
        budget: int | None,
        helpers: frozenset[int],
        functions: dict[int, Function] | None = None,
    ):
        self.fn = fn
        self.functions = functions or {}  # the program's functions, for inlining
        self.helpers = helpers
        self.budget = budget
        self.heads = fn.loop_heads()
        self.sites = ops.SiteCounter()
        self.dispatch: dict[int, int] = {}  # block start pc → block id `b`
        self.pending: list[int] = []
        self.lines: list[tuple[int, str]] = []
        self.chain = 0  # blocks inlined into one another right now (emitter recursion)
        self.native_atomics = False  # whether an atomic calls a native function
        self.r1_constant: int | None = None  # r1 as an `lddw` of this block set it
        self.r1_context = False  # r1 still the context pointer the program got (`block`)
        self.constants: dict[int, int] = {}  # register → its value, known in this block
        # register → a lower bound of its unsigned value wherever code is
        # being emitted now (see `_learn`); starts over at every loop head.
        self.lower: dict[int, int] = {}
        self.inlined = 0  # instructions inlined from callees so far
        self.expanded: dict[int, list[tuple[int, str]]] | None = None  # `_expanded_bodies`
        self.tail_sizes: dict[tuple[int, int | None], int] = {}  # `_tail_size` by (start, loop)

    # -- control transfer ---------------------------------------------------

    def _inlinable(self, start: int, loop: int | None) -> bool:
        block = self.fn.blocks[start]
        if start == self.fn.entry:
            return False
        return len(block.predecessors) == 1 or self._tail_size(start, loop) <= TAIL_COPY_LENGTH

    def _tail_size(self, start: int, loop: int | None) -> int:
        """The instructions emitted from block `start` to the exits, merge points copied.

        What copying the block into each block that jumps to it costs (the
        code from it on, every block counted once per path), inside the
        `while` of loop head `loop` if any, where a jump back to it is a
        `continue` and costs nothing; more than `TAIL_COPY_LENGTH` (capped
        there plus one) for code that reaches any other loop head, which is
        never copied.
        """
        if start == loop:
            return 0
        key = (start, loop)
        size = self.tail_sizes.get(key)
        if size is not None:
            return size
        too_big = TAIL_COPY_LENGTH + 1
        self.tail_sizes[key] = too_big  # while it is being measured: a cycle is too big
        block = self.fn.blocks[start]
        size = too_big
        if start not in self.heads and start != self.fn.entry:
            size = block.length
            for successor in block.successors:
                if size > TAIL_COPY_LENGTH:
                    break
                size += self._tail_size(successor, loop)
        self.tail_sizes[key] = min(size, too_big)
        return self.tail_sizes[key]

    def _block_id(self, start: int) -> int:
        if start not in self.dispatch:
            self.dispatch[start] = len(self.dispatch)
            self.pending.append(start)
        return self.dispatch[start]

    def goto(self, target: int, ind: int, loop: int | None, pending: int = 0) -> None:
        """Emit a transfer to block `target` from code at indentation `ind`.

        `loop` is the self-looping block whose inner `while` we are in, if any:
        a jump to it is `continue`, and a jump elsewhere must `break` out to
        the dispatcher rather than `continue` the inner loop. `pending`
        instructions ran but are not in `n` yet (see `block`): an inlined
        target takes them over, any other transfer adds them first.
        """
        if target == loop:
            self._count(ind, pending)
            self.lines.append((ind, "continue"))
        elif (
            self._inlinable(target, loop)
            and ind < MAX_INLINE_INDENT
            and self.chain < MAX_INLINE_CHAIN
        ):
            self.chain += 1
            self.block(target, ind, loop, pending)
            self.chain -= 1
        else:
            self._count(ind, pending)
            self.lines.append((ind, f"b = {self._block_id(target)}"))
            self.lines.append((ind, "break" if loop is not None else "continue"))

    def _count(self, ind: int, pending: int) -> None:
        if pending:
            self.lines.append((ind, f"n += {pending}"))

    # -- blocks ------------------------------------------------------------------

    def block(self, start: int, ind: int, loop: int | None, pending: int = 0) -> None:
        """Emit block `start` (and whatever it inlines) at indentation `ind`.

        The instruction count is added where it is read, not per block: a
        block adds its length to the `pending` count it was entered with and
        hands the sum to the block it runs into when that one is inlined
        here, so a path of inlined blocks adds to `n` once, at its exit (or
        where a loop head's budget check, a call or an early return reads
        `n`). Faults do not report the count, so none needs it earlier.
        """
        block = self.fn.blocks[start]
        emit = self.lines.append
        pending += block.length
        if start in self.heads or any(_reads_count(insn) for _, insn in block.insns):
            self._count(ind, pending)
            pending = 0
        if self.budget is not None and start in self.heads:
            emit((ind, f"if n > {self.budget}: budget(n, {start})"))
        pc, insn = block.last
        straight = block.insns[:-1]
        if insn.opcode != EXIT and not is_jump(insn):
            straight = block.insns  # the last instruction falls through
        # A program's first block reads its context through r1 (`ops.load`).
        self.r1_context = start == self.fn.entry == 0
        self.straight(straight, ind)
        self.r1_context = False
        if insn.opcode == EXIT:
            emit((ind, _SAVE))
            emit((ind, f"return r0, n + {pending}" if pending else "return r0, n"))
        elif is_jump(insn) and len(block.successors) == 1:  # ja / gotol
            self.goto(jump_target(pc, insn), ind, loop, pending)
        elif is_jump(insn):
            emit((ind, f"if {ops.condition(insn)}:"))
            before = dict(self.lower)
            self._learn(insn, taken=True)
            self.goto(jump_target(pc, insn), ind + 1, loop, pending)
            self.lower = before
            self._learn(insn, taken=False)
            self.goto(pc + 1, ind, loop, pending)
        else:
            self.goto(block.successors[0], ind, loop, pending)

    def straight(self, insns: list[tuple[int, Instruction]], ind: int) -> None:
        """Emit straight-line instructions, folding runs of ALU operations on one register.

        `r3 = r1; r3 += 0x22` becomes `r3 = (r1 + 0x22) & M`: one store and
        one load fewer per folded instruction (see `codegen_ops.alu_fusable`).
        """
        emit = self.lines.append
        register, value, folded = -1, "", 0  # the run being folded
        last, operand = None, ""  # its last instruction and that one's operand
        self.r1_constant = None  # nothing is known of r1 at a block's start
        self.constants = {}  # nor of any register
        for pc, insn in insns:
            self._track_r1(insn)
            if self.r1_context and (_written_register(insn) == 1 or insn.opcode in (CALL, CALLX)):
                self.r1_context = False
            if insn.opcode & 0x07 in (InsnClass.ALU, InsnClass.ALU64):
                if insn.dst == register and folded < MAX_FOLDED and ops.alu_fusable(insn):
                    folded += 1
                    operand, value = value, self._folded_value(insn, value, last, operand)
                    last = insn
                    self.constants.pop(insn.dst, None)
                    continue
                if register >= 0:
                    emit((ind, f"r{register} = {value}"))
                register, value, folded = insn.dst, self._folded_value(insn), 1
                last, operand = insn, f"r{insn.dst}"
                self.lower.pop(insn.dst, None)
                self._track_constant(insn)
                continue
            if register >= 0:
                emit((ind, f"r{register} = {value}"))
                register = -1
            for line in self.instruction(pc, insn):
                emit(_nested(ind, line))
            self._forget(insn)
            self._track_constant(insn)
        if register >= 0:
            emit((ind, f"r{register} = {value}"))

    def _folded_value(
        self,
        insn: Instruction,
        value: str | None = None,
        last: Instruction | None = None,
        operand: str = "",
    ) -> str:
        """`codegen_ops.folded_value` (`alu_value` to start a run, `value` None), unmasked
        where it can be.

        A decrement of a register known to be at least as large (`_learn`)
        cannot wrap: `r1 -= 1` is `r1 - 1`, and `r2 = r10; r2 += -4` is
        `r10 - 4`, without the 64-bit mask. A register read by the run
        keeps its bound: the run writes only its dst.
        """
        before = f"r{insn.dst}" if value is None else value
        register = _REGISTER_NAME.fullmatch(before)
        if register is not None:
            lower = self.lower.get(int(register[1]), 0)
            unwrapped = ops.unwrapped_value(insn, before, lower)
            if unwrapped is not None:
                return unwrapped
        if value is None:
            return ops.alu_value(insn)
        return ops.folded_value(insn, value, last, operand)

    def _learn(self, insn: Instruction, taken: bool) -> None:
        """Add what jump `insn` proves on its `taken` (or other) edge to `lower`."""
        fact = ops.branch_bound(insn, taken)
        if fact is not None:
            register, bound = fact
            self.lower[register] = max(bound, self.lower.get(register, 0))

    def _forget(self, insn: Instruction) -> None:
        """Drop the bounds `insn` (not an ALU instruction) may invalidate.

        Loads and `lddw` write their dst; anything else that writes a
        register (calls, atomics, packet loads) forgets every bound.
        """
        cls = insn.opcode & 0x07
        if cls == InsnClass.LDX or insn.opcode == LDDW:
            self.lower.pop(insn.dst, None)
        elif cls not in (InsnClass.ST, InsnClass.STX) or (insn.opcode & 0xE0) == Mode.ATOMIC:
            self._reset_bounds()

    def _reset_bounds(self) -> None:
        """What is known at a loop head or a dispatched block: only the frame pointer's floor.

        r10 is the top of a frame of `STACK_SIZE` bytes at a real address,
        so `r10 - k` for k up to that size needs no mask either.
        """
        self.lower = {FRAME_POINTER: STACK_SIZE}

    def _track_constant(self, insn: Instruction) -> None:
        """Keep `constants` (register → value) as it is after `insn`, within one block.

        `lddw` of a number (a map value's address, most often) and `mov`
        of an immediate set one; anything else that writes a register
        forgets it (r0 too for a call, a packet load or a cmpxchg).
        """
        if insn.opcode == LDDW and func_target(0, insn) is None:
            self.constants[insn.dst] = insn.imm & M64
            return
        if insn.opcode == InsnClass.ALU64 | AluOp.MOV and insn.off == 0:  # mov64 rX, imm
            self.constants[insn.dst] = insn.imm & M64
            return
        self.constants.pop(_written_register(insn), None)
        atomic = insn.opcode & 0x07 == InsnClass.STX and (insn.opcode & 0xE0) == Mode.ATOMIC
        if insn.opcode in (CALL, CALLX) or insn.opcode in LEGACY_PACKET_LOADS or atomic:
            self.constants.pop(0, None)

    def _track_r1(self, insn: Instruction) -> None:
        """Keep `r1_constant`: the value of r1 after `insn` when an `lddw` in this block set it.

        The emitted code of a later instruction in the block is emitted
        with `insn` already run. Only instructions that write r1 in this
        interpreter change it (a call leaves the caller's r1 as it was).
        """
        if insn.opcode == LDDW and insn.dst == 1:
            constant = func_target(0, insn) is None  # not a subprogram's token
            self.r1_constant = insn.imm & M64 if constant else None
        elif _written_register(insn) == 1:
            self.r1_constant = None

    def dispatched_block(self, start: int, ind: int) -> None:
        """Emit a block reached through the dispatcher (loop heads get a `while`).

        The `while` of a loop head makes each jump back to it from code
        inlined or copied into its body (`_tail_size`) a `continue`, so a
        loop of a few blocks (a branch in a scan) turns without the
        dispatcher. `~start` stands for the plain (not unrolled) form of an
        unrolled loop.
        """
        plain = start < 0
        start = ~start if plain else start
        self._reset_bounds()
        block = self.fn.blocks[start]
        if start not in self.heads:
            self.block(start, ind, loop=None)
            return
        if block.last[0] not in block.predecessors:  # not a self-loop: never unrolled
            self.lines.append((ind, "while True:"))
            self.block(start, ind + 1, loop=start)
            return
        copies = 1 if plain else self._unroll(start)
        if copies > 1:
            self.unrolled_loop(start, ind, copies)
            return
        self.lines.append((ind, "while True:"))
        self.block(start, ind + 1, loop=start)

    def _unroll(self, start: int) -> int:
        """How many copies of self-loop `start` one turn of its `while` runs (1: none).

        Only short loops that end in a conditional jump back and hold no call
        and no packet load (nothing that reads `n` or returns midway) qualify.
        """
        block = self.fn.blocks[start]
        pc, last = block.last
        copies = min(UNROLL_MAX_COPIES, UNROLL_INSTRUCTIONS // block.length)
        if copies < 2 or not is_jump(last) or len(block.successors) != 2:
            return 1
        if jump_target(pc, last) != start:
            return 1
        for _, insn in block.insns:
            if insn.opcode in (CALL, CALLX) or insn.opcode in LEGACY_PACKET_LOADS:
                return 1
        return copies

    def unrolled_loop(self, start: int, ind: int, copies: int) -> None:
        """Emit self-loop `start` with `copies` iterations per turn of its `while`.

        The instruction count is added once per turn and taken back on an
        early exit, which saves most of the per-iteration counting; with a
        budget, a turn that could cross it runs the plain loop instead
        (`~start`), which checks the budget at every iteration as before.
        """
        block = self.fn.blocks[start]
        pc, last = block.last
        emit = self.lines.append
        length = block.length
        emit((ind, "while True:"))
        ind += 1
        emit((ind, f"n += {copies * length}"))
        if self.budget is not None:
            emit((ind, f"if n > {self.budget}:"))
            emit((ind + 1, f"n -= {copies * length}"))
            emit((ind + 1, f"b = {self._block_id(~start)}"))
            emit((ind + 1, "break"))
        exit_id = self._block_id(pc + 1)
        condition = ops.condition(last)
        for copy in range(copies):
            self.straight(block.insns[:-1], ind)
            # Leaving the loop goes through the dispatcher: the code after it
            # is emitted once, not once per copy.
            if copy < copies - 1:
                emit((ind, f"if not ({condition}):"))
                emit((ind + 1, f"n -= {(copies - 1 - copy) * length}"))
                emit((ind + 1, f"b = {exit_id}"))
                emit((ind + 1, "break"))
                self._learn(last, taken=True)  # the next copy runs after the jump back
            else:
                emit((ind, f"if {condition}:"))
                emit((ind + 1, "continue"))
                emit((ind, f"b = {exit_id}"))
                emit((ind, "break"))

    # -- instructions ------------------------------------------------------------

    def instruction(self, pc: int, insn: Instruction) -> list[str]:
        """Lines for one non-branching instruction."""
        op = insn.opcode
        cls = op & 0x07
        if cls in (InsnClass.ALU, InsnClass.ALU64):
            return ops.alu(insn)
        if cls == InsnClass.LDX:
            context = self.r1_context and insn.src == 1
            return ops.load(pc, insn, self.sites, context, self.constants.get(insn.src))
        if op in LEGACY_PACKET_LOADS:
            return _packet_load(insn)
        if cls == InsnClass.STX and (op & 0xE0) == Mode.ATOMIC:
            self.native_atomics = native_atomics_enabled()
            constant = self.constants.get(insn.dst)
            return ops.atomic(pc, insn, self.sites, self.native_atomics, constant)
        if cls in (InsnClass.ST, InsnClass.STX):
            return ops.store(pc, insn, self.sites, self.constants.get(insn.dst))
        if op == LDDW:
            callee = func_target(pc, insn)
            if callee is not None:
                return [f"r{insn.dst} = {hexlit(FUNC_TOKEN | callee)}"]
            return [f"r{insn.dst} = {hexlit(insn.imm & M64)}"]
        if op == CALL and insn.src == CallSrc.LOCAL:
            target = local_call_target(pc, insn)
            depth = f"if d >= {MAX_DEPTH - 1}: deep({pc})"
            inlined = self.inline_call(target)
            if inlined is not None:
                return [depth, *inlined]
            callee = function_name(target)
            return [
                depth,
                f"r0, n = {callee}(r1, r2, r3, r4, r5, r6, r7, r8, r9, n, d + 1, S, E)",
                _RESET,
            ]
        if op == CALL:
            helper_id = insn.imm & 0xFFFFFFFF
            if helper_id not in self.helpers:
                return [f"nohelper({helper_id}, {pc})"]
            if helper_id == MAP_LOOKUP_HELPER and self.r1_constant is not None:
                return self.map_lookup(pc)
            call = [_SAVE, f"r0 = h{helper_id}(E, r1, r2, r3, r4, r5) & {hexlit(M64)}", _RESET]
            if helper_id == TAIL_CALL_HELPER:
                # A tail call replaces this function's frame only: the chain's
                # r0 is what this function returns (see `common.tail_call_in_frame`).
                return [
                    _SAVE,
                    "try:",
                    f"\tr0 = h{helper_id}(E, r1, r2, r3, r4, r5) & {hexlit(M64)}",
                    "except TailCall as T:",
                    "\tr0, m = tailframe(T, E)",
                    "\treturn r0, n + m",
                    _RESET,
                ]
            if helper_id in CALLBACK_HELPERS:
                return [f"E.data[{CALLBACK_FRAME!r}] = (d, S)", *call]
            return call
        if op == CALLX:
            return [
                _SAVE,
                f"r0 = callx(E, r{insn.dst}, r1, r2, r3, r4, r5, {pc}) & {hexlit(M64)}",
                _RESET,
            ]
        raise AssertionError(f"pc {pc}: no translation for opcode 0x{op:02x}")

    def map_lookup(self, pc: int) -> list[str]:
        """Lines for `bpf_map_lookup_elem` with a constant map pointer in r1.

        The site caches like a load site: the region of the last key (its
        start, and the highest key offset in it) and, as the "view", the
        map's native lookup (a builtin bound to the map). A key inside that
        region calls the lookup straight away; any other goes through `mlk`,
        which calls the helper as any call site does and refills the site
        when the engine may cache this call (bounds -1 when not: another
        helper table, a per-CPU map). A removed region (a map leaving the
        context bumps the generation too) empties the site like any other.
        """
        site = self.sites.next()
        return [
            f"o = r2 - L{site}",
            f"if o < 0 or o > H{site}:",
            "\t" + _SAVE,
            f"\tL{site}, H{site}, V{site}, r0 = mlk(E, r1, r2, r3, r4, r5)",
            "\t" + _RESET,
            f"\tif H{site} >= 0: W = 1",
            "else:",
            f"\tr0 = V{site}(r2, 0)",
        ]

    def inline_call(self, target: int) -> list[str] | None:
        """The lines of leaf callee `target` inlined at a call site, or None to call it.

        The callee's code is the one its own function would run, with its
        load and store sites numbered among this function's (so they share
        its persistent cache), inside a `while True:` that each exit leaves
        with `break` (r0 is the callee's result). Registers r1-r9 the callee
        writes become locals `q1`-`q9`, copied from the caller's at entry,
        so that the caller's registers stay as a call leaves them. Only
        leaves qualify: nothing in them ends the run or returns midway (no
        calls, no packet loads), they have no frame of their own and no
        loops (a single body without the dispatcher), so each exit is a
        `break` out of the `while` around them.
        """
        callee = self.functions.get(target)
        if callee is None or target == self.fn.entry or not _leaf(callee):
            return None
        size = sum(block.length for block in callee.blocks.values())
        if self.inlined + size > INLINE_BUDGET:
            return None
        writer = _FunctionWriter(callee, self.budget, self.helpers)
        writer.sites.count = self.sites.count
        body = writer.single_body()
        if body is None or max(ind for ind, _ in body) > INLINE_INDENT:
            return None
        self.inlined += size
        self.sites.count = writer.sites.count
        self.native_atomics |= writer.native_atomics
        written = _written_registers(callee)

        def rename(match: re.Match[str]) -> str:
            return f"q{match[1]}" if int(match[1]) in written else match[0]

        lines = [f"q{reg} = r{reg}" for reg in sorted(written)]
        lines += ["r0 = 0", "while True:"]
        for ind, text in body:
            if text == _SAVE:
                continue  # the caller saves the sites at its own exits
            if text.startswith("return r0, n"):  # an exit: its count, then leave
                count = text.removeprefix("return r0, n").removeprefix(" + ")
                if count:
                    lines.append("\t" * (ind + 1) + f"n += {count}")
                text = "break"
            lines.append("\t" * (ind + 1) + _REGISTER.sub(rename, text))
        return lines

    # -- the whole function ----------------------------------------------------

    def _bodies(self) -> dict[int, list[tuple[int, str]]]:
        """The lines of every dispatched block (by block id), placeholders unexpanded."""
        self._block_id(self.fn.entry)
        bodies: dict[int, list[tuple[int, str]]] = {}
        while self.pending:
            start = self.pending.pop()
            self.lines = []
            self.dispatched_block(start, 0)
            bodies[self.dispatch[start]] = self.lines
        return bodies

    def single_body(self) -> list[tuple[int, str]] | None:
        """The function's code when it needs no dispatcher (see `write`), else None."""
        bodies = self._bodies()
        if len(bodies) != 1 or self.fn.blocks[self.fn.entry].predecessors:
            return None
        return bodies[0]

    def write(self) -> str:
        """The complete source of the function."""
        bodies = self._expanded_bodies()
        out = [f"def {function_name(self.fn.entry)}({_PARAMS}):", *self._prologue(self._views())]
        if self._straight_body():
            out += [_indent(1 + i, text) for i, text in bodies[0]]
        else:
            out += ["    b = 0", "    while True:"]
            self._tree(sorted(bodies), bodies, 2, out)
        return "\n".join(out) + "\n"

    def _expanded_bodies(self) -> dict[int, list[tuple[int, str]]]:
        """Every dispatched block's lines, placeholders expanded (computed once)."""
        if self.expanded is None:
            bodies = self._bodies()
            self.expanded = {bid: self._expand_resets(lines) for bid, lines in bodies.items()}
        return self.expanded

    def _views(self) -> set[str]:
        """The frame's typed views (`sb` ... `sq`) the body uses."""
        used = {text for lines in self._expanded_bodies().values() for _, text in lines}
        return set(_STACK_VIEW.findall("\n".join(used)))

    def _straight_body(self) -> bool:
        """Whether the function is one body without the dispatcher (nothing jumps back)."""
        return len(self._expanded_bodies()) == 1 and not self.fn.blocks[self.fn.entry].predecessors

    def write_runner(self) -> str:
        """The source of `RUNNER_NAME(R1, S, E)`: this (entry) function as a generator of runs.

        What a test run's repeat loop calls instead of the function, once
        per run: `send(env)` runs the program once more from pc 0 with r1 =
        R1, and yields `(r0, executed)`. Each run starts as a call of the
        function does (a zeroed frame, r0 and r2-r9 zero, the site caches
        checked against `Memory.generation`), and runs the same body; only
        the call and the set-up that cannot change between runs (the frame
        and its views, the site caches taken over from the last run while
        no region went away) are done once. Each `return` of the body
        yields instead and starts the next run (`_runs`): exits lie in no
        `while` but the dispatcher's and self-loops' (an inlined callee's
        exits are `break`s already).
        """
        bodies = self._expanded_bodies()
        frame = self._uses_frame()
        count = self.sites.count
        out = [f"def {RUNNER_NAME}(R1, S, E):", "    d = 0"]
        if frame:
            out += ["    F = S[0]", "    r10 = F.top; B = F.bottom"]
            views = self._views()
            if views:
                out.append("    " + "; ".join(f"{v} = F.{v[1]}" for v in sorted(views)))
        if count:
            out += [f"    global {self._cache_name}", "    G = -1; W = 0"]
            out += ["    " + line for line in self._empty_sites()]
        out += ["    E = yield", "    while True:"]
        if frame:
            out.append("        " + self._zero_frame().replace("F.bottom", "B"))
        # r2-r9 start at 0 as the function's arguments do; those the body
        # never names need no value.
        text = "\n".join(text for lines in bodies.values() for _, text in lines)
        named = sorted({int(name) for name in re.findall(r"\br([2-9])\b", text)})
        zeroed = " = ".join([*(f"r{reg}" for reg in named), "n"])
        out.append(f"        r0 = 0; r1 = R1; {zeroed} = 0")
        if count:
            out += [
                "        if MEM.generation != G:",
                f"            G = MEM.generation; c = {self._cache_name}",
                "            if c[0] == G:",
                f"                {self._cache_items.replace('G, ', '_, ', 1)} = c",
                "            else:",
                "                " + " = ".join(f"H{i}" for i in range(count)) + " = -1",
            ]
        if self._straight_body():
            out += [_indent(ind, text) for ind, text in _runs(bodies[0], 2, dispatched=False)]
        else:
            runs = {bid: _runs(lines, 0, dispatched=True) for bid, lines in bodies.items()}
            # The dispatcher checks for `_LEAVE_RUN` only when some exit needs it.
            leave = any(text == _LEAVE_RUN for lines in runs.values() for _, text in lines)
            out += ["        b = 0", f"        while {'b >= 0' if leave else 'True'}:"]
            self._tree(sorted(runs), runs, 3, out)
        return "\n".join(out) + "\n"

    def _zero_frame(self) -> str:
        # A fresh frame per call: no run or call sees another's leftovers.
        if native_atomics_enabled():  # builtins: the C library's memset (`MEMSET`)
            return f"MEMSET(F.bottom, 0, {hexlit(STACK_SIZE)})"
        return "F.b[:] = ZERO_FRAME"

    def _empty_sites(self) -> list[str]:
        # Every site without a region: bounds -1 send its first access to the slow path.
        lines = []
        for first in range(0, self.sites.count, 16):
            names = range(first, min(self.sites.count, first + 16))
            lines.append(" = ".join(f"L{i}" for i in names) + " = 0")
            lines.append(" = ".join(f"H{i}" for i in names) + " = -1")
            lines.append(" = ".join(f"V{i}" for i in names) + " = None")
        return lines

    def _expand_resets(self, lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
        # A call may free regions (a helper deleting a map element): if the
        # table changed, forget every cached region so the next access of
        # each site is checked against the live table again. Before a call
        # (which may end the run with a tail call) and at every return, the
        # site caches go back to the function's persistent cache if a site
        # found a new region.
        out: list[tuple[int, str]] = []
        count = self.sites.count
        names = " = ".join(f"H{i}" for i in range(count))
        for ind, text in lines:
            if text == _RESET:
                if names:
                    out.append((ind, "if MEM.generation != G:"))
                    out.append((ind + 1, f"G = MEM.generation; {names} = -1"))
            elif text == _SAVE:
                if count:
                    out.append((ind, f"if W: {self._cache_name} = ({self._cache_items}); W = 0"))
            else:
                out.append((ind, text))
        return out

    @property
    def _cache_name(self) -> str:
        return cache_name(self.fn.entry)

    @property
    def _cache_items(self) -> str:
        # The stamp first: the generation under which every cached region was live.
        return "G, " + ", ".join(f"L{i}, H{i}, V{i}" for i in range(self.sites.count))

    def _uses_frame(self) -> bool:
        # Only r10 leads to a function's own frame.
        return any(
            FRAME_POINTER in (insn.dst, insn.src)
            for block in self.fn.blocks.values()
            for _, insn in block.insns
        )

    def _prologue(self, views: set[str]) -> list[str]:
        # `views`: the frame's typed views (`sb` ... `sq`) the body uses.
        lines = ["    r0 = 0"]
        if self._uses_frame():
            lines += ["    F = S[d]", "    r10 = F.top"]
            if views:
                lines.append("    " + "; ".join(f"{v} = F.{v[1]}" for v in sorted(views)))
            # A function that never names r10 has no way to its frame, so it
            # skips zeroing it.
            lines.append("    " + self._zero_frame())
        count = self.sites.count
        if not count:
            return lines
        # The site caches persist across runs in a module global, stamped
        # with `Memory.generation`: they are used only while no region has
        # gone away since they were filled (a removed region is never used).
        name = self._cache_name
        lines += [
            f"    global {name}",
            "    G = MEM.generation; W = 0",
            f"    c = {name}",
            "    if c[0] == G:",
            f"        {self._cache_items.replace('G, ', '_, ', 1)} = c",
            "    else:",
        ]
        return lines + ["        " + line for line in self._empty_sites()]

    def _tree(
        self,
        ids: list[int],
        bodies: dict[int, list[tuple[int, str]]],
        ind: int,
        out: list[str],
    ) -> None:
        # A binary search on `b`: log2(blocks) comparisons per dispatch.
        if len(ids) == 1:
            out += [_indent(ind + i, text) for i, text in bodies[ids[0]]]
            return
        mid = len(ids) // 2
        out.append(_indent(ind, f"if b < {ids[mid]}:"))
        self._tree(ids[:mid], bodies, ind + 1, out)
        out.append(_indent(ind, "else:"))
        self._tree(ids[mid:], bodies, ind + 1, out)


_STACK_VIEW = re.compile(r"\bs[bhwq]\b")
"""A stack frame view in generated code (`codegen_ops._STACK_VIEWS`)."""

_REGISTER_NAME = re.compile(r"r(\d+)")
"""The code of a register's value when it is just that register."""

_REGISTER = re.compile(r"\br([1-9])\b")
"""A register r1-r9 in generated code (no other name there is `r` and a digit)."""


def _runs(lines: list[tuple[int, str]], base: int, dispatched: bool) -> list[tuple[int, str]]:
    """A body's lines for `write_runner`, at indentation `base`: each exit yields its result.

    A `return X` becomes `E = yield X` (the next run's env comes back) and
    then leaves for the next run: `continue` the run loop in a straight
    body; in a dispatched one `break` out of the dispatcher's `while` from
    its level, or from a self-loop's `while` inside it `b = -1` first
    (`_LEAVE_RUN`), which ends the dispatcher's `while b >= 0`.
    """
    out: list[tuple[int, str]] = []
    loops: list[int] = []  # the indentation of each `while` the line is in
    for ind, text in lines:
        while loops and ind <= loops[-1]:
            loops.pop()
        if text.startswith("while "):
            loops.append(ind)
        if not text.startswith("return "):
            out.append((base + ind, text))
            continue
        out.append((base + ind, "E = yield " + text.removeprefix("return ")))
        if not dispatched:
            out.append((base + ind, "continue"))
        elif loops:
            out += [(base + ind, _LEAVE_RUN), (base + ind, "break")]
        else:
            out.append((base + ind, "break"))
    return out


_LEAVE_RUN = "b = -1"
"""What an exit inside a self-loop's `while` sets before its `break` (see `_runs`)."""


def _reads_count(insn: Instruction) -> bool:
    """Whether the code of `insn` reads the instruction count `n` (see `_FunctionWriter.block`).

    A bpf-to-bpf call passes it on (an inlined one only adds to it), a tail
    call and a packet load past the packet's end return it.
    """
    if insn.opcode == CALL:
        return insn.src == CallSrc.LOCAL or (
            insn.src == 0 and insn.imm & 0xFFFFFFFF == TAIL_CALL_HELPER
        )
    return insn.opcode in LEGACY_PACKET_LOADS


def _leaf(fn: Function) -> bool:
    """Whether `fn` may be inlined: small, no calls, no packet loads, no stack frame."""
    insns = [insn for block in fn.blocks.values() for _, insn in block.insns]
    if len(insns) > INLINE_INSTRUCTIONS:
        return False
    return not any(
        insn.opcode in (CALL, CALLX)
        or insn.opcode in LEGACY_PACKET_LOADS
        or FRAME_POINTER in (insn.dst, insn.src)
        for insn in insns
    )


def _written_register(insn: Instruction) -> int | None:
    """The register `insn` writes, or None; the r0 of calls and of cmpxchg is left out (a
    call leaves the caller's r1-r9 as they were in this interpreter; jumps, stores and
    exits write none)."""
    cls = insn.opcode & 0x07
    if cls in (InsnClass.ALU, InsnClass.ALU64, InsnClass.LDX) or insn.opcode == LDDW:
        return insn.dst
    if cls == InsnClass.STX and (insn.opcode & 0xE0) == Mode.ATOMIC:
        return insn.src  # a fetching atomic writes its src register
    return None


def _written_registers(fn: Function) -> set[int]:
    """The registers among r1-r9 that some instruction of `fn` writes."""
    written = {_written_register(insn) for block in fn.blocks.values() for _, insn in block.insns}
    return written & set(range(1, 10))


def _nested(ind: int, line: str) -> tuple[int, str]:
    """An instruction's line at `ind`, one level deeper per leading tab."""
    text = line.lstrip("\t")
    return ind + len(line) - len(text), text


_PACKET_LOAD_IMPORT = "from pybpf.runtime.packet_loads import load_abs as LDABS\n"


def _packet_load(insn: Instruction) -> list[str]:
    """LD_ABS / LD_IND: r0 from the packet, or return 0 past its end (`runtime.packet_loads`)."""
    size = {0x00: 4, 0x08: 2, 0x10: 1}[insn.opcode & 0x18]
    offset = str(insn.imm)
    if insn.opcode & 0xE0 == Mode.IND:
        offset = f"r{insn.src} + {insn.imm}"
    return [
        f"r0 = LDABS(MEM, r6, {offset}, {size})",
        "if r0 is None:",
        "\t" + _SAVE,
        "\treturn 0, n",
    ]


def _indent(level: int, text: str) -> str:
    return "    " * level + text


def native_atomics_enabled() -> bool:
    """Whether atomics call native functions (`native.calls.atomic_function`) in this process.

    The same switch decides whether a frame is zeroed by the C library's
    memset (`native.calls.memset_function`), a builtin too.
    """
    return calls.FASTCALL_ENABLED


def generate(
    layout: ProgramLayout, budget: int | None, helpers: frozenset[int]
) -> tuple[str, bool, str]:
    """The Python module source for a whole program, whether it uses native atomics, and the
    source of its runner (`_FunctionWriter.write_runner`).

    `helpers` are the helper ids that exist: a call to any other id becomes
    a fault at its call site.
    """
    parts = ["# generated by pybpf.engine.translate; one function per eBPF function\n"]
    if any(i.opcode in LEGACY_PACKET_LOADS for i in layout.insns.values()):
        parts.append(_PACKET_LOAD_IMPORT)
    native_atomics = False
    runner = ""
    for fn in layout.functions.values():
        writer = _FunctionWriter(fn, budget, helpers, layout.functions)
        parts.append(writer.write())
        native_atomics |= writer.native_atomics
        if fn.entry == 0:
            runner = writer.write_runner()
    return "\n".join(parts), native_atomics, runner


_CACHE: dict[tuple[bytes, int | None, frozenset[int], bool], Translation] = {}
_CACHE_LIMIT = 512
_CACHE_LOCK = threading.Lock()


def translate(
    insns: list[Instruction],
    budget: int | None = None,
    where: str | None = None,
    helpers: frozenset[int] = frozenset(),
) -> Translation:
    """Check, translate and compile `insns`; reuse an earlier result for the same bytes.

    Raises `DecodeError` (naming the pc) for a malformed program and
    `NotSupportedError` for instructions pybpf cannot run yet.
    """
    called = frozenset(
        insn.imm & 0xFFFFFFFF for insn in insns if insn.opcode == CALL and insn.src == 0
    )
    known = called & helpers
    key = (encode(insns), budget, known, native_atomics_enabled())
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
    if hit is not None:
        return hit
    layout = analyze(insns, where)
    source, native_atomics, runner = generate(layout, budget, known)
    digest = hashlib.sha1(key[0]).hexdigest()[:12]
    code = compile(source, f"<bpf {digest}>", "exec")
    result = Translation(source, code, layout, function_name(0), native_atomics, runner)
    with _CACHE_LOCK:
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = result
    return result


RUNNER_NAME = "runs"
"""The name of the entry function's generator of runs (`_FunctionWriter.write_runner`)."""

_RUNNERS: dict[str, object] = {}


def runner_code(translation: Translation) -> object:
    """The compiled `translation.runner_source`, compiled once per source.

    Compiled on first use, not with the program: only repeated test runs
    use it, and it doubles the entry function's code.
    """
    source = translation.runner_source
    with _CACHE_LOCK:
        code = _RUNNERS.get(source)
    if code is None:
        code = compile(source, "<bpf runs>", "exec")
        with _CACHE_LOCK:
            if len(_RUNNERS) >= _CACHE_LIMIT:
                _RUNNERS.pop(next(iter(_RUNNERS)))
            _RUNNERS[source] = code
    return code
