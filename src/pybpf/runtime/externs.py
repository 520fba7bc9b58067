"""Values of `__kconfig` externs, resolved when an object loads (libbpf's `resolve_externs`).

Where a value comes from, first match wins:

1. the user's `kconfig` (`pybpf.load(path, kconfig=…)`): a mapping of name
   to value (`{"CONFIG_HZ": 1000, "CONFIG_BPF_JIT": "y"}`) or libbpf's
   text form (`"CONFIG_HZ=1000\\nCONFIG_BPF_JIT=y"`); any extern may be given
   this way, `LINUX_KERNEL_VERSION` included, so a test can pin them;
2. for `LINUX_*` names, what pybpf itself is: `LINUX_KERNEL_VERSION` is the
   host kernel's version (`KERNEL_VERSION(a, b, c)` of `uname -r`, as libbpf
   computes it; 0 off Linux), `LINUX_HAS_BPF_COOKIE` and
   `LINUX_HAS_SYSCALL_WRAPPER` are 0 and 1;
3. for `CONFIG_*` names, the host's kernel configuration, from
   `/boot/config-$(uname -r)` or `/proc/config.gz`, as libbpf reads it.

An extern found nowhere is 0 when weak; a strong one fails the load with
libbpf's message (`extern 'X' (strong): not resolved`). Unlike libbpf, a
missing host configuration is not an error in itself: pybpf runs where no
Linux kernel is (macOS, Windows), and weak externs then read 0.

Values are written as libbpf writes them: `y`/`n`/`m` into bool, tristate
(n=0, y=1, m=2) and char externs, quoted strings into char arrays (truncated
to fit, NUL-terminated), numbers into integers of the extern's size, with
libbpf's range checks.
"""

from __future__ import annotations

import functools
import gzip
import platform
import re
from collections.abc import Mapping

from ..elf.externs import ExternSpec, KconfigKind
from ..errors import LoadError

__all__ = ["KconfigInput", "host_kconfig", "kernel_version", "kconfig_bytes"]

KconfigInput = Mapping[str, "int | str | bool"] | str | None
"""What `pybpf.load(kconfig=…)` accepts."""

_TRISTATE = {"n": 0, "y": 1, "m": 2}
_VIRTUAL = {"LINUX_HAS_BPF_COOKIE": 0, "LINUX_HAS_SYSCALL_WRAPPER": 1}


def kernel_version(release: str | None = None) -> int:
    """`KERNEL_VERSION(major, minor, patch)` of a release string (`uname -r` by default).

    0 when there is no Linux release to read; the patch level saturates at
    255, as the kernel's macro does since 5.x.
    """
    if release is None:
        if platform.system() != "Linux":
            return 0
        release = platform.release()
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release)
    if match is None:
        return 0
    major, minor, patch = (int(part or 0) for part in match.groups())
    return (major << 16) + (minor << 8) + min(patch, 255)


@functools.cache
def host_kconfig() -> dict[str, str]:
    """The host kernel's `CONFIG_*` settings (name → raw value), empty when unavailable."""
    candidates = []
    if platform.system() == "Linux":
        candidates = [f"/boot/config-{platform.release()}", "/proc/config.gz"]
    for path in candidates:
        try:
            if path.endswith(".gz"):
                with gzip.open(path, "rt", errors="replace") as f:
                    return parse_kconfig_text(f.read(), path)
            with open(path, errors="replace") as f:
                return parse_kconfig_text(f.read(), path)
        except (OSError, EOFError, gzip.BadGzipFile):
            continue
    return {}


