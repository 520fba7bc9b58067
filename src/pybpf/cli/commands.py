"""Imports every command module so that each registers on `app`."""

from . import (
    asm,
    attach,
    conformance,
    daemon,
    disasm,
    feature,
    gen,
    include_dir,
    loaded,
    map,
    prog,
    run_raw,
    sock,
    tc,
    verify,
    xdp,
)

__all__ = [
    "asm",
    "attach",
    "conformance",
    "daemon",
    "disasm",
    "feature",
    "gen",
    "include_dir",
    "loaded",
    "map",
    "prog",
    "run_raw",
    "sock",
    "tc",
    "verify",
    "xdp",
]
