"""CO-RE: relocations applied as libbpf applies them, against the kernel's or pybpf's BTF.

The objects are tests/core/*.c (rebuilt by tests/core/Makefile). Local
types there are flavors (`iphdr___local`) laid out differently from
Linux's, so every relocation must move something. Expected values come
from the target BTF itself (member offsets found by name, independently
of `pybpf.btf.core`), from the packet a program parses, and, where the
machine allows, from libbpf and the kernel running the same object.
"""

from __future__ import annotations

import os
import struct
from dataclasses import replace
from pathlib import Path

import pytest

import pybpf
from pybpf.btf import core_match
from pybpf.btf.core import POISON_IMM, CoreError, relocate_program
from pybpf.btf.ext import CoreRelocation, CoreReloKind
from pybpf.btf.spec import Spec
from pybpf.btf.target import (
    ENV_KERNEL_BTF,
    HOSTED_BTF,
    KERNEL_BTF,
    hosted_btf,
    load_btf_file,
    target_btf,
)
from pybpf.btf.types import Enum, Enum64, EnumValue, Fwd, Int, Member, Ptr, Struct, Union, Void
from pybpf.cli.main import main
from pybpf.elf.loader import load_object_spec
from pybpf.elf.specs import ProgramSpec
from pybpf.isa.instruction import Instruction, with_pcs
from pybpf.isa.opcodes import EXIT, InsnClass, Mode, Size
from pybpf.testing import kernel
from pybpf.testing.packets import ETH_P_IP, ETH_P_IPV6, checksum, ethernet, ip4

CORE = Path(__file__).parent / "core"
FIELDS = CORE / "core_fields.o"
POISON = CORE / "core_poison.o"

XDP_DROP, XDP_PASS, XDP_TX = 1, 2, 3
HAS_KERNEL_BTF = os.path.exists(KERNEL_BTF)

needs_kernel = pytest.mark.skipif(
    not (HAS_KERNEL_BTF and kernel.kernel_available()),
    reason="needs /sys/kernel/btf/vmlinux and a working bpf() through libbpf",
)


@pytest.fixture
def no_kernel_btf(monkeypatch):
    """As on a machine without kernel BTF: the shipped BTF is the target."""
    monkeypatch.setenv(ENV_KERNEL_BTF, "")


# -- an independent view of a target type: member offsets by name ---------------------


def members(btf: Spec, type_id: int, base: int = 0, prefix: str = "") -> dict:
    """`{path: (bit offset, bitfield bits, byte size)}` of every named member, recursively,
    looking through anonymous members as C does (a plain walk, not the CO-RE code)."""
    out = {}
    _, record = core_match.skip_mods(btf, type_id)
    for member in record.members:
        offset = base + member.bit_offset
        _, inner = core_match.skip_mods(btf, member.type)
        if not member.name:
            out.update(members(btf, member.type, offset, prefix))
            continue
        path = prefix + member.name
        out[path] = (offset, member.bitfield_size, btf.size_of(member.type))
        if isinstance(inner, (Struct, Union)):
            out.update(members(btf, member.type, offset, path + "."))
    return out


def layout(btf: Spec, name: str) -> dict:
    found = btf.type_by_name(name, Struct)
    assert found is not None, f"{btf.where} has no struct {name}"
    return members(btf, found[0])


def bitfield_shifts(bit_offset: int, bits: int, storage: int) -> tuple[int, int, int]:
    """(byte offset, lshift, rshift) a 64-bit load-and-shift reads a bitfield with."""
    byte_off = bit_offset // 8 // storage * storage
    while bit_offset + bits - byte_off * 8 > storage * 8:
        storage *= 2
        byte_off = bit_offset // 8 // storage * storage
    return byte_off, 64 - (bit_offset + bits - byte_off * 8), 64 - bits


