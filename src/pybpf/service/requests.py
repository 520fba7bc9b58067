"""Every request the daemon takes, with the fields it needs: checked before anything runs.

`REQUESTS` maps an operation name to its fields, each with a kind:

- `id`: an integer id, 1 … 2**31 - 1 (the kernel's idr range);
- `u32`, `u64`: integers in range; `int`: any integer JSON gives;
- `str`: a string of at most 256 characters without NUL;
- `hex`: bytes as a hex string (at most `MAX_HEX_BYTES` bytes);
- `path`: an absolute file or pin path (see `check_path`);
- `bool`.

A field name ending in `?` is optional (absent → None). `validate` turns
a request into keyword arguments or raises `RequestError` naming the
field: the handler is never called with a bad request.
"""

from __future__ import annotations

import errno
from typing import Any

from ..pins import normal_path

MAX_HEX_BYTES = 1 << 18
"""Largest binary field (a packet, a value), in bytes."""
MAX_STR = 256


class RequestError(Exception):
    """A request the daemon refuses (errno and a one-line reason, sent back to the client)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.errno = code


REQUESTS: dict[str, dict[str, str]] = {
    "daemon.status": {},
    "daemon.stop": {},
    "daemon.sync": {},
    "obj.load": {
        "path": "path",
        "engine?": "str",
        "prog_type?": "str",
        "verify?": "bool",
    },
    "obj.list": {},
    "obj.close": {"id": "id"},
    "prog.list": {},
    "prog.show": {"id": "id"},
    "prog.dump": {"id": "id", "linum?": "bool"},
    "prog.run": {"id": "id", "data?": "hex", "ctx?": "hex", "repeat?": "u32"},
    "map.list": {},
    "map.show": {"id": "id"},
    "map.create": {
        "name": "str",
        "type": "str",
        "key_size": "u32",
        "value_size": "u32",
        "max_entries": "u32",
        "flags?": "u32",
    },
    "map.fd": {"id": "id"},
    "map.lookup": {"id": "id", "key": "hex"},
    "map.update": {"id": "id", "key": "hex", "value": "hex", "flags?": "u64"},
    "map.delete": {"id": "id", "key": "hex"},
    "map.next_key": {"id": "id", "key?": "hex"},
    "map.freeze": {"id": "id"},
    "map.perf_open": {"id": "id"},
    "map.perf_read": {"id": "id"},
    "map.read_only": {"id": "id"},
    "link.attach": {
        "prog": "id",
        "kind": "str",
        "ifname": "str",
        "netns?": "path",
        "direction?": "str",
        "pass_to?": "str",
        "pass_to_tap?": "str",
    },
    "link.list": {},
    "link.show": {"id": "id"},
    "link.detach": {"id": "id"},
    "pin.add": {"path": "path", "kind": "str", "id": "id"},
    "pin.get": {"path": "path"},
    "pin.remove": {"path": "path"},
    "pin.list": {},
}


def check_path(value: str, field: str) -> str:
    """An absolute path without NUL or `..`, normalised (the pin namespace's rule)."""
    try:
        return normal_path(value)
    except ValueError as error:
        raise RequestError(errno.EINVAL, f"{field}: {error}") from None


def _convert(kind: str, value: Any, field: str) -> Any:
    if kind == "bool":
        if not isinstance(value, bool):
            raise RequestError(errno.EINVAL, f"{field}: expected true or false")
        return value
    if kind in ("id", "u32", "u64", "int"):
        if not isinstance(value, int) or isinstance(value, bool):
            raise RequestError(errno.EINVAL, f"{field}: expected an integer")
        low, high = {
            "id": (1, 2**31 - 1),
            "u32": (0, 2**32 - 1),
            "u64": (0, 2**64 - 1),
            "int": (-(2**63), 2**64 - 1),
        }[kind]
        if not low <= value <= high:
            raise RequestError(
                errno.EINVAL if kind != "id" else errno.ENOENT, f"{field}: {value} is out of range"
            )
        return value
    if not isinstance(value, str):
        raise RequestError(errno.EINVAL, f"{field}: expected a string")
    if kind == "str":
        if len(value) > MAX_STR or "\0" in value:
            raise RequestError(errno.EINVAL, f"{field}: string too long or holds NUL")
        return value
    if kind == "path":
        return check_path(value, field)
    if kind == "hex":
        if len(value) > 2 * MAX_HEX_BYTES:
            raise RequestError(errno.E2BIG, f"{field}: over {MAX_HEX_BYTES} bytes")
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise RequestError(errno.EINVAL, f"{field}: not a hex string") from None
    raise AssertionError(kind)


def validate(message: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(operation, keyword arguments) of a request, or `RequestError`."""
    op = message.get("op")
    if not isinstance(op, str) or op not in REQUESTS:
        raise RequestError(errno.EOPNOTSUPP, f"unknown request {str(op)[:40]!r}")
    fields = REQUESTS[op]
    known = {name.rstrip("?") for name in fields} | {"op", "seq", "fds"}
    extra = sorted(set(message) - known)
    if extra:
        raise RequestError(errno.EINVAL, f"{op}: unknown field {extra[0][:40]!r}")
    arguments: dict[str, Any] = {}
    for name, kind in fields.items():
        key = name.rstrip("?")
        if key not in message or message[key] is None:
            if not name.endswith("?"):
                raise RequestError(errno.EINVAL, f"{op}: missing field {key!r}")
            arguments[key] = None
            continue
        arguments[key] = _convert(kind, message[key], f"{op}.{key}")
    return op, arguments
