"""Python source for single eBPF instructions (ALU, jumps, loads, stores).

Each function returns lines of Python (without indentation) that perform one
instruction on registers held in Python locals `r0`..`r10`, every register
an unsigned 64-bit value. 64-bit wrap is a mask; signed views use the
identity ``signed(x) = (x ^ 2**63) - 2**63``, so a signed comparison of two
u64 values is an unsigned comparison of both values xor 2**63.

Memory accesses need names the generated module binds (see
`engine.translate`): `U16`/`U32`/`U64` (struct unpack_from), `P16`/`P32`/
`P64` (pack_into), `lk` (the slow-path region lookup that raises the fault;
`ld` is its counterpart for loads, returning the value too),
the stack frame views `sb`/`sh`/`sw`/`sq` and per-site cache locals.
"""

from __future__ import annotations

from ..isa.instruction import Instruction
from ..isa.opcodes import (
    BSWAP,
    FRAME_POINTER,
    SIZE_BYTES,
    STACK_SIZE,
    AluOp,
    InsnClass,
    JmpOp,
    Mode,
    Size,
    Source,
)

M64 = (1 << 64) - 1
M32 = (1 << 32) - 1
S64 = 1 << 63
S32 = 1 << 31

CONTEXT_READER = -2
"""The bounds a load site's cache holds for a context pointer field: the
cached "view" is then the field's reader, a one-item view of its native
slot (`PointerTable.reader`): item 0 is the field's current value."""

_MASK = {8: 0xFF, 16: 0xFFFF, 32: M32, 64: M64}
_SIGN = {8: 0x80, 16: 0x8000, 32: S32, 64: S64}


def hexlit(value: int) -> str:
    """A Python literal for a non-negative constant."""
    return hex(value) if value > 9 else str(value)


def _src(insn: Instruction, wide: bool) -> tuple[str, int | None]:
    """The source operand as code, and its value when it is a constant."""
    if insn.opcode & Source.X:
        return f"r{insn.src}", None
    value = insn.imm & (M64 if wide else M32)
    return hexlit(value), value


def _sext(expr: str, bits: int, mask: int) -> str:
    sign = hexlit(_SIGN[bits])
    return f"(((({expr}) & {hexlit(_MASK[bits])}) ^ {sign}) - {sign}) & {hexlit(mask)}"


# -- ALU ---------------------------------------------------------------------


def alu(insn: Instruction) -> list[str]:
    """Lines for an ALU or ALU64 instruction (including byte swaps)."""
    return [f"r{insn.dst} = {alu_value(insn)}"]


def alu_value(insn: Instruction, dst: str | None = None) -> str:
    """The expression an ALU instruction assigns to its dst register.

    `dst` is the code for the register's value before the instruction
    (default: the register itself); `alu_fusable` says when any expression
    may stand there.
    """
    wide = (insn.opcode & 0x07) == InsnClass.ALU64
    op = insn.opcode & 0xF0
    d = f"r{insn.dst}" if dst is None else dst
    if op == AluOp.END:
        return _byteswap(insn, d)
    s, const = _src(insn, wide)
    if wide:
        return _alu64(op, insn.off, d, s, const)
    return _alu32(op, insn.off, d, s, const)


_READS_DST_ONCE = frozenset(
    {AluOp.ADD, AluOp.SUB, AluOp.MUL, AluOp.OR, AluOp.AND, AluOp.XOR}
    | {AluOp.LSH, AluOp.RSH, AluOp.ARSH, AluOp.NEG, AluOp.MOV}
)


def alu_fusable(insn: Instruction) -> bool:
    """Whether `alu_value(insn, expr)` may take any expression for the dst register's value.

    So that the translator can fold a run of ALU instructions on one
    register into a single assignment, the expression must be read at most
    once (else it would be computed twice) and the source operand must not
    be the dst register itself (it would name the register's value before
    the whole run).
    """
    op = insn.opcode & 0xF0
    if insn.opcode & Source.X and insn.src == insn.dst and op != AluOp.END:
        return False
    if op == AluOp.END:
        return not (insn.imm == 16 and (insn.opcode == BSWAP or insn.opcode & Source.X))
    if op in (AluOp.DIV, AluOp.MOD):
        # sdiv/smod take it once as an argument; unsigned ones by a constant read it once.
        return bool(insn.off) or not insn.opcode & Source.X
    return op in _READS_DST_ONCE


