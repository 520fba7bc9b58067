"""Parse PREVAIL's invariant strings into an abstract `State`.

The strings are those of YAML `pre`/`post` lists and of printed
invariants: `r1.type=packet`, `r1.type in {ctx, packet}`,
`r2.type=r1.type`, `r1.svalue=5`, `r1.uvalue=[0, +oo]`,
`r2.svalue=r1.uvalue+4`, `r1.svalue-r2.svalue<=3`, `packet_size=[0, 65534]`,
`s[504...511].type=number`, `s[504].svalue=1`, or `_|_` for bottom.
"""

from __future__ import annotations

import re

from .domains.interval import NEG_INF, POS_INF, Interval
from .domains.stack import cell_name
from .domains.types import ALL, parse_types
from .domains.zone import is_min_only
from .state import State

_OWNER = r"(?:r\d+|s\[\d+(?:\.\.\.\d+)?\])"
_VAR = rf"(?:{_OWNER}\.\w+|packet_size|meta_offset|pc\[[\w/]+\])"
_NUM = r"-?\d+"
_TYPE_RE = re.compile(rf"^({_OWNER})\.type\s*(=|in)\s*(.+)$")
_EQ_RE = re.compile(rf"^({_VAR})=(.+)$")
_DIFF_RE = re.compile(rf"^({_VAR})-({_VAR})<=({_NUM})$")
_INTERVAL_RE = re.compile(r"^\[\s*(-oo|-?\d+)\s*,\s*(\+oo|-?\d+)\s*\]$")
_VAR_OFF_RE = re.compile(rf"^({_VAR})(?:([+-])(\d+))?$")
_CELL_RE = re.compile(r"^s\[(\d+)(?:\.\.\.(\d+))?\]")


class ConstraintError(ValueError):
    """A constraint string that cannot be read."""


def normalize(name: str) -> str:
    """Write `s[504...504]` as `s[504]`; other names unchanged."""
    m = _CELL_RE.match(name)
    if not m:
        return name
    lo = int(m.group(1))
    hi = int(m.group(2) or lo)
    return cell_name(lo, hi - lo + 1) + name[m.end() :]


def _cell_of(name: str) -> tuple[int, int] | None:
    m = _CELL_RE.match(name)
    if not m:
        return None
    lo = int(m.group(1))
    hi = int(m.group(2) or lo)
    return lo, hi - lo + 1


def _bound(text: str) -> int:
    if text == "-oo":
        return NEG_INF
    if text == "+oo":
        return POS_INF
    return int(text)


def parse_invariant(lines: list[str]) -> State:
    """The state described by `lines` (top when empty)."""
    state = State.top()
    if set(lines) == {"_|_"}:
        return State.bottom()
    for line in lines:
        add_constraint(state, line.replace(" ", "") if "type" not in line else line.strip())
    return state


def add_constraint(state: State, text: str) -> None:
    """Meet `state` with one constraint string."""
    m = _TYPE_RE.match(text)
    if m:
        owner = normalize(m.group(1))
        rhs = m.group(3).strip()
        if rhs.endswith(".type"):
            types = state.types_of(normalize(rhs[: -len(".type")]))
        else:
            types = parse_types(rhs)
            if not types <= ALL:
                raise ConstraintError(f"unknown type in {text!r}")
        cell = _cell_of(owner)
        if cell is not None:
            state.stack.cells.add(cell)
            if types == {"number"}:
                state.stack.set_numeric(cell[0], cell[1], True)
        state.restrict_type(owner, frozenset(types))
        return
    m = _DIFF_RE.match(text)
    if m:
        a, b = normalize(m.group(1)), normalize(m.group(2))
        _note_cells(state, a, b)
        state.zone.add_constraint_le(a, b, int(m.group(3)))
        return
    m = _EQ_RE.match(text)
    if not m:
        raise ConstraintError(f"cannot parse constraint {text!r}")
    lhs = normalize(m.group(1))
    rhs = m.group(2)
    _note_cells(state, lhs)
    if re.fullmatch(_NUM, rhs):
        _meet(state, lhs, Interval.const(int(rhs)))
        return
    mi = _INTERVAL_RE.match(rhs)
    if mi:
        _meet(state, lhs, Interval(_bound(mi.group(1)), _bound(mi.group(2))))
        return
    mv = _VAR_OFF_RE.match(rhs)
    if mv:
        other = normalize(mv.group(1))
        _note_cells(state, other)
        off = int(mv.group(3) or 0) * (-1 if mv.group(2) == "-" else 1)
        state.zone.assume_eq(lhs, other, off)
        return
    raise ConstraintError(f"cannot parse constraint {text!r}")


def _meet(state: State, name: str, value: Interval) -> None:
    # Sizes are kept as lower bounds only, as PREVAIL does.
    if is_min_only(name):
        value = Interval(value.lo, POS_INF)
    state.zone.meet_interval(name, value)


def _note_cells(state: State, *names: str) -> None:
    for name in names:
        cell = _cell_of(name)
        if cell is not None:
            state.stack.cells.add(cell)
