"""Disassembler: eBPF instructions as text.

`format_instruction` prints llvm-objdump's BPF syntax (`r0 = *(u32 *)(r1 + 4)`,
`if w1 s< 3 goto +2`), matching llvm-objdump-14 character for character for
every instruction it knows. For what llvm-objdump-14 cannot print (v4
instructions, `jset`, store-immediate, 32-bit atomics in non-alu32 mode) we
use the spelling of later LLVM releases; for the few instructions LLVM has
no spelling for (map pseudo-loads, bpf-to-bpf calls, kfunc calls) we use the
spelling of PREVAIL (`r1 = map_fd 3`) and bpftool (`call pc+4`).
Everything printed here is read back by `pybpf.isa.assembler.assemble`.

`format_conformance` prints the bpf_conformance suite's syntax instead
(`ldxw %r0, [%r1+4]`), and `format_program` prints a whole listing with pcs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .instruction import Instruction, with_pcs
from .opcodes import (
    ATOMIC_FETCH,
    CALL,
    CALLX,
    EXIT,
    GOTOL,
    JA,
    MAY_GOTO,
    SIZE_CTYPE,
    AluOp,
    AtomicOp,
    CallSrc,
    InsnClass,
    JmpOp,
    Mode,
    PseudoSrc,
    Size,
    Source,
)

# Operator spellings of llvm's BPF asm printer (llvm/lib/Target/BPF/BPFInstrInfo.td).
# The assembler reads the same tables, so the two cannot drift apart.
ALU_SYMBOLS: dict[int, str] = {
    AluOp.ADD: "+",
    AluOp.SUB: "-",
    AluOp.MUL: "*",
    AluOp.DIV: "/",
    AluOp.OR: "|",
    AluOp.AND: "&",
    AluOp.LSH: "<<",
    AluOp.RSH: ">>",
    AluOp.MOD: "%",
    AluOp.XOR: "^",
    AluOp.ARSH: "s>>",
}
SIGNED_ALU_SYMBOLS: dict[int, str] = {AluOp.DIV: "s/", AluOp.MOD: "s%"}
JMP_SYMBOLS: dict[int, str] = {
    JmpOp.JEQ: "==",
    JmpOp.JGT: ">",
    JmpOp.JGE: ">=",
    JmpOp.JSET: "&",
    JmpOp.JNE: "!=",
    JmpOp.JSGT: "s>",
    JmpOp.JSGE: "s>=",
    JmpOp.JLT: "<",
    JmpOp.JLE: "<=",
    JmpOp.JSLT: "s<",
    JmpOp.JSLE: "s<=",
}
# Atomic read-modify-write operations (imm without the FETCH bit).
ATOMIC_SYMBOLS: dict[int, str] = {
    AtomicOp.ADD: "+",
    AtomicOp.OR: "|",
    AtomicOp.AND: "&",
    AtomicOp.XOR: "^",
}
ATOMIC_NAMES: dict[int, str] = {
    AtomicOp.ADD: "add",
    AtomicOp.OR: "or",
    AtomicOp.AND: "and",
    AtomicOp.XOR: "xor",
}
SIGNED_CTYPE = {Size.W: "s32", Size.H: "s16", Size.B: "s8"}
SIZE_OF_CTYPE = {name: size for size, name in SIZE_CTYPE.items()}
SIZE_OF_SIGNED_CTYPE = {name: size for size, name in SIGNED_CTYPE.items()}
# END instructions: ALU class with K = to little endian, X = to big endian.
END_NAMES = {Source.K: "le", Source.X: "be"}

Labels = Mapping[int, str]


# --- llvm-objdump syntax ----------------------------------------------------


def format_instruction(
    insn: Instruction, pc: int | None = None, *, labels: Labels | None = None
) -> str:
    """The llvm-objdump text of `insn` (without pc).

    With `pc` and `labels` (pc → name), jump and call targets that have a
    label get llvm-objdump's ` <name>` suffix.
    """
    formatter = _FORMATTERS[insn.cls]
    text = formatter(insn)
    target = _target_pc(insn, pc)
    if target is not None and labels and target in labels:
        text += f" <{labels[target]}>"
    return text


def _target_pc(insn: Instruction, pc: int | None) -> int | None:
    """The pc a jump or local call at `pc` goes to, or None."""
    if pc is None or insn.cls not in (InsnClass.JMP, InsnClass.JMP32):
        return None
    if insn.opcode in (GOTOL, CALL):
        if insn.opcode == CALL and insn.src != CallSrc.LOCAL:
            return None
        return pc + 1 + insn.imm
    if insn.opcode in (CALLX, EXIT):
        return None
    return pc + 1 + insn.off


def _reg(n: int, wide: bool = True) -> str:
    return f"{'r' if wide else 'w'}{n}"


def _rel(n: int) -> str:
    """A pc-relative offset the way llvm prints it: +N or -N."""
    return f"+{n}" if n >= 0 else str(n)


def _mem(base: int, off: int) -> str:
    """`r1 + 4` / `r10 - 8`: llvm's memory operand, decimal offset."""
    return f"r{base} + {off}" if off >= 0 else f"r{base} - {-off}"


