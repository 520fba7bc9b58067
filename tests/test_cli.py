"""End-to-end tests of the `pybpf` command: help, the README demo, bad input.

These run the real console entry point in a subprocess, because what is
checked (exit codes, one-line errors, no traceback) is what a user sees.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
COMMANDS = ["disasm", "asm", "run-raw", "conformance", "prog", "prog run", "map", "map dump"]


def pybpf(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m pybpf ARGS` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "pybpf", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def assert_one_line_error(
    proc: subprocess.CompletedProcess[str], *needles: str, code: int = 2
) -> None:
    """A failed command: exit `code` (2 bad input, 1 rejected or failed), one line on
    stderr naming the needles, no traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, (needle, err)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    proc = pybpf(*command.split(), "--help")
    assert proc.returncode == 0, proc.stderr
    assert "Usage" in proc.stdout


def test_no_arguments_prints_usage() -> None:
    proc = pybpf()
    assert proc.returncode in (0, 2)
    assert "Usage" in proc.stdout + proc.stderr


def test_readme_demo_prints_port_53(tmp_path: Path) -> None:
    out = tmp_path / "udp_dport.bin"
    proc = pybpf("asm", str(EXAMPLES / "asm" / "udp_dport.asm"), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size % 8 == 0
    mem = (EXAMPLES / "packets" / "udp_dns.hex").read_text()
    proc = pybpf("run-raw", str(out), "--mem", mem)
    assert proc.returncode == 0, proc.stderr
    assert "53" in proc.stdout and "0x35" in proc.stdout


def test_readme_demo_drops_dns_and_counts_udp() -> None:
    proc = pybpf(
        "prog", "run", str(EXAMPLES / "xdp_counter.o"),
        "--data-in", str(EXAMPLES / "packets" / "udp_dns.bin"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Return value: 1," in proc.stdout  # XDP_DROP: UDP to the blocked port 53
    assert "proto_count" in proc.stdout and "(17: 1)" in proc.stdout
    proc = pybpf("disasm", str(EXAMPLES / "xdp_counter.o"), "--section", "xdp")
    assert proc.returncode == 0, proc.stderr
    assert "xdp_count" in proc.stdout


def test_asm_unknown_mnemonic_names_file_and_line(tmp_path: Path) -> None:
    src = tmp_path / "bad.asm"
    src.write_text("mov %r0, 1\nfrobnicate %r0, 2\nexit\n")
    out = tmp_path / "bad.bin"
    proc = pybpf("asm", str(src), "-o", str(out))
    assert_one_line_error(proc, "bad.asm:2")
    assert not out.exists(), "a failed assembly must not leave an output file"


def test_asm_bad_operand_names_line(tmp_path: Path) -> None:
    src = tmp_path / "bad.asm"
    src.write_text("mov %r0, 1\nadd %r11, 2\nexit\n")
    proc = pybpf("asm", str(src), "-o", str(tmp_path / "x.bin"))
    assert_one_line_error(proc, "bad.asm:2")


def test_asm_missing_file(tmp_path: Path) -> None:
    proc = pybpf("asm", str(tmp_path / "nope.asm"), "-o", str(tmp_path / "x.bin"))
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "nope.asm" in proc.stderr


def test_run_raw_length_not_multiple_of_8(tmp_path: Path) -> None:
    raw = tmp_path / "short.bin"
    raw.write_bytes(bytes.fromhex("b7000000010000009500"))
    assert_one_line_error(pybpf("run-raw", str(raw)), "short.bin", "10")


def test_run_raw_lddw_missing_second_half(tmp_path: Path) -> None:
    raw = tmp_path / "lddw.bin"
    raw.write_bytes(bytes.fromhex("1800000001000000"))
    assert_one_line_error(pybpf("run-raw", str(raw)), "lddw.bin", "pc 0")


def test_run_raw_jump_out_of_range(tmp_path: Path) -> None:
    raw = tmp_path / "jmp.bin"
    # ja +5 ; exit   -> target pc 6 is past the end
    raw.write_bytes(bytes.fromhex("05000500000000009500000000000000"))
    assert_one_line_error(pybpf("run-raw", str(raw)), "jmp.bin", "pc 0")


def test_run_raw_bad_hex_memory(tmp_path: Path) -> None:
    raw = tmp_path / "ok.bin"
    raw.write_bytes(bytes.fromhex("b7000000010000009500000000000000"))
    proc = pybpf("run-raw", str(raw), "--mem", "zz 01")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "content",
    [b"", b"\x7fELF", b"not an elf at all", b"\x7fELF\x02\x01\x01" + b"\x00" * 57],
    ids=["empty", "magic-only", "text", "truncated-header"],
)
def test_disasm_bad_files(tmp_path: Path, content: bytes) -> None:
    obj = tmp_path / "bad.o"
    obj.write_bytes(content)
    assert_one_line_error(pybpf("disasm", str(obj)), "bad.o")


def test_disasm_non_bpf_elf() -> None:
    # Any ELF of this machine's own architecture, e.g. the Python binary.
    exe = Path(sys.executable).resolve()
    if exe.read_bytes()[:4] != b"\x7fELF":
        pytest.skip("the Python executable is not an ELF file here")
    assert_one_line_error(pybpf("disasm", str(exe)), exe.name)


def test_disasm_missing_file(tmp_path: Path) -> None:
    proc = pybpf("disasm", str(tmp_path / "missing.o"))
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "missing.o" in proc.stderr


def test_disasm_example_shows_source_lines_and_maps() -> None:
    proc = pybpf("disasm", str(EXAMPLES / "xdp_counter.o"))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "xdp_count" in out and "udp_dport" in out
    assert "proto_count" in out and ".rodata" in out
    # A C source line from BTF line_info, printed above its instructions.
    assert "bpf_map_lookup_elem(&proto_count, &key)" in out
