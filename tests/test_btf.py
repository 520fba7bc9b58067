"""BTF and BTF.ext parsing, on hand-built sections and on a real object."""

from __future__ import annotations

import struct

import pytest

from conftest import SAMPLES
from pybpf.btf import CoreReloKind, parse_btf, parse_btf_ext
from pybpf.btf.types import (
    Array,
    Datasec,
    Enum,
    FuncProto,
    Int,
    Kind,
    Ptr,
    Struct,
    Typedef,
    Var,
)
from pybpf.elf.reader import read_elf
from pybpf.errors import LoadError


class BtfBuilder:
    """Builds a little-endian `.BTF` section record by record."""

    def __init__(self) -> None:
        self.strings = bytearray(b"\0")
        self.types = bytearray()

    def name(self, text: str) -> int:
        if not text:
            return 0
        offset = len(self.strings)
        self.strings += text.encode() + b"\0"
        return offset

    def add(self, kind: Kind, name: str, vlen: int, size_or_type: int, tail: bytes = b"", flag=0):
        info = (flag << 31) | (int(kind) << 24) | vlen
        self.types += struct.pack("<III", self.name(name), info, size_or_type) + tail

    def build(self) -> bytes:
        header = struct.pack(
            "<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(self.types), len(self.types), len(self.strings)
        )
        return header + bytes(self.types) + bytes(self.strings)


def sample_btf() -> BtfBuilder:
    b = BtfBuilder()
    b.add(Kind.INT, "int", 0, 4, struct.pack("<I", (1 << 24) | 32))  # 1: signed int
    b.add(Kind.PTR, "", 0, 1)  # 2: int *
    b.add(Kind.ARRAY, "", 0, 0, struct.pack("<III", 1, 1, 10))  # 3: int[10]
    members = struct.pack("<III", b.name("a"), 1, 0) + struct.pack("<III", b.name("b"), 3, 32)
    b.add(Kind.STRUCT, "pair", 2, 44, members)  # 4: struct pair
    b.add(Kind.TYPEDEF, "pair_t", 0, 4)  # 5
    b.add(Kind.CONST, "", 0, 5)  # 6: const pair_t
    values = struct.pack("<Ii", b.name("RED"), 0) + struct.pack("<Ii", b.name("BLUE"), -1)
    b.add(Kind.ENUM, "color", 2, 4, values, flag=1)  # 7
    b.add(Kind.FUNC_PROTO, "", 1, 1, struct.pack("<II", b.name("ctx"), 2))  # 8
    b.add(Kind.FUNC, "prog", 1, 8)  # 9 (global)
    b.add(Kind.VAR, "counter", 0, 6, struct.pack("<I", 1))  # 10
    b.add(Kind.DATASEC, ".data", 1, 44, struct.pack("<III", 10, 0, 44))  # 11
    bitfields = struct.pack("<III", b.name("lo"), 1, (3 << 24) | 0) + struct.pack(
        "<III", b.name("hi"), 1, (5 << 24) | 3
    )
    b.add(Kind.STRUCT, "bits", 2, 4, bitfields, flag=1)  # 12
    return b


def test_types_and_lookups() -> None:
    spec = parse_btf(sample_btf().build())
    assert len(spec) == 13
    assert isinstance(spec.type_by_id(1), Int) and spec.type_by_id(1).signed
    assert isinstance(spec.type_by_id(2), Ptr) and isinstance(spec.type_by_id(3), Array)
    pair_id, pair = spec.type_by_name("pair")
    assert pair_id == 4 and isinstance(pair, Struct)
    assert [(m.name, m.bit_offset) for m in pair.members] == [("a", 0), ("b", 32)]
    assert isinstance(spec.type_by_id(5), Typedef)
    assert spec.resolve(6) == pair
    assert spec.size_of(6) == 44 and spec.size_of(3) == 40 and spec.size_of(2) == 8
    assert spec.size_of(10) == 44  # a Var has the size of its type
    color = spec.type_by_id(7)
    assert isinstance(color, Enum) and color.signed and color.values[1].value == -1
    proto = spec.type_by_id(8)
    assert isinstance(proto, FuncProto) and proto.params[0].name == "ctx"
    assert spec.type_by_name("prog")[1].linkage == 1
    assert isinstance(spec.type_by_name("counter")[1], Var)
    assert isinstance(spec.type_by_name(".data", Datasec)[1], Datasec)
    bits = spec.type_by_id(12)
    assert [(m.bit_offset, m.bitfield_size) for m in bits.members] == [(0, 3), (3, 5)]
    assert spec.type_name(2) == "int *" and spec.type_name(4) == "struct pair"
    assert spec.type_by_name("missing") is None


