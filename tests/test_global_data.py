"""Global data laid out as libbpf lays it out, checked against libbpf and the kernel.

`tests/corpus/globals_mixed.o` has several variables of mixed sizes in
every section kind (`.rodata`, `.data`, `.bss`, `.data.custom`,
`.rodata.custom`), static and global, arrays and structs. clang leaves the
offsets of global variables in the BTF DATASECs at 0; these tests check
that pybpf's views (`obj.rodata.<var>`, `obj.variables(section)`, typed
map views, `pybpf map dump`) read and write the bytes the program uses, and,
where the kernel is available, that the layout equals libbpf's and the bytes
after a run equal the kernel's.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import pybpf
from pybpf.btf.parse import parse_btf
from pybpf.btf.types import Datasec, Var
from pybpf.elf.reader import read_elf
from pybpf.testing.kernel import KernelObject, kernel_available, unavailable_reason

OBJ = Path(__file__).parent / "corpus" / "globals_mixed.o"
SECTIONS = (".rodata", ".data", ".bss", ".data.custom", ".rodata.custom")
PACKET = bytes(range(60))

# (section, variable) → value set before load, in both pybpf and the kernel.
CONFIG = {
    (".rodata", "cfg_shift"): (2, 1),
    (".rodata", "cfg_mult"): (7, 4),
    (".rodata", "cfg_port"): (8080, 2),
    (".rodata", "cfg_salt"): (0x0F0E0D0C0B0A0908, 8),
    (".rodata.custom", "rc_a"): (0xBEEF, 2),
}


def _elf_symbols() -> dict[str, tuple[str, int, int]]:
    """`variable -> (section, offset, size)` straight from the ELF symbol table."""
    image = read_elf(OBJ.read_bytes(), str(OBJ))
    out = {}
    for sym in image.symbols:
        if sym.type == 1 and 0 < sym.section < len(image.sections):  # STT_OBJECT
            out[sym.name] = (image.sections[sym.section].name, sym.value, sym.size)
    return out


def test_variables_sit_at_their_symbol_offsets():
    symbols = _elf_symbols()
    with pybpf.load(OBJ) as obj:
        seen = 0
        for section in SECTIONS:
            for name, offset, size in obj.variables(section).vars():
                if name in symbols:  # static variables may have no global symbol
                    assert symbols[name] == (section, offset, size), name
                    seen += 1
        assert seen >= 20
        # Every section's DATASEC covers the whole section, sorted and disjoint.
        for section in SECTIONS:
            layout = obj.variables(section).vars()
            assert len(layout) >= 3, section
            ends = [offset + size for _, offset, size in layout]
            starts = [offset for _, offset, _ in layout]
            assert all(e <= s for e, s in zip(ends, starts[1:], strict=False)), section
            assert ends[-1] <= obj.maps[section].spec.value_size


def test_initial_values_read_back_as_the_source_writes_them():
    with pybpf.load(OBJ) as obj:
        assert obj.rodata.cfg_mult == 3
        assert obj.rodata.cfg_port == 53
        assert obj.rodata.cfg_limits == {"kind": 2, "max_bytes": 1500}
        assert obj.rodata.cfg_salt == 0x1122334455667788
        assert obj.rodata.cfg_hidden == 9  # a static const volatile
        assert obj.data.d_acc == 1000
        assert obj.data.d_hist == [10, 20, 30]
        assert obj.data.d_static == 42
        assert obj.data.d_counters == {"runs": 5, "last_len": 0, "flags": 0x80, "total": 7}
        assert obj.variables(".data.custom").as_dict() == {
            "dc_a": 0xAAAA,
            "dc_b": 0xBB,
            "dc_c": 0xCCCCCCCC,
        }
        assert obj.variables(".rodata.custom").rc_b == 0x5678
        assert obj.bss.as_dict()["b_ports"] == [0, 0, 0, 0]


def test_setting_one_variable_writes_only_its_bytes():
    with pybpf.load(OBJ) as obj:
        before = obj.maps[".rodata"][b"\0\0\0\0"]
        obj.rodata.cfg_port = 0x4142
        after = obj.maps[".rodata"][b"\0\0\0\0"]
        _, offset, size = _elf_symbols()["cfg_port"]
        assert after[offset : offset + size] == b"\x42\x41"
        assert after[:offset] == before[:offset]
        assert after[offset + size :] == before[offset + size :]
        assert obj.rodata.cfg_mult == 3


@pytest.mark.parametrize("engine", ["interpreter", "jit"])
def test_run_results_land_in_the_right_variables(engine):
    with pybpf.load(OBJ, engine=engine) as obj:
        for (section, name), (value, _size) in CONFIG.items():
            setattr(obj.variables(section), name, value)
        run = obj.programs["globals_mixed"].test_run(data=PACKET)
        assert run.retval == 2  # XDP_PASS: 60 bytes <= max_bytes
        length = len(PACKET)
        assert obj.bss.b_len == (length << 2) * 7
        assert obj.bss.b_proto == 2 + 0x9A
        assert obj.bss.b_mixed == 0x0F0E0D0C0B0A0908 ^ 1500 ^ 0x5678 ^ 9
        assert obj.bss.b_ports == [8080, 0, 0, 0xBEEF]
        assert obj.bss.b_counters == {"runs": 1, "last_len": length, "flags": 0, "total": length}
        assert obj.data.d_seen == 2
        assert obj.data.d_acc == 1000 + length + 42
        assert obj.data.d_static == 43
        assert obj.data.d_hist == [11, 20, 30]
        assert obj.data.d_counters["total"] == 7 + 0xCCCCCCCC
        assert obj.variables(".data.custom").dc_a == 0xAAAB
        # .rodata is frozen by the load: settable before, refused after.
        with pytest.raises(pybpf.MapError):
            obj.rodata.cfg_port = 1


def test_map_dump_shows_each_variable_at_its_offset():
    result = subprocess.run(
        [sys.executable, "-m", "pybpf", "map", "dump", str(OBJ), ".rodata", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    (entry,) = report["entries"]
    value = entry["formatted"]["value"] if "formatted" in entry else entry["value"]
    assert value["cfg_port"] == 53
    assert value["cfg_salt"] == 0x1122334455667788
    assert value["cfg_limits"] == {"kind": 2, "max_bytes": 1500}


# --- against libbpf and the kernel ----------------------------------------------

kernel = pytest.mark.skipif(not kernel_available(), reason=unavailable_reason())


def _libbpf_layout(k: KernelObject, section: str) -> list[tuple[str, int, int]]:
    btf = parse_btf(k.btf_raw())
    datasec = btf.type_by_id(k.map_value_type_id(section))
    assert isinstance(datasec, Datasec)
    out = []
    for info in datasec.vars:
        var = btf.type_by_id(info.type)
        assert isinstance(var, Var)
        out.append((var.name, info.offset, info.size))
    return out


@kernel
def test_layout_equals_libbpf():
    with KernelObject(OBJ) as k, pybpf.load(OBJ) as obj:
        for section in SECTIONS:
            assert obj.variables(section).vars() == _libbpf_layout(k, section), section


@kernel
@pytest.mark.parametrize("engine", ["interpreter", "jit"])
def test_bytes_after_a_run_equal_the_kernel(engine):
    kernel_globals = {
        name: value.to_bytes(size, "little") for (_, name), (value, size) in CONFIG.items()
    }
    with KernelObject(OBJ, globals=kernel_globals) as k, pybpf.load(OBJ, engine=engine) as obj:
        for (section, name), (value, _size) in CONFIG.items():
            setattr(obj.variables(section), name, value)
        for _ in range(3):
            expected = k.test_run("globals_mixed", PACKET)
            got = obj.programs["globals_mixed"].test_run(data=PACKET)
            assert got.retval == expected.retval
        for section in SECTIONS:
            theirs = k.map(section).lookup(b"\0\0\0\0")
            ours = obj.maps[section][b"\0\0\0\0"]
            assert ours == theirs, section
        # The views decode the kernel's bytes at libbpf's offsets.
        layout = dict((n, (o, s)) for n, o, s in _libbpf_layout(k, ".bss"))
        raw = k.map(".bss").lookup(b"\0\0\0\0")
        offset, size = layout["b_mixed"]
        assert obj.bss.b_mixed == struct.unpack_from("<Q", raw, offset)[0]
        offset, size = layout["b_len"]
        assert obj.bss.b_len == int.from_bytes(raw[offset : offset + size], "little")
