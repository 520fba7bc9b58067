"""The real Linux kernel as a reference, driven through libbpf with ctypes.

pybpf's behaviour is defined by what Linux does; this module lets tests and
benchmarks ask the kernel directly. `KernelObject` opens and loads a clang
object with libbpf (`bpf_object__open_file` + `bpf_object__load`), then
exposes its programs (fds, `test_run` through `bpf_prog_test_run_opts`) and
maps (`KernelMap`: raw-bytes lookup, update, delete, iteration; per-CPU
values as one entry per possible CPU; ring buffer consumption).

Nothing here may crash or fail an import on a machine without libbpf, root
or a working bpf() syscall: `kernel_available()` answers False and callers
skip. Failures after that are `KernelError` carrying the errno.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno as errno_mod
import functools
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

#: Map types whose values the kernel stores once per possible CPU.
PERCPU_MAP_TYPES = frozenset(
    {5, 6, 10, 21}
)  # percpu_hash, percpu_array, lru_percpu_hash, percpu_cgroup_storage
BPF_MAP_TYPE_ARRAY = 2
BPF_MAP_TYPE_PROG_ARRAY = 3
BPF_MAP_TYPE_RINGBUF = 27

_LIBBPF_NAMES = ("libbpf.so.1", "libbpf.so")


class KernelError(OSError):
    """A libbpf call failed; `errno` is the positive errno it reported."""

    def __init__(self, op: str, err: int, detail: str = ""):
        err = abs(err)
        message = f"{op} failed: {os.strerror(err)} (errno {err})"
        if detail:
            message += f": {detail}"
        super().__init__(err, message)
        self.op = op


class TestRun(NamedTuple):
    """What `bpf_prog_test_run_opts` returned."""

    retval: int
    data_out: bytes
    ctx_out: bytes | None
    duration: int

    __test__ = False  # not a pytest test class despite the name


class _TestRunOpts(ctypes.Structure):
    # struct bpf_test_run_opts, libbpf 1.x (bpf/bpf.h)
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("data_in", ctypes.c_void_p),
        ("data_out", ctypes.c_void_p),
        ("data_size_in", ctypes.c_uint32),
        ("data_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_void_p),
        ("ctx_out", ctypes.c_void_p),
        ("ctx_size_in", ctypes.c_uint32),
        ("ctx_size_out", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("repeat", ctypes.c_int),
        ("duration", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("batch_size", ctypes.c_uint32),
    ]


_SAMPLE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)

_PROTOTYPES: dict[str, tuple[object, list[object]]] = {
    "bpf_object__open_file": (ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_void_p]),
    "bpf_object__load": (ctypes.c_int, [ctypes.c_void_p]),
    "bpf_object__close": (None, [ctypes.c_void_p]),
    "bpf_object__find_program_by_name": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_char_p]),
    "bpf_object__find_map_by_name": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_char_p]),
    "bpf_object__next_program": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_void_p]),
    "bpf_object__next_map": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_void_p]),
    "bpf_program__fd": (ctypes.c_int, [ctypes.c_void_p]),
    "bpf_prog_attach": (ctypes.c_int, [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_uint]),
    "bpf_prog_detach2": (ctypes.c_int, [ctypes.c_int, ctypes.c_int, ctypes.c_int]),
    "bpf_program__name": (ctypes.c_char_p, [ctypes.c_void_p]),
    "bpf_map__fd": (ctypes.c_int, [ctypes.c_void_p]),
    "bpf_map__name": (ctypes.c_char_p, [ctypes.c_void_p]),
    "bpf_map__type": (ctypes.c_int, [ctypes.c_void_p]),
    "bpf_map__key_size": (ctypes.c_uint32, [ctypes.c_void_p]),
    "bpf_map__value_size": (ctypes.c_uint32, [ctypes.c_void_p]),
    "bpf_map__max_entries": (ctypes.c_uint32, [ctypes.c_void_p]),
    "bpf_program__set_autoload": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_bool]),
    "bpf_map__set_max_entries": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_uint32]),
    "bpf_map__btf_value_type_id": (ctypes.c_uint32, [ctypes.c_void_p]),
    "bpf_object__btf": (ctypes.c_void_p, [ctypes.c_void_p]),
    "btf__raw_data": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32)]),
    "bpf_map__initial_value": (
        ctypes.c_void_p,
        [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t)],
    ),
    "bpf_map_create": (
        ctypes.c_int,
        [
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_uint32,
            ctypes.c_uint32,
            ctypes.c_uint32,
            ctypes.c_void_p,
        ],
    ),
    "bpf_map_lookup_elem": (ctypes.c_int, [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]),
    "bpf_map_update_elem": (
        ctypes.c_int,
        [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64],
    ),
    "bpf_map_delete_elem": (ctypes.c_int, [ctypes.c_int, ctypes.c_void_p]),
    "bpf_map_get_next_key": (ctypes.c_int, [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]),
    "bpf_prog_test_run_opts": (ctypes.c_int, [ctypes.c_int, ctypes.POINTER(_TestRunOpts)]),
    "libbpf_num_possible_cpus": (ctypes.c_int, []),
    "ring_buffer__new": (
        ctypes.c_void_p,
        [ctypes.c_int, _SAMPLE_FN, ctypes.c_void_p, ctypes.c_void_p],
    ),
    "ring_buffer__consume": (ctypes.c_int, [ctypes.c_void_p]),
    "ring_buffer__free": (None, [ctypes.c_void_p]),
}


@functools.cache
def libbpf() -> ctypes.CDLL | None:
    """libbpf.so.1 with the prototypes this module uses, or None when it cannot load."""
    names = list(_LIBBPF_NAMES)
    found = ctypes.util.find_library("bpf")
    if found:
        names.append(found)
    for name in names:
        try:
            lib = ctypes.CDLL(name, use_errno=True)
        except OSError:
            continue
        try:
            for symbol, (restype, argtypes) in _PROTOTYPES.items():
                fn = getattr(lib, symbol)
                fn.restype = restype
                fn.argtypes = argtypes
        except AttributeError:
            continue  # too old a libbpf: treat as missing
        return lib
    return None


def _lib() -> ctypes.CDLL:
    lib = libbpf()
    if lib is None:
        raise KernelError("dlopen libbpf", errno_mod.ENOENT, "libbpf.so.1 is not installed")
    return lib


@functools.cache
def kernel_available() -> bool:
    """True when running as root with a loadable libbpf and a working bpf() syscall."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False
    lib = libbpf()
    if lib is None:
        return False
    fd = lib.bpf_map_create(BPF_MAP_TYPE_ARRAY, b"pybpf_probe", 4, 8, 1, None)
    if fd < 0:
        return False
    os.close(fd)
    return True


