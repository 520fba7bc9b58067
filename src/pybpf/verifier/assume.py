"""Refining a state by a branch condition (`assume r1 < r2` and jump edges).

Numbers carry a signed and an unsigned view; a comparison constrains the
view it is about and, where the operands' ranges show both views agree
(both non-negative, or both in the upper half), the other view too. The
case analysis follows PREVAIL's `finite_domain.cpp` (`assume_*_cst_*`):
each case yields linear constraints that are then added to the zone.
Two pointers of the same region compare by their offsets.
"""

from __future__ import annotations

from .domains.interval import NEG_INF, POS_INF, Interval
from .ir import Condition, CondOp, Imm, Reg
from .state import State, reg_owner, var

S64_MIN, S64_MAX = -(1 << 63), (1 << 63) - 1
U64_MAX = (1 << 64) - 1

# A linear expression: (terms, constant). A constraint: ("le", terms, c) for
# sum(terms) <= c, ("eq", x, y) for two variables, or "true" / "false".
Lin = tuple[dict[str, int], int]

_OFFSETS = {
    "ctx": "ctx_offset",
    "packet": "packet_offset",
    "stack": "stack_offset",
    "shared": "shared_offset",
    "alloc_mem": "alloc_mem_offset",
    "socket": "socket_offset",
    "map_fd": "map_fd",
    "map_fd_programs": "map_fd_programs",
}


def _nonneg(w: int) -> Interval:
    return Interval(0, (1 << (w - 1)) - 1)


def _neg(w: int) -> Interval:
    return Interval(-(1 << (w - 1)), -1)


def _signed(w: int) -> Interval:
    return Interval(-(1 << (w - 1)), (1 << (w - 1)) - 1)


def _unsigned(w: int) -> Interval:
    return Interval(0, (1 << w) - 1)


def _uhigh(w: int) -> Interval:
    return Interval(1 << (w - 1), (1 << w) - 1)


def _le(a: Interval, b: Interval) -> bool:
    return bool(a.leq(b))


def _lin(x: str | int) -> Lin:
    return ({x: 1}, 0) if isinstance(x, str) else ({}, x)


def _cmp(a: str | int, b: str | int, strict: bool) -> tuple:
    """`a < b` (strict) or `a <= b`."""
    ta, ca = _lin(a)
    tb, cb = _lin(b)
    terms = dict(ta)
    for v, k in tb.items():
        terms[v] = terms.get(v, 0) - k
    return ("le", terms, cb - ca - (1 if strict else 0))


def _gt(a: str | int, b: str | int, strict: bool) -> tuple:
    return _cmp(b, a, strict)


def _ge_const(x: str, c: int) -> tuple:
    return ("le", {x: -1}, -c)


def _le_const(x: str, c: int) -> tuple:
    return ("le", {x: 1}, c)


def _finite(b: int) -> bool:
    return NEG_INF < b < POS_INF


