"""The socket-address hook: bind, connect and sendmsg calls decided by eBPF programs.

One decision is what the kernel's cgroup sock_addr hooks make
(`__cgroup_bpf_run_filter_sock_addr`) and what eBPF for Windows' bind and
sock_addr hooks make: a context built from the call (`SockCall`: the
operation, the socket's family, type and protocol, the address, the calling
process), the programs attached for that operation and family run in order,
and a `Decision`: allowed or not, the address the call goes to (a program
may rewrite it), and what else the programs asked for.

Programs and the calls they see:

| program | sees |
|---|---|
| Linux `cgroup/bind4`, `cgroup/bind6` | bind() on an AF_INET / AF_INET6 socket |
| Linux `cgroup/connect4`, `cgroup/connect6` | connect() |
| Linux `cgroup/sendmsg4`, `cgroup/sendmsg6` | sendto()/sendmsg() with an address, on a UDP socket |
| Windows `bind` | bind(), both families (`bind_md`) |
| Windows `cgroup/connect4|6`, `cgroup/bind4|6` | connect(), bind() (its `bpf_sock_addr`) |

The socket's family chooses the hook, as in Linux: an IPv4-mapped IPv6
address on an AF_INET6 socket goes to the connect6/bind6 programs, mapped.
Linux verdicts: bit 0 allows (0 denies with EPERM); a bind program's bit 1
lifts the privileged-port check (`BPF_RET_BIND_NO_CAP_NET_BIND_SERVICE`).
Windows verdicts: bind PERMIT_SOFT (0) / DENY (1) / REDIRECT (2, to the
rewritten `socket_address`) / PERMIT_HARD (3); sock_addr REJECT (0) /
PROCEED_SOFT (1) / PROCEED_HARD (2), a rewritten destination redirecting.
Windows contexts number AF_INET6 as Windows does (23).

`test_run` builds the same contexts from an address (`context_for`), and
`pybpf prog run --sock-addr 10.0.0.1:80/tcp` from text (`parse_sock_addr`).
The supervisor (`hooks/sock_supervisor.py`) calls `SockAddrHook.decide` for
every intercepted call of its command.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from ..errors import LoadError, TestRunError
from ..isa.opcodes import CALL
from ..platform import windows
from ..platform.helper_ids import HelperId
from ..platform.program_types import AttachType, ProgramType
from ..platform.sections import program_type_for_section
from ..runtime.sockets import CallerSocket
from ..runtime.task import CurrentTask

__all__ = [
    "OPERATIONS",
    "Decision",
    "HookCounters",
    "SockAddrHook",
    "SockCall",
    "address_in_context",
    "address_text",
    "context_for",
    "packed_address",
    "parse_sock_addr",
    "placement",
]

OPERATIONS = ("bind", "connect", "sendmsg")
WINDOWS_AF_INET6 = 23
BIND_NO_CAP_NET_BIND_SERVICE = 2
"""Bit 1 of a Linux bind program's verdict."""

# Linux attach type → (operation, socket family)
_LINUX_HOOKS = {
    AttachType.CGROUP_INET4_BIND: ("bind", socket.AF_INET),
    AttachType.CGROUP_INET6_BIND: ("bind", socket.AF_INET6),
    AttachType.CGROUP_INET4_CONNECT: ("connect", socket.AF_INET),
    AttachType.CGROUP_INET6_CONNECT: ("connect", socket.AF_INET6),
    AttachType.CGROUP_UDP4_SENDMSG: ("sendmsg", socket.AF_INET),
    AttachType.CGROUP_UDP6_SENDMSG: ("sendmsg", socket.AF_INET6),
}
# eBPF for Windows section prefix → (operation, socket family); its `bind` type serves both.
_WINDOWS_HOOKS = {
    "cgroup/connect4": ("connect", socket.AF_INET),
    "cgroup/connect6": ("connect", socket.AF_INET6),
    "cgroup/bind4": ("bind", socket.AF_INET),
    "cgroup/bind6": ("bind", socket.AF_INET6),
}
_BIND_PERMIT_SOFT, _BIND_DENY, _BIND_REDIRECT, _BIND_PERMIT_HARD = 0, 1, 2, 3
_SOCK_ADDR_REJECT = 0


