"""Soundness, closure and PREVAIL-style printing of the verifier's zone domain."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pybpf.verifier.domains import POS_INF, Interval, Zone

VARS = ["a", "b", "c", "d", "e"]
vals = st.integers(-50, 50)
points = st.fixed_dictionaries({v: vals for v in VARS})


@st.composite
def constraint_for(draw, point):
    """A random constraint (as a callable on a zone) that ``point`` satisfies."""
    kind = draw(st.sampled_from(["le", "ub", "lb", "eq", "lin"]))
    x, y = draw(st.sampled_from(VARS)), draw(st.sampled_from(VARS))
    slack = draw(st.integers(0, 5))
    if kind == "le":
        c = point[x] - point[y] + slack
        return lambda z: z.add_constraint_le(x, y, c)
    if kind == "ub":
        c = point[x] + slack
        return lambda z: z.add_constraint_le(x, None, c)
    if kind == "lb":
        c = point[x] - slack
        return lambda z: z.add_constraint_ge_const(x, c)
    if kind == "eq":
        c = point[x] - point[y]
        return lambda z: z.assume_eq(x, y, c)
    coefs = {v: draw(st.integers(-2, 2)) for v in draw(st.sets(st.sampled_from(VARS)))}
    c = sum(a * point[v] for v, a in coefs.items()) + slack
    return lambda z: z.add_linear_le(coefs, c)


@st.composite
def zone_with_point(draw, point=None):
    if point is None:
        point = draw(points)
    z = Zone.top()
    for f in draw(st.lists(constraint_for(point), max_size=8)):
        f(z)
    return z, point


def assert_contains(z: Zone, p: dict[str, int]) -> None:
    assert not z.is_bottom
    assert z.contains_point(p)
    for x in VARS:
        assert z.eval(x).contains(p[x])
        for y in VARS:
            assert z.diff(x, y).contains(p[x] - p[y])


@settings(max_examples=300, deadline=None)
@given(zone_with_point())
def test_constraints_keep_satisfying_point(zp):
    z, p = zp
    assert_contains(z, p)


@settings(max_examples=300, deadline=None)
@given(zone_with_point(), st.data())
def test_assignments_sound(zp, data):
    z, p = zp
    x, y, w = (data.draw(st.sampled_from(VARS)) for _ in range(3))
    c = data.draw(st.integers(-10, 10))
    op = data.draw(st.sampled_from(["assign", "expr", "sub", "lin", "set"]))
    q = dict(p)
    if op == "assign":
        z.assign(x, y, c)
        q[x] = p[y] + c
    elif op == "expr":
        z.assign_expr(x, y, w, c)
        q[x] = p[y] + p[w] + c
    elif op == "sub":
        z.assign_sub(x, y, w, c)
        q[x] = p[y] - p[w] + c
    elif op == "lin":
        terms = {y: 2}
        terms[w] = terms.get(w, 0) - 1
        z.assign_linear(x, terms, c)
        q[x] = 2 * p[y] - p[w] + c
    else:
        z.set(x, Interval(p[y] - 3, p[y] + 3))
        q[x] = p[y]
    assert_contains(z, q)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_join_meet_leq(data):
    z1, p = data.draw(zone_with_point())
    z2, q = data.draw(zone_with_point())
    j = z1.join(z2)
    assert_contains(j, p)
    assert_contains(j, q)
    assert z1.leq(j) and z2.leq(j)
    # Common relations survive the join.
    for x in VARS:
        for y in VARS:
            c = max(z1.diff(x, y).hi, z2.diff(x, y).hi)
            if c < POS_INF:
                assert j.entails_le(x, y, c)
    m = z1.meet(z2)
    assert m.leq(z1) and m.leq(z2)
    if z2.contains_point(p):
        assert_contains(m, p)
    assert z1.leq(z1.copy()) and z1.meet(z1).leq(z1)


@settings(max_examples=200, deadline=None)
@given(zone_with_point(), zone_with_point())
def test_widen_is_upper_bound(zp1, zp2):
    (z1, p), (z2, q) = zp1, zp2
    w = z1.widen(z2)
    assert z1.leq(w)
    assert_contains(w, p)
    j = z1.join(z2)
    w2 = z1.widen(j)
    assert_contains(w2, q)


@settings(max_examples=200, deadline=None)
@given(zone_with_point(), zone_with_point())
def test_unclosed_widen_is_upper_bound_of_kept_constraints(zp1, zp2):
    (z1, p), (z2, q) = zp1, zp2
    w = z1.widen(z2, close=False)
    assert z1.leq(w) and w.leq(z1.widen(z2, close=False))
    assert_contains(w, p)
    assert_contains(z1.widen(z1.join(z2), close=False), q)


def test_closing_a_widening_brings_a_dropped_bound_back():
    # x grew, so its bound is dropped; x <= z and z <= 10 still hold on both sides.
    # Closed, the widening derives x <= 10 again (what can keep a chain of such
    # widenings going: the next bound that grows is derived anew); unclosed, x
    # stays unbounded and the chain only loses constraints.
    old = Zone.top().set("z", 10).add_constraint_le("x", "z", 0)
    old.add_constraint_le("x", None, 5)
    new = Zone.top().set("z", 10).add_constraint_le("x", "z", 0)
    new.add_constraint_le("x", None, 6)
    assert old.widen(new).eval("x").hi == 10
    unclosed = old.widen(new, close=False)
    assert unclosed.eval("x").hi == POS_INF and unclosed.entails_le("x", "z", 0)


@settings(max_examples=300, deadline=None)
@given(
    zone_with_point(),
    st.dictionaries(st.sampled_from(VARS), st.integers(-3, 3), max_size=4),
    st.integers(-100, 100),
)
def test_eval_linear_is_the_interval_sum_of_products(zp, terms, const):
    z, _ = zp
    expected = Interval.const(const)
    for v, a in terms.items():
        if a:
            expected = expected + z.eval(v) * a
    assert z.eval_linear(terms, const) == expected


def test_closure_entails_transitive():
    z = Zone.top()
    z.add_constraint_le("x", "y", 3)
    z.add_constraint_le("y", "z", 4)
    z.add_constraint_le("z", None, 10)
    z.add_constraint_ge_const("x", -2)
    assert z.entails_le("x", "z", 7)
    assert not z.entails_le("x", "z", 6)
    assert z.eval("x").hi == 17
    assert z.eval("z") == Interval(-9, 10)
    z.add_constraint_le("z", "x", -8)
    assert z.is_bottom


def test_loop_counter_widen_then_narrow():
    init = Zone.top().set("x", 0)

    def body(head: Zone) -> Zone:
        z = head.copy().add_constraint_le("x", None, 99)  # guard x < 100
        return z.assign("x", "x", 1)

    head = init.copy()
    for _ in range(10):
        nxt = head.widen(init.join(body(head)))
        if nxt.leq(head):
            break
        head = nxt
    assert head.eval("x") == Interval(0, POS_INF)
    for _ in range(3):
        head = head.narrow(init.join(body(head)))
    assert head.eval("x") == Interval(0, 100)
    exit_state = head.copy().add_constraint_ge_const("x", 100)
    assert exit_state.eval("x") == Interval.const(100)


def test_join_keeps_relation_of_counters_moving_together():
    a = Zone.top().set("i", 0).set("j", 0)
    b = Zone.top().set("i", 1).set("j", 1)
    j = a.join(b)
    assert j.diff("i", "j") == Interval.const(0)


def test_mutators_in_place_and_copy():
    z = Zone.top()
    c = z.copy()
    z.set("r1.svalue", 5)
    assert c.is_top and not z.is_top()
    assert z.eval("r1.svalue").singleton() == 5
    z.forget("r1.svalue")
    assert z.is_top
    z.assume_eq("a", "b", 2).rename({"a": "c"})
    assert z.diff("c", "b") == Interval.const(2) and "a" not in z.variables()


# -- printing, matching ``post`` lines of ../shared/prevail-tests/*.yaml ----------------


def test_print_singletons_have_no_relation():
    # add.yaml: "add immediate to large singleton number"
    z = Zone.top().set("r0.svalue", 2147483647).set("r0.uvalue", 2147483647)
    z.assign("r0.svalue", "r0.svalue", 2)
    z.assign("r0.uvalue", "r0.svalue")
    assert z.constraints() == ["r0.svalue=2147483649", "r0.uvalue=2147483649"]


def test_print_equal_variables():
    # add.yaml: "add immediate to large number range"
    z = Zone.top().set("r0.svalue", Interval(2147483645, 2147483647))
    z.assign("r0.uvalue", "r0.svalue")
    z.assign("r0.svalue", "r0.svalue", 4)
    z.assign("r0.uvalue", "r0.svalue")
    assert z.constraints() == ["r0.svalue=[2147483649, 2147483651]", "r0.uvalue=r0.svalue"]


def test_print_offset_relation_and_intervals():
    z = Zone.top().set("r1.svalue", Interval(4098, 2147418112))
    z.assign("r3.svalue", "r1.svalue", 4)
    assert set(z.constraints()) == {
        "r1.svalue=[4098, 2147418112]",
        "r3.svalue=[4102, 2147418116]",
        "r3.svalue=r1.svalue+4",
    }


def test_print_difference_and_min_only():
    z = Zone.top().set("packet_size", Interval(0, 65535)).set("r3.packet_offset", Interval(0, 8))
    z.add_constraint_le("packet_size", "r3.packet_offset", -1)
    out = z.constraints()
    assert "packet_size-r3.packet_offset<=-1" in out
    assert "packet_size=0" in out  # one-sided: only the lower bound is printed
    assert "r3.packet_offset=[1, 8]" in out


def test_print_unbounded_and_equal_to_min_only():
    z = Zone.top().set("r1.uvalue", Interval(1, POS_INF))
    assert z.constraints() == ["r1.uvalue=[1, +oo]"]
    z = Zone.top().set("packet_size", Interval(20, POS_INF))
    z.assign("r2.packet_offset", "packet_size")
    assert "r2.packet_offset=packet_size" in z.constraints()
    assert Zone.bottom().constraints() == ["_|_"]
    assert Zone.top().constraints() == []


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_join_edges_are_the_looser_of_both_sides(data):
    # The join's relation between two related variables is the looser of the two
    # sides' tightest bounds (an edge, or the difference of the bounds).
    z1, _ = data.draw(zone_with_point())
    z2, _ = data.draw(zone_with_point())
    j = z1.join(z2)
    for zone in (z1, z2):
        for s in VARS:
            for d in VARS:
                if s == d or d not in zone._succ.get(s, {}):
                    continue
                w = max(z1._edge(s, d), z2._edge(s, d))
                if w < POS_INF:
                    assert j._succ[s][d] == w
                else:
                    assert d not in j._succ.get(s, {})


def test_identical_is_the_representation() -> None:
    z = Zone.top()
    z.set("a", Interval(0, 5)).add_constraint_le("b", "a", 3)
    assert z.identical(z.copy())
    other = z.copy()
    other.set("c", Interval(1, 1))
    assert not z.identical(other) and not other.identical(z)
    # the same states, another representation: `b - a <= 3` made redundant by bounds
    tight, loose = Zone.top(), Zone.top()
    tight.set("a", Interval(0, 0)).set("b", Interval(0, 0))
    loose.set("a", Interval(0, 0)).set("b", Interval(0, 0))
    loose._set_edge_raw("a", "b", 3)
    assert tight == loose and not tight.identical(loose)
    assert Zone.bottom().identical(Zone.bottom()) and not Zone.bottom().identical(tight)
