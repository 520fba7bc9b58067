"""The eBPF instruction set: opcodes, `Instruction`, decode/encode, assembler, disassembler.

The assembler and the disassembler are imported on first use: loading and
running objects needs only `Instruction` and decoding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_attributes
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


__getattr__ = lazy_attributes(__name__, _LAZY, globals())
"""The assembler's and the disassembler's names, imported on first use."""
