"""Facts the analysis proved, for the engines: operand ranges and memory regions.

The JIT keeps Linux's semantics with checks that the translated code
makes at run time: a division tests its divisor for zero (x / 0 = 0,
x % 0 = x) and, when signed, for -1; a shift by a register masks its
count; a 64-bit division works on 64 bits. Where the analysis proved that
such a check can never fire, the JIT leaves it out (`engine.jit.ops`), and
where it proved both operands of a 64-bit unsigned division fit in 32
bits, it divides in 32 bits (the same result, a cheaper instruction).

`value_ranges` gives, for the instructions where that can matter
(divisions and remainders by a register or an immediate, shifts by a
register), the unsigned 64-bit range of each register operand at that
pc: the join over every node of the pc (each calling context of an
inlined callee, each unrolled iteration of a loop), taken only where
every such node has the register as a number with both bounds finite.

`memory_regions` gives, for each load and store, whether its base
register is a stack pointer on every node of the pc (`STACK`) or never a
stack pointer (`NOT_STACK`: packet, context, map value, ...); a pc where
it may be either gets no entry. The run's stack frames are memory of
their own, so a stack access never touches the same bytes as an access
of the other kind: the JIT tells LLVM so (alias scopes), which lets it
keep stack slots in registers across packet and map stores.

Both are sound as the analysis is: the pre-invariant of a node
over-approximates every concrete state that reaches it, and a pc no
reachable node stands for gets no fact (the JIT then assumes nothing).
"""

from __future__ import annotations

from collections.abc import Mapping

from .cfg import Label, original_pc
from .domains.interval import NEG_INF, POS_INF
from .ir import Bin, BinOp, Mem, Reg
from .state import State, reg_owner, var

U64_MAX = (1 << 64) - 1

_DIVISIONS = frozenset((BinOp.UDIV, BinOp.UMOD, BinOp.SDIV, BinOp.SMOD))
_SHIFTS = frozenset((BinOp.LSH, BinOp.RSH, BinOp.ARSH))

Ranges = dict[int, dict[int, tuple[int, int]]]
"""pc → register → (lowest, highest) unsigned 64-bit value."""

STACK = "stack"
"""A memory access whose base is a stack pointer on every path."""
NOT_STACK = "not-stack"
"""A memory access whose base is never a stack pointer."""


def _operands(insn: object) -> tuple[int, ...]:
    """The registers of `insn` whose ranges the JIT can use (none for other instructions)."""
    if not isinstance(insn, Bin):
        return ()
    source = insn.v.v if isinstance(insn.v, Reg) else None
    if insn.op in _DIVISIONS:
        return (insn.dst.v,) if source is None else (insn.dst.v, source)
    if insn.op in _SHIFTS and source is not None:
        return (source,)
    return ()


def _range(state: State, reg: int) -> tuple[int, int] | None:
    if state.reg_types(reg) != {"number"}:
        return None
    bounds = state.eval(var(reg_owner(reg), "uvalue"))
    if bounds.is_bottom or bounds.lo <= NEG_INF or bounds.hi >= POS_INF:
        return None
    lo, hi = max(bounds.lo, 0), min(bounds.hi, U64_MAX)
    return (lo, hi) if lo <= hi else None


def value_ranges(cfg_insns: Mapping[Label, object], pre: Mapping[Label, State]) -> Ranges:
    """The proven operand ranges of every division, remainder and register shift, by pc."""
    found: Ranges = {}
    unknown: set[tuple[int, int]] = set()
    for label, insn in cfg_insns.items():
        regs = _operands(insn)
        state = pre.get(label)
        pc = original_pc(label)
        if not regs or pc is None or state is None or state.is_bottom():
            continue
        at_pc = found.setdefault(pc, {})
        for reg in regs:
            if (pc, reg) in unknown:
                continue
            bounds = _range(state, reg)
            if bounds is None:
                unknown.add((pc, reg))
                at_pc.pop(reg, None)
                continue
            known = at_pc.get(reg)
            at_pc[reg] = (
                bounds if known is None else (min(known[0], bounds[0]), max(known[1], bounds[1]))
            )
    return {pc: regs for pc, regs in sorted(found.items()) if regs}


def memory_regions(cfg_insns: Mapping[Label, object], pre: Mapping[Label, State]) -> dict[int, str]:
    """`STACK` or `NOT_STACK` for each load and store whose base is one on every node, by pc."""
    kinds: dict[int, set[str]] = {}
    for label, insn in cfg_insns.items():
        if not isinstance(insn, Mem):
            continue
        state = pre.get(label)
        pc = original_pc(label)
        if pc is None or state is None or state.is_bottom():
            continue
        types = state.reg_types(insn.access.basereg.v)
        if types == {"stack"}:
            kind = STACK
        elif types and "stack" not in types and "number" not in types and "uninit" not in types:
            kind = NOT_STACK
        else:
            kind = "mixed"
        kinds.setdefault(pc, set()).add(kind)
    return {
        pc: next(iter(seen))
        for pc, seen in sorted(kinds.items())
        if len(seen) == 1 and "mixed" not in seen
    }
