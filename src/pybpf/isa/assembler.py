"""Assembler: text → `Instruction`s, in either of the two eBPF syntaxes.

Each line is read in the syntax it is written in, so the two can be mixed:

- the bpf_conformance suite's syntax (`add32 %r0, 1`, `ldxw %r0, [%r1+4]`,
  `jne %r1, 0, label`, `lock fetch add [%r10-8], %r1`), and
- llvm-objdump's syntax (`w0 += 1`, `r0 = *(u32 *)(r1 + 4)`,
  `if r1 != 0 goto <label>`), including the dialect of PREVAIL's YAML
  tests (`r1 s8= r2`, `lock *(u64 *)(r1 + 0) x= r2`, `r1 = map_fd 3`)
  and the spellings `pybpf.isa.disasm` prints.

A line holding `=` or starting with `if`, `goto`, `gotol`, `callx` or `*(` is
llvm syntax; any other line is conformance syntax (`call`, `exit` and
`may_goto` read the same in both). `#` and `;` start comments. Labels are
`name:` or `<name>:` on their own line (or before an instruction); jump
targets are labels (`name`, `<name>`) or slot offsets (`+3`, `-1`). As in the
conformance suite, the first `exit` is labelled `exit` unless a label of
that name exists. A leading `12:` (a pc, as in llvm-objdump listings) is
ignored.

Immediates are decimal or `0x` hex and are taken as 32-bit patterns:
anything from -2**31 to 2**32-1 is accepted and stored as signed 32 bits
(so `0xffffffff` and `-1` are the same immediate). `lddw` takes 64-bit
patterns. Every error is an `AsmError` naming the line.
"""

from __future__ import annotations

import re
from dataclasses import replace

