"""Where the daemon of this user listens: its runtime directory, socket and pid file.

`$PYBPF_RUNTIME_DIR` if set (tests, several daemons side by side), else
`$XDG_RUNTIME_DIR/pybpf`, else `/run/user/<uid>/pybpf` when that exists,
else `/tmp/pybpf-<uid>`. The directory is created with mode 0700 and must
belong to the user: one daemon per user, reachable by that user only.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

SOCKET_NAME = "pybpfd.sock"
PID_NAME = "pybpfd.pid"


def runtime_dir() -> Path:
    """This user's pybpf runtime directory (not created here)."""
    explicit = os.environ.get("PYBPF_RUNTIME_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "pybpf"
    run_user = Path(f"/run/user/{os.getuid()}")
    if run_user.is_dir():
        return run_user / "pybpf"
    return Path(f"/tmp/pybpf-{os.getuid()}")


def socket_path() -> Path:
    """The daemon's Unix socket."""
    return runtime_dir() / SOCKET_NAME


def pid_path() -> Path:
    """The daemon's pid file."""
    return runtime_dir() / PID_NAME


def ensure_private_dir(path: Path) -> Path:
    """Create directory `path` (0700) or check the existing one is the user's alone."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid != os.getuid():
        raise PermissionError(f"{path}: owned by uid {info.st_uid}, not {os.getuid()}")
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(path, 0o700)
    return path
