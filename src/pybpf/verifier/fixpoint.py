"""The forward analysis: iterate the transfer functions over the WTO to a fixpoint.

Each node's pre-state is the join of its predecessors' post-states. Before
the transfer, the node's assertions are checked; the first that fails is
recorded and the node's post-state becomes bottom (the error path stops
there, as in PREVAIL). A cycle of the weak topological order is iterated
with widening at its head until stable, then narrowed a few times.

With `unroll_loops` (the load path), a cycle is first walked as the Linux
kernel walks a loop: iteration by iteration from the state entering it,
without joining iterations, until no state goes round again. Each node's
assertions are checked in every iteration, and its invariant is the join
over the iterations. When the iterations do not run out within the budget
(`UNROLL_ITERATIONS` for one loop, `UNROLL_VISITS` node visits for the whole
analysis) or a state repeats, the cycle gets the widening fixpoint instead.
Sound either way: each iteration's state over-approximates the concrete
states of that iteration, and no execution goes round more often than the
unrolled iterations.

Unrolling costs a round per iteration; with `widen_first` (the load path,
`program.verify_program`) a cycle is walked for `WALK_FIRST` rounds only; if
it runs on, it gets the widening fixpoint with thresholds (the constants the
loop's conditions compare against, or the bounds entering the loop of the
registers they compare, and their neighbours, `_thresholds`; a loop with loops
inside is widened with those widened too, then checked by one pass with them
walked), whose invariants are kept when every assertion of the cycle's nodes
holds on them and the widened loop counter reaches `LONG_LOOP`; a shorter
loop's widening with the walk's own transfer functions is kept when its
assertions hold (what it proves, the walk proves); otherwise the walk goes on.
A loop with loops inside gets that widening before any round is walked (each
round walked costs an analysis of every inner loop), as do its inner loops
inside it; such a widening is given up after `PLAIN_ASCENTS` ascending steps
(the loop is walked). In these
widenings a pointer moved by a constant stride in every round has its
offset bounded at the head by the loop counter (`_inductions`).
The widened invariants hold for every execution, so a program whose analysis
has no failure is safe; one with a failure is analysed again without
`widen_first` (`widened_loops` says whether that can change anything), so
rejections, and their messages, are the walk's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from .assertions import TypeConstraint, TypeGroup, explicate, for_linux
from .cfg import (
    ENTRY,
    EXIT,
    Cfg,
    Cycle,
    InvalidControlFlow,
    Label,
    add_loop_counters,
    build_cfg,
    check_function_ends,
    check_reachable,
    label_str,
    writes_register,
)
from .cfg import weak_topological_order as wto_of
from .checks import check
from .domains.interval import POS_INF, Interval
from .ir import (
    Assume,
    Atomic,
    Bin,
    BinOp,
    Call,
    CallbackEntry,
    CallbackReturn,
    CallLocal,
    Callx,
    Exit,
    Imm,
    IncrementLoopCounter,
    IrInstruction,
    LoadMapAddress,
    LoadMapFd,
    Packet,
    Reg,
    Undefined,
)
from .linux_rules import ContextFacts, acquire_sites, context_facts, linux_rule_failures, ref_var
from .options import AnalysisOptions
from .report import Failure, Report
from .state import PRIMARY_OFFSET, State, reg_owner, var
from .transfer import transfer
from .value_facts import Ranges, memory_regions, value_ranges

WIDENING_DELAY = 2
# After this many ascending iterations, widen without closing (`Zone.widen`): the
# closed widening can go on for ever (a nested loop with 32-bit counters grew a
# bound by 2^32 - 1 in each of 1000 rounds); the unclosed one ends.
CLOSED_WIDENINGS = 32
MAX_ITERATIONS = 1000
UNROLL_ITERATIONS = 256
UNROLL_VISITS = 40_000
# With `widen_first`, a loop whose widened counter says it may run fewer rounds
# than this is unrolled anyway, as before: the unrolling may well finish within its
# budget, and where the kernel's walk and the widened invariants disagree the
# unrolling has the kernel's verdict (tcp_opts_split: a 10-round header walk the
# kernel and the unrolling reject, the widened zone proves safe).
LONG_LOOP = UNROLL_ITERATIONS
# With `widen_first`, loops are still walked first for this many rounds: one that
# ends by then is walked exactly as before (same rounds, same budget), at no cost
# of a widening tried in vain.
WALK_FIRST = 8
# A widening with the walk's transfer functions (`_plainly_widened_holds`) is given up
# after this many ascending iterations, and the loop walked: one that holds settles
# in a few (loop_nested: 4), one that fails can climb every threshold first
# (loop_u32_nested: ~90 iterations, 0.9 s; xdp_ipv4_options: 30, 0.24 s, in vain).
PLAIN_ASCENTS = 8


class NotSupported(Exception):
    """The program uses something this analysis does not model yet."""


class _GaveUp(Exception):
    """A widening ran past its budget of ascending iterations (`Analyzer._widen`)."""


@dataclass
class AnalysisResult:
    """Pre/post invariants per node, failures and the CFG."""

    cfg: Cfg | None
    pre: dict[Label, State] = field(default_factory=dict)
    post: dict[Label, State] = field(default_factory=dict)
    failures: dict[Label, Failure] = field(default_factory=dict)
    control_flow_error: str | None = None
    control_flow_pc: int | None = None
    context: ContextFacts = field(default_factory=ContextFacts)
    collect_invariants: bool = False
    # Loop head → the most rounds one entry of the loop runs, for loops whose counter
    # only abstract unrolling could bound (termination.py); kernel_limits.py counts them.
    loop_bounds: dict[Label, int] = field(default_factory=dict)
    # The operand ranges of divisions and register shifts, by pc (value_facts.py).
    value_ranges: Ranges = field(default_factory=dict)
    # Loads and stores whose base is surely a stack pointer, or surely none (value_facts.py).
    memory_regions: dict[int, str] = field(default_factory=dict)
    # How many cycles kept their widened invariants where unrolling was possible
    # (`widen_first`): a failure of such an analysis may be one unrolling avoids.
    widened_loops: int = 0

    def exit_state(self) -> State:
        """The invariant at the exit node."""
        return self.pre.get(EXIT, State.bottom())

    def exit_strings(self) -> set[str]:
        """The exit invariant as PREVAIL's set of strings."""
        return self.exit_state().strings()

    def unreachable(self) -> list[str]:
        """`L: Code becomes unreachable (assume …)` for each assumption that kills a live state."""
        out = []
        assert self.cfg is not None
        for label, insn in self.cfg.insns.items():
            if not isinstance(insn, Assume) or label in self.failures:
                continue
            pre = self.pre.get(label)
            post = self.post.get(label)
            if pre is None or pre.is_bottom():
                continue
            if post is None or post.is_bottom():
                out.append(f"{label_str(label)}: Code becomes unreachable ({insn})")
        return out

    def first_failure(self) -> Failure | None:
        """The failure PREVAIL would report first (lowest label)."""
        if not self.failures:
            return None
        return min(self.failures.values(), key=lambda f: _label_key(f.label))

    def messages(self) -> set[str]:
        """First error plus unreachable-code notes (what YAML `messages` lists)."""
        out = set(self.unreachable())
        first = self.first_failure()
        if first is not None:
            out.add(str(first))
        return out

    def report(self) -> Report:
        """A `Report` of this analysis."""
        if self.control_flow_error is not None:
            at = ENTRY if self.control_flow_pc is None else self.control_flow_pc
            return Report(failures=[Failure(at, None, self.control_flow_error)])
        failures = sorted(self.failures.values(), key=lambda f: _label_key(f.label))
        shown = self.pre if self.collect_invariants else {f.label: None for f in failures}
        invariants = {label: self.pre[label].strings() for label in shown if label in self.pre}
        return Report(
            failures=failures,
            unreachable=self.unreachable(),
            exit_invariant=self.exit_strings(),
            invariants=invariants,
            context_accesses=dict(sorted(self.context.accesses.items())),
            mixed_context_pcs=frozenset(self.context.mixed),
            value_ranges=self.value_ranges,
            memory_regions=self.memory_regions,
        )


