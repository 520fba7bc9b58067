"""`Map.lookup` and `Map.update` as native builtins: the family's native code, minus ctypes.

Through ctypes, a lookup from Python costs about a microsecond, nearly all
of it argument conversion, buffer objects and the foreign call itself. The
entry points built here are CPython `METH_FASTCALL | METH_KEYWORDS`
functions compiled from LLVM IR into each family's own native module
(`add_entry_points`), and installed on the family's class as method
descriptors where it inherits `Map.lookup`, `Map.update` or
`PerCpuValues.lookup` (so `m.lookup(k)` is a plain C call, like
`dict.get`). They take the `bytes` arguments as they are, check their
sizes, call the family's exported native operation (the one the engines
call) directly, and build the result. There is no second copy of any
map's logic: these functions only move bytes between Python objects and
the native operation.

Anything off the fast path goes to the original Python method, which keeps
every existing semantic and error message: keyword arguments, arguments
that are not exactly `bytes` (bytearray, memoryview) or `int` (flags), a
wrong size (its `MapError(EINVAL)` comes from there), or a map without a
binding (a subclass overriding `_key`/`_value`, or fast calls disabled).
A native update that fails hands its errno to `Map._error`.

Each map carries its binding in `_fastcall`: a capsule pointing at a
`FastBinding` (map pointer, sizes, CPU count and stride). The
GIL stays held during these calls (they are short, and it serialises
Python callers); native code of other threads is excluded by the map's own
spinlock as before. Set `PYBPF_NO_FASTCALL=1` to keep the ctypes path.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable

from llvmlite import ir

from ..native import NativeModule, capi
from ..native.irblocks import I64, define, i64, load, store

FASTCALL_ENABLED = capi.AVAILABLE and os.environ.get("PYBPF_NO_FASTCALL", "") in ("", "0")
"""Whether maps get native `lookup`/`update` entry points in this process."""

METH_FASTCALL_KEYWORDS = capi.METH_FASTCALL | capi.METH_KEYWORDS

LOOKUP = "lookup"
PERCPU_LOOKUP = "percpu_lookup"
UPDATE = "update"

# Object slots of the C-API table.
SLOT_BYTES, SLOT_INT, SLOT_NONE, SLOT_ATTRIBUTE, SLOT_RAISE = range(5)
SLOT_FALLBACK = {LOOKUP: 5, PERCPU_LOOKUP: 6, UPDATE: 7}

ATTRIBUTE = "_fastcall"
"""Instance attribute holding a map's binding capsule."""

ENTRY = "py_"
"""Infix of a family's entry points: `<prefix>py_lookup`, `<prefix>py_update`."""


class FastBinding(ctypes.Structure):
    """What an entry point needs to know about one map (all 64-bit)."""

    _fields_ = [
        ("map", ctypes.c_uint64),  # the header address every native operation takes
        ("key_size", ctypes.c_uint64),
        ("value_size", ctypes.c_uint64),
        ("ncpus", ctypes.c_uint64),
        ("value_stride", ctypes.c_uint64),
    ]


def _field(b: ir.IRBuilder, binding: ir.Value, name: str) -> ir.Value:
    return load(b, b.add(binding, i64(getattr(FastBinding, name).offset)), I64)


