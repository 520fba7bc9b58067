"""Module attributes imported on first use (PEP 562 `__getattr__`), one way for every package.

A package whose public names live in modules that are slow to import (the
assembler, the analysis, a map family's native code) lists where each name
lives and gets a module `__getattr__` from `lazy_attributes`; `import
pybpf` and a command that never touches those names then never pay for
them. The value is stored in the package's namespace on first use, so
later accesses are plain attribute reads.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any


def lazy_attributes(
    package: str, homes: Mapping[str, str], namespace: dict[str, Any]
) -> Callable[[str], Any]:
    """A module `__getattr__` for `package`: name → `getattr(import_module(homes[name]), name)`.

    `homes` maps each lazy name to its module, relative to `package` (".asm")
    or absolute; `namespace` is the package's `globals()`, where the value is
    kept. Other names raise AttributeError as a module's missing attribute does.
    """

    def __getattr__(name: str) -> Any:
        module = homes.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    return __getattr__


def lazy_module(name: str, package: str | None = None) -> Callable[[], ModuleType]:
    """A function that returns module `name` (relative to `package`), imported on its
    first call and kept.

    For code that runs often, such as a helper a program calls on every packet,
    in a module that most processes import but few use that way: an `import`
    statement inside the function would go through the import machinery on
    every call (about a microsecond for a relative `from … import`), this
    costs a call.
    """
    module: ModuleType | None = None

    def load() -> ModuleType:
        nonlocal module
        if module is None:
            module = importlib.import_module(name, package)
        return module

    return load
