"""libbpf's names over the Python API, for code ported from C.

A thin layer: every function forwards to `pybpf.Object`, `Program` or
`Map` and turns exceptions into what libbpf 1.x returns: 0 on success, a
negative errno on failure (`-ENOENT` for a missing key, `-EINVAL` for a bad
size or flag, `-EPERM` for a frozen map, …). Constructors that return a
pointer in C (`bpf_object__open_file`, `bpf_object__find_*`) return the
Python object, or None with the positive errno in `libbpf_errno()`.

File descriptors are small integers from a table kept by this module
(`bpf_map__fd`, `bpf_program__fd`), valid until the object is closed.

Ring buffers: `ring_buffer__new(map_fd, sample_cb, ctx)` with
`sample_cb(ctx, data: bytes, size: int) -> int`, then `ring_buffer__poll`,
`ring_buffer__consume`, `ring_buffer__add`, `ring_buffer__free`, over the
ringbuf family's own consumer (`RingBufMap.consume`).
"""

from __future__ import annotations

import ctypes
import errno
import itertools
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import pins
from .errors import (
    InterfaceError,
    MapError,
    NotSupportedError,
    ProgramFault,
    PybpfError,
    TestRunError,
    VerifierError,
)
from .link import Link
from .object import Object, load
from .pins import PinError
from .program import Program
from .runtime.maps import BPF_ANY, BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, Map

__all__ = [
    "BPF_ANY",
    "BPF_EXIST",
    "BPF_F_LOCK",
    "BPF_NOEXIST",
    "BPF_TC_EGRESS",
    "BPF_TC_INGRESS",
    "bpf_link__destroy",
    "bpf_link__pin",
    "bpf_link__unpin",
    "bpf_map__fd",
    "bpf_map__name",
    "bpf_map__pin",
    "bpf_map__unpin",
    "bpf_map_delete_elem",
    "bpf_map_get_next_key",
    "bpf_map_lookup_elem",
    "bpf_map_update_elem",
    "bpf_obj_get",
    "bpf_obj_pin",
    "bpf_object__close",
    "bpf_object__find_map_by_name",
    "bpf_object__find_program_by_name",
    "bpf_object__load",
    "bpf_object__open_file",
    "bpf_object__pin",
    "bpf_object__unpin",
    "bpf_prog_test_run_opts",
    "bpf_program__attach_cgroup",
    "bpf_program__attach_xdp",
    "bpf_program__fd",
    "bpf_program__name",
    "bpf_program__pin",
    "bpf_program__unpin",
    "bpf_tc_attach",
    "bpf_tc_detach",
    "bpf_tc_hook",
    "bpf_tc_hook_create",
    "bpf_tc_hook_destroy",
    "bpf_tc_opts",
    "bpf_test_run_opts",
    "bpf_xdp_attach",
    "bpf_xdp_detach",
    "libbpf_errno",
    "libbpf_probe_bpf_helper",
    "libbpf_probe_bpf_map_type",
    "libbpf_probe_bpf_prog_type",
    "ring_buffer",
    "ring_buffer__add",
    "ring_buffer__consume",
    "ring_buffer__free",
    "ring_buffer__new",
    "ring_buffer__poll",
]

_FIRST_FD = 3  # 0-2 are stdio in any process, as the kernel would hand out
_lock = threading.Lock()
_fds: dict[int, Map | Program] = {}
_fd_of: dict[int, int] = {}  # id(object) -> fd
_next_fd = itertools.count(_FIRST_FD)
_last_errno = 0


def libbpf_errno() -> int:
    """The positive errno of the last call that returned None (C's `errno`)."""
    return _last_errno


def _fail(code: int) -> None:
    global _last_errno
    _last_errno = code


