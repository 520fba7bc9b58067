"""Specific facts about the specs of a few sample objects."""

from __future__ import annotations

import pytest

from conftest import SAMPLES
from pybpf.btf import CoreReloKind
from pybpf.elf import MapType, ObjectSpec, RelocationKind, load_object_spec
from pybpf.elf.reader import read_elf
from pybpf.isa.instruction import pc_index
from pybpf.isa.opcodes import CALL, LDDW, CallSrc, PseudoSrc


def load(name: str) -> ObjectSpec:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"sample {name} not found")
    return load_object_spec(path)


def insn_at(program, pc: int):
    return program.instructions[pc_index(list(program.instructions))[pc]]


def test_btf_map_attributes() -> None:
    spec = load("build/twomaps_btf.o")
    assert list(spec.maps) == ["map1", "map2"]
    map1, map2 = spec.maps.values()
    assert (map1.type, map1.key_size, map1.value_size, map1.max_entries) == (MapType.ARRAY, 4, 8, 1)
    assert (map2.type, map2.key_size, map2.value_size, map2.max_entries) == (MapType.ARRAY, 4, 8, 2)
    assert all(m.section == ".maps" for m in spec.maps.values())
    # map1 uses __type(key, …)/__type(value, …): sizes come from the BTF types.
    assert map1.key_size == spec.btf.size_of(map1.key_type)
    assert map1.value_size == spec.btf.size_of(map1.value_type)
    # map2 uses __uint(key_size, …)/__uint(value_size, …): no BTF types.
    assert map2.key_type == map2.value_type == 0


def test_btf_map_in_map_through_typedef() -> None:
    spec = load("build/map_in_map_typedef.o")
    for name in ("outer_map_1", "outer_map_2"):
        inner = spec.maps[name].inner_map
        assert inner is not None and inner.name == f"{name}.inner"
        assert (inner.type, inner.key_size, inner.value_size) == (MapType.ARRAY, 4, 4)


def test_btf_map_in_map_inner_spec_and_values() -> None:
    spec = load("build/map_in_map.o")
    outer = spec.maps["array_of_maps"]
    assert outer.type == MapType.ARRAY_OF_MAPS
    assert outer.value_size == 4
    assert outer.inner_map is not None
    assert outer.inner_map.name == "array_of_maps.inner"
    assert outer.inner_map.type == MapType.ARRAY
    assert outer.contents == ((0, "inner_map"),)


def test_prog_array_values_name_programs() -> None:
    spec = load("build/prog_array.o")
    prog_array = spec.maps["prog_array_map"]
    assert prog_array.type == MapType.PROG_ARRAY
    assert prog_array.value_size == 4
    assert prog_array.contents == tuple((i, f"func{i}") for i in range(4))
    assert all(name in spec.programs for _, name in prog_array.contents)


def test_legacy_map_in_map_inner_index() -> None:
    spec = load("build/map_in_map_legacy.o")
    outer = spec.maps["array_of_maps"]
    assert outer.section == "maps/array_of_maps"
    assert outer.inner_map == spec.maps["inner_map"]
    assert (spec.maps["inner_map"].key_size, spec.maps["inner_map"].value_size) == (4, 8)


@pytest.mark.parametrize(
    ("name", "def_size"),
    [("bpf_cilium_test/bpf_lxc_jit.o", 28), ("cilium/bpf_xdp_dsr_linux.o", 36)],
)
def test_legacy_map_struct_sizes(name: str, def_size: int) -> None:
    spec = load(name)
    image = read_elf((SAMPLES / name).read_bytes(), name)
    maps_section = image.section_named("maps")
    legacy = [m for m in spec.maps.values() if m.section == "maps"]
    assert legacy and maps_section.size == def_size * len(legacy)
    for m in legacy:
        assert m.type != MapType.UNSPEC and m.key_size and m.value_size and m.max_entries


def test_global_data_maps_hold_section_bytes() -> None:
    spec = load("build/global_variable.o")
    image = read_elf((SAMPLES / "build/global_variable.o").read_bytes(), "global_variable.o")
    for name in (".data", ".rodata"):
        m = spec.maps[name]
        assert m.type == MapType.ARRAY and m.max_entries == 1 and m.key_size == 4
        assert m.initial_data == image.section_named(name).data
        assert m.value_size == len(m.initial_data)
    assert spec.maps[".rodata"].frozen and not spec.maps[".data"].frozen
    assert spec.maps[".bss"].initial_data is None and spec.maps[".bss"].value_size == 8


