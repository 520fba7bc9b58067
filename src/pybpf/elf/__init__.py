"""elf layer of pybpf: clang BPF objects → `ObjectSpec` (programs and map specs).

`load_object_spec(path)` (or `ObjectSpec.from_file(path)`) reads an object;
nothing here executes or creates anything.
"""

from .loader import load_object_spec, parse_object
from .map_types import MapType
from .specs import MapSpec, ObjectSpec, ProgramSpec, Relocation, RelocationKind

__all__ = [
    "MapSpec",
    "MapType",
    "ObjectSpec",
    "ProgramSpec",
    "Relocation",
    "RelocationKind",
    "load_object_spec",
    "parse_object",
]
