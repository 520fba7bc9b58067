"""The ports of a live packet hook: an interface through AF_PACKET, or a TAP device.

`PacketPort` receives every frame arriving on an interface through an
AF_PACKET socket with a TPACKET_V3 receive ring (blocks of frames the
kernel fills and hands over whole, mapped into this process: no copy and
no system call per frame) and sends with one `send()` per frame, past the
qdisc layer. Frames this process sends are not received back
(PACKET_IGNORE_OUTGOING), and the interface is put in promiscuous mode so
that a bump in the wire sees frames addressed to the next hop.
`tpacket_index` lists a ready block's frames as `IndexEntry` records in
native code, so that the replay loop runs them straight from the ring.

`TapPort` is a TAP device this process creates (or attaches to): frames
written to it arrive at the host's stack as if received on that device;
frames the host sends out of it are read back.

AF_PACKET sees a frame as the sending stack left it: a peer that offloads
checksums or segmentation (veth does by default) hands over frames with
unfinished checksums or longer than the MTU. A bump in the wire between
such peers needs those offloads off on the peers (`ethtool -K DEV tx off`);
`pybpf.testing.topology` does so. Frames whose VLAN tag the device
stripped are run without the tag.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import mmap
import os
import socket
import struct
from typing import Any

from llvmlite import ir

from ..errors import InterfaceError
from ..runtime.native.compiler import NativeModule
from ..runtime.native.irblocks import I32, I64, i64, load, store
from .capture_index import IndexEntry

__all__ = ["TPACKET3_HDR_SIZE", "PacketPort", "TapPort", "interface_index", "tpacket_index"]

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
PACKET_FANOUT = 18
PACKET_FANOUT_HASH = 0
PACKET_QDISC_BYPASS = 20
PACKET_IGNORE_OUTGOING = 23
TPACKET_V3 = 2
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000

# struct tpacket_block_desc: version, offset_to_priv, then tpacket_hdr_v1.
_BLOCK_STATUS = 8
_BLOCK_NUM_PKTS = 12
_BLOCK_FIRST = 16
# struct tpacket3_hdr
TPACKET3_HDR_SIZE = 48
"""sizeof(struct tpacket3_hdr): the least room one frame takes in a ring block."""
_PKT_NEXT = 0
_PKT_SEC = 4
_PKT_SNAPLEN = 12
_PKT_STATUS = 20
_PKT_MAC = 24


def interface_index(name: str) -> int:
    """The ifindex of interface `name` in this thread's namespace; InterfaceError if none."""
    try:
        return socket.if_nametoindex(name)
    except OSError:
        raise InterfaceError(f"interface {name!r} does not exist") from None


def _exists(name: str) -> bool:
    try:
        socket.if_nametoindex(name)
        return True
    except OSError:
        return False


