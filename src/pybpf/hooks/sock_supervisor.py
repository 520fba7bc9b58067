"""A process tree under socket programs: every bind/connect/sendto/sendmsg decided.

`SockSupervisor(hook).start(command)` starts `command` under the seccomp
filter of `hooks/seccomp.py` (installed by a fresh interpreter that then
execs the command, so the filter holds for it, its threads and every
descendant) and serves the listener in a thread. For each intercepted call:

1. The supervisor takes a duplicate of the caller's socket (`pidfd_getfd`)
   and asks the socket, not the caller's memory, for its family, type and
   protocol. A socket of another family (Unix, netlink, packet …), a
   descriptor that is no socket, a TCP sendmsg/sendto (no hook runs there
   in Linux; with MSG_FASTOPEN it connects, and is decided as a connect), a call no attached program decides (a connect6 with only
   connect4 programs) goes on untouched (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`):
   no decision depends on the caller's memory then.
2. Otherwise it reads the address (and for sendto/sendmsg the payload and
   control data) from the caller's memory, checks that the caller still
   waits in that call (`SECCOMP_IOCTL_NOTIF_ID_VALID`), builds the
   `SockCall` (the calling thread's ids and credentials from /proc) and
   asks the `SockAddrHook`.
3. Denied: the call fails in the caller with EPERM, as a cgroup program's
   denial does. Allowed: the supervisor makes the call itself, on its
   duplicate of the socket, with the address decided (rewritten or not),
   and returns its result (a non-blocking connect's EINPROGRESS included).
   It never lets the caller's own call continue after reading its memory:
   the caller could change that memory in between (the time-of-check to
   time-of-use race seccomp's documentation warns of).
4. A fault of a program or any error of the supervisor's denies the call
   (EPERM), is counted and kept (`SupervisorCounters.errors`) and the
   supervisor goes on.

A bind to a privileged port (below `ip_unprivileged_port_start`) by a caller
without CAP_NET_BIND_SERVICE fails with EACCES as in the kernel, unless a
Linux bind program lifted the check (verdict bit 1): the supervisor's own
privileges never leak to the caller.

Calls are decided in the thread that receives them; a blocking connect is
then finished in a worker thread, so that it holds up no other call. When the supervisor stops (the command
ended, `close()`), the listener closes: any descendant still running then
gets ENOSYS from the calls the filter sends to it.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import select
import socket
import struct
import subprocess
import sys
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import PybpfError
from ..platform.helper_ids import HelperId
from ..runtime.sockets import CallerSocket
from ..runtime.task import CurrentTask
from . import seccomp
from .sock_addr import (
    Decision,
    HookCounters,
    SockAddrHook,
    SockCall,
    address_text,
    packed_address,
)

__all__ = ["SockSupervisor", "SupervisorCounters", "SupervisorError", "caller_socket"]

_libc = ctypes.CDLL(None, use_errno=True)
_libc.process_vm_readv.restype = _libc.process_vm_writev.restype = ctypes.c_ssize_t
_libc.process_vm_readv.argtypes = _libc.process_vm_writev.argtypes = [
    ctypes.c_int,
    ctypes.c_void_p,
    ctypes.c_ulong,
    ctypes.c_void_p,
    ctypes.c_ulong,
    ctypes.c_ulong,
]
_libc.sendmsg.restype = ctypes.c_ssize_t
_libc.sendmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
_libc.connect.argtypes = _libc.bind.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32]
_SO_COOKIE, _SO_NETNS_COOKIE = 57, 71
_MSG_FASTOPEN = 0x20000000
_UIO_MAXIOV = 1024  # the kernel's cap on iovecs, and on a sendmmsg's messages
_MMSGHDR_SIZE = 64  # struct mmsghdr: a msghdr (56 bytes), msg_len, padding
_CMSG_HEADER = struct.Struct("<Qii")  # struct cmsghdr: cmsg_len, cmsg_level, cmsg_type
# family -> (level, type, offset and size of the source address in the message's data):
# struct in_pktinfo's ipi_spec_dst, struct in6_pktinfo's ipi6_addr
_PKTINFO = {socket.AF_INET: (0, 8, 4, 4), socket.AF_INET6: (41, 50, 0, 16)}
_PKTINFO_SIZE = {socket.AF_INET: 12, socket.AF_INET6: 20}
_CAP_NET_BIND_SERVICE = 10


class SupervisorError(PybpfError):
    """The command could not be started under the supervisor (one line, says why).
    `bad_command`: the command itself could not run (not found, not executable)."""

    def __init__(self, message: str, *, bad_command: bool = False) -> None:
        super().__init__(message)
        self.bad_command = bad_command


class _KernelAnswer(Exception):
    """The kernel's own answer to a call malformed before any decision (EFAULT, EINVAL)."""

    def __init__(self, code: int) -> None:
        super().__init__(os.strerror(code))
        self.errno = code


