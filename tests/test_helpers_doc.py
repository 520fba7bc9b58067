"""docs/helpers.md lists exactly the helpers pybpf implements and those it refuses at load."""

from __future__ import annotations

import re
from pathlib import Path

from pybpf.platform.helper_ids import HelperId
from pybpf.runtime.linux_helpers import linux_helpers

DOC = Path(__file__).resolve().parents[1] / "docs" / "helpers.md"


def sections() -> dict[str, set[str]]:
    names: dict[str, set[str]] = {}
    current = None
    for line in DOC.read_text().splitlines():
        heading = re.match(r"## (\w[\w ]*?) \((\d+)\)", line)
        if heading:
            current = heading.group(1)
            names[current] = set()
            continue
        if current is not None:
            names[current] |= set(re.findall(r"`(bpf_\w+)`", line))
    return names


def test_the_lists_match_the_helper_table():
    table = {spec.name for spec in linux_helpers()}
    every = {"bpf_" + h.name.lower() for h in HelperId if h}
    listed = sections()
    assert listed["Implemented"] == table
    assert listed["Not implemented"] == every - table
