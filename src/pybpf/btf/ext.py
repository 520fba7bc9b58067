"""Parse a `.BTF.ext` section: func_info, line_info and CO-RE relocations.

Each of the three parts is `u32 record_size` followed by, per ELF section,
`{u32 sec_name_off; u32 num_info; record[num_info]}`. Record offsets
(`insn_off`) are byte offsets into the ELF section in an object file; this
module turns them into instruction slots (`pc`). Names (files, source lines,
access strings, section names) are offsets into the `.BTF` string table, so
parsing needs the parsed `Spec`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

from ..errors import LoadError
from .parse import byte_order
from .spec import Spec

INSN_SIZE = 8
MIN_EXT_HEADER_LEN = 24
CORE_EXT_HEADER_LEN = 32


class CoreReloKind(IntEnum):
    """`enum bpf_core_relo_kind` (linux/bpf.h)."""

    FIELD_BYTE_OFFSET = 0
    FIELD_BYTE_SIZE = 1
    FIELD_EXISTS = 2
    FIELD_SIGNED = 3
    FIELD_LSHIFT_U64 = 4
    FIELD_RSHIFT_U64 = 5
    TYPE_ID_LOCAL = 6
    TYPE_ID_TARGET = 7
    TYPE_EXISTS = 8
    TYPE_SIZE = 9
    ENUMVAL_EXISTS = 10
    ENUMVAL_VALUE = 11
    TYPE_MATCHES = 12


@dataclass(frozen=True, slots=True)
class FuncInfo:
    """The BTF `Func` type (`type_id`) of the function starting at `pc`."""

    pc: int
    type_id: int


@dataclass(frozen=True, slots=True)
class LineInfo:
    """The source position of the instruction at `pc`.

    `line` is the text of the source line as stored in BTF (empty when the
    compiler left it out); `line_number` and `column` count from 1.
    """

    pc: int
    file_name: str
    line: str
    line_number: int
    column: int


@dataclass(frozen=True, slots=True)
class CoreRelocation:
    """A CO-RE relocation of the instruction at `pc` (`struct bpf_core_relo`)."""

    pc: int
    type_id: int
    access: str
    kind: CoreReloKind | int

    @property
    def kind_name(self) -> str:
        """The relocation kind in lower case (`field_byte_offset`, …)."""
        kind = self.kind
        return kind.name.lower() if isinstance(kind, CoreReloKind) else f"kind_{kind}"


@dataclass(frozen=True, slots=True)
class ExtInfo:
    """The contents of `.BTF.ext`, keyed by ELF section name."""

    func_infos: dict[str, tuple[FuncInfo, ...]] = field(default_factory=dict)
    line_infos: dict[str, tuple[LineInfo, ...]] = field(default_factory=dict)
    core_relos: dict[str, tuple[CoreRelocation, ...]] = field(default_factory=dict)


def parse_btf_ext(data: bytes, spec: Spec, where: str = ".BTF.ext") -> ExtInfo:
    """Parse the bytes of a `.BTF.ext` section, naming strings through `spec`."""
    order = byte_order(data, where)
    if len(data) < MIN_EXT_HEADER_LEN:
        raise LoadError(f"{where}: BTF.ext header truncated ({len(data)} bytes)")
    _magic, version, _flags, hdr_len = struct.unpack_from(order + "HBBI", data, 0)
    if version != 1:
        raise LoadError(f"{where}: unsupported BTF.ext version {version}")
    if hdr_len < MIN_EXT_HEADER_LEN or hdr_len > len(data):
        raise LoadError(f"{where}: bad BTF.ext header length {hdr_len}")
    fi_off, fi_len, li_off, li_len = struct.unpack_from(order + "IIII", data, 8)
    core_off = core_len = 0
    if hdr_len >= CORE_EXT_HEADER_LEN:
        core_off, core_len = struct.unpack_from(order + "II", data, 24)
    body = data[hdr_len:]
    parts = _Parts(body, order, spec, where)
    return ExtInfo(
        func_infos=parts.parse(fi_off, fi_len, "func_info", 8, _func_info),
        line_infos=parts.parse(li_off, li_len, "line_info", 16, _line_info),
        core_relos=parts.parse(core_off, core_len, "core_relo", 16, _core_relo),
    )


class _Parts:
    """Shared decoding of the three `{rec_size, sections…}` parts of BTF.ext."""

    def __init__(self, body: bytes, order: str, spec: Spec, where: str):
        self.body = body
        self.order = order
        self.spec = spec
        self.where = where

    def parse(self, offset: int, length: int, what: str, min_rec: int, decode) -> dict:
        """Decode one part; `decode(spec, fields)` builds one record."""
        if length == 0:
            return {}
        if offset + length > len(self.body) or length < 4:
            raise LoadError(f"{self.where}: {what} (offset {offset}, {length} bytes) out of range")
        data = self.body[offset : offset + length]
        (rec_size,) = struct.unpack_from(self.order + "I", data, 0)
        # Newer compilers may append fields to a record; older ones never drop any.
        if rec_size < min_rec or rec_size % 4:
            raise LoadError(f"{self.where}: {what} record size {rec_size} is invalid")
        fmt = self.order + "I" * (min_rec // 4)
        result: dict[str, tuple] = {}
        pos = 4
        while pos < len(data):
            if pos + 8 > len(data):
                raise LoadError(f"{self.where}: {what} truncated at byte {pos}")
            name_off, count = struct.unpack_from(self.order + "II", data, pos)
            pos += 8
            section = self.spec.string(name_off)
            if pos + count * rec_size > len(data):
                raise LoadError(
                    f"{self.where}: {what} of section {section} truncated "
                    f"({count} records of {rec_size} bytes at byte {pos})"
                )
            records = []
            for _ in range(count):
                records.append(decode(self.spec, struct.unpack_from(fmt, data, pos)))
                pos += rec_size
            result[section] = result.get(section, ()) + tuple(records)
        return result


def _func_info(spec: Spec, fields: tuple[int, ...]) -> FuncInfo:
    insn_off, type_id = fields
    return FuncInfo(insn_off // INSN_SIZE, type_id)


def _line_info(spec: Spec, fields: tuple[int, ...]) -> LineInfo:
    insn_off, file_off, line_off, line_col = fields
    # line_col packs the line number in the upper 22 bits, the column in the lower 10.
    return LineInfo(
        insn_off // INSN_SIZE,
        spec.string(file_off),
        spec.string(line_off),
        line_col >> 10,
        line_col & 0x3FF,
    )


def _core_relo(spec: Spec, fields: tuple[int, ...]) -> CoreRelocation:
    insn_off, type_id, access_off, kind = fields
    try:
        kind_value: CoreReloKind | int = CoreReloKind(kind)
    except ValueError:
        kind_value = kind
    return CoreRelocation(insn_off // INSN_SIZE, type_id, spec.string(access_off), kind_value)
