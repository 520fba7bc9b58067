"""Parse a `.BTF` section (header, type section, string section) into a `Spec`.

The layout is the kernel's (linux/btf.h, Documentation/bpf/btf.rst): a
header, then `btf_type` records of 12 bytes, each followed by kind-specific
data, then the string table. Malformed input raises `LoadError` naming the
place (`where`, type id, byte offset).
"""

from __future__ import annotations

import struct

from ..errors import LoadError
from .spec import Spec, read_string
from .types import (
    Array,
    Const,
    Datasec,
    DeclTag,
    Enum,
    Enum64,
    EnumValue,
    Float,
    Func,
    FuncProto,
    Fwd,
    Int,
    Kind,
    Member,
    Param,
    Ptr,
    Restrict,
    Struct,
    Type,
    Typedef,
    TypeTag,
    Union,
    Var,
    VarSecinfo,
    Void,
    Volatile,
)

BTF_MAGIC = 0xEB9F
MIN_HEADER_LEN = 24


def byte_order(data: bytes, where: str) -> str:
    """The `struct` byte-order prefix of BTF/BTF.ext `data`, from its magic."""
    if len(data) < 2:
        raise LoadError(f"{where}: BTF section too short ({len(data)} bytes)")
    if data[:2] == b"\x9f\xeb":
        return "<"
    if data[:2] == b"\xeb\x9f":
        return ">"
    raise LoadError(f"{where}: bad BTF magic 0x{data[0]:02x}{data[1]:02x}")


def parse_btf(data: bytes, where: str = ".BTF") -> Spec:
    """Parse the bytes of a `.BTF` section into a `Spec`."""
    order = byte_order(data, where)
    if len(data) < MIN_HEADER_LEN:
        raise LoadError(f"{where}: BTF header truncated ({len(data)} bytes)")
    _magic, version, _flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
        order + "HBBIIIII", data, 0
    )
    if version != 1:
        raise LoadError(f"{where}: unsupported BTF version {version}")
    if hdr_len < MIN_HEADER_LEN or hdr_len > len(data):
        raise LoadError(f"{where}: bad BTF header length {hdr_len}")
    types_bytes = _slice(data, hdr_len + type_off, type_len, where, "type section")
    strings = _slice(data, hdr_len + str_off, str_len, where, "string section")
    if strings and strings[0] != 0:
        raise LoadError(f"{where}: BTF string section does not start with an empty string")
    types = _parse_types(types_bytes, strings, order, where)
    spec = Spec(types, strings, where)
    _check_references(spec)
    return spec


def _slice(data: bytes, start: int, length: int, where: str, what: str) -> bytes:
    if start + length > len(data):
        raise LoadError(
            f"{where}: BTF {what} (offset {start}, {length} bytes) runs past the end "
            f"({len(data)} bytes)"
        )
    return data[start : start + length]


class _Reader:
    """A cursor over the type section that reports truncation as LoadError.

    Formats are compiled once and strings decoded once per offset: a
    kernel's BTF has over 100 000 types, most sharing member names.
    """

    def __init__(self, data: bytes, order: str, where: str):
        self.data = data
        self.order = order
        self.where = where
        self.pos = 0
        self._formats: dict[str, struct.Struct] = {}
        self._strings: dict[int, str] = {}

    def unpack(self, fmt: str) -> tuple[int, ...]:
        compiled = self._formats.get(fmt)
        if compiled is None:
            compiled = self._formats[fmt] = struct.Struct(self.order + fmt)
        if self.pos + compiled.size > len(self.data):
            raise LoadError(f"{self.where}: BTF type section truncated at byte {self.pos}")
        values = compiled.unpack_from(self.data, self.pos)
        self.pos += compiled.size
        return values

    def unpack_many(self, fmt: str, count: int) -> list[tuple[int, ...]]:
        """`count` records of `fmt` at once (members, enumerators, parameters)."""
        record = struct.Struct(self.order + fmt)
        end = self.pos + record.size * count
        if end > len(self.data):
            raise LoadError(f"{self.where}: BTF type section truncated at byte {self.pos}")
        values = list(record.iter_unpack(self.data[self.pos : end]))
        self.pos = end
        return values

    def string(self, strings: bytes, offset: int) -> str:
        text = self._strings.get(offset)
        if text is None:
            text = self._strings[offset] = read_string(strings, offset, self.where)
        return text