_SOCKADDR_MAX = 128  # sizeof(struct sockaddr_storage): the kernel refuses longer ones


def _caller_bytes(pid: int, address: int, size: int) -> bytes:
    """Memory of the caller a call names; the kernel's EFAULT when it cannot be read."""
    try:
        return read_memory(pid, address, size)
    except OSError:
        raise _KernelAnswer(errno.EFAULT) from None


def _sockaddr_bytes(pid: int, address: int, length: int) -> bytes:
    """The sockaddr a call names (its length checked as move_addr_to_kernel does)."""
    length &= 0xFFFFFFFF
    if length > _SOCKADDR_MAX:
        raise _KernelAnswer(errno.EINVAL)
    return _caller_bytes(pid, address, length)


@dataclass
class SupervisorCounters(HookCounters):
    """What the supervisor decided so far."""

    hook: str = "sock run"
    redirected: int = 0
    passed: int = 0  # went on untouched: not a socket the hook decides


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def _process_vm(
    function: object, pid: int, buffer: ctypes.Array, address: int, what: str, size: int = -1
) -> None:
    """process_vm_readv/_writev of `size` bytes (all) of `buffer` at `address` in `pid`."""
    size = len(buffer) if size < 0 else size
    local = _IoVec(ctypes.addressof(buffer), size)
    remote = _IoVec(address, size)
    done = function(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)  # type: ignore[operator]
    if done != size:
        code = ctypes.get_errno() if done < 0 else errno.EFAULT
        raise OSError(code, f"{what} {size} bytes at 0x{address:x} of {pid}")


_small = threading.local()  # a buffer per thread for the small reads every call makes
_SMALL = 256


def read_memory(pid: int, address: int, size: int) -> bytes:
    """`size` bytes at `address` in process (thread) `pid` (process_vm_readv; OSError)."""
    if size == 0:
        return b""
    if size <= _SMALL:
        buffer = getattr(_small, "buffer", None)
        if buffer is None:
            buffer = _small.buffer = ctypes.create_string_buffer(_SMALL)
        _process_vm(_libc.process_vm_readv, pid, buffer, address, "reading", size)
        return buffer.raw[:size]
    buffer = ctypes.create_string_buffer(size)
    _process_vm(_libc.process_vm_readv, pid, buffer, address, "reading")
    return buffer.raw


def write_memory(pid: int, address: int, data: bytes) -> None:
    """Write `data` at `address` in process (thread) `pid` (process_vm_writev; OSError)."""
    buffer = ctypes.create_string_buffer(data, len(data))
    _process_vm(_libc.process_vm_writev, pid, buffer, address, "writing")


# -- sockaddr bytes --------------------------------------------------------------------------


def parse_sockaddr(raw: bytes) -> tuple[int, tuple[str, int]] | None:
    """(family, (address, port)) of an AF_INET/AF_INET6 sockaddr, or None."""
    if len(raw) < 2:
        return None
    family = raw[0] | raw[1] << 8
    if family == socket.AF_INET and len(raw) >= 16:
        return family, (socket.inet_ntop(family, raw[4:8]), raw[2] << 8 | raw[3])
    if family == socket.AF_INET6 and len(raw) >= 24:
        return family, (socket.inet_ntop(family, raw[8:24]), raw[2] << 8 | raw[3])
    return None


def rewrite_sockaddr(raw: bytes, address: tuple[str, int]) -> bytes:
    """`raw` with its address and port replaced (flow info, scope id kept)."""
    out = bytearray(raw)
    struct.pack_into("!H", out, 2, address[1])
    family = raw[0] | raw[1] << 8
    packed = packed_address(address[0], family)
    if family == socket.AF_INET:
        out[4:8] = packed
    else:
        out[8:24] = packed
    return bytes(out)


