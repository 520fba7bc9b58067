"""Program types added from outside pybpf: an application's own hooks for eBPF programs.

As eBPF for Windows lets an extension driver bring a program type and its
helpers to the execution context, an application registers one here
(`register_program_type`): its section names, context struct, which context
fields programs may write, the values they may return, and its helpers
(the number programs call each by, a prototype for the verifier, an
implementation in Python). Programs of those sections then load, verify
(against that context and those prototypes, beside the general helpers:
maps, time, …), run in either engine and test-run like any other. Installed
packages offer extensions through the entry-point group `pybpf.extensions`
(each entry point: a `ProgramTypeExtension`, a list of them, or a callable
returning either), loaded once before the first object is parsed.

Internally an extension takes one of `MAX_EXTENSIONS` program-type slots
(`ProgramType.EXTENSION_0` …), and its helpers get internal ids from
`EXTENSION_HELPER_BASE` (the loader renumbers calls in its sections), so
that two extensions may both number their helpers from 0x10000, as
eBPF for Windows' extensions do.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import LoadError
from .contexts import ContextAccess, StructLayout
from .helper_prototypes import EXTENSION_HELPER_BASE, ArgKind, HelperPrototype, RetKind
from .program_types import ProgramType

__all__ = [
    "ENTRY_POINT_GROUP",
    "EXTENSION_HELPER_BASE",
    "MAX_EXTENSIONS",
    "ExtensionHelper",
    "ProgramTypeExtension",
    "RegisteredExtension",
    "extension_for_section",
    "load_entry_points",
    "register_program_type",
    "registered",
]

ENTRY_POINT_GROUP = "pybpf.extensions"
# Internal ids of extension helpers: EXTENSION_HELPER_BASE + 0x100 × slot + index.
MAX_EXTENSIONS = 8
SLOTS = tuple(ProgramType[f"EXTENSION_{i}"] for i in range(MAX_EXTENSIONS))


@dataclass(frozen=True)
class ExtensionHelper:
    """A helper of an extension program type.

    `id`: the number programs call it by (`call imm`); `ret` and `args` its
    prototype (`RetKind` / `ArgKind`, or their names: "integer",
    "ptr_to_ctx", "ptr_to_mem", "const_size", "anything", …). Its
    implementation is one of:

    - `impl(env, r1, r2, r3, r4, r5) -> int` in Python (`env.ctx` is the
      context's address, `env.memory` reads and writes the program's memory);
    - `native`: a native function `uint64_t f(uint64_t r1, …, uint64_t r5)`,
      as a ctypes function (from `ctypes.CDLL(...)`) or its address. Both
      engines call it directly (the JIT from the compiled program, without
      Python in between); registers hold real addresses, so pointer
      arguments are pointers. As for an eBPF for Windows extension's
      helpers, the verifier checks the arguments against the prototype and
      the function must stay within what it was given.
    """

    id: int
    name: str
    impl: Callable[..., int] | None = None
    ret: RetKind | str = RetKind.INTEGER
    args: tuple[ArgKind | str, ...] = ()
    native: Any = None

    @property
    def native_address(self) -> int | None:
        """The address of the native implementation, or None."""
        if self.native is None:
            return None
        if isinstance(self.native, int):
            return self.native
        return ctypes.cast(self.native, ctypes.c_void_p).value


@dataclass(frozen=True)
class ProgramTypeExtension:
    """A program type an application offers (see the module docstring).

    `context` lays out the struct programs get in r1 (fields named `data` and
    `data_end`, 8-byte pointers, bound a data range the verifier checks
    accesses against); `writable` names fields programs may store to;
    `return_range` the values the entry function may return (None: any).
    """

    name: str
    sections: tuple[str, ...]
    context: StructLayout
    writable: tuple[str, ...] = ()
    return_range: tuple[int, int] | None = None
    helpers: tuple[ExtensionHelper, ...] = ()


@dataclass
class RegisteredExtension:
    """An extension in its slot: its helpers' internal ids and prototypes."""

    extension: ProgramTypeExtension
    prog_type: ProgramType
    internal: dict[int, int] = field(default_factory=dict)  # call id → internal id
    prototypes: dict[int, HelperPrototype] = field(default_factory=dict)
    helpers: dict[int, ExtensionHelper] = field(default_factory=dict)  # internal → helper

    @property
    def access(self) -> ContextAccess:
        """The context rules: every field readable, `writable` ones writable."""
        layout = self.extension.context
        readable = frozenset(f.name for f in layout.fields)
        return ContextAccess(layout, readable, frozenset(self.extension.writable))


_REGISTRY: dict[ProgramType, RegisteredExtension] = {}
_installers: list[Callable[[RegisteredExtension], None]] = []


def on_register(install: Callable[[RegisteredExtension], None]) -> None:
    """Call `install` for every extension registered, past and future (the program-type
    records use this to add the extension's record)."""
    _installers.append(install)
    for entry in _REGISTRY.values():
        install(entry)


def _kind(value: object, kinds: type) -> object:
    return value if isinstance(value, kinds) else kinds(str(value).lower())  # type: ignore[call-arg]


