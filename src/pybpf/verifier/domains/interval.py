"""Intervals over mathematical integers with -oo/+oo bounds (PREVAIL's crab/interval).

An :class:`Interval` holds Python ints. Infinity is represented by two sentinel ints,
:data:`NEG_INF` and :data:`POS_INF`, far outside any 64-bit value, so bounds compare with
ordinary ``<``/``<=``. Arithmetic is over unbounded integers: wrap-around is not modelled
here but by the transfer functions, which call :meth:`Interval.truncate_to_u64` and friends.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: Sentinel bounds. Any bound at or beyond ``±_INF_EDGE`` is normalised to these.
POS_INF: int = 1 << 256
NEG_INF: int = -POS_INF
_INF_EDGE = 1 << 255

U8_MAX = (1 << 8) - 1
U16_MAX = (1 << 16) - 1
U32_MAX = (1 << 32) - 1
U64_MAX = (1 << 64) - 1
S8_MIN, S8_MAX = -(1 << 7), (1 << 7) - 1
S16_MIN, S16_MAX = -(1 << 15), (1 << 15) - 1
S32_MIN, S32_MAX = -(1 << 31), (1 << 31) - 1
S64_MIN, S64_MAX = -(1 << 63), (1 << 63) - 1


class _Flag(int):
    """A bool-like value that may also be called, so ``x.is_bottom`` and ``x.is_bottom()``
    both work (the domain API is used by code written in parallel)."""

    def __call__(self) -> bool:
        return bool(self)

    def __repr__(self) -> str:
        return repr(bool(self))


TRUE = _Flag(1)
FALSE = _Flag(0)


def norm_bound(x: int) -> int:
    """Clamp ``x`` to the sentinels when it is at or beyond the infinity edge."""
    if x >= _INF_EDGE:
        return POS_INF
    if x <= -_INF_EDGE:
        return NEG_INF
    return x


def bound_str(x: int) -> str:
    """Print a bound as PREVAIL does: ``-oo``, ``+oo`` or the number."""
    if x >= POS_INF:
        return "+oo"
    if x <= NEG_INF:
        return "-oo"
    return str(x)


def _is_finite(x: int) -> bool:
    return NEG_INF < x < POS_INF


def _tdiv(a: int, b: int) -> int:
    """Division truncating toward zero (eBPF sdiv), b != 0, a and b finite."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


