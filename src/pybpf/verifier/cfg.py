"""Control-flow graph of one function, and its weak topological order.

Nodes are labels: an instruction's label (an int), a jump edge
`(from, to)` that holds the implicit `Assume` of a conditional jump (as in
PREVAIL, so that a branch that can never be taken is reported at
`from:to`), and the two special nodes `ENTRY` and `EXIT`. Basic blocks are
the maximal straight-line runs of nodes; the weak topological order
(Bourdoncle 1993) over nodes drives `fixpoint.py`: components are either a
single node or a cycle headed by a loop head, where widening happens.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from .ir import (
    Assume,
    Atomic,
    Call,
    CallbackEntry,
    CallbackReturn,
    CallLocal,
    Callx,
    Exit,
    IncrementLoopCounter,
    IrInstruction,
    Jmp,
    LoadPseudo,
    ResetLoopCounter,
    Undefined,
)

ENTRY = "entry"
EXIT = "exit"

Label = int | tuple[int, int] | str


def counter_label(head: Label) -> str:
    """The label of the loop counter node after loop head `head`."""
    return f"{label_str(head)} (counter)"


def label_str(label: Label) -> str:
    """PREVAIL's printed form of a label (`3`, `2:5`, `entry`)."""
    if isinstance(label, tuple):
        return f"{label[0]}:{label[1]}"
    return str(label)


_LAST_PC = re.compile(
    r"(\d+)(?::\d+)?(?:/callback(?:-entry|-return)?)?(?: \((?:counter|entry)\))?$"
)


def original_pc(label: Label) -> int | None:
    """The program pc a node stands for (an inlined callee's `12/34` is pc 34; None: none)."""
    if isinstance(label, int):
        return label
    if isinstance(label, tuple):
        return label[0]
    m = _LAST_PC.search(label)
    return int(m.group(1)) if m else None


class InvalidControlFlow(Exception):
    """The program's control flow cannot be analysed (bad jump, recursion); `pc`: where."""

    def __init__(self, message: str, pc: int | None = None) -> None:
        super().__init__(message)
        self.pc = pc


@dataclass
class Cfg:
    """Nodes, instructions at nodes, and edges of one function."""

    insns: dict[Label, IrInstruction] = field(default_factory=dict)
    succs: dict[Label, list[Label]] = field(default_factory=dict)
    preds: dict[Label, list[Label]] = field(default_factory=dict)

    def add_edge(self, a: Label, b: Label) -> None:
        """Add the edge a → b (once)."""
        if b not in self.succs.setdefault(a, []):
            self.succs[a].append(b)
            self.preds.setdefault(b, []).append(a)
        self.succs.setdefault(b, [])
        self.preds.setdefault(a, [])

    @property
    def nodes(self) -> list[Label]:
        """All nodes, entry first."""
        return list(self.succs)

    def basic_blocks(self) -> list[list[Label]]:
        """Maximal chains of nodes with a single entry and a single exit."""
        heads = [
            n
            for n in self.succs
            if len(self.preds.get(n, [])) != 1 or len(self.succs[self.preds[n][0]]) != 1
        ]
        blocks = []
        for head in heads:
            block = [head]
            n = head
            while len(self.succs[n]) == 1:
                nxt = self.succs[n][0]
                if len(self.preds[nxt]) != 1 or nxt in heads:
                    break
                block.append(nxt)
                n = nxt
            blocks.append(block)
        return blocks


CODE_ADDR = 4  # lddw src=BPF_PSEUDO_FUNC: a callback's address


def function_starts(program: dict[int, IrInstruction]) -> list[int]:
    """Where each function begins: the first label, call targets, callback addresses.

    As the kernel's check_subprogs finds them (callback addresses are
    `lddw src=4` immediates, relative to the lddw's second half).
    """
    labels = sorted(program)
    if not labels:
        return []
    starts = {labels[0]}
    for label in labels:
        insn = program[label]
        if isinstance(insn, CallLocal):
            starts.add(insn.target)
        elif isinstance(insn, LoadPseudo) and insn.kind == CODE_ADDR:
            starts.add(callback_target(label, insn))
    return sorted(s for s in starts if s in program)