@dataclass(frozen=True)
class SockCall:
    """One socket call to decide: `op` (bind, connect, sendmsg), the socket's `family`,
    `sotype` and `protocol`, the `address` (ip, port) it names, and who calls."""

    op: str
    family: int
    sotype: int
    protocol: int
    address: tuple[str, int]
    task: CurrentTask | None = None
    #: The caller's executable path (eBPF for Windows' app id), if known.
    app_id: bytes = b""
    #: The source address of a sendmsg (IP_PKTINFO), if the call gives one.
    msg_src: str | None = None


@dataclass
class Decision:
    """What the programs decided for one call."""

    allow: bool
    #: The address the call goes to (a program may have rewritten `asked`).
    address: tuple[str, int]
    #: The address the call named.
    asked: tuple[str, int]
    #: The verdict of the last program run (the one that denied, if one did).
    verdict: int | None = None
    #: The program that denied the call, or None.
    denied_by: str | None = None
    #: Linux bind: a program lifted the privileged-port check.
    skip_port_check: bool = False
    #: An address a connect program bound the socket to (`bpf_bind`).
    bound: tuple[str, int] | None = None
    #: A send's source address (Linux sendmsg4/6: `msg_src_ip4/6`, which a program
    #: may set): the call's IP_PKTINFO source, or None for the socket's own.
    msg_src: str | None = None
    #: The programs run, in order.
    ran: list[str] = field(default_factory=list)

    @property
    def redirected(self) -> bool:
        """Whether the call is allowed to another address than it named."""
        return self.allow and self.asked != self.address


@dataclass
class HookCounters:
    """What a socket hook decided so far (each way of attaching adds its own counts)."""

    hook: str = ""
    calls: int = 0
    allowed: int = 0
    denied: int = 0
    errors: int = 0
    #: The last `ERRORS_KEPT` errors' messages.
    last_errors: list[str] = field(default_factory=list)

    ERRORS_KEPT: ClassVar[int] = 20

    def keep_error(self, message: str) -> None:
        """Keep `message` among the last errors (the count is the caller's)."""
        self.last_errors = [*self.last_errors, message][-self.ERRORS_KEPT :]

    def as_dict(self) -> dict[str, object]:
        """The counters as a JSON-ready dict."""
        return dict(self.__dict__, last_errors=list(self.last_errors))


def parse_sock_addr(text: str) -> SockCall:
    """`10.0.0.1:80/tcp`, `[2001:db8::1]:53/udp` (protocol tcp by default) as a connect
    call on a socket of the address's family. ValueError naming what is wrong."""
    spec, _, proto = text.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp"):
        raise ValueError(f"{text!r}: protocol {proto!r} is neither tcp nor udp")
    host, sep, port_text = spec.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{text!r}: expected ADDRESS:PORT[/tcp|udp]")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{text!r}: {host!r} is not an IP address") from None
    if not port_text.isdigit() or not 0 <= int(port_text) <= 0xFFFF:
        raise ValueError(f"{text!r}: port {port_text!r} is not a number in 0..65535")
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    sotype = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    protocol = socket.IPPROTO_TCP if proto == "tcp" else socket.IPPROTO_UDP
    return SockCall("connect", family, sotype, protocol, (str(address), int(port_text)))


def packed_address(address: str, family: int) -> bytes:
    """The address's bytes for a socket of `family` (an IPv4 address on an AF_INET6
    socket IPv4-mapped). inet_pton, not ipaddress: this runs for every decided call."""
    try:
        if family == socket.AF_INET:
            return socket.inet_pton(socket.AF_INET, address)
        if ":" in address:
            return socket.inet_pton(socket.AF_INET6, address)
        return _V4_MAPPED + socket.inet_pton(socket.AF_INET, address)
    except OSError:
        raise ValueError(f"{address!r} is not an address of family {family}") from None


def address_text(raw: bytes) -> str:
    """An address's 4 or 16 bytes as text (inet_ntop's: `::ffff:10.0.0.1` when mapped)."""
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


_V4_MAPPED = bytes(10) + b"\xff\xff"


# -- Linux: struct bpf_sock_addr ----------------------------------------------------------


def linux_context(call: SockCall) -> bytes:
    """The 72-byte struct bpf_sock_addr of `call` (addresses and port in network order)."""
    ctx = bytearray(72)
    struct.pack_into("<I", ctx, 0, call.family)
    raw = packed_address(call.address[0], call.family)
    if call.family == socket.AF_INET:
        ctx[4:8] = raw
    else:
        ctx[8:24] = raw
    struct.pack_into("!H", ctx, 24, call.address[1])
    struct.pack_into("<III", ctx, 28, call.family, call.sotype, call.protocol)
    if call.msg_src is not None:
        src = packed_address(call.msg_src, call.family)
        if call.family == socket.AF_INET:
            ctx[40:44] = src
        else:
            ctx[44:60] = src
    return bytes(ctx)


