"""The type domain: for each register or stack cell, the set of types it may hold.

Types are PREVAIL's tags (`uninit`, `map_fd_programs`, `map_fd`, `number`,
`ctx`, `packet`, `stack`, `shared`, `socket`, `btf_id`, `alloc_mem`,
`func`). An owner missing from the map may hold any type (top); an empty
set is bottom. Owners are named as in invariants: `r1`, `s[504...511]`.
"""

from __future__ import annotations

from collections.abc import Iterable

ORDER = (
    "uninit",
    "map_fd_programs",
    "map_fd",
    "number",
    "ctx",
    "packet",
    "stack",
    "shared",
    "socket",
    "btf_id",
    "alloc_mem",
    "func",
)
ALL: frozenset[str] = frozenset(ORDER)
_RANK = {t: i for i, t in enumerate(ORDER)}

# The offset variable that goes with each pointer type, and any extra
# variables (`rN.<name>`) that only mean something for that type.
KIND_VARS: dict[str, tuple[str, ...]] = {
    "ctx": ("ctx_offset",),
    "packet": ("packet_offset",),
    "stack": ("stack_offset", "stack_numeric_size"),
    "shared": ("shared_offset", "shared_region_size", "shared_map"),
    "map_fd": ("map_fd",),
    "map_fd_programs": ("map_fd_programs",),
    # socket_full: 1 for a full socket (struct bpf_sock), 0 for its sock_common part;
    # socket_id: the reference (the lookup's pc). Both are pybpf's, not printed.
    "socket": ("socket_offset", "socket_full", "socket_id"),
    "btf_id": ("btf_id_offset",),
    "alloc_mem": ("alloc_mem_offset", "alloc_mem_size", "alloc_mem_id"),
}
VALUE_KINDS = ("svalue", "uvalue")


def format_types(types: Iterable[str]) -> str:
    """PREVAIL's printing of a type set: `number` or `{ctx, packet}`."""
    items = sorted(types, key=_RANK.__getitem__)
    if len(items) == 1:
        return items[0]
    return "{" + ", ".join(items) + "}"


def parse_types(text: str) -> frozenset[str]:
    """The inverse of `format_types`."""
    text = text.strip()
    if text.startswith("{"):
        return frozenset(t.strip() for t in text[1:-1].split(",") if t.strip())
    return frozenset([text])


class TypeDomain:
    """Owner → possible types; missing owners are unconstrained.

    Owners known to hold the *same* type (a register copied from another, a
    spilled register) form an equality class, as in PREVAIL's union-find
    type domain: `rep` maps a member to its class's representative (the
    smallest name). All members of a class have the same type set.
    """

    __slots__ = ("types", "rep")

    def __init__(
        self, types: dict[str, frozenset[str]] | None = None, rep: dict[str, str] | None = None
    ) -> None:
        self.types: dict[str, frozenset[str]] = dict(types or {})
        self.rep: dict[str, str] = dict(rep or {})

    def copy(self) -> TypeDomain:
        """An independent copy."""
        return TypeDomain(self.types, self.rep)

    def get(self, owner: str) -> frozenset[str]:
        """The types `owner` may have."""
        return self.types.get(owner, ALL)

    def find(self, owner: str) -> str:
        """The representative of `owner`'s class."""
        return self.rep.get(owner, owner)

    def members(self, owner: str) -> list[str]:
        """Every owner in `owner`'s class (itself included)."""
        r = self.find(owner)
        return [r] + [o for o, x in self.rep.items() if x == r and o != r]

    def same(self, a: str, b: str) -> bool:
        """True when `a` and `b` are known to hold the same type."""
        return self._key(a) == self._key(b)

    def _key(self, owner: str) -> tuple[str, str]:
        # Owners of one and the same single type hold the same type too.
        ts = self.get(owner)
        if len(ts) == 1:
            return ("type", next(iter(ts)))
        return ("class", self.find(owner))

    def _detach(self, owner: str) -> None:
        r = self.find(owner)
        others = [o for o in self.members(owner) if o != owner]
        self.rep.pop(owner, None)
        if r == owner and others:
            new = min(others)
            for o in others:
                if o == new:
                    self.rep.pop(o, None)
                else:
                    self.rep[o] = new

    def _store(self, owner: str, ts: frozenset[str]) -> None:
        if ts == ALL:
            self.types.pop(owner, None)
        else:
            self.types[owner] = ts

    def set(self, owner: str, types: Iterable[str]) -> None:
        """Give `owner` new types (it leaves its equality class)."""
        self._detach(owner)
        self._store(owner, frozenset(types))

    def restrict(self, owner: str, types: frozenset[str]) -> None:
        """Assume `owner`'s type is in `types` (for its whole class)."""
        for o in self.members(owner):
            self._store(o, self.get(o) & types)

    def unify(self, dst: str, src: str) -> None:
        """`dst` now holds what `src` holds: same types, same class."""
        self.set(dst, self.get(src))
        if dst == src:
            return
        r = self.find(src)
        if dst < r:
            for o in self.members(src):
                self.rep[o] = dst
            self.rep.pop(dst, None)
        else:
            self.rep[dst] = r

    def forget(self, owner: str) -> None:
        """Make `owner` unconstrained."""
        self._detach(owner)
        self.types.pop(owner, None)

    def is_bottom(self) -> bool:
        """True when some owner can have no type at all."""
        return any(not ts for ts in self.types.values())

    def join(self, other: TypeDomain) -> TypeDomain:
        """Union per owner; equalities that hold on both sides."""
        types = {k: v | other.types[k] for k, v in self.types.items() if k in other.types}
        groups: dict[tuple, list[str]] = {}
        owners = set(self.types) | set(other.types) | set(self.rep) | set(other.rep)
        for o in owners:
            groups.setdefault((self._key(o), other._key(o)), []).append(o)
        rep = {}
        for members in groups.values():
            if len(members) > 1:
                r = min(members)
                rep.update({o: r for o in members if o != r})
        return TypeDomain(types, rep)

    def leq(self, other: TypeDomain) -> bool:
        """Inclusion (types and equalities)."""
        if not all(self.get(k) <= v for k, v in other.types.items()):
            return False
        return all(self.same(o, r) for o, r in other.rep.items())

    def strings(self, hide_stack_numbers: bool = True) -> set[str]:
        """The invariant lines; stack cells that are numbers are implied by the byte map."""
        out = set()
        done: set[str] = set()
        for owner in sorted(set(self.types) | set(self.rep)):
            if owner in done:
                continue
            members = sorted(self.members(owner))
            done.update(members)
            ts = self.get(owner)
            if ts == ALL:
                continue
            if len(ts) == 1:
                for m in members:
                    if hide_stack_numbers and m.startswith("s[") and ts == {"number"}:
                        continue
                    out.add(f"{m}.type={format_types(ts)}")
            else:
                first = members[0]
                out.add(f"{first}.type in {format_types(ts)}")
                out.update(f"{m}.type={first}.type" for m in members[1:])
        return out
