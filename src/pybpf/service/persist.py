"""`--persist DIR`: pinned objects, programs and maps that survive a restart or a `kill -9`.

What is kept is what is pinned: every object with a pin on itself, on one
of its programs or on one of its maps (its ELF file and load options, and
a snapshot of each of its maps), every pinned standalone map (its spec and
a snapshot), and the pins. Layout of DIR:

    state.json                    generation N: objects, maps, pins, file names
    objects/<sha256>/<name>.o     each object file as it was loaded
    maps/<key>.<generation>.snap  map snapshots (`runtime/maps/snapshot.py`)

Writing is copy-on-write by generation, every file through a temporary
file that is fsynced and renamed, the directory fsynced after: new
snapshots first, then `state.json`, whose rename is the commit point; then
the files no state refers to are removed. A crash at any moment leaves
the previous `state.json` and every file it names intact, so a restart
sees one whole generation: no lost pin, no half-written entry.

Map updates do not pass through the daemon (clients write the shared
region), so they cannot be logged: snapshots are taken every `interval`
seconds (default 1 s) when something changed, and at once after every pin,
unpin and `daemon.sync`, and at a clean stop. The window of lost updates on
a `kill -9` is therefore the updates since the last snapshot: at most
`interval` plus the time of one save. Pins and loads are durable when
their reply is sent.

On restart objects are loaded again from their saved files — which
verifies every program again — then their maps take their snapshots and
the pins are made again (pinned links are not kept: attach again after a
restart). Ids are new (as after a reboot); pins are how
persisted things are found. Maps kept in Python (program arrays, maps of
maps, device maps) are not snapshotted: they start as their object fills
them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

from ..runtime.maps import snapshot as map_snapshot
from .registry import Registry

STATE = "state.json"
FORMAT = 1


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data`: temporary file, fsync, rename, fsync of the directory."""
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.rename(temporary, path)
    sync_directory(path.parent)


