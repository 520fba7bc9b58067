"""Live packet hooks: XDP and tc programs deciding the fate of an interface's frames.

`attach_xdp(program, ifname, pass_to=…)` puts an XDP program in front of
interface `ifname` as a bump in the wire: every frame arriving there is
received through an AF_PACKET ring (`ports.PacketPort`), run through the
program by the native replay loop (straight from the ring: no Python per
frame), and handled by its verdict:

- drop / aborted (and a run that faulted): discarded;
- tx: sent back out of `ifname`;
- redirect (`bpf_redirect`, `bpf_redirect_map` on a devmap): sent out of the
  target interface (the paired port when it is the target);
- pass: handed on to the paired port (another interface, `pass_to`, or a TAP
  device, `pass_to_tap`, where the host's stack receives it).

Frames arriving on the paired port go back out of `ifname` unchanged, or
through a tc program attached on egress (`attach_tc(…, direction="egress")`).
`attach_tc(…, direction="ingress")` runs a tc program where XDP runs, with
tc verdicts (shot, stolen, queued, trap: discarded; redirect; any other:
passed on). Without a paired port the hook only observes: the kernel has
delivered each frame already, so drop cannot withhold it (tx and redirect
still send).

A `LiveHook` runs in a thread of its own and stops on `close()`; while it
runs, its program's maps stay readable and writable from Python (the
native loop runs without the GIL). `counters()` says what it saw.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import InterfaceError
from ..platform.program_types import ProgramType
from .capture_index import IndexEntry
from .frame_hook import TC_TYPES, ActionCount, FrameHook, finish_in_python, jit_engine
from .netns import in_netns
from .ports import TPACKET3_HDR_SIZE, PacketPort, TapPort, tpacket_index
from .replay_loop import (
    REPLAY_LOOP,
    SKB_LOOP,
    STOP_AT_REDIRECT,
    XDP_LOOP,
    LoopKind,
    ReplayStop,
    StopReason,
    TsMode,
    out_buffers,
)

__all__ = ["HookCounters", "LiveHook", "attach_tc", "attach_xdp"]

OUT_BUFFER = 1 << 20
"""Bytes of output records per verdict between two sends."""
TAP_BATCH = 1024
"""Frames read from a TAP device per turn."""
_TC_DROP = frozenset({"shot", "stolen", "queued", "trap"})
_DIRECTIONS = ("ingress", "egress")


@dataclass
class HookCounters:
    """What a live hook saw: frames and bytes run, per verdict (as the program left
    them), runs that faulted (dropped, as aborted), frames forwarded without a program
    (`returned`: from the paired port), frames a port refused to send, redirects to
    an interface that does not exist, frames the kernel dropped because a receive
    ring was full (the hook fell behind); where the worker's time went: in the
    native loop running the program (`loop_seconds`) and in sending the
    verdicts' frames (`send_seconds`), of `seconds` attached."""

    program: str
    hook: str
    frames: int = 0
    bytes: int = 0
    actions: dict[str, ActionCount] = field(default_factory=dict)
    invalid_actions: int = 0
    faults: int = 0
    first_fault: str | None = None
    skipped: int = 0
    returned: int = 0
    send_errors: int = 0
    redirect_errors: int = 0
    ring_drops: int = 0
    seconds: float = 0.0
    loop_seconds: float = 0.0
    send_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The counters as plain data (`--json`)."""
        return {
            "program": self.program,
            "hook": self.hook,
            "frames": self.frames,
            "bytes": self.bytes,
            "actions": {a: {"frames": c.frames, "bytes": c.bytes} for a, c in self.actions.items()},
            "invalid_actions": self.invalid_actions,
            "faults": self.faults,
            "first_fault": self.first_fault,
            "skipped": self.skipped,
            "returned": self.returned,
            "send_errors": self.send_errors,
            "redirect_errors": self.redirect_errors,
            "ring_drops": self.ring_drops,
            "seconds": round(self.seconds, 3),
            "loop_seconds": round(self.loop_seconds, 3),
            "send_seconds": round(self.send_seconds, 3),
        }


class _Stage:
    """One program on one direction: its engine, reused frame, run slot and buffers."""

    def __init__(self, program: Any, kind: LoopKind, command: str, ifindex: int) -> None:
        types = TC_TYPES if kind.skb else (ProgramType.XDP,)
        self.program = program
        self.engine = jit_engine(program, types, command)
        self.kind = kind
        self.hook = FrameHook(self.engine, kind, ifindex)
        self.slot = self.engine.open_native_run(self.hook.frame.ctx)
        self.stop = ReplayStop()
        self.outs, self._buffers = out_buffers(len(kind.buckets), OUT_BUFFER)
        self.loop = REPLAY_LOOP.function(kind.symbol)
        self.faults = 0
        self.first_fault: str | None = None
        self.skipped = 0

    def close(self) -> None:
        self.engine.close_native_run(self.slot)
        self.hook.frame.release()


class _Worker:
    """One thread of a live hook: its own ports (members of the hook's fanout groups when
    there are several workers), its own stages on the hook's one program instance."""

    def __init__(
        self,
        port: PacketPort,
        peer: PacketPort | TapPort | None,
        ingress: _Stage | None,
        egress: _Stage | None,
        hook: str,
        netns: str | None,
    ) -> None:
        self.port, self.peer = port, peer
        self.ingress, self.egress = ingress, egress
        self._netns = netns
        self._senders: dict[int, Any] = {port.ifindex: port}
        if peer is not None:
            self._senders[peer.ifindex] = peer
        stage = ingress or egress
        assert stage is not None
        self._counters = HookCounters(stage.program.name, hook)
        self._routes = {
            id(s): self._routes_for(s, outbound=s is egress) for s in (ingress, egress) if s
        }
        # Room for every frame of a ring block: a frame takes at least its 48-byte
        # tpacket3_hdr, so a block never holds more than block_size / 48 of them.
        blocks = [p.block_size for p in (port, peer) if isinstance(p, PacketPort)]
        self._entries = (IndexEntry * max(TAP_BATCH, max(blocks) // TPACKET3_HDR_SIZE + 1))()
        self._staging = ctypes.create_string_buffer(TAP_BATCH * 2048)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"pybpf {hook}", daemon=True)
        self._thread.start()

    # -- routing -----------------------------------------------------------------------

    def _routes_for(self, stage: _Stage, *, outbound: bool) -> dict[str, Any]:
        """Verdict → where its frames go (None: discarded); redirect is handled apart."""
        onward = self.port if outbound else self.peer
        if stage.kind.skb:
            return {v: (None if v in _TC_DROP else onward) for v in stage.kind.buckets}
        return {"aborted": None, "drop": None, "pass": onward, "tx": self.port}

    def _sender(self, ifindex: int) -> Any:
        sender = self._senders.get(ifindex)
        if sender is None:
            try:
                # The target's name and the socket in the hook's namespace (the worker
                # thread itself stays in the process's).
                with in_netns(self._netns):
                    name = socket.if_indextoname(ifindex)
                    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
                sock.bind((name, 0))
            except OSError:
                return None
            sender = self._senders[ifindex] = _SocketSender(sock)
        return sender

    # -- the worker ----------------------------------------------------------------------

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self.port.fileno(), select.POLLIN)
        if self.peer is not None:
            poller.register(self.peer.fileno(), select.POLLIN)
        names = {self.port.fileno(): self.port.name}
        if self.peer is not None:
            names[self.peer.fileno()] = self.peer.name
        try:
            while not self._stop.is_set():
                for fd, events in poller.poll(50):
                    # AF_PACKET reports ENETDOWN when its interface goes down or away.
                    if events & (select.POLLERR | select.POLLHUP | select.POLLNVAL):
                        raise InterfaceError(f"interface {names[fd]!r} went down or away: detached")
                self._drain_port()
                self._drain_peer()
        except BaseException as error:  # reported by close(); the hook stops
            self._error = error

    def _drain_port(self) -> None:
        port = self.port
        while (block := port.ready_block()) is not None:
            n = tpacket_index(block, port.base, self._entries)
            if self.ingress is not None:
                self._run_stage(self.ingress, port.base, n)
            elif self.peer is not None:  # egress-only hook: ingress frames pass unchanged
                self._forward(port.base, n, self.peer)
            port.release_block()

    def _drain_peer(self) -> None:
        peer = self.peer
        if peer is None:
            return
        if isinstance(peer, TapPort):
            frames = peer.receive(TAP_BATCH)
            if frames:
                self._from_frames(frames)
            return
        while (block := peer.ready_block()) is not None:
            n = tpacket_index(block, peer.base, self._entries)
            if self.egress is not None:
                self._run_stage(self.egress, peer.base, n)
            else:
                self._forward(peer.base, n, self.port)
            peer.release_block()

    def _from_frames(self, frames: list[bytes]) -> None:
        """Frames read from a TAP device: staged in native memory for the egress program."""
        if self.egress is None:
            # Counted before sending: a reader who has seen the frame arrive must see it counted.
            self._counters.returned += len(frames)
            for frame in frames:
                self._count_send(self.port.send(frame))
            return
        base = ctypes.addressof(self._staging)
        at = 8  # the first 8 bytes: a zero timestamp every entry points at
        n = 0
        for frame in frames:
            if at + len(frame) > len(self._staging):
                break
            ctypes.memmove(base + at, frame, len(frame))
            entry = self._entries[n]
            entry.data, entry.record, entry.length, entry.iface = at, 0, len(frame), 0
            at += len(frame)
            n += 1
        self._run_stage(self.egress, base, n)

    def _forward(self, base: int, n: int, to: Any) -> None:
        # Counted before sending: a reader who has seen the frame arrive must see it counted.
        self._counters.returned += n
        for k in range(n):
            entry = self._entries[k]
            self._count_send(to.send(ctypes.string_at(base + entry.data, entry.length)))

    def _count_send(self, sent: bool) -> None:
        if not sent:
            self._counters.send_errors += 1

    def _run_stage(self, stage: _Stage, base: int, n: int) -> None:
        frame, stop = stage.hook.frame, stage.stop
        i = 0
        while i < n:
            started = time.perf_counter()
            stage.loop(
                stage.engine.entry_address,
                stage.slot.address,
                frame.ctx,
                base,
                ctypes.addressof(self._entries),
                n,
                i,
                frame.packet.base,
                frame.region.pointers_address,
                ctypes.addressof(stage.outs),
                int(TsMode.ZERO),
                ctypes.addressof(stop),
                stage.hook.template,
                STOP_AT_REDIRECT,
            )
            self._counters.loop_seconds += time.perf_counter() - started
            i = stop.index
            reason = StopReason(stop.reason)
            if reason == StopReason.DONE:
                break
            if reason == StopReason.BUFFERS_FULL:
                self._send_outputs(stage)
                continue
            if reason == StopReason.REDIRECTED:
                self._send_outputs(stage)
                continue
            entry = self._entries[i]
            i += 1
            self._run_in_python(stage, base, entry, reason)
        self._send_outputs(stage)

    def _run_in_python(self, stage: _Stage, base: int, entry: Any, reason: StopReason) -> None:
        done = finish_in_python(
            stage.engine,
            stage.slot,
            stage.hook,
            reason,
            stage.stop,
            entry.length,
            lambda: ctypes.string_at(base + entry.data, entry.length),
        )
        if done is None:
            stage.skipped += 1
            return
        action, data, fault = done
        if fault is not None:
            stage.faults += 1
            stage.first_fault = stage.first_fault or fault
        out = stage.outs[stage.kind.buckets.index(action)]
        out.frames += 1
        out.bytes += len(data)
        if fault is None:
            self._send_one(stage, action, data)

    def _send_one(self, stage: _Stage, action: str, data: bytes) -> None:
        if action == stage.kind.buckets[stage.kind.redirect]:
            self._redirect(stage, data)
            return
        to = self._routes[id(stage)].get(action)
        if to is not None:
            self._count_send(to.send(data))

    def _redirect(self, stage: _Stage, data: Any) -> None:
        record = stage.slot.env.data.pop("redirect", None) if stage.slot.env else None
        target = None
        if isinstance(record, dict):
            target = record.get("ifindex")
        elif record is not None:
            target = record.target
        sender = self._sender(target) if target is not None else None
        if sender is None:
            self._counters.redirect_errors += 1
            return
        self._count_send(sender.send(data))

    def _send_outputs(self, stage: _Stage) -> None:
        """Send each verdict's records (16-byte header, frame) where they go; empty them."""
        started = time.perf_counter()
        self._send_records(stage)
        self._counters.send_seconds += time.perf_counter() - started

    def _send_records(self, stage: _Stage) -> None:
        routes = self._routes[id(stage)]
        for k, (action, out) in enumerate(zip(stage.kind.buckets, stage.outs, strict=True)):
            if not out.length:
                continue
            to = routes.get(action)
            if k != stage.kind.redirect and isinstance(to, PacketPort):
                self._counters.send_errors += to.send_records(out.base, out.length)
            elif k == stage.kind.redirect or to is not None:
                view = memoryview(stage._buffers[k])[: out.length]
                at = 0
                while at < out.length:
                    (size,) = struct.unpack_from("<I", view, at + 8)
                    frame = view[at + 16 : at + 16 + size]
                    if k == stage.kind.redirect:
                        self._redirect(stage, frame)
                    else:
                        self._count_send(routes[action].send(frame))
                    at += 16 + size
            out.length = 0

    # -- state for the hook -----------------------------------------------------------------

    def counters(self) -> HookCounters:
        """What this worker saw so far (read while it runs: a consistent-enough snapshot)."""
        c = self._counters
        c.frames = c.bytes = c.invalid_actions = c.faults = c.skipped = 0
        c.actions = {}
        for stage in (self.ingress, self.egress):
            if stage is None:
                continue
            c.frames += stage.stop.frames
            c.bytes += stage.stop.bytes
            c.invalid_actions += stage.stop.invalid
            c.faults += stage.faults
            c.skipped += stage.skipped
            c.first_fault = c.first_fault or stage.first_fault
            for action, out in zip(stage.kind.buckets, stage.outs, strict=True):
                count = c.actions.setdefault(action, ActionCount())
                count.frames += out.frames
                count.bytes += out.bytes
        c.seconds = time.monotonic() - self._started
        for port in (self.port, self.peer):
            if isinstance(port, PacketPort) and port.sock.fileno() >= 0:
                c.ring_drops += port.ring_drops()
        return c

    @property
    def running(self) -> bool:
        """Whether the worker thread still runs."""
        return self._thread.is_alive()

    def stop(self) -> None:
        """Ask the thread to stop (it does within one poll interval)."""
        self._stop.set()

    def close(self) -> HookCounters:
        """Stop the worker, close the ports, return the final counters. Raises what
        stopped the worker, if anything did."""
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()
        counters = self.counters()
        for stage in (self.ingress, self.egress):
            if stage is not None and stage.slot is not None:
                stage.close()
                stage.slot = None
        for sender in self._senders.values():
            sender.close()
        self._senders.clear()
        error, self._error = self._error, None
        if error is not None:
            raise error
        return counters