def _label_key(label: Label) -> tuple:
    if isinstance(label, int):
        return (label, -1)
    if isinstance(label, tuple):
        return label
    if label == ENTRY:
        return (-1, 0)
    m = re.match(r"\d+", label)
    return (int(m.group()), 1 << 62) if m else (1 << 62, 0)


class Analyzer:
    """Runs one analysis of one CFG."""

    def __init__(
        self, cfg: Cfg, entry: State, opts: AnalysisOptions, widen_first: bool = False
    ) -> None:
        self.cfg = cfg
        self.entry = entry
        self.opts = opts
        self.widen_first = widen_first and opts.unroll_loops
        self.result = AnalysisResult(cfg, collect_invariants=opts.collect_invariants)
        self.counters = [
            f"pc[{insn.name}]"
            for insn in cfg.insns.values()
            if isinstance(insn, IncrementLoopCounter)
        ]
        self.assertions: dict[Label, list] = {
            label: _assertions(insn, opts) for label, insn in cfg.insns.items()
        }
        # `r >>= 32` node → the `r <<= 32` before it (clang's zero-extension), load path;
        # used inside the widening of `_widened_holds` only (`widening_first` > 0): the
        # walk keeps the verdicts it had (with the pair, it proves tcp_opts_split, which
        # the kernel rejects).
        self.zero_extensions = _zero_extensions(cfg) if self.widen_first else {}
        self.widening_first = 0
        # > 0: loops are widened only, neither walked nor checked (`_widened_holds`).
        self.quick_widening = 0
        # > 0: inside `_plainly_widened_holds`, whose inner loops are widened so first.
        self.plain_widening = 0
        # Nodes of unrolled loops: checked iteration by iteration, not on the joined state.
        self.unrolled: dict[Label, Failure | None] = {}
        self.unroll_visits = 0
        # Heads of loops whose widened counter stayed below LONG_LOOP: walked from then on.
        self.short_loops: set[Label] = set()
        # Heads of short loops whose widening with the walk's transfer functions held.
        self.plain_loops: set[Label] = set()
        # Heads whose widening before a walk failed (`_nested_widened_first`): walked first.
        self.walked_first: set[Label] = set()

    def run(self) -> AnalysisResult:
        """Compute the fixpoint, then check every reachable node once more."""
        order = wto_of(self.cfg)
        self._components(order)
        self.result.failures.clear()
        for label in self.cfg.insns:
            if label in self.unrolled:
                failure = self.unrolled[label]
                if failure is not None:
                    self.result.failures[label] = failure
                continue
            pre = self.result.pre.get(label)
            if pre is None or pre.is_bottom():
                continue
            for assertion in self.assertions.get(label, []):
                msg = check(pre, assertion, self.opts)
                if msg is not None:
                    self.result.failures[label] = Failure(label, assertion, msg)
                    break
        self.result.context = context_facts(self.cfg.insns, self.result.pre)
        self.result.value_ranges = value_ranges(self.cfg.insns, self.result.pre)
        self.result.memory_regions = memory_regions(self.cfg.insns, self.result.pre)
        if self.opts.linux_rules:
            errors = linux_rule_failures(
                self.cfg.insns, self.result.pre, self.result.context, self.opts
            )
            for label, msg in errors.items():
                self.result.failures.setdefault(label, Failure(label, None, msg))
        return self.result

    def _join_preds(self, label: Label) -> State:
        if label == ENTRY:
            return self.entry.copy()
        state = State.bottom()
        for p in self.cfg.preds.get(label, []):
            post = self.result.post.get(p)
            if post is not None and not post.is_bottom():
                state = state.join(post)
        return state

    def _post(self, label: Label, pre: State) -> State:
        insn: IrInstruction | None = self.cfg.insns.get(label)
        state = pre.copy()
        if insn is not None and not pre.is_bottom():
            checked = (
                () if isinstance(insn, IncrementLoopCounter) else self.assertions.get(label, [])
            )
            for assertion in checked:
                if check(pre, assertion, self.opts) is not None:
                    state = State.bottom()
                    break
            else:
                transfer(state, insn, self.opts)
                shifted = self.zero_extensions.get(label) if self.widening_first else None
                if shifted is not None:
                    state = _zero_extended(state, self.result.pre.get(shifted), insn.dst)
        self.result.post[label] = state
        return state

    def _vertex(self, label: Label) -> None:
        pre = self._join_preds(label)
        self.result.pre[label] = pre
        self._post(label, pre)

    def _components(self, components: list) -> None:
        for c in components:
            if isinstance(c, Cycle):
                self._cycle(c)
            else:
                self._vertex(c)

    def _step(self, cycle: Cycle, head_pre: State, inductions: Sequence[_Induction] = ()) -> State:
        """Run one pass over the cycle from `head_pre`; the head's new pre-state
        (both with what `inductions` say at the head)."""
        head_pre = _with_inductions(head_pre, inductions)
        self.result.pre[cycle.head] = head_pre
        self._post(cycle.head, head_pre)
        self._components(cycle.components)
        return _with_inductions(self._join_preds(cycle.head), inductions)

    def _inductions(self, cycle: Cycle, entering: State) -> list[_Induction]:
        """The pointers `cycle` moves by a constant stride in every round.

        A register set in the loop by one 64-bit `r += c` only, run once in every
        round (on each path from the head back to it, and not in an inner loop),
        holding one pointer type where the loop is entered: at the head its
        offset is its offset on entry plus c times the rounds run so far (the
        loop counter, reset on entry). Loops with calls are left out (they
        clobber registers)."""
        nodes = _cycle_nodes(cycle)
        if entering.is_bottom() or any(
            isinstance(self.cfg.insns.get(n), _CLOBBERING) for n in nodes
        ):
            return []
        own = _own_nodes(cycle)
        counter = next(
            (
                f"pc[{insn.name}]"
                for n in own
                if isinstance(insn := self.cfg.insns.get(n), IncrementLoopCounter)
            ),
            None,
        )
        found: list[_Induction] = []
        for n in own:
            insn = self.cfg.insns.get(n)
            if not (
                counter is not None
                and isinstance(insn, Bin)
                and insn.op == BinOp.ADD
                and insn.is64
                and isinstance(insn.v, Imm)
                and insn.v.v != 0
            ):
                continue
            owner = reg_owner(insn.dst.v)
            types = entering.types_of(owner)
            kind = PRIMARY_OFFSET.get(next(iter(types))) if len(types) == 1 else None
            if kind is None or not kind.endswith("_offset"):
                continue
            start = entering.eval(var(owner, kind))
            if start.lo <= -POS_INF or start.hi >= POS_INF:
                continue
            if any(m != n and writes_register(self.cfg.insns.get(m), insn.dst.v) for m in nodes):
                continue
            if self._skippable(cycle, nodes, n):
                continue
            found.append(_Induction(var(owner, kind), counter, start.lo, start.hi, insn.v.v))
        return found

    def _skippable(self, cycle: Cycle, nodes: set[Label], node: Label) -> bool:
        """Whether a round of `cycle` can go from its head back to it without `node`."""
        if node == cycle.head:
            return False
        back = {p for p in self.cfg.preds.get(cycle.head, []) if p in nodes}
        seen = {cycle.head, node}
        todo = [cycle.head]
        while todo:
            for s in self.cfg.succs.get(todo.pop(), []):
                if s in back and s != node:
                    return True
                if s in nodes and s not in seen:
                    seen.add(s)
                    todo.append(s)
        return False

    def _cycle(self, cycle: Cycle) -> None:
        """The widening fixpoint of `cycle`, or on the load path its unrolling (see module)."""
        if self.quick_widening:
            entering = self._entering(cycle, _cycle_nodes(cycle))
            self._widen(cycle, self._thresholds(cycle, entering), entering)
            return
        if self.opts.unroll_loops:
            walk = self._walk_start(cycle)
            if walk is None:
                walked = False
            elif self.widen_first and self._plainly_widened_again(cycle, walk):
                return
            elif self.widen_first and self._nested_widened_first(cycle, walk):
                return
            elif self.widen_first and cycle.head not in self.short_loops:
                walked = self._walk(walk, WALK_FIRST)
                if walked is None:  # longer: widened if that holds, else walked on
                    # The walk goes on as if nothing had been tried: its budget, and
                    # what its nodes have failed so far (not what the widening found).
                    visits = self.unroll_visits
                    failed = {n: self.unrolled[n] for n in walk.nodes if n in self.unrolled}
                    if self._widened_holds(cycle):
                        self.result.widened_loops += 1
                        return
                    self.unroll_visits = visits
                    self._restore_failures(walk.nodes, failed)
                    walked = self._walk(walk, UNROLL_ITERATIONS)
            else:
                walked = self._walk(walk, UNROLL_ITERATIONS)
            if walked:
                return
        self._widen(cycle)

    def _widened_holds(self, cycle: Cycle) -> bool:
        """Widen `cycle` with thresholds; whether every assertion in it holds.

        Its own nodes (not those of nested cycles, which each call of `_cycle`
        accounts for) are then checked on their invariants, as any widened node."""
        for n in _own_nodes(cycle):
            self.unrolled.pop(n, None)
        nodes = _cycle_nodes(cycle)
        nested = _has_inner_loops(cycle)
        self.widening_first += 1
        # With loops inside, a first widening with those widened too (cheap: their
        # walks would run in every step) tells whether the loop is long at all.
        self.quick_widening += nested
        try:
            entering = self._entering(cycle, nodes)
            long = self._widen(cycle, self._thresholds(cycle, entering), entering, long_only=True)
            if not long or self._rounds(cycle) < LONG_LOOP:
                if self._plainly_widened_holds(cycle, nodes):
                    return True
                # Walked instead; so in later visits too (an inner loop is visited once
                # per round of the loop around it), without trying the widening again.
                self.short_loops.add(cycle.head)
                return False
            if nested:
                self.quick_widening -= 1
                nested = False
                # One pass with the inner loops as everywhere else (walked, when
                # short) from that invariant: when it goes round within it, the
                # invariant holds for every execution, and the pass's states are
                # those of a fixpoint. Else a widening with them, step by step.
                inv = self.result.pre[cycle.head]
                if (
                    self._step(cycle, inv).leq(inv)
                    and self._rounds(cycle) >= LONG_LOOP
                    and self._holds(nodes)
                ):
                    return True
                entering = self._entering(cycle, nodes)
                self._widen(cycle, self._thresholds(cycle, entering), entering)
                if self._rounds(cycle) < LONG_LOOP:
                    return False
        finally:
            self.widening_first -= 1
            self.quick_widening -= nested
        return self._holds(nodes)

    def _plainly_widened_again(self, cycle: Cycle, walk: _Walk) -> bool:
        """A loop whose widening with the walk's transfer functions held on an earlier
        visit (an inner loop, once per round of the loop around it) is widened so
        again without walking its first rounds; True when that holds again."""
        if cycle.head not in self.plain_loops:
            return False
        failed = {n: self.unrolled.pop(n) for n in walk.nodes if n in self.unrolled}
        if self._plainly_widened_holds(cycle, walk.nodes):
            self.result.widened_loops += 1
            return True
        self.plain_loops.discard(cycle.head)
        self._restore_failures(walk.nodes, failed)
        return False

    def _nested_widened_first(self, cycle: Cycle, walk: _Walk) -> bool:
        """A loop with loops inside, or inside a loop being so widened (unless found short
        or walked first before), widened with the walk's transfer functions before any
        round is walked: each round walked costs an analysis of every inner loop, the
        widening a few. True when that holds (what it proves, the walk proves:
        `_plainly_widened_holds`); else the walk starts as usual."""
        if cycle.head in self.short_loops or cycle.head in self.walked_first:
            return False
        if not (self.plain_widening or _has_inner_loops(cycle)):
            return False
        visits = self.unroll_visits
        if self._plainly_widened_holds(cycle, walk.nodes):
            self.result.widened_loops += 1
            return True
        # The walk starts as if nothing had been tried: its whole budget, no failures.
        self.unroll_visits = visits
        self.walked_first.add(cycle.head)
        self.plain_loops.discard(cycle.head)
        self._restore_failures(walk.nodes, {})
        return False

    def _restore_failures(self, nodes: set[Label], failed: dict[Label, Failure | None]) -> None:
        """Give `nodes` back what their walk had found (`failed`), forgetting what a
        widening tried in between found, before the walk goes on."""
        for n in nodes:
            self.unrolled.pop(n, None)
        self.unrolled.update(failed)

    def _plainly_widened_holds(self, cycle: Cycle, nodes: set[Label]) -> bool:
        """Widen a short `cycle` with the walk's transfer functions (no zero-extension
        pair) and its inner loops as anywhere else; whether every assertion holds.

        Each round of the walk starts from a state below the widened invariant
        and applies the same transfer functions, so every state it checks is
        below the widened ones: what the widening proves, the walk proves too
        (tcp_opts_split, which the walk and the kernel reject, fails here).
        False, too, when the ascent has not settled after `PLAIN_ASCENTS` iterations."""
        saved = self.widening_first, self.quick_widening
        self.widening_first = self.quick_widening = 0
        self.plain_widening += 1
        try:
            entering = self._entering(cycle, nodes)
            self._widen(cycle, self._thresholds(cycle, entering), entering, ascents=PLAIN_ASCENTS)
        except _GaveUp:
            return False
        finally:
            self.widening_first, self.quick_widening = saved
            self.plain_widening -= 1
        if not self._holds(nodes):
            return False
        self.plain_loops.add(cycle.head)
        return True

    def _holds(self, nodes: set[Label]) -> bool:
        """Whether every assertion of `nodes` holds: on the walks of walked loops,
        on the invariants elsewhere."""
        for n in nodes:
            if n in self.unrolled:
                if self.unrolled[n] is not None:
                    return False
                continue
            pre = self.result.pre.get(n)
            if pre is not None and not pre.is_bottom() and self._check(n, pre) is not None:
                return False
        return True

    def _rounds(self, cycle: Cycle) -> int | float:
        """The most rounds of `cycle` by its widened loop counter (infinite without one)."""
        rounds: int | float = 0
        for n in _own_nodes(cycle):
            insn = self.cfg.insns.get(n)
            post = self.result.post.get(n)
            if isinstance(insn, IncrementLoopCounter) and post is not None:
                rounds = max(rounds, post.eval(f"pc[{insn.name}]").hi)
        return rounds if rounds else POS_INF

    def _thresholds(self, cycle: Cycle, entering: State) -> tuple[int, ...]:
        """The constants the conditions in `cycle` compare against, each with its two
        neighbours (`i != 1024` holds `i` in [0, 1023]), and 0, sorted.

        A condition between two registers (`n < bound`) contributes the finite
        bounds of both in `entering` (the states entering the loop), with their
        neighbours: where `bound` is in [1000, 1255], `n` stops at 1255."""
        found = {0}
        for n in _cycle_nodes(cycle):
            insn = self.cfg.insns.get(n)
            if not isinstance(insn, Assume):
                continue
            right = insn.cond.right
            if isinstance(right, Imm):
                constants = [right.v]
            elif entering.is_bottom():
                continue
            else:
                constants = []
                for reg in (insn.cond.left, right):
                    for kind in ("svalue", "uvalue"):
                        bounds = entering.eval(var(reg_owner(reg.v), kind))
                        constants += [b for b in (bounds.lo, bounds.hi) if abs(b) < POS_INF]
            for c in constants:
                found.update((c - 1, c, c + 1))
        return tuple(sorted(found))

    def _entering(self, cycle: Cycle, nodes: set[Label]) -> State:
        """The join of the states entering `cycle` from outside it."""
        state = State.bottom()
        for p in self.cfg.preds.get(cycle.head, []):
            post = self.result.post.get(p)
            if p not in nodes and post is not None and not post.is_bottom():
                state = state.join(post)
        return state

    def _widen(
        self,
        cycle: Cycle,
        thresholds: Sequence[int] = (),
        start: State | None = None,
        long_only: bool = False,
        ascents: int = MAX_ITERATIONS,
    ) -> bool:
        """Ascending iterations (joins, then widening), then descending ones (meet, narrowing).

        They start from `start` (default: the head's predecessors, back edges included,
        whatever they hold from an earlier visit). With `long_only`, a loop whose
        counter the ascent already bounds below `LONG_LOOP` is left there (False):
        descending only lowers it. After `ascents` ascending iterations without a
        post-fixpoint, `_GaveUp` (below `MAX_ITERATIONS`) or `NotSupported`."""
        inv = self._join_preds(cycle.head) if start is None else start
        inductions = () if start is None else self._inductions(cycle, start)
        iteration = 0
        while True:
            new = self._step(cycle, inv, inductions)
            if new.leq(inv):
                ascended = inv  # a post-fixpoint: F(inv) <= inv
                inv = new
                if long_only and self._rounds(cycle) < LONG_LOOP:
                    return False
                break
            iteration += 1
            if iteration > ascents:
                if ascents < MAX_ITERATIONS:
                    raise _GaveUp
                raise NotSupported("fixpoint did not converge")
            if iteration < WIDENING_DELAY:
                inv = inv.join(new)
            else:
                inv = inv.widen(new, thresholds, close=iteration <= CLOSED_WIDENINGS)
                if iteration == WIDENING_DELAY:
                    limited = inv.meet_limits(self.counters, not self.opts.linux_rules)
                    # PREVAIL's limits assume 32-bit values: with a 64-bit constant
                    # live (`r5 = 0xffffff80 ll`) their meet is bottom, and the
                    # ascent would restart from nothing; the threshold widening
                    # (`_widened_holds`) keeps its own guess then.
                    if not (thresholds and limited.is_bottom()):
                        inv = limited
        # `new` is always the step from `inv`, whose node states the analysis holds.
        new = self._step(cycle, inv, inductions)
        for iteration in range(1, MAX_ITERATIONS):
            if inv.leq(new):
                break
            narrowed = inv.meet(new) if iteration == 1 else inv.narrow(new)
            if narrowed.identical(inv):
                # Narrowing takes only what `inv` leaves unbounded: when `new` is
                # below `inv` elsewhere only, every later step repeats this one.
                break
            inv = narrowed
            new = self._step(cycle, inv, inductions)
        if not new.leq(inv):
            # A failed assertion makes its node's post-state bottom, so the transfer is not
            # monotone: descending can drop the very states that failed (the back edge
            # turns live again) and end below a post-fixpoint, which would hide the
            # failure. Keep the ascending invariant, which is one.
            self._step(cycle, ascended, inductions)
        return True

    def _walk_start(self, cycle: Cycle) -> _Walk | None:
        """A walk of `cycle` from the states entering it (None: never walked)."""
        if isinstance(cycle.head, str) and cycle.head.endswith("/callback"):
            return None  # a helper's callback loop: up to 2^23 rounds, never unrolled
        nodes = _cycle_nodes(cycle)
        back = [p for p in self.cfg.preds.get(cycle.head, []) if p in nodes]
        walk = _Walk(cycle, nodes, back, self._entering(cycle, nodes))
        for n in nodes:
            preds = self.cfg.preds.get(n, [])
            if n != cycle.head and len(preds) == 1 and preds[0] in nodes:
                walk.post_as_pre[preds[0]] = n
        return walk

    def _walk(self, walk: _Walk, rounds: int) -> bool | None:
        """Walk on, iteration by iteration, until round `rounds` (at most
        `UNROLL_ITERATIONS`): True (kept) when no state goes round again, False
        (nothing kept) when the budget runs out or a state repeats, None when round
        `rounds` is reached below the budget (the walk may go on later)."""
        cycle, nodes = walk.cycle, walk.nodes
        if rounds >= UNROLL_ITERATIONS:
            self._fold(walk)
        while True:
            state = walk.state
            if walk.rounds >= rounds:
                if rounds >= UNROLL_ITERATIONS:
                    return self._unroll_failed(nodes)  # even if it would end now
                if state.is_bottom():
                    break
                return None
            if state.is_bottom():
                break
            if walk.last is not None and state.leq(walk.last):
                return self._unroll_failed(nodes)  # a state repeats: it may not run out
            walk.last = state
            walk.rounds += 1
            self.unroll_visits += len(nodes)
            if self.unroll_visits > UNROLL_VISITS:
                return self._unroll_failed(nodes)
            self.result.pre[cycle.head] = state
            self._post(cycle.head, state)
            self._components(cycle.components)
            walk.pending.append(
                [
                    (n, n_pre, self.result.post.get(n), self.unrolled.get(n))
                    for n in nodes
                    if (n_pre := self.result.pre.get(n)) is not None and not n_pre.is_bottom()
                ]
            )
            if rounds >= UNROLL_ITERATIONS:
                self._fold(walk)
            state = State.bottom()
            for p in walk.back:
                p_post = self.result.post.get(p)
                if p_post is not None and not p_post.is_bottom():
                    state = state.join(p_post)
            walk.state = state
        self._fold(walk)
        for n in nodes:
            self.result.pre[n] = walk.pre.get(n, State.bottom())
            after = walk.post_as_pre.get(n)
            if after is None:
                self.result.post[n] = walk.post.get(n, State.bottom())
            else:
                joined = walk.pre.get(after)
                self.result.post[n] = State.bottom() if joined is None else joined.copy()
            self.unrolled[n] = walk.failures.get(n)
        return True

    def _fold(self, walk: _Walk) -> None:
        """Join the rounds walked into the walk's invariants and check them.

        The first `WALK_FIRST` rounds wait in `pending`: a loop that is widened
        after them needs neither their joins nor their checks."""
        pre, post, failures = walk.pre, walk.post, walk.failures
        for record in walk.pending:
            for n, n_pre, n_post, nested in record:
                pre[n] = pre[n].join(n_pre) if n in pre else n_pre
                if n_post is not None and n not in walk.post_as_pre:
                    post[n] = post[n].join(n_post) if n in post else n_post
                if failures.get(n) is None:
                    failures[n] = nested or self._check(n, n_pre)
        walk.pending.clear()

    def _unroll_failed(self, nodes: set[Label]) -> bool:
        for n in nodes:
            self.unrolled.pop(n, None)
        return False

    def _check(self, label: Label, pre: State) -> Failure | None:
        """The first assertion of `label` that fails in `pre`."""
        for assertion in self.assertions.get(label, []):
            msg = check(pre, assertion, self.opts)
            if msg is not None:
                return Failure(label, assertion, msg)
        return None


