"""Verification results as values: `Failure` and `Report`, and their rendering.

A failed proof is a `Failure(pc, assertion, message, source_line)`; a
`Report` holds the verdict, every failure, unreachable-code notes and
(optionally) the invariants. `VerifierError` (in `pybpf.errors`) is raised
only at the API edge, carrying the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a cached verdict is read without importing the analysis
    from .assertions import Assertion
    from .cfg import Label


@dataclass(frozen=True, slots=True)
class Failure:
    """One assertion the analysis could not prove, at `label`."""

    label: Label
    assertion: Assertion | None
    message: str
    source_line: str | None = None

    @property
    def pc(self) -> int | None:
        """The instruction's program pc (the source pc for a jump edge, the callee's pc
        for a node of an inlined bpf-to-bpf call such as `12/34`; None for entry/exit)."""
        from .cfg import original_pc  # the graph and the IR: only once a failure is read

        return original_pc(self.label)

    def __str__(self) -> str:
        from .cfg import label_str

        return f"{label_str(self.label)}: {self.message}"


@dataclass
class Report:
    """The outcome of verifying one program.

    `invariants` holds the pre-invariant of the failing nodes, and of every
    node when the analysis was asked for them (`AnalysisOptions.collect_invariants`).

    Facts for the engines (program pcs, callee code inlined per calling
    context reported at its own pc): `context_accesses` maps each load or
    store through the context pointer to the accessed offset from the
    context's start (the instruction's offset plus the base register's
    proven constant context offset); `mixed_context_pcs` are the loads and
    stores whose base is the context on one path or calling context and
    another pointer on another (the kernel's "same insn cannot be used with
    different pointers"; the load path rejects them). `value_ranges` maps
    the pc of each division, remainder and register shift to the proven
    unsigned range of its register operands (`value_facts.py`), which the
    JIT uses to leave out checks that can never fire; `memory_regions` marks
    each load and store whose base is surely a stack pointer ("stack") or
    surely none ("not-stack"), which the JIT gives LLVM as alias scopes.
    """

    failures: list[Failure] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)
    exit_invariant: set[str] = field(default_factory=set)
    invariants: dict[Label, set[str]] = field(default_factory=dict)
    context_accesses: dict[int, int] = field(default_factory=dict)
    mixed_context_pcs: frozenset[int] = frozenset()
    value_ranges: dict[int, dict[int, tuple[int, int]]] = field(default_factory=dict)
    memory_regions: dict[int, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every assertion was proven."""
        return not self.failures

    @property
    def first_failure(self) -> Failure | None:
        """The failure at the lowest label (what a developer should fix first)."""
        if not self.failures:
            return None
        from .cfg import label_str

        return min(
            self.failures, key=lambda f: (f.pc if f.pc is not None else -1, label_str(f.label))
        )

    def render(self) -> str:
        """A readable verdict with the first failure."""
        if self.ok:
            return "PASS"
        first = self.first_failure
        return f"FAIL\n{first}"
