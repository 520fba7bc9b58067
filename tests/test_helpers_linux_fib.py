"""bpf_fib_lookup against a forwarding table, compared with the kernel in a network namespace.

The kernel side runs in a namespace the test creates (`ip netns add`),
holding only its loopback device and two veth pairs (both ends inside), so nothing leaves
the machine; a child process enters it (`ip netns exec`) and test-runs the
programs there. pybpf gets the same interfaces, routes and neighbours
through `ForwardingTable` (and the JSON file `--fib` reads). Each lookup's
result code and the whole `struct bpf_fib_lookup` after the call must be
identical, for XDP (which always checks the MTU) and tc (which checks it
when tot_len is given, else the packet against the egress device).
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import textwrap

import pytest

import pybpf
from pybpf.runtime.fib import ForwardingTable
from pybpf.testing.kernel import kernel_available, unavailable_reason

FIB_C = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct request {
    __u32 flags;
    __u32 pad;
    struct bpf_fib_lookup params;
};

SEC("xdp")
int fib_xdp(struct xdp_md *ctx)
{
    struct request *req = (void *)(long)ctx->data;
    struct bpf_fib_lookup p;
    long rc;

    if ((void *)(req + 1) > (void *)(long)ctx->data_end)
        return -1;
    p = req->params;
    rc = bpf_fib_lookup(ctx, &p, sizeof(p), req->flags);
    req->params = p;
    return rc;
}

SEC("tc")
int fib_tc(struct __sk_buff *skb)
{
    struct request *req = (void *)(long)skb->data;
    struct bpf_fib_lookup p;
    long rc;

    if ((void *)(req + 1) > (void *)(long)skb->data_end)
        return -1;
    p = req->params;
    rc = bpf_fib_lookup(skb, &p, sizeof(p), req->flags);
    req = (void *)(long)skb->data;
    if ((void *)(req + 1) > (void *)(long)skb->data_end)
        return -1;
    req->params = p;
    return rc;
}

SEC("xdp")
int fib_short(struct xdp_md *ctx)
{
    struct bpf_fib_lookup p = {.family = 2, .ifindex = 1};
    return bpf_fib_lookup(ctx, &p, 32, 0);
}

char LICENSE[] SEC("license") = "GPL";
"""

AF_INET, AF_INET6 = 2, 10
DIRECT, OUTPUT, SKIP_NEIGH, TBID, SRC = 1, 2, 4, 8, 16
D0_MAC, D1_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"
GW4_MAC, GW6_MAC = "02:00:00:00:00:fe", "02:00:00:00:00:fd"

# (ip command, in the namespace) and the same table for pybpf, built in `pybpf_table`.
SETUP = [
    "link set lo up",
    "link add d0 type veth peer name d0p",
    "link set d0p up",
    f"link set d0 address {D0_MAC} mtu 1400 up",
    "addr add 10.9.0.1/24 dev d0",
    "addr add 2001:db8:9::1/64 dev d0 nodad",
    "link add d1 type veth peer name d1p",
    "link set d1p up",
    f"link set d1 address {D1_MAC} up",
    "addr add 10.8.0.1/24 dev d1",
    "route add 10.20.0.0/16 via 10.9.0.254 dev d0 metric 7",
    "route add 10.21.0.0/16 via 10.9.0.254 dev d0 mtu 1300",
    "route add 10.22.0.0/16 via 10.9.0.254 dev d0 mtu lock 1300",
    "route add blackhole 192.0.2.0/24",
    "route add unreachable 198.51.100.0/24",
    "route add prohibit 203.0.113.0/24",
    "route add 10.30.0.0/16 via 10.9.0.254 dev d0 table 100",
    "-6 route add 2001:db8:20::/48 via 2001:db8:9::fe dev d0 metric 9",
    f"neigh add 10.9.0.254 lladdr {GW4_MAC} dev d0 nud permanent",
    f"-6 neigh add 2001:db8:9::fe lladdr {GW6_MAC} dev d0 nud permanent",
]


