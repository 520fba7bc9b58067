"""Operands shared by both assembler syntaxes: numbers, registers, memory, targets.

Every parser here raises `LineError` for bad text; `assemble` adds the line
number and turns it into an `AsmError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .instruction import Instruction
from .opcodes import NUM_REGS


class LineError(Exception):
    """A problem with one line; `assemble` turns it into an `AsmError`."""


@dataclass(frozen=True)
class Pending:
    """An instruction whose jump target may still be a label.

    `field` is where the resolved offset goes: "off" (16-bit jumps) or
    "imm" (gotol, bpf-to-bpf calls).
    """

    insn: Instruction
    label: str | None = None
    field: str = "off"


# --- numbers, registers, operands -------------------------------------------

INT_RE = re.compile(r"[-+]?(0[xX][0-9a-fA-F]+|[0-9]+)")
IDENT_RE = re.compile(r"[A-Za-z_.$][\w.$]*")


def parse_int(text: str) -> int:
    """A decimal or 0x-hex integer, optionally signed."""
    text = text.strip().replace(" ", "")
    if not INT_RE.fullmatch(text):
        raise LineError(f"expected a number, got '{text}'")
    return int(text, 0) if "x" in text.lower() else int(text, 10)


def imm32(text: str) -> int:
    """A 32-bit immediate; values up to 2**32-1 are bit patterns."""
    value = parse_int(text)
    if not -(1 << 31) <= value < (1 << 32):
        raise LineError(f"immediate {text.strip()} does not fit in 32 bits")
    return value - (1 << 32) if value >= 1 << 31 else value


def imm64(text: str) -> int:
    """A 64-bit immediate for lddw, returned as an unsigned number."""
    value = parse_int(text)
    if not -(1 << 63) <= value < (1 << 64):
        raise LineError(f"immediate {text.strip()} does not fit in 64 bits")
    return value & ((1 << 64) - 1)


def off16(value: int, what: str = "offset") -> int:
    """`value` checked to fit a signed 16-bit offset field."""
    if not -(1 << 15) <= value < (1 << 15):
        raise LineError(f"{what} {value} does not fit in 16 bits")
    return value


REG_RE = re.compile(r"%?([rw])(\d+)")


def parse_reg(text: str) -> tuple[int, bool]:
    """Parse `r3`, `w3` or `%r3`: (number, is-64-bit)."""
    m = REG_RE.fullmatch(text.strip())
    if not m:
        raise LineError(f"expected a register, got '{text.strip()}'")
    n = int(m.group(2))
    if n >= NUM_REGS:
        raise LineError(f"no such register '{text.strip()}' (r0-r10)")
    return n, m.group(1) == "r"


def regnum(text: str) -> int:
    """The number of register `text` (`r3`, `w3` or `%r3`)."""
    return parse_reg(text)[0]


def is_reg(text: str) -> bool:
    """Whether `text` is written as a register (a bad number still counts)."""
    return REG_RE.fullmatch(text.strip()) is not None


MEM_RE = re.compile(r"\s*(%?[rw]\d+)\s*(?:([-+])\s*([-+]?\s*\w+))?\s*")


def parse_mem(text: str) -> tuple[int, int]:
    """`r1 + 4`, `%r10-8`, `r2`: (base register, signed 16-bit offset)."""
    m = MEM_RE.fullmatch(text)
    if not m:
        raise LineError(f"bad memory operand '{text.strip()}'")
    off = 0
    if m.group(2):
        off = parse_int(m.group(3))
        off = -off if m.group(2) == "-" else off
    return regnum(m.group(1)), off16(off)


def parse_target(text: str) -> tuple[int, str | None]:
    """A jump target: (offset, None) for `+3`/`-1`, (0, name) for a label."""
    text = text.strip()
    numeric = re.fullmatch(r"([-+]?\s*(?:0[xX][0-9a-fA-F]+|\d+))(?:\s*<[^>]*>)?", text)
    if numeric:
        return parse_int(numeric.group(1)), None
    m = re.fullmatch(r"<([^<>\s]+)>|(" + IDENT_RE.pattern + ")", text)
    if not m:
        raise LineError(f"bad jump target '{text}'")
    return 0, m.group(1) or m.group(2)


def jump_to(insn: Instruction, text: str, field: str = "off") -> Pending:
    """`insn` with jump target `text` put in `field`, or left pending on a label."""
    offset, label = parse_target(text)
    if label is None:
        if field == "off":
            insn = replace(insn, off=off16(offset, "jump offset"))
        else:
            insn = replace(insn, imm=imm32(str(offset)))
    return Pending(insn, label, field)


def split_operands(text: str, count: int) -> list[str]:
    """Exactly `count` comma-separated operands of `text`."""
    parts = [p.strip() for p in text.split(",")] if text.strip() else []
    if len(parts) != count or any(not p for p in parts):
        raise LineError(f"expected {count} operand(s), got '{text.strip()}'")
    return parts
