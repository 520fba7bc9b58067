"""The eBPF opcode space, as the Linux kernel defines it (ISA v1 to v4).

One table (`OPCODES`) lists every valid opcode byte with its class and the
name used in the conformance-suite assembly syntax. The decoder, the
assembler, the disassembler and both engines read this one table, so that a
new opcode is added in exactly one place (as uBPF does with its
`ubpf_instruction_valid.c`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class InsnClass(IntEnum):
    """The low three bits of an opcode."""

    LD = 0x00
    LDX = 0x01
    ST = 0x02
    STX = 0x03
    ALU = 0x04
    JMP = 0x05
    JMP32 = 0x06
    ALU64 = 0x07


class Source(IntEnum):
    """Bit 3 of ALU and JMP opcodes: immediate (K) or register (X) operand."""

    K = 0x00
    X = 0x08


class AluOp(IntEnum):
    """The high four bits of ALU/ALU64 opcodes."""

    ADD = 0x00
    SUB = 0x10
    MUL = 0x20
    DIV = 0x30
    OR = 0x40
    AND = 0x50
    LSH = 0x60
    RSH = 0x70
    NEG = 0x80
    MOD = 0x90
    XOR = 0xA0
    MOV = 0xB0
    ARSH = 0xC0
    END = 0xD0


class JmpOp(IntEnum):
    """The high four bits of JMP/JMP32 opcodes."""

    JA = 0x00
    JEQ = 0x10
    JGT = 0x20
    JGE = 0x30
    JSET = 0x40
    JNE = 0x50
    JSGT = 0x60
    JSGE = 0x70
    CALL = 0x80
    EXIT = 0x90
    JLT = 0xA0
    JLE = 0xB0
    JSLT = 0xC0
    JSLE = 0xD0
    JCOND = 0xE0


class Size(IntEnum):
    """Bits 3-4 of load/store opcodes."""

    W = 0x00
    H = 0x08
    B = 0x10
    DW = 0x18


SIZE_BYTES = {Size.W: 4, Size.H: 2, Size.B: 1, Size.DW: 8}
SIZE_SUFFIX = {Size.W: "w", Size.H: "h", Size.B: "b", Size.DW: "dw"}
SIZE_CTYPE = {Size.W: "u32", Size.H: "u16", Size.B: "u8", Size.DW: "u64"}


class Mode(IntEnum):
    """The high three bits of load/store opcodes."""

    IMM = 0x00
    ABS = 0x20
    IND = 0x40
    MEM = 0x60
    MEMSX = 0x80
    ATOMIC = 0xC0


class AtomicOp(IntEnum):
    """The `imm` field of BPF_ATOMIC instructions."""

    ADD = 0x00
    OR = 0x40
    AND = 0x50
    XOR = 0xA0
    FETCH_ADD = 0x01
    FETCH_OR = 0x41
    FETCH_AND = 0x51
    FETCH_XOR = 0xA1
    XCHG = 0xE1
    CMPXCHG = 0xF1


ATOMIC_FETCH = 0x01


class PseudoSrc(IntEnum):
    """`src` values of the two-slot `lddw` instruction (BPF_PSEUDO_*)."""

    IMM64 = 0
    MAP_FD = 1
    MAP_VALUE = 2
    BTF_ID = 3
    FUNC = 4
    MAP_IDX = 5
    MAP_IDX_VALUE = 6


class CallSrc(IntEnum):
    """`src` values of BPF_CALL: helper by id, bpf-to-bpf call, kfunc."""

    HELPER = 0
    LOCAL = 1
    KFUNC = 2


# Fixed opcodes used all over the code base.
LDDW = InsnClass.LD | Size.DW | Mode.IMM  # 0x18
CALL = InsnClass.JMP | JmpOp.CALL  # 0x85
CALLX = InsnClass.JMP | JmpOp.CALL | Source.X  # 0x8d
EXIT = InsnClass.JMP | JmpOp.EXIT  # 0x95
JA = InsnClass.JMP | JmpOp.JA  # 0x05
GOTOL = InsnClass.JMP32 | JmpOp.JA  # 0x06
MAY_GOTO = InsnClass.JMP | JmpOp.JCOND  # 0xe5
BSWAP = InsnClass.ALU64 | AluOp.END  # 0xd7

# Number of registers (r0-r10) and the frame pointer.
NUM_REGS = 11
FRAME_POINTER = 10
STACK_SIZE = 512

# Conformance-suite mnemonics of ALU and jump operations.
ALU_NAMES = {
    AluOp.ADD: "add",
    AluOp.SUB: "sub",
    AluOp.MUL: "mul",
    AluOp.DIV: "div",
    AluOp.OR: "or",
    AluOp.AND: "and",
    AluOp.LSH: "lsh",
    AluOp.RSH: "rsh",
    AluOp.NEG: "neg",
    AluOp.MOD: "mod",
    AluOp.XOR: "xor",
    AluOp.MOV: "mov",
    AluOp.ARSH: "arsh",
}
JMP_NAMES = {
    JmpOp.JEQ: "jeq",
    JmpOp.JGT: "jgt",
    JmpOp.JGE: "jge",
    JmpOp.JSET: "jset",
    JmpOp.JNE: "jne",
    JmpOp.JSGT: "jsgt",
    JmpOp.JSGE: "jsge",
    JmpOp.JLT: "jlt",
    JmpOp.JLE: "jle",
    JmpOp.JSLT: "jslt",
    JmpOp.JSLE: "jsle",
}
CONDITIONAL_JUMPS = frozenset(JMP_NAMES)


@dataclass(frozen=True, slots=True)
class OpcodeInfo:
    """What one opcode byte is: its class and its conformance-syntax name."""

    opcode: int
    cls: InsnClass
    name: str
    slots: int = 1


def _build_table() -> dict[int, OpcodeInfo]:
    table: dict[int, OpcodeInfo] = {}

    def add(opcode: int, name: str, slots: int = 1) -> None:
        table[opcode] = OpcodeInfo(opcode, InsnClass(opcode & 0x07), name, slots)

    for cls, suffix in ((InsnClass.ALU64, ""), (InsnClass.ALU, "32")):
        for op, name in ALU_NAMES.items():
            for src in (Source.K, Source.X):
                if op == AluOp.NEG and src == Source.X:
                    continue  # neg takes no operand; the kernel rejects 0x8c/0x8f
                add(cls | op | src, name + suffix)
    add(InsnClass.ALU | AluOp.END | Source.K, "le")
    add(InsnClass.ALU | AluOp.END | Source.X, "be")
    add(BSWAP, "bswap")

    for cls, suffix in ((InsnClass.JMP, ""), (InsnClass.JMP32, "32")):
        for op, name in JMP_NAMES.items():
            for src in (Source.K, Source.X):
                add(cls | op | src, name + suffix)
    add(JA, "ja")
    add(GOTOL, "ja32")
    add(CALL, "call")
    add(CALLX, "callx")
    add(EXIT, "exit")
    add(MAY_GOTO, "may_goto")

    for size, sfx in SIZE_SUFFIX.items():
        add(InsnClass.LDX | Mode.MEM | size, "ldx" + sfx)
        add(InsnClass.ST | Mode.MEM | size, "st" + sfx)
        add(InsnClass.STX | Mode.MEM | size, "stx" + sfx)
        if size != Size.DW:
            add(InsnClass.LDX | Mode.MEMSX | size, "ldxs" + sfx)
            add(InsnClass.LD | Mode.ABS | size, "ldabs" + sfx)
            add(InsnClass.LD | Mode.IND | size, "ldind" + sfx)
        if size in (Size.W, Size.DW):
            add(InsnClass.STX | Mode.ATOMIC | size, "atomic" + ("32" if size == Size.W else "64"))
    add(LDDW, "lddw", slots=2)
    return table


OPCODES: dict[int, OpcodeInfo] = _build_table()
"""Every valid opcode byte → its `OpcodeInfo`."""

VALID_ATOMIC_IMMS = frozenset(int(op) for op in AtomicOp)