def _errno_of(error: BaseException) -> int:
    if isinstance(error, (MapError, TestRunError, PinError)):
        return error.errno
    if isinstance(error, NotSupportedError):
        return errno.EOPNOTSUPP
    if isinstance(error, ProgramFault):
        return errno.EFAULT
    if isinstance(error, InterfaceError):
        return errno.ENODEV
    if isinstance(error, VerifierError):
        return errno.EACCES  # what bpf(BPF_PROG_LOAD) returns for a rejected program
    if isinstance(error, OSError) and error.errno:
        return error.errno
    return errno.EINVAL


def _fd(handle: Map | Program) -> int:
    with _lock:
        fd = _fd_of.get(id(handle))
        if fd is None or _fds.get(fd) is not handle:
            fd = next(_next_fd)
            _fds[fd] = handle
            _fd_of[id(handle)] = fd
        return fd


def _lookup_fd(fd: int, kind: type) -> Any:
    handle = _fds.get(fd)
    return handle if isinstance(handle, kind) else None


def _bytes(buffer: Any) -> bytes:
    return bytes(buffer) if buffer is not None else b""


def _size(buffer: Any) -> int:
    if isinstance(buffer, (bytearray, memoryview)):
        return memoryview(buffer).nbytes
    return ctypes.sizeof(buffer)


def _fill(buffer: Any, data: bytes) -> None:
    # Writes `data` into a caller's bytearray / memoryview / ctypes buffer.
    if isinstance(buffer, (bytearray, memoryview)):
        view = memoryview(buffer).cast("B")
        view[: len(data)] = data[: len(view)]
    else:
        ctypes.memmove(buffer, data, min(len(data), ctypes.sizeof(buffer)))


# -- objects ------------------------------------------------------------------------


def bpf_object__open_file(path: str | os.PathLike[str], opts: Any = None) -> Object | None:
    """Open an object file; None (and `libbpf_errno()`: ENOENT, EINVAL …) on failure.

    `opts` (`struct bpf_object_open_opts`: any object or mapping) may give
    `btf_custom_path`, the target BTF of CO-RE relocations.
    """
    if not os.path.exists(path):
        _fail(errno.ENOENT)
        return None
    if isinstance(opts, dict):
        btf = opts.get("btf_custom_path")
    else:
        btf = getattr(opts, "btf_custom_path", None)
    if isinstance(btf, bytes):
        btf = os.fsdecode(btf)
    try:
        return load(path, btf=btf)
    except OSError as error:
        _fail(error.errno or errno.ENOENT)
    except PybpfError as error:
        _fail(_errno_of(error) if not isinstance(error, MapError) else error.errno)
    return None


def bpf_object__load(obj: Object) -> int:
    """Load the object (freeze `.rodata`) and check its programs can run: 0 or -errno."""
    try:
        obj.load()
        for program in obj.programs.values():
            if program.autoload:
                program.load()
    except PybpfError as error:
        return -_errno_of(error)
    return 0


def bpf_object__close(obj: Object | None) -> None:
    """Close the object and release its file descriptors."""
    if obj is None:
        return
    handles = {id(h) for h in (*obj.maps.live().values(), *obj.programs.values())}
    with _lock:
        for key in handles & _fd_of.keys():
            _fds.pop(_fd_of.pop(key), None)
    obj.close()


def bpf_object__find_program_by_name(obj: Object, name: str) -> Program | None:
    """The program with function name `name`, or None (`libbpf_errno()` ENOENT)."""
    program = obj.programs.get(name)
    if program is None:
        _fail(errno.ENOENT)
    return program


def bpf_object__find_map_by_name(obj: Object, name: str) -> Map | None:
    """The map called `name` (ELF or libbpf spelling), or None (`libbpf_errno()`)."""
    try:
        return obj.maps[name]
    except PybpfError as error:
        _fail(_errno_of(error))
    return None


def bpf_program__fd(prog: Program) -> int:
    """A file descriptor for the program (loading the object as libbpf requires)."""
    try:
        prog.load()
    except PybpfError as error:
        return -_errno_of(error)
    return _fd(prog)