class _Numbers:
    """The numeric part of one assumption, over the zone of `state`."""

    def __init__(self, state: State) -> None:
        self.state = state

    def ev(self, x: str | int) -> Interval:
        return self.state.eval(x) if isinstance(x, str) else Interval.const(x)

    # -- signed ------------------------------------------------------------------------

    def signed_intervals(self, is64: bool, ls: str, lu: str, rs: str | int):
        left, right = self.ev(ls), self.ev(rs)
        if not is64:
            if (_le(left, _nonneg(32)) and _le(right, _nonneg(32))) or (
                _le(left, _neg(32)) and _le(right, _neg(32))
            ):
                is64 = True
            else:
                left, right = left.truncate_signed(32), right.truncate_signed(32)
        w = 64 if is64 else 32
        if not left.is_top():
            pos, neg = left.meet(_nonneg(w)), left.meet(_neg(w))
        else:
            left = self.ev(lu)
            if not left.is_top():
                pos = left.meet(_nonneg(w))
                ub = left.hi
                neg = Interval(S64_MIN, _s64(ub) if _finite(ub) else -1)
            else:
                pos, neg = _nonneg(w), _neg(w)
        return left.truncate_signed(64), right.truncate_signed(64), pos, neg

    def signed(self, op: CondOp, is64: bool, ls: str, lu: str, rs, ru) -> list:
        left, right, pos, neg = self.signed_intervals(is64, ls, lu, rs)
        if op == CondOp.EQ:
            return self.eq64(ls, lu, right, rs, ru) if is64 else self.eq32(ls, lu, right)
        is_lt = op in (CondOp.SLT, CondOp.SLE)
        strict = op in (CondOp.SLT, CondOp.SGT)
        if not is_lt and (left.hi <= right.lo if strict else left.hi < right.lo):
            return ["false"]
        if is_lt and (left.lo >= right.hi if strict else left.lo > right.hi):
            return ["false"]
        if is_lt and (left.hi < right.lo if strict else left.hi <= right.lo):
            return ["true"]
        if not is_lt and (left.lo > right.hi if strict else left.lo >= right.hi):
            return ["true"]
        sv = _cmp(ls, rs, strict) if is_lt else _gt(ls, rs, strict)
        uv = _cmp(lu, ru, strict) if is_lt else _gt(lu, ru, strict)
        if is64:
            if is_lt:
                if _le(right, _neg(64)) or (
                    _le(neg.join(pos), _nonneg(64)) and _le(right, _nonneg(64))
                ):
                    return [sv, _ge_const(lu, 0), uv]
                return [sv]
            if _le(right, _nonneg(64)):
                out = [_ge_const(ls, 0), sv, ("eq", ls, lu), _ge_const(lu, 0), uv]
                lpub = pos.truncate_signed(64).hi
                if _finite(lpub):
                    out.append(_le_const(lu, lpub))
                return out
            if _le(neg.join(pos), _neg(64)) and _le(right, _neg(64)):
                return [_ge_const(lu, S64_MAX + 1), uv, sv]
            return [sv]
        lsi, rsi = self.ev(ls), self.ev(rs)
        if is_lt:
            if _le(lsi, _signed(32)) and _le(rsi, _neg(32)):
                return [_ge_const(lu, (1 << 31)), uv, sv]
            if _le(lsi, _nonneg(32)) and _le(rsi, _nonneg(32)):
                out = [_ge_const(ls, 0), sv, ("eq", ls, lu), _ge_const(lu, 0), uv]
                lpub = pos.truncate_signed(32).hi
                if _finite(lpub):
                    out.append(_le_const(lu, lpub))
                return out
            if _le(lsi, _signed(32)) and _le(rsi, _signed(32)):
                return [sv]
            return []
        if _le(lsi, _signed(32)) and _le(rsi, _nonneg(32)):
            out = [_ge_const(ls, 0), sv, ("eq", ls, lu), _ge_const(lu, 0), uv]
            lpub = pos.truncate_signed(32).hi
            if _finite(lpub):
                out.append(_le_const(lu, lpub))
            return out
        if _le(lsi, _neg(32)) and _le(rsi, _neg(32)):
            return [_ge_const(lu, 1 << 31), uv, sv]
        if _le(lsi, _signed(32)) and _le(rsi, _signed(32)):
            return [sv]
        return []

    def eq64(self, ls: str, lu: str, right: Interval, rs, ru) -> list:
        out = [("eq", ls, rs), ("eq", lu, ru)]
        if _le(right, _nonneg(64)) and right.singleton() is None:
            out.append(("eq", ls, lu))
        return out

    def eq32(self, ls: str, lu: str, right: Interval) -> list:
        rn = right.singleton()
        si = self.ev(ls)
        if rn is None or not si.is_finite():
            return []
        low = rn & 0xFFFFFFFF
        lb, ub = _s64(si.lo), _s64(si.hi)
        lb_match = (lb & ~0xFFFFFFFF) | low
        if lb_match < lb:
            if lb_match > S64_MAX - (1 << 32):
                return []
            lb_match += 1 << 32
        ub_match = (ub & ~0xFFFFFFFF) | low
        if ub_match > ub:
            if ub_match < S64_MIN + (1 << 32):
                return []
            ub_match -= 1 << 32
        out = [_ge_const(ls, lb_match), _le_const(ls, ub_match)]
        if lb_match & U64_MAX <= ub_match & U64_MAX:
            out += [_ge_const(lu, lb_match & U64_MAX), _le_const(lu, ub_match & U64_MAX)]
        return out

    # -- unsigned ----------------------------------------------------------------------

    def unsigned_intervals(self, is64: bool, ls: str, lu: str, ru):
        left, right = self.ev(lu), self.ev(ru)
        if not is64:
            if (_le(left, _nonneg(32)) and _le(right, _nonneg(32))) or (
                _le(left, _uhigh(32)) and _le(right, _uhigh(32))
            ):
                is64 = True
            else:
                left, right = left.truncate_unsigned(32), right.truncate_unsigned(32)
        w = 64 if is64 else 32
        if not left.is_top():
            low, high = left.meet(_nonneg(w)), left.meet(_uhigh(w))
        else:
            left = self.ev(ls)
            if not left.is_top():
                low = Interval(0, left.hi).truncate_unsigned(64)
                high = Interval(left.lo, -1).truncate_unsigned(64)
            else:
                low, high = _nonneg(w), _uhigh(w)
        return left.truncate_unsigned(64), right.truncate_unsigned(64), low, high

    def unsigned(self, op: CondOp, is64: bool, ls: str, lu: str, rs, ru) -> list:
        left, right, low, high = self.unsigned_intervals(is64, ls, lu, ru)
        if op == CondOp.NE:
            rn = right.singleton()
            if rn is None:
                return []
            if rn == left.truncate_unsigned(64 if is64 else 32).lo:
                op, right = CondOp.GT, Interval.const(left.lo)
            elif rn == left.hi:
                op, right = CondOp.LT, Interval.const(left.hi)
            else:
                return []
            if isinstance(ru, int):
                ru = right.lo
        is_lt = op in (CondOp.LT, CondOp.LE)
        strict = op in (CondOp.LT, CondOp.GT)
        llb, lub, rlb, rub = left.lo, left.hi, right.lo, right.hi
        dead = (
            (llb >= rub if strict else llb > rub)
            if is_lt
            else (lub <= rlb if strict else lub < rlb)
        )
        if dead:
            return ["false"]
        uv = _cmp(lu, ru, strict) if is_lt else _gt(lu, ru, strict)
        sv = _cmp(ls, rs, strict) if is_lt else _gt(ls, rs, strict)
        if is_lt and (lub < rlb if strict else lub <= rlb):
            return [uv] if is64 else []
        if not is_lt and (llb > rub if strict else llb >= rub):
            return [uv] if is64 else []
        if is64:
            return (
                self.unsigned64_lt(strict, ls, lu, low, high, rs, ru, right, uv, sv)
                if is_lt
                else (self.unsigned64_gt(strict, ls, lu, low, high, right, uv, sv))
            )
        lui, rui, lsi, rsi = self.ev(lu), self.ev(ru), self.ev(ls), self.ev(rs)
        if is_lt:
            if _le(lui, _nonneg(32)) and _le(rui, _nonneg(32)):
                return [_ge_const(lu, 0), uv, sv]
            if _le(lsi, _neg(32)) and _le(rsi, _neg(32)):
                return [_ge_const(lu, 0), uv, sv]
            if _le(lui, _unsigned(32)) and _le(rui, _unsigned(32)):
                return [_ge_const(lu, 0), uv]
            return []
        if _le(lsi, _signed(32)) and _le(rsi, _neg(32)):
            return [_ge_const(lu, 0), uv, sv]
        if _le(lui, _unsigned(32)) and _le(rui, _unsigned(32)):
            return [_ge_const(lu, 0), uv]
        return []

    def unsigned64_lt(self, strict, ls, lu, low, high, rs, ru, right, uv, sv) -> list:
        rub = right.hi
        lllb = low.truncate_unsigned(64).lo
        lsub = self.ev(ls).hi
        if _le(right, _nonneg(64)) and (lllb >= rub if strict else lllb > rub):
            out = [_ge_const(lu, 0), uv]
            if _finite(lsub):
                out.append(_le_const(lu, lsub))
            return out + [_ge_const(ls, 0)]
        lhlb = high.truncate_unsigned(64).lo
        if _le(right, _uhigh(64)) and (lhlb >= rub if strict else lhlb > rub):
            out = [_ge_const(lu, 0), _cmp(lu, rub, strict)]
            if _finite(lsub):
                out.append(_le_const(lu, lsub))
            return out + [_ge_const(ls, 0)]
        if _le(right, _signed(64)):
            out = [_ge_const(lu, 0), uv]
            llub = low.truncate_unsigned(64).hi
            if _finite(llub):
                out.append(_le_const(lu, llub))
            return out + [_ge_const(ls, 0), sv]
        if low.is_bottom and _le(right, _uhigh(64)):
            return [_ge_const(lu, 0), uv, sv]
        if low.join(high) == _unsigned(64):
            return [uv]
        return [_ge_const(lu, 0), uv]

    def unsigned64_gt(self, strict, ls, lu, low, high, right, uv, sv) -> list:
        rlb = right.lo
        llub = low.truncate_unsigned(64).hi
        lhlb = high.truncate_unsigned(64).lo
        if _le(right, _nonneg(64)) and (llub <= rlb if strict else llub < rlb):
            out = [uv]
            if _finite(lhlb):
                out.append(_ge_const(lu, lhlb))
                if lhlb == U64_MAX:
                    out.append(_le_const(lu, lhlb))
            return out + [_le_const(ls, -1)]
        if _le(right, _uhigh(64)):
            return [_ge_const(lu, 0), uv, sv]
        if _le(low.join(high), _nonneg(64)) and _le(right, _nonneg(64)):
            return [_ge_const(lu, 0), uv, sv]
        return [_ge_const(lu, 0), uv]

    # -- registers -------------------------------------------------------------------------

    def reg(self, op: CondOp, is64: bool, ls, lu, rs, ru) -> list:
        if is64:
            if op == CondOp.EQ:
                si = self.ev(rs)
                out = [("eq", ls, rs), ("eq", lu, ru)]
                if si.singleton() is None and _le(si, _nonneg(64)):
                    out.append(("eq", ls, lu))
                return out
            if op == CondOp.NE:
                return [("ne", ls, rs)]
            if op in (CondOp.SGE, CondOp.SLE, CondOp.SGT, CondOp.SLT):
                strict = op in (CondOp.SGT, CondOp.SLT)
                lt = op in (CondOp.SLE, CondOp.SLT)
                return [_cmp(ls, rs, strict) if lt else _gt(ls, rs, strict)]
        if op in (CondOp.SET, CondOp.NSET):
            return self.bits(op, is64, lu, ru)
        if op in (CondOp.EQ, CondOp.SGE, CondOp.SLE, CondOp.SGT, CondOp.SLT):
            return self.signed(op, is64, ls, lu, rs, ru)
        return self.unsigned(op, is64, ls, lu, rs, ru)

    def bits(self, op: CondOp, is64: bool, lu: str, ru) -> list:
        d, s = self.ev(lu).singleton(), self.ev(ru).singleton()
        if d is None or s is None:
            return []
        s &= U64_MAX if is64 else 0xFFFFFFFF
        result = (d & U64_MAX & s) != 0
        return ["true" if result == (op == CondOp.SET) else "false"]

    def imm(self, op: CondOp, is64: bool, ls: str, lu: str, k: int) -> list:
        if op in (CondOp.EQ, CondOp.SGE, CondOp.SLE, CondOp.SGT, CondOp.SLT):
            return self.signed(op, is64, ls, lu, k, k & U64_MAX)
        if op in (CondOp.SET, CondOp.NSET):
            return self.bits(op, is64, lu, k)
        return self.unsigned(op, is64, ls, lu, k, k & U64_MAX)

    def apply(self, constraints: list) -> None:
        zone = self.state.zone
        for c in constraints:
            if c == "true":
                continue
            if c == "false":
                self.state.set_to_bottom()
                return
            kind = c[0]
            if kind == "le":
                zone.add_linear_le(c[1], c[2])
            elif kind == "eq":
                _, a, b = c
                if isinstance(b, int):
                    zone.meet_interval(a, Interval.const(b))
                else:
                    zone.assume_eq(a, b)
            elif kind == "ne":
                _, a, b = c
                k = self.ev(b).singleton()
                if k is not None:
                    zone.assume_ne_const(a, k)
            if zone.is_bottom():
                return