_MASK64 = f" & {hexlit(M64)}"

# Operations whose result depends on the dst value only modulo 2**64: they
# mask their result to at most 64 bits (or AND with a 64-bit value) after
# ring and bitwise operations only, which commute with the modulo.
_MOD64_ALU64 = frozenset({AluOp.ADD, AluOp.SUB, AluOp.MUL, AluOp.LSH, AluOp.AND, AluOp.NEG})
_MOD64_ALU32 = _MOD64_ALU64 | {AluOp.OR, AluOp.XOR, AluOp.RSH, AluOp.ARSH}


def folded_value(insn: Instruction, value: str, last: Instruction | None, operand: str) -> str:
    """What a run of ALU instructions on one register gives once `insn` is folded in.

    `value` is the run's expression so far, `last` the instruction folded
    last and `operand` the code it took for the register's value before it.
    Besides `alu_value(insn, value)`: an operation that depends on its
    operand only modulo 2**64 takes `value` without its final 64-bit mask,
    and `x << k; x >> k` (clang's zero-extension) becomes one mask.
    """
    op = insn.opcode & 0xF0
    if (
        last is not None
        and insn.opcode == InsnClass.ALU64 | AluOp.RSH | Source.K
        and last.opcode == InsnClass.ALU64 | AluOp.LSH | Source.K
        and 0 < insn.imm == last.imm < 64
    ):
        # The low 64 - k bits of the operand: they too depend on it modulo 2**64 only.
        return f"{_operand(operand.removesuffix(_MASK64))} & {hexlit((1 << (64 - insn.imm)) - 1)}"
    wide = (insn.opcode & 0x07) == InsnClass.ALU64
    if value.endswith(_MASK64) and op in (_MOD64_ALU64 if wide else _MOD64_ALU32):
        value = value.removesuffix(_MASK64)
    return alu_value(insn, _operand(value))


def _operand(value: str) -> str:
    """`value` ready to stand for an operand (parenthesized unless a name or a number)."""
    return value if value.isalnum() else f"({value})"


def _add_or_sub(op: int, d: str, s: str, const: int | None, mask: int) -> str:
    """`d + s` or `d - s` modulo `mask + 1`, a constant near the top written as a small one.

    `r2 += -4` carries 0xff...fc: `r2 - 4` is the same value modulo 2**64
    (or 2**32) and costs a small-int operation instead of a big-int one.
    """
    sym = "+" if op == AluOp.ADD else "-"
    if const is not None and const > mask >> 1:
        sym = "-" if sym == "+" else "+"
        s = hexlit(mask + 1 - const)
    return f"({d} {sym} {s}) & {hexlit(mask)}"


def unwrapped_value(insn: Instruction, operand: str, lower: int) -> str | None:
    """`operand - k` without the 64-bit mask, for `r -= k` or `r += -k` when k <= `lower`.

    `operand` is the code of the dst register's value before `insn` (a
    register name) and `lower` a lower bound of that value that the
    translator knows holds (a branch just taken or not, the frame pointer),
    so the difference cannot go below 0; None when that is not shown.
    """
    if insn.opcode not in (InsnClass.ALU64 | AluOp.ADD, InsnClass.ALU64 | AluOp.SUB):
        return None  # only the immediate forms (Source.K is 0)
    k = insn.imm if insn.opcode & 0xF0 == AluOp.SUB else -insn.imm
    if 0 < k <= lower:
        return f"{operand} - {hexlit(k)}"
    return None


