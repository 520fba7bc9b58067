"""The eBPF instruction set: opcodes, `Instruction`, decode/encode, assembler, disassembler.

The assembler and the disassembler are imported on first use: loading and
running objects needs only `Instruction` and decoding.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .instruction import Instruction, decode, encode, pc_index, with_pcs

if TYPE_CHECKING:
    from .assembler import assemble
    from .disasm import format_conformance, format_instruction, format_program

_LAZY = {
    "assemble": ".assembler",
    "format_conformance": ".disasm",
    "format_instruction": ".disasm",
    "format_program": ".disasm",
}

__all__ = [
    "Instruction",
    "assemble",
    "decode",
    "encode",
    "format_conformance",
    "format_instruction",
    "format_program",
    "pc_index",
    "with_pcs",
]


def __getattr__(name: str) -> Any:
    """The assembler's and the disassembler's names, imported on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
