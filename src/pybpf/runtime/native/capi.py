"""The CPython C API seen from the runtime's native code: a table of addresses.

Native entry points that Python calls directly (as builtins, without
ctypes; see `maps.fastcall`) need a few C-API functions and objects. Their
addresses differ from process to process, so they are never written into
IR (the IR is the object cache's key): native code reads them from
`ApiTable`, a ctypes array filled here from `ctypes.pythonapi`, whose
address the native module is given once after compiling.

Only CPython with the GIL qualifies (`AVAILABLE`): the entry points rely on
the GIL being held during the call and on `ob_type` sitting right after
`ob_refcnt`, which is checked here rather than assumed.
"""

from __future__ import annotations

import ctypes
import platform
import sysconfig

from llvmlite import ir

from .irblocks import I64, i64, load

FUNCTIONS = (
    "Py_IncRef",
    "Py_DecRef",
    "PyErr_Clear",
    "PyObject_GetAttr",
    "PyObject_Vectorcall",
    "PyCapsule_GetPointer",
    "PyTuple_Size",
    "PyBytes_Size",
    "PyBytes_AsString",
    "PyBytes_FromStringAndSize",
    "PyList_New",
    "PyList_SetItem",
    "PyLong_FromLongLong",
    "PyLong_AsUnsignedLongLongMask",
    "PyLong_FromUnsignedLongLong",
    "PyErr_Occurred",
)
"""C-API functions native code may call, in table order."""

OBJECT_SLOTS = 16
"""Slots after the functions for objects a native module needs (types, None, callables)."""

SLOTS = len(FUNCTIONS) + OBJECT_SLOTS

OB_TYPE_OFFSET = 8
"""Offset of `ob_type` in a `PyObject` (after the 8-byte `ob_refcnt`)."""


def _layout_ok() -> bool:
    """Whether `ob_type` really is at `OB_TYPE_OFFSET` (not so in Py_TRACE_REFS builds)."""
    probe = b"probe"
    found = ctypes.c_uint64.from_address(id(probe) + OB_TYPE_OFFSET).value
    return found == id(bytes)


def _available() -> bool:
    if platform.python_implementation() != "CPython" or ctypes.sizeof(ctypes.c_void_p) != 8:
        return False
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        return False  # free-threaded builds: no GIL to serialise callers, other object header
    try:
        return all(hasattr(ctypes.pythonapi, name) for name in FUNCTIONS) and _layout_ok()
    except (AttributeError, OSError):
        return False


AVAILABLE = _available()
"""True when native code may call the C API directly (CPython, GIL, 64-bit)."""


class ApiTable:
    """A process-wide table of C-API function addresses followed by object slots.

    `objects` keeps the objects put in the table alive; their addresses are
    stored without a reference count of their own.
    """

    def __init__(self) -> None:
        self.slots = (ctypes.c_uint64 * SLOTS)()
        self.objects: dict[int, object] = {}
        for index, name in enumerate(FUNCTIONS):
            self.slots[index] = ctypes.cast(getattr(ctypes.pythonapi, name), ctypes.c_void_p).value

    @property
    def address(self) -> int:
        """Where the table starts, for native code."""
        return ctypes.addressof(self.slots)

    def put(self, slot: int, obj: object) -> None:
        """Store `obj`'s address in object slot `slot` and keep `obj` alive."""
        self.objects[slot] = obj
        self.slots[len(FUNCTIONS) + slot] = id(obj)


METH_FASTCALL = 0x0080
"""`PyMethodDef.ml_flags`: the method takes (self, args array, count)."""

METH_KEYWORDS = 0x0002
"""`PyMethodDef.ml_flags`, with METH_FASTCALL: keyword names follow the arguments."""


class MethodDef(ctypes.Structure):
    """CPython's `PyMethodDef`: what a builtin made from a native function points at.

    It must outlive every builtin made from it (callers keep it referenced)."""

    _fields_ = [
        ("ml_name", ctypes.c_char_p),
        ("ml_meth", ctypes.c_void_p),
        ("ml_flags", ctypes.c_int),
        ("ml_doc", ctypes.c_char_p),
    ]


def function_slot(name: str) -> int:
    """Table index of C-API function `name`."""
    return FUNCTIONS.index(name)


def object_slot(slot: int) -> int:
    """Table index of object slot `slot`."""
    return len(FUNCTIONS) + slot


def call(builder: ir.IRBuilder, table: ir.Value, name: str, args: list[ir.Value]) -> ir.Value:
    """Call C-API function `name` through the table at `i64` address `table`.

    Every argument and the result travel as `i64` (pointers, Py_ssize_t,
    long long), which the C ABI passes exactly like the declared types.
    """
    kind = ir.FunctionType(I64, [I64] * len(args))
    address = load(builder, builder.add(table, i64(8 * function_slot(name))), I64)
    return builder.call(builder.inttoptr(address, kind.as_pointer()), args)


def table_object(builder: ir.IRBuilder, table: ir.Value, slot: int) -> ir.Value:
    """The `PyObject *` (as `i64`) in object slot `slot` of the table at `table`."""
    return load(builder, builder.add(table, i64(8 * object_slot(slot))), I64)


def type_of(builder: ir.IRBuilder, obj: ir.Value) -> ir.Value:
    """`Py_TYPE(obj)` as `i64`."""
    return load(builder, builder.add(obj, i64(OB_TYPE_OFFSET)), I64)