def _linux_address(ctx: bytes, family: int) -> tuple[str, int]:
    raw = ctx[4:8] if family == socket.AF_INET else ctx[8:24]
    return address_text(raw), struct.unpack_from("!H", ctx, 24)[0]


# -- eBPF for Windows: bind_md and its bpf_sock_addr ----------------------------------------


def _windows_family(family: int) -> int:
    return WINDOWS_AF_INET6 if family == socket.AF_INET6 else family


def _windows_sockaddr(address: tuple[str, int], family: int) -> bytes:
    """A 16-byte SOCKADDR: family, port (network order), then the address (IPv6: its
    first 12 bytes after 4 bytes of flow info do not fit; bind_md has 16 bytes)."""
    head = struct.pack("<H", _windows_family(family)) + struct.pack("!H", address[1])
    raw = packed_address(address[0], family)
    body = raw if family == socket.AF_INET else bytes(4) + raw
    return (head + body)[:16].ljust(16, b"\0")


def windows_bind_context(call: SockCall) -> bytes:
    """The 56-byte bind_md of `call` (pointers filled by the run: the app id range)."""
    ctx = bytearray(56)
    pid = call.task.tgid if call.task is not None else 0
    struct.pack_into("<Q", ctx, 16, pid)
    ctx[24:40] = _windows_sockaddr(call.address, call.family)
    ctx[40] = 16 if call.family == socket.AF_INET else 28
    struct.pack_into("<I", ctx, 44, 0)  # BIND_OPERATION_BIND
    ctx[48] = call.protocol & 0xFF
    return bytes(ctx)


def windows_sock_addr_context(call: SockCall) -> bytes:
    """The 64-byte bpf_sock_addr of eBPF for Windows for `call`."""
    ctx = bytearray(64)
    struct.pack_into("<I", ctx, 0, _windows_family(call.family))
    if call.msg_src is not None:
        ctx[4 : 4 + (4 if call.family == socket.AF_INET else 16)] = packed_address(
            call.msg_src, call.family
        )
    raw = packed_address(call.address[0], call.family)
    ctx[24 : 24 + len(raw)] = raw
    struct.pack_into("!H", ctx, 40, call.address[1])
    struct.pack_into("<I", ctx, 44, call.protocol)
    struct.pack_into("<I", ctx, 48, 1)  # the default compartment
    return bytes(ctx)


def _windows_bind_address(ctx: bytes, family: int) -> tuple[str, int]:
    port = struct.unpack_from("!H", ctx, 26)[0]
    if family == socket.AF_INET:
        return address_text(ctx[28:32]), port
    return address_text(ctx[32:40] + bytes(8)), port  # the part of the address that fits


def _windows_sock_addr_address(ctx: bytes, family: int) -> tuple[str, int]:
    size = 4 if family == socket.AF_INET else 16
    return address_text(ctx[24 : 24 + size]), struct.unpack_from("!H", ctx, 40)[0]


# program type -> (the context of a call, the address a context holds after a run)
_CONTEXTS = {
    ProgramType.CGROUP_SOCK_ADDR: (linux_context, _linux_address),
    ProgramType.WINDOWS_BIND: (windows_bind_context, _windows_bind_address),
    ProgramType.WINDOWS_SOCK_ADDR: (windows_sock_addr_context, _windows_sock_addr_address),
}


def context_for(prog_type: ProgramType, call: SockCall) -> bytes:
    """The context a program of `prog_type` gets for `call` (TestRunError if none)."""
    entry = _CONTEXTS.get(ProgramType(prog_type))
    if entry is None:
        raise TestRunError(f"{ProgramType(prog_type).c_name} programs take no socket address")
    return entry[0](call)


def address_in_context(prog_type: ProgramType, ctx: bytes, call: SockCall) -> tuple[str, int]:
    """The address a context of `prog_type` holds after a run (a program may rewrite it)."""
    return _CONTEXTS[ProgramType(prog_type)][1](ctx, call.family)


# -- the hook -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Attached:
    """A program at the hook: the operation and socket family it decides."""

    program: Any
    op: str
    family: int | None  # None: both (Windows' bind)


