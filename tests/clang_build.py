"""Building small BPF C programs for tests with clang (the test skips without clang)."""

from __future__ import annotations

import platform
import shutil
import subprocess
from pathlib import Path

import pytest


def build_object(directory: Path, name: str, source: str) -> Path:
    """Compile `source` (C, libbpf headers) to `directory/name.o` with clang -O2 -g; its path."""
    clang = shutil.which("clang-16") or shutil.which("clang")
    if clang is None:
        pytest.skip("clang is not installed")
    c_file = directory / f"{name}.c"
    c_file.write_text(source)
    obj = directory / f"{name}.o"
    arch = f"/usr/include/{platform.machine()}-linux-gnu"
    command = [clang, "-O2", "-g", "-target", "bpf", f"-I{arch}", "-c", str(c_file), "-o", str(obj)]
    subprocess.run(command, check=True)
    return obj
