"""Packet helpers: xdp_adjust_head/tail/meta, checksums, skb bytes and size, redirect.

The packet is reached through the program's context (`ContextRegion`):
its `pointers` table holds data, data_end and data_meta, and the hook that
built the packet (`hooks.test_run`) adds the bounds of the buffer around
it: `hard_start` / `hard_end` for XDP (the frame's start and the end of
its usable part, before the skb_shared_info reserve) and `head` / `end`
for an skb. A helper that moves the packet's bounds updates `pointers`
and replaces the live `packet` region by one over the new
[data_meta, data_end), so the interpreter's bounds checks follow.

Checksums are computed on 16-bit words in memory order, so values the
program passes (`from`, `to`, a seed) are used in the byte order they
have in memory, as in the kernel. A test-run skb is CHECKSUM_NONE, so
BPF_F_PSEUDO_HDR does not change the packet (it only matters for
skb->csum of CHECKSUM_COMPLETE / PARTIAL packets, not modelled), and
BPF_F_RECOMPUTE_CSUM / BPF_F_INVALIDATE_HASH of skb_store_bytes are
accepted and ignored for the same reason.

skb_change_head / skb_change_tail use the test run's buffer (64 bytes of
headroom, the tailroom of one page) and, where the kernel would reallocate
a bigger buffer, move the packet to one (`runtime.packet_buffer`).
"""

from __future__ import annotations

import ctypes
import errno

from ...errors import ProgramFault
from ...platform.helper_ids import HelperId
from ..helpers import HelperEnv, HelperSpec
from ..memory import ContextRegion, Memory, Region
from ..packet_buffer import ensure_room
from . import helper_spec

ETH_HLEN = 14
XDP_FRAME_SIZE = 40
"""sizeof(struct xdp_frame) on x86-64: room the kernel keeps at the frame's start."""
XDP_METADATA_MAX = 32

XDP_REDIRECT = 4
TC_ACT_REDIRECT = 7
BPF_F_INGRESS = 1

BPF_F_RECOMPUTE_CSUM = 1
BPF_F_INVALIDATE_HASH = 2
BPF_F_HDR_FIELD_MASK = 0xF
BPF_F_PSEUDO_HDR = 1 << 4
BPF_F_MARK_MANGLED_0 = 1 << 5
BPF_F_MARK_ENFORCE = 1 << 6
CSUM_MANGLED_0 = 0xFFFF
ENOTSUPP = 524
"""The kernel-internal ENOTSUPP helpers return to programs."""

BPF_SKB_MAX_LEN = 4 * 4096 - 320
"""BPF_SKB_MAX_LEN = SKB_MAX_ALLOC: SKB_MAX_ORDER(0, 2) on x86-64, four pages less the
shared info (16064): the longest packet skb_change_head/tail and adjust_room make."""

_M16 = 0xFFFF
_M32 = 0xFFFFFFFF


def _signed32(value: int) -> int:
    value &= _M32
    return value - (1 << 32) if value & 0x80000000 else value


def context(env: HelperEnv, pointer: int) -> ContextRegion:
    """The context region `pointer` (r1 of a packet helper) points to."""
    region = env.memory.find(pointer)
    if not isinstance(region, ContextRegion) or region.start != pointer:
        raise ProgramFault(f"0x{pointer:x} is not a context pointer", address=pointer)
    return region


def _is_xdp(ctx: ContextRegion) -> bool:
    return ctx.access.layout.name == "xdp_md"


def _packet_region(memory: Memory, ctx: ContextRegion) -> Region | None:
    """The live `packet` region of `ctx`'s packet, found at data_meta or in the buffer.

    JIT-compiled xdp_adjust_* move the pointers natively without touching
    the region table, so the region may no longer start at data_meta: then
    it is the `packet` region inside the frame (or skb buffer) bounds.
    """
    p = ctx.pointers
    found = memory.find(p["data_meta"])
    if found is not None and found.name == "packet":
        return found
    low = p.get("hard_start", p.get("head"))
    high = p.get("hard_end", p.get("end"))
    if low is None or high is None:
        return None
    for region in memory:
        if region.name == "packet" and low <= region.start and region.end <= high:
            return region
    return None


def set_packet_bounds(memory: Memory, ctx: ContextRegion, start: int, end: int) -> None:
    """Replace the live `packet` region of `ctx` by one over [start, end)."""
    old = _packet_region(memory, ctx)
    if old is None:
        raise ProgramFault("the context's packet is not a live region")
    if (old.start, old.end) == (start, end):
        return
    buffer = (ctypes.c_ubyte * (end - start)).from_address(start)
    memory.remove(old)
    memory.add(Region(start, end - start, True, "packet", buffer))


