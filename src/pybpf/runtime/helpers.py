"""The helper table: helper id → implementation (and, later, prototype).

Engines dispatch `call imm` through a `HelperTable`: each entry is one
`HelperSpec` registered once. An implementation is a plain function
``impl(env, r1, r2, r3, r4, r5) -> int`` where `env` is the `HelperEnv` of
the running program (its memory, its context pointer, and the tail-call
hook). Its result is stored in r0, truncated to 64 bits, so helpers may
return negative errno values as Python ints.

The conformance suite needs a helper 5 that returns its first argument.
Linux id 5 is `ktime_get_ns`, so that helper lives in its own preset,
`conformance_helpers()`, and never in the Linux table a later issue adds.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .memory import Memory

HelperImpl = Callable[..., int]
"""``impl(env, r1, r2, r3, r4, r5) -> int``."""

MAX_TAIL_CALLS = 33
"""How many tail calls one run may chain (the kernel's MAX_TAIL_CALL_CNT)."""


@dataclass(frozen=True, slots=True)
class HelperSpec:
    """One helper: its Linux id, its name, its implementation and its prototype.

    `prototype` stays None until the verifier's prototypes land; engines
    only use `id` and `impl`.
    """

    id: int
    name: str
    impl: HelperImpl
    prototype: Any = None
    #: The address of a native implementation `uint64_t f(uint64_t × 5)` the JIT calls
    #: directly (an extension's), or None; `impl` then calls it through ctypes.
    native: int | None = None


class HelperTable:
    """A set of helpers keyed by id; what an engine calls for `call imm`."""

    def __init__(self, specs: Iterable[HelperSpec] = ()):
        self._by_id: dict[int, HelperSpec] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: HelperSpec) -> HelperSpec:
        """Add `spec`; an id may be registered only once."""
        if spec.id in self._by_id:
            raise ValueError(
                f"helper id {spec.id} is already registered ({self._by_id[spec.id].name})"
            )
        self._by_id[spec.id] = spec
        return spec

    def get(self, helper_id: int) -> HelperSpec | None:
        """The helper with this id, or None."""
        return self._by_id.get(helper_id)

    def __contains__(self, helper_id: object) -> bool:
        return helper_id in self._by_id

    def __iter__(self) -> Iterator[HelperSpec]:
        return iter(sorted(self._by_id.values(), key=lambda s: s.id))

    def __len__(self) -> int:
        return len(self._by_id)


def missing_helpers(instructions: Iterable[Any], table: HelperTable) -> list[tuple[int, int]]:
    """(pc, helper id) of every `call imm` (helper call) whose id `table` lacks, in pc order.

    The load path refuses a program with such a call (`NotSupportedError`
    naming the helper and its pc) instead of failing when the call runs.
    """
    from ..isa.instruction import with_pcs
    from ..isa.opcodes import CALL, CallSrc

    return [
        (pc, insn.imm)
        for pc, insn in with_pcs(instructions)
        if insn.opcode == CALL and insn.src == CallSrc.HELPER and insn.imm not in table
    ]


class TailCall(Exception):  # noqa: N818 - control flow, not an error
    """Raised by a tail-call helper to replace the running program.

    Raise it through `HelperEnv.tail_call`, which enforces `MAX_TAIL_CALLS`.
    The engine's `run` catches it and starts `target` (another engine: any
    object with the engine interface's `enter(args, env)`) with the same
    context pointer and the same `HelperEnv`. A failed tail call does not
    raise: the helper returns a negative value and the program goes on, as
    in Linux.
    """

    def __init__(self, target: Any):
        super().__init__("tail call")
        self.target = target


class HelperEnv:
    """What a helper implementation can see of the running program.

    `memory` is the region table, `ctx` the context pointer the run started
    with (r1), `engine` the engine running now, `runtime` the
    `ExecutionContext` (maps by address, programs by id, trace output; None
    for bare bytecode), `cpu` the simulated CPU this run is on (per-CPU maps
    use its slot), `tail_calls` how many tail calls this run has made,
    `data` free room for helpers (created on use).
    """

    __slots__ = ("memory", "ctx", "engine", "runtime", "cpu", "tail_calls", "_data")

    def __init__(
        self, memory: Memory, ctx: int = 0, engine: Any = None, runtime: Any = None, cpu: int = 0
    ):
        self.memory = memory
        self.ctx = ctx
        self.engine = engine
        self.runtime = runtime
        self.cpu = cpu
        self.tail_calls = 0
        self._data: dict[str, Any] | None = None

    @property
    def data(self) -> dict[str, Any]:
        """Per-run scratch space for helpers (e.g. a pseudo-random state)."""
        if self._data is None:
            self._data = {}
        return self._data

    def tail_call(self, target: Any) -> bool:
        """Leave the current program and start `target` with the same context.

        Does not return when the call is made; returns False (and the helper
        reports failure to the program) once `MAX_TAIL_CALLS` calls are chained.
        """
        if target is None or self.tail_calls >= MAX_TAIL_CALLS:
            return False
        self.tail_calls += 1
        raise TailCall(target)


def _identity(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    # uBPF and rbpf register helper 5 this way; in uBPF a zero result also
    # stops the program ("unwind"), which no test in the suite relies on.
    return r1


def conformance_helpers() -> HelperTable:
    """The helpers the bpf_conformance suite expects: only 5 → returns r1."""
    return HelperTable([HelperSpec(5, "conformance_identity", _identity)])


_NATIVE_HELPER = ctypes.CFUNCTYPE(ctypes.c_uint64, *[ctypes.c_uint64] * 5)


def native_helper_impl(address: int) -> HelperImpl:
    """A `HelperImpl` calling the native function at `address` with r1..r5 (for the
    interpreter; the JIT calls the address itself)."""
    function = _NATIVE_HELPER(address)
    mask = (1 << 64) - 1

    def call(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
        return function(r1 & mask, r2 & mask, r3 & mask, r4 & mask, r5 & mask)

    return call