def unavailable_reason() -> str:
    """Why `kernel_available()` is False, for skip messages."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root for the bpf() syscall"
    if libbpf() is None:
        return "libbpf.so.1 is not installed (apt-get install libbpf1 / libbpf-dev)"
    if not kernel_available():
        return "the bpf() syscall does not work here"
    return ""


@functools.cache
def possible_cpus() -> int:
    """The kernel's number of possible CPUs: the length of a per-CPU value list."""
    n = _lib().libbpf_num_possible_cpus()
    if n < 0:
        raise KernelError("libbpf_num_possible_cpus", n)
    return n


def _check(op: str, result: int) -> int:
    if result < 0:
        raise KernelError(op, -result if result != -1 else ctypes.get_errno() or 1)
    return result


@contextlib.contextmanager
def _on_cpu(cpu: int | None) -> Iterator[None]:
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _round8(n: int) -> int:
    return (n + 7) & ~7


class KernelMap:
    """A live kernel map, addressed by fd, with keys and values as raw bytes."""

    def __init__(
        self, fd: int, name: str, map_type: int, key_size: int, value_size: int, max_entries: int
    ):
        self.fd = fd
        self.name = name
        self.type = map_type
        self.key_size = key_size
        self.value_size = value_size
        self.max_entries = max_entries
        self.percpu = map_type in PERCPU_MAP_TYPES
        self._stride = _round8(value_size)
        self._buf_size = self._stride * possible_cpus() if self.percpu else value_size

    def _key(self, key: bytes) -> ctypes.Array:
        if len(key) != self.key_size:
            raise KernelError(
                f"{self.name}: key", errno_mod.EINVAL, f"{len(key)} bytes, map has {self.key_size}"
            )
        return ctypes.create_string_buffer(bytes(key), self.key_size)

    def lookup(self, key: bytes) -> bytes | list[bytes] | None:
        """The value (a list with one value per possible CPU for per-CPU maps), or None."""
        value = ctypes.create_string_buffer(max(self._buf_size, 1))
        result = _lib().bpf_map_lookup_elem(self.fd, self._key(key), value)
        if result < 0:
            if -result == errno_mod.ENOENT:
                return None
            _check(f"bpf_map_lookup_elem({self.name})", result)
        raw = value.raw[: self._buf_size]
        if self.percpu:
            return [
                raw[i * self._stride : i * self._stride + self.value_size]
                for i in range(possible_cpus())
            ]
        return raw

    def update(self, key: bytes, value: bytes | list[bytes], flags: int = 0) -> None:
        """bpf_map_update_elem; per-CPU maps take one value for all CPUs or a list per CPU."""
        if self.percpu:
            values = value if isinstance(value, list) else [bytes(value)] * possible_cpus()
            if len(values) != possible_cpus() or any(len(v) != self.value_size for v in values):
                raise KernelError(f"{self.name}: value", errno_mod.EINVAL, "per-CPU value shape")
            raw = b"".join(v.ljust(self._stride, b"\0") for v in values)
        else:
            raw = bytes(value)
            if len(raw) != self.value_size:
                raise KernelError(
                    f"{self.name}: value",
                    errno_mod.EINVAL,
                    f"{len(raw)} bytes, map has {self.value_size}",
                )
        buf = ctypes.create_string_buffer(raw, len(raw))
        _check(
            f"bpf_map_update_elem({self.name})",
            _lib().bpf_map_update_elem(self.fd, self._key(key), buf, flags),
        )

    def delete(self, key: bytes) -> None:
        """bpf_map_delete_elem; KernelError(ENOENT) when absent."""
        _check(
            f"bpf_map_delete_elem({self.name})", _lib().bpf_map_delete_elem(self.fd, self._key(key))
        )

    def get_next_key(self, key: bytes | None = None) -> bytes | None:
        """The key after `key` (the first key for None), or None at the end."""
        out = ctypes.create_string_buffer(max(self.key_size, 1))
        prev = None if key is None else self._key(key)
        result = _lib().bpf_map_get_next_key(self.fd, prev, out)
        if result < 0:
            if -result == errno_mod.ENOENT:
                return None
            _check(f"bpf_map_get_next_key({self.name})", result)
        return out.raw[: self.key_size]

    def keys(self) -> Iterator[bytes]:
        """Keys in the kernel's iteration order."""
        key = self.get_next_key(None)
        while key is not None:
            yield key
            key = self.get_next_key(key)

    def items(self) -> list[tuple[bytes, bytes | list[bytes]]]:
        """(key, value) pairs; keys deleted while iterating are left out."""
        out = []
        for key in self.keys():
            value = self.lookup(key)
            if value is not None:
                out.append((key, value))
        return out

    def consume(self) -> list[bytes]:
        """Consume a ring buffer map: every committed record, in order (discarded ones are skipped)."""
        if self.type != BPF_MAP_TYPE_RINGBUF:
            raise KernelError(
                f"ring_buffer__new({self.name})", errno_mod.EINVAL, "not a ringbuf map"
            )
        records: list[bytes] = []

        def sample(_ctx: int, data: int, size: int) -> int:
            records.append(ctypes.string_at(data, size))
            return 0

        callback = _SAMPLE_FN(sample)  # kept alive until free
        lib = _lib()
        rb = lib.ring_buffer__new(self.fd, callback, None, None)
        if not rb:
            raise KernelError(
                f"ring_buffer__new({self.name})", ctypes.get_errno() or errno_mod.EINVAL
            )
        try:
            _check(f"ring_buffer__consume({self.name})", lib.ring_buffer__consume(rb))
        finally:
            lib.ring_buffer__free(rb)
        return records


