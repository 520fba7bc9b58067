"""Contexts built from named fields, for test runs: `process_id=42`, `user_ip=10.0.0.1`.

`context_image(layout, fields, base)` writes each field of a context struct
by name over `base` (or zeros): an integer (decimal or 0x…) in the field's
width, little-endian; an IPv4 or IPv6 address as its bytes in network order
(at the field's start); for a port field (its name ends in `port`) the
number in network order, as the contexts of eBPF for Windows and Linux's
sock_addr keep ports. Pointer fields come from the run (its data), not from
here. Errors name the field and list the struct's fields.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from ..errors import TestRunError
from ..platform.contexts import StructLayout

__all__ = ["context_image"]


def _value_bytes(name: str, size: int, text: str) -> bytes:
    text = text.strip()
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        address = None
    if address is not None:
        raw = address.packed
        if len(raw) > size:
            raise TestRunError(f"field {name} ({size} bytes) cannot hold {text}")
        return raw
    try:
        number = int(text, 0)
    except ValueError:
        raise TestRunError(f"field {name}: {text!r} is neither a number nor an address") from None
    if name.endswith("port"):
        if not 0 <= number <= 0xFFFF:
            raise TestRunError(f"field {name}: port {number} is outside 0..65535")
        return number.to_bytes(2, "big")
    if not -(1 << (8 * size - 1)) <= number < 1 << (8 * size):
        raise TestRunError(f"field {name}: {number} does not fit in {size} bytes")
    return (number % (1 << (8 * size))).to_bytes(size, "little")


def context_image(
    layout: StructLayout, fields: Mapping[str, str], base: bytes | None = None
) -> bytes:
    """`base` (or zeros) with each named field of `layout` set from its text value."""
    image = bytearray((base or b"")[: layout.size].ljust(layout.size, b"\0"))
    known = {f.name: f for f in layout.fields if not f.pointer}
    for name, text in fields.items():
        field = known.get(name)
        if field is None:
            names = ", ".join(known)
            raise TestRunError(f"struct {layout.name} has no settable field {name!r} ({names})")
        raw = _value_bytes(name, field.size, text)
        image[field.offset : field.offset + len(raw)] = raw
    return bytes(image)
