"""`pybpfd`: the execution context as a service, serving requests on a Unix socket.

One daemon per user (`paths`). Every connection is checked when accepted:
the peer's uid (SO_PEERCRED) must be the daemon's or root's, else it gets
one error line and is closed; the socket itself is mode 0600 in a 0700
directory. A thread serves each connection, one request at a time; the
registry's lock serialises what they change. Requests are validated
(`requests.validate`) before a handler runs, so a bad one changes
nothing and gets an error back; an unexpected failure in a handler is
reported as EIO and serving goes on. Map data does not go through here:
`map.fd` hands the map's shared region to the client (SCM_RIGHTS), which
then runs the map's native code itself (`runtime/maps/shared.py`).

    python -m pybpf.service.daemon [--socket PATH]   (what `pybpf daemon start` runs)
"""

from __future__ import annotations

import errno
import itertools
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..elf.map_types import MapType
from ..elf.specs import MapSpec
from ..errors import LoadError, MapError, PybpfError, VerifierError
from ..runtime.maps import create_map
from ..runtime.maps import snapshot as map_snapshot
from ..verifier import cache as verifier_cache
from . import paths
from .persist import Persistence
from .registry import MapEntry, ObjectEntry, Registry
from .requests import RequestError, validate
from .verifier_client import DEFAULT_MEMORY, DEFAULT_TIMEOUT, VerifierWorker, WorkerVerdicts
from .wire import Channel, WireError, peer_uid

ROOT = 0
UNLOCKED = frozenset({"obj.load"})
"""Requests that take the registry lock only where they change it (a load verifies
first, which may take long: other clients are served meanwhile)."""


def _hex(data: bytes | None) -> str | None:
    return None if data is None else data.hex()


def map_info(entry: MapEntry, btf_path: str | None = None) -> dict[str, Any]:
    """What `map.show` says of a map (bpftool's fields, plus pybpf's own); `btf_path`,
    the file holding the BTF its `key_type`/`value_type` ids refer to, lets clients
    render entries typed (as bpftool does with BTF)."""
    m = entry.map
    return {
        "id": entry.id,
        "name": m.name,
        "type": m.spec.type_name,
        "key_size": m.spec.key_size,
        "value_size": m.spec.value_size,
        "max_entries": m.spec.max_entries,
        "flags": m.spec.flags,
        "object": entry.object_id,
        "shareable": m.shareable,
        "read_only": entry.read_only,
        "frozen": frozen(entry),
        "bytes": m.shared.size,
        "key_type": m.spec.key_type,
        "value_type": m.spec.value_type,
        "btf_path": btf_path,
    }


def frozen(entry: MapEntry) -> bool:
    """Frozen by a request, or by its object (a loaded `.rodata`)."""
    return entry.frozen or bool(getattr(entry.map, "frozen", False))


