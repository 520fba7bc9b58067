"""LLVM IR for single eBPF instructions: ALU, conditions, loads, stores, atomics.

Registers are `i64` values read and written through a `Registers` object
(SSA values: the translator joins them with phis at block boundaries).
The instructions here are written by `TextBuilder`, which formats each as
one line of IR instead of building llvmlite `ir.Instruction` objects (the
llvmlite objects cost most of the IR building time); they mix freely with
the instructions of `ir.IRBuilder` (branches, calls, native helpers). Semantics are the interpreter's
(Linux): x / 0 = 0, x % 0 = x, INT_MIN / -1 = INT_MIN and INT_MIN % -1 = 0
(both by selects, so LLVM never sees a division that is undefined), shift
counts masked, 32-bit results zero-extended. Where the verifier proved an
operand's range (`Ranges`, from `Report.value_ranges`), a check that range
makes redundant is left out: no zero (or -1) select for a divisor that
cannot be 0 (or -1), no mask for a shift count below the width, and a
64-bit unsigned division whose operands both fit in 32 bits is done in 32
bits (the same quotient and remainder). Each is the same result for every
value in the range, so the code still computes Linux's result. Memory
accesses are plain unaligned (`align 1`) native loads and stores: the JIT
trusts the verifier; those it proved to be stack or other memory carry
alias scopes (`AliasScopes`).
"""

from __future__ import annotations

from llvmlite import ir

from ...isa.instruction import Instruction
from ...isa.opcodes import (
    BSWAP,
    SIZE_BYTES,
    AluOp,
    AtomicOp,
    InsnClass,
    JmpOp,
    Mode,
    Size,
    Source,
)

I1 = ir.IntType(1)
I8 = ir.IntType(8)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
PTR = ir.PointerType()

M64 = (1 << 64) - 1
M32 = (1 << 32) - 1


def i64(value: int) -> ir.Constant:
    """An `i64` constant from any Python int (taken modulo 2**64)."""
    return ir.Constant(I64, value & M64)


ZERO = i64(0)

_VOID = ir.VoidType()
_PREDICATES = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}


class RawValue:
    """An instruction `TextBuilder` wrote as text, usable as an `ir.Value` operand.

    It has what llvmlite asks of an operand or of a block's instruction:
    `type`, `get_reference()` and its text (`str`/`format`).
    """

    __slots__ = ("type", "_reference", "_text")

    def __init__(self, type: ir.Type, reference: str, text: str):
        self.type = type
        self._reference = reference
        self._text = text

    def get_reference(self) -> str:
        return self._reference

    def __str__(self) -> str:
        return self._text

    def __format__(self, spec: str) -> str:
        return self._text


