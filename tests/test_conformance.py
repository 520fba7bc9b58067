"""The bpf_conformance suite: every `.data` file passes on the interpreter."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pybpf.cli.main import main
from pybpf.engine.conformance import load_case, parse_case, run_case

SHARED = Path(os.environ.get("PYBPF_SHARED") or Path(__file__).resolve().parents[2] / "shared")
TESTS = SHARED / "conformance" / "tests"
FILES = sorted(TESTS.glob("*.data")) if TESTS.is_dir() else []


@pytest.mark.skipif(not FILES, reason=f"conformance tests not found in {TESTS} (set PYBPF_SHARED)")
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_conformance_file_passes(path: Path) -> None:
    result = run_case(load_case(path))
    assert result.skipped is None
    assert result.passed, (result.expected, result.actual, result.error)


def test_suite_has_313_files(shared: Path) -> None:
    assert len(list((shared / "conformance" / "tests").glob("*.data"))) == 313


def test_parse_sections_comments_and_raw() -> None:
    case = parse_case(
        "# header\n-- asm\nmov %r0, 1 # one\nexit\n-- mem\n01 02\n03\n-- raw\n0x00000001000000b7\n0x0000000000000095\n-- result\n0x1\n"
    )
    assert case.mem == b"\x01\x02\x03"
    assert case.raw is not None and len(case.raw) == 16
    assert case.expected == 1
    assert run_case(case).passed


def test_unknown_section_is_skipped() -> None:
    case = parse_case("-- asm\nexit\n-- frobnicate\n-- result\n0\n")
    assert case.skip is not None
    assert run_case(case).skipped


def test_mismatch_reports_expected_and_actual() -> None:
    result = run_case(parse_case("-- asm\nmov %r0, 2\nexit\n-- result\n0x3\n"))
    assert (result.passed, result.expected, result.actual) == (False, 3, 2)


def test_fault_is_a_failure_with_error_text() -> None:
    result = run_case(parse_case("-- asm\nldxb %r0, [%r1]\nexit\n-- result\n0x0\n"))
    assert not result.passed and result.error


def test_cli_summary_line_and_verbose_failures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "good.data").write_text("-- asm\nmov %r0, 1\nexit\n-- result\n0x1\n")
    (tmp_path / "bad.data").write_text("-- asm\nmov %r0, 2\nexit\n-- result\n0x1\n")
    assert main(["conformance", str(tmp_path), "-v"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "1 passed, 1 failed"
    assert any("bad" in line and "0x1" in line and "0x2" in line for line in out[:-1])


def test_cli_full_suite(shared: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conformance", str(shared / "conformance" / "tests")]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "313 passed, 0 failed"


def test_cli_run_raw_prints_r0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = tmp_path / "p.bin"
    # r0 = *(u32 *)(r1 + 0); r0 += r2; exit
    raw.write_bytes(bytes.fromhex("61100000000000000f200000000000009500000000000000"))
    assert main(["run-raw", str(raw), "--mem", "05 00 00 00"]) == 0
    assert capsys.readouterr().out.strip() == "r0 = 9 (0x9)"
    assert main(["run-raw", str(raw), "--mem", "05000000", "--json"]) == 0
    assert '"r0": 9' in capsys.readouterr().out


def test_cli_run_raw_fault_names_file_and_pc(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tmp_path / "oob.bin"
    raw.write_bytes(bytes.fromhex("61100800000000009500000000000000"))
    assert main(["run-raw", str(raw), "--mem", "00"]) == 1
    err = capsys.readouterr().err.strip()
    assert "oob.bin" in err and "pc 0" in err and len(err.splitlines()) == 1
