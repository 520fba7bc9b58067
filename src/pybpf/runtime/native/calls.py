"""Native functions as Python builtins: `native_caller(address, arity)`, minus ctypes.

A ctypes call of a native function costs about half a microsecond (argument
conversion, the foreign call, releasing and taking the GIL back), which is
most of what an interpreted helper such as `bpf_map_lookup_elem` costs. The
callers made here are CPython builtins (`METH_FASTCALL`) compiled from LLVM
IR, in the manner of the maps' `fastcall` entry points: they convert each
argument as ctypes converts a Python int for a 64-bit parameter (modulo
2**64), call the function at `address`, and return its 64-bit result as a
signed or unsigned Python int. A caller may carry a bound first argument
(a map pointer), so that `lookup(key, cpu)` calls `f(map, key, cpu)`.

A call with another number of arguments goes to the ctypes callable the
caller stands for, which raises the error it always did. The GIL stays held
during the call, as in the maps' entry points: the functions called are
short native operations (map lookups and updates). Without the C API
(`capi.AVAILABLE` false) or with `PYBPF_NO_FASTCALL=1`, `native_caller`
returns that ctypes callable itself.

The same module holds the interpreter's atomics (`atomic_function`): one
locked read-modify-write per BPF_ATOMIC operation and width, called as a
builtin with the address the interpreter has bounds-checked.

Callers live as long as the process (cached per function, bound argument
and kind): a process that creates and frees many maps keeps one small
caller per map address it looked up through a helper.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable

from llvmlite import ir

from ..maps.fastcall import FASTCALL_ENABLED
from . import capi
from .compiler import NativeModule
from .irblocks import I64, define, i64, load

METH_FASTCALL = capi.METH_FASTCALL

MAX_ARITY = 5
"""The most arguments a native function called this way takes (a helper's r1-r5)."""


class CallBinding(ctypes.Structure):
    """What a caller knows: the function, its bound first argument, its ctypes fallback."""

    _fields_ = [
        ("function", ctypes.c_uint64),
        ("first", ctypes.c_uint64),
        ("fallback", ctypes.c_uint64),  # a PyObject * the caller's wrapper keeps alive
    ]


def _entry_name(arity: int, bound: bool, signed: bool) -> str:
    return f"pybpf_call_{'s' if signed else 'u'}{arity}{'b' if bound else ''}"


def _kinds() -> list[tuple[int, bool, bool]]:
    """(Python arguments, bound first argument, signed result) of every entry point."""
    kinds = []
    for signed in (False, True):
        for bound in (False, True):
            top = MAX_ARITY - 1 if bound else MAX_ARITY
            kinds += [(arity, bound, signed) for arity in range(1, top + 1)]
    return kinds


def _field(b: ir.IRBuilder, binding: ir.Value, name: str) -> ir.Value:
    return load(b, b.add(binding, i64(getattr(CallBinding, name).offset)), I64)


def _build_entry(
    module: ir.Module, table_global: ir.GlobalVariable, arity: int, bound: bool, signed: bool
) -> None:
    function, b = define(module, _entry_name(arity, bound, signed), I64, [I64] * 3)
    self_, args, nargs = function.args
    table = b.load(table_global)

    def api(name: str, *values: ir.Value) -> ir.Value:
        return capi.call(b, table, name, list(values))

    binding = api("PyCapsule_GetPointer", self_, i64(0))  # our own capsule: never NULL
    convert = function.append_basic_block("convert")
    fallback = function.append_basic_block("fallback")
    b.cbranch(b.icmp_unsigned("==", nargs, i64(arity)), convert, fallback)
    b.position_at_end(fallback)
    b.ret(api("PyObject_Vectorcall", _field(b, binding, "fallback"), args, nargs, i64(0)))
    b.position_at_end(convert)
    values = [_field(b, binding, "first")] if bound else []
    for index in range(arity):
        item = load(b, b.add(args, i64(8 * index)), I64)
        value = api("PyLong_AsUnsignedLongLongMask", item)
        # (unsigned long long)-1 is also the error result: ask whether one is set.
        maybe = function.append_basic_block(f"arg{index}.maybe_error")
        good = function.append_basic_block(f"arg{index}.good")
        b.cbranch(b.icmp_unsigned("==", value, i64(-1)), maybe, good)
        b.position_at_end(maybe)
        with b.if_then(b.icmp_unsigned("!=", api("PyErr_Occurred"), i64(0))):
            b.ret(i64(0))
        b.branch(good)
        b.position_at_end(good)
        values.append(value)
    kind = ir.FunctionType(I64, [I64] * len(values))
    target = b.inttoptr(_field(b, binding, "function"), kind.as_pointer())
    result = b.call(target, values)
    b.ret(api("PyLong_FromLongLong" if signed else "PyLong_FromUnsignedLongLong", result))


ATOMIC_OPERATIONS = ("add", "or", "and", "xor", "xchg", "cmpxchg")
"""The BPF_ATOMIC read-modify-writes (`atomic_function`), each in 32 and 64 bits."""


def _atomic_name(operation: str, bits: int) -> str:
    return f"pybpf_atomic_{operation}{bits}"


def _combine(b: ir.IRBuilder, operation: str, old: ir.Value, value: ir.Value) -> ir.Value:
    if operation == "xchg":
        return value
    return {"add": b.add, "or": b.or_, "and": b.and_, "xor": b.xor}[operation](old, value)


def _build_atomic(module: ir.Module, operation: str, bits: int) -> None:
    # uint64_t f(address, value) -> the old value; cmpxchg(address, expected, value).
    cmpxchg = operation == "cmpxchg"
    function, b = define(module, _atomic_name(operation, bits), I64, [I64] * (3 if cmpxchg else 2))
    kind = ir.IntType(bits)
    address = function.args[0]
    operands = [b.trunc(arg, kind) if bits < 64 else arg for arg in function.args[1:]]
    target = b.inttoptr(address, kind.as_pointer())
    aligned = b.icmp_unsigned("==", b.and_(address, i64(bits // 8 - 1)), i64(0))
    with b.if_else(aligned) as (atomic, plain):
        with atomic:
            if cmpxchg:
                pair = b.cmpxchg(target, operands[0], operands[1], "seq_cst", "seq_cst")
                locked = b.extract_value(pair, 0)
            else:
                locked = b.atomic_rmw(operation, target, operands[0], "seq_cst")
            locked_block = b.block
        with plain:
            # A misaligned address (which the kernel's verifier refuses) cannot
            # take a locked instruction; the caller holds the GIL, so no other
            # interpreter thread runs in between, as with the old Python lock.
            old = b.load(target, typ=kind, align=1)
            if cmpxchg:
                new = b.select(b.icmp_unsigned("==", old, operands[0]), operands[1], old)
            else:
                new = _combine(b, operation, old, operands[0])
            b.store(new, target, align=1)
            plain_block = b.block
    result = b.phi(kind)
    result.add_incoming(locked, locked_block)
    result.add_incoming(old, plain_block)
    b.ret(b.zext(result, I64) if bits < 64 else result)


_ENTRY_PROTOTYPE = ctypes.CFUNCTYPE(
    ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_ssize_t
)
_SET_TABLE = ctypes.CFUNCTYPE(None, ctypes.c_uint64)

# One small module per entry point, built the first time it is needed: a
# process compiles (or reads from the object cache) only the few it uses,
# and building the IR, which the cache key hashes, stays cheap.
_modules: dict[str, NativeModule] = {}


def _caller_module(arity: int, bound: bool, signed: bool) -> NativeModule:
    name = _entry_name(arity, bound, signed)

    def build(module: ir.Module) -> None:
        table = ir.GlobalVariable(module, I64, name=f"{name}_table")
        table.linkage = "internal"
        table.initializer = i64(0)
        function, b = define(module, f"{name}_set_table", ir.VoidType(), [I64])
        b.store(function.args[0], table)
        b.ret_void()
        _build_entry(module, table, arity, bound, signed)

    return NativeModule(name, build, {name: _ENTRY_PROTOTYPE, f"{name}_set_table": _SET_TABLE})


def _atomic_module(operation: str, bits: int) -> NativeModule:
    name = _atomic_name(operation, bits)
    arity = 3 if operation == "cmpxchg" else 2
    prototype = ctypes.CFUNCTYPE(ctypes.c_uint64, *[ctypes.c_uint64] * arity)
    return NativeModule(
        name, lambda module: _build_atomic(module, operation, bits), {name: prototype}
    )


def native_address(name: str) -> int:
    """The address of entry point or atomic function `name` (compiled on first use)."""
    with _lock:
        module = _modules.get(name)
        if module is None:
            operation, bits = _ATOMIC_NAMES.get(name, (None, 0))
            if operation is not None:
                module = _atomic_module(operation, bits)
            else:
                module = _caller_module(*_CALLER_NAMES[name])
                module.function(f"{name}_set_table")(_api_table().address)
            _modules[name] = module
    return module.address(name)


_ATOMIC_NAMES = {
    _atomic_name(operation, bits): (operation, bits)
    for operation in ATOMIC_OPERATIONS
    for bits in (32, 64)
}
_CALLER_NAMES = {_entry_name(*kind): kind for kind in _kinds()}


def atomic_function(operation: str, bits: int) -> Callable[..., int] | None:
    """A builtin doing one BPF_ATOMIC operation in native code, or None without the C API.

    `f(address, value)` (`f(address, expected, value)` for cmpxchg) applies
    `operation` (one of `ATOMIC_OPERATIONS`) to the `bits`-bit word at
    `address` with a locked instruction and returns the old value. The
    caller has checked the address. None when builtins are unavailable:
    a ctypes call would release the GIL and lose the misaligned case's
    atomicity, so callers keep their own locked code then.
    """
    if not FASTCALL_ENABLED:
        return None
    arity = 3 if operation == "cmpxchg" else 2
    return native_caller(native_address(_atomic_name(operation, bits)), arity, signed=False)


def memset_function() -> Callable[..., int] | None:
    """The C library's memset as a builtin `memset(address, byte, count)`, or None without them.

    The interpreter zeroes a 512-byte stack frame with it in about half the
    time of a memoryview slice assignment. The caller has checked that the
    `count` bytes at `address` are its own to write.
    """
    if not FASTCALL_ENABLED:
        return None
    address = ctypes.cast(ctypes.memset, ctypes.c_void_p).value
    return native_caller(address, 3, signed=False) if address else None


_lock = threading.RLock()
_table: capi.ApiTable | None = None
_methods: dict[tuple[int, bool, bool], capi.MethodDef] = {}
_NAME = b"native_call"


def _api_table() -> capi.ApiTable:
    global _table
    if _table is None:
        _table = capi.ApiTable()
    return _table


def _method(arity: int, bound: bool, signed: bool) -> capi.MethodDef:
    """The shared `PyMethodDef` of one entry point."""
    key = (arity, bound, signed)
    with _lock:
        method = _methods.get(key)
        if method is None:
            address = native_address(_entry_name(arity, bound, signed))
            method = _methods[key] = capi.MethodDef(_NAME, address, METH_FASTCALL, None)
    return method


def _new_builtin(method: capi.MethodDef, capsule: object) -> Callable[..., int]:
    new = ctypes.pythonapi.PyCFunction_NewEx
    new.restype = ctypes.py_object
    new.argtypes = [ctypes.c_void_p, ctypes.py_object, ctypes.c_void_p]
    return new(ctypes.addressof(method), capsule, None)


def _new_capsule(address: int) -> object:
    new = ctypes.pythonapi.PyCapsule_New
    new.restype = ctypes.py_object
    new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
    return new(address, None, None)


class _Caller:
    """Keeps a builtin caller's binding, capsule and fallback alive as long as it lives."""

    __slots__ = ("call", "binding", "capsule", "fallback")


_callers: dict[tuple[int, int | None, int, bool], _Caller] = {}


def native_caller(
    address: int, arity: int, *, signed: bool, first: int | None = None
) -> Callable[..., int]:
    """A callable running the native `uint64_t f(uint64_t, ...)` at `address`.

    It takes `arity` ints (each taken modulo 2**64) and returns the result as
    a signed (`signed`) or unsigned Python int; with `first`, the function
    is called with `first` before them. Callers are cached per function,
    first argument and kind, and live as long as the process (the native
    functions they call do too).
    """
    if not 1 <= arity <= (MAX_ARITY - 1 if first is not None else MAX_ARITY):
        raise ValueError(f"native calls take 1 to {MAX_ARITY} arguments")
    key = (address, first, arity, signed)
    caller = _callers.get(key)
    if caller is not None:
        return caller.call
    total = arity + (first is not None)
    result = ctypes.c_int64 if signed else ctypes.c_uint64
    prototype = ctypes.CFUNCTYPE(result, *[ctypes.c_uint64] * total)
    raw = prototype(address)
    fallback: Callable[..., int] = raw if first is None else _with_first(raw, first)
    caller = _Caller()
    caller.fallback = fallback
    caller.call = fallback
    if FASTCALL_ENABLED:
        binding = CallBinding(address, first or 0, id(fallback))
        caller.binding = binding
        caller.capsule = _new_capsule(ctypes.addressof(binding))
        caller.call = _new_builtin(_method(arity, first is not None, signed), caller.capsule)
    _callers[key] = caller
    return caller.call


def _with_first(function: Callable[..., int], first: int) -> Callable[..., int]:
    def call(*args: int) -> int:
        return function(first, *args)

    return call
