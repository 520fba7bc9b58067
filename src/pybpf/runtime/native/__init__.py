"""Native code of the runtime, built from Python as LLVM IR and compiled in-process.

`NativeModule` (in `compiler`) turns IR written with llvmlite into C ABI
functions callable through ctypes or by address; `irblocks` holds the IR
pieces map families share; `object_cache` keeps compiled objects on disk
so later processes skip compilation.
"""

from .compiler import CompileStats, NativeModule, compile_stats
from .object_cache import CACHE_DIR_VARIABLE, ObjectCache

__all__ = ["CACHE_DIR_VARIABLE", "CompileStats", "NativeModule", "ObjectCache", "compile_stats"]