def _alu64(op: int, off: int, d: str, s: str, const: int | None) -> str:
    m = hexlit(M64)
    if op in (AluOp.ADD, AluOp.SUB):
        return _add_or_sub(op, d, s, const, M64)
    if op == AluOp.MUL:
        return f"({d} * {s}) & {m}"
    if op == AluOp.DIV:
        if off:  # sdiv: truncating signed division, x/0 = 0
            return f"sdiv64({d}, {s})"
        if const is not None:
            return f"{d} // {s}" if const else "0"
        return f"{d} // {s} if {s} else 0"
    if op == AluOp.MOD:
        if off:  # smod: sign of the dividend, x%0 = x
            return f"smod64({d}, {s})"
        if const is not None:
            return f"{d} % {s}" if const else d
        return f"{d} % {s} if {s} else {d}"
    if op == AluOp.OR:
        return f"{d} | {s}"
    if op == AluOp.AND:
        return f"{d} & {s}"
    if op == AluOp.XOR:
        return f"{d} ^ {s}"
    if op in (AluOp.LSH, AluOp.RSH, AluOp.ARSH):
        count = hexlit(const & 63) if const is not None else f"({s} & 63)"
        if op == AluOp.LSH:
            return f"({d} << {count}) & {m}"
        if op == AluOp.RSH:
            return f"{d} >> {count}"
        return f"((({d} ^ {hexlit(S64)}) - {hexlit(S64)}) >> {count}) & {m}"
    if op == AluOp.NEG:
        return f"-{d} & {m}"
    if op == AluOp.MOV:
        if off in (8, 16, 32):  # movsx: sign-extend the low `off` bits
            return _sext(s, off, M64)
        return s
    raise AssertionError(f"unhandled ALU64 op 0x{op:02x}")


def _alu32(op: int, off: int, d: str, s: str, const: int | None) -> str:
    m = hexlit(M32)
    d32 = f"({d} & {m})"
    s32 = s if const is not None else f"({s} & {m})"
    if op in (AluOp.ADD, AluOp.SUB):
        return _add_or_sub(op, d, s, const, M32)
    if op in (AluOp.MUL, AluOp.OR, AluOp.AND, AluOp.XOR):
        # The low 32 bits of these results depend only on the low 32 bits of
        # the operands, so one final mask both truncates and zero-extends.
        sym = {
            AluOp.MUL: "*",
            AluOp.OR: "|",
            AluOp.AND: "&",
            AluOp.XOR: "^",
        }[op]
        return f"({d} {sym} {s}) & {m}"
    if op == AluOp.DIV:
        if off:
            return f"sdiv32({d}, {s})"
        if const is not None:
            return f"{d32} // {s}" if const else "0"
        return f"{d32} // {s32} if {s32} else 0"
    if op == AluOp.MOD:
        if off:
            return f"smod32({d}, {s})"
        if const is not None:
            return f"{d32} % {s}" if const else d32
        return f"{d32} % {s32} if {s32} else {d32}"
    if op in (AluOp.LSH, AluOp.RSH, AluOp.ARSH):
        count = hexlit(const & 31) if const is not None else f"({s} & 31)"
        if op == AluOp.LSH:
            return f"({d} << {count}) & {m}"
        if op == AluOp.RSH:
            return f"{d32} >> {count}"
        return f"((({d32} ^ {hexlit(S32)}) - {hexlit(S32)}) >> {count}) & {m}"
    if op == AluOp.NEG:
        return f"-{d} & {m}"
    if op == AluOp.MOV:
        if off in (8, 16):  # movsx to 32 bits, then zero-extended
            return _sext(s, off, M32)
        return s32 if const is None else s
    raise AssertionError(f"unhandled ALU op 0x{op:02x}")


def _byteswap(insn: Instruction, d: str) -> str:
    width = insn.imm
    mask = hexlit(_MASK[width])
    to_be = insn.opcode == BSWAP or bool(insn.opcode & Source.X)
    if not to_be:  # le on a little-endian machine only truncates
        return d if width == 64 else f"{d} & {mask}"
    if width == 16:
        return f"(({d} & 0xff) << 8) | (({d} >> 8) & 0xff)"
    nbytes = width // 8
    return f"int.from_bytes(({d} & {mask}).to_bytes({nbytes}, 'little'), 'big')"


