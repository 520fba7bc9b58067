"""What the daemon holds: objects, programs and maps with kernel-like ids, holders and pins.

Ids are per kind (programs, maps, objects), start at 1 and only grow, as
the kernel's idr hands them out; a program's is the execution context's
own id (what program arrays hold). An object or a map stays alive while a
connection holds it (it loaded or created it, or asked for it by id or
pin, as an fd holds a kernel object) or while it is pinned; a program or
map of an object keeps its object alive when pinned. When the last
holder goes and nothing is pinned, it is closed and its ids are gone.
"""

from __future__ import annotations

import errno
import threading
from dataclasses import dataclass, field
from typing import Any

from ..runtime.context import ExecutionContext
from ..runtime.maps import Map
from .requests import RequestError

KINDS = ("prog", "map", "obj", "link")
"""What can be pinned or held: programs, maps, whole objects, links."""
NOUNS = {"prog": "program", "map": "map", "obj": "object", "link": "link"}


@dataclass
class MapEntry:
    """A map the daemon holds: standalone (`object_id` 0) or one of an object's."""

    id: int
    map: Map
    object_id: int = 0
    owner: int = 0
    """The connection that created it (or loaded its object): the only writer once read-only."""
    read_only: bool = False
    """Other connections may only read (their descriptors map it read-only)."""
    frozen: bool = False
    """No connection may write from user space (BPF_MAP_FREEZE)."""
    holders: set[int] = field(default_factory=set)


@dataclass
class ProgEntry:
    """A loaded program of an object."""

    id: int
    program: Any
    object_id: int


@dataclass
class LinkEntry:
    """A program attached to a hook in the daemon; it keeps its object loaded."""

    id: int
    link: Any
    prog_id: int
    object_id: int
    kind: str
    holders: set[int] = field(default_factory=set)


@dataclass
class ObjectEntry:
    """A loaded object file: its programs' and maps' ids."""

    id: int
    obj: Any
    owner: int
    programs: dict[str, int] = field(default_factory=dict)
    maps: dict[str, int] = field(default_factory=dict)
    holders: set[int] = field(default_factory=set)
    elf: bytes = b""
    """The object file as loaded (what `--persist` keeps)."""
    options: dict[str, Any] = field(default_factory=dict)
    """The load options (engine, prog_type, verify), to load it the same way again."""


