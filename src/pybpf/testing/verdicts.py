"""The Linux kernel's verdict on the unsafe example programs (examples/unsafe).

`examples/unsafe/manifest.json` lists one entry per (object, program): the
program type, the flaw in plain words, what a verifier must answer
(`expect`: "accept" or "reject"), the Linux kernel's verdict for a root
loader where it differs (`kernel_expect`, with `kernel_note` saying why:
root may read uninitialised stack and store pointers to maps, which pybpf
rejects as PREVAIL does) and what the kernel answered when the entry was
recorded (`kernel`: verdict, the reason line of its verifier log, the
kernel release). Each flawed object `NAME.o` is paired,
where a fix exists, with its safe twin `NAME.safe.o` (the same source built
with `-DSAFE`), so that a verifier rejecting everything is caught.

`kernel_verdict(path, program)` loads one program into the running kernel
through libbpf (the other programs of the object are not loaded) with a
verifier log buffer of our own, and returns `(accepted, reason)`: the
reason is the line of the log that explains a rejection. It raises
`KernelError` where `kernel_available()` is False, so callers skip first.

`python -m pybpf.testing.verdicts` re-records the `kernel` fields of the
manifest on this machine (root, libbpf, bpf()) and prints a table.
"""

from __future__ import annotations

import ctypes
import errno as errno_mod
import json
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .kernel import KernelError, libbpf

#: The unsafe examples in a source checkout: src/pybpf/testing → examples/unsafe.
UNSAFE_DIR = Path(__file__).resolve().parents[3] / "examples" / "unsafe"
MANIFEST = UNSAFE_DIR / "manifest.json"

#: The kernel rotates its log when the buffer fills, keeping the tail, which
#: holds the reason; an accepted program whose log overflows is reported as
#: ENOSPC, so the buffer is large enough for every accepted example.
_LOG_SIZE = 16 << 20

#: Lines the kernel appends after the reason (statistics, not explanations).
_TRAILER_PREFIXES = (
    "processed ",
    "verification time",
    "stack depth",
    "max_states_per_insn",
    "peak_states",
    "mark_read",
    # dumps of the verifier state that follow "infinite loop detected"
    "cur state:",
    "old state:",
)


@dataclass(frozen=True)
class Entry:
    """One manifest entry: a program of an unsafe example and what it must get."""

    name: str
    object: str
    program: str
    prog_type: str
    expect: str
    kernel_expect: str
    flaw: str
    category: str
    twin: str | None
    kernel: dict[str, Any]

    @property
    def path(self) -> Path:
        """The object file, resolved against the manifest's directory."""
        return UNSAFE_DIR / self.object


def load_manifest(path: str | os.PathLike | None = None) -> list[Entry]:
    """Every entry of the manifest (default: examples/unsafe/manifest.json), in order."""
    raw = json.loads(Path(path or MANIFEST).read_text())
    return [
        Entry(
            name=item["name"],
            object=item["object"],
            program=item["program"],
            prog_type=item["prog_type"],
            expect=item["expect"],
            kernel_expect=item.get("kernel_expect", item["expect"]),
            flaw=item["flaw"],
            category=item["category"],
            twin=item.get("twin"),
            kernel=item.get("kernel", {}),
        )
        for item in raw["programs"]
    ]


def _fn(lib: ctypes.CDLL, name: str, restype: object, argtypes: list[object]) -> Any:
    # A fresh function pointer each time: the shared CDLL's prototypes stay as kernel.py set them.
    fn = lib[name]
    fn.restype = restype
    fn.argtypes = argtypes
    return fn


def reason_line(log: str) -> str:
    """The line of a verifier log that says why the program was rejected.

    The kernel prints the failing path instruction by instruction, then the
    reason, then (sometimes) state dumps and statistics ("processed N insns
    ..."); the reason is the last line before those.
    """
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    while lines and lines[-1].startswith(_TRAILER_PREFIXES):
        lines.pop()
    return lines[-1] if lines else ""


class _OpenOpts(ctypes.Structure):
    # struct bpf_object_open_opts of libbpf 1.x (bpf/libbpf.h), up to btf_custom_path;
    # `sz` tells libbpf how much of it we pass.
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("object_name", ctypes.c_char_p),
        ("relaxed_maps", ctypes.c_bool),
        ("pin_root_path", ctypes.c_char_p),
        ("_attach_prog_fd", ctypes.c_uint32),
        ("kconfig", ctypes.c_char_p),
        ("btf_custom_path", ctypes.c_char_p),
    ]


@dataclass(frozen=True)
class KernelLoad:
    """What the running kernel answered when asked to load one program.

    `reason` is the log line that explains a rejection ("" when accepted);
    `log` the whole verifier log (level 1: the failing path, then the reason
    and statistics); `errno` what the load returned (0 when accepted).
    """

    accepted: bool
    reason: str
    log: str
    errno: int

    @property
    def verdict(self) -> str:
        """ "accept" or "reject"."""
        return "accept" if self.accepted else "reject"

    @property
    def log_lines(self) -> list[str]:
        """The log's non-empty lines."""
        return [line for line in self.log.splitlines() if line.strip()]


