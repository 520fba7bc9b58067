"""`pybpf verify --kernel`: pybpf's verdict beside the running kernel's.

For each selected program, the object is opened by libbpf and that program
alone is loaded into the kernel with a verifier log buffer of its own
(`pybpf.testing.verdicts.kernel_load`); the kernel's verdict, the log line
that explains a rejection and the log's last lines are shown under pybpf's
report, with one line saying whose rejection it is. Where `bpf()` cannot be
used (not root, no libbpf, a kernel without BPF) the comparison is a
one-line note and `verify` behaves as without `--kernel`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Exit code of `pybpf verify --kernel` when pybpf and the kernel disagree on a program.
EXIT_DISAGREE = 3

#: Kernel log lines shown in text for a rejection (all of them with -v and in JSON).
LOG_TAIL = 12


@dataclass
class KernelSide:
    """The kernel's answer for one program: verdict, reason and log lines."""

    accepted: bool
    reason: str
    log: list[str] = field(default_factory=list)
    errno: int = 0


def unavailable() -> str | None:
    """Why the kernel cannot be asked here, or None when it can."""
    from ..testing.kernel import kernel_available, unavailable_reason

    if kernel_available():
        return None
    return unavailable_reason() or "the bpf() syscall does not work here"


def kernel_side(
    obj: Path, program: str, *, forced_type: str | None = None, btf: Path | None = None
) -> KernelSide:
    """Load `program` of `obj` alone into the running kernel and keep what it said.

    `forced_type` is `--type` (bpftool's name): the program is loaded as
    that type with libbpf's expected attach type for it. An object libbpf
    cannot open is a rejection by libbpf, with its error as the reason.
    """
    from ..platform.sections import program_type_by_name, program_type_for_section
    from ..testing.kernel import KernelError
    from ..testing.verdicts import kernel_load

    prog_type = attach_type = None
    if forced_type is not None:
        prog_type = program_type_by_name(forced_type)
        match = program_type_for_section(forced_type + "/") or program_type_for_section(forced_type)
        if match is not None and match.attach_type is not None:
            attach_type = int(match.attach_type)
    try:
        result = kernel_load(
            obj,
            program,
            prog_type=int(prog_type) if prog_type is not None else None,
            attach_type=attach_type,
            btf=btf,
        )
    except KernelError as error:
        return KernelSide(False, f"libbpf: {error.strerror or error}", [], error.errno or 0)
    return KernelSide(result.accepted, result.reason, result.log_lines, result.errno)


def agreement(pybpf_ok: bool, kernel: KernelSide) -> str:
    """One line saying whose verdict a rejection is."""
    if pybpf_ok and kernel.accepted:
        return "both accept"
    if not pybpf_ok and not kernel.accepted:
        return "both reject"
    if kernel.accepted:
        return "DISAGREE: pybpf rejects a program the kernel accepts (pybpf's rejection)"
    return "DISAGREE: the kernel rejects a program pybpf accepts (the kernel's rejection)"


def render_kernel_text(pybpf_ok: bool, kernel: KernelSide, *, verbose: bool = False) -> list[str]:
    """The lines printed under pybpf's report of one program."""
    mine = "PASS" if pybpf_ok else "FAIL"
    theirs = "PASS" if kernel.accepted else "FAIL"
    lines = [
        f"  pybpf: {mine}  kernel ({os.uname().release}): {theirs}  -> {agreement(pybpf_ok, kernel)}"
    ]
    if not kernel.accepted:
        lines.append(f"  kernel error: {kernel.reason}")
    shown = kernel.log if verbose or kernel.accepted else kernel.log[-LOG_TAIL:]
    if shown:
        more = len(kernel.log) - len(shown)
        title = "kernel log" + (
            f" (last {len(shown)} of {len(kernel.log)} lines; -v shows all)" if more else ""
        )
        lines.append(f"  {title}:")
        lines += [f"    | {line}" for line in shown]
    return lines


def kernel_json(pybpf_ok: bool, kernel: KernelSide) -> dict[str, Any]:
    """The `kernel` member of a program's entry in `pybpf verify --kernel --json`."""
    return {
        "verdict": "pass" if kernel.accepted else "fail",
        "reason": kernel.reason,
        "errno": kernel.errno,
        "log": kernel.log,
        "agree": pybpf_ok == kernel.accepted,
    }
