"""`pybpf.connect()`: the daemon's objects, programs and maps through pybpf's own API.

A `Client` sends one request at a time (a lock makes it safe to share
between threads). Maps come back as real `pybpf.Map`s over the map's
shared region (`map.fd` hands over its descriptor): lookups and updates
run the map's native code in this process, with no request per call.
Families that keep state in the daemon (program arrays, maps of maps,
device maps, perf event arrays, stack traces) come back as `RemoteMap`,
whose every operation is a request. Programs are `RemoteProgram`s: their
test runs happen in the daemon.

Errors come back as the exceptions the embedded API raises: `MapError`
for map operations, `LoadError`/`VerifierError` for loads, and
`ServiceError` (a `PybpfError` with `errno`) for the rest.
"""

from __future__ import annotations

import errno
import functools
import os
import socket
import threading
from pathlib import Path
from typing import Any

from ..elf.map_types import MapType
from ..elf.specs import MapSpec
from ..errors import LoadError, MapError, PybpfError, VerifierError
from ..hooks.test_run import TestRunResult
from ..runtime.maps import Map, attach_map
from ..runtime.maps.base import MapMapping
from ..runtime.memory import Memory
from . import paths
from .wire import Channel


class ServiceError(PybpfError):
    """The daemon refused a request, or cannot be reached (`errno` says why)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.errno = code


class Client:
    """A connection to the daemon (see the module docstring)."""

    def __init__(self, socket_path: str | os.PathLike[str] | None = None):
        path = Path(socket_path) if socket_path is not None else paths.socket_path()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
        except OSError as error:
            sock.close()
            raise ServiceError(
                error.errno or errno.ECONNREFUSED,
                f"no pybpf daemon on {path} ({error.strerror}): start one with `pybpf daemon start`",
            ) from None
        self.socket_path = path
        self._channel = Channel(sock)
        self._lock = threading.Lock()
        self._seq = 0

    # -- requests ---------------------------------------------------------------------

    def call(self, op: str, **fields: Any) -> Any:
        """Send request `op` and return its result (`ServiceError` on a refusal)."""
        result, fds = self.call_with_fds(op, **fields)
        for fd in fds:
            os.close(fd)
        return result

    def call_with_fds(self, op: str, **fields: Any) -> tuple[Any, list[int]]:
        """As `call`, also returning the descriptors that came with the reply (now ours)."""
        message = {"op": op, **{k: v for k, v in fields.items() if v is not None}}
        with self._lock:
            self._seq += 1
            message["seq"] = self._seq
            self._channel.send(message)
            received = self._channel.receive()
        if received is None:
            raise ServiceError(errno.ECONNRESET, "the daemon closed the connection")
        reply, fds = received
        if not reply.get("ok"):
            for fd in fds:
                os.close(fd)
            raise ServiceError(reply.get("errno", errno.EIO), reply.get("error", "refused"))
        return reply.get("result"), fds

    def close(self) -> None:
        """Close the connection: the daemon drops what this client held (pins stay)."""
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the API ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The daemon's pid, uptime and what it holds."""
        return self.call("daemon.status")

    def load(
        self,
        path: str | os.PathLike[str],
        *,
        engine: str | None = None,
        prog_type: str | None = None,
        verify: bool = True,
    ) -> RemoteObject:
        """Load the object file at `path` in the daemon (verified there) and hold it."""
        absolute = str(Path(path).resolve())
        try:
            info = self.call(
                "obj.load",
                path=absolute,
                engine=engine,
                prog_type=prog_type,
                verify=None if verify else False,
            )
        except ServiceError as error:
            if error.errno == errno.EACCES:
                raise VerifierError(str(error)) from None
            raise LoadError(str(error)) from None
        return RemoteObject(self, info)

    def create_map(
        self,
        name: str,
        type: str,
        key_size: int,
        value_size: int,
        max_entries: int,
        flags: int = 0,
    ) -> Map | RemoteMap:
        """A new map in the daemon, held by this client (bpftool's `map create`)."""
        info = self._map_call(
            "create",
            name,
            name=name,
            type=type,
            key_size=key_size,
            value_size=value_size,
            max_entries=max_entries,
            flags=flags,
        )
        return self.map(info["id"])

    def map(self, id: int | None = None, *, pinned: str | None = None) -> Map | RemoteMap:
        """The map with `id`, or pinned at `pinned`: a `Map` over its region when it can be."""
        id = self._id_of(id, pinned, "map")
        info = self._map_call("show", str(id), id=id)
        if not info["shareable"]:
            return RemoteMap(self, info)
        result, fds = self.call_with_fds("map.fd", id=id)
        # A region table of its own: it goes with the map (no program here runs on it).
        map_ = attach_map(fds[0], Memory(), result["name"], writable=result["writable"])
        map_.id = id  # type: ignore[attr-defined]
        map_.client = self  # type: ignore[attr-defined]  # Map.pin pins in the daemon
        _give_typed_view(map_, result)
        return map_

    def program(self, id: int | None = None, *, pinned: str | None = None) -> RemoteProgram:
        """The program with `id`, or pinned at `pinned`."""
        return RemoteProgram(self, self.call("prog.show", id=self._id_of(id, pinned, "prog")))

    def programs(self) -> list[dict[str, Any]]:
        """Every loaded program (bpftool's `prog list`)."""
        return self.call("prog.list")

    def maps(self) -> list[dict[str, Any]]:
        """Every map (bpftool's `map list`)."""
        return self.call("map.list")

    def links(self) -> list[dict[str, Any]]:
        """Every link (bpftool's `link list`): id, program, kind, hook, counters."""
        return self.call("link.list")

    def link(self, id: int | None = None, *, pinned: str | None = None) -> RemoteLink:
        """The link with `id`, or pinned at `pinned`."""
        return RemoteLink(self, self.call("link.show", id=self._id_of(id, pinned, "link")))

    def pin(self, target: Any, path: str) -> None:
        """Pin a `RemoteObject`, `RemoteProgram`, `RemoteLink` or map (by its `id`) at `path`."""
        kinds = {RemoteObject: "obj", RemoteProgram: "prog", RemoteLink: "link"}
        kind = kinds.get(type(target), "map")
        id_ = getattr(target, "id", None)
        if id_ is None:
            raise ValueError(f"{target!r} does not come from the daemon")
        self.call("pin.add", path=path, kind=kind, id=id_)

    def unpin(self, path: str) -> None:
        """Remove the pin at `path` (the target goes when nothing else holds it)."""
        self.call("pin.remove", path=path)

    def pins(self) -> list[dict[str, Any]]:
        """Every pin: path, kind, id."""
        return self.call("pin.list")

    def _id_of(self, id: int | None, pinned: str | None, kind: str) -> int:
        """The id given, or that of the `kind` pinned at `pinned` (EINVAL: another kind)."""
        if pinned is not None:
            found = self.call("pin.get", path=pinned)
            if found["kind"] != kind:
                raise ServiceError(errno.EINVAL, f"{pinned}: pinned {found['kind']}, not a {kind}")
            return found["id"]
        if id is None:
            raise ValueError(f"give a {kind} id or pinned=PATH")
        return id

    def _map_call(self, op: str, map_name: str, **fields: Any) -> Any:
        try:
            return self.call(f"map.{op}", **fields)
        except ServiceError as error:
            raise MapError(error.errno, op, map_name, str(error)) from None