def sync_packet_region(memory: Memory, ctx: ContextRegion) -> None:
    """Make the `packet` region match [data_meta, data_end) again.

    For engines whose native helpers moved the packet pointers (JIT code
    does not edit the region table): call before Python code checks packet
    memory through `memory` in the same run. No-op when already in step or
    when `ctx` has no packet.
    """
    p = ctx.pointers
    if "data_meta" not in p or "data_end" not in p:
        return
    region = memory.find(p["data_meta"])
    if region is not None and region.name == "packet" and region.end == p["data_end"]:
        if region.start == p["data_meta"]:
            return
    if _packet_region(memory, ctx) is not None:
        set_packet_bounds(memory, ctx, p["data_meta"], p["data_end"])


# -- XDP -------------------------------------------------------------------------------


def _xdp_bounds(ctx: ContextRegion) -> tuple[int, int] | None:
    """The frame [hard_start, hard_end) of an XDP context; None for any other context."""
    p = ctx.pointers
    if not _is_xdp(ctx) or "hard_start" not in p or "hard_end" not in p:
        return None
    return p["hard_start"], p["hard_end"]


def xdp_adjust_head(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Move data by the signed offset r2 (metadata moves with it): 0 or -EINVAL."""
    ctx = context(env, r1)
    bounds = _xdp_bounds(ctx)
    if bounds is None:
        return -ENOTSUPP
    p = ctx.pointers
    offset = _signed32(r2)
    metalen = p["data"] - p["data_meta"]
    data = p["data"] + offset
    if data < bounds[0] + XDP_FRAME_SIZE + metalen or data > p["data_end"] - ETH_HLEN:
        return -errno.EINVAL
    if metalen:
        ctypes.memmove(p["data_meta"] + offset, p["data_meta"], metalen)
    set_packet_bounds(env.memory, ctx, p["data_meta"] + offset, p["data_end"])
    p["data_meta"] += offset
    p["data"] = data
    return 0


def xdp_adjust_meta(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Move data_meta by r2: 0, -EINVAL out of the headroom, -EACCES for a bad length."""
    ctx = context(env, r1)
    bounds = _xdp_bounds(ctx)
    if bounds is None:
        return -ENOTSUPP
    p = ctx.pointers
    meta = p["data_meta"] + _signed32(r2)
    metalen = p["data"] - meta
    if meta < bounds[0] + XDP_FRAME_SIZE or meta > p["data"]:
        return -errno.EINVAL
    if metalen % 4 or metalen > XDP_METADATA_MAX:
        return -errno.EACCES
    set_packet_bounds(env.memory, ctx, meta, p["data_end"])
    p["data_meta"] = meta
    return 0


def xdp_adjust_tail(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Move data_end by r2 (growing zero-fills, up to the frame's end): 0 or -EINVAL.

    A multi-buffer frame grows or shrinks at its last fragment instead
    (`_frags_adjust_tail`).
    """
    ctx = context(env, r1)
    bounds = _xdp_bounds(ctx)
    if bounds is None:
        return -ENOTSUPP
    p = ctx.pointers
    offset = _signed32(r2)
    if "nr_frags" in p and p["nr_frags"]:
        return _frags_adjust_tail(env, ctx, offset)
    data_end = p["data_end"] + offset
    if data_end > bounds[1] or data_end < p["data"] + ETH_HLEN:
        return -errno.EINVAL
    if offset > 0:
        ctypes.memset(p["data_end"], 0, offset)
    set_packet_bounds(env.memory, ctx, p["data_meta"], data_end)
    p["data_end"] = data_end
    return 0


XDP_FRAG_SIZE = 4096
"""rxq->frag_size of a test run: a fragment may grow to the end of its page."""


def _frags_adjust_tail(env: HelperEnv, ctx: ContextRegion, offset: int) -> int:
    """bpf_xdp_frags_increase_tail / bpf_xdp_frags_shrink_tail (net/core/filter.c).

    Growing zero-fills the last fragment up to the end of its page
    (-EINVAL beyond). Shrinking takes bytes from the last fragments,
    releasing those it empties, and may not leave less than ETH_HLEN bytes
    (-EINVAL); once no fragment is left, the rest comes off the linear part.
    """
    p = ctx.pointers
    nr_frags = p["nr_frags"]
    if offset >= 0:
        last = nr_frags - 1
        length = p[f"frag{last}_len"]
        if offset > XDP_FRAG_SIZE - length:
            return -errno.EINVAL
        ctypes.memset(p[f"frag{last}"] + length, 0, offset)
        p[f"frag{last}_len"] = length + offset
        return 0
    shrink = -offset
    total = p["data_end"] - p["data"] + sum(p[f"frag{i}_len"] for i in range(nr_frags))
    if shrink > total - ETH_HLEN:
        return -errno.EINVAL
    for i in range(nr_frags - 1, -1, -1):
        if not shrink:
            break
        length = p[f"frag{i}_len"]
        take = min(shrink, length)
        shrink -= take
        p[f"frag{i}_len"] = length - take
        if take == length:
            nr_frags -= 1
    p["nr_frags"] = nr_frags
    if not nr_frags and shrink:
        data_end = p["data_end"] - shrink
        set_packet_bounds(env.memory, ctx, p["data_meta"], data_end)
        p["data_end"] = data_end
    return 0


# -- checksums -------------------------------------------------------------------------


def _fold32(total: int) -> int:
    """A sum folded to 32 bits with end-around carry (0 only for an all-zero input)."""
    return 0 if total == 0 else (total - 1) % _M32 + 1


def _fold16(total: int) -> int:
    while total >> 16:
        total = (total & _M16) + (total >> 16)
    return total


def csum_diff(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """The 32-bit checksum of ~from (r1, r2 bytes) and to (r3, r4 bytes) seeded with r5."""
    from_size, to_size = r2 & _M32, r4 & _M32
    if (from_size | to_size) & 3 or from_size + to_size > 512:
        return -errno.EINVAL
    old = env.memory.read(r1, from_size) if from_size else b""
    new = env.memory.read(r3, to_size) if to_size else b""
    total = r5 & _M32
    for k in range(0, from_size, 4):
        total += ~int.from_bytes(old[k : k + 4], "little") & _M32
    for k in range(0, to_size, 4):
        total += int.from_bytes(new[k : k + 4], "little")
    return _fold32(total)


def _skb_data(env: HelperEnv, ctx: ContextRegion, offset: int, size: int) -> int | None:
    """The address of [offset, offset+size) from skb->data, or None past the packet."""
    p = ctx.pointers
    if offset < 0 or p["data"] + offset + size > p["data_end"]:
        return None
    return p["data"] + offset


def _replace(address: int, diff: int) -> int:
    """csum_replace_by_diff on the 16-bit checksum at `address`; returns the new value."""
    word = ctypes.c_uint16.from_address(address)
    word.value = ~_fold16((~word.value & _M16) + _fold16(diff)) & _M16
    return word.value


def _csum_diff_of(size: int, old: int, new: int) -> int | None:
    """The 32-bit sum that turns `old` into `new` (size 2 or 4), or None for a bad size."""
    if size == 2:
        return (~old & _M16) + (new & _M16)
    if size == 4:
        old32, new32 = old & _M32, new & _M32
        return (~old32 & _M16) + (~(old32 >> 16) & _M16) + (new32 & _M16) + (new32 >> 16)
    return None


def l3_csum_replace(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Fix the checksum at offset r2 for a field changed from r3 to r4 (r5: size, flags)."""
    ctx = context(env, r1)
    flags = r5
    if flags & ~BPF_F_HDR_FIELD_MASK:
        return -errno.EINVAL
    offset = r2 & _M32
    if offset > 0xFFFF or offset & 1:
        return -errno.EFAULT
    address = _skb_data(env, ctx, offset, 2)
    if address is None:
        return -errno.EFAULT
    size = flags & BPF_F_HDR_FIELD_MASK
    if size == 0:
        if r3:
            return -errno.EINVAL
        _replace(address, r4 & _M32)
        return 0
    diff = _csum_diff_of(size, r3, r4)
    if diff is None:
        return -errno.EINVAL
    _replace(address, diff)
    return 0


def l4_csum_replace(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Like l3_csum_replace, plus BPF_F_PSEUDO_HDR and BPF_F_MARK_MANGLED_0 (UDP's 0)."""
    ctx = context(env, r1)
    flags = r5
    allowed = BPF_F_MARK_MANGLED_0 | BPF_F_MARK_ENFORCE | BPF_F_PSEUDO_HDR | BPF_F_HDR_FIELD_MASK
    if flags & ~allowed:
        return -errno.EINVAL
    offset = r2 & _M32
    if offset > 0xFFFF or offset & 1:
        return -errno.EFAULT
    address = _skb_data(env, ctx, offset, 2)
    if address is None:
        return -errno.EFAULT
    mangled_0 = bool(flags & BPF_F_MARK_MANGLED_0)
    word = ctypes.c_uint16.from_address(address)
    if mangled_0 and not flags & BPF_F_MARK_ENFORCE and not word.value:
        return 0  # a UDP packet without checksum stays without
    size = flags & BPF_F_HDR_FIELD_MASK
    if size == 0:
        if r3:
            return -errno.EINVAL
        diff = r4 & _M32
    else:
        diff = _csum_diff_of(size, r3, r4)
        if diff is None:
            return -errno.EINVAL
    _replace(address, diff)
    if mangled_0 and not word.value:
        word.value = CSUM_MANGLED_0
    return 0


# -- xdp bytes -------------------------------------------------------------------------


def _xdp_segments(ctx: ContextRegion) -> list[tuple[int, int]]:
    """(address, length) of the linear part, then of each fragment of a multi-buffer frame.

    The test run records fragments in the context's pointer table
    (`nr_frags`, `frag<i>`, `frag<i>_len`), as skb_shared_info holds them.
    """
    pointers = ctx.pointers
    data = pointers["data"]
    segments = [(data, pointers["data_end"] - data)]
    nr_frags = pointers["nr_frags"] if "nr_frags" in pointers else 0
    for i in range(nr_frags):
        segments.append((pointers[f"frag{i}"], pointers[f"frag{i}_len"]))
    return segments


def _xdp_span(ctx: ContextRegion, offset: int, size: int) -> list[tuple[int, int]] | int:
    """The (address, length) pieces of [offset, offset+size) of an XDP frame, or -errno.

    As the kernel's bpf_xdp_pointer / bpf_xdp_copy_buf: offsets and sizes
    above 0xffff give -EFAULT, a range past the frame (linear part and
    fragments) -EINVAL.
    """
    if not _is_xdp(ctx):
        return -errno.EINVAL
    if offset > 0xFFFF or size > 0xFFFF:
        return -errno.EFAULT
    segments = _xdp_segments(ctx)
    if offset + size > sum(length for _, length in segments):
        return -errno.EINVAL
    pieces = []
    for address, length in segments:
        if size and offset < length:
            take = min(size, length - offset)
            pieces.append((address + offset, take))
            size -= take
            offset = 0
        else:
            offset -= length
    return pieces


def xdp_load_bytes(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Copy r4 bytes at offset r2 of the XDP frame to r3: 0, -EFAULT or -EINVAL."""
    ctx = context(env, r1)
    size = r4 & _M32
    env.memory.check(r3, size, write=True)
    pieces = _xdp_span(ctx, r2 & _M32, size)
    if isinstance(pieces, int):
        return pieces
    env.memory.write(r3, b"".join(ctypes.string_at(a, n) for a, n in pieces))
    return 0


def xdp_store_bytes(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Copy r4 bytes from r3 to offset r2 of the XDP frame: 0, -EFAULT or -EINVAL."""
    ctx = context(env, r1)
    size = r4 & _M32
    data = env.memory.read(r3, size)
    pieces = _xdp_span(ctx, r2 & _M32, size)
    if isinstance(pieces, int):
        return pieces
    at = 0
    for address, length in pieces:
        ctypes.memmove(address, data[at : at + length], length)
        at += length
    return 0


def xdp_get_buff_len(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """The length of the XDP frame: the linear part plus the fragments."""
    ctx = context(env, r1)
    if not _is_xdp(ctx):
        return -errno.EINVAL
    return sum(length for _, length in _xdp_segments(ctx))


# -- skb bytes and size ----------------------------------------------------------------


def skb_load_bytes(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Copy r4 bytes at offset r2 from skb->data to r3: 0, or -EFAULT (r3 zeroed)."""
    ctx = context(env, r1)
    size = r4 & _M32
    env.memory.check(r3, size, write=True)
    offset = r2 & _M32
    address = _skb_data(env, ctx, offset, size) if offset <= 0xFFFF else None
    if address is None:
        env.memory.write(r3, bytes(size))
        return -errno.EFAULT
    env.memory.write(r3, ctypes.string_at(address, size))
    return 0


def skb_store_bytes(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Copy r4 bytes from r3 to offset r2 of skb->data: 0, -EINVAL (flags) or -EFAULT."""
    ctx = context(env, r1)
    if r5 & ~(BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH):
        return -errno.EINVAL
    offset, size = r2 & _M32, r4 & _M32
    if offset > 0x7FFFFFFF:
        return -errno.EFAULT
    data = env.memory.read(r3, size)
    address = _skb_data(env, ctx, offset, size)
    if address is None:
        return -errno.EFAULT
    ctypes.memmove(address, data, size)
    return 0


def _set_skb_len(ctx: ContextRegion) -> None:
    length = ctx.pointers["data_end"] - ctx.pointers["data"]
    ctx.view[0:4] = length.to_bytes(4, "little")  # __sk_buff.len


def skb_change_tail(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Trim or grow (zero-filled) the packet to r2 bytes; flags r3 must be 0."""
    ctx = context(env, r1)
    p = ctx.pointers
    if _is_xdp(ctx) or "end" not in p:
        return -ENOTSUPP
    new_len = r2 & _M32
    if r3 or new_len > BPF_SKB_MAX_LEN or new_len < ETH_HLEN:
        return -errno.EINVAL
    # skb_pad / pskb_expand_head: a longer packet than the tailroom allows
    # moves to a bigger buffer.
    if not ensure_room(ctx, tail=new_len - (p["data_end"] - p["data"])):
        return -errno.ENOMEM
    data_end = p["data"] + new_len
    if data_end > p["data_end"]:
        ctypes.memset(p["data_end"], 0, data_end - p["data_end"])
    set_packet_bounds(env.memory, ctx, p["data_meta"], data_end)
    p["data_end"] = data_end
    _set_skb_len(ctx)
    return 0


def skb_change_head(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Add r2 zeroed bytes in front of the packet; flags r3 must be 0."""
    ctx = context(env, r1)
    p = ctx.pointers
    if _is_xdp(ctx) or "head" not in p:
        return -ENOTSUPP
    room = r2 & _M32
    if r3 or room > BPF_SKB_MAX_LEN or p["data_end"] - p["data"] + room > BPF_SKB_MAX_LEN:
        return -errno.EINVAL
    if not ensure_room(ctx, head=room):  # skb_cow: reallocate the head when short
        return -errno.ENOMEM
    data = p["data"] - room
    ctypes.memset(data, 0, room)
    set_packet_bounds(env.memory, ctx, data, p["data_end"])
    p["data"] = p["data_meta"] = data
    _set_skb_len(ctx)
    return 0


# -- redirect --------------------------------------------------------------------------


def redirect(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Redirect to ifindex r1: XDP_REDIRECT (XDP) or TC_ACT_REDIRECT, else XDP_ABORTED / TC_ACT_SHOT.

    The kernel's XDP version accepts no flags; the tc one only BPF_F_INGRESS
    (more is TC_ACT_SHOT). The target goes to `env.data['redirect']` as
    `{"ifindex": …, "flags": …}`.
    """
    ctx = env.memory.find(env.ctx)
    xdp = isinstance(ctx, ContextRegion) and _is_xdp(ctx)
    ifindex, flags = r1 & _M32, r2
    if xdp:
        if flags:
            return 0  # XDP_ABORTED
    elif flags & ~BPF_F_INGRESS:
        return 2  # TC_ACT_SHOT
    env.data["redirect"] = {"ifindex": ifindex, "flags": flags}
    return XDP_REDIRECT if xdp else TC_ACT_REDIRECT


HELPERS: list[HelperSpec] = [
    helper_spec(HelperId.XDP_ADJUST_HEAD, xdp_adjust_head),
    helper_spec(HelperId.XDP_ADJUST_META, xdp_adjust_meta),
    helper_spec(HelperId.XDP_ADJUST_TAIL, xdp_adjust_tail),
    helper_spec(HelperId.CSUM_DIFF, csum_diff),
    helper_spec(HelperId.L3_CSUM_REPLACE, l3_csum_replace),
    helper_spec(HelperId.L4_CSUM_REPLACE, l4_csum_replace),
    helper_spec(HelperId.XDP_LOAD_BYTES, xdp_load_bytes),
    helper_spec(HelperId.XDP_STORE_BYTES, xdp_store_bytes),
    helper_spec(HelperId.XDP_GET_BUFF_LEN, xdp_get_buff_len),
    helper_spec(HelperId.SKB_LOAD_BYTES, skb_load_bytes),
    helper_spec(HelperId.SKB_STORE_BYTES, skb_store_bytes),
    helper_spec(HelperId.SKB_CHANGE_TAIL, skb_change_tail),
    helper_spec(HelperId.SKB_CHANGE_HEAD, skb_change_head),
    helper_spec(HelperId.REDIRECT, redirect),
]
"""The helpers of this module."""