def _format_alu(insn: Instruction) -> str:
    wide = insn.cls == InsnClass.ALU64
    op = insn.opcode & 0xF0
    dst = _reg(insn.dst, wide)
    is_reg = bool(insn.opcode & Source.X)
    src = _reg(insn.src, wide) if is_reg else str(insn.imm)
    if op == AluOp.END:
        if wide:
            return f"r{insn.dst} = bswap{insn.imm} r{insn.dst}"
        return f"r{insn.dst} = {END_NAMES[insn.opcode & Source.X]}{insn.imm} r{insn.dst}"
    if op == AluOp.NEG:
        return f"{dst} = -{dst}"
    if op == AluOp.MOV:
        if is_reg and insn.off:
            return f"{dst} = (s{insn.off}){src}"
        return f"{dst} = {src}"
    symbol = ALU_SYMBOLS[op]
    if insn.off == 1 and op in SIGNED_ALU_SYMBOLS:
        symbol = SIGNED_ALU_SYMBOLS[op]
    return f"{dst} {symbol}= {src}"


def _format_jmp(insn: Instruction) -> str:
    op = insn.opcode & 0xF0
    if insn.opcode == JA:
        return f"goto {_rel(insn.off)}"
    if insn.opcode == GOTOL:
        return f"gotol {_rel(insn.imm)}"
    if insn.opcode == MAY_GOTO:
        return f"may_goto {_rel(insn.off)}"
    if insn.opcode == EXIT:
        return "exit"
    if insn.opcode == CALLX:
        return f"callx r{insn.dst}"
    if insn.opcode == CALL:
        if insn.src == CallSrc.LOCAL:
            return f"call pc{_rel(insn.imm)}"
        if insn.src == CallSrc.KFUNC:
            return f"call kfunc {insn.imm}"
        return f"call {insn.imm}"
    wide = insn.cls == InsnClass.JMP
    src = _reg(insn.src, wide) if insn.opcode & Source.X else str(insn.imm)
    return f"if {_reg(insn.dst, wide)} {JMP_SYMBOLS[op]} {src} goto {_rel(insn.off)}"


def _format_ld(insn: Instruction) -> str:
    mode = insn.opcode & 0xE0
    ctype = SIZE_CTYPE[Size(insn.opcode & 0x18)]
    if mode == Mode.ABS:
        return f"r{insn.dst} = *({ctype} *)skb[{insn.imm}]"
    if mode == Mode.IND:
        index = f"r{insn.src}" if not insn.imm else f"r{insn.src} {_signed_term(insn.imm)}"
        return f"r{insn.dst} = *({ctype} *)skb[{index}]"
    return _format_lddw(insn)


def _signed_term(n: int) -> str:
    return f"+ {n}" if n >= 0 else f"- {-n}"


def _format_lddw(insn: Instruction) -> str:
    dst = f"r{insn.dst}"
    lo, hi = insn.imm & 0xFFFFFFFF, insn.imm >> 32
    if insn.src == PseudoSrc.IMM64:
        value = insn.imm - (1 << 64) if insn.imm >= 1 << 63 else insn.imm
        return f"{dst} = {value} ll"
    if insn.src == PseudoSrc.MAP_FD and not hi:
        return f"{dst} = map_fd {lo}"
    if insn.src == PseudoSrc.MAP_IDX and not hi:
        return f"{dst} = map_by_idx({lo})"
    if insn.src == PseudoSrc.MAP_VALUE:
        return f"{dst} = map_val({lo}) + {hi}"
    if insn.src == PseudoSrc.MAP_IDX_VALUE:
        return f"{dst} = mva(map_by_idx({lo})) + {hi}"
    # llvm's own spelling of a pseudo load, for the sources PREVAIL has no name for.
    return f"ld_pseudo\t{dst}, {insn.src}, {insn.imm}"


