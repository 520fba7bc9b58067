"""Packet helpers of the Linux table in test runs: XDP adjust, checksums, skb bytes, redirect."""

from __future__ import annotations

import errno
import struct

import pytest

from pybpf.engine.interpreter import Interpreter
from pybpf.errors import ProgramFault
from pybpf.hooks.test_run import test_run
from pybpf.isa import assemble
from pybpf.platform import ProgramType
from pybpf.runtime.context import ExecutionContext
from pybpf.runtime.linux_helpers import linux_helpers

HELPERS = linux_helpers()
M32 = 0xFFFFFFFF
XDP_PASS = 2
FRAME = bytes.fromhex("020000000001020000000002") + b"\x08\x00" + bytes(range(46))


def xdp(source: str, data: bytes = FRAME, ctx: bytes | None = None):
    return test_run(assemble(source), ProgramType.XDP, data=data, ctx=ctx, helpers=HELPERS)


def neg32(code: int) -> int:
    return -code & M32


# Call helper {helper} with offset {offset}; return its result unless it is 0,
# in which case write 0x11223344 over the first 4 bytes of the new data and pass.
ADJUST = """
r6 = r1
r2 = {offset}
call {helper}
if r0 != 0 goto out
r2 = *(u32 *)(r6 + {field})
r3 = *(u32 *)(r6 + 4)
r4 = r2
r4 += 4
if r4 > r3 goto pass
*(u32 *)(r2 + 0) = 0x11223344
pass:
r0 = 2
out:
exit
"""
HEAD, TAIL, META = 44, 65, 54
DATA, DATA_META = 0, 8
MARK = struct.pack("<I", 0x11223344)


def test_xdp_adjust_head_grows_and_shrinks_the_packet():
    result = xdp(ADJUST.format(helper=HEAD, offset=-4, field=DATA))
    assert result.retval == XDP_PASS
    assert result.data_out == MARK + FRAME
    result = xdp(ADJUST.format(helper=HEAD, offset=14, field=DATA))
    assert result.data_out == MARK + FRAME[18:]


@pytest.mark.parametrize(
    ("offset", "ok"),
    [
        (-(256 - 40), True),
        (-(256 - 40) - 1, False),
        (len(FRAME) - 14, True),
        (len(FRAME) - 13, False),
    ],
)
def test_xdp_adjust_head_limits(offset, ok):
    result = xdp(ADJUST.format(helper=HEAD, offset=offset, field=DATA))
    assert result.retval == (XDP_PASS if ok else neg32(errno.EINVAL))


def test_xdp_adjust_head_moves_metadata_along():
    meta = b"\xaa\xbb\xcc\xdd"
    ctx = struct.pack("<6I", 4, 4 + len(FRAME), 0, 0, 0, 0)
    result = xdp(ADJUST.format(helper=HEAD, offset=-8, field=DATA), data=meta + FRAME, ctx=ctx)
    assert result.retval == XDP_PASS
    # As in the kernel, the old metadata bytes stay where they were (now data).
    assert result.data_out == meta + MARK + meta + FRAME
    assert struct.unpack("<6I", result.ctx_out)[:2] == (4, 4 + 8 + len(FRAME))


def test_xdp_adjust_tail_grows_zero_filled_and_shrinks():
    result = xdp(ADJUST.format(helper=TAIL, offset=10, field=DATA))
    assert result.data_out == MARK + FRAME[4:] + bytes(10)
    result = xdp(ADJUST.format(helper=TAIL, offset=-(len(FRAME) - 14), field=DATA))
    assert result.data_out == MARK + FRAME[4:14]
    result = xdp(ADJUST.format(helper=TAIL, offset=-(len(FRAME) - 13), field=DATA))
    assert result.retval == neg32(errno.EINVAL)
    # The frame is a page: 256 headroom + data + tailroom up to 4096 - 320.
    room = 4096 - 320 - 256 - len(FRAME)
    assert xdp(ADJUST.format(helper=TAIL, offset=room, field=DATA)).retval == XDP_PASS
    result = xdp(ADJUST.format(helper=TAIL, offset=room + 1, field=DATA))
    assert result.retval == neg32(errno.EINVAL)


def test_xdp_adjust_meta():
    result = xdp(ADJUST.format(helper=META, offset=-8, field=DATA_META))
    assert result.retval == XDP_PASS
    assert result.data_out == MARK + bytes(4) + FRAME
    assert xdp(ADJUST.format(helper=META, offset=-6, field=DATA_META)).retval == neg32(errno.EACCES)
    assert xdp(ADJUST.format(helper=META, offset=-36, field=DATA_META)).retval == neg32(
        errno.EACCES
    )
    assert xdp(ADJUST.format(helper=META, offset=4, field=DATA_META)).retval == neg32(errno.EINVAL)


def test_old_packet_bytes_are_out_of_bounds_after_shrinking():
    source = """
    r6 = r1
    r7 = *(u32 *)(r6 + 0)
    r2 = 14
    call 44
    r0 = *(u8 *)(r7 + 0)
    exit
    """
    with pytest.raises(ProgramFault):
        xdp(source)