def expected_values(btf: Spec) -> dict[int, int]:
    """What core_values must store, from the target BTF's layouts."""
    ip, tcp = layout(btf, "iphdr"), layout(btf, "tcphdr")
    ip6, eth, xdp = layout(btf, "ipv6hdr"), layout(btf, "ethhdr"), layout(btf, "xdp_md")
    version_off, version_bits, _ = ip["version"]
    doff_off, doff_bits, doff_size = tcp["doff"]
    daddr32 = ip6["daddr.in6_u.u6_addr32"]
    action = btf.type_by_name("xdp_action")[1]
    return {
        0: ip["protocol"][0] // 8,
        1: ip["daddr"][0] // 8,
        2: 1,
        3: 0,
        4: ip["tot_len"][2],
        5: 0,  # Linux's udphdr.check is an unsigned __sum16
        6: bitfield_shifts(version_off, version_bits, 1)[1],
        7: bitfield_shifts(version_off, version_bits, 1)[2],
        8: bitfield_shifts(doff_off, doff_bits, doff_size)[1],
        9: bitfield_shifts(doff_off, doff_bits, doff_size)[0],
        10: 1,
        11: 0,
        12: btf.size_of(btf.type_by_name("tcphdr", Struct)[0]),
        15: 1,
        16: 0,
        17: next(v.value for v in action.values if v.name == "XDP_REDIRECT"),
        18: daddr32[0] // 8 + 3 * 4,
        19: eth["h_source"][2],
        20: xdp["data_end"][0] // 8,
        21: 1,
        22: 1,
        23: 0,
    }


def values_of(obj) -> dict[int, int]:
    return {
        int.from_bytes(k, "little"): int.from_bytes(v, "little")
        for k, v in obj.maps["values"].items()
    }


def tcp_frame(flags: int, dport: int, ttl: int, doff: int = 5) -> bytes:
    """Ethernet + IPv4 + TCP with `doff` 32-bit words of TCP header."""
    options = b"\x01" * (4 * (doff - 5))
    tcp = struct.pack("!HHIIBBHHH", 40000, dport, 1, 0, doff << 4, flags, 65535, 0, 0) + options
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, ttl, 6, 0, ip4("10.0.0.1"), ip4("10.0.0.2")
    )
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return ethernet(header + tcp + b"payload!")


FRAMES = [
    ("syn-80", tcp_frame(0x02, 80, 64), XDP_TX),
    ("syn-443-doff8", tcp_frame(0x02, 443, 17, doff=8), XDP_DROP),
    ("ack-80-doff15", tcp_frame(0x10, 80, 200, doff=15), XDP_DROP),
    ("ipv6", ethernet(b"\x60" + b"\0" * 60, ETH_P_IPV6), XDP_PASS),
]


# -- names and matching ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "essential"),
    [
        ("task_struct", "task_struct"),
        ("task_struct___v1", "task_struct"),
        ("a___b___c", "a___b"),
        ("foo____bar", "foo____bar"),  # four underscores: no X___Y separator
        ("foo___", "foo___"),
        ("___foo", "___foo"),
        ("x___y", "x"),
    ],
)
def test_essential_names(name: str, essential: str) -> None:
    assert core_match.essential_name(name) == essential


# -- values against the shipped BTF (no kernel needed) -------------------------------------


def test_every_kind_against_the_shipped_btf(no_kernel_btf) -> None:
    with pybpf.load(FIELDS) as obj:
        assert obj.programs["core_values"].test_run(data=bytes(64)).retval == XDP_PASS
        got = values_of(obj)
        kinds = {r.kind for r in obj.core_results["core_values"]}
    expected = expected_values(hosted_btf())
    assert {k: got[k] for k in expected} == expected
    # The shipped BTF is clang's: vlan_hdr___same matches it exactly, the wider one not.
    assert (got[13], got[14]) == (1, 0)
    assert len(kinds) == 13  # every relocation kind libbpf knows


@pytest.mark.parametrize("engine", ["interpreter", "jit"])
@pytest.mark.parametrize(("label", "frame", "verdict"), FRAMES, ids=[f[0] for f in FRAMES])
def test_vmlinux_style_parser_runs_on_the_shipped_btf(
    no_kernel_btf, engine: str, label: str, frame: bytes, verdict: int
) -> None:
    with pybpf.load(FIELDS, engine=engine) as obj:
        result = obj.programs["core_parse"].test_run(data=frame)
        got = values_of(obj)
    assert result.retval == verdict
    if label != "ipv6":
        ihl_version, ttl = frame[14], frame[22]
        assert (got[24], got[25], got[26]) == (ihl_version >> 4, ihl_version & 15, ttl)
        assert got[27] == frame[14 + 20 + 12] >> 4


