"""`pybpf map dump OBJ NAME`: a map's contents, as `bpftool map dump` prints them.

There is no kernel holding maps between commands, so a map lives as long
as one command: `map dump` shows the contents a map has once its object is
opened (global data with its initial values, every other map empty), and
`pybpf prog run … --dump-maps` shows every map after a run. Entries print
as hex bytes, with the BTF-formatted key and value when BTF describes them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from .main import BadInput, app
from .options import PLATFORM

map_app = typer.Typer(
    name="map", help="Inspect the maps of an object file or of the daemon.", no_args_is_help=True
)
app.add_typer(map_app, name="map")


def _hex(raw: Any) -> Any:
    if isinstance(raw, list):
        return [item.hex() for item in raw]
    return raw.hex()


def typed_view(map_: Any) -> Any:
    """The map's BTF view (`btf.values.TypedMap`), or None when BTF does not describe it."""
    typed = getattr(map_, "typed", None)
    return typed() if typed is not None else None


def map_entry(view: Any, key: bytes, value: Any) -> dict[str, Any]:
    """One entry as a JSON-ready dict: `key`, `value` in hex, `formatted` when BTF can."""
    entry: dict[str, Any] = {"key": key.hex(), "value": _hex(value)}
    if view is not None:
        try:
            entry["formatted"] = {"key": view.render_key(key), "value": view.render_value(value)}
        except Exception:  # BTF that does not describe this map's bytes
            pass
    return entry


def map_entries(map_: Any, *, skip_zero: bool = False) -> list[dict[str, Any]]:
    """A map's entries as JSON-ready dicts (`map_entry`).

    `skip_zero` leaves out all-zero elements of arrays (which always exist).
    """
    view = typed_view(map_)
    skip_zero = skip_zero and map_.spec.type_name in ("array", "percpu_array")
    out = []
    for key, value in map_.items():
        if skip_zero and not any(value if isinstance(value, bytes) else b"".join(value)):
            continue
        out.append(map_entry(view, key, value))
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def map_report(map_: Any, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """One map's JSON record: name, type, sizes and entries."""
    spec = map_.spec
    return {
        "name": map_.name,
        "type": spec.type_name,
        "key_size": spec.key_size,
        "value_size": spec.value_size,
        "max_entries": spec.max_entries,
        "entries": _jsonable(entries),
    }


def print_map(report: dict[str, Any], *, err: bool = False) -> None:
    """Print one map record as text, bpftool style (to stderr with `err`)."""
    count = len(report["entries"])
    typer.echo(f"map {report['name']} ({report['type']}): {count} element(s)", err=err)
    for entry in report["entries"]:
        value = entry["value"]
        shown = " ".join(value) if isinstance(value, list) else value
        line = f"  key: {entry['key']}  value: {shown}"
        formatted = entry.get("formatted")
        if formatted is not None:
            line += f"  ({json.dumps(formatted['key'])}: {json.dumps(formatted['value'])})"
        typer.echo(line, err=err)


@map_app.command("dump")
def dump_command(
    words: list[str] = typer.Argument(
        ..., metavar="OBJ NAME | id N | pinned PATH | name NAME", help="What to dump."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    platform: str = PLATFORM,
) -> None:
    """Show map NAME of object file OBJ as it defines it (initial contents; see `prog run
    --dump-maps`), or a map the daemon holds (`id N`, `pinned PATH`, `name NAME`)."""
    from ..object import load
    from .bpftool_args import is_target

    if is_target(words):
        from .loaded import dump_loaded

        dump_loaded(words, as_json)
        return
    if len(words) != 2:
        raise BadInput("map dump takes OBJ NAME, or id N / pinned PATH / name NAME")
    obj, name = Path(words[0]), words[1]
    with load(obj, platform=platform) as loaded:
        if name not in loaded.maps:
            known = ", ".join(loaded.maps) or "none"
            raise BadInput(f"{obj}: no map named {name!r} (maps: {known})")
        map_ = loaded.maps[name]
        report = map_report(map_, map_entries(map_))
    if as_json:
        typer.echo(json.dumps(report))
    else:
        print_map(report)


def nonzero_map_reports(obj: Any) -> list[dict[str, Any]]:
    """Reports of the object's live maps with their non-zero entries (maps with none
    left out): what a replay or a live hook prints after its counters."""
    return [
        map_report(m, entries)
        for m in obj.maps.live().values()
        if (entries := map_entries(m, skip_zero=True))
    ]
