"""The verifier's instruction IR and the assertions each instruction must satisfy.

An `Instruction` from `pybpf.isa` is a wire-level record; here each kind of
instruction is a frozen dataclass holding what the analysis needs (as
PREVAIL's `ir/syntax.hpp`): `Bin`, `Un`, `Mem`, `Atomic`, `Packet`, `Call`,
`CallLocal`, `Callx`, `Exit`, `Jmp`, `Assume`, `LoadMapFd`,
`LoadMapAddress`, `LoadPseudo` and `Undefined`. Jump and call targets are
absolute labels (pcs for real programs, line numbers for YAML cases).

`from_instruction` converts one `Instruction`; `assertions.py` lists what
must hold before each instruction, `transfer.py` gives the semantics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .global_functions import GlobalSignature

from ..isa import Instruction
from ..isa.opcodes import (
    CALL,
    CALLX,
    EXIT,
    LDDW,
    SIZE_BYTES,
    AluOp,
    AtomicOp,
    InsnClass,
    JmpOp,
    Mode,
    PseudoSrc,
    Size,
    Source,
)

STACK_SIZE = 512


@dataclass(frozen=True, slots=True)
class Reg:
    """A register operand."""

    v: int

    def __str__(self) -> str:
        return f"r{self.v}"


@dataclass(frozen=True, slots=True)
class Imm:
    """An immediate operand (kept as the signed or unsigned number written)."""

    v: int

    def __str__(self) -> str:
        return str(self.v)


Value = Reg | Imm


class BinOp(Enum):
    """Binary ALU operations (PREVAIL's `Bin::Op`)."""

    MOV = "="
    ADD = "+="
    SUB = "-="
    MUL = "*="
    UDIV = "/="
    UMOD = "%="
    SDIV = "s/="
    SMOD = "s%="
    OR = "|="
    AND = "&="
    LSH = "<<="
    RSH = ">>="
    ARSH = "s>>="
    XOR = "^="
    MOVSX8 = "s8="
    MOVSX16 = "s16="
    MOVSX32 = "s32="


class UnOp(Enum):
    """Unary ALU operations."""

    BE16 = "be16"
    BE32 = "be32"
    BE64 = "be64"
    LE16 = "le16"
    LE32 = "le32"
    LE64 = "le64"
    SWAP16 = "swap16"
    SWAP32 = "swap32"
    SWAP64 = "swap64"
    NEG = "-"


class CondOp(Enum):
    """Comparison operators of conditional jumps and assumptions."""

    EQ = "=="
    NE = "!="
    SET = "&=="
    NSET = "&!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    SLT = "s<"
    SLE = "s<="
    SGT = "s>"
    SGE = "s>="


REVERSE = {
    CondOp.EQ: CondOp.NE,
    CondOp.NE: CondOp.EQ,
    CondOp.SET: CondOp.NSET,
    CondOp.NSET: CondOp.SET,
    CondOp.LT: CondOp.GE,
    CondOp.GE: CondOp.LT,
    CondOp.LE: CondOp.GT,
    CondOp.GT: CondOp.LE,
    CondOp.SLT: CondOp.SGE,
    CondOp.SGE: CondOp.SLT,
    CondOp.SLE: CondOp.SGT,
    CondOp.SGT: CondOp.SLE,
}


@dataclass(frozen=True, slots=True)
class Condition:
    """`left op right`, on 64 bits or on the low 32 bits."""

    op: CondOp
    left: Reg
    right: Value
    is64: bool = True

    def reverse(self) -> Condition:
        """The negated condition (taken on the fall-through edge)."""
        return Condition(REVERSE[self.op], self.left, self.right, self.is64)

    def __str__(self) -> str:
        op = self.op.value if self.is64 else "w" + self.op.value
        return f"{self.left} {op} {self.right}"


@dataclass(frozen=True, slots=True)
class Deref:
    """A memory operand `*(uW *)(basereg + offset)`."""

    width: int
    basereg: Reg
    offset: int


@dataclass(frozen=True, slots=True)
class Undefined:
    """An instruction the IR cannot represent."""

    opcode: int


@dataclass(frozen=True, slots=True)
class Bin:
    """`dst op= v` (`is64` False for the w-register forms)."""

    op: BinOp
    dst: Reg
    v: Value
    is64: bool = True
    lddw: bool = False


@dataclass(frozen=True, slots=True)
class Un:
    """`dst = op dst`."""

    op: UnOp
    dst: Reg
    is64: bool = True


@dataclass(frozen=True, slots=True)
class LoadMapFd:
    """`dst = map_fd N` (`by_index`: N indexes the program's map table)."""

    dst: Reg
    mapfd: int
    by_index: bool = False


@dataclass(frozen=True, slots=True)
class LoadMapAddress:
    """`dst = map_val(N) + offset`: a pointer into a map's value."""

    dst: Reg
    mapfd: int
    offset: int
    by_index: bool = False


@dataclass(frozen=True, slots=True)
class LoadPseudo:
    """Other `lddw` pseudo loads (code addresses, variables)."""

    dst: Reg
    kind: int
    imm: int


@dataclass(frozen=True, slots=True)
class Mem:
    """A load (`is_load`) or a store of `value` through `access`."""

    access: Deref
    value: Value
    is_load: bool
    is_signed: bool = False


@dataclass(frozen=True, slots=True)
class Packet:
    """Legacy packet loads `r0 = *(uW *)skb[regoffset + offset]`."""

    width: int
    offset: int
    regoffset: Reg | None


@dataclass(frozen=True, slots=True)
class Atomic:
    """`lock *(uW *)(base + off) op= valreg` (with `fetch`)."""

    op: AtomicOp
    fetch: bool
    access: Deref
    valreg: Reg


@dataclass(frozen=True, slots=True)
class Call:
    """A helper call by id (`pc`: the instruction's pc, naming a reference it acquires).

    With `builtin`, `func` is a compiler builtin (`BuiltinId`: memset,
    memcpy, …) that a call relocation named; `verify_program` makes these
    from the relocations, as PREVAIL gates builtins per call site (a plain
    `call -11` stays an unknown helper).
    """

    func: int
    pc: int = field(default=-1, compare=False)
    builtin: bool = False


@dataclass(frozen=True, slots=True)
class CallLocal:
    """A bpf-to-bpf call to the function at label `target`.

    `frame` names the callee's stack frame once the CFG inlines the call
    (the call's label, as PREVAIL's stack-frame prefix). `signature` is set
    on the load path when the callee is a global function (its BTF
    prototype: global_functions.py).
    """

    target: int
    frame: str = ""
    signature: GlobalSignature | None = None


@dataclass(frozen=True, slots=True)
class Callx:
    """An indirect helper call through `func`."""

    func: Reg


@dataclass(frozen=True, slots=True)
class Exit:
    """Return from the current function (`frame` is empty in the entry function).

    `signature` is set when the function is a global one (its caller gets
    an unknown number back; global_functions.py).
    """

    frame: str = ""
    signature: GlobalSignature | None = None


@dataclass(frozen=True, slots=True)
class Jmp:
    """A jump to label `target`, unconditional when `cond` is None."""

    cond: Condition | None
    target: int


@dataclass(frozen=True, slots=True)
class Assume:
    """Refine the state by `cond`; explicit ones (from YAML) are also checked."""

    cond: Condition
    is_implicit: bool = False

    def __str__(self) -> str:
        return f"assume {self.cond}"


@dataclass(frozen=True, slots=True)
class IncrementLoopCounter:
    """`pc[name] += 1`, inserted after loop head `name` when termination is checked."""

    name: int | str


@dataclass(frozen=True, slots=True)
class ResetLoopCounter:
    """`pc[name] = 0`, on the edges entering loop `name` from outside (the load path's
    counters count the iterations of one entry: cfg.add_loop_counters)."""

    name: int | str


@dataclass(frozen=True, slots=True)
class CallbackEntry:
    """Enter the callback of helper `func` (bpf_loop, for_each_map_elem) in frame `frame`.

    Not an instruction of the program: the CFG inserts it (with
    `linux_rules`) so the callback's body is analysed with the arguments
    the helper passes, once per possible invocation (cfg.py).
    """

    func: int
    frame: str


@dataclass(frozen=True, slots=True)
class CallbackReturn:
    """Back from a callback of helper `func`: the caller's r1-r5 as before (cfg.py)."""

    func: int
    frame: str


IrInstruction = (
    Undefined
    | Bin
    | Un
    | LoadMapFd
    | LoadMapAddress
    | LoadPseudo
    | Mem
    | Packet
    | Atomic
    | Call
    | CallLocal
    | Callx
    | Exit
    | Jmp
    | Assume
    | IncrementLoopCounter
    | ResetLoopCounter
    | CallbackEntry
    | CallbackReturn
)

# ---------------------------------------------------------------- conversion

_ALU = {
    AluOp.MOV: BinOp.MOV,
    AluOp.ADD: BinOp.ADD,
    AluOp.SUB: BinOp.SUB,
    AluOp.MUL: BinOp.MUL,
    AluOp.OR: BinOp.OR,
    AluOp.AND: BinOp.AND,
    AluOp.LSH: BinOp.LSH,
    AluOp.RSH: BinOp.RSH,
    AluOp.ARSH: BinOp.ARSH,
    AluOp.XOR: BinOp.XOR,
}
_JMP = {
    JmpOp.JEQ: CondOp.EQ,
    JmpOp.JNE: CondOp.NE,
    JmpOp.JSET: CondOp.SET,
    JmpOp.JGT: CondOp.GT,
    JmpOp.JGE: CondOp.GE,
    JmpOp.JLT: CondOp.LT,
    JmpOp.JLE: CondOp.LE,
    JmpOp.JSGT: CondOp.SGT,
    JmpOp.JSGE: CondOp.SGE,
    JmpOp.JSLT: CondOp.SLT,
    JmpOp.JSLE: CondOp.SLE,
}


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def from_instruction(insn: Instruction, label: int, next_label: int) -> IrInstruction:
    """The IR form of `insn` at `label`; jump targets become absolute labels.

    `next_label` is the label of the following instruction: jump offsets
    count from it (slots for binary programs, lines for YAML cases).
    """
    op = insn.opcode
    cls = op & 0x07
    if not _valid_fields(insn):
        return Undefined(op)
    if op == LDDW:
        if insn.src == 0:
            return Bin(BinOp.MOV, Reg(insn.dst), Imm(_s64(insn.imm)), True, lddw=True)
        by_index = insn.src in (PseudoSrc.MAP_IDX, PseudoSrc.MAP_IDX_VALUE)
        if insn.src in (PseudoSrc.MAP_FD, PseudoSrc.MAP_IDX):
            return LoadMapFd(Reg(insn.dst), insn.imm & 0xFFFFFFFF, by_index)
        if insn.src in (PseudoSrc.MAP_VALUE, PseudoSrc.MAP_IDX_VALUE):
            return LoadMapAddress(
                Reg(insn.dst), insn.imm & 0xFFFFFFFF, _s32(insn.imm >> 32), by_index
            )
        return LoadPseudo(Reg(insn.dst), int(insn.src), insn.imm)
    if cls in (InsnClass.ALU, InsnClass.ALU64):
        return _alu(insn, cls == InsnClass.ALU64)
    if cls in (InsnClass.LDX, InsnClass.ST, InsnClass.STX, InsnClass.LD):
        return _mem(insn)
    if cls in (InsnClass.JMP, InsnClass.JMP32):
        if op == CALL:
            if insn.src == 1:
                return CallLocal(next_label + insn.imm)
            return Call(insn.imm, label)
        if op == CALLX:
            return Callx(Reg(insn.dst))
        if op == EXIT:
            return Exit()
        jop = op & 0xF0
        if jop == JmpOp.JA:
            off = insn.imm if cls == InsnClass.JMP32 else insn.off
            return Jmp(None, next_label + off)
        if jop in _JMP:
            right: Value = Reg(insn.src) if op & Source.X else Imm(insn.imm)
            cond = Condition(_JMP[JmpOp(jop)], Reg(insn.dst), right, cls == InsnClass.JMP)
            return Jmp(cond, next_label + insn.off)
    return Undefined(op)


_MAX_REG = 10  # r0..r10; the decoder accepts 4-bit register fields (r11..r15)
_FRAME_POINTER = 10
_ATOMIC_FETCH = 0x01  # BPF_FETCH
_CMPXCHG = 0xF1
LDDW_OPCODE = 0x18
_SWAP_WIDTHS = (16, 32, 64)


def _valid_fields(insn: Instruction) -> bool:
    """False for field values the kernel rejects (`Undefined`, not an exception).

    The decoder accepts any opcode of the table with any register, offset
    and immediate; the IR would otherwise crash on some (a byte swap of
    width 14) or misread others (registers past r10, which the analysis
    uses internally).
    """
    op = insn.opcode
    cls = op & 0x07
    if insn.dst > _MAX_REG:
        return False
    if insn.dst == _FRAME_POINTER and (
        cls in (InsnClass.ALU, InsnClass.ALU64, InsnClass.LDX) or op == LDDW_OPCODE
    ):
        return False  # the kernel: "frame pointer is read only"
    if cls in (InsnClass.ALU, InsnClass.ALU64):
        aop = op & 0xF0
        if aop == AluOp.END:
            if insn.imm not in _SWAP_WIDTHS:
                return False
            if cls == InsnClass.ALU64 and op & Source.X:
                return False  # BPF_ALU64 | BPF_END | BPF_X is reserved
            return True
        if op & Source.X and insn.src > _MAX_REG:
            return False
        if aop in (AluOp.DIV, AluOp.MOD) and insn.off not in (0, 1):
            return False
        if aop == AluOp.MOV and insn.off and (not op & Source.X or insn.off not in (8, 16, 32)):
            return False
        return True
    if cls in (InsnClass.LDX, InsnClass.STX) and insn.src > _MAX_REG:
        return False
    if cls == InsnClass.LD and (op & 0xE0) == Mode.IND and insn.src > _MAX_REG:
        return False
    if cls == InsnClass.STX and (op & 0xE0) == Mode.ATOMIC:
        if insn.imm not in {a.value for a in AtomicOp}:
            return False
        if insn.imm & _ATOMIC_FETCH and insn.imm != _CMPXCHG and insn.src == _FRAME_POINTER:
            return False  # a fetching atomic (but cmpxchg, which loads r0) writes its source
        if SIZE_BYTES[Size(op & 0x18)] not in (4, 8):
            return False
    if cls in (InsnClass.JMP, InsnClass.JMP32) and op & Source.X and op != CALLX:
        return insn.src <= _MAX_REG
    return True


def _s64(v: int) -> int:
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >> 63 else v


def _alu(insn: Instruction, is64: bool) -> IrInstruction:
    aop = insn.opcode & 0xF0
    dst = Reg(insn.dst)
    src: Value = Reg(insn.src) if insn.opcode & Source.X else Imm(insn.imm)
    if aop == AluOp.NEG:
        return Un(UnOp.NEG, dst, is64)
    if aop == AluOp.END:
        width = insn.imm
        if is64:
            return Un(UnOp[f"SWAP{width}"], dst, True)
        kind = "BE" if insn.opcode & Source.X else "LE"
        return Un(UnOp[f"{kind}{width}"], dst, True)
    if aop in (AluOp.DIV, AluOp.MOD):
        signed = insn.off == 1
        if aop == AluOp.DIV:
            return Bin(BinOp.SDIV if signed else BinOp.UDIV, dst, src, is64)
        return Bin(BinOp.SMOD if signed else BinOp.UMOD, dst, src, is64)
    if aop == AluOp.MOV and insn.off in (8, 16, 32) and isinstance(src, Reg):
        return Bin(BinOp[f"MOVSX{insn.off}"], dst, src, is64)
    if aop in _ALU:
        return Bin(_ALU[AluOp(aop)], dst, src, is64)
    return Undefined(insn.opcode)


def _mem(insn: Instruction) -> IrInstruction:
    op = insn.opcode
    cls = op & 0x07
    width = SIZE_BYTES[Size(op & 0x18)]
    mode = op & 0xE0
    if cls == InsnClass.LD:
        if mode == Mode.ABS:
            return Packet(width, insn.imm, None)
        if mode == Mode.IND:
            return Packet(width, insn.imm, Reg(insn.src))
        return Undefined(op)
    if cls == InsnClass.LDX:
        if mode not in (Mode.MEM, Mode.MEMSX):
            return Undefined(op)
        access = Deref(width, Reg(insn.src), insn.off)
        return Mem(access, Reg(insn.dst), True, mode == Mode.MEMSX)
    access = Deref(width, Reg(insn.dst), insn.off)
    if cls == InsnClass.ST:
        return Mem(access, Imm(insn.imm), False)
    if mode == Mode.ATOMIC:
        imm = insn.imm
        return Atomic(AtomicOp(imm), bool(imm & 1), access, Reg(insn.src))
    return Mem(access, Reg(insn.src), False)
