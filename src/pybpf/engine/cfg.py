"""Control-flow analysis the translator needs: functions and basic blocks.

`analyze(insns)` checks the instruction stream once (jump targets, calls,
falling off the end, writes to r10, unsupported instructions) and splits it
into eBPF functions (the entry at pc 0 plus every target of a bpf-to-bpf
call), each a set of basic blocks reachable from its entry.

Problems found here are `DecodeError`s naming the pc, raised at translation
time rather than when the program runs; features pybpf does not implement
yet (legacy packet loads, map pseudo-loads, kfuncs) are `NotSupportedError`s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import DecodeError, NotSupportedError
from ..isa.instruction import Instruction, with_pcs
from ..isa.opcodes import (
    ATOMIC_FETCH,
    CALL,
    CALLX,
    EXIT,
    FRAME_POINTER,
    GOTOL,
    JA,
    MAY_GOTO,
    AtomicOp,
    CallSrc,
    InsnClass,
    Mode,
    PseudoSrc,
)

_JUMP_CLASSES = (InsnClass.JMP, InsnClass.JMP32)


@dataclass(slots=True)
class Block:
    """A straight run of instructions entered only at its first one."""

    start: int
    insns: list[tuple[int, Instruction]] = field(default_factory=list)
    successors: list[int] = field(default_factory=list)
    predecessors: list[int] = field(default_factory=list)

    @property
    def length(self) -> int:
        """Number of instructions (what the executed counter adds per pass)."""
        return len(self.insns)

    @property
    def last(self) -> tuple[int, Instruction]:
        """The final `(pc, insn)` of the block."""
        return self.insns[-1]


@dataclass(slots=True)
class Function:
    """One eBPF function: its entry pc and its reachable blocks by start pc."""

    entry: int
    blocks: dict[int, Block]

    def loop_heads(self) -> set[int]:
        """Blocks entered by a backward (or self) edge: where budgets are checked."""
        return {b.start for b in self.blocks.values() for p in b.predecessors if p >= b.start}


@dataclass(slots=True)
class ProgramLayout:
    """A checked program: instructions by pc, and its functions by entry pc."""

    insns: dict[int, Instruction]
    end: int
    functions: dict[int, Function]


def is_jump(insn: Instruction) -> bool:
    """True for `ja`, `gotol` and conditional jumps (not call or exit)."""
    if (insn.opcode & 0x07) not in _JUMP_CLASSES:
        return False
    return insn.opcode not in (CALL, CALLX, EXIT)


def jump_target(pc: int, insn: Instruction) -> int:
    """Where a jump at `pc` goes when taken (gotol keeps its offset in imm)."""
    if insn.opcode == GOTOL:
        return pc + 1 + insn.imm
    return pc + 1 + insn.off


def falls_through(insn: Instruction) -> bool:
    """True when execution may continue with the next instruction."""
    return insn.opcode not in (EXIT, JA, GOTOL)


def local_call_target(pc: int, insn: Instruction) -> int | None:
    """The callee pc of a bpf-to-bpf call, or None for other instructions."""
    if insn.opcode == CALL and insn.src == CallSrc.LOCAL:
        return pc + 1 + insn.imm
    return None


def func_target(pc: int, insn: Instruction) -> int | None:
    """The callee pc of an `lddw rX, <func>` (src=BPF_PSEUDO_FUNC), or None.

    As in the kernel, the low 32 bits of imm are the callee's offset from
    the instruction after the lddw's first slot.
    """
    if insn.opcode == 0x18 and insn.src == PseudoSrc.FUNC:
        low = insn.imm & 0xFFFFFFFF
        return pc + 1 + (low - (1 << 32) if low & 0x80000000 else low)
    return None


LEGACY_PACKET_LOADS = frozenset(
    InsnClass.LD | mode | size for mode in (Mode.ABS, Mode.IND) for size in (0x00, 0x08, 0x10)
)
"""LD_ABS / LD_IND of a word, half word or byte (`runtime.packet_loads`); no double word."""


def _check_insn(pc: int, insn: Instruction, where: str | None) -> None:
    op = insn.opcode
    cls = op & 0x07
    if cls == InsnClass.LD and op != 0x18 and op not in LEGACY_PACKET_LOADS:
        raise NotSupportedError(
            f"{where + ': ' if where else ''}pc {pc}: ld opcode 0x{op:02x} is not supported"
        )
    if op == 0x18 and insn.src not in (0, PseudoSrc.FUNC):
        raise NotSupportedError(
            f"{where + ': ' if where else ''}pc {pc}: lddw with pseudo source {insn.src} needs a loader relocation"
        )
    if op == CALL and insn.src == CallSrc.KFUNC:
        raise NotSupportedError(
            f"{where + ': ' if where else ''}pc {pc}: kfunc calls are not supported"
        )
    if op == MAY_GOTO:
        raise NotSupportedError(
            f"{where + ': ' if where else ''}pc {pc}: may_goto is not supported"
        )
    if _writes_r10(insn):
        raise DecodeError("r10 (the frame pointer) is read-only", pc=pc, where=where)


def _writes_r10(insn: Instruction) -> bool:
    cls = insn.opcode & 0x07
    if cls in (InsnClass.ALU, InsnClass.ALU64, InsnClass.LDX, InsnClass.LD):
        return insn.dst == FRAME_POINTER
    if cls == InsnClass.STX and (insn.opcode & 0xE0) == Mode.ATOMIC:
        fetches = insn.imm & ATOMIC_FETCH or insn.imm == AtomicOp.CMPXCHG
        return bool(fetches) and insn.src == FRAME_POINTER
    return False


def analyze(insns: list[Instruction], where: str | None = None) -> ProgramLayout:
    """Check `insns` and split them into functions of basic blocks."""
    by_pc = dict(with_pcs(insns))
    if not by_pc:
        raise DecodeError("empty program", where=where)
    last_pc = max(by_pc)
    end = last_pc + by_pc[last_pc].slots

    entries = {0}
    for pc, insn in by_pc.items():
        _check_insn(pc, insn, where)
        if is_jump(insn):
            target = jump_target(pc, insn)
            if target not in by_pc:
                raise DecodeError(f"jump to {_describe_target(target, end)}", pc=pc, where=where)
        callee = local_call_target(pc, insn)
        if callee is None:
            callee = func_target(pc, insn)  # a callback is a function too
        if callee is not None:
            if callee not in by_pc:
                raise DecodeError(f"call to {_describe_target(callee, end)}", pc=pc, where=where)
            entries.add(callee)
        if falls_through(insn) and pc + insn.slots >= end:
            raise DecodeError("execution falls off the end of the program", pc=pc, where=where)
    functions = {entry: _function(entry, by_pc) for entry in sorted(entries)}
    return ProgramLayout(by_pc, end, functions)


def _describe_target(target: int, end: int) -> str:
    if 0 <= target < end:
        return f"pc {target}, the middle of an lddw"
    return f"pc {target}, outside the program (0..{end - 1})"


def _successors(pc: int, insn: Instruction) -> list[int]:
    out = []
    if is_jump(insn):
        out.append(jump_target(pc, insn))
    if falls_through(insn):
        out.append(pc + insn.slots)
    return out


def _function(entry: int, by_pc: dict[int, Instruction]) -> Function:
    # Reachable instructions and block leaders, by a walk from the entry.
    reached: set[int] = set()
    leaders = {entry}
    todo = [entry]
    while todo:
        pc = todo.pop()
        if pc in reached:
            continue
        reached.add(pc)
        insn = by_pc[pc]
        succ = _successors(pc, insn)
        if is_jump(insn) or not falls_through(insn):
            leaders.update(succ)
        todo.extend(succ)

    blocks: dict[int, Block] = {}
    for start in sorted(leaders):
        block = Block(start)
        pc = start
        while True:
            insn = by_pc[pc]
            block.insns.append((pc, insn))
            nxt = pc + insn.slots
            if is_jump(insn) or not falls_through(insn) or nxt in leaders:
                block.successors = _successors(pc, insn)
                break
            pc = nxt
        blocks[start] = block
    for block in blocks.values():
        for succ in block.successors:
            blocks[succ].predecessors.append(block.last[0])
    return Function(entry, blocks)
