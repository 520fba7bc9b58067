"""An application that runs user-supplied eBPF programs at a hook of its own.

A toy request router: before sending a request to a backend it asks a
verified eBPF policy (`SEC("router")` programs, written against
`router_hook.h`) whether to accept it and which backend (`route`) to use.
The application registers its program type with pybpf: the context struct
(the request path as a data range, the client, the port, a writable
route), the return values (ROUTE_REJECT 0, ROUTE_ACCEPT 1) and two helpers
of its own (the client's reputation score, a log line). pybpf verifies
each policy against exactly that (a program writing `client_id` or reading
past the path is refused) and runs it in the JIT.

    python examples/extension_app/router.py examples/extension_app/policy.o /api/users 7

The same registration could come from an installed package through the
`pybpf.extensions` entry-point group.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pybpf
from pybpf.extensions import (
    ExtensionHelper,
    Field,
    ProgramTypeExtension,
    StructLayout,
    register_program_type,
    registered,
)

REQUEST_CTX = StructLayout(
    "request_ctx",
    32,
    (
        Field("data", 0, 8, frozenset({8}), frozenset(), pointer=True),
        Field("data_end", 8, 8, frozenset({8}), frozenset(), pointer=True),
        Field("client_id", 16, 4, frozenset({1, 2, 4})),
        Field("port", 20, 2, frozenset({1, 2})),
        Field("route", 24, 4, frozenset({1, 2, 4}), frozenset({4})),
    ),
)
ROUTE_REJECT, ROUTE_ACCEPT = 0, 1


@dataclass
class AppState:
    """What the application knows that its helpers hand to programs."""

    scores: dict[int, int] = field(default_factory=dict)
    log: list[bytes] = field(default_factory=list)


STATE = AppState()


def _client_score(env, r1, r2, r3, r4, r5) -> int:
    client = struct.unpack_from("<I", env.memory.read(r1 + 16, 4))[0]
    return STATE.scores.get(client, 0) & 0xFFFF_FFFF_FFFF_FFFF


def _log(env, r1, r2, r3, r4, r5) -> int:
    STATE.log.append(env.memory.read(r2, r3))
    return 0


ROUTER = ProgramTypeExtension(
    name="router",
    sections=("router",),
    context=REQUEST_CTX,
    writable=("route",),
    return_range=(ROUTE_REJECT, ROUTE_ACCEPT),
    helpers=(
        ExtensionHelper(0x10000, "bpf_router_client_score", _client_score, args=("ptr_to_ctx",)),
        ExtensionHelper(
            0x10001, "bpf_router_log", _log, args=("ptr_to_ctx", "ptr_to_mem", "const_size")
        ),
    ),
)


def install() -> None:
    """Register the router program type (once per process)."""
    if registered("router") is None:
        register_program_type(ROUTER)


class Router:
    """Routes requests with the policy program of `path` (verified when loaded)."""

    def __init__(self, path: str | Path, engine: str | None = None) -> None:
        install()
        self.object = pybpf.load(path, engine=engine)
        self.object.load()  # VerifierError if the policy is unsafe
        self.program = next(iter(self.object.programs.values()))

    def route(self, request_path: bytes, client_id: int, port: int = 80) -> int | None:
        """The backend for the request, or None when the policy rejects it."""
        ctx = bytearray(REQUEST_CTX.size)
        struct.pack_into("<IH", ctx, 16, client_id, port)
        result = self.program.test_run(data=request_path, ctx=bytes(ctx))
        if result.retval != ROUTE_ACCEPT:
            return None
        return struct.unpack_from("<I", result.ctx_out, 24)[0]

    def close(self) -> None:
        self.object.close()


def main(argv: list[str]) -> int:
    policy, path, client = argv[1], argv[2].encode(), int(argv[3])
    STATE.scores[13] = -5  # a client the application distrusts
    router = Router(policy)
    try:
        backend = router.route(path, client)
    finally:
        router.close()
    print("rejected" if backend is None else f"route {backend}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
