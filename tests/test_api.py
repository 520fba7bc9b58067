"""The Python API: `pybpf.load`, live maps and programs, global data views, bad input."""

from __future__ import annotations

import errno
import struct
from pathlib import Path

import pytest

import pybpf
from pybpf.object import libbpf_internal_name

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
XDP_COUNTER = EXAMPLES / "xdp_counter.o"
SOCKET_FILTER = EXAMPLES / "socket_filter.o"

XDP_DROP, XDP_PASS = 1, 2
UDP, TCP = 17, 6


def packet(dport: int = 53, proto: int = UDP, ethertype: int = 0x0800) -> bytes:
    """An Ethernet + IPv4 + UDP (or other protocol) packet to `dport`, 4 bytes of payload."""
    payload = b"test"
    l4 = struct.pack("!HHHH", 40000, dport, 8 + len(payload), 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(l4),
        1,
        0,
        64,
        proto,
        0,
        bytes([10, 0, 0, 1]),
        bytes([10, 0, 0, 2]),
    )
    eth = (
        bytes.fromhex("020000000002") + bytes.fromhex("020000000001") + ethertype.to_bytes(2, "big")
    )
    return eth + ip + l4


def u32(value: int) -> bytes:
    return value.to_bytes(4, "little")


def u64(value: int) -> bytes:
    return value.to_bytes(8, "little")


@pytest.fixture
def xdp():
    with pybpf.load(XDP_COUNTER) as obj:
        yield obj


def test_packet_matches_the_example_capture():
    sample = (EXAMPLES / "packets" / "udp_dns.bin").read_bytes()
    assert len(sample) == len(packet(53))
    assert sample[36:38] == packet(53)[36:38]


def test_load_names_programs_and_maps(xdp):
    assert list(xdp.programs) == ["xdp_count"]  # udp_dport is a subprogram
    assert list(xdp.maps) == ["proto_count", ".rodata", ".bss"]
    prog = xdp.programs["xdp_count"]
    assert (prog.name, prog.section, prog.prog_type) == (
        "xdp_count",
        "xdp",
        pybpf.platform.program_types.ProgramType.XDP,
    )
    assert prog.id > 0 and xdp.context.program(prog.id) is prog
    assert isinstance(xdp.maps["proto_count"], pybpf.Map)


def test_libbpf_style_map_names(xdp):
    assert libbpf_internal_name("xdp_counter", ".bss") == "xdp_coun.bss"
    assert xdp.maps["xdp_coun.bss"] is xdp.maps[".bss"]
    assert xdp.maps["xdp_counter.rodata"] is xdp.maps[".rodata"]
    assert "xdp_coun.bss" in xdp.maps and "nope" not in xdp.maps


def test_linking_leaves_no_pseudo_map_loads(xdp):
    prog = xdp.programs["xdp_count"]
    loads = [insn for insn in prog.instructions if insn.is_lddw]
    assert loads and all(insn.src == 0 for insn in loads)
    assert {insn.imm for insn in loads} >= {xdp.maps["proto_count"].address}


def test_verdicts_and_counters(xdp):
    prog = xdp.programs["xdp_count"]
    assert prog.test_run(packet(53)).retval == XDP_DROP
    assert prog.test_run(packet(80)).retval == XDP_PASS
    assert prog.test_run(packet(80, proto=TCP)).retval == XDP_PASS
    assert prog.test_run(packet(53, ethertype=0x86DD)).retval == XDP_PASS
    counts = xdp.maps["proto_count"].typed()
    assert dict(counts) == {UDP: 2, TCP: 1}
    assert xdp.maps["proto_count"][u32(UDP)] == u64(2)
    assert xdp.bss.packets_seen == 4


def test_repeat_runs_the_program_n_times(xdp):
    result = xdp.programs["xdp_count"].test_run(packet(53), repeat=5)
    assert result.retval == XDP_DROP and result.duration > 0
    assert result.data_out == packet(53)
    assert xdp.bss.packets_seen == 5


def test_rodata_set_before_first_run_swaps_verdicts(xdp):
    assert xdp.rodata.blocked_port == 53
    xdp.rodata.blocked_port = 80
    prog = xdp.programs["xdp_count"]
    assert prog.test_run(packet(53)).retval == XDP_PASS
    assert prog.test_run(packet(80)).retval == XDP_DROP


def test_rodata_is_frozen_after_load(xdp):
    xdp.programs["xdp_count"].test_run(packet(53))
    with pytest.raises(pybpf.MapError) as info:
        xdp.rodata.blocked_port = 80
    assert info.value.errno == errno.EPERM
    with pytest.raises(pybpf.MapError) as info:
        xdp.maps[".rodata"][u32(0)] = b"\x50\x00"
    assert info.value.errno == errno.EPERM
    assert xdp.rodata.blocked_port == 53
    assert not xdp.maps[".rodata"].value_region.writable


def test_explicit_load_freezes_too(xdp):
    xdp.load()
    with pytest.raises(pybpf.MapError):
        xdp.rodata.blocked_port = 1