def parse_kconfig_text(text: str, where: str = "kconfig") -> dict[str, str]:
    """`CONFIG_X=value` lines (comments and other lines ignored) as name → raw value."""
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line.startswith("CONFIG_"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not value:
            raise LoadError(f"{where}: line {number}: {line!r} has no value")
        out[name] = value
    return out


def kconfig_bytes(
    externs: Mapping[str, ExternSpec], size: int, user: KconfigInput, where: str
) -> bytes:
    """The `.kconfig` map's value: every kconfig extern's slot filled; LoadError if one cannot be."""
    given = _user_values(user, where)
    data = bytearray(size)
    for extern in externs.values():
        if not extern.is_kconfig:
            continue
        value = _value_of(extern, given)
        if value is None:
            if not extern.weak:
                raise LoadError(f"{where}: extern '{extern.name}' (strong): not resolved")
            continue  # weak and unknown: 0, as libbpf defaults it
        chunk = _encode(extern, value, where)
        data[extern.offset : extern.offset + len(chunk)] = chunk
    return bytes(data)


def _user_values(user: KconfigInput, where: str) -> dict[str, int | str | bool]:
    if user is None:
        return {}
    if isinstance(user, str):
        return dict(parse_kconfig_text(user, f"{where}: kconfig"))
    if not isinstance(user, Mapping):
        raise LoadError(f"{where}: kconfig must be a mapping or CONFIG_X=value lines")
    return dict(user)


def _value_of(extern: ExternSpec, given: dict[str, int | str | bool]) -> int | str | bool | None:
    name = extern.name
    if name in given:
        return given[name]
    if name == "LINUX_KERNEL_VERSION":
        return kernel_version() or None
    if name in _VIRTUAL:
        return _VIRTUAL[name]
    if name.startswith("CONFIG_"):
        return host_kconfig().get(name)
    return None


def _encode(extern: ExternSpec, value: int | str | bool, where: str) -> bytes:
    """libbpf's set_kcfg_value_{tri,str,num} for one extern."""
    at = f"{where}: extern (kcfg) '{extern.name}'"
    kind = extern.kind
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, str) and value in _TRISTATE:
        if kind == KconfigKind.BOOL and value == "m":
            raise LoadError(f"{at}: value 'm' implies tristate or char type")
        if kind in (KconfigKind.BOOL, KconfigKind.TRISTATE):
            return bytes([0 if value == "n" else _TRISTATE[value]]).ljust(extern.size, b"\0")
        if kind == KconfigKind.CHAR:
            return value.encode()
        raise LoadError(f"{at}: value '{value}' implies bool, tristate, or char type")
    if isinstance(value, str) and value.startswith('"'):
        if kind != KconfigKind.CHAR_ARRAY:
            raise LoadError(f"{at}: value {value} implies char array type")
        if len(value) < 2 or not value.endswith('"'):
            raise LoadError(f"{at}: invalid string config {value}")
        text = value[1:-1].encode()[: extern.size - 1]
        return text + b"\0"
    if isinstance(value, str):
        if kind == KconfigKind.CHAR_ARRAY:  # a plain string from a Python caller
            return value.encode()[: extern.size - 1] + b"\0"
        try:
            value = int(value, 0)
        except ValueError:
            raise LoadError(f"{at}: value '{value}' isn't a valid integer") from None
    return _encode_number(extern, int(value), at)


def _encode_number(extern: ExternSpec, value: int, at: str) -> bytes:
    if extern.kind not in (KconfigKind.INT, KconfigKind.CHAR, KconfigKind.BOOL):
        raise LoadError(f"{at}: value '{value}' implies integer, char, or boolean type")
    if extern.kind == KconfigKind.BOOL and value not in (0, 1):
        raise LoadError(f"{at}: value '{value}' isn't boolean compatible")
    bits = extern.size * 8
    mask64 = (1 << 64) - 1
    raw = value & mask64  # libbpf parses into a u64 and checks the range there
    if extern.size < 8:
        if extern.signed:
            fits = (raw + (1 << (bits - 1))) & mask64 < (1 << bits)
        else:
            fits = raw >> bits == 0
        if not fits:
            raise LoadError(f"{at}: value '{value}' doesn't fit in {extern.size} bytes")
    return (raw & ((1 << bits) - 1)).to_bytes(extern.size, "little")
