"""Test runs with `bpf_prog_test_run` semantics (`hooks.test_run`)."""

from __future__ import annotations

import errno
import os
import platform
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from pybpf.elf.loader import load_object_spec
from pybpf.errors import ProgramFault
from pybpf.hooks.test_run import XDP_PACKET_HEADROOM, TestRunError, test_run
from pybpf.isa import assemble
from pybpf.platform import ProgramType

XDP_DROP, XDP_PASS, XDP_TX = 1, 2, 3

# Swap the Ethernet source and destination addresses and bounce the frame:
# reads ctx->data / data_end with 32-bit loads, bounds-checks, rewrites bytes.
XDP_SWAP_MACS = """
r2 = *(u32 *)(r1 + 0)
r3 = *(u32 *)(r1 + 4)
r4 = r2
r4 += 14
if r4 > r3 goto drop
r5 = *(u32 *)(r2 + 0)
r6 = *(u16 *)(r2 + 4)
r7 = *(u32 *)(r2 + 6)
r8 = *(u16 *)(r2 + 10)
*(u32 *)(r2 + 0) = r7
*(u16 *)(r2 + 4) = r8
*(u32 *)(r2 + 6) = r5
*(u16 *)(r2 + 10) = r6
r0 = 3
exit
drop:
r0 = 1
exit
"""

# Reads one byte past the bounds check: must fault on the packet region.
XDP_READ_PAST_END = """
r3 = *(u32 *)(r1 + 4)
r0 = *(u8 *)(r3 + 0)
exit
"""

DST = bytes.fromhex("020000000001")
SRC = bytes.fromhex("020000000002")
FRAME = DST + SRC + b"\x08\x00" + bytes(range(46))


def test_xdp_rewrites_packet() -> None:
    result = test_run(assemble(XDP_SWAP_MACS), ProgramType.XDP, data=FRAME)
    assert result.retval == XDP_TX
    assert result.data_out == SRC + DST + FRAME[12:]
    assert result.ctx_out is None
    assert result.duration > 0


def test_xdp_short_packet_is_refused() -> None:
    with pytest.raises(TestRunError) as info:
        test_run(assemble(XDP_SWAP_MACS), ProgramType.XDP, data=FRAME[:13])
    assert info.value.errno == errno.EINVAL


def test_xdp_read_past_data_end_faults_on_packet() -> None:
    with pytest.raises(ProgramFault) as info:
        test_run(assemble(XDP_READ_PAST_END), ProgramType.XDP, data=FRAME)
    assert info.value.region == "packet"
    assert info.value.pc == 1


def test_xdp_pointer_fields_are_real_addresses() -> None:
    # r0 = data - data_meta (0: no metadata) and data_end - data (the packet length).
    text = """
    r2 = *(u32 *)(r1 + 0)
    r3 = *(u32 *)(r1 + 4)
    r4 = *(u32 *)(r1 + 8)
    r3 -= r2
    r2 -= r4
    r2 <<= 32
    r0 = r3
    r0 |= r2
    exit
    """
    insns = assemble(text)
    assert test_run(insns, ProgramType.XDP, data=FRAME).retval == len(FRAME)
    # The data pointer is a 64-bit native address of a byte holding the packet.
    result = test_run(
        assemble("r0 = *(u32 *)(r1 + 0)\nr0 >>= 32\nexit"), ProgramType.XDP, data=FRAME
    )
    assert result.retval != 0  # the high half of a user-space address on x86-64


