"""bpftool's commands on what the daemon holds: `prog list|show|load|loadall|pin|unload|dump|run`,
`map list|show|dump|lookup|update|delete|getnext|create|pin|push|pop|peek|event_pipe`,
`link list|show|detach|pin`, `net attach xdp|tc PROG dev NAME`.

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
from .main import BadInput, app
from .map import map_app, map_entries, map_entry, map_report, print_map, typed_view
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


def _listing(kind: str, words: list[str]) -> list[dict[str, Any]]:
    """Every program or map (`kind` "prog" or "map"), or those `words` name."""
    with _client() as client:
        if not words:
            return client.programs() if kind == "prog" else client.maps()
        target, rest = take_target(words, kind)
        no_more(rest)
        return [client.call(f"{kind}.show", id=i) for i in _resolve(client, target, kind)]


@prog_app.command("list", context_settings=EXTRA)
def prog_list(as_json: bool = JSON) -> None:
    """Every program the daemon holds (bpftool prog list)."""
    _emit(_listing("prog", []), as_json, _print_progs)


@prog_app.command("show", context_settings=EXTRA)
def prog_show(words: list[str] = WORDS, as_json: bool = JSON) -> None:
    """Programs by `id N`, `pinned PATH` or `name NAME` (all without arguments)."""
    _emit(_listing("prog", words or []), as_json, _print_progs)


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


@prog_app.command("dump", context_settings=EXTRA)
def prog_dump(
    kind: str = typer.Argument(..., metavar="xlated", help="What to dump: xlated."),
    words: list[str] = WORDS,
    as_json: bool = JSON,
) -> None:
    """`prog dump xlated TARGET [linum]`: the program's instructions with its C source lines."""
    if kind != "xlated":
        raise BadInput(f"prog dump {kind!r}: only `xlated` is known (there is no jited image)")
    with _client() as client:
        id_, rest = _one(client, words or [], "prog")
        linum = rest == ["linum"]
        if rest and not linum:
            raise BadInput(f"unexpected argument {rest[0]!r}")
        dump = client.call("prog.dump", id=id_, linum=linum)
    _emit(dump, as_json, lambda d: typer.echo("\n".join(d["lines"])))


def run_loaded(words: list[str], as_json: bool) -> None:
    """`prog run TARGET data_in FILE [data_out FILE] [ctx_in FILE] [ctx_out FILE] [repeat N]`,
    as bpftool: a test run of a program the daemon holds."""
    with _client() as client:
        id_, rest = _one(client, words, "prog")
        options = take_pairs(
            rest, {"data_in": str, "data_out": str, "ctx_in": str, "ctx_out": str, "repeat": int}
        )
        data = Path(str(options["data_in"])).read_bytes() if "data_in" in options else b""
        ctx = Path(str(options["ctx_in"])).read_bytes() if "ctx_in" in options else None
        result = client.program(id_).test_run(data, ctx, int(options.get("repeat", 1)))
    for name, value in (("data_out", result.data_out), ("ctx_out", result.ctx_out)):
        if name in options and value is not None:
            Path(str(options[name])).write_bytes(value)
    out = {"retval": result.retval, "duration": result.duration}
    _emit(
        out,
        as_json,
        lambda d: typer.echo(f"Return value: {d['retval']}, duration (average): {d['duration']}ns"),
    )


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
    _emit(_listing("map", []), as_json, _print_maps)


@map_app.command("show", context_settings=EXTRA)
def map_show(words: list[str] = WORDS, as_json: bool = JSON) -> None:
    """Maps by `id N`, `pinned PATH` or `name NAME` (all without arguments)."""
    _emit(_listing("map", words or []), as_json, _print_maps)


def dump_loaded(words: list[str], as_json: bool) -> None:
    """`map dump id N|pinned PATH|name NAME`: the map's entries, read from its shared region."""
    with _client() as client:
        id_, rest = _one(client, words, "map")
        no_more(rest)
        map_ = client.map(id_)
        report = map_report(map_, map_entries(map_))
    _emit(report, as_json, print_map)


def _map_and_key(client: Any, words: list[str]) -> tuple[Any, bytes, list[str]]:
    id_, rest = _one(client, words, "map")
    map_ = client.map(id_)
    key, rest = take_bytes(take_keyword(rest, "key"), "key", map_.spec.key_size)
    return map_, key, rest


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
    out = map_entry(typed_view(map_), key, value)
    _emit(out, as_json, _print_entry)


