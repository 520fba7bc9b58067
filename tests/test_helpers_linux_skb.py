"""sk_buff helpers that reshape the packet, in tc test runs, against the kernel.

Each program calls one helper with arguments taken from `skb->cb` (set
through ctx_in, so one loaded object serves every case), records what the
program can then see of the skb (len, protocol, VLAN fields, the helper's
result) in a `.bss` array, and returns the helper's result. The same
frames and arguments go to the kernel (through libbpf) and to pybpf in
both engines; the return value, the output packet and the `.bss` record
must be identical. Without the kernel the module skips.
"""

from __future__ import annotations

import struct

import pytest

import pybpf
from pybpf.testing import packets as P
from pybpf.testing.kernel import KernelError, KernelObject, kernel_available, unavailable_reason

pytestmark = pytest.mark.skipif(not kernel_available(), reason=unavailable_reason() or "kernel")

SKB_C = r"""
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

__u64 out[8];

static __always_inline void record(struct __sk_buff *skb, long ret)
{
    out[0] = ret;
    out[1] = skb->len;
    out[2] = skb->protocol;
    out[3] = skb->vlan_present;
    out[4] = skb->vlan_tci;
    out[5] = skb->vlan_proto;
    out[6] = skb->data_end - skb->data;
}

SEC("tc")
int vlan_push(struct __sk_buff *skb)
{
    long ret = bpf_skb_vlan_push(skb, skb->cb[0], skb->cb[1]);
    if (!ret && skb->cb[2])
        ret = bpf_skb_vlan_push(skb, skb->cb[2], skb->cb[3]);
    record(skb, ret);
    return ret;
}

SEC("tc")
int vlan_pop(struct __sk_buff *skb)
{
    long ret = 0;
    if (skb->cb[0])
        ret = bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), skb->cb[0]);
    if (!ret)
        ret = bpf_skb_vlan_pop(skb);
    if (!ret && skb->cb[1])
        ret = bpf_skb_vlan_pop(skb);
    record(skb, ret);
    return ret;
}

SEC("tc")
int change_proto(struct __sk_buff *skb)
{
    long ret = bpf_skb_change_proto(skb, skb->cb[0], skb->cb[1]);
    record(skb, ret);
    if (!ret && skb->cb[2])
        ret = bpf_skb_change_proto(skb, skb->cb[2], 0);
    out[7] = ret;
    return ret;
}

SEC("tc")
int adjust_room(struct __sk_buff *skb)
{
    __u64 flags = (__u64)skb->cb[3] << 32 | skb->cb[2];
    long ret = bpf_skb_adjust_room(skb, (__s32)skb->cb[0], skb->cb[1], flags);
    record(skb, ret);
    if (!ret && skb->cb[4]) {
        /* Undo the first change: the packet must come back unchanged. */
        ret = bpf_skb_adjust_room(skb, -(__s32)skb->cb[0], skb->cb[1], 0);
        out[7] = ret;
    }
    return ret;
}

SEC("tc")
int pull_data(struct __sk_buff *skb)
{
    long ret = bpf_skb_pull_data(skb, skb->cb[0]);
    record(skb, ret);
    return ret;
}

char LICENSE[] SEC("license") = "GPL";
"""

M32 = 0xFFFFFFFF


def be16(value: int) -> int:
    """An EtherType as a program passes it (`bpf_htons`)."""
    return int.from_bytes(value.to_bytes(2, "big"), "little")


def vlan_frame(frame: bytes, tci: int, tpid: int = 0x8100) -> bytes:
    return frame[:12] + struct.pack("!HH", tpid, tci) + frame[12:]


UDP = P.udp_packet()
TCP = P.tcp_packet(payload=b"x" * 40)
IPV6 = P.ipv6_frame() + bytes(16)
ARP = P.arp_frame()
VLAN = vlan_frame(UDP, 0x0123)
QINQ = vlan_frame(vlan_frame(UDP, 0x0042), 0x0007, 0x88A8)
VLAN_8023 = vlan_frame(P.ethernet(b"\xff\xff" + bytes(40), proto=42), 5)

ENCAP_IPV4, ENCAP_IPV6, ENCAP_GRE, ENCAP_UDP, ENCAP_ETH = 2, 4, 8, 16, 64
DECAP_IPV4, DECAP_IPV6, NO_CSUM_RESET, FIXED_GSO = 128, 256, 32, 1

