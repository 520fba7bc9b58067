"""The verifier in its own process: confined, checked, restarted; the daemon survives it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import pybpf
from daemon_process import running_daemon
from pybpf.service.verifier_client import VerifierWorker, WorkerError, WorkerVerdicts

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
COUNTER = EXAMPLES / "xdp_counter.o"
UDP = bytes(12) + b"\x08\x00" + bytes([0x45] + [0] * 8 + [17] + [0] * 10) + bytes(8)

CONFINED = textwrap.dedent(
    """
    import errno, os, socket, sys
    from pybpf.service import sandbox, verifier_worker
    verifier_worker.warm_up()
    sandbox.enter()
    results = {}
    def attempt(name, action):
        try:
            action()
            results[name] = "allowed"
        except OSError as error:
            results[name] = errno.errorcode.get(error.errno, str(error.errno))
    attempt("socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    attempt("unix socket", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    attempt("open for writing", lambda: open(sys.argv[1], "w"))
    attempt("open for reading", lambda: open(sys.argv[2], "rb").read(4))
    attempt("fork", lambda: os.fork() == 0 and os._exit(0))
    attempt("kill", lambda: os.kill(1, 0))
    caps = [l for l in open("/proc/self/status") if l.startswith(("CapEff", "CapBnd"))]
    reply = verifier_worker.verify(open(sys.argv[2], "rb").read(), "xdp_counter.o", {})
    results["verify"] = "ok" if reply["ok"] else reply["error"]
    results["caps"] = sorted(int(l.split()[1], 16) for l in caps)
    print(results)
    """
)


def test_the_confined_worker_has_no_network_no_writes_no_processes_no_capabilities(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", CONFINED, str(tmp_path / "written"), str(COUNTER)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    results = eval(done.stdout)  # a dict literal printed by the child  # noqa: S307
    assert results["socket"] == "EPERM"
    assert results["unix socket"] == "EPERM"
    assert results["open for writing"] == "EPERM"
    assert not (tmp_path / "written").exists()
    assert results["open for reading"] == "allowed"
    assert results["fork"] == "EPERM"
    assert results["kill"] == "EPERM"
    assert results["caps"] == [0, 0]
    assert results["verify"] == "ok"  # and verification still works inside


def test_worker_verdicts_are_checked_by_key_and_never_computed_in_the_daemon():
    worker = VerifierWorker()
    try:
        reply = worker.verify(COUNTER.read_bytes(), "xdp_counter.o", {})
        assert reply["ok"]
        verdicts = WorkerVerdicts()
        worker.verdicts(reply, verdicts, "xdp_counter.o")
        (key,) = [p["key"] for p in reply["programs"].values()]
        assert verdicts.get(key).ok
        with pytest.raises(pybpf.VerifierError) as caught:
            verdicts.lookup("0" * 64, lambda: pytest.fail("the daemon must not verify"))
        assert "no verdict" in str(caught.value)
        forged = {"ok": True, "programs": {"p": {"key": "short", "report": {}}}}
        with pytest.raises(WorkerError):
            worker.verdicts(forged, verdicts, "x.o")
    finally:
        worker.close()


def test_a_worker_that_takes_too_long_is_killed_and_replaced():
    worker = VerifierWorker(timeout=0.001)
    try:
        with pytest.raises(WorkerError) as caught:
            worker.verify(COUNTER.read_bytes(), "xdp_counter.o", {})
        assert "took longer" in str(caught.value)
        assert worker.process is None and worker.restarts == 1
        worker.timeout = 120
        assert worker.verify(COUNTER.read_bytes(), "xdp_counter.o", {})["ok"]
    finally:
        worker.close()


def test_a_worker_over_its_memory_limit_fails_the_load_not_the_daemon():
    # Too little address space for the worker even to start: the request fails cleanly.
    worker = VerifierWorker(memory=64 << 20)
    try:
        with pytest.raises(WorkerError) as caught:
            worker.verify(COUNTER.read_bytes(), "xdp_counter.o", {})
        assert "worker" in str(caught.value)
    finally:
        worker.close()


def test_the_daemon_verifies_in_its_worker_and_survives_its_death(tmp_path, shared):
    slow = shared / "ebpf-samples" / "cilium-core" / "bpf_sock.o"  # about a second to verify
    if not slow.exists():
        pytest.skip(f"{slow} not found")
    socket_path = tmp_path / "run" / "s.sock"
    with running_daemon(socket_path), pybpf.connect(socket_path) as client:
        obj = client.load(COUNTER)
        status = client.status()["verifier"]
        assert status["mode"] == "worker" and status["pid"] not in (None, os.getpid())
        assert obj.programs["xdp_count"].test_run(UDP).retval == 2
        with pytest.raises(pybpf.VerifierError):
            client.load(EXAMPLES / "unsafe" / "map_value_nullcheck.o")

        outcome: list[BaseException | object] = []

        def load_slow() -> None:
            with pybpf.connect(socket_path) as other:
                try:
                    outcome.append(other.load(slow))
                except BaseException as error:  # noqa: BLE001 (the test inspects it)
                    outcome.append(error)

        loader = threading.Thread(target=load_slow)
        loader.start()
        deadline = time.monotonic() + 30
        while not client.status()["verifier"]["busy"] and time.monotonic() < deadline:
            time.sleep(0.005)  # other requests are served while the worker verifies
        worker_pid = client.status()["verifier"]["pid"]
        os.kill(worker_pid, signal.SIGKILL)
        loader.join(timeout=60)
        (result,) = outcome
        assert isinstance(result, pybpf.LoadError)
        assert "died while verifying" in str(result)
        status = client.status()
        assert status["verifier"]["restarts"] == 1
        assert status["objects"] == 1  # nothing of the failed load was kept
        again = client.load(COUNTER)  # a fresh worker
        assert client.status()["verifier"]["pid"] not in (None, worker_pid)
        assert again.programs["xdp_count"].test_run(UDP).retval == 2