def test_global_data_references_use_map_value_layout() -> None:
    spec = load("build/global_variable.o")
    program = spec.programs["func"]
    names = list(spec.maps)
    seen = 0
    for reloc in program.relocations:
        if reloc.kind != RelocationKind.MAP_VALUE:
            continue
        insn = insn_at(program, reloc.pc)
        assert insn.opcode == LDDW and insn.src == PseudoSrc.MAP_VALUE
        assert insn.imm & 0xFFFFFFFF == names.index(reloc.map)
        assert insn.imm >> 32 == reloc.offset
        seen += 1
    assert seen == 4
    assert any(r.map == ".bss" and r.offset == 4 for r in program.relocations)


def test_map_references_use_map_index() -> None:
    spec = load("build/twomaps.o")
    program = spec.programs["func"]
    maps = [r for r in program.relocations if r.kind == RelocationKind.MAP]
    assert {r.map for r in maps} == {"map1", "map2"}
    for reloc in maps:
        insn = insn_at(program, reloc.pc)
        assert insn.src == PseudoSrc.MAP_FD
        assert insn.imm == spec.map_index(reloc.map)


def test_bpf_to_bpf_calls_point_at_appended_subprograms() -> None:
    spec = load("build/bpf2bpf.o")
    program = spec.programs["func"]
    starts = dict(program.functions)
    assert list(starts) == ["func", "add2", "add1"]  # appended in call order, once each
    calls = [r for r in program.relocations if r.kind == RelocationKind.CALL]
    assert len(calls) == 4
    for reloc in calls:
        insn = insn_at(program, reloc.pc)
        assert insn.opcode == CALL and insn.src == CallSrc.LOCAL
        assert reloc.pc + insn.imm + 1 == reloc.target_pc == starts[reloc.symbol]
    # The subprogram's own copy is a program of its own, too (section .text).
    assert spec.programs["add2"].section == ".text"
    # Its tail (add2 then add1, relative calls) is the same code as func's.
    tail = pc_index(list(program.instructions))[starts["add2"]]
    assert spec.programs["add2"].instructions == program.instructions[tail:]


def test_callback_address_is_relocated_as_func() -> None:
    spec = load("cilium-core/bpf_overlay.o")
    found = [
        (p, r)
        for p in spec.programs.values()
        for r in p.relocations
        if r.kind == RelocationKind.FUNC
    ]
    assert found
    for program, reloc in found:
        insn = insn_at(program, reloc.pc)
        assert insn.src == PseudoSrc.FUNC
        distance = insn.imm & 0xFFFFFFFF
        distance = distance - (1 << 32) if distance & 0x80000000 else distance
        assert reloc.pc + distance + 1 == reloc.target_pc
        assert reloc.target_pc in dict((pc, n) for n, pc in program.functions)


def test_line_info_has_source_text() -> None:
    spec = load("build/bpf2bpf.o")
    program = spec.programs["func"]
    first = program.line_at(0)
    assert first is not None and first.line == "int func(void* ctx) {"
    assert first.file_name.endswith("bpf2bpf.c") and first.line_number == 37
    # Line info of the appended subprograms moved with their code.
    add1_pc = dict(program.functions)["add1"]
    assert program.line_at(add1_pc).line.strip() == "int add1(int* x) {"
    assert [f.pc for f in program.func_infos] == [pc for _, pc in program.functions]


def test_core_relocations_are_parsed() -> None:
    spec = load("cilium-examples/tcprtt_bpf_bpfel.o")
    program = spec.programs["tcp_close"]
    assert len(program.core_relocations) == 6
    first = program.core_relocations[0]
    assert first.kind == CoreReloKind.FIELD_BYTE_OFFSET
    assert first.access == "0:0:2"
    assert spec.btf.type_name(first.type_id) == "struct sock"


def test_license_and_kfunc_relocations() -> None:
    spec = load("build/externalfunction.o")
    kfuncs = [r for r in spec.programs["func"].relocations if r.kind == RelocationKind.KFUNC]
    assert [r.symbol for r in kfuncs] == ["bpf_map_lookup_elem"]
    assert insn_at(spec.programs["func"], kfuncs[0].pc).src == CallSrc.KFUNC
    assert load("linux/sockex1_kern.o").license == "GPL"


def test_from_file_matches_loader() -> None:
    path = SAMPLES / "build/twomaps.o"
    if not path.is_file():
        pytest.skip("sample missing")
    assert list(ObjectSpec.from_file(path).maps) == list(load_object_spec(path).maps)
