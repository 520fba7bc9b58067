"""Extensions: program types and helpers an application adds to pybpf (its own hooks).

The public face of `platform.extensions`: describe the context struct with
`StructLayout` / `Field`, the helpers with `ExtensionHelper`, the type
with `ProgramTypeExtension`, and `register_program_type` it; programs of
its sections then load, verify and run as any other. Installed packages
offer theirs through the entry-point group `pybpf.extensions`.
`examples/extension_app/router.py` is a complete application.
"""

from __future__ import annotations

from .platform.contexts import Field, StructLayout
from .platform.extensions import (
    ENTRY_POINT_GROUP,
    ExtensionHelper,
    ProgramTypeExtension,
    load_entry_points,
    register_program_type,
    registered,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "ExtensionHelper",
    "Field",
    "ProgramTypeExtension",
    "StructLayout",
    "load_entry_points",
    "register_program_type",
    "registered",
]