def test_guarded_missing_field_is_dead_code(no_kernel_btf) -> None:
    with pybpf.load(FIELDS) as obj:
        program = obj.programs["core_guarded"]
        poisoned = [r for r in obj.core_results["core_guarded"] if r.poisoned]
        assert [r.subject for r in poisoned] == ["struct iphdr___local.no_such_field"]
        assert any(i.imm == POISON_IMM for i in program.spec.instructions)
        # field_exists gave 0: the poisoned load is never reached.
        assert program.test_run(data=bytes(80)).retval == XDP_DROP
        assert program.verified


def test_unguarded_missing_field_is_rejected_naming_the_relocation(no_kernel_btf) -> None:
    with pybpf.load(POISON) as obj:
        with pytest.raises(pybpf.VerifierError) as info:
            obj.load()
        (result,) = [r for r in obj.core_results["core_unguarded"] if r.poisoned]
    message = str(info.value)
    assert "failed to resolve CO-RE relocation <byte_off>" in message
    assert "struct iphdr___local.no_such_field" in message
    assert info.value.report.first_failure.pc == result.pc


def test_relocating_against_the_local_btf_changes_nothing() -> None:
    # The object's own BTF as target: each ___local type is its own candidate.
    spec = load_object_spec(FIELDS)
    local = spec.btf
    program = spec.programs["core_values"]
    relocated, results = relocate_program(program, local, local)
    same = [r for r in results if r.kind not in ("target_type_id", "type_matches")]
    assert len(same) > 15 and all(r.value == r.original and not r.poisoned for r in same)
    # Only bitfield shifts may move: clang picks another load width than
    # libbpf for them, and libbpf (so pybpf) does not check those values.
    moved = {
        pc
        for (pc, a), (_, b) in zip(
            with_pcs(program.instructions), with_pcs(relocated.instructions), strict=True
        )
        if a != b
    }
    bitfields = {r.pc for r in results if r.kind in ("lshift_u64", "byte_off")}
    assert moved <= bitfields


def test_candidates_at_two_offsets_are_ambiguous() -> None:
    # Its own BTF has both `xdp_md` (linux/bpf.h) and `xdp_md___local`, with
    # data at different offsets: libbpf refuses to choose.
    spec = load_object_spec(FIELDS)
    with pytest.raises(CoreError, match="field offset ambiguity"):
        relocate_program(spec.programs["core_parse"], spec.btf, spec.btf)


def test_instruction_not_holding_the_local_value_is_an_error() -> None:
    spec = load_object_spec(FIELDS)
    program = spec.programs["core_values"]
    relo = program.core_relocations[0]  # byte_off of iphdr___local.protocol: `r1 = 4`
    insns = list(program.instructions)
    index = next(n for n, (pc, _) in enumerate(with_pcs(insns)) if pc == relo.pc)
    insns[index] = replace(insns[index], imm=insns[index].imm + 1)
    tampered = replace(program, instructions=tuple(insns))
    with pytest.raises(CoreError, match="unexpected insn"):
        relocate_program(tampered, spec.btf, hosted_btf())


def test_user_btf_as_path_spec_and_elf(no_kernel_btf, tmp_path) -> None:
    results = {}
    for source in (str(HOSTED_BTF), hosted_btf(), FIELDS):
        with pybpf.load(FIELDS, btf=source) as obj:
            results[type(source).__name__] = [
                (r.pc, r.value, r.poisoned) for r in obj.core_results["core_values"]
            ]
    assert results["str"] == results["Spec"]
    assert results["str"] != results["PosixPath"]  # the object's own BTF: another layout


def test_bad_btf_file_is_a_load_error_naming_it(tmp_path) -> None:
    bad = tmp_path / "bad.btf"
    bad.write_bytes(b"not btf at all")
    for path in (bad, tmp_path / "missing.btf"):
        with pytest.raises(pybpf.LoadError, match=str(path)):
            pybpf.load(FIELDS, btf=path)


