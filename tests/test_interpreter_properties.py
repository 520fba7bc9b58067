"""Random ALU operations and comparisons against a plain reference model.

The reference below is written independently of the code generator: it
works on Python's signed integers and truncates division the long way, so
a shared mistake in the bit tricks of `engine.codegen_ops` would show.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pybpf.engine.interpreter import Interpreter
from pybpf.isa.instruction import Instruction
from pybpf.isa.opcodes import AluOp, InsnClass, JmpOp, Source

ALU_OPS = [
    AluOp.ADD, AluOp.SUB, AluOp.MUL, AluOp.DIV, AluOp.OR, AluOp.AND, AluOp.LSH,
    AluOp.RSH, AluOp.NEG, AluOp.MOD, AluOp.XOR, AluOp.MOV, AluOp.ARSH,
]  # fmt: skip
JMP_OPS = [
    JmpOp.JEQ, JmpOp.JGT, JmpOp.JGE, JmpOp.JSET, JmpOp.JNE, JmpOp.JSGT, JmpOp.JSGE,
    JmpOp.JLT, JmpOp.JLE, JmpOp.JSLT, JmpOp.JSLE,
]  # fmt: skip

# Values near the edges are where the semantics differ between languages.
EDGES = [
    0,
    1,
    2,
    31,
    32,
    63,
    64,
    0x7FFFFFFF,
    0x80000000,
    0xFFFFFFFF,
    1 << 63,
    (1 << 63) - 1,
    (1 << 64) - 1,
]
u64 = st.one_of(st.sampled_from(EDGES), st.integers(0, (1 << 64) - 1))
s32 = st.one_of(
    st.sampled_from([0, 1, -1, 31, 32, 63, 64, -(1 << 31), (1 << 31) - 1]),
    st.integers(-(1 << 31), (1 << 31) - 1),
)


def signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def trunc_div(a: int, b: int) -> int:
    q = a // b
    if q < 0 and q * b != a:  # Python floors; C truncates toward zero
        q += 1
    return q


def reference_alu(op: int, bits: int, signed_op: bool, dst: int, src: int) -> int:
    """The result register after `dst op= src` at width `bits`."""
    mask = (1 << bits) - 1
    a, b = dst & mask, src & mask
    sa, sb = signed(a, bits), signed(b, bits)
    if op == AluOp.ADD:
        r = a + b
    elif op == AluOp.SUB:
        r = a - b
    elif op == AluOp.MUL:
        r = sa * sb
    elif op == AluOp.DIV and signed_op:
        r = 0 if sb == 0 else trunc_div(sa, sb)
    elif op == AluOp.DIV:
        r = 0 if b == 0 else a // b
    elif op == AluOp.MOD and signed_op:
        r = sa if sb == 0 else sa - sb * trunc_div(sa, sb)
    elif op == AluOp.MOD:
        r = a if b == 0 else a % b
    elif op == AluOp.OR:
        r = a | b
    elif op == AluOp.AND:
        r = a & b
    elif op == AluOp.XOR:
        r = a ^ b
    elif op == AluOp.LSH:
        r = a << (b % bits)
    elif op == AluOp.RSH:
        r = a >> (b % bits)
    elif op == AluOp.ARSH:
        r = sa >> (b % bits)
    elif op == AluOp.NEG:
        r = -sa
    else:  # MOV
        r = b
    return r & mask  # ALU32 results are zero-extended into the 64-bit register


def run(insns: list[Instruction]) -> int:
    return Interpreter(insns, budget=100).run()


def lddw(reg: int, value: int) -> Instruction:
    return Instruction(0x18, dst=reg, imm=value)


@settings(max_examples=400, deadline=None)
@given(
    op=st.sampled_from(ALU_OPS),
    wide=st.booleans(),
    use_reg=st.booleans(),
    signed_op=st.booleans(),
    dst=u64,
    src=u64,
    imm=s32,
)
def test_alu_matches_reference(
    op: int, wide: bool, use_reg: bool, signed_op: bool, dst: int, src: int, imm: int
) -> None:
    signed_op = signed_op and op in (AluOp.DIV, AluOp.MOD)
    if op == AluOp.NEG:
        use_reg = False  # neg has no register form
    cls = InsnClass.ALU64 if wide else InsnClass.ALU
    bits = 64 if wide else 32
    operand = src if use_reg else imm & ((1 << 64) - 1)  # imm is sign-extended
    insn = Instruction(
        cls | op | (Source.X if use_reg else Source.K),
        dst=1,
        src=2 if use_reg else 0,
        off=1 if signed_op else 0,
        imm=0 if use_reg else imm,
    )
    program = [lddw(1, dst), lddw(2, src), insn, Instruction(0xBF, dst=0, src=1), Instruction(0x95)]
    assert run(program) == reference_alu(op, bits, signed_op, dst, operand)


def reference_jump(op: int, bits: int, a: int, b: int) -> bool:
    a &= (1 << bits) - 1
    b &= (1 << bits) - 1
    sa, sb = signed(a, bits), signed(b, bits)
    return {
        JmpOp.JEQ: a == b, JmpOp.JNE: a != b, JmpOp.JSET: bool(a & b),
        JmpOp.JGT: a > b, JmpOp.JGE: a >= b, JmpOp.JLT: a < b, JmpOp.JLE: a <= b,
        JmpOp.JSGT: sa > sb, JmpOp.JSGE: sa >= sb, JmpOp.JSLT: sa < sb, JmpOp.JSLE: sa <= sb,
    }[op]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    op=st.sampled_from(JMP_OPS), wide=st.booleans(), use_reg=st.booleans(), a=u64, b=u64, imm=s32
)
def test_conditional_jumps_match_reference(
    op: int, wide: bool, use_reg: bool, a: int, b: int, imm: int
) -> None:
    cls = InsnClass.JMP if wide else InsnClass.JMP32
    jump = Instruction(
        cls | op | (Source.X if use_reg else Source.K),
        dst=1,
        src=2 if use_reg else 0,
        off=1,
        imm=0 if use_reg else imm,
    )
    program = [
        lddw(1, a),
        lddw(2, b),
        Instruction(0xB7, dst=0, imm=1),
        jump,
        Instruction(0xB7, dst=0, imm=0),
        Instruction(0x95),
    ]
    operand = b if use_reg else imm
    assert run(program) == int(reference_jump(op, 64 if wide else 32, a, operand))
