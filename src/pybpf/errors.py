"""Exceptions raised by pybpf, one hierarchy for the whole package.

Every error a user can provoke with bad input is a subclass of `PybpfError`;
its `str()` is one line that names what went wrong and where (file, offset,
line or pc), so the CLI can print it as is.
"""

from __future__ import annotations

import errno as _errno
import os


class PybpfError(Exception):
    """Base class of every error pybpf raises on purpose."""


class DecodeError(PybpfError):
    """Bytecode that is not a valid eBPF instruction stream.

    `pc` is the instruction slot where decoding failed (None when the whole
    buffer is at fault, e.g. a length that is not a multiple of 8).
    """

    def __init__(self, message: str, pc: int | None = None, where: str | None = None):
        self.pc = pc
        self.where = where
        self.reason = message
        prefix = f"{where}: " if where else ""
        at = f"pc {pc}: " if pc is not None else ""
        super().__init__(f"{prefix}{at}{message}")


class AsmError(PybpfError):
    """Assembly text that cannot be assembled; names the file and line."""

    def __init__(self, message: str, line: int | None = None, where: str | None = None):
        self.line = line
        self.where = where
        self.reason = message
        loc = where or "<asm>"
        if line is not None:
            loc = f"{loc}:{line}"
        super().__init__(f"{loc}: {message}")


class LoadError(PybpfError):
    """An object file (ELF) that cannot be loaded; names the file and place."""


class InterfaceError(PybpfError):
    """A network interface or TAP device a live hook cannot use; names it and why."""


class NotSupportedError(PybpfError):
    """A feature pybpf does not implement (yet); tests turn it into a skip."""


class ProgramFault(PybpfError):
    """A running program did something the runtime forbids.

    Raised by the bounds-checked interpreter for a bad memory access (with
    pc, instruction text, address, size and the nearest region), an unknown
    helper, a jump out of range, or an exceeded instruction budget.
    """

    def __init__(
        self,
        message: str,
        pc: int | None = None,
        instruction: str | None = None,
        address: int | None = None,
        size: int | None = None,
        region: str | None = None,
    ):
        self.pc = pc
        self.instruction = instruction
        self.address = address
        self.size = size
        self.region = region
        self.reason = message
        parts = []
        if pc is not None:
            parts.append(f"pc {pc}")
        if instruction:
            parts.append(f"'{instruction}'")
        head = " ".join(parts)
        super().__init__(f"{head}: {message}" if head else message)


class MapError(PybpfError):
    """A map operation failed with the errno libbpf would return.

    `errno` is the positive errno number (ENOENT, EEXIST, E2BIG, EINVAL …),
    `op` the operation (`lookup`, `update`, `delete`, `get_next_key`,
    `create`, `push`, …), `map_name` the map's name.
    """

    def __init__(self, errno: int, op: str, map_name: str = "", detail: str = ""):
        self.errno = errno
        self.op = op
        self.map_name = map_name
        reason = detail or os.strerror(errno)
        self.detail = reason
        super().__init__(f"map {map_name!r}: {op}: {reason} (errno {errno})")


class TestRunError(PybpfError):
    """A test run the kernel would refuse; `errno` is what `bpf()` would return."""

    __test__ = False  # not a pytest test class

    def __init__(self, message: str, errno_: int = _errno.EINVAL):
        self.errno = errno_
        self.reason = message
        super().__init__(f"test run: {message} ({_errno.errorcode.get(errno_, errno_)})")


class VerifierError(PybpfError):
    """The static verifier rejected a program; `report` holds every failure.

    Raised only at the API edge (`pybpf.load`, `pybpf verify`); inside the
    verifier, failures are values (`pybpf.verifier.report.Failure`).
    """

    def __init__(self, report: object) -> None:
        self.report = report
        render = getattr(report, "render", None)
        super().__init__(render() if callable(render) else str(report))