def test_user_updates_reach_the_program(xdp):
    xdp.maps["proto_count"][u32(UDP)] = u64(41)
    xdp.programs["xdp_count"].test_run(packet(53))
    assert xdp.maps["proto_count"].typed()[UDP] == 42
    xdp.bss.packets_seen = 100
    xdp.programs["xdp_count"].test_run(packet(53))
    assert xdp.bss.packets_seen == 101


def test_global_data_views_list_variables(xdp):
    assert xdp.rodata.vars() == [("blocked_port", 0, 2)]
    assert xdp.bss.as_dict() == {"packets_seen": 0}
    with pytest.raises(AttributeError):
        xdp.data  # noqa: B018 - no .data section in this object
    with pytest.raises(AttributeError):
        xdp.bss.missing  # noqa: B018


def test_socket_filter_object():
    with pybpf.load(SOCKET_FILTER) as obj:
        assert set(obj.programs) == {"filter_a", "filter_b"}
        assert obj.data.greeting == b"hello, eBPF".ljust(16, b"\0")
        data = packet(53)
        result = obj.programs["filter_a"].test_run(data)
        assert result.retval == len(data) - 14  # skb->len from the network header on
        stats = obj.maps["stats"].typed()
        assert stats[0] != 0 and stats[1] == 0
        assert obj.programs["filter_b"].test_run(data).retval in (0, len(data) - 14)
        obj.data.greeting = b"jello"
        assert obj.programs["filter_a"].test_run(data).retval == 0


def test_close_frees_the_maps():
    obj = pybpf.load(XDP_COUNTER)
    regions = len(obj.context.memory)
    obj.programs["xdp_count"].test_run(packet(53))
    obj.close()
    assert len(obj.context.memory) < regions
    assert obj.context.maps() == []
    obj.close()  # idempotent


# -- bad input (issue item 9) ------------------------------------------------------------


def test_missing_names_are_typed_errors(xdp):
    with pytest.raises(pybpf.MapError) as info:
        xdp.maps["nope"]
    assert info.value.errno == errno.ENOENT
    with pytest.raises(pybpf.LoadError):
        xdp.programs["nope"]
    assert xdp.maps.get("nope") is None and xdp.programs.get("nope") is None


@pytest.mark.parametrize(
    ("key", "value", "flags", "expected"),
    [
        (b"\x11\x00", u64(1), 0, errno.EINVAL),  # short key
        (u32(17), b"\x01", 0, errno.EINVAL),  # short value
        (u32(17), u64(1), 8, errno.EINVAL),  # unknown flag
        (u32(17), u64(1), 2, errno.ENOENT),  # BPF_EXIST on a missing key
    ],
)
def test_bad_updates_change_nothing(xdp, key, value, flags, expected):
    counts = xdp.maps["proto_count"]
    with pytest.raises(pybpf.MapError) as info:
        counts.update(key, value, flags)
    assert info.value.errno == expected
    assert dict(counts) == {}


def test_full_map(xdp):
    counts = xdp.maps["proto_count"]
    for key in range(counts.spec.max_entries):
        counts[u32(key)] = u64(key)
    with pytest.raises(pybpf.MapError) as info:
        counts[u32(1000)] = u64(1)
    assert info.value.errno == errno.E2BIG
    assert u32(1000) not in counts and len(counts) == counts.spec.max_entries


def test_rodata_value_that_does_not_fit(xdp):
    with pytest.raises(pybpf.MapError) as info:
        xdp.rodata.blocked_port = 70000
    assert info.value.errno == errno.EINVAL
    assert xdp.rodata.blocked_port == 53


def test_short_packet_is_a_test_run_error(xdp):
    with pytest.raises(pybpf.TestRunError):
        xdp.programs["xdp_count"].test_run(b"\x00" * 10)
    assert xdp.bss.packets_seen == 0


def test_unsupported_map_family_fails_only_when_used(tmp_path):
    from dataclasses import replace

    from pybpf.elf.specs import ObjectSpec
    from pybpf.object import Object

    spec = ObjectSpec.from_file(XDP_COUNTER)
    odd = replace(spec.maps["proto_count"], type=15)  # SOCKMAP: not implemented
    spec = replace(spec, maps={**spec.maps, "proto_count": odd})
    with Object(spec) as obj:
        assert "proto_count" in obj.maps.unsupported()
        assert obj.rodata.blocked_port == 53
        with pytest.raises(pybpf.NotSupportedError):
            obj.maps["proto_count"]
        with pytest.raises(pybpf.NotSupportedError):
            obj.programs["xdp_count"].test_run(packet(53))


def test_typed_values_roundtrip():
    from pybpf.btf.values import parse, render

    spec = pybpf.elf.specs.ObjectSpec.from_file(SOCKET_FILTER).btf
    data_sec = spec.type_by_name(".data")[0]
    assert render(spec, data_sec, b"hi".ljust(16, b"\0")) == {"greeting": b"hi".ljust(16, b"\0")}
    s64 = spec.type_by_name("__s64")[0]
    assert render(spec, s64, parse(spec, s64, -5)) == -5
    with pytest.raises(ValueError):
        parse(spec, s64, 1 << 63)
