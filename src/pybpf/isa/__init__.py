"""The eBPF instruction set: opcodes, `Instruction`, decode/encode, assembler, disassembler."""

from .instruction import Instruction, decode, encode, pc_index, with_pcs

__all__ = ["Instruction", "decode", "encode", "pc_index", "with_pcs"]