def bpf_program__name(prog: Program) -> str:
    """The program's function name."""
    return prog.name


def bpf_program__set_autoload(prog: Program, autoload: bool) -> int:
    """Load `prog` with its object or not: 0, or -EINVAL once the object is loaded."""
    try:
        prog.autoload = autoload
    except PybpfError:
        return -errno.EINVAL
    return 0


def bpf_program__autoload(prog: Program) -> bool:
    """Whether `bpf_object__load` loads `prog`."""
    return prog.autoload


def _owner(map_: Map) -> Object | None:
    return getattr(map_, "owner", None)


def _configure(map_: Map, action: Callable[[Object], None]) -> int:
    owner = _owner(map_)
    if owner is None:
        return -errno.EINVAL
    try:
        action(owner)
    except PybpfError as error:
        return -_errno_of(error)
    return 0


def bpf_map__set_max_entries(map_: Map, max_entries: int) -> int:
    """Resize a map before load: 0, -EBUSY once loaded, -EINVAL for 0."""
    return _configure(map_, lambda obj: obj.set_max_entries(map_.spec.name, max_entries))


def bpf_map__set_value_size(map_: Map, size: int) -> int:
    """Change a map's value size before load: 0, -EBUSY once loaded, -EINVAL."""
    return _configure(map_, lambda obj: obj.set_value_size(map_.spec.name, size))


def bpf_map__set_initial_value(map_: Map, data: Any) -> int:
    """Replace a global-data map's bytes before load: 0, -EINVAL (size), -EBUSY once loaded."""
    return _configure(map_, lambda obj: obj.set_initial_value(map_.spec.name, _bytes(data)))


def bpf_map__max_entries(map_: Map) -> int:
    """The map's `max_entries`."""
    return map_.spec.max_entries


def bpf_map__value_size(map_: Map) -> int:
    """The map's value size in bytes."""
    return map_.spec.value_size


def bpf_map__key_size(map_: Map) -> int:
    """The map's key size in bytes."""
    return map_.spec.key_size


def bpf_map__lookup_elem(
    map_: Map, key: Any, key_sz: int | None = None, value_sz: int | None = None, flags: int = 0
) -> bytes | list[bytes] | None:
    """The value at `key` (per-CPU maps: one per CPU), or None (`libbpf_errno()` ENOENT, EINVAL).

    libbpf fills a caller's buffer and checks `key_sz`/`value_sz` against
    the map; here the value is returned, and the sizes, when given, are
    still checked (EINVAL).
    """
    raw = _bytes(key)
    if (key_sz is not None and key_sz != map_.spec.key_size) or (
        value_sz is not None and value_sz != _value_buffer_size(map_)
    ):
        _fail(errno.EINVAL)
        return None
    try:
        found = map_.lookup(raw)
    except PybpfError as error:
        _fail(_errno_of(error))
        return None
    if found is None:
        _fail(errno.ENOENT)
    return found


def bpf_map__update_elem(
    map_: Map,
    key: Any,
    value: Any,
    flags: int = BPF_ANY,
    key_sz: int | None = None,
    value_sz: int | None = None,
) -> int:
    """Set `key` to `value`: 0 or -errno (-EINVAL for sizes that do not match the map)."""
    if (key_sz is not None and key_sz != map_.spec.key_size) or (
        value_sz is not None and value_sz != _value_buffer_size(map_)
    ):
        return -errno.EINVAL
    try:
        map_.update(_bytes(key), value if isinstance(value, list) else _bytes(value), flags)
    except PybpfError as error:
        return -_errno_of(error)
    return 0


def _value_buffer_size(map_: Map) -> int:
    # libbpf's check: per-CPU maps take one 8-byte aligned value per CPU.
    if map_.percpu:
        return ((map_.spec.value_size + 7) & ~7) * map_.ncpus
    return map_.spec.value_size


