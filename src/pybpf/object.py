"""`Object`: the live maps and programs made from an `ObjectSpec` (cilium's Collection).

Opening an object creates every map in the object's `ExecutionContext`
(global data initialised from the ELF, `.bss` zeroed) and links every
program against them. Loading, as libbpf's `bpf_object__load`, freezes the
read-only global data; it happens on `load()` or when a program is first run,
so `obj.rodata.x = …` between `pybpf.load()` and the first run configures the
programs, as with a libbpf skeleton between open and load.

Loading also verifies: every program that can run here is proven safe by
`pybpf.verifier` (results cached by program hash, see
`pybpf.verifier.cache`), and a rejection raises `VerifierError` carrying
the report, as `bpf_object__load` fails when the kernel rejects one
program. `pybpf.load(path, verify=False)` skips the verifier; such
programs then run only in the bounds-checked interpreter, which checks
every access at run time. Programs that cannot run here anyway (kfuncs,
unsupported maps, failed CO-RE relocations) are not verified: running them raises
`NotSupportedError` as before.

Maps of a family pybpf does not implement yet do not stop an object from
opening: their `NotSupportedError` is raised when the map is looked up
(`obj.maps[name]`) or a program that uses it is run, so that any object can
be opened and inspected.

Names: `obj.programs[name]` by function name (entry programs only; `.text`
functions called by others are subprograms), `obj.maps[name]` by ELF name:
the variable name of a `.maps` entry, `.data`/`.rodata`/`.bss`, or libbpf's
`<object>.bss` spelling (truncated as libbpf truncates, or in full). A
missing name raises `MapError(ENOENT)` for a map and `LoadError` for a
program.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import pins
from .btf.target import BtfSource, apply_core
from .btf.values import TypedMap
from .elf.externs import KCONFIG_MAP
from .elf.map_types import MapType
from .elf.specs import MapSpec, ObjectSpec
from .errors import LoadError, MapError, NotSupportedError, PybpfError, VerifierError
from .platform.extensions import all_helpers as extension_helpers
from .platform.platforms import platform_named
from .platform.program_types import ProgramType
from .program import Program
from .runtime.context import ExecutionContext
from .runtime.externs import KconfigInput, kconfig_bytes
from .runtime.global_data import GlobalDataMap, GlobalVariables, is_global_data
from .runtime.helpers import HelperSpec, native_helper_impl
from .runtime.linux_helpers import linux_helpers
from .runtime.maps import Map, create_map

__all__ = ["Object", "ObjectMaps", "ObjectPrograms", "load", "rejection"]

BPF_OBJ_NAME_LEN = 16


def libbpf_internal_name(object_name: str, section: str) -> str:
    """libbpf's name for a global-data map (`internal_map_name`: `xdp_coun.bss`)."""
    suffix = min(max(7, len(section)), BPF_OBJ_NAME_LEN - 1)
    if "." in section[1:]:  # `.rodata.str1.1` and other custom dot-sections
        prefix = 0
    else:
        prefix = min(BPF_OBJ_NAME_LEN - suffix - 1, len(object_name))
    return object_name[:prefix] + section[:suffix]


class ObjectMaps(Mapping):
    """The maps of an object by ELF name (aliases accepted); see the module docstring."""

    def __init__(self, obj: Object):
        self._object = obj
        self._live: dict[str, Map] = {}
        self._broken: dict[str, PybpfError] = {}
        self._aliases: dict[str, str] = {}

    def _resolve(self, name: str) -> str | None:
        if name in self._live or name in self._broken:
            return name
        return self._aliases.get(name)

    def __getitem__(self, name: str) -> Map:
        real = self._resolve(name)
        if real is None:
            raise MapError(
                errno.ENOENT, "find", name, f"no map named {name!r} in {self._object.path}"
            )
        if real in self._broken:
            raise self._broken[real]
        return self._live[real]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._resolve(name) is not None

    def get(self, name: str, default: Any = None) -> Any:
        """The map called `name`, or `default` when there is none (or it is unsupported)."""
        try:
            return self[name]
        except PybpfError:
            return default

    def __iter__(self) -> Iterator[str]:
        return iter(self._object.spec.maps)

    def __len__(self) -> int:
        return len(self._object.spec.maps)

    def live(self) -> dict[str, Map]:
        """The maps that exist (supported families), by ELF name."""
        return dict(self._live)

    def unsupported(self) -> dict[str, PybpfError]:
        """The maps that could not be created, with the reason, by ELF name."""
        return dict(self._broken)


