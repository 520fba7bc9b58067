"""The bpf_conformance suite on the JIT: every `.data` file passes, as on the interpreter."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pybpf.engine.conformance import ENGINES, load_case, run_case

SHARED = Path(os.environ.get("PYBPF_SHARED") or Path(__file__).resolve().parents[2] / "shared")
TESTS = SHARED / "conformance" / "tests"
FILES = sorted(TESTS.glob("*.data")) if TESTS.is_dir() else []


def test_jit_is_a_conformance_engine() -> None:
    assert "jit" in ENGINES


@pytest.mark.skipif(not FILES, reason=f"conformance tests not found in {TESTS} (set PYBPF_SHARED)")
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_conformance_file_passes_on_the_jit(path: Path) -> None:
    result = run_case(load_case(path), engine="jit")
    assert result.skipped is None
    assert result.passed, (result.expected, result.actual, result.error)
