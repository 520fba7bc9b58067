"""`PacketBuffer`: the native buffer a packet sits in during a run, and how it grows.

A hook copies the packet into a buffer with headroom before it and
tailroom after it (an skb test run: 64 bytes in front, the rest of a page
behind), exposes the bytes the program may touch as the `packet` region of
the memory table, and reads the packet back after the run.

Helpers that add bytes (`bpf_skb_adjust_room`, `skb_change_head`,
`skb_change_tail`, `skb_vlan_push`) use the room there is. When there is
not enough, the kernel reallocates the skb's head (`pskb_expand_head`, via
`skb_cow_head`/`skb_pad`) and the helper succeeds; `ensure_room` does the
same here: a bigger buffer, the old bytes copied at the same distance from
`data`, every pointer of the context that pointed into the old buffer moved
by the same amount, and the `packet` region re-registered over the new
bytes. Programs never keep packet pointers across such a helper (the
verifier invalidates them), so moving the packet is invisible to them, as
in the kernel. Old buffers stay alive until the run ends.
"""

from __future__ import annotations

import ctypes

from .memory import ContextRegion, Memory, Region

__all__ = ["HEAD_ALIGN", "PacketBuffer", "ensure_room"]

HEAD_ALIGN = 64
"""New headroom comes in multiples of NET_SKB_PAD, as `__skb_cow` asks for it."""


class PacketBuffer:
    """A native packet buffer and the region over the part the program may touch."""

    def __init__(self, memory: Memory, total: int, data: bytes, at: int):
        self.buffer = (ctypes.c_ubyte * total)()
        self.base = ctypes.addressof(self.buffer)
        self.total = total
        ctypes.memmove(self.base + at, data, len(data))
        self.memory = memory
        self.region: Region | None = None
        self._retired: list[ctypes.Array] = []  # buffers a reallocation replaced

    def expose(self, start: int, end: int) -> None:
        """Make `[base+start, base+end)` the live `packet` region."""
        chunk = (ctypes.c_ubyte * (end - start)).from_buffer(self.buffer, start)
        self.region = self.memory.add(Region(self.base + start, end - start, True, "packet", chunk))

    def read(self, start: int, end: int) -> bytes:
        """Bytes between two native addresses inside the buffer."""
        return ctypes.string_at(start, max(0, end - start))

    def release(self) -> None:
        """Take the packet out of the region table.

        Helpers that move the packet's bounds (xdp_adjust_head, …) replace
        the region by one over the new bounds, so look for it by place.
        """
        if self.region is None:
            return
        self._drop_regions(self.base, self.base + self.total)
        self.region = None

    def _drop_regions(self, start: int, end: int) -> None:
        for region in list(self.memory):
            if region.name == "packet" and start <= region.start < end:
                self.memory.remove(region)

    def reallocate(self, ctx: ContextRegion, extra_head: int, extra_tail: int) -> None:
        """Move the packet into a buffer `extra_head` + `extra_tail` bytes bigger.

        The old bytes land `extra_head` bytes further from the new start;
        every context pointer into the old buffer follows, `head` becomes the
        new start and `end` moves out by `extra_tail` as well.
        """
        old_base, old_total = self.base, self.total
        total = old_total + extra_head + extra_tail
        buffer = (ctypes.c_ubyte * total)()
        base = ctypes.addressof(buffer)
        ctypes.memmove(base + extra_head, old_base, old_total)
        delta = base + extra_head - old_base
        pointers = ctx.pointers
        for name in list(pointers):
            value = pointers[name]
            if old_base <= value <= old_base + old_total:
                pointers[name] = value + delta
        if "head" in pointers:
            pointers["head"] = base
        if "end" in pointers:
            pointers["end"] += extra_tail
        self._drop_regions(old_base, old_base + old_total)
        self._retired.append(self.buffer)
        self.buffer, self.base, self.total = buffer, base, total
        start, end = pointers["data_meta"], pointers["data_end"]
        chunk = (ctypes.c_ubyte * (end - start)).from_address(start)
        self.region = self.memory.add(Region(start, end - start, True, "packet", chunk))


def ensure_room(ctx: ContextRegion, head: int = 0, tail: int = 0) -> bool:
    """Make at least `head` bytes before `data` and `tail` after `data_end`.

    Reallocates as the kernel's `pskb_expand_head` when the context's packet
    lives in a `PacketBuffer` (`ctx.packet`); False when it cannot grow
    (no such buffer: the helper then fails with -ENOMEM as before).
    """
    p = ctx.pointers
    need_head = max(0, head - (p["data"] - p["head"])) if "head" in p else 0
    need_tail = max(0, tail - (p["end"] - p["data_end"])) if "end" in p else 0
    if not need_head and not need_tail:
        return True
    buffer = getattr(ctx, "packet", None)
    if not isinstance(buffer, PacketBuffer):
        return False
    grow_head = -(-need_head // HEAD_ALIGN) * HEAD_ALIGN
    grow_tail = -(-need_tail // HEAD_ALIGN) * HEAD_ALIGN
    buffer.reallocate(ctx, grow_head, grow_tail)
    return True
