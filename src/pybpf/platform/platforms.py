"""Platforms: whose conventions an object was built for, Linux's or eBPF for Windows'.

pybpf runs one internal numbering (Linux's map types and helper ids, and
program types of its own beyond Linux's for the other platform) through
its verifier, engines and maps. A `Platform` brings an object to it as
the object is parsed: map type numbers (`map_type`), the layout of legacy
`maps` section records (`legacy_map_layout`), helper ids in calls
(`translate_helpers`), and which program type a section names
(`program_type`). `LINUX` is the identity; `WINDOWS` holds eBPF for
Windows' tables (`platform.windows`).

`detect_platform` decides when the caller does not say, from what the
object itself says (`Detection.reasons`):

- a `.ebpf_for_windows` section (eBPF for Windows' helper header puts one in
  every object): Windows, certain;
- section names only Windows uses (`bind`, `cgroup/recv_accept4`,
  `cgroup/listen4`, `cgroup/connect_authorization4`, `sample_ext`):
  Windows, strong;
- BTF typedefs of Windows' contexts (`bind_md_t`, `bpf_sock_addr_t`,
  `bpf_sock_ops_t`, `xdp_md_t`) over structs of Windows' sizes: Windows,
  strong (one of PREVAIL's Linux samples names its 24-byte xdp_md
  `xdp_md_t`: the size tells them apart);
- Linux's: a `license` section, BTF `__sk_buff`, or a section only libbpf
  knows (`tc`, `kprobe/…`, `socket`, …).

Windows signals without Linux ones give Windows; both kinds (an object
mixing conventions) or neither keep Linux, and `Detection.note` says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ..errors import LoadError
from ..isa.instruction import Instruction
from ..isa.opcodes import CALL, CallSrc
from . import windows
from .extensions import extension_for_section
from .helper_prototypes import EXTENSION_HELPER_BASE, WINDOWS_HELPER_BASE
from .program_types import ProgramType

if TYPE_CHECKING:
    from ..btf.spec import Spec as BtfSpec
    from ..elf.reader import ElfImage
    from ..elf.specs import ProgramSpec

__all__ = [
    "LINUX",
    "PLATFORMS",
    "WINDOWS",
    "Detection",
    "Platform",
    "detect_platform",
    "platform_named",
]

# Program types of eBPF for Windows, by the kind its section table gives.
WINDOWS_PROGRAM_TYPES = {
    "xdp": ProgramType.WINDOWS_XDP,
    "bind": ProgramType.WINDOWS_BIND,
    "sock_addr": ProgramType.WINDOWS_SOCK_ADDR,
    "sock_ops": ProgramType.WINDOWS_SOCK_OPS,
    "sample": ProgramType.WINDOWS_SAMPLE,
}


@dataclass(frozen=True)
class Platform:
    """One platform's conventions (see the module docstring)."""

    name: str
    #: Whether GPL-only helpers need a GPL-compatible license (Linux's rule).
    gpl_rules: bool = True

    def map_type(self, number: int, where: str) -> int:
        """The internal map type of map type `number` as this platform numbers it."""
        if self.name != "windows":
            return number
        internal = windows.MAP_TYPES.get(number)
        if internal is None:
            name = windows.MAP_TYPE_NAMES.get(number, f"type {number}")
            raise LoadError(f"{where}: map type {number} ({name}) is not supported on windows")
        return int(internal)

    @property
    def legacy_map_layout(self) -> str:
        """How a legacy `maps` record reads: `linux` (bpf_map_def and its extensions) or
        `windows` (eight words: type, key, value, max_entries, inner_map_idx, pinning,
        id, inner_id)."""
        return self.name

    def program_type(self, section: str) -> ProgramType | None:
        """The program type section `section` names on this platform, UNSPEC if it names
        none; None for Linux, whose table is libbpf's (`sections`, `program.program_type_of`)."""
        if self.name != "windows":
            return None
        match = windows.section_kind(section)
        return ProgramType.UNSPEC if match is None else WINDOWS_PROGRAM_TYPES[match.kind]

    def unknown_section(self, section: str) -> str:
        """Why a program of `section` has no type on this platform."""
        if self.name == "windows":
            known = ", ".join(s.prefix for s in windows.SECTIONS)
            return f"section {section!r} names no eBPF for Windows program type ({known})"
        return (
            f"section {section!r} does not name a program type: give one"
            " (--type / prog_type=, bpftool's names: xdp, tc, socket, cgroup/skb, …)"
        )

    def foreign_helper(self, helper_id: int) -> str | None:
        """Why an object of this platform cannot call helper `helper_id` (an internal id
        only another platform's helpers have), or None."""
        if self.name != "windows" and WINDOWS_HELPER_BASE <= helper_id < EXTENSION_HELPER_BASE:
            name = windows.internal_helper_name(helper_id) or f"helper {helper_id}"
            return f"{name}#{helper_id} is a helper of eBPF for Windows, not of {self.name}"
        return None

    def extra_helpers(self) -> list:
        """Runtime helpers this platform adds to Linux's (`runtime.helpers.HelperSpec`)."""
        if self.name != "windows":
            return []
        from ..runtime.windows_helpers import HELPERS

        return list(HELPERS)

    def translate_helpers(self, program: ProgramSpec, path: str) -> ProgramSpec:
        """`program` with its helper calls renumbered to internal ids (a registered
        extension's section: its helpers', on any platform)."""
        extension = extension_for_section(program.section)
        if extension is not None:
            return _renumber(program, extension.internal)
        if self.name != "windows":
            return program
        match = windows.section_kind(program.section)
        kind = None if match is None else match.kind
        out: list[Instruction] = []
        changed = False
        for insn in program.instructions:
            if insn.opcode == CALL and insn.src == CallSrc.HELPER:
                helper = windows.helper_for(kind, insn.imm)
                if helper is None and kind is None and insn.imm >= windows.TYPE_HELPER_BASE:
                    # A function outside any program section (.text): its own helpers
                    # are numbered by the type of each program that calls it, in that
                    # program's copy of it.
                    out.append(insn)
                    continue
                if helper is None:
                    where = f"{path}: program {program.name} (section {program.section})"
                    raise LoadError(f"{where}: helper id {insn.imm} is unknown on windows")
                if helper.internal != insn.imm:
                    insn = replace(insn, imm=helper.internal)
                    changed = True
            out.append(insn)
        return replace(program, instructions=tuple(out)) if changed else program


