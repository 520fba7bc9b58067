"""Hypothesis strategies for eBPF instructions and programs.

`instructions()` draws any valid instruction of the whole ISA, built from the
one opcode table (`OPCODES`), with every field the opcode uses drawn over
its full range and every field it does not use left at zero (the canonical
form that text can express). `programs()` draws instruction lists whose
jumps and local calls land on instruction boundaries inside the program.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from hypothesis import strategies as st

from pybpf.isa.instruction import Instruction, check_fields, with_pcs
from pybpf.isa.opcodes import (
    CALL,
    CALLX,
    EXIT,
    GOTOL,
    JA,
    LDDW,
    MAY_GOTO,
    NUM_REGS,
    OPCODES,
    VALID_ATOMIC_IMMS,
    AluOp,
    CallSrc,
    InsnClass,
    Mode,
    PseudoSrc,
    Source,
)

regs = st.integers(0, NUM_REGS - 1)
imm32 = st.integers(-(1 << 31), (1 << 31) - 1)
imm64 = st.integers(0, (1 << 64) - 1)
off16 = st.integers(-(1 << 15), (1 << 15) - 1)


def _alu(opcode: int) -> st.SearchStrategy[Instruction]:
    op = opcode & 0xF0
    is_reg = bool(opcode & Source.X)
    if op == AluOp.END:
        return st.builds(Instruction, st.just(opcode), regs, imm=st.sampled_from([16, 32, 64]))
    if op == AluOp.NEG:
        return st.builds(Instruction, st.just(opcode), regs)
    offs = st.just(0)
    if op in (AluOp.DIV, AluOp.MOD):
        offs = st.sampled_from([0, 1])  # 1 = signed division
    elif op == AluOp.MOV and is_reg:
        offs = st.sampled_from([0, 8, 16, 32])  # movsx
    if is_reg:
        return st.builds(Instruction, st.just(opcode), regs, regs, offs)
    return st.builds(Instruction, st.just(opcode), regs, off=offs, imm=imm32)


def _jmp(opcode: int) -> st.SearchStrategy[Instruction]:
    if opcode in (JA, MAY_GOTO):
        return st.builds(Instruction, st.just(opcode), off=off16)
    if opcode == GOTOL:
        return st.builds(Instruction, st.just(opcode), imm=imm32)
    if opcode == EXIT:
        return st.just(Instruction(EXIT))
    if opcode == CALLX:
        return st.builds(Instruction, st.just(opcode), regs)
    if opcode == CALL:
        return st.builds(
            Instruction, st.just(opcode), src=st.sampled_from(list(CallSrc)), imm=imm32
        )
    if opcode & Source.X:
        return st.builds(Instruction, st.just(opcode), regs, regs, off16)
    return st.builds(Instruction, st.just(opcode), regs, off=off16, imm=imm32)


def _memory(opcode: int) -> st.SearchStrategy[Instruction]:
    cls = opcode & 0x07
    mode = opcode & 0xE0
    if opcode == LDDW:
        return st.builds(
            Instruction, st.just(opcode), regs, st.sampled_from(list(PseudoSrc)), imm=imm64
        )
    if cls == InsnClass.LD and mode == Mode.ABS:
        return st.builds(Instruction, st.just(opcode), imm=imm32)
    if cls == InsnClass.LD:  # IND
        return st.builds(Instruction, st.just(opcode), src=regs, imm=imm32)
    if cls == InsnClass.ST:
        return st.builds(Instruction, st.just(opcode), regs, off=off16, imm=imm32)
    if cls == InsnClass.STX and mode == Mode.ATOMIC:
        atomics = st.sampled_from(sorted(VALID_ATOMIC_IMMS))
        return st.builds(Instruction, st.just(opcode), regs, regs, off16, atomics)
    return st.builds(Instruction, st.just(opcode), regs, regs, off16)  # LDX, STX


def instruction_of(opcode: int) -> st.SearchStrategy[Instruction]:
    """Valid canonical instructions with this opcode."""
    cls = OPCODES[opcode].cls
    if cls in (InsnClass.ALU, InsnClass.ALU64):
        strategy = _alu(opcode)
    elif cls in (InsnClass.JMP, InsnClass.JMP32):
        strategy = _jmp(opcode)
    else:
        strategy = _memory(opcode)
    return strategy.filter(lambda insn: check_fields(insn) is None)


def instructions(opcodes: Iterable[int] | None = None) -> st.SearchStrategy[Instruction]:
    """Any valid canonical instruction (of `opcodes`, default: all of them)."""
    chosen = sorted(OPCODES if opcodes is None else opcodes)
    return st.sampled_from(chosen).flatmap(instruction_of)


def _is_relative(insn: Instruction) -> str | None:
    """Which field of `insn` holds a pc-relative target, if any."""
    if insn.cls not in (InsnClass.JMP, InsnClass.JMP32):
        return None
    if insn.opcode == GOTOL or (insn.opcode == CALL and insn.src == CallSrc.LOCAL):
        return "imm"
    if insn.opcode in (CALL, CALLX, EXIT):
        return None
    return "off"


@st.composite
def programs(draw, max_size: int = 40, opcodes: Iterable[int] | None = None) -> list[Instruction]:
    """A list of valid instructions whose relative jumps stay inside it.

    Jump targets are instruction boundaries from 0 to the program's end (a
    jump to the end is encodable, though a verifier rejects it).
    """
    insns = draw(st.lists(instructions(opcodes), min_size=1, max_size=max_size))
    pcs = [pc for pc, _ in with_pcs(insns)]
    boundaries = pcs + [pcs[-1] + insns[-1].slots]
    out = []
    for pc, insn in zip(pcs, insns, strict=True):
        field = _is_relative(insn)
        if field is not None:
            offset = draw(st.sampled_from(boundaries)) - (pc + 1)
            insn = replace(insn, **{field: offset})
        out.append(insn)
    return out
