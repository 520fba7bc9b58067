"""`ObjectCache`: compiled native objects kept on disk between processes.

MCJIT hands every object file it produces to the cache and asks the cache
first before compiling a module. Objects are stored under a file name that
is the module's name, which `compiler` makes unique to the IR text, the
pybpf version, the LLVM version and the host CPU, so a stale or foreign
object can never be picked up.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

CACHE_DIR_VARIABLE = "PYBPF_CACHE_DIR"
"""Environment variable naming the cache directory (default `~/.cache/pybpf`)."""


def default_cache_dir() -> Path:
    """`$PYBPF_CACHE_DIR`, else `~/.cache/pybpf`."""
    configured = os.environ.get(CACHE_DIR_VARIABLE)
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "pybpf"


class ObjectCache:
    """A directory of `<module name>.o` files; every failure means "not cached".

    The cache is an optimisation only: an unwritable or missing directory,
    a truncated file or a race with another process just costs a compile,
    so no method here raises.
    """

    def __init__(self, directory: Path | None):
        self.directory = directory

    @classmethod
    def from_environment(cls) -> ObjectCache:
        """The cache at `default_cache_dir()`, or a disabled one if it cannot be created."""
        directory = default_cache_dir()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            if not os.access(directory, os.W_OK | os.X_OK):
                return cls(None)
        except OSError:
            return cls(None)
        return cls(directory)

    @property
    def enabled(self) -> bool:
        """True when objects can be read from and written to disk."""
        return self.directory is not None

    def _path(self, name: str) -> Path | None:
        if self.directory is None:
            return None
        # Module names are built by `compiler` from [A-Za-z0-9._-]; keep it so.
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
        return self.directory / f"{safe}.o"

    def contains(self, name: str) -> bool:
        """True when an object for module `name` is on disk."""
        path = self._path(name)
        return path is not None and path.is_file()

    def load(self, name: str) -> bytes | None:
        """The stored object of module `name`, or None."""
        path = self._path(name)
        if path is None:
            return None
        try:
            data = path.read_bytes()
        except OSError:
            return None
        return data or None

    def store(self, name: str, data: bytes) -> None:
        """Write the object of module `name`; silently skipped on any error."""
        path = self._path(name)
        if path is None:
            return
        try:
            # Write to a temporary file and rename, so that a concurrent
            # reader never sees half an object.
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            return
