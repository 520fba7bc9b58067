"""Engine choice: the JIT by default for verified programs, the interpreter by policy or request."""

from __future__ import annotations

from pathlib import Path

import pytest

import pybpf
from pybpf.engine import policy

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
UDP_DNS = (EXAMPLES / "packets" / "udp_dns.bin").read_bytes()


@pytest.fixture(autouse=True)
def _reset_policy(monkeypatch):
    monkeypatch.delenv(policy.ENV_INTERPRETER_ONLY, raising=False)
    policy.set_interpreter_only(None)
    yield
    policy.set_interpreter_only(None)


def test_choose_engine_rules(monkeypatch) -> None:
    assert policy.choose_engine(None, verified=True) == "jit"
    assert policy.choose_engine(None, verified=False) == "interpreter"
    assert policy.choose_engine("interpreter", verified=True) == "interpreter"
    with pytest.raises(pybpf.LoadError, match="verified programs only"):
        policy.choose_engine("jit", verified=False)
    with pytest.raises(pybpf.LoadError, match="unknown engine"):
        policy.choose_engine("fast", verified=True)
    monkeypatch.setenv(policy.ENV_INTERPRETER_ONLY, "1")
    assert policy.interpreter_only()
    assert policy.choose_engine(None, verified=True) == "interpreter"
    with pytest.raises(pybpf.LoadError, match="interpreter-only policy"):
        policy.choose_engine("jit", verified=True)
    policy.set_interpreter_only(False)  # the API wins over the environment
    assert policy.choose_engine(None, verified=True) == "jit"


def test_default_engine_is_the_jit() -> None:
    with pybpf.load(EXAMPLES / "xdp_counter.o") as obj:
        program = obj.programs["xdp_count"]
        assert program.test_run(data=UDP_DNS).retval == 1
        assert program.engine_kind == "jit"
        assert program.fallback_reason is None


def test_interpreter_only_policy_generates_no_native_code(monkeypatch) -> None:
    from pybpf.runtime.native.compiler import compile_stats

    monkeypatch.setenv(policy.ENV_INTERPRETER_ONLY, "yes")
    before = [n for n in compile_stats().compiled + compile_stats().loaded if "jit" in n]
    with pybpf.load(EXAMPLES / "xdp_counter.o") as obj:
        program = obj.programs["xdp_count"]
        assert program.test_run(data=UDP_DNS).retval == 1
        assert program.engine_kind == "interpreter"
    after = [n for n in compile_stats().compiled + compile_stats().loaded if "jit" in n]
    assert after == before
    with pybpf.load(EXAMPLES / "xdp_counter.o", engine="jit") as obj:
        with pytest.raises(pybpf.LoadError, match="interpreter-only"):
            obj.programs["xdp_count"].test_run(data=UDP_DNS)


def test_unknown_engine_is_a_load_error() -> None:
    with pytest.raises(pybpf.LoadError, match="unknown engine 'fast'"):
        pybpf.load(EXAMPLES / "xdp_counter.o", engine="fast")
