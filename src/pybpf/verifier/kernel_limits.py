"""The Linux verifier's limits, checked on the analysis' final invariants (load path).

* **Combined stack** (check_max_stack_depth): each function's stack depth
  is the deepest byte any of its instructions or the helpers it calls
  touch below its frame pointer; with the JIT on (x86-64's default,
  `bpf_jit_enable=1`), the kernel rounds each function's depth up to 16
  bytes (round_up_stack_depth; zero stays zero), and the depths along any
  chain of calls (bpf-to-bpf calls and callbacks) add up to at most 512:
  "combined stack size of 2 calls is 528. Too large". Checked on this
  kernel: main 256 bytes + callee 256 passes, + callee 257 is 528.
* **Call frames** (at most 8: "the call stack of 9 frames is too deep"):
  cfg.py refuses the ninth frame while it inlines calls
  (`kernel_wording` gives its message the kernel's words on the load path).
* **Processed instructions** (BPF_COMPLEXITY_LIMIT_INSNS, 1 million): the
  kernel walks every path instruction by instruction, so a loop costs
  its iterations times its body. pybpf's analysis does not walk paths; the
  count is estimated from what it proves: every reachable instruction
  once, and each instruction inside a loop as many times as the loop's
  counter (`pc[h]`, the termination check's count of the head's visits,
  all iterations of the run) may reach. A loop of 2 instructions run
  499 000 times is 998 000 (the kernel processes 998 003 and accepts),
  one of 12 instructions run 90 000 times is 1 080 000 (rejected by
  both). Callback bodies (bpf_loop) count once, as the kernel verifies
  them once per call site. The estimate ignores the kernel's state
  pruning and its exploration of both sides of every branch, so it is a
  rule of the same size, not the kernel's exact count.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..platform.helper_prototypes import ArgKind, prototype
from .cfg import Cycle, Label, label_str, weak_topological_order
from .domains.interval import POS_INF
from .ir import (
    Assume,
    Atomic,
    Call,
    CallbackEntry,
    CallbackReturn,
    CallLocal,
    IncrementLoopCounter,
    Mem,
    ResetLoopCounter,
)
from .state import State, reg_owner, var

__all__ = [
    "MAX_COMBINED_STACK",
    "MAX_PROCESSED_INSNS",
    "kernel_wording",
    "limit_failures",
    "processed_estimate",
    "stack_depths",
]

MAX_PROCESSED_INSNS = 1_000_000
MAX_COMBINED_STACK = 512
STACK_ROUND = 16  # round_up_stack_depth with the JIT requested

_NOT_INSNS = (Assume, IncrementLoopCounter, ResetLoopCounter, CallbackEntry, CallbackReturn)
_MEMORY_ARGS = frozenset(ArgKind) - {
    ArgKind.ANYTHING,
    ArgKind.CONST_MAP_PTR,
    ArgKind.CONST_SIZE,
    ArgKind.CONST_SIZE_OR_ZERO,
    ArgKind.CONST_ALLOC_SIZE_OR_ZERO,
    ArgKind.PTR_TO_CTX,
    ArgKind.PTR_TO_CTX_OR_NULL,
    ArgKind.PTR_TO_FUNC,
}


def kernel_wording(message: str) -> str:
    """A control-flow message of cfg.py with the kernel's words where they differ."""
    if message.endswith("too many call stack frames"):
        return f"the call stack of 9 frames is too deep ({message})"
    return message


# -- stack ---------------------------------------------------------------------------


def _frame_prefixes(label: Label, insns: Mapping[Label, object]) -> list[Label]:
    """The call nodes (bpf-to-bpf calls, callback entries) whose frames hold `label`, outermost first."""
    if not isinstance(label, str):
        return []
    parts = label.split("/")
    out: list[Label] = []
    for i in range(1, len(parts)):
        text = "/".join(parts[:i])
        node: Label = int(text) if text.isdigit() else text
        if isinstance(insns.get(node), CallLocal | CallbackEntry):
            out.append(node)
    return out


def _lowest(state: State, reg: int, offset: int) -> int | None:
    if reg != 10 and state.reg_types(reg) != {"stack"}:
        return None
    at = state.eval(var(reg_owner(reg), "stack_offset"))
    return at.lo + offset if at.lb_finite() else None


def _touched(state: State, insn: object) -> list[int]:
    """The lowest stack offsets `insn` reads or writes (absolute, as `stack_offset`)."""
    if isinstance(insn, Mem | Atomic):
        low = _lowest(state, insn.access.basereg.v, insn.access.offset)
        return [] if low is None else [low]
    if isinstance(insn, Call) and not insn.builtin:
        proto = prototype(insn.func)
        if proto is None:
            return []
        lows = [_lowest(state, i + 1, 0) for i, k in enumerate(proto.args) if k in _MEMORY_ARGS]
        return [low for low in lows if low is not None]
    return []