@pytest.mark.parametrize(
    "mutate",
    [
        (lambda d: b"\x00\x00" + d[2:]),
        (lambda d: d[:20]),
        (lambda d: d[:-3]),
        (lambda d: d[:28] + b"\0\0\0\0" + d[32:]),
    ],
    ids=["magic", "header", "strings", "kind-0"],
)
def test_malformed_btf_raises_load_error(mutate) -> None:
    with pytest.raises(LoadError) as info:
        parse_btf(mutate(sample_btf().build()), "test.o: section .BTF")
    assert "\n" not in str(info.value) and str(info.value).startswith("test.o")


def test_dangling_type_reference_is_rejected() -> None:
    b = BtfBuilder()
    b.add(Kind.PTR, "", 0, 99)
    with pytest.raises(LoadError, match="missing type 99"):
        parse_btf(b.build())


def test_btf_ext_records() -> None:
    b = sample_btf()
    sec, file, line = b.name("xdp"), b.name("prog.c"), b.name("  return 0;")
    access = b.name("0:1")
    btf_bytes = b.build()
    spec = parse_btf(btf_bytes)
    func_info = struct.pack("<I", 8) + struct.pack("<II", sec, 1) + struct.pack("<II", 0, 9)
    line_info = struct.pack("<I", 16) + struct.pack("<II", sec, 2)
    line_info += struct.pack("<IIII", 0, file, line, (7 << 10) | 3)
    line_info += struct.pack("<IIII", 16, file, line, (8 << 10) | 5)
    core = (
        struct.pack("<I", 16) + struct.pack("<II", sec, 1) + struct.pack("<IIII", 24, 4, access, 0)
    )
    parts = func_info + line_info + core
    header = struct.pack(
        "<HBBIIIIIII", 0xEB9F, 1, 0, 32, 0, len(func_info), len(func_info), len(line_info),
        len(func_info) + len(line_info), len(core),
    )  # fmt: skip
    ext = parse_btf_ext(header + parts, spec)
    assert [(f.pc, f.type_id) for f in ext.func_infos["xdp"]] == [(0, 9)]
    lines = ext.line_infos["xdp"]
    assert [(li.pc, li.line_number, li.column) for li in lines] == [(0, 7, 3), (2, 8, 5)]
    assert lines[0].file_name == "prog.c" and lines[0].line == "  return 0;"
    (relo,) = ext.core_relos["xdp"]
    assert (relo.pc, relo.type_id, relo.access) == (3, 4, "0:1")
    assert relo.kind == CoreReloKind.FIELD_BYTE_OFFSET
    with pytest.raises(LoadError):
        parse_btf_ext((header + parts)[:-4], spec)


def test_real_object_btf() -> None:
    path = SAMPLES / "cilium-examples/tcprtt_bpf_bpfel.o"
    if not path.is_file():
        pytest.skip("sample missing")
    image = read_elf(path.read_bytes(), str(path))
    spec = parse_btf(image.section_named(".BTF").data)
    ext = parse_btf_ext(image.section_named(".BTF.ext").data, spec)
    sock_id, sock = spec.type_by_name("sock", Struct)
    assert sock.members and spec.type_name(sock_id) == "struct sock"
    assert "fentry/tcp_close" in ext.line_infos
    assert all(li.line for li in ext.line_infos["fentry/tcp_close"])