def _print_entry(entry: dict[str, Any]) -> None:
    value = entry["value"]
    line = f"key: {entry['key']}  value: {' '.join(value) if isinstance(value, list) else value}"
    formatted = entry.get("formatted")
    if formatted is not None:
        line += f"  ({json.dumps(formatted['key'])}: {json.dumps(formatted['value'])})"
    typer.echo(line)


@map_app.command("update", context_settings=EXTRA)
def map_update(words: list[str] = WORDS) -> None:
    """`map update TARGET key [hex] BYTES value [hex] BYTES [any|noexist|exist]`."""
    with _client() as client:
        map_, key, rest = _map_and_key(client, words or [])
        value, rest = _value_words(map_, rest)
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
            key, rest = take_bytes(take_keyword(rest, "key"), "key", map_.spec.key_size)
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


def _value_words(map_: Any, rest: list[str]) -> tuple[bytes, list[str]]:
    return take_bytes(take_keyword(rest, "value"), "value", map_.spec.value_size)


@map_app.command("push", context_settings=EXTRA)
def map_push(words: list[str] = WORDS) -> None:
    """`map push TARGET value [hex] BYTES`: onto a queue or stack (a bloom filter adds it)."""
    with _client() as client:
        id_, rest = _one(client, words or [], "map")
        map_ = client.map(id_)
        value, rest = _value_words(map_, rest)
        no_more(rest)
        map_.push(value)


def _take_value(op: str, words: list[str], as_json: bool) -> None:
    with _client() as client:
        id_, rest = _one(client, words, "map")
        no_more(rest)
        map_ = client.map(id_)
        value = map_.pop() if op == "pop" else map_.peek()
    _emit({"value": value.hex()}, as_json, lambda d: typer.echo(f"value: {d['value']}"))


@map_app.command("pop", context_settings=EXTRA)
def map_pop(words: list[str] = WORDS, as_json: bool = JSON) -> None:
    """`map pop TARGET`: take the next value of a queue or stack (exit 1 when empty)."""
    _take_value("pop", words or [], as_json)


@map_app.command("peek", context_settings=EXTRA)
def map_peek(words: list[str] = WORDS, as_json: bool = JSON) -> None:
    """`map peek TARGET`: the next value of a queue or stack, left in place."""
    _take_value("peek", words or [], as_json)


@map_app.command("event_pipe", context_settings=EXTRA)
def map_event_pipe(
    words: list[str] = WORDS,
    count: int = typer.Option(0, "--count", min=0, help="Stop after N records (0: never)."),
    timeout: float = typer.Option(0, "--timeout", min=0, help="Stop after S seconds (0: never)."),
    as_json: bool = JSON,
) -> None:
    """`map event_pipe TARGET`: print a ring buffer's records (consumed from the map's
    shared memory with the kernel's positions) or a perf event array's samples (through a
    reader in the daemon) as they come; Ctrl-C ends."""
    import time

    with _client() as client:
        id_, rest = _one(client, words or [], "map")
        no_more(rest)
        events = client.map(id_)
        seen = 0
        deadline = time.monotonic() + timeout if timeout else None

        def show(record: bytes, cpu: int | None = None) -> int | None:
            nonlocal seen
            seen += 1
            if as_json:
                typer.echo(json.dumps({"data": record.hex(), "size": len(record), "cpu": cpu}))
            else:
                where = "" if cpu is None else f"cpu {cpu}: "
                typer.echo(f"{where}record of {len(record)} bytes: {record.hex(' ')}")
            return -1 if count and seen >= count else None

        def left() -> float | None:
            return None if deadline is None else deadline - time.monotonic()

        if hasattr(events, "consume"):  # a ring buffer, read from its shared region
            while not (count and seen >= count) and (left() is None or left() > 0):
                remaining = left()
                wait = 100 if remaining is None else max(1, min(100, int(remaining * 1000)))
                events.poll(show, wait)
        elif events.spec.type_name == "perf_event_array":
            client.call("map.perf_open", id=id_)  # a reader on every CPU, in the daemon
            while not (count and seen >= count) and (left() is None or left() > 0):
                batch = client.call("map.perf_read", id=id_)["samples"]
                for sample in batch:
                    if show(bytes.fromhex(sample["data"]), sample["cpu"]) == -1:
                        break
                if not batch:
                    time.sleep(0.05)
        else:
            raise BadInput(f"map {id_} is not a ring buffer or a perf event array")