def _format_ldx(insn: Instruction) -> str:
    size = Size(insn.opcode & 0x18)
    signed = (insn.opcode & 0xE0) == Mode.MEMSX
    ctype = SIGNED_CTYPE[size] if signed else SIZE_CTYPE[size]
    return f"r{insn.dst} = *({ctype} *)({_mem(insn.src, insn.off)})"


def _format_st(insn: Instruction) -> str:
    ctype = SIZE_CTYPE[Size(insn.opcode & 0x18)]
    return f"*({ctype} *)({_mem(insn.dst, insn.off)}) = {insn.imm}"


def _format_stx(insn: Instruction) -> str:
    size = Size(insn.opcode & 0x18)
    ctype = SIZE_CTYPE[size]
    addr = _mem(insn.dst, insn.off)
    if (insn.opcode & 0xE0) != Mode.ATOMIC:
        return f"*({ctype} *)({addr}) = r{insn.src}"
    wide = size == Size.DW
    src = _reg(insn.src, wide)
    op = insn.imm
    if op == AtomicOp.XCHG:
        return f"{src} = xchg{'' if wide else '32'}_{'64' if wide else '32'}({addr}, {src})"
    if op == AtomicOp.CMPXCHG:
        r0 = _reg(0, wide)
        return f"{r0} = cmpxchg{'' if wide else '32'}_{'64' if wide else '32'}({addr}, {r0}, {src})"
    if op & ATOMIC_FETCH:
        name = ATOMIC_NAMES[op & ~ATOMIC_FETCH]
        return f"{src} = atomic_fetch_{name}(({ctype} *)({addr}), {src})"
    # llvm prints a 32-bit atomic add with an r register by default (its
    # pre-alu32 XADDW); the other 32-bit operations exist only with w registers.
    value = f"r{insn.src}" if op == AtomicOp.ADD else src
    return f"lock *({ctype} *)({addr}) {ATOMIC_SYMBOLS[op]}= {value}"


_FORMATTERS: dict[InsnClass, Callable[[Instruction], str]] = {
    InsnClass.ALU: _format_alu,
    InsnClass.ALU64: _format_alu,
    InsnClass.JMP: _format_jmp,
    InsnClass.JMP32: _format_jmp,
    InsnClass.LD: _format_ld,
    InsnClass.LDX: _format_ldx,
    InsnClass.ST: _format_st,
    InsnClass.STX: _format_stx,
}


def format_program(
    insns: Iterable[Instruction],
    *,
    start_pc: int = 0,
    labels: Labels | None = None,
    annotate: Callable[[int], Iterable[str]] | None = None,
    annotate_after: Callable[[int], Iterable[str]] | None = None,
) -> list[str]:
    """A listing of `insns`, one line per instruction, as llvm-objdump prints it.

    Each instruction line is `f"{pc:>8}:\\t{text}"`; pcs count slots from
    `start_pc`. `labels` (pc → name) adds a `<name>:` line before the
    labelled instruction and ` <name>` after jump targets. `annotate(pc)`
    and `annotate_after(pc)` return extra lines (source lines, relocation
    notes) printed as given before and after the instruction at `pc`.
    """
    lines: list[str] = []
    for rel_pc, insn in with_pcs(insns):
        pc = start_pc + rel_pc
        if labels and pc in labels:
            lines.append(f"<{labels[pc]}>:")
        if annotate:
            lines.extend(annotate(pc))
        lines.append(f"{pc:>8}:\t{format_instruction(insn, pc, labels=labels)}")
        if annotate_after:
            lines.extend(annotate_after(pc))
    return lines