def test_xdp_metadata_and_ctx_out() -> None:
    meta = b"META"
    ctx = bytearray(24)
    ctx[0:4] = len(meta).to_bytes(4, "little")  # data: metadata length
    ctx[4:8] = (len(meta) + len(FRAME)).to_bytes(4, "little")  # data_end: whole input
    ctx[12:16] = (1).to_bytes(4, "little")  # ingress_ifindex: loopback
    text = """
    r2 = *(u32 *)(r1 + 0)
    r4 = *(u32 *)(r1 + 8)
    r2 -= r4
    r0 = *(u32 *)(r1 + 12)
    r0 <<= 8
    r0 |= r2
    exit
    """
    result = test_run(assemble(text), ProgramType.XDP, data=meta + FRAME, ctx=bytes(ctx))
    assert result.retval == (1 << 8) | len(meta)
    assert result.data_out == meta + FRAME
    assert result.ctx_out == bytes(ctx)


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        (8, 4, errno.EINVAL),  # data_meta must be 0
        (4, 5, errno.EINVAL),  # data_end must be len(data)
        (20, 2, errno.EINVAL),  # egress_ifindex must be 0
    ],
)
def test_xdp_bad_ctx_in(field: int, value: int, code: int) -> None:
    ctx = bytearray(24)
    ctx[4:8] = len(FRAME).to_bytes(4, "little")
    ctx[field : field + 4] = value.to_bytes(4, "little")
    with pytest.raises(TestRunError) as info:
        test_run(assemble("r0 = 2\nexit"), ProgramType.XDP, data=FRAME, ctx=bytes(ctx))
    assert info.value.errno == code


def test_xdp_ctx_in_too_long() -> None:
    with pytest.raises(TestRunError) as info:
        test_run(assemble("r0 = 2\nexit"), ProgramType.XDP, data=FRAME, ctx=bytes(24) + b"\1")
    assert info.value.errno == errno.E2BIG


def test_repeat_gives_same_result_and_duration() -> None:
    insns = assemble("r2 = *(u32 *)(r1 + 0)\nr0 = *(u8 *)(r2 + 13)\nexit")
    once = test_run(insns, ProgramType.XDP, data=FRAME)
    many = test_run(insns, ProgramType.XDP, data=FRAME, repeat=50)
    assert once.retval == many.retval == 0x00
    assert many.data_out == once.data_out == FRAME
    assert many.duration > 0


def test_headroom_is_not_packet() -> None:
    # data - 1 lies in the headroom, which the program cannot see without adjust_head.
    with pytest.raises(ProgramFault) as info:
        test_run(
            assemble("r2 = *(u32 *)(r1 + 0)\nr0 = *(u8 *)(r2 - 1)\nexit"),
            ProgramType.XDP,
            data=FRAME,
        )
    assert info.value.region is not None
    assert XDP_PACKET_HEADROOM == 256


# -- socket filter and tc -------------------------------------------------------


def test_sched_cls_context_and_mark() -> None:
    text = """
    r2 = *(u32 *)(r1 + 76)
    r3 = *(u32 *)(r1 + 80)
    r3 -= r2
    r4 = *(u32 *)(r1 + 0)
    if r3 != r4 goto bad
    r5 = *(u32 *)(r1 + 16)
    if r5 != 0x0008 goto bad
    r6 = 0x1234
    *(u32 *)(r1 + 8) = r6
    r0 = *(u8 *)(r2 + 0)
    exit
    bad:
    r0 = -1
    exit
    """
    ctx = bytearray(192)
    ctx[32:36] = (7).to_bytes(4, "little")  # priority
    result = test_run(assemble(text), ProgramType.SCHED_CLS, data=FRAME, ctx=bytes(ctx))
    assert result.retval == FRAME[0]
    assert result.data_out == FRAME
    assert result.ctx_out is not None
    assert int.from_bytes(result.ctx_out[8:12], "little") == 0x1234  # mark
    assert int.from_bytes(result.ctx_out[32:36], "little") == 7  # priority
    assert int.from_bytes(result.ctx_out[40:44], "little") == 1  # ifindex: loopback


def test_socket_filter_sees_network_header_on() -> None:
    # skb->len excludes the Ethernet header; data_out has it zeroed.
    result = test_run(
        assemble("r0 = *(u32 *)(r1 + 0)\nexit"), ProgramType.SOCKET_FILTER, data=FRAME
    )
    assert result.retval == len(FRAME) - 14
    assert result.data_out == bytes(14) + FRAME[14:]


@pytest.mark.parametrize(
    ("offset", "code"),
    [(0, errno.EINVAL), (4, errno.EINVAL), (76, errno.EINVAL), (40, errno.ENODEV)],
)
def test_skb_bad_ctx_in(offset: int, code: int) -> None:
    ctx = bytearray(192)
    ctx[offset : offset + 4] = (5).to_bytes(4, "little")
    with pytest.raises(TestRunError) as info:
        test_run(assemble("r0 = 0\nexit"), ProgramType.SCHED_CLS, data=FRAME, ctx=bytes(ctx))
    assert info.value.errno == code


