"""The JIT against the interpreter: every ALU and jump operation on edge values.

One small program per operation takes its operands in r1 and r2, so each
program is compiled once and run on every pair of edge values; the
interpreter (the reference semantics) must give the same r0.
"""

from __future__ import annotations

import itertools

import pytest

from pybpf.engine.interpreter import Interpreter
from pybpf.engine.jit import JitEngine
from pybpf.isa.instruction import Instruction
from pybpf.isa.opcodes import BSWAP, EXIT, AluOp, InsnClass, JmpOp, Source

M64 = (1 << 64) - 1
EDGES = [
    0, 1, 2, 7, 31, 32, 63, 64, 0x7F, 0x80, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
    0x100000000, (1 << 63) - 1, 1 << 63, M64, M64 - 1, 0x8000000080000000, 0x0123456789ABCDEF,
]  # fmt: skip
PAIRS = list(itertools.product(EDGES, repeat=2))

ALU_OPS = [op for op in AluOp if op not in (AluOp.END,)]


def _both(insns: list[Instruction]) -> tuple[Interpreter, JitEngine]:
    return Interpreter(insns), JitEngine(insns)


def _alu_cases() -> list[tuple[str, list[Instruction]]]:
    cases = []
    for cls in (InsnClass.ALU64, InsnClass.ALU):
        for op in ALU_OPS:
            offs = [0]
            if op in (AluOp.DIV, AluOp.MOD):
                offs.append(1)  # sdiv / smod
            if op == AluOp.MOV:
                offs += [8, 16, 32] if cls == InsnClass.ALU64 else [8, 16]
            for off in offs:
                src = Source.K if op == AluOp.NEG else Source.X
                name = f"{cls.name}-{op.name}-off{off}"
                body = Instruction(cls | op | src, dst=1, src=2, off=off)
                cases.append((name, [body, Instruction(0xBF, dst=0, src=1), Instruction(EXIT)]))
    swaps = [(0xD4, 16), (0xD4, 32), (0xD4, 64), (0xDC, 16), (0xDC, 32), (0xDC, 64)]
    swaps += [(BSWAP, 16), (BSWAP, 32), (BSWAP, 64)]
    for opcode, width in swaps:
        body = Instruction(opcode, dst=1, imm=width)
        insns = [body, Instruction(0xBF, dst=0, src=1), Instruction(EXIT)]
        cases.append((f"end-{opcode:x}-{width}", insns))
    return cases


ALU_CASES = _alu_cases()


@pytest.mark.parametrize("insns", [c[1] for c in ALU_CASES], ids=[c[0] for c in ALU_CASES])
def test_alu_matches_the_interpreter(insns: list[Instruction]) -> None:
    interpreter, jit = _both(insns)
    for a, b in PAIRS:
        assert jit.run(a, b) == interpreter.run(a, b), (hex(a), hex(b))


def test_alu_immediates_match_the_interpreter() -> None:
    # Immediates are sign-extended for ALU64 and taken as u32 for ALU.
    for cls in (InsnClass.ALU64, InsnClass.ALU):
        for op in (AluOp.ADD, AluOp.DIV, AluOp.MOD, AluOp.ARSH, AluOp.MOV, AluOp.XOR):
            for imm in (-1, -7, 0, 3, 0x7FFFFFFF, -0x80000000):
                off = 1 if op in (AluOp.DIV, AluOp.MOD) and imm == -1 else 0
                insns = [
                    Instruction(cls | op | Source.K, dst=1, off=off, imm=imm),
                    Instruction(0xBF, dst=0, src=1),
                    Instruction(EXIT),
                ]
                interpreter, jit = _both(insns)
                for a in EDGES:
                    assert jit.run(a) == interpreter.run(a), (cls, op, imm, hex(a))


JMP_OPS = [op for op in JmpOp if op not in (JmpOp.JA, JmpOp.CALL, JmpOp.EXIT, JmpOp.JCOND)]


@pytest.mark.parametrize("cls", [InsnClass.JMP, InsnClass.JMP32], ids=["jmp", "jmp32"])
@pytest.mark.parametrize("op", JMP_OPS, ids=[op.name for op in JMP_OPS])
def test_jumps_match_the_interpreter(cls: InsnClass, op: JmpOp) -> None:
    insns = [
        Instruction(0xB7, dst=0, imm=1),
        Instruction(cls | op | Source.X, dst=1, src=2, off=1),
        Instruction(0xB7, dst=0, imm=2),
        Instruction(EXIT),
    ]
    interpreter, jit = _both(insns)
    outcomes = set()
    for a, b in PAIRS:
        expected = interpreter.run(a, b)
        outcomes.add(expected)
        assert jit.run(a, b) == expected, (hex(a), hex(b))
    assert outcomes == {1, 2}  # the edge values exercise both directions
