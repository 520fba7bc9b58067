"""Every program of every real-world sample object, run once on a packet.

A robustness sweep, like the ELF fuzz tests: whatever an object holds
(unsupported program types, kfuncs, legacy packet loads, maps of every
kind), `pybpf.load` and `Program.test_run` either work or raise a typed
`PybpfError` — never another exception. Objects of the big projects
(cilium, falco, ovs) take most of the time and run with `-m slow`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import pybpf
from conftest import SAMPLES
from pybpf.errors import PybpfError
from pybpf.testing.packets import sample_packets

SLOW_PROJECTS = {"bpf_cilium_test", "cilium", "cilium-core", "falco", "ovs"}


def _objects() -> list:
    if not SAMPLES.is_dir():
        return []
    params = []
    for path in sorted(SAMPLES.rglob("*.o")):
        rel = path.relative_to(SAMPLES)
        marks = [pytest.mark.slow] if rel.parts[0] in SLOW_PROJECTS else []
        params.append(pytest.param(path, id=str(rel), marks=marks))
    return params


@pytest.mark.parametrize("path", _objects())
def test_every_program_runs_or_raises_a_typed_error(path: Path) -> None:
    packet = sample_packets()["udp_dns"]
    try:
        # verify=False: this sweep tests the bounds-checked interpreter's
        # robustness on every sample, not the verifier (tests/test_verifier_*).
        obj = pybpf.load(path, verify=False)
    except PybpfError:
        return  # a one-line load error is the contract for broken objects
    with obj:
        for name, program in obj.programs.items():
            try:
                result = program.test_run(data=packet)
            except PybpfError:
                continue
            assert 0 <= result.retval <= 0xFFFFFFFF, name
            assert isinstance(result.data_out, bytes), name
