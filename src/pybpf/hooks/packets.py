"""Packets as the kernel presents them to programs: XDP frames and sk_buffs.

Every packet hook (test runs, capture replay, live interfaces) builds a
program's packet and context here, so that a program sees the same
layout wherever it runs:

* `XdpFrame`: the frame in a page after `XDP_PACKET_HEADROOM` bytes of
  headroom (less the metadata), the `struct xdp_md` context, and, for a
  frame longer than the page holds, page-sized fragments as a multi-buffer
  frame (`bpf_prog_test_run_xdp` and the drivers).
* `SkbPacket`: the frame in a buffer after `NET_SKB_PAD` bytes of headroom,
  the `struct __sk_buff` context; tc programs start at the Ethernet header,
  the others (socket filters, cgroup_skb) at the network header.
* `skb_metadata`: what `eth_type_trans` derives from a frame on the
  loopback device (pkt_type, protocol), and the socket a cgroup_skb test
  run attaches.

A frame is built, its `ctx` address handed to an engine, then `release()`d;
what the program left (`data_out()`, the moved bounds in `pointers`) can
be read after the release.
"""

from __future__ import annotations

import ctypes
import errno

from ..errors import TestRunError
from ..platform.contexts import SK_BUFF, ContextAccess, StructLayout
from ..runtime.memory import Memory
from ..runtime.packet_buffer import PacketBuffer

__all__ = [
    "ETH_HLEN",
    "MAX_SKB_FRAGS",
    "NET_SKB_PAD",
    "PAGE_SIZE",
    "SKB_SHARED_INFO",
    "XDP_PACKET_HEADROOM",
    "SkbPacket",
    "XdpFrame",
    "get_field",
    "put_field",
    "skb_metadata",
]

XDP_PACKET_HEADROOM = 256
"""Bytes before the packet in an XDP test run (and in drivers)."""

ETH_HLEN = 14
"""Length of an Ethernet header; the shortest packet a test run accepts."""

PAGE_SIZE = 4096
SKB_SHARED_INFO = 320
"""SKB_DATA_ALIGN(sizeof(struct skb_shared_info)) on x86-64: the tailroom of both kinds."""

NET_SKB_PAD = 64
"""Headroom of an sk_buff (NET_SKB_PAD + NET_IP_ALIGN on x86-64)."""

MAX_SKB_FRAGS = 17
"""Fragments of a multi-buffer XDP frame (CONFIG_MAX_SKB_FRAGS, 17 by default)."""

SKB_MAX_LINEAR = PAGE_SIZE - NET_SKB_PAD - SKB_SHARED_INFO
"""The longest frame an sk_buff of one page holds (3712 bytes)."""

LOOPBACK_IFINDEX = 1

_PACKET_HOST, _PACKET_MULTICAST, _PACKET_OTHERHOST = 0, 2, 3
_AF_INET, _AF_INET6 = 2, 10
_ETH_P_IP, _ETH_P_IPV6 = 0x0800, 0x86DD


def get_field(buf: bytearray | bytes, layout: StructLayout, name: str) -> int:
    """The little-endian value of field `name` of `layout` in `buf`."""
    f = layout.field(name)
    return int.from_bytes(buf[f.offset : f.end], "little")


def put_field(buf: bytearray, layout: StructLayout, name: str, value: int) -> None:
    """Store `value` (truncated to the field's width) into field `name` of `layout` in `buf`."""
    f = layout.field(name)
    buf[f.offset : f.end] = (value & ((1 << (8 * f.size)) - 1)).to_bytes(f.size, "little")