def pybpf_table(d0: int, d1: int) -> ForwardingTable:
    """The namespace's devices, routes and neighbours, built through the JSON form."""
    document = {
        "interfaces": [
            {
                "ifindex": d0,
                "name": "d0",
                "mac": D0_MAC,
                "mtu": 1400,
                "addresses": ["10.9.0.1/24", "2001:db8:9::1/64"],
            },
            {
                "ifindex": d1,
                "name": "d1",
                "mac": D1_MAC,
                "addresses": ["10.8.0.1/24"],
                "forwarding": False,
            },
        ],
        "routes": [
            {"dst": "10.20.0.0/16", "via": "10.9.0.254", "dev": "d0", "metric": 7},
            {"dst": "10.21.0.0/16", "via": "10.9.0.254", "dev": "d0", "mtu": 1300},
            {
                "dst": "10.22.0.0/16",
                "via": "10.9.0.254",
                "dev": "d0",
                "mtu": 1300,
                "mtu_lock": True,
            },
            {"dst": "192.0.2.0/24", "type": "blackhole"},
            {"dst": "198.51.100.0/24", "type": "unreachable"},
            {"dst": "203.0.113.0/24", "type": "prohibit"},
            {"dst": "10.30.0.0/16", "via": "10.9.0.254", "dev": "d0", "table": 100},
            {"dst": "2001:db8:20::/48", "via": "2001:db8:9::fe", "dev": "d0", "metric": 9},
        ],
        "neighbours": [
            {"address": "10.9.0.254", "mac": GW4_MAC, "dev": "d0"},
            {"address": "2001:db8:9::fe", "mac": GW6_MAC, "dev": d0},
        ],
    }
    return ForwardingTable.from_dict(json.loads(json.dumps(document)))


def request(
    dst: str,
    *,
    ifindex: int = 1,
    flags: int = 0,
    src: str | None = None,
    tot_len: int = 0,
    tbid: int = 0,
    family: int | None = None,
) -> bytes:
    """A packet holding {flags, pad, struct bpf_fib_lookup} for the programs above."""
    address = ipaddress.ip_address(dst)
    fam = family if family is not None else (AF_INET if address.version == 4 else AF_INET6)
    width = 16 if address.version == 6 else 4
    params = bytearray(64)
    struct.pack_into("<BBHHHI", params, 0, fam, 17, 0, 0, tot_len, ifindex)
    if src:
        params[16 : 16 + width] = ipaddress.ip_address(src).packed
    params[32 : 32 + width] = address.packed
    struct.pack_into("<I", params, 48, tbid)
    return struct.pack("<II", flags, 0) + bytes(params)


def cases(d0: int, d1: int) -> list[tuple[str, dict]]:
    """(dst, keyword arguments of `request`) for the table of SETUP."""
    return [
        ("10.20.1.1", {}),
        ("10.20.1.1", {"flags": SRC}),
        ("10.9.0.7", {}),
        ("10.9.0.7", {"flags": SKIP_NEIGH}),
        ("10.9.0.254", {}),
        ("10.9.0.1", {}),
        ("10.99.0.1", {}),
        ("192.0.2.1", {}),
        ("198.51.100.1", {}),
        ("203.0.113.1", {}),
        ("10.20.1.1", {"tot_len": 1500}),
        ("10.20.1.1", {"tot_len": 1400}),
        ("10.21.1.1", {"tot_len": 1350}),
        ("10.22.1.1", {"tot_len": 1350}),
        ("10.22.1.1", {"tot_len": 1300}),
        ("10.20.1.1", {"flags": DIRECT}),
        ("10.30.1.1", {"flags": DIRECT | TBID, "tbid": 100}),
        ("10.20.1.1", {"flags": DIRECT | TBID, "tbid": 100}),
        ("10.20.1.1", {"flags": DIRECT | TBID, "tbid": 42}),
        ("10.30.1.1", {}),
        ("10.20.1.1", {"flags": OUTPUT, "ifindex": d0}),
        ("10.20.1.1", {"flags": OUTPUT}),
        ("10.20.1.1", {"ifindex": d1}),
        ("10.20.1.1", {"ifindex": 99}),
        ("10.20.1.1", {"flags": 1 << 7}),
        ("10.20.1.1", {"family": 7}),
        ("2001:db8:20::5", {}),
        ("2001:db8:20::5", {"flags": SRC}),
        ("2001:db8:9::7", {}),
        ("2001:db8:77::1", {}),
        ("fe80::1", {}),
        ("2001:db8:20::5", {"tot_len": 1401}),
    ]