from ..errors import AsmError
from .asm_operands import (
    INT_RE,
    LineError,
    Pending,
    imm32,
    imm64,
    is_reg,
    jump_to,
    off16,
    parse_int,
    parse_mem,
    parse_reg,
    regnum,
    split_operands,
)
from .disasm import (
    ALU_SYMBOLS,
    ATOMIC_NAMES,
    ATOMIC_SYMBOLS,
    JMP_SYMBOLS,
    SIGNED_ALU_SYMBOLS,
    SIZE_OF_CTYPE,
    SIZE_OF_SIGNED_CTYPE,
)
from .instruction import Instruction, check_fields
from .opcodes import ALU_NAMES as _ALU_NAMES
from .opcodes import (
    ATOMIC_FETCH,
    BSWAP,
    CALL,
    CALLX,
    EXIT,
    GOTOL,
    JA,
    LDDW,
    MAY_GOTO,
    NUM_REGS,
    OPCODES,
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
from .opcodes import JMP_NAMES as _JMP_NAMES

__all__ = ["assemble"]


# --- conformance syntax -----------------------------------------------------


def _build_conformance_names() -> dict[str, int]:
    """Mnemonic → opcode (the K form where K and X share a name)."""
    names: dict[str, int] = {}
    for opcode, info in sorted(OPCODES.items(), reverse=True):
        names[info.name] = opcode  # reverse order leaves the K (lower) opcode
    for name, opcode in list(names.items()):
        if OPCODES[opcode].cls == InsnClass.ALU64 and name in _ALU_NAMES.values():
            names[name + "64"] = opcode  # "add64" is the same as "add"
    return names


_CONFORMANCE_NAMES = _build_conformance_names()
_ALU_OPS = {name: op for op, name in _ALU_NAMES.items()}
_JMP_OPS = {name: op for op, name in _JMP_NAMES.items()}
_CMEM_RE = re.compile(r"\[(.*)\]")
_ATOMIC_BY_NAME = {name: op for op, name in ATOMIC_NAMES.items()}


def _cmem(text: str) -> tuple[int, int]:
    m = _CMEM_RE.fullmatch(text.strip())
    if not m:
        raise LineError(f"expected a memory operand [%rN+off], got '{text.strip()}'")
    return parse_mem(m.group(1))


def _conformance(mnemonic: str, rest: str) -> Pending:
    """One line of the bpf_conformance suite's syntax."""
    if mnemonic == "lock":
        return Pending(_conformance_lock(rest))
    m = re.fullmatch(r"(le|be|bswap|swap)(16|32|64)", mnemonic)
    if m:
        return Pending(_endian(m.group(1), int(m.group(2)), regnum(split_operands(rest, 1)[0])))
    m = re.fullmatch(r"movsx(8|16|32)(32|64)", mnemonic)
    if m:
        return Pending(_conformance_movsx(int(m.group(1)), m.group(2) == "64", rest))
    if mnemonic in ("call", "callx"):
        return _call(rest, conformance=True)
    signed = mnemonic in ("sdiv", "smod", "sdiv32", "smod32", "sdiv64", "smod64")
    opcode = _CONFORMANCE_NAMES.get(mnemonic[1:] if signed else mnemonic)
    if opcode is None:
        raise LineError(f"unknown instruction '{mnemonic}'")
    cls = OPCODES[opcode].cls
    if cls in (InsnClass.ALU, InsnClass.ALU64):
        return Pending(_conformance_alu(opcode, rest, off=1 if signed else 0))
    if cls in (InsnClass.JMP, InsnClass.JMP32):
        return _conformance_jmp(opcode, rest)
    return Pending(_conformance_mem(opcode, rest))


def _endian(kind: str, width: int, dst: int) -> Instruction:
    if kind in ("bswap", "swap"):
        return Instruction(BSWAP, dst, imm=width)
    src = Source.K if kind == "le" else Source.X
    return Instruction(InsnClass.ALU | AluOp.END | src, dst, imm=width)


def _conformance_movsx(width: int, wide: bool, rest: str) -> Instruction:
    dst, src = split_operands(rest, 2)
    if not is_reg(src):
        raise LineError("movsx takes a register source")
    cls = InsnClass.ALU64 if wide else InsnClass.ALU
    return Instruction(cls | AluOp.MOV | Source.X, regnum(dst), regnum(src), off=width)


def _conformance_alu(opcode: int, rest: str, off: int) -> Instruction:
    if opcode & 0xF0 == AluOp.NEG:
        return Instruction(opcode, regnum(split_operands(rest, 1)[0]))
    dst, src = split_operands(rest, 2)
    if is_reg(src):
        return Instruction(opcode | Source.X, regnum(dst), regnum(src), off=off)
    return Instruction(opcode, regnum(dst), off=off, imm=imm32(src))


def _conformance_jmp(opcode: int, rest: str) -> Pending:
    if opcode == EXIT:
        split_operands(rest, 0)
        return Pending(Instruction(EXIT))
    if opcode in (JA, MAY_GOTO, GOTOL):
        (target,) = split_operands(rest, 1)
        return jump_to(Instruction(opcode), target, "imm" if opcode == GOTOL else "off")
    dst, src, target = split_operands(rest, 3)
    if is_reg(src):
        insn = Instruction(opcode | Source.X, regnum(dst), regnum(src))
    else:
        insn = Instruction(opcode, regnum(dst), imm=imm32(src))
    return jump_to(insn, target)


def _conformance_mem(opcode: int, rest: str) -> Instruction:
    cls = OPCODES[opcode].cls
    mode = opcode & 0xE0
    if opcode == LDDW:
        dst, value = split_operands(rest, 2)
        return Instruction(LDDW, regnum(dst), imm=imm64(value))
    if cls == InsnClass.LD and mode == Mode.ABS:
        return Instruction(opcode, imm=imm32(split_operands(rest, 1)[0]))
    if cls == InsnClass.LD and mode == Mode.IND:
        src, value = split_operands(rest, 2)
        return Instruction(opcode, src=regnum(src), imm=imm32(value))
    if cls == InsnClass.LDX:
        dst, mem = split_operands(rest, 2)
        base, off = _cmem(mem)
        return Instruction(opcode, regnum(dst), base, off)
    mem, value = split_operands(rest, 2)
    base, off = _cmem(mem)
    if cls == InsnClass.ST:
        return Instruction(opcode, base, off=off, imm=imm32(value))
    if cls == InsnClass.STX and mode == Mode.MEM:
        return Instruction(opcode, base, regnum(value), off)
    raise LineError(f"'{OPCODES[opcode].name}' is written 'lock OP [%rD+off], %rS'")


def _conformance_lock(rest: str) -> Instruction:
    m = re.fullmatch(r"(fetch\s+)?([a-z]+?)(32|64)?\s+(\[.*\])\s*,\s*(\S+)", rest.strip())
    if not m:
        raise LineError(f"bad atomic instruction 'lock {rest.strip()}'")
    fetch, word, width, mem, src = m.groups()
    size = Size.W if width == "32" else Size.DW
    if word in ("xchg", "cmpxchg"):
        if fetch:
            raise LineError(f"'{word}' always fetches; write 'lock {word}'")
        op = AtomicOp.XCHG if word == "xchg" else AtomicOp.CMPXCHG
    elif word in _ATOMIC_BY_NAME:
        op = _ATOMIC_BY_NAME[word] | (ATOMIC_FETCH if fetch else 0)
    else:
        raise LineError(f"unknown atomic operation '{word}'")
    base, off = _cmem(mem)
    return Instruction(InsnClass.STX | Mode.ATOMIC | size, base, regnum(src), off, int(op))


# --- calls (both syntaxes) --------------------------------------------------


def _call(rest: str, conformance: bool = False) -> Pending:
    """`call 5`, `call helper 5`, `call local f`, `call pc+3`, `call <f>`, `call %r2`."""
    rest = rest.strip()
    if is_reg(rest):
        return Pending(Instruction(CALLX, regnum(rest)))
    m = re.fullmatch(r"(helper|local|runtime|kfunc)\s+(.+)", rest)
    if m:
        kind, arg = m.groups()
        if kind == "local":
            return jump_to(Instruction(CALL, src=CallSrc.LOCAL), arg, "imm")
        src = CallSrc.HELPER if kind == "helper" else CallSrc.KFUNC
        return Pending(Instruction(CALL, src=src, imm=imm32(arg)))
    m = re.fullmatch(r"pc\s*([-+]\s*\d+)(?:\s*<[^<>]*>)?", rest)
    if m:
        return jump_to(Instruction(CALL, src=CallSrc.LOCAL), m.group(1), "imm")
    if INT_RE.fullmatch(rest.replace(" ", "")):
        return Pending(Instruction(CALL, imm=imm32(rest)))
    # A bare name or <name> is a bpf-to-bpf call (PREVAIL writes `call <sub>`).
    return jump_to(Instruction(CALL, src=CallSrc.LOCAL), rest, "imm")


# --- llvm syntax ------------------------------------------------------------

_REG = r"%?[rw]\d+"
_VAL = r"[-+]?\s*[%\w]+"
_CTYPE = r"\*\(\s*([us]\d+)\s*\*\s*\)"
_JMP_OPS_LLVM = {sym: op for op, sym in JMP_SYMBOLS.items()}
_JMP_OPS_LLVM["&=="] = JmpOp.JSET  # PREVAIL's spelling of jset
_JMP_OP_RE = "|".join(re.escape(s) for s in sorted(_JMP_OPS_LLVM, key=len, reverse=True))
_IF_RE = re.compile(rf"if\s+({_REG})\s*({_JMP_OP_RE})\s*({_VAL})\s+goto\s+(.+)")
_ALU_OPS_LLVM = {sym: (op, 0) for op, sym in ALU_SYMBOLS.items()}
_ALU_OPS_LLVM.update({sym: (op, 1) for op, sym in SIGNED_ALU_SYMBOLS.items()})
_ASSIGN_OP_RE = "|".join(re.escape(s) for s in sorted(_ALU_OPS_LLVM, key=len, reverse=True))
_ASSIGN_RE = re.compile(rf"({_REG})\s*({_ASSIGN_OP_RE}|s8|s16|s32)?=\s*(.+)")
_STORE_RE = re.compile(rf"{_CTYPE}\s*\(([^()]*)\)\s*=\s*(.+)")
_LOCK_RE = re.compile(rf"lock\s+{_CTYPE}\s*\(([^()]*)\)\s*(\S+?)=\s*({_REG})(\s+fetch)?")
_LOAD_RE = re.compile(rf"{_CTYPE}\s*\(([^()]*)\)")
_SKB_RE = re.compile(rf"{_CTYPE}\s*skb\[([^\]]*)\]")
_FETCH_RE = re.compile(
    rf"atomic_fetch_(\w+)\(\s*\(\s*(u32|u64)\s*\*\s*\)\s*\(([^()]*)\)\s*,\s*({_REG})\s*\)"
)
_XCHG_RE = re.compile(rf"(xchg|xchg32)_(32|64)\(([^(),]*),\s*({_REG})\s*\)")
_CMPXCHG_RE = re.compile(rf"(cmpxchg|cmpxchg32)_(32|64)\(([^(),]*),\s*({_REG})\s*,\s*({_REG})\s*\)")
_LDDW_RE = re.compile(r"([-+]?\s*(?:0[xX][0-9a-fA-F]+|\d+))\s*ll")
_PSEUDO_RES: list[tuple[re.Pattern[str], PseudoSrc]] = [
    (re.compile(r"map_fd\s+(\d+)()"), PseudoSrc.MAP_FD),
    (re.compile(r"map_by_idx\(\s*(\d+)\s*\)()"), PseudoSrc.MAP_IDX),
    (re.compile(r"map_val\(\s*(\d+)\s*\)\s*\+\s*(\d+)"), PseudoSrc.MAP_VALUE),
    (re.compile(r"mva\(\s*map_by_idx\(\s*(\d+)\s*\)\s*\)\s*\+\s*(\d+)"), PseudoSrc.MAP_IDX_VALUE),
]
_ATOMIC_OPS_LLVM = {sym: op for op, sym in ATOMIC_SYMBOLS.items()}


def _llvm(line: str) -> Pending:
    """One line of llvm-objdump (or PREVAIL) syntax."""
    word = line.split(None, 1)[0]
    if word in ("goto", "gotol", "may_goto"):
        opcode = {"goto": JA, "gotol": GOTOL, "may_goto": MAY_GOTO}[word]
        return jump_to(Instruction(opcode), line[len(word) :], "imm" if opcode == GOTOL else "off")
    if word == "callx":
        return Pending(Instruction(CALLX, regnum(line[5:])))
    if word == "ld_pseudo":
        dst, src, imm = split_operands(line[9:], 3)
        pseudo = parse_int(src)
        if not 0 <= pseudo < NUM_REGS:
            raise LineError(f"bad pseudo-load kind {pseudo}")
        return Pending(Instruction(LDDW, regnum(dst), pseudo, imm=imm64(imm)))
    if word == "assume":
        raise LineError("'assume' is a PREVAIL test directive with no eBPF encoding")
    if word == "if":
        return _llvm_if(line)
    if line.startswith("lock"):
        return Pending(_llvm_lock(line))
    m = _STORE_RE.fullmatch(line)
    if m:
        return Pending(_llvm_store(*m.groups()))
    m = _ASSIGN_RE.fullmatch(line)
    if m:
        return Pending(_llvm_assign(*m.groups()))
    raise LineError(f"cannot parse '{line}'")


def _llvm_if(line: str) -> Pending:
    m = _IF_RE.fullmatch(line)
    if not m:
        raise LineError(f"bad conditional jump '{line}'")
    dst_text, sym, src_text, target = m.groups()
    dst, wide = parse_reg(dst_text)
    cls = InsnClass.JMP if wide else InsnClass.JMP32
    op = _JMP_OPS_LLVM[sym]
    if is_reg(src_text):
        insn = Instruction(cls | op | Source.X, dst, regnum(src_text))
    else:
        insn = Instruction(cls | op, dst, imm=imm32(src_text))
    return jump_to(insn, target)


def _ctype_size(ctype: str, signed_ok: bool = False) -> Size:
    if ctype in SIZE_OF_CTYPE:
        return SIZE_OF_CTYPE[ctype]
    if signed_ok and ctype in SIZE_OF_SIGNED_CTYPE:
        return SIZE_OF_SIGNED_CTYPE[ctype]
    raise LineError(f"bad access type '{ctype}'")


def _llvm_store(ctype: str, mem: str, value: str) -> Instruction:
    size = _ctype_size(ctype)
    base, off = parse_mem(mem)
    if is_reg(value):
        return Instruction(InsnClass.STX | Mode.MEM | size, base, regnum(value), off)
    return Instruction(InsnClass.ST | Mode.MEM | size, base, off=off, imm=imm32(value))


def _llvm_lock(line: str) -> Instruction:
    m = _LOCK_RE.fullmatch(line)
    if not m:
        raise LineError(f"bad atomic instruction '{line}'")
    ctype, mem, sym, src, fetch = m.groups()
    size = _ctype_size(ctype)
    if size not in (Size.W, Size.DW):
        raise LineError(f"atomic operations are 32 or 64 bits wide, not '{ctype}'")
    if sym in ("x", "cx"):  # PREVAIL's xchg and cmpxchg
        op = AtomicOp.XCHG if sym == "x" else AtomicOp.CMPXCHG
    elif sym in _ATOMIC_OPS_LLVM:
        op = _ATOMIC_OPS_LLVM[sym] | (ATOMIC_FETCH if fetch else 0)
    else:
        raise LineError(f"unknown atomic operation '{sym}='")
    base, off = parse_mem(mem)
    return Instruction(InsnClass.STX | Mode.ATOMIC | size, base, regnum(src), off, int(op))


def _llvm_assign(dst_text: str, sym: str | None, rhs: str) -> Instruction:
    dst, wide = parse_reg(dst_text)
    rhs = rhs.strip()
    cls = InsnClass.ALU64 if wide else InsnClass.ALU
    if sym in ("s8", "s16", "s32"):  # PREVAIL: r1 s8= r2 is movsx
        return _movsx(cls, dst, int(sym[1:]), rhs)
    if sym:
        op, off = _ALU_OPS_LLVM[sym]
        if is_reg(rhs):
            return Instruction(cls | op | Source.X, dst, regnum(rhs), off)
        return Instruction(cls | op, dst, off=off, imm=imm32(rhs))
    insn = _llvm_special_rhs(dst, wide, rhs)
    if insn is not None:
        return insn
    if is_reg(rhs):
        return Instruction(cls | AluOp.MOV | Source.X, dst, regnum(rhs))
    return Instruction(cls | AluOp.MOV, dst, imm=imm32(rhs))


def _movsx(cls: int, dst: int, width: int, src: str) -> Instruction:
    if not is_reg(src):
        raise LineError(f"sign-extending move takes a register, got '{src}'")
    return Instruction(cls | AluOp.MOV | Source.X, dst, regnum(src), width)


def _llvm_special_rhs(dst: int, wide: bool, rhs: str) -> Instruction | None:
    """`dst = <rhs>` forms other than a plain move, or None."""
    cls = InsnClass.ALU64 if wide else InsnClass.ALU
    m = re.fullmatch(rf"-\s*({_REG})", rhs)
    if m:
        if regnum(m.group(1)) != dst:
            raise LineError("negation must be of the destination register ('r1 = -r1')")
        return Instruction(cls | AluOp.NEG, dst)
    m = re.fullmatch(r"\(s(8|16|32)\)\s*(.+)", rhs)
    if m:
        return _movsx(cls, dst, int(m.group(1)), m.group(2))
    m = re.fullmatch(rf"(le|be|bswap|swap)(16|32|64)\s+({_REG})", rhs)
    if m:
        if regnum(m.group(3)) != dst:
            raise LineError("byte swap must be of the destination register ('r1 = be16 r1')")
        return _endian(m.group(1), int(m.group(2)), dst)
    m = _LDDW_RE.fullmatch(rhs)
    if m:
        return Instruction(LDDW, dst, imm=imm64(m.group(1)))
    if rhs.startswith("*"):
        return _llvm_load(dst, rhs)
    return _llvm_pseudo_or_atomic(dst, rhs)


def _llvm_load(dst: int, rhs: str) -> Instruction:
    m = _LOAD_RE.fullmatch(rhs)
    if m:
        ctype, mem = m.groups()
        size = _ctype_size(ctype, signed_ok=True)
        mode = Mode.MEMSX if ctype.startswith("s") else Mode.MEM
        base, off = parse_mem(mem)
        return Instruction(InsnClass.LDX | mode | size, dst, base, off)
    m = _SKB_RE.fullmatch(rhs)
    if not m:
        raise LineError(f"bad load '{rhs}'")
    size = _ctype_size(m.group(1))
    index = m.group(2).strip()
    if INT_RE.fullmatch(index.replace(" ", "")):
        return Instruction(InsnClass.LD | Mode.ABS | size, dst, imm=imm32(index))
    im = re.fullmatch(rf"({_REG})\s*(?:([-+])\s*(\w+))?", index)
    if not im:
        raise LineError(f"bad packet index '{index}'")
    value = parse_int(im.group(3)) if im.group(3) else 0
    imm = imm32(str(-value if im.group(2) == "-" else value))
    return Instruction(InsnClass.LD | Mode.IND | size, dst, regnum(im.group(1)), imm=imm)


def _llvm_pseudo_or_atomic(dst: int, rhs: str) -> Instruction | None:
    for regex, src in _PSEUDO_RES:
        m = regex.fullmatch(rhs)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2) or 0)
            if lo >= 1 << 32 or hi >= 1 << 32:
                raise LineError(f"map number or offset too large in '{rhs}'")
            return Instruction(LDDW, dst, src, imm=lo | (hi << 32))
    m = _FETCH_RE.fullmatch(rhs)
    if m:
        name, ctype, mem, src = m.groups()
        if name not in _ATOMIC_BY_NAME:
            raise LineError(f"unknown atomic operation 'atomic_fetch_{name}'")
        op = _ATOMIC_BY_NAME[name] | ATOMIC_FETCH
        return _atomic(SIZE_OF_CTYPE[ctype], mem, dst, src, op)
    m = _XCHG_RE.fullmatch(rhs)
    if m:
        size = Size.DW if m.group(2) == "64" else Size.W
        return _atomic(size, m.group(3), dst, m.group(4), AtomicOp.XCHG)
    m = _CMPXCHG_RE.fullmatch(rhs)
    if m:
        if dst != 0 or regnum(m.group(4)) != 0:
            raise LineError("cmpxchg compares with and returns into r0")
        size = Size.DW if m.group(2) == "64" else Size.W
        return _atomic(size, m.group(3), dst, m.group(5), AtomicOp.CMPXCHG)
    return None


