"""Specs: what an object file describes, before anything is created from it.

Following cilium/ebpf, the ELF reader produces only these frozen records;
`runtime/` turns an `ObjectSpec` into live maps and programs. Specs are
values: `dataclasses.replace` makes an edited copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from ..btf.ext import CoreRelocation, FuncInfo, LineInfo
from ..btf.spec import Spec as BtfSpec
from ..isa.instruction import Instruction
from .map_types import map_type_name

if TYPE_CHECKING:
    from .externs import ExternSpec


class RelocationKind(str, Enum):
    """What an instruction refers to, once relocated."""

    MAP = "map"  # lddw of a map: src=MAP_FD, imm=map index
    MAP_VALUE = "map_value"  # lddw of global data: src=MAP_VALUE, imm=index | offset << 32
    CALL = "call"  # bpf-to-bpf call: imm = relative offset of the callee
    FUNC = "func"  # lddw of a function address (callback): src=FUNC
    KFUNC = "kfunc"  # call of an undefined (kernel) function, unresolved
    EXTERN = "extern"  # lddw of an undefined variable (a strong ksym), unresolved
    KCONFIG = "kconfig"  # lddw of a __kconfig extern: its slot of the .kconfig map (MAP_VALUE)
    WEAK_KSYM = "weak_ksym"  # lddw of a weak __ksym no kernel provides here: the constant 0


@dataclass(frozen=True, slots=True)
class Relocation:
    """One relocated instruction of a program.

    `pc` is the slot in `ProgramSpec.instructions`; `symbol` is the ELF
    symbol the relocation named (a section name for section symbols);
    `map` names the map for MAP/MAP_VALUE, `offset` is the byte offset into
    a global-data map, `target_pc` the callee's pc for CALL/FUNC.
    """

    pc: int
    kind: RelocationKind
    symbol: str
    map: str | None = None
    offset: int = 0
    target_pc: int | None = None

    def describe(self) -> str:
        """A short human description (`map events`, `call add1 -> pc 12`, …)."""
        if self.kind == RelocationKind.MAP:
            return f"map {self.map}"
        if self.kind == RelocationKind.MAP_VALUE:
            named = "" if self.symbol == self.map else f" ({self.symbol})"
            return f"map_value {self.map}+{self.offset}{named}"
        if self.kind == RelocationKind.KCONFIG:
            return f"kconfig {self.symbol} ({self.map}+{self.offset})"
        if self.kind == RelocationKind.WEAK_KSYM:
            return f"weak ksym {self.symbol} (absent: 0)"
        if self.kind in (RelocationKind.CALL, RelocationKind.FUNC):
            return f"{self.kind.value} {self.symbol} -> pc {self.target_pc}"
        return f"{self.kind.value} {self.symbol} (unresolved)"


@dataclass(frozen=True, slots=True)
class MapSpec:
    """A map as the object defines it.

    `type` is the Linux BPF_MAP_TYPE_* number (see `MapType`). Global data
    sections become single-element arrays whose `initial_data` is the
    section's bytes (`None` for `.bss`, which starts zeroed); `frozen` marks
    read-only data. `contents` holds `values` initialisers of BTF maps as
    `(index, symbol)`: a map name for maps of maps, a program name for
    program arrays. `key_type`/`value_type` are BTF type ids (0 if none).
    """

    name: str
    type: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int = 0
    inner_map: MapSpec | None = None
    pinning: int = 0
    numa_node: int = 0
    map_extra: int = 0
    initial_data: bytes | None = None
    frozen: bool = False
    key_type: int = 0
    value_type: int = 0
    contents: tuple[tuple[int, str], ...] = ()
    section: str = ""
    #: eBPF for Windows' map template id (legacy records; 0: none).
    map_id: int = 0

    @property
    def type_name(self) -> str:
        """The map type in lower case (`hash`, `array_of_maps`, …)."""
        return map_type_name(self.type)


@dataclass(frozen=True, slots=True)
class ProgramSpec:
    """One program: a function of a program section plus the functions it calls.

    `instructions` holds the program's own function first, then every
    subprogram it reaches, appended once each with calls fixed up (as libbpf
    does); `functions` lists `(name, start_pc)` of each. `func_infos`,
    `line_infos` and `core_relocations` use pcs of `instructions`.
    `autoload` is False for a section written `SEC("?name")` (libbpf's
    convention; `section` is then the name without the `?`).
    """

    name: str
    section: str
    instructions: tuple[Instruction, ...]
    functions: tuple[tuple[str, int], ...] = ()
    relocations: tuple[Relocation, ...] = ()
    core_relocations: tuple[CoreRelocation, ...] = ()
    func_infos: tuple[FuncInfo, ...] = ()
    line_infos: tuple[LineInfo, ...] = ()
    license: str | None = None  # None: not given (a spec built in Python); "": none in the ELF
    autoload: bool = True

    def line_at(self, pc: int) -> LineInfo | None:
        """The line_info record in force at `pc` (the last one at or before it)."""
        best = None
        for info in self.line_infos:
            if info.pc > pc:
                break
            best = info
        return best


@dataclass(frozen=True)
class ObjectSpec:
    """Everything an object file defines: programs and maps in ELF order.

    `externs` are its `__kconfig` and `__ksym` externs by name (`elf.externs`).
    """

    path: str
    programs: dict[str, ProgramSpec] = field(default_factory=dict)
    maps: dict[str, MapSpec] = field(default_factory=dict)
    license: str | None = None  # None: not given (a spec built in Python); "": none in the ELF
    kern_version: int = 0
    btf: BtfSpec | None = None
    externs: dict[str, ExternSpec] = field(default_factory=dict)
    #: The platform whose conventions the object follows (`linux`, `windows`); its map
    #: types and helper ids are already translated to pybpf's internal numbering.
    platform: str = "linux"
    #: Why detection chose `platform` (None: given, or no signal either way).
    platform_reason: str | None = None
    #: Set when the object follows both platforms' conventions (it was kept Linux).
    platform_note: str | None = None

    @classmethod
    def from_file(cls, path: str | Path, platform: str | None = None) -> ObjectSpec:
        """Parse the object file at `path` (see `elf.loader.load_object_spec`)."""
        from .loader import load_object_spec

        return load_object_spec(path, platform)

    def map_index(self, name: str) -> int:
        """The index of map `name` in `maps` order (the lddw `imm` of a map)."""
        return list(self.maps).index(name)
