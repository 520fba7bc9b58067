"""The stack domain: which of the 512 stack bytes hold numbers, and which cells exist.

A *cell* is a stored value `(offset, size)`: its numeric variables
(`s[o...e].svalue`, `.uvalue`, pointer offsets) live in the zone and its type in
the type domain, under the cell's name; this class keeps the set of cells
and the byte-granular map of known-numeric bytes (PREVAIL's `ArrayDomain`
with its `BitsetDomain`). Offsets count from the bottom of the stack frame:
`r10` is at offset 512.

Callees' frames lie below: a call moves r10 down 512 bytes, so the frames
of a call chain reach offset 512 - STACK_SIZE (`STACK_LO`). PREVAIL's own
test cases put r10 higher (up to `STACK_SIZE`). The byte map covers both,
[STACK_LO, STACK_SIZE), stored with the bias `-STACK_LO`.
"""

from __future__ import annotations

SUBPROGRAM_STACK_SIZE = 512
MAX_CALL_STACK_FRAMES = 8
# All frames of a call chain share one array, as in PREVAIL; r10 of the
# entry function points at 512 and each call moves it 512 bytes up.
STACK_SIZE = SUBPROGRAM_STACK_SIZE * MAX_CALL_STACK_FRAMES
# The lowest offset a frame of a call chain reaches (the 8th frame's bottom).
STACK_LO = SUBPROGRAM_STACK_SIZE - STACK_SIZE
_BIAS = -STACK_LO


def cell_name(offset: int, size: int) -> str:
    """`s[504...511]`, or `s[504]` for one byte."""
    if size == 1:
        return f"s[{offset}]"
    return f"s[{offset}...{offset + size - 1}]"


class StackDomain:
    """Numeric-byte bitmap plus the set of live cells."""

    __slots__ = ("num_bytes", "cells")

    def __init__(self, num_bytes: int = 0, cells: frozenset[tuple[int, int]] = frozenset()) -> None:
        self.num_bytes = num_bytes  # bit i set: byte i is known to be a number
        self.cells = set(cells)

    def copy(self) -> StackDomain:
        """An independent copy."""
        return StackDomain(self.num_bytes, frozenset(self.cells))

    @staticmethod
    def _mask(offset: int, size: int) -> int:
        lo = max(offset, STACK_LO)
        hi = min(offset + size, STACK_SIZE)
        if hi <= lo:
            return 0
        return ((1 << (hi - lo)) - 1) << (lo + _BIAS)

    def set_numeric(self, offset: int, size: int, numeric: bool) -> None:
        """Mark bytes as numbers (or as not known to be numbers)."""
        mask = self._mask(offset, size)
        self.num_bytes = (self.num_bytes | mask) if numeric else (self.num_bytes & ~mask)

    def all_numeric(self, offset: int, size: int) -> bool:
        """True when every byte of [offset, offset+size) is a number."""
        if offset < STACK_LO or offset + size > STACK_SIZE:
            return False
        mask = self._mask(offset, size)
        return self.num_bytes & mask == mask

    def numeric_run(self, offset: int) -> int:
        """How many consecutive numeric bytes start at `offset`."""
        if offset < STACK_LO or offset >= STACK_SIZE:
            return 0
        bits = self.num_bytes >> (offset + _BIAS)
        return ((bits + 1) & ~bits).bit_length() - 1

    def overlapping(self, offset: int, size: int) -> list[tuple[int, int]]:
        """The cells that share a byte with [offset, offset+size)."""
        return [c for c in self.cells if c[0] < offset + size and offset < c[0] + c[1]]

    def join(self, other: StackDomain) -> StackDomain:
        """Bytes numeric on both sides; cells present on both sides."""
        return StackDomain(self.num_bytes & other.num_bytes, frozenset(self.cells & other.cells))

    def leq(self, other: StackDomain) -> bool:
        """Inclusion (more numeric bytes is more precise)."""
        return self.num_bytes & other.num_bytes == other.num_bytes

    def strings(self) -> set[str]:
        """`s[a...b].type=number` for each run of numeric bytes."""
        out = set()
        i = 0
        bits = self.num_bytes
        end = STACK_SIZE + _BIAS
        while i < end:
            if not (bits >> i) & 1:
                i += 1
                continue
            j = i
            while j + 1 < end and (bits >> (j + 1)) & 1:
                j += 1
            out.add(f"{cell_name(i - _BIAS, j - i + 1)}.type=number")
            i = j + 1
        return out