def source_annotator(
    line_infos: Iterable[Any], *, linum: bool = False
) -> Callable[[int], list[str]]:
    """`annotate` for `format_program`: the C source line above the first instruction of
    each new line (BTF line info), as `; text`; with `linum` also `[file:line:column]`,
    as bpftool's `prog dump xlated linum`."""
    sources = {info.pc: info for info in line_infos}
    last: list[tuple[str, int] | None] = [None]

    def above(pc: int) -> list[str]:
        info = sources.get(pc)
        if info is None or (info.file_name, info.line_number) == last[0]:
            return []
        last[0] = (info.file_name, info.line_number)
        text = f"; {info.line.strip()}" if info.line else f"; {info.file_name}:{info.line_number}"
        if linum:
            text += f" [{info.file_name}:{info.line_number}:{info.column}]"
        return [text]

    return above


# --- bpf_conformance syntax -------------------------------------------------


def _cmem(base: int, off: int) -> str:
    if off == 0:
        return f"[%r{base}]"
    return f"[%r{base}{'+' if off > 0 else '-'}{abs(off)}]"


def format_conformance(insn: Instruction) -> str:
    """The bpf_conformance-suite text of `insn` (`add32 %r0, 1`).

    Instructions that syntax cannot express (map pseudo-loads, kfunc
    calls) come back in llvm-objdump syntax, which the assembler also reads.
    """
    name = insn.info.name
    cls = insn.cls
    if cls in (InsnClass.ALU, InsnClass.ALU64):
        return _conformance_alu(insn, name)
    if cls in (InsnClass.JMP, InsnClass.JMP32):
        return _conformance_jmp(insn, name)
    if cls == InsnClass.LDX:
        return f"{name} %r{insn.dst}, {_cmem(insn.src, insn.off)}"
    if cls == InsnClass.ST:
        return f"{name} {_cmem(insn.dst, insn.off)}, {insn.imm}"
    if cls == InsnClass.STX:
        return _conformance_stx(insn, name)
    mode = insn.opcode & 0xE0
    if mode == Mode.ABS:
        return f"{name} {insn.imm}"
    if mode == Mode.IND:
        return f"{name} %r{insn.src}, {insn.imm}"
    if insn.src == PseudoSrc.IMM64:
        return f"lddw %r{insn.dst}, {insn.imm:#x}"
    return format_instruction(insn)


def _conformance_alu(insn: Instruction, name: str) -> str:
    op = insn.opcode & 0xF0
    dst = f"%r{insn.dst}"
    if op == AluOp.END:
        return f"{name}{insn.imm} {dst}"
    if op == AluOp.NEG:
        return f"{name} {dst}"
    src = f"%r{insn.src}" if insn.opcode & Source.X else str(insn.imm)
    if op == AluOp.MOV and insn.off:
        to = "64" if insn.cls == InsnClass.ALU64 else "32"
        return f"movsx{insn.off}{to} {dst}, {src}"
    if op in (AluOp.DIV, AluOp.MOD) and insn.off == 1:
        name = "s" + name
    return f"{name} {dst}, {src}"


def _conformance_jmp(insn: Instruction, name: str) -> str:
    if insn.opcode in (JA, MAY_GOTO):
        return f"{name} {_rel(insn.off)}"
    if insn.opcode == GOTOL:
        return f"{name} {_rel(insn.imm)}"
    if insn.opcode == EXIT:
        return "exit"
    if insn.opcode == CALLX:
        return f"call %r{insn.dst}"
    if insn.opcode == CALL:
        kind = {CallSrc.HELPER: "", CallSrc.LOCAL: "local ", CallSrc.KFUNC: "runtime "}
        target = _rel(insn.imm) if insn.src == CallSrc.LOCAL else str(insn.imm)
        return f"call {kind.get(insn.src, '')}{target}"
    src = f"%r{insn.src}" if insn.opcode & Source.X else str(insn.imm)
    return f"{name} %r{insn.dst}, {src}, {_rel(insn.off)}"


def _conformance_stx(insn: Instruction, name: str) -> str:
    addr = _cmem(insn.dst, insn.off)
    if (insn.opcode & 0xE0) != Mode.ATOMIC:
        return f"{name} {addr}, %r{insn.src}"
    suffix = "" if (insn.opcode & 0x18) == Size.DW else "32"
    op = insn.imm
    if op == AtomicOp.XCHG:
        word = "xchg"
    elif op == AtomicOp.CMPXCHG:
        word = "cmpxchg"
    else:
        word = ("fetch " if op & ATOMIC_FETCH else "") + ATOMIC_NAMES[op & ~ATOMIC_FETCH]
    return f"lock {word}{suffix} {addr}, %r{insn.src}"