# -- checksums ----------------------------------------------------------------------------


def ones_sum(data: bytes) -> int:
    """RFC 1071 sum of big-endian 16-bit words, folded."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f">{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def swap16(value: int) -> int:
    return (value & 0xFF) << 8 | value >> 8


def checksum(data: bytes) -> int:
    return ~ones_sum(data) & 0xFFFF


def ipv4_udp(src: bytes, dst: bytes, payload: bytes) -> bytes:
    udp_len = 8 + len(payload)
    header = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 1, 0, 64, 17, 0, src, dst)
    header = header[:10] + struct.pack(">H", checksum(header)) + header[12:]
    pseudo = src + dst + struct.pack(">BBH", 0, 17, udp_len)
    udp = struct.pack(">HHHH", 1234, 53, udp_len, 0) + payload
    udp = udp[:6] + struct.pack(">H", checksum(pseudo + udp) or 0xFFFF) + udp[8:]
    return bytes(6) + bytes.fromhex("020000000002") + b"\x08\x00" + header + udp


def udp_ok(frame: bytes) -> bool:
    ip, udp = frame[14:34], frame[34:]
    pseudo = ip[12:20] + struct.pack(">BBH", 0, 17, len(udp))
    return checksum(ip) == 0 and checksum(pseudo + udp) == 0


# Rewrite the destination address (offset 30) to {new} with skb_load/store_bytes,
# then fix the IP checksum (offset 24) and the UDP one (offset 40, pseudo header).
REWRITE_DADDR = """
r6 = r1
r1 = r6
r2 = 30
r3 = r10
r3 += -8
r4 = 4
call 26
r7 = *(u32 *)(r10 - 8)
r8 = {new} ll
*(u32 *)(r10 - 4) = r8
r1 = r6
r2 = 30
r3 = r10
r3 += -4
r4 = 4
r5 = 0
call 9
r1 = r6
r2 = 24
r3 = r7
r4 = r8
r5 = 4
call 10
if r0 != 0 goto out
r1 = r6
r2 = 40
r3 = r7
r4 = r8
r5 = {l4_flags}
call 11
out:
exit
"""


def tc(source: str, data: bytes):
    return test_run(assemble(source), ProgramType.SCHED_CLS, data=data, helpers=HELPERS)


def test_l3_and_l4_csum_replace_keep_checksums_valid():
    frame = ipv4_udp(bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), b"hello world!")
    assert udp_ok(frame)
    new = bytes([192, 168, 7, 9])
    result = tc(REWRITE_DADDR.format(new=struct.unpack("<I", new)[0], l4_flags=0x14), frame)
    assert result.retval == 0
    assert result.data_out[30:34] == new
    assert udp_ok(result.data_out)
    # Without BPF_F_PSEUDO_HDR the result is the same on a CHECKSUM_NONE skb.
    result = tc(REWRITE_DADDR.format(new=struct.unpack("<I", new)[0], l4_flags=4), frame)
    assert udp_ok(result.data_out)


def test_mark_mangled_0_keeps_a_zero_udp_checksum():
    frame = bytearray(ipv4_udp(bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), b"x"))
    frame[40:42] = b"\0\0"
    new = struct.unpack("<I", bytes([1, 2, 3, 4]))[0]
    result = tc(REWRITE_DADDR.format(new=new, l4_flags=0x24), bytes(frame))
    assert result.retval == 0
    assert result.data_out[40:42] == b"\0\0"
    assert checksum(result.data_out[14:34]) == 0


@pytest.mark.parametrize(
    ("offset", "flags", "expected"),
    [
        (24, 3, errno.EINVAL),
        (25, 4, errno.EFAULT),
        (24, 0x100, errno.EINVAL),
        (200, 4, errno.EFAULT),
    ],
)
def test_l3_csum_replace_errors(offset, flags, expected):
    frame = ipv4_udp(bytes(4), bytes(4), b"")
    source = f"r2 = {offset}\nr3 = 0\nr4 = 0\nr5 = {flags}\ncall 10\nexit"
    assert tc(source, frame).retval == neg32(expected)


CSUM_DIFF = """
r1 = {a} ll
r2 = {a_size}
r3 = {b} ll
r4 = {b_size}
r5 = {seed}
call 28
exit
"""


def test_csum_diff_matches_a_reference_checksum():
    context = ExecutionContext()
    old = bytes([10, 0, 0, 1, 10, 0, 0, 2])
    new = bytes([192, 168, 1, 1, 10, 0, 0, 2])
    a = context.memory.allocate_from(old, "a")
    b = context.memory.allocate_from(new, "b")
    engine = None

    def diff(a_addr, a_size, b_addr, b_size, seed=0):
        nonlocal engine
        source = CSUM_DIFF.format(a=a_addr, a_size=a_size, b=b_addr, b_size=b_size, seed=seed)
        engine = Interpreter(assemble(source), helpers=HELPERS, memory=context.memory)
        try:
            return engine.run()
        finally:
            engine.close()

    assert diff(0, 0, b.start, 4) == struct.unpack("<I", new[:4])[0]
    assert diff(a.start, 4, 0, 0) == ~struct.unpack("<I", old[:4])[0] & M32
    # Seeding with a header's sum and folding gives the sum of the new header;
    # the helper sums 16-bit words in memory (here little-endian) order.
    tail = b"\x12\x34\x56\x78"
    folded = diff(a.start, 8, b.start, 8, seed=swap16(ones_sum(old + tail)))
    while folded >> 16:
        folded = (folded & 0xFFFF) + (folded >> 16)
    assert swap16(folded) == ones_sum(new + tail)
    assert diff(a.start, 3, b.start, 4) == -errno.EINVAL & ((1 << 64) - 1)
    big = context.memory.allocate(516, "big")
    assert diff(big.start, 260, big.start, 256) == -errno.EINVAL & ((1 << 64) - 1)


def test_skb_load_bytes_past_the_end_is_efault_and_zeroes():
    source = """
    r6 = r1
    r1 = -1 ll
    *(u64 *)(r10 - 8) = r1
    r1 = r6
    r2 = {offset}
    r3 = r10
    r3 += -8
    r4 = 8
    call 26
    r1 = *(u64 *)(r10 - 8)
    r0 <<= 32
    r0 |= r1
    exit
    """
    frame = FRAME
    assert (
        tc(source.format(offset=len(frame) - 8), frame).retval
        == struct.unpack("<I", frame[-8:-4])[0]
    )
    assert tc(source.format(offset=len(frame) - 7), frame).retval == 0


def test_skb_change_tail_and_head():
    grow = "r6 = r1\nr2 = {size}\nr3 = 0\ncall 38\nexit"
    result = tc(grow.format(size=len(FRAME) + 6), FRAME)
    assert result.retval == 0
    assert result.data_out == FRAME + bytes(6)
    result = tc(grow.format(size=20), FRAME)
    assert result.data_out == FRAME[:20]
    assert tc(grow.format(size=10), FRAME).retval == neg32(errno.EINVAL)
    head = "r2 = {room}\nr3 = 0\ncall 43\nexit"
    result = tc(head.format(room=8), FRAME)
    assert result.retval == 0
    assert result.data_out == bytes(8) + FRAME
    # Beyond the headroom the kernel reallocates the head (skb_cow) and succeeds,
    # up to BPF_SKB_MAX_LEN (16064 bytes); longer is EINVAL.
    result = tc(head.format(room=4096), FRAME)
    assert result.retval == 0
    assert result.data_out == bytes(4096) + FRAME
    assert tc(head.format(room=16064 - len(FRAME) + 1), FRAME).retval == neg32(errno.EINVAL)


def test_redirect_returns_the_action_and_records_the_target():
    assert xdp("r1 = 3\nr2 = 0\ncall 23\nexit").retval == 4
    assert xdp("r1 = 3\nr2 = 1\ncall 23\nexit").retval == 0
    assert tc("r1 = 3\nr2 = 1\ncall 23\nexit", FRAME).retval == 7
    assert tc("r1 = 3\nr2 = 2\ncall 23\nexit", FRAME).retval == 2


# -- bpf_xdp_load_bytes / store_bytes / get_buff_len (189, 190, 188) ---------------------

LOAD_BYTES = """
r6 = r1
r1 = r6
r2 = {offset}
r3 = r10
r3 += -8
r4 = {size}
call 189
if r0 != 0 goto out
r0 = *(u32 *)(r10 - 8)
out:
exit
"""

STORE_BYTES = """
r6 = r1
*(u32 *)(r10 - 8) = 0x11223344
r1 = r6
r2 = {offset}
r3 = r10
r3 += -8
r4 = 4
call 190
exit
"""


@pytest.mark.parametrize(
    ("offset", "size", "expected"),
    [
        (0, 4, int.from_bytes(FRAME[:4], "little")),
        (len(FRAME) - 4, 4, int.from_bytes(FRAME[-4:], "little")),
        (len(FRAME) - 3, 4, neg32(errno.EINVAL)),  # past data_end
        (0x10000, 4, neg32(errno.EFAULT)),  # offsets above 0xffff, as bpf_xdp_pointer
    ],
)
def test_xdp_load_bytes(offset, size, expected):
    assert xdp(LOAD_BYTES.format(offset=offset, size=size)).retval == expected


def test_xdp_store_bytes_writes_the_packet_and_refuses_past_the_end():
    run = xdp(STORE_BYTES.format(offset=14))
    assert run.retval == 0
    assert run.data_out[14:18] == MARK and run.data_out[:14] == FRAME[:14]
    assert xdp(STORE_BYTES.format(offset=len(FRAME) - 2)).retval == neg32(errno.EINVAL)


def test_xdp_get_buff_len():
    assert xdp("call 188\nexit").retval == len(FRAME)
