"""Running a snippet in a fresh Python process with its own code cache (the disk-cache tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def run_child(script: str, arg: str, cache_dir: Path, *, unset: tuple[str, ...] = ()) -> dict:
    """Run `python -c script arg` with PYBPF_CACHE_DIR=cache_dir; its stdout as JSON.

    `unset` names environment variables the child must not inherit.
    """
    env = {**os.environ, "PYBPF_CACHE_DIR": str(cache_dir)}
    for name in unset:
        env.pop(name, None)
    out = subprocess.run(
        [sys.executable, "-c", script, arg], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)
