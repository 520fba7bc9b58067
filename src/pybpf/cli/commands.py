"""Imports every command module so that each registers on `app`."""

from . import asm, conformance, disasm, map, prog, run_raw, verify

__all__ = ["asm", "conformance", "disasm", "map", "prog", "run_raw", "verify"]
