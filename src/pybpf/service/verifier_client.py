"""The daemon's side of the verifier worker: start it, ask it, check its answer, restart it.

`VerifierWorker.verify(elf, name, options)` sends an object to the worker
(`verifier_worker`) and returns its verdicts; a worker that dies (a
crash, the memory or CPU limit, a kill) or takes longer than `timeout`
seconds is killed if need be, the request fails with a one-line
`WorkerError`, and the next request starts a fresh worker. Nothing the
worker does can take the daemon down.

`WorkerVerdicts` is the verifier cache the daemon runs with: it answers
only what the worker said, by cache key, and never verifies in the
daemon. When the daemon loads the object itself, each program's verdict
is looked up by the key of the program the daemon is about to run (its
bytes, its maps' layout, its type, the verifier's fingerprint): a worker
answer about anything else is never found, and the load fails. That is
the check of the worker's answer before a program runs.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
from typing import Any

from ..errors import PybpfError, VerifierError
from ..verifier.cache import Report, VerifierCache, report_from_json
from . import sandbox

DEFAULT_MEMORY = 2 << 30
"""Address-space limit of the worker (bytes)."""
DEFAULT_TIMEOUT = 120.0
"""Seconds one verification may take."""
CPU_SECONDS = 3600
"""CPU-time limit over a worker's life (it is restarted when it hits it)."""
START_TIMEOUT = 60.0


class WorkerError(PybpfError):
    """The worker could not give a verdict (it died, timed out, or answered nonsense)."""

    def __init__(self, message: str, errno_: int):
        super().__init__(message)
        self.errno = errno_


class WorkerVerdicts(VerifierCache):
    """The daemon's verifier cache: the worker's verdicts by key, nothing computed here."""

    def __init__(self) -> None:
        super().__init__(disk=False)

    def lookup(self, key: str, compute: Any) -> Report:
        """The worker's report for `key`; VerifierError when the worker gave none."""
        report = self.get(key)
        if report is None:
            raise VerifierError(
                "the verifier worker gave no verdict for this program (key "
                f"{key[:12]}): what it verified is not what would run"
            )
        return report


class VerifierWorker:
    """One worker process at a time, started on first use and after each death."""

    def __init__(self, memory: int = DEFAULT_MEMORY, timeout: float = DEFAULT_TIMEOUT):
        self.memory = memory
        self.timeout = timeout
        self.process: subprocess.Popen | None = None
        self.restarts = 0
        self.busy = False
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        """The running worker's pid (None when none runs)."""
        return self.process.pid if self.process is not None else None

    def _start(self) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-m", "pybpf.service.verifier_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
        try:
            sandbox.limits(process.pid, self.memory, CPU_SECONDS)
        except OSError:
            self._kill(process)
            raise
        line = self._read_line(process, START_TIMEOUT)
        if json.loads(line or b"{}").get("ready") is not True:
            self._kill(process)
            raise WorkerError("the verifier worker did not start (see its limits)", 5)
        return process

    def _read_line(self, process: subprocess.Popen, timeout: float) -> bytes | None:
        """A line from the worker, None on timeout; b"" when it died."""
        assert process.stdout is not None
        fd = process.stdout.fileno()
        poller = select.poll()  # not select(): the daemon's descriptors may pass 1024
        poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + timeout
        data = b""
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if not poller.poll(max(1, int(left * 1000))):
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b""
            data += chunk
        return data

    def _kill(self, process: subprocess.Popen) -> None:
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()

    def _lost(self, what: str, errno_: int) -> WorkerError:
        process = self.process
        self.process = None
        self.restarts += 1
        status = ""
        if process is not None:
            self._kill(process)
            code = process.returncode
            status = f" (killed by signal {-code})" if code is not None and code < 0 else ""
        return WorkerError(f"the verifier worker {what}{status}; it is restarted", errno_)

    def verify(self, elf: bytes, name: str, options: dict[str, Any]) -> dict[str, Any]:
        """The worker's reply for one object (see `verifier_worker`)."""
        with self._lock:
            if self.process is None or self.process.poll() is not None:
                if self.process is not None:
                    self._lost("had died", 5)
                self.process = self._start()
            process = self.process
            header = {"name": name, "size": len(elf), "options": options}
            self.busy = True
            try:
                assert process.stdin is not None
                process.stdin.write(json.dumps(header).encode() + b"\n" + elf)
                process.stdin.flush()
                line = self._read_line(process, self.timeout)
            except (BrokenPipeError, OSError):
                line = b""
            finally:
                self.busy = False
            if line is None:
                raise self._lost(f"took longer than {self.timeout:g} s on {name}", 110)
            if not line:
                raise self._lost(f"died while verifying {name}", 5)
            try:
                reply = json.loads(line)
            except ValueError:
                raise self._lost("answered something that is not JSON", 71) from None
            return reply

    def verdicts(self, reply: dict[str, Any], cache: WorkerVerdicts, name: str) -> None:
        """Check a successful reply's reports and put them in `cache` by key."""
        programs = reply.get("programs")
        if not isinstance(programs, dict):
            raise WorkerError(f"the verifier worker's answer for {name} has no programs", 71)
        for program, entry in programs.items():
            try:
                key = entry["key"]
                if not isinstance(key, str) or len(key) != 64:
                    raise ValueError("bad key")
                report = report_from_json(entry["report"])
            except (KeyError, TypeError, ValueError) as error:
                raise WorkerError(
                    f"the verifier worker's verdict for {name}:{program} is malformed ({error})", 71
                ) from None
            cache.memory[key] = report

    def close(self) -> None:
        """Stop the worker."""
        with self._lock:
            if self.process is not None:
                self._kill(self.process)
                self.process = None