def test_skb_short_packet_is_refused() -> None:
    with pytest.raises(TestRunError) as info:
        test_run(assemble("r0 = 0\nexit"), ProgramType.SOCKET_FILTER, data=FRAME[:10])
    assert info.value.errno == errno.EINVAL


# -- the real toolchain, and the real kernel ------------------------------------

CLANG = shutil.which("clang-16") or shutil.which("clang")
BPFTOOL = shutil.which("bpftool") or (
    "/usr/sbin/bpftool" if os.path.exists("/usr/sbin/bpftool") else None
)

XDP_C = r"""
#include <linux/bpf.h>
#define SEC(n) __attribute__((section(n), used))
SEC("xdp") int swap(struct xdp_md *ctx) {
    unsigned char *data = (unsigned char *)(long)ctx->data;
    unsigned char *end = (unsigned char *)(long)ctx->data_end;
    if (data + 14 > end) return XDP_DROP;
    for (int i = 0; i < 6; i++) { unsigned char t = data[i]; data[i] = data[i + 6]; data[i + 6] = t; }
    data[13] ^= 0xff;
    return XDP_TX;
}
char _license[] SEC("license") = "GPL";
"""


@pytest.fixture(scope="module")
def xdp_object(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if CLANG is None:
        pytest.skip("clang is not installed")
    out = tmp_path_factory.mktemp("xdp")
    (out / "swap.c").write_text(XDP_C)
    subprocess.run(
        [
            CLANG,
            "-O2",
            "-g",
            "-target",
            "bpf",
            f"-I/usr/include/{platform.machine()}-linux-gnu",
            "-c",
            str(out / "swap.c"),
            "-o",
            str(out / "swap.o"),
        ],
        check=True,
    )
    return out / "swap.o"


def test_clang_xdp_program(xdp_object: Path) -> None:
    spec = load_object_spec(xdp_object).programs["swap"]
    result = test_run(spec, ProgramType.XDP, data=FRAME)
    assert result.retval == XDP_TX
    assert result.data_out == SRC + DST + FRAME[12:13] + bytes([FRAME[13] ^ 0xFF]) + FRAME[14:]
    short = test_run(spec, ProgramType.XDP, data=FRAME[:14])
    assert short.retval == XDP_TX


def _kernel_run(obj: Path, data: bytes, tmp: Path) -> tuple[int, bytes]:
    pin = Path("/sys/fs/bpf") / f"pybpf_test_{uuid.uuid4().hex[:8]}"
    load = subprocess.run(
        [BPFTOOL, "prog", "load", str(obj), str(pin)], capture_output=True, text=True
    )
    if load.returncode:
        pytest.skip(f"bpftool cannot load programs here: {load.stderr.strip()[:200]}")
    try:
        (tmp / "in").write_bytes(data)
        run = subprocess.run(
            [
                BPFTOOL,
                "prog",
                "run",
                "pinned",
                str(pin),
                "data_in",
                str(tmp / "in"),
                "data_out",
                str(tmp / "out"),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        pin.unlink()
    retval = int(re.search(r"Return value: (\d+)", run.stdout + run.stderr).group(1))
    return retval, (tmp / "out").read_bytes()


@pytest.mark.skipif(BPFTOOL is None, reason="bpftool is not installed")
@pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.isdir("/sys/fs/bpf"), reason="needs root and bpffs"
)
@pytest.mark.parametrize("packet", [FRAME, FRAME[:14], FRAME[:13] + b"\x99" * 200])
def test_clang_xdp_matches_kernel(xdp_object: Path, tmp_path: Path, packet: bytes) -> None:
    retval, data_out = _kernel_run(xdp_object, packet, tmp_path)
    ours = test_run(load_object_spec(xdp_object).programs["swap"], ProgramType.XDP, data=packet)
    assert (ours.retval, ours.data_out) == (retval, data_out)
