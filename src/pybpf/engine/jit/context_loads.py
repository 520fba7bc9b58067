"""Which loads of a verified program read a context pointer field, and from which slot.

Clang reads `xdp_md->data` and friends as 32-bit loads; the kernel's
verifier knows from the pointer's type that the base register is the
context and rewrites such a load into a 64-bit load of the real pointer.
The JIT does the same with pybpf's verifier facts: `Report.context_accesses`
(pc → offset into the context of every load or store through the context
pointer). A load whose offset is a pointer field of the program type's
layout becomes a load of that field's slot in the context region's native
pointer array (`RunState.ctx_pointers`); slots are numbered in the order
of `StructLayout.pointers`. A load of a field the kernel keeps narrower
than its slot (`Field.bits`: tc_classid is 16 bits) maps to `~mask`, a
negative number: the JIT loads the bytes and keeps only `mask`. A load of a
field the kernel allows but pybpf cannot give a value for (`ContextAccess.
unsupported`: `__sk_buff.sk`, `bpf_sock_addr.sk`) maps to `UNSUPPORTED +
offset`: the JIT faults there, as the interpreter does, instead of reading
the bytes. Every other context access reads the context bytes directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...errors import NotSupportedError
from ...isa.instruction import Instruction, with_pcs
from ...isa.opcodes import SIZE_BYTES, InsnClass, Size
from ...platform.program_type_info import context_access

UNSUPPORTED = 1 << 32
"""`UNSUPPORTED + offset`: a load of an unsupported field at `offset` (see the docstring)."""


def pointer_slot(layout: Any, field: str) -> int:
    """The slot of pointer field `field` in a context's native pointer array."""
    return layout.pointers.index(field)


def context_loads(insns: Sequence[Instruction], report: Any, prog_type: Any) -> dict[int, int]:
    """pc → pointer slot for every load of a context pointer field (see module docstring).

    Raises `NotSupportedError` when the facts are missing (a report without
    `context_accesses`) or one instruction reads the context in one path and
    other memory in another, which the JIT cannot rewrite statically.
    """
    accesses = getattr(report, "context_accesses", None)
    if accesses is None:
        raise NotSupportedError("the verifier's report has no context-access facts for the JIT")
    mixed = getattr(report, "mixed_context_pcs", frozenset())
    if mixed:
        raise NotSupportedError(
            f"pc {min(mixed)} accesses the context on one path and other memory on another"
        )
    if not accesses:
        return {}
    access = context_access(prog_type)
    layout = getattr(access, "layout", None)
    if layout is None:
        return {}
    by_pc = dict(with_pcs(insns))
    loads: dict[int, int] = {}
    for pc, offset in accesses.items():
        insn = by_pc.get(pc)
        if insn is None or insn.opcode & 0x07 != InsnClass.LDX:
            continue
        field = layout.field_at(offset)
        if field is not None and field.name in access.unsupported:
            loads[pc] = UNSUPPORTED + offset
        elif field is not None and field.pointer and field.offset == offset:
            loads[pc] = pointer_slot(layout, field.name)
        elif field is not None:
            mask = field.read_mask(offset, SIZE_BYTES[Size(insn.opcode & 0x18)])
            if mask is not None:
                loads[pc] = ~mask
    return loads