CHILD = textwrap.dedent(
    """
    import json, sys
    from pybpf.testing.kernel import KernelObject
    obj, requests = sys.argv[1], json.load(sys.stdin)
    out = []
    with KernelObject(obj) as kernel:
        for program, packet in requests:
            run = kernel.test_run(program, bytes.fromhex(packet))
            out.append([run.retval, run.data_out.hex()])
    json.dump(out, sys.stdout)
    """
)


def ip(namespace: str, command: str) -> None:
    subprocess.run(["ip", "-n", namespace, *command.split()], check=True, capture_output=True)


def ifindex_of(namespace: str, name: str) -> int:
    result = subprocess.run(
        ["ip", "-n", namespace, "-j", "link", "show", name], check=True, capture_output=True
    )
    return json.loads(result.stdout)[0]["ifindex"]


def in_namespace(namespace: str, obj, requests: list[tuple[str, bytes]]) -> list[tuple[int, bytes]]:
    """Test-run (program, packet) pairs in the kernel inside `namespace`."""
    result = subprocess.run(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", CHILD, str(obj)],
        input=json.dumps([[p, d.hex()] for p, d in requests]),
        capture_output=True,
        text=True,
        check=True,
    )
    return [(r, bytes.fromhex(d)) for r, d in json.loads(result.stdout)]


@pytest.fixture(scope="module")
def fib_object(tmp_path_factory):
    from clang_build import build_object

    return build_object(tmp_path_factory.mktemp("fib"), "fib", FIB_C)


@pytest.fixture(scope="module")
def namespace():
    if not kernel_available():
        pytest.skip(unavailable_reason() or "no kernel")
    if shutil.which("ip") is None:
        pytest.skip("iproute2 is not installed")
    name = f"pybpf-fib-{os.getpid()}"
    try:
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    except subprocess.CalledProcessError as error:
        pytest.skip(f"cannot create a network namespace: {error.stderr.decode().strip()}")
    try:
        subprocess.run(
            ["ip", "netns", "exec", name, "sysctl", "-qw"]
            + ["net.ipv4.conf.all.forwarding=1", "net.ipv6.conf.all.forwarding=1"],
            check=True,
            capture_output=True,
        )
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def compare(fib_object, namespace, table, requests, engine):
    expected = in_namespace(namespace, fib_object, requests)
    with pybpf.load(fib_object, engine=engine) as obj:
        obj.context.fib = table
        for (program, packet), (retval, data_out) in zip(requests, expected, strict=True):
            got = obj.programs[program].test_run(data=packet)
            assert (program, got.retval, got.data_out.hex()) == (program, retval, data_out.hex()), (
                program,
                packet[8:].hex(),
            )
    return expected


@pytest.mark.parametrize("engine", ["interpreter", "jit"])
def test_empty_table_answers_no_route(fib_object, namespace, engine):
    # Before any device or route: the namespace has only its loopback device.
    requests = [
        (program, request(dst, **kw))
        for program in ("fib_xdp", "fib_tc")
        for dst, kw in [
            ("10.1.2.3", {}),
            ("2001:db8::1", {}),
            ("10.1.2.3", {"flags": DIRECT}),
            ("10.1.2.3", {"ifindex": 2}),
        ]
    ]
    requests.append(("fib_short", bytes(64)))
    expected = compare(fib_object, namespace, None, requests, engine)
    codes = [r - (1 << 32) if r >> 31 else r for r, _ in expected]
    assert codes[:3] == [4, 4, 4]  # BPF_FIB_LKUP_RET_NOT_FWDED
    assert codes[3] == -19  # -ENODEV: no such device
    assert codes[-1] == -22  # -EINVAL: a short struct