class TextBuilder:
    """The part of `ir.IRBuilder` the translator uses most, writing text directly.

    Same method names and arguments as `ir.IRBuilder` (binary operations,
    casts, compares, `select`, `load`, `store`, `gep`); each instruction is
    one formatted line inserted where `builder` stands, about a quarter of
    what an `ir.Instruction` costs to build and print. Results are named
    `%$<n>` (llvmlite never makes such names) and can be operands of
    `ir.IRBuilder` instructions (native helper emitters take them as r1..r5).
    """

    __slots__ = ("builder", "_count")

    def __init__(self, builder: ir.IRBuilder):
        self.builder = builder
        self._count = 0

    def _emit(self, type: ir.Type, body: str) -> RawValue:
        self._count += 1
        reference = f"%${self._count}"
        value = RawValue(type, reference, f"{reference} = {body}")
        self.builder._insert(value)  # noqa: SLF001 - what every IRBuilder method ends with
        return value

    def _binary(self, op: str, a: ir.Value, b: ir.Value) -> RawValue:
        return self._emit(a.type, f"{op} {a.type} {a.get_reference()}, {b.get_reference()}")

    def add(self, a: ir.Value, b: ir.Value) -> RawValue:
        return self._binary("add", a, b)

    def sub(self, a: ir.Value, b: ir.Value) -> RawValue:
        return self._binary("sub", a, b)

    def mul(self, a: ir.Value, b: ir.Value) -> RawValue:
        return self._binary("mul", a, b)

    def or_(self, a: ir.Value, b: ir.Value) -> RawValue:
        return self._binary("or", a, b)

    def and_(self, a: ir.Value, b: ir.Value) -> RawValue:
        return self._binary("and", a, b)

    def xor(self, a: ir.Value, b: ir.Value) -> RawValue:
        return self._binary("xor", a, b)

    def shl(self, a: ir.Value, b: ir.Value) -> RawValue:
        return self._binary("shl", a, b)

    def lshr(self, a: ir.Value, b: ir.Value) -> RawValue:
        return self._binary("lshr", a, b)

    def ashr(self, a: ir.Value, b: ir.Value) -> RawValue:
        return self._binary("ashr", a, b)

    def udiv(self, a: ir.Value, b: ir.Value) -> RawValue:
        return self._binary("udiv", a, b)

    def urem(self, a: ir.Value, b: ir.Value) -> RawValue:
        return self._binary("urem", a, b)

    def sdiv(self, a: ir.Value, b: ir.Value) -> RawValue:
        return self._binary("sdiv", a, b)

    def srem(self, a: ir.Value, b: ir.Value) -> RawValue:
        return self._binary("srem", a, b)

    def _cast(self, op: str, value: ir.Value, type: ir.Type) -> RawValue:
        return self._emit(type, f"{op} {value.type} {value.get_reference()} to {type}")

    def trunc(self, value: ir.Value, type: ir.Type) -> RawValue:
        return self._cast("trunc", value, type)

    def zext(self, value: ir.Value, type: ir.Type) -> RawValue:
        return self._cast("zext", value, type)

    def sext(self, value: ir.Value, type: ir.Type) -> RawValue:
        return self._cast("sext", value, type)

    def inttoptr(self, value: ir.Value, type: ir.Type) -> RawValue:
        return self._cast("inttoptr", value, type)

    def _compare(self, predicate: str, a: ir.Value, b: ir.Value) -> RawValue:
        body = f"icmp {predicate} {a.type} {a.get_reference()}, {b.get_reference()}"
        return self._emit(I1, body)

    def icmp_unsigned(self, op: str, a: ir.Value, b: ir.Value) -> RawValue:
        predicate = _PREDICATES[op]
        return self._compare(predicate if op in ("==", "!=") else "u" + predicate, a, b)

    def icmp_signed(self, op: str, a: ir.Value, b: ir.Value) -> RawValue:
        predicate = _PREDICATES[op]
        return self._compare(predicate if op in ("==", "!=") else "s" + predicate, a, b)

    def select(self, condition: ir.Value, a: ir.Value, b: ir.Value) -> RawValue:
        body = (
            f"select i1 {condition.get_reference()}, {a.type} {a.get_reference()}, "
            f"{b.type} {b.get_reference()}"
        )
        return self._emit(a.type, body)

    def load(self, pointer: ir.Value, typ: ir.Type, align: int = 1, metadata: str = "") -> RawValue:
        body = f"load {typ}, ptr {pointer.get_reference()}, align {align}{metadata}"
        return self._emit(typ, body)

    def store(self, value: ir.Value, pointer: ir.Value, align: int = 1, metadata: str = "") -> None:
        text = f"store {value.type} {value.get_reference()}, ptr {pointer.get_reference()}"
        self.builder._insert(RawValue(_VOID, "", f"{text}, align {align}{metadata}"))  # noqa: SLF001

    def gep(self, pointer: ir.Value, indices: list[ir.Value], source_etype: ir.Type) -> RawValue:
        (index,) = indices
        body = f"getelementptr {source_etype}, ptr {pointer.get_reference()}, {index.type} "
        return self._emit(PTR, body + index.get_reference())


