"""pybpfd: a real daemon process, real clients (this process and others), real sockets."""

from __future__ import annotations

import errno
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

import pybpf
from daemon_process import running_daemon
from pybpf.errors import LoadError, MapError
from pybpf.service import ServiceError
from pybpf.service.wire import MAX_MESSAGE

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
COUNTER = EXAMPLES / "xdp_counter.o"
UDP = bytes(12) + b"\x08\x00" + bytes([0x45] + [0] * 8 + [17] + [0] * 10) + bytes(8)


@pytest.fixture
def daemon(tmp_path):
    """A daemon process on a socket of its own."""
    with running_daemon(tmp_path / "run" / "pybpfd.sock") as path:
        yield path


def u32(i: int) -> bytes:
    return struct.pack("<I", i)


def u64(i: int) -> bytes:
    return struct.pack("<Q", i)


def test_socket_is_private_and_ids_grow_as_the_kernel_hands_them_out(daemon):
    assert (daemon.stat().st_mode & 0o777) == 0o600
    assert (daemon.parent.stat().st_mode & 0o777) == 0o700
    with pybpf.connect(daemon) as client:
        first = client.load(COUNTER)
        second = client.load(COUNTER)
        ids = [p["id"] for p in client.programs()]
        assert ids == [first.programs["xdp_count"].id, second.programs["xdp_count"].id] == [1, 2]
        map_ids = sorted(m["id"] for m in client.maps())
        assert map_ids == list(range(1, len(map_ids) + 1))
        first.close()
        assert [p["id"] for p in client.programs()] == [2]
        third = client.load(COUNTER)
        assert third.programs["xdp_count"].id == 3  # never reused


def test_a_client_maps_the_daemons_map_and_shares_its_entries_with_the_program(daemon):
    with pybpf.connect(daemon) as client:
        obj = client.load(COUNTER)
        prog = obj.programs["xdp_count"]
        counts = obj.maps["proto_count"]
        assert isinstance(counts, pybpf.Map)  # native code over the shared region
        assert prog.test_run(UDP).retval == 2  # XDP_PASS
        assert counts[u32(17)] == u64(1)
        counts[u32(17)] = u64(40)  # written here, seen by the program in the daemon
        prog.test_run(UDP)
        assert counts[u32(17)] == u64(41)


COUNT_IN_CHILD = textwrap.dedent(
    """
    import struct, sys
    import pybpf
    socket_path, runs, first = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    client = pybpf.connect(socket_path)
    prog = client.program(pinned="/sys/fs/bpf/count_prog")
    counts = client.map(pinned="/sys/fs/bpf/counts")
    udp = bytes(12) + b"\\x08\\x00" + bytes([0x45] + [0] * 8 + [17] + [0] * 10) + bytes(8)
    for _ in range(runs):
        prog.test_run(udp)
    for key in range(first, first + 20):  # distinct keys, inserted through the shared region
        counts[struct.pack("<I", key)] = struct.pack("<Q", key)
    print("done")
    """
)


