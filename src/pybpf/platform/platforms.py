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
- helper numbering: a call of a helper id from 0x10000 (Windows numbers
  its program-type helpers so; Linux's end near 212): Windows, strong; a
  call of an id past Windows' last general helper (35) and below 0x10000:
  Linux, strong (sections of registered extensions are left out, their
  helpers are numbered like Windows' on any platform);
- Linux's: BTF `__sk_buff`, a section only libbpf knows (`tc`, `kprobe/…`,
  `socket`, …); a `license` section is a weak one (Windows objects may
  carry it too): it decides only when nothing else does.

Strong signals of one platform give it; of both, the object mixes
conventions and the load fails naming them (the caller may still choose
with `platform=`); none keeps Linux with a note saying so.
"""

from __future__ import annotations

import struct
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
    from ..elf.reader import ElfImage, Section
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
    """One platform's conventions (see the module docstring). This class holds Linux's,
    which are pybpf's internal numbering, so each translation is the identity; another
    platform overrides what it numbers differently (`WindowsPlatform`)."""

    name: str
    #: Whether GPL-only helpers need a GPL-compatible license (Linux's rule).
    gpl_rules: bool = True
    #: How a legacy `maps` record reads: `linux` (bpf_map_def and its extensions) or
    #: `windows` (eight words: type, key, value, max_entries, inner_map_idx, pinning,
    #: id, inner_id).
    legacy_map_layout: str = "linux"

    def map_type(self, number: int, where: str) -> int:
        """The internal map type of map type `number` as this platform numbers it."""
        return number

    def program_type(self, section: str) -> ProgramType | None:
        """The program type section `section` names on this platform, UNSPEC if it names
        none; None for Linux, whose table is libbpf's (`sections`, `program.program_type_of`)."""
        return None

    def unknown_section(self, section: str) -> str:
        """Why a program of `section` has no type on this platform."""
        return (
            f"section {section!r} does not name a program type: give one"
            " (--type / prog_type=, bpftool's names: xdp, tc, socket, cgroup/skb, …)"
        )

    def foreign_helper(self, helper_id: int) -> str | None:
        """Why an object of this platform cannot call helper `helper_id` (an internal id
        only another platform's helpers have), or None."""
        if WINDOWS_HELPER_BASE <= helper_id < EXTENSION_HELPER_BASE:
            name = windows.internal_helper_name(helper_id) or f"helper {helper_id}"
            return f"{name}#{helper_id} is a helper of eBPF for Windows, not of {self.name}"
        return None

    def extra_helpers(self) -> list:
        """Runtime helpers this platform adds to Linux's (`runtime.helpers.HelperSpec`)."""
        return []

    def translate_helpers(self, program: ProgramSpec, path: str) -> ProgramSpec:
        """`program` with its helper calls renumbered to internal ids (a registered
        extension's section: its helpers', on any platform)."""
        extension = extension_for_section(program.section)
        if extension is not None:
            return _renumber(program, extension.internal)
        return self._translate_own_helpers(program, path)

    def _translate_own_helpers(self, program: ProgramSpec, path: str) -> ProgramSpec:
        return program


@dataclass(frozen=True)
class WindowsPlatform(Platform):
    """eBPF for Windows' conventions, from its tables (`platform.windows`)."""

    gpl_rules: bool = False
    legacy_map_layout: str = "windows"

    def map_type(self, number: int, where: str) -> int:
        internal = windows.MAP_TYPES.get(number)
        if internal is None:
            name = windows.MAP_TYPE_NAMES.get(number, f"type {number}")
            raise LoadError(f"{where}: map type {number} ({name}) is not supported on windows")
        return int(internal)

    def program_type(self, section: str) -> ProgramType | None:
        match = windows.section_kind(section)
        return ProgramType.UNSPEC if match is None else WINDOWS_PROGRAM_TYPES[match.kind]

    def unknown_section(self, section: str) -> str:
        known = ", ".join(s.prefix for s in windows.SECTIONS)
        return f"section {section!r} names no eBPF for Windows program type ({known})"

    def foreign_helper(self, helper_id: int) -> str | None:
        return None  # every id a Windows object calls was translated from Windows' tables

    def extra_helpers(self) -> list:
        from ..runtime.windows_helpers import HELPERS

        return list(HELPERS)

    def _translate_own_helpers(self, program: ProgramSpec, path: str) -> ProgramSpec:
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
WINDOWS = WindowsPlatform("windows")
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
    """The platform detected, the signals seen for each, and why when ambiguous.

    `linux_weak` holds signals a Windows object may carry too (a `license`
    section): they decide only when nothing else does.
    """

    platform: Platform
    windows: list[str] = field(default_factory=list)
    linux: list[str] = field(default_factory=list)
    linux_weak: list[str] = field(default_factory=list)
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
_CALL_WORD = struct.Struct("<BBhi")  # opcode, regs, offset, imm of one instruction


def _windows_context_types(btf: BtfSpec) -> list[str]:
    """The Windows context typedefs in `btf` whose structs have Windows' sizes."""
    from ..btf.types import Typedef

    seen = []
    for name, size in _WINDOWS_CONTEXT_TYPEDEFS.items():
        found = btf.type_by_name(name, Typedef)
        if found is not None and btf.size_of(found[0]) == size:
            seen.append(f"BTF type {name}")
    return seen


def _helper_ids(section: Section) -> set[int]:
    """The helper ids called in a code section (of a little-endian object)."""
    ids = set()
    data = section.data[: len(section.data) // 8 * 8]
    for opcode, regs, _, imm in _CALL_WORD.iter_unpack(data):
        if opcode == CALL and regs >> 4 == CallSrc.HELPER and imm > 0:
            ids.add(imm)
    return ids


def _helper_signals(found: Detection, image: ElfImage) -> None:
    """Helper numbering: an id from 0x10000 in a section Windows names is one of its
    program-type helpers; an id between Windows' last general helper and 0x10000 only
    Linux numbers. Sections of registered extensions are left out: their helpers are
    numbered like Windows' type helpers on any platform."""
    if not image.little_endian:
        return  # eBPF for Windows runs little-endian programs only
    last_general = max(windows.GENERAL_HELPERS)
    own, linux_only = set(), set()
    for section in image.sections:
        if not section.is_code or extension_for_section(section.name) is not None:
            continue
        ids = _helper_ids(section)
        if windows.section_kind(section.name) is not None:
            own |= {i for i in ids if i >= windows.TYPE_HELPER_BASE}
        linux_only |= {i for i in ids if last_general < i < windows.TYPE_HELPER_BASE}
    if own:
        found.windows.append(f"a call of program-type helper 0x{min(own):x}")
    if linux_only:
        found.linux.append(f"a call of helper {min(linux_only)}, which only Linux numbers")


def detect_platform(image: ElfImage, btf: BtfSpec | None, code_sections: list[str]) -> Detection:
    """The platform an object was built for (see the module docstring); LoadError for an
    object whose strong signals name both platforms."""
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
    _helper_signals(found, image)
    if image.section_named("license") is not None:
        found.linux_weak.append("a license section")
    if found.windows and found.linux:
        raise LoadError(
            f"the object mixes the conventions of windows ({', '.join(found.windows)}) and "
            f"linux ({', '.join(found.linux)}): give the platform (--platform / platform=)"
        )
    if found.windows:
        found.platform = WINDOWS
    elif not found.linux and not found.linux_weak:
        found.note = "no sign of either platform in the object: loaded as linux"
    return found