def _parse_types(data: bytes, strings: bytes, order: str, where: str) -> list[Type]:
    reader = _Reader(data, order, where)
    types: list[Type] = [Void()]
    while reader.pos < len(data):
        type_id = len(types)
        start = reader.pos
        name_off, info, size_or_type = reader.unpack("III")
        try:
            name = reader.string(strings, name_off)
            kind = Kind((info >> 24) & 0x1F)
        except ValueError:
            raise LoadError(
                f"{where}: invalid BTF kind {(info >> 24) & 0x1F} (type id {type_id}, byte {start})"
            ) from None
        except LoadError as exc:
            raise LoadError(f"{exc} (type id {type_id})") from None
        vlen = info & 0xFFFF
        kind_flag = bool(info >> 31)
        if kind == Kind.VOID:
            raise LoadError(f"{where}: invalid BTF kind 0 (type id {type_id}, byte {start})")
        types.append(_parse_one(reader, kind, name, vlen, kind_flag, size_or_type, strings))
    return types


def _names(reader: _Reader, strings: bytes, offset: int) -> str:
    """The name of a member, enumerator or parameter."""
    return reader.string(strings, offset)


def _parse_one(
    reader: _Reader, kind: Kind, name: str, vlen: int, kind_flag: bool, sot: int, strings: bytes
) -> Type:
    """Decode the kind-specific tail of one type; `sot` is its size-or-type word."""
    if kind == Kind.INT:
        (raw,) = reader.unpack("I")
        return Int(name, sot, (raw >> 24) & 0x0F, (raw >> 16) & 0xFF, raw & 0xFF)
    if kind == Kind.PTR:
        return Ptr(name, sot)
    if kind == Kind.ARRAY:
        elem, index, nelems = reader.unpack("III")
        return Array(name, elem, index, nelems)
    if kind in (Kind.STRUCT, Kind.UNION):
        members = []
        for m_name, m_type, m_off in reader.unpack_many("III", vlen):
            # With kind_flag the offset word packs the bitfield size in its top byte.
            bits, offset = (m_off >> 24, m_off & 0xFFFFFF) if kind_flag else (0, m_off)
            members.append(Member(_names(reader, strings, m_name), m_type, offset, bits))
        cls = Struct if kind == Kind.STRUCT else Union
        return cls(name, sot, tuple(members))
    if kind == Kind.ENUM:
        values = [
            EnumValue(_names(reader, strings, v_name), value)
            for v_name, value in reader.unpack_many("Ii", vlen)
        ]
        return Enum(name, sot, tuple(values), kind_flag)
    if kind == Kind.ENUM64:
        values = []
        for _ in range(vlen):
            v_name, lo, hi = reader.unpack("III")
            value = (hi << 32) | lo
            if kind_flag and value >> 63:
                value -= 1 << 64
            values.append(EnumValue(_names(reader, strings, v_name), value))
        return Enum64(name, sot, tuple(values), kind_flag)
    if kind == Kind.FWD:
        return Fwd(name, kind_flag)
    if kind == Kind.FUNC_PROTO:
        params = [
            Param(_names(reader, strings, p_name), p_type)
            for p_name, p_type in reader.unpack_many("II", vlen)
        ]
        return FuncProto(name, sot, tuple(params))
    if kind == Kind.VAR:
        (linkage,) = reader.unpack("I")
        return Var(name, sot, linkage)
    if kind == Kind.DATASEC:
        secinfo = tuple(VarSecinfo(*reader.unpack("III")) for _ in range(vlen))
        return Datasec(name, sot, secinfo)
    if kind == Kind.FLOAT:
        return Float(name, sot)
    if kind == Kind.DECL_TAG:
        (component,) = reader.unpack("i")
        return DeclTag(name, sot, component)
    if kind == Kind.FUNC:
        return Func(name, sot, vlen)  # a FUNC's vlen holds its linkage
    simple = {
        Kind.TYPEDEF: Typedef,
        Kind.VOLATILE: Volatile,
        Kind.CONST: Const,
        Kind.RESTRICT: Restrict,
        Kind.TYPE_TAG: TypeTag,
    }
    return simple[kind](name, sot)


def _check_references(spec: Spec) -> None:
    """Every type id a record names must exist (so later lookups cannot fail)."""
    count = len(spec.types)
    for type_id, record in spec:
        refs: list[int] = []
        if isinstance(record, (Struct, Union)):
            refs = [m.type for m in record.members]
        elif isinstance(record, FuncProto):
            refs = [record.type] + [p.type for p in record.params]
        elif isinstance(record, Array):
            refs = [record.type, record.index_type]
        elif isinstance(record, Datasec):
            refs = [v.type for v in record.vars]
        elif hasattr(record, "type"):
            refs = [record.type]
        for ref in refs:
            if not 0 <= ref < count:
                raise LoadError(
                    f"{spec.where}: BTF type id {type_id} ({record.kind.name}) refers to "
                    f"missing type {ref}"
                )
