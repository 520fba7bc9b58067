"""What this pybpf supports, per platform: program types, map types, helpers (bpftool feature).

Read from the tables the rest of pybpf runs on, not kept here: program
types from `platform.program_type_info` (a type can be loaded when the
verifier has its context rules, test-run when a test-run context is
defined), map types from `runtime.maps.FAMILIES`, helpers from the
runtime's helper tables (Linux's and eBPF for Windows' own), and which
helpers a Linux program type may call from `platform.helper_availability`
(the kernel's func_proto tables). `pybpf feature` prints it;
`pybpf.libbpf.libbpf_probe_bpf_*` answers one question at a time.
"""

from __future__ import annotations

from typing import Any

from .elf.map_types import MapType
from .platform.helper_availability import HOST_ONLY, REFUSED
from .platform.platforms import WINDOWS_PROGRAM_TYPES
from .platform.program_type_info import program_type_info
from .platform.program_types import ProgramType

PLATFORMS = ("linux", "windows")


def _linux_types() -> list[ProgramType]:
    windows = set(WINDOWS_PROGRAM_TYPES.values())
    return [
        t
        for t in ProgramType
        if t != ProgramType.UNSPEC and t not in windows and not t.name.startswith("EXTENSION_")
    ]


def program_types(platform: str = "linux") -> list[dict[str, Any]]:
    """Every program type of `platform`: name, number, whether it loads and test-runs."""
    types = _linux_types() if platform == "linux" else list(WINDOWS_PROGRAM_TYPES.values())
    out = []
    for prog_type in types:
        info = program_type_info(prog_type)
        out.append(
            {
                "name": prog_type.name.lower().removeprefix("windows_"),
                "id": int(prog_type),
                "load": info.context is not None,
                "test_run": info.test_run is not None,
            }
        )
    return out


def map_types() -> list[dict[str, Any]]:
    """Every BPF_MAP_TYPE_*: name, number, whether pybpf has the family."""
    from .runtime.maps import FAMILIES

    return [
        {"name": t.name.lower(), "id": int(t), "supported": t in FAMILIES}
        for t in MapType
        if t != MapType.UNSPEC
    ]


def _implemented() -> dict[int, str]:
    """Internal helper id → name of every helper the runtime implements."""
    from .runtime.linux_helpers import linux_helpers
    from .runtime.windows_helpers import HELPERS

    return {spec.id: spec.name for spec in [*linux_helpers(), *HELPERS]}


def helpers(platform: str = "linux") -> list[dict[str, Any]]:
    """The helpers pybpf implements for `platform`, by the platform's own ids (eBPF for
    Windows': its general helpers, then each program type's from 0x10000)."""
    implemented = _implemented()
    if platform == "windows":
        from .platform.windows import GENERAL_HELPERS, TYPE_HELPERS

        known = [*GENERAL_HELPERS.values()]
        for table in TYPE_HELPERS.values():
            known += [h for h in table.values() if h not in known]
        return [{"id": h.id, "name": h.name} for h in known if h.internal in implemented]
    from .runtime.linux_helpers import linux_helpers

    return [
        {"id": spec.id, "name": spec.name} for spec in sorted(linux_helpers(), key=lambda s: s.id)
    ]


def _refused(prog_type: ProgramType) -> frozenset[int]:
    """What the kernel refuses the type, for its plain attach (or its first probed one)."""
    table = REFUSED.get(prog_type.name.lower())
    if table is None:
        return frozenset()
    kind = "" if "" in table.kinds else table.kinds[0] if table.kinds else next(iter(table.others))
    return table.refused(kind) or frozenset()


def helpers_for(prog_type: ProgramType) -> list[int]:
    """The implemented Linux helper ids a program of `prog_type` may call (the kernel's
    tables where they are known; every implemented one where they are not)."""
    refused = _refused(prog_type) - {f for t, f in HOST_ONLY if t == prog_type.name.lower()}
    return [h["id"] for h in helpers("linux") if h["id"] not in refused]


def probe_prog_type(prog_type: int) -> bool:
    """Whether pybpf loads programs of this type (libbpf_probe_bpf_prog_type)."""
    try:
        return program_type_info(ProgramType(prog_type)).context is not None
    except (ValueError, KeyError):
        return False


def probe_map_type(map_type: int) -> bool:
    """Whether pybpf has maps of this type (libbpf_probe_bpf_map_type)."""
    from .runtime.maps import FAMILIES

    return map_type in FAMILIES


def probe_helper(prog_type: int, helper_id: int) -> bool:
    """Whether a program of this type may call this helper here (libbpf_probe_bpf_helper)."""
    if not probe_prog_type(prog_type):
        return False
    return helper_id in helpers_for(ProgramType(prog_type))


def report(platform: str = "linux") -> dict[str, Any]:
    """Everything, as `pybpf feature --json` prints it."""
    document: dict[str, Any] = {
        "platform": platform,
        "program_types": program_types(platform),
        "map_types": map_types(),
        "helpers": helpers(platform),
    }
    if platform == "linux":
        document["helpers_by_program_type"] = {
            t["name"]: helpers_for(ProgramType(t["id"])) for t in program_types() if t["load"]
        }
    else:
        from .platform.windows import GENERAL_HELPERS, TYPE_HELPERS

        general = [h["id"] for h in document["helpers"] if h["id"] in GENERAL_HELPERS]
        document["helpers_by_program_type"] = {
            kind: general + [i for i in table if i in {h["id"] for h in document["helpers"]}]
            for kind, table in TYPE_HELPERS.items()
        }
    return document
