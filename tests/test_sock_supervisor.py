"""Socket programs deciding the calls of real processes (hooks/sock.py, the seccomp
supervisor): servers, clients, shells and their children, threads, non-blocking
connects, IPv6, Unix sockets passed through, a policy changed while the command runs,
and this process's own calls through audit hooks. Traffic stays on loopback."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import pybpf
from pybpf.cli.main import main
from pybpf.hooks import seccomp, sock
from pybpf.hooks.sock_supervisor import SockSupervisor, SupervisorError

ROOT = Path(__file__).resolve().parents[1]
SOCK = ROOT / "examples" / "sock"
WINDOWS = ROOT / "examples" / "windows"

pytestmark = pytest.mark.skipif(
    seccomp.unsupported_reason() is not None, reason=str(seccomp.unsupported_reason())
)


def endpoint(ip: str, port: int) -> bytes:
    return socket.inet_aton(ip) + struct.pack("!H", port) + bytes(2)


def counts(obj) -> list[int]:
    return [int.from_bytes(obj.maps["counts"][struct.pack("<I", v)], "little") for v in range(3)]


def python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


class Server:
    """A TCP server on loopback recording what each connection sends (bounded)."""

    def __init__(self, family: int = socket.AF_INET, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        for _ in range(32):
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    self.received.append(conn.recv(200))
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def run(obj, command: list[str], timeout: float = 30) -> tuple[int, str, object]:
    """Run `command` under `obj`'s socket programs; (status, stdout, counters)."""
    link = sock.run(obj, command, stdout=subprocess.PIPE, text=True)
    try:
        status = link.wait(timeout)
        out = link._hook.supervisor.process.stdout.read()
    finally:
        counters = link.close()
    return status, out, counters


CONNECT = """
import socket, sys
for spec in sys.argv[1:]:
    host, port = spec.rsplit(":", 1)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect((host.strip("[]"), int(port)))
        s.sendall(b"from " + spec.encode())
        print("ok", spec, s.getpeername()[1])
    except OSError as e:
        print("err", spec, e.errno)
    s.close()
"""


def test_a_client_is_denied_redirected_and_allowed(server):
    with pybpf.load(SOCK / "connect4_policy.o") as obj:
        obj.maps["deny"][endpoint("127.0.0.1", 9)] = b"\x01"
        obj.maps["redirect"][endpoint("10.99.0.1", 80)] = endpoint("127.0.0.1", server.port)
        status, out, counters = run(
            obj, [*python(CONNECT), "127.0.0.1:9", "10.99.0.1:80", f"127.0.0.1:{server.port}"]
        )
        assert status == 0
        lines = out.splitlines()
        assert lines[0] == "err 127.0.0.1:9 1"  # EPERM, as a cgroup program's denial
        assert lines[1] == f"ok 10.99.0.1:80 {server.port}"  # went to the local server
        assert lines[2] == f"ok 127.0.0.1:{server.port} {server.port}"
        assert counters.denied == 1 and counters.redirected == 1 and counters.allowed == 1
        assert counters.errors == 0
        time.sleep(0.2)
        assert b"from 10.99.0.1:80" in server.received  # the redirected client's data arrived
        assert counts(obj) == [1, 1, 1]  # the program's own record of every decision


BIND = """
import socket, sys
for port in map(int, sys.argv[1:]):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        print("bound", port, s.getsockname()[1] == port)
    except OSError as e:
        print("err", port, e.errno)
    s.close()
"""


def test_a_server_is_denied_the_port_it_may_not_bind():
    with pybpf.load(SOCK / "bind4_policy.o") as obj:
        obj.maps["deny"][endpoint("0.0.0.0", 47001)] = b"\x01"
        status, out, counters = run(obj, [*python(BIND), "47001", "47002"])
        assert status == 0
        assert out.splitlines() == ["err 47001 1", "bound 47002 True"]
        assert counters.denied == 1