# -- conditional jumps ----------------------------------------------------------


def condition(insn: Instruction) -> str:
    """The Python condition under which a conditional jump is taken."""
    wide = (insn.opcode & 0x07) == InsnClass.JMP
    op = insn.opcode & 0xF0
    d = f"r{insn.dst}"
    s, const = _src(insn, wide)
    if not wide:
        d = f"({d} & {hexlit(M32)})"
        if const is None:
            s = f"({s} & {hexlit(M32)})"
    if op == JmpOp.JSET:
        return f"{d} & {s}"
    if const == 0 and op in (JmpOp.JEQ, JmpOp.JNE):
        # A test of the int itself: no constant to load and compare with.
        return d if op == JmpOp.JNE else f"not {d}"
    unsigned = {
        JmpOp.JEQ: "==",
        JmpOp.JNE: "!=",
        JmpOp.JGT: ">",
        JmpOp.JGE: ">=",
        JmpOp.JLT: "<",
        JmpOp.JLE: "<=",
    }
    if op in unsigned:
        return f"{d} {unsigned[op]} {s}"
    signed = {JmpOp.JSGT: ">", JmpOp.JSGE: ">=", JmpOp.JSLT: "<", JmpOp.JSLE: "<="}
    bias = S64 if wide else S32
    left = f"({d} ^ {hexlit(bias)})"
    right = hexlit(const ^ bias) if const is not None else f"({s} ^ {hexlit(bias)})"
    return f"{left} {signed[op]} {right}"


def branch_bound(insn: Instruction, taken: bool) -> tuple[int, int] | None:
    """(register, lower bound) a 64-bit jump against a constant proves on one of its edges.

    `jne r1, 0` taken, or `jeq r1, 0` not taken, shows r1 >= 1; `jgt r, K`
    taken shows r >= K + 1, not taken nothing below; and so on for the
    unsigned comparisons. None when the edge shows no lower bound.
    """
    if insn.opcode & 0x07 != InsnClass.JMP or insn.opcode & Source.X:
        return None
    op = insn.opcode & 0xF0
    k = insn.imm & M64
    bounds = {
        (JmpOp.JNE, True): 1 if k == 0 else None,
        (JmpOp.JEQ, False): 1 if k == 0 else None,
        (JmpOp.JEQ, True): k,
        (JmpOp.JGT, True): k + 1,
        (JmpOp.JGE, True): k,
        (JmpOp.JLT, False): k,
        (JmpOp.JLE, False): k + 1,
    }
    bound = bounds.get((op, taken))
    if not bound or bound > M64:
        return None
    return insn.dst, bound


# -- loads and stores -----------------------------------------------------------


class SiteCounter:
    """Hands out numbers for per-site region caches within one function."""

    def __init__(self) -> None:
        self.count = 0

    def next(self) -> int:
        """A fresh site number."""
        self.count += 1
        return self.count - 1


_STACK_VIEWS = {1: "sb", 2: "sh", 4: "sw", 8: "sq"}
_UNPACK = {2: "U16", 4: "U32", 8: "U64"}
_PACK = {2: "P16", 4: "P32", 8: "P64"}


def stack_slot(insn: Instruction, base: int, size: int) -> int | None:
    """The byte index in the current frame of an r10-relative access, or None.

    Only accesses that lie entirely inside the frame qualify: their bounds
    were checked here, at translation time, once and for all.
    """
    if base != FRAME_POINTER:
        return None
    index = STACK_SIZE + insn.off
    if 0 <= index and index + size <= STACK_SIZE:
        return index
    return None


def _address(insn: Instruction, base: int) -> str:
    # The wrapped address, for slow paths: the fast path's unwrapped offset
    # (`_offset`) of a sum past 2**64 or below 0 lies in no site's bounds.
    if insn.off == 0:
        return f"a = r{base}"
    return f"a = (r{base} + {hexlit(insn.off & M64)}) & {hexlit(M64)}"


