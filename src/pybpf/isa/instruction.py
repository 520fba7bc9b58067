"""`Instruction`: one eBPF instruction, and its binary decode/encode.

An instruction is one 8-byte slot, except `lddw`, which takes two slots; an
`Instruction` for `lddw` holds the whole 64-bit immediate in `imm` (as an
unsigned number) and reports `slots == 2`. Every other instruction keeps
`imm` as a signed 32-bit number and `off` as a signed 16-bit number, exactly
the fields of the wire format, so that `decode(encode(x)) == x`.

Program counters (`pc`) count slots, as in the kernel and in jump offsets.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..errors import DecodeError
from .opcodes import (
    LDDW,
    NUM_REGS,
    OPCODES,
    VALID_ATOMIC_IMMS,
    AluOp,
    InsnClass,
    Mode,
    OpcodeInfo,
)

_SLOT = struct.Struct("<BBhi")
SLOT_SIZE = 8


@dataclass(frozen=True, slots=True)
class Instruction:
    """One decoded eBPF instruction (see the module docstring for `imm`)."""

    opcode: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0

    @property
    def info(self) -> OpcodeInfo:
        """The opcode-table entry of this instruction."""
        return OPCODES[self.opcode]

    @property
    def cls(self) -> InsnClass:
        """The instruction class (low three bits of the opcode)."""
        return InsnClass(self.opcode & 0x07)

    @property
    def slots(self) -> int:
        """How many 8-byte slots this instruction takes (2 for `lddw`)."""
        return 2 if self.opcode == LDDW else 1

    @property
    def is_lddw(self) -> bool:
        """True for the two-slot 64-bit immediate load."""
        return self.opcode == LDDW

    def encode(self) -> bytes:
        """The wire bytes of this instruction (8, or 16 for `lddw`)."""
        regs = (self.src << 4) | self.dst
        if self.opcode == LDDW:
            lo = self.imm & 0xFFFFFFFF
            hi = (self.imm >> 32) & 0xFFFFFFFF
            return _SLOT.pack(self.opcode, regs, self.off, _s32(lo)) + _SLOT.pack(0, 0, 0, _s32(hi))
        return _SLOT.pack(self.opcode, regs, self.off, self.imm)

    def __str__(self) -> str:
        from .disasm import format_instruction

        return format_instruction(self)


def _s32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def check_fields(insn: Instruction) -> str | None:
    """Why `insn` is not a valid instruction, or None when it is.

    Checks the opcode, the register numbers and the fields whose values pick
    a variant (signed division, movsx widths, sign-extending loads, atomic
    operations). Other reserved fields are left to the verifier, as the
    kernel's decoder also leaves them to its verifier.
    """
    info = OPCODES.get(insn.opcode)
    if info is None:
        return f"unknown opcode 0x{insn.opcode:02x}"
    if insn.dst >= NUM_REGS:
        return f"invalid destination register r{insn.dst}"
    if insn.src >= NUM_REGS:
        return f"invalid source register r{insn.src}"
    cls = info.cls
    if cls in (InsnClass.ALU, InsnClass.ALU64):
        op = insn.opcode & 0xF0
        if op in (AluOp.DIV, AluOp.MOD) and insn.off not in (0, 1):
            return f"invalid offset {insn.off} for division (0 or 1)"
        if op == AluOp.MOV:
            # Only a register move sign-extends (movsx); the kernel rejects an
            # offset on an immediate move. (A 32-bit movsx32 is left to the
            # verifier: the kernel rejects it, PREVAIL's tests use it.)
            widths = (0, 8, 16, 32) if insn.opcode & 0x08 else (0,)
            if insn.off not in widths:
                allowed = ", ".join(map(str, widths))
                return f"invalid offset {insn.off} for this mov ({allowed})"
        if op == AluOp.END and insn.imm not in (16, 32, 64):
            return f"invalid byte swap width {insn.imm} (16, 32 or 64)"
    if cls == InsnClass.STX and (insn.opcode & 0xE0) == Mode.ATOMIC:
        if insn.imm not in VALID_ATOMIC_IMMS:
            return f"invalid atomic operation 0x{insn.imm & 0xFFFFFFFF:x}"
    return None


def decode(data: bytes | bytearray | memoryview, where: str | None = None) -> list[Instruction]:
    """Decode a whole program; raise `DecodeError` naming the pc at fault.

    `where` names the source (a file, a section) in error messages.
    """
    if len(data) % SLOT_SIZE:
        raise DecodeError(
            f"bytecode length {len(data)} is not a multiple of {SLOT_SIZE}", where=where
        )
    slots = list(_SLOT.iter_unpack(data))
    out: list[Instruction] = []
    append = out.append
    pc = 0
    n = len(slots)
    while pc < n:
        opcode, regs, off, imm = slots[pc]
        insn = Instruction(opcode, regs & 0x0F, regs >> 4, off, imm)
        if opcode == LDDW:
            if pc + 1 >= n:
                raise DecodeError("lddw is missing its second half", pc=pc, where=where)
            op2, regs2, off2, imm2 = slots[pc + 1]
            if op2 or regs2 or off2:
                raise DecodeError(
                    "lddw second half must have zero opcode, registers and offset",
                    pc=pc + 1,
                    where=where,
                )
            insn = Instruction(
                opcode,
                regs & 0x0F,
                regs >> 4,
                off,
                (imm & 0xFFFFFFFF) | ((imm2 & 0xFFFFFFFF) << 32),
            )
        problem = check_fields(insn)
        if problem:
            raise DecodeError(problem, pc=pc, where=where)
        append(insn)
        pc += insn.slots
    return out


def encode(insns: Iterable[Instruction]) -> bytes:
    """The wire bytes of a sequence of instructions."""
    return b"".join(insn.encode() for insn in insns)


def with_pcs(insns: Iterable[Instruction]) -> Iterator[tuple[int, Instruction]]:
    """Yield `(pc, insn)` pairs, pc counting 8-byte slots."""
    pc = 0
    for insn in insns:
        yield pc, insn
        pc += insn.slots


def pc_index(insns: list[Instruction]) -> dict[int, int]:
    """Map each instruction's pc (slot number) to its index in `insns`."""
    return {pc: i for i, (pc, _) in enumerate(with_pcs(insns))}
