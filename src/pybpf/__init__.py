"""pybpf: an eBPF platform in Python.

Load clang-built eBPF objects, verify them, and run them in an interpreter
or a JIT outside any kernel. See DESIGN.md for the layers.
"""

from . import pins
from .engine.policy import interpreter_only, set_interpreter_only
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
from .link import Link
from .object import Object, load
from .object import load as open  # libbpf's open: loading happens on first run
from .program import Program
from .runtime.maps import Map
from .service import connect

__version__ = "0.1.0"

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
