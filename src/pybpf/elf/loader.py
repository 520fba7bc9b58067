"""`load_object_spec`: turn a clang-built BPF object file into an `ObjectSpec`.

The steps follow libbpf's `bpf_object__open`: read the ELF, then license
and kernel version, BTF and BTF.ext, maps (legacy, BTF-defined, global
data), code sections and their relocations, and finally one program per
function of each code section, with the subprograms it calls appended.

Bad input of any kind (truncated, random, not BPF, inconsistent) raises a
one-line `LoadError` that starts with the file name; exceptions from
pyelftools or from decoding are never let through.
"""

from __future__ import annotations

import struct
from dataclasses import replace
from pathlib import Path

from ..btf.ext import ExtInfo, parse_btf_ext
from ..btf.parse import parse_btf
from ..btf.spec import Spec as BtfSpec
from ..errors import LoadError
from ..platform.extensions import load_entry_points
from ..platform.platforms import LINUX, WINDOWS, Platform, detect_platform, platform_named
from .code import CodeSection, load_code_sections
from .datasec import fixup_datasecs
from .externs import collect_externs
from .link import build_program
from .maps import collect_maps
from .reader import PARSE_ERRORS, ElfImage, read_elf
from .specs import MapSpec, ObjectSpec, ProgramSpec


def load_object_spec(path: str | Path, platform: str | None = None) -> ObjectSpec:
    """Parse the object file at `path` for `platform` (`linux`, `windows`; None: detect
    it, `platform.platforms.detect_platform`); LoadError (naming it) if it cannot be."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise LoadError(f"{name}: cannot read: {exc.strerror or exc}") from None
    return parse_object(data, name, platform)


def _one_line(message: str) -> str:
    """`message` with control characters escaped: names read from a damaged object (a
    section name from the wrong string table) may hold newlines, and an error is one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


def parse_object(data: bytes, path: str = "<memory>", platform: str | None = None) -> ObjectSpec:
    """Parse the bytes of an object file; `path` names it in errors."""
    load_entry_points()  # program types installed packages offer, before any section lookup
    chosen = None if platform is None else platform_named(platform)
    if not data:
        raise LoadError(f"{path}: empty file")
    if data[:4] != b"\x7fELF":
        raise LoadError(f"{path}: not an ELF file")
    try:
        return _parse(data, path, chosen)
    except LoadError as exc:
        message = _one_line(str(exc))
        raise LoadError(message if message.startswith(path) else f"{path}: {message}") from None
    except RecursionError:
        raise LoadError(f"{path}: malformed ELF (nesting too deep)") from None
    except PARSE_ERRORS as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LoadError(f"{path}: malformed ELF: {reason}") from None


def _parse(data: bytes, path: str, platform: Platform | None) -> ObjectSpec:
    image = read_elf(data, path)
    license = _license(image)
    btf, ext = _btf(image)
    reason = note = None
    if platform is None:
        code = [s.name for s in image.sections if s.is_code]
        found = detect_platform(image, btf, code)
        platform = found.platform
        signals = found.windows if platform is WINDOWS else found.linux
        reason = f"detected from {', '.join(signals)}" if signals else None
        note = found.note
    externs = collect_externs(image, btf)
    maps = collect_maps(image, btf, externs, platform.legacy_map_layout)
    sections = load_code_sections(image, maps, ext)
    programs = {
        name: platform.translate_helpers(spec, path)
        for name, spec in _programs(image, sections, license).items()
    }
    return ObjectSpec(
        path=path,
        programs=programs,
        maps={n: _translate_map(platform, m, path) for n, m in maps.specs.items()},
        license=license,
        kern_version=_kern_version(image),
        btf=btf,
        externs=externs,
        platform=platform.name,
        platform_reason=reason,
        platform_note=note,
    )


def _translate_map(platform: Platform, spec: MapSpec, path: str) -> MapSpec:
    """`spec` with the platform's map type number made pybpf's (its inner map too)."""
    if platform is LINUX:
        return spec
    inner = spec.inner_map
    if inner is not None:
        inner = _translate_map(platform, inner, path)
    where = f"{path}: map {spec.name}"
    return replace(spec, type=platform.map_type(spec.type, where), inner_map=inner)


def _license(image: ElfImage) -> str:
    section = image.section_named("license")
    if section is None:
        return ""
    text = section.data.split(b"\0", 1)[0]
    return text.decode("utf-8", errors="replace")


def _kern_version(image: ElfImage) -> int:
    section = image.section_named("version")
    if section is None or len(section.data) < 4:
        return 0
    return struct.unpack_from("<I", section.data)[0]


def _btf(image: ElfImage) -> tuple[BtfSpec | None, ExtInfo | None]:
    """The object's BTF and BTF.ext; bad BTF is an error, as in libbpf with CO-RE."""
    section = image.section_named(".BTF")
    if section is None:
        return None, None
    btf = fixup_datasecs(image, parse_btf(section.data, f"{image.path}: section .BTF"))
    ext_section = image.section_named(".BTF.ext")
    ext = None
    if ext_section is not None:
        ext = parse_btf_ext(ext_section.data, btf, f"{image.path}: section .BTF.ext")
    return btf, ext


def _programs(
    image: ElfImage, sections: dict[int, CodeSection], license: str
) -> dict[str, ProgramSpec]:
    """One program per function of every code section, in ELF order.

    Functions of `.text` are listed too, as PREVAIL does: objects built
    from a lone `.text` function (many test objects) have no other entry
    point, and a `.text` function called from elsewhere is still appended
    to its callers.
    """
    programs: dict[str, ProgramSpec] = {}
    for code in sections.values():
        for function in code.functions:
            program = build_program(function, sections, image.path, license)
            name = function.name
            if name in programs:
                # Static functions of different sections may share a name.
                name = f"{code.name}/{function.name}"
            if name in programs:
                raise LoadError(f"{image.path}: section {code.name}: program {name} defined twice")
            programs[name] = program
    return programs
