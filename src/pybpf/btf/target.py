"""The target BTF of CO-RE relocations: the user's, the kernel's, or the one pybpf ships.

In this order, as libbpf (`btf_custom_path`, then the kernel's):

1. the BTF the user names (`pybpf.load(path, btf=…)`, `--btf FILE`): a
   `btf.Spec`, a raw BTF file (as `/sys/kernel/btf/vmlinux`) or an ELF
   file with a `.BTF` section;
2. the host kernel's `/sys/kernel/btf/vmlinux` when it exists (the
   environment variable `PYBPF_KERNEL_BTF` names another file, or, set
   to the empty string, says there is none);
3. `data/hosted.btf`, shipped with pybpf: the UAPI context structs of the
   program types pybpf runs and the packet-header structs, so that a
   `vmlinux.h`-based program runs on a machine without kernel BTF.

Parsed files are cached per process by path, size and modification time
(the kernel's BTF has about 120 000 types and takes a second or two to
parse, once).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LoadError
from .parse import parse_btf
from .spec import Spec

if TYPE_CHECKING:
    from .core import CoreError, CoreResult

__all__ = [
    "BtfSource",
    "HOSTED_BTF",
    "KERNEL_BTF",
    "apply_core",
    "hosted_btf",
    "kernel_btf",
    "load_btf_file",
    "target_btf",
]

KERNEL_BTF = "/sys/kernel/btf/vmlinux"
HOSTED_BTF = Path(__file__).with_name("data") / "hosted.btf"
ENV_KERNEL_BTF = "PYBPF_KERNEL_BTF"

BtfSource = str | os.PathLike | Spec
"""What a user may give as target BTF: a path or a parsed `btf.Spec`."""

_cache: dict[tuple[str, int, int], Spec] = {}


def load_btf_file(path: str | os.PathLike) -> Spec:
    """Parse a raw BTF file or the `.BTF` section of an ELF file (cached).

    Raises `LoadError` naming the file when it cannot be read or holds no
    valid BTF.
    """
    name = os.fspath(path)
    try:
        stat = os.stat(name)
    except OSError as error:
        raise LoadError(f"{name}: cannot read BTF: {error.strerror or error}") from None
    key = (os.path.realpath(name), stat.st_size, stat.st_mtime_ns)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    try:
        data = Path(name).read_bytes()
    except OSError as error:
        raise LoadError(f"{name}: cannot read BTF: {error.strerror or error}") from None
    if data[:4] == b"\x7fELF":
        data = _btf_section(data, name)
    try:
        spec = parse_btf(data, name)
    except LoadError as error:
        reason = str(error).removeprefix(f"{name}: ")
        raise LoadError(f"{name}: not a BTF file ({reason})") from None
    _cache[key] = spec
    return spec


def _btf_section(data: bytes, name: str) -> bytes:
    # Any ELF file (a BPF object, a vmlinux image), not only BPF objects, so
    # pyelftools is used directly rather than through elf.reader.
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        section = ELFFile(io.BytesIO(data)).get_section_by_name(".BTF")
        btf = section.data() if section is not None else None
    except (ELFError, ValueError, OSError) as error:
        raise LoadError(f"{name}: not a valid ELF file ({error})") from None
    if btf is None:
        raise LoadError(f"{name}: ELF file has no .BTF section")
    return btf


def kernel_btf() -> Spec | None:
    """The host kernel's BTF (or `$PYBPF_KERNEL_BTF`'s), None when there is none."""
    path = os.environ.get(ENV_KERNEL_BTF, KERNEL_BTF)
    if not path or not os.path.exists(path):
        return None
    return load_btf_file(path)


def hosted_btf() -> Spec:
    """The BTF pybpf ships: the context and packet-header structs it hosts."""
    return load_btf_file(HOSTED_BTF)


def target_btf(btf: BtfSource | None = None) -> Spec:
    """The target BTF: `btf` if given, else the kernel's, else the shipped one."""
    if isinstance(btf, Spec):
        return btf
    if btf is not None:
        return load_btf_file(btf)
    kernel = kernel_btf()
    return kernel if kernel is not None else hosted_btf()


@dataclass
class CoreOutcome:
    """CO-RE applied to an object: the relocated spec, results and errors per program.

    Here rather than in `core` (which re-exports it), so that loading an
    object without CO-RE relocations does not import the relocation code."""

    spec: Any
    target: Spec | None = None
    results: dict[str, tuple[CoreResult, ...]] = field(default_factory=dict)
    errors: dict[str, CoreError] = field(default_factory=dict)


def apply_core(obj, btf: BtfSource | None = None) -> CoreOutcome:
    """CO-RE applied to every program of `obj` (an `ObjectSpec`), see `core.relocate_object`.

    A user-given `btf` is read even when no program needs it, so that a
    bad file is reported; the kernel's BTF is parsed only when some
    program has CO-RE relocations.
    """
    user = target_btf(btf) if btf is not None else None
    if not any(p.core_relocations for p in obj.programs.values()):
        return CoreOutcome(obj, user)
    from .core import relocate_object

    return relocate_object(obj, user if user is not None else target_btf())
