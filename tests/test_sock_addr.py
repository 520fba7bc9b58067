"""The socket-address hook's decisions (hooks/sock_addr.py): Linux cgroup sock_addr
programs (examples/sock) and eBPF for Windows' bind and sock_addr programs run on
contexts built from calls, in both engines; test runs and `prog run --sock-addr`."""

from __future__ import annotations

import json
import socket
import struct
from pathlib import Path

import pytest

import pybpf
from pybpf.cli.main import main
from pybpf.errors import LoadError
from pybpf.hooks.sock_addr import SockAddrHook, SockCall, linux_context, parse_sock_addr
from pybpf.runtime.sockets import CallerSocket
from pybpf.runtime.task import CurrentTask

ROOT = Path(__file__).resolve().parents[1]
SOCK = ROOT / "examples" / "sock"
WINDOWS = ROOT / "examples" / "windows"
ENGINES = ["jit", "interpreter"]


def endpoint(ip: str, port: int) -> bytes:
    """struct endpoint of examples/sock/policy.h: address and port in network order."""
    return socket.inet_aton(ip) + struct.pack("!H", port) + bytes(2)


def counts(obj) -> list[int]:
    return [int.from_bytes(obj.maps["counts"][struct.pack("<I", v)], "little") for v in range(3)]


def tcp(op: str, ip: str, port: int, task: CurrentTask | None = None) -> SockCall:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    return SockCall(op, family, socket.SOCK_STREAM, socket.IPPROTO_TCP, (ip, port), task)


@pytest.mark.parametrize("engine", ENGINES)
def test_connect4_denies_redirects_and_records(engine):
    with pybpf.load(SOCK / "connect4_policy.o", engine=engine) as obj:
        obj.maps["deny"][endpoint("10.1.1.1", 443)] = b"\x01"
        obj.maps["redirect"][endpoint("10.2.2.2", 80)] = endpoint("127.0.0.1", 8080)
        hook = SockAddrHook(obj.programs.values())
        task = CurrentTask(pid=4243, tgid=4242, uid=1000, gid=1000, comm=b"client")
        cookie = CallerSocket(cookie=0xC00C1E)

        denied = hook.decide(tcp("connect", "10.1.1.1", 443, task), cookie)
        assert (denied.allow, denied.denied_by, denied.verdict) == (False, "connect4_policy", 0)
        moved = hook.decide(tcp("connect", "10.2.2.2", 80, task), cookie)
        assert moved.allow and moved.address == ("127.0.0.1", 8080) and moved.redirected
        plain = hook.decide(tcp("connect", "10.3.3.3", 22, task), cookie)
        assert plain.allow and plain.address == ("10.3.3.3", 22) and not plain.redirected
        # other operations and families have no program here: allowed, nothing run
        assert hook.decide(tcp("bind", "10.1.1.1", 443)).ran == []
        assert hook.decide(tcp("connect", "2001:db8::1", 443)).ran == []

        assert counts(obj) == [1, 1, 1]
        memory = obj.programs["connect4_policy"].engine.memory
        regions = len(memory)
        hook.close()  # the context region the program ran on goes back
        assert len(memory) == regions - 1
        last = obj.maps["last"][struct.pack("<I", 4242)]
        pid_tgid, cookie_seen = struct.unpack_from("<QQ", last)
        assert (pid_tgid, cookie_seen) == (4242 << 32 | 4243, 0xC00C1E)
        assert struct.unpack_from("<I", last, 36)[0] == 1000  # uid
        assert last[16:22] == endpoint("10.3.3.3", 22)[:6]


@pytest.mark.parametrize("engine", ENGINES)
def test_bind4_verdict_bits_and_a_denied_port(engine):
    with pybpf.load(SOCK / "bind4_policy.o", engine=engine) as obj:
        obj.maps["deny"][endpoint("0.0.0.0", 7000)] = b"\x01"
        hook = SockAddrHook(obj.programs.values())
        assert not hook.decide(tcp("bind", "127.0.0.1", 7000)).allow
        privileged = hook.decide(tcp("bind", "0.0.0.0", 80))
        assert privileged.allow and privileged.verdict == 3 and privileged.skip_port_check
        other = hook.decide(tcp("bind", "0.0.0.0", 8000))
        assert other.allow and not other.skip_port_check