@dataclass(frozen=True, slots=True)
class Interval:
    """A closed integer interval ``[lo, hi]``; ``lo > hi`` is the (canonical) bottom."""

    lo: int
    hi: int

    def __post_init__(self) -> None:
        lo, hi = norm_bound(self.lo), norm_bound(self.hi)
        if lo > hi or lo == POS_INF or hi == NEG_INF:
            lo, hi = POS_INF, NEG_INF
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    # -- constructors ---------------------------------------------------------------

    @staticmethod
    def top() -> Interval:
        """The interval of all integers."""
        return _TOP

    @staticmethod
    def bottom() -> Interval:
        """The empty interval."""
        return _BOTTOM

    @staticmethod
    def const(c: int) -> Interval:
        """The singleton ``[c, c]``."""
        return Interval(c, c)

    @staticmethod
    def u64() -> Interval:
        """``[0, U64_MAX]``."""
        return _U64

    @staticmethod
    def s64() -> Interval:
        """``[S64_MIN, S64_MAX]``."""
        return _S64

    @staticmethod
    def u32() -> Interval:
        """``[0, U32_MAX]``."""
        return _U32

    @staticmethod
    def s32() -> Interval:
        """``[S32_MIN, S32_MAX]``."""
        return _S32

    @staticmethod
    def at_least(c: int) -> Interval:
        """``[c, +oo]``."""
        return Interval(c, POS_INF)

    @staticmethod
    def at_most(c: int) -> Interval:
        """``[-oo, c]``."""
        return Interval(NEG_INF, c)

    @staticmethod
    def hull(values: Iterable[int]) -> Interval:
        """Smallest interval containing every value (bottom when empty)."""
        vals = list(values)
        if not vals:
            return _BOTTOM
        return Interval(min(vals), max(vals))

    # -- predicates -----------------------------------------------------------------

    @property
    def is_bottom(self) -> _Flag:
        """True for the empty interval (property; also callable)."""
        return TRUE if self.lo > self.hi else FALSE

    @property
    def is_top(self) -> _Flag:
        """True for ``[-oo, +oo]`` (property; also callable)."""
        return TRUE if self.lo == NEG_INF and self.hi == POS_INF else FALSE

    def singleton(self) -> int | None:
        """The value when the interval holds exactly one, else None."""
        return self.lo if self.lo == self.hi else None

    def is_singleton(self) -> bool:
        """True when the interval holds exactly one value."""
        return self.lo == self.hi

    def lb_finite(self) -> bool:
        """True when the lower bound is a number."""
        return _is_finite(self.lo)

    def ub_finite(self) -> bool:
        """True when the upper bound is a number."""
        return _is_finite(self.hi)

    def is_finite(self) -> bool:
        """True when both bounds are numbers (and not bottom)."""
        return not self.is_bottom and _is_finite(self.lo) and _is_finite(self.hi)

    def size(self) -> int | None:
        """Number of values, or None when infinite."""
        if self.is_bottom:
            return 0
        if not self.is_finite():
            return None
        return self.hi - self.lo + 1

    def contains(self, v: int) -> bool:
        """True when ``v`` is in the interval."""
        return self.lo <= v <= self.hi

    def __contains__(self, v: int) -> bool:
        return self.contains(v)

    def within(self, lo: int, hi: int) -> bool:
        """True when the interval is a subset of ``[lo, hi]`` (bottom is)."""
        return self.is_bottom or (lo <= self.lo and self.hi <= hi)

    def in_u64(self) -> bool:
        """Every value fits an unsigned 64-bit integer."""
        return self.within(0, U64_MAX)

    def in_s64(self) -> bool:
        """Every value fits a signed 64-bit integer."""
        return self.within(S64_MIN, S64_MAX)

    def in_u32(self) -> bool:
        """Every value fits an unsigned 32-bit integer."""
        return self.within(0, U32_MAX)

    def in_s32(self) -> bool:
        """Every value fits a signed 32-bit integer."""
        return self.within(S32_MIN, S32_MAX)

    # -- lattice --------------------------------------------------------------------

    def leq(self, other: Interval) -> bool:
        """Inclusion."""
        if self.is_bottom:
            return True
        return other.lo <= self.lo and self.hi <= other.hi

    def __le__(self, other: Interval) -> bool:
        return self.leq(other)

    def join(self, other: Interval) -> Interval:
        """Smallest interval containing both."""
        if self.is_bottom:
            return other
        if other.is_bottom:
            return self
        return Interval(min(self.lo, other.lo), max(self.hi, other.hi))

    def __or__(self, other: Interval) -> Interval:
        return self.join(other)

    def meet(self, other: Interval) -> Interval:
        """Intersection."""
        return Interval(max(self.lo, other.lo), min(self.hi, other.hi))

    def __and__(self, other: Interval) -> Interval:
        return self.meet(other)

    def widen(self, other: Interval, thresholds: Iterable[int] | None = None) -> Interval:
        """Standard widening; an unstable bound jumps to the next threshold or to infinity."""
        if self.is_bottom:
            return other
        if other.is_bottom:
            return self
        lo, hi = self.lo, self.hi
        if other.lo < lo:
            lo = NEG_INF
            if thresholds is not None:
                cands = [t for t in thresholds if t <= other.lo]
                if cands:
                    lo = max(cands)
        if other.hi > hi:
            hi = POS_INF
            if thresholds is not None:
                cands = [t for t in thresholds if t >= other.hi]
                if cands:
                    hi = min(cands)
        return Interval(lo, hi)

    def narrow(self, other: Interval) -> Interval:
        """Standard narrowing: refine only infinite bounds."""
        if self.is_bottom or other.is_bottom:
            return _BOTTOM
        lo = other.lo if self.lo == NEG_INF else self.lo
        hi = other.hi if self.hi == POS_INF else self.hi
        return Interval(lo, hi)

    # -- arithmetic over unbounded integers ------------------------------------------

    def add(self, other: Interval) -> Interval:
        """``{a + b}``."""
        if self.is_bottom or other.is_bottom:
            return _BOTTOM
        return Interval(self.lo + other.lo, self.hi + other.hi)

    def __add__(self, other: Interval | int) -> Interval:
        return self.add(_coerce(other))

    def __radd__(self, other: int) -> Interval:
        return self.add(_coerce(other))

    def neg(self) -> Interval:
        """``{-a}``."""
        if self.is_bottom:
            return _BOTTOM
        return Interval(-self.hi, -self.lo)

    def __neg__(self) -> Interval:
        return self.neg()

    def sub(self, other: Interval) -> Interval:
        """``{a - b}``."""
        if self.is_bottom or other.is_bottom:
            return _BOTTOM
        return Interval(self.lo - other.hi, self.hi - other.lo)

    def __sub__(self, other: Interval | int) -> Interval:
        return self.sub(_coerce(other))

    def __rsub__(self, other: int) -> Interval:
        return _coerce(other).sub(self)

    def mul(self, other: Interval) -> Interval:
        """``{a * b}`` (0 * oo counts as 0)."""
        if self.is_bottom or other.is_bottom:
            return _BOTTOM
        prods = [_mul_bound(a, b) for a in (self.lo, self.hi) for b in (other.lo, other.hi)]
        return Interval(min(prods), max(prods))

    def __mul__(self, other: Interval | int) -> Interval:
        return self.mul(_coerce(other))

    def __rmul__(self, other: int) -> Interval:
        return self.mul(_coerce(other))

    def sdiv(self, other: Interval) -> Interval:
        """Signed division truncating toward zero; ``x / 0 == 0`` as in eBPF."""
        if self.is_bottom or other.is_bottom:
            return _BOTTOM
        res = _BOTTOM
        if other.contains(0):
            res = Interval.const(0)
        for part in (other.meet(Interval(NEG_INF, -1)), other.meet(Interval(1, POS_INF))):
            if part.is_bottom:
                continue
            res = res.join(_sdiv_nonzero(self, part))
        return res

    def udiv(self, other: Interval) -> Interval:
        """Unsigned division (both operands read as u64); ``x / 0 == 0`` as in eBPF."""
        if self.is_bottom or other.is_bottom:
            return _BOTTOM
        x, y = self.truncate_to_u64(), other.truncate_to_u64()
        res = _BOTTOM
        if y.contains(0):
            res = Interval.const(0)
        y = y.meet(Interval(1, POS_INF))
        if not y.is_bottom:
            res = res.join(Interval(x.lo // y.hi, x.hi // y.lo))
        return res

    def srem(self, other: Interval) -> Interval:
        """Signed remainder (sign of the dividend); ``x % 0 == x`` as in eBPF."""
        if self.is_bottom or other.is_bottom:
            return _BOTTOM
        res = _BOTTOM
        if other.contains(0):
            res = self
        nz = [
            p
            for p in (other.meet(Interval(NEG_INF, -1)), other.meet(Interval(1, POS_INF)))
            if not p.is_bottom
        ]
        if not nz:
            return res
        x, y = self.singleton(), other.singleton()
        if x is not None and y is not None:
            return Interval.const(x - _tdiv(x, y) * y)
        mag_max = max(max(abs(p.lo), abs(p.hi)) for p in nz)
        mag_min = min(min(abs(p.lo), abs(p.hi)) for p in nz)
        m = mag_max - 1
        if self.lo >= 0 and self.hi < mag_min:
            r = self
        elif self.hi <= 0 and -self.lo < mag_min:
            r = self
        else:
            lo = 0 if self.lo >= 0 else max(self.lo, -m)
            hi = 0 if self.hi <= 0 else min(self.hi, m)
            r = Interval(lo, hi)
        return res.join(r)

    def urem(self, other: Interval) -> Interval:
        """Unsigned remainder (both operands read as u64); ``x % 0 == x`` as in eBPF."""
        if self.is_bottom or other.is_bottom:
            return _BOTTOM
        x, y = self.truncate_to_u64(), other.truncate_to_u64()
        res = _BOTTOM
        if y.contains(0):
            res = x
        y = y.meet(Interval(1, POS_INF))
        if y.is_bottom:
            return res
        xs, ys = x.singleton(), y.singleton()
        if xs is not None and ys is not None:
            return res.join(Interval.const(xs % ys))
        if x.hi < y.lo:
            return res.join(x)
        return res.join(Interval(0, min(x.hi, y.hi - 1)))

    def and_(self, other: Interval) -> Interval:
        """Bitwise and (two's complement over unbounded integers)."""
        if self.is_bottom or other.is_bottom:
            return _BOTTOM
        a, b = self.singleton(), other.singleton()
        if a is not None and b is not None:
            return Interval.const(a & b)
        if self.lo >= 0 and other.lo >= 0:
            return Interval(0, min(self.hi, other.hi))
        if self.lo >= 0:
            return Interval(0, self.hi)
        if other.lo >= 0:
            return Interval(0, other.hi)
        return _TOP

    def or_(self, other: Interval) -> Interval:
        """Bitwise or."""
        if self.is_bottom or other.is_bottom:
            return _BOTTOM
        a, b = self.singleton(), other.singleton()
        if a is not None and b is not None:
            return Interval.const(a | b)
        if self.lo >= 0 and other.lo >= 0 and self.ub_finite() and other.ub_finite():
            return Interval(max(self.lo, other.lo), _all_ones(max(self.hi, other.hi)))
        return _TOP

    def xor(self, other: Interval) -> Interval:
        """Bitwise exclusive or."""
        if self.is_bottom or other.is_bottom:
            return _BOTTOM
        a, b = self.singleton(), other.singleton()
        if a is not None and b is not None:
            return Interval.const(a ^ b)
        if self.lo >= 0 and other.lo >= 0 and self.ub_finite() and other.ub_finite():
            return Interval(0, _all_ones(max(self.hi, other.hi)))
        return _TOP

    def shl(self, other: Interval) -> Interval:
        """``{a << k}`` over unbounded integers (negative shift counts ignored)."""
        if self.is_bottom or other.is_bottom:
            return _BOTTOM
        k = other.meet(Interval(0, POS_INF))
        if k.is_bottom:
            return _BOTTOM
        if not k.ub_finite() or k.hi > 256:
            if self.lo >= 0:
                return Interval(self.lo << k.lo if _is_finite(self.lo) else self.lo, POS_INF)
            if self.hi <= 0:
                return Interval(NEG_INF, self.hi << k.lo if _is_finite(self.hi) else self.hi)
            return _TOP
        cands = [_shl_bound(b, s) for b in (self.lo, self.hi) for s in (k.lo, k.hi)]
        return Interval(min(cands), max(cands))

    def ashr(self, other: Interval) -> Interval:
        """Arithmetic shift right: ``floor(a / 2**k)``."""
        if self.is_bottom or other.is_bottom:
            return _BOTTOM
        k = other.meet(Interval(0, POS_INF))
        if k.is_bottom:
            return _BOTTOM
        kh = min(k.hi, 512)
        cands = [_shr_bound(b, s) for b in (self.lo, self.hi) for s in (k.lo, kh)]
        return Interval(min(cands), max(cands))

    def lshr(self, other: Interval, width: int = 64) -> Interval:
        """Logical shift right of the ``width``-bit unsigned view."""
        if self.is_bottom or other.is_bottom:
            return _BOTTOM
        x = self.truncate_unsigned(width)
        return x.ashr(other)

    # -- wrap-around -------------------------------------------------------------------

    def truncate_unsigned(self, bits: int) -> Interval:
        """Sound image under ``v mod 2**bits``: exact when the interval does not cross
        a multiple of ``2**bits``, else the full unsigned range."""
        if self.is_bottom:
            return _BOTTOM
        mod = 1 << bits
        if not self.is_finite():
            return Interval(0, mod - 1)
        if self.lo >> bits == self.hi >> bits:
            return Interval(self.lo & (mod - 1), self.hi & (mod - 1))
        return Interval(0, mod - 1)

    def truncate_signed(self, bits: int) -> Interval:
        """Sound image under reinterpretation of the low ``bits`` bits as signed."""
        if self.is_bottom:
            return _BOTTOM
        half = 1 << (bits - 1)
        return (self + half).truncate_unsigned(bits) - half

    def truncate_to_u64(self) -> Interval:
        """Wrap to the unsigned 64-bit range."""
        return self.truncate_unsigned(64)

    def truncate_to_s64(self) -> Interval:
        """Wrap to the signed 64-bit range."""
        return self.truncate_signed(64)

    def truncate_to_u32(self) -> Interval:
        """Wrap to the unsigned 32-bit range (zero-extension of the low word)."""
        return self.truncate_unsigned(32)

    def truncate_to_s32(self) -> Interval:
        """Wrap to the signed 32-bit range (sign-extension of the low word)."""
        return self.truncate_signed(32)

    def zext32(self) -> Interval:
        """The low 32 bits, zero-extended."""
        return self.truncate_unsigned(32)

    def sext32(self) -> Interval:
        """The low 32 bits, sign-extended."""
        return self.truncate_signed(32)

    # -- printing ----------------------------------------------------------------------

    def __str__(self) -> str:
        """Invariant style: ``5`` for singletons, ``[1, 5]``, ``[-oo, +oo]``, ``_|_``."""
        if self.is_bottom:
            return "_|_"
        if self.lo == self.hi:
            return str(self.lo)
        return f"[{bound_str(self.lo)}, {bound_str(self.hi)}]"

    def prevail_str(self) -> str:
        """PREVAIL's ``operator<<`` for intervals: always ``[lo, hi]`` (``_|_`` if empty)."""
        if self.is_bottom:
            return "_|_"
        return f"[{bound_str(self.lo)}, {bound_str(self.hi)}]"

    def __repr__(self) -> str:
        return f"Interval({self})"


def _coerce(v: Interval | int) -> Interval:
    return v if isinstance(v, Interval) else Interval.const(v)


def _mul_bound(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return norm_bound(a * b)


def _shl_bound(b: int, s: int) -> int:
    if not _is_finite(b):
        return b
    return norm_bound(b << s)


def _shr_bound(b: int, s: int) -> int:
    if not _is_finite(b):
        return b
    return b >> s


def _all_ones(v: int) -> int:
    """Smallest ``2**n - 1`` that is >= v (v >= 0)."""
    return (1 << v.bit_length()) - 1


def _sdiv_nonzero(x: Interval, y: Interval) -> Interval:
    """x / y for y not containing 0 (truncating)."""
    cands = []
    for a in (x.lo, x.hi):
        for b in (y.lo, y.hi):
            if not _is_finite(b):
                cands.append(0)
            elif not _is_finite(a):
                cands.append(a if b > 0 else -a)
            else:
                cands.append(_tdiv(a, b))
    # Truncation is monotone in a for fixed b, and |a / b| shrinks with |b|; the
    # extremes are at the corners, but 0 is reached when x straddles 0.
    if x.lo <= 0 <= x.hi:
        cands.append(0)
    return Interval(min(cands), max(cands))


_TOP = Interval(NEG_INF, POS_INF)
_BOTTOM = Interval(POS_INF, NEG_INF)
_U64 = Interval(0, U64_MAX)
_S64 = Interval(S64_MIN, S64_MAX)
_U32 = Interval(0, U32_MAX)
_S32 = Interval(S32_MIN, S32_MAX)
