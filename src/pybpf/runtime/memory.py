"""Native memory that eBPF programs can touch, and the table of live regions.

Everything a program reaches through a pointer (its stack, the context, a
packet, map values, input buffers) is a `Region`: a ctypes buffer with a
stable native address, so that registers hold real addresses and the
interpreter, a later JIT and the Python API all see the same bytes.

`Memory` is the table of live regions, kept sorted by start address so that
`find` is a bisection. The bounds-checked interpreter consults it on every
access that its per-site cache does not already cover; an address outside
every region is a fault, never a wild read.

Stacks are `Stack` objects: up to `MAX_CALL_FRAMES` frames of
`STACK_FRAME_SIZE` bytes carved out of one buffer with unmapped guard gaps
between them (the gaps are not in the region table), so that running off
one frame faults instead of silently corrupting the caller's frame.
"""

from __future__ import annotations

import bisect
import ctypes
import threading
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Protocol

from ..errors import ProgramFault

STACK_FRAME_SIZE = 512
"""Bytes of stack per call frame (the kernel's MAX_BPF_STACK)."""

MAX_CALL_FRAMES = 8
"""Deepest bpf-to-bpf call chain, counting the entry frame (kernel MAX_CALL_FRAMES)."""

GUARD_SIZE = 4096
"""Unmapped bytes before, between and after stack frames."""

_ALIGN = 8


class Region:
    """One live block of native memory: where it is, how big, who owns it.

    `buffer` is the ctypes object that owns the bytes (keeping it alive keeps
    the address valid); `view` is a byte memoryview over exactly `size`
    bytes, which is what the interpreter indexes.
    """

    __slots__ = ("start", "size", "_writable", "name", "buffer", "view", "_tables", "__weakref__")

    def __init__(self, start: int, size: int, writable: bool, name: str, buffer: object):
        self.start = start
        self.size = size
        self._writable = writable
        self.name = name
        self.buffer = buffer
        self.view = memoryview(buffer).cast("B")[:size]
        self._tables: list[Memory] = []  # the region tables holding this region

    @property
    def writable(self) -> bool:
        """Whether programs may store here."""
        return self._writable

    @writable.setter
    def writable(self, value: bool) -> None:
        # Taking write access away (freezing .rodata) must reach the
        # engines' region caches as a removal does.
        if self._writable and not value:
            for memory in self._tables:
                memory.invalidate()
        self._writable = value

    @property
    def end(self) -> int:
        """First address past the region."""
        return self.start + self.size

    def contains(self, address: int, size: int = 1) -> bool:
        """True when `[address, address + size)` lies inside the region."""
        return self.start <= address and address + size <= self.start + self.size

    def read(self, offset: int = 0, size: int | None = None) -> bytes:
        """A copy of `size` bytes at `offset` (the rest of the region by default)."""
        end = self.size if size is None else offset + size
        if offset < 0 or end > self.size:
            raise IndexError(f"{offset}+{end - offset} is outside region {self.name!r}")
        return bytes(self.view[offset:end])

    def write(self, offset: int, data: bytes) -> None:
        """Copy `data` into the region at `offset` (ignores `writable`: the host may)."""
        if offset < 0 or offset + len(data) > self.size:
            raise IndexError(f"{offset}+{len(data)} is outside region {self.name!r}")
        self.view[offset : offset + len(data)] = data

    def describe(self) -> str:
        """`name [0xstart-0xend)` for messages."""
        return f"{self.name} [0x{self.start:x}-0x{self.end:x})"

    def __repr__(self) -> str:
        mode = "rw" if self.writable else "ro"
        return f"Region({self.name!r}, 0x{self.start:x}, {self.size}, {mode})"


class ContextAccess(Protocol):
    """How a program type's context is read and written (see `platform.contexts`)."""

    def load(self, region: ContextRegion, offset: int, size: int) -> int:
        """The value a load of `size` bytes at `offset` gives, or raise `ProgramFault`."""
        ...

    def check_store(self, region: ContextRegion, offset: int, size: int) -> None:
        """Raise `ProgramFault` unless a store of `size` bytes at `offset` is allowed."""
        ...