class _Entry:
    """Builds one entry point: argument checks, binding, fallback."""

    def __init__(self, module: ir.Module, prefix: str, table_global: ir.GlobalVariable, kind: str):
        self.kind = kind
        name = f"{prefix}{ENTRY}{'update' if kind == UPDATE else 'lookup'}"
        self.function, self.b = define(module, name, I64, [I64] * 4)
        self.self_, self.args, self.nargs, self.kwnames = self.function.args
        self.table = self.b.load(table_global)
        self.fallback_block = self.function.append_basic_block("fallback")
        self._build_fallback()

    def call(self, name: str, *args: ir.Value) -> ir.Value:
        return capi.call(self.b, self.table, name, list(args))

    def obj(self, slot: int) -> ir.Value:
        return capi.table_object(self.b, self.table, slot)

    def check(self, condition: ir.Value) -> None:
        """Continue when `condition` holds, else take the Python path."""
        ok = self.function.append_basic_block("ok")
        self.b.cbranch(condition, ok, self.fallback_block)
        self.b.position_at_end(ok)

    def arg(self, index: int) -> ir.Value:
        return load(self.b, self.b.add(self.args, i64(8 * index)), I64)

    def binding(self) -> ir.Value:
        """The map's `FastBinding` address (to the fallback when it has none)."""
        b = self.b
        capsule = self.call("PyObject_GetAttr", self.self_, self.obj(SLOT_ATTRIBUTE))
        missing = self.function.append_basic_block("binding.missing")
        present = self.function.append_basic_block("binding.present")
        b.cbranch(b.icmp_unsigned("==", capsule, i64(0)), missing, present)
        b.position_at_end(missing)
        self.call("PyErr_Clear")
        b.branch(self.fallback_block)
        b.position_at_end(present)
        # The map holds the capsule and the binding: both outlive this call.
        binding = self.call("PyCapsule_GetPointer", capsule, i64(0))
        self.call("Py_DecRef", capsule)
        null = self.function.append_basic_block("binding.null")
        good = self.function.append_basic_block("binding.good")
        b.cbranch(b.icmp_unsigned("==", binding, i64(0)), null, good)
        b.position_at_end(null)
        self.call("PyErr_Clear")
        b.branch(self.fallback_block)
        b.position_at_end(good)
        return binding

    def sized_bytes(self, obj: ir.Value, size: ir.Value) -> ir.Value:
        """The data of `obj`, which must be exactly `bytes` of `size` bytes."""
        b = self.b
        self.check(b.icmp_unsigned("==", capi.type_of(b, obj), self.obj(SLOT_BYTES)))
        self.check(b.icmp_unsigned("==", self.call("PyBytes_Size", obj), size))
        return self.call("PyBytes_AsString", obj)

    def none(self) -> None:
        none = self.obj(SLOT_NONE)
        self.call("Py_IncRef", none)
        self.b.ret(none)

    def _build_fallback(self) -> None:
        # fallback: return original(self, *args, **kw) through vectorcall.
        entry = self.b.block
        b = self.b
        b.position_at_end(self.fallback_block)
        keywords = self.call_kw_size()
        total = b.add(self.nargs, keywords)
        frame = b.alloca(I64, b.add(total, i64(1)))
        base = b.ptrtoint(frame, I64)
        store(b, self.self_, base)
        copy = self.function.append_basic_block("fallback.copy")
        done = self.function.append_basic_block("fallback.call")
        start = b.block
        b.cbranch(b.icmp_signed(">", total, i64(0)), copy, done)
        b.position_at_end(copy)
        index = b.phi(I64)
        index.add_incoming(i64(0), start)
        item = load(b, b.add(self.args, b.mul(index, i64(8))), I64)
        store(b, item, b.add(base, b.mul(b.add(index, i64(1)), i64(8))))
        following = b.add(index, i64(1))
        index.add_incoming(following, copy)
        b.cbranch(b.icmp_signed("<", following, total), copy, done)
        b.position_at_end(done)
        original = self.obj(SLOT_FALLBACK[self.kind])
        nargsf = b.add(self.nargs, i64(1))
        b.ret(self.call("PyObject_Vectorcall", original, base, nargsf, self.kwnames))
        b.position_at_end(entry)

    def call_kw_size(self) -> ir.Value:
        """`len(kwnames)`, 0 when there are none (PyTuple_Size(NULL) would set an error)."""
        b = self.b
        has = self.function.append_basic_block("kw.some")
        none = self.function.append_basic_block("kw.none")
        join = self.function.append_basic_block("kw.join")
        b.cbranch(b.icmp_unsigned("!=", self.kwnames, i64(0)), has, none)
        b.position_at_end(has)
        size = self.call("PyTuple_Size", self.kwnames)
        b.branch(join)
        b.position_at_end(none)
        b.branch(join)
        b.position_at_end(join)
        phi = b.phi(I64)
        phi.add_incoming(size, has)
        phi.add_incoming(i64(0), none)
        return phi


def _build_lookup(entry: _Entry, operation: ir.Function, percpu: bool) -> None:
    b = entry.b
    entry.check(b.icmp_unsigned("==", entry.kwnames, i64(0)))
    entry.check(b.icmp_unsigned("==", entry.nargs, i64(1)))
    binding = entry.binding()
    key = entry.sized_bytes(entry.arg(0), _field(b, binding, "key_size"))
    value = b.call(operation, [_field(b, binding, "map"), key, i64(-1)])
    absent = entry.function.append_basic_block("absent")
    present = entry.function.append_basic_block("present")
    b.cbranch(b.icmp_unsigned("==", value, i64(0)), absent, present)
    b.position_at_end(absent)
    entry.none()
    b.position_at_end(present)
    size = _field(b, binding, "value_size")
    if not percpu:
        b.ret(entry.call("PyBytes_FromStringAndSize", value, size))
        return
    ncpus = _field(b, binding, "ncpus")
    stride = _field(b, binding, "value_stride")
    values = entry.call("PyList_New", ncpus)
    with b.if_then(b.icmp_unsigned("==", values, i64(0))):
        b.ret(i64(0))
    loop = entry.function.append_basic_block("cpu")
    done = entry.function.append_basic_block("cpus.done")
    start = b.block
    b.cbranch(b.icmp_unsigned(">", ncpus, i64(0)), loop, done)
    b.position_at_end(loop)
    cpu = b.phi(I64)
    cpu.add_incoming(i64(0), start)
    item = entry.call("PyBytes_FromStringAndSize", b.add(value, b.mul(cpu, stride)), size)
    with b.if_then(b.icmp_unsigned("==", item, i64(0))):
        entry.call("Py_DecRef", values)
        b.ret(i64(0))
    entry.call("PyList_SetItem", values, cpu, item)  # steals the new reference
    following = b.add(cpu, i64(1))
    cpu.add_incoming(following, b.block)
    b.cbranch(b.icmp_unsigned("<", following, ncpus), loop, done)
    b.position_at_end(done)
    b.ret(values)


