"""The Linux helpers: one module per group, each exporting `HELPERS`.

`linux_helpers()` collects the `HELPERS` list of every module of this
package (found with `pkgutil`, so a module added later, such as `ringbuf`
or `redirect`, joins the table without an edit here) into one
`HelperTable`. Every entry carries its Linux id, its C name, its
implementation ``impl(env, r1, r2, r3, r4, r5) -> int`` and its prototype
from `platform.helper_prototypes`; an id registered twice is an error.
"""

from __future__ import annotations

import importlib
import pkgutil

from ...platform.helper_ids import HelperId
from ...platform.helper_prototypes import PROTOTYPES
from ..helpers import HelperImpl, HelperSpec, HelperTable


def helper_spec(helper_id: HelperId, impl: HelperImpl) -> HelperSpec:
    """The `HelperSpec` of a Linux helper: its id, C name, `impl` and prototype."""
    return HelperSpec(int(helper_id), "bpf_" + helper_id.name.lower(), impl, PROTOTYPES[helper_id])


def helper_specs() -> list[HelperSpec]:
    """The `HELPERS` of every module in this package, module by module (sorted by name)."""
    specs: list[HelperSpec] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        specs.extend(getattr(module, "HELPERS", ()))
    return specs


def linux_helpers() -> HelperTable:
    """A new table of every Linux helper pybpf implements (ValueError on a duplicate id)."""
    return HelperTable(helper_specs())


__all__ = ["helper_spec", "helper_specs", "linux_helpers"]