def _offset(insn: Instruction, base: int, site: int, rebased: bool = True) -> str:
    """The access's offset from site `site`'s cached region start, unwrapped.

    The register minus the start first: between two nearby addresses it is
    a small int, to which the instruction's offset adds without the cost of
    big-int arithmetic (the sum is the same). A `rebased` site (loads and
    stores) holds its region's start minus the instruction's offset
    (`_rebase`), so the register minus it is the offset already.
    """
    offset = f"r{base} - L{site}"
    if rebased or insn.off == 0:
        return offset
    if insn.off > 0:
        return f"{offset} + {hexlit(insn.off)}"
    return f"{offset} - {hexlit(-insn.off)}"


def _rebase(insn: Instruction, site: int) -> list[str]:
    """After a slow path refilled rebased site `site` with a region's start: subtract the
    instruction's offset from it (see `_offset`), so the fast path needs no addition."""
    if insn.off > 0:
        return [f"L{site} -= {hexlit(insn.off)}"]
    if insn.off < 0:
        return [f"L{site} += {hexlit(-insn.off)}"]
    return []


def _dirty(site: int) -> str:
    # A cacheable region (bounds >= 0) was just found: the function's
    # persistent cache (see `engine.translate`) is out of date.
    return f"    if H{site} >= 0: W = 1"


def _constant_address(insn: Instruction, base: int) -> str:
    """The address an access with a constant base register (`base`, its value) reaches."""
    return hexlit((base + insn.off) & M64)


def _constant_site(site: int, address: str, fill: str, dirty: str) -> list[str]:
    """The check of a site whose address is a constant: whether it holds a region at all.

    The site is filled only with the region of that one address, and a
    region that goes away empties every site (bounds -1, see
    `engine.translate`): a site holding a region still holds the access.
    """
    return [f"if H{site} < 0:", f"    a = {address}", f"    {fill}", f"    {dirty}"]


def _site_lookup(
    insn: Instruction,
    site: int,
    size: int,
    write: int,
    pc: int,
    slow: str = "lk",
    constant: int | None = None,
    offset: bool = True,
) -> list[str]:
    # Fast path: the region this site used last time still holds the access
    # (the offset straight from the dst register); the slow path computes
    # the wrapped address and refills the site.
    # A store's site is rebased (`_offset`); an atomic's is not, as its
    # native call takes the address as start + offset.
    args = f"a, {size}, {write}, {pc}" if slow == "lk" else f"a, {size}, {pc}"
    if constant is not None:  # the offset from a constant address: no rebasing
        address = _constant_address(insn, constant)
        fill = f"L{site}, H{site}, V{site} = {slow}({args})"
        lines = _constant_site(site, address, fill, f"if H{site} >= 0: W = 1")
        return [*lines, f"o = {address} - L{site}"] if offset else lines
    rebased = slow == "lk"
    return [
        f"o = {_offset(insn, insn.dst, site, rebased)}",
        f"if o < 0 or o > H{site}:",
        f"    {_address(insn, insn.dst)}",
        f"    L{site}, H{site}, V{site} = {slow}({args})",
        _dirty(site),
        f"    o = a - L{site}",
        *("    " + line for line in (_rebase(insn, site) if rebased else [])),
    ]


def _read(view: str, offset: str, size: int) -> str:
    if size == 1:
        return f"{view}[{offset}]"
    return f"{_UNPACK[size]}({view}, {offset})[0]"