class LiveHook:
    """A program attached to a live interface (see the module docstring): one or more
    worker threads on the same program instance, until `close()`."""

    def __init__(self, workers: list[_Worker]) -> None:
        self.workers = workers

    def counters(self) -> HookCounters:
        """What the hook saw so far, summed over its workers."""
        parts = [w.counters() for w in self.workers]
        total = replace(parts[0], actions={})
        for name in _SUMMED:
            setattr(total, name, sum(getattr(p, name) for p in parts))
        total.first_fault = next((p.first_fault for p in parts if p.first_fault), None)
        total.seconds = max(p.seconds for p in parts)
        for p in parts:
            for action, count in p.actions.items():
                into = total.actions.setdefault(action, ActionCount())
                into.frames += count.frames
                into.bytes += count.bytes
        return total

    @property
    def running(self) -> bool:
        """Whether every worker thread still runs."""
        return all(w.running for w in self.workers)

    def close(self) -> HookCounters:
        """Stop every worker, close the ports, return the final counters. Raises what
        stopped a worker, if anything did (after closing them all)."""
        for worker in self.workers:
            worker.stop()
        errors = []
        for worker in self.workers:
            try:
                worker.close()
            except BaseException as error:  # close the others first
                errors.append(error)
        counters = self.counters()
        if errors:
            raise errors[0]
        return counters

    def __enter__(self) -> LiveHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_SUMMED = (
    "frames", "bytes", "invalid_actions", "faults", "skipped", "returned", "send_errors",
    "redirect_errors", "ring_drops", "loop_seconds", "send_seconds",
)  # fmt: skip


