"""Live hooks on real traffic: XDP and tc programs as a bump in the wire between network
namespaces this test builds (client ── wa [middle] wb ── server), with ping, UDP and TCP.

Traffic goes only between the namespaces of `pybpf.testing.topology.Wire`; every wait
is bounded. Needs root (ip netns); skipped elsewhere.
"""

from __future__ import annotations

import errno
import json
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import pybpf
from pybpf.errors import InterfaceError, NotSupportedError
from pybpf.hooks.netns import in_netns
from pybpf.testing.topology import SERVER_IP, Wire, ping, socket_in

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


STAT_FRAMES, STAT_UDP, STAT_TCP, STAT_ICMP, STAT_DROPPED, STAT_REWRITTEN = range(6)


@pytest.fixture
def wire():
    if Wire.available() is not None:
        pytest.skip(str(Wire.available()))
    with Wire() as w:
        yield w


@pytest.fixture
def xdp_obj():
    with pybpf.load(EXAMPLES / "xdp_wire.o") as obj:
        yield obj


def _stat(obj, name: str, index: int) -> int:
    return int.from_bytes(obj.maps[name][struct.pack("<I", index)], "little")


def _udp_pair(w: Wire, port: int):
    server = socket_in(w.path(w.server), socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((SERVER_IP, port))
    server.settimeout(0.05)
    client = socket_in(w.path(w.client), socket.AF_INET, socket.SOCK_DGRAM)
    return client, server


def _received(server: socket.socket, seconds: float = 1.0) -> list[bytes]:
    """What arrives at `server` within `seconds` (stops early once quiet after data)."""
    got: list[bytes] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            got.append(server.recv(2048))
        except TimeoutError:
            if got:
                break
    return got


def _udp_through(w: Wire, port: int, payload: bytes, dest_port: int | None = None) -> bytes | None:
    """Send one datagram client → server:port; what the server got on `dest_port`."""
    client, server = _udp_pair(w, dest_port or port)
    with client, server:
        for _ in range(3):  # the first may wait for ARP
            client.sendto(payload, (SERVER_IP, port))
            got = _received(server, 0.7)
            if got:
                return got[0]
    return None


def test_no_wire_no_traffic(wire):
    # The middle namespace forwards nothing by itself: what passes below is pybpf's doing.
    assert not ping(wire.path(wire.client), SERVER_IP, timeout=0.3)


def test_xdp_passes_drops_and_rewrites_real_traffic(wire, xdp_obj):
    prog = xdp_obj.programs["xdp_wire_filter"]
    xdp_obj.maps["blocked_ports"][struct.pack("<H", 9999)] = b"\x01"
    with prog.attach_xdp(wire.port_a, pass_to=wire.port_b, netns=wire.path(wire.middle)) as link:
        assert ping(wire.path(wire.client), SERVER_IP, timeout=2)
        assert _udp_through(wire, 5001, b"passes") == b"passes"
        assert _udp_through(wire, 9999, b"blocked") is None
        # Port 7000 is rewritten to 7001 on the way: it arrives there, not at 7000.
        assert _udp_through(wire, 7000, b"moved", dest_port=7001) == b"moved"
        counters = link.counters()
    assert counters.actions["pass"].frames >= 3
    assert counters.actions["drop"].frames >= 1
    assert counters.returned >= 2  # the server's replies, back through the wire
    assert counters.faults == 0
    assert _stat(xdp_obj, "stats", STAT_ICMP) >= 1
    assert _stat(xdp_obj, "stats", STAT_DROPPED) == counters.actions["drop"].frames
    assert _stat(xdp_obj, "stats", STAT_REWRITTEN) >= 1
    assert link.closed and not link.running


def test_tcp_connection_through_the_wire(wire, xdp_obj):
    prog = xdp_obj.programs["xdp_wire_filter"]
    listener = socket_in(wire.path(wire.server), socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((SERVER_IP, 8080))
    listener.listen(1)
    listener.settimeout(5)
    payload = bytes(range(256)) * 64  # 16 KiB: many segments each way

    def echo() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5)
            data = b""
            while len(data) < len(payload):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            conn.sendall(data)

    with prog.attach_xdp(wire.port_a, pass_to=wire.port_b, netns=wire.path(wire.middle)):
        server = threading.Thread(target=echo, daemon=True)
        server.start()
        with socket_in(wire.path(wire.client), socket.AF_INET, socket.SOCK_STREAM) as c:
            c.settimeout(5)
            c.connect((SERVER_IP, 8080))
            c.sendall(payload)
            back = b""
            while len(back) < len(payload):
                chunk = c.recv(65536)
                if not chunk:
                    break
                back += chunk
        server.join(5)
    listener.close()
    assert back == payload
    assert _stat(xdp_obj, "stats", STAT_TCP) >= 5


def test_blocklist_updated_while_traffic_flows(wire, xdp_obj):
    """A second thread updates the program's map while frames flow; the next frame sees it."""
    prog = xdp_obj.programs["xdp_wire_filter"]
    client, server = _udp_pair(wire, 5002)
    got: list[int] = []
    stop = threading.Event()

    def receive() -> None:
        while not stop.is_set():
            try:
                got.append(struct.unpack("<I", server.recv(64))[0])
            except TimeoutError:
                pass

    with prog.attach_xdp(wire.port_a, pass_to=wire.port_b, netns=wire.path(wire.middle)):
        receiver = threading.Thread(target=receive, daemon=True)
        receiver.start()
        seq = 0
        deadline = time.monotonic() + 5
        while len(got) < 20 and time.monotonic() < deadline:
            client.sendto(struct.pack("<I", seq), (SERVER_IP, 5002))
            seq += 1
            time.sleep(0.005)
        assert len(got) >= 20, "traffic did not flow before the update"
        xdp_obj.maps["blocked_ports"][struct.pack("<H", 5002)] = b"\x01"
        first_after = seq
        for _ in range(50):
            client.sendto(struct.pack("<I", seq), (SERVER_IP, 5002))
            seq += 1
            time.sleep(0.002)
        time.sleep(0.3)
        stop.set()
        receiver.join(2)
    client.close()
    server.close()
    assert not [s for s in got if s >= first_after], "frames sent after the update got through"
    assert _stat(xdp_obj, "stats", STAT_DROPPED) == 50


def test_xdp_tx_answers_on_the_same_interface(wire, xdp_obj):
    prog = xdp_obj.programs["xdp_pong"]
    subprocess.run(
        ["ip", "-n", wire.client, "neigh", "add", "10.77.0.99", "lladdr", "02:00:00:00:00:99"]
        + ["dev", "c0"],
        check=True,
        capture_output=True,
    )
    with prog.attach_xdp(wire.port_a, netns=wire.path(wire.middle)) as link:  # no pair
        assert ping(wire.path(wire.client), "10.77.0.99", timeout=2)
        counters = link.counters()
    assert counters.actions["tx"].frames >= 1
    assert _stat(xdp_obj, "stats", STAT_ICMP) >= 1


def test_xdp_redirect_through_a_devmap(wire, xdp_obj):
    prog = xdp_obj.programs["xdp_to_port"]
    with in_netns(wire.path(wire.middle)):
        target = socket.if_nametoindex(wire.port_b)
    xdp_obj.maps["ports"][struct.pack("<I", 0)] = struct.pack("<I", target)
    with prog.attach_xdp(wire.port_a, pass_to=wire.port_b, netns=wire.path(wire.middle)) as link:
        assert ping(wire.path(wire.client), SERVER_IP, timeout=2)
        counters = link.counters()
    assert counters.actions["redirect"].frames >= 1
    assert counters.redirect_errors == 0


def test_xdp_to_a_tap_device(wire, xdp_obj):
    """PASS delivers to a TAP device this hook creates, where the middle namespace's own
    stack answers; its replies go back out of the attached interface."""
    prog = xdp_obj.programs["xdp_wire_filter"]
    middle = wire.path(wire.middle)
    with prog.attach_xdp(wire.port_a, pass_to_tap="pybpftap0", netns=middle) as link:
        subprocess.run(
            ["ip", "-n", wire.middle, "addr", "add", f"{SERVER_IP}/24", "dev", "pybpftap0"],
            check=True,
            capture_output=True,
        )
        assert ping(wire.path(wire.client), SERVER_IP, timeout=3)
        counters = link.counters()
    assert counters.actions["pass"].frames >= 2  # ARP and the echo request
    assert counters.returned >= 2  # the stack's ARP reply and echo reply
    with in_netns(middle), pytest.raises(OSError):
        socket.if_nametoindex("pybpftap0")  # gone with the hook


@pytest.mark.parametrize("direction", ["ingress", "egress"])
def test_tc_program_on_both_directions(wire, direction):
    with pybpf.load(EXAMPLES / "tc_wire.o") as obj:
        prog = obj.programs["tc_wire"]
        obj.maps["tc_blocked"][struct.pack("<H", 6001)] = b"\x01"
        # Ingress on wa sees client frames arriving; egress on wb sees them leaving.
        port, pair = (
            (wire.port_a, wire.port_b) if direction == "ingress" else (wire.port_b, wire.port_a)
        )
        with prog.attach_tc(
            port, direction=direction, pass_to=pair, netns=wire.path(wire.middle)
        ) as link:
            assert _udp_through(wire, 6000, b"ok") == b"ok"
            assert _udp_through(wire, 6001, b"no") is None
            assert ping(wire.path(wire.client), SERVER_IP, timeout=2)
            counters = link.counters()
        assert counters.hook == f"tc {direction} {port}"
        assert counters.actions["shot"].frames >= 1
        assert counters.actions["ok"].frames >= 2
        assert _stat(obj, "tc_stats", 3) == counters.actions["shot"].frames


def test_interface_errors(wire, xdp_obj):
    prog = xdp_obj.programs["xdp_wire_filter"]
    middle = wire.path(wire.middle)
    with pytest.raises(InterfaceError, match="'nosuch0' does not exist"):
        prog.attach_xdp("nosuch0", netns=middle)
    subprocess.run(["ip", "-n", wire.middle, "link", "set", "dev", "wb", "down"], check=True)
    with pytest.raises(InterfaceError, match="'wb' is down"):
        prog.attach_xdp(wire.port_a, pass_to="wb", netns=middle)
    with pytest.raises(InterfaceError, match="cannot create TAP device 'wb'"):
        prog.attach_xdp(wire.port_a, pass_to_tap="wb", netns=middle)  # a veth, not a TAP
    with pytest.raises(InterfaceError, match="paired with itself"):
        prog.attach_xdp(wire.port_a, pass_to=wire.port_a, netns=middle)
    with pytest.raises(InterfaceError, match="network namespace"):
        prog.attach_xdp(wire.port_a, netns="/run/netns/pybpf-no-such-namespace")
    with pybpf.load(EXAMPLES / "tc_wire.o") as tc_obj, pytest.raises(NotSupportedError):
        tc_obj.programs["tc_wire"].attach_xdp(wire.port_a, netns=middle)
    assert not xdp_obj.links  # nothing half-attached


def test_closing_the_object_detaches(wire):
    obj = pybpf.load(EXAMPLES / "xdp_wire.o")
    link = obj.programs["xdp_wire_filter"].attach_xdp(
        wire.port_a, pass_to=wire.port_b, netns=wire.path(wire.middle)
    )
    assert link.running
    obj.close()
    assert link.closed and not link.running
    assert not ping(wire.path(wire.client), SERVER_IP, timeout=0.3)


def _start_cli(*args: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pybpf", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()  # "… attached to …" once the hook runs
    assert "attached to" in line, line + proc.stderr.read()
    return proc


def test_cli_xdp_attach_until_ctrl_c(wire):
    proc = _start_cli(
        "xdp", "attach", wire.port_a, str(EXAMPLES / "xdp_wire.o"), "--program",
        "xdp_wire_filter", "--pass-to", wire.port_b, "--netns", wire.middle,
        "--map", "blocked_ports=0f27:01", "--json",
    )  # fmt: skip
    try:
        assert ping(wire.path(wire.client), SERVER_IP, timeout=3)
        assert _udp_through(wire, 9999, b"blocked") is None  # 0x270f: the --map entry
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    record = json.loads(out)
    assert record["hook"] == f"xdp {wire.port_a}"
    assert record["actions"]["pass"]["frames"] >= 2
    assert record["actions"]["drop"]["frames"] >= 1
    assert {m["name"] for m in record["maps"]} >= {"stats", "blocked_ports"}


def test_cli_tc_attach_for_a_duration(wire):
    proc = _start_cli(
        "tc", "attach", wire.port_a, str(EXAMPLES / "tc_wire.o"), "--ingress",
        "--pass-to", wire.port_b, "--netns", wire.path(wire.middle), "--duration", "3",
    )  # fmt: skip
    assert ping(wire.path(wire.client), SERVER_IP, timeout=2.5)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert f"tc_wire on tc ingress {wire.port_a}:" in out
    assert re.search(r"^ok\s+\d+\s+\d+$", out, re.M), out


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["xdp", "attach", "nosuch0"], "interface 'nosuch0' does not exist", 2),
        (
            ["xdp", "attach", "wa", "--pass-to-tap", "wb"],
            "cannot create TAP device 'wb': an interface of that name exists and is not a free"
            " TAP device",
            2,
        ),
        (["tc", "attach", "wa"], "give one of --ingress and --egress", 2),
    ],
)
def test_cli_attach_errors(wire, args, message, code):
    obj = "tc_wire.o" if args[0] == "tc" else "xdp_wire.o"
    argv = [*args[:3], str(EXAMPLES / obj), *args[3:], "--netns", wire.middle]
    if args[0] == "xdp":
        argv += ["--program", "xdp_wire_filter"]
    proc = subprocess.run(
        [sys.executable, "-m", "pybpf", *argv], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == code
    assert proc.stderr.strip() == f"pybpf: error: {message}"


def test_libbpf_xdp_and_tc_attach(wire):
    from pybpf import libbpf

    middle = wire.path(wire.middle)
    subprocess.run(
        ["ip", "-n", wire.client, "neigh", "add", "10.77.0.99", "lladdr", "02:00:00:00:00:99"]
        + ["dev", "c0"],
        check=True,
        capture_output=True,
    )
    obj = libbpf.bpf_object__open_file(EXAMPLES / "xdp_wire.o")
    tc_obj = libbpf.bpf_object__open_file(EXAMPLES / "tc_wire.o")
    try:
        pong = libbpf.bpf_object__find_program_by_name(obj, "xdp_pong")
        with in_netns(middle):  # as a program running inside that namespace
            ifindex = socket.if_nametoindex(wire.port_a)
            assert libbpf.bpf_xdp_attach(ifindex, libbpf.bpf_program__fd(pong), 0, None) == 0
            assert libbpf.bpf_xdp_attach(987654, libbpf.bpf_program__fd(pong), 0, None) == (
                -errno.ENODEV
            )
        assert ping(wire.path(wire.client), "10.77.0.99", timeout=2)
        assert libbpf.bpf_xdp_detach(ifindex, 0, None) == 0
        assert not ping(wire.path(wire.client), "10.77.0.99", timeout=0.3)

        link = libbpf.bpf_program__attach_xdp(pong, ifindex, netns=middle)
        assert link is not None and link.running
        assert ping(wire.path(wire.client), "10.77.0.99", timeout=2)
        assert libbpf.bpf_link__destroy(link) == 0 and link.closed

        tc_prog = libbpf.bpf_object__find_program_by_name(tc_obj, "tc_wire")
        with in_netns(middle):
            hook = libbpf.bpf_tc_hook(ifindex=ifindex, attach_point=libbpf.BPF_TC_INGRESS)
            opts = libbpf.bpf_tc_opts(prog_fd=libbpf.bpf_program__fd(tc_prog))
            assert libbpf.bpf_tc_hook_create(hook) == 0
            assert libbpf.bpf_tc_attach(hook, opts, pass_to=wire.port_b) == 0
        assert opts.prog_id == tc_prog.id
        assert ping(wire.path(wire.client), SERVER_IP, timeout=2)
        assert libbpf.bpf_tc_detach(hook, opts) == 0
        assert libbpf.bpf_tc_detach(hook, opts) == -errno.ENOENT
        assert _stat(tc_obj, "tc_stats", 2) >= 1  # TC_ICMP
    finally:
        libbpf.bpf_object__close(obj)
        libbpf.bpf_object__close(tc_obj)


def test_a_fault_drops_the_frame_and_the_hook_goes_on(wire, xdp_obj):
    """A run that faults (here a helper made to raise, as a broken Python helper would) is
    dropped as aborted and counted; the hook keeps running and later frames pass."""
    from pybpf.errors import ProgramFault
    from pybpf.platform.helper_ids import HelperId
    from pybpf.runtime.helpers import HelperSpec

    real = xdp_obj.helpers.get(HelperId.REDIRECT_MAP)
    failing = threading.Event()

    def flaky(env, *args):
        if failing.is_set():
            raise ProgramFault("injected helper failure")
        return real.impl(env, *args)

    xdp_obj.helpers._by_id[HelperId.REDIRECT_MAP] = HelperSpec(real.id, real.name, flaky)
    prog = xdp_obj.programs["xdp_to_port"]
    with in_netns(wire.path(wire.middle)):
        target = socket.if_nametoindex(wire.port_b)
    xdp_obj.maps["ports"][struct.pack("<I", 0)] = struct.pack("<I", target)
    with prog.attach_xdp(wire.port_a, pass_to=wire.port_b, netns=wire.path(wire.middle)) as link:
        failing.set()
        assert not ping(wire.path(wire.client), SERVER_IP, timeout=0.5)
        assert link.running
        faults = link.counters().faults
        assert faults >= 1
        assert "injected helper failure" in link.counters().first_fault
        failing.clear()
        assert ping(wire.path(wire.client), SERVER_IP, timeout=2)
        counters = link.counters()
    assert counters.actions["aborted"].frames == counters.faults == faults
    assert counters.actions["redirect"].frames >= 1


def _userns_available() -> str | None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs unshare and ip"
    probe = subprocess.run(["unshare", "-Urn", "true"], capture_output=True, timeout=10)
    return None if probe.returncode == 0 else "user namespaces are not permitted here"


def test_inside_an_unprivileged_user_and_network_namespace():
    """Where the kernel refuses eBPF (bpf() without CAP_BPF), a live hook still runs."""
    reason = _userns_available()
    if reason:
        pytest.skip(reason)
    script = Path(__file__).with_name("live_userns_script.py")
    proc = subprocess.run(
        ["unshare", "-Urn", sys.executable, str(script), str(EXAMPLES / "xdp_wire.o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["kernel_bpf"] != "allowed"  # the kernel says no
    assert result["received"] == "from-userns"  # pybpf passed the frame to the TAP device
    assert result["pass"] >= 1 and result["udp_counted"] >= 1


def test_two_workers_on_one_program_instance(wire, xdp_obj):
    """Frames spread over two worker threads by flow; both run the one instance, whose
    maps count every frame; the counters add up over the workers."""
    prog = xdp_obj.programs["xdp_wire_filter"]
    middle = wire.path(wire.middle)
    with pytest.raises(InterfaceError, match="several workers need pass_to"):
        prog.attach_xdp(wire.port_a, pass_to_tap="pybpftap1", netns=middle, workers=2)
    server = socket_in(wire.path(wire.server), socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((SERVER_IP, 5003))
    server.settimeout(0.05)
    with prog.attach_xdp(wire.port_a, pass_to=wire.port_b, netns=middle, workers=2) as link:
        assert len(link._hook.workers) == 2
        assert ping(wire.path(wire.client), SERVER_IP, timeout=2)
        clients = [
            socket_in(wire.path(wire.client), socket.AF_INET, socket.SOCK_DGRAM) for _ in range(16)
        ]
        for n, client in enumerate(clients):  # 16 flows (source ports)
            for _ in range(5):
                client.sendto(struct.pack("<I", n), (SERVER_IP, 5003))
        got = _received(server, 2.0)
        while len(got) < 80:
            more = _received(server, 0.5)
            if not more:
                break
            got += more
        for client in clients:
            client.close()
        per_worker = [w.counters().frames for w in link._hook.workers]
        counters = link.counters()
    server.close()
    assert len(got) == 80
    assert all(per_worker), per_worker  # both workers ran frames
    assert counters.frames == sum(per_worker)
    assert _stat(xdp_obj, "stats", STAT_UDP) == 80
    assert _stat(xdp_obj, "stats", STAT_FRAMES) == counters.frames


@pytest.mark.parametrize("how", ["down", "del"])
def test_an_interface_going_away_stops_the_hook_with_a_reason(wire, xdp_obj, how):
    prog = xdp_obj.programs["xdp_wire_filter"]
    link = prog.attach_xdp(wire.port_a, pass_to=wire.port_b, netns=wire.path(wire.middle))
    assert ping(wire.path(wire.client), SERVER_IP, timeout=2)
    args = ["set", "dev", wire.port_b, "down"] if how == "down" else ["del", "dev", wire.port_b]
    subprocess.run(["ip", "-n", wire.middle, "link", *args], check=True)
    deadline = time.monotonic() + 5
    while link.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not link.running
    with pytest.raises(InterfaceError, match="'wb' went down or away"):
        link.close()
    assert link.closed and link.final.actions["pass"].frames >= 1  # what it saw, kept


def test_cli_reports_an_interface_going_away(wire):
    proc = _start_cli(
        "xdp", "attach", wire.port_a, str(EXAMPLES / "xdp_wire.o"), "--program",
        "xdp_wire_filter", "--pass-to", wire.port_b, "--netns", wire.middle,
    )  # fmt: skip
    assert ping(wire.path(wire.client), SERVER_IP, timeout=2)
    subprocess.run(["ip", "-n", wire.middle, "link", "del", "dev", wire.port_b], check=True)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert err.strip() == "pybpf: error: interface 'wb' went down or away: detached"
    assert re.search(r"^pass\s+\d+\s+\d+$", out, re.M), out


def test_redirect_to_an_interface_outside_the_pair(wire, xdp_obj):
    """A devmap target that is neither the attached port nor its pair: the hook opens a
    sender for it in the hook's namespace (not the worker thread's)."""
    middle = wire.path(wire.middle)
    subprocess.run(
        [
            "ip",
            "-n",
            wire.middle,
            "link",
            "add",
            "name",
            "wx",
            "type",
            "veth",
            "peer",
            "name",
            "wy",
        ],
        check=True,
    )
    for dev in ("wx", "wy"):
        subprocess.run(["ip", "-n", wire.middle, "link", "set", "dev", dev, "up"], check=True)
    with in_netns(middle):
        target = socket.if_nametoindex("wx")
        sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    sniffer.bind(("wy", 0))
    sniffer.settimeout(0.2)
    xdp_obj.maps["ports"][struct.pack("<I", 0)] = struct.pack("<I", target)
    prog = xdp_obj.programs["xdp_to_port"]
    got = None
    with prog.attach_xdp(wire.port_a, pass_to=wire.port_b, netns=middle) as link:
        deadline = time.monotonic() + 5
        while got is None and time.monotonic() < deadline:
            ping(wire.path(wire.client), SERVER_IP, timeout=0.1)
            try:
                got = sniffer.recv(2048)
            except TimeoutError:
                pass
        counters = link.counters()
    sniffer.close()
    assert got is not None and got[23] == 1  # the client's ICMP echo, out of wx into wy
    assert counters.redirect_errors == 0
    assert counters.actions["redirect"].frames >= 1
