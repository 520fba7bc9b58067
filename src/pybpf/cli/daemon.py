"""`pybpf daemon start|stop|status`: this user's pybpfd, the execution context as a service.

`start` runs the daemon in the background (`--persist DIR`: pinned state
survives restarts, see `service/persist.py`) (a new session, its output in
`pybpfd.log` beside the socket) and returns once it answers; `--foreground`
serves in this process until Ctrl-C or `pybpf daemon stop`. `status` exits
1 when no daemon answers. `--socket PATH` picks another socket than the
user's (`service/paths.py`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import typer

from ..service import paths
from .main import BadInput, app

daemon_app = typer.Typer(
    name="daemon", help="Run pybpfd, the execution context as a service.", no_args_is_help=True
)
app.add_typer(daemon_app, name="daemon")

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0

SOCKET = typer.Option(None, "--socket", help="The daemon's socket (default: this user's).")


def _socket(socket: Path | None) -> Path:
    return socket if socket is not None else paths.socket_path()


def _answers(path: Path) -> bool:
    from ..service.client import Client, ServiceError

    try:
        Client(path).close()
    except ServiceError:
        return False
    return True


@daemon_app.command("start")
def start(
    foreground: bool = typer.Option(False, "--foreground", help="Serve in this process."),
    persist: Path | None = typer.Option(
        None, "--persist", help="Keep pinned objects and maps in DIR across restarts."
    ),
    interval: float = typer.Option(
        1.0, "--interval", min=0.05, help="Seconds between map snapshots with --persist."
    ),
    verifier: str = typer.Option(
        "worker", "--verifier", help="worker (a confined process, default) or in-process."
    ),
    verifier_memory: int = typer.Option(
        2 << 30, "--verifier-memory", min=64 << 20, help="The worker's address-space limit, bytes."
    ),
    verifier_timeout: float = typer.Option(
        120.0, "--verifier-timeout", min=0.1, help="Seconds one verification may take."
    ),
    socket: Path | None = SOCKET,
) -> int:
    """Start the daemon (in the background unless --foreground)."""
    from ..service.client import ServiceError

    if verifier not in ("worker", "in-process"):
        raise BadInput(f"--verifier {verifier!r}: expected worker or in-process")
    path = _socket(socket)
    if _answers(path):
        raise ServiceError(17, f"a daemon already runs on {path}")
    command = [sys.executable, "-m", "pybpf.service.daemon", "--socket", str(path)]
    if persist is not None:
        command += ["--persist", str(persist.resolve()), "--interval", str(interval)]
    command += ["--verifier", verifier, "--verifier-memory", str(verifier_memory)]
    command += ["--verifier-timeout", str(verifier_timeout)]
    if foreground:
        from ..service.daemon import main as serve

        return serve(command[3:])
    paths.ensure_private_dir(path.parent)
    log = path.with_name("pybpfd.log")
    with open(log, "ab") as out:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceError(5, f"the daemon exited with {process.returncode}; see {log}")
        if _answers(path):
            typer.echo(f"pybpfd started: pid {process.pid}, socket {path}")
            return 0
        time.sleep(0.05)
    process.terminate()
    raise ServiceError(110, f"the daemon did not answer within {START_TIMEOUT:.0f} s; see {log}")


@daemon_app.command("stop")
def stop(socket: Path | None = SOCKET) -> int:
    """Stop the daemon (what is not persisted is gone)."""
    from ..service.client import Client, ServiceError

    path = _socket(socket)
    with Client(path) as client:
        pid = client.status()["pid"]
        client.call("daemon.stop")
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        if not path.exists() and not _pid_alive(pid):
            typer.echo(f"pybpfd stopped (pid {pid})")
            return 0
        time.sleep(0.05)
    raise ServiceError(110, f"the daemon (pid {pid}) did not stop within {STOP_TIMEOUT:.0f} s")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A child of ours that exited but was not reaped yet still answers kill(0).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


@daemon_app.command("status")
def status(
    socket: Path | None = SOCKET,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> int:
    """Whether the daemon runs, and what it holds (exit 1 when it does not run)."""
    from ..service.client import Client

    with Client(_socket(socket)) as client:
        info = client.status()
    if as_json:
        typer.echo(json.dumps(info))
        return 0
    typer.echo(
        f"pybpfd running: pid {info['pid']}, socket {info['socket']}, up {info['uptime']:.0f} s; "
        f"{info['objects']} objects, {info['programs']} programs, {info['maps']} maps, "
        f"{info['pins']} pins"
    )
    return 0
