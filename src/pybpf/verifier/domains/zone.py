"""A zone (difference-bound) domain over named integer variables, after PREVAIL's split DBM.

The state is a graph: an edge ``s -> d`` of weight ``w`` means ``d - s <= w``; bounds are
kept apart (``lo``/``hi`` per variable, the edges to and from PREVAIL's zero vertex). As in
PREVAIL's *split* DBM, relations between variables are only those created by assignments
and constraints (never derived from two bounds), and the variable-to-variable edges are kept
transitively closed incrementally (O(n^2) per new edge). Bounds are closed over the edges.

Mutating methods (``set``, ``assign*``, ``add_*``, ``assume_*``, ``forget*``, ``rename``)
change the zone in place and return it; lattice operations (``join``, ``meet``, ``widen``,
``narrow``) return new zones. Use :meth:`Zone.copy` before mutating a shared zone.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence

from .interval import FALSE, NEG_INF, POS_INF, TRUE, Interval, _Flag


def is_min_only(name: str) -> bool:
    """Variables for which PREVAIL keeps (and prints) only a lower bound."""
    return (
        name.endswith(".stack_numeric_size")
        or name.endswith(".shared_region_size")
        or name == "packet_size"
    )


class Zone:
    """Difference-bound matrix over named variables (see module docstring)."""

    __slots__ = ("_bottom", "_lo", "_hi", "_succ", "_pred")

    def __init__(self) -> None:
        self._bottom = False
        self._lo: dict[str, int] = {}
        self._hi: dict[str, int] = {}
        # _succ[s][d] == w  <=>  d - s <= w ;  _pred[d][s] mirrors it.
        self._succ: dict[str, dict[str, int]] = {}
        self._pred: dict[str, dict[str, int]] = {}

    # -- construction -----------------------------------------------------------------

    @staticmethod
    def top() -> Zone:
        """No constraint at all."""
        return Zone()

    @staticmethod
    def bottom() -> Zone:
        """The empty set of states."""
        z = Zone()
        z._bottom = True
        return z

    def copy(self) -> Zone:
        """An independent copy."""
        z = Zone()
        z._bottom = self._bottom
        z._lo = dict(self._lo)
        z._hi = dict(self._hi)
        z._succ = {k: dict(v) for k, v in self._succ.items() if v}
        z._pred = {k: dict(v) for k, v in self._pred.items() if v}
        return z

    def __copy__(self) -> Zone:
        return self.copy()

    # -- predicates -------------------------------------------------------------------

    @property
    def is_bottom(self) -> _Flag:
        """True when infeasible (property; also callable)."""
        return TRUE if self._bottom else FALSE

    @property
    def is_top(self) -> _Flag:
        """True when nothing is known (property; also callable)."""
        if self._bottom:
            return FALSE
        return TRUE if not self._lo and not self._hi and not any(self._succ.values()) else FALSE

    def set_to_bottom(self) -> Zone:
        """Make the zone infeasible."""
        self._bottom = True
        self._lo.clear()
        self._hi.clear()
        self._succ.clear()
        self._pred.clear()
        return self

    def variables(self) -> set[str]:
        """Variables with a bound or a relation."""
        out = set(self._lo) | set(self._hi)
        out.update(k for k, v in self._succ.items() if v)
        out.update(k for k, v in self._pred.items() if v)
        return out

    # -- queries ----------------------------------------------------------------------

    def eval(self, var: str) -> Interval:
        """Bounds of ``var``."""
        if self._bottom:
            return Interval.bottom()
        return Interval(self._lo.get(var, NEG_INF), self._hi.get(var, POS_INF))

    def __getitem__(self, var: str) -> Interval:
        return self.eval(var)

    def _edge(self, s: str, d: str) -> int:
        """Tightest known bound of ``d - s`` (edge, or from the bounds), POS_INF if none."""
        if s == d:
            return 0
        w = self._succ.get(s, {}).get(d, POS_INF)
        lo, hi = self._lo.get(s), self._hi.get(d)
        if lo is not None and hi is not None:
            w = min(w, hi - lo)
        return w

    def diff(self, x: str, y: str) -> Interval:
        """Bounds of ``x - y``."""
        if self._bottom:
            return Interval.bottom()
        return Interval(-self._edge(x, y), self._edge(y, x))

    def entails_le(self, x: str | None, y: str | None, c: int) -> bool:
        """Whether ``x - y <= c`` holds (a None side is the constant 0)."""
        if self._bottom:
            return True
        if x is None and y is None:
            return 0 <= c
        if y is None:
            return self._hi.get(x, POS_INF) <= c  # type: ignore[arg-type]
        if x is None:
            return -self._lo.get(y, NEG_INF) <= c
        return self._edge(y, x) <= c

    def eval_linear(self, terms: Mapping[str, int], const: int = 0) -> Interval:
        """Interval of ``sum(coef * var) + const``.

        Summed on the bounds themselves, one Interval at the end (this runs for
        every assignment: the Interval sum of products made three per term)."""
        if self._bottom:
            return Interval.bottom()
        lo = hi = const
        lo_inf = hi_inf = False
        lows, highs = self._lo, self._hi
        for v, a in terms.items():
            if not a:
                continue
            low, high = lows.get(v, NEG_INF), highs.get(v, POS_INF)
            if low > high:
                return Interval.bottom()
            if a < 0:
                low, high = high, low
            if NEG_INF < low < POS_INF:
                lo += a * low
            else:
                lo_inf = True
            if NEG_INF < high < POS_INF:
                hi += a * high
            else:
                hi_inf = True
        return Interval(NEG_INF if lo_inf else lo, POS_INF if hi_inf else hi)

    def entails_linear_le(self, terms: Mapping[str, int], c: int) -> bool:
        """Whether ``sum(coef * var) <= c`` holds (difference-aware for ``x - y``)."""
        if self._bottom:
            return True
        if self.eval_linear(terms, 0).hi <= c:
            return True
        pos = [v for v, a in terms.items() if a == 1]
        neg = [v for v, a in terms.items() if a == -1]
        for p in pos:
            for n in neg:
                rest = {v: a for v, a in terms.items() if v not in (p, n)}
                if self._edge(n, p) + self.eval_linear(rest).hi <= c:
                    return True
        return False

    def contains_point(self, values: Mapping[str, int]) -> bool:
        """Whether the concrete state ``values`` (every constrained variable given) satisfies
        every stored bound and relation."""
        if self._bottom:
            return False
        for v, c in self._lo.items():
            if values[v] < c:
                return False
        for v, c in self._hi.items():
            if values[v] > c:
                return False
        for s, ds in self._succ.items():
            for d, w in ds.items():
                if values[d] - values[s] > w:
                    return False
        return True

    # -- low-level mutation (keeps closure) ---------------------------------------------

    def _set_edge_raw(self, s: str, d: str, w: int) -> None:
        self._succ.setdefault(s, {})[d] = w
        self._pred.setdefault(d, {})[s] = w

    def _del_edge_raw(self, s: str, d: str) -> None:
        self._succ.get(s, {}).pop(d, None)
        self._pred.get(d, {}).pop(s, None)

    def _tighten_hi(self, v: str, c: int) -> bool:
        """hi[v] := min(hi[v], c), propagated one hop along the (closed) edges."""
        if self._bottom or c >= POS_INF:
            return not self._bottom
        if c >= self._hi.get(v, POS_INF):
            return True
        self._hi[v] = c
        if c < self._lo.get(v, NEG_INF):
            self.set_to_bottom()
            return False
        for d, w in list(self._succ.get(v, {}).items()):
            nc = c + w
            if nc < self._hi.get(d, POS_INF):
                self._hi[d] = nc
                if nc < self._lo.get(d, NEG_INF):
                    self.set_to_bottom()
                    return False
        return True

    def _tighten_lo(self, v: str, c: int) -> bool:
        """lo[v] := max(lo[v], c), propagated one hop backwards along the edges."""
        if self._bottom or c <= NEG_INF:
            return not self._bottom
        if c <= self._lo.get(v, NEG_INF):
            return True
        self._lo[v] = c
        if c > self._hi.get(v, POS_INF):
            self.set_to_bottom()
            return False
        for p, w in list(self._pred.get(v, {}).items()):
            nc = c - w
            if nc > self._lo.get(p, NEG_INF):
                self._lo[p] = nc
                if nc > self._hi.get(p, POS_INF):
                    self.set_to_bottom()
                    return False
        return True

    def _add_edge(self, s: str, d: str, k: int) -> bool:
        """Add ``d - s <= k`` and restore closure; False (and bottom) if infeasible."""
        if self._bottom:
            return False
        if k >= POS_INF:
            return True
        if s == d:
            if k < 0:
                self.set_to_bottom()
                return False
            return True
        if self._succ.get(s, {}).get(d, POS_INF) <= k:
            return True
        srcs = [(s, 0), *self._pred.get(s, {}).items()]
        dsts = [(d, 0), *self._succ.get(d, {}).items()]
        updated: list[tuple[str, str, int]] = []
        for p, wp in srcs:
            succ_p = self._succ.get(p, {})
            for q, wq in dsts:
                nw = wp + k + wq
                if p == q:
                    if nw < 0:
                        self.set_to_bottom()
                        return False
                    continue
                if nw < succ_p.get(q, POS_INF):
                    updated.append((p, q, nw))
        for p, q, nw in updated:
            self._set_edge_raw(p, q, nw)
        for p, q, nw in updated:
            hp = self._hi.get(p)
            if hp is not None and not self._tighten_hi_only(q, hp + nw):
                return False
            lq = self._lo.get(q)
            if lq is not None and not self._tighten_lo_only(p, lq - nw):
                return False
        return True

    def _tighten_hi_only(self, v: str, c: int) -> bool:
        if c < self._hi.get(v, POS_INF):
            self._hi[v] = c
            if c < self._lo.get(v, NEG_INF):
                self.set_to_bottom()
                return False
        return True

    def _tighten_lo_only(self, v: str, c: int) -> bool:
        if c > self._lo.get(v, NEG_INF):
            self._lo[v] = c
            if c > self._hi.get(v, POS_INF):
                self.set_to_bottom()
                return False
        return True

    def _close_edges(self) -> None:
        """Full (sparse Floyd-Warshall) closure of the edges, then of the bounds."""
        if self._bottom:
            return
        for k in list(self._succ.keys() & self._pred.keys()):
            preds = list(self._pred.get(k, {}).items())
            succs = list(self._succ.get(k, {}).items())
            for p, wp in preds:
                sp = self._succ.setdefault(p, {})
                for q, wq in succs:
                    nw = wp + wq
                    if p == q:
                        if nw < 0:
                            self.set_to_bottom()
                            return
                        continue
                    if nw < sp.get(q, POS_INF):
                        self._set_edge_raw(p, q, nw)
        self._close_bounds()

    def _close_bounds(self) -> None:
        """Propagate bounds one hop over every (closed) edge."""
        for s, ds in list(self._succ.items()):
            for d, w in list(ds.items()):
                hs = self._hi.get(s)
                if hs is not None and not self._tighten_hi_only(d, hs + w):
                    return
                ld = self._lo.get(d)
                if ld is not None and not self._tighten_lo_only(s, ld - w):
                    return

    # -- mutation API -----------------------------------------------------------------

    def forget(self, var: str) -> Zone:
        """Drop everything known about ``var`` (havoc)."""
        self._lo.pop(var, None)
        self._hi.pop(var, None)
        for d in self._succ.pop(var, {}):
            self._pred.get(d, {}).pop(var, None)
        for s in self._pred.pop(var, {}):
            self._succ.get(s, {}).pop(var, None)
        return self

    havoc = forget

    def forget_all(self, variables: Iterable[str]) -> Zone:
        """Forget each variable."""
        for v in variables:
            self.forget(v)
        return self

    def rename(self, renaming: Mapping[str, str]) -> Zone:
        """Rename variables (simultaneously); a destination's old facts are forgotten."""
        if self._bottom or not renaming:
            return self

        def rn(v: str) -> str:
            return renaming.get(v, v)

        srcs = set(renaming)
        for dst in renaming.values():
            if dst not in srcs:
                self.forget(dst)
        self._lo = {rn(k): v for k, v in self._lo.items()}
        self._hi = {rn(k): v for k, v in self._hi.items()}
        self._succ = {rn(s): {rn(d): w for d, w in ds.items()} for s, ds in self._succ.items()}
        self._pred = {rn(d): {rn(s): w for s, w in ss.items()} for d, ss in self._pred.items()}
        return self

    def set(self, var: str, value: Interval | int) -> Zone:
        """``var := value``: forgets relations of ``var``, then sets its bounds."""
        if self._bottom:
            return self
        if isinstance(value, int):
            value = Interval.const(value)
        if value.is_bottom:
            return self.set_to_bottom()
        self.forget(var)
        if value.lo > NEG_INF:
            self._lo[var] = value.lo
        if value.hi < POS_INF and not is_min_only(var):
            self._hi[var] = value.hi
        return self

    def assign(self, x: str, y: str, offset: int = 0) -> Zone:
        """``x := y + offset``, keeping the relation ``x - y == offset``."""
        return self.assign_linear(x, {y: 1}, offset)

    def assign_expr(self, x: str, y: str, z: str, offset: int = 0) -> Zone:
        """``x := y + z + offset``, with the relations PREVAIL derives from the bounds."""
        if y == z:
            return self.assign_linear(x, {y: 2}, offset)
        return self.assign_linear(x, {y: 1, z: 1}, offset)

    def assign_sub(self, x: str, y: str, z: str, offset: int = 0) -> Zone:
        """``x := y - z + offset``."""
        if y == z:
            return self.set(x, Interval.const(offset))
        return self.assign_linear(x, {y: 1, z: -1}, offset)

    def assign_linear(self, x: str, terms: Mapping[str, int], const: int = 0) -> Zone:
        """``x := sum(coef * var) + const`` (PREVAIL's ``ZoneDomain::assign``)."""
        if self._bottom:
            return self
        terms = {v: a for v, a in terms.items() if a}
        value = self.eval_linear(terms, const)
        if value.is_singleton() or not terms:
            return self.set(x, value)
        # Relations x - v in I for each positive-coefficient v.
        rels: list[tuple[str, Interval]] = []
        for v, a in terms.items():
            if a <= 0:
                continue
            rest = {u: b for u, b in terms.items() if u != v}
            if a != 1:
                rest[v] = a - 1
            i = self.eval_linear(rest, const)
            if i.lb_finite() or i.ub_finite():
                rels.append((v, i))
        if not rels:
            return self.set(x, value)
        if len(terms) == 1 and x in terms and terms[x] == 1:
            # x := x + c: shift in place (what a fresh vertex plus havoc would produce).
            return self._shift(x, const)
        tmp = "\x00tmp" if x in terms else x
        if tmp == x:
            self.forget(x)
        for v, i in rels:
            if i.ub_finite():
                self._add_edge(v, tmp, i.hi)
            if i.lb_finite():
                self._add_edge(tmp, v, -i.lo)
        if self._bottom:
            return self
        if value.lb_finite():
            self._tighten_lo_only(tmp, value.lo)
        if value.ub_finite() and not is_min_only(x):
            self._tighten_hi_only(tmp, value.hi)
        if tmp != x:
            self.forget(x)
            self._move(tmp, x)
        return self

    def _move(self, src: str, dst: str) -> None:
        """Give ``src``'s bounds and relations to ``dst``, which has none (a rename of
        one variable, touching only its own edges, not the whole zone)."""
        for bounds in (self._lo, self._hi):
            if src in bounds:
                bounds[dst] = bounds.pop(src)
        # Its edges out (and each one's entry in the other end's predecessors), then in.
        for edges, reverse in ((self._succ, self._pred), (self._pred, self._succ)):
            own = edges.pop(src, None)
            if own:
                edges[dst] = own
                for other, w in own.items():
                    back = reverse[other]
                    del back[src]
                    back[dst] = w

    def _shift(self, x: str, c: int) -> Zone:
        if x in self._lo:
            self._lo[x] += c
        if x in self._hi:
            self._hi[x] += c
        for d, w in list(self._succ.get(x, {}).items()):
            self._set_edge_raw(x, d, w - c)
        for s, w in list(self._pred.get(x, {}).items()):
            self._set_edge_raw(s, x, w + c)
        return self

    def add_constraint_le(self, x: str | None, y: str | None, c: int) -> Zone:
        """Assume ``x - y <= c``; a None side is the constant 0 (so ``y=None``: ``x <= c``)."""
        if self._bottom:
            return self
        if x is None and y is None:
            if c < 0:
                self.set_to_bottom()
        elif y is None:
            self._tighten_hi(x, c)  # type: ignore[arg-type]
        elif x is None:
            self._tighten_lo(y, -c)
        else:
            self._add_edge(y, x, c)
        return self

    def add_constraint_lt(self, x: str | None, y: str | None, c: int) -> Zone:
        """Assume ``x - y < c``."""
        return self.add_constraint_le(x, y, c - 1)

    def add_constraint_ge_const(self, x: str, c: int) -> Zone:
        """Assume ``x >= c``."""
        if not self._bottom:
            self._tighten_lo(x, c)
        return self

    def add_constraint_le_const(self, x: str, c: int) -> Zone:
        """Assume ``x <= c``."""
        if not self._bottom:
            self._tighten_hi(x, c)
        return self

    def meet_interval(self, x: str, value: Interval) -> Zone:
        """Assume ``x`` in ``value``."""
        if value.is_bottom:
            return self.set_to_bottom()
        if value.lb_finite():
            self.add_constraint_ge_const(x, value.lo)
        if value.ub_finite():
            self.add_constraint_le_const(x, value.hi)
        return self

    def assume_eq(self, x: str, y: str, offset: int = 0) -> Zone:
        """Assume ``x == y + offset``."""
        self.add_constraint_le(x, y, offset)
        self.add_constraint_le(y, x, -offset)
        return self

    def assume_eq_const(self, x: str, c: int) -> Zone:
        """Assume ``x == c``."""
        return self.meet_interval(x, Interval.const(c))

    def assume_ne_const(self, x: str, c: int) -> Zone:
        """Assume ``x != c`` (only trims an interval endpoint)."""
        i = self.eval(x)
        if i.is_bottom:
            return self
        if i.singleton() == c:
            return self.set_to_bottom()
        if i.lo == c:
            self._tighten_lo(x, c + 1)
        elif i.hi == c:
            self._tighten_hi(x, c - 1)
        return self

    def add_linear_le(self, terms: Mapping[str, int], c: int) -> Zone:
        """Assume ``sum(coef * var) <= c``: bounds for every variable, and a difference
        relation for every pair with coefficients +1/-1."""
        if self._bottom:
            return self
        terms = {v: a for v, a in terms.items() if a}
        if not terms:
            if c < 0:
                self.set_to_bottom()
            return self
        mins = {v: (self.eval(v) * a).lo for v, a in terms.items()}
        pairs = [(p, n) for p, a in terms.items() if a == 1 for n, b in terms.items() if b == -1]
        for p, n in pairs:
            rest = sum(mins[v] for v in terms if v not in (p, n))
            if rest > NEG_INF:
                self._add_edge(n, p, c - rest)
                if self._bottom:
                    return self
        for v, a in terms.items():
            rest = sum(mins[u] for u in terms if u != v)
            if rest <= NEG_INF:
                continue
            r = c - rest
            if a > 0:
                self._tighten_hi(v, r // a)
            else:
                self._tighten_lo(v, -(r // -a))
            if self._bottom:
                return self
        return self

    # -- lattice ----------------------------------------------------------------------

    def leq(self, other: Zone) -> bool:
        """Inclusion: every constraint of ``other`` is entailed by ``self``."""
        if self._bottom:
            return True
        if other._bottom:
            return False
        for v, c in other._lo.items():
            if self._lo.get(v, NEG_INF) < c:
                return False
        for v, c in other._hi.items():
            if self._hi.get(v, POS_INF) > c:
                return False
        for s, ds in other._succ.items():
            for d, w in ds.items():
                if self._edge(s, d) > w:
                    return False
        return True

    def __le__(self, other: Zone) -> bool:
        return self.leq(other)

    def join(self, other: Zone) -> Zone:
        """Least upper bound (PREVAIL's split-DBM join)."""
        if self._bottom:
            return other.copy()
        if other._bottom:
            return self.copy()
        z = Zone()
        for v in self._lo.keys() & other._lo.keys():
            z._lo[v] = min(self._lo[v], other._lo[v])
        for v in self._hi.keys() & other._hi.keys():
            z._hi[v] = max(self._hi[v], other._hi[v])
        keys = {(s, d) for s, ds in self._succ.items() for d in ds}
        keys.update((s, d) for s, ds in other._succ.items() for d in ds)
        # `max(self._edge(s, d), other._edge(s, d))`, inlined (the hot loop of walks).
        a_succ, a_lo, a_hi = self._succ, self._lo, self._hi
        b_succ, b_lo, b_hi = other._succ, other._lo, other._hi
        z_succ, z_pred = z._succ, z._pred
        empty: dict[str, int] = {}
        for s, d in keys:
            if s == d:
                z._set_edge_raw(s, d, 0)
                continue
            wa = a_succ.get(s, empty).get(d, POS_INF)
            lo, hi = a_lo.get(s), a_hi.get(d)
            if lo is not None and hi is not None and hi - lo < wa:
                wa = hi - lo
            if wa >= POS_INF:
                continue
            wb = b_succ.get(s, empty).get(d, POS_INF)
            lo, hi = b_lo.get(s), b_hi.get(d)
            if lo is not None and hi is not None and hi - lo < wb:
                wb = hi - lo
            if wb >= POS_INF:
                continue
            w = wa if wa > wb else wb
            z_succ.setdefault(s, {})[d] = w
            z_pred.setdefault(d, {})[s] = w
        # Variables moving in the same direction on both sides keep their relation.
        lb_up, lb_down, ub_up, ub_down = [], [], [], []
        for v in self._lo.keys() & other._lo.keys():
            if other._lo[v] > self._lo[v]:
                lb_up.append(v)
            elif other._lo[v] < self._lo[v]:
                lb_down.append(v)
        for v in self._hi.keys() & other._hi.keys():
            if other._hi[v] > self._hi[v]:
                ub_up.append(v)
            elif other._hi[v] < self._hi[v]:
                ub_down.append(v)
        for lbs, ubs in ((lb_up, ub_up), (lb_down, ub_down)):
            for s in lbs:
                for d in ubs:
                    if s != d:
                        w = max(self._hi[d] - self._lo[s], other._hi[d] - other._lo[s])
                        if w < z._succ.get(s, {}).get(d, POS_INF):
                            z._set_edge_raw(s, d, w)
        return z

    def __or__(self, other: Zone) -> Zone:
        return self.join(other)

    def meet(self, other: Zone) -> Zone:
        """Greatest lower bound."""
        if self._bottom or other._bottom:
            return Zone.bottom()
        z = self.copy()
        for v, c in other._lo.items():
            if not z._tighten_lo(v, c):
                return z
        for v, c in other._hi.items():
            if not z._tighten_hi(v, c):
                return z
        for s, ds in other._succ.items():
            for d, w in ds.items():
                if not z._add_edge(s, d, w):
                    return z
        return z

    def __and__(self, other: Zone) -> Zone:
        return self.meet(other)

    def widen(self, other: Zone, thresholds: Sequence[int] = (), close: bool = True) -> Zone:
        """Standard DBM widening: keep the constraints of ``self`` that ``other`` satisfies.

        With ``thresholds`` (sorted), a variable bound ``other`` exceeds moves out
        to the nearest threshold beyond it instead of to infinity (widening with
        thresholds: still a widening, as the thresholds are finitely many).

        The result is closed, for the precision of what follows; but closing a
        widened zone can bring a dropped bound back from an edge and a bound
        that grew, so a sequence of such widenings need not end (Miné's DBM
        widening caveat). With ``close=False`` the result is what was kept,
        unclosed: every constraint is one of ``self``'s or a threshold beyond it,
        so a sequence of these ends."""
        if self._bottom:
            return other.copy()
        if other._bottom:
            return self.copy()
        z = Zone()
        for v, c in self._lo.items():
            o = other._lo.get(v, NEG_INF)
            if o >= c:
                z._lo[v] = c
            elif thresholds and o > NEG_INF:
                i = bisect_right(thresholds, o)
                if i:
                    z._lo[v] = thresholds[i - 1]
        for v, c in self._hi.items():
            o = other._hi.get(v, POS_INF)
            if o <= c:
                z._hi[v] = c
            elif thresholds and o < POS_INF:
                i = bisect_left(thresholds, o)
                if i < len(thresholds):
                    z._hi[v] = thresholds[i]
        for s, ds in self._succ.items():
            for d, w in ds.items():
                if other._succ.get(s, {}).get(d, POS_INF) <= w:
                    z._set_edge_raw(s, d, w)
        if close:
            z._close_edges()
        return z

    def narrow(self, other: Zone) -> Zone:
        """Standard narrowing: take ``other``'s constraints where ``self`` has none."""
        if self._bottom or other._bottom:
            return Zone.bottom()
        z = self.copy()
        for v, c in other._lo.items():
            if v not in z._lo and not z._tighten_lo(v, c):
                return z
        for v, c in other._hi.items():
            if v not in z._hi and not z._tighten_hi(v, c):
                return z
        for s, ds in other._succ.items():
            for d, w in ds.items():
                if d not in z._succ.get(s, {}) and not z._add_edge(s, d, w):
                    return z
        return z

    # -- printing ---------------------------------------------------------------------

    def constraints(self) -> list[str]:
        """The invariant as PREVAIL prints it (``ZoneDomain::to_set``), sorted."""
        if self._bottom:
            return ["_|_"]
        least_of: dict[str, str] = {}
        diffs: list[tuple[str, str, int]] = []
        for s in self.variables():
            least = s
            for d, w in self._succ.get(s, {}).items():
                if w == 0:
                    least = min(least, d)
                else:
                    diffs.append((d, s, w))
            least_of[s] = least
        reps = {s for s, least in least_of.items() if s == least}
        result = {f"{s}={least}" for s, least in least_of.items() if s != least}
        for vd, vs, w in sorted(diffs):
            if vd not in reps or vs not in reps:
                continue
            dual = f"{vs}-{vd}<={-w}"
            if dual in result:
                result.discard(dual)
                result.add(f"{vd}={vs}+{w}" if w > 0 else f"{vs}={vd}+{-w}")
            else:
                result.add(f"{vd}-{vs}<={w}")
        for v in reps:
            lo = self._lo.get(v)
            hi = None if is_min_only(v) else self._hi.get(v)
            if lo is None and hi is None:
                continue
            if is_min_only(v):
                result.add(f"{v}={lo}")
            else:
                result.add(
                    f"{v}={Interval(NEG_INF if lo is None else lo, POS_INF if hi is None else hi)}"
                )
        return sorted(result)

    def __str__(self) -> str:
        if self._bottom:
            return "_|_"
        return "[" + ", ".join(self.constraints()) + "]"

    def __repr__(self) -> str:
        return f"Zone({self})"

    def identical(self, other: Zone) -> bool:
        """The same bounds and edges (not only the same meaning: `__eq__`); a
        deterministic transfer gives identical results on identical zones."""
        if self._bottom or other._bottom:
            return self._bottom == other._bottom
        return (
            self._lo == other._lo
            and self._hi == other._hi
            and {k: v for k, v in self._succ.items() if v}
            == {k: v for k, v in other._succ.items() if v}
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Zone):
            return NotImplemented
        return self.leq(other) and other.leq(self)

    __hash__ = None  # type: ignore[assignment]
