"""bpftool's commands on what the daemon holds: `prog list|show|load|loadall|pin|unload`,
`map list|show|dump|lookup|update|delete|getnext|create|pin`.

They take their arguments as bpftool does (`map lookup id 3 key hex 01 00
00 00`, `map create /sys/fs/bpf/m type hash key 4 value 8 entries 64 name
m`) and all print JSON with `--json`. They talk to this user's daemon
(`pybpf daemon start`); map contents are read and written through the
map's shared region, not a request per entry. `pybpf map dump` with an
object file instead of `id`/`pinned`/`name` keeps its offline meaning
(`cli/map.py`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from .bpftool_args import (
    UPDATE_FLAGS,
    Target,
    no_more,
    take_bytes,
    take_keyword,
    take_pairs,
    take_target,
)
from .main import BadInput
from .map import map_app, map_entries, map_report, print_map
from .prog import prog_app

WORDS = typer.Argument(None, metavar="ARGS...", help="bpftool-style arguments.")
JSON = typer.Option(False, "--json", help="Print JSON.")
EXTRA = {"ignore_unknown_options": True}


def _client() -> Any:
    from ..service.client import connect

    return connect()


def _emit(data: Any, as_json: bool, text: Any) -> None:
    if as_json:
        typer.echo(json.dumps(data))
    else:
        text(data)


def _resolve(client: Any, target: Target, kind: str) -> list[int]:
    """The ids `target` means (`name` may match several)."""
    if target.how == "id":
        return [int(target.what)]
    if target.how == "pinned":
        found = client.call("pin.get", path=str(target.what))
        if found["kind"] != kind:
            raise BadInput(f"{target.what}: pinned {found['kind']}, not a {kind}")
        return [found["id"]]
    listing = client.programs() if kind == "prog" else client.maps()
    ids = [item["id"] for item in listing if item["name"] == target.what]
    if not ids:
        raise BadInput(f"no {kind} named {target.what!r}")
    return ids


def _one(client: Any, words: list[str], kind: str) -> tuple[int, list[str]]:
    target, rest = take_target(words, kind)
    ids = _resolve(client, target, kind)
    if len(ids) > 1:
        raise BadInput(f"{len(ids)} {kind}s named {target.what!r}: give an id")
    return ids[0], rest


# -- programs ----------------------------------------------------------------------------


def _print_progs(progs: list[dict[str, Any]]) -> None:
    for p in progs:
        typer.echo(f"{p['id']}: {p['type']}  name {p['name']}  section {p['section']}")
        typer.echo(f"\tobject {p['object']}  insns {p['insns']}")


@prog_app.command("list", context_settings=EXTRA)
def prog_list(as_json: bool = JSON) -> None:
    """Every program the daemon holds (bpftool prog list)."""
    with _client() as client:
        progs = client.programs()
    _emit(progs, as_json, _print_progs)


@prog_app.command("show", context_settings=EXTRA)
def prog_show(words: list[str] = WORDS, as_json: bool = JSON) -> None:
    """Programs by `id N`, `pinned PATH` or `name NAME` (all without arguments)."""
    words = words or []
    with _client() as client:
        if not words:
            progs = client.programs()
        else:
            target, rest = take_target(words, "program")
            no_more(rest)
            progs = [client.call("prog.show", id=i) for i in _resolve(client, target, "prog")]
    _emit(progs, as_json, _print_progs)


def _load(obj: Path, prog_type: str | None) -> tuple[Any, Any]:
    client = _client()
    try:
        return client, client.load(obj, prog_type=prog_type)
    except BaseException:
        client.close()
        raise


@prog_app.command("load", context_settings=EXTRA)
def prog_load(
    obj: Path = typer.Argument(..., metavar="OBJ", help="The eBPF object file."),
    path: str = typer.Argument(..., metavar="PATH", help="Pin the first program here."),
    words: list[str] = WORDS,
    as_json: bool = JSON,
) -> None:
    """Load OBJ in the daemon and pin its first program at PATH (`type TYPE` optional)."""
    options = take_pairs(words or [], {"type": str})
    client, loaded = _load(obj, options.get("type"))  # type: ignore[arg-type]
    with client:
        first = next(iter(loaded.programs.values()), None)
        if first is None:
            raise BadInput(f"{obj}: no program to pin")
        first.pin(path)
        info = first.info
    _emit(info, as_json, lambda p: typer.echo(f"loaded {p['name']} as id {p['id']}, pinned {path}"))


@prog_app.command("loadall", context_settings=EXTRA)
def prog_loadall(
    obj: Path = typer.Argument(..., metavar="OBJ", help="The eBPF object file."),
    directory: str = typer.Argument(..., metavar="DIR", help="Pin each program as DIR/NAME."),
    words: list[str] = WORDS,
    as_json: bool = JSON,
) -> None:
    """Load OBJ and pin every program under DIR (`pinmaps MAPDIR` pins its maps too)."""
    options = take_pairs(words or [], {"type": str, "pinmaps": str})
    client, loaded = _load(obj, options.get("type"))  # type: ignore[arg-type]
    pinned: dict[str, str] = {}
    with client:
        for name, program in loaded.programs.items():
            pinned[name] = f"{directory.rstrip('/')}/{name}"
            program.pin(pinned[name])
        if "pinmaps" in options:
            for name, id_ in loaded._map_ids.items():
                where = f"{str(options['pinmaps']).rstrip('/')}/{name}"
                client.call("pin.add", path=where, kind="map", id=id_)
                pinned[name] = where
    _emit(pinned, as_json, lambda d: [typer.echo(f"pinned {k} at {v}") for k, v in d.items()])


@prog_app.command("pin", context_settings=EXTRA)
def prog_pin(words: list[str] = WORDS) -> None:
    """Pin a loaded program: `prog pin id N PATH`."""
    with _client() as client:
        id_, rest = _one(client, words or [], "prog")
        if len(rest) != 1:
            raise BadInput("expected the pin PATH after the program")
        client.call("pin.add", path=rest[0], kind="prog", id=id_)


@prog_app.command("unload", context_settings=EXTRA)
def prog_unload(words: list[str] = WORDS) -> None:
    """Unpin a program (`pinned PATH`): it goes once nothing else holds it."""
    target, rest = take_target(words or [], "program")
    no_more(rest)
    if target.how != "pinned":
        raise BadInput("prog unload takes `pinned PATH`")
    with _client() as client:
        client.unpin(str(target.what))


# -- maps ------------------------------------------------------------------------------------


def _print_maps(maps: list[dict[str, Any]]) -> None:
    for m in maps:
        typer.echo(f"{m['id']}: {m['type']}  name {m['name']}  flags 0x{m['flags']:x}")
        typer.echo(
            f"\tkey {m['key_size']}B  value {m['value_size']}B  max_entries {m['max_entries']}"
            f"  memlock {m['bytes']}B"
        )


@map_app.command("list", context_settings=EXTRA)
def map_list(as_json: bool = JSON) -> None:
    """Every map the daemon holds (bpftool map list)."""
    with _client() as client:
        maps = client.maps()
    _emit(maps, as_json, _print_maps)


@map_app.command("show", context_settings=EXTRA)
def map_show(words: list[str] = WORDS, as_json: bool = JSON) -> None:
    """Maps by `id N`, `pinned PATH` or `name NAME` (all without arguments)."""
    words = words or []
    with _client() as client:
        if not words:
            maps = client.maps()
        else:
            target, rest = take_target(words, "map")
            no_more(rest)
            maps = [client.call("map.show", id=i) for i in _resolve(client, target, "map")]
    _emit(maps, as_json, _print_maps)


def dump_loaded(words: list[str], as_json: bool) -> None:
    """`map dump id N|pinned PATH|name NAME`: the map's entries, read from its shared region."""
    with _client() as client:
        id_, rest = _one(client, words, "map")
        no_more(rest)
        map_ = client.map(id_)
        report = map_report_of(map_, map_entries(map_))
    _emit(report, as_json, print_map)


