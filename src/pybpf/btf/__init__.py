"""BTF and BTF.ext parsing: type records, func_info, line_info, CO-RE relocations.

`parse_btf(bytes) -> Spec` reads a `.BTF` section; `parse_btf_ext(bytes, spec)`
reads the matching `.BTF.ext`. Rendering values with BTF comes later.
"""

from .ext import CoreRelocation, CoreReloKind, ExtInfo, FuncInfo, LineInfo, parse_btf_ext
from .parse import parse_btf
from .spec import Spec

__all__ = [
    "CoreReloKind",
    "CoreRelocation",
    "ExtInfo",
    "FuncInfo",
    "LineInfo",
    "Spec",
    "parse_btf",
    "parse_btf_ext",
]