@dataclass(frozen=True)
class _Induction:
    """At a loop's head, `offset` is in [lo, hi] + stride * `counter` (`_inductions`)."""

    offset: str
    counter: str
    lo: int
    hi: int
    stride: int


# Instructions that set registers beyond their destination (calls: r0 to r5).
_CLOBBERING = (Call, Callx, CallLocal, Packet, Atomic, Undefined, CallbackEntry, CallbackReturn)


def _with_inductions(state: State, inductions: Sequence[_Induction]) -> State:
    """`state` (at a loop head) with each induction's offset bounded by its counter."""
    if not inductions or state.is_bottom():
        return state
    out = state.copy()
    for ind in inductions:
        rounds = out.eval(ind.counter)
        if rounds.is_bottom or rounds.lo < 0 or rounds.lo >= POS_INF:
            continue
        first, last = ind.stride * rounds.lo, ind.stride * rounds.hi
        if rounds.hi >= POS_INF:
            bounds = (
                Interval(ind.lo + first, POS_INF)
                if ind.stride > 0
                else Interval(-POS_INF, ind.hi + first)
            )
        elif ind.stride > 0:
            bounds = Interval(ind.lo + first, ind.hi + last)
        else:
            bounds = Interval(ind.lo + last, ind.hi + first)
        out.zone.meet_interval(ind.offset, bounds)
    return out