def _build_update(entry: _Entry, operation: ir.Function) -> None:
    b = entry.b
    entry.check(b.icmp_unsigned("==", entry.kwnames, i64(0)))
    entry.check(b.icmp_unsigned(">=", entry.nargs, i64(2)))
    entry.check(b.icmp_unsigned("<=", entry.nargs, i64(3)))
    binding = entry.binding()
    key = entry.sized_bytes(entry.arg(0), _field(b, binding, "key_size"))
    value = entry.sized_bytes(entry.arg(1), _field(b, binding, "value_size"))
    given = entry.function.append_basic_block("flags.given")
    resolved = entry.function.append_basic_block("flags.resolved")
    before = b.block
    b.cbranch(b.icmp_unsigned("==", entry.nargs, i64(3)), given, resolved)
    b.position_at_end(given)
    flags_obj = entry.arg(2)
    entry.check(b.icmp_unsigned("==", capi.type_of(b, flags_obj), entry.obj(SLOT_INT)))
    # As ctypes converts a Python int for a c_uint64 argument: modulo 2**64.
    converted = entry.call("PyLong_AsUnsignedLongLongMask", flags_obj)
    converted_block = b.block
    b.branch(resolved)
    b.position_at_end(resolved)
    flags = b.phi(I64)
    flags.add_incoming(i64(0), before)
    flags.add_incoming(converted, converted_block)
    result = b.call(operation, [_field(b, binding, "map"), key, value, flags, i64(0)])
    failed = entry.function.append_basic_block("failed")
    done = entry.function.append_basic_block("done")
    b.cbranch(b.icmp_signed("<", result, i64(0)), failed, done)
    b.position_at_end(done)
    entry.none()
    b.position_at_end(failed)
    number = entry.call("PyLong_FromLongLong", result)
    with b.if_then(b.icmp_unsigned("==", number, i64(0))):
        b.ret(i64(0))
    frame = b.ptrtoint(b.alloca(I64, i64(2)), I64)
    store(b, entry.self_, frame)
    store(b, number, b.add(frame, i64(8)))
    raised = entry.call("PyObject_Vectorcall", entry.obj(SLOT_RAISE), frame, i64(2), i64(0))
    entry.call("Py_DecRef", number)
    b.ret(raised)


def add_entry_points(module: ir.Module, prefix: str, percpu: bool) -> None:
    """Add the Python entry points of the family `prefix` (already in `module`).

    `<prefix>py_lookup` (a list of per-CPU values when `percpu`), and for
    other families `<prefix>py_update` (per-CPU updates keep their Python
    path: they assemble the libbpf buffer), plus `<prefix>py_set_table`.
    The entry points call the family's exported operations directly.
    """
    table = ir.GlobalVariable(module, I64, name=f"{prefix}{ENTRY}table")
    table.linkage = "internal"
    table.initializer = i64(0)
    function, b = define(module, f"{prefix}{ENTRY}set_table", ir.VoidType(), [I64])
    b.store(function.args[0], table)
    b.ret_void()
    lookup = module.get_global(f"{prefix}lookup")
    kind = PERCPU_LOOKUP if percpu else LOOKUP
    _build_lookup(_Entry(module, prefix, table, kind), lookup, percpu)
    if not percpu:
        _build_update(_Entry(module, prefix, table, UPDATE), module.get_global(f"{prefix}update"))


_ENTRY_PROTOTYPE = ctypes.CFUNCTYPE(
    ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_void_p
)


def entry_prototypes(prefix: str, percpu: bool) -> dict[str, object]:
    """The exports `add_entry_points` adds, for the family's `NativeModule`."""
    names = ["lookup"] if percpu else ["lookup", "update"]
    return {
        f"{prefix}{ENTRY}set_table": ctypes.CFUNCTYPE(None, ctypes.c_uint64),
        **{f"{prefix}{ENTRY}{name}": _ENTRY_PROTOTYPE for name in names},
    }