FRAME_POINTERS = ("hard_start", "hard_end", "head", "end", "nr_frags")
"""Pointer names kept after a layout's own pointer fields in the native array.

`hard_start` / `hard_end` bound the XDP frame the data pointers may move
within (xdp_adjust_head/tail/meta), `head` / `end` the buffer of an skb
(skb_change_head/tail). A hook sets only the pair of its program type; an
absent name reads 0 natively, which is how native helpers tell an XDP
frame (`hard_end != 0`) from any other context. `nr_frags` (not a pointer:
the fragment count of a multi-buffer XDP frame) lets native code leave
such frames to the Python helpers.
"""

_DEFAULT_POINTERS = ("data", "data_end", "data_meta")
_M64 = (1 << 64) - 1


def pointer_slots_of(layout: object) -> dict[str, int]:
    """Field name → slot in the native pointer array, for a `StructLayout` (or None).

    The layout's pointer fields come first, in `StructLayout.pointers`
    order (what `engine.jit.context_loads` numbers), then `FRAME_POINTERS`.
    Without a layout the slots are those of data, data_end, data_meta.
    """
    names = tuple(getattr(layout, "pointers", _DEFAULT_POINTERS)) + FRAME_POINTERS
    return {name: slot for slot, name in enumerate(names)}


def pointer_slot(prog_type_or_layout: object, field_name: str) -> int:
    """The native slot of pointer `field_name` for a program type, `ContextAccess` or layout.

    Fixed per layout, so usable at compile time (`RunState.ctx_pointers` +
    8 * slot holds the field's address during a run). KeyError for a name
    that has no slot.
    """
    layout = prog_type_or_layout
    if not hasattr(layout, "pointers"):
        layout = getattr(layout, "layout", None)
    if layout is None:
        from ..platform.program_type_info import context_access  # platform imports runtime lazily

        access = context_access(prog_type_or_layout)  # type: ignore[arg-type]
        if access is None:
            raise KeyError(f"no context layout for {prog_type_or_layout!r}")
        layout = access.layout
    return pointer_slots_of(layout)[field_name]


class PointerTable(MutableMapping):
    """A context's pointer fields: a dict-like view over a native u64 array.

    Names with a slot (`slots`) live in `array`, where JIT-compiled code
    reads and moves them (a name never set, or deleted, reads 0 there);
    any other name is kept in a plain dict. Reads always come from the
    array, so what native code wrote is what Python sees.
    """

    __slots__ = ("slots", "array", "_live", "_extra")

    def __init__(self, slots: dict[str, int], values: Mapping[str, int] | None = None):
        self.slots = slots
        self.array = (ctypes.c_uint64 * max(1, len(slots)))()
        self._live: dict[str, int] = {}  # names set, with their slots
        self._extra: dict[str, int] = {}
        if values:
            for name, value in values.items():
                self[name] = value

    @property
    def address(self) -> int:
        """Where the native array starts (what the engine puts in `RunState.ctx_pointers`)."""
        return ctypes.addressof(self.array)

    def __getitem__(self, name: str) -> int:
        slot = self._live.get(name)
        if slot is None:
            return self._extra[name]
        return self.array[slot]

    def __setitem__(self, name: str, value: int) -> None:
        slot = self.slots.get(name)
        if slot is None:
            self._extra[name] = value
            return
        self.array[slot] = value & _M64
        self._live[name] = slot

    def __delitem__(self, name: str) -> None:
        slot = self._live.pop(name, None)
        if slot is None:
            del self._extra[name]
        else:
            self.array[slot] = 0

    def __contains__(self, name: object) -> bool:
        return name in self._live or name in self._extra

    def reader(self, name: str) -> memoryview | None:
        """A one-item u64 view of `name`'s slot: `view[0]` is its value at each read (None: no slot set).

        It reads the native array, as JIT-compiled code does (a slot deleted
        later reads 0); indexing a view costs less than calling a function.
        """
        slot = self._live.get(name)
        if slot is None:
            return None
        return memoryview(self.array).cast("B")[8 * slot : 8 * slot + 8].cast("Q")

    def __iter__(self) -> Iterator[str]:
        return iter([*self._live, *self._extra])

    def __len__(self) -> int:
        return len(self._live) + len(self._extra)

    def __repr__(self) -> str:
        return f"PointerTable({dict(self.items())!r})"