@dataclass
class _Walk:
    """A loop walked iteration by iteration (`Analyzer._walk`), which may be resumed."""

    cycle: Cycle
    nodes: set[Label]
    back: list[Label]
    state: State  # entering the next round
    rounds: int = 0  # rounds walked
    last: State | None = None  # the state that entered the last round
    pre: dict[Label, State] = field(default_factory=dict)  # joined over rounds
    post: dict[Label, State] = field(default_factory=dict)
    failures: dict[Label, Failure | None] = field(default_factory=dict)
    # Rounds not yet joined: (node, pre, post, failure of a nested loop) each.
    pending: list[list[tuple]] = field(default_factory=list)
    # Node → a node of the loop whose only predecessor it is: in every round the
    # latter's pre-state is a copy of the former's post-state, so the former's
    # joined post-state is the latter's joined pre-state (half the joins).
    post_as_pre: dict[Label, Label] = field(default_factory=dict)


def _assertions(insn: IrInstruction, opts: AnalysisOptions) -> list:
    """What must hold before `insn`: PREVAIL's assertions, the kernel's on the load path."""
    found = explicate(insn, opts.privileged)
    if not opts.linux_rules:
        return found
    if (
        isinstance(insn, Exit)
        and not insn.frame
        and opts.exit_range is None
        and opts.allow_ptr_leaks
    ):
        # check_return_code: as root (allow_ptr_leaks) a program type whose return
        # value has no range may return a pointer; r0 must still be written.
        found = [
            TypeConstraint(a.reg, TypeGroup.ptr_or_num_linux)
            if isinstance(a, TypeConstraint) and a.reg.v == 0
            else a
            for a in found
        ]
    return for_linux(found)


