"""bpftool's argument words, parsed: `id N`, `pinned PATH`, `name NAME`, `key [hex] BYTES`.

bpftool takes its arguments as words rather than options (`map lookup id 3
key hex 01 00 00 00`). Bytes are numbers, one per word, as `strtoul` reads
them (decimal, `0x..` hex, `0..` octal), or two-digit hex words after
`hex`; a value must be exactly as long as the map says. Everything here
raises `BadInput` naming the word that is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

from .main import BadInput

TARGET_WORDS = ("id", "pinned", "name")
KEYWORDS = ("key", "value", "any", "noexist", "exist")
UPDATE_FLAGS = {"any": 0, "noexist": 1, "exist": 2}


@dataclass(frozen=True)
class Target:
    """Which loaded program or map a command means: `id`, `pinned` or `name`, and its value."""

    how: str
    what: str | int


def is_target(words: list[str]) -> bool:
    """True when `words` start with `id`, `pinned` or `name` (a loaded thing, not a file)."""
    return bool(words) and words[0] in TARGET_WORDS


def take_target(words: list[str], noun: str) -> tuple[Target, list[str]]:
    """The target at the front of `words`, and the words after it."""
    if len(words) < 2 or words[0] not in TARGET_WORDS:
        raise BadInput(f"expected `id N`, `pinned PATH` or `name NAME` for the {noun}")
    how, what = words[0], words[1]
    if how == "id":
        try:
            number = int(what, 0)
        except ValueError:
            raise BadInput(f"id {what!r} is not a number") from None
        if number <= 0:
            raise BadInput(f"id {what!r} is not a valid id")
        return Target("id", number), words[2:]
    return Target(how, what), words[2:]


def _byte(word: str, hex_mode: bool, what: str) -> int:
    try:
        value = int(word, 16) if hex_mode else int(word, 0)
    except ValueError:
        raise BadInput(f"{what}: {word!r} is not a byte") from None
    if not 0 <= value <= 255 or (hex_mode and len(word) > 2):
        raise BadInput(f"{what}: {word!r} is not a byte")
    return value


def take_bytes(words: list[str], what: str, size: int) -> tuple[bytes, list[str]]:
    """`size` bytes from the front of `words` (after an optional `hex`), and the rest."""
    hex_mode = bool(words) and words[0] == "hex"
    rest = words[1:] if hex_mode else words
    if len(rest) < size or any(word in KEYWORDS for word in rest[:size]):
        raise BadInput(f"{what}: expected {size} bytes, got fewer")
    data = bytes(_byte(word, hex_mode, what) for word in rest[:size])
    return data, rest[size:]


def take_keyword(words: list[str], keyword: str) -> list[str]:
    """The words after `keyword`, which must come first."""
    if not words or words[0] != keyword:
        found = words[0] if words else "nothing"
        raise BadInput(f"expected `{keyword}`, found {found!r}")
    return words[1:]


def no_more(words: list[str]) -> None:
    """Refuse words left over."""
    if words:
        raise BadInput(f"unexpected argument {words[0]!r}")


def take_pairs(words: list[str], allowed: dict[str, type]) -> dict[str, object]:
    """`word value` pairs (`type hash key 4 …`), each word once, values converted."""
    found: dict[str, object] = {}
    while words:
        word = words[0]
        if word not in allowed:
            raise BadInput(f"unexpected argument {word!r} (expected one of {', '.join(allowed)})")
        if len(words) < 2:
            raise BadInput(f"{word}: missing its value")
        if word in found:
            raise BadInput(f"{word} given twice")
        kind = allowed[word]
        try:
            found[word] = int(words[1], 0) if kind is int else words[1]
        except ValueError:
            raise BadInput(f"{word}: {words[1]!r} is not a number") from None
        words = words[2:]
    return found