@pytest.mark.parametrize("engine", ENGINES)
def test_bpf_bind_binds_the_callers_socket(engine):
    with pybpf.load(SOCK / "connect6_bind.o", engine=engine) as obj:
        hook = SockAddrHook(obj.programs.values())
        assert not hook.decide(tcp("connect", "2001:db8::7", 80)).allow
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:

            def bind(address: tuple[str, int]) -> int:
                try:
                    sock.bind(address)
                except OSError as error:
                    return -error.errno
                return 0

            decision = hook.decide(tcp("connect", "::1", 9), CallerSocket(bind=bind))
            assert decision.allow and decision.bound == ("::1", 0)
            assert sock.getsockname()[0] == "::1"  # bound by the program, before any connect
        result = obj.maps["bind_result"][bytes(4)]
        assert struct.unpack("<q", result)[0] == 0
        # without a socket (a test run) the helper records the address and answers 0
        caller = CallerSocket()
        hook.decide(tcp("connect", "::1", 9), caller)
        assert caller.bound == ("::1", 0)


@pytest.mark.parametrize("engine", ENGINES)
def test_windows_programs_decide_through_the_same_hook(engine):
    with pybpf.load(WINDOWS / "connect_policy.o", engine=engine) as obj:
        obj.maps["blocked"][endpoint("10.1.2.3", 443)] = b"\x01"
        obj.maps["proxy"][bytes(4)] = endpoint("10.9.9.9", 3128)
        hook = SockAddrHook(obj.programs.values())
        assert not hook.decide(tcp("connect", "10.1.2.3", 443)).allow
        moved = hook.decide(tcp("connect", "10.1.2.3", 80))
        assert moved.allow and moved.address == ("10.9.9.9", 3128)
    with pybpf.load(WINDOWS / "bind_limit.o", engine=engine) as obj:
        hook = SockAddrHook(obj.programs.values())
        task = CurrentTask(pid=77, tgid=77)
        call = SockCall(
            "bind", socket.AF_INET, socket.SOCK_STREAM, 6, ("0.0.0.0", 8080), task, b"/bin/srv"
        )
        assert [hook.decide(call).allow for _ in range(3)] == [True, True, False]
        name = obj.maps["app_names"][struct.pack("<Q", 77)]
        assert name.rstrip(b"\0") == b"/bin/srv"  # the app id reached the program


def test_programs_of_other_types_have_no_place_at_the_hook():
    with pybpf.load(ROOT / "examples" / "xdp_counter.o") as obj:
        with pytest.raises(LoadError, match="xdp program cannot decide socket calls"):
            SockAddrHook(obj.programs.values())
    with pytest.raises(LoadError, match="no socket program"):
        SockAddrHook([])


def test_linux_context_layout():
    call = SockCall(
        "sendmsg", socket.AF_INET, socket.SOCK_DGRAM, 17, ("10.0.0.1", 53), msg_src="10.0.0.9"
    )
    ctx = linux_context(call)
    assert struct.unpack_from("<I", ctx, 0)[0] == socket.AF_INET
    assert ctx[4:8] == socket.inet_aton("10.0.0.1")
    assert ctx[24:26] == struct.pack("!H", 53) and ctx[26:28] == bytes(2)
    assert struct.unpack_from("<III", ctx, 28) == (socket.AF_INET, socket.SOCK_DGRAM, 17)
    assert ctx[40:44] == socket.inet_aton("10.0.0.9")
    mapped = linux_context(tcp("connect", "::ffff:10.0.0.1", 80))
    assert mapped[8:24] == socket.inet_pton(socket.AF_INET6, "::ffff:10.0.0.1")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("10.0.0.1", "expected ADDRESS:PORT"),
        ("10.0.0.1:99999", "not a number in 0..65535"),
        ("host:80", "not an IP address"),
        ("10.0.0.1:80/sctp", "neither tcp nor udp"),
    ],
)
def test_parse_sock_addr_errors(text, error):
    with pytest.raises(ValueError, match=error):
        parse_sock_addr(text)
    assert parse_sock_addr("[::1]:53/udp").address == ("::1", 53)


def test_prog_run_sock_addr(capsys):
    assert main(["prog", "run", str(SOCK / "sendmsg4_policy.o"), "--sock-addr", "10.0.0.1:53/udp",
                 "--map", f"redirect={endpoint('0.0.0.0', 53).hex()}:{endpoint('127.0.0.53', 5353).hex()}",
                 "--json"]) == 0  # fmt: skip
    record = json.loads(capsys.readouterr().out)
    assert record["retval"] == 1 and record["address"] == "127.0.0.53:5353"
    assert main(["prog", "run", str(SOCK / "connect4_policy.o"), "--sock-addr", "nope"]) == 2
    assert "--sock-addr 'nope'" in capsys.readouterr().err
    assert (
        main(["prog", "run", str(ROOT / "examples" / "xdp_counter.o"), "--sock-addr", "1.2.3.4:5"])
        == 2
    )
    assert "take no socket address" in capsys.readouterr().err