class _SocketSender:
    """A send-only AF_PACKET socket bound to a redirect target."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def send(self, frame: Any) -> bool:
        try:
            self.sock.send(frame)
            return True
        except OSError:
            return False

    def close(self) -> None:
        self.sock.close()


def _check_pairing(ifname: str, pass_to: str | None, pass_to_tap: str | None, workers: int) -> None:
    if pass_to is not None and pass_to_tap is not None:
        raise InterfaceError("give pass_to or pass_to_tap, not both")
    if ifname in (pass_to, pass_to_tap):
        raise InterfaceError(f"interface {ifname!r} cannot be paired with itself")
    if workers < 1:
        raise InterfaceError(f"workers={workers}: at least one")
    if workers > 1 and pass_to_tap is not None:
        raise InterfaceError("several workers need pass_to: a TAP device has one queue here")


def _open_ports(
    ifname: str,
    pass_to: str | None,
    pass_to_tap: str | None,
    netns: str | None,
    fanout: tuple[int, int] | None,
) -> tuple[PacketPort, PacketPort | TapPort | None]:
    with in_netns(netns):
        port = PacketPort(ifname, fanout=fanout and fanout[0])
        try:
            peer: PacketPort | TapPort | None = None
            if pass_to is not None:
                peer = PacketPort(pass_to, fanout=fanout and fanout[1])
            elif pass_to_tap is not None:
                peer = TapPort(pass_to_tap)
        except BaseException:
            port.close()
            raise
    return port, peer


_fanout_groups = itertools.count((os.getpid() * 7) & 0x7FFF)


def _start(
    program: Any,
    kind: LoopKind,
    command: str,
    ifname: str,
    direction: str,
    pass_to: str | None,
    pass_to_tap: str | None,
    netns: str | None,
    workers: int,
) -> LiveHook:
    """Open each worker's ports and stages, start its thread; undo it all on an error."""
    fanout = None
    if workers > 1:  # frames spread over the workers by flow hash, as RSS over queues
        fanout = (next(_fanout_groups) & 0xFFFF, next(_fanout_groups) & 0xFFFF)
    started: list[_Worker] = []
    hook = f"{'xdp' if not kind.skb else f'tc {direction}'} {ifname}"
    try:
        for _ in range(workers):
            port, peer = _open_ports(ifname, pass_to, pass_to_tap, netns, fanout)
            try:
                stage = _Stage(program, kind, command, port.ifindex)
            except BaseException:
                _close_ports(port, peer)
                raise
            ingress, egress = (stage, None) if direction == "ingress" else (None, stage)
            started.append(_Worker(port, peer, ingress, egress, hook, netns))
    except BaseException:
        for worker in started:
            worker.close()
        raise
    return LiveHook(started)


