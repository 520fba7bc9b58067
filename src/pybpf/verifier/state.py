"""The abstract state: register and stack-cell types, numeric variables, stack bytes.

Numeric variables live in one `Zone`, named as PREVAIL prints them:
`r1.svalue`, `r1.uvalue` (the signed and unsigned 64-bit views of the
value), the pointer offsets that go with a type (`r1.packet_offset`,
`r1.stack_offset`, `r1.stack_numeric_size`, `r1.shared_region_size`, …),
`packet_size` and `meta_offset`, and the same for stack cells
(`s[504...511].svalue`). Types are in a `TypeDomain`, keyed by the same
owner names (`r1`, `s[504...511]`); stack bytes in a `StackDomain`.

Offsets of a type only mean something while the owner may have that type;
the join keeps the other side's offset where one side cannot have the type
(PREVAIL's `TypeToNumDomain` join), so a `{ctx, packet}` register keeps
both its offsets.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .domains.interval import NEG_INF, POS_INF, Interval
from .domains.stack import STACK_LO, STACK_SIZE, StackDomain, cell_name
from .domains.types import ALL, KIND_VARS, VALUE_KINDS, TypeDomain
from .domains.zone import Zone

NUM_REGS = 11
OFFSET_KINDS: tuple[str, ...] = tuple(k for ks in KIND_VARS.values() for k in ks)
ALL_KINDS: tuple[str, ...] = VALUE_KINDS + OFFSET_KINDS
TYPE_OF_KIND = {k: t for t, ks in KIND_VARS.items() for k in ks}
# What `State._fill_missing_offsets` fills, with the type each belongs to (the signed
# view only means something for numbers, as in PREVAIL).
_FILLED_KINDS = (("svalue", "number"), *((k, TYPE_OF_KIND[k]) for k in OFFSET_KINDS))
PRIMARY_OFFSET = {t: ks[0] for t, ks in KIND_VARS.items()}


def reg_owner(reg: int) -> str:
    """The owner name of a register (`r3`)."""
    return f"r{reg}"


def var(owner: str, kind: str) -> str:
    """A numeric variable name (`r3.svalue`, `s[504...511].uvalue`)."""
    return f"{owner}.{kind}"


def overflow_bounds(state: State, name: str, width: int, signed: bool) -> None:
    """Wrap a variable to `width` bits; forget it when its range crosses the wrap point."""
    iv = state.eval(name)
    if iv.is_bottom or iv.lo <= NEG_INF or iv.hi >= POS_INF or iv.hi - iv.lo + 1 >= (1 << width):
        state.zone.forget(name)
        return
    mod = 1 << width
    lo, hi = iv.lo % mod, iv.hi % mod
    if signed:
        lo, hi = _s64(lo), _s64(hi)
    if lo > hi:
        state.zone.forget(name)
        return
    if (lo, hi) != (iv.lo, iv.hi):
        state.zone.set(name, Interval(lo, hi))


def _s64(v: int) -> int:
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >> 63 else v


class State:
    """One abstract state (mutable; `copy` before sharing)."""

    __slots__ = ("zone", "types", "stack")

    def __init__(self, zone: Zone, types: TypeDomain, stack: StackDomain) -> None:
        self.zone = zone
        self.types = types
        self.stack = stack

    @classmethod
    def top(cls) -> State:
        """No knowledge at all."""
        return cls(Zone.top(), TypeDomain(), StackDomain())

    @classmethod
    def bottom(cls) -> State:
        """Unreachable."""
        return cls(Zone.bottom(), TypeDomain(), StackDomain())

    def copy(self) -> State:
        """An independent copy."""
        return State(self.zone.copy(), self.types.copy(), self.stack.copy())

    def is_bottom(self) -> bool:
        """True when no concrete state is described."""
        return bool(self.zone.is_bottom()) or self.types.is_bottom()

    def set_to_bottom(self) -> None:
        """Make this state unreachable."""
        self.zone = Zone.bottom()

    # -- owners ----------------------------------------------------------------------

    def types_of(self, owner: str) -> frozenset[str]:
        """The possible types of a register or cell."""
        return self.types.get(owner)

    def reg_types(self, reg: int) -> frozenset[str]:
        """The possible types of register `reg`."""
        return self.types.get(reg_owner(reg))

    def eval(self, name: str) -> Interval:
        """Bounds of a numeric variable."""
        return self.zone.eval(name)

    def havoc_owner(self, owner: str) -> None:
        """Forget everything about a register or cell."""
        self.types.forget(owner)
        self.zone.forget_all(var(owner, k) for k in ALL_KINDS)

    def havoc_offsets(self, owner: str) -> None:
        """Forget the pointer offsets of an owner."""
        self.zone.forget_all(var(owner, k) for k in OFFSET_KINDS)

    def set_type(self, owner: str, types: frozenset[str] | set[str]) -> None:
        """Set the types; offsets of types no longer possible are forgotten."""
        types = frozenset(types)
        self.types.set(owner, types)
        for kind in OFFSET_KINDS:
            if TYPE_OF_KIND[kind] not in types:
                self.zone.forget(var(owner, kind))
        if not types:
            self.set_to_bottom()

    def restrict_type(self, owner: str, types: frozenset[str]) -> None:
        """Assume the owner's type is in `types` (and so for owners of the same type)."""
        for member in self.types.members(owner):
            self.types.restrict(member, types)
            remaining = self.types_of(member)
            for kind in OFFSET_KINDS:
                if TYPE_OF_KIND[kind] not in remaining:
                    self.zone.forget(var(member, kind))
        if not self.types_of(owner):
            self.set_to_bottom()

    def copy_owner(self, dst: str, src: str, with_svalue: bool = True) -> None:
        """`dst := src` for the type and every numeric variable (keeping relations)."""
        if dst == src:
            return
        self.havoc_owner(dst)
        types = self.types_of(src)
        if "uninit" in types:
            return  # copying an uninitialised value gives nothing to know
        self.types.unify(dst, src)
        for kind in ALL_KINDS:
            if kind == "svalue" and not with_svalue:
                continue
            if kind in VALUE_KINDS or TYPE_OF_KIND[kind] in types:
                self.zone.assign(var(dst, kind), var(src, kind))

    def recompute_numeric_size(self, owner: str) -> None:
        """Set `stack_numeric_size` from the numeric bytes at the owner's stack offset."""
        if "stack" not in self.types_of(owner):
            return
        offs = self.zone.eval(var(owner, "stack_offset"))
        if not offs.is_finite():
            return
        n = self.stack.numeric_run(offs.lo) - (offs.hi - offs.lo)
        if n > 0:
            self.zone.set(var(owner, "stack_numeric_size"), Interval.const(n))

    def stack_changed(self, offset: int, size: int, numeric: bool) -> None:
        """Update the numeric sizes of stack pointers after bytes changed."""
        for r in range(NUM_REGS):
            owner = reg_owner(r)
            if "stack" not in self.types_of(owner):
                continue
            if not numeric:
                self.zone.forget(var(owner, "stack_numeric_size"))
            self.recompute_numeric_size(owner)

    def assign_number(self, owner: str, svalue: Interval, uvalue: Interval) -> None:
        """Make the owner a number with the given bounds."""
        self.havoc_owner(owner)
        self.types.set(owner, {"number"})
        self.zone.set(var(owner, "svalue"), svalue)
        self.zone.set(var(owner, "uvalue"), uvalue)

    # -- lattice ----------------------------------------------------------------------

    def _owners(self) -> set[str]:
        owners = {reg_owner(r) for r in range(NUM_REGS)}
        owners.update(cell_name(o, s) for o, s in self.stack.cells)
        return owners

    def _fill_missing_offsets(self, other: State) -> Zone:
        """Our zone where offsets of types we cannot have take `other`'s bounds (a
        copy when there are such; read it only)."""
        zone = None
        for owner in self._owners() | other._owners():
            missing = other.types.get(owner) - self.types.get(owner)
            if not missing:
                continue
            for kind, t in _FILLED_KINDS:
                if t in missing:
                    if zone is None:
                        zone = self.zone.copy()
                    zone.set(var(owner, kind), other.zone.eval(var(owner, kind)))
        return self.zone if zone is None else zone

    def join(self, other: State) -> State:
        """Least upper bound."""
        if self.is_bottom():
            return other.copy()
        if other.is_bottom():
            return self.copy()
        a = self._fill_missing_offsets(other)
        b = other._fill_missing_offsets(self)
        return State(a.join(b), self.types.join(other.types), self.stack.join(other.stack))

    def widen(self, other: State, thresholds: Sequence[int] = (), close: bool = True) -> State:
        """Widening (`other` is the newer state); numeric bounds stop at `thresholds`
        (sorted) on their way out, if any lies beyond them; `close` as in `Zone.widen`."""
        if self.is_bottom():
            return other.copy()
        if other.is_bottom():
            return self.copy()
        return State(
            self.zone.widen(other.zone, thresholds, close),
            self.types.join(other.types),
            self.stack.join(other.stack),
        )

    def narrow(self, other: State) -> State:
        """Narrowing (`other` is the newer, smaller state)."""
        if self.is_bottom() or other.is_bottom():
            return other.copy()
        return State(self.zone.narrow(other.zone), other.types.copy(), other.stack.copy())

    def meet(self, other: State) -> State:
        """Greatest lower bound (used for the first narrowing step)."""
        if self.is_bottom() or other.is_bottom():
            return State.bottom()
        types = self.types.copy()
        for owner, ts in other.types.types.items():
            types.restrict(owner, ts)
        stack = StackDomain(
            self.stack.num_bytes | other.stack.num_bytes,
            frozenset(self.stack.cells | other.stack.cells),
        )
        return State(self.zone.meet(other.zone), types, stack)

    def meet_limits(self, counters: list[str], relate_counters: bool = True) -> State:
        """Meet with PREVAIL's widening thresholds (32-bit values, offsets in their regions).

        PREVAIL also guesses every loop counter at most every register's value
        (`relate_counters`). In a nested loop that guess can make the inner loop's
        back edge unreachable in the outer loop's first rounds (the outer counter
        register is still 0), and the iteration settles on invariants without the
        inner counter's relation to its register; the load path leaves it out.
        """
        out = self.copy()
        z = out.zone
        for r in range(NUM_REGS - 1):
            owner = reg_owner(r)
            s, u = var(owner, "svalue"), var(owner, "uvalue")
            z.meet_interval(s, Interval(-(1 << 31), (1 << 31) - 1))
            z.meet_interval(u, Interval(0, (1 << 32) - 1))
            types = out.types_of(owner)
            if "stack" in types:
                z.meet_interval(var(owner, "stack_offset"), Interval(STACK_LO, STACK_SIZE))
            if "shared" in types:
                off = var(owner, "shared_offset")
                z.add_constraint_le(off, var(owner, "shared_region_size"), 0)
                z.meet_interval(off, Interval(0, POS_INF))
            if "packet" in types:
                z.add_constraint_le(var(owner, "packet_offset"), "packet_size", 0)
                z.meet_interval(var(owner, "packet_offset"), Interval(0, POS_INF))
            for counter in counters:
                z.meet_interval(counter, Interval(0, (1 << 31) - 1))
                if relate_counters:
                    z.add_constraint_le(counter, s, 0)
        return out

    def identical(self, other: State) -> bool:
        """The same representation (`Zone.identical`, same types and stack)."""
        return (
            self.zone.identical(other.zone)
            and self.types.types == other.types.types
            and self.types.rep == other.types.rep
            and self.stack.num_bytes == other.stack.num_bytes
            and self.stack.cells == other.stack.cells
        )

    def leq(self, other: State) -> bool:
        """Inclusion."""
        if self.is_bottom():
            return True
        if other.is_bottom():
            return False
        return (
            self.types.leq(other.types)
            and self.stack.leq(other.stack)
            and bool(self._fill_missing_offsets(other).leq(other.zone))
        )

    # -- printing ---------------------------------------------------------------------

    def strings(self) -> set[str]:
        """The invariant as PREVAIL's set of constraint strings (`{"_|_"}` if bottom)."""
        if self.is_bottom():
            return {"_|_"}
        out = self.types.strings()
        # `shared_map` (frozen_maps.py) is pybpf's bookkeeping, not one of PREVAIL's variables
        out.update(c for c in self.zone.constraints() if not _HIDDEN.search(c))
        out.update(self.stack.strings())
        return out

    def __str__(self) -> str:
        return "[" + ", ".join(sorted(self.strings())) + "]"


# pybpf's bookkeeping variables, not among PREVAIL's (frozen_maps.py, sockets).
_HIDDEN = re.compile(r"\.(shared_map|socket_full|socket_id)\b")


def top_types() -> frozenset[str]:
    """Every type (an unconstrained owner)."""
    return ALL