def load(
    pc: int,
    insn: Instruction,
    sites: SiteCounter,
    context: bool = False,
    constant: int | None = None,
) -> list[str]:
    """Lines for `ldx*` and the sign-extending `ldxs*`.

    `context`: the load most likely reads the context (r1 as the program
    got it), so its site tries a context pointer's reader first.
    `constant`: the src register's value, when the translator knows it
    (a global variable's address), so the site checks only that it holds
    a region.
    """
    size = SIZE_BYTES[Size(insn.opcode & 0x18)]
    signed = (insn.opcode & 0xE0) == Mode.MEMSX
    d = f"r{insn.dst}"
    index = stack_slot(insn, insn.src, size)
    if index is not None:
        if index % size == 0:
            value = f"{_STACK_VIEWS[size]}[{index // size}]"
        else:
            value = _read("sb", hexlit(index), size)
        if signed:
            value = _sext(value, size * 8, M64)
        return [f"{d} = {value}"]
    # The slow path (`ld`) both refills the site's cache and returns the
    # value, so that a context region, which is never cached, can answer
    # with the value its field table gives (a full 64-bit packet pointer
    # for a 32-bit load of `data`).
    # A context pointer field is cached as its reader (bounds
    # CONTEXT_READER, start the field's address, rebased as any start):
    # the same address again reads item 0 of the reader, the pointer's
    # native slot as it is now.
    site = sites.next()
    value = _read(f"V{site}", "o", size)
    slow = f"L{site}, H{site}, V{site}, {d} = ld(a, {size}, {pc})"
    reader = f"{d} = V{site}[0]"
    if signed:
        value = _sext(value, size * 8, M64)
        slow += f"; {d} = {_sext(d, size * 8, M64)}"
        reader += f"; {d} = {_sext(d, size * 8, M64)}"
    # The offset comes straight from the register (no `a` on the fast
    # path); the slow path computes the wrapped address itself.
    if constant is not None:
        address = _constant_address(insn, constant)
        # Bounds -1 (a context's plain field) and -2 (a reader) are never
        # used here: the slow path reads those each time.
        return [
            *_constant_site(site, address, slow, f"if H{site} != -1: W = 1"),
            "else:",
            f"    o = {address} - L{site}",
            f"    {_assign(d, value)}",
        ]
    if context:
        # The same checks in another order: a reader (`xdp_md->data`) is
        # found with two tests instead of four.
        return [
            f"o = {_offset(insn, insn.src, site)}",
            f"if not o and H{site} == {CONTEXT_READER}:",
            f"    {reader}",
            f"elif o < 0 or o > H{site}:",
            f"    {_address(insn, insn.src)}",
            f"    {slow}",
            *("    " + line for line in _rebase(insn, site)),
            f"    if H{site} != -1: W = 1",
            "else:",
            f"    {_assign(d, value)}",
        ]
    return [
        f"o = {_offset(insn, insn.src, site)}",
        f"if o < 0 or o > H{site}:",
        f"    if o or H{site} != {CONTEXT_READER}:",
        f"        {_address(insn, insn.src)}",
        f"        {slow}",
        *("        " + line for line in _rebase(insn, site)),
        f"        if H{site} != -1: W = 1",
        "    else:",
        f"        {reader}",
        "else:",
        f"    {_assign(d, value)}",
    ]


def _assign(d: str, value: str) -> str:
    # A struct read's 1-tuple unpacks faster than it indexes.
    if value.endswith(")[0]"):
        return f"({d},) = {value.removesuffix('[0]')}"
    return f"{d} = {value}"


def store(pc: int, insn: Instruction, sites: SiteCounter, constant: int | None = None) -> list[str]:
    """Lines for `st*` (immediate) and `stx*` (register) stores (`constant`: as for `load`)."""
    size = SIZE_BYTES[Size(insn.opcode & 0x18)]
    mask = _MASK[size * 8]
    if (insn.opcode & 0x07) == InsnClass.ST:
        value = hexlit(insn.imm & mask)
    else:
        value = f"r{insn.src}" if size == 8 else f"r{insn.src} & {hexlit(mask)}"
    index = stack_slot(insn, insn.dst, size)
    if index is not None:
        if index % size == 0:
            return [f"{_STACK_VIEWS[size]}[{index // size}] = {value}"]
        return [
            f"{_PACK[size]}(sb, {hexlit(index)}, {value})" if size > 1 else f"sb[{index}] = {value}"
        ]
    site = sites.next()
    lines = _site_lookup(insn, site, size, 1, pc, constant=constant)
    if size == 1:
        return [*lines, f"V{site}[o] = {value}"]
    return [*lines, f"{_PACK[size]}(V{site}, o, {value})"]


