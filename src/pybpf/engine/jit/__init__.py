"""The JIT: verified eBPF → LLVM IR (llvmlite) → native code, behind the interpreter's interface.

`JitEngine` (in `engine`) is the entry point. The parts: `abi` (the native
calling convention and `RunState`), `translate` and `ops` (the IR),
`helper_registry` (native helper emitters; `helpers_ir` registers them),
`fallback` (helpers, tail calls and faults through Python), `compile`
(the module cache, in memory and on disk).
"""

from .engine import JitEngine

__all__ = ["JitEngine"]
