"""Running a snippet in a fresh Python process: with its own code cache (the disk-cache
tests), or to see what it imports (the start-up tests)."""

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


def modules_imported(code: str, names: tuple[str, ...]) -> list[str]:
    """The modules among `names` (or under them: `names` are prefixes) that a fresh
    process has imported after running `code`, sorted."""
    script = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({names!r}))))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])