def bpf_map__fd(map_: Map) -> int:
    """A file descriptor for the map."""
    return _fd(map_)


def bpf_map__name(map_: Map) -> str:
    """The map's ELF name."""
    return map_.name


# -- maps by fd -------------------------------------------------------------------


def _map_call(fd: int, action: Any) -> int:
    map_ = _lookup_fd(fd, Map)
    if map_ is None:
        return -errno.EBADF
    try:
        action(map_)
    except PybpfError as error:
        return -_errno_of(error)
    return 0


def bpf_map_update_elem(fd: int, key: Any, value: Any, flags: int = BPF_ANY) -> int:
    """Set `key` to `value` (bytes-like) with BPF_ANY/NOEXIST/EXIST: 0 or -errno."""
    return _map_call(fd, lambda m: m.update(_bytes(key), _bytes(value), flags))


def bpf_map_lookup_elem(fd: int, key: Any, value: Any) -> int:
    """Copy `key`'s value into the writable buffer `value`: 0, -ENOENT, …

    Per-CPU maps fill the buffer with every CPU's value, 8-byte aligned, as
    the syscall does.
    """

    def action(m: Map) -> None:
        found = m.lookup(_bytes(key))
        if found is None:
            raise MapError(errno.ENOENT, "lookup", m.name)
        if isinstance(found, list):
            stride = (m.spec.value_size + 7) & ~7
            found = b"".join(item.ljust(stride, b"\0") for item in found)
        _fill(value, found)

    return _map_call(fd, action)


def bpf_map_delete_elem(fd: int, key: Any) -> int:
    """Remove `key`: 0, -ENOENT, -EINVAL (arrays)."""
    return _map_call(fd, lambda m: m.delete(_bytes(key)))


def bpf_map_get_next_key(fd: int, key: Any, next_key: Any) -> int:
    """Write the key after `key` (None: the first) into `next_key`: 0 or -ENOENT at the end."""

    def action(m: Map) -> None:
        found = m.get_next_key(None if key is None else _bytes(key))
        if found is None:
            raise MapError(errno.ENOENT, "get_next_key", m.name)
        _fill(next_key, found)

    return _map_call(fd, action)


# -- test runs ----------------------------------------------------------------------


@dataclass
class bpf_test_run_opts:  # noqa: N801 - libbpf's struct name
    """`struct bpf_test_run_opts`: inputs set by the caller, outputs filled by the run.

    `data_out` / `ctx_out` are writable buffers (bytearray) or None; as in
    the kernel, a buffer shorter than the output gets the first bytes and
    the call returns -ENOSPC, with `data_size_out` the full size.
    """

    data_in: bytes | None = None
    data_out: Any = None
    data_size_out: int = 0
    ctx_in: bytes | None = None
    ctx_out: Any = None
    ctx_size_out: int = 0
    repeat: int = 1
    retval: int = 0
    duration: int = 0
    flags: int = 0
    cpu: int = 0


def bpf_prog_test_run_opts(prog_fd: int, opts: bpf_test_run_opts) -> int:
    """Run the program on `opts.data_in` as `BPF_PROG_TEST_RUN` does: 0 or -errno."""
    program = _lookup_fd(prog_fd, Program)
    if program is None:
        return -errno.EBADF
    if opts.flags or opts.cpu:
        return -errno.EINVAL
    try:
        result = program.test_run(
            data=_bytes(opts.data_in), ctx=opts.ctx_in, repeat=opts.repeat or 1
        )
    except PybpfError as error:
        return -_errno_of(error)
    opts.retval = result.retval
    opts.duration = result.duration
    opts.data_size_out = len(result.data_out)
    status = 0
    if opts.data_out is not None:
        _fill(opts.data_out, result.data_out)
        if _size(opts.data_out) < len(result.data_out):
            status = -errno.ENOSPC
    if result.ctx_out is not None:
        opts.ctx_size_out = len(result.ctx_out)
        if opts.ctx_out is not None:
            _fill(opts.ctx_out, result.ctx_out)
    return status