_ATOMIC_NEW = {
    0x00: "(x + {s}) & {m}",  # add
    0x40: "x | ({s} & {m})",  # or
    0x50: "x & {s}",  # and
    0xA0: "x ^ ({s} & {m})",  # xor
    0xE0: "{s} & {m}",  # xchg (always with fetch)
}


_ATOMIC_NAMES = {0x00: "add", 0x40: "or", 0x50: "and", 0xA0: "xor", 0xE0: "xchg", 0xF1: "cmpxchg"}


def atomic_name(operation: int, size: int) -> str:
    """The module name of the native function for atomic `operation` (imm without fetch)."""
    return f"A{_ATOMIC_NAMES[operation].upper()}{size * 8}"


def atomic_names() -> dict[str, tuple[str, int]]:
    """Module name → (operation, bits) of every native atomic function (`native.calls`)."""
    return {
        atomic_name(op, size): (_ATOMIC_NAMES[op], size * 8)
        for op in _ATOMIC_NAMES
        for size in (4, 8)
    }


def atomic(
    pc: int,
    insn: Instruction,
    sites: SiteCounter,
    native: bool = False,
    constant: int | None = None,
) -> list[str]:
    """Lines for a BPF_ATOMIC instruction: a cached region, then one atomic read-modify-write.

    The site cache works as for stores (`lka` is the slow path: writable,
    never the context). With `native`, the checked address goes to the
    native function `atomic_name(op, size)` (a locked instruction: atomic
    against native code too); else the read-modify-write holds the lock
    `ALOCK`, the one all atomics of the process share, so no update is lost
    between Python threads.
    """
    size = SIZE_BYTES[Size(insn.opcode & 0x18)]
    imm = insn.imm
    src = f"r{insn.src}"
    base = imm & ~0x01
    invalid = size not in (4, 8) or (imm != 0xF1 and (base not in _ATOMIC_NEW or imm == 0xE0))
    if invalid:
        lines = [_address(insn, insn.dst)]
        # Not a valid atomic: let the runtime raise the fault it always did.
        call = f"atom(a, {size}, {imm}, {src}, r0, {pc})"
        if imm == 0xF1:
            return [*lines, f"r0 = {call}"]
        if imm & 0x01:
            return [*lines, f"{src} = {call}"]
        return [*lines, call]
    site = sites.next()
    # A native atomic at a constant address needs no offset: it takes the address.
    offset = not (native and constant is not None)
    lines = _site_lookup(insn, site, size, 1, pc, "lka", constant, offset)
    if native:
        # The checked address goes to a locked native instruction (`atomic_names`).
        name = atomic_name(0xF1 if imm == 0xF1 else base, size)
        # The checked address: the register itself when the offset is 0.
        address = f"r{insn.dst}" if insn.off == 0 else f"L{site} + o"
        if constant is not None:
            address = _constant_address(insn, constant)
        if imm == 0xF1:
            return [*lines, f"r0 = {name}({address}, r0, {src})"]
        call = f"{name}({address}, {src})"
        return [*lines, f"{src} = {call}" if imm & 0x01 else call]
    mask = hexlit(_MASK[size * 8])
    read = f"x = {_UNPACK[size]}(V{site}, o)[0]"
    if imm == 0xF1:  # cmpxchg: store when memory equals r0; r0 gets the old value
        body = [read, f"if x == (r0 & {mask}): {_PACK[size]}(V{site}, o, {src} & {mask})"]
        after = "r0 = x"
    else:
        new = _ATOMIC_NEW[base].format(s=src, m=mask)
        body = [read, f"{_PACK[size]}(V{site}, o, {new})"]
        after = f"{src} = x" if imm & 0x01 else None
    lines += ["with ALOCK:", *("    " + line for line in body)]
    if after:
        lines.append(after)
    return lines
