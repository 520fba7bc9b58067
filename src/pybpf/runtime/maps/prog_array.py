"""BPF_MAP_TYPE_PROG_ARRAY: the table of programs `bpf_tail_call` jumps through.

Semantics follow the fd arrays of kernel/bpf/arraymap.c: u32 keys below
`max_entries`, u32 values; an update must use BPF_ANY (else EINVAL), an
index out of range gives E2BIG, an empty slot ENOENT on lookup and
delete. User space stores a program (a kernel fd; here a program id from
`ExecutionContext.add_program`, an object with an `.id`, or the id's 4
bytes); a syscall lookup returns the program's id, as the kernel does.

Storage is the array family's native code: slot `i` holds the program id,
0 for an empty slot (ids start at 1). Programs may not look a prog_array
up (the verifier refuses it); the native lookup returns the slot address,
which is what a JIT's tail call reads.

A slot is 8 bytes (values are 4 bytes, rounded up to 8): the id in the
low 4, and in the high 4 a marker that is 1 when the id does not name the
stored program in the map's `context` (a program object of another
context was stored, or the map has no context). JIT-compiled tail calls read the slot as one u64:
an id below 2**32 is looked up in the context's native entry table,
anything else goes through Python (`tail_call_target`).
"""

from __future__ import annotations

import struct
import threading
from typing import Any

from ...elf.specs import MapSpec
from ..memory import Memory
from .array import ArrayMap
from .base import MapError
from .header import BPF_ANY, E2BIG, EINVAL, ENOENT

EBADF = 9


def program_id(program: Any) -> int:
    """The program id of `program`: an int, 4 little-endian bytes or an object with `.id`."""
    if isinstance(program, (bytes, bytearray, memoryview)):
        if len(program) != 4:
            raise MapError(EINVAL, "update", "", f"value is {len(program)} bytes, expected 4")
        return struct.unpack("<I", bytes(program))[0]
    if isinstance(program, int):
        return program
    identifier = getattr(program, "id", None)
    if not isinstance(identifier, int):
        raise MapError(EBADF, "update", "", f"{program!r} is not a program or program id")
    return identifier


class FdArrayMap(ArrayMap):
    """An array whose values are references (programs, maps, perf events): the fd array rules.

    Subclasses say how a user-space value becomes the stored reference.
    Slot value 0 means empty.
    """

    shareable = False

    kind = "fd array"

    def __init__(self, spec: MapSpec, memory: Memory, *, ncpus: int | None = None):
        super().__init__(spec, memory, ncpus=ncpus)
        self.context: Any = None
        """The `ExecutionContext` used to resolve ids (set by whoever registers the map)."""
        self._objects: dict[int, Any] = {}
        self._lock = threading.Lock()

    def check_spec(self, spec: MapSpec) -> None:
        """fd arrays have 4-byte keys and 4-byte values."""
        super().check_spec(spec)
        if spec.value_size != 4:
            raise MapError(EINVAL, "create", spec.name, f"{self.kind} values must be 4 bytes")

    def _index(self, key: bytes | int, op: str) -> int:
        if isinstance(key, int):
            key = struct.pack("<I", key)
        index = struct.unpack("<I", self._key(key, op))[0]
        if index >= self.spec.max_entries:
            raise MapError(E2BIG if op == "update" else ENOENT, op, self.name)
        return index

    def _slot(self, index: int) -> int:
        start = index * self.header.value_block
        return struct.unpack_from("<I", self.value_region.view, start)[0]

    def _store(self, index: int, value: int, marker: int = 0) -> None:
        self.value_region.write(index * self.header.value_block, struct.pack("<II", value, marker))

    def marker(self, stored: int, keep: Any) -> int:
        """The high word of a slot holding `stored` for object `keep` (see the module docstring)."""
        return 0

    def slot(self, index: int) -> int:
        """The raw u32 in slot `index` (0: empty)."""
        if not 0 <= index < self.spec.max_entries:
            return 0
        return self._slot(index)

    def update(self, key: bytes | int, value: Any, flags: int = BPF_ANY) -> None:  # type: ignore[override]
        """Store a reference at `key`; only BPF_ANY is allowed, as for every fd array."""
        if flags != BPF_ANY:
            raise MapError(EINVAL, "update", self.name, "fd arrays only take BPF_ANY")
        index = self._index(key, "update")
        stored, keep = self.resolve(value)
        marker = self.marker(stored, keep)
        with self._lock:
            self._store(index, stored, marker)
            if keep is None:
                self._objects.pop(index, None)
            else:
                self._objects[index] = keep

    def resolve(self, value: Any) -> tuple[int, Any]:
        """The u32 to store for `value`, and the object to keep alive (or None)."""
        raise NotImplementedError

    def lookup(self, key: bytes | int) -> bytes | None:  # type: ignore[override]
        """The stored id (4 bytes), or None when the slot is empty or out of range."""
        try:
            index = self._index(key, "lookup")
        except MapError as error:
            if error.errno == ENOENT:
                return None
            raise
        stored = self._slot(index)
        return struct.pack("<I", stored) if stored else None

    def delete(self, key: bytes | int) -> None:  # type: ignore[override]
        """Empty slot `key` (ENOENT when already empty or out of range)."""
        index = self._index(key, "delete")
        with self._lock:
            if not self._slot(index):
                raise MapError(ENOENT, "delete", self.name)
            self._store(index, 0)
            self._objects.pop(index, None)

    def __iter__(self):
        # get_next_key walks every index, empty or not, like the kernel's; as
        # a Mapping, iteration yields only the occupied slots, so that
        # `items()` never meets a key whose lookup fails.
        return (
            struct.pack("<I", index) for index in range(self.spec.max_entries) if self._slot(index)
        )


class ProgArrayMap(FdArrayMap):
    """BPF_MAP_TYPE_PROG_ARRAY: slot → program id; `tail_call_target` resolves it."""

    kind = "prog_array"

    def resolve(self, value: Any) -> tuple[int, Any]:
        """A program id (from an int, 4 bytes or `.id`); EBADF when it is no program."""
        identifier = program_id(value)
        if identifier <= 0 or identifier > 0xFFFFFFFF:
            raise MapError(EBADF, "update", self.name, f"{identifier} is not a program id")
        keep = None if isinstance(value, (int, bytes, bytearray, memoryview)) else value
        if keep is None and self.context is not None:
            if self.context.program(identifier) is None:
                raise MapError(EBADF, "update", self.name, f"no program with id {identifier}")
        return identifier, keep

    def marker(self, stored: int, keep: Any) -> int:
        """0 when the context knows the stored program by id `stored`, else 1 (Python resolves)."""
        if self.context is None:
            return 1
        return 0 if keep is None or self.context.program(stored) is keep else 1

    def tail_call_target(self, index: int) -> Any | None:
        """The program in slot `index` (what bpf_tail_call jumps to), or None.

        A program stored as an object is returned as is; a bare id is
        resolved through `context` (None when there is no context).
        """
        if not 0 <= index < self.spec.max_entries:
            return None
        identifier = self._slot(index)
        if not identifier:
            return None
        found = self._objects.get(index)
        if found is not None:
            return found
        if self.context is not None:
            return self.context.program(identifier)
        return None
