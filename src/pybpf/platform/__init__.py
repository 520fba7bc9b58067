"""What Linux means by a program type: its number, its section names, its helpers.

`platform/` is data the rest of pybpf looks things up in:

* `program_types`: `ProgramType` and `AttachType`, the kernel's
  `enum bpf_prog_type` and `enum bpf_attach_type` with Linux numbering.
* `helper_ids`: `HelperId`, the kernel's `enum bpf_func_id`, and
  `helper_name` for rendering `call` instructions.
* `sections`: ELF section name → program type and expected attach type the
  way libbpf decides it (`program_type_for_section`), and the way PREVAIL
  decides it (`prevail_program_type`), which the sample verdicts assume.

Context layouts, helper prototypes and valid return values per program type
build on these tables; eBPF-for-Windows types will sit alongside.
"""

from pybpf.platform.helper_ids import HelperId, helper_name
from pybpf.platform.program_types import AttachType, ProgramType
from pybpf.platform.sections import (
    PREVAIL_PROGRAM_TYPES,
    SECTION_DEFS,
    PrevailMatch,
    PrevailProgramType,
    SectionDef,
    SectionFlags,
    SectionMatch,
    prevail_program_type,
    program_type_for_section,
)

__all__ = [
    "PREVAIL_PROGRAM_TYPES",
    "SECTION_DEFS",
    "AttachType",
    "HelperId",
    "PrevailMatch",
    "PrevailProgramType",
    "ProgramType",
    "SectionDef",
    "SectionFlags",
    "SectionMatch",
    "helper_name",
    "prevail_program_type",
    "program_type_for_section",
]
