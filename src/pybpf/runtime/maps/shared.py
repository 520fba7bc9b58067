"""`MapMemory`: the one shared-memory region a map lives in, and `StoragePlan`, its layout.

Every map, of every family, lives in one region: a memfd mapped
`MAP_SHARED`, the map header at offset 0 and the family's storage after it.
Nothing inside holds an absolute address: the header's `values`, `elems`
and `buckets` (and a ring buffer's page offsets) are offsets from the
header, which native code adds to the map pointer it is given. So another
process that maps the same memfd, at whatever address, runs the same
native operations on the same entries, with the same spinlock word and
sequence counter, and no request to whoever created the map. In-process
maps are built the same way: there is one implementation of each map.

The mapping is made with libc's `mmap` over ctypes rather than Python's
`mmap` module: the module keeps a private duplicate of the descriptor per
mapping and cannot map read-only views the way a read-only client needs;
here the region owns exactly one descriptor (`fd`, close-on-exec), which is
what is passed to other processes (SCM_RIGHTS). The memfd is sparse: pages
are allocated when first touched, as the kernel's preallocated maps are
not, but the map never grows.

The mapping is unmapped only when the `MapMemory` is garbage collected
(every `Region` over it keeps it alive), never by an explicit close, so a
program still holding a map's address cannot touch unmapped memory.

Where a region is mapped: at an address hint (never `MAP_FIXED`) that
follows a per-user base, so that a process making the same maps in the
same order as an earlier one gets the same addresses. A JIT-compiled
program holds its maps' addresses as immediates and its disk-cache key
includes them (`engine.jit.compile`): without the hints every process
mapped its maps elsewhere, compiled every program with maps again and left
one more object in the cache. The base (`address_hint_base`) is random
per user (a file beside the JIT's objects), so addresses are not the same
on every machine; a taken range or no cache directory only costs the
cache hit (the kernel maps the region elsewhere). A region unmapped gives
its range back, and the next region of the same size gets it: a process
that loads and closes objects in cycles (the daemon) keeps using the same
addresses, and so the same JIT code, instead of compiling anew each cycle.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import heapq
import mmap
import os
import threading
import weakref
from dataclasses import dataclass, field

from ..native.object_cache import default_cache_dir
from .header import round_up

PAGE_SIZE = mmap.PAGESIZE

_libc = ctypes.CDLL(None, use_errno=True)
_mmap = _libc.mmap
_mmap.restype = ctypes.c_void_p
_mmap.argtypes = (
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_long,
)
_munmap = _libc.munmap
_munmap.restype = ctypes.c_int
_munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
MAP_FAILED = ctypes.c_void_p(-1).value


@dataclass
class StoragePlan:
    """Where a map's parts go in its region, decided before the region exists.

    `size` grows as parts are reserved; `fills` are byte patterns to write
    once the region is mapped (a hash map's empty buckets are all-ones).
    """

    size: int
    fills: list[tuple[int, int, int]] = field(default_factory=list)

    def reserve(self, size: int, *, align: int = 64, fill: int = 0) -> int:
        """Reserve `size` bytes aligned to `align`; their offset from the header."""
        offset = round_up(self.size, align)
        self.size = offset + size
        if fill:
            self.fills.append((offset, size, fill))
        return offset


_limit_raised = False


def _raise_descriptor_limit() -> None:
    """Lift the soft open-file limit to the hard one, once.

    Every map holds one descriptor (its memfd), and a program's maps may
    live until the garbage collector frees a cycle; a soft limit of 1024
    (common in containers) would then make map creation fail with EMFILE
    where the hard limit allows far more. Go's runtime does the same.
    """
    global _limit_raised
    if _limit_raised:
        return
    _limit_raised = True
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


HINT_BASE_FILE = "map-address-base"
"""The file in the JIT's cache directory holding this user's `address_hint_base` (hex)."""

_HINT_LOW = 0x1000_0000_0000  # x86-64: above the low mappings, below PIE binaries and libraries
_HINT_SLOT = 1 << 30
_HINT_SLOTS = 1 << 14  # bases up to 0x5000_0000_0000
_HINT_GAP = 1 << 20  # between regions, so a region's size changing moves only later ones


def address_hint_base() -> int | None:
    """This user's base of map address hints (made at random the first time), or None when
    the cache directory cannot hold it (regions are then mapped wherever the kernel likes)."""
    path = default_cache_dir() / HINT_BASE_FILE
    try:
        return int(path.read_text().strip(), 16)
    except (OSError, ValueError):
        pass
    import secrets  # only the first time: its import is a few ms of every start-up

    base = _HINT_LOW + secrets.randbelow(_HINT_SLOTS) * _HINT_SLOT
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        written = path.with_name(f".{path.name}.{os.getpid()}")
        written.write_text(f"{base:#x}\n")
        os.replace(written, path)
        return int(path.read_text().strip(), 16)  # another process's, if it wrote last
    except (OSError, ValueError):
        return None


_hints_lock = threading.Lock()
_next_hint: int | None = None
_hints_started = False
# Hinted ranges given back by unmapped regions, by their rounded size: the
# next region of that size gets the lowest one again, so a process that
# makes and frees maps in cycles (a daemon loading and closing objects)
# reuses addresses, and its JIT code and cache entries with them, instead
# of moving on to new ones every cycle.
_free_hints: dict[int, list[int]] = {}
# Regions mapped at their hint: address → the rounded size of their range.
_hinted: dict[int, int] = {}


def _address_hint(size: int) -> int | None:
    """Where to ask for the next region of `size` bytes (see the module docstring)."""
    global _next_hint, _hints_started
    span = round_up(size, _HINT_GAP)
    with _hints_lock:
        free = _free_hints.get(span)
        if free:
            return heapq.heappop(free)
        if not _hints_started:
            _hints_started = True
            _next_hint = address_hint_base()
        hint = _next_hint
        if hint is not None:
            _next_hint = hint + span + _HINT_GAP
        return hint


def _map(fd: int, size: int, writable: bool) -> int:
    prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
    hint = _address_hint(size)
    address = _mmap(hint, size, prot, mmap.MAP_SHARED, fd, 0)
    if address in (None, MAP_FAILED):
        code = ctypes.get_errno() or errno.ENOMEM
        raise OSError(code, f"mmap of {size} bytes: {os.strerror(code)}")
    if hint is not None and address == hint:
        with _hints_lock:
            _hinted[address] = round_up(size, _HINT_GAP)
    return address


def _release(address: int, size: int, fd: int) -> None:
    _munmap(address, size)
    with _hints_lock:
        span = _hinted.pop(address, None)
        if span is not None:
            heapq.heappush(_free_hints.setdefault(span, []), address)
    try:
        os.close(fd)
    except OSError:
        pass


class MapMemory:
    """One map's memory: a memfd of `size` bytes mapped shared at `address`.

    `MapMemory.create` makes a new, zero-filled region; `MapMemory.attach`
    maps one another process made, from its descriptor (which the
    `MapMemory` then owns). `writable` False maps it read-only: stores
    through it fault, so callers must refuse updates before native code
    runs.
    """

    __slots__ = ("fd", "size", "address", "writable", "_finalizer", "__weakref__")

    def __init__(self, fd: int, size: int, writable: bool = True):
        self.fd = fd
        self.size = size
        self.writable = writable
        self.address = _map(fd, size, writable)
        self._finalizer = weakref.finalize(self, _release, self.address, size, fd)

    @classmethod
    def create(cls, size: int, name: str) -> MapMemory:
        """A new zero-filled region of at least `size` bytes (whole pages)."""
        size = round_up(max(size, 1), PAGE_SIZE)
        _raise_descriptor_limit()
        fd = os.memfd_create(f"pybpf-map:{name}"[:249], os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, size)
            return cls(fd, size)
        except BaseException:
            os.close(fd)
            raise

    @classmethod
    def attach(cls, fd: int, *, writable: bool = True) -> MapMemory:
        """Map the region behind `fd` (taken over: closed with the `MapMemory`)."""
        size = os.fstat(fd).st_size
        if size <= 0 or size % PAGE_SIZE:
            os.close(fd)
            raise OSError(errno.EINVAL, f"descriptor {fd} is not a map region ({size} bytes)")
        try:
            return cls(fd, size, writable)
        except BaseException:
            os.close(fd)
            raise

    def view(self, offset: int, size: int) -> ctypes.Array:
        """`size` bytes at `offset` as a ctypes array (keeps this region alive)."""
        if offset < 0 or offset + size > self.size:
            raise ValueError(f"view [{offset}, {offset + size}) outside a {self.size}-byte region")
        array = (ctypes.c_ubyte * size).from_address(self.address + offset)
        array._owner = self  # type: ignore[attr-defined]
        return array

    def fill(self, plan: StoragePlan) -> None:
        """Write the plan's fill patterns."""
        for offset, size, byte in plan.fills:
            ctypes.memset(self.address + offset, byte, size)

    def __repr__(self) -> str:
        return f"<MapMemory fd {self.fd}, {self.size} bytes at 0x{self.address:x}>"