def register_program_type(extension: ProgramTypeExtension) -> ProgramType:
    """Register `extension`; return the program type its programs get. ValueError for a
    name or section already registered, a context without the fields it names, or no
    free slot."""
    for entry in _REGISTRY.values():
        if entry.extension.name == extension.name:
            raise ValueError(f"program type {extension.name!r} is already registered")
        clash = set(entry.extension.sections) & set(extension.sections)
        if clash:
            raise ValueError(f"section {sorted(clash)[0]!r} already names {entry.extension.name}")
    names = {f.name for f in extension.context.fields}
    missing = [w for w in extension.writable if w not in names]
    if missing:
        raise ValueError(f"{extension.name}: no context field {missing[0]!r} to make writable")
    for helper in extension.helpers:
        if (helper.impl is None) == (helper.native is None):
            raise ValueError(f"helper {helper.name!r}: give either impl (Python) or native")
        if helper.native is not None and not helper.native_address:
            raise ValueError(f"helper {helper.name!r}: native is no function address")
    free = [slot for slot in SLOTS if slot not in _REGISTRY]
    if not free:
        raise ValueError(f"no room for program type {extension.name!r}: {MAX_EXTENSIONS} at most")
    slot = free[0]
    entry = RegisteredExtension(extension, slot)
    for index, helper in enumerate(extension.helpers):
        internal = EXTENSION_HELPER_BASE + 0x100 * SLOTS.index(slot) + index
        entry.internal[helper.id] = internal
        entry.helpers[internal] = helper
        entry.prototypes[internal] = HelperPrototype(
            internal,
            _kind(helper.ret, RetKind),  # type: ignore[arg-type]
            tuple(_kind(a, ArgKind) for a in helper.args),  # type: ignore[misc]
            c_name=helper.name,
        )
    _REGISTRY[slot] = entry
    for install in _installers:
        install(entry)
    return slot


def registered(prog_type: ProgramType | str) -> RegisteredExtension | None:
    """The extension in slot `prog_type` (or by its slot name), or None."""
    for slot, entry in _REGISTRY.items():
        if prog_type in (slot, slot.name.lower(), entry.extension.name):
            return entry
    return None


def extension_for_section(section: str) -> RegisteredExtension | None:
    """The extension whose section prefix names `section` (the longest), or None."""
    best: tuple[int, RegisteredExtension] | None = None
    for entry in _REGISTRY.values():
        for prefix in entry.extension.sections:
            if section.startswith(prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), entry)
    return None if best is None else best[1]


def helper_name(internal: int) -> str | None:
    """The name of an extension helper by its internal id, or None."""
    for entry in _REGISTRY.values():
        if internal in entry.helpers:
            return entry.helpers[internal].name
    return None


def helper_prototype(internal: int) -> HelperPrototype | None:
    """The prototype of an extension helper by its internal id, or None."""
    for entry in _REGISTRY.values():
        if internal in entry.prototypes:
            return entry.prototypes[internal]
    return None


def all_helpers() -> Iterable[tuple[int, ExtensionHelper, HelperPrototype]]:
    """Every registered extension helper: internal id, helper, prototype."""
    for entry in _REGISTRY.values():
        for internal, helper in entry.helpers.items():
            yield internal, helper, entry.prototypes[internal]


_entry_points_loaded = False


def load_entry_points() -> list[str]:
    """Register the extensions installed packages offer (group `pybpf.extensions`), once;
    return the names registered. A broken entry point raises LoadError naming it."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return []
    _entry_points_loaded = True
    if not _may_offer_entry_points():
        return []
    import importlib.metadata

    names = []
    for point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            offered = point.load()
            if callable(offered) and not isinstance(offered, ProgramTypeExtension):
                offered = offered()
            extensions = offered if isinstance(offered, (list, tuple)) else [offered]
            for extension in extensions:
                if not isinstance(extension, ProgramTypeExtension):
                    raise TypeError(f"{extension!r} is not a ProgramTypeExtension")
                register_program_type(extension)
                names.append(extension.name)
        except Exception as error:  # a broken package: one line naming it, not a traceback
            raise LoadError(f"extension entry point {point.name!r}: {error}") from error
    return names


def _may_offer_entry_points() -> bool:
    """False only when no distribution on `sys.path` can offer group `pybpf.extensions`.

    `importlib.metadata.entry_points` imports ~10 ms of modules and parses every
    installed distribution's entry points (~5 ms for a hundred), on every
    command that parses an object, to find none in almost every environment.
    This looks first for the group's name in the `entry_points.txt` of each
    `*.dist-info`/`*.egg-info` directory of `sys.path` (~1 ms), and says
    True (let importlib.metadata decide) wherever it cannot see as it does:
    a `sys.path` entry that is not a directory (a zip), or a meta-path finder
    of distributions besides the standard path finder.
    """
    from importlib.machinery import PathFinder

    for finder in sys.meta_path:
        if finder is not PathFinder and hasattr(finder, "find_distributions"):
            return True
    wanted = ENTRY_POINT_GROUP.encode()
    for entry in sys.path:
        directory = entry or "."
        try:
            names = os.listdir(directory)
        except NotADirectoryError:
            return True
        except OSError:  # a missing directory: importlib.metadata finds nothing there either
            continue
        for name in names:
            if not name.endswith((".dist-info", ".egg-info")):
                continue
            try:
                with open(os.path.join(directory, name, "entry_points.txt"), "rb") as points:
                    if wanted in points.read():
                        return True
            except OSError:  # no entry points (or an egg-info file): nothing offered
                continue
    return False
