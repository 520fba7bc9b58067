"""Every sample object parses into the programs PREVAIL's inventory lists, or
is rejected with a one-line LoadError.

The expected outcome comes from ../shared/prevail-tests/elf_inventory.json:
an object parses unless one of its programs is marked `reject_load` (or
PREVAIL's loader crashed on it and listed no sections). The few objects
where pybpf decides differently are listed in `PARSE_DESPITE_INVENTORY` and
`REJECT_DESPITE_INVENTORY`, each with the reason.
"""

from __future__ import annotations

import pytest

from conftest import SAMPLES, sample_inventory
from pybpf.elf import RelocationKind, load_object_spec
from pybpf.errors import LoadError

# PREVAIL rejects these at load because a call names an undefined function
# ("Subprogram not found"). pybpf follows libbpf: a call to an undefined
# symbol is a kfunc/extern relocation, kept in the spec unresolved, and the
# runtime refuses it when the program is loaded. The spec itself is valid.
PARSE_DESPITE_INVENTORY = {
    "build/badrelo.o": "call to undefined ebpf_map_update_elem is a kfunc relocation",
    "build/externalfunction.o": "call to undefined bpf_map_lookup_elem is a kfunc relocation",
}

# PREVAIL unmarshals this object and rejects it at verification. Its last
# instruction is the first half of an lddw with no second half, which an
# `Instruction` cannot represent; the kernel too rejects it when the program
# is loaded (BPF_PROG_LOAD: "invalid bpf_ld_imm64 insn"), not in the verifier.
REJECT_DESPITE_INVENTORY = {
    "invalid/invalid-lddw.o": "truncated lddw at the end of .text",
}

INVENTORY = sample_inventory()


def _expect_reject(name: str, entry: dict) -> bool:
    if name in PARSE_DESPITE_INVENTORY:
        return False
    if name in REJECT_DESPITE_INVENTORY:
        return True
    marked = any(f["reject_load"] for funcs in entry["sections"].values() for f in funcs)
    crashed = entry["exit_code"] != 0 and not entry["sections"]
    return marked or crashed


def _functions_by_section(entry: dict) -> dict[str, list[str]]:
    return {sec: sorted(f["function"] for f in funcs) for sec, funcs in entry["sections"].items()}


@pytest.mark.parametrize(
    ("name", "entry"),
    INVENTORY or [pytest.param("", {}, marks=pytest.mark.skip(reason="no shared samples"))],
    ids=[name for name, _ in INVENTORY] or None,
)
def test_sample_object(name: str, entry: dict) -> None:
    path = SAMPLES / name
    if _expect_reject(name, entry):
        with pytest.raises(LoadError) as info:
            load_object_spec(path)
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith(str(path))
        return
    spec = load_object_spec(path)
    got: dict[str, list[str]] = {}
    for program in spec.programs.values():
        got.setdefault(program.section, []).append(program.name)
    assert {sec: sorted(names) for sec, names in got.items()} == _functions_by_section(entry)
    for program in spec.programs.values():
        assert program.instructions, program.name
        assert program.functions[0] == (program.name, 0)
    if name in PARSE_DESPITE_INVENTORY:
        kinds = {r.kind for p in spec.programs.values() for r in p.relocations}
        assert RelocationKind.KFUNC in kinds


def test_inventory_covers_all_samples() -> None:
    if not INVENTORY:
        pytest.skip("no shared samples")
    assert len(INVENTORY) == 173