def test_an_unsupported_context_field_faults_alike_in_both_engines(tmp_path):
    # bpf_sock_addr.sk is a socket pybpf cannot give: the interpreter faulted, the JIT
    # read the context's bytes (0) and went on; both fault now, with one message
    from clang_build import build_object

    source = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("cgroup/connect4")
int reads_sk(struct bpf_sock_addr *ctx) { return ctx->sk != 0; }
char _license[] SEC("license") = "GPL";
"""
    path = build_object(tmp_path, "reads_sk", source)
    messages = []
    for engine in ENGINES:
        with pybpf.load(path, engine=engine) as obj:
            with pytest.raises(pybpf.ProgramFault) as caught:
                obj.programs["reads_sk"].test_run(ctx=linux_context(tcp("connect", "1.2.3.4", 5)))
            messages.append(str(caught.value))
    assert messages[0] == messages[1]
    assert "field sk is not supported by pybpf" in messages[0]


CALLER_SOURCE = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");
static void put(__u32 at, __u64 value) { bpf_map_update_elem(&seen, &at, &value, BPF_ANY); }
SEC("cgroup/connect4")
int who(struct bpf_sock_addr *ctx)
{
	put(0, bpf_get_current_pid_tgid());
	put(1, bpf_get_current_uid_gid());
	put(2, bpf_get_socket_cookie(ctx));
	put(3, bpf_get_netns_cookie(ctx));
	return 1;
}
char _license[] SEC("license") = "GPL";
"""


def _seen(obj) -> list[int]:
    return [int.from_bytes(obj.maps["seen"][struct.pack("<I", i)], "little") for i in range(4)]


@pytest.mark.parametrize("engine", ENGINES)
def test_caller_helpers_answer_the_hooks_caller_then_the_host(engine, tmp_path):
    import os
    import threading

    from clang_build import build_object

    path = build_object(tmp_path, "who", CALLER_SOURCE)
    ctx = linux_context(tcp("connect", "1.2.3.4", 5))
    with pybpf.load(path, engine=engine) as obj:
        program = obj.programs["who"]
        task = CurrentTask(pid=31, tgid=30, uid=1001, gid=1002)
        obj.context.set_caller(task, CallerSocket(cookie=0xC0FFEE, netns_cookie=0x5EED))
        program.test_run(ctx=ctx)
        assert _seen(obj) == [30 << 32 | 31, 1002 << 32 | 1001, 0xC0FFEE, 0x5EED]
        obj.context.current_task = CurrentTask(pid=8, tgid=7)  # the setter keeps both in step
        program.test_run(ctx=ctx)
        assert _seen(obj)[:2] == [7 << 32 | 8, 0]
        obj.context.set_caller(None, None)  # no hook call: the host thread, no socket
        program.test_run(ctx=ctx)
        host = os.getpid() << 32 | threading.get_native_id()
        assert _seen(obj) == [host, os.getgid() << 32 | os.getuid(), 0, 1]


def test_compiled_programs_read_the_caller_record_natively(tmp_path):
    # The record alone changed (flags say set): the JIT's answers are the record's, so
    # no call went to the Python helpers, which still answer from current_task.
    from clang_build import build_object
    from pybpf.runtime.caller import CALLER_SOCKET, CALLER_TASK

    path = build_object(tmp_path, "who", CALLER_SOURCE)
    with pybpf.load(path, engine="jit") as obj:
        obj.context.set_caller(CurrentTask(pid=2, tgid=1), CallerSocket(cookie=3, netns_cookie=4))
        record = obj.context.caller_record
        record.pid_tgid, record.uid_gid, record.socket_cookie, record.netns_cookie = 9, 8, 7, 6
        assert record.flags == CALLER_TASK | CALLER_SOCKET
        obj.programs["who"].test_run(ctx=linux_context(tcp("connect", "1.2.3.4", 5)))
        assert _seen(obj) == [9, 8, 7, 6]


def test_the_hook_knows_which_caller_helpers_its_programs_may_call():
    from pybpf.platform.helper_ids import HelperId

    with pybpf.load(SOCK / "connect4_policy.o") as obj:
        hook = SockAddrHook(obj.programs.values())
        assert hook.may_call(HelperId.GET_SOCKET_COOKIE, HelperId.GET_CURRENT_COMM)
        assert not hook.may_call(HelperId.GET_CURRENT_COMM)  # so the supervisor skips it
        assert not hook.may_call(HelperId.GET_NETNS_COOKIE)
    with pybpf.load(WINDOWS / "connect_policy.o") as obj:  # another numbering: anything
        assert SockAddrHook(obj.programs.values()).may_call(HelperId.GET_CURRENT_COMM)