def callback_target(label: int, insn: LoadPseudo) -> int:
    """The function `lddw rN, <func>` at `label` names (the kernel: `pc + imm + 1`)."""
    return label + 1 + _s32(insn.imm)


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


def check_function_ends(program: dict[int, IrInstruction]) -> None:
    """Each function ends with `exit` or `goto`, and jumps stay inside their function.

    The kernel's check_subprogs: "last insn is not an exit or jmp", "jump
    out of range from insn A to B".
    """
    labels = sorted(program)
    starts = function_starts(program)
    bounds = starts[1:] + [labels[-1] + 1] if labels else []
    for start, end in zip(starts, bounds, strict=True):
        body = [label for label in labels if start <= label < end]
        last = program[body[-1]]
        if not (isinstance(last, Exit) or (isinstance(last, Jmp) and last.cond is None)):
            raise InvalidControlFlow("last insn is not an exit or jmp", body[-1])
        for label in body:
            insn = program[label]
            if isinstance(insn, Jmp) and not start <= insn.target < end:
                raise InvalidControlFlow(
                    f"jump out of range from insn {label} to {insn.target}", label
                )


def check_reachable(program: dict[int, IrInstruction]) -> None:
    """Every instruction is on some path from the first one, taking every branch both ways.

    The kernel's check_cfg walks the program depth-first (conditional jumps
    both ways, calls into their targets and on, `lddw` of a function address
    into the callback) before it verifies anything: "unreachable insn N".
    """
    labels = sorted(program)
    if not labels:
        return
    following = {label: labels[i + 1] for i, label in enumerate(labels[:-1])}
    seen = {labels[0]}
    todo = [labels[0]]
    while todo:
        label = todo.pop()
        insn = program[label]
        nexts: list[int] = []
        if isinstance(insn, Jmp):
            nexts.append(insn.target)
            if insn.cond is not None and label in following:
                nexts.append(following[label])
        elif isinstance(insn, Exit):
            pass
        else:
            if isinstance(insn, CallLocal):
                nexts.append(insn.target)
            elif isinstance(insn, LoadPseudo) and insn.kind == CODE_ADDR:
                nexts.append(callback_target(label, insn))
            if label in following:
                nexts.append(following[label])
        for target in nexts:
            if target in program and target not in seen:
                seen.add(target)
                todo.append(target)
    missing = [label for label in labels if label not in seen]
    if missing:
        raise InvalidControlFlow(f"unreachable insn {missing[0]}", missing[0])


def build_cfg(program: dict[int, IrInstruction], *, callbacks: bool = False) -> Cfg:
    """The CFG of `program` (label → instruction, labels in order).

    With `callbacks`, the callback of each `bpf_loop` / `bpf_for_each_map_elem`
    call is inlined as a loop in front of the call (`_expand_callbacks`).
    """
    cfg = Cfg()
    labels = sorted(program)
    cfg.succs[ENTRY] = []
    cfg.preds[ENTRY] = []
    if not labels:
        cfg.add_edge(ENTRY, EXIT)
        return cfg
    cfg.add_edge(ENTRY, labels[0])
    for i, label in enumerate(labels):
        insn = program[label]
        cfg.insns[label] = insn
        cfg.succs.setdefault(label, [])
        cfg.preds.setdefault(label, [])
        fallthrough: Label = labels[i + 1] if i + 1 < len(labels) else EXIT
        if isinstance(insn, Undefined):
            continue
        if isinstance(insn, Jmp):
            if insn.target not in program:
                raise InvalidControlFlow(f"jump to undefined label {insn.target}")
            if insn.cond is None:
                cfg.add_edge(label, insn.target)
            elif insn.target == fallthrough:
                cfg.add_edge(label, fallthrough)
            else:
                for target, cond in ((insn.target, insn.cond), (fallthrough, insn.cond.reverse())):
                    node = (label, target)
                    cfg.insns[node] = Assume(cond, is_implicit=True)
                    cfg.add_edge(label, node)
                    cfg.add_edge(node, target)
        elif isinstance(insn, Exit):
            cfg.add_edge(label, EXIT)
        else:
            if isinstance(insn, CallLocal) and insn.target not in program:
                raise InvalidControlFlow(f"call to undefined label {insn.target}")
            cfg.add_edge(label, fallthrough)
    flat = {n: list(ss) for n, ss in cfg.succs.items()}
    flat_insns = dict(cfg.insns)
    _inline_calls(cfg, labels[0])
    if callbacks:
        _expand_callbacks(cfg, program, flat, flat_insns)
    return cfg