def test_cli_bad_btf_is_one_line_exit_2(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.btf"
    bad.write_bytes(b"\x9f\xeb\x01")
    assert main(["verify", "--btf", str(bad), str(FIELDS)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err
    assert main(["disasm", "--btf", str(bad), str(FIELDS)]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err


def test_cli_verify_and_disasm_use_the_target(no_kernel_btf, capsys) -> None:
    assert main(["verify", str(FIELDS)]) == 0
    count = len(load_object_spec(FIELDS).programs) - 1  # ip_protocol is a callee
    assert f"{count} of {count} program(s) verified" in capsys.readouterr().out
    assert main(["verify", str(POISON)]) == 1
    assert "failed to resolve CO-RE relocation" in capsys.readouterr().out
    protocol = layout(hosted_btf(), "iphdr")["protocol"][0] // 8
    assert main(["disasm", "--section", "xdp", str(FIELDS)]) == 0
    out = capsys.readouterr().out
    assert f"pc 0: byte_off struct iphdr___local.protocol -> {protocol} (access 0:1)" in out
    assert "-> poisoned (no match in the target BTF)" in out


def test_cli_disasm_json_has_resolutions(no_kernel_btf, capsys) -> None:
    import json

    assert main(["disasm", "--json", str(FIELDS)]) == 0
    doc = json.loads(capsys.readouterr().out)
    program = next(p for p in doc["programs"] if p["name"] == "core_values")
    first = program["core_relocations"][0]["resolved"]
    assert first["kind"] == "byte_off" and first["original"] == 4
    assert first["value"] == layout(hosted_btf(), "iphdr")["protocol"][0] // 8
    assert first["target"].startswith("<byte_off> [")


# -- the kernel as the reference -------------------------------------------------------------


@pytest.mark.skipif(not HAS_KERNEL_BTF, reason="no /sys/kernel/btf/vmlinux")
def test_default_target_is_the_kernel_btf(monkeypatch) -> None:
    monkeypatch.delenv(ENV_KERNEL_BTF, raising=False)
    assert target_btf() is load_btf_file(KERNEL_BTF)
    assert len(target_btf()) > len(hosted_btf())


@pytest.mark.skipif(not HAS_KERNEL_BTF, reason="no /sys/kernel/btf/vmlinux")
@pytest.mark.parametrize(
    "name",
    sorted(
        t.name
        for _, t in hosted_btf()
        if isinstance(t, Struct) and t.name and t.name != "pybpf_hosted_types"
    ),
)
def test_shipped_layouts_equal_the_kernel(name: str) -> None:
    kernel_btf = load_btf_file(KERNEL_BTF)
    shipped, linux = layout(hosted_btf(), name), layout(kernel_btf, name)
    assert shipped, name
    for path, (offset, bits, size) in shipped.items():
        assert path in linux, f"struct {name}: no member {path} in the kernel"
        assert linux[path] == (offset, bits, size), f"struct {name}.{path}"
    ours = hosted_btf().type_by_name(name, Struct)[1]
    assert ours.size == kernel_btf.type_by_name(name, Struct)[1].size


@needs_kernel
def test_values_equal_libbpf_and_the_kernel(monkeypatch) -> None:
    monkeypatch.delenv(ENV_KERNEL_BTF, raising=False)
    with kernel.KernelObject(FIELDS) as reference:
        reference.test_run("core_values", bytes(64))
        want = {
            int.from_bytes(k, "little"): int.from_bytes(v, "little")
            for k, v in reference.map("values").items()
        }
    with pybpf.load(FIELDS) as obj:
        obj.programs["core_values"].test_run(data=bytes(64))
        got = values_of(obj)
    assert got == want
    assert {k: got[k] for k in expected_values(load_btf_file(KERNEL_BTF))} == {
        k: want[k] for k in expected_values(load_btf_file(KERNEL_BTF))
    }


@needs_kernel
@pytest.mark.parametrize("btf", ["kernel", "shipped"])
@pytest.mark.parametrize(("label", "frame", "verdict"), FRAMES, ids=[f[0] for f in FRAMES])
def test_parser_equals_the_kernel(monkeypatch, btf: str, label, frame, verdict) -> None:
    if btf == "shipped":
        monkeypatch.setenv(ENV_KERNEL_BTF, "")
    else:
        monkeypatch.delenv(ENV_KERNEL_BTF, raising=False)
    with kernel.KernelObject(FIELDS) as reference:
        want = reference.test_run("core_parse", frame)
        want_values = {
            int.from_bytes(k, "little"): int.from_bytes(v, "little")
            for k, v in reference.map("values").items()
        }
    with pybpf.load(FIELDS) as obj:
        got = obj.programs["core_parse"].test_run(data=frame)
        assert (got.retval, got.data_out) == (want.retval, want.data_out) == (got.retval, frame)
        assert values_of(obj) == want_values
    assert want.retval == verdict


@needs_kernel
def test_kernel_rejects_the_unguarded_program_too() -> None:
    with pytest.raises(kernel.KernelError):
        kernel.KernelObject(POISON)
    with kernel.KernelObject(FIELDS) as reference:  # the guarded one loads
        assert reference.test_run("core_guarded", bytes(80)).retval == XDP_DROP


def test_ipv4_frames_are_what_the_parser_expects() -> None:
    # Guard for the table above: real IPv4/TCP, so the kernel agrees on it.
    frame = FRAMES[0][1]
    assert struct.unpack("!H", frame[12:14])[0] == ETH_P_IP and frame[14] == 0x45


def test_libbpf_btf_custom_path(no_kernel_btf) -> None:
    from pybpf import libbpf

    # The object's own BTF as custom path: relocations keep the local layout.
    obj = libbpf.bpf_object__open_file(FIELDS, {"btf_custom_path": str(FIELDS)})
    try:
        first = obj.core_results["core_values"][0]
        assert first.value == first.original == 4
    finally:
        libbpf.bpf_object__close(obj)
    opts = type("bpf_object_open_opts", (), {"btf_custom_path": str(HOSTED_BTF).encode()})()
    obj = libbpf.bpf_object__open_file(FIELDS, opts)
    try:
        assert (
            obj.core_results["core_values"][0].value
            == layout(hosted_btf(), "iphdr")["protocol"][0] // 8
        )
    finally:
        libbpf.bpf_object__close(obj)


# -- libbpf's rules on synthetic BTF ----------------------------------------------------------


LDX = InsnClass.LDX | Mode.MEM


def btf_of(*types) -> Spec:
    return Spec([Void(), *types], b"\0", "<synthetic>")


def one_field(name: str, field_type) -> Spec:
    # [1] the field's type, [2] struct `name` { field_type x at byte 8 }
    return btf_of(field_type, Struct(name, 16, (Member("x", 1, 64),)))


def load_x(local: Spec, target: Spec, width: Size):
    program = ProgramSpec(
        "p",
        "xdp",
        (Instruction(LDX | width, 0, 1, 8, 0), Instruction(EXIT)),
        core_relocations=(CoreRelocation(0, 2, "0:0", CoreReloKind.FIELD_BYTE_OFFSET),),
    )
    relocated, (result,) = relocate_program(program, local, target)
    return relocated.instructions[0], result


def test_load_width_follows_an_unsigned_field_that_grew() -> None:
    local = one_field("s", Int("unsigned int", 4, 0, 0, 32))
    target = btf_of(
        Int("long unsigned int", 8, 0, 0, 64),
        Struct("s___v2", 24, (Member("pad", 1, 0), Member("x", 1, 128))),
    )
    insn, result = load_x(local, target, Size.W)
    assert (insn.off, insn.opcode & 0x18, result.value) == (16, Size.DW, 16)


def test_signed_field_of_another_size_poisons_the_load() -> None:
    local = one_field("s", Int("int", 4, 1, 0, 32))
    target = one_field("s", Int("long", 8, 1, 0, 64))
    insn, result = load_x(local, target, Size.W)
    assert result.poisoned and insn.imm == POISON_IMM
    assert "changed size" in result.describe()


def test_field_of_incompatible_kind_is_not_a_match() -> None:
    local = one_field("s", Int("int", 4, 1, 0, 32))
    target = btf_of(Struct("t", 4, ()), Ptr("", 1), Struct("s", 16, (Member("x", 2, 64),)))
    program = ProgramSpec(
        "p",
        "xdp",
        (Instruction(InsnClass.ALU64 | 0xB0, 0, 0, 0, 1), Instruction(EXIT)),
        core_relocations=(CoreRelocation(0, 2, "0:0", CoreReloKind.FIELD_EXISTS),),
    )
    _, (result,) = relocate_program(program, local, target)
    assert result.value == 0  # an int is not read as a pointer


def test_two_flavors_deciding_differently_are_ambiguous() -> None:
    local = one_field("s", Int("int", 4, 1, 0, 32))
    target = btf_of(
        Int("int", 4, 1, 0, 32),
        Struct("s___a", 16, (Member("x", 1, 64),)),
        Struct("s___b", 16, (Member("x", 1, 96),)),
    )
    with pytest.raises(CoreError, match="ambiguity"):
        load_x(local, target, Size.W)


@pytest.mark.parametrize(
    ("local", "target", "matches"),
    [
        (Int("int", 4, 1, 0, 32), Int("int", 4, 1, 0, 32), True),
        (Int("int", 4, 1, 0, 32), Int("int", 4, 0, 0, 32), False),  # signedness
        (Enum("e", 4, (EnumValue("A", 1),)), Enum64("e", 4, (EnumValue("A", 9),)), True),
        (Enum("e", 4, (EnumValue("A", 1),)), Enum("e", 8, (EnumValue("A", 1),)), False),
        (Enum("e", 4, (EnumValue("B", 1),)), Enum("e", 4, (EnumValue("A", 1),)), False),
    ],
)
def test_types_match_rules(local, target, matches: bool) -> None:
    assert core_match.types_match(btf_of(local), 1, btf_of(target), 1) is matches


def test_types_match_a_struct_behind_a_pointer_with_a_forward_declaration() -> None:
    local = btf_of(Struct("t", 4, ()), Ptr("", 1), Struct("s", 8, (Member("p", 2, 0),)))
    target = btf_of(Fwd("t"), Ptr("", 1), Struct("s", 8, (Member("p", 2, 0),)))
    union = btf_of(Fwd("t", union=True), Ptr("", 1), Struct("s", 8, (Member("p", 2, 0),)))
    assert core_match.types_match(local, 3, target, 3)
    assert not core_match.types_match(local, 3, union, 3)


ETH_P_IP_BE = int.from_bytes(ETH_P_IP.to_bytes(2, "big"), "little")  # skb->protocol is __be16


TC_FRAMES = [
    ("ttl-64", tcp_frame(0x02, 80, 64)),
    ("ttl-1", tcp_frame(0x10, 22, 1)),
]


def _run_tc(obj, frame: bytes) -> tuple[int, dict]:
    result = obj.programs["core_tc"].test_run(data=frame)
    values = values_of(obj)
    return result.retval, {k: values[k] for k in (28, 29, 30)}


@pytest.mark.parametrize(("label", "frame"), TC_FRAMES, ids=[f[0] for f in TC_FRAMES])
def test_tc_program_reads_sk_buff_through_the_shipped_btf(no_kernel_btf, label, frame) -> None:
    with pybpf.load(FIELDS) as obj:
        retval, values = _run_tc(obj, frame)
    assert retval == (2 if frame[22] == 1 else 0)
    assert values == {28: len(frame), 29: ETH_P_IP_BE, 30: frame[22]}


@needs_kernel
@pytest.mark.parametrize(("label", "frame"), TC_FRAMES, ids=[f[0] for f in TC_FRAMES])
def test_tc_program_equals_the_kernel(monkeypatch, label, frame) -> None:
    monkeypatch.delenv(ENV_KERNEL_BTF, raising=False)
    with kernel.KernelObject(FIELDS) as reference:
        want = reference.test_run("core_tc", frame)
        values = {
            int.from_bytes(k, "little"): int.from_bytes(v, "little")
            for k, v in reference.map("values").items()
        }
    with pybpf.load(FIELDS) as obj:
        assert _run_tc(obj, frame) == (want.retval, {k: values[k] for k in (28, 29, 30)})


@pytest.mark.parametrize("engine", ["interpreter", "jit"])
def test_relocations_of_a_callee(no_kernel_btf, engine: str) -> None:
    with pybpf.load(FIELDS, engine=engine) as obj:
        program = obj.programs["core_subprog"]
        callee = dict(program.spec.functions)["ip_protocol"]
        moved = [r for r in obj.core_results["core_subprog"] if r.pc >= callee]
        assert [r.subject for r in moved] == ["struct iphdr___local.protocol"]
        assert program.test_run(data=tcp_frame(0x02, 80, 64)).retval == XDP_TX
        udp = bytearray(tcp_frame(0x02, 80, 64))
        udp[14 + 9] = 17
        assert program.test_run(data=bytes(udp)).retval == XDP_PASS