def _renumber(program: ProgramSpec, ids: dict[int, int]) -> ProgramSpec:
    """`program` with helper calls whose id is in `ids` renumbered (the rest kept)."""
    out = [
        replace(insn, imm=ids[insn.imm])
        if insn.opcode == CALL and insn.src == CallSrc.HELPER and insn.imm in ids
        else insn
        for insn in program.instructions
    ]
    return replace(program, instructions=tuple(out))


LINUX = Platform("linux")
WINDOWS = Platform("windows", gpl_rules=False)
PLATFORMS = {p.name: p for p in (LINUX, WINDOWS)}


def platform_named(name: str) -> Platform:
    """The platform called `name` (`linux`, `windows`); LoadError naming the choices."""
    try:
        return PLATFORMS[name.lower()]
    except KeyError:
        choices = ", ".join(PLATFORMS)
        raise LoadError(f"unknown platform {name!r} (choose from {choices})") from None


@dataclass
class Detection:
    """The platform detected, the signals seen for each, and why when ambiguous."""

    platform: Platform
    windows: list[str] = field(default_factory=list)
    linux: list[str] = field(default_factory=list)
    note: str | None = None


_WINDOWS_ONLY_PREFIXES = (
    "bind",
    "cgroup/recv_accept",
    "cgroup/connect_authorization",
    "cgroup/listen",
    "sample_ext",
)
# Windows' context typedefs and their structs' sizes: a typedef of that name over a
# struct of another size (a Linux xdp_md of 24 bytes named xdp_md_t) is no signal.
_WINDOWS_CONTEXT_TYPEDEFS = {
    "bind_md_t": 56,
    "bpf_sock_addr_t": 64,
    "bpf_sock_ops_t": 64,
    "xdp_md_t": 32,
}
_LINUX_ONLY_PREFIXES = (
    "socket", "kprobe/", "kretprobe/", "tracepoint/", "tp/", "raw_tracepoint/", "raw_tp/",
    "tc", "classifier", "action", "cgroup_skb/", "cgroup/skb", "fentry/", "fexit/", "lsm/",
    "uprobe", "perf_event", "sk_skb", "sk_msg", "lwt_", "flow_dissector", "sk_lookup",
    "struct_ops", "syscall", "netfilter", "iter/",
)  # fmt: skip


def _windows_context_types(btf: BtfSpec) -> list[str]:
    """The Windows context typedefs in `btf` whose structs have Windows' sizes."""
    from ..btf.types import Typedef

    seen = []
    for name, size in _WINDOWS_CONTEXT_TYPEDEFS.items():
        found = btf.type_by_name(name, Typedef)
        if found is not None and btf.size_of(found[0]) == size:
            seen.append(f"BTF type {name}")
    return seen


def detect_platform(image: ElfImage, btf: BtfSpec | None, code_sections: list[str]) -> Detection:
    """The platform an object was built for (see the module docstring)."""
    found = Detection(LINUX)
    if image.section_named(".ebpf_for_windows") is not None:
        found.windows.append("a .ebpf_for_windows section")
    for name in code_sections:
        if name.startswith(_WINDOWS_ONLY_PREFIXES):
            found.windows.append(f"section {name!r}")
        elif name.startswith(_LINUX_ONLY_PREFIXES):
            found.linux.append(f"section {name!r}")
    if btf is not None:
        found.windows += _windows_context_types(btf)
        if btf.type_by_name("__sk_buff") is not None:
            found.linux.append("BTF type __sk_buff")
    if image.section_named("license") is not None:
        found.linux.append("a license section")
    if found.windows and not found.linux:
        found.platform = WINDOWS
    elif found.windows:
        found.note = (
            f"conventions of both platforms ({', '.join(found.windows)}; "
            f"{', '.join(found.linux)}): loaded as linux; pass --platform to choose"
        )
    return found
