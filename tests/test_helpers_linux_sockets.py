"""bpf_sk_lookup_tcp/udp, bpf_skc_lookup_tcp and bpf_sk_release at run time.

pybpf has no kernel sockets: a lookup finds a socket only in the execution
context's `SocketTable` (`obj.context.sockets`, runtime/sockets.py) and
returns NULL otherwise. The program reads `struct bpf_sock` fields of what
it found and releases it; both engines run it.
"""

from __future__ import annotations

import struct

import pytest

import pybpf
from pybpf.runtime.sockets import (
    AF_INET,
    AF_INET6,
    TCP_ESTABLISHED,
    TCP_LISTEN,
    Socket,
    SocketTable,
)

SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct result { __u32 found, family, type, protocol, state, src_port, dst_port, dst_ip4; };
struct result out;

static __always_inline int look(struct __sk_buff *skb, int proto, int common)
{
	struct bpf_sock_tuple t = {};
	__u32 size = sizeof(t.ipv4);

	if (skb->cb[4] == sizeof(t.ipv6))
		size = sizeof(t.ipv6);
	else if (skb->cb[4] == 20)
		size = 20;
	struct bpf_sock *sk;

	if (size == sizeof(t.ipv6)) {
		t.ipv6.saddr[0] = skb->cb[0];
		t.ipv6.daddr[0] = skb->cb[1];
		t.ipv6.sport = skb->cb[2];
		t.ipv6.dport = skb->cb[3];
	} else {
		t.ipv4.saddr = skb->cb[0];
		t.ipv4.daddr = skb->cb[1];
		t.ipv4.sport = skb->cb[2];
		t.ipv4.dport = skb->cb[3];
	}
	if (common)
		sk = bpf_skc_lookup_tcp(skb, &t, size, BPF_F_CURRENT_NETNS, 0);
	else if (proto == 6)
		sk = bpf_sk_lookup_tcp(skb, &t, size, skb->mark ? 0 : BPF_F_CURRENT_NETNS, 0);
	else
		sk = bpf_sk_lookup_udp(skb, &t, size, BPF_F_CURRENT_NETNS, 0);
	out.found = sk != 0;
	if (!sk)
		return 0;
	out.family = sk->family;
	out.state = sk->state;
	out.src_port = sk->src_port;
	out.dst_port = sk->dst_port;
	out.dst_ip4 = sk->dst_ip4;
	if (!common) {
		struct bpf_sock *full = sk;
		out.type = full->type;
		out.protocol = full->protocol;
	}
	bpf_sk_release(sk);
	return 1;
}

SEC("tc") int tcp(struct __sk_buff *skb) { return look(skb, 6, 0); }
SEC("tc") int udp(struct __sk_buff *skb) { return look(skb, 17, 0); }
SEC("tc") int skc(struct __sk_buff *skb) { return look(skb, 6, 1); }

char LICENSE[] SEC("license") = "GPL";
"""

ENGINES = ["interpreter", "jit"]
PACKET = bytes(64)
SK_BUFF_SIZE = 192
"""sizeof(struct __sk_buff): mark at 8, cb[5] at 48."""


@pytest.fixture(scope="module")
def sockets_object(tmp_path_factory):
    from clang_build import build_object

    return build_object(tmp_path_factory.mktemp("sockets"), "sockets", SOURCE)


def _ip4(text: str) -> int:
    """An IPv4 address as the u32 a program stores (network byte order in memory)."""
    return struct.unpack("<I", bytes(int(x) for x in text.split(".")))[0]


def _port(port: int) -> int:
    """A port as the __be16 a program stores."""
    return struct.unpack("<H", port.to_bytes(2, "big"))[0]


def _run(obj, program: str, saddr: str, sport: int, daddr: str, dport: int, **skb) -> tuple:
    cb = [_ip4(saddr), _ip4(daddr), _port(sport), _port(dport), skb.get("size", 0)]
    ctx = bytearray(SK_BUFF_SIZE)
    struct.pack_into("<I", ctx, 8, skb.get("mark", 0))
    struct.pack_into("<5I", ctx, 48, *cb)
    result = obj.programs[program].test_run(data=PACKET, ctx=bytes(ctx))
    raw = obj.maps[".bss"].lookup(bytes(4))
    return result.retval, struct.unpack("<8I", bytes(raw)[:32])


TABLE = [
    Socket("tcp", local=("10.0.0.1", 80)),
    Socket("tcp", local=("10.0.0.1", 80), remote=("10.0.0.2", 4242)),
    Socket("udp", local=("0.0.0.0", 53)),
]


@pytest.mark.parametrize("engine", ENGINES)
def test_no_socket_table_finds_nothing(sockets_object, engine) -> None:
    with pybpf.load(sockets_object, engine=engine) as obj:
        for program in ("tcp", "udp", "skc"):
            retval, out = _run(obj, program, "10.0.0.2", 4242, "10.0.0.1", 80)
            assert retval == 0 and out[0] == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_lookups_find_the_table_sockets(sockets_object, engine) -> None:
    with pybpf.load(sockets_object, engine=engine) as obj:
        obj.context.sockets = SocketTable(TABLE)
        # established beats listening
        retval, out = _run(obj, "tcp", "10.0.0.2", 4242, "10.0.0.1", 80)
        assert retval == 1
        found, family, type_, protocol, state, src_port, dst_port, dst_ip4 = out
        assert (found, family, type_, protocol) == (1, AF_INET, 1, 6)
        assert (state, src_port, dst_port, dst_ip4) == (
            TCP_ESTABLISHED,
            80,
            _port(4242),
            _ip4("10.0.0.2"),
        )
        # another peer: the listener
        retval, out = _run(obj, "skc", "10.0.0.3", 999, "10.0.0.1", 80)
        assert retval == 1 and out[4] == TCP_LISTEN and out[7] == 0
        # UDP on the wildcard address
        retval, out = _run(obj, "udp", "10.9.9.9", 5000, "10.0.0.7", 53)
        assert retval == 1 and out[2:4] == (2, 17)
        # no socket on that port; no UDP socket for TCP
        assert _run(obj, "tcp", "10.0.0.2", 4242, "10.0.0.1", 81)[0] == 0
        assert _run(obj, "tcp", "10.9.9.9", 5000, "10.0.0.7", 53)[0] == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_bad_arguments_find_nothing(sockets_object, engine) -> None:
    with pybpf.load(sockets_object, engine=engine) as obj:
        obj.context.sockets = SocketTable(TABLE)
        # a tuple size that is neither ipv4's nor ipv6's
        assert _run(obj, "tcp", "10.0.0.2", 4242, "10.0.0.1", 80, size=20)[0] == 0
        # a namespace id (0): pybpf has only the current namespace
        assert _run(obj, "tcp", "10.0.0.2", 4242, "10.0.0.1", 80, mark=1)[0] == 0
        # an IPv6 tuple does not find IPv4 sockets
        assert _run(obj, "tcp", "10.0.0.2", 4242, "10.0.0.1", 80, size=36)[0] == 0


def test_socket_table_lookup_order() -> None:
    import ipaddress

    table = SocketTable(
        [Socket("tcp", local=("::", 443)), Socket("tcp", local=("2001:db8::1", 443))]
    )
    a = ipaddress.ip_address
    found = table.lookup("tcp", a("2001:db8::2"), 1, a("2001:db8::1"), 443)
    assert found is table.sockets[1] and found.family == AF_INET6
    found = table.lookup("tcp", a("2001:db8::2"), 1, a("2001:db8::9"), 443)
    assert found is table.sockets[0]
    with pytest.raises(ValueError):
        Socket("sctp", local=("::", 1))
