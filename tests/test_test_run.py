"""Test runs with `bpf_prog_test_run` semantics (`hooks.test_run`)."""

from __future__ import annotations

import errno
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import pybpf
from pybpf.elf.loader import load_object_spec
from pybpf.errors import ProgramFault
from pybpf.hooks.packets import XDP_PACKET_HEADROOM
from pybpf.hooks.test_run import TestRunError, test_run
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


# -- more program types: synthetic tracing contexts, sk_lookup, widths ------------


def test_kprobe_regs_by_name() -> None:
    # r0 = di + 2 * si (PT_REGS_PARM1/2 on x86-64: offsets 112 and 104) + low byte of ip (128)
    text = """
    r0 = *(u64 *)(r1 + 112)
    r2 = *(u64 *)(r1 + 104)
    r2 <<= 1
    r0 += r2
    r3 = *(u8 *)(r1 + 128)
    r0 += r3
    exit
    """
    result = test_run(assemble(text), ProgramType.KPROBE, regs={"rdi": 5, "si": 7, "ip": 0x1FF})
    assert result.retval == 5 + 14 + 0xFF
    assert result.ctx_out is None and result.data_out == b""


def test_kprobe_refuses_unknown_register_and_writes() -> None:
    with pytest.raises(TestRunError) as info:
        test_run(assemble("r0 = 0\nexit"), ProgramType.KPROBE, regs={"xmm0": 1})
    assert info.value.errno == errno.EINVAL
    with pytest.raises(ProgramFault):
        test_run(assemble("r2 = 1\n*(u64 *)(r1 + 0) = r2\nr0 = 0\nexit"), ProgramType.KPROBE)


def test_perf_event_sample_period_and_regs() -> None:
    ctx = bytearray(184)
    ctx[168:176] = (1000).to_bytes(8, "little")  # sample_period
    text = "r0 = *(u32 *)(r1 + 168)\nr2 = *(u64 *)(r1 + 80)\nr0 += r2\nexit"  # + ax
    result = test_run(assemble(text), ProgramType.PERF_EVENT, ctx=bytes(ctx), regs={"rax": 3})
    assert result.retval == 1003
    # Registers are read as whole u64s only (pe_prog_is_valid_access).
    with pytest.raises(ProgramFault):
        test_run(assemble("r0 = *(u32 *)(r1 + 80)\nexit"), ProgramType.PERF_EVENT)


def test_tracepoint_record_from_args() -> None:
    # The common fields (first 8 bytes) are not readable; the next words are.
    text = "r0 = *(u64 *)(r1 + 8)\nr2 = *(u32 *)(r1 + 16)\nr0 -= r2\nexit"
    result = test_run(assemble(text), ProgramType.TRACEPOINT, args=[0xAAAA, 50, 8])
    assert result.retval == 42
    with pytest.raises(ProgramFault):
        test_run(assemble("r0 = *(u64 *)(r1 + 0)\nexit"), ProgramType.TRACEPOINT, args=[1, 2])


def test_raw_tracepoint_args_and_refusals() -> None:
    text = "r0 = *(u64 *)(r1 + 8)\nexit"
    assert test_run(assemble(text), ProgramType.RAW_TRACEPOINT, args=[1, 99]).retval == 99
    for kw in (
        {"args": list(range(13))},
        {"args": [1, 2], "data": FRAME},
        {"args": [1], "repeat": 2},
    ):
        with pytest.raises(TestRunError) as info:
            test_run(assemble(text), ProgramType.RAW_TRACEPOINT, **kw)
        assert info.value.errno == errno.EINVAL
    with pytest.raises(TestRunError):  # the program reads 16 bytes, the run gives 8
        test_run(assemble(text), ProgramType.RAW_TRACEPOINT, args=[1], max_ctx_offset=16)


def test_args_and_regs_only_where_taken() -> None:
    with pytest.raises(TestRunError):
        test_run(assemble("r0 = 2\nexit"), ProgramType.XDP, data=FRAME, args=[1])
    with pytest.raises(TestRunError):
        test_run(assemble("r0 = 2\nexit"), ProgramType.RAW_TRACEPOINT, regs={"di": 1})


