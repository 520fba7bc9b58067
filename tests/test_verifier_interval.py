"""Soundness and printing of the verifier's interval domain."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pybpf.verifier.domains import (
    NEG_INF,
    POS_INF,
    S32_MAX,
    S64_MAX,
    S64_MIN,
    U32_MAX,
    U64_MAX,
    Interval,
)

small = st.integers(-(1 << 70), 1 << 70)
tiny = st.integers(-300, 300)


@st.composite
def intervals(draw, values=small, allow_inf=True):
    a, b = sorted((draw(values), draw(values)))
    if allow_inf and draw(st.booleans()) and draw(st.booleans()):
        a = NEG_INF
    if allow_inf and draw(st.booleans()) and draw(st.booleans()):
        b = POS_INF
    return Interval(a, b)


@st.composite
def interval_and_member(draw, values=small, allow_inf=True):
    i = draw(intervals(values, allow_inf))
    lo = i.lo if i.lb_finite() else (i.hi if i.ub_finite() else 0) - (1 << 80)
    hi = i.hi if i.ub_finite() else max(lo, 0) + (1 << 80)
    return i, draw(st.integers(lo, hi))


def tdiv(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def ebpf_sdiv(a, b):
    return 0 if b == 0 else tdiv(a, b)


def ebpf_srem(a, b):
    return a if b == 0 else a - tdiv(a, b) * b


def u64(v):
    return v & U64_MAX


def ebpf_udiv(a, b):
    return 0 if u64(b) == 0 else u64(a) // u64(b)


def ebpf_urem(a, b):
    return u64(a) if u64(b) == 0 else u64(a) % u64(b)


BINOPS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "sdiv": ebpf_sdiv,
    "srem": ebpf_srem,
    "udiv": ebpf_udiv,
    "urem": ebpf_urem,
    "and_": lambda a, b: a & b,
    "or_": lambda a, b: a | b,
    "xor": lambda a, b: a ^ b,
}


@pytest.mark.parametrize("op", sorted(BINOPS))
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_binop_sound(op, data):
    x, a = data.draw(interval_and_member())
    y, b = data.draw(interval_and_member())
    r = getattr(x, op)(y)
    assert r.contains(BINOPS[op](a, b)), (x, y, a, b, r)


@pytest.mark.parametrize("op", sorted(BINOPS))
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_binop_sound_small(op, data):
    x, a = data.draw(interval_and_member(tiny, allow_inf=False))
    y, b = data.draw(interval_and_member(tiny, allow_inf=False))
    assert getattr(x, op)(y).contains(BINOPS[op](a, b))


SHIFTS = {
    "shl": lambda a, k: a << k,
    "ashr": lambda a, k: a >> k,
    "lshr": lambda a, k: u64(a) >> k,
}


@pytest.mark.parametrize("op", sorted(SHIFTS))
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_shift_sound(op, data):
    x, a = data.draw(interval_and_member())
    k = data.draw(st.integers(0, 63))
    k2 = data.draw(st.integers(k, 70))
    assert getattr(x, op)(Interval(k, k2)).contains(SHIFTS[op](a, k))


@given(st.integers(-(1 << 64), 1 << 64), st.integers(1, 63))
def test_shift_by_constant_precise(v, k):
    x = Interval.const(v)
    assert x.shl(Interval.const(k)).singleton() == v << k
    assert x.ashr(Interval.const(k)).singleton() == v >> k
    assert Interval(v, v + 10).shl(Interval.const(k)) == Interval(v << k, (v + 10) << k)


@settings(max_examples=300)
@given(interval_and_member())
def test_neg_sound(xa):
    x, a = xa
    assert x.neg().contains(-a)


TRUNCS = {
    "truncate_to_u64": lambda v: v & U64_MAX,
    "truncate_to_s64": lambda v: ((v + (1 << 63)) & U64_MAX) - (1 << 63),
    "truncate_to_u32": lambda v: v & U32_MAX,
    "truncate_to_s32": lambda v: ((v + (1 << 31)) & U32_MAX) - (1 << 31),
}


@pytest.mark.parametrize("op", sorted(TRUNCS))
@settings(max_examples=300)
@given(xa=interval_and_member())
def test_truncate_sound(op, xa):
    x, a = xa
    assert getattr(x, op)().contains(TRUNCS[op](a))


def test_truncate_keeps_fitting_ranges():
    assert Interval(3, 9).truncate_to_u64() == Interval(3, 9)
    assert Interval(-1, -1).truncate_to_u64() == Interval.const(U64_MAX)
    assert Interval(-3, 5).truncate_to_u64() == Interval(0, U64_MAX)
    assert Interval(U64_MAX, U64_MAX + 2).truncate_to_s64() == Interval(-1, 1)
    assert Interval(S64_MAX, S64_MAX + 1).truncate_to_s64() == Interval(S64_MIN, S64_MAX)
    assert Interval(1 << 32, (1 << 32) + 5).truncate_to_u32() == Interval(0, 5)
    assert Interval.const(S32_MAX + 1).sext32() == Interval.const(-(1 << 31))
    assert Interval.top().truncate_to_u32() == Interval(0, U32_MAX)


@settings(max_examples=300)
@given(interval_and_member(), intervals())
def test_join_upper_bound(xa, y):
    x, a = xa
    j = x.join(y)
    assert x.leq(j) and y.leq(j) and j.contains(a)


@settings(max_examples=300)
@given(intervals(), intervals(), small)
def test_meet_and_leq_consistent(x, y, v):
    m = x.meet(y)
    assert m.leq(x) and m.leq(y)
    assert m.contains(v) == (x.contains(v) and y.contains(v))
    assert x.leq(y) == (x.meet(y) == x)


@settings(max_examples=200)
@given(st.lists(small, min_size=1, max_size=30))
def test_widen_terminates_on_increasing_chain(values):
    cur = Interval.const(values[0])
    chain = Interval.const(values[0])
    changes = 0
    for v in values[1:]:
        chain = chain.join(Interval.const(v))
        nxt = cur.widen(chain)
        assert chain.leq(nxt) and cur.leq(nxt)
        changes += nxt != cur
        cur = nxt
    assert changes <= 2


def test_widen_thresholds_and_narrow():
    x = Interval(0, 0).widen(Interval(0, 1), thresholds=[-1, 100, 1000])
    assert x == Interval(0, 100)
    w = Interval(0, 0).widen(Interval(0, 1))
    assert w == Interval(0, POS_INF)
    assert w.narrow(Interval(0, 101)) == Interval(0, 101)
    assert Interval(0, 5).narrow(Interval(1, 3)) == Interval(0, 5)


def test_constructors_and_predicates():
    assert Interval.top().is_top and Interval.top().is_top()
    assert Interval.bottom().is_bottom and Interval.bottom().is_bottom()
    assert not Interval(1, 2).is_bottom
    assert Interval(3, 1) == Interval.bottom()
    assert Interval(NEG_INF - 5, POS_INF + 7) == Interval.top()
    assert Interval.const(4).singleton() == 4 and Interval(1, 2).singleton() is None
    assert Interval(0, U64_MAX).in_u64() and not Interval(-1, 0).in_u64()
    assert Interval(S64_MIN, 0).in_s64() and not Interval(0, U64_MAX).in_s64()
    assert 3 in Interval(1, 5)
    with pytest.raises(AttributeError):
        Interval(1, 2).lo = 0  # type: ignore[misc]


def test_division_by_zero_is_ebpf():
    assert Interval.const(7).sdiv(Interval.const(0)) == Interval.const(0)
    assert Interval.const(7).srem(Interval.const(0)) == Interval.const(7)
    assert Interval.const(7).udiv(Interval.const(0)) == Interval.const(0)
    assert Interval.const(7).urem(Interval.const(0)) == Interval.const(7)
    assert Interval(0, 100).udiv(Interval.const(4)) == Interval(0, 25)
    assert Interval(0, 100).urem(Interval.const(8)) == Interval(0, 7)


def test_printing():
    assert str(Interval.const(5)) == "5"
    assert str(Interval(1, 5)) == "[1, 5]"
    assert str(Interval.top()) == "[-oo, +oo]"
    assert str(Interval(4098, POS_INF)) == "[4098, +oo]"
    assert str(Interval.bottom()) == "_|_"
    assert Interval.const(5).prevail_str() == "[5, 5]"