def test_eight_client_processes_at_once_lose_no_update(daemon):
    with pybpf.connect(daemon) as client:
        obj = client.load(COUNTER)
        obj.programs["xdp_count"].pin("/sys/fs/bpf/count_prog")
        client.pin(obj.maps["proto_count"], "/sys/fs/bpf/counts")
        runs = 25
        children = [
            subprocess.Popen(
                [sys.executable, "-c", COUNT_IN_CHILD, str(daemon), str(runs), str(1000 + 20 * n)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in range(8)
        ]
        for child in children:
            out, err = child.communicate(timeout=300)
            assert child.returncode == 0, err
            assert out.strip() == "done"
        counts = client.map(pinned="/sys/fs/bpf/counts")
        assert counts[u32(17)] == u64(8 * runs)
        for key in range(1000, 1000 + 8 * 20):
            assert counts[u32(key)] == u64(key)


def test_objects_live_while_held_or_pinned(daemon):
    with pybpf.connect(daemon) as owner:
        obj = owner.load(COUNTER)
        obj.pin("/sys/fs/bpf/kept")
        owner.load(COUNTER)  # held by this connection only
    with pybpf.connect(daemon) as other:
        deadline = time.monotonic() + 10
        while other.status()["objects"] != 1 and time.monotonic() < deadline:
            time.sleep(0.02)  # the first connection's release runs on the daemon's side
        assert other.status()["objects"] == 1
        assert other.pins() == [{"path": "/sys/fs/bpf/kept", "kind": "obj", "id": obj.id}]
        other.unpin("/sys/fs/bpf/kept")
        assert other.status()["objects"] == 0
        assert other.programs() == []


def test_pins_are_checked(daemon):
    with pybpf.connect(daemon) as client:
        obj = client.load(COUNTER)
        for path, code in (("relative/path", errno.EINVAL), ("/sys/fs/bpf/../..", errno.EINVAL)):
            with pytest.raises(ServiceError) as caught:
                client.pin(obj, path)
            assert caught.value.errno == code
        obj.pin("/sys/fs/bpf/a")
        with pytest.raises(ServiceError) as caught:
            obj.pin("/sys/fs/bpf/a")
        assert caught.value.errno == errno.EEXIST
        with pytest.raises(ServiceError) as caught:
            client.map(pinned="/sys/fs/bpf/a")  # an object, not a map
        assert caught.value.errno == errno.EINVAL
        with pytest.raises(ServiceError) as caught:
            client.unpin("/sys/fs/bpf/nothing")
        assert caught.value.errno == errno.ENOENT


def test_a_map_read_only_for_other_clients(daemon):
    with pybpf.connect(daemon) as owner, pybpf.connect(daemon) as other:
        mine = owner.create_map("ro", "hash", 4, 8, 16)
        mine[u32(1)] = u64(5)
        owner.call("map.read_only", id=mine.id)
        theirs = other.map(mine.id)
        assert theirs[u32(1)] == u64(5)
        with pytest.raises(MapError) as caught:
            theirs[u32(2)] = u64(6)
        assert caught.value.errno == errno.EPERM
        with pytest.raises(ServiceError) as caught:
            other.call("map.update", id=mine.id, key=u32(2).hex(), value=u64(6).hex())
        assert caught.value.errno == errno.EPERM
        with pytest.raises(ServiceError) as caught:
            other.call("map.read_only", id=mine.id)  # only its owner decides
        assert caught.value.errno == errno.EPERM
        mine[u32(2)] = u64(7)  # the owner still writes
        assert theirs[u32(2)] == u64(7)
        assert sorted(theirs) == [u32(1), u32(2)]


def test_families_kept_in_the_daemon_are_served_by_requests(daemon):
    with pybpf.connect(daemon) as client:
        prog_array = client.create_map("jumps", "prog_array", 4, 4, 4)
        assert isinstance(prog_array, pybpf.service.RemoteMap)
        assert prog_array.lookup(u32(0)) is None
        with pytest.raises(MapError) as caught:
            prog_array.update(u32(0), u32(12345))  # no such program
        assert caught.value.errno in (errno.EBADF, errno.EINVAL, errno.ENOENT)


def raw(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(path))
    sock.settimeout(10)
    return sock


def reply(sock: socket.socket) -> dict:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return json.loads(data)


@pytest.mark.parametrize(
    "line, code",
    [
        (b'{"op": "no.such"}\n', errno.EOPNOTSUPP),
        (b'{"op": "map.show"}\n', errno.EINVAL),  # missing id
        (b'{"op": "map.show", "id": "1"}\n', errno.EINVAL),  # wrong type
        (b'{"op": "map.show", "id": 0}\n', errno.ENOENT),
        (b'{"op": "map.lookup", "id": 1, "key": "zz"}\n', errno.EINVAL),
        (b'{"op": "map.show", "id": 1, "extra": 1}\n', errno.EINVAL),
        (
            b'{"op": "map.create", "name": "x", "type": "nope", "key_size": 4,'
            b' "value_size": 4, "max_entries": 1}\n',
            errno.EINVAL,
        ),
        (
            b'{"op": "map.create", "name": "x", "type": "hash", "key_size": 0,'
            b' "value_size": 4, "max_entries": 1}\n',
            errno.EINVAL,
        ),
        (b"[1, 2]\n", errno.EPROTO),
        (b"not json\n", errno.EPROTO),
    ],
)
def test_bad_requests_get_an_error_and_change_nothing(daemon, line, code):
    with pybpf.connect(daemon) as client:
        before = client.status()
        sock = raw(daemon)
        sock.sendall(line)
        answer = reply(sock)
        sock.close()
        assert answer["ok"] is False and answer["errno"] == code, answer
        after = client.status()
        assert {k: before[k] for k in ("objects", "programs", "maps", "pins")} == {
            k: after[k] for k in ("objects", "programs", "maps", "pins")
        }


def test_an_over_long_message_is_refused_and_the_daemon_serves_on(daemon):
    sock = raw(daemon)
    try:
        sock.sendall(b"x" * (MAX_MESSAGE + 10))
    except OSError:
        pass  # the daemon may close before taking it all
    answer = reply(sock)
    assert answer["errno"] == errno.EPROTO
    sock.close()
    with pybpf.connect(daemon) as client:
        assert client.status()["objects"] == 0


KILLED_MID_REQUEST = textwrap.dedent(
    """
    import os, signal, socket, sys, pybpf
    client = pybpf.connect(sys.argv[1])
    client.load(sys.argv[2])   # held by this connection
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.connect(sys.argv[1])
    raw.sendall(b'{"op": "obj.load", "path": "')   # half a request
    print("ready", flush=True)
    signal.pause()
    """
)


def test_a_client_killed_mid_request_leaves_nothing_behind(daemon):
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_MID_REQUEST, str(daemon), str(COUNTER)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().strip() == "ready"
    with pybpf.connect(daemon) as client:
        assert client.status()["objects"] == 1
        child.kill()
        child.wait(timeout=10)
        deadline = time.monotonic() + 10
        while client.status()["objects"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert client.status()["objects"] == 0
        assert client.load(COUNTER).programs["xdp_count"].test_run(UDP).retval == 2


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another user")
def test_another_user_is_refused_even_when_the_socket_is_open_to_all():
    # Under /tmp, not pytest's private directories, so that another user can reach it.
    with tempfile.TemporaryDirectory(prefix="pybpfd-") as top:
        os.chmod(top, 0o755)
        with running_daemon(Path(top) / "run" / "pybpfd.sock") as path:
            os.chmod(path.parent, 0o755)
            os.chmod(path, 0o666)  # only the peer-credential check is left
            answer = _status_as_nobody(path)
    assert answer["ok"] is False and answer["errno"] == errno.EACCES
    assert "may not connect" in answer["error"]


def _status_as_nobody(daemon: Path) -> dict:
    script = textwrap.dedent(
        f"""
        import json, os, socket
        os.setgid(65534); os.setuid(65534)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect({str(daemon)!r})
        # The refusal comes at once, before any request (sending one could meet EPIPE).
        print(s.recv(4096).decode().strip())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_loading_through_the_daemon_reports_what_the_library_does(daemon, tmp_path):
    broken = tmp_path / "broken.o"
    broken.write_bytes(b"\x7fELF not really")
    with pybpf.connect(daemon) as client:
        with pytest.raises(LoadError):
            client.load(broken)
        with pytest.raises(pybpf.VerifierError):
            client.load(EXAMPLES / "unsafe" / "map_value_nullcheck.o")
        assert client.status()["objects"] == 0


def test_cli_starts_reports_and_stops_a_daemon(tmp_path):
    def pybpf_cli(*args: str) -> subprocess.CompletedProcess:
        return run_cli(tmp_path / "rt", *args, timeout=60)

    assert pybpf_cli("daemon", "status").returncode == 1
    bogus = pybpf_cli("daemon", "start", "--verifier", "bogus")
    assert bogus.returncode == 2 and "expected worker or in-process" in bogus.stderr
    started = pybpf_cli("daemon", "start", "--verifier-memory", str(1 << 30))
    assert started.returncode == 0, started.stderr
    try:
        assert pybpf_cli("daemon", "start").returncode == 1  # one per user
        status = pybpf_cli("daemon", "status", "--json")
        assert status.returncode == 0
        assert json.loads(status.stdout)["objects"] == 0
        assert json.loads(status.stdout)["verifier"]["memory"] == 1 << 30
    finally:
        stopped = pybpf_cli("daemon", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert pybpf_cli("daemon", "status").returncode == 1


def test_rodata_of_a_loaded_object_is_read_only_for_clients(daemon):
    with pybpf.connect(daemon) as client:
        obj = client.load(COUNTER)
        rodata = obj.maps[".rodata"]
        with pytest.raises(MapError) as caught:
            rodata[u32(0)] = bytes(rodata.spec.value_size)
        assert caught.value.errno == errno.EPERM
        assert client.call("map.show", id=rodata.id)["frozen"] is True


def cli(daemon: Path, *args: str) -> subprocess.CompletedProcess:
    """`pybpf ARGS` as a user types it, talking to the test's daemon."""
    return run_cli(daemon.parent, *args)


def run_cli(runtime: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`pybpf ARGS` in a process of its own, with `runtime` as its runtime directory."""
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pybpf.cli.main import main; sys.exit(main())",
            *args,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYBPF_RUNTIME_DIR": str(runtime)},
        timeout=timeout,
    )


def test_bpftool_shaped_commands_on_what_the_daemon_holds(daemon):
    loaded = cli(daemon, "prog", "load", str(COUNTER), "/sys/fs/bpf/cnt", "--json")
    assert loaded.returncode == 0, loaded.stderr
    prog_id = json.loads(loaded.stdout)["id"]
    shown = json.loads(cli(daemon, "prog", "show", "pinned", "/sys/fs/bpf/cnt", "--json").stdout)
    assert [p["id"] for p in shown] == [prog_id] and shown[0]["type"] == "xdp"
    created = cli(
        daemon,
        "map",
        "create",
        "/sys/fs/bpf/m",
        "type",
        "hash",
        "key",
        "4",
        "value",
        "8",
        "entries",
        "16",
        "name",
        "m",
        "--json",
    )
    assert created.returncode == 0, created.stderr
    map_id = json.loads(created.stdout)["id"]
    assert (
        cli(
            daemon,
            "map",
            "update",
            "pinned",
            "/sys/fs/bpf/m",
            "key",
            "7",
            "0",
            "0",
            "0",
            "value",
            "hex",
            "2a",
            "00",
            "00",
            "00",
            "00",
            "00",
            "00",
            "00",
        ).returncode
        == 0
    )
    looked = cli(
        daemon, "map", "lookup", "id", str(map_id), "key", "hex", "07", "00", "00", "00", "--json"
    )
    assert json.loads(looked.stdout) == {"key": "07000000", "value": "2a00000000000000"}
    # What the CLI wrote is in the map this process maps.
    with pybpf.connect(daemon) as client:
        assert client.map(pinned="/sys/fs/bpf/m")[u32(7)] == u64(42)
    dumped = json.loads(cli(daemon, "map", "dump", "name", "m", "--json").stdout)
    assert dumped["entries"] == [{"key": "07000000", "value": "2a00000000000000"}]
    missing = cli(daemon, "map", "lookup", "id", str(map_id), "key", "1", "0", "0", "0")
    assert missing.returncode == 1 and "not found" in missing.stderr
    short = cli(daemon, "map", "update", "id", str(map_id), "key", "1", "0", "value", "1")
    assert short.returncode == 2 and "key: expected 4 bytes" in short.stderr
    assert "Traceback" not in missing.stderr + short.stderr
    assert cli(daemon, "prog", "unload", "pinned", "/sys/fs/bpf/cnt").returncode == 0
    assert json.loads(cli(daemon, "prog", "list", "--json").stdout) == []


def rss_kib(pid: int) -> int:
    """Resident memory of process `pid`, KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1])


@pytest.mark.slow
def test_a_thousand_load_run_unload_cycles_keep_memory_steady(daemon):
    """Each cycle loads the object (verified in the worker), runs it, maps a map, closes."""
    with pybpf.connect(daemon) as client:
        pid = client.status()["pid"]
        samples = {}
        for cycle in range(1, 1001):
            obj = client.load(COUNTER)
            assert obj.programs["xdp_count"].test_run(UDP).retval == 2
            assert obj.maps["proto_count"][u32(17)] == u64(1)  # a fresh map every time
            obj.close()
            if cycle in (200, 1000):
                samples[cycle] = (rss_kib(pid), rss_kib(os.getpid()))
        status = client.status()
        assert (status["objects"], status["programs"], status["maps"]) == (0, 0, 0)
    (daemon_200, client_200), (daemon_1000, client_1000) = samples[200], samples[1000]
    assert daemon_1000 - daemon_200 < 8 * 1024, samples  # KiB: no growth with the cycles
    assert client_1000 - client_200 < 8 * 1024, samples


def test_a_map_from_the_daemon_pins_in_the_daemon(daemon):
    with pybpf.connect(daemon) as client:
        m = client.create_map("m", "array", 4, 8, 2)
        m.pin("/sys/fs/bpf/from-client")
        assert client.pins() == [{"path": "/sys/fs/bpf/from-client", "kind": "map", "id": m.id}]
    assert "/sys/fs/bpf/from-client" not in pybpf.pins.pins()  # not this process's namespace


EVENTS = EXAMPLES / "xdp_events.o"


def test_a_ring_buffer_is_consumed_from_another_process(daemon):
    with pybpf.connect(daemon) as client:
        obj = client.load(EVENTS)
        ring = obj.maps["events"]
        assert ring.spec.type_name == "ringbuf"
        prog = next(iter(obj.programs.values()))
        for _ in range(3):
            prog.test_run(UDP)  # the program in the daemon produces
        seen: list[bytes] = []
        assert ring.consume(seen.append) == 3  # this process consumes, kernel protocol
        assert ring.consumer_pos == ring.producer_pos
        assert len(set(map(len, seen))) == 1


def test_prog_dump_run_and_queue_commands_on_loaded_programs(daemon, tmp_path):
    assert cli(daemon, "prog", "load", str(COUNTER), "/sys/fs/bpf/c").returncode == 0
    dump = cli(daemon, "prog", "dump", "xlated", "pinned", "/sys/fs/bpf/c", "linum")
    assert dump.returncode == 0, dump.stderr
    assert "<xdp_count>:" in dump.stdout
    assert "xdp_counter.c:" in dump.stdout  # source lines with file:line:column
    packet = tmp_path / "udp.bin"
    packet.write_bytes(UDP)
    out = tmp_path / "out.bin"
    ran = cli(
        daemon,
        "prog",
        "run",
        "pinned",
        "/sys/fs/bpf/c",
        "data_in",
        str(packet),
        "data_out",
        str(out),
        "repeat",
        "3",
        "--json",
    )
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["retval"] == 2
    assert out.read_bytes() == UDP
    with pybpf.connect(daemon) as client:  # three runs counted in the daemon's map
        counts = [m for m in client.maps() if m["name"] == "proto_count"][0]
        assert client.map(counts["id"])[u32(17)] == u64(3)
    typed = cli(
        daemon, "map", "lookup", "name", "proto_count", "key", "17", "0", "0", "0", "--json"
    )
    assert json.loads(typed.stdout)["formatted"] == {"key": 17, "value": 3}  # through BTF
    assert (
        cli(
            daemon,
            "map",
            "create",
            "/sys/fs/bpf/q",
            "type",
            "queue",
            "key",
            "0",
            "value",
            "4",
            "entries",
            "2",
            "name",
            "q",
        ).returncode
        == 0
    )
    assert cli(daemon, "map", "push", "name", "q", "value", "1", "2", "3", "4").returncode == 0
    peeked = cli(daemon, "map", "peek", "name", "q", "--json")
    assert json.loads(peeked.stdout) == {"value": "01020304"}
    assert (
        json.loads(cli(daemon, "map", "pop", "name", "q", "--json").stdout)["value"] == "01020304"
    )
    empty = cli(daemon, "map", "pop", "name", "q")
    assert empty.returncode == 1 and "pop" in empty.stderr


def test_event_pipe_prints_ring_buffer_records_as_they_come(daemon):
    with pybpf.connect(daemon) as client:
        obj = client.load(EVENTS)
        obj.pin("/sys/fs/bpf/events")
        prog = next(iter(obj.programs.values()))
        for _ in range(2):
            prog.test_run(UDP)
        ring_id = obj.maps["events"].id
        piped = cli(
            daemon,
            "map",
            "event_pipe",
            "id",
            str(ring_id),
            "--count",
            "2",
            "--timeout",
            "20",
            "--json",
        )
        assert piped.returncode == 0, piped.stderr
        records = [json.loads(line) for line in piped.stdout.splitlines()]
        assert len(records) == 2 and records[0]["size"] == records[1]["size"] > 0
        assert obj.maps["events"].consumer_pos == obj.maps["events"].producer_pos


def test_links_attach_in_the_daemon_and_outlive_the_command_while_pinned(daemon):
    from pybpf.testing.topology import SERVER_IP, Wire, ping

    if Wire.available() is not None:
        pytest.skip(str(Wire.available()))
    with Wire() as wire, pybpf.connect(daemon) as client:
        obj = client.load(EXAMPLES / "xdp_wire.o")
        prog = obj.programs["xdp_pass_all"]
        attached = cli(
            daemon,
            "net",
            "attach",
            "xdp",
            "id",
            str(prog.id),
            "dev",
            wire.port_a,
            "netns",
            wire.path(wire.middle),
            "pass_to",
            wire.port_b,
            "pin",
            "/sys/fs/bpf/wire",
            "--json",
        )
        assert attached.returncode == 0, attached.stderr
        link_id = json.loads(attached.stdout)["id"]
        # The command has exited; the pinned link still carries traffic through the middle.
        assert ping(wire.path(wire.client), SERVER_IP, timeout=3)
        listed = json.loads(cli(daemon, "link", "list", "--json").stdout)
        assert [link["id"] for link in listed] == [link_id]
        assert listed[0]["running"] and listed[0]["frames"] >= 2
        assert client.link(pinned="/sys/fs/bpf/wire").counters()["frames"] >= 2
        detached = cli(daemon, "link", "detach", "pinned", "/sys/fs/bpf/wire")
        assert detached.returncode == 0, detached.stderr
        assert client.links() == [] and client.pins() == []
        assert not ping(wire.path(wire.client), SERVER_IP, timeout=1)  # nothing bridges now
        no_pin = cli(daemon, "net", "attach", "xdp", "id", str(prog.id), "dev", wire.port_a)
        assert no_pin.returncode == 2 and "pin PATH" in no_pin.stderr


def test_event_pipe_prints_perf_event_array_samples(daemon):
    with pybpf.connect(daemon) as client:
        obj = client.load(Path(__file__).parent / "corpus" / "perf_events.o")
        obj.pin("/sys/fs/bpf/perf")
        events = obj.maps["events"]
        assert isinstance(events, pybpf.service.RemoteMap)  # kept in the daemon
        pipe = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from pybpf.cli.main import main; sys.exit(main())",
                "map",
                "event_pipe",
                "id",
                str(events.id),
                "--count",
                "2",
                "--timeout",
                "30",
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYBPF_RUNTIME_DIR": str(daemon.parent)},
        )
        deadline = time.monotonic() + 30
        while events.lookup(u32(0)) is None and time.monotonic() < deadline:
            time.sleep(0.02)  # the pipe's reader is attached to CPU 0's slot
        prog = next(iter(obj.programs.values()))
        for _ in range(2):
            prog.test_run(UDP)
        out, err = pipe.communicate(timeout=60)
        assert pipe.returncode == 0, err
        samples = [json.loads(line) for line in out.splitlines()]
        assert len(samples) == 2 and all(s["cpu"] == 0 and s["size"] > 0 for s in samples)
        deadline = time.monotonic() + 10
        while events.lookup(u32(0)) is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert events.lookup(u32(0)) is None  # the reader went with the command