def kernel_load(
    path: str | os.PathLike,
    program: str,
    *,
    prog_type: int | None = None,
    attach_type: int | None = None,
    btf: str | os.PathLike | None = None,
    log_level: int = 1,
) -> KernelLoad:
    """Load `program` of the object at `path` into the kernel, alone, with a log buffer.

    The other programs of the object are not loaded (its maps are created).
    `prog_type`/`attach_type` (Linux enum values) override the section's, as
    `--type` does; `btf` is the target BTF of CO-RE relocations (libbpf's
    `btf_custom_path`; default the kernel's). A rejection by libbpf before
    the kernel sees the program (a bad relocation, an unknown section) is a
    rejection too, with libbpf's errno as the reason. KernelError when
    libbpf is missing, the object cannot be opened or has no such program.
    """
    lib = libbpf()
    if lib is None:
        raise KernelError("dlopen libbpf", errno_mod.ENOENT, "libbpf.so.1 is not installed")
    vp = ctypes.c_void_p
    open_file = _fn(lib, "bpf_object__open_file", vp, [ctypes.c_char_p, vp])
    load = _fn(lib, "bpf_object__load", ctypes.c_int, [vp])
    close = _fn(lib, "bpf_object__close", None, [vp])
    next_program = _fn(lib, "bpf_object__next_program", vp, [vp, vp])
    prog_name = _fn(lib, "bpf_program__name", ctypes.c_char_p, [vp])
    set_autoload = _fn(lib, "bpf_program__set_autoload", ctypes.c_int, [vp, ctypes.c_bool])
    set_log_buf = _fn(
        lib, "bpf_program__set_log_buf", ctypes.c_int, [vp, ctypes.c_char_p, ctypes.c_size_t]
    )
    set_log_level = _fn(lib, "bpf_program__set_log_level", ctypes.c_int, [vp, ctypes.c_uint32])
    set_type = _fn(lib, "bpf_program__set_type", ctypes.c_int, [vp, ctypes.c_int])
    set_attach = _fn(lib, "bpf_program__set_expected_attach_type", ctypes.c_int, [vp, ctypes.c_int])
    set_print = _fn(lib, "libbpf_set_print", vp, [vp])

    opts = None
    if btf is not None:
        opts = _OpenOpts(sz=ctypes.sizeof(_OpenOpts), btf_custom_path=os.fsencode(btf))
    # libbpf would print the whole log on stderr; we read it from our buffer.
    previous_print = set_print(None)
    obj = None
    try:
        obj = open_file(os.fsencode(path), ctypes.byref(opts) if opts is not None else None)
        if not obj:
            raise KernelError(
                f"bpf_object__open_file({Path(path).name})", ctypes.get_errno() or errno_mod.EINVAL
            )
        log = ctypes.create_string_buffer(_LOG_SIZE)
        found = False
        handle = next_program(obj, None)
        while handle:
            mine = prog_name(handle).decode() == program
            found = found or mine
            set_autoload(handle, mine)
            if mine:
                set_log_buf(handle, log, _LOG_SIZE)
                set_log_level(handle, log_level)
                if prog_type is not None:
                    set_type(handle, prog_type)
                if attach_type is not None:
                    set_attach(handle, attach_type)
            handle = next_program(obj, handle)
        if not found:
            raise KernelError(f"program {program!r}", errno_mod.ENOENT, str(path))
        result = load(obj)
        text = log.value.decode("utf-8", errors="replace")
        if result == 0:
            return KernelLoad(True, "", text, 0)
        err = -result
        reason = reason_line(text) or f"libbpf: {os.strerror(err)} (errno {err})"
        return KernelLoad(False, reason, text, err)
    finally:
        if obj:
            close(obj)
        set_print(previous_print)


def kernel_verdict(path: str | os.PathLike, program: str) -> tuple[bool, str]:
    """Load `program` of the object at `path` into the kernel: (accepted, reason line).

    `kernel_load` without the log: the reason is "" for an accepted program.
    """
    result = kernel_load(path, program)
    return result.accepted, result.reason


def record(path: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Load every manifest entry into this kernel and write its verdict back to the manifest."""
    manifest = Path(path or MANIFEST)
    raw = json.loads(manifest.read_text())
    release = platform.release()
    for item in raw["programs"]:
        accepted, reason = kernel_verdict(manifest.parent / item["object"], item["program"])
        item["kernel"] = {
            "verdict": "accept" if accepted else "reject",
            "reason": reason,
            "release": release,
        }
    manifest.write_text(json.dumps(raw, indent=2) + "\n")
    return raw["programs"]


def main(argv: list[str] | None = None) -> int:
    """Re-record the manifest's kernel verdicts; print one line per entry."""
    args = sys.argv[1:] if argv is None else argv
    for item in record(args[0] if args else None):
        kernel = item["kernel"]
        wanted = item.get("kernel_expect", item["expect"])
        mark = "" if kernel["verdict"] == wanted else f"  <-- manifest says {wanted}"
        print(f"{item['name']:36} {kernel['verdict']:7} {kernel['reason']}{mark}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
