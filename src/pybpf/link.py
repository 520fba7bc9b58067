"""Links: a program attached to a hook, detached on `close()` or at the end of `with`.

As a `bpf_link` in libbpf, a `Link` is what an attach returns and what
keeps the attachment alive. Closing the link stops the hook (the live
hook's thread ends, its sockets and TAP device close) and returns the
hook's final counters; closing the program's object closes its links
first, since a running hook uses the object's memory.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Link"]


class Link:
    """`program` attached to a live hook (`hooks.live.LiveHook`), named `hook`."""

    def __init__(self, program: Any, hook: Any) -> None:
        self.program = program
        self._hook = hook
        self.closed = False
        self.final: Any = None
        program.object.links.append(self)

    @property
    def name(self) -> str:
        """What the link attaches, e.g. `xdp wa` or `tc ingress eth0`."""
        return str(self._hook.counters().hook)

    def counters(self) -> Any:
        """What the hook saw so far (`hooks.live.HookCounters`); the final ones once closed."""
        return self.final if self.closed else self._hook.counters()

    @property
    def running(self) -> bool:
        """Whether the hook still runs (a worker that failed stops; `close()` says why)."""
        return not self.closed and self._hook.running

    def wait(self, timeout: float | None = None) -> int:
        """For a supervised command (`hooks.sock.run`): wait for it to exit; its status."""
        wait = getattr(self._hook, "wait", None)
        if wait is None:
            raise TypeError(f"{self.name}: nothing to wait for")
        return wait(timeout)

    def close(self) -> Any:
        """Detach (idempotent); return the final counters. Raises what stopped the hook's
        worker, if something did."""
        if self.closed:
            return self.final
        self.closed = True
        links = self.program.object.links
        if self in links:
            links.remove(self)
        self.final = self._hook.counters()
        self.final = self._hook.close()
        return self.final

    def pin(self, path: str) -> None:
        """Pin this link at `path` (see `pybpf.pins`): it stays attached after its object
        closes, until unpinned."""
        from . import pins

        pins.pin(path, self)

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "attached"
        return f"<Link {self.program.name!r} {state}>"
