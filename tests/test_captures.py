"""Capture files (hooks/captures.py, hooks/capture_index.py): pcap and pcapng frames
found natively, checked against dpkt's reader on real captures; damage reported with
its offset after the frames before it; pcap written back."""

from __future__ import annotations

import struct
from pathlib import Path

import dpkt
import pytest

from pybpf.hooks.captures import Capture, CaptureError, PcapWriter

DATA = Path(__file__).parent / "data" / "captures"
FILES = ["veth.pcap", "veth_nano.pcap", "veth.pcapng"]


def _reference(path: Path) -> list[bytes]:
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(0)
        reader = dpkt.pcapng.Reader(f) if head == b"\n\r\r\n" else dpkt.pcap.Reader(f)
        return [bytes(frame) for _, frame in reader]


def _frames(path: Path, **kw) -> list[bytes]:
    with Capture(path) as capture:
        out = []
        for entries in capture.batches(**kw):
            out += [capture.frame(e) for e in entries]
        return out


@pytest.mark.parametrize("name", FILES)
def test_frames_are_dpkts(name: str) -> None:
    expected = _reference(DATA / name)
    assert len(expected) == 42
    with Capture(DATA / name) as capture:
        assert list(capture.frames()) == expected
        assert capture.linktypes == [1]
        assert capture.nanoseconds == (name == "veth_nano.pcap")


def test_batches_of_any_size_give_the_same_frames() -> None:
    expected = _reference(DATA / "veth.pcapng")
    for size in (1, 5, 41, 42, 43):
        assert _frames(DATA / "veth.pcapng", batch=size) == expected


def _records(data: bytes) -> list[int]:
    """Offsets of the pcap records of `data` (little-endian)."""
    at, out = 24, []
    while at < len(data):
        out.append(at)
        at += 16 + struct.unpack_from("<I", data, at + 8)[0]
    return out


def test_big_endian_pcap(tmp_path: Path) -> None:
    data = (DATA / "veth.pcap").read_bytes()
    header = struct.unpack_from("<IHHiIII", data, 0)
    out = bytearray(struct.pack(">IHHiIII", *header))
    for at in _records(data):
        fields = struct.unpack_from("<IIII", data, at)
        out += struct.pack(">IIII", *fields) + data[at + 16 : at + 16 + fields[2]]
    path = tmp_path / "be.pcap"
    path.write_bytes(bytes(out))
    assert _frames(path) == _reference(DATA / "veth.pcap")


@pytest.mark.parametrize("cut", [5, 16 + 3])  # inside a record header; inside its data
def test_truncated_pcap_gives_the_frames_before_and_the_offset(tmp_path: Path, cut) -> None:
    data = (DATA / "veth.pcap").read_bytes()
    at = _records(data)[10]
    path = tmp_path / "cut.pcap"
    path.write_bytes(data[: at + cut])
    seen = []
    with Capture(path) as capture, pytest.raises(CaptureError) as err:
        for frame in capture.frames():
            seen.append(frame)
    assert seen == _reference(DATA / "veth.pcap")[:10]
    assert f"offset {at}:" in str(err.value)
    assert str(path) in str(err.value)
    assert ("header" if cut < 16 else "data") in str(err.value)


def _blocks(data: bytes) -> list[tuple[int, int, int]]:
    """(offset, type, length) of the pcapng blocks of `data` (little-endian)."""
    at, out = 0, []
    while at < len(data):
        btype, length = struct.unpack_from("<II", data, at)
        out.append((at, btype, length))
        at += length
    return out


def test_pcapng_block_lengths_that_disagree(tmp_path: Path) -> None:
    data = bytearray((DATA / "veth.pcapng").read_bytes())
    packets = [b for b in _blocks(bytes(data)) if b[1] == 6]
    at, _, length = packets[7]
    struct.pack_into("<I", data, at + length - 4, length + 4)  # the trailing length
    path = tmp_path / "bad.pcapng"
    path.write_bytes(bytes(data))
    seen = []
    with Capture(path) as capture, pytest.raises(CaptureError, match=f"offset {at}: .*disagree"):
        seen.extend(capture.frames())
    assert seen == _reference(DATA / "veth.pcapng")[:7]


def test_two_pcapng_sections(tmp_path: Path) -> None:
    one = (DATA / "veth.pcapng").read_bytes()
    path = tmp_path / "two.pcapng"
    path.write_bytes(one + one)
    assert _frames(path) == _reference(DATA / "veth.pcapng") * 2


def test_a_link_type_other_than_ethernet_is_refused(tmp_path: Path) -> None:
    data = bytearray((DATA / "veth.pcap").read_bytes())
    struct.pack_into("<I", data, 20, 113)  # LINKTYPE_LINUX_SLL
    path = tmp_path / "sll.pcap"
    path.write_bytes(bytes(data))
    with Capture(path) as capture, pytest.raises(CaptureError, match="link type 113"):
        list(capture.frames())


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"", "not a pcap"), (b"hello, world", "not a pcap"), (b"\xd4\xc3\xb2\xa1\x02", "cut short")],
)
def test_files_that_are_no_capture(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(content)
    with pytest.raises(CaptureError, match=words):
        Capture(path)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="No such file"):
        Capture(tmp_path / "none.pcap")


@pytest.mark.parametrize("nanoseconds", [False, True])
def test_pcap_writer_round_trip(tmp_path: Path, nanoseconds: bool) -> None:
    source = DATA / ("veth_nano.pcap" if nanoseconds else "veth.pcap")
    out = tmp_path / "out.pcap"
    with Capture(source) as capture, PcapWriter(out, nanoseconds=nanoseconds) as writer:
        for entries in capture.batches():
            for e in entries:
                writer.write(capture.frame(e), *capture.timestamp(e))
    assert writer.frames == 42
    assert _reference(out) == _reference(source)
    with open(out, "rb") as f, open(source, "rb") as g:
        ours = [ts for ts, _ in dpkt.pcap.Reader(f)]
        theirs = [ts for ts, _ in dpkt.pcap.Reader(g)]
    assert ours == theirs