def _atomic(size: Size, mem: str, dst: int, src: str, op: int) -> Instruction:
    """A fetching atomic: the value register is both operand and result."""
    base, off = parse_mem(mem)
    value = regnum(src)
    if op != AtomicOp.CMPXCHG and value != dst:
        raise LineError("a fetching atomic returns into its value register")
    return Instruction(InsnClass.STX | Mode.ATOMIC | size, base, value, off, op)


# --- lines, labels, resolution ----------------------------------------------

_LLVM_START = ("if ", "goto", "gotol", "callx", "*(", "lock *", "ld_pseudo", "assume")
_LABEL_RE = re.compile(r"(?:[0-9a-fA-F]{16}\s+)?(<[^<>\s]+>|[A-Za-z_.$][\w.$]*|\d+)\s*:\s*(.*)")


def _strip_comment(line: str) -> str:
    for mark in ("#", ";", "//"):
        line = line.split(mark, 1)[0]
    return " ".join(line.split())  # one space between words keeps the patterns simple


def _parse_instruction(line: str) -> Pending:
    if "=" in line or line.startswith(_LLVM_START):
        return _llvm(line)
    mnemonic, _, rest = line.partition(" ")
    return _conformance(mnemonic.lower(), rest)


def _split_label(line: str) -> tuple[str | None, str]:
    """(label or None, rest of the line); a pc such as `12:` is dropped."""
    m = _LABEL_RE.fullmatch(line)
    if not m:
        return None, line
    name, rest = m.groups()
    if name.isdigit():
        return None, rest.strip()
    return name.strip("<>"), rest.strip()