# -- ring buffers -------------------------------------------------------------------

SampleCallback = Callable[[Any, bytes, int], int | None]
"""`sample_cb(ctx, data, size) -> int`: a negative result stops consumption."""


@dataclass
class ring_buffer:  # noqa: N801 - libbpf's struct name
    """`struct ring_buffer`: ring buffer maps, each with its callback and context."""

    rings: list[tuple[Any, SampleCallback, Any]] = field(default_factory=list)


def ring_buffer__add(
    rb: ring_buffer, map_fd: int, sample_cb: SampleCallback, ctx: Any = None
) -> int:
    """Add another ringbuf map to `rb`: 0, -EBADF, or -EINVAL for a map that is not a ringbuf."""
    map_ = _lookup_fd(map_fd, Map)
    if map_ is None:
        return -errno.EBADF
    if not callable(getattr(map_, "consume", None)):
        return -errno.EINVAL
    rb.rings.append((map_, sample_cb, ctx))
    return 0


def ring_buffer__new(
    map_fd: int, sample_cb: SampleCallback, ctx: Any = None, opts: Any = None
) -> ring_buffer | None:
    """A ring buffer manager over one ringbuf map; None (and `libbpf_errno()`) on failure."""
    rb = ring_buffer()
    status = ring_buffer__add(rb, map_fd, sample_cb, ctx)
    if status < 0:
        _fail(-status)
        return None
    return rb


def ring_buffer__consume(rb: ring_buffer) -> int:
    """Consume every available record of every ring: how many, or the callback's negative result."""
    total = 0
    for map_, callback, ctx in rb.rings:
        try:
            count = map_.consume(lambda data, cb=callback, c=ctx: cb(c, data, len(data)))
        except PybpfError as error:
            return -_errno_of(error)
        if count < 0:
            return count
        total += count
    return total


def ring_buffer__poll(rb: ring_buffer, timeout_ms: int) -> int:
    """Wait up to `timeout_ms` (-1: forever) for a record in any ring, then consume them all."""
    deadline = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000
    while not any(m.producer_pos != m.consumer_pos for m, _, _ in rb.rings):
        if deadline is not None and time.monotonic() >= deadline:
            return 0
        time.sleep(0.001)
    return ring_buffer__consume(rb)


def ring_buffer__free(rb: ring_buffer | None) -> None:
    """Forget the rings (the maps stay with their object)."""
    if rb is not None:
        rb.rings.clear()


# -- perf buffers -------------------------------------------------------------------

PerfSampleCallback = Callable[[Any, int, bytes, int], None]
"""`sample_cb(ctx, cpu, data, size)`, as libbpf's `perf_buffer_sample_fn`."""
PerfLostCallback = Callable[[Any, int, int], None]
"""`lost_cb(ctx, cpu, count)`, as libbpf's `perf_buffer_lost_fn`."""


@dataclass
class perf_buffer:  # noqa: N801 - libbpf's struct name
    """`struct perf_buffer`: a reader attached to every CPU slot of a perf_event_array."""

    reader: Any
    sample_cb: PerfSampleCallback | None
    lost_cb: PerfLostCallback | None
    ctx: Any
    lost_seen: int = 0


def perf_buffer__new(
    map_fd: int,
    page_cnt: int,
    sample_cb: PerfSampleCallback | None,
    lost_cb: PerfLostCallback | None = None,
    ctx: Any = None,
    opts: Any = None,
) -> perf_buffer | None:
    """Attach a reader of `page_cnt` pages per CPU; None (`libbpf_errno()`) on failure.

    EBADF for an unknown fd, EINVAL for a map that is not a perf_event_array
    or a `page_cnt` that is not a power of two (as libbpf checks).
    """
    map_ = _lookup_fd(map_fd, Map)
    if map_ is None:
        _fail(errno.EBADF)
        return None
    if not callable(getattr(map_, "open_reader", None)) or page_cnt <= 0:
        _fail(errno.EINVAL)
        return None
    if page_cnt & (page_cnt - 1):
        _fail(errno.EINVAL)
        return None
    reader = map_.open_reader(capacity=page_cnt * 4096)
    return perf_buffer(reader, sample_cb, lost_cb, ctx)