class ObjectPrograms(Mapping):
    """The programs of an object by function name."""

    def __init__(self, obj: Object, programs: dict[str, Program]):
        self._object = obj
        self._programs = programs

    def __getitem__(self, name: str) -> Program:
        try:
            return self._programs[name]
        except KeyError:
            raise LoadError(f"{self._object.path}: no program named {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._programs

    def get(self, name: str, default: Any = None) -> Any:
        """The program called `name`, or `default`."""
        return self._programs.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._programs)

    def __len__(self) -> int:
        return len(self._programs)

    def by_section(self, section: str) -> Program:
        """The first program in ELF section `section`; LoadError if none."""
        for program in self._programs.values():
            if program.section == section:
                return program
        raise LoadError(f"{self._object.path}: no program in section {section!r}")


class Object:
    """Live maps and programs of one object file, in one `ExecutionContext`.

    A context manager: `close()` (or leaving the `with` block) frees the
    maps' native memory and forgets the programs.
    """

    def __init__(
        self,
        spec: ObjectSpec,
        *,
        context: ExecutionContext | None = None,
        ncpus: int | None = None,
        verify: bool = True,
        engine: str | None = None,
        autoload: Iterable[str] | None = None,
        prog_type: str | ProgramType | None = None,
        btf: BtfSource | None = None,
        kconfig: KconfigInput = None,
    ):
        from .engine.policy import ENGINES

        if engine is not None and engine not in ENGINES:
            raise LoadError(
                f"{spec.path}: unknown engine {engine!r} (expected one of {', '.join(ENGINES)})"
            )
        # CO-RE first, as libbpf's load: what is verified, linked and run is
        # the relocated code (a program whose relocations fail cannot run).
        core = apply_core(spec, btf)
        spec = core.spec
        #: What each CO-RE relocation resolved to, by program name (`btf.core.CoreResult`).
        self.core_results = core.results
        #: Programs whose CO-RE relocations failed, with the error (they cannot run).
        self.core_errors = core.errors
        self.spec = spec
        self.verify = verify
        #: The engine asked for ("jit", "interpreter"), or None for the default.
        self.engine = engine
        #: The type every program runs as (bpftool's `type`), or None: each section's.
        self.prog_type = _prog_type(spec.path, prog_type)
        self.path = spec.path
        self.name = Path(spec.path).name.split(".")[0]  # libbpf cuts at the first dot
        self.btf = spec.btf
        self.license = spec.license
        #: The user's `__kconfig` values (see `runtime.externs`), applied at load.
        self.kconfig = kconfig
        self.context = context if context is not None else ExecutionContext(ncpus=ncpus)
        self.helpers = linux_helpers()
        for helper in platform_named(spec.platform).extra_helpers():  # eBPF for Windows' own
            self.helpers.register(helper)
        for internal, helper, proto in extension_helpers():  # registered program types'
            native = helper.native_address
            impl = helper.impl if native is None else native_helper_impl(native)
            self.helpers.register(HelperSpec(internal, helper.name, impl, proto, native))
        self.loaded = False
        self.closed = False
        #: The links of this object's programs still attached (`pybpf.link.Link`).
        self.links: list[Any] = []
        self.maps = ObjectMaps(self)
        for map_spec in spec.maps.values():
            self._create_map(map_spec)
        subprograms = {fn for p in spec.programs.values() for fn, start in p.functions if start > 0}
        programs: dict[str, Program] = {}
        for name, program_spec in spec.programs.items():
            if program_spec.section == ".text" and name in subprograms:
                continue
            programs[name] = Program(self, program_spec)
        self.programs = ObjectPrograms(self, programs)
        if autoload is not None:
            self._autoload_only(autoload)
        self._relink = False  # a map was re-created: programs must be linked again
        for map_spec in spec.maps.values():
            self._fill_contents(map_spec)

    def _autoload_only(self, names: Iterable[str]) -> None:
        wanted = set(names)
        unknown = wanted - set(self.programs)
        if unknown:
            raise LoadError(f"{self.path}: no program named {sorted(unknown)[0]!r}")
        for name, program in self.programs.items():
            program.autoload = name in wanted

    def _create_map(self, spec: MapSpec) -> None:
        maps = self.maps
        try:
            if (is_global_data(spec.name) or spec.name == KCONFIG_MAP) and (
                spec.type == MapType.ARRAY
            ):
                map_: Map = GlobalDataMap(spec, self.context.memory)
                if spec.initial_data:
                    data = spec.initial_data[: spec.value_size].ljust(spec.value_size, b"\0")
                    map_.update(b"\0\0\0\0", data)
            else:
                map_ = create_map(spec, self.context.memory, ncpus=self.context.ncpus)
        except NotSupportedError as error:
            maps._broken[spec.name] = error
        except MapError as error:
            maps._broken[spec.name] = LoadError(f"{self.path}: {error}")
        else:
            if self.btf is not None and spec.value_type:
                # The typed view needs the object's BTF, which the map does not hold
                # (key type 0: a global-data array, whose keys are u32 indices).
                btf, key_type, value_type = self.btf, spec.key_type, spec.value_type
                map_.typed = lambda: TypedMap(map_, btf, key_type, value_type)  # type: ignore[attr-defined]
            if hasattr(map_, "context"):  # fd arrays resolve program ids through it
                map_.context = self.context
            map_.owner = self  # type: ignore[attr-defined]  # for libbpf's bpf_map__set_*
            self.context.add_map(map_)
            maps._live[spec.name] = map_
        if is_global_data(spec.name):
            maps._aliases[libbpf_internal_name(self.name, spec.name)] = spec.name
            maps._aliases[self.name + spec.name] = spec.name

    def _fill_contents(self, spec: MapSpec) -> None:
        # `values` initialisers of BTF maps: programs for a prog_array, maps for
        # maps of maps. A slot whose target cannot be had stays empty.
        map_ = self.maps.get(spec.name)
        if map_ is None:
            return
        for index, symbol in spec.contents:
            target = self.programs.get(symbol) or self.maps.get(symbol)
            if target is not None:
                map_[index.to_bytes(4, "little")] = target

    # -- configuring maps before load (libbpf's bpf_map__set_*) --------------------

    def set_max_entries(self, name: str, max_entries: int) -> None:
        """Change map `name`'s `max_entries` before load (`bpf_map__set_max_entries`).

        The map is created anew, empty (global data keeps its bytes);
        `obj.maps[name]` is the new map from then on. `MapError(EBUSY)`
        once the object is loaded, as libbpf returns -EBUSY.
        """
        self._reconfigure(name, "set_max_entries", max_entries=max_entries)

    def set_value_size(self, name: str, value_size: int) -> None:
        """Change map `name`'s value size before load (`bpf_map__set_value_size`).

        Not for global-data sections, whose size their variables decide
        (`MapError(EINVAL)`); otherwise as `set_max_entries`.
        """
        if is_global_data(name):
            raise MapError(errno.EINVAL, "set_value_size", name, "global data has a fixed size")
        self._reconfigure(name, "set_value_size", value_size=value_size)

    def set_initial_value(self, name: str, data: bytes) -> None:
        """Replace a global-data section's bytes before load (`bpf_map__set_initial_value`).

        `MapError(EINVAL)` when `data` is not exactly the section's size or
        `name` is not global data; `MapError(EBUSY)` once loaded.
        """
        map_ = self._configurable(name, "set_initial_value")
        if not isinstance(map_, GlobalDataMap):
            raise MapError(errno.EINVAL, "set_initial_value", name, "not a global-data map")
        if len(data) != map_.spec.value_size:
            raise MapError(
                errno.EINVAL,
                "set_initial_value",
                name,
                f"{len(data)} bytes for a {map_.spec.value_size}-byte section",
            )
        map_.update(b"\0\0\0\0", bytes(data))

    def _configurable(self, name: str, op: str) -> Map:
        if self.loaded:
            raise MapError(errno.EBUSY, op, name, "the object is already loaded")
        return self.maps[name]

    def _reconfigure(self, name: str, op: str, **changes: int) -> None:
        map_ = self._configurable(name, op)
        real = map_.spec.name
        for field, value in changes.items():
            if not isinstance(value, int) or value <= 0:
                raise MapError(errno.EINVAL, op, real, f"{field} must be a positive integer")
        keep = map_.lookup(b"\0\0\0\0") if isinstance(map_, GlobalDataMap) else None
        spec = replace(map_.spec, **changes)
        if keep is not None:
            spec = replace(spec, initial_data=keep)
        self.context.remove_map(map_)
        map_.recreate(spec)  # the same Map object: handles to it stay valid
        self.context.add_map(map_)
        if keep is not None:
            map_.update(b"\0\0\0\0", keep[: spec.value_size].ljust(spec.value_size, b"\0"))
        self.spec = replace(self.spec, maps={**self.spec.maps, real: spec})
        self._fill_contents(spec)
        self._relink = True  # the map's native addresses changed

    # -- lifecycle ----------------------------------------------------------------

    def load(self) -> None:
        """Load the object as `bpf_object__load` does: verify, freeze read-only global data.

        Idempotent; done automatically when a program first runs. Only
        programs whose `autoload` is on are loaded. Raises `VerifierError`
        (nothing loaded) when one of them is rejected, unless the object was
        opened with `verify=False`, and `NotSupportedError` naming the
        program and what it uses when one cannot run here (a kfunc, a typeless
        ksym, an unimplemented helper, a map family pybpf lacks). Setting
        `.rodata` variables afterwards raises `MapError(EPERM)`, and map
        sizes can no longer change (`MapError(EBUSY)`).
        """
        if self.closed:
            raise LoadError(f"{self.path}: object is closed")
        if self.loaded:
            return
        self._resolve_externs()
        if self._relink:
            for program in self.programs.values():
                program.link()
            self._relink = False
        for program in self.programs.values():
            if not program.autoload:
                continue
            # As bpf_object__load: one autoloaded program that cannot be loaded
            # fails the whole object, naming it; autoload=False leaves it out.
            if program.unresolved:
                raise program.unresolved[0]
            if self.verify:
                report = program.verify()
                if not report.ok:
                    raise rejection(self.path, program.name, report)
        for map_ in self.maps.live().values():
            if isinstance(map_, GlobalDataMap) and map_.spec.frozen:
                map_.freeze()
        self.loaded = True

    def _resolve_externs(self) -> None:
        # libbpf's bpf_object__resolve_externs, over every extern of the object
        # whatever its programs' autoload: a strong __ksym must name a kernel
        # symbol (there is none here), and `.kconfig` is filled before anything
        # runs; it is frozen with the read-only data right after.
        for extern in self.spec.externs.values():
            if not extern.is_kconfig and not extern.weak:
                raise NotSupportedError(
                    f"{self.path}: extern __ksym {extern.name!r} (strong) needs a kernel "
                    "symbol, which pybpf cannot provide (declare it __weak to read it as absent)"
                )
        map_ = self.maps.get(KCONFIG_MAP)
        if isinstance(map_, GlobalDataMap) and not map_.frozen:
            size = map_.spec.value_size
            data = kconfig_bytes(self.spec.externs, size, self.kconfig, self.path)
            map_.update(b"\0\0\0\0", data)

    def verifier_spec(self) -> ObjectSpec:
        """The object as the verifier sees it when loading: frozen global data as it is now.

        libbpf writes `.rodata` (and `.kconfig`) with the values set since the
        open, then freezes it; the kernel reads those bytes as constants, so a
        program verifies against the values the user set, not the ELF's.
        """
        maps = dict(self.spec.maps)
        live = self.maps.live()
        for name, spec in self.spec.maps.items():
            map_ = live.get(name)
            if spec.frozen and isinstance(map_, GlobalDataMap):
                maps[name] = replace(spec, initial_data=bytes(map_.lookup(bytes(4))))
        return replace(self.spec, maps=maps)

    def close(self) -> None:
        """Free the maps and programs (idempotent)."""
        if self.closed:
            return
        self.closed = True
        # What is pinned stays alive (and attached) until unpinned, as with bpffs.
        for link in list(self.links):  # a running hook uses the programs' memory
            if pins.is_pinned(link):
                continue
            with contextlib.suppress(Exception):  # closing goes on whatever stopped a hook
                link.close()
        for program in self.programs.values():
            if not pins.is_pinned(program):
                program.close()
        for map_ in self.maps.live().values():
            if not pins.is_pinned(map_):
                self.context.remove_map(map_)
                map_.close()

    def pin(self, directory: str) -> None:
        """Pin every live map and loaded program as `directory/<name>` (bpf_object__pin)."""
        base = pins.normal_path(directory)
        for name, map_ in self.maps.live().items():
            map_.pin(f"{base}/{name}")
        for name, program in self.programs.items():
            if program.autoload:
                program.pin(f"{base}/{name}")

    def unpin(self, directory: str) -> None:
        """Remove what `pin(directory)` made."""
        base = pins.normal_path(directory)
        for name in [*self.maps.live(), *self.programs]:
            path = f"{base}/{name}"
            if path in pins.pins():
                pins.unpin(path)

    def __enter__(self) -> Object:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- global data views (a skeleton's skel->rodata / data / bss) -----------------

    def variables(self, section: str) -> GlobalVariables:
        """The variables of global-data section `section` (`.data.custom`, `.rodata.cfg`, …).

        `obj.rodata`, `obj.data` and `obj.bss` are this for the three usual
        sections; custom sections (`.data.<name>`, `.rodata.<name>`, one map
        each, as libbpf makes them) are reached by name. AttributeError when
        the object has no such section.
        """
        map_ = self.maps.get(section)
        if not isinstance(map_, GlobalDataMap):
            raise AttributeError(f"{self.path} has no {section} section")
        return GlobalVariables(map_, self.btf)

    @property
    def rodata(self) -> GlobalVariables:
        """The variables of `.rodata` (settable until the object is loaded)."""
        return self.variables(".rodata")

    @property
    def data(self) -> GlobalVariables:
        """The variables of `.data`."""
        return self.variables(".data")

    @property
    def bss(self) -> GlobalVariables:
        """The variables of `.bss`."""
        return self.variables(".bss")

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("loaded" if self.loaded else "open")
        return f"<Object {self.path!r} {state}: programs {list(self.programs)}, maps {list(self.maps)}>"


def rejection(path: str, program: str, report: Any) -> VerifierError:
    """`VerifierError(report)` whose one-line message names the object and the program."""
    error = VerifierError(report)
    error.program = program  # type: ignore[attr-defined]
    first = report.first_failure
    source = f" [{first.source_line}]" if first is not None and first.source_line else ""
    error.args = (f"{path}: program {program} rejected by the verifier: {first}{source}",)
    return error


def _prog_type(path: str, prog_type: str | ProgramType | None) -> ProgramType | None:
    """`prog_type=` as a `ProgramType`: bpftool's type names (`xdp`, `tc`, `socket` …)."""
    if prog_type is None or isinstance(prog_type, ProgramType):
        return prog_type
    from .platform.sections import program_type_by_name

    found = program_type_by_name(prog_type)
    if found is None:
        raise LoadError(f"{path}: unknown program type {prog_type!r} (bpftool's type names)")
    return found


def load(
    path: str | os.PathLike[str],
    *,
    ncpus: int | None = None,
    verify: bool = True,
    engine: str | None = None,
    autoload: Iterable[str] | None = None,
    prog_type: str | ProgramType | None = None,
    btf: BtfSource | None = None,
    kconfig: KconfigInput = None,
    platform: str | None = None,
) -> Object:
    """Open the object file at `path`: its maps created, its programs linked.

    This is libbpf's open: `.rodata` stays writable, map sizes can change
    (`Object.set_max_entries`) and programs can be left out
    (`program.autoload = False`, or `autoload=[names]` to load only those)
    until the first run or `Object.load()`, which verifies every autoloaded
    program (`VerifierError` if one is rejected) and resolves `__kconfig`
    externs (`kconfig`: the user's values, see `pybpf.runtime.externs`).
    `verify=False` skips the verifier: the programs then run only in the
    bounds-checked interpreter. `engine` is "jit" or "interpreter"; by
    default verified programs run in the JIT unless the interpreter-only
    policy is on (`pybpf.engine.policy`). `ncpus` sets the number of
    simulated CPUs of per-CPU maps. `prog_type` makes every program run
    and verify as that type, as bpftool's `type` argument (`"xdp"`,
    `"tc"`, `"socket"`, `"cgroup/skb"` … or a `ProgramType`); by default
    each program's section names its type, never the file's path.
    `btf` is the target BTF of CO-RE relocations (a file or a `btf.Spec`,
    libbpf's `btf_custom_path`); by default the kernel's
    `/sys/kernel/btf/vmlinux`, else the BTF pybpf ships for the context
    and packet-header types it hosts (`pybpf.btf.target`). `platform` is whose
    conventions the object follows, "linux" or "windows" (eBPF for Windows: its
    helper ids, map types, sections and contexts); by default the object says
    (`platform.platforms.detect_platform`; `obj.spec.platform_reason` tells why).
    """
    return Object(
        ObjectSpec.from_file(path, platform),
        ncpus=ncpus,
        verify=verify,
        engine=engine,
        autoload=autoload,
        prog_type=prog_type,
        btf=btf,
        kconfig=kconfig,
    )