def sync_directory(path: Path) -> None:
    """fsync a directory, so that renames and creations in it are durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Persistence:
    """Saves the registry's pinned state to a directory, and loads it back at start."""

    def __init__(self, directory: Path, interval: float = 1.0):
        self.directory = directory
        self.interval = interval
        self.generation = 0
        self._saving = threading.Lock()
        self._last: dict[str, bytes] = {}  # snapshot key → digest of its last saved bytes
        self._files: dict[str, str] = {}  # snapshot key → file holding those bytes
        self._state: bytes = b""
        for sub in ("objects", "maps"):
            (directory / sub).mkdir(parents=True, exist_ok=True)

    # -- saving --------------------------------------------------------------------------

    def save(self, registry: Registry) -> int:
        """Write what is pinned now, if anything changed; the generation on disk.

        Lock order: the registry's lock, then the saver's (a request handler
        calls this holding the registry's lock; the background saver takes
        it first too), so the two never wait on each other in a circle. The
        files are written with only the saver's lock held (unless the
        caller holds the registry's).
        """
        with registry.lock:
            self._saving.acquire()
            try:
                state, snapshots = self._collect(registry)
            except BaseException:
                self._saving.release()
                raise
        try:
            return self._write(state, snapshots)
        finally:
            self._saving.release()

    def _write(self, state: dict[str, Any], snapshots: dict[str, bytes]) -> int:
        """Write the changed snapshots, then the state (the commit point); the generation."""
        changed = {key: data for key, data in snapshots.items() if self._changed(key, data)}
        for key in snapshots:
            if key not in changed and key not in self._files:
                changed[key] = snapshots[key]
        generation = self.generation + 1
        for key, data in changed.items():
            name = f"{key}.{generation}.snap"
            write_atomically(self.directory / "maps" / name, data)
            self._files[key] = name
            self._last[key] = hashlib.sha256(data).digest()
        for key in set(self._files) - set(snapshots):
            del self._files[key]
            self._last.pop(key, None)
        state["snapshots"] = dict(self._files)
        encoded = json.dumps(state, indent=1, sort_keys=True).encode()
        if encoded == self._state and not changed:
            return self.generation
        state["generation"] = generation
        write_atomically(self.directory / STATE, json.dumps(state, indent=1).encode())
        self._state, self.generation = encoded, generation
        self._remove_unreferenced(state)
        return generation

    def _changed(self, key: str, data: bytes) -> bool:
        return self._last.get(key) != hashlib.sha256(data).digest()

    def _collect(self, registry: Registry) -> tuple[dict[str, Any], dict[str, bytes]]:
        """The state to write and the snapshots it refers to (taken under the registry lock)."""
        kept_objects: set[int] = set()
        kept_maps: set[int] = set()
        pins = []
        for path, (kind, id_) in sorted(registry.pins.items()):
            if kind == "link":
                continue  # links are not kept: their hooks end with the daemon
            if kind == "obj":
                kept_objects.add(id_)
                pins.append({"path": path, "kind": kind, "target": f"obj{id_}"})
            elif kind == "prog":
                prog = registry.programs[id_]
                kept_objects.add(prog.object_id)
                name = prog.program.name
                pins.append(
                    {"path": path, "kind": kind, "target": f"obj{prog.object_id}", "member": name}
                )
            else:
                entry = registry.maps[id_]
                if entry.object_id:
                    kept_objects.add(entry.object_id)
                    member = next(
                        n for n, m in registry.objects[entry.object_id].maps.items() if m == id_
                    )
                    target = {"target": f"obj{entry.object_id}", "member": member}
                else:
                    kept_maps.add(id_)
                    target = {"target": f"map{id_}"}
                pins.append({"path": path, "kind": kind, **target})
        snapshots: dict[str, bytes] = {}
        objects = {}
        for id_ in sorted(kept_objects):
            entry = registry.objects[id_]
            kept_maps_of: dict[str, str] = {}  # map name → its snapshot's key
            for name, map_id in entry.maps.items():
                map_ = registry.maps[map_id].map
                if map_.shareable:
                    key = f"obj{id_}-{_safe(name)}"
                    snapshots[key] = map_snapshot.snapshot(map_)
                    kept_maps_of[name] = key
            objects[f"obj{id_}"] = {
                "file": self._keep_file(entry),
                **entry.options,
                "maps": kept_maps_of,
            }
        maps = {}
        for id_ in sorted(kept_maps):
            m = registry.maps[id_].map
            spec = m.spec
            maps[f"map{id_}"] = {
                "name": spec.name,
                "type": spec.type,
                "key_size": spec.key_size,
                "value_size": spec.value_size,
                "max_entries": spec.max_entries,
                "flags": spec.flags,
            }
            if m.shareable:
                snapshots[f"map{id_}"] = map_snapshot.snapshot(m)
        return {"format": FORMAT, "objects": objects, "maps": maps, "pins": pins}, snapshots

    def _keep_file(self, entry: Any) -> str:
        digest = hashlib.sha256(entry.elf).hexdigest()
        name = f"objects/{digest}/{Path(entry.obj.path).name}"
        target = self.directory / name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(target, entry.elf)
        return name

    def _remove_unreferenced(self, state: dict[str, Any]) -> None:
        referenced = set(state["snapshots"].values())
        for file in (self.directory / "maps").iterdir():
            if file.name not in referenced:
                with contextlib.suppress(OSError):
                    file.unlink()
        kept = {Path(o["file"]).parent.name for o in state["objects"].values()}
        for folder in (self.directory / "objects").iterdir():
            if folder.name not in kept:
                for file in folder.iterdir():
                    with contextlib.suppress(OSError):
                        file.unlink()
                with contextlib.suppress(OSError):
                    folder.rmdir()

    # -- loading -------------------------------------------------------------------------

    def load(self) -> dict[str, Any] | None:
        """The last committed state, or None when there is none."""
        path = self.directory / STATE
        if not path.exists():
            return None
        state = json.loads(path.read_text())
        if state.get("format") != FORMAT:
            raise ValueError(f"{path}: format {state.get('format')!r}, expected {FORMAT}")
        self.generation = state.get("generation", 0)
        self._files = dict(state.get("snapshots", {}))
        for key, name in self._files.items():
            data = (self.directory / "maps" / name).read_bytes()
            self._last[key] = hashlib.sha256(data).digest()
        return state

    def snapshot_bytes(self, state: dict[str, Any], key: str) -> bytes | None:
        """The saved snapshot `key` of `state`, or None."""
        name = state.get("snapshots", {}).get(key)
        return None if name is None else (self.directory / "maps" / name).read_bytes()

    # -- the background saver ------------------------------------------------------------

    def run(self, registry: Registry, stop: threading.Event) -> None:
        """Save every `interval` seconds until `stop` (errors are reported, not fatal)."""
        while not stop.wait(self.interval):
            try:
                self.save(registry)
            except Exception as error:  # a full disk must not stop the daemon
                print(f"pybpfd: persist: {type(error).__name__}: {error}", file=sys.stderr)


def _safe(name: str) -> str:
    """A map name as a file-name part (`.rodata` → `_rodata`)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
