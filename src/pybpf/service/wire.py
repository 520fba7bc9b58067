"""The daemon's framing: one JSON object per line on a Unix stream socket, descriptors beside it.

A message is a UTF-8 JSON object followed by `\\n`, at most `MAX_MESSAGE`
bytes. File descriptors travel as SCM_RIGHTS ancillary data on the
`sendmsg` that carries the message's first byte; the message says how
many (`"fds": n`), so the receiver knows which descriptors belong to it.
Binary values (keys, values, packets) are hex strings. See docs/daemon.md
for the requests.
"""

from __future__ import annotations

import array
import json
import os
import socket
from typing import Any

MAX_MESSAGE = 1 << 20
"""Longest message line (bytes, newline included): larger is a protocol error."""
MAX_FDS = 16
"""Most descriptors one message carries."""


class WireError(Exception):
    """The peer broke the framing (too long, not JSON, not an object, closed mid-message)."""


class Channel:
    """One end of a connection: `send(message, fds)` and `receive() -> (message, fds)`.

    Not thread-safe: one request at a time per channel (the client holds a lock).
    """

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self._buffer = bytearray()
        self._fds: list[int] = []

    def send(self, message: dict[str, Any], fds: list[int] | tuple[int, ...] = ()) -> None:
        """Send `message` (with `fds` attached, counted in its `fds` field)."""
        if fds:
            message = {**message, "fds": len(fds)}
        line = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        if len(line) > MAX_MESSAGE:
            raise WireError(f"message of {len(line)} bytes is over {MAX_MESSAGE}")
        if fds:
            sent = socket.send_fds(self.sock, [line], list(fds))
            line = line[sent:]
        if line:
            self.sock.sendall(line)

    def receive(self) -> tuple[dict[str, Any], list[int]] | None:
        """The next message and its descriptors; None when the peer closed between messages."""
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                return self._take(end)
            if len(self._buffer) >= MAX_MESSAGE:
                raise WireError(f"message longer than {MAX_MESSAGE} bytes")
            data, fds = self._read()
            if not data:
                if self._buffer:
                    raise WireError("connection closed in the middle of a message")
                return None
            self._buffer += data
            self._fds.extend(fds)

    def _read(self) -> tuple[bytes, list[int]]:
        fds = array.array("i")
        space = socket.CMSG_SPACE(MAX_FDS * fds.itemsize)
        data, ancillary, _flags, _addr = self.sock.recvmsg(65536, space)
        received: list[int] = []
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
                received.extend(fds)
        return data, received

    def _take(self, end: int) -> tuple[dict[str, Any], list[int]]:
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        try:
            message = json.loads(line)
        except (ValueError, UnicodeDecodeError) as error:
            self._drop_fds()
            raise WireError(f"message is not JSON: {error}") from None
        if not isinstance(message, dict):
            self._drop_fds()
            raise WireError("message is not a JSON object")
        count = message.get("fds", 0)
        if not isinstance(count, int) or count < 0 or count > len(self._fds):
            self._drop_fds()
            raise WireError(f"message says {count!r} descriptors, {len(self._fds)} came")
        fds, self._fds = self._fds[:count], self._fds[count:]
        return message, fds

    def _drop_fds(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []

    def close(self) -> None:
        """Close the socket and any descriptors received but not taken."""
        self._drop_fds()
        self.sock.close()


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a Unix socket (SO_PEERCRED)."""
    import struct

    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid
