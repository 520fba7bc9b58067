"""pybpf: an eBPF platform in Python.

Load clang-built eBPF objects, verify them, and run them in an interpreter
or a JIT outside any kernel. See DESIGN.md for the layers.

The public names are imported on first use (module `__getattr__`): `import
pybpf` costs only this file and the errors, so the command line and
programs that use one part do not pay for the ELF loader, the maps, the
verifier or LLVM before they need them.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from .errors import (
    AsmError,
    DecodeError,
    InterfaceError,
    LoadError,
    MapError,
    NotSupportedError,
    ProgramFault,
    PybpfError,
    TestRunError,
    VerifierError,
)

if TYPE_CHECKING:  # what `__getattr__` gives, for type checkers and editors
    from . import pins
    from .engine.policy import interpreter_only, set_interpreter_only
    from .link import Link
    from .object import Object, load
    from .object import load as open  # libbpf's open: loading happens on first run
    from .program import Program
    from .runtime.maps import Map
    from .service import connect

__version__ = "0.1.0"

_LAZY: dict[str, tuple[str, str | None]] = {
    "Link": (".link", "Link"),
    "Map": (".runtime.maps", "Map"),
    "Object": (".object", "Object"),
    "Program": (".program", "Program"),
    "connect": (".service", "connect"),
    "interpreter_only": (".engine.policy", "interpreter_only"),
    "load": (".object", "load"),
    "open": (".object", "load"),  # libbpf's open: loading happens on first run
    "pins": (".pins", None),
    "set_interpreter_only": (".engine.policy", "set_interpreter_only"),
}
"""Public name → (module, attribute; None for the module itself), imported on first use."""

__all__ = [
    "AsmError",
    "DecodeError",
    "InterfaceError",
    "Link",
    "LoadError",
    "Map",
    "MapError",
    "NotSupportedError",
    "Object",
    "Program",
    "ProgramFault",
    "PybpfError",
    "TestRunError",
    "VerifierError",
    "__version__",
    "connect",
    "interpreter_only",
    "load",
    "open",
    "pins",
    "set_interpreter_only",
]


def __getattr__(name: str) -> Any:
    """A public name imported on first use, or a submodule (`pybpf.btf` after `import pybpf`)."""
    found = _LAZY.get(name)
    if found is not None:
        module_name, attribute = found
        module = importlib.import_module(module_name, __name__)
        value = module if attribute is None else getattr(module, attribute)
    elif not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        # Submodules were attributes once `import pybpf` had imported them all; keep that.
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names, the dunders and the submodules imported so far."""
    here = globals()
    submodules = [n for n, v in here.items() if getattr(v, "__name__", "") == f"{__name__}.{n}"]
    return sorted({*__all__, *(n for n in here if n.startswith("__")), *submodules})