def map_report_of(map_: Any, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """`map_report` for a mapped map or a `RemoteMap` (which has no spec)."""
    if hasattr(map_, "spec"):
        return map_report(map_, entries)
    info = map_.info
    return {
        "name": info["name"],
        "type": info["type"],
        "key_size": info["key_size"],
        "value_size": info["value_size"],
        "max_entries": info["max_entries"],
        "entries": entries,
    }


def _map_and_key(client: Any, words: list[str]) -> tuple[Any, bytes, list[str]]:
    id_, rest = _one(client, words, "map")
    map_ = client.map(id_)
    size = map_.spec.key_size if hasattr(map_, "spec") else map_.info["key_size"]
    key, rest = take_bytes(take_keyword(rest, "key"), "key", size)
    return map_, key, rest


def _value_text(value: Any) -> Any:
    if isinstance(value, list):
        return [v.hex() for v in value]
    return value.hex() if isinstance(value, bytes) else value


@map_app.command("lookup", context_settings=EXTRA)
def map_lookup(words: list[str] = WORDS, as_json: bool = JSON) -> None:
    """`map lookup TARGET key [hex] BYTES`: the value (exit 1 when the key is absent)."""
    from ..errors import MapError

    with _client() as client:
        map_, key, rest = _map_and_key(client, words or [])
        no_more(rest)
        value = map_.lookup(key)
    if value is None:
        raise MapError(2, "lookup", map_.name, f"key {key.hex()} not found")
    out = {"key": key.hex(), "value": _value_text(value)}
    _emit(out, as_json, lambda d: typer.echo(f"key: {d['key']}  value: {d['value']}"))


@map_app.command("update", context_settings=EXTRA)
def map_update(words: list[str] = WORDS) -> None:
    """`map update TARGET key [hex] BYTES value [hex] BYTES [any|noexist|exist]`."""
    with _client() as client:
        map_, key, rest = _map_and_key(client, words or [])
        size = map_.spec.value_size if hasattr(map_, "spec") else map_.info["value_size"]
        value, rest = take_bytes(take_keyword(rest, "value"), "value", size)
        flags = 0
        if rest and rest[0] in UPDATE_FLAGS:
            flags, rest = UPDATE_FLAGS[rest[0]], rest[1:]
        no_more(rest)
        map_.update(key, value, flags)


@map_app.command("delete", context_settings=EXTRA)
def map_delete(words: list[str] = WORDS) -> None:
    """`map delete TARGET key [hex] BYTES`."""
    with _client() as client:
        map_, key, rest = _map_and_key(client, words or [])
        no_more(rest)
        map_.delete(key)


@map_app.command("getnext", context_settings=EXTRA)
def map_getnext(words: list[str] = WORDS, as_json: bool = JSON) -> None:
    """`map getnext TARGET [key [hex] BYTES]`: the key after it (the first without one)."""
    with _client() as client:
        id_, rest = _one(client, words or [], "map")
        map_ = client.map(id_)
        key = None
        if rest:
            size = map_.spec.key_size if hasattr(map_, "spec") else map_.info["key_size"]
            key, rest = take_bytes(take_keyword(rest, "key"), "key", size)
        no_more(rest)
        following = map_.get_next_key(key)
    out = {"key": None if key is None else key.hex(), "next_key": _hex_or_none(following)}
    _emit(out, as_json, lambda d: typer.echo(f"next key: {d['next_key']}"))


def _hex_or_none(data: bytes | None) -> str | None:
    return None if data is None else data.hex()


@map_app.command("create", context_settings=EXTRA)
def map_create(
    path: str = typer.Argument(..., metavar="PATH", help="Pin the new map here."),
    words: list[str] = WORDS,
    as_json: bool = JSON,
) -> None:
    """`map create PATH type TYPE key K value V entries N name NAME [flags F]`."""
    options = take_pairs(
        words or [],
        {"type": str, "key": int, "value": int, "entries": int, "name": str, "flags": int},
    )
    missing = [w for w in ("type", "key", "value", "entries", "name") if w not in options]
    if missing:
        raise BadInput(f"map create: missing `{missing[0]}`")
    with _client() as client:
        info = client._map_call(
            "create",
            str(options["name"]),
            name=options["name"],
            type=options["type"],
            key_size=options["key"],
            value_size=options["value"],
            max_entries=options["entries"],
            flags=options.get("flags", 0),
        )
        client.call("pin.add", path=path, kind="map", id=info["id"])
    _emit(info, as_json, lambda m: typer.echo(f"created map {m['name']} as id {m['id']}"))


@map_app.command("pin", context_settings=EXTRA)
def map_pin(words: list[str] = WORDS) -> None:
    """Pin a map: `map pin id N PATH`."""
    with _client() as client:
        id_, rest = _one(client, words or [], "map")
        if len(rest) != 1:
            raise BadInput("expected the pin PATH after the map")
        client.call("pin.add", path=rest[0], kind="map", id=id_)
