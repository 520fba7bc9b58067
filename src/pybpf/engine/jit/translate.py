"""eBPF → LLVM IR: one LLVM function per eBPF function, plus a native repeat loop.

The calling convention is `abi`'s: ``i64 @<prefix>_f<P>(i64 r1..r5, i64
depth, ptr run)`` returns r0. Each eBPF basic block (from `engine.cfg`)
becomes one LLVM block; registers are SSA values (`ops.Registers`): each
block starts with its only predecessor's values, or with phis for the
registers live into it (a liveness pass over the eBPF blocks) whose
values differ on the ways in. Every branch into an eBPF block must record
the values it carries (`_FunctionBuilder._leave`). Frame pointer: ``r10 = run->stack_top0 +
depth * run->stack_stride``; a function that mentions r10 zeroes its frame
on entry, as the interpreter does (a function that never names r10 cannot
reach its frame, so it skips the memset).

Calls:

* bpf-to-bpf: an LLVM call with depth + 1, after a depth check that
  faults (through the fallback, as kind FAULT) beyond 8 frames;
* helpers: a native emitter from `helper_registry` if one takes the site,
  else a call of the external Python fallback (`fallback.FALLBACK_SYMBOL`);
  helpers absent from the program's table go to the fallback too, which
  raises the interpreter's error when (and only when) the call is reached;
* `callx`: always the fallback, the id taken from the dst register.

After every fallback call and every bpf-to-bpf call, a non-zero
`run->status` makes the function return 0 at once (the engine then raises
the stored exception).

`@<prefix>_repeat(i64 r1, i64 n, ptr run)` calls the entry n times,
resetting `run->tail_calls` before each; it returns the last r0, or, when
a run stops with `status` set, the number of runs started (including the
stopped one) so the engine can finish that run in Python and go on.
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping
from typing import Any

from llvmlite import ir

from ...isa.instruction import Instruction
from ...isa.opcodes import (
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
    Source,
)
from ...platform.contexts import SK_BUFF
from ...runtime.memory import pointer_slots_of
from ..cfg import (
    LEGACY_PACKET_LOADS,
    Function,
    ProgramLayout,
    func_target,
    is_jump,
    jump_target,
    local_call_target,
)
from ..translate import FUNC_TOKEN, MAX_DEPTH
from . import ops
from .abi import RUN_FIELD, RunState
from .context_loads import UNSUPPORTED
from .fallback import (
    FALLBACK_SYMBOL,
    FAULT_ATOMIC,
    FAULT_CONTEXT,
    FAULT_TOO_DEEP,
    KIND_CALLX,
    KIND_FAULT,
    KIND_HELPER,
    encode_call,
)
from .helper_registry import HelperSite, emitter_for
from .ops import I32, I64, PTR, i64


def _run_type() -> ir.LiteralStructType:
    kinds = {8: I64, 4: I32}
    return ir.LiteralStructType(
        [kinds[ctypes.sizeof(kind)] for _, kind in RunState._fields_]  # type: ignore[misc]
    )


_SKB_SLOTS = pointer_slots_of(SK_BUFF)
"""Slots of the `__sk_buff` pointer fields in `run->ctx_pointers` (for LD_ABS / LD_IND)."""

RUN_TYPE = _run_type()
"""The LLVM struct type of `abi.RunState` (built from the ctypes layout)."""

FUNCTION_TYPE = ir.FunctionType(I64, [I64] * 6 + [PTR])
"""``i64 (i64 r1..r5, i64 depth, ptr run)``."""

FALLBACK_TYPE = ir.FunctionType(I64, [PTR] + [I64] * 6)
"""``i64 (ptr run, i64 helper_id, i64 r1..r5)``."""

REPEAT_TYPE = ir.FunctionType(I64, [I64, I64, PTR])
"""``i64 (i64 r1, i64 n, ptr run)``."""


def function_symbol(prefix: str, pc: int) -> str:
    """The symbol of the eBPF function at `pc`."""
    return f"{prefix}_f{pc}"


def repeat_symbol(prefix: str) -> str:
    """The symbol of the native repeat loop."""
    return f"{prefix}_repeat"


def run_field(builder: ir.IRBuilder, run: ir.Value, name: str) -> ir.Value:
    """A pointer to field `name` of the `RunState` at `run`."""
    index = ir.Constant(I32, RUN_FIELD[name])
    return builder.gep(run, [ir.Constant(I32, 0), index], inbounds=True, source_etype=RUN_TYPE)


def _writes(insn: Instruction) -> tuple[int, ...]:
    # Registers an instruction may change (for the r1-constant tracking).
    cls = insn.opcode & 0x07
    if cls in (InsnClass.ALU, InsnClass.ALU64, InsnClass.LDX, InsnClass.LD):
        return (insn.dst,)
    if cls == InsnClass.STX and (insn.opcode & 0xE0) == Mode.ATOMIC:
        return (0, insn.src)
    if insn.opcode in (CALL, CALLX):
        return (0, 1, 2, 3, 4, 5)
    return ()


_ARGS = 0b111110  # r1..r5


def _uses_defs(pc: int, insn: Instruction) -> tuple[int, int]:
    """Bit masks of the registers `insn` may read and of those it surely writes.

    Over-approximated reads and under-approximated writes only make the
    liveness below larger (more phis), never wrong.
    """
    op = insn.opcode
    cls = op & 0x07
    dst, src = 1 << insn.dst, 1 << insn.src
    if cls in (InsnClass.ALU, InsnClass.ALU64):
        alu = op & 0xF0
        if alu == AluOp.MOV:
            return (src if op & Source.X else 0), dst
        if alu == AluOp.END:
            return dst, dst
        return dst | (src if op & Source.X else 0), dst
    if cls == InsnClass.LDX:
        return src, dst
    if cls == InsnClass.ST:
        return dst, 0
    if cls == InsnClass.STX:
        if (op & 0xE0) == Mode.ATOMIC:
            return dst | src | 1 | _ARGS, 0
        return dst | src, 0
    if op == LDDW:
        return 0, dst
    if op in LEGACY_PACKET_LOADS:
        return 1 << 6 | src, 1  # r6 (the context) and an IND offset; r0
    if op == CALLX:
        return dst | _ARGS, 1
    if op == CALL:
        return _ARGS, 1
    if op == EXIT:
        return 1, 0
    if is_jump(insn):
        if op & 0xF0 == 0:  # ja / gotol
            return 0, 0
        return dst | (src if op & Source.X else 0), 0
    return 0x7FF, 0


def _live_in(fn: Function) -> tuple[dict[int, int], int]:
    """Registers live into each block (bit masks), and those any instruction writes."""
    uses: dict[int, int] = {}
    defs: dict[int, int] = {}
    written = 0
    for start, block in fn.blocks.items():
        used = defined = 0
        for pc, insn in block.insns:
            reads, writes = _uses_defs(pc, insn)
            used |= reads & ~defined
            defined |= writes
            written |= writes
            if insn.opcode & 0xE7 == InsnClass.STX | Mode.ATOMIC:
                written |= 1 | (1 << insn.src)  # r0 or the source, not in `writes`
        uses[start], defs[start] = used, defined
    live = dict.fromkeys(fn.blocks, 0)
    order = sorted(fn.blocks, reverse=True)
    changed = True
    while changed:
        changed = False
        for start in order:
            out = 0
            for succ in fn.blocks[start].successors:
                out |= live[succ]
            new = uses[start] | (out & ~defs[start])
            if new != live[start]:
                live[start] = new
                changed = True
    return live, written


INLINE_BUDGET = 256
"""eBPF instructions (callee size × call sites) a bpf-to-bpf callee may add by inlining."""


def _inlined(layout: ProgramLayout) -> set[int]:
    """The eBPF functions to inline at their call sites (`alwaysinline`).

    The programs' pipeline has no cost-model inliner, and a call costs a
    frame (zeroing 512 bytes of stack) and a status check; small,
    non-recursive callees are inlined (each keeps its own definition, for
    callbacks, so inlining adds compile time: hence the budget).
    """
    callees: dict[int, list[int]] = {}
    sizes: dict[int, int] = {}
    for entry, fn in layout.functions.items():
        sizes[entry] = sum(len(block.insns) for block in fn.blocks.values())
        callees[entry] = [
            target
            for block in fn.blocks.values()
            for pc, insn in block.insns
            if insn.opcode == CALL
            and insn.src == CallSrc.LOCAL
            and (target := local_call_target(pc, insn)) is not None
        ]
    sites: dict[int, int] = {}
    for targets in callees.values():
        for target in targets:
            sites[target] = sites.get(target, 0) + 1

    def recursive(entry: int) -> bool:
        seen: set[int] = set()
        todo = list(callees.get(entry, ()))
        while todo:
            pc = todo.pop()
            if pc == entry:
                return True
            if pc not in seen:
                seen.add(pc)
                todo.extend(callees.get(pc, ()))
        return False

    return {
        entry
        for entry, count in sites.items()
        if entry in sizes and sizes[entry] * count <= INLINE_BUDGET and not recursive(entry)
    }


def _mentions_r10(fn: Function) -> bool:
    return any(
        FRAME_POINTER in (insn.src, insn.dst)
        for block in fn.blocks.values()
        for _, insn in block.insns
    )


class _FunctionBuilder:
    """Emits one eBPF function into its (already declared) LLVM function."""

    def __init__(self, program: ProgramBuilder, fn: Function):
        self.program = program
        self.fn = fn
        self.function = program.functions[fn.entry]
        self.builder = ir.IRBuilder(self.function.append_basic_block("entry"))
        self.regs = ops.Registers(self.builder)
        self.depth, self.run = self.function.args[5], self.function.args[6]
        self.blocks = {
            start: self.function.append_basic_block(f"pc{start}") for start in sorted(fn.blocks)
        }
        self._unwind: ir.Block | None = None
        self.r1_constant: int | None = None
        # Branches into each eBPF block: (LLVM block, register values there).
        self._incoming: dict[int, list[tuple[ir.Block, list[ir.Value]]]] = {
            start: [] for start in fn.blocks
        }

    def build(self) -> None:
        """Emit the prologue and every block."""
        b, regs = self.builder, self.regs
        for reg in (0, 6, 7, 8, 9):
            regs.set(reg, ops.ZERO)
        for reg, value in enumerate(self.function.args[:5], start=1):
            regs.set(reg, value)
        top = b.load(run_field(b, self.run, "stack_top0"), typ=I64)
        stride = b.load(run_field(b, self.run, "stack_stride"), typ=I64)
        r10 = b.add(top, b.mul(self.depth, stride), name="r10")
        regs.set(FRAME_POINTER, r10)
        if _mentions_r10(self.fn):
            memset = self.program.module.declare_intrinsic("llvm.memset", [PTR, I64])
            regs.dominating_pointer(r10)  # stack accesses: one `inttoptr` per function
            frame = regs.pointer(r10, -STACK_SIZE)
            b.call(
                memset, [frame, ir.Constant(ir.IntType(8), 0), i64(STACK_SIZE), ir.IntType(1)(0)]
            )
        b.branch(self.blocks[self.fn.entry])
        regs.entry = b.block
        self._leave([self.fn.entry])
        initial = regs.values[:]
        live, written = _live_in(self.fn)
        edges = dict.fromkeys(self.fn.blocks, 0)
        edges[self.fn.entry] = 1
        for block in self.fn.blocks.values():
            if block.last[1].opcode != EXIT:
                for succ in block.successors:
                    edges[succ] += 1
        phis: list[tuple[int, list[tuple[int, ir.PhiInstr]]]] = []
        for start, block in sorted(self.fn.blocks.items()):
            b.position_at_end(self.blocks[start])
            incoming = self._incoming[start]
            if edges[start] == 1 and incoming:
                # One way in, already built: its values, no phis.
                regs.values = incoming[0][1][:]
            else:
                # Registers no instruction writes keep their prologue value;
                # when every way in is built, a phi only where they differ.
                known = len(incoming) == edges[start]
                values = initial[:]
                joined = []
                for reg in range(11):
                    if written >> reg & 1:
                        if live[start] >> reg & 1:
                            if known:
                                first = incoming[0][1][reg]
                                if all(state[reg] is first for _, state in incoming):
                                    values[reg] = first
                                    continue
                            values[reg] = phi = b.phi(I64)
                            joined.append((reg, phi))
                        else:
                            values[reg] = ops.ZERO  # dead here: never read
                regs.values = values
                phis.append((start, joined))
            self.r1_constant = None
            for pc, insn in block.insns[:-1]:
                self.instruction(pc, insn)
            self.terminator(block.last, block.successors)
        for start, joined in phis:
            for block, values in self._incoming[start]:
                for reg, phi in joined:
                    phi.add_incoming(values[reg], block)

    def _leave(self, targets: list[int]) -> None:
        # Record the register values on the branches to `targets` (eBPF blocks).
        state = (self.builder.block, self.regs.values[:])
        for target in targets:
            self._incoming[target].append(state)

    # -- control flow --------------------------------------------------------------

    def terminator(self, last: tuple[int, Instruction], successors: list[int]) -> None:
        """The last instruction of a block and the branch out of it."""
        b = self.builder
        pc, insn = last
        if insn.opcode == EXIT:
            b.ret(self.regs.get(0))
        elif is_jump(insn) and len(successors) == 1 and successors[0] == jump_target(pc, insn):
            b.branch(self.blocks[successors[0]])  # ja / gotol
            self._leave(successors)
        elif is_jump(insn):
            target = jump_target(pc, insn)
            b.cbranch(ops.condition(self.regs, insn), self.blocks[target], self.blocks[pc + 1])
            self._leave([target, pc + 1])
        else:
            self.instruction(pc, insn)
            b.branch(self.blocks[successors[0]])
            self._leave(successors[:1])

    def unwind(self) -> ir.Block:
        """The block that returns 0 because `run->status` is set (shared per function)."""
        if self._unwind is None:
            self._unwind = self.function.append_basic_block("unwind")
            ir.IRBuilder(self._unwind).ret(i64(0))
        return self._unwind

    def check_status(self) -> None:
        """Return 0 at once when a callee or a Python helper stopped the run."""
        b = self.builder
        status = b.load(run_field(b, self.run, "status"), typ=I32)
        go_on = self.function.append_basic_block()
        b.cbranch(b.icmp_unsigned("!=", status, ir.Constant(I32, 0)), self.unwind(), go_on)
        b.position_at_end(go_on)

    # -- instructions -----------------------------------------------------------

    def instruction(self, pc: int, insn: Instruction) -> None:
        """Emit one non-branching instruction."""
        regs = self.regs
        op = insn.opcode
        cls = op & 0x07
        constant = None
        if cls in (InsnClass.ALU, InsnClass.ALU64):
            ops.alu(regs, insn, self.program.value_ranges.get(pc))
            if op & 0xF0 == AluOp.MOV and not op & Source.X and not insn.off:
                constant = insn.imm & (ops.M64 if cls == InsnClass.ALU64 else ops.M32)
        elif cls == InsnClass.LDX:
            slot = self.program.context_loads.get(pc)
            if slot is None:
                ops.load(regs, insn, self.program.scopes.metadata(pc))
            elif slot >= UNSUPPORTED:  # a field pybpf cannot give: fault, as the interpreter
                self.fault(FAULT_CONTEXT | (slot - UNSUPPORTED) << 8, pc)
            elif slot < 0:  # a field the kernel keeps narrower: only the bits ~slot
                ops.load(regs, insn)
                regs.set(insn.dst, self.builder.and_(regs.get(insn.dst), i64(~slot)))
            else:
                self.context_load(insn, slot)
        elif op in LEGACY_PACKET_LOADS:
            self.packet_load(insn)
        elif cls == InsnClass.STX and (op & 0xE0) == Mode.ATOMIC:
            if ops.atomic_valid(insn):
                ops.atomic(regs, insn)
            else:
                self.fault(FAULT_ATOMIC, pc)
        elif cls in (InsnClass.ST, InsnClass.STX):
            ops.store(regs, insn, self.program.scopes.metadata(pc))
        elif op == LDDW:
            callee = func_target(pc, insn)
            constant = FUNC_TOKEN | callee if callee is not None else insn.imm & ops.M64
            regs.set(insn.dst, i64(constant))
        elif op == CALL and insn.src == CallSrc.LOCAL:
            self.local_call(pc, local_call_target(pc, insn))
        elif op == CALL:
            self.helper_call(pc, insn.imm & 0xFFFFFFFF)
        elif op == CALLX:
            self.callx(pc, insn.dst)
        else:
            raise AssertionError(f"pc {pc}: no translation for opcode 0x{op:02x}")
        if 1 in _writes(insn):
            self.r1_constant = constant if insn.dst == 1 else None

    def context_load(self, insn: Instruction, slot: int) -> None:
        """A context pointer field: the 64-bit pointer from `run->ctx_pointers[slot]`."""
        b = self.builder
        table = b.load(run_field(b, self.run, "ctx_pointers"), typ=I64)
        pointer = ops.address(b, table, slot * 8)
        self.regs.set(insn.dst, b.load(pointer, typ=I64, align=1))

    def packet_load(self, insn: Instruction) -> None:
        """LD_ABS / LD_IND as the kernel runs them (`runtime.packet_loads`).

        The packet bounds come from the `__sk_buff` pointer table
        (`run->ctx_pointers`; the verifier proved r6 is the context): r0 is
        the big-endian value at data + offset, or the function returns 0
        when the int32 offset is negative or the load passes data_end.
        """
        b = self.builder
        size = {0x00: 4, 0x08: 2, 0x10: 1}[insn.opcode & 0x18]
        table = b.load(run_field(b, self.run, "ctx_pointers"), typ=I64)
        data = b.load(ops.address(b, table, 8 * _SKB_SLOTS["data"]), typ=I64, align=1)
        end = b.load(ops.address(b, table, 8 * _SKB_SLOTS["data_end"]), typ=I64, align=1)
        offset: ir.Value = ir.Constant(I32, insn.imm & 0xFFFFFFFF)
        if insn.opcode & 0xE0 == Mode.IND:
            offset = b.add(b.trunc(self.regs.get(insn.src), I32), offset)
        offset = b.sext(offset, I64)
        # In bounds: 0 <= offset and offset + size <= end - data (signed).
        room = b.sub(b.sub(end, data), i64(size))
        ok = b.and_(b.icmp_signed(">=", offset, i64(0)), b.icmp_signed("<=", offset, room))
        inside = self.function.append_basic_block()
        outside = self.function.append_basic_block()
        b.cbranch(ok, inside, outside)
        b.position_at_end(outside)
        b.ret(i64(0))
        b.position_at_end(inside)
        width = ir.IntType(8 * size)
        value = b.load(ops.address(b, b.add(data, offset), 0), typ=width, align=1)
        if size > 1:
            bswap = self.program.module.declare_intrinsic("llvm.bswap", [width])
            value = b.call(bswap, [value])
        self.regs.set(0, b.zext(value, I64))

    def fallback(self, code: ir.Value) -> ir.Value:
        """Call the Python fallback with r1..r5; return its r0."""
        args = [self.regs.get(reg) for reg in range(1, 6)]
        return self.builder.call(self.program.fallback, [self.run, code, *args])

    def fault(self, fault: int, pc: int) -> None:
        """Raise a fault from Python (the fallback) and unwind."""
        self.fallback(ir.Constant(I64, encode_call(KIND_FAULT, fault, 0, pc)))
        self.builder.branch(self.unwind())
        self.builder.position_at_end(self.function.append_basic_block())

    def local_call(self, pc: int, callee: int | None) -> None:
        """A bpf-to-bpf call: depth check, call, status check."""
        b = self.builder
        assert callee is not None
        too_deep = self.function.append_basic_block()
        go_on = self.function.append_basic_block()
        b.cbranch(b.icmp_unsigned(">=", self.depth, i64(MAX_DEPTH - 1)), too_deep, go_on)
        b.position_at_end(too_deep)
        self.fault(FAULT_TOO_DEEP, pc)
        b.unreachable()
        b.position_at_end(go_on)
        args = [self.regs.get(reg) for reg in range(1, 6)]
        depth = b.add(self.depth, i64(1))
        r0 = b.call(self.program.functions[callee], [*args, depth, self.run])
        self.regs.set(0, r0)
        self.check_status()

    def helper_call(self, pc: int, helper_id: int) -> None:
        """A helper: a native emitter if one takes the site, else the fallback."""
        program = self.program
        emitter = emitter_for(program.helpers, helper_id)
        if emitter is not None:
            args = [self.regs.get(reg) for reg in range(1, 6)]
            site = HelperSite(
                self.builder,
                program.module,
                args,
                self.run,
                program.runtime,
                program.helpers,
                pc,
                self.r1_constant,
                RUN_TYPE,
                self.depth,
            )
            r0 = emitter(site)
            if r0 is not None:
                self.regs.set(0, r0)
                return
        # The caller's depth rides along, for callback-taking helpers.
        code = encode_call(KIND_HELPER, helper_id, 0, pc)
        depth = self.builder.shl(self.depth, i64(32))
        self.regs.set(0, self.fallback(self.builder.or_(depth, i64(code))))
        self.check_status()

    def callx(self, pc: int, reg: int) -> None:
        """`callx`: the helper id is in register `reg`, dispatched by the fallback."""
        b = self.builder
        target = self.regs.get(reg)
        # Ids beyond 32 bits are no helper: clamp to one that is none either.
        big = b.icmp_unsigned(">", target, i64(0xFFFFFFFF))
        target = b.select(big, i64(0xFFFFFFFF), target)
        code = b.or_(target, i64(encode_call(KIND_CALLX, 0, 0, pc)))
        self.regs.set(0, self.fallback(code))
        self.check_status()


class ProgramBuilder:
    """The LLVM module of one program (see the module docstring)."""

    def __init__(
        self,
        layout: ProgramLayout,
        prefix: str,
        *,
        helpers: Any,
        runtime: Any = None,
        context_loads: Mapping[int, int] | None = None,
        value_ranges: Mapping[int, ops.Ranges] | None = None,
        memory_regions: Mapping[int, str] | None = None,
        triple: str = "",
    ):
        self.layout = layout
        self.prefix = prefix
        self.helpers = helpers
        self.runtime = runtime
        self.context_loads = dict(context_loads or {})
        self.value_ranges = dict(value_ranges or {})
        self.module = ir.Module(name=prefix)
        if triple:
            self.module.triple = triple
        self.scopes = ops.AliasScopes(self.module, dict(memory_regions or {}))
        self.fallback = ir.Function(self.module, FALLBACK_TYPE, FALLBACK_SYMBOL)
        self.functions = {
            pc: ir.Function(self.module, FUNCTION_TYPE, function_symbol(prefix, pc))
            for pc in layout.functions
        }
        for pc in _inlined(layout):
            self.functions[pc].attributes.add("alwaysinline")

    def build(self) -> str:
        """The module's IR text."""
        for fn in self.layout.functions.values():
            _FunctionBuilder(self, fn).build()
        self._repeat()
        return str(self.module)

    def _repeat(self) -> None:
        function = ir.Function(self.module, REPEAT_TYPE, repeat_symbol(self.prefix))
        r1, count, run = function.args
        b = ir.IRBuilder(function.append_basic_block("entry"))
        index = b.alloca(I64, name="i")
        last = b.alloca(I64, name="last")
        b.store(i64(0), index)
        b.store(i64(0), last)
        head = function.append_basic_block("head")
        body = function.append_basic_block("body")
        done = function.append_basic_block("done")
        stopped = function.append_basic_block("stopped")
        b.branch(head)
        b.position_at_end(head)
        i = b.load(index, typ=I64)
        b.cbranch(b.icmp_signed("<", i, count), body, done)
        b.position_at_end(body)
        b.store(ir.Constant(I32, 0), run_field(b, run, "tail_calls"))
        zero = i64(0)
        r0 = b.call(self.functions[0], [r1, zero, zero, zero, zero, zero, run])
        b.store(r0, last)
        started = b.add(i, i64(1))
        b.store(started, index)
        status = b.load(run_field(b, run, "status"), typ=I32)
        unwound = function.append_basic_block("unwound")
        tail_done = function.append_basic_block("tail_done")
        b.cbranch(b.icmp_unsigned("!=", status, ir.Constant(I32, 0)), unwound, head)
        # A native tail call finished the run (abi.STATUS_TAIL_DONE): its r0
        # is the run's; the next run starts with the program's own code.
        b.position_at_end(unwound)
        b.cbranch(b.icmp_unsigned("==", status, ir.Constant(I32, 2)), tail_done, stopped)
        b.position_at_end(tail_done)
        b.store(b.load(run_field(b, run, "tail_r0"), typ=I64), last)
        b.store(ir.Constant(I32, 0), run_field(b, run, "status"))
        b.store(i64(0), run_field(b, run, "tail_target"))
        b.branch(head)
        b.position_at_end(stopped)
        b.ret(b.load(index, typ=I64))
        b.position_at_end(done)
        b.ret(b.load(last, typ=I64))


def build_ir(
    layout: ProgramLayout,
    prefix: str,
    *,
    helpers: Any,
    runtime: Any = None,
    context_loads: Mapping[int, int] | None = None,
    value_ranges: Mapping[int, ops.Ranges] | None = None,
    memory_regions: Mapping[int, str] | None = None,
    triple: str = "",
) -> str:
    """The LLVM IR text of a checked program (symbols prefixed with `prefix`).

    `value_ranges`: the verifier's proven operand ranges by pc (`ops.alu`);
    `memory_regions`: its stack / not-stack accesses by pc (`ops.AliasScopes`)."""
    builder = ProgramBuilder(
        layout,
        prefix,
        helpers=helpers,
        runtime=runtime,
        context_loads=context_loads,
        value_ranges=value_ranges,
        memory_regions=memory_regions,
        triple=triple,
    )
    return builder.build()