CASES = [
    # (program, frame, cb words)
    ("vlan_push", UDP, [be16(0x8100), 0x123]),
    ("vlan_push", UDP, [be16(0x88A8), 0xFFFF]),
    ("vlan_push", UDP, [0x1234, 7]),  # an unknown proto becomes 802.1Q
    ("vlan_push", UDP, [be16(0x8100), 0x123, be16(0x88A8), 0x45]),  # 1st tag into the payload
    ("vlan_push", VLAN, [be16(0x8100), 0x9, be16(0x8100), 0xA]),
    ("vlan_pop", UDP, [0, 0]),  # nothing to pop
    ("vlan_pop", VLAN, [0, 0]),
    ("vlan_pop", QINQ, [0, 0]),  # the inner tag becomes the skb's
    ("vlan_pop", QINQ, [0, 1]),
    ("vlan_pop", VLAN, [0x77, 0]),  # the pushed tag goes, the payload's moves up
    ("vlan_pop", VLAN_8023, [0, 0]),
    ("vlan_pop", vlan_frame(UDP, 1)[:16], [0, 0]),  # too short for a VLAN header
    ("change_proto", UDP, [be16(0x86DD), 0, be16(0x0800)]),
    ("change_proto", IPV6, [be16(0x0800), 0, be16(0x86DD)]),
    ("change_proto", UDP, [be16(0x0800), 0]),
    ("change_proto", UDP, [be16(0x86DD), 1]),
    ("change_proto", ARP, [be16(0x86DD), 0]),
    ("pull_data", UDP, [0]),
    ("pull_data", UDP, [len(UDP)]),
    ("pull_data", UDP, [len(UDP) + 1]),
]
for _diff in (8, -8, 20, -20, 0, 0x1000, -0x1000, 60):
    for _mode in (0, 1, 2):
        CASES.append(("adjust_room", UDP, [_diff & M32, _mode, 0, 0, 1]))
for _flags in (
    ENCAP_IPV4,
    ENCAP_IPV6,
    ENCAP_IPV4 | ENCAP_UDP,
    ENCAP_IPV6 | ENCAP_GRE,
    ENCAP_IPV4 | ENCAP_IPV6,
    ENCAP_IPV4 | ENCAP_GRE | ENCAP_UDP,
    ENCAP_IPV4 | ENCAP_ETH | (14 << 56),
    ENCAP_IPV4 | ENCAP_ETH | (10 << 56),
    ENCAP_IPV4 | (30 << 56),
    DECAP_IPV4,
    NO_CSUM_RESET,
    FIXED_GSO,
    1 << 9,
):
    CASES.append(("adjust_room", UDP, [28, 1, _flags & M32, _flags >> 32, 0]))
for _flags in (DECAP_IPV6, DECAP_IPV4, DECAP_IPV4 | DECAP_IPV6, ENCAP_IPV4):
    CASES.append(("adjust_room", TCP, [-20 & M32, 0, _flags, 0, 0]))
CASES += [
    ("adjust_room", IPV6, [-20 & M32, 0, DECAP_IPV4, 0, 0]),
    ("adjust_room", IPV6, [40, 1, ENCAP_IPV6, 0, 0]),
    ("adjust_room", ARP, [8, 1, 0, 0, 0]),
    ("adjust_room", TCP, [-(len(TCP) - 14 - 20) & M32, 1, 0, 0, 0]),  # leaves 20: too little
    ("adjust_room", TCP, [-(len(TCP) - 14 - 21) & M32, 1, 0, 0, 0]),
]


def ctx_for(cb: list[int]) -> bytes:
    """A `struct __sk_buff` with only cb[] set (offset 48, five u32)."""
    ctx = bytearray(192)
    struct.pack_into("<5I", ctx, 48, *(cb + [0] * 5)[:5])
    return bytes(ctx)


@pytest.fixture(scope="module")
def skb_object(tmp_path_factory):
    from clang_build import build_object

    return build_object(tmp_path_factory.mktemp("skb"), "skb_helpers", SKB_C)


@pytest.fixture(scope="module")
def kernel(skb_object):
    with KernelObject(skb_object) as kernel:
        yield kernel


@pytest.mark.parametrize("engine", ["interpreter", "jit"])
@pytest.mark.parametrize(("program", "frame", "cb"), CASES)
def test_skb_helper_matches_the_kernel(skb_object, kernel, engine, program, frame, cb):
    ctx = ctx_for(cb)
    bss = kernel.map(".bss")
    bss.update(b"\0" * 4, bytes(64))
    try:
        expected = kernel.test_run(program, frame, ctx)
    except KernelError as error:
        expected = error.errno
    kernel_out = bss.lookup(b"\0" * 4)
    with pybpf.load(skb_object, engine=engine) as obj:
        try:
            got = obj.programs[program].test_run(data=frame, ctx=ctx)
        except pybpf.TestRunError as error:
            assert error.errno == expected
            return
        assert not isinstance(expected, int), f"the kernel refused the run (errno {expected})"
        assert got.retval == expected.retval
        assert got.data_out == expected.data_out
        assert obj.maps[".bss"][b"\0" * 4] == kernel_out