class Registry:
    """The daemon's objects, programs, maps and pins, under one lock."""

    def __init__(self, context: ExecutionContext | None = None):
        self.context = context if context is not None else ExecutionContext()
        self.lock = threading.RLock()
        self.objects: dict[int, ObjectEntry] = {}
        self.programs: dict[int, ProgEntry] = {}
        self.maps: dict[int, MapEntry] = {}
        self.links: dict[int, LinkEntry] = {}
        self.pins: dict[str, tuple[str, int]] = {}
        self._next = dict.fromkeys(KINDS, 1)

    def new_id(self, kind: str) -> int:
        """The next id of `kind` (never reused while the daemon runs)."""
        value = self._next[kind]
        self._next[kind] = value + 1
        return value

    # -- adding ----------------------------------------------------------------------

    def add_object(
        self, obj: Any, connection: int, elf: bytes = b"", options: dict[str, Any] | None = None
    ) -> ObjectEntry:
        """Register a loaded object, its loaded programs and live maps; `connection` holds it."""
        entry = ObjectEntry(
            self.new_id("obj"),
            obj,
            connection,
            holders={connection},
            elf=elf,
            options=dict(options or {}),
        )
        for name, program in obj.programs.items():
            if program.autoload:
                # The context's id: what a program array stores and a tail call finds.
                prog = ProgEntry(program.id, program, entry.id)
                self.programs[prog.id] = prog
                entry.programs[name] = prog.id
        for name, map_ in obj.maps.live().items():
            mapped = MapEntry(self.new_id("map"), map_, entry.id, owner=connection)
            self.maps[mapped.id] = mapped
            entry.maps[name] = mapped.id
        self.objects[entry.id] = entry
        return entry

    def add_map(self, map_: Map, connection: int) -> MapEntry:
        """Register a standalone map; `connection` holds it."""
        entry = MapEntry(self.new_id("map"), map_, owner=connection, holders={connection})
        if hasattr(map_, "context"):  # fd arrays resolve program ids through it
            map_.context = self.context
        self.context.add_map(map_)
        self.maps[entry.id] = entry
        return entry

    # -- finding -----------------------------------------------------------------------

    def _tables(self) -> dict[str, dict[int, Any]]:
        return {"prog": self.programs, "map": self.maps, "obj": self.objects, "link": self.links}

    def find(self, kind: str, id_: int) -> Any:
        """The entry of `kind` ("prog", "map", "obj", "link") with id `id_`, or ENOENT."""
        if kind not in KINDS:
            raise RequestError(errno.EINVAL, f"kind {kind[:20]!r} is not one of {', '.join(KINDS)}")
        entry = self._tables()[kind].get(id_)
        if entry is None:
            raise RequestError(errno.ENOENT, f"no {NOUNS[kind]} with id {id_}")
        return entry

    def object(self, id_: int) -> ObjectEntry:
        """The object with id `id_`, or ENOENT."""
        return self.find("obj", id_)

    def program(self, id_: int) -> ProgEntry:
        """The program with id `id_`, or ENOENT."""
        return self.find("prog", id_)

    def map(self, id_: int) -> MapEntry:
        """The map with id `id_`, or ENOENT."""
        return self.find("map", id_)

    def link(self, id_: int) -> LinkEntry:
        """The link with id `id_`, or ENOENT."""
        return self.find("link", id_)

    def add_link(self, link: Any, prog_id: int, kind: str, connection: int) -> LinkEntry:
        """Register an attached link of program `prog_id`; `connection` holds it."""
        object_id = self.program(prog_id).object_id
        entry = LinkEntry(self.new_id("link"), link, prog_id, object_id, kind, {connection})
        self.links[entry.id] = entry
        return entry

    # -- holding and pinning -------------------------------------------------------------

    def hold(self, kind: str, id_: int, connection: int) -> None:
        """`connection` now holds the map or object (a program: its object)."""
        entry = self.find(kind, id_)
        if kind == "prog":
            entry = self.object(entry.object_id)
        if kind == "link":
            entry.holders.add(connection)
            return
        if isinstance(entry, MapEntry) and entry.object_id:
            entry = self.object(entry.object_id)
        entry.holders.add(connection)

    def release(self, connection: int) -> list[str]:
        """Drop everything `connection` held; what was closed because of it."""
        for entry in [*self.objects.values(), *self.maps.values(), *self.links.values()]:
            entry.holders.discard(connection)
        return self.collect()

    def close_all(self) -> list[str]:
        """Drop every pin and holder and close everything (links first: their hooks stop)."""
        self.pins.clear()
        for table in self._tables().values():
            for entry in table.values():
                if hasattr(entry, "holders"):
                    entry.holders.clear()
        return self.collect()

    def pin(self, path: str, kind: str, id_: int) -> None:
        """Pin the entry at `path` (EEXIST if the path is taken)."""
        self.find(kind, id_)
        if path in self.pins:
            raise RequestError(errno.EEXIST, f"{path}: already pinned")
        self.pins[path] = (kind, id_)

    def unpin(self, path: str) -> list[str]:
        """Remove the pin at `path` (ENOENT if none); what was closed because of it."""
        if self.pins.pop(path, None) is None:
            raise RequestError(errno.ENOENT, f"{path}: nothing pinned there")
        return self.collect()

    def _pinned_objects_and_maps(self) -> tuple[set[int], set[int]]:
        objects, maps = set(), set()
        for kind, id_ in self.pins.values():
            if kind == "link":
                continue  # a pinned link keeps its object through `links`
            if kind == "obj":
                objects.add(id_)
            elif kind == "prog" and id_ in self.programs:
                objects.add(self.programs[id_].object_id)
            elif kind == "map" and id_ in self.maps:
                owner = self.maps[id_].object_id
                (objects if owner else maps).add(owner or id_)
        return objects, maps

    def collect(self) -> list[str]:
        """Close what nobody holds and nothing pins; descriptions of what was closed."""
        closed = []
        pinned_links = {id_ for kind, id_ in self.pins.values() if kind == "link"}
        for link in list(self.links.values()):
            if link.holders or link.id in pinned_links:
                continue
            del self.links[link.id]
            link.link.close()  # detached: the hook stops
            closed.append(f"link {link.id}")
        objects, maps = self._pinned_objects_and_maps()
        objects |= {link.object_id for link in self.links.values()}
        for entry in list(self.objects.values()):
            if entry.holders or entry.id in objects:
                continue
            for prog_id in entry.programs.values():
                self.programs.pop(prog_id, None)
            for map_id in entry.maps.values():
                self.maps.pop(map_id, None)
            del self.objects[entry.id]
            entry.obj.close()
            closed.append(f"object {entry.id}")
        for entry in list(self.maps.values()):
            if entry.object_id or entry.holders or entry.id in maps:
                continue
            del self.maps[entry.id]
            self.context.remove_map(entry.map)
            entry.map.close()
            closed.append(f"map {entry.id}")
        self._drop_dangling_pins()
        return closed

    def _drop_dangling_pins(self) -> None:
        tables = self._tables()
        for path, (kind, id_) in list(self.pins.items()):
            if id_ not in tables[kind]:
                del self.pins[path]
