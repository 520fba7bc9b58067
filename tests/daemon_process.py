"""pybpfd as a real process for the service tests: started, waited for, stopped, one way."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pybpf
from pybpf.service import ServiceError


def wait_for(path: Path, timeout: float = 30.0) -> None:
    """Return once a daemon answers on `path` (AssertionError after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pybpf.connect(path).close()
            return
        except ServiceError:
            time.sleep(0.05)
    raise AssertionError(f"no daemon on {path}")


def start_daemon(path: Path, *extra: str) -> subprocess.Popen:
    """`python -m pybpf.service.daemon --socket PATH EXTRA…`, answering when this returns."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pybpf.service.daemon", "--socket", str(path), *extra],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(path)
    except BaseException:
        process.kill()
        process.communicate(timeout=30)
        raise
    return process


def stop_daemon(process: subprocess.Popen) -> str:
    """SIGTERM, then check it exited cleanly without a traceback; its stderr."""
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "Traceback" not in err, err
    return err


@contextlib.contextmanager
def running_daemon(path: Path, *extra: str) -> Iterator[Path]:
    """A daemon on socket `path` for the `with` block; stopped and its socket gone after."""
    process = start_daemon(path, *extra)
    try:
        yield path
    finally:
        stop_daemon(process)
        assert not path.exists()