def placement(program: Any) -> tuple[str, int | None]:
    """(operation, family) a program decides; LoadError for one with no place here."""
    prog_type = program.prog_type
    where = f"program {program.name} (section {program.section})"
    if prog_type == ProgramType.CGROUP_SOCK_ADDR:
        match = program_type_for_section(program.section)
        attach = None if match is None else match.attach_type
        if attach in _LINUX_HOOKS:
            return _LINUX_HOOKS[attach]
        hooks = ", ".join(sorted(a.name.lower() for a in _LINUX_HOOKS))
        raise LoadError(f"{where}: its attach type has no socket hook here ({hooks} do)")
    if prog_type == ProgramType.WINDOWS_BIND:
        return "bind", None
    if prog_type == ProgramType.WINDOWS_SOCK_ADDR:
        kind = windows.section_kind(program.section)
        if kind is not None and kind.prefix in _WINDOWS_HOOKS:
            return _WINDOWS_HOOKS[kind.prefix]
        raise LoadError(
            f"{where}: eBPF for Windows' {kind.prefix if kind else '?'} hook is not run here"
        )
    name = prog_type.name.lower()
    raise LoadError(
        f"{where}: a {name} program cannot decide socket calls"
        " (cgroup/bind4|6, cgroup/connect4|6, cgroup/sendmsg4|6, or eBPF for Windows' bind"
        " and sock_addr programs can)"
    )


class SockAddrHook:
    """Programs deciding socket calls (see the module docstring).

    `decide` may be called from several threads: decisions are serialised,
    since each sets the calling task and socket on the programs' execution
    contexts for its length.
    """

    def __init__(self, programs: Iterable[Any]) -> None:
        self.attached = [_Attached(p, *placement(p)) for p in programs]
        if not self.attached:
            raise LoadError("no socket program to attach")
        self._lock = threading.Lock()
        self._runs: dict[int, _ContextRun] = {}  # id(program) -> its context region
        self._by_call: dict[tuple[str, int], list[Any]] = {}  # (op, family) -> programs
        self._helpers_called: frozenset[int] | None = None  # see may_call

    def close(self) -> None:
        """Give back the context regions the programs ran on (idempotent)."""
        with self._lock:
            for run in self._runs.values():
                run.release()
            self._runs.clear()

    @property
    def wants_app_id(self) -> bool:
        """Whether a program here reads the caller's app id (eBPF for Windows' bind)."""
        return any(a.program.prog_type == ProgramType.WINDOWS_BIND for a in self.attached)

    def may_call(self, *helpers: int) -> bool:
        """Whether a program here may call one of `helpers` (Linux numbers): the
        supervisor reads what only they need (the task's name, the socket's cookies)
        only then. Any eBPF for Windows program, one not linked yet, or one that
        tail-calls (its target is not known here) may call anything."""
        if self._helpers_called is None:
            self._helpers_called = _helpers_called(a.program for a in self.attached)
        return self._helpers_called is _ANY or any(h in self._helpers_called for h in helpers)

    def _context_run(self, program: Any) -> _ContextRun:
        run = self._runs.get(id(program))
        if run is None or run.engine is not program.engine:
            run = self._runs[id(program)] = _ContextRun(program)
        return run

    def programs_for(self, op: str, family: int) -> list[Any]:
        """The programs deciding `op` on a socket of `family`, in attach order."""
        key = (op, family)
        programs = self._by_call.get(key)
        if programs is None:  # asked once per kind of call: every call asks
            programs = self._by_call[key] = [
                a.program
                for a in self.attached
                if a.op == op and (a.family is None or a.family == family)
            ]
        return programs

    def decide(self, call: SockCall, caller: CallerSocket | None = None) -> Decision:
        """Run the programs for `call`; the decision (allowed when no program applies)."""
        decision = Decision(True, call.address, call.address, msg_src=call.msg_src)
        programs = self.programs_for(call.op, call.family)
        if not programs:
            return decision
        with self._lock:
            for program in programs:
                current = call
                if (decision.address, decision.msg_src) != (call.address, call.msg_src):
                    current = replace(call, address=decision.address, msg_src=decision.msg_src)
                if not self._run(program, current, caller, decision):
                    break
        if caller is not None and caller.bound is not None:
            decision.bound = caller.bound
        return decision

    def _run(
        self, program: Any, call: SockCall, caller: CallerSocket | None, decision: Decision
    ) -> bool:
        """Run one program; update `decision`; whether the next one runs."""
        context = program.object.context
        context.set_caller(call.task, caller)
        try:
            verdict, address, msg_src = _RUNNERS[program.prog_type](
                program, self._context_run(program), call
            )
        finally:
            context.set_caller(None, None)
        decision.ran.append(program.name)
        decision.verdict = verdict
        allowed, skip = _verdict(program.prog_type, call.op, verdict)
        if not allowed:
            decision.allow, decision.denied_by = False, program.name
            return False
        decision.address, decision.msg_src = address, msg_src
        decision.skip_port_check |= skip
        return True


