"""Termination of loops the loop-counter argument cannot bound, by abstract unrolling.

With `check_termination`, every loop head gets a counter `pc[h]` and the
analysis must bound it (`BoundedLoopCount`, PREVAIL's argument). That
needs a relation between the counter and the loop's exit condition that
the zone domain can hold: `i += 1; if i < n` works, but clang's
`r4 += 8; if r4 == 64` (examples/socket_filter.o) does not, since
intervals cannot express "a multiple of 8 that is not 64".

`prove_loops_terminate` retries each loop whose counter could not be
bounded, the way the kernel's verifier explores a loop: iteration by
iteration, without joining iterations. From the state entering the loop
(from the analysis' invariants), the loop body (acyclic once the edges
back to the head are removed) is run once per iteration, giving the state
at the head's next arrival. If it becomes bottom within `MAX_ITERATIONS`
iterations, no execution goes round the loop more often: the loop
terminates and its counter failure is dropped. Otherwise (a state that
repeats, a nested or multi-entry loop, the budget spent) the failure stays.

Each state over-approximates the concrete states at that iteration (sound
transfer functions and joins, from an entry state that over-approximates
every entry), so the argument is sound.
"""

from __future__ import annotations

from .assertions import BoundedLoopCount, explicate, for_linux
from .cfg import Cfg, Cycle, Label, weak_topological_order
from .checks import check
from .fixpoint import AnalysisResult
from .ir import IncrementLoopCounter
from .options import AnalysisOptions
from .state import State
from .transfer import transfer

MAX_ITERATIONS = 1024
MAX_NODE_VISITS = 200_000


def prove_loops_terminate(result: AnalysisResult, opts: AnalysisOptions) -> None:
    """Drop the loop-counter failures of loops that terminate by abstract unrolling,
    and note in `result.loop_bounds` how many rounds they run."""
    if result.cfg is None:
        return
    cycles: dict[Label, set[Label]] | None = None
    for label, failure in list(result.failures.items()):
        if not isinstance(failure.assertion, BoundedLoopCount):
            continue
        heads = result.cfg.preds.get(label, [])
        if len(heads) != 1:
            continue
        if cycles is None:
            cycles = _wto_cycles(result.cfg) if opts.linux_rules else {}
        rounds = _terminates(result.cfg, result, heads[0], opts, cycles.get(heads[0]))
        if rounds is not None:
            del result.failures[label]
            result.loop_bounds[heads[0]] = rounds


def _wto_cycles(cfg: Cfg) -> dict[Label, set[Label]]:
    """Loop head → the nodes of its loop (nested loops included), from the weak
    topological order. The load path's counters restart at each entry of a loop
    (cfg.add_loop_counters `per_entry`), so an inner loop is unrolled alone, from the
    state entering it, not as part of the cycle through the loop around it."""
    out: dict[Label, set[Label]] = {}

    def visit(components: list) -> None:
        for c in components:
            if isinstance(c, Cycle):
                out[c.head] = set(_members(c))
                visit(c.components)

    visit(weak_topological_order(cfg))
    return out


def _members(cycle: Cycle) -> list[Label]:
    found = [cycle.head]
    for c in cycle.components:
        found.extend(_members(c) if isinstance(c, Cycle) else [c])
    return found


def _scc(cfg: Cfg, head: Label) -> set[Label]:
    """The nodes on a cycle through `head` (reachable from it and reaching it)."""

    def reach(start: Label, edges: dict[Label, list[Label]]) -> set[Label]:
        seen = {start}
        todo = [start]
        while todo:
            for n in edges.get(todo.pop(), []):
                if n not in seen:
                    seen.add(n)
                    todo.append(n)
        return seen

    both = reach(head, cfg.succs) & reach(head, cfg.preds)
    return both if any(p in both for p in cfg.preds.get(head, [])) else set()


def _body_order(cfg: Cfg, scc: set[Label], head: Label) -> list[Label] | None:
    """The loop's nodes in topological order from `head` (None: an inner cycle)."""
    indegree = {n: 0 for n in scc}
    for n in scc:
        for s in cfg.succs.get(n, []):
            if s in scc and s != head:
                indegree[s] += 1
    order = []
    ready = [head]
    while ready:
        n = ready.pop()
        order.append(n)
        for s in cfg.succs.get(n, []):
            if s in scc and s != head:
                indegree[s] -= 1
                if indegree[s] == 0:
                    ready.append(s)
    return order if len(order) == len(scc) else None


def _join(states: list[State]) -> State:
    out = State.bottom()
    for s in states:
        if not s.is_bottom():
            out = out.join(s)
    return out


def _post(cfg: Cfg, label: Label, pre: State, opts: AnalysisOptions) -> State:
    """The state after `label` (bottom when one of its assertions may fail, as the analysis)."""
    insn = cfg.insns.get(label)
    if insn is None or pre.is_bottom() or isinstance(insn, IncrementLoopCounter):
        return pre
    found = explicate(insn, opts.privileged)
    for assertion in for_linux(found) if opts.linux_rules else found:
        if check(pre, assertion, opts) is not None:
            return State.bottom()
    state = pre.copy()
    transfer(state, insn, opts)
    return state


def _terminates(
    cfg: Cfg,
    result: AnalysisResult,
    head: Label,
    opts: AnalysisOptions,
    cycle: set[Label] | None = None,
) -> int | None:
    """The most rounds the loop at `head` runs from the state entering it, or None.

    `cycle` (the load path, with per-entry counters): the loop's own nodes;
    otherwise the strongly connected nodes through `head`, which for an inner
    loop include the loop around it (PREVAIL's counters count every entry)."""
    scc = cycle if cycle is not None else _scc(cfg, head)
    if not scc:
        return None
    if any(p not in scc for n in scc if n != head for p in cfg.preds.get(n, [])):
        return None  # entered elsewhere than at its head
    order = _body_order(cfg, scc, head)
    if order is None:
        return None  # a nested loop: not unrolled
    back = [p for p in cfg.preds.get(head, []) if p in scc]
    outside = [p for p in cfg.preds.get(head, []) if p not in scc]
    state = _join([result.post[p] for p in outside if p in result.post])
    visits = 0
    for rounds in range(MAX_ITERATIONS):
        if state.is_bottom():
            return rounds
        posts: dict[Label, State] = {}
        for n in order:
            if n == head:
                pre = state
            else:
                pre = _join([posts[p] for p in cfg.preds.get(n, []) if p in posts])
            posts[n] = _post(cfg, n, pre, opts)
        visits += len(order)
        nxt = _join([posts[p] for p in back])
        if nxt.leq(state) and state.leq(nxt):
            return None  # the same state again: the loop may run forever
        if visits > MAX_NODE_VISITS:
            return None
        state = nxt
    return MAX_ITERATIONS if state.is_bottom() else None