class KernelObject:
    """A clang object opened and loaded into the kernel by libbpf; closing unloads it.

    `globals` sets variables of `.rodata`/`.data`/`.bss` before loading, by
    symbol name, as a libbpf skeleton does: `{"limit": struct.pack("<Q", 5)}`.
    `autoload` turns programs on or off by name (`bpf_program__set_autoload`)
    and `max_entries` resizes maps by name (`bpf_map__set_max_entries`),
    both between open and load.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        globals: dict[str, bytes] | None = None,
        *,
        autoload: dict[str, bool] | None = None,
        max_entries: dict[str, int] | None = None,
    ):
        self.path = Path(path)
        lib = _lib()
        self._obj: int | None = lib.bpf_object__open_file(os.fsencode(self.path), None)
        if not self._obj:
            self._obj = None
            raise KernelError(
                f"bpf_object__open_file({self.path.name})", ctypes.get_errno() or errno_mod.EINVAL
            )
        try:
            if globals:
                self._set_globals(globals)
            for name, on in (autoload or {}).items():
                handle = lib.bpf_object__find_program_by_name(self._obj, name.encode())
                if not handle:
                    raise KernelError(f"program {name!r}", errno_mod.ENOENT)
                _check(
                    f"bpf_program__set_autoload({name})", lib.bpf_program__set_autoload(handle, on)
                )
            for name, entries in (max_entries or {}).items():
                handle = lib.bpf_object__find_map_by_name(self._obj, name.encode())
                if not handle:
                    raise KernelError(f"map {name!r}", errno_mod.ENOENT)
                _check(
                    f"bpf_map__set_max_entries({name})",
                    lib.bpf_map__set_max_entries(handle, entries),
                )
            result = lib.bpf_object__load(self._obj)
            if result < 0:
                raise KernelError(
                    f"bpf_object__load({self.path.name})",
                    -result,
                    "see libbpf's log on stderr for the verifier report",
                )
        except BaseException:
            self.close()
            raise

    def _set_globals(self, values: dict[str, bytes]) -> None:
        from elftools.elf.elffile import ELFFile

        with open(self.path, "rb") as f:
            elf = ELFFile(f)
            symtab = elf.get_section_by_name(".symtab")
            where = {}
            for sym in symtab.iter_symbols():
                if sym.name in values and isinstance(sym["st_shndx"], int):
                    section = elf.get_section(sym["st_shndx"]).name
                    where[sym.name] = (section, sym["st_value"], sym["st_size"])
        for name, value in values.items():
            if name not in where:
                raise KernelError(f"global {name!r}", errno_mod.ENOENT, "no such symbol")
            section, offset, size = where[name]
            if len(value) != size:
                raise KernelError(
                    f"global {name!r}", errno_mod.EINVAL, f"{len(value)} bytes, variable has {size}"
                )
            handle = self._map_handle_by_suffix(section)
            psize = ctypes.c_size_t()
            base = _lib().bpf_map__initial_value(handle, ctypes.byref(psize))
            if not base or offset + size > psize.value:
                raise KernelError(
                    f"global {name!r}", errno_mod.EINVAL, "no initial value in libbpf"
                )
            ctypes.memmove(base + offset, value, size)

    def _handles(self, kind: str) -> Iterator[int]:
        step = getattr(_lib(), f"bpf_object__next_{kind}")
        handle = step(self._live, None)
        while handle:
            yield handle
            handle = step(self._obj, handle)

    def _map_handle_by_suffix(self, section: str) -> int:
        # libbpf names global-data maps "<object prefix>.rodata"
        for handle in self._handles("map"):
            if _lib().bpf_map__name(handle).decode().endswith(section):
                return handle
        raise KernelError(f"map for {section}", errno_mod.ENOENT)

    @property
    def _live(self) -> int:
        if self._obj is None:
            raise KernelError("KernelObject", errno_mod.EBADF, "closed")
        return self._obj

    def program_names(self) -> list[str]:
        """Programs by function name, in the object's order."""
        return [_lib().bpf_program__name(h).decode() for h in self._handles("program")]

    def map_names(self) -> list[str]:
        """Maps by libbpf's name (global data as '<prefix>.rodata' etc.)."""
        return [_lib().bpf_map__name(h).decode() for h in self._handles("map")]

    def program(self, name: str) -> int:
        """The fd of the loaded program `name` (function name)."""
        handle = _lib().bpf_object__find_program_by_name(self._live, name.encode())
        if not handle:
            raise KernelError(
                f"program {name!r}", errno_mod.ENOENT, f"programs: {self.program_names()}"
            )
        return _lib().bpf_program__fd(handle)

    def map(self, name: str) -> KernelMap:
        """The map `name`; '.rodata'/'.data'/'.bss' find the global-data maps."""
        lib = _lib()
        handle = lib.bpf_object__find_map_by_name(self._live, name.encode())
        if not handle and name.startswith("."):
            handle = self._map_handle_by_suffix(name)
        if not handle:
            raise KernelError(f"map {name!r}", errno_mod.ENOENT, f"maps: {self.map_names()}")
        return KernelMap(
            lib.bpf_map__fd(handle),
            lib.bpf_map__name(handle).decode(),
            lib.bpf_map__type(handle),
            lib.bpf_map__key_size(handle),
            lib.bpf_map__value_size(handle),
            lib.bpf_map__max_entries(handle),
        )

    def btf_raw(self) -> bytes:
        """The object's BTF as libbpf holds it after opening (DATASECs fixed up)."""
        btf = _lib().bpf_object__btf(self._live)
        if not btf:
            raise KernelError("bpf_object__btf", errno_mod.ENOENT, "object has no BTF")
        size = ctypes.c_uint32()
        data = _lib().btf__raw_data(btf, ctypes.byref(size))
        if not data:
            raise KernelError("btf__raw_data", errno_mod.ENOMEM)
        return ctypes.string_at(data, size.value)

    def map_value_type_id(self, name: str) -> int:
        """The BTF type id libbpf gave map `name`'s value (a DATASEC for global data)."""
        handle = _lib().bpf_object__find_map_by_name(self._live, name.encode())
        if not handle and name.startswith("."):
            handle = self._map_handle_by_suffix(name)
        if not handle:
            raise KernelError(f"map {name!r}", errno_mod.ENOENT, f"maps: {self.map_names()}")
        return _lib().bpf_map__btf_value_type_id(handle)

    def set_prog_array(self, map_name: str, index: int, prog_name: str) -> None:
        """Put program `prog_name` in slot `index` of prog_array `map_name`."""
        m = self.map(map_name)
        m.update(index.to_bytes(4, "little"), self.program(prog_name).to_bytes(4, "little"))

    def test_run(
        self,
        prog_name: str,
        data_in: bytes,
        ctx_in: bytes | None = None,
        repeat: int = 1,
        *,
        data_out_size: int | None = None,
        ctx_out_size: int = 256,
        cpu: int | None = 0,
    ) -> TestRun:
        """bpf_prog_test_run_opts on program `prog_name`.

        The kernel runs XDP and tc test runs on the calling thread's CPU, so
        per-CPU map values land wherever the scheduler put us. `cpu` pins the
        thread there for the call (default CPU 0, where pybpf's runs count),
        which keeps per-CPU state deterministic; None leaves affinity alone.
        """
        fd = self.program(prog_name)
        data = ctypes.create_string_buffer(bytes(data_in), max(len(data_in), 1))
        out_size = data_out_size if data_out_size is not None else len(data_in) + 4096
        out = ctypes.create_string_buffer(max(out_size, 1))
        opts = _TestRunOpts(sz=ctypes.sizeof(_TestRunOpts))
        # Empty data and a zero data_out_size / ctx_out_size pass NULL, as
        # raw_tracepoint and sk_lookup runs require.
        if data_in:
            opts.data_in = ctypes.cast(data, ctypes.c_void_p)
            opts.data_size_in = len(data_in)
        if out_size:
            opts.data_out = ctypes.cast(out, ctypes.c_void_p)
            opts.data_size_out = out_size
        opts.repeat = repeat
        ctx_buf = ctx_out = None
        if ctx_in is not None:
            ctx_buf = ctypes.create_string_buffer(bytes(ctx_in), max(len(ctx_in), 1))
            opts.ctx_in = ctypes.cast(ctx_buf, ctypes.c_void_p)
            opts.ctx_size_in = len(ctx_in)
            if ctx_out_size:
                ctx_out = ctypes.create_string_buffer(max(ctx_out_size, len(ctx_in)))
                opts.ctx_out = ctypes.cast(ctx_out, ctypes.c_void_p)
                opts.ctx_size_out = ctypes.sizeof(ctx_out)
        with _on_cpu(cpu):
            result = _lib().bpf_prog_test_run_opts(fd, ctypes.byref(opts))
        _check(f"bpf_prog_test_run_opts({prog_name})", result)
        return TestRun(
            opts.retval,
            out.raw[: opts.data_size_out] if out_size else b"",
            None if ctx_out is None else ctx_out.raw[: opts.ctx_size_out],
            opts.duration,
        )

    def run_syscall(self, prog_name: str, ctx_in: bytes | None = None) -> int:
        """Run the `syscall` program `prog_name` once in this thread; its return value.

        The kernel refuses data, ctx_out and repeat for this type: only
        `ctx_in` is passed (the program may write to it; those writes are lost).
        """
        opts = _TestRunOpts(sz=ctypes.sizeof(_TestRunOpts))
        if ctx_in is not None:
            buf = ctypes.create_string_buffer(bytes(ctx_in), max(len(ctx_in), 1))
            opts.ctx_in = ctypes.cast(buf, ctypes.c_void_p)
            opts.ctx_size_in = len(ctx_in)
        result = _lib().bpf_prog_test_run_opts(self.program(prog_name), ctypes.byref(opts))
        _check(f"bpf_prog_test_run_opts({prog_name})", result)
        return opts.retval

    def close(self) -> None:
        """Unload the object (idempotent)."""
        if self._obj is not None:
            _lib().bpf_object__close(self._obj)
            self._obj = None

    def __enter__(self) -> KernelObject:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def raw_map(key_size: int, value_size: int, max_entries: int, map_type: int = 1) -> KernelMap:
    """A standalone kernel map (default: BPF_MAP_TYPE_HASH) made with bpf_map_create.

    Used by benchmarks for the raw `bpf(BPF_MAP_*_ELEM)` path; close with `close_map`.
    """
    fd = _check(
        "bpf_map_create",
        _lib().bpf_map_create(map_type, b"pybpf_raw", key_size, value_size, max_entries, None),
    )
    return KernelMap(fd, "pybpf_raw", map_type, key_size, value_size, max_entries)