class Daemon:
    """The server: a listening socket, a registry, a thread per connection."""

    def __init__(
        self,
        socket_path: Path | None = None,
        persist: Path | None = None,
        interval: float = 1.0,
        *,
        worker: VerifierWorker | None = None,
    ):
        """`worker` verifies objects before they load (None: verify in this process)."""
        self.socket_path = socket_path or paths.socket_path()
        self.registry = Registry()
        self.worker = worker
        self.verdicts: WorkerVerdicts | None = None
        if worker is not None:
            # Every verdict in this process is the worker's (see verifier_client).
            self.verdicts = WorkerVerdicts()
            verifier_cache.default_cache = self.verdicts
        self.persistence = Persistence(persist, interval) if persist is not None else None
        self.uid = os.getuid()
        self.started = time.time()
        self._stop = threading.Event()
        self._connections = itertools.count(1)
        self._listener: socket.socket | None = None
        self._handlers = {op: getattr(self, "do_" + op.replace(".", "_")) for op in _ops()}
        # Perf event array readers, by (connection, map id): a perf buffer is per reader.
        self._perf_readers: dict[tuple[int, int], Any] = {}

    # -- serving -----------------------------------------------------------------------

    def bind(self) -> None:
        """Create the socket (mode 0600); refuse if another daemon answers on it."""
        paths.ensure_private_dir(self.socket_path.parent)
        if self.socket_path.exists():
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(self.socket_path))
            except OSError:
                self.socket_path.unlink()  # a stale socket of a daemon that died
            else:
                probe.close()
                raise RuntimeError(f"a daemon already listens on {self.socket_path}")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            listener.bind(str(self.socket_path))
        finally:
            os.umask(old)
        os.chmod(self.socket_path, 0o600)
        listener.listen(64)
        self._listener = listener

    def serve(self) -> None:
        """Accept connections until `stop()` (or a `daemon.stop` request)."""
        assert self._listener is not None
        self._listener.settimeout(0.2)
        if self.persistence is not None:
            threading.Thread(
                target=self.persistence.run, args=(self.registry, self._stop), daemon=True
            ).start()
        try:
            while not self._stop.is_set():
                try:
                    sock, _ = self._listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    if self._stop.is_set():
                        break
                    raise
                sock.settimeout(None)
                number = next(self._connections)
                threading.Thread(
                    target=self._serve_connection, args=(sock, number), daemon=True
                ).start()
        finally:
            self._listener.close()
            if self.persistence is not None:
                self.persistence.save(self.registry)
            try:
                self.socket_path.unlink()
            except FileNotFoundError:
                pass

    # -- persistence ---------------------------------------------------------------------

    def restore(self) -> list[str]:
        """Load what `--persist` kept (objects re-verified); problems, one line each."""
        if self.persistence is None:
            return []
        state = self.persistence.load()
        if state is None:
            return []
        problems: list[str] = []
        made: dict[str, Any] = {}
        with self.registry.lock:
            for key, record in state["objects"].items():
                try:
                    made[key] = self._restore_object(state, record)
                except (PybpfError, OSError, ValueError) as error:
                    problems.append(f"{key} ({record.get('file')}): {str(error).splitlines()[0]}")
            for key, record in state["maps"].items():
                try:
                    made[key] = self._restore_map(state, key, record)
                except (PybpfError, OSError, ValueError) as error:
                    problems.append(f"{key} ({record.get('name')}): {error}")
            for pin in state["pins"]:
                target = made.get(pin["target"])
                if target is None:
                    problems.append(f"{pin['path']}: its {pin['target']} was not restored")
                    continue
                self.registry.pin(pin["path"], *self._pin_target(target, pin))
            self.registry.release(0)  # the restoring "connection" holds nothing after
        return problems

    def _restore_object(self, state: dict[str, Any], record: dict[str, Any]) -> ObjectEntry:
        assert self.persistence is not None
        options = {k: record.get(k) for k in ("engine", "prog_type", "verify")}
        entry = self._load_object(self.persistence.directory / record["file"], options, 0)
        for name, key in record.get("maps", {}).items():
            data = self.persistence.snapshot_bytes(state, key)
            if data is not None and name in entry.maps:
                map_snapshot.restore(self.registry.maps[entry.maps[name]].map, data)
        return entry

    def _restore_map(self, state: dict[str, Any], key: str, record: dict[str, Any]) -> MapEntry:
        assert self.persistence is not None
        spec = MapSpec(
            record["name"],
            record["type"],
            record["key_size"],
            record["value_size"],
            record["max_entries"],
            record["flags"],
        )
        map_ = create_map(spec, self.registry.context.memory, ncpus=self.registry.context.ncpus)
        data = self.persistence.snapshot_bytes(state, key)
        if data is not None:
            map_snapshot.restore(map_, data)
        return self.registry.add_map(map_, 0)

    def _pin_target(self, target: Any, pin: dict[str, Any]) -> tuple[str, int]:
        if isinstance(target, MapEntry):
            return "map", target.id
        member = pin.get("member")
        if pin["kind"] == "prog":
            return "prog", target.programs[member]
        if pin["kind"] == "map":
            return "map", target.maps[member]
        return "obj", target.id

    def _persist_now(self) -> None:
        """Save at once (pins and unpins are durable when their reply is sent)."""
        if self.persistence is not None:
            self.persistence.save(self.registry)

    def stop(self) -> None:
        """Stop accepting; `serve` returns."""
        self._stop.set()

    def _serve_connection(self, sock: socket.socket, number: int) -> None:
        channel = Channel(sock)
        try:
            uid = peer_uid(sock)
            if uid not in (self.uid, ROOT):
                channel.send(
                    {"ok": False, "errno": errno.EACCES, "error": f"uid {uid} may not connect"}
                )
                return
            while True:
                try:
                    received = channel.receive()
                except WireError as error:
                    channel.send({"ok": False, "errno": errno.EPROTO, "error": str(error)})
                    return
                if received is None:
                    return
                message, fds = received
                reply, out_fds = self._answer(message, fds, number)
                try:
                    channel.send(reply, out_fds)
                finally:
                    for fd in out_fds:
                        os.close(fd)
        except OSError:
            pass  # the client went away mid-reply: what it held is released below
        finally:
            channel.close()
            with self.registry.lock:
                for key in [k for k in self._perf_readers if k[0] == number]:
                    self._perf_readers.pop(key).close()
                self.registry.release(number)

    def _answer(
        self, message: dict[str, Any], fds: list[int], connection: int
    ) -> tuple[dict[str, Any], list[int]]:
        seq = message.get("seq")
        for fd in fds:  # no request takes descriptors yet
            os.close(fd)
        out_fds: list[int] = []
        try:
            op, arguments = validate(message)
            if op in UNLOCKED:
                result = self._handlers[op](connection, out_fds, **arguments)
            else:
                with self.registry.lock:
                    result = self._handlers[op](connection, out_fds, **arguments)
            return {"seq": seq, "ok": True, "result": result}, out_fds
        except RequestError as error:
            code, text = error.errno, str(error)
        except VerifierError as error:
            code, text = errno.EACCES, str(error).splitlines()[0]
        except MapError as error:  # the client names the map and operation itself
            code, text = error.errno or errno.EINVAL, error.detail
        except (LoadError, PybpfError, OSError) as error:
            code = getattr(error, "errno", None) or errno.EINVAL
            text = str(error).splitlines()[0] if str(error) else type(error).__name__
        except Exception as error:  # a handler bug must not take the daemon down
            code, text = errno.EIO, f"internal error: {type(error).__name__}: {error}"
            print(f"pybpfd: {text}", file=sys.stderr)
        for fd in out_fds:
            os.close(fd)
        return {"seq": seq, "ok": False, "errno": code, "error": text}, []

    # -- daemon ---------------------------------------------------------------------------

    def do_daemon_status(self, connection: int, fds: list[int]) -> dict[str, Any]:
        r = self.registry
        return {
            "pid": os.getpid(),
            "uid": self.uid,
            "socket": str(self.socket_path),
            "uptime": round(time.time() - self.started, 3),
            "objects": len(r.objects),
            "programs": len(r.programs),
            "maps": len(r.maps),
            "pins": len(r.pins),
            "links": len(r.links),
            "persist": None if self.persistence is None else str(self.persistence.directory),
            "verifier": self._verifier_status(),
            "generation": None if self.persistence is None else self.persistence.generation,
        }

    def _verifier_status(self) -> dict[str, Any]:
        worker = self.worker
        if worker is None:
            return {"mode": "in-process"}
        return {
            "mode": "worker",
            "pid": worker.pid,
            "busy": worker.busy,
            "restarts": worker.restarts,
            "memory": worker.memory,
            "timeout": worker.timeout,
        }

    def do_daemon_stop(self, connection: int, fds: list[int]) -> dict[str, Any]:
        self.stop()
        return {"stopping": True}

    def do_daemon_sync(self, connection: int, fds: list[int]) -> dict[str, Any]:
        if self.persistence is None:
            raise RequestError(errno.EOPNOTSUPP, "daemon.sync: the daemon runs without --persist")
        return {"generation": self.persistence.save(self.registry)}

    # -- objects and programs ---------------------------------------------------------------

    def do_obj_load(
        self,
        connection: int,
        fds: list[int],
        path: str,
        engine: str | None,
        prog_type: str | None,
        verify: bool | None,
    ) -> dict[str, Any]:
        options = {"engine": engine, "prog_type": prog_type, "verify": verify is not False}
        entry = self._load_object(Path(path), options, connection)
        return self._object_info(entry.id)

    def _load_object(self, path: Path, options: dict[str, Any], connection: int) -> ObjectEntry:
        """Load (and verify) the object file at `path`; register it, held by `connection`."""
        from ..elf.specs import ObjectSpec
        from ..object import Object

        elf = path.read_bytes()
        if self.worker is not None and options.get("verify", True):
            reply = self.worker.verify(elf, path.name, {"prog_type": options.get("prog_type")})
            if not reply.get("ok"):
                error = str(reply.get("error", "refused"))
                raise VerifierError(error) if reply.get("rejected") else LoadError(error)
            assert self.verdicts is not None
            self.worker.verdicts(reply, self.verdicts, path.name)
        obj = Object(ObjectSpec.from_file(path), context=self.registry.context, **options)
        try:
            obj.load()
        except BaseException:
            obj.close()
            raise
        with self.registry.lock:
            return self.registry.add_object(obj, connection, elf, options)

    def _object_info(self, id_: int) -> dict[str, Any]:
        entry = self.registry.object(id_)
        return {
            "id": entry.id,
            "path": entry.obj.path,
            "name": entry.obj.name,
            "programs": {name: self._prog_info(p) for name, p in entry.programs.items()},
            "maps": {name: self._map_info(self.registry.map(m)) for name, m in entry.maps.items()},
        }

    def do_obj_list(self, connection: int, fds: list[int]) -> list[dict[str, Any]]:
        return [self._object_info(id_) for id_ in sorted(self.registry.objects)]

    def do_obj_close(self, connection: int, fds: list[int], id: int) -> dict[str, Any]:
        entry = self.registry.object(id)
        entry.holders.discard(connection)
        return {"closed": self.registry.collect()}

    def _prog_info(self, id_: int) -> dict[str, Any]:
        entry = self.registry.program(id_)
        program = entry.program
        return {
            "id": entry.id,
            "name": program.name,
            "type": program.prog_type.name.lower(),
            "section": program.section,
            "object": entry.object_id,
            "insns": len(program.instructions),
        }

    def do_prog_list(self, connection: int, fds: list[int]) -> list[dict[str, Any]]:
        return [self._prog_info(id_) for id_ in sorted(self.registry.programs)]

    def do_prog_show(self, connection: int, fds: list[int], id: int) -> dict[str, Any]:
        return self._prog_info(id)

    def do_prog_dump(
        self, connection: int, fds: list[int], id: int, linum: bool | None
    ) -> dict[str, Any]:
        from ..isa.disasm import format_program, source_annotator

        spec = self.registry.program(id).program.spec
        lines = format_program(
            spec.instructions,
            labels={pc: name for name, pc in spec.functions},
            annotate=source_annotator(spec.line_infos, linum=bool(linum)),
        )
        return {"name": spec.name, "lines": lines}

    def do_prog_run(
        self,
        connection: int,
        fds: list[int],
        id: int,
        data: bytes | None,
        ctx: bytes | None,
        repeat: int | None,
    ) -> dict[str, Any]:
        program = self.registry.program(id).program
        result = program.test_run(data or b"", ctx, repeat or 1)
        return {
            "retval": result.retval,
            "data_out": _hex(result.data_out),
            "ctx_out": _hex(result.ctx_out),
            "duration": result.duration,
        }

    # -- maps -----------------------------------------------------------------------------

    def do_map_list(self, connection: int, fds: list[int]) -> list[dict[str, Any]]:
        return [self._map_info(self.registry.maps[id_]) for id_ in sorted(self.registry.maps)]

    def do_map_show(self, connection: int, fds: list[int], id: int) -> dict[str, Any]:
        return self._map_info(self.registry.map(id))

    def do_map_create(
        self,
        connection: int,
        fds: list[int],
        name: str,
        type: str,
        key_size: int,
        value_size: int,
        max_entries: int,
        flags: int | None,
    ) -> dict[str, Any]:
        try:
            kind = MapType[type.upper()]
        except KeyError:
            raise RequestError(errno.EINVAL, f"map.create: unknown map type {type!r}") from None
        spec = MapSpec(name, kind, key_size, value_size, max_entries, flags or 0)
        map_ = create_map(spec, self.registry.context.memory, ncpus=self.registry.context.ncpus)
        return self._map_info(self.registry.add_map(map_, connection))

    def _map_info(self, entry: MapEntry) -> dict[str, Any]:
        owner = self.registry.objects.get(entry.object_id)
        return map_info(entry, None if owner is None else str(owner.obj.path))

    def _writable_by(self, entry: MapEntry, connection: int) -> bool:
        return not frozen(entry) and (not entry.read_only or entry.owner == connection)

    def do_map_fd(self, connection: int, fds: list[int], id: int) -> dict[str, Any]:
        entry = self.registry.map(id)
        if not entry.map.shareable:
            raise RequestError(
                errno.EOPNOTSUPP,
                f"map {id} ({entry.map.spec.type_name}) is served by requests only",
            )
        writable = self._writable_by(entry, connection)
        # A read-only client gets a read-only open of the region: it cannot map it writable.
        mode = os.O_RDWR if writable else os.O_RDONLY
        fds.append(os.open(f"/proc/self/fd/{entry.map.shared.fd}", mode | os.O_CLOEXEC))
        self.registry.hold("map", id, connection)
        return {**self._map_info(entry), "writable": writable}

    def _writable_map(self, id_: int, connection: int, op: str) -> Any:
        entry = self.registry.map(id_)
        if not self._writable_by(entry, connection):
            raise RequestError(errno.EPERM, f"map.{op}: map {id_} is read-only for this client")
        return entry.map

    def do_map_lookup(self, connection: int, fds: list[int], id: int, key: bytes) -> Any:
        value = self.registry.map(id).map.lookup(key)
        if isinstance(value, list):
            return [item.hex() for item in value]
        if value is not None and not isinstance(value, bytes):
            return {"id": getattr(value, "id", None), "name": getattr(value, "name", None)}
        return _hex(value)

    def do_map_update(
        self, connection: int, fds: list[int], id: int, key: bytes, value: bytes, flags: int | None
    ) -> None:
        self._writable_map(id, connection, "update").update(key, value, flags or 0)

    def do_map_delete(self, connection: int, fds: list[int], id: int, key: bytes) -> None:
        self._writable_map(id, connection, "delete").delete(key)

    def do_map_next_key(
        self, connection: int, fds: list[int], id: int, key: bytes | None
    ) -> str | None:
        return _hex(self.registry.map(id).map.get_next_key(key))

    def do_map_perf_open(self, connection: int, fds: list[int], id: int) -> dict[str, Any]:
        from ..runtime.maps import PerfEventArrayMap

        entry = self.registry.map(id)
        if not isinstance(entry.map, PerfEventArrayMap):
            raise RequestError(errno.EINVAL, f"map.perf_open: map {id} is not a perf event array")
        reader = self._perf_readers.get((connection, id))
        if reader is None:
            reader = entry.map.open_reader()
            self._perf_readers[(connection, id)] = reader
            self.registry.hold("map", id, connection)
        return {"cpus": reader.cpus}

    def do_map_perf_read(self, connection: int, fds: list[int], id: int) -> dict[str, Any]:
        reader = self._perf_readers.get((connection, id))
        if reader is None:
            raise RequestError(errno.ENOENT, f"map.perf_read: no reader of map {id}: perf_open it")
        samples = [{"cpu": cpu, "data": data.hex()} for cpu, data in reader.read()]
        return {"samples": samples, "lost": reader.lost}

    def _owned_map(self, id_: int, connection: int, op: str) -> MapEntry:
        """Map `id_`, which only the connection that made it may restrict (EPERM)."""
        entry = self.registry.map(id_)
        if entry.owner != connection:
            raise RequestError(errno.EPERM, f"map.{op}: map {id_} belongs to another client")
        return entry

    def do_map_freeze(self, connection: int, fds: list[int], id: int) -> dict[str, Any]:
        entry = self._owned_map(id, connection, "freeze")
        entry.frozen = True
        return self._map_info(entry)

    def do_map_read_only(self, connection: int, fds: list[int], id: int) -> dict[str, Any]:
        entry = self._owned_map(id, connection, "read_only")
        entry.read_only = True
        return self._map_info(entry)

    # -- links ---------------------------------------------------------------------------

    def do_link_attach(
        self,
        connection: int,
        fds: list[int],
        prog: int,
        kind: str,
        ifname: str,
        netns: str | None,
        direction: str | None,
        pass_to: str | None,
        pass_to_tap: str | None,
    ) -> dict[str, Any]:
        program = self.registry.program(prog).program
        where = {"netns": netns, "pass_to": pass_to, "pass_to_tap": pass_to_tap}
        if kind == "xdp":
            link = program.attach_xdp(ifname, **where)
        elif kind == "tc":
            link = program.attach_tc(ifname, direction=direction or "ingress", **where)
        else:
            raise RequestError(errno.EINVAL, f"link.attach: kind {kind[:20]!r} is not xdp or tc")
        return self._link_info(self.registry.add_link(link, prog, kind, connection).id)

    def _link_info(self, id_: int) -> dict[str, Any]:
        entry = self.registry.link(id_)
        counters = entry.link.counters()
        return {
            "id": entry.id,
            "prog": entry.prog_id,
            "kind": entry.kind,
            "name": entry.link.name if not entry.link.closed else None,
            "running": entry.link.running,
            "frames": counters.frames,
            "actions": {a: c.frames for a, c in counters.actions.items()},
        }

    def do_link_list(self, connection: int, fds: list[int]) -> list[dict[str, Any]]:
        return [self._link_info(id_) for id_ in sorted(self.registry.links)]

    def do_link_show(self, connection: int, fds: list[int], id: int) -> dict[str, Any]:
        return self._link_info(id)

    def do_link_detach(self, connection: int, fds: list[int], id: int) -> dict[str, Any]:
        entry = self.registry.link(id)
        info = self._link_info(id)
        for path, (kind, pinned) in list(self.registry.pins.items()):
            if kind == "link" and pinned == id:
                del self.registry.pins[path]
        entry.holders.clear()
        self.registry.collect()
        self._persist_now()
        return info

    # -- pins ------------------------------------------------------------------------------

    def do_pin_add(self, connection: int, fds: list[int], path: str, kind: str, id: int) -> None:
        self.registry.pin(path, kind, id)
        self._persist_now()

    def do_pin_get(self, connection: int, fds: list[int], path: str) -> dict[str, Any]:
        found = self.registry.pins.get(path)
        if found is None:
            raise RequestError(errno.ENOENT, f"{path}: nothing pinned there")
        kind, id_ = found
        self.registry.hold(kind, id_, connection)
        return {"kind": kind, "id": id_}

    def do_pin_remove(self, connection: int, fds: list[int], path: str) -> dict[str, Any]:
        closed = self.registry.unpin(path)
        self._persist_now()
        return {"closed": closed}

    def do_pin_list(self, connection: int, fds: list[int]) -> list[dict[str, Any]]:
        return [
            {"path": path, "kind": kind, "id": id_}
            for path, (kind, id_) in sorted(self.registry.pins.items())
        ]