@pytest.mark.skipif(
    shutil.which("setpriv") is None or os.geteuid() != 0, reason="needs root and setpriv"
)
def test_privileged_ports_keep_the_kernels_rule_unless_the_program_lifts_it():
    # an unprivileged command: port 80 is let through by the program's verdict bit 1,
    # port 81 is not (EACCES, as from the kernel); the supervisor is root and must not
    # lend its privilege
    with pybpf.load(SOCK / "bind4_policy.o") as obj:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *python(BIND)]
        status, out, _ = run(obj, [*command, "80", "81"])
        assert status == 0
        assert out.splitlines() == ["bound 80 True", "err 81 13"]


def test_a_shell_and_its_children_inherit_the_policy(server):
    with pybpf.load(SOCK / "connect4_policy.o") as obj:
        obj.maps["deny"][endpoint("0.0.0.0", server.port)] = b"\x01"
        script = f"""
            {sys.executable} -c '{CONNECT}' 127.0.0.1:{server.port} &
            wait
            (exec {sys.executable} -c '{CONNECT}' 127.0.0.1:{server.port})
        """
        status, out, counters = run(obj, ["sh", "-c", textwrap.dedent(script)])
        assert status == 0
        assert out.splitlines() == [f"err 127.0.0.1:{server.port} 1"] * 2
        assert counters.denied == 2