def attach_xdp(
    program: Any,
    ifname: str,
    *,
    pass_to: str | None = None,
    pass_to_tap: str | None = None,
    netns: str | None = None,
    workers: int = 1,
) -> LiveHook:
    """Run XDP `program` on every frame arriving on `ifname` (see the module docstring).

    `netns`: the path of the network namespace the interfaces are in;
    `workers`: threads running the one program instance, each on its own
    receive ring, frames spread over them by flow hash (needs `pass_to`
    when more than one). Raises InterfaceError for an interface that is
    missing or down, a TAP device that cannot be created, missing
    privileges; NotSupportedError for a program that is not XDP or not in
    the JIT.
    """
    jit_engine(program, (ProgramType.XDP,), "xdp attach")
    _check_pairing(ifname, pass_to, pass_to_tap, workers)
    return _start(
        program, XDP_LOOP, "xdp attach", ifname, "ingress", pass_to, pass_to_tap, netns, workers
    )


def attach_tc(
    program: Any,
    ifname: str,
    *,
    direction: str = "ingress",
    pass_to: str | None = None,
    pass_to_tap: str | None = None,
    netns: str | None = None,
    workers: int = 1,
) -> LiveHook:
    """Run tc `program` on frames arriving on `ifname` (`direction="ingress"`) or on frames
    from the paired port about to leave through it (`"egress"`, which needs a pair)."""
    if direction not in _DIRECTIONS:
        raise InterfaceError(f"tc direction {direction!r}: ingress or egress")
    jit_engine(program, TC_TYPES, "tc attach")
    if direction == "egress" and pass_to is None and pass_to_tap is None:
        raise InterfaceError("a tc egress hook needs a paired port (pass_to or pass_to_tap)")
    _check_pairing(ifname, pass_to, pass_to_tap, workers)
    return _start(
        program, SKB_LOOP, "tc attach", ifname, direction, pass_to, pass_to_tap, netns, workers
    )


def _close_ports(port: PacketPort, peer: Any) -> None:
    port.close()
    if peer is not None:
        peer.close()