def _flags(name: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14x", name.encode(), 0)
        return int(struct.unpack_from("16sH", fcntl.ioctl(s, SIOCGIFFLAGS, request))[1])


def _set_up(name: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14x", name.encode(), _flags(name) | IFF_UP)
        fcntl.ioctl(s, SIOCSIFFLAGS, request)


def _require_up(name: str) -> int:
    index = interface_index(name)
    if not _flags(name) & IFF_UP:
        raise InterfaceError(f"interface {name!r} is down (ip link set {name} up)")
    return index


class PacketPort:
    """Interface `name` through an AF_PACKET socket with a TPACKET_V3 receive ring of
    `blocks` blocks of `block_size` bytes; a block is handed over when full or after
    `retire_ms` milliseconds. With `fanout` (a group id), the socket joins that
    PACKET_FANOUT group: the group's sockets share the interface's frames, a flow
    (by hash) always to the same one."""

    def __init__(
        self,
        name: str,
        *,
        block_size: int = 1 << 17,
        blocks: int = 32,
        retire_ms: int = 1,
        fanout: int | None = None,
    ) -> None:
        self.name = name
        self.ifindex = _require_up(name)
        self.block_size, self.blocks = block_size, blocks
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError:
            raise InterfaceError(
                f"interface {name!r}: AF_PACKET needs CAP_NET_RAW (root, or unshare -Urn)"
            ) from None
        try:
            self._configure(retire_ms)
            if fanout is not None:
                value = fanout | (PACKET_FANOUT_HASH << 16)
                self.sock.setsockopt(SOL_PACKET, PACKET_FANOUT, value)
        except OSError as error:
            self.sock.close()
            raise InterfaceError(f"interface {name!r}: {error.strerror or error}") from None
        self._current = 0
        self._batch: _SendBatch | None = None

    def _configure(self, retire_ms: int) -> None:
        s = self.sock
        s.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
        s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        s.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
        frame = 2048
        frames = self.block_size // frame * self.blocks
        req = struct.pack("7I", self.block_size, self.blocks, frame, frames, retire_ms, 0, 0)
        s.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
        self.ring = mmap.mmap(s.fileno(), self.block_size * self.blocks)
        self._view: Any = ctypes.c_char.from_buffer(self.ring)
        self.base = ctypes.addressof(self._view)
        s.bind((self.name, ETH_P_ALL))
        mreq = struct.pack("iHH8s", self.ifindex, PACKET_MR_PROMISC, 0, b"")
        s.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        s.setblocking(False)

    def fileno(self) -> int:
        """The socket's descriptor (readable when a block is ready)."""
        return self.sock.fileno()

    def ready_block(self) -> int | None:
        """The address of the next block the kernel handed over, or None."""
        block = self.base + self._current * self.block_size
        status = ctypes.c_uint32.from_address(block + _BLOCK_STATUS).value
        return block if status & TP_STATUS_USER else None

    def release_block(self) -> None:
        """Give the current block back to the kernel and move to the next one."""
        block = self.base + self._current * self.block_size
        ctypes.c_uint32.from_address(block + _BLOCK_STATUS).value = TP_STATUS_KERNEL
        self._current = (self._current + 1) % self.blocks

    def ring_drops(self) -> int:
        """Frames the kernel dropped since the last call because the ring was full
        (PACKET_STATISTICS, which resets on reading)."""
        stats = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 12)
        return int(struct.unpack("III", stats)[1])

    def send(self, frame: Any) -> bool:
        """Send `frame` out of the interface; False when the kernel refused it."""
        try:
            self.sock.send(frame)
            return True
        except (BlockingIOError, OSError):
            return False

    def send_records(self, records: int, length: int) -> int:
        """Send every frame of the output records at `records` (`length` bytes: 16-byte
        pcap headers, frames) with `sendmmsg`, SEND_BATCH per call, no Python per frame;
        return how many the kernel refused."""
        if self._batch is None:
            self._batch = _SendBatch()
        return self._batch.send(self.sock.fileno(), records, length)

    def close(self) -> None:
        """Unmap the ring and close the socket."""
        if self.sock.fileno() < 0:
            return
        del self._view
        self.ring.close()
        self.sock.close()


SEND_BATCH = 256
"""Frames per `sendmmsg` call."""

_libc = ctypes.CDLL(None, use_errno=True)  # this module's own handle: argtypes below
_libc.sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
_libc.sendmmsg.restype = ctypes.c_int


class _SendBatch:
    """`struct mmsghdr` and `struct iovec` arrays for `sendmmsg`, each message pointing at
    its own iovec once for all; a call fills the iovecs natively from output records."""

    _MSG = 64  # sizeof(struct mmsghdr) on LP64: msghdr (56) + msg_len, padded
    _IOV = 16

    def __init__(self) -> None:
        self.msgs = ctypes.create_string_buffer(self._MSG * SEND_BATCH)
        self.iovs = ctypes.create_string_buffer(self._IOV * SEND_BATCH)
        msgs, iovs = ctypes.addressof(self.msgs), ctypes.addressof(self.iovs)
        for k in range(SEND_BATCH):
            at = msgs + k * self._MSG
            ctypes.c_uint64.from_address(at + 16).value = iovs + k * self._IOV  # msg_iov
            ctypes.c_uint64.from_address(at + 24).value = 1  # msg_iovlen
        self.resume = ctypes.c_uint64(0)
        self.fill = PACKET_IO.function("pybpf_records_iovecs")

    def send(self, fd: int, records: int, length: int) -> int:
        refused = 0
        self.resume.value = 0
        resume = ctypes.addressof(self.resume)
        msgs = ctypes.addressof(self.msgs)
        while self.resume.value < length:
            n = self.fill(records, length, ctypes.addressof(self.iovs), SEND_BATCH, resume)
            done = 0
            while done < n:
                sent = _libc.sendmmsg(fd, msgs + done * self._MSG, n - done, 0)
                if sent <= 0:  # the first frame left was refused: count it, go on
                    refused += 1
                    done += 1
                else:
                    done += sent
        return refused


class TapPort:
    """A TAP device `name` (created when missing, brought up), without packet info."""

    def __init__(self, name: str) -> None:
        self.name = name
        if len(name.encode()) >= 16:
            raise InterfaceError(f"TAP device name {name!r} is longer than 15 bytes")
        try:
            self.fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as error:
            raise InterfaceError(
                f"cannot create TAP device {name!r}: /dev/net/tun: {error.strerror}"
            ) from None
        try:
            fcntl.ioctl(
                self.fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), IFF_TAP | IFF_NO_PI)
            )
            _set_up(name)
        except OSError as error:
            os.close(self.fd)
            self.fd = -1
            why = error.strerror
            if error.errno in (errno.EINVAL, errno.EBUSY) and _exists(name):
                why = "an interface of that name exists and is not a free TAP device"
            raise InterfaceError(f"cannot create TAP device {name!r}: {why}") from None
        self.ifindex = interface_index(name)

    def fileno(self) -> int:
        """The device's descriptor (readable when the host sent a frame)."""
        return self.fd

    def receive(self, limit: int) -> list[bytes]:
        """Up to `limit` frames the host sent out of the device."""
        frames = []
        while len(frames) < limit:
            try:
                frames.append(os.read(self.fd, 65536))
            except BlockingIOError:
                break
        return frames

    def send(self, frame: Any) -> bool:
        """Deliver `frame` to the host as received on the device; False if refused."""
        try:
            os.write(self.fd, frame)
            return True
        except OSError:
            return False

    def close(self) -> None:
        """Close the device (a device this process created goes away with it)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


# -- indexing a ring block in native code ------------------------------------------------


def _build(module: ir.Module) -> None:
    # u64 tpacket3_index(block, base, entries, capacity): the block's frames as IndexEntry
    # records relative to `base`; `record` points at tp_sec (sec, nsec follow).
    fn = ir.Function(module, ir.FunctionType(I64, [I64] * 4), name="pybpf_tpacket3_index")
    block, base, entries, capacity = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    count = b.zext(load(b, b.add(block, i64(_BLOCK_NUM_PKTS)), I32), I64)
    count = b.select(b.icmp_unsigned("<", count, capacity), count, capacity)
    first = b.add(block, b.zext(load(b, b.add(block, i64(_BLOCK_FIRST)), I32), I64))
    size = ctypes.sizeof(IndexEntry)
    head = b.block
    loop = fn.append_basic_block("loop")
    body = fn.append_basic_block("body")
    done = fn.append_basic_block("done")
    b.branch(loop)
    b = ir.IRBuilder(loop)
    k = b.phi(I64)
    pkt = b.phi(I64)
    k.add_incoming(i64(0), head)
    pkt.add_incoming(first, head)
    b.cbranch(b.icmp_unsigned("<", k, count), body, done)
    b = ir.IRBuilder(body)
    entry = b.add(entries, b.mul(k, i64(size)))
    mac = b.zext(load(b, b.add(pkt, i64(_PKT_MAC)), ir.IntType(16)), I64)
    store(b, b.sub(b.add(pkt, mac), base), b.add(entry, i64(IndexEntry.data.offset)))
    store(b, b.sub(b.add(pkt, i64(_PKT_SEC)), base), b.add(entry, i64(IndexEntry.record.offset)))
    snap = load(b, b.add(pkt, i64(_PKT_SNAPLEN)), I32)
    store(b, snap, b.add(entry, i64(IndexEntry.length.offset)))
    status = load(b, b.add(pkt, i64(_PKT_STATUS)), I32)
    store(b, status, b.add(entry, i64(IndexEntry.iface.offset)))
    step = b.zext(load(b, b.add(pkt, i64(_PKT_NEXT)), I32), I64)
    k.add_incoming(b.add(k, i64(1)), body)
    pkt.add_incoming(b.add(pkt, step), body)
    b.branch(loop)
    ir.IRBuilder(done).ret(k)
    _build_iovecs(module)


def _build_iovecs(module: ir.Module) -> None:
    # u64 records_iovecs(records, length, iovecs, capacity, resume): one iovec per output
    # record (16-byte pcap header: caplen at +8, then the frame) from offset *resume,
    # at most `capacity`; *resume = the offset after the last one taken.
    fn = ir.Function(module, ir.FunctionType(I64, [I64] * 5), name="pybpf_records_iovecs")
    records, length, iovecs, capacity, resume = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    start = load(b, resume, I64)
    head = b.block
    loop = fn.append_basic_block("loop")
    body = fn.append_basic_block("body")
    done = fn.append_basic_block("done")
    b.branch(loop)
    b = ir.IRBuilder(loop)
    k = b.phi(I64)
    pos = b.phi(I64)
    k.add_incoming(i64(0), head)
    pos.add_incoming(start, head)
    more = b.and_(b.icmp_unsigned("<", pos, length), b.icmp_unsigned("<", k, capacity))
    b.cbranch(more, body, done)
    b = ir.IRBuilder(body)
    record = b.add(records, pos)
    size = b.zext(load(b, b.add(record, i64(8)), I32), I64)
    iov = b.add(iovecs, b.mul(k, i64(16)))
    store(b, b.add(record, i64(16)), iov)
    store(b, size, b.add(iov, i64(8)))
    k.add_incoming(b.add(k, i64(1)), body)
    pos.add_incoming(b.add(pos, b.add(size, i64(16))), body)
    b.branch(loop)
    b = ir.IRBuilder(done)
    store(b, pos, resume)
    b.ret(k)


PACKET_IO = NativeModule(
    "packet_io",
    _build,
    {
        "pybpf_tpacket3_index": ctypes.CFUNCTYPE(ctypes.c_uint64, *([ctypes.c_uint64] * 4)),
        "pybpf_records_iovecs": ctypes.CFUNCTYPE(ctypes.c_uint64, *([ctypes.c_uint64] * 5)),
    },
)
"""The native module holding `pybpf_tpacket3_index` and `pybpf_records_iovecs`."""


def tpacket_index(block: int, base: int, entries: ctypes.Array) -> int:
    """List the frames of ring block `block` in `entries` (offsets from `base`, the
    ring's start; `iface` holds each frame's tp_status); return how many."""
    fn = PACKET_IO.function("pybpf_tpacket3_index")
    return int(fn(block, base, ctypes.addressof(entries), len(entries)))