class Registers:
    """r0..r10 of one function as SSA values: `get`/`set` emit nothing.

    `values[reg]` is the register's current `i64` value at the builder's
    position; the translator saves it at every branch out of an eBPF block
    and starts each block with phis for the registers live into it (or with
    its only predecessor's values), so no register ever goes through memory.
    """

    __slots__ = ("builder", "text", "values", "pointers", "entry")

    def __init__(self, builder: ir.IRBuilder):
        self.builder = builder
        self.text = TextBuilder(builder)
        self.values: list[ir.Value] = [ZERO] * 11
        # id(i64 value) -> (LLVM block or None for everywhere, value, `ptr`
        # of it): memory accesses through one base share its `inttoptr`.
        self.pointers: dict[int, tuple[ir.Block | None, ir.Value, ir.Value]] = {}
        # The function's entry block, once terminated: pointers of the
        # function's arguments go there, before the branch.
        self.entry: ir.Block | None = None

    def pointer(self, base: ir.Value, off: int) -> ir.Value:
        """The pointer `base + off` (wrapping address arithmetic, as `address`)."""
        t = self.text
        block = self.builder.block
        known = self.pointers.get(id(base))
        if known is not None and known[1] is base and known[0] in (None, block):
            pointer = known[2]
        elif self.entry is not None and isinstance(base, ir.Argument):
            at_entry = ir.IRBuilder(self.entry)
            at_entry.position_before(self.entry.terminator)
            t.builder = at_entry
            try:
                pointer = t.inttoptr(base, PTR)
            finally:
                t.builder = self.builder
            self.pointers[id(base)] = (None, base, pointer)
        else:
            pointer = t.inttoptr(base, PTR)
            self.pointers[id(base)] = (block, base, pointer)
        if off:
            pointer = t.gep(pointer, [i64(off)], source_etype=I8)
        return pointer

    def dominating_pointer(self, base: ir.Value) -> None:
        """Make `base` (defined at the function's entry) usable as a pointer everywhere."""
        self.pointers[id(base)] = (None, base, self.text.inttoptr(base, PTR))

    def get(self, reg: int) -> ir.Value:
        """The current value of register `reg`."""
        return self.values[reg]

    def set(self, reg: int, value: ir.Value) -> None:
        """Make `value` (an `i64`) the value of register `reg`."""
        self.values[reg] = value


def _operand(regs: Registers, insn: Instruction, wide: bool) -> ir.Value:
    if insn.opcode & Source.X:
        value = regs.get(insn.src)
        return value if wide else regs.text.trunc(value, I32)
    if wide:
        return i64(insn.imm)
    return ir.Constant(I32, insn.imm & M32)


# -- ALU ---------------------------------------------------------------------


Ranges = dict[int, tuple[int, int]]
"""Register → the (lowest, highest) unsigned 64-bit value the verifier proved at one pc."""


def _proven(ranges: Ranges | None, reg: int, wide: bool) -> tuple[int, int] | None:
    """The proven range of the operand register `reg` (its low 32 bits when not `wide`)."""
    found = ranges.get(reg) if ranges else None
    if found is None or (not wide and found[1] > M32):
        return None  # a 32-bit operation sees only the low half: the range says nothing of it
    return found


def alu(regs: Registers, insn: Instruction, ranges: Ranges | None = None) -> None:
    """Emit an ALU or ALU64 instruction (including byte swaps).

    `ranges` are the verifier's proven operand ranges at this instruction (see the
    module docstring); None or empty: every check is emitted.
    """
    b = regs.text
    wide = (insn.opcode & 0x07) == InsnClass.ALU64
    op = insn.opcode & 0xF0
    if op == AluOp.END:
        regs.set(insn.dst, _byteswap(regs.builder, insn, regs.get(insn.dst)))
        return
    if op == AluOp.MOV:
        regs.set(insn.dst, _mov(regs, insn, wide))
        return
    dst = regs.get(insn.dst)
    if not wide and op in _LOW_BITS:
        # The low 32 bits of these 64-bit operations are the 32-bit result.
        if insn.opcode & Source.X:
            src = regs.get(insn.src)
        else:
            src = i64(insn.imm & (31 if op == AluOp.LSH else M32))
        facts = _Facts(ranges, insn, wide)
        result = _arith(b, op, insn.off, dst, src, I64, facts, 31)
        regs.set(insn.dst, b.and_(result, _LOW32))
        return
    facts = _Facts(ranges, insn, wide)
    if wide and op in (AluOp.DIV, AluOp.MOD) and not insn.off and facts.fits_32_bits():
        # Both operands proven below 2**32: the 32-bit division gives the same result.
        narrow = _arith(
            b, op, 0, b.trunc(dst, I32), b.trunc(_operand(regs, insn, True), I32), I32, facts
        )
        regs.set(insn.dst, b.zext(narrow, I64))
        return
    kind = I64 if wide else I32
    if not wide:
        dst = b.trunc(dst, I32)
    src = _operand(regs, insn, wide)
    result = _arith(b, op, insn.off, dst, src, kind, facts)
    regs.set(insn.dst, result if wide else b.zext(result, I64))