MAX_CALL_STACK_FRAMES = 8
TAIL_CALL = 12  # bpf_tail_call


def _inline_calls(cfg: Cfg, main_entry: int) -> None:
    """Replace each reachable bpf-to-bpf call by a copy of the callee (PREVAIL's inlining).

    The copy's nodes are named `<call label>/<callee label>`; its exits return
    to the call's fall-through. Calls inside the copy are inlined in turn.
    """
    flat = {n: list(ss) for n, ss in cfg.succs.items()}
    flat_insns = dict(cfg.insns)
    reachable = _reachable(flat, ENTRY)
    for node in sorted(n for n in reachable if isinstance(n, int)):
        insn = flat_insns[node]
        if isinstance(insn, CallLocal):
            cfg.insns[node] = replace(insn, frame=str(node))
            _inline(cfg, flat, flat_insns, node, insn.target, node, depth=2)


def _reachable(succs: dict[Label, list[Label]], root: Label) -> set[Label]:
    seen = {root}
    todo = [root]
    while todo:
        for m in succs.get(todo.pop(), []):
            if m not in seen:
                seen.add(m)
                todo.append(m)
    return seen


def _inline(
    cfg: Cfg,
    flat: dict[Label, list[Label]],
    flat_insns: dict[Label, IrInstruction],
    caller: Label,
    target: int,
    top_caller: int,
    depth: int,
) -> None:
    if depth > MAX_CALL_STACK_FRAMES:
        raise InvalidControlFlow("too many call stack frames")
    prefix = label_str(caller)
    body: set[Label] = set()
    todo: list[Label] = [target]
    while todo:
        n = todo.pop()
        if n in body or n == EXIT:
            continue
        if n == top_caller:
            raise InvalidControlFlow(f"{prefix}: illegal recursion")
        body.add(n)
        todo.extend(flat.get(n, []))

    def clone(n: Label) -> str:
        return f"{prefix}/{label_str(n)}"

    call = cfg.insns[caller]
    signature = call.signature if isinstance(call, CallLocal) else None
    (return_to,) = cfg.succs[caller]
    cfg.succs[caller] = []
    cfg.preds[return_to] = [p for p in cfg.preds[return_to] if p != caller]
    cfg.add_edge(caller, clone(target))
    nested = []
    for n in sorted(body, key=label_str):
        insn = flat_insns.get(n)
        if isinstance(insn, Exit):
            insn = Exit(frame=prefix, signature=signature)
        elif isinstance(insn, CallLocal):
            insn = replace(insn, frame=clone(n))
            nested.append((clone(n), insn.target))
        if insn is not None:
            cfg.insns[clone(n)] = insn
        for m in flat.get(n, []):
            cfg.add_edge(clone(n), return_to if m == EXIT else clone(m))
    exit_insn = Exit(frame=prefix, signature=signature)
    _tail_call_exits(cfg, flat_insns, body, clone, exit_insn, return_to)
    for node, callee in nested:
        _inline(cfg, flat, flat_insns, node, callee, top_caller, depth + 1)


TAIL_CALL_EXIT = " (tail call exit)"


def _tail_call_exits(
    cfg: Cfg,
    flat_insns: dict[Label, IrInstruction],
    body: set[Label],
    clone: Callable[[Label], str],
    exit_insn: Exit,
    return_to: Label,
) -> None:
    # A tail call made in a subprogram replaces the subprogram's frame: when
    # it is made, the subprogram returns the target's r0 (an unknown number)
    # to its caller. As the kernel's verifier, each bpf_tail_call of the copy
    # also leads to an exit of the copy, with r0 as the call left it.
    for n in body:
        insn = flat_insns.get(n)
        if isinstance(insn, Call) and not insn.builtin and insn.func == TAIL_CALL:
            node = clone(n) + TAIL_CALL_EXIT
            cfg.insns[node] = exit_insn
            cfg.add_edge(clone(n), node)
            cfg.add_edge(node, return_to)


# ---------------------------------------------------------------- callbacks

