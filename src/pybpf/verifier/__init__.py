"""Static verifier: abstract interpretation over the CFG, after PREVAIL.

Pipeline: `ir.py` (instructions → IR) → `assertions.py` (what each must
satisfy) → `cfg.py` (graph, weak topological order) → `fixpoint.py`
(iteration with `transfer.py`, `assume.py`, `memory.py` over a `State` of
`domains/`) → `checks.py` (assertions against states) → `report.py`.
`prevail_yaml.py` runs PREVAIL's YAML test cases.

`verify(insns, prog_type)` returns a `Report`; `VerifierError` is raised
only by callers that want an exception (the loader).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import VerifierError
from ..lazy import lazy_attributes

if TYPE_CHECKING:
    from ..isa import Instruction
    from .ir import IrInstruction
    from .options import AnalysisOptions, CtxDescriptor, MapDescriptor
    from .report import Failure, Report

_LAZY = {
    "AnalysisOptions": ".options",
    "CtxDescriptor": ".options",
    "MapDescriptor": ".options",
    "Failure": ".report",
    "Report": ".report",
}
"""Public names imported on first use: loading a program whose verdict the
cache holds (`cache.verify_cached`) never imports the analysis."""

__all__ = [
    "AnalysisOptions",
    "CtxDescriptor",
    "Failure",
    "MapDescriptor",
    "Report",
    "VerifierError",
    "entry_constraints",
    "to_ir",
    "verify",
]


__getattr__ = lazy_attributes(__name__, _LAZY, globals())
"""A public name imported on first use (see `_LAZY`)."""


def to_ir(insns: Sequence[Instruction]) -> dict[int, IrInstruction]:
    """Label (pc) → IR instruction for a decoded program."""
    from ..isa import with_pcs
    from .ir import from_instruction

    pairs = list(with_pcs(insns))
    return {pc: from_instruction(insn, pc, pc + insn.slots) for pc, insn in pairs}


def entry_constraints(ctx: CtxDescriptor) -> list[str]:
    """The state at program entry: r1 is the context, r10 the frame pointer."""
    lines = [
        "r1.type=ctx",
        "r1.ctx_offset=0",
        "r1.svalue=[1, 2147418112]",
        "r1.uvalue=[1, 2147418112]",
        "r10.type=stack",
        "r10.stack_offset=512",
        "r10.svalue=[4098, 2147418112]",
        "r10.uvalue=[4098, 2147418112]",
        "packet_size=[0, 65534]",
    ]
    lines.append("meta_offset=[-4098, 0]" if ctx.meta >= 0 else "meta_offset=0")
    return lines


def verify(
    insns: Sequence[Instruction],
    prog_type: str | None = None,
    *,
    options: AnalysisOptions | None = None,
) -> Report:
    """Verify one program (a single function for now) and return its report.

    `prog_type` names the program type; its context layout comes from
    `options.ctx` until the platform tables are wired in.
    """
    from .cfg import ENTRY, InvalidControlFlow, check_function_ends
    from .constraints import parse_invariant
    from .fixpoint import AnalysisResult, analyze_program
    from .ir import Undefined
    from .options import AnalysisOptions
    from .report import Failure, Report

    opts = options or AnalysisOptions(program_type=prog_type)
    program = to_ir(insns)
    for pc, insn in program.items():
        if isinstance(insn, Undefined):  # a field the kernel rejects: never analysed
            return Report(
                failures=[Failure(pc, None, f"invalid instruction (opcode {insn.opcode:#04x})")]
            )
    try:
        check_function_ends(program)
    except InvalidControlFlow as e:
        return Report(failures=[Failure(ENTRY if e.pc is None else e.pc, None, str(e))])
    result: AnalysisResult = analyze_program(
        program, parse_invariant(entry_constraints(opts.ctx)), opts
    )
    if opts.check_termination:
        from .termination import prove_loops_terminate

        prove_loops_terminate(result, opts)
    return result.report()