def _s64(v: int) -> int:
    v &= U64_MAX
    return v - (1 << 64) if v >> 63 else v


def assume(state: State, cond: Condition) -> None:
    """Refine `state` in place by `cond`."""
    if state.is_bottom():
        return
    lo = reg_owner(cond.left.v)
    ls, lu = var(lo, "svalue"), var(lo, "uvalue")
    nums = _Numbers(state)
    if cond.right == cond.left and cond.op not in (CondOp.SET, CondOp.NSET):
        # A register compared with itself: equal, whatever it holds.
        if cond.op in (CondOp.NE, CondOp.LT, CondOp.GT, CondOp.SLT, CondOp.SGT):
            state.set_to_bottom()
        return
    if isinstance(cond.right, Reg):
        ro = reg_owner(cond.right.v)
        ltypes, rtypes = state.types_of(lo), state.types_of(ro)
        if ltypes == rtypes and len(ltypes) == 1:
            (t,) = ltypes
            if t == "number":
                nums.apply(
                    nums.reg(cond.op, cond.is64, ls, lu, var(ro, "svalue"), var(ro, "uvalue"))
                )
            elif t in _OFFSETS:
                _offsets(nums, cond.op, var(lo, _OFFSETS[t]), var(ro, _OFFSETS[t]))
        elif rtypes == {"number"}:
            nums.apply(nums.reg(cond.op, cond.is64, ls, lu, var(ro, "svalue"), var(ro, "uvalue")))
        elif ltypes.isdisjoint(rtypes):
            state.set_to_bottom()
        return
    assert isinstance(cond.right, Imm)
    k = cond.right.v
    k = _s64(k) if cond.is64 else _s32(k)
    nums.apply(nums.imm(cond.op, cond.is64, ls, lu, k))


def _offsets(nums: _Numbers, op: CondOp, a: str, b: str) -> None:
    if op == CondOp.EQ:
        nums.apply([("eq", a, b)])
    elif op == CondOp.NE:
        nums.apply([("ne", a, b)])
    elif op in (CondOp.GE, CondOp.SGE):
        nums.apply([_gt(a, b, False)])
    elif op in (CondOp.LE, CondOp.SLE):
        nums.apply([_cmp(a, b, False)])
    elif op in (CondOp.GT, CondOp.SGT):
        nums.apply([_gt(a, b, True)])
    elif op in (CondOp.LT, CondOp.SLT):
        nums.apply([_cmp(a, b, True)])


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v
