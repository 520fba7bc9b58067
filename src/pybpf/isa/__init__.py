"""The eBPF instruction set: opcodes, `Instruction`, decode/encode, assembler, disassembler."""

from .assembler import assemble
from .disasm import format_conformance, format_instruction, format_program
from .instruction import Instruction, decode, encode, pc_index, with_pcs

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