def _deliver(pb: perf_buffer, samples: list[tuple[int, bytes]]) -> int:
    lost = pb.reader.lost - pb.lost_seen
    if lost and pb.lost_cb is not None:
        pb.lost_cb(pb.ctx, -1, lost)  # pybpf counts losses per reader, not per CPU
    pb.lost_seen = pb.reader.lost
    if pb.sample_cb is not None:
        for cpu, data in samples:
            pb.sample_cb(pb.ctx, cpu, data, len(data))
    return len(samples)


def perf_buffer__consume(pb: perf_buffer) -> int:
    """Hand every pending sample to the callbacks: 0 (libbpf returns 0 on success)."""
    _deliver(pb, pb.reader.read())
    return 0


def perf_buffer__poll(pb: perf_buffer, timeout_ms: int) -> int:
    """Wait up to `timeout_ms` (-1: forever) for samples; the number handed to `sample_cb`."""
    deadline = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000
    while True:
        samples = pb.reader.read()
        if samples or pb.reader.lost != pb.lost_seen:
            return _deliver(pb, samples)
        if deadline is not None and time.monotonic() >= deadline:
            return 0
        time.sleep(0.001)


def perf_buffer__free(pb: perf_buffer | None) -> None:
    """Detach the reader from the map's CPU slots."""
    if pb is not None:
        pb.reader.close()


# -- links: XDP and tc on live interfaces ----------------------------------------------------

BPF_TC_INGRESS = 1
BPF_TC_EGRESS = 2

_xdp_links: dict[int, Link] = {}  # ifindex -> the link bpf_xdp_attach made
_tc_links: dict[tuple[int, int], Link] = {}  # (ifindex, attach point) -> link


def _ifname(ifindex: int, netns: str | None = None) -> str | None:
    """The name of interface `ifindex` (in namespace `netns`), None if there is none."""
    from .hooks.netns import in_netns

    try:
        with in_netns(netns):
            return socket.if_indextoname(ifindex)
    except (OSError, InterfaceError):
        return None


def bpf_program__attach_xdp(prog: Program, ifindex: int, **pair: Any) -> Link | None:
    """Attach XDP `prog` to interface `ifindex`; the `Link`, or None with `libbpf_errno()`.

    pybpf's extension: `pass_to=` / `pass_to_tap=` / `netns=` as in
    `Program.attach_xdp` (without a pair the program only observes)."""
    name = _ifname(ifindex, pair.get("netns"))
    if name is None:
        _fail(errno.ENODEV)
        return None
    try:
        return prog.attach_xdp(name, **pair)
    except (PybpfError, OSError) as error:
        _fail(_errno_of(error))
        return None


def bpf_program__attach_cgroup(prog: Program, cgroup_fd: int = -1) -> Link | None:
    """Attach socket-address program `prog` "to a cgroup": pybpf has no cgroups, so to
    this process's own socket calls (`hooks.sock.attach`, audit hooks: deny only;
    `cgroup_fd` is not used). For a command and its descendants use
    `prog.attach_sock_addr(command)`. The `Link`, or None with `libbpf_errno()`."""
    try:
        return prog.attach_sock_addr()
    except (PybpfError, OSError) as error:
        _fail(_errno_of(error))
        return None


def bpf_link__destroy(link: Link | None) -> int:
    """Detach and free `link`: 0 (a link already closed is fine too)."""
    if link is None:
        return 0
    for table in (_xdp_links, _tc_links):
        for key, value in list(table.items()):
            if value is link:
                del table[key]
    try:
        link.close()
    except PybpfError as error:
        return -_errno_of(error)
    return 0