class XdpFrame:
    """One XDP frame in native memory, with its `struct xdp_md` context region.

    `meta` bytes of metadata come first in `data` (they end up before
    `data`, after `data_meta`). `ctx` is the context's address for the
    engine; `pointers` the context's packet pointers, which helpers move
    (xdp_adjust_head/tail/meta), readable after `release()`.
    """

    def __init__(
        self,
        memory: Memory,
        access: ContextAccess,
        data: bytes,
        *,
        meta: int = 0,
        ingress_ifindex: int = LOOPBACK_IFINDEX,
        rx_queue_index: int = 0,
    ) -> None:
        size = len(data)
        headroom = XDP_PACKET_HEADROOM - meta
        linear = min(size, PAGE_SIZE - headroom - SKB_SHARED_INFO)
        # The rest goes to page-sized fragments, as bpf_prog_test_run_xdp does.
        frags = [data[at : at + PAGE_SIZE] for at in range(linear, size, PAGE_SIZE)]
        if len(frags) > MAX_SKB_FRAGS:
            raise TestRunError(
                f"a frame of {size} bytes needs {len(frags)} fragments; "
                f"the kernel allows {MAX_SKB_FRAGS}",
                errno.ENOMEM,
            )
        self._frag_buffers = [
            (ctypes.c_ubyte * PAGE_SIZE).from_buffer_copy(f.ljust(PAGE_SIZE, b"\0")) for f in frags
        ]
        self.memory = memory
        self.packet = PacketBuffer(memory, PAGE_SIZE, data[:linear], headroom)
        start = self.packet.base + headroom
        pointers = {"data_meta": start, "data": start + meta, "data_end": start + linear}
        pointers["nr_frags"] = len(frags)
        for i, (buffer, frag) in enumerate(zip(self._frag_buffers, frags, strict=True)):
            pointers[f"frag{i}"] = ctypes.addressof(buffer)
            pointers[f"frag{i}_len"] = len(frag)
        # The frame around the packet, for xdp_adjust_head/tail/meta (frame_sz is a page).
        pointers["hard_start"] = self.packet.base
        pointers["hard_end"] = self.packet.base + PAGE_SIZE - SKB_SHARED_INFO
        self.packet.expose(headroom, headroom + linear)
        # The context struct of the access (Linux's xdp_md, or eBPF for Windows' with
        # 64-bit pointers): its pointer fields come from `pointers`, not its bytes.
        layout = access.layout
        image = bytearray(layout.size)
        put_field(image, layout, "ingress_ifindex", ingress_ifindex)
        if any(f.name == "rx_queue_index" for f in layout.fields):
            put_field(image, layout, "rx_queue_index", rx_queue_index)
        self.region = memory.allocate_context(bytes(image), "ctx", access, pointers)
        # The region's native-backed table: what helpers (native or not) moved.
        self.pointers = self.region.pointers
        self.ctx = self.region.start
        self._released = False

    def release(self) -> None:
        """Take the packet and the context out of the memory's region table (once)."""
        if not self._released:
            self._released = True
            self.packet.release()
            self.memory.remove(self.region)

    def data_out(self) -> bytes:
        """The frame as the program left it: data_meta to data_end, then the fragments."""
        p = self.pointers
        out = self.packet.read(p["data_meta"], p["data_end"])
        # Fragments as the run left them (a helper may have trimmed them).
        for i in range(p["nr_frags"]):
            out += ctypes.string_at(p[f"frag{i}"], p[f"frag{i}_len"])
        return out

    def offsets(self) -> tuple[int, int]:
        """(data, data_end) as offsets from data_meta: what `xdp_md` reports back."""
        p = self.pointers
        return p["data"] - p["data_meta"], p["data_end"] - p["data_meta"]


