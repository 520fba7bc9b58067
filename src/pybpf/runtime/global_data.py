"""Global data (`.data`, `.rodata`, `.bss`): live arrays and skeleton-style variable views.

Each global-data section is a one-element array map (as libbpf makes it),
`GlobalDataMap`, whose only value holds the section's variables. A
read-only section (`.rodata*`) is frozen when its object is loaded, like
libbpf's `bpf_map_freeze` after writing the initial value: from then on
programs cannot store into it (its value region is not writable, a store
is a `ProgramFault`) and updates from the API fail with `MapError(EPERM)`,
as `bpf()` fails them for a frozen map. Until then the user may set
constants, which is how skeletons configure programs.

`GlobalVariables` is `obj.rodata` / `obj.data` / `obj.bss`: attribute access
to the section's variables by name, through the BTF `Datasec` of the
section (`obj.rodata.blocked_port = 80`), with values as `btf.values`
renders them (ints, dicts for structs, bytes when BTF says nothing more).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..btf.spec import Spec
from ..btf.types import Datasec, Var
from ..btf.values import parse, render
from ..errors import MapError
from .maps import ArrayMap
from .maps.header import BPF_ANY

EPERM = 1
ZERO_KEY = b"\0\0\0\0"

__all__ = ["GLOBAL_DATA_PREFIXES", "GlobalDataMap", "GlobalVariables", "is_global_data"]

GLOBAL_DATA_PREFIXES = (".data", ".rodata", ".bss")
"""Section names (and prefixes: `.rodata.str1.1`, `.data.foo`) of global data."""


def is_global_data(name: str) -> bool:
    """True when `name` is a global-data section (`.bss`, `.rodata.cst16`, …)."""
    return any(name == p or name.startswith(p + ".") for p in GLOBAL_DATA_PREFIXES)


class GlobalDataMap(ArrayMap):
    """A global-data section as a one-element array that can be frozen.

    `frozen` starts False even for `.rodata`: the object freezes read-only
    sections when it is loaded (`freeze()`), after the user's last chance to
    set constants.
    """

    frozen = False

    def freeze(self) -> None:
        """Refuse further updates (EPERM) and make the value read-only for programs."""
        self.frozen = True
        self.value_region.writable = False

    def update(self, key: bytes, value: bytes, flags: int = BPF_ANY) -> None:
        """As `ArrayMap.update`, but EPERM once frozen (checked after the sizes, as Linux)."""
        key = self._key(key, "update")
        value = self._value(value, "update")
        if self.frozen:
            raise MapError(EPERM, "update", self.name, "map is frozen")
        super().update(key, value, flags)

    @property
    def value_address(self) -> int:
        """Native address of the section's bytes (element 0), what programs point into."""
        address = self.address_of(ZERO_KEY)
        assert address is not None  # an array's element 0 always exists
        return address


class GlobalVariables:
    """The variables of one global-data section, as attributes (a skeleton's `skel->rodata`).

    Reading gives the variable's current value, rendered through BTF;
    assigning writes it into the map (a `MapError(EPERM)` once a `.rodata`
    section is frozen). `vars()` lists `(name, offset, size)`;
    `dict(view)` / `view.as_dict()` gives every variable's value.
    """

    __slots__ = ("_map", "_btf", "_vars")

    def __init__(self, map_: GlobalDataMap, btf: Spec | None):
        object.__setattr__(self, "_map", map_)
        object.__setattr__(self, "_btf", btf)
        object.__setattr__(self, "_vars", _variables(map_, btf))

    def vars(self) -> list[tuple[str, int, int]]:
        """Each variable as `(name, offset, size)` in section order."""
        return [(name, offset, size) for name, (_, offset, size) in self._vars.items()]

    def _raw(self) -> bytes:
        return self._map.lookup(ZERO_KEY) or b""

    def __getattr__(self, name: str) -> Any:
        try:
            type_id, offset, size = self._vars[name]
        except KeyError:
            raise AttributeError(f"{self._map.name} has no variable {name!r}") from None
        raw = self._raw()[offset : offset + size]
        return render(self._btf, type_id, raw) if self._btf is not None else raw

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            type_id, offset, size = self._vars[name]
        except KeyError:
            raise AttributeError(f"{self._map.name} has no variable {name!r}") from None
        try:
            chunk = parse(self._btf, type_id, value) if self._btf is not None else bytes(value)
        except (TypeError, ValueError) as exc:
            raise MapError(22, "update", self._map.name, f"{name}: {exc}") from None
        if len(chunk) != size:
            raise MapError(22, "update", self._map.name, f"{name} is {size} bytes")
        raw = bytearray(self._raw())
        raw[offset : offset + size] = chunk
        self._map.update(ZERO_KEY, bytes(raw))

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        for name in self._vars:
            yield name, getattr(self, name)

    def as_dict(self) -> dict[str, Any]:
        """Every variable's current value by name."""
        return dict(self)

    def __dir__(self) -> list[str]:
        return [*self._vars, "vars", "as_dict"]

    def __repr__(self) -> str:
        return f"<GlobalVariables {self._map.name}: {self.as_dict()!r}>"


def _variables(map_: GlobalDataMap, btf: Spec | None) -> dict[str, tuple[int, int, int]]:
    """`name -> (BTF type id, offset, size)` from the section's Datasec (empty without BTF)."""
    if btf is None:
        return {}
    datasec = None
    if map_.spec.value_type:
        record = btf.resolve(map_.spec.value_type)
        if isinstance(record, Datasec):
            datasec = record
    if datasec is None:
        found = btf.type_by_name(map_.spec.section or map_.name, Datasec)
        datasec = found[1] if found else None
    if datasec is None:
        return {}
    out: dict[str, tuple[int, int, int]] = {}
    for info in datasec.vars:
        var = btf.type_by_id(info.type)
        if isinstance(var, Var) and info.offset + info.size <= map_.spec.value_size:
            out[var.name] = (var.type, info.offset, info.size)
    return out
