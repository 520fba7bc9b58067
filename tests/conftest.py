"""Shared pytest configuration for pybpf's tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The project's test data (conformance suite, PREVAIL cases, sample objects)
# lives next to the repository: /work/main/tests → /work/shared.
# PYBPF_SHARED points elsewhere; tests that need it skip when it is absent.
SHARED = Path(os.environ.get("PYBPF_SHARED") or Path(__file__).resolve().parents[2] / "shared")


@pytest.fixture(scope="session")
def shared() -> Path:
    """The shared test-data directory; skips the test when it is missing."""
    if not SHARED.is_dir():
        pytest.skip(f"shared test data not found at {SHARED} (set PYBPF_SHARED)")
    return SHARED


# --- sample objects (elf/ tests) ----------------------------------------------

SAMPLES = SHARED / "ebpf-samples"
ELF_INVENTORY = SHARED / "prevail-tests" / "elf_inventory.json"


def sample_inventory() -> list[tuple[str, dict]]:
    """`(path under ebpf-samples, inventory entry)` of every sample object on disk.

    The inventory describes a newer sample set than the one copied here;
    objects it lists that are not on disk are left out. Empty when the
    shared data is missing (tests using it then skip).
    """
    import json

    if not ELF_INVENTORY.is_file():
        return []
    projects = json.loads(ELF_INVENTORY.read_text())["projects"]
    found = []
    for project, info in sorted(projects.items()):
        for name, entry in sorted(info["objects"].items()):
            if (SAMPLES / project / name).is_file():
                found.append((f"{project}/{name}", entry))
    return found
