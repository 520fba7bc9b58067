"""Native answers about the caller of a hooked call, for JIT-compiled programs.

`bpf_get_current_pid_tgid`, `bpf_get_current_uid_gid`, `bpf_get_socket_cookie`
and `bpf_get_netns_cookie` load from the execution context's
`runtime.caller.CallerRecord` (`RunState.caller`) when its flags say a hook
set the task or the socket; otherwise (no hook deciding a call, no
execution context) they call the Python helper, which answers from
`ExecutionContext.task()` / `caller_socket` as the interpreter does. A
socket hook's decision thus calls no Python for them.
"""

from __future__ import annotations

from collections.abc import Callable

from llvmlite import ir

from ...platform.helper_ids import HelperId
from ...runtime.caller import CALLER_SOCKET, CALLER_TASK, INIT_NET_COOKIE, CallerRecord
from ...runtime.native.irblocks import I64, i64, load_field
from .native_site import native_or_fallback, run_field


def _record_flags(site: object, name: str) -> tuple[ir.Value, ir.Value]:
    """(the run's record address, its flags; 0 when the run has no record)."""
    b: ir.IRBuilder = site.builder  # type: ignore[attr-defined]
    record = run_field(site, "caller")
    start = b.block
    check = b.append_basic_block(f"{name}.record")
    done = b.append_basic_block(f"{name}.flags")
    b.cbranch(b.icmp_unsigned("!=", record, i64(0)), check, done)
    b.position_at_end(check)
    flags = load_field(b, CallerRecord, record, "flags")
    b.branch(done)
    b.position_at_end(done)
    merged = b.phi(I64, f"{name}.flags")
    merged.add_incoming(i64(0), start)
    merged.add_incoming(flags, check)
    return record, merged


def _from_record(
    helper_id: int, flag: int, name: str, value: Callable[[object, ir.Value], ir.Value]
):
    """An emitter: `value(site, record)` when the record's flags hold `flag`, else the
    Python helper."""

    def emit(site: object) -> ir.Value:
        b: ir.IRBuilder = site.builder  # type: ignore[attr-defined]
        record, flags = _record_flags(site, name)
        use_native = b.icmp_unsigned("!=", b.and_(flags, i64(flag)), i64(0))
        return native_or_fallback(site, use_native, lambda: value(site, record), helper_id, name)

    emit.__doc__ = f"{name} from the caller record when a hook set it, else the Python helper."
    return emit


def _field(name: str) -> Callable[[object, ir.Value], ir.Value]:
    return lambda site, record: load_field(site.builder, CallerRecord, record, name)  # type: ignore[attr-defined]


def _netns_cookie(site: object, record: ir.Value) -> ir.Value:
    """The socket's namespace cookie; init_net's for a NULL context, as the helper."""
    b: ir.IRBuilder = site.builder  # type: ignore[attr-defined]
    cookie = load_field(b, CallerRecord, record, "netns_cookie")
    null_ctx = b.icmp_unsigned("==", site.args[0], i64(0))  # type: ignore[attr-defined]
    return b.select(null_ctx, i64(INIT_NET_COOKIE), cookie)


EMITTERS = {
    HelperId.GET_CURRENT_PID_TGID: _from_record(
        HelperId.GET_CURRENT_PID_TGID, CALLER_TASK, "pid_tgid", _field("pid_tgid")
    ),
    HelperId.GET_CURRENT_UID_GID: _from_record(
        HelperId.GET_CURRENT_UID_GID, CALLER_TASK, "uid_gid", _field("uid_gid")
    ),
    HelperId.GET_SOCKET_COOKIE: _from_record(
        HelperId.GET_SOCKET_COOKIE, CALLER_SOCKET, "socket_cookie", _field("socket_cookie")
    ),
    HelperId.GET_NETNS_COOKIE: _from_record(
        HelperId.GET_NETNS_COOKIE, CALLER_SOCKET, "netns_cookie", _netns_cookie
    ),
}
"""Helper id → emitter, for `helpers_ir` to register."""
