"""`ExecutionContext`: what running programs share, like a kernel's BPF subsystem.

One context owns the native `Memory` (the region table every engine checks
or trusts), the live maps keyed by the address a program sees for them
(`lddw rX, map` loads `Map.address`), the loaded programs keyed by id (what
a prog_array holds, like a kernel program fd), the trace output of
`bpf_trace_printk` (what `trace_pipe` shows on Linux) and the number of
simulated CPUs for per-CPU maps.

Two things serve the engines directly:

* the native entry table (`native_entries_address`): program id → native
  address of the program's JIT-compiled entry function, 0 when it runs in
  the interpreter or is not built yet. JIT-compiled `bpf_tail_call` reads
  it (`engine.jit.native_tailcall`) to jump to the target without entering
  Python. Word 0 holds the table's length in words. A table that must grow
  is copied; the old one stays allocated (runs in progress may still read
  it; it only lacks programs registered later, which they then reach
  through Python).
* the simulated CPU of each OS thread (`current_cpu`): assigned
  round-robin on a thread's first run in this context, so that threads
  running programs at once use different per-CPU map slots, as programs on
  different CPUs do in a kernel.

Helper implementations reach it as `env.runtime` (`HelperEnv`). It holds
no logic of maps or helpers: those live in `runtime/maps/` and in the helper
table.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from ..errors import ProgramFault
from .caller import CallerRecord
from .caller import fill as fill_caller
from .memory import Memory
from .task import TASK_STRUCT_SIZE, CurrentTask

if TYPE_CHECKING:  # what the forwarding table and the socket lookups consult, set by their users
    from .fib import ForwardingTable
    from .sockets import Socket, SocketTable

TRACE_LINES_KEPT = 10_000
"""How many trace_printk lines the context keeps (the oldest are dropped)."""

_FIRST_TABLE_WORDS = 64
"""Words of a context's first native entry table (word 0 is its length)."""


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
        self._entries = self._new_table(_FIRST_TABLE_WORDS)
        self._old_tables: list[Any] = []
        self._native_engines: dict[int, Any] = {}
        self._cpu_of_thread = threading.local()
        self._next_cpu = itertools.count()
        #: `current_task` and `caller_socket` for compiled programs (`runtime.caller`),
        #: kept in step by their setters.
        self.caller_record = CallerRecord()
        self.caller_record_address = ctypes.addressof(self.caller_record)
        self._current_task: CurrentTask | None = None
        self._caller_socket: Any = None
        #: What bpf_fib_lookup consults (`runtime.fib`); None: only the loopback device.
        self.fib: ForwardingTable | None = None
        #: What the socket lookups consult (`runtime.sockets`); None: no sockets (NULL).
        self.sockets: SocketTable | None = None
        self._socket_structs: dict[int, tuple[Socket, int]] = {}
        self._task_structs: dict[bytes, int] = {}

    # -- maps -----------------------------------------------------------------

    def add_map(self, map_: Any) -> None:
        """Register a live map under its address (`map_.address`)."""
        with self._lock:
            self._maps[map_.address] = map_

    def remove_map(self, map_: Any) -> None:
        """Forget a map (when its object is closed).

        The interpreter's map lookup sites cache a map's native lookup until
        the memory's generation changes: the map's going bumps it.
        """
        with self._lock:
            self._maps.pop(map_.address, None)
        self.memory.invalidate()

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

    # -- native entries (JIT tail calls) ----------------------------------------

    @staticmethod
    def _new_table(words: int) -> Any:
        table = (ctypes.c_uint64 * words)()
        table[0] = words
        return table

    def native_entries_address(self) -> int:
        """The address of the native entry table (see the module docstring)."""
        return ctypes.addressof(self._entries)

    def register_native_entry(self, prog_id: int, engine: Any, address: int) -> None:
        """Let native tail calls to program `prog_id` call `address` (its JIT entry)."""
        with self._lock:
            table = self._entries
            if prog_id >= table[0]:
                grown = self._new_table(max(2 * table[0], prog_id + 1))
                ctypes.memmove(
                    ctypes.addressof(grown) + 8, ctypes.addressof(table) + 8, 8 * (table[0] - 1)
                )
                self._old_tables.append(table)
                self._entries = table = grown
            self._native_engines[prog_id] = engine
            table[prog_id] = address

    def unregister_native_entry(self, prog_id: int) -> None:
        """Native tail calls to program `prog_id` go through Python again (it closed)."""
        with self._lock:
            self._native_engines.pop(prog_id, None)
            for table in (self._entries, *self._old_tables):
                if prog_id < table[0]:
                    table[prog_id] = 0

    def native_engine(self, prog_id: int) -> Any | None:
        """The engine registered for program `prog_id` (what a native tail call runs)."""
        return self._native_engines.get(prog_id)

    # -- CPUs -------------------------------------------------------------------

    def current_cpu(self) -> int:
        """The simulated CPU of the calling thread (assigned round-robin on first use)."""
        local = self._cpu_of_thread
        cpu = getattr(local, "cpu", None)
        if cpu is None:
            cpu = local.cpu = next(self._next_cpu) % self.ncpus
        return cpu

    # -- the current task and synthetic kernel memory ----------------------------

    @property
    def current_task(self) -> CurrentTask | None:
        """The task programs see as `current` (`runtime.task`); None: the calling host thread."""
        return self._current_task

    @current_task.setter
    def current_task(self, task: CurrentTask | None) -> None:
        self.set_caller(task, self._caller_socket)

    @property
    def caller_socket(self) -> Any:
        """The socket of the call a socket hook is deciding (`runtime.sockets.CallerSocket`)."""
        return self._caller_socket

    @caller_socket.setter
    def caller_socket(self, socket: Any) -> None:
        self.set_caller(self._current_task, socket)

    def set_caller(self, task: CurrentTask | None, socket: Any = None) -> None:
        """The task and socket of the call a hook is deciding now (None, None: no call):
        what the task and socket helpers answer, in both engines."""
        self._current_task, self._caller_socket = task, socket
        fill_caller(self.caller_record, task, socket)

    def task(self) -> CurrentTask:
        """The task a program running now sees as `current` (`current_task` or the host's)."""
        return self.current_task or CurrentTask.host()

    def task_struct_address(self, task: CurrentTask) -> int:
        """The address of `task`'s synthetic, read-only `task_struct` (allocated once per image)."""
        address = self._task_structs.get(task.task_struct)
        if address is None:
            size = max(TASK_STRUCT_SIZE, len(task.task_struct))
            region = self.memory.allocate(size, "task_struct", False, task.task_struct)
            address = self._task_structs[task.task_struct] = region.start
        return address

    def socket_address(self, sock: Socket) -> int:
        """The address of `sock`'s read-only `struct bpf_sock` (allocated once per socket)."""
        entry = self._socket_structs.get(id(sock))
        if entry is None or entry[0] is not sock:
            region = self.memory.allocate_from(sock.bpf_sock_bytes(), "bpf_sock", False)
            entry = self._socket_structs[id(sock)] = (sock, region.start)
        return entry[1]

    def add_memory(self, data: bytes, name: str = "probe", writable: bool = False) -> int:
        """Add a region holding `data` (memory a tracing program probes); return its address.

        For synthetic kernel or user memory: `bpf_probe_read_*` reads any
        live region, so a test puts the bytes a program follows a pointer
        to here and hands the address in through the context or a map.
        """
        return self.memory.allocate_from(data, name, writable).start

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