def test_a_policy_map_changed_while_the_command_runs(server):
    code = f"""
        import socket, sys, time
        def attempt():
            s = socket.socket(); s.settimeout(5)
            try:
                s.connect(("127.0.0.1", {server.port})); return "ok"
            except OSError as e:
                return "err %d" % e.errno
            finally:
                s.close()
        print(attempt(), flush=True)
        sys.stdin.readline()  # the test changes the policy meanwhile
        print(attempt(), flush=True)
    """
    with pybpf.load(SOCK / "connect4_policy.o") as obj:
        link = sock.run(obj, python(code), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        process = link._hook.supervisor.process
        try:
            assert process.stdout.readline().strip() == "ok"
            obj.maps["deny"][endpoint("127.0.0.1", server.port)] = b"\x01"  # live
            process.stdin.write("go\n")
            process.stdin.flush()
            assert process.stdout.readline().strip() == "err 1"
            assert link.wait(20) == 0
        finally:
            link.close()
        assert counts(obj)[:2] == [1, 1]


def test_threads_nonblocking_connects_ipv6_and_unix_sockets(server, tmp_path):
    v6 = Server(socket.AF_INET6, "::1")
    path = str(tmp_path / "unix.sock")
    code = f"""
        import errno, select, socket, threading
        results = []
        def worker(i):
            s = socket.socket(); s.settimeout(5)
            s.connect(("10.99.0.2", 80)); results.append(s.getpeername()[1]); s.close()
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
        [t.start() for t in threads]; [t.join() for t in threads]
        print("threads", sorted(results) == [{server.port}] * 6)
        s = socket.socket(); s.setblocking(False)
        code = s.connect_ex(("10.99.0.2", 80))
        select.select([], [s], [], 5)
        print("nonblocking", code == errno.EINPROGRESS, s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR), s.getpeername()[1] == {server.port})
        s.close()
        s6 = socket.socket(socket.AF_INET6); s6.settimeout(5)
        s6.connect(("::ffff:127.0.0.1", {server.port}))  # an AF_INET6 socket: connect6's hook
        print("mapped", s6.getpeername()[1] == {server.port}); s6.close()
        s6 = socket.socket(socket.AF_INET6); s6.settimeout(5)
        s6.connect(("::1", {v6.port})); print("v6", s6.getpeername()[1] == {v6.port}); s6.close()
        u = socket.socket(socket.AF_UNIX)
        try: u.connect({path!r})
        except OSError as e: print("unix", e.errno)
    """
    try:
        with pybpf.load(SOCK / "connect4_policy.o") as obj:
            obj.maps["redirect"][endpoint("10.99.0.2", 80)] = endpoint("127.0.0.1", server.port)
            status, out, counters = run(obj, python(code))
    finally:
        v6.close()
    assert status == 0
    assert out.splitlines() == [
        "threads True",
        "nonblocking True 0 True",
        "mapped True",
        "v6 True",
        "unix 2",  # ENOENT from the kernel: a Unix socket goes on untouched
    ]
    assert counters.redirected == 7  # six threads and the non-blocking connect
    assert counters.passed == 3  # two AF_INET6 connects (no connect6 program), the Unix one
    assert counters.errors == 0


def test_an_ebpf_for_windows_bind_program_decides_real_binds():
    code = """
        import socket
        keep = []
        try:
            for n in range(3):
                s = socket.socket(); s.bind(("127.0.0.1", 0)); keep.append(s); print("bound")
        except OSError as e:
            print("err", e.errno)
    """
    with pybpf.load(WINDOWS / "bind_limit.o") as obj:
        status, out, counters = run(obj, python(code))
        assert status == 0
        assert out.splitlines() == ["bound", "bound", "err 1"]  # two binds per process
        exe = os.path.realpath(sys.executable).encode()
        names = [v.rstrip(b"\0") for v in obj.maps["app_names"].values()]
        assert any(exe.startswith(name) and name for name in names)  # the app id: its path


def test_a_command_that_cannot_start_and_programs_of_the_wrong_type(capsys):
    with pybpf.load(SOCK / "connect4_policy.o") as obj:
        with pytest.raises(SupervisorError, match="cannot run '/no/such/command'"):
            sock.run(obj, ["/no/such/command"])
    assert main(["sock", "run", str(SOCK / "connect4_policy.o"), "--", "/no/such/command"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["pybpf: error: cannot run '/no/such/command': No such file or directory"]
    assert main(["sock", "run", str(ROOT / "examples" / "xdp_counter.o"), "--", "true"]) == 2
    assert "no socket-address program" in capsys.readouterr().err
    assert main(["sock", "run", str(SOCK / "connect4_policy.o")]) == 2


def test_the_command_line_passes_the_exit_status_and_reports(capsys):
    obj = str(SOCK / "connect4_policy.o")
    deny = f"deny={endpoint('127.0.0.1', 9).hex()}:01"
    code = "import socket,sys\ntry: socket.create_connection(('127.0.0.1', 9), 5)\nexcept OSError as e: sys.exit(e.errno)"
    assert main(["sock", "run", obj, "--map", deny, "--", sys.executable, "-c", code]) == 1
    err = capsys.readouterr().err
    assert "1 socket calls: 0 allowed, 0 redirected, 1 denied" in err
    assert "map counts (array)" in err


def test_ctrl_c_ends_the_command_and_the_supervisor(tmp_path):
    marker = tmp_path / "started"
    code = f"import pathlib, time; pathlib.Path({str(marker)!r}).touch(); time.sleep(60)"
    cli = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pybpf.cli.main import main; sys.exit(main())",
         "sock", "run", str(SOCK / "connect4_policy.o"), "--", sys.executable, "-c", code],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists()
    cli.send_signal(signal.SIGINT)
    _, err = cli.communicate(timeout=20)
    assert cli.returncode == 130
    assert "Traceback" not in err and "interrupted" in err


def test_this_process_through_audit_hooks(server):
    with pybpf.load(SOCK / "connect4_policy.o") as obj:
        obj.maps["deny"][endpoint("127.0.0.1", 9)] = b"\x01"
        obj.maps["redirect"][endpoint("127.0.0.1", 10)] = endpoint("127.0.0.1", server.port)
        with obj.programs["connect4_policy"].attach_sock_addr() as link:
            with pytest.raises(PermissionError, match="denied by connect4_policy"):
                socket.create_connection(("127.0.0.1", 9), 5)
            with pytest.raises(PermissionError, match="audit hooks cannot rewrite"):
                socket.create_connection(("127.0.0.1", 10), 5)
            socket.create_connection(("127.0.0.1", server.port), 5).close()
            stats = link.counters()
            assert (stats.denied, stats.rewrites_refused, stats.allowed) == (1, 1, 1)
        # detached: the same call reaches the kernel (refused there: nothing listens on 9)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", 9), 5)


def test_a_tcp_fast_open_send_is_decided_as_a_connect(server):
    # sendto(MSG_FASTOPEN) on a TCP socket connects: the connect programs decide it, as
    # the kernel's pre_connect hook does (passing it untouched would bypass the policy)
    code = f"""
        import socket
        for port in (9, {server.port}):
            s = socket.socket()
            try:
                s.sendto(b"tfo", socket.MSG_FASTOPEN, ("127.0.0.1", port)); print("sent", port)
            except OSError as e:
                print("err", port, e.errno)
            s.close()
    """
    with pybpf.load(SOCK / "connect4_policy.o") as obj:
        obj.maps["deny"][endpoint("127.0.0.1", 9)] = b"\x01"
        status, out, counters = run(obj, python(code))
    assert status == 0
    assert out.splitlines() == ["err 9 1", f"sent {server.port}"]
    assert (counters.denied, counters.allowed) == (1, 1)


def test_callers_that_die_mid_call_leave_the_supervisor_serving(server):
    # children killed while their connects are being decided: the supervisor meets
    # dead callers (ENOENT, a vanished pid) and goes on; the last connect is decided
    code = f"""
        import os, signal, socket
        for _ in range(30):
            pid = os.fork()
            if pid == 0:
                s = socket.socket()
                try: s.connect(("127.0.0.1", {server.port}))
                except OSError: pass
                os._exit(0)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        s = socket.socket(); s.settimeout(5); s.connect(("127.0.0.1", {server.port}))
        print("alive")
    """
    with pybpf.load(SOCK / "connect4_policy.o") as obj:
        status, out, counters = run(obj, python(code))
    assert (status, out.strip()) == (0, "alive")
    assert counters.errors == 0
    assert counters.allowed >= 1


_FAULTING = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("cgroup/connect4")
int reads_sk(struct bpf_sock_addr *ctx)
{
	return ctx->sk != 0;  /* the kernel allows the read; pybpf has no socket to give */
}
char _license[] SEC("license") = "GPL";
"""
_OUT_OF_RANGE = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("cgroup/connect4")
int returns_two(struct bpf_sock_addr *ctx) { return 2; }
char _license[] SEC("license") = "GPL";
"""


def test_a_program_fault_denies_is_counted_and_serving_goes_on(tmp_path, capfd):
    from clang_build import build_object

    path = build_object(tmp_path, "reads_sk", _FAULTING)
    code = "import socket\nfor _ in range(2):\n    try: socket.create_connection(('127.0.0.1', 9), 5)\n    except OSError as e: print(e.errno)"
    assert main(["sock", "run", str(path), "--", sys.executable, "-c", code]) == 0
    out, err = capfd.readouterr()
    assert out.split() == ["1", "1"]  # both denied with EPERM, the second still served
    assert "2 errors" in err and "connect of" in err and "sk is not supported" in err


def test_a_program_returning_outside_its_range_is_refused_at_load(tmp_path, capsys):
    from clang_build import build_object

    path = build_object(tmp_path, "returns_two", _OUT_OF_RANGE)
    assert main(["sock", "run", str(path), "--", "true"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "returns_two" in err[0] and "R0" in err[0]


def test_a_kernel_without_user_notification_is_named(monkeypatch):
    monkeypatch.setattr(seccomp.platform, "release", lambda: "4.19.0-old")
    reason = seccomp.unsupported_reason()
    assert reason == (
        "seccomp user notification with pidfd_getfd needs Linux 5.6 or newer;"
        " this kernel is 4.19.0-old"
    )
    with pytest.raises(SupervisorError, match="needs Linux 5.6"):
        SockSupervisor(None)


SENDMMSG = """
import ctypes, socket, struct
libc = ctypes.CDLL(None, use_errno=True)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

def batch(destinations):
    keep, headers = [], bytearray()
    for i, (host, port) in enumerate(destinations):
        name = ctypes.create_string_buffer(struct.pack("<H", socket.AF_INET) + struct.pack("!H", port) + socket.inet_aton(host) + bytes(8))
        payload = ctypes.create_string_buffer(b"m%d" % i, 2)
        iov = ctypes.create_string_buffer(struct.pack("<QQ", ctypes.addressof(payload), 2))
        keep += [name, payload, iov]
        headers += struct.pack("<QI4xQQQQi4x", ctypes.addressof(name), 16, ctypes.addressof(iov), 1, 0, 0, 0) + bytes(8)
    vector = ctypes.create_string_buffer(bytes(headers), len(headers))
    sent = libc.sendmmsg(s.fileno(), vector, len(destinations), 0)
    lens = [struct.unpack_from("<I", vector.raw, 64 * i + 56)[0] for i in range(len(destinations))]
    return sent, ctypes.get_errno() if sent < 0 else 0, lens

print(*batch([("10.99.0.3", 53), ("127.0.0.1", {port}), ("127.0.0.1", 9)]))
print(*batch([("127.0.0.1", 9), ("127.0.0.1", {port})]))
# an x32 connect: another ABI the supervisor cannot decide, refused by the filter
print("x32", libc.syscall(0x40000000 | 42, s.fileno(), 0, 0), ctypes.get_errno())
"""


def test_sendmmsg_is_decided_message_by_message_and_other_abis_are_refused():
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    port = receiver.getsockname()[1]
    try:
        with pybpf.load(SOCK / "sendmsg4_policy.o") as obj:
            obj.maps["deny"][endpoint("127.0.0.1", 9)] = b"\x01"
            obj.maps["redirect"][endpoint("10.99.0.3", 53)] = endpoint("127.0.0.1", port)
            status, out, counters = run(obj, python(SENDMMSG.replace("{port}", str(port))))
        got = sorted(receiver.recvfrom(10)[0] for _ in range(2))
    finally:
        receiver.close()
    assert status == 0
    lines = out.splitlines()
    # the third message is denied: two sent, their lengths written back
    assert lines[0] == "2 0 [2, 2, 0]"
    # the first message denied: the call fails with EPERM, nothing sent
    assert lines[1] == "-1 1 [0, 0]"
    assert lines[2] == "x32 -1 1"  # EPERM from the filter (without it: ENOSYS)
    assert got == [b"m0", b"m1"]  # the redirected one and the allowed one arrived
    assert counters.errors == 0


@pytest.mark.parametrize("pidfd_info", [None, False])  # the kernel's way where it has it; /proc
def test_callers_ids_and_sockets_of_a_thread_and_a_gone_one(pidfd_info):
    import threading

    from pybpf.hooks.sock_supervisor import _Callers

    callers = _Callers(keep=2)
    callers.pidfd_info = pidfd_info
    callers.want_comm = True
    started, finish, seen = threading.Event(), threading.Event(), []
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def thread() -> None:
        seen.append(threading.get_native_id())
        started.set()
        finish.wait(10)

    worker = threading.Thread(target=thread, name="caller-test")
    worker.start()
    try:
        started.wait(10)
        tid = seen[0]
        task = callers.task(tid)
        assert (task.pid, task.tgid, task.uid, task.gid) == (
            tid,
            os.getpid(),
            os.getuid(),
            os.getgid(),
        )
        with open(f"/proc/self/task/{tid}/comm", "rb") as file:
            assert task.comm == file.read().strip()[:15] and task.comm
        copy = callers.socket_fd(task, sock.fileno())
        try:
            assert os.path.samestat(os.fstat(copy), os.fstat(sock.fileno()))
        finally:
            os.close(copy)
        callers.task(os.getpid())
        assert len(callers._threads) == 2
        assert callers.task(threading.get_native_id()).tgid == os.getpid()
        assert len(callers._threads) == 2  # at most `keep`: the oldest closed
        callers.task(tid)
    finally:
        finish.set()
        worker.join()
        sock.close()
    deadline = time.monotonic() + 10  # join() returns before the thread has quite exited
    while os.path.exists(f"/proc/self/task/{tid}") and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(OSError):  # the thread is gone: no answer from the fd kept for it
        callers.task(tid)
    callers.close()