@pytest.fixture(scope="module")
def routed(namespace, fib_object):
    # After the empty-table test (module order): devices, routes, neighbours.
    for command in SETUP:
        ip(namespace, command)
    subprocess.run(
        ["ip", "netns", "exec", namespace, "sysctl", "-qw"]
        + ["net.ipv4.conf.d1.forwarding=0", "net.ipv6.conf.d1.forwarding=0"],
        check=True,
        capture_output=True,
    )
    return ifindex_of(namespace, "d0"), ifindex_of(namespace, "d1")


@pytest.mark.parametrize("engine", ["interpreter", "jit"])
def test_routes_and_neighbours_match_the_kernel(fib_object, namespace, routed, engine):
    d0, d1 = routed
    requests = [
        (program, request(dst, **kw))
        for program in ("fib_xdp", "fib_tc")
        for dst, kw in cases(d0, d1)
    ]
    expected = compare(fib_object, namespace, pybpf_table(d0, d1), requests, engine)
    codes = {r - (1 << 32) if r >> 31 else r for r, _ in expected}
    # Every outcome the table is built to produce did occur.
    assert {0, 1, 2, 3, 4, 5, 7, 8, -19, -22, -97} <= codes


def test_prog_run_fib_option(tmp_path, fib_object):
    from test_cli import pybpf as cli

    table = {
        "interfaces": [{"ifindex": 2, "name": "eth0", "mac": "02:00:00:00:00:01"}],
        "routes": [{"dst": "default", "via": "10.0.0.254", "dev": "eth0"}],
        "neighbours": [{"address": "10.0.0.254", "mac": "02:00:00:00:00:fe", "dev": "eth0"}],
    }
    (tmp_path / "fib.json").write_text(json.dumps(table))
    (tmp_path / "bad.json").write_text(json.dumps({"routes": [{"dst": "nowhere"}]}))
    (tmp_path / "req.bin").write_bytes(request("8.8.8.8"))
    common = ["prog", "run", str(fib_object), "--program", "fib_xdp", "--json"]
    common += ["--data-in", str(tmp_path / "req.bin")]
    routed = cli(*common, "--fib", str(tmp_path / "fib.json"))
    assert routed.returncode == 0, routed.stderr
    assert json.loads(routed.stdout)["retval"] == 0
    empty = cli(*common)
    assert json.loads(empty.stdout)["retval"] == 4  # no route: only loopback
    bad = cli(*common, "--fib", str(tmp_path / "bad.json"))
    assert bad.returncode == 2
    assert "--fib" in bad.stderr and "Traceback" not in bad.stderr


def test_fib_file_for_the_cli(tmp_path, fib_object):
    table = {
        "interfaces": [{"ifindex": 2, "name": "eth0", "mac": "02:00:00:00:00:01"}],
        "routes": [{"dst": "default", "via": "10.0.0.254", "dev": "eth0"}],
        "neighbours": [{"address": "10.0.0.254", "mac": "02:00:00:00:00:fe", "dev": "eth0"}],
    }
    path = tmp_path / "fib.json"
    path.write_text(json.dumps(table))
    with pybpf.load(fib_object) as obj:
        obj.context.fib = ForwardingTable.load(path)
        result = obj.programs["fib_xdp"].test_run(data=request("8.8.8.8"))
    assert result.retval == 0
    params = result.data_out[8:]
    assert struct.unpack_from("<I", params, 8)[0] == 2
    assert params[32:36] == socket.inet_aton("10.0.0.254")
    assert params[52:64] == bytes.fromhex("0200000000010200000000fe")