def assemble(text: str, where: str | None = None) -> list[Instruction]:
    """Assemble `text` (either syntax, see the module docstring).

    `where` names the source (a file) in error messages; every error is an
    `AsmError` with the 1-based line number.
    """
    pending: list[tuple[int, Pending]] = []
    labels: dict[str, int] = {}
    pc = 0
    for lineno, raw in enumerate(text.splitlines(), 1):
        try:
            label, rest = _split_label(_strip_comment(raw))
            if label is not None:
                if label in labels:
                    raise LineError(f"duplicate label '{label}'")
                labels[label] = pc
            if rest:
                item = _parse_instruction(rest)
                pending.append((lineno, item))
                pc += item.insn.slots
        except LineError as e:
            raise AsmError(str(e), line=lineno, where=where) from None
    _add_exit_label(pending, labels)
    return _resolve(pending, labels, where)


def _add_exit_label(pending: list[tuple[int, Pending]], labels: dict[str, int]) -> None:
    """Label the first `exit` as `exit`, as the conformance assembler does."""
    if "exit" in labels:
        return
    pc = 0
    for _, item in pending:
        if item.insn.opcode == EXIT:
            labels["exit"] = pc
            return
        pc += item.insn.slots


def _resolve(
    pending: list[tuple[int, Pending]], labels: dict[str, int], where: str | None
) -> list[Instruction]:
    out: list[Instruction] = []
    pc = 0
    for lineno, item in pending:
        insn = item.insn
        try:
            if item.label is not None:
                if item.label not in labels:
                    raise LineError(f"undefined label '{item.label}'")
                offset = labels[item.label] - (pc + 1)
                if item.field == "off":
                    insn = replace(insn, off=off16(offset, "jump offset"))
                else:
                    insn = replace(insn, imm=offset)
            problem = check_fields(insn)
            if problem:
                raise LineError(problem)
        except LineError as e:
            raise AsmError(str(e), line=lineno, where=where) from None
        out.append(insn)
        pc += insn.slots
    return out