class _Facts:
    """What the verifier proved of one instruction's operands (`alu`'s `ranges`)."""

    __slots__ = ("dst", "src")

    def __init__(self, ranges: Ranges | None, insn: Instruction, wide: bool):
        self.dst = _proven(ranges, insn.dst, wide)
        self.src = _proven(ranges, insn.src, wide) if insn.opcode & Source.X else None

    def fits_32_bits(self) -> bool:
        """Both operands (the source a register) proven to be at most 2**32 - 1."""
        return (
            self.dst is not None
            and self.dst[1] <= M32
            and self.src is not None
            and self.src[1] <= M32
        )

    def source_below(self, limit: int) -> bool:
        """The register source proven to be below `limit`."""
        return self.src is not None and self.src[1] < limit

    def source_excludes(self, value: int) -> bool:
        """The register source proven never to equal `value`."""
        return self.src is not None and not self.src[0] <= value <= self.src[1]


_LOW_BITS = frozenset((AluOp.ADD, AluOp.SUB, AluOp.MUL, AluOp.OR, AluOp.AND, AluOp.XOR, AluOp.LSH))
_LOW32 = i64(M32)
_SIMPLE = {
    AluOp.ADD: TextBuilder.add,
    AluOp.SUB: TextBuilder.sub,
    AluOp.MUL: TextBuilder.mul,
    AluOp.OR: TextBuilder.or_,
    AluOp.AND: TextBuilder.and_,
    AluOp.XOR: TextBuilder.xor,
}
_SHIFTS = {AluOp.LSH: TextBuilder.shl, AluOp.RSH: TextBuilder.lshr, AluOp.ARSH: TextBuilder.ashr}


def _mov(regs: Registers, insn: Instruction, wide: bool) -> ir.Value:
    b = regs.text
    src = _operand(regs, insn, True) if insn.opcode & Source.X else None
    if src is None:
        return i64(insn.imm) if wide else i64(insn.imm & M32)
    sizes = (8, 16, 32) if wide else (8, 16)
    if insn.off in sizes:  # movsx: sign-extend the low `off` bits
        narrow = b.trunc(src, ir.IntType(insn.off))
        if wide:
            return b.sext(narrow, I64)
        return b.zext(b.sext(narrow, I32), I64)
    return src if wide else b.zext(b.trunc(src, I32), I64)


def _arith(
    b: TextBuilder,
    op: int,
    off: int,
    dst: ir.Value,
    src: ir.Value,
    kind: ir.IntType,
    facts: _Facts | None = None,
    mask: int | None = None,
) -> ir.Value:
    simple = _SIMPLE.get(op)
    if simple is not None:
        return simple(b, dst, src)
    zero = ir.Constant(kind, 0)
    shift = _SHIFTS.get(op)
    if shift is not None:
        # The count masked to the operation's width (`mask` for a 32-bit
        # shift done in 64 bits); an immediate one is masked here, a
        # register proven below the width needs no mask.
        mask = kind.width - 1 if mask is None else mask
        if isinstance(src, ir.Constant):
            count: ir.Value = ir.Constant(kind, src.constant & mask)
        elif facts is not None and facts.source_below(mask + 1):
            count = src
        else:
            count = b.and_(src, ir.Constant(kind, mask))
        return shift(b, dst, count)
    if op == AluOp.NEG:
        return b.sub(zero, dst)
    if op in (AluOp.DIV, AluOp.MOD):
        return _divide(b, op == AluOp.DIV, bool(off), dst, src, kind, facts)
    raise AssertionError(f"unhandled ALU op 0x{op:02x}")