def close_map(m: KernelMap) -> None:
    """Close a map made by `raw_map`."""
    os.close(m.fd)


_CGROUP_ROOTS = ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")


def cgroup2_root() -> str | None:
    """Where cgroup v2 is mounted (the unified hierarchy), or None."""
    for root in _CGROUP_ROOTS:
        if os.path.exists(f"{root}/cgroup.procs") and os.path.exists(f"{root}/cgroup.controllers"):
            return root
    return None


class KernelCgroup:
    """A fresh cgroup v2 with loaded programs attached to the kernel's own cgroup hooks,
    and commands run inside it. `with KernelCgroup([(prog_fd, attach type number), …])
    as cg: cg.run([...])`; detached and removed on exit."""

    def __init__(self, attachments: list[tuple[int, int]]) -> None:
        root = cgroup2_root()
        if root is None:
            raise KernelError("cgroup v2", errno_mod.ENOENT, "no cgroup v2 mount")
        self.path = f"{root}/pybpf-test-{os.getpid()}-{id(self):x}"
        os.mkdir(self.path)
        self._fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        self._attached: list[tuple[int, int]] = []
        try:
            for prog_fd, attach_type in attachments:
                result = _lib().bpf_prog_attach(prog_fd, self._fd, attach_type, 0)
                _check(f"bpf_prog_attach(attach type {attach_type})", result)
                self._attached.append((prog_fd, attach_type))
        except BaseException:
            self.close()
            raise

    def run(self, command: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        """Run `command` inside the cgroup (it moves itself in before exec)."""
        script = f'echo $$ > {self.path}/cgroup.procs && exec "$@"'
        return subprocess.run(["sh", "-c", script, "sh", *command], **kwargs)  # type: ignore[call-overload]

    def close(self) -> None:
        for prog_fd, attach_type in self._attached:
            _lib().bpf_prog_detach2(prog_fd, self._fd, attach_type)
        self._attached = []
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if os.path.isdir(self.path):
            os.rmdir(self.path)

    def __enter__(self) -> KernelCgroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