@map_app.command("pin", context_settings=EXTRA)
def map_pin(words: list[str] = WORDS) -> None:
    """Pin a map: `map pin id N PATH`."""
    with _client() as client:
        id_, rest = _one(client, words or [], "map")
        if len(rest) != 1:
            raise BadInput("expected the pin PATH after the map")
        client.call("pin.add", path=rest[0], kind="map", id=id_)


# -- links -----------------------------------------------------------------------------------

link_app = typer.Typer(
    name="link", help="Links (attached programs) the daemon holds.", no_args_is_help=True
)
app.add_typer(link_app, name="link")
net_app = typer.Typer(name="net", help="Attach programs to interfaces, in the daemon.")
app.add_typer(net_app, name="net")


def _print_links(links: list[dict[str, Any]]) -> None:
    for link in links:
        state = "running" if link["running"] else "stopped"
        typer.echo(f"{link['id']}: {link['kind']}  prog {link['prog']}  {link['name']}  {state}")
        actions = "  ".join(f"{a} {n}" for a, n in link["actions"].items() if n)
        typer.echo(f"\tframes {link['frames']}" + (f"  ({actions})" if actions else ""))


def _link_id(client: Any, words: list[str]) -> tuple[int, list[str]]:
    target, rest = take_target(words, "link")
    if target.how == "name":
        raise BadInput("links have no names: give `id N` or `pinned PATH`")
    return _resolve(client, target, "link")[0], rest


@link_app.command("list", context_settings=EXTRA)
def link_list(as_json: bool = JSON) -> None:
    """Every link (bpftool link list)."""
    with _client() as client:
        links = client.links()
    _emit(links, as_json, _print_links)


@link_app.command("show", context_settings=EXTRA)
def link_show(words: list[str] = WORDS, as_json: bool = JSON) -> None:
    """Links by `id N` or `pinned PATH` (all without arguments)."""
    with _client() as client:
        if not words:
            links = client.links()
        else:
            id_, rest = _link_id(client, words)
            no_more(rest)
            links = [client.call("link.show", id=id_)]
    _emit(links, as_json, _print_links)


@link_app.command("detach", context_settings=EXTRA)
def link_detach(words: list[str] = WORDS, as_json: bool = JSON) -> None:
    """Detach a link (`id N` or `pinned PATH`); its pins go with it."""
    with _client() as client:
        id_, rest = _link_id(client, words or [])
        no_more(rest)
        info = client.call("link.detach", id=id_)
    _emit(
        info, as_json, lambda d: typer.echo(f"detached link {d['id']} after {d['frames']} frames")
    )


@link_app.command("pin", context_settings=EXTRA)
def link_pin(words: list[str] = WORDS) -> None:
    """Pin a link: `link pin id N PATH`."""
    with _client() as client:
        id_, rest = _link_id(client, words or [])
        if len(rest) != 1:
            raise BadInput("expected the pin PATH after the link")
        client.call("pin.add", path=rest[0], kind="link", id=id_)


@net_app.command("attach", context_settings=EXTRA)
def net_attach(
    kind: str = typer.Argument(..., metavar="xdp|tc", help="The hook."),
    words: list[str] = WORDS,
    as_json: bool = JSON,
) -> None:
    """`net attach xdp|tc PROG dev NAME pin PATH [netns PATH] [direction ingress|egress]
    [pass_to NAME]`: attach in the daemon; the pin keeps the link (`link detach` ends it)."""
    if kind not in ("xdp", "tc"):
        raise BadInput(f"net attach {kind!r}: expected xdp or tc")
    with _client() as client:
        prog, rest = _one(client, words or [], "prog")
        options = take_pairs(
            rest, {"dev": str, "netns": str, "direction": str, "pin": str, "pass_to": str}
        )
        if "dev" not in options:
            raise BadInput("net attach: missing `dev NAME`")
        if "pin" not in options:
            # The link is this command's until pinned: it would end with the command.
            raise BadInput("net attach: give `pin PATH` so that the link outlives this command")
        info = client.call(
            "link.attach",
            prog=prog,
            kind=kind,
            ifname=options["dev"],
            netns=options.get("netns"),
            direction=options.get("direction"),
            pass_to=options.get("pass_to"),
        )
        client.call("pin.add", path=str(options["pin"]), kind="link", id=info["id"])
    _emit(info, as_json, lambda d: typer.echo(f"attached as link {d['id']} ({d['name']})"))
