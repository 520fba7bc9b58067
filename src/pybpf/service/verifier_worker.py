"""The verifier in its own process: what the daemon asks to verify an object before loading it.

As eBPF for Windows hosts PREVAIL in a protected process, pybpfd verifies
in this worker: started by the daemon with resource limits
(`sandbox.limits`), it imports and warms up everything verification needs,
then confines itself (`sandbox.enter`: no capabilities, a seccomp filter
that allows no network, no write-mode open, no process or thread
creation), and serves requests on stdin/stdout:

    request:  {"name": "prog.o", "size": N, "options": {...}}\\n  then N bytes of ELF
    reply:    {"ok": true, "programs": {name: {"key": K, "report": R}}}\\n
              {"ok": false, "rejected": true|false, "error": "one line"}\\n

It loads the object as the daemon will (same code, same host), verifying
every autoloaded program with a cache that never reads disk, and answers
each program's verdict cache key (a digest of the program's bytes, its
maps' layout, its type and the verifier) with the report as JSON
(`verifier.cache.report_to_json`). The daemon checks those keys against
the programs it is about to run (`verifier_client`).

    python -m pybpf.service.verifier_worker   (started by the daemon, never by hand)
"""

from __future__ import annotations

import json
import sys
from typing import Any, BinaryIO

from ..elf.loader import parse_object
from ..errors import PybpfError, VerifierError
from ..object import Object
from ..verifier import cache as verifier_cache
from ..verifier.cache import cache_key, report_to_json, resolve_prog_type

MAX_ELF = 64 << 20
"""Largest object file a request may carry."""


def verify(data: bytes, name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The reply for one object (see the module docstring)."""
    obj = None
    try:
        obj = Object(
            parse_object(data, name),
            prog_type=options.get("prog_type"),
            engine="interpreter",  # verification only: nothing is compiled here
        )
        obj.load()
        vspec = obj.verifier_spec()
        programs = {}
        for program_name, program in obj.programs.items():
            if not program.autoload or program.report is None:
                continue
            kind = resolve_prog_type(program.spec, vspec, program.verifier_prog_type)
            programs[program_name] = {
                "key": cache_key(program.spec, vspec, kind),
                "report": report_to_json(program.report),
            }
        return {"ok": True, "programs": programs}
    except VerifierError as error:
        return {"ok": False, "rejected": True, "error": str(error).splitlines()[0]}
    except (PybpfError, ValueError, KeyError, TypeError, OSError) as error:
        return {"ok": False, "rejected": False, "error": str(error).splitlines()[0]}
    except MemoryError:
        return {"ok": False, "rejected": False, "error": "out of memory (the worker's limit)"}
    finally:
        if obj is not None:
            obj.close()


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def warm_up() -> None:
    """Import and exercise what verification uses, before the sandbox closes the doors.

    Verifying an object pulls in the loader, BTF and CO-RE (the kernel's
    BTF is read now), the platform tables and the verifier; the modules
    imported lazily inside them are imported here for good.
    """
    from ..btf import target
    from ..runtime.native import compiler  # noqa: F401  (maps' native code, compiled lazily)
    from ..verifier import program  # noqa: F401

    target.target_btf()
    verifier_cache.default_cache = verifier_cache.VerifierCache(disk=False)


def serve(stdin: BinaryIO, stdout: BinaryIO) -> int:
    """Answer requests until stdin closes."""
    while True:
        line = stdin.readline(65536)
        if not line:
            return 0
        try:
            request = json.loads(line)
            size = int(request["size"])
            if not 0 < size <= MAX_ELF:
                raise ValueError(f"object of {size} bytes")
            data = _read_exactly(stdin, size)
            reply = verify(data, str(request.get("name", "object.o")), request.get("options", {}))
        except EOFError:
            return 0
        except (ValueError, KeyError, TypeError) as error:
            reply = {"ok": False, "rejected": False, "error": f"bad request: {error}"}
        stdout.write(json.dumps(reply).encode() + b"\n")
        stdout.flush()


def main() -> int:
    """Warm up, confine, serve."""
    from . import sandbox

    warm_up()
    sandbox.enter()
    sys.stdout.buffer.write(b'{"ready": true}\n')
    sys.stdout.buffer.flush()
    return serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    sys.exit(main())