# -- the caller --------------------------------------------------------------------------------


def _status_field(status: bytes, key: bytes) -> bytes:
    """The first word of line `key` (b"\\nUid:\\t") of /proc/TID/status text ("" if absent).
    Found with bytes.find: a regular expression over the whole text costs more than the
    kernel's writing it."""
    at = status.find(key)
    if at < 0:
        return b""
    start = at + len(key)
    return status[start : status.find(b"\n", start)].partition(b"\t")[0]


def task_from_status(tid: int, status: bytes) -> CurrentTask:
    """The thread `tid` as `bpf_get_current_*` describe it (ids, real uid/gid, name)
    from its /proc/TID/status text."""
    name = status[6 : status.find(b"\n")] if status.startswith(b"Name:\t") else b""
    return CurrentTask(
        pid=tid,
        tgid=int(_status_field(status, b"\nTgid:\t")),
        uid=int(_status_field(status, b"\nUid:\t")),
        gid=int(_status_field(status, b"\nGid:\t")),
        comm=name[:15],
    )


def capabilities(tid: int) -> int:
    """The effective capabilities of thread `tid` (/proc/TID/status; 0 if it is gone)."""
    try:
        with open(f"/proc/{tid}/status", "rb") as file:
            return int(_status_field(file.read(), b"\nCapEff:\t") or b"0", 16)
    except (OSError, ValueError):
        return 0


def _comm(tid: int) -> bytes:
    try:
        with open(f"/proc/{tid}/comm", "rb") as file:
            return file.read().rstrip(b"\n")[:15]
    except OSError:
        return b""


# PIDFD_GET_INFO (Linux 6.13): _IOWR(0xFF, 11, struct pidfd_info), its first 64 bytes
_PIDFD_GET_INFO = 0xC040FF0B
_PIDFD_INFO = struct.Struct("<QQ7I28x")  # mask, cgroupid, pid, tgid, ppid, ruid, rgid, …
_PIDFD_INFO_PID_CREDS = 0b11
_PIDFD_THREAD = os.O_EXCL  # pidfd_open of a thread, not only of a process (Linux 6.9)