class RemoteObject:
    """An object loaded in the daemon: `programs` and `maps` by name, like `Object`'s."""

    def __init__(self, client: Client, info: dict[str, Any]):
        self.client = client
        self.id: int = info["id"]
        self.path: str = info["path"]
        self.name: str = info["name"]
        self.programs = {name: RemoteProgram(client, p) for name, p in info["programs"].items()}
        self._map_ids = {name: m["id"] for name, m in info["maps"].items()}
        self._maps: dict[str, Map | RemoteMap] = {}

    @property
    def maps(self) -> dict[str, Map | RemoteMap]:
        """The object's maps by name (mapped into this process on first use)."""
        for name, id_ in self._map_ids.items():
            if name not in self._maps:
                self._maps[name] = self.client.map(id_)
        return self._maps

    def pin(self, path: str) -> None:
        """Pin the object (it outlives this client)."""
        self.client.pin(self, path)

    def close(self) -> None:
        """Let go of the object (it stays while pinned or held by others)."""
        self.client.call("obj.close", id=self.id)

    def __repr__(self) -> str:
        return f"<RemoteObject {self.id} {self.name!r}: programs {sorted(self.programs)}>"


class RemoteProgram:
    """A program loaded in the daemon; test runs happen there."""

    def __init__(self, client: Client, info: dict[str, Any]):
        self.client = client
        self.info = info
        self.id: int = info["id"]
        self.name: str = info["name"]
        self.type: str = info["type"]

    def test_run(
        self, data: bytes = b"", ctx: bytes | None = None, repeat: int = 1
    ) -> TestRunResult:
        """Run as `Program.test_run` does, in the daemon."""
        result = self.client.call(
            "prog.run",
            id=self.id,
            data=bytes(data).hex(),
            ctx=None if ctx is None else bytes(ctx).hex(),
            repeat=repeat,
        )
        ctx_out = result["ctx_out"]
        return TestRunResult(
            result["retval"],
            bytes.fromhex(result["data_out"] or ""),
            None if ctx_out is None else bytes.fromhex(ctx_out),
            result["duration"],
        )

    def pin(self, path: str) -> None:
        """Pin the program (its object stays loaded)."""
        self.client.pin(self, path)

    def attach_xdp(self, ifname: str, **where: Any) -> RemoteLink:
        """Attach in the daemon as `Program.attach_xdp` (netns, pass_to, pass_to_tap)."""
        info = self.client.call("link.attach", prog=self.id, kind="xdp", ifname=ifname, **where)
        return RemoteLink(self.client, info)

    def attach_tc(self, ifname: str, direction: str = "ingress", **where: Any) -> RemoteLink:
        """Attach in the daemon as `Program.attach_tc`."""
        info = self.client.call(
            "link.attach", prog=self.id, kind="tc", ifname=ifname, direction=direction, **where
        )
        return RemoteLink(self.client, info)

    def __repr__(self) -> str:
        return f"<RemoteProgram {self.id} {self.name!r} {self.type}>"