_lock = threading.RLock()
_table: capi.ApiTable | None = None
_tables_set: set[tuple[int, str]] = set()
_originals: dict[int, str] = {}
"""id() of each registered Python method → its entry kind."""
_fallbacks: dict[str, object] = {}
"""Entry kind → the registered Python method its entry point falls back to."""
_descriptors: dict[int, tuple[NativeModule, str, object]] = {}
"""id() of each installed descriptor → (module, prefix, Python method it stands for)."""
_keep_alive: list[object] = []


def register(cls: type, name: str, kind: str) -> None:
    """Let entry point `kind` stand for `cls.<name>` in families that export it."""
    original = cls.__dict__[name]
    _originals[id(original)] = kind
    _fallbacks[kind] = original


def _raise_update(map_: object, result: int) -> None:
    map_._error(result, "update")  # type: ignore[attr-defined]


def _api_table() -> capi.ApiTable:
    global _table
    if _table is None:
        table = capi.ApiTable()
        table.put(SLOT_BYTES, bytes)
        table.put(SLOT_INT, int)
        table.put(SLOT_NONE, None)
        table.put(SLOT_ATTRIBUTE, ATTRIBUTE)
        table.put(SLOT_RAISE, _raise_update)
        for kind, original in _fallbacks.items():
            table.put(SLOT_FALLBACK[kind], original)
        _table = table
    return _table


def _new_descriptor(cls: type, method: capi.MethodDef) -> object:
    new = ctypes.pythonapi.PyDescr_NewMethod
    new.restype = ctypes.py_object
    new.argtypes = [ctypes.py_object, ctypes.c_void_p]
    return new(cls, ctypes.addressof(method))


def _new_capsule(address: int) -> object:
    new = ctypes.pythonapi.PyCapsule_New
    new.restype = ctypes.py_object
    new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    return new(address, None, None)


def _accelerate(cls: type, name: str) -> None:
    """Install the family's entry point as `cls.<name>` where it stands for our Python method."""
    owner = next(klass for klass in cls.__mro__ if name in klass.__dict__)
    attribute = owner.__dict__[name]
    module: NativeModule = cls.module  # type: ignore[attr-defined]
    prefix: str = cls.prefix  # type: ignore[attr-defined]
    installed = _descriptors.get(id(attribute))
    if installed is not None:
        if installed[0] is module and installed[1] == prefix:
            return  # an ancestor of the same family already has it
        attribute = installed[2]
    kind = _originals.get(id(attribute))
    if kind is None:
        return  # a family's own method: keep it
    if (kind == PERCPU_LOOKUP) != bool(getattr(cls, "percpu", False)):
        return  # the entry point was built for the other kind of values
    symbol = f"{prefix}{ENTRY}{name}"
    if not module.exports(symbol):
        return
    table = _api_table()
    if (id(module), prefix) not in _tables_set:
        module.function(f"{prefix}{ENTRY}set_table")(table.address)
        _tables_set.add((id(module), prefix))
    doc = f"{name}($self, /, *args, **kwargs)\n--\n\n{attribute.__doc__ or ''}"
    name_bytes, doc_bytes = name.encode(), doc.encode()
    method = capi.MethodDef(name_bytes, module.address(symbol), METH_FASTCALL_KEYWORDS, doc_bytes)
    descriptor = _new_descriptor(cls, method)
    _keep_alive.extend((method, name_bytes, doc_bytes, descriptor))
    _descriptors[id(descriptor)] = (module, prefix, attribute)
    setattr(cls, name, descriptor)


def python_method(cls: type, name: str) -> Callable:
    """The Python method `cls.<name>` stands for (itself when it is not an entry point)."""
    attribute = getattr(cls, name)
    installed = _descriptors.get(id(attribute))
    return attribute if installed is None else installed[2]  # type: ignore[return-value]


def bind(map_: object, *, ncpus: int, value_stride: int) -> None:
    """Give `map_` its binding, installing its family's entry points on first use.

    Maps whose class changes how keys or values are read (`_key`, `_value`)
    get no binding, so that every call takes their Python path.
    """
    if not FASTCALL_ENABLED:
        return
    from .base import Map  # the class this module accelerates

    cls = type(map_)
    if cls._key is not Map._key or cls._value is not Map._value:
        return
    with _lock:
        for name in ("lookup", "update"):
            _accelerate(cls, name)
    binding = FastBinding(
        map=map_.address,  # type: ignore[attr-defined]
        key_size=map_.spec.key_size,  # type: ignore[attr-defined]
        value_size=map_.spec.value_size,  # type: ignore[attr-defined]
        ncpus=ncpus,
        value_stride=value_stride,
    )
    map_._fastcall_binding = binding  # type: ignore[attr-defined]
    setattr(map_, ATTRIBUTE, _new_capsule(ctypes.addressof(binding)))
