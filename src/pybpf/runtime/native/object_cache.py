"""`ObjectCache`: compiled native objects kept on disk between processes.

MCJIT hands every object file it produces to the cache and asks the cache
first before compiling a module. Objects are stored under a file name that
is the module's name, which `compiler` makes unique to the IR text, the
pybpf version, the LLVM version and the host CPU, so a stale or foreign
object can never be picked up. Stale objects are never read again, so the
cache is bounded (`PYBPF_CACHE_MAX_MB`, default 256 MiB): the first store
of a process removes the least recently used objects (loads refresh an
object's time) when the directory holds more.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

CACHE_DIR_VARIABLE = "PYBPF_CACHE_DIR"
"""Environment variable naming the cache directory (default `~/.cache/pybpf`)."""

CACHE_LIMIT_VARIABLE = "PYBPF_CACHE_MAX_MB"
"""Environment variable bounding the objects the cache keeps, in MiB (default 256)."""

DEFAULT_LIMIT_MB = 256


def cache_limit_bytes() -> int:
    """`$PYBPF_CACHE_MAX_MB` in bytes (`DEFAULT_LIMIT_MB` when unset or not a number)."""
    try:
        megabytes = float(os.environ.get(CACHE_LIMIT_VARIABLE, DEFAULT_LIMIT_MB))
    except ValueError:
        megabytes = DEFAULT_LIMIT_MB
    return max(0, int(megabytes * 1024 * 1024))


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
        self._trimmed = False

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
            os.utime(path)  # recently used: trimming removes the least recently used first
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
        if not self._trimmed:
            # Once per process that compiles: objects of programs and maps no
            # longer used (old sources, other map addresses) would otherwise
            # pile up forever.
            self._trimmed = True
            self.trim(cache_limit_bytes(), keep=path)

    def trim(self, limit: int, keep: Path | None = None) -> int:
        """Remove the least recently used objects beyond `limit` bytes (`trim_files`);
        `keep` is never removed. Returns the number of objects removed."""
        if self.directory is None:
            return 0
        return trim_files(self.directory, ".o", limit, keep)


def trim_files(directory: Path, suffix: str, limit: int, keep: Path | None = None) -> int:
    """Remove the least recently used `*suffix` files under `directory` (its
    subdirectories too) until at most 3/4 of `limit` bytes remain; nothing when
    they hold at most `limit`. Least recently used = oldest modification time
    (readers refresh it). `keep` is never removed; any error just skips a file.
    Returns the number of files removed. The verifier's cache uses it too."""
    entries = []
    for root, _dirs, files in os.walk(directory):
        for name in files:
            if not name.endswith(suffix):
                continue
            path = os.path.join(root, name)
            try:
                stat = os.lstat(path)
            except OSError:
                continue
            entries.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _mtime, size, _path in entries)
    if total <= limit:
        return 0
    removed = 0
    for _mtime, size, path in sorted(entries):
        if total <= limit * 3 // 4:
            break
        if keep is not None and path == str(keep):
            continue
        try:
            os.unlink(path)
        except OSError:
            continue
        total -= size
        removed += 1
    return removed