class SkbPacket:
    """One frame as an sk_buff in native memory, with its `struct __sk_buff` region.

    `image` is the context's initial bytes (`skb_metadata` fills the
    fields the kernel derives from the frame); `at_l2`: the program sees
    the Ethernet header (tc), else `data` starts at the network header.
    The context region keeps the packet (`region.packet`) since growing
    helpers move it to a bigger buffer.
    """

    def __init__(
        self, memory: Memory, access: ContextAccess, data: bytes, image: bytes, *, at_l2: bool
    ) -> None:
        size = len(data)
        self.memory = memory
        self.at_l2 = at_l2
        self.packet = PacketBuffer(memory, PAGE_SIZE, data, NET_SKB_PAD)
        first = NET_SKB_PAD + (0 if at_l2 else ETH_HLEN)
        start = self.packet.base + first
        end = self.packet.base + NET_SKB_PAD + size
        pointers = {"data": start, "data_meta": start, "data_end": end}
        # The buffer around the packet, for skb_change_head/tail.
        pointers["head"] = self.packet.base
        pointers["end"] = self.packet.base + PAGE_SIZE - SKB_SHARED_INFO
        self.packet.expose(first, NET_SKB_PAD + size)
        self.region = memory.allocate_context(image, "ctx", access, pointers)
        self.region.packet = self.packet
        self.pointers = self.region.pointers
        self.ctx = self.region.start
        self._released = False

    def release(self) -> None:
        """Take the packet and the context out of the memory's region table (once).

        Without the Ethernet header in view, the kernel pushes it back as
        zeros after the run, and so does this."""
        if not self._released:
            self._released = True
            self.packet.release()
            self.memory.remove(self.region)
            if not self.at_l2:
                ctypes.memset(self.packet.base + NET_SKB_PAD, 0, ETH_HLEN)

    def data_out(self) -> bytes:
        """The frame as the program left it, from skb->data wherever helpers moved it
        (skb_change_head, adjust_room, vlan_pop); without the Ethernet header in view,
        from the zeroed Ethernet header."""
        first = self.pointers["data"] if self.at_l2 else self.packet.base + NET_SKB_PAD
        return self.packet.read(first, self.pointers["data_end"])

    def context_after(self) -> bytes:
        """The `struct __sk_buff` bytes as the program left them."""
        return self.region.read()


def eth_type_trans(frame: bytes) -> tuple[int, int]:
    """(pkt_type, protocol as the kernel stores it: big-endian u16 read as little-endian).

    As `eth_type_trans` on the loopback device, whose own address and
    broadcast address are both all zeros: all-zero is PACKET_HOST, every
    other group address (ff:ff:ff:ff:ff:ff too) PACKET_MULTICAST.
    """
    dest = frame[:6]
    if dest == bytes(6):
        pkt_type = _PACKET_HOST
    elif dest[0] & 1:
        pkt_type = _PACKET_MULTICAST
    else:
        pkt_type = _PACKET_OTHERHOST
    proto = int.from_bytes(frame[12:14], "big")
    if proto < 0x0600:  # an 802.3 length field: raw 802.3 (IPX) or 802.2 LLC
        proto = 0x0001 if frame[14:16] == b"\xff\xff" else 0x0004
    return pkt_type, int.from_bytes(proto.to_bytes(2, "big"), "little")


def skb_metadata(image: bytearray, frame: bytes, *, length: int, with_socket: bool) -> None:
    """Fill the `__sk_buff` fields the kernel derives from `frame` into `image`.

    len (`length`: the frame, or from the network header), pkt_type and
    protocol (eth_type_trans), ifindex (loopback); with `with_socket`, the
    socket bpf_prog_test_run_skb attaches for cgroup_skb: family and
    addresses from the network header (sk_rcv_saddr = saddr, sk_daddr =
    daddr), ports 0.
    """
    pkt_type, protocol = eth_type_trans(frame)
    put_field(image, SK_BUFF, "len", length)
    put_field(image, SK_BUFF, "pkt_type", pkt_type)
    put_field(image, SK_BUFF, "protocol", protocol)
    put_field(image, SK_BUFF, "ifindex", LOOPBACK_IFINDEX)
    if with_socket:
        _test_socket(image, frame)


def _test_socket(image: bytearray, frame: bytes) -> None:
    ethertype = int.from_bytes(frame[12:14], "big")
    l3 = frame[ETH_HLEN:]
    if ethertype == _ETH_P_IP:
        put_field(image, SK_BUFF, "family", _AF_INET)
        if len(l3) >= 20:
            image[96:100] = l3[12:16]  # local_ip4: the source address
            image[92:96] = l3[16:20]  # remote_ip4: the destination
    elif ethertype == _ETH_P_IPV6:
        put_field(image, SK_BUFF, "family", _AF_INET6)
        if len(l3) >= 40:
            image[116:132] = l3[8:24]  # local_ip6
            image[100:116] = l3[24:40]  # remote_ip6
