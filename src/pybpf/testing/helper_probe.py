"""Which helpers the running kernel lets each program type call, found by asking it.

For every (program type, expected attach type) that libbpf's section table
names (`pybpf.platform.sections.SECTION_DEFS`), and every helper id, the
program `call N; r0 = 0; exit` is loaded with `bpf(BPF_PROG_LOAD)`. The
kernel looks the helper up in the type's func_proto table before it looks
at any argument (check_helper_call → get_helper_proto), so the log says
"program of this type cannot use helper" (or "invalid func") exactly when
the table has no entry; any other outcome means the helper is available.
Tracing and LSM programs get the BTF id of a kernel function to attach to
(`bpf_fentry_test1`, `bpf_lsm_file_open`, the `task` iterator, a raw
tracepoint), as the kernel insists on one before it verifies.

`python -m pybpf.testing.helper_probe` prints the table as Python
(`platform/helper_availability.py` holds its output for Linux 6.18,
checked against the kernel's func_proto sources).
"""

from __future__ import annotations

import platform
import sys

from ..isa import Instruction
from ..platform.helper_ids import HelperId
from ..platform.program_types import AttachType, ProgramType
from ..platform.sections import SECTION_DEFS, SectionFlags
from .raw_bpf import load_verdict

__all__ = ["kinds", "probe", "refused_helpers"]

_CALL, _MOV_R0_0, _EXIT = 0x85, 0xB7, 0x95
_SLEEPABLE = 1 << 4  # BPF_F_SLEEPABLE
_UNAVAILABLE = ("program of this type cannot use helper", "invalid func", "unknown func")
#: Program types that need a target this probe cannot give (a program fd, a struct_ops type).
_SKIPPED = frozenset({ProgramType.EXT, ProgramType.STRUCT_OPS, ProgramType.UNSPEC})
_BTF_TARGETS = {
    AttachType.TRACE_FENTRY: "bpf_fentry_test1",
    AttachType.TRACE_FEXIT: "bpf_fentry_test1",
    AttachType.MODIFY_RETURN: "bpf_modify_return_test",
    AttachType.TRACE_ITER: "bpf_iter_task",
    AttachType.TRACE_RAW_TP: "btf_trace_sched_switch",
    AttachType.LSM_MAC: "bpf_lsm_file_open",
}


Kind = tuple[ProgramType, AttachType | None, bool]


def kinds() -> list[Kind]:
    """The (program type, expected attach type, sleepable) triples of libbpf's section table."""
    seen: dict[Kind, None] = {}
    for d in SECTION_DEFS:
        if d.prog_type not in _SKIPPED:
            sleepable = bool(d.flags & SectionFlags.SLEEPABLE) or d.prog_type == ProgramType.SYSCALL
            seen.setdefault((d.prog_type, d.attach_type, sleepable), None)
    return list(seen)


def _btf_id(attach: AttachType | None) -> int | None:
    if attach not in _BTF_TARGETS:
        return 0
    from ..btf.target import kernel_btf

    btf = kernel_btf()
    ids = btf.ids_by_name(_BTF_TARGETS[attach]) if btf is not None else []
    return ids[0] if ids else None


def refused_helpers(
    prog_type: ProgramType, attach: AttachType | None, sleepable: bool, ids: range
) -> frozenset[int] | None:
    """The helper ids the kernel refuses to such programs (None: one cannot load here)."""
    btf_id = _btf_id(attach)
    if btf_id is None:
        return None
    target = {
        "attach_type": int(attach) if attach is not None else 0,
        "attach_btf_id": btf_id,
        "prog_flags": _SLEEPABLE if sleepable else 0,
    }
    for ret in (0, 1):  # a return value the type accepts
        ret_insn = Instruction(_MOV_R0_0, imm=ret)
        if load_verdict([ret_insn, Instruction(_EXIT)], int(prog_type), **target)[0]:
            break
    else:
        return None
    refused = set()
    for func in ids:
        code = [Instruction(_CALL, imm=func), ret_insn, Instruction(_EXIT)]
        _, _, log = load_verdict(code, int(prog_type), **target)
        if any(words in log for words in _UNAVAILABLE):
            refused.add(func)
    return frozenset(refused)


def probe() -> dict[Kind, frozenset[int] | None]:
    """Every section kind → the helpers this kernel refuses it."""
    ids = range(1, max(HelperId) + 1)
    return {kind: refused_helpers(*kind, ids) for kind in kinds()}


def main() -> int:
    """Print the probed table."""
    print(f"# Linux {platform.release()}")
    for (prog_type, attach, sleepable), refused in probe().items():
        name = attach.name if attach is not None else None
        shown = "None" if refused is None else sorted(refused)
        print(f"{prog_type.name} {name} {sleepable} {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