def test_sk_lookup_errnos() -> None:
    insns = assemble("r0 = *(u32 *)(r1 + 60)\nexit")  # local_port
    ctx = bytearray(72)
    ctx[8:12] = (2).to_bytes(4, "little")
    ctx[60:64] = (80).to_bytes(4, "little")
    assert test_run(insns, ProgramType.SK_LOOKUP, ctx=bytes(ctx)).retval == 80
    for offset, value, code in [(8, 1, errno.EAFNOSUPPORT), (60, 70000, errno.ERANGE)]:
        bad = bytearray(ctx)
        bad[offset : offset + 4] = value.to_bytes(4, "little")
        with pytest.raises(TestRunError) as info:
            test_run(insns, ProgramType.SK_LOOKUP, ctx=bytes(bad))
        assert info.value.errno == code
    with pytest.raises(TestRunError) as info:
        test_run(insns, ProgramType.SK_LOOKUP)
    assert info.value.errno == errno.EINVAL


@pytest.mark.parametrize(
    ("dst", "pkt_type"),
    [("000000000000", 0), ("ffffffffffff", 2), ("01005e000001", 2), ("020000000001", 3)],
)
def test_skb_pkt_type_on_loopback(dst: str, pkt_type: int) -> None:
    frame = bytes.fromhex(dst) + FRAME[6:]
    result = test_run(assemble("r0 = *(u32 *)(r1 + 4)\nexit"), ProgramType.SCHED_CLS, data=frame)
    assert result.retval == pkt_type


def test_tc_classid_reads_back_16_bits() -> None:
    text = "r2 = 0x12345\n*(u32 *)(r1 + 72) = r2\nr0 = *(u32 *)(r1 + 72)\nexit"
    assert test_run(assemble(text), ProgramType.SCHED_CLS, data=FRAME).retval == 0x2345


def test_xdp_multi_buffer_frame() -> None:
    # r0 = data_end - data (the linear part); data_out is the whole frame.
    text = "r2 = *(u32 *)(r1 + 0)\nr0 = *(u32 *)(r1 + 4)\nr0 -= r2\nexit"
    frame = FRAME + bytes(i & 0xFF for i in range(9000))
    result = test_run(assemble(text), ProgramType.XDP, data=frame)
    assert result.retval == 4096 - XDP_PACKET_HEADROOM - 320
    assert result.data_out == frame
    with pytest.raises(TestRunError) as info:
        test_run(assemble(text), ProgramType.XDP, data=bytes(3520 + 17 * 4096 + 1))
    assert info.value.errno == errno.ENOMEM


TRACING_C = r"""
#include <linux/bpf.h>
#define SEC(n) __attribute__((section(n), used))
SEC("raw_tp/sys_enter") int raw(struct bpf_raw_tracepoint_args *ctx) {
    return ctx->args[0] * 10 + ctx->args[1];
}
SEC("kprobe/do_sys_open") int probe(unsigned long long *regs) {
    return regs[14] - regs[13];  /* di - si */
}
char _license[] SEC("license") = "GPL";
"""


@pytest.fixture(scope="module")
def tracing_object(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if CLANG is None:
        pytest.skip("clang is not installed")
    out = tmp_path_factory.mktemp("tracing")
    (out / "tracing.c").write_text(TRACING_C)
    subprocess.run(
        [
            CLANG,
            "-O2",
            "-target",
            "bpf",
            f"-I/usr/include/{platform.machine()}-linux-gnu",
            "-c",
            str(out / "tracing.c"),
            "-o",
            str(out / "tracing.o"),
        ],
        check=True,
    )
    return out / "tracing.o"


@pytest.mark.parametrize(
    ("options", "retval"),
    [
        (["--program", "raw", "--args", "4,2"], 42),
        (["--program", "probe", "--regs", "rdi=50,rsi=0x8"], 42),
    ],
)
def test_cli_args_and_regs(tracing_object: Path, options: list[str], retval: int) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "pybpf", "prog", "run", str(tracing_object), *options, "--json"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["retval"] == retval


def test_cli_regs_refuses_bad_input(tracing_object: Path) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pybpf",
            "prog",
            "run",
            str(tracing_object),
            "--program",
            "probe",
            "--regs",
            "xmm0=1",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0
    assert "xmm0" in run.stderr and "Traceback" not in run.stderr


def test_repeat_beyond_the_kernels_u32_is_refused():
    examples = Path(__file__).resolve().parents[1] / "examples"
    with pybpf.load(examples / "xdp_counter.o") as obj:
        program = obj.programs["xdp_count"]
        with pytest.raises(TestRunError) as info:
            program.test_run(data=bytes(64), repeat=1 << 32)
        assert info.value.errno == errno.EINVAL
        with pytest.raises(TestRunError):
            program.test_run(data=bytes(64), repeat=-1)
        assert program.test_run(data=bytes(64), repeat=0).retval == 2  # 0 runs once, as Linux