def _zero_extensions(cfg: Cfg) -> dict[Label, Label]:
    """`r >>= 32` nodes reached only from an `r <<= 32` (64-bit, same register) → that node.

    The pair is clang's zero-extension of a 32-bit value (`(u64)(u32)r`); the
    shifts alone lose every relation of `r` (`r0 = r3; r0 <<= 32; r0 >>= 32;
    if r0 != 1000` says nothing of `r3`), the pair keeps them (`_zero_extended`)."""
    out: dict[Label, Label] = {}
    for label, insn in cfg.insns.items():
        if not (_is_shift32(insn, BinOp.RSH)):
            continue
        preds = cfg.preds.get(label, [])
        if len(preds) == 1:
            before = cfg.insns.get(preds[0])
            if _is_shift32(before, BinOp.LSH) and before.dst == insn.dst:
                out[label] = preds[0]
    return out


def _is_shift32(insn: IrInstruction | None, op: BinOp) -> bool:
    return (
        isinstance(insn, Bin)
        and insn.op == op
        and insn.is64
        and isinstance(insn.v, Imm)
        and insn.v.v == 32
    )


def _zero_extended(after: State, before: State | None, reg: Reg) -> State:
    """The state after `r <<= 32; r >>= 32` from the state `before` the pair: `before`
    itself when `r` is a number below 2^32 there (the pair leaves it as it is, and
    nothing else changes), else `after` (the shifts' own transfer)."""
    if before is None or before.is_bottom() or after.is_bottom():
        return after
    owner = reg_owner(reg.v)
    if before.types_of(owner) != {"number"}:
        return after
    if not before.eval(var(owner, "uvalue")).within(0, (1 << 32) - 1):
        return after
    return before.copy()


