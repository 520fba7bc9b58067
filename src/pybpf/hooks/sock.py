"""Socket programs attached to real processes: a supervised command, or this process.

Two ways to put socket-address programs (Linux `cgroup/connect4` … and
eBPF for Windows' `bind` / sock_addr, see `hooks/sock_addr.py`) in front of
real socket calls:

- `run(obj, command)`: the command and every descendant under the seccomp
  supervisor (`hooks/sock_supervisor.py`). Every bind, connect, sendmsg and
  addressed sendto of any program (Python or not, static binaries, shells
  and their children, threads) is decided; denials fail with EPERM,
  rewrites take effect. This is the mode to prefer.
- `attach(obj)`: this Python process's own `socket` calls, through CPython's
  audit hooks (`sys.addaudithook`: the events `socket.bind`,
  `socket.connect`, `socket.sendto`, `socket.sendmsg`). It can deny (the
  call raises `PermissionError` with EPERM), but it cannot rewrite: the
  event's address is the caller's own immutable tuple and the call goes on
  with it, so a program that rewrites the address denies the call instead
  (counted as `rewrites_refused`). Calls made outside Python's socket module
  (C extensions, ctypes, child processes) escape it, and CPython documents
  audit hooks as no security boundary: code in the process can bypass
  them. Use it to test a policy against a Python program in-process.

Both return a `pybpf.Link` (`close()`, `with`); its `counters()` say what
was decided.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import LoadError
from ..runtime.task import CurrentTask
from .sock_addr import HookCounters, SockAddrHook, SockCall, placement
from .sock_supervisor import SockSupervisor, SupervisorCounters, caller_socket

__all__ = ["ProcessCounters", "attach", "programs_of", "run"]


def programs_of(obj: Any, names: Iterable[str] | None = None) -> list[Any]:
    """The programs of `obj` to attach: those named, else every socket-address program
    (LoadError naming a missing program, or when the object has none)."""
    if names:
        missing = [n for n in names if n not in obj.programs]
        if missing:
            raise LoadError(f"{obj.path}: no program named {missing[0]!r}")
        return [obj.programs[n] for n in names]
    chosen = []
    for program in obj.programs.values():
        try:
            placement(program)
        except LoadError:
            continue
        chosen.append(program)
    if not chosen:
        raise LoadError(
            f"{obj.path}: no socket-address program (cgroup/bind4|6, connect4|6, sendmsg4|6,"
            " or eBPF for Windows' bind and sock_addr)"
        )
    return chosen


def _load_all(programs: list[Any]) -> None:
    """Load the programs' objects (verifying them) before any call is decided."""
    for program in programs:
        if not program.object.loaded:
            program.object.load()


# -- a supervised command --------------------------------------------------------------------


class _SupervisedCommand:
    """The hook object of a `Link` over a supervised command."""

    def __init__(self, supervisor: SockSupervisor, command: Sequence[str]) -> None:
        self.supervisor = supervisor
        self.command = list(command)

    @property
    def running(self) -> bool:
        process = self.supervisor.process
        return process is not None and process.poll() is None

    def counters(self) -> SupervisorCounters:
        counters = self.supervisor.counters
        counters.hook = "sock run " + " ".join(self.command)
        return counters

    def wait(self, timeout: float | None = None) -> int:
        return self.supervisor.wait(timeout)

    def close(self) -> SupervisorCounters:
        """End the command if it still runs (SIGTERM, then SIGKILL), stop serving."""
        process = self.supervisor.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(2)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.supervisor.close()
        return self.counters()


def run(obj: Any, command: Sequence[str], *, programs: Iterable[str] | None = None, **popen: Any):
    """Start `command` with `obj`'s socket programs (or those named) deciding every
    socket call of it and its descendants; a `Link` (`link.wait()` for its exit status,
    `link.close()` ends it). `popen` goes to `subprocess.Popen` (stdout, env, cwd …).
    `SupervisorError` when it cannot start."""
    from ..link import Link

    chosen = programs_of(obj, programs)
    _load_all(chosen)
    supervisor = SockSupervisor(SockAddrHook(chosen))
    supervisor.start(command, **popen)
    return Link(chosen[0], _SupervisedCommand(supervisor, command))


