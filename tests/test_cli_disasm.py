"""`pybpf disasm`: output on sample objects, JSON, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import SAMPLES
from pybpf.cli.main import main


def sample(name: str) -> str:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"sample {name} not found")
    return str(path)


def test_disasm_text_shows_maps_programs_relocations_and_source(capsys) -> None:
    assert main(["disasm", sample("build/bpf2bpf.o")]) == 0
    out = capsys.readouterr().out
    assert "programs (3):" in out
    assert "Disassembly of program func (section test):" in out
    assert "call add2 -> pc 37" in out
    assert "; int func(void* ctx) {" in out
    assert "<add1>:" in out


def test_disasm_maps_and_core(capsys) -> None:
    assert main(["disasm", sample("cilium-examples/tcprtt_bpf_bpfel.o")]) == 0
    out = capsys.readouterr().out
    assert "events: ringbuf" in out
    assert "map events" in out
    # Each CO-RE relocation with what it resolved to (the kernel's BTF, or
    # poisoned against pybpf's own BTF, which has no struct sock).
    assert "byte_off struct sock.__sk_common." in out and "(access 0:0:2)" in out


def test_disasm_section_filter_and_json(capsys) -> None:
    assert main(["disasm", "--json", "--section", "test", sample("build/bpf2bpf.o")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in doc["programs"]] == ["func"]
    program = doc["programs"][0]
    assert [f["name"] for f in program["functions"]] == ["func", "add2", "add1"]
    assert program["instructions"][0]["source"]["text"] == "int func(void* ctx) {"
    assert {r["kind"] for r in program["relocations"]} == {"call"}


def test_disasm_json_map_in_map(capsys) -> None:
    assert main(["disasm", "--json", sample("build/map_in_map.o")]) == 0
    doc = json.loads(capsys.readouterr().out)
    outer = next(m for m in doc["maps"] if m["name"] == "array_of_maps")
    assert outer["inner_map"]["name"] == "array_of_maps.inner"
    assert outer["values"] == [{"index": 0, "symbol": "inner_map"}]


def test_disasm_unknown_section_is_one_line_error(capsys) -> None:
    assert main(["disasm", "--section", "nope", sample("build/bpf2bpf.o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope" in err


@pytest.mark.parametrize("content", [b"", b"\x7fELF\x02\x01\x01" + b"\0" * 20, b"hello"])
def test_disasm_bad_file_is_one_line_error(tmp_path, capsys, content: bytes) -> None:
    path = tmp_path / "bad.o"
    path.write_bytes(content)
    assert main(["disasm", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pybpf: error: {path}") and err.count("\n") == 1


def test_disasm_missing_file_in_subprocess(tmp_path) -> None:
    missing = tmp_path / "missing.o"
    result = subprocess.run(
        [sys.executable, "-m", "pybpf", "disasm", str(missing)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2  # bad input
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and str(missing) in result.stderr


def test_disasm_rejected_sample_in_subprocess() -> None:
    path = sample("invalid/badsymsize.o")
    result = subprocess.run(
        [sys.executable, "-m", "pybpf", "disasm", path], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"pybpf: error: {path}")