def _ops() -> list[str]:
    from .requests import REQUESTS

    return list(REQUESTS)


def main(argv: list[str] | None = None) -> int:
    """Run a daemon in this process until SIGTERM, SIGINT or `daemon.stop`."""
    import argparse

    parser = argparse.ArgumentParser(prog="pybpfd", description="pybpf's execution context daemon")
    parser.add_argument("--socket", type=Path, help="socket path (default: the user's)")
    parser.add_argument("--persist", type=Path, help="keep pinned state in this directory")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between snapshots")
    parser.add_argument(
        "--verifier",
        choices=("worker", "in-process"),
        default="worker",
        help="verify in a confined worker process (default) or in the daemon",
    )
    parser.add_argument("--verifier-memory", type=int, default=DEFAULT_MEMORY, help="bytes")
    parser.add_argument("--verifier-timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds")
    args = parser.parse_args(argv)
    worker = None
    if args.verifier == "worker":
        worker = VerifierWorker(args.verifier_memory, args.verifier_timeout)
    try:
        daemon = Daemon(args.socket, args.persist, args.interval, worker=worker)
        daemon.bind()
        for problem in daemon.restore():
            print(f"pybpfd: not restored: {problem}", file=sys.stderr)
    except (OSError, RuntimeError, ValueError) as error:
        print(f"pybpfd: error: {error}", file=sys.stderr)
        return 1
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: daemon.stop())
    pid_file = daemon.socket_path.with_name(paths.PID_NAME)
    pid_file.write_text(f"{os.getpid()}\n")
    print(f"pybpfd: listening on {daemon.socket_path}", file=sys.stderr, flush=True)
    try:
        daemon.serve()
    finally:
        with daemon.registry.lock:
            daemon.registry.close_all()
        try:
            pid_file.unlink()
        except FileNotFoundError:
            pass
        if worker is not None:
            worker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