def _function(node: Label | None, insns: Mapping[Label, object]) -> object:
    insn = insns.get(node) if node is not None else None
    return ("sub", insn.target) if isinstance(insn, CallLocal) else node


def stack_depths(insns: Mapping[Label, object], pre: Mapping[Label, State]) -> dict[object, int]:
    """Function (`None`: main; `("sub", pc)`; a callback's entry node) → its stack depth."""
    depths: dict[object, int] = {}
    for label, insn in insns.items():
        state = pre.get(label)
        if state is None or state.is_bottom():
            continue
        lows = _touched(state, insn)
        if not lows:
            continue
        top = state.eval(var(reg_owner(10), "stack_offset")).singleton()
        if top is None:
            continue
        frames = _frame_prefixes(label, insns)
        func = _function(frames[-1] if frames else None, insns)
        depths[func] = max(depths.get(func, 0), top - min(lows))
    return depths


def _round(depth: int) -> int:
    return -(-depth // STACK_ROUND) * STACK_ROUND


def _stack_failures(insns: Mapping[Label, object], pre: Mapping[Label, State]) -> dict[Label, str]:
    depths = stack_depths(insns, pre)
    worst: tuple[int, int, Label] | None = None
    for label, insn in insns.items():
        if not isinstance(insn, CallLocal | CallbackEntry):
            continue
        state = pre.get(label)
        if state is None or state.is_bottom():
            continue
        chain = [*_frame_prefixes(label, insns), label]
        total = _round(depths.get(None, 0))
        total += sum(_round(depths.get(_function(node, insns), 0)) for node in chain)
        if total > MAX_COMBINED_STACK and (worst is None or total > worst[1]):
            worst = (len(chain) + 1, total, label)
    if worst is None:
        return {}
    frames, total, label = worst
    return {
        label: (
            f"combined stack size of {frames} calls is {total}. Too large (the frames of a "
            f"chain of calls share {MAX_COMBINED_STACK} bytes of stack)"
        )
    }


# -- processed instructions ----------------------------------------------------------


def _nodes(cycle: Cycle) -> list[Label]:
    out: list[Label] = [cycle.head]
    for c in cycle.components:
        out.extend(_nodes(c) if isinstance(c, Cycle) else [c])
    return out


def processed_estimate(result: object) -> tuple[int, Label | None, int]:
    """(estimated instructions the kernel would process, the costliest loop head, its bound)."""
    cfg = result.cfg  # type: ignore[attr-defined]
    pre: Mapping[Label, State] = result.pre  # type: ignore[attr-defined]
    counts: dict[Label, int] = {}
    costliest: tuple[int, Label | None, int] = (0, None, 0)

    def live(n: Label) -> bool:
        state = pre.get(n)
        return state is not None and not state.is_bottom()

    def walk(components: list, times: int) -> None:
        nonlocal costliest
        for c in components:
            if not isinstance(c, Cycle):
                counts[c] = times
                continue
            nodes = _nodes(c)
            bound = 1
            if not (isinstance(c.head, str) and c.head.endswith("/callback")):
                name = c.head if isinstance(c.head, int) else label_str(c.head)
                counter = f"pc[{name}]"
                his = [pre[n].eval(counter).hi for n in nodes if live(n)]
                bound = max((h for h in his if h < POS_INF), default=0)
                # A counter the zone could not bound: the rounds abstract unrolling found
                # (termination.py), else once.
                bound = max(bound or result.loop_bounds.get(c.head, 1), 1)
            # The load path's counters count the rounds of one entry (cfg.add_loop_counters
            # per_entry): a nested loop runs its rounds once per round of the loop around it.
            bound *= times
            counts[c.head] = bound
            walk(c.components, bound)
            cost = bound * sum(1 for n in nodes if live(n))
            if cost > costliest[0]:
                costliest = (cost, c.head, bound)

    walk(weak_topological_order(cfg), 1)
    total = sum(
        times
        for n, times in counts.items()
        if live(n) and n in cfg.insns and not isinstance(cfg.insns[n], _NOT_INSNS)
    )
    return total, costliest[1], costliest[2]


def limit_failures(result: object) -> dict[Label, str]:
    """Node → the kernel's reason, for the combined stack and the processed-instruction limit."""
    cfg = result.cfg  # type: ignore[attr-defined]
    errors = _stack_failures(cfg.insns, result.pre)  # type: ignore[attr-defined]
    total, head, bound = processed_estimate(result)
    if total > MAX_PROCESSED_INSNS:
        where = head if head is not None else next(iter(cfg.insns))
        errors.setdefault(
            where,
            f"BPF program is too large. Processed {total} insn (an estimate: the loop here may "
            f"run {bound} times; the kernel processes at most {MAX_PROCESSED_INSNS})",
        )
    return errors