def bpf_xdp_attach(ifindex: int, prog_fd: int, flags: int = 0, opts: Any = None) -> int:
    """Attach the XDP program `prog_fd` to `ifindex` (replacing one attached before): 0 or
    -errno. The link is kept here; `bpf_xdp_detach` ends it."""
    program = _lookup_fd(prog_fd, Program)
    if program is None:
        return -errno.EBADF
    link = bpf_program__attach_xdp(program, ifindex)
    if link is None:
        return -_last_errno
    bpf_xdp_detach(ifindex, flags, opts)
    _xdp_links[ifindex] = link
    return 0


def bpf_xdp_detach(ifindex: int, flags: int = 0, opts: Any = None) -> int:
    """Detach the XDP program `bpf_xdp_attach` put on `ifindex`: 0 (also when none was)."""
    link = _xdp_links.pop(ifindex, None)
    return bpf_link__destroy(link)


@dataclass
class bpf_tc_hook:  # noqa: N801 - libbpf's struct name
    """`struct bpf_tc_hook`: the interface and attach point (BPF_TC_INGRESS / EGRESS)."""

    ifindex: int = 0
    attach_point: int = BPF_TC_INGRESS
    parent: int = 0


@dataclass
class bpf_tc_opts:  # noqa: N801 - libbpf's struct name
    """`struct bpf_tc_opts`: the program; `prog_id` is filled in by `bpf_tc_attach`."""

    prog_fd: int = 0
    flags: int = 0
    prog_id: int = 0
    handle: int = 1
    priority: int = 1


def bpf_tc_hook_create(hook: bpf_tc_hook) -> int:
    """libbpf creates the clsact qdisc here; pybpf needs none: 0 if the interface exists."""
    return 0 if _ifname(hook.ifindex) is not None else -errno.ENODEV


def bpf_tc_hook_destroy(hook: bpf_tc_hook) -> int:
    """Detach every tc program `bpf_tc_attach` put on the hook's interface: 0."""
    for point in (BPF_TC_INGRESS, BPF_TC_EGRESS):
        if hook.attach_point & point:
            bpf_link__destroy(_tc_links.pop((hook.ifindex, point), None))
    return 0


def bpf_tc_attach(hook: bpf_tc_hook, opts: bpf_tc_opts, **pair: Any) -> int:
    """Attach tc program `opts.prog_fd` to the hook: 0 or -errno (`opts.prog_id` set).

    An egress hook needs a paired port: pass `pass_to=` or `pass_to_tap=`
    (pybpf's extension, as in `Program.attach_tc`)."""
    program = _lookup_fd(opts.prog_fd, Program)
    if program is None:
        return -errno.EBADF
    if hook.attach_point not in (BPF_TC_INGRESS, BPF_TC_EGRESS):
        return -errno.EINVAL
    name = _ifname(hook.ifindex)
    if name is None:
        return -errno.ENODEV
    direction = "ingress" if hook.attach_point == BPF_TC_INGRESS else "egress"
    try:
        link = program.attach_tc(name, direction=direction, **pair)
    except (PybpfError, OSError) as error:
        return -_errno_of(error)
    bpf_link__destroy(_tc_links.pop((hook.ifindex, hook.attach_point), None))
    _tc_links[(hook.ifindex, hook.attach_point)] = link
    opts.prog_id = program.id
    return 0


def bpf_tc_detach(hook: bpf_tc_hook, opts: bpf_tc_opts) -> int:
    """Detach the tc program on the hook: 0, or -ENOENT when none is attached."""
    link = _tc_links.pop((hook.ifindex, hook.attach_point), None)
    if link is None:
        return -errno.ENOENT
    return bpf_link__destroy(link)


