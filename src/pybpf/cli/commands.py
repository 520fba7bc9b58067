"""Imports every command module so that each registers on `app`."""

from . import asm, attach, conformance, disasm, gen, map, prog, run_raw, tc, verify, xdp

__all__ = [
    "asm",
    "attach",
    "conformance",
    "disasm",
    "gen",
    "map",
    "prog",
    "run_raw",
    "tc",
    "verify",
    "xdp",
]
