"""Replaying a capture through an XDP or tc program: verdicts, counters, one capture each.

`replay_xdp(program, capture_path, out_dir)` runs every frame of a pcap or
pcapng file through a verified XDP program in the JIT, as a driver would
hand it over (`hooks.packets.XdpFrame`), and returns a `ReplayResult`
(frames and bytes per action). With `out_dir`, each action's frames, as the
program left them (after adjust_head/tail/meta and rewrites), go to
`<action>.pcap` there (`pass.pcap`, `drop.pcap`, `tx.pcap`, …), with the
timestamps of their input records (pcap input; pcapng timestamps are
written as 0). `replay_tc` does the same for a tc program (sched_cls or
sched_act) with each frame as an sk_buff on ingress
(`hooks.packets.SkbPacket`), one capture per verdict (`ok.pcap`,
`shot.pcap`, `redirect.pcap`, …); a frame longer than an sk_buff of one
page holds (3712 bytes) is not run, as the kernel's test run refuses it,
and is counted in `skipped`.

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

from ..platform.program_types import ProgramType
from .capture_index import Kind
from .captures import Capture, PcapWriter
from .frame_hook import TC_TYPES, ActionCount, FrameHook, finish_in_python, jit_engine
from .replay_loop import (
    ACTIONS,
    REPLAY_LOOP,
    SKB_LOOP,
    TC_VERDICTS,
    XDP_LOOP,
    ReplayStop,
    StopReason,
    TsMode,
    out_buffers,
)

__all__ = ["ACTIONS", "TC_VERDICTS", "ActionCount", "ReplayResult", "replay_tc", "replay_xdp"]

OUT_BUFFER = 1 << 22
"""Bytes of pcap records each action's buffer holds between two writes."""


@dataclass
class ReplayResult:
    """What a replay saw: frames and bytes read, per action (XDP) or verdict (tc), the runs
    that faulted, the frames too long to run (`skipped`, tc)."""

    frames: int = 0
    bytes: int = 0
    actions: dict[str, ActionCount] = field(default_factory=dict)
    skipped: int = 0
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
            "skipped": self.skipped,
            "faults": self.faults,
            "first_fault": self.first_fault,
            "seconds": round(self.seconds, 6),
            "interrupted": self.interrupted,
            "outputs": self.outputs,
        }


class _Outputs:
    """The per-action native buffers and, with an output directory, their pcap files."""

    def __init__(self, names: tuple[str, ...], out_dir: Path | None, nanoseconds: bool) -> None:
        self.names = names
        self.array, self._buffers = out_buffers(len(names), OUT_BUFFER)
        self._dir = out_dir
        self._nanoseconds = nanoseconds
        self.writers: dict[str, PcapWriter] = {}

    def flush(self) -> None:
        """Write what the buffers hold to the action files and empty them."""
        for action, out, buf in zip(self.names, self.array, self._buffers, strict=True):
            if out.length and self._dir is not None:
                self._writer(action).write_raw(ctypes.string_at(buf, out.length))
            out.length = 0

    def add(self, action: str, frame: bytes, stamp: tuple[int, int]) -> None:
        """One frame handled in Python, after whatever the buffers hold."""
        self.flush()
        out = self.array[self.names.index(action)]
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
    replay). Raises `CaptureError` at a damaged capture (after counting and
    writing the frames before the damage), `NotSupportedError` for a program
    that is not XDP or not in the JIT.
    """
    engine = jit_engine(program, (ProgramType.XDP,), "xdp replay")
    return _replay(engine, XDP_LOOP, capture_path, out_dir, progress, batch, result)


def replay_tc(
    program: Any,
    capture_path: str | Path,
    out_dir: str | Path | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    batch: int = 65536,
    result: ReplayResult | None = None,
) -> ReplayResult:
    """Run every frame of `capture_path` through tc `program` (sched_cls or sched_act) as
    sk_buffs; as `replay_xdp`, with tc verdicts (`TC_VERDICTS`) for actions."""
    engine = jit_engine(program, TC_TYPES, "tc replay")
    return _replay(engine, SKB_LOOP, capture_path, out_dir, progress, batch, result)


def _replay(engine, kind, capture_path, out_dir, progress, batch, result) -> ReplayResult:
    out_path = Path(out_dir) if out_dir is not None else None
    if out_path is not None:
        out_path.mkdir(parents=True, exist_ok=True)
    result = result if result is not None else ReplayResult()
    result.actions = {a: ActionCount() for a in kind.buckets}
    with Capture(capture_path) as capture:
        ts_mode = {Kind.PCAP_LE: TsMode.COPY, Kind.PCAP_BE: TsMode.SWAP}.get(
            capture.kind, TsMode.ZERO
        )
        outputs = _Outputs(kind.buckets, out_path, capture.nanoseconds)
        hook = FrameHook(engine, kind)
        slot = engine.open_native_run(hook.frame.ctx)
        stop = ReplayStop()
        started = time.perf_counter()
        try:
            loop = REPLAY_LOOP.function(kind.symbol)
            for entries in capture.batches(batch):
                _run_batch(
                    loop, engine, slot, hook, capture, entries, outputs, stop, ts_mode, result
                )
                if progress is not None:
                    last = entries[len(entries) - 1]
                    progress(last.data + last.length, capture.size)
        except BaseException as stopped:
            # Ctrl-C (KeyboardInterrupt, or the CLI's own interrupt exception) between
            # two native calls: what ran is counted and written below.
            result.interrupted = not isinstance(stopped, Exception)
            raise
        finally:
            result.seconds = time.perf_counter() - started
            engine.close_native_run(slot)
            hook.frame.release()
            outputs.close()
            result.invalid_actions = stop.invalid
            result.frames, result.bytes = stop.frames, stop.bytes
            for action, out in zip(kind.buckets, outputs.array, strict=True):
                result.actions[action].frames += out.frames
                result.actions[action].bytes += out.bytes
            result.outputs = {a: str(w.path) for a, w in outputs.writers.items()}
    return result


def _run_batch(loop, engine, slot, hook, capture, entries, outputs, stop, ts_mode, result) -> None:
    n = len(entries)
    base = ctypes.addressof(entries)
    frame = hook.frame
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
            hook.template,
            0,
        )
        i = stop.index
        reason = StopReason(stop.reason)
        if reason == StopReason.DONE:
            return
        if reason == StopReason.BUFFERS_FULL:
            outputs.flush()
            continue
        entry = entries[i]
        i += 1
        done = finish_in_python(
            engine, slot, hook, reason, stop, entry.length, lambda e=entry: capture.frame(e)
        )
        if done is None:
            result.skipped += 1
            continue
        action, data, fault = done
        _count_fault(result, fault)
        outputs.add(action, data, capture.timestamp(entry))


def _count_fault(result: ReplayResult, fault: str | None) -> None:
    if fault is not None:
        result.faults += 1
        result.first_fault = result.first_fault or fault
