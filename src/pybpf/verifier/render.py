"""A verifier `Report` for people (text) and for machines (JSON).

What a developer needs to fix a rejected program, in order: the first
failing instruction (pc and its llvm-objdump text), the reason (the
PREVAIL-style message the analysis produced, then the same in plain
words), the C source line from BTF line_info, the abstract state before
that instruction, and a one-line hint when the failure is one of the common
mistakes (no bounds check against `data_end`, a map value used without a
NULL check, uninitialised stack).

A `Report` carries the invariant before each failing node (the state
shown with a rejection), and the invariant before every node when the
analysis was asked for them (`AnalysisOptions.collect_invariants`, off on
the load path so loading does not pay for it). `analysis_invariants`
verifies once more with that option, for `-v`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..elf.specs import ObjectSpec, ProgramSpec
from ..isa import format_instruction, with_pcs
from .cfg import Label, label_str
from .report import Failure, Report

__all__ = [
    "ProgramVerdict",
    "analysis_invariants",
    "explain",
    "hint",
    "render_json",
    "render_text",
]

STATE_LIMIT = 40
"""Constraints shown for the failing state in text (all of them with -v and in JSON)."""


@dataclass
class ProgramVerdict:
    """One program's verification: its report, the time it took, the invariants if known."""

    program: ProgramSpec
    prog_type: str
    report: Report
    seconds: float = 0.0
    invariants: dict[Label, set[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the program verified."""
        return self.report.ok


# -- the analysis's invariants ------------------------------------------------------


def analysis_invariants(
    program: ProgramSpec, obj: ObjectSpec, prog_type: str
) -> dict[Label, set[str]]:
    """The pre-invariant of every node: `verify_program` with `collect_invariants`.

    The load path's options (the invariants are those of the verdict);
    empty when the analysis cannot run (a control-flow error, a helper
    pybpf does not know).
    """
    from .options import AnalysisOptions
    from .program import verify_program

    opts = AnalysisOptions.for_load()
    opts.collect_invariants = True
    return verify_program(program, obj, prog_type=prog_type, options=opts).invariants


def _state_at(verdict: ProgramVerdict, label: Label) -> set[str] | None:
    """The invariant before `label`: the verdict's, else the one the report kept."""
    state = verdict.invariants.get(label)
    return state if state is not None else verdict.report.invariants.get(label)


# -- plain words -----------------------------------------------------------------

_REGISTER = re.compile(r"\b(r\d+)\.")


def _register(failure: Failure) -> str | None:
    match = _REGISTER.search(failure.message)
    return match.group(1) if match else None


def _types(state: set[str] | None, reg: str) -> str | None:
    """What the state says of `reg`'s type (`packet`, `{ctx, number}`), or None if unset."""
    for constraint in state or ():
        if constraint.startswith(f"{reg}.type=") or constraint.startswith(f"{reg}.type in "):
            return constraint.split("=", 1)[1] if "=" in constraint else constraint.split(" in ")[1]
    return None


def explain(failure: Failure, state: set[str] | None = None) -> str:
    """The failure's reason as one plain sentence."""
    m = failure.message
    reg = _register(failure) or "a register"
    if "packet_size" in m:
        return (
            f"{reg} points into the packet, and this access may reach past data_end: "
            "the program has not proven the packet is long enough"
        )
    if m.startswith("Lower bound must be at least meta_offset") or (
        m.startswith("Lower bound must be at least 0") and "packet" in (_types(state, reg) or "")
    ):
        return f"this access through {reg} may start before the beginning of the packet"
    if m.startswith("Possible null access"):
        return (
            f"{reg} may be NULL here (the result of a map lookup, ringbuf reserve or "
            "socket lookup used without a NULL check)"
        )
    if m.startswith("Possibly NULL socket"):
        return f"{reg} may be NULL here: a socket lookup's result goes on without a NULL check"
    if m.startswith("Invalid socket access"):
        return (
            f"this field of struct bpf_sock cannot be read through {reg} at this offset and "
            "width (sock_common pointers from bpf_skc_lookup_tcp reach fewer fields)"
        )
    if m.startswith("Cannot write into a socket"):
        return "a socket's fields are read-only to programs"
    if m.startswith("Stack content is not numeric") or m.startswith("Illegal map update"):
        return "stack bytes are read (or passed to a helper) before anything was written to them"
    if "shared_region_size" in m or (
        m.startswith("Lower bound must be at least 0") and "shared" in (_types(state, reg) or "")
    ):
        return f"this access through {reg} may fall outside the map value (its value_size)"
    if "stack_offset" in m or "total_stack_size" in m:
        return "this access may fall outside the program's 512-byte stack frame"
    if m.startswith("Cannot write to context pointer field"):
        return "this context field is read-only for the program type"
    if m.startswith("Nonzero context offset"):
        return "the context pointer is passed on after being moved; pass ctx itself"
    if m.startswith("Upper bound must be at most") or m.startswith("Lower bound must be at least"):
        return f"this access through {reg} may fall outside the region it points to"
    if m.startswith("Only numbers can be stored to externally-visible regions"):
        return "a pointer would be stored where user space can read it (a map value or the packet)"
    if m.startswith("Possible division by zero") or m.startswith(
        "Only numbers can be used as divisors"
    ):
        return "the divisor may be zero (or is not a number)"
    if m.startswith("Invalid size"):
        return "a helper's size argument is not proven to be positive and within bounds"
    if m.startswith("Invalid type"):
        found = _types(state, reg) if reg.startswith("r") else None
        if reg.startswith("r") and state is not None and found is None:
            return f"{reg} is read before anything was assigned to it"
        return f"{reg} does not hold the kind of value this instruction needs (it holds {found or 'something else'})"
    if m.startswith("Only pointers can be dereferenced"):
        return f"{reg} is a number, not a pointer: it cannot be dereferenced"
    if m.startswith("Loop counter is too large"):
        return "a loop may not terminate (its bound cannot be proven)"
    if "undefined label" in m:
        return "a jump or call leaves the program"
    if "recursion" in m or "call stack frames" in m:
        return "the bpf-to-bpf calls recurse or nest too deeply"
    if "not supported by pybpf" in m or "cannot link" in m:
        return "the program uses something pybpf cannot provide here"
    return "the verifier could not prove this instruction safe"


def hint(failure: Failure, state: set[str] | None = None) -> str | None:
    """A one-line fix for the common mistakes, or None."""
    m = failure.message
    if "packet_size" in m:
        return "add `if (ptr + N > data_end) return …;` before the access"
    if m.startswith("Possible null access"):
        return "check the result of bpf_map_lookup_elem (or bpf_ringbuf_reserve) for NULL"
    if m.startswith("Possibly NULL socket"):
        return "check the lookup's result first: `if (!sk) return …;`"
    if m.startswith("Unreleased reference") and "socket" in m:
        return "call bpf_sk_release(sk) on every path that got a socket"
    if m.startswith("Stack content is not numeric") or m.startswith("Illegal map update"):
        return "initialise the variable/struct (memset or = {})"
    if "shared_region_size" in m:
        return "check the index or offset against the value's size before the access"
    if m.startswith("Invalid size"):
        return "bound the size first: `if (len == 0 || len > sizeof(buf)) return …;`"
    if m.startswith("Loop counter is too large"):
        return "give the loop a constant bound the verifier can see"
    return None


# -- text --------------------------------------------------------------------------


def _source(program: ProgramSpec, pc: int | None) -> str | None:
    if pc is None or pc < 0:
        return None
    info = program.line_at(pc)
    if info is None:
        return None
    text = info.line.strip()
    where = f"{info.file_name}:{info.line_number}"
    return f"{where}: {text}" if text else where


def _instructions(program: ProgramSpec) -> dict[int, str]:
    labels = {pc: name for name, pc in program.functions}
    return {
        pc: format_instruction(insn, pc, labels=labels)
        for pc, insn in with_pcs(program.instructions)
    }


def _sorted_state(state: set[str]) -> list[str]:
    return sorted(state, key=lambda c: (not c.startswith("r"), c))


def _failure_text(verdict: ProgramVerdict, failure: Failure, texts: dict[int, str]) -> list[str]:
    pc = failure.pc
    state = _state_at(verdict, failure.label)
    where = label_str(failure.label)
    insn = texts.get(pc) if pc is not None else None
    lines = [f"  at {where}: {insn}" if insn else f"  at {where}"]
    lines.append(f"  error: {failure.message}")
    lines.append(f"  reason: {explain(failure, state)}")
    source = failure.source_line or _source(verdict.program, pc)
    if source:
        lines.append(f"  source: {source}")
    tip = hint(failure, state)
    if tip:
        lines.append(f"  hint: {tip}")
    if state is not None:
        shown = _sorted_state(state)
        lines.append(f"  state before {where}:")
        lines += [f"    {c}" for c in shown[:STATE_LIMIT]]
        if len(shown) > STATE_LIMIT:
            lines.append(f"    … {len(shown) - STATE_LIMIT} more (-v or --json shows all)")
    return lines


def _label_order(label: Label) -> tuple:
    if isinstance(label, int):
        return (0, label, -1, "")
    if isinstance(label, tuple):
        return (0, label[0], label[1], "")
    return (1, 0, 0, label)


def render_text(verdict: ProgramVerdict, *, verbose: bool = False) -> list[str]:
    """The lines `pybpf verify` prints for one program."""
    program = verdict.program
    report = verdict.report
    status = "PASS" if report.ok else "FAIL"
    head = (
        f"{program.section}/{program.name} ({verdict.prog_type}): {status}"
        f" ({verdict.seconds * 1000:.0f} ms)"
    )
    lines = [head]
    texts = _instructions(program)
    if verbose and verdict.invariants:
        lines += _invariant_listing(verdict, texts)
    first = report.first_failure
    if first is not None:
        lines += _failure_text(verdict, first, texts)
        others = [f for f in report.failures if f is not first]
        if others and verbose:
            lines.append("  other failures:")
            lines += [f"    {f}" for f in others]
        elif others:
            lines.append(f"  ({len(others)} more failure(s); -v lists them)")
    if verbose:
        lines += [f"  note: {note}" for note in report.unreachable]
    return lines


def _invariant_listing(verdict: ProgramVerdict, texts: dict[int, str]) -> list[str]:
    """PREVAIL's --print-invariants: the pre-invariant, then the instruction, per label."""
    lines = []
    for label in sorted(verdict.invariants, key=_label_order):
        if label == "exit":
            continue
        inv = verdict.invariants[label]
        lines.append("")
        lines.append(f"  Pre-invariant : [{', '.join(_sorted_state(inv))}]")
        if isinstance(label, int) and label in texts:
            lines.append(f"  {label}: {texts[label]}")
        else:
            lines.append(f"  {label_str(label)}:")
    exit_inv = verdict.invariants.get("exit")
    if exit_inv is not None:
        lines.append("")
        lines.append(f"  Exit invariant : [{', '.join(_sorted_state(exit_inv))}]")
    lines.append("")
    return lines


# -- JSON --------------------------------------------------------------------------


def _label_json(label: Label) -> Any:
    return list(label) if isinstance(label, tuple) else label


def _failure_json(verdict: ProgramVerdict, failure: Failure, texts: dict[int, str]) -> dict:
    pc = failure.pc
    state = _state_at(verdict, failure.label)
    return {
        "label": label_str(failure.label),
        "pc": pc,
        "instruction": texts.get(pc) if pc is not None else None,
        "message": failure.message,
        "reason": explain(failure, state),
        "hint": hint(failure, state),
        "source": failure.source_line or _source(verdict.program, pc),
        "state": _sorted_state(state) if state is not None else None,
    }


def render_json(verdicts: Sequence[ProgramVerdict], *, path: str, verbose: bool = False) -> dict:
    """One JSON document for every selected program (see `pybpf verify --json`)."""
    programs = []
    for verdict in verdicts:
        texts = _instructions(verdict.program)
        entry: dict[str, Any] = {
            "name": verdict.program.name,
            "section": verdict.program.section,
            "prog_type": verdict.prog_type,
            "verdict": "pass" if verdict.ok else "fail",
            "time": round(verdict.seconds, 6),
            "failures": [_failure_json(verdict, f, texts) for f in verdict.report.failures],
            "unreachable": list(verdict.report.unreachable),
        }
        if verbose:
            entry["invariants"] = {
                label_str(label): _sorted_state(inv)
                for label, inv in sorted(
                    verdict.invariants.items(), key=lambda kv: _label_order(kv[0])
                )
            }
        programs.append(entry)
    return {
        "path": path,
        "verdict": "pass" if all(v.ok for v in verdicts) else "fail",
        "programs": programs,
    }