def _divide(
    b: TextBuilder,
    div: bool,
    signed: bool,
    dst: ir.Value,
    src: ir.Value,
    kind: ir.IntType,
    facts: _Facts | None = None,
) -> ir.Value:
    # The divisor LLVM sees is never 0 (nor -1 for signed), so the division
    # is always defined; selects then give the eBPF results for those cases,
    # unless the verifier proved the divisor is never such a value.
    zero = ir.Constant(kind, 0)
    one = ir.Constant(kind, 1)
    all_ones = (1 << kind.width) - 1
    if facts is not None and facts.source_excludes(0):
        if not signed:
            return b.udiv(dst, src) if div else b.urem(dst, src)
        if facts.source_excludes(all_ones):  # neither 0 nor -1
            return b.sdiv(dst, src) if div else b.srem(dst, src)
    is_zero = b.icmp_unsigned("==", src, zero)
    if not signed:
        safe = b.select(is_zero, one, src)
        if div:
            return b.select(is_zero, zero, b.udiv(dst, safe))
        return b.select(is_zero, dst, b.urem(dst, safe))
    minus_one = ir.Constant(kind, -1)
    is_minus_one = b.icmp_unsigned("==", src, minus_one)
    safe = b.select(b.or_(is_zero, is_minus_one), one, src)
    if div:
        # x / -1 = -x (wrapping: INT_MIN / -1 = INT_MIN), x / 0 = 0.
        quotient = b.select(is_minus_one, b.sub(zero, dst), b.sdiv(dst, safe))
        return b.select(is_zero, zero, quotient)
    # x % -1 = 0, x % 0 = x.
    remainder = b.select(is_minus_one, zero, b.srem(dst, safe))
    return b.select(is_zero, dst, remainder)


def _byteswap(b: ir.IRBuilder, insn: Instruction, value: ir.Value) -> ir.Value:
    width = insn.imm
    kind = ir.IntType(width)
    to_be = insn.opcode == BSWAP or bool(insn.opcode & Source.X)
    if not to_be:  # le on a little-endian machine only truncates
        return value if width == 64 else b.zext(b.trunc(value, kind), I64)
    narrow = value if width == 64 else b.trunc(value, kind)
    swap = b.module.declare_intrinsic("llvm.bswap", [kind])
    swapped = b.call(swap, [narrow])
    return swapped if width == 64 else b.zext(swapped, I64)


# -- conditions ----------------------------------------------------------------

_COMPARE = {
    JmpOp.JEQ: ("==", False),
    JmpOp.JNE: ("!=", False),
    JmpOp.JGT: (">", False),
    JmpOp.JGE: (">=", False),
    JmpOp.JLT: ("<", False),
    JmpOp.JLE: ("<=", False),
    JmpOp.JSGT: (">", True),
    JmpOp.JSGE: (">=", True),
    JmpOp.JSLT: ("<", True),
    JmpOp.JSLE: ("<=", True),
}


def condition(regs: Registers, insn: Instruction) -> ir.Value:
    """The `i1` under which a conditional JMP/JMP32 is taken."""
    b = regs.text
    wide = (insn.opcode & 0x07) == InsnClass.JMP
    op = insn.opcode & 0xF0
    dst = regs.get(insn.dst)
    if not wide:
        dst = b.trunc(dst, I32)
    src = _operand(regs, insn, wide)
    if op == JmpOp.JSET:
        return b.icmp_unsigned("!=", b.and_(dst, src), ir.Constant(dst.type, 0))
    symbol, signed = _COMPARE[JmpOp(op)]
    compare = b.icmp_signed if signed else b.icmp_unsigned
    return compare(symbol, dst, src)


# -- memory ------------------------------------------------------------------------


def address(b: ir.IRBuilder, base: ir.Value, off: int) -> ir.Value:
    """The pointer for `base + off` (64-bit wrapping address arithmetic)."""
    if off:
        base = b.add(base, i64(off))
    return b.inttoptr(base, PTR)


def access_size(insn: Instruction) -> int:
    """Bytes moved by a load, store or atomic."""
    return SIZE_BYTES[Size(insn.opcode & 0x18)]


def load(regs: Registers, insn: Instruction, metadata: str = "") -> None:
    """`ldx*` and the sign-extending `ldxs*` (`metadata`: text after the load, see `AliasScopes`)."""
    b = regs.text
    size = access_size(insn)
    kind = ir.IntType(size * 8)
    pointer = regs.pointer(regs.get(insn.src), insn.off)
    value = b.load(pointer, typ=kind, align=1, metadata=metadata)
    if size < 8:
        signed = (insn.opcode & 0xE0) == Mode.MEMSX
        value = b.sext(value, I64) if signed else b.zext(value, I64)
    regs.set(insn.dst, value)


