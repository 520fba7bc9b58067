"""Replaying a capture through an XDP program: verdicts, counters, one capture per action.

`replay_xdp(program, capture_path, out_dir)` runs every frame of a pcap or
pcapng file through a verified XDP program in the JIT, as a driver would
hand it over (`hooks.packets.XdpFrame`), and returns a `ReplayResult`
(frames and bytes per action). With `out_dir`, each action's frames, as the
program left them (after adjust_head/tail/meta and rewrites), go to
`<action>.pcap` there (`pass.pcap`, `drop.pcap`, `tx.pcap`, …), with the
timestamps of their input records (pcap input; pcapng timestamps are
written as 0).

The loop over frames is native (`replay_loop`); Python steps in only for a
frame longer than an XDP frame's linear part (run as a multi-buffer frame,
as a test run would), for a run a Python helper stopped, and to write the
output buffers. A fault in a run is counted (`faults`) and the frame goes
with the aborted ones, as XDP_ABORTED: the replay goes on. Ctrl-C stops
between two native calls; what ran so far is written and counted.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import NotSupportedError, PybpfError
from ..platform.program_type_info import context_access
from ..platform.program_types import ProgramType
from .capture_index import Kind
from .captures import Capture, PcapWriter
from .packets import XdpFrame
from .replay_loop import ACTIONS, LINEAR_MAX, REPLAY_LOOP, OutBuffer, ReplayStop, StopReason, TsMode

__all__ = ["ACTIONS", "ReplayResult", "replay_xdp"]

OUT_BUFFER = 1 << 22
"""Bytes of pcap records each action's buffer holds between two writes."""


@dataclass
class ActionCount:
    """Frames and frame bytes (as the program left them) that got one action."""

    frames: int = 0
    bytes: int = 0