# -- this process, through audit hooks ---------------------------------------------------------


@dataclass
class ProcessCounters(HookCounters):
    """What an in-process attachment decided."""

    hook: str = "sock attach (this process)"
    rewrites_refused: int = 0


_EVENTS = {
    "socket.bind": "bind",
    "socket.connect": "connect",
    "socket.sendto": "sendmsg",
    "socket.sendmsg": "sendmsg",
}
_attached: list[_ProcessHook] = []
_audit_installed = False
_audit_lock = threading.Lock()
_deciding = threading.local()


class _ProcessHook:
    """The hook object of a `Link` over this process's socket calls."""

    def __init__(self, hook: SockAddrHook) -> None:
        self.hook = hook
        self.stats = ProcessCounters()
        self.running = True

    def counters(self) -> ProcessCounters:
        return self.stats

    def close(self) -> ProcessCounters:
        with _audit_lock:
            if self in _attached:
                _attached.remove(self)
        self.running = False
        self.hook.close()
        return self.stats

    def check(self, op: str, sock: socket.socket, address: Any) -> None:
        """Decide one audited call; raise PermissionError to deny it."""
        call = _call_of(op, sock, address)
        if call is None:
            return
        self.stats.calls += 1
        try:
            decision = self.hook.decide(call, caller_socket(sock))
        except Exception as error:  # a fault denies, as in the supervisor
            self.stats.errors += 1
            self.stats.keep_error(str(error))
            raise PermissionError(1, f"pybpf: {op} denied: {error}") from None
        if not decision.allow:
            self.stats.denied += 1
            raise PermissionError(1, f"pybpf: {op} to {address} denied by {decision.denied_by}")
        if decision.address != call.address:
            self.stats.rewrites_refused += 1
            raise PermissionError(
                1, f"pybpf: {op} to {address} rewritten by a program: audit hooks cannot rewrite"
            )
        self.stats.allowed += 1


def _call_of(op: str, sock: Any, address: Any) -> SockCall | None:
    """The call an audit event describes, or None for one the hook does not decide."""
    if not isinstance(sock, socket.socket) or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    if op == "sendmsg" and sock.type != socket.SOCK_DGRAM:
        return None
    if not isinstance(address, tuple) or len(address) < 2:
        return None
    try:
        host = socket.getaddrinfo(address[0], None, sock.family)[0][4][0] if address[0] else None
    except OSError:
        return None  # the call itself will fail to resolve it
    if host is None:
        host = "0.0.0.0" if sock.family == socket.AF_INET else "::"
    task = CurrentTask.host()
    return SockCall(
        op,
        sock.family,
        sock.type,
        sock.proto,
        (host, int(address[1])),
        task,
        sys.executable.encode(),
    )


def _audit(event: str, args: tuple[Any, ...]) -> None:
    op = _EVENTS.get(event)
    if op is None or not _attached or getattr(_deciding, "active", False):
        return
    _deciding.active = True  # a program's own socket use never re-enters
    try:
        for process_hook in list(_attached):
            process_hook.check(op, args[0], args[1] if len(args) > 1 else None)
    finally:
        _deciding.active = False


def attach(obj: Any, *, programs: Iterable[str] | None = None):
    """Apply `obj`'s socket programs (or those named) to this process's own socket calls
    through audit hooks (see the module docstring for what that can and cannot do); a
    `Link` whose `close()` detaches them."""
    global _audit_installed
    from ..link import Link

    chosen = programs_of(obj, programs)
    _load_all(chosen)
    process_hook = _ProcessHook(SockAddrHook(chosen))
    with _audit_lock:
        if not _audit_installed:
            sys.addaudithook(_audit)  # audit hooks cannot be removed: one, for every attach
            _audit_installed = True
        _attached.append(process_hook)
    return Link(chosen[0], process_hook)