def _own_nodes(cycle: Cycle) -> list[Label]:
    """The head of `cycle` and its nodes outside nested cycles."""
    return [cycle.head, *(n for n in cycle.components if not isinstance(n, Cycle))]


def _has_inner_loops(cycle: Cycle) -> bool:
    """Whether `cycle` has cycles nested in it."""
    return any(isinstance(c, Cycle) for c in cycle.components)


def _cycle_nodes(cycle: Cycle) -> set[Label]:
    """Every node of `cycle`, nested cycles included."""
    out = {cycle.head}
    for c in cycle.components:
        out |= _cycle_nodes(c) if isinstance(c, Cycle) else {c}
    return out


def analyze_program(
    program: dict[int, IrInstruction],
    entry: State,
    opts: AnalysisOptions | None = None,
    *,
    widen_first: bool = False,
) -> AnalysisResult:
    """Analyse one function (label → instruction) from the entry state.

    `widen_first` (with `opts.unroll_loops`): widen each loop before trying to
    unroll it (see the module's docstring)."""
    opts = opts or AnalysisOptions()
    if opts.map_count is not None:
        for insn in program.values():
            if isinstance(insn, LoadMapFd | LoadMapAddress) and insn.by_index:
                if insn.mapfd >= opts.map_count:
                    return AnalysisResult(
                        None,
                        control_flow_error=(
                            f"invalid map index {insn.mapfd} (have {opts.map_count} maps)"
                        ),
                    )
    try:
        if opts.linux_rules:
            check_function_ends(program)  # the YAML cases are snippets without an exit
            check_reachable(program)
        cfg = build_cfg(program, callbacks=opts.linux_rules)
    except InvalidControlFlow as e:
        return AnalysisResult(None, control_flow_error=str(e), control_flow_pc=e.pc)
    if opts.check_termination:
        entry = entry.copy()
        for head in add_loop_counters(cfg, per_entry=opts.linux_rules):
            entry.zone.set(f"pc[{head}]", Interval.const(0))
    if opts.linux_rules:
        entry = entry.copy()
        for pc in acquire_sites(cfg.insns):
            entry.zone.set(ref_var(pc), Interval.const(0))
    return Analyzer(cfg, entry, opts, widen_first).run()
