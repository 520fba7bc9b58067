"""Legacy packet loads (LD_ABS / LD_IND) in both engines, against the kernel.

Socket filters and tc programs built with clang's `llvm.bpf.load.*`
builtins: offsets from the header (ABS), from a header length computed at
run time and from an offset the test passes in `skb->cb[0]` (IND), loads
that end inside and past the packet (which end the program with 0). The
kernel's return value is the reference; the module skips without it
(the engine-only checks below do not need it).
"""

from __future__ import annotations

import struct

import pytest

import pybpf
from pybpf.engine.interpreter import Interpreter
from pybpf.engine.jit import JitEngine
from pybpf.hooks.test_run import test_run
from pybpf.isa import assemble
from pybpf.platform import ProgramType
from pybpf.runtime.linux_helpers import linux_helpers
from pybpf.runtime.memory import Memory
from pybpf.testing import packets as P
from pybpf.testing.kernel import KernelObject, kernel_available, unavailable_reason

LOADS_C = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");
unsigned long long load_word(void *skb, unsigned long long off) asm("llvm.bpf.load.word");

/* IPv4 header fields and the first transport word, from the network header. */
SEC("socket")
int headers(struct __sk_buff *skb)
{
    __u32 ihl = (load_byte(skb, 0) & 0xf) * 4;
    __u32 proto = load_byte(skb, 9);
    __u32 ports = load_word(skb, ihl);
    __u32 more = load_half(skb, ihl + 4);
    return ports ^ (proto << 24) ^ (more << 8);
}

/* A word, a half and a byte at the offset in cb[0] (and cb[1] added). */
SEC("socket")
int at_offset(struct __sk_buff *skb)
{
    __u32 off = skb->cb[0] + skb->cb[1];
    __u32 w = load_word(skb, off);
    return w ^ load_half(skb, off + 1) ^ (load_byte(skb, off + 3) << 16);
}

SEC("xdp")
int xdp_loads(struct xdp_md *ctx)
{
    return load_byte(ctx, 0);
}

/* From the MAC header in a tc program: EtherType and the IPv4 TTL. */
SEC("tc")
int tc_loads(struct __sk_buff *skb)
{
    __u32 off = skb->cb[0];
    return load_half(skb, 12) << 16 | load_byte(skb, 22) << 8 | load_byte(skb, off);
}

char LICENSE[] SEC("license") = "GPL";
"""

FRAMES = [
    P.udp_packet(),
    P.tcp_packet(src="192.168.1.7", payload=b"abc"),
    P.icmp_packet(),
    P.ipv6_frame() + bytes(8),
    P.arp_frame(),
]
OFFSETS = [0, 1, 17, 20, 30, 40, 44, 45, 46, 47, 60, 0x7FFFFFFF, 0xFFFFFFFF, 0x80000000]


def ctx_for(cb0: int, cb1: int = 0) -> bytes:
    ctx = bytearray(192)
    struct.pack_into("<II", ctx, 48, cb0 & 0xFFFFFFFF, cb1 & 0xFFFFFFFF)
    return bytes(ctx)


CASES = [("headers", frame, 0, 0) for frame in FRAMES]
CASES += [("at_offset", FRAMES[0], off, 0) for off in OFFSETS]
CASES += [("at_offset", FRAMES[1], 10, 0xFFFFFFF6), ("at_offset", FRAMES[1], 8, 0xFFFFFFF6)]
CASES += [("tc_loads", frame, off, 0) for frame in FRAMES[:2] for off in (0, 41, 42, 59, 400)]


@pytest.fixture(scope="module")
def loads_object(tmp_path_factory):
    from clang_build import build_object

    return build_object(tmp_path_factory.mktemp("loads"), "loads", LOADS_C)


@pytest.fixture(scope="module")
def kernel(loads_object):
    if not kernel_available():
        pytest.skip(unavailable_reason() or "no kernel")
    with KernelObject(loads_object, autoload={"xdp_loads": False}) as kernel:
        yield kernel


def test_only_skb_programs_may_use_them(loads_object):
    # As the kernel: "BPF_LD_[ABS|IND] instructions not allowed for this program type".
    with pybpf.load(loads_object) as obj:
        with pytest.raises(pybpf.VerifierError):
            obj.load()
    with pybpf.load(loads_object, autoload=["headers", "at_offset", "tc_loads"]) as obj:
        obj.load()
        assert all(obj.programs[name].verified for name in ("headers", "at_offset", "tc_loads"))


@pytest.mark.parametrize("engine", ["interpreter", "jit"])
def test_loads_match_the_kernel(loads_object, kernel, engine):
    with pybpf.load(
        loads_object, engine=engine, autoload=["headers", "at_offset", "tc_loads"]
    ) as obj:
        for program, frame, cb0, cb1 in CASES:
            ctx = ctx_for(cb0, cb1)
            expected = kernel.test_run(program, frame, ctx)
            got = obj.programs[program].test_run(data=frame, ctx=ctx)
            assert obj.programs[program].engine_kind == engine
            assert (program, cb0, got.retval) == (program, cb0, expected.retval)
            assert got.data_out == expected.data_out


def test_out_of_bounds_ends_the_program_with_zero():
    # r0 = 7 first: a load past the end returns 0, not 7, and skips the rest.
    source = "r6 = r1\nr0 = 7\nr0 = *(u16 *)skb[{off}]\nr0 += 1\nexit"
    frame = P.udp_packet()
    for engine in (Interpreter, JitEngine):
        for off, expected in (
            (0, 0x4500 + 1),
            (len(frame) - 14 - 2, None),
            (len(frame) - 14 - 1, 0),
        ):
            program = engine(
                assemble(source.format(off=off)), helpers=linux_helpers(), memory=Memory()
            )
            try:
                result = test_run(program, ProgramType.SOCKET_FILTER, data=frame)
            finally:
                program.close()
            if expected is None:
                expected = int.from_bytes(frame[-2:], "big") + 1
            assert result.retval == expected, (engine.__name__, off)
