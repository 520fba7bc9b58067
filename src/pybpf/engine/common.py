"""What both engines do the same way: fault texts, unknown helpers, tail-call chains.

The interpreter and the JIT share their run-time interface (see
`engine.interpreter`); the pieces of behaviour that must not drift between
them live here once.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import NotSupportedError, ProgramFault
from ..isa.instruction import Instruction
from ..platform.helper_ids import HelperId, helper_name
from ..runtime.helpers import HelperEnv, TailCall

LINUX_HELPER_IDS = frozenset(int(h) for h in HelperId)
"""Every helper id Linux defines."""


def instruction_text(by_pc: Mapping[int, Instruction], pc: int) -> str:
    """The instruction at `pc` as text, for fault messages (never raises)."""
    insn = by_pc.get(pc)
    if insn is None:
        return f"<pc {pc}>"
    try:
        return str(insn)
    except Exception:  # the disassembler is optional here; never mask a fault
        return (
            f"opcode 0x{insn.opcode:02x} dst=r{insn.dst} src=r{insn.src} "
            f"off={insn.off} imm={insn.imm}"
        )


def unknown_helper(runtime: object, helper_id: int, pc: int, text: str) -> Exception:
    """The error for a call of a helper missing from the engine's table.

    A real Linux helper that pybpf has not implemented is a gap in pybpf
    (`NotSupportedError`), not a fault of the program; any other id is a
    `ProgramFault`. Bare bytecode (no execution context) only has faults.
    """
    if runtime is not None and helper_id in LINUX_HELPER_IDS:
        return NotSupportedError(
            f"pc {pc}: helper {helper_name(helper_id)} ({helper_id}) is not implemented yet"
        )
    return ProgramFault(f"call to unknown helper {helper_id}", pc=pc, instruction=text)


def follow_tail_calls(call: TailCall, env: HelperEnv, args: tuple[int, ...]) -> tuple[int, int]:
    """Run tail-call targets until one returns; (r0, its executed count).

    Each target runs with the same arguments (the context pointer and
    nothing else) and the same `HelperEnv`; `HelperEnv.tail_call` enforces
    the chain limit before raising.
    """
    while True:
        engine = env.engine = call.target
        try:
            return engine.enter(args, env)
        except TailCall as again:
            call = again


def tail_call_in_frame(call: TailCall, env: HelperEnv) -> tuple[int, int]:
    """A tail call made by one function: run the chain; (its r0, executed count).

    As Linux does it: the target replaces only the frame of the function
    that made the call, so the chain's r0 becomes that function's return
    value to its caller (a subprogram's caller, a callback's helper, or
    the run itself for the entry function). The chain runs with the
    context pointer the run started with and the run's `HelperEnv`, so
    the tail-call counter is shared by every chain of the run
    (MAX_TAIL_CALLS in all). The running engine is restored afterwards,
    for the helpers the caller goes on to call.
    """
    engine = env.engine
    try:
        return follow_tail_calls(call, env, (env.ctx, 0, 0, 0, 0))
    finally:
        env.engine = engine