class RemoteLink:
    """A program attached to a hook in the daemon: it stays attached while this client
    holds it or it is pinned."""

    def __init__(self, client: Client, info: dict[str, Any]):
        self.client = client
        self.id: int = info["id"]
        self.info = info

    def counters(self) -> dict[str, Any]:
        """The hook's counters so far (frames, frames per action), and whether it runs."""
        return self.client.call("link.show", id=self.id)

    def pin(self, path: str) -> None:
        """Pin the link: it stays attached after this client goes."""
        self.client.pin(self, path)

    def detach(self) -> dict[str, Any]:
        """Detach (pins on it are removed); its last counters."""
        return self.client.call("link.detach", id=self.id)

    def __repr__(self) -> str:
        return f"<RemoteLink {self.id} {self.info.get('name')!r}>"


class RemoteMap(MapMapping):
    """A map whose family lives in the daemon: every operation is a request."""

    def __init__(self, client: Client, info: dict[str, Any]):
        self.client = client
        self.info = info
        self.id: int = info["id"]
        self.name: str = info["name"]
        #: The map as the daemon describes it, as a mapped `Map`'s spec.
        self.spec = MapSpec(
            info["name"],
            MapType[info["type"].upper()],
            info["key_size"],
            info["value_size"],
            info["max_entries"],
            info["flags"],
        )

    def _call(self, op: str, **fields: Any) -> Any:
        return self.client._map_call(op.split(".")[-1], self.name, id=self.id, **fields)

    def lookup(self, key: bytes) -> Any:
        """The value of `key` as bytes (program arrays, maps of maps: `{id, name}`), or None."""
        value = self._call("lookup", key=bytes(key).hex())
        return bytes.fromhex(value) if isinstance(value, str) else value

    def update(self, key: bytes, value: bytes, flags: int = 0) -> None:
        """Set `key` to `value`."""
        self._call("update", key=bytes(key).hex(), value=bytes(value).hex(), flags=flags)

    def delete(self, key: bytes) -> None:
        """Remove `key`."""
        self._call("delete", key=bytes(key).hex())

    def get_next_key(self, key: bytes | None = None) -> bytes | None:
        """The key after `key` (the first for None), None at the end."""
        found = self._call("next_key", key=None if key is None else bytes(key).hex())
        return None if found is None else bytes.fromhex(found)


@functools.lru_cache(maxsize=16)
def _object_btf(path: str) -> Any:
    """The BTF of the object file at `path` (None when it has none or cannot be read)."""
    from ..elf.loader import load_object_spec

    try:
        return load_object_spec(path).btf
    except (PybpfError, OSError):
        return None


def _give_typed_view(map_: Map, info: dict[str, Any]) -> None:
    """`map_.typed()` as an object's map has it, from the BTF of the daemon's object file."""
    path, value_type = info.get("btf_path"), info.get("value_type")
    if not path or not value_type:
        return
    from ..btf.values import TypedMap

    def typed() -> TypedMap | None:
        btf = _object_btf(path)
        return None if btf is None else TypedMap(map_, btf, info["key_type"], value_type)

    map_.typed = typed  # type: ignore[attr-defined]


def connect(socket_path: str | os.PathLike[str] | None = None) -> Client:
    """A client of this user's daemon (or the one at `socket_path`)."""
    return Client(socket_path)