class _Callers:
    """Who calls, per thread id, without an open() per call.

    Where the kernel allows it (Linux 6.13: a pidfd of a thread, PIDFD_GET_INFO) a
    thread's pidfd is kept: one ioctl gives its process id and real uid/gid, and
    pidfd_getfd takes its socket. Elsewhere its /proc/TID/status stays open and is
    read again with pread (the kernel writes it anew; this costs ten times the ioctl),
    with a pidfd per process for pidfd_getfd. Either fd names one task for good: once
    the task is gone its calls fail (ESRCH), so a thread id reused by another task is
    never answered for by the old one's fd; such an fd is dropped and opened again.
    At most `keep` fds of each kind, the least recently used closed first. Used by
    the serving thread only."""

    def __init__(self, keep: int = 128) -> None:
        self.keep = keep
        self.pidfd_info: bool | None = None  # None: not tried yet
        self.want_comm = False  # whether a program asks for the task's name
        self._threads: OrderedDict[int, int] = OrderedDict()  # tid -> pidfd, or status fd
        self._processes: OrderedDict[int, int] = OrderedDict()  # tgid -> pidfd

    def task(self, tid: int) -> CurrentTask:
        """The thread `tid` (OSError: it is gone)."""
        if self.pidfd_info is not False:
            task = self._task_from_pidfd(tid)
            if task is not None:
                return task
        status = self._use(
            self._threads,
            tid,
            lambda: os.open(f"/proc/{tid}/status", os.O_RDONLY),
            lambda fd: os.pread(fd, 4096, 0),
        )
        return task_from_status(tid, status)

    def _task_from_pidfd(self, tid: int) -> CurrentTask | None:
        """The thread through its pidfd, or None (and pidfd_info False) where the kernel
        cannot: no thread pidfds (EINVAL, before 6.9) or no PIDFD_GET_INFO (ENOTTY or
        EINVAL, before 6.13)."""
        try:
            info = self._use(self._threads, tid, lambda: _thread_pidfd(tid), _pidfd_info)
        except OSError as error:
            if error.errno not in (errno.EINVAL, errno.ENOTTY):
                raise  # ESRCH: the thread is gone
            self._drop(self._threads, tid)  # the table holds status fds from now on
            self.pidfd_info = False
            return None
        self.pidfd_info = True
        _, _, _, tgid, _, uid, gid = _PIDFD_INFO.unpack(info)[:7]
        comm = _comm(tid) if self.want_comm else b""
        return CurrentTask(pid=tid, tgid=tgid, uid=uid, gid=gid, comm=comm)

    def socket_fd(self, task: CurrentTask, fd: int) -> int:
        """A duplicate of descriptor `fd` of the caller (OSError: not one of its)."""
        if self.pidfd_info:
            table, key, opener = self._threads, task.pid, lambda: _thread_pidfd(task.pid)
        else:
            table, key, opener = self._processes, task.tgid, lambda: os.pidfd_open(task.tgid)
        return self._use(table, key, opener, lambda pidfd: seccomp.pidfd_getfd(pidfd, fd))

    def _use(self, table: OrderedDict[int, int], key: int, opener, use):
        """`use(fd)` on the fd kept for `key` (opened by `opener()` if none is). An fd
        whose task is gone (ESRCH) is dropped and `key` opened once more: its id may be
        another task's now."""
        try:
            return use(self._open(table, key, opener))
        except OSError as error:
            if error.errno != errno.ESRCH:
                raise
        self._drop(table, key)
        return use(self._open(table, key, opener))

    def _open(self, table: OrderedDict[int, int], key: int, opener) -> int:
        fd = table.get(key)
        if fd is not None:
            table.move_to_end(key)
            return fd
        fd = table[key] = opener()
        if len(table) > self.keep:
            os.close(table.popitem(last=False)[1])
        return fd

    @staticmethod
    def _drop(table: OrderedDict[int, int], key: int) -> None:
        fd = table.pop(key, None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        """Close every fd kept."""
        for table in (self._threads, self._processes):
            while table:
                os.close(table.popitem()[1])


def _thread_pidfd(tid: int) -> int:
    """A pidfd of thread `tid` (pidfd_open with PIDFD_THREAD, which os.pidfd_open refuses
    on older Pythons)."""
    return seccomp.syscall_fd(seccomp.PIDFD_OPEN, tid, _PIDFD_THREAD)


def _pidfd_info(pidfd: int) -> bytearray:
    """struct pidfd_info of `pidfd`'s task: its ids and credentials (PIDFD_GET_INFO)."""
    info = bytearray(_PIDFD_INFO.pack(_PIDFD_INFO_PID_CREDS, 0, *[0] * 7))
    fcntl.ioctl(pidfd, _PIDFD_GET_INFO, info)
    return info


def _app_id(tgid: int) -> bytes:
    try:
        return os.readlink(f"/proc/{tgid}/exe").encode()
    except OSError:
        return b""


def _unprivileged_port_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    except (OSError, ValueError):
        return 1024


def _sockopt(sock: socket.socket, option: int) -> int:
    try:
        return int.from_bytes(sock.getsockopt(socket.SOL_SOCKET, option, 8), "little")
    except OSError:
        return 0


def caller_socket(
    sock: socket.socket, bind: object = None, *, cookie: bool = True, netns_cookie: bool = True
) -> CallerSocket:
    """What the helpers of a decision see of `sock`: its cookie, its namespace's cookie
    (each read unless told no program asks for it: 0 then), and `bind` for bpf_bind
    (None: recorded only)."""
    return CallerSocket(
        cookie=_sockopt(sock, _SO_COOKIE) if cookie else 0,
        netns_cookie=_sockopt(sock, _SO_NETNS_COOKIE) if netns_cookie else 0,
        bind=bind,
    )


# -- the supervisor ----------------------------------------------------------------------------


class SockSupervisor:
    """Decides the socket calls of a command and its descendants (module docstring)."""

    def __init__(self, hook: SockAddrHook, *, workers: int = 8) -> None:
        if (reason := seccomp.unsupported_reason()) is not None:
            raise SupervisorError(reason)
        self.hook = hook
        self.counters = SupervisorCounters()
        self.process: subprocess.Popen | None = None
        self._listener = -1
        self.sync_wake_up = False  # the kernel switches straight to us (start() sets it)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pybpf-sock")
        self._counter_lock = threading.Lock()
        self._port_start = _unprivileged_port_start()
        self._callers = _Callers()
        self._callers.want_comm = hook.may_call(HelperId.GET_CURRENT_COMM)
        self._want_cookie = hook.may_call(HelperId.GET_SOCKET_COOKIE)
        self._want_netns_cookie = hook.may_call(HelperId.GET_NETNS_COOKIE)

    # -- starting and stopping --------------------------------------------------------------

    def start(self, command: Sequence[str], **popen: object) -> subprocess.Popen:
        """Start `command` under the filter and serve its calls; its `Popen`.
        SupervisorError when it cannot start (one line naming the command and why)."""
        if not command:
            raise SupervisorError("no command to run", bad_command=True)
        to_us_r, to_us_w = os.pipe()
        to_it_r, to_it_w = os.pipe()
        launcher = [sys.executable, "-I", seccomp.__file__, "launch", str(to_us_w), str(to_it_r)]
        try:
            process = subprocess.Popen(
                [*launcher, "--", *command], pass_fds=(to_us_w, to_it_r), **popen
            )  # type: ignore[call-overload]
        finally:
            os.close(to_us_w)
            os.close(to_it_r)
        with os.fdopen(to_us_r, "rb") as from_launcher, os.fdopen(to_it_w, "wb") as to_launcher:
            self._listener = self._take_listener(process, from_launcher.readline().decode())
            to_launcher.write(b"g")
            to_launcher.flush()
            to_launcher.close()
            failure = from_launcher.read().decode().strip()
        if failure:
            process.wait()
            os.close(self._listener)
            code, _, why = failure.removeprefix("exec ").partition(" ")
            raise SupervisorError(f"cannot run {command[0]!r}: {why or failure}", bad_command=True)
        self.process = process
        self.sync_wake_up = seccomp.set_sync_wake_up(self._listener)
        self._thread = threading.Thread(target=self._serve, name="pybpf-sock-supervisor")
        self._thread.daemon = True
        self._thread.start()
        return process

    def _take_listener(self, process: subprocess.Popen, line: str) -> int:
        kind, _, rest = line.strip().partition(" ")
        if kind != "listener":
            process.wait()
            raise SupervisorError(
                f"cannot install the seccomp filter: {rest or 'the launcher failed'}"
            )
        pidfd = os.pidfd_open(process.pid)
        try:
            return seccomp.pidfd_getfd(pidfd, int(rest))
        finally:
            os.close(pidfd)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the command to exit; its exit status (a signal as 128 + number)."""
        assert self.process is not None, "start() first"
        code = self.process.wait(timeout)
        return 128 - code if code < 0 else code

    def close(self) -> SupervisorCounters:
        """Stop serving (idempotent); the final counters. The command is not killed."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._pool.shutdown(wait=True)
        if self._listener >= 0:
            os.close(self._listener)
            self._listener = -1
        self._callers.close()
        self.hook.close()
        return self.counters

    # -- serving -------------------------------------------------------------------------------

    def _serve(self) -> None:
        poller = select.poll()
        poller.register(self._listener, select.POLLIN)
        while not self._stop.is_set():
            events = poller.poll(100)
            if not events:
                continue
            if (
                events[0][1] & (select.POLLHUP | select.POLLERR)
                and not events[0][1] & select.POLLIN
            ):
                break  # every task under the filter has exited
            try:
                notification = seccomp.receive(self._listener)
            except OSError:
                continue  # the caller died before we received its call (ENOENT), or EINTR
            # Decided here, at once; only a call that may block (a blocking connect) is
            # finished by a worker thread, so that it holds up no other call.
            self._handle(notification)

    def _count(self, name: str, message: str | None = None) -> None:
        with self._counter_lock:
            setattr(self.counters, name, getattr(self.counters, name) + 1)
            if message is not None:
                self.counters.keep_error(message)

    def _handle(self, notification: seccomp.Notification) -> None:
        self._count("calls")
        try:
            outcome = _Call(self, notification).serve()
        except _KernelAnswer as answer:
            self._answer(notification, error=answer.errno)
            self._count("passed")
            return
        except Exception as error:  # never stop serving: deny, count, keep the reason
            message = f"{notification.syscall} of {notification.pid}: {error}"
            self._count("errors", message)
            self._answer(notification, error=errno.EPERM)
            return
        self._count(outcome)

    def _answer(self, notification: seccomp.Notification, value: int = 0, error: int = 0) -> None:
        try:
            seccomp.respond(self._listener, notification.id, value, error)
        except OSError:
            pass  # the listener closed under us


class _Call:
    """One intercepted call being served (see the module docstring)."""

    def __init__(self, supervisor: SockSupervisor, notification: seccomp.Notification) -> None:
        self.supervisor = supervisor
        self.notification = notification
        self.sends = notification.syscall in ("sendto", "sendmsg", "sendmmsg")
        flags = notification.args[2 if notification.syscall == "sendmsg" else 3]
        if self.sends and flags & _MSG_FASTOPEN:
            # TCP Fast Open: a send that connects, which the kernel's connect hooks decide
            self.op = "connect"
        else:
            self.op = "sendmsg" if self.sends else notification.syscall

    def serve(self) -> str:
        """Decide and answer; the counter this call goes to."""
        n, listener = self.notification, self.supervisor._listener
        task = self.supervisor._callers.task(n.pid)
        sock = self._socket(task)
        if sock is None:
            seccomp.respond_continue(listener, n.id)
            return "passed"
        with sock:
            return self._decide(sock, task)

    def _socket(self, task: CurrentTask) -> socket.socket | None:
        """A duplicate of the caller's socket, if it is one the hook decides for this call."""
        try:
            fd = self.supervisor._callers.socket_fd(task, self.notification.args[0] & 0xFFFFFFFF)
        except OSError:
            return None  # not a descriptor of the caller's (or it is gone): the kernel says so
        try:
            sock = socket.socket(fileno=fd)
        except OSError:
            os.close(fd)
            return None  # not a socket
        # socket(fileno=) asked the kernel for the family, type and protocol already
        # read once: each read of sock.family / sock.type builds an enum
        self.family, self.sotype, self.proto = int(sock.family), int(sock.type), sock.proto
        family, datagram = self.family, self.sotype == socket.SOCK_DGRAM
        decided = (
            family in (socket.AF_INET, socket.AF_INET6)
            and (self.op != "sendmsg" or datagram)  # Linux decides UDP sends only
            # no program for this operation and family: nothing to decide either
            and self.supervisor.hook.programs_for(self.op, family)
        )
        if not decided:
            sock.close()
            return None
        return sock

    def _decide(self, sock: socket.socket, task: CurrentTask) -> str:
        n = self.notification
        if n.syscall == "sendmmsg":
            return self._decide_many(sock, task)
        sending = _Sending.read(n) if self.sends else None
        if sending is not None:
            raw = sending.name
        else:
            raw = _sockaddr_bytes(n.pid, n.args[1], n.args[2])
        if not seccomp.id_valid(self.supervisor._listener, n.id):
            return "passed"  # the caller is gone, or no longer in that call
        decision = self._decision(sock, task, raw, sending)
        if decision is None:
            # no address the hook decides (AF_UNSPEC, a short or foreign sockaddr): the
            # kernel answers the call as made, from our copy of it
            self._perform(sock, raw, sending)
            return "passed"
        if not decision.allow:
            self.supervisor._answer(n, error=errno.EPERM)
            return "denied"
        if self.op == "bind" and self._needs_capability(decision, task.pid):
            self.supervisor._answer(n, error=errno.EACCES)
            return "denied"
        if sending is not None:
            sending = sending.with_source(self.family, decision.msg_src)
        self._perform_soon(sock, rewrite_sockaddr(raw, decision.address), sending)
        return "redirected" if decision.redirected else "allowed"

    def _decision(
        self, sock: socket.socket, task: CurrentTask, raw: bytes, sending: _Sending | None
    ) -> Decision | None:
        """The programs' decision on sockaddr `raw` (a send's too), or None if it names no
        address of the socket's family."""
        parsed = parse_sockaddr(raw)
        if parsed is None or parsed[0] != self.family:
            return None
        call = SockCall(
            self.op,
            self.family,
            self.sotype,
            self.proto,
            parsed[1],
            task,
            _app_id(task.tgid) if self.supervisor.hook.wants_app_id else b"",
            sending.source(self.family) if sending is not None else None,
        )
        supervisor = self.supervisor
        caller = caller_socket(
            sock,
            bind=lambda address: _bind(sock, address),
            cookie=supervisor._want_cookie,
            netns_cookie=supervisor._want_netns_cookie,
        )
        return self.supervisor.hook.decide(call, caller)

    def _decide_many(self, sock: socket.socket, task: CurrentTask) -> str:
        """sendmmsg: each message decided and sent in turn, as the kernel's loop over
        ___sys_sendmsg; its msg_len written back; the count sent, or the first error."""
        n = self.notification
        _, vector, vlen, flags = n.args[:4]
        sent, error, outcome = 0, 0, "allowed"
        for index in range(min(vlen & 0xFFFFFFFF, _UIO_MAXIOV)):
            entry = vector + _MMSGHDR_SIZE * index
            sending = _Sending.from_msghdr(n.pid, entry, flags)
            if not seccomp.id_valid(self.supervisor._listener, n.id):
                return "passed"
            decision = self._decision(sock, task, sending.name, sending)
            raw = sending.name
            if decision is not None:
                if not decision.allow:
                    error, outcome = errno.EPERM, "denied" if not sent else outcome
                    break
                raw = rewrite_sockaddr(raw, decision.address)
                sending = sending.with_source(self.family, decision.msg_src)
                outcome = "redirected" if decision.redirected else outcome
            result = sending.send(sock.fileno(), raw)
            if result < 0:
                error = ctypes.get_errno()
                break
            write_memory(n.pid, entry + 56, struct.pack("<I", result))  # msg_len
            sent += 1
        self.supervisor._answer(n, sent, 0 if sent else error)
        return outcome

    def _perform_soon(self, sock: socket.socket, raw: bytes, sending: _Sending | None) -> None:
        """`_perform` now, or in a worker for a connect that may block (on a copy of the
        socket the worker closes)."""
        if not (
            self.op == "connect"
            and self.sotype == socket.SOCK_STREAM
            and not fcntl.fcntl(sock.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK  # blocking
        ):
            self._perform(sock, raw, sending)
            return
        copy = sock.dup()

        def finish() -> None:
            with copy:
                try:
                    self._perform(copy, raw, sending)
                except Exception as error:  # the call is decided: answer, count, go on
                    self.supervisor._count("errors", f"connect of {self.notification.pid}: {error}")
                    self.supervisor._answer(self.notification, error=errno.EPERM)

        self.supervisor._pool.submit(finish)

    def _needs_capability(self, decision: object, tid: int) -> bool:
        port = decision.address[1]  # type: ignore[attr-defined]
        if decision.skip_port_check or port == 0 or port >= self.supervisor._port_start:  # type: ignore[attr-defined]
            return False
        return not capabilities(tid) >> _CAP_NET_BIND_SERVICE & 1

    def _perform(self, sock: socket.socket, raw: bytes, sending: _Sending | None) -> None:
        """Make the call on our duplicate with sockaddr `raw`; answer with its result."""
        fd = sock.fileno()
        address = ctypes.create_string_buffer(raw, len(raw))
        if self.notification.syscall == "connect":
            result = _libc.connect(fd, address, len(raw))
        elif self.notification.syscall == "bind":
            result = _libc.bind(fd, address, len(raw))
        else:
            assert sending is not None
            result = sending.send(fd, raw)
        error = ctypes.get_errno() if result < 0 else 0
        sock.close()  # before answering: the caller may run on this CPU at once
        self.supervisor._answer(self.notification, 0 if error else result, error)


def _bind(sock: socket.socket, address: tuple[str, int]) -> int:
    """bpf_bind on the real socket: 0 or -errno."""
    try:
        sock.bind(address)
    except OSError as error:
        return -(error.errno or errno.EINVAL)
    return 0


@dataclass
class _Sending:
    """A sendto/sendmsg read out of the caller: its payload, control data, flags, name."""

    name: bytes
    payload: bytes
    control: bytes
    flags: int

    @classmethod
    def read(cls, n: seccomp.Notification) -> _Sending:
        """The send of a sendto or sendmsg call."""
        if n.syscall == "sendto":
            _, buf, length, flags, addr, addrlen = n.args
            payload = _caller_bytes(n.pid, buf, length)
            return cls(_sockaddr_bytes(n.pid, addr, addrlen), payload, b"", flags & 0xFFFFFFFF)
        return cls.from_msghdr(n.pid, n.args[1], n.args[2])

    @classmethod
    def from_msghdr(cls, pid: int, msg: int, flags: int) -> _Sending:
        """The send a struct msghdr at `msg` in process `pid` describes."""
        name_p, namelen, iov_p, iovlen, control_p, controllen, _ = struct.unpack(
            "<QI4xQQQQi4x", _caller_bytes(pid, msg, 56)
        )
        if iovlen > _UIO_MAXIOV:
            raise _KernelAnswer(errno.EMSGSIZE)
        vectors = _caller_bytes(pid, iov_p, 16 * iovlen)
        parts = [
            _caller_bytes(pid, base, size) for base, size in struct.iter_unpack("<QQ", vectors)
        ]
        name = _sockaddr_bytes(pid, name_p, namelen) if name_p else b""
        if controllen > 1 << 20:
            raise _KernelAnswer(errno.ENOBUFS)
        control = _caller_bytes(pid, control_p, controllen) if control_p else b""
        return cls(name, b"".join(parts), control, flags & 0xFFFFFFFF)

    def _cmsgs(self) -> list[tuple[int, int, int, bytes]]:
        """The control messages: (offset, level, type, data)."""
        out, offset, control = [], 0, self.control
        while offset + _CMSG_HEADER.size <= len(control):
            length, level, kind = _CMSG_HEADER.unpack_from(control, offset)
            if length < _CMSG_HEADER.size or offset + length > len(control):
                break
            out.append((offset, level, kind, control[offset + _CMSG_HEADER.size : offset + length]))
            offset += (length + 7) & ~7
        return out

    def source(self, family: int) -> str | None:
        """The source address an IP_PKTINFO / IPV6_PKTINFO message asks for, or None."""
        level, kind, at, size = _PKTINFO[family]
        for _, cmsg_level, cmsg_type, data in self._cmsgs():
            if (cmsg_level, cmsg_type) == (level, kind) and len(data) >= at + size:
                raw = data[at : at + size]
                return address_text(raw) if any(raw) else None
        return None

    def with_source(self, family: int, address: str | None) -> _Sending:
        """This send from `address` (a program's msg_src_ip4/6): its PKTINFO source
        replaced, or a PKTINFO message added; unchanged when the source is as asked."""
        if address == self.source(family):
            return self
        level, kind, at, size = _PKTINFO[family]
        packed = packed_address(address, family) if address else bytes(size)
        control = bytearray(self.control)
        for offset, cmsg_level, cmsg_type, data in self._cmsgs():
            if (cmsg_level, cmsg_type) == (level, kind) and len(data) >= at + size:
                start = offset + _CMSG_HEADER.size + at
                control[start : start + size] = packed
                return replace(self, control=bytes(control))
        info = bytearray(_PKTINFO_SIZE[family])
        info[at : at + size] = packed
        length = _CMSG_HEADER.size + len(info)
        control += _CMSG_HEADER.pack(length, level, kind) + info + bytes(-length % 8)
        return replace(self, control=bytes(control))

    def send(self, fd: int, name: bytes) -> int:
        """sendmsg on `fd` with our copies (and sockaddr `name`); its result (-1: errno)."""
        payload = ctypes.create_string_buffer(self.payload, len(self.payload))
        vector = _IoVec(ctypes.addressof(payload), len(self.payload))
        name_buffer = ctypes.create_string_buffer(name, len(name)) if name else None
        control = (
            ctypes.create_string_buffer(self.control, len(self.control)) if self.control else None
        )
        header = struct.pack(
            "<QI4xQQQQi4x",
            ctypes.addressof(name_buffer) if name_buffer is not None else 0,
            len(name),
            ctypes.addressof(vector),
            1,
            ctypes.addressof(control) if control is not None else 0,
            len(self.control),
            0,
        )
        message = ctypes.create_string_buffer(header, len(header))
        return _libc.sendmsg(fd, message, self.flags)