#: Helpers that call a callback, and the register holding it.
CALLBACK_HELPERS = {181: 2, 164: 2}  # bpf_loop, bpf_for_each_map_elem
CALLBACK_SUFFIX = "/callback"


def writes_register(insn: IrInstruction | None, reg: int) -> bool:
    """Whether `insn` sets register `reg` (a destination, a load, a fetching atomic);
    calls, which set r0 and clobber r1-r5, are not counted: look for them apart."""
    dst = getattr(insn, "dst", None)
    if dst is not None and getattr(dst, "v", None) == reg:
        return True
    value = getattr(insn, "value", None)
    if getattr(insn, "is_load", False) and getattr(value, "v", None) == reg:
        return True
    return isinstance(insn, Atomic) and insn.fetch and insn.valreg.v == reg


def _callback_of(program: dict[int, IrInstruction], pc: int, reg: int) -> int | None:
    """The function whose address the straight-line code before `pc` puts in `reg`."""
    labels = sorted(program)
    joins = {i.target for i in program.values() if isinstance(i, Jmp)}
    joins.update(i.target for i in program.values() if isinstance(i, CallLocal))
    at = labels.index(pc)
    current = pc
    for label in reversed(labels[max(at - 64, 0) : at]):
        if current in joins:
            return None  # reached from elsewhere too: the register may differ there
        insn = program[label]
        if isinstance(insn, Jmp | Exit | CallLocal | Callx | Call):
            return None
        if writes_register(insn, reg):
            if isinstance(insn, LoadPseudo) and insn.kind == CODE_ADDR:
                target = callback_target(label, insn)
                return target if target in program else None
            return None
        current = label
    return None


def _frames(label: Label) -> int:
    text = label_str(label)
    return 1 + text.count("/") - 2 * text.count(CALLBACK_SUFFIX + "-entry")


def _expand_callbacks(
    cfg: Cfg,
    program: dict[int, IrInstruction],
    flat: dict[Label, list[Label]],
    flat_insns: dict[Label, IrInstruction],
) -> None:
    """Analyse each callback where its helper is called, as the kernel does.

    A call `X: call bpf_loop` gets a loop head `X/callback` in front of it:
    from there either the helper is called (the callback ran as often as it
    will), or the callback runs once more: `X/callback-entry` sets up its
    arguments in a new frame, the callee's body follows (inlined, nodes
    `X/callback-entry/<pc>`), and `X/callback-return` restores the caller's
    registers and goes back to the head. The fixpoint at the head covers
    every number of invocations.
    """
    done: set[Label] = set()
    while True:
        reachable = _reachable(cfg.succs, ENTRY)
        todo = [
            n
            for n in cfg.insns
            if n in reachable
            and n not in done
            and isinstance(cfg.insns[n], Call)
            and cfg.insns[n].func in CALLBACK_HELPERS
        ]
        if not todo:
            return
        for node in sorted(todo, key=label_str):
            done.add(node)
            insn = cfg.insns[node]
            pc = original_pc(node)
            target = None
            if pc is not None and pc in program:
                target = _callback_of(program, pc, CALLBACK_HELPERS[insn.func])
            if target is None:
                raise InvalidControlFlow(
                    f"the callback of helper {insn.func} is not a known function", pc
                )
            prefix = label_str(node)
            head, entry, back = (
                prefix + CALLBACK_SUFFIX,
                prefix + CALLBACK_SUFFIX + "-entry",
                prefix + CALLBACK_SUFFIX + "-return",
            )
            preds = cfg.preds.get(node, [])
            for p in preds:
                cfg.succs[p] = [head if s == node else s for s in cfg.succs[p]]
            cfg.preds[head] = list(preds)
            cfg.succs[head] = []
            cfg.preds[node] = []
            cfg.add_edge(head, node)
            cfg.add_edge(head, entry)
            cfg.add_edge(entry, back)
            cfg.add_edge(back, head)
            cfg.insns[entry] = CallbackEntry(insn.func, frame=entry)
            cfg.insns[back] = CallbackReturn(insn.func, frame=entry)
            _inline(cfg, flat, flat_insns, entry, target, -1, depth=_frames(node) + 1)


# ---------------------------------------------------------------- WTO


