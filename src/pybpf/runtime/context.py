"""`ExecutionContext`: what running programs share, like a kernel's BPF subsystem.

One context owns the native `Memory` (the region table every engine checks
or trusts), the live maps keyed by the address a program sees for them
(`lddw rX, map` loads `Map.address`), the loaded programs keyed by id (what
a prog_array holds, like a kernel program fd), the trace output of
`bpf_trace_printk` (what `trace_pipe` shows on Linux) and the number of
simulated CPUs for per-CPU maps.

Helper implementations reach it as `env.runtime` (`HelperEnv`). It holds
no logic of maps or helpers: those live in `runtime/maps/` and in the helper
table.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import deque
from typing import Any

from ..errors import ProgramFault
from .memory import Memory

TRACE_LINES_KEPT = 10_000
"""How many trace_printk lines the context keeps (the oldest are dropped)."""


class ExecutionContext:
    """Maps, programs and trace output shared by the programs that run in it."""

    def __init__(self, memory: Memory | None = None, *, ncpus: int | None = None):
        self.memory = memory if memory is not None else Memory()
        self.ncpus = ncpus or os.cpu_count() or 1
        self._maps: dict[int, Any] = {}
        self._programs: dict[int, Any] = {}
        self._next_program_id = itertools.count(1)
        self._lock = threading.Lock()
        self.trace: deque[str] = deque(maxlen=TRACE_LINES_KEPT)

    # -- maps -----------------------------------------------------------------

    def add_map(self, map_: Any) -> None:
        """Register a live map under its address (`map_.address`)."""
        with self._lock:
            self._maps[map_.address] = map_

    def remove_map(self, map_: Any) -> None:
        """Forget a map (when its object is closed)."""
        with self._lock:
            self._maps.pop(map_.address, None)

    def map_at(self, address: int, pc: int | None = None) -> Any:
        """The map a program's map pointer refers to; ProgramFault if none."""
        map_ = self._maps.get(address)
        if map_ is None:
            raise ProgramFault(f"0x{address:x} is not a map pointer", pc=pc, address=address)
        return map_

    def maps(self) -> list[Any]:
        """Every live map, in registration order."""
        return list(self._maps.values())

    # -- programs -------------------------------------------------------------

    def add_program(self, program: Any) -> int:
        """Register a loaded program; return its id (what a prog_array stores)."""
        with self._lock:
            prog_id = next(self._next_program_id)
            self._programs[prog_id] = program
        return prog_id

    def remove_program(self, prog_id: int) -> None:
        """Forget a program id."""
        with self._lock:
            self._programs.pop(prog_id, None)

    def program(self, prog_id: int) -> Any | None:
        """The program with this id, or None."""
        return self._programs.get(prog_id)

    # -- trace output ---------------------------------------------------------

    def emit_trace(self, line: str) -> None:
        """Append one line of trace_printk output."""
        self.trace.append(line)

    def read_trace(self) -> list[str]:
        """Take every trace line written so far (like reading trace_pipe)."""
        with self._lock:
            lines = list(self.trace)
            self.trace.clear()
        return lines
