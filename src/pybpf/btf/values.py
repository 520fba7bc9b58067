"""Map keys and values as Python data, described by BTF: render bytes, parse data.

`render(spec, type_id, data)` turns the bytes of a BTF-described object into
plain Python: integers and enums as `int` (signed when BTF says so), structs
and unions as dicts of their members, arrays as lists (arrays of `char` as
`bytes`), floats as `float`, pointers as addresses. `parse` is its inverse:
it accepts what `render` returns (missing struct members are zero) as well
as raw bytes of the right size, so a caller may always fall back to bytes.

`TypedMap` is a typed view of a live map (`Map.typed()` in the Python API):
the same mapping, with keys and values rendered and parsed on the way.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, MutableMapping
from typing import Any

from ..errors import NotSupportedError
from .spec import Spec
from .types import Array, Datasec, Enum, Enum64, Float, Int, Ptr, Struct, Union, Var, Void

__all__ = ["TypedMap", "parse", "render"]

_FLOATS = {4: "<f", 8: "<d"}


def _int(data: bytes, signed: bool) -> int:
    return int.from_bytes(data, "little", signed=signed)


def _bitfield(data: bytes, bit_offset: int, bits: int, signed: bool) -> int:
    value = (int.from_bytes(data, "little") >> bit_offset) & ((1 << bits) - 1)
    if signed and bits and value >> (bits - 1):
        value -= 1 << bits
    return value


def render(spec: Spec, type_id: int, data: bytes) -> Any:
    """`data` (exactly the type's size, or more) as Python data; see the module docstring."""
    record = spec.resolve(type_id)
    if isinstance(record, Var):
        return render(spec, record.type, data)
    if isinstance(record, Datasec):  # a global-data section: its variables by name
        out: dict[str, Any] = {}
        for info in record.vars:
            var = spec.type_by_id(info.type)
            if isinstance(var, Var) and info.offset + info.size <= len(data):
                out[var.name] = render(spec, var.type, data[info.offset : info.offset + info.size])
        return out
    size = spec.size_of(type_id)
    data = bytes(data[:size])
    if isinstance(record, Int):
        if record.bits and record.bits != 8 * record.size or record.bit_offset:
            return _bitfield(data, record.bit_offset, record.bits, record.signed)
        return _int(data, record.signed)
    if isinstance(record, (Enum, Enum64)):
        return _int(data, record.signed)
    if isinstance(record, Ptr):
        return _int(data, False)
    if isinstance(record, Float) and record.size in _FLOATS:
        return struct.unpack(_FLOATS[record.size], data)[0]
    if isinstance(record, Array):
        element = spec.resolve(record.type)
        step = spec.size_of(record.type)
        if isinstance(element, Int) and step == 1 and "char" in element.name:
            return data
        return [render(spec, record.type, data[i * step :]) for i in range(record.nelems)]
    if isinstance(record, (Struct, Union)):
        out = {}
        for index, member in enumerate(record.members):
            name = member.name or f"_{index}"
            start = member.bit_offset // 8
            if member.bitfield_size:
                span = data[start : start + 8].ljust(8, b"\0")
                inner = spec.resolve(member.type)
                signed = isinstance(inner, Int) and inner.signed
                out[name] = _bitfield(span, member.bit_offset % 8, member.bitfield_size, signed)
            else:
                out[name] = render(spec, member.type, data[start:])
        return out
    return data


def parse(spec: Spec, type_id: int, value: Any) -> bytes:
    """The bytes of `value` as BTF type `type_id` (the inverse of `render`).

    Raises `ValueError` (or `TypeError`) for a value that does not fit.
    """
    size = spec.size_of(type_id)
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        record = spec.resolve(type_id)
        if isinstance(record, Array) and len(raw) < size:  # a short string for char[]
            return raw.ljust(size, b"\0")
        if len(raw) != size:
            raise ValueError(f"{len(raw)} bytes for a {size}-byte {spec.type_name(type_id)}")
        return raw
    record = spec.resolve(type_id)
    if isinstance(record, Var):
        return parse(spec, record.type, value)
    if isinstance(record, (Int, Enum, Enum64, Ptr)):
        signed = getattr(record, "signed", False)
        bits = 8 * size
        low, high = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
        if isinstance(record, Int) and record.encoding & 4:  # bool
            value = int(bool(value))
        if not isinstance(value, int) or not low <= value < high:
            raise ValueError(f"{value!r} does not fit {spec.type_name(type_id)}")
        return value.to_bytes(size, "little", signed=signed)
    if isinstance(record, Float) and record.size in _FLOATS:
        return struct.pack(_FLOATS[record.size], float(value))
    if isinstance(record, Array):
        step = spec.size_of(record.type)
        items = list(value)
        if len(items) > record.nelems:
            raise ValueError(f"{len(items)} elements for {spec.type_name(type_id)}")
        out = b"".join(parse(spec, record.type, item) for item in items)
        return out.ljust(record.nelems * step, b"\0")
    if isinstance(record, (Struct, Union)):
        if not isinstance(value, dict):
            raise TypeError(f"{spec.type_name(type_id)} takes a dict, not {type(value).__name__}")
        buf = bytearray(size)
        known = {member.name: member for member in record.members}
        for name, item in value.items():
            member = known.get(name)
            if member is None:
                raise ValueError(f"{spec.type_name(type_id)} has no member {name!r}")
            start = member.bit_offset // 8
            if member.bitfield_size:
                shift = member.bit_offset % 8
                mask = ((1 << member.bitfield_size) - 1) << shift
                width = (shift + member.bitfield_size + 7) // 8
                old = int.from_bytes(buf[start : start + width], "little")
                new = (old & ~mask) | ((int(item) << shift) & mask)
                buf[start : start + width] = new.to_bytes(width, "little")
            else:
                chunk = parse(spec, member.type, item)
                buf[start : start + len(chunk)] = chunk
        return bytes(buf)
    if isinstance(record, (Void, Datasec)):
        raise NotSupportedError(f"no value of BTF type {spec.type_name(type_id)}")
    raise NotSupportedError(f"parsing values of BTF type {spec.type_name(type_id)}")


class TypedMap(MutableMapping):
    """A typed view of a live map: keys and values as Python data, through BTF.

    Reads and writes go to the same native map; per-CPU values are lists.
    """

    def __init__(self, map_: Any, spec: Spec, key_type: int, value_type: int):
        self.map = map_
        self.btf = spec
        self.key_type = key_type
        self.value_type = value_type

    def _key(self, key: Any) -> bytes:
        if not self.key_type:  # no key type: a u32 index (global data)
            return key if isinstance(key, bytes) else int(key).to_bytes(4, "little")
        return parse(self.btf, self.key_type, key)

    def render_key(self, key: bytes) -> Any:
        """A raw key as Python data."""
        if not self.key_type:
            return int.from_bytes(key, "little")
        return render(self.btf, self.key_type, key)

    def render_value(self, raw: Any) -> Any:
        """A raw value (a list of them for per-CPU maps) as Python data."""
        return self._render_value(raw)

    def _render_value(self, raw: Any) -> Any:
        if isinstance(raw, list):
            return [render(self.btf, self.value_type, item) for item in raw]
        return render(self.btf, self.value_type, raw)

    def __getitem__(self, key: Any) -> Any:
        return self._render_value(self.map[self._key(key)])

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(value, list) and getattr(self.map, "percpu", False):
            raw: Any = [parse(self.btf, self.value_type, item) for item in value]
        else:
            raw = parse(self.btf, self.value_type, value)
        self.map[self._key(key)] = raw

    def __delitem__(self, key: Any) -> None:
        del self.map[self._key(key)]

    def __iter__(self) -> Iterator[Any]:
        for key in self.map:
            yield self.render_key(key)

    def __len__(self) -> int:
        return len(self.map)

    def __repr__(self) -> str:
        return f"<TypedMap {getattr(self.map, 'name', '?')!r}: {dict(self.items())!r}>"
