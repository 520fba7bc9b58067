"""What the hooks that run packet programs from the native loop share.

Capture replay (`hooks.replay`) and live interfaces (`hooks.live`) both
hand frames to `replay_loop`'s native loops. Both need: the check that a
program is of the hook's type and runs in the JIT (`jit_engine`), one
frame and context reused for every frame (`FrameHook`), the verdict's
name from r0 (`verdict`), and, for a frame longer than an XDP frame's
linear part, a run in Python as a multi-buffer frame (`run_multibuffer`), and
the handling of a frame the loop stopped at (`finish_in_python`).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import NotSupportedError, PybpfError
from ..platform.contexts import SK_BUFF
from ..platform.program_type_info import context_access
from ..platform.program_types import ProgramType
from .packets import SkbPacket, XdpFrame, put_field, skb_metadata
from .replay_loop import XDP_LOOP, LoopKind, ReplayStop, StopReason

__all__ = [
    "TC_TYPES",
    "ActionCount",
    "FrameHook",
    "finish_in_python",
    "jit_engine",
    "run_multibuffer",
    "verdict",
]

TC_TYPES = (ProgramType.SCHED_CLS, ProgramType.SCHED_ACT)
"""The program types a tc hook runs."""


@dataclass
class ActionCount:
    """Frames and frame bytes (as the program left them) that got one action."""

    frames: int = 0
    bytes: int = 0


def jit_engine(program: Any, types: tuple[ProgramType, ...], command: str) -> Any:
    """`program`'s JIT engine; NotSupportedError if it is of another type or interpreted."""
    if program.prog_type not in types:
        wanted = " or ".join(t.name.lower() for t in types)
        raise NotSupportedError(
            f"{program.name} is a {program.prog_type.name.lower()} program; "
            f"{command} runs {wanted} programs"
        )
    engine = program.engine
    if not hasattr(engine, "open_native_run"):
        reason = getattr(program, "fallback_reason", None) or "the object runs in the interpreter"
        raise NotSupportedError(f"{command} runs programs in the JIT: {reason}")
    return engine


class FrameHook:
    """The packet and context a hook reuses for every frame, and the sk_buff template;
    `ifindex` is the receiving interface (`ingress_ifindex`, `ifindex`)."""

    def __init__(self, engine: Any, kind: LoopKind, ifindex: int | None = None) -> None:
        self.kind = kind
        if kind.skb:
            access = context_access(ProgramType.SCHED_CLS)
            image = bytearray(SK_BUFF.size)
            skb_metadata(image, bytes(14), length=0, with_socket=False)  # ifindex: loopback
            if ifindex is not None:
                put_field(image, SK_BUFF, "ifindex", ifindex)
                put_field(image, SK_BUFF, "ingress_ifindex", ifindex)
            self._template = (ctypes.c_ubyte * len(image)).from_buffer_copy(image)
            self.frame: Any = SkbPacket(
                engine.memory, access, bytes(kind.linear_max), bytes(image), at_l2=True
            )
            self.template = ctypes.addressof(self._template)
        else:
            access = context_access(ProgramType.XDP)
            extra = {} if ifindex is None else {"ingress_ifindex": ifindex}
            self.frame = XdpFrame(engine.memory, access, bytes(kind.linear_max), **extra)
            self.template = 0
        self.ifindex = ifindex

    def data(self) -> bytes:
        """The frame as the last run left it (data to data_end)."""
        p = self.frame.pointers
        return self.frame.packet.read(p["data"], p["data_end"])


def verdict(kind: LoopKind, r0: int, stop: ReplayStop) -> str:
    """The bucket name of return value `r0`; an unknown one counts in `stop.invalid` and
    goes to the first bucket (aborted, unspec)."""
    value = r0 & 0xFFFFFFFF
    bucket = (value - (1 << 32) if value >> 31 else value) + kind.bias
    if 0 <= bucket < len(kind.buckets):
        return kind.buckets[bucket]
    stop.invalid += 1
    return kind.buckets[0]


def run_multibuffer(
    engine: Any, data: bytes, stop: ReplayStop, ifindex: int | None = None
) -> tuple[str, bytes, str | None]:
    """Run a frame longer than the linear part as a multi-buffer XDP frame, as a test run
    builds it: (action, the frame as left, the fault's message or None)."""
    access = context_access(ProgramType.XDP)
    extra = {} if ifindex is None else {"ingress_ifindex": ifindex}
    frame = XdpFrame(engine.memory, access, data, **extra)
    fault = None
    try:
        action = verdict(XDP_LOOP, engine.run(frame.ctx), stop)
    except PybpfError as error:
        action, fault = XDP_LOOP.buckets[0], str(error)
    finally:
        frame.release()
    p = frame.pointers
    return action, frame.data_out()[p["data"] - p["data_meta"] :], fault


def finish_in_python(
    engine: Any,
    slot: Any,
    hook: FrameHook,
    reason: StopReason,
    stop: ReplayStop,
    length: int,
    frame: Callable[[], bytes],
) -> tuple[str, bytes, str | None] | None:
    """The frame of `length` bytes the native loop stopped at, finished in Python:
    TOO_LONG runs it as a multi-buffer XDP frame (`frame()` gives its bytes; counted in
    `stop` as the loop counts the frames it runs), IN_PYTHON finishes the run a Python
    helper stopped. (action, the frame as left, the fault's message or None); None for
    an sk_buff too long to run, which the kernel's test run refuses too (skipped)."""
    if reason == StopReason.TOO_LONG:
        stop.frames += 1
        stop.bytes += length
        if hook.kind.skb:
            return None
        return run_multibuffer(engine, frame(), stop, hook.ifindex)
    try:
        return verdict(hook.kind, engine.finish_native_run(slot, stop.r0), stop), hook.data(), None
    except PybpfError as error:
        return hook.kind.buckets[0], hook.data(), str(error)