@dataclass
class ReplayResult:
    """What a replay saw: frames and bytes read, per action, the runs that faulted."""

    frames: int = 0
    bytes: int = 0
    actions: dict[str, ActionCount] = field(
        default_factory=lambda: {a: ActionCount() for a in ACTIONS}
    )
    invalid_actions: int = 0
    faults: int = 0
    first_fault: str | None = None
    seconds: float = 0.0
    interrupted: bool = False
    outputs: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The result as plain data (`--json`)."""
        return {
            "frames": self.frames,
            "bytes": self.bytes,
            "actions": {a: {"frames": c.frames, "bytes": c.bytes} for a, c in self.actions.items()},
            "invalid_actions": self.invalid_actions,
            "faults": self.faults,
            "first_fault": self.first_fault,
            "seconds": round(self.seconds, 6),
            "interrupted": self.interrupted,
            "outputs": self.outputs,
        }


class _Outputs:
    """The per-action native buffers and, with an output directory, their pcap files."""

    def __init__(self, out_dir: Path | None, nanoseconds: bool) -> None:
        self.array = (OutBuffer * len(ACTIONS))()
        self._buffers = [ctypes.create_string_buffer(OUT_BUFFER) for _ in ACTIONS]
        for out, buf in zip(self.array, self._buffers, strict=True):
            out.base, out.capacity = ctypes.addressof(buf), OUT_BUFFER
        self._dir = out_dir
        self._nanoseconds = nanoseconds
        self.writers: dict[str, PcapWriter] = {}

    def flush(self) -> None:
        """Write what the buffers hold to the action files and empty them."""
        for action, out, buf in zip(ACTIONS, self.array, self._buffers, strict=True):
            if out.length and self._dir is not None:
                self._writer(action).write_raw(ctypes.string_at(buf, out.length))
            out.length = 0

    def add(self, action: str, frame: bytes, stamp: tuple[int, int]) -> None:
        """One frame handled in Python, after whatever the buffers hold."""
        self.flush()
        out = self.array[ACTIONS.index(action)]
        out.frames += 1
        out.bytes += len(frame)
        if self._dir is not None:
            self._writer(action).write(frame, *stamp)

    def _writer(self, action: str) -> PcapWriter:
        writer = self.writers.get(action)
        if writer is None:
            assert self._dir is not None
            path = self._dir / f"{action}.pcap"
            writer = self.writers[action] = PcapWriter(path, nanoseconds=self._nanoseconds)
        return writer

    def close(self) -> None:
        """Flush and close every file."""
        self.flush()
        for writer in self.writers.values():
            writer.close()


def _jit_engine(program: Any) -> Any:
    if program.prog_type != ProgramType.XDP:
        raise NotSupportedError(
            f"{program.name} is a {program.prog_type.name.lower()} program; "
            "xdp replay runs XDP programs"
        )
    engine = program.engine
    if not hasattr(engine, "open_native_run"):
        reason = getattr(program, "fallback_reason", None) or "the object runs in the interpreter"
        raise NotSupportedError(f"replay runs programs in the JIT: {reason}")
    return engine


def replay_xdp(
    program: Any,
    capture_path: str | Path,
    out_dir: str | Path | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    batch: int = 65536,
    result: ReplayResult | None = None,
) -> ReplayResult:
    """Run every frame of `capture_path` through XDP `program` (a `pybpf.Program`).

    `progress(bytes_done, bytes_total)` is called after each batch; `result`,
    if given, is filled in (and holds what ran when an interrupt stops the
    replay). Raises
    `CaptureError` at a damaged capture (after counting and writing the
    frames before the damage), `NotSupportedError` for a program that is
    not XDP or not in the JIT.
    """
    engine = _jit_engine(program)
    out_path = Path(out_dir) if out_dir is not None else None
    if out_path is not None:
        out_path.mkdir(parents=True, exist_ok=True)
    result = result if result is not None else ReplayResult()
    with Capture(capture_path) as capture:
        ts_mode = {Kind.PCAP_LE: TsMode.COPY, Kind.PCAP_BE: TsMode.SWAP}.get(
            capture.kind, TsMode.ZERO
        )
        outputs = _Outputs(out_path, capture.nanoseconds)
        access = context_access(ProgramType.XDP)
        frame = XdpFrame(engine.memory, access, bytes(LINEAR_MAX))
        slot = engine.open_native_run(frame.ctx)
        stop = ReplayStop()
        started = time.perf_counter()
        try:
            loop = REPLAY_LOOP.function("pybpf_xdp_replay")
            for entries in capture.batches(batch):
                _run_batch(
                    loop, engine, slot, frame, capture, entries, outputs, stop, ts_mode, result
                )
                if progress is not None:
                    progress(
                        entries[len(entries) - 1].data + entries[len(entries) - 1].length,
                        capture.size,
                    )
        except BaseException as stopped:
            # Ctrl-C (KeyboardInterrupt, or the CLI's own interrupt exception) between
            # two native calls: what ran is counted and written below.
            result.interrupted = not isinstance(stopped, Exception)
            raise
        finally:
            result.seconds = time.perf_counter() - started
            engine.close_native_run(slot)
            frame.release()
            outputs.close()
            result.invalid_actions = stop.invalid
            result.frames, result.bytes = stop.frames, stop.bytes
            for action, out in zip(ACTIONS, outputs.array, strict=True):
                result.actions[action].frames += out.frames
                result.actions[action].bytes += out.bytes
            result.outputs = {a: str(w.path) for a, w in outputs.writers.items()}
    return result


def _run_batch(loop, engine, slot, frame, capture, entries, outputs, stop, ts_mode, result) -> None:
    n = len(entries)
    base = ctypes.addressof(entries)
    i = 0
    while i < n:
        loop(
            engine.entry_address,
            slot.address,
            frame.ctx,
            capture.base,
            base,
            n,
            i,
            frame.packet.base,
            frame.region.pointers_address,
            ctypes.addressof(outputs.array),
            int(ts_mode),
            ctypes.addressof(stop),
        )
        i = stop.index
        reason = StopReason(stop.reason)
        if reason == StopReason.DONE:
            return
        if reason == StopReason.BUFFERS_FULL:
            outputs.flush()
            continue
        entry = entries[i]
        stamp = capture.timestamp(entry)
        if reason == StopReason.TOO_LONG:  # the native loop counts the frames it runs
            stop.frames += 1
            stop.bytes += entry.length
        if reason == StopReason.TOO_LONG:
            action, data = _run_in_python(engine, capture.frame(entry), result)
        else:  # IN_PYTHON: the run is half done; finish it as the engine would
            try:
                action = _action(engine.finish_native_run(slot, stop.r0), stop)
            except PybpfError as error:
                action = _fault(result, error)
            p = frame.pointers
            data = frame.packet.read(p["data"], p["data_end"])
        outputs.add(action, data, stamp)
        i += 1


def _action(r0: int, stop: ReplayStop) -> str:
    action = r0 & 0xFFFFFFFF
    if action < len(ACTIONS):
        return ACTIONS[action]
    stop.invalid += 1
    return "aborted"


def _fault(result: ReplayResult, error: Exception) -> str:
    result.faults += 1
    if result.first_fault is None:
        result.first_fault = str(error)
    return "aborted"


def _run_in_python(engine: Any, data: bytes, result: ReplayResult) -> tuple[str, bytes]:
    """A frame longer than the linear part: a multi-buffer frame, as a test run builds it."""
    access = context_access(ProgramType.XDP)
    frame = XdpFrame(engine.memory, access, data)
    try:
        r0 = engine.run(frame.ctx)
        action = ACTIONS[r0 & 0xFFFFFFFF] if (r0 & 0xFFFFFFFF) < len(ACTIONS) else "aborted"
    except PybpfError as error:
        action = _fault(result, error)
    finally:
        frame.release()
    p = frame.pointers
    return action, frame.data_out()[p["data"] - p["data_meta"] :]