class ContextRegion(Region):
    """A program's context (r1): accesses go through its field table, never a cache.

    Clang reads pointer fields (`xdp_md->data`) as 32-bit loads; the kernel's
    verifier rewrites them into 64-bit loads of the real pointer. Here the
    engine asks `access.load`, which returns the full address from
    `pointers` (field name → native address) for a pointer field, and
    checks every other access against the program type's rules.

    `pointers` is a `PointerTable`: a dict-like view of a native u64 array
    at `pointers_address`, one slot per name in `pointer_slots` (the
    layout's pointer fields, then `FRAME_POINTERS`), so JIT-compiled code
    reads and moves the same pointers the interpreter and the helpers use.
    """

    __slots__ = ("access", "pointers", "pointer_slots", "_reads", "packet")

    def __init__(
        self,
        start: int,
        size: int,
        name: str,
        buffer: object,
        access: ContextAccess,
        pointers: Mapping[str, int],
    ):
        super().__init__(start, size, True, name, buffer)
        self.access = access
        self.pointer_slots = pointer_slots_of(getattr(access, "layout", None))
        if isinstance(pointers, PointerTable) and pointers.slots == self.pointer_slots:
            self.pointers = pointers
        else:
            self.pointers = PointerTable(self.pointer_slots, pointers)
        self._reads = _readable_table(access, self)
        #: The `runtime.packet_buffer.PacketBuffer` the packet lives in (None:
        #: the packet cannot be reallocated), set by the hook that built it.
        self.packet: object | None = None

    @property
    def pointers_address(self) -> int:
        """The address of the native pointer array (`RunState.ctx_pointers`)."""
        return self.pointers.address

    def load(self, offset: int, size: int) -> int:
        """What the program reads at `offset` (raises `ProgramFault` without a pc)."""
        # Accesses the rules allow are answered from a table (a pointer
        # field's name, or None for plain bytes); anything else goes to the
        # rules, which give the value or the exact fault.
        field = self._reads.get(offset << 4 | size, self)
        if field is None:
            return int.from_bytes(self.view[offset : offset + size], "little")
        if field is not self:
            return self.pointers[field]
        return self.access.load(self, offset, size)

    def reader(self, offset: int, size: int) -> memoryview | None:
        """For a load of a pointer field at `offset`, a view whose item 0 is its current value.

        The interpreter caches it at the load's site (see `engine.translate`),
        so that a pointer a helper moves is read afresh each time without
        going through the region table. None for any other load.
        """
        field = self._reads.get(offset << 4 | size)
        if field is None:
            return None
        return self.pointers.reader(field)

    def check_store(self, offset: int, size: int) -> None:
        """Raise `ProgramFault` (without a pc) unless the program may store here."""
        self.access.check_store(self, offset, size)


_READ_TABLES: dict[int, tuple[ContextAccess, dict[int, str | None]]] = {}
_READ_TABLES_LOCK = threading.Lock()


def _readable_table(access: ContextAccess, region: ContextRegion) -> dict[int, str | None]:
    """`offset << 4 | size` → pointer field name, or None for a plain read, for every allowed load.

    Built once per `ContextAccess` by asking `access.load` itself about every
    (offset, size) of the struct, so the table allows exactly what the rules
    allow. Pointer fields are recognised through the access's `layout`
    (`field_at(offset).pointer`); an access without a layout gets no table
    and every load goes through `access.load`.
    """
    key = id(access)
    with _READ_TABLES_LOCK:
        hit = _READ_TABLES.get(key)
    if hit is not None and hit[0] is access:
        return hit[1]
    table: dict[int, str | None] = {}
    layout = getattr(access, "layout", None)
    if layout is not None and hasattr(layout, "field_at"):
        for offset in range(region.size):
            field = layout.field_at(offset)
            if field is None:
                continue
            for size in (1, 2, 4, 8):
                if offset + size > region.size:
                    continue
                try:
                    access.load(region, offset, size)
                except Exception:  # noqa: BLE001 - refused (or unanswerable): no shortcut
                    continue
                if getattr(field, "read_mask", None) and field.read_mask(offset, size) is not None:
                    continue  # a narrow kernel member: access.load masks the bytes
                table[offset << 4 | size] = field.name if getattr(field, "pointer", False) else None
    with _READ_TABLES_LOCK:
        _READ_TABLES[key] = (access, table)  # the access stays referenced: its id stays unique
    return table