def store(regs: Registers, insn: Instruction, metadata: str = "") -> None:
    """`st*` (immediate) and `stx*` (register) stores (`metadata` as for `load`)."""
    b = regs.text
    size = access_size(insn)
    kind = ir.IntType(size * 8)
    if (insn.opcode & 0x07) == InsnClass.ST:
        value = ir.Constant(kind, insn.imm & ((1 << (size * 8)) - 1))
    else:
        value = regs.get(insn.src)
        if size < 8:
            value = b.trunc(value, kind)
    b.store(value, regs.pointer(regs.get(insn.dst), insn.off), align=1, metadata=metadata)


class AliasScopes:
    """LLVM alias scopes for the verifier's memory regions (`Report.memory_regions`).

    Two scopes in one domain: the run's stack, and every other memory
    (packet, context, map values, ...). A load or store the verifier proved
    to be of one kind gets that kind's scope and `noalias` with the other,
    so LLVM may keep stack slots in registers across packet and map stores
    (and reorder them). The stack frames are memory of their own, so no two
    such accesses of different kinds ever touch the same byte. Accesses
    without a fact, and everything else the JIT emits (run state, helper
    emitters, calls), carry no scope: LLVM assumes they may alias anything.
    """

    def __init__(self, module: ir.Module, regions: dict[int, str]):
        self.regions = regions
        self.module = module
        self._suffix: dict[str, str] | None = None

    def metadata(self, pc: int) -> str:
        """The text to append to the load or store at `pc` ("" without a fact)."""
        region = self.regions.get(pc)
        if region is None:
            return ""
        if self._suffix is None:
            self._suffix = self._scopes()
        return self._suffix.get(region, "")

    def _scopes(self) -> dict[str, str]:
        m = self.module
        domain = m.add_metadata([ir.MetaDataString(m, "pybpf.memory")])
        stack = m.add_metadata([m.add_metadata([ir.MetaDataString(m, "pybpf.stack"), domain])])
        other = m.add_metadata([m.add_metadata([ir.MetaDataString(m, "pybpf.not-stack"), domain])])
        ref_stack, ref_other = stack.get_reference(), other.get_reference()
        # Only reached with facts, so the verifier is loaded already.
        from ...verifier.value_facts import NOT_STACK, STACK

        return {
            STACK: f", !alias.scope {ref_stack}, !noalias {ref_other}",
            NOT_STACK: f", !alias.scope {ref_other}, !noalias {ref_stack}",
        }


_RMW = {AtomicOp.ADD: "add", AtomicOp.OR: "or", AtomicOp.AND: "and", AtomicOp.XOR: "xor"}


def atomic_valid(insn: Instruction) -> bool:
    """True for the atomic operations Linux defines (others fault at run time)."""
    size = access_size(insn)
    imm = insn.imm
    if size not in (4, 8):
        return False
    return imm in (AtomicOp.XCHG, AtomicOp.CMPXCHG) or (imm & ~0x01) in _RMW


def atomic(regs: Registers, insn: Instruction) -> None:
    """A valid BPF_ATOMIC instruction, as a seq_cst `atomicrmw` or `cmpxchg`."""
    b = regs.builder
    size = access_size(insn)
    kind = ir.IntType(size * 8)
    pointer = regs.pointer(regs.get(insn.dst), insn.off)
    src = regs.get(insn.src)
    if size < 8:
        src = b.trunc(src, kind)
    imm = insn.imm
    if imm == AtomicOp.CMPXCHG:
        expected = regs.get(0)
        if size < 8:
            expected = b.trunc(expected, kind)
        pair = b.cmpxchg(pointer, expected, src, "seq_cst", "seq_cst")
        old = b.extract_value(pair, 0)
        regs.set(0, old if size == 8 else b.zext(old, I64))
        return
    operation = "xchg" if imm == AtomicOp.XCHG else _RMW[AtomicOp(imm & ~0x01)]
    old = b.atomic_rmw(operation, pointer, src, "seq_cst")
    if imm & 0x01:  # FETCH (xchg always fetches)
        regs.set(insn.src, old if size == 8 else b.zext(old, I64))