_ANY: frozenset[int] = frozenset({-1})  # "any helper": a program whose calls are not known


def _helpers_called(programs: Iterable[Any]) -> frozenset[int]:
    """The helper ids `programs` call (Linux numbering), or `_ANY` (see `may_call`)."""
    called: set[int] = set()
    for program in programs:
        instructions = getattr(program, "instructions", None)
        if program.prog_type != ProgramType.CGROUP_SOCK_ADDR or instructions is None:
            return _ANY
        called.update(i.imm & 0xFFFFFFFF for i in instructions if i.opcode == CALL and i.src == 0)
    return _ANY if HelperId.TAIL_CALL in called else frozenset(called)


def _verdict(prog_type: ProgramType, op: str, verdict: int) -> tuple[bool, bool]:
    """(allowed, privileged-port check lifted) for a program's return value."""
    if prog_type == ProgramType.CGROUP_SOCK_ADDR:
        return bool(verdict & 1), op == "bind" and bool(verdict & BIND_NO_CAP_NET_BIND_SERVICE)
    if prog_type == ProgramType.WINDOWS_BIND:
        return verdict != _BIND_DENY, False
    return verdict != _SOCK_ADDR_REJECT, False


class _ContextRun:
    """Runs of one program on a context region kept for the hook's life (a test run
    allocates and frees one per run: tens of µs a call the hook need not spend)."""

    def __init__(self, program: Any) -> None:
        from ..platform.program_type_info import context_access

        access = context_access(program.prog_type)
        assert access is not None
        self.engine = program.engine
        image = bytes(access.layout.size)
        self.region = self.engine.memory.allocate_context(image, "sock_addr ctx", access, {})
        # JIT: a run slot held on the region, entered directly each call
        opener = getattr(self.engine, "open_native_run", None)
        self.slot = opener(self.region.start) if opener is not None else None

    def release(self) -> None:
        """Give back the run slot and remove the region from the engine's memory."""
        if self.slot is not None:
            self.engine.close_native_run(self.slot)
            self.slot = None
        if self.region is not None:
            self.engine.memory.remove(self.region)
            self.region = None

    def __call__(self, image: bytes) -> tuple[int, bytes]:
        assert self.region is not None, "released"
        self.region.write(0, image)
        if self.slot is not None:
            r0 = self.engine.run_slot(self.slot)
        else:
            r0 = self.engine.run(self.region.start)
        return r0 & 0xFFFF_FFFF, self.region.read()


_Ran = tuple[int, tuple[str, int], str | None]  # verdict, address, a send's source


def _linux_msg_src(ctx: bytes, call: SockCall) -> str | None:
    """msg_src_ip4/6 after a run: a sendmsg's source (None: 0, the socket's own)."""
    if call.op != "sendmsg":
        return call.msg_src
    raw = ctx[40:44] if call.family == socket.AF_INET else ctx[44:60]
    return address_text(raw) if any(raw) else None


def _run_linux(program: Any, run: _ContextRun, call: SockCall) -> _Ran:
    verdict, ctx = run(linux_context(call))
    return verdict, _linux_address(ctx, call.family), _linux_msg_src(ctx, call)


def _run_windows_bind(program: Any, run: _ContextRun, call: SockCall) -> _Ran:
    # bind_md's app id is a data range of its own each call: a test run sets it up
    result = program.test_run(data=call.app_id, ctx=windows_bind_context(call))
    if result.retval != _BIND_REDIRECT:
        return result.retval, call.address, call.msg_src
    return result.retval, _windows_bind_address(result.ctx_out, call.family), call.msg_src


def _run_windows_sock_addr(program: Any, run: _ContextRun, call: SockCall) -> _Ran:
    verdict, ctx = run(windows_sock_addr_context(call))
    return verdict, _windows_sock_addr_address(ctx, call.family), call.msg_src


_RUNNERS = {
    ProgramType.CGROUP_SOCK_ADDR: _run_linux,
    ProgramType.WINDOWS_BIND: _run_windows_bind,
    ProgramType.WINDOWS_SOCK_ADDR: _run_windows_sock_addr,
}