@dataclass
class Cycle:
    """A WTO component headed by loop head `head`."""

    head: Label
    components: list[Label | Cycle]


def weak_topological_order(cfg: Cfg, root: Label = ENTRY) -> list[Label | Cycle]:
    """Bourdoncle's recursive weak topological order of the nodes reachable from `root`."""
    dfn: dict[Label, int] = {}
    stack: list[Label] = []
    num = 0
    old_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old_limit, 4 * len(cfg.succs) + 1000))

    def visit(v: Label, partition: list[Label | Cycle]) -> int:
        nonlocal num
        stack.append(v)
        num += 1
        dfn[v] = num
        head = num
        loop = False
        for w in cfg.succs.get(v, []):
            mn = visit(w, partition) if dfn.get(w, 0) == 0 else dfn[w]
            if mn <= head:
                head = mn
                loop = True
        if head == dfn[v]:
            dfn[v] = sys.maxsize
            element = stack.pop()
            if loop:
                while element != v:
                    dfn[element] = 0
                    element = stack.pop()
                partition.insert(0, component(v))
            else:
                partition.insert(0, v)
        return head

    def component(v: Label) -> Cycle:
        partition: list[Label | Cycle] = []
        for w in cfg.succs.get(v, []):
            if dfn.get(w, 0) == 0:
                visit(w, partition)
        return Cycle(v, partition)

    try:
        result: list[Label | Cycle] = []
        visit(root, result)
        return result
    finally:
        sys.setrecursionlimit(old_limit)


def loop_heads(wto: list[Label | Cycle]) -> Iterator[Label]:
    """Every loop head in `wto`."""
    for c in wto:
        if isinstance(c, Cycle):
            yield c.head
            yield from loop_heads(c.components)


def add_loop_counters(cfg: Cfg, *, per_entry: bool = False) -> list[Label]:
    """Insert a `pc[h] += 1` node after every loop head h; return the heads.

    With `per_entry` (the load path), each loop's counter restarts at 0
    whenever the loop is entered from outside (a `pc[h] = 0` node on the
    entering edges): an inner loop's counter then counts the iterations of
    one entry, which the zone can bound by the inner loop's own condition,
    where PREVAIL's single count over every entry grows with the outer
    loop (400 x 400 rounds: 160000, beyond any relation the zone keeps).
    Termination is still proven: each entry runs a bounded number of
    rounds, and the enclosing loop's counter bounds the entries.
    """
    order = weak_topological_order(cfg)
    members = {c.head: set(_cycle_members(c)) for c in _cycles(order)}
    heads = [
        h
        for h in loop_heads(order)
        if h not in (ENTRY, EXIT) and not (isinstance(h, str) and h.endswith(CALLBACK_SUFFIX))
    ]
    for h in heads:
        name = h if isinstance(h, int) else label_str(h)
        node = counter_label(h)
        cfg.insns[node] = IncrementLoopCounter(name)
        succs = cfg.succs[h]
        for s in succs:
            cfg.preds[s] = [node if p == h else p for p in cfg.preds[s]]
        cfg.succs[node] = succs
        cfg.preds[node] = [h]
        cfg.succs[h] = [node]
        if per_entry:
            _reset_on_entry(cfg, h, name, members[h] | {node})
    return heads


def _reset_on_entry(cfg: Cfg, head: Label, name: int | str, body: set[Label]) -> None:
    outside = [p for p in cfg.preds[head] if p not in body]
    if not outside:
        return
    reset = f"{label_str(head)} (entry)"
    cfg.insns[reset] = ResetLoopCounter(name)
    cfg.preds[head] = [reset] + [p for p in cfg.preds[head] if p in body]
    cfg.succs[reset] = [head]
    cfg.preds[reset] = outside
    for p in outside:
        cfg.succs[p] = [reset if s == head else s for s in cfg.succs[p]]


def _cycles(wto: list[Label | Cycle]) -> Iterator[Cycle]:
    for c in wto:
        if isinstance(c, Cycle):
            yield c
            yield from _cycles(c.components)


def _cycle_members(cycle: Cycle) -> Iterator[Label]:
    yield cycle.head
    for c in cycle.components:
        if isinstance(c, Cycle):
            yield from _cycle_members(c)
        else:
            yield c
