"""pybpf.lazy: names and modules imported on first use, once."""

from __future__ import annotations

import importlib
import sys

import pytest

from child_process import modules_imported
from pybpf import lazy
from pybpf.lazy import lazy_module


def test_lazy_module_imports_on_first_call_only(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str | None]] = []
    original = importlib.import_module

    def counting(name: str, package: str | None = None):
        calls.append((name, package))
        return original(name, package)

    monkeypatch.setattr(lazy.importlib, "import_module", counting)
    load = lazy_module(".maps.ringbuf", "pybpf.runtime")
    assert calls == []  # nothing imported until the first call
    first = load()
    assert first is sys.modules["pybpf.runtime.maps.ringbuf"]
    assert load() is first and load() is first
    assert calls == [(".maps.ringbuf", "pybpf.runtime")]


def test_helper_tables_leave_the_map_modules_unimported() -> None:
    # Every object's helper table imports the ring buffer and perf helpers; their map
    # modules come only when a helper runs (then once: lazy_module).
    code = "import pybpf.runtime.linux_helpers.ringbuf, pybpf.runtime.linux_helpers.perf"
    maps = ("pybpf.runtime.maps.ringbuf", "pybpf.runtime.maps.perf_event_array")
    assert modules_imported(code, maps) == []