def _native_buffer(size: int) -> ctypes.Array:
    # Pad to 8 bytes so the interpreter can cast the view to 64-bit words.
    padded = max(_ALIGN, (size + _ALIGN - 1) // _ALIGN * _ALIGN)
    return (ctypes.c_ubyte * padded)()


class Memory:
    """The table of live regions, sorted by start address.

    Regions never overlap: each one is a separate native allocation (or a
    disjoint slice of one, for stack frames).
    """

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._regions: list[Region] = []
        self._lock = threading.Lock()  # table edits may come from several threads
        # Bumped whenever a region goes away, so that engines caching regions
        # (the interpreter's per-site caches) know to look them up again.
        self.generation = 0

    # -- building the table -------------------------------------------------

    def allocate(
        self, size: int, name: str, writable: bool = True, data: bytes | None = None
    ) -> Region:
        """A new zero-filled (or `data`-filled) region of `size` bytes, added to the table."""
        if size < 0:
            raise ValueError("region size must be >= 0")
        buffer = _native_buffer(size)
        region = Region(ctypes.addressof(buffer), size, writable, name, buffer)
        if data is not None:
            region.write(0, data[:size])
        self.add(region)
        return region

    def allocate_from(self, data: bytes, name: str, writable: bool = True) -> Region:
        """A new region holding a copy of `data`."""
        return self.allocate(len(data), name, writable, data)

    def allocate_context(
        self, data: bytes, name: str, access: ContextAccess, pointers: Mapping[str, int]
    ) -> ContextRegion:
        """A new `ContextRegion` holding a copy of `data`, added to the table."""
        buffer = _native_buffer(len(data))
        region = ContextRegion(ctypes.addressof(buffer), len(data), name, buffer, access, pointers)
        region.write(0, data)
        self.add(region)
        return region

    def wrap(self, buffer: object, name: str, writable: bool = True) -> Region:
        """Add an existing writable buffer (ctypes object, bytearray, mmap) as a region.

        The bytes are shared, not copied: writes by the program are seen by
        whoever owns `buffer`, which must stay alive and unresized.
        """
        view = memoryview(buffer).cast("B")
        size = view.nbytes
        holder = (ctypes.c_ubyte * size).from_buffer(view) if size else _native_buffer(0)
        region = Region(ctypes.addressof(holder), size, writable, name, holder)
        self.add(region)
        return region

    def add(self, region: Region) -> Region:
        """Insert `region` into the table; refuse overlaps."""
        with self._lock:
            i = bisect.bisect_right(self._starts, region.start)
            before = self._regions[i - 1] if i else None
            after = self._regions[i] if i < len(self._regions) else None
            if (before is not None and before.end > region.start) or (
                after is not None and region.end > after.start
            ):
                raise ValueError(f"region {region!r} overlaps a live region")
            self._starts.insert(i, region.start)
            self._regions.insert(i, region)
            region._tables.append(self)
        return region

    def remove(self, region: Region) -> None:
        """Take `region` out of the table (its buffer lives on while referenced)."""
        with self._lock:
            i = bisect.bisect_left(self._starts, region.start)
            while i < len(self._regions) and self._starts[i] == region.start:
                if self._regions[i] is region:
                    del self._starts[i]
                    del self._regions[i]
                    self.generation += 1
                    if self in region._tables:
                        region._tables.remove(self)
                    return
                i += 1
        raise KeyError(f"{region!r} is not in the table")

    def invalidate(self) -> None:
        """Bump `generation` as a removal does: engines look their cached regions up again.

        For changes the region list does not show: a region made read-only,
        a map leaving its execution context (the interpreter caches a map's
        lookup beside its key's region).
        """
        with self._lock:
            self.generation += 1

    def __iter__(self) -> Iterator[Region]:
        return iter(list(self._regions))

    def __len__(self) -> int:
        return len(self._regions)

    # -- looking addresses up ----------------------------------------------

    def find(self, address: int, size: int = 1) -> Region | None:
        """The region holding all of `[address, address + size)`, or None."""
        i = bisect.bisect_right(self._starts, address) - 1
        if i < 0:
            return None
        region = self._regions[i]
        if address + size <= region.start + region.size:
            return region
        return None

    def nearest(self, address: int) -> Region | None:
        """The region closest to `address` (for fault messages), or None if empty."""
        regions = self._regions
        if not regions:
            return None
        i = bisect.bisect_right(self._starts, address)
        candidates = regions[max(0, i - 1) : i + 1]

        def distance(region: Region) -> int:
            if address < region.start:
                return region.start - address
            return max(0, address - region.end + 1)

        return min(candidates, key=distance)

    def check(self, address: int, size: int, write: bool = False) -> Region:
        """The region for an access, or raise `ProgramFault` describing the miss."""
        region = self.find(address, size)
        if region is None or (write and not region.writable):
            raise access_fault(self, address, size, write)
        return region

    # -- host-side reads and writes -----------------------------------------

    def read(self, address: int, size: int) -> bytes:
        """Copy `size` bytes at native `address`; fault if not inside one region."""
        region = self.check(address, size)
        return region.read(address - region.start, size)

    def write(self, address: int, data: bytes) -> None:
        """Store `data` at native `address`; fault if not inside one writable region."""
        region = self.check(address, len(data), write=True)
        region.write(address - region.start, data)

    def allocate_stack(self, frames: int = MAX_CALL_FRAMES, name: str = "stack") -> Stack:
        """A new `Stack` whose frames are registered in this table."""
        return Stack(self, frames, name)


def access_fault(
    memory: Memory,
    address: int,
    size: int,
    write: bool,
    pc: int | None = None,
    instruction: str | None = None,
) -> ProgramFault:
    """A `ProgramFault` explaining why `[address, address+size)` is not accessible."""
    kind = "write" if write else "read"
    region = memory.find(address, size)
    if region is not None:
        return ProgramFault(
            f"{kind} of {size} bytes at 0x{address:x}: region {region.describe()} is read-only",
            pc=pc,
            instruction=instruction,
            address=address,
            size=size,
            region=region.name,
        )
    near = memory.nearest(address)
    where = f"nearest region {near.describe()}" if near is not None else "no regions are mapped"
    return ProgramFault(
        f"out-of-bounds {kind} of {size} bytes at 0x{address:x} ({where})",
        pc=pc,
        instruction=instruction,
        address=address,
        size=size,
        region=near.name if near is not None else None,
    )


class StackFrame:
    """One 512-byte frame: its region, the frame pointer (r10) and typed views.

    The views (`b`, `h`, `w`, `q` for 1, 2, 4 and 8-byte items) let the
    interpreter reach constant, aligned stack offsets with one index operation;
    `bottom` is the frame's lowest address (where the interpreter zeroes it).
    """

    __slots__ = ("region", "top", "bottom", "b", "h", "w", "q")

    def __init__(self, region: Region):
        self.region = region
        self.top = region.end  # r10 points one past the frame, the stack grows down
        self.bottom = region.start
        view = region.view
        self.b = view
        self.h = view.cast("H")
        self.w = view.cast("I")
        self.q = view.cast("Q")


class Stack:
    """`frames` stack frames in one native buffer, separated by guard gaps."""

    def __init__(self, memory: Memory, frames: int = MAX_CALL_FRAMES, name: str = "stack"):
        stride = STACK_FRAME_SIZE + GUARD_SIZE
        self.memory = memory
        self._buffer = (ctypes.c_ubyte * (GUARD_SIZE + frames * stride))()
        base = ctypes.addressof(self._buffer)
        self.frames: list[StackFrame] = []
        for depth in range(frames):
            offset = GUARD_SIZE + depth * stride
            chunk = (ctypes.c_ubyte * STACK_FRAME_SIZE).from_buffer(self._buffer, offset)
            region = Region(base + offset, STACK_FRAME_SIZE, True, f"{name}[{depth}]", chunk)
            memory.add(region)
            self.frames.append(StackFrame(region))

    def clear(self) -> None:
        """Zero every frame, so one run never sees another's leftovers."""
        ctypes.memset(self._buffer, 0, ctypes.sizeof(self._buffer))

    def release(self) -> None:
        """Remove the frames from the region table."""
        for frame in self.frames:
            self.memory.remove(frame.region)
        self.frames = []