# -- pinning (this process's namespace, `pybpf.pins`) ---------------------------------


def _pinned(action: Callable[[], Any]) -> int:
    try:
        action()
    except (PybpfError, OSError) as error:
        return -_errno_of(error)
    return 0


def bpf_obj_pin(fd: int, pathname: str) -> int:
    """Pin the map or program `fd` at `pathname`: 0, -EEXIST, -EINVAL, -EBADF."""
    handle = _lookup_fd(fd, (Map, Program))
    if handle is None:
        return -errno.EBADF
    return _pinned(lambda: handle.pin(pathname))


def bpf_obj_get(pathname: str) -> int:
    """A descriptor of the map or program pinned at `pathname`, or -ENOENT / -EINVAL."""
    try:
        handle = pins.get(pathname)
    except PinError as error:
        return -error.errno
    if not isinstance(handle, (Map, Program)):
        return -errno.EINVAL  # a link: bpf_link__open is its way back
    return _fd(handle)


def bpf_map__pin(map_: Map, path: str) -> int:
    """Pin `map_` at `path`: 0 or -errno."""
    return _pinned(lambda: map_.pin(path))


def bpf_map__unpin(map_: Map, path: str) -> int:
    """Remove the pin at `path` (which must be `map_`'s): 0 or -errno."""
    return _unpin_own(map_, path)


def bpf_program__pin(prog: Program, path: str) -> int:
    """Pin `prog` at `path`: 0 or -errno."""
    return _pinned(lambda: prog.pin(path))


def bpf_program__unpin(prog: Program, path: str) -> int:
    """Remove the pin at `path` (which must be `prog`'s): 0 or -errno."""
    return _unpin_own(prog, path)


def bpf_link__pin(link: Link, path: str) -> int:
    """Pin `link` at `path`: it stays attached after its object closes. 0 or -errno."""
    return _pinned(lambda: link.pin(path))


def bpf_link__unpin(link: Link, path: str) -> int:
    """Remove the pin at `path` (which must be `link`'s): 0 or -errno."""
    return _unpin_own(link, path)


def bpf_object__pin(obj: Object, path: str) -> int:
    """Pin every map and loaded program of `obj` as `path/<name>`: 0 or -errno."""
    return _pinned(lambda: obj.pin(path))


def bpf_object__unpin(obj: Object, path: str) -> int:
    """Remove what `bpf_object__pin(obj, path)` made: 0 or -errno."""
    return _pinned(lambda: obj.unpin(path))


def _unpin_own(handle: Any, path: str) -> int:
    try:
        if pins.get(path) is not handle:
            return -errno.EINVAL
        pins.unpin(path)
    except PinError as error:
        return -error.errno
    return 0


# -- feature probes (`pybpf.features`) ------------------------------------------------


def libbpf_probe_bpf_prog_type(prog_type: int, opts: Any = None) -> int:
    """1 when pybpf loads programs of `prog_type`, 0 when not (-EINVAL: `opts` given)."""
    if opts is not None:
        return -errno.EINVAL
    from . import features

    return int(features.probe_prog_type(prog_type))


def libbpf_probe_bpf_map_type(map_type: int, opts: Any = None) -> int:
    """1 when pybpf has maps of `map_type`, 0 when not (-EINVAL: `opts` given)."""
    if opts is not None:
        return -errno.EINVAL
    from . import features

    return int(features.probe_map_type(map_type))


def libbpf_probe_bpf_helper(prog_type: int, helper_id: int, opts: Any = None) -> int:
    """1 when a `prog_type` program may call helper `helper_id` here, 0 when not;
    -EOPNOTSUPP for a program type pybpf does not load (as libbpf), -EINVAL: `opts`."""
    if opts is not None:
        return -errno.EINVAL
    from . import features

    if not features.probe_prog_type(prog_type):
        return -errno.EOPNOTSUPP
    return int(features.probe_helper(prog_type, helper_id))
