"""Capture files: reading pcap and pcapng frames for replay, writing pcap.

`Capture(path)` maps the file read-only and finds its frames in native code
(`capture_index`), batch by batch: `batches()` yields arrays of
`IndexEntry` over the mapping (the replay loop hands them to native code
as they are), `frames()` the frames as `bytes` (tests, small files).
pcapng section and interface header blocks are read here, so a file may
hold several sections (each with its byte order) and interfaces; every
interface a frame comes from must be Ethernet (`LINKTYPE_ETHERNET`),
since packet programs see Ethernet frames.

Damage ends the walk with a `CaptureError` naming the file and the byte
offset; the frames before it have been yielded. A `PcapWriter` writes
frames with the timestamps of their original records.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import struct
from collections.abc import Iterator
from pathlib import Path

from ..errors import LoadError
from .capture_index import IndexEntry, IndexState, Kind, Status, index_records

__all__ = ["LINKTYPE_ETHERNET", "Capture", "CaptureError", "PcapWriter"]

LINKTYPE_ETHERNET = 1
BATCH = 4096
"""Frames indexed per native call."""

_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": (Kind.PCAP_LE, False),
    b"\xa1\xb2\xc3\xd4": (Kind.PCAP_BE, False),
    b"\x4d\x3c\xb2\xa1": (Kind.PCAP_LE, True),  # nanosecond timestamps
    b"\xa1\xb2\x3c\x4d": (Kind.PCAP_BE, True),
}
_SHB = b"\x0a\x0d\x0d\x0a"
_BYTE_ORDER_MAGIC = 0x1A2B3C4D
_IDB = 1

_DAMAGE = {
    Status.TRUNCATED_HEADER: "the file ends inside a record header",
    Status.TRUNCATED_DATA: "the file ends inside a record's data",
    Status.BAD_BLOCK: "a pcapng block's lengths are impossible or disagree",
    Status.BAD_RECORD: "a record claims more than 262144 bytes",
}


class CaptureError(LoadError):
    """A capture file that cannot be read (or not to its end): what and where.

    A `LoadError`: bad input, as a broken object file is (the CLI exits 2)."""


class Capture:
    """A pcap or pcapng file, mapped read-only; a context manager."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = str(path)
        try:
            self._file = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        except OSError as e:
            raise CaptureError(f"{self.path}: {e.strerror}") from None
        self.size = os.fstat(self._file.fileno()).st_size
        self._map: mmap.mmap | None = None
        self._anchor: ctypes.Array | None = None
        if self.size:
            # Copy-on-write, so that ctypes may take the mapping's address (a read-only
            # mapping offers no writable buffer); nothing writes it, nothing is copied.
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_COPY)
            self._anchor = (ctypes.c_ubyte * self.size).from_buffer(self._map)
        head = self._read(0, 4)
        if head in _PCAP_MAGICS:
            self.kind, self.nanoseconds = _PCAP_MAGICS[head]
            self.linktypes = [self._pcap_header()]
            self._start = 24
        elif head == _SHB:
            self.kind, self.nanoseconds = Kind.PCAPNG_LE, False
            self.linktypes = []
            self._start = 0
        else:
            self.close()
            raise CaptureError(f"{self.path}: not a pcap or pcapng file (starts {head.hex()})")

    # -- reading ------------------------------------------------------------------

    @property
    def base(self) -> int:
        """The native address of the mapping (0 for an empty file)."""
        return 0 if self._anchor is None else ctypes.addressof(self._anchor)

    def _read(self, at: int, n: int) -> bytes:
        if self._map is None or at + n > self.size:
            return b"" if self._map is None else self._map[at : self.size]
        return self._map[at : at + n]

    def _pcap_header(self) -> int:
        header = self._read(0, 24)
        if len(header) < 24:
            raise CaptureError(f"{self.path}: the pcap file header is cut short (offset 0)")
        order = "<" if self.kind == Kind.PCAP_LE else ">"
        (linktype,) = struct.unpack_from(order + "I", header, 20)
        return linktype & 0x0FFFFFFF  # the upper bits hold FCS information

    def _header_block(self, at: int) -> int:
        """Read the pcapng section or interface header block at `at`; the offset after it."""
        btype = self._read(at, 4)
        if btype == _SHB:
            magic = self._read(at + 8, 4)
            if int.from_bytes(magic, "little") == _BYTE_ORDER_MAGIC:
                self.kind = Kind.PCAPNG_LE
            elif int.from_bytes(magic, "big") == _BYTE_ORDER_MAGIC:
                self.kind = Kind.PCAPNG_BE
            else:
                raise CaptureError(f"{self.path}: offset {at}: bad pcapng byte-order magic")
            self.linktypes = []  # interface ids restart in each section
        order = "<" if self.kind == Kind.PCAPNG_LE else ">"
        (length,) = struct.unpack(order + "I", self._read(at + 4, 4))
        if btype != _SHB:
            (linktype,) = struct.unpack(order + "H", self._read(at + 8, 2))
            self.linktypes.append(linktype)
        return at + length

    def batches(self, batch: int = BATCH) -> Iterator[ctypes.Array]:
        """Arrays of `IndexEntry` (offsets into the mapping at `base`), in file order.

        Raises `CaptureError` at damage (after yielding the frames before it) and
        for a frame from an interface that is not Ethernet."""
        entries = (IndexEntry * batch)()
        state = IndexState()
        at = self._start
        while self._map is not None:
            n = index_records(self.base, self.size, at, self.kind, entries, state)
            if n:
                self._check_links(entries, n)
                yield (IndexEntry * n).from_buffer(entries) if n < batch else entries
                entries = (IndexEntry * batch)()
            status, at = Status(state.status), state.next
            if status == Status.END:
                return
            if status == Status.HEADER_BLOCK:
                at = self._header_block(at)
            elif status != Status.FULL:
                raise CaptureError(f"{self.path}: offset {at}: {_DAMAGE[status]}")

    def _check_links(self, entries: ctypes.Array, n: int) -> None:
        for i in range(n):
            iface = entries[i].iface
            if iface >= len(self.linktypes):
                raise CaptureError(
                    f"{self.path}: offset {entries[i].record}: frame of undeclared interface {iface}"
                )
        if any(link != LINKTYPE_ETHERNET for link in self.linktypes):
            bad = next(link for link in self.linktypes if link != LINKTYPE_ETHERNET)
            raise CaptureError(
                f"{self.path}: link type {bad} is not Ethernet (LINKTYPE_ETHERNET, 1): "
                "packet programs see Ethernet frames"
            )

    def frames(self) -> Iterator[bytes]:
        """Every frame's bytes, in file order (see `batches` for errors)."""
        for entries in self.batches():
            for e in entries:
                yield self.frame(e)

    def frame(self, entry: IndexEntry) -> bytes:
        """The bytes of one indexed frame."""
        assert self._map is not None
        return self._map[entry.data : entry.data + entry.length]

    def timestamp(self, entry: IndexEntry) -> tuple[int, int]:
        """(seconds, sub-second units) of a pcap record (microseconds, or nanoseconds when
        `nanoseconds`); (0, 0) for pcapng, whose timestamps need the interface's units."""
        if self.kind not in (Kind.PCAP_LE, Kind.PCAP_BE):
            return 0, 0
        order = "<" if self.kind == Kind.PCAP_LE else ">"
        return struct.unpack(order + "II", self._read(entry.record, 8))

    def close(self) -> None:
        """Unmap and close the file (idempotent)."""
        self._anchor = None  # the exported buffer must go before the mapping closes
        if self._map is not None:
            self._map.close()
            self._map = None
        self._file.close()

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PcapWriter:
    """Writes a little-endian pcap file (microsecond or nanosecond timestamps)."""

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        linktype: int = LINKTYPE_ETHERNET,
        nanoseconds: bool = False,
    ) -> None:
        self.path = Path(path)
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        magic = 0xA1B23C4D if nanoseconds else 0xA1B2C3D4
        self._file.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, 0x40000, linktype))
        self.frames = 0
        self.bytes = 0

    def write(self, frame: bytes, seconds: int = 0, fraction: int = 0) -> None:
        """Append one frame (captured whole: original length = its length)."""
        self._file.write(struct.pack("<IIII", seconds, fraction, len(frame), len(frame)))
        self._file.write(frame)
        self.frames += 1
        self.bytes += len(frame)

    def write_raw(self, records: bytes) -> None:
        """Append records already in this file's format (16-byte headers, then frames)."""
        self._file.write(records)

    def close(self) -> None:
        """Flush and close (idempotent)."""
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
