"""Which engine runs a program: the JIT by default, the interpreter when policy says so.

eBPF for Windows runs programs natively unless HVCI forbids generating
code at run time, in which case only its interpreter may run them. pybpf
has the same switch: the *interpreter-only policy*, on when the
environment variable `PYBPF_INTERPRETER_ONLY` is set to a true value
(`1`, `true`, `yes`, `on`) or after `set_interpreter_only(True)`. Under it
no native code is ever generated from a program (the runtime's own map
code is part of pybpf and still runs, as a kernel's map code does).

`choose_engine(requested, verified)` applies the rules that hold for
every program:

* nothing unverified runs natively: an unverified program runs in the
  bounds-checked interpreter, and asking for the JIT for one is an error;
* under the interpreter-only policy, asking for the JIT is an error and
  the default is the interpreter;
* otherwise the default is the JIT.
"""

from __future__ import annotations

import os

from ..errors import LoadError

ENGINES = ("jit", "interpreter")
"""Engine names `pybpf.load(engine=...)` accepts."""

ENV_INTERPRETER_ONLY = "PYBPF_INTERPRETER_ONLY"
"""Environment variable that switches the interpreter-only policy on."""

_TRUE = frozenset({"1", "true", "yes", "on"})

_forced: bool | None = None  # set_interpreter_only() wins over the environment


def set_interpreter_only(enabled: bool | None) -> None:
    """Switch the interpreter-only policy on or off for this process (None: back to the environment).

    Engines already built keep running; the policy decides for engines built
    afterwards.
    """
    global _forced
    _forced = enabled


def interpreter_only() -> bool:
    """True when no native code may be generated from programs."""
    if _forced is not None:
        return _forced
    return os.environ.get(ENV_INTERPRETER_ONLY, "").strip().lower() in _TRUE


def choose_engine(requested: str | None, verified: bool, where: str = "program") -> str:
    """The engine name a program runs in, or `LoadError` when the request breaks a rule."""
    if requested is not None and requested not in ENGINES:
        raise LoadError(
            f"{where}: unknown engine {requested!r} (expected one of {', '.join(ENGINES)})"
        )
    if requested == "interpreter":
        return "interpreter"
    if requested == "jit":
        if interpreter_only():
            raise LoadError(
                f"{where}: the interpreter-only policy is on ({ENV_INTERPRETER_ONLY}): "
                "the JIT may not generate native code"
            )
        if not verified:
            raise LoadError(f"{where} is not verified: the jit engine runs verified programs only")
        return "jit"
    # The default: native code for verified programs where the policy allows it.
    if verified and not interpreter_only():
        return "jit"
    return "interpreter"
