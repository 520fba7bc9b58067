"""`ForwardingTable`: the interfaces, routes and neighbours `bpf_fib_lookup` consults.

The kernel answers `bpf_fib_lookup` from its FIB and neighbour tables; pybpf
answers from the `ForwardingTable` of the execution context
(`obj.context.fib`), set through this API or read from a JSON file
(`ForwardingTable.load(path)`, `pybpf prog run --fib FILE`):

```json
{
  "interfaces": [{"ifindex": 2, "name": "eth0", "mac": "02:00:00:00:00:01", "mtu": 1500,
                  "addresses": ["10.0.0.1/24", "2001:db8::1/64"], "forwarding": true}],
  "routes": [{"dst": "10.20.0.0/16", "via": "10.0.0.254", "dev": "eth0", "metric": 100},
             {"dst": "192.0.2.0/24", "type": "blackhole"},
             {"dst": "0.0.0.0/0", "via": "10.0.0.1", "dev": 2, "table": 100, "mtu": 1400}],
  "neighbours": [{"address": "10.0.0.254", "mac": "02:00:00:00:00:fe", "dev": "eth0"}]
}
```

Every key but an interface's `ifindex`, a route's `dst` and a neighbour's
`address`/`mac`/`dev` is optional. `dev` is an ifindex or an interface
name; route `type` is unicast (default), blackhole, unreachable, prohibit
or local; `table` defaults to main (254); `src` is the preferred source;
`mtu` counts in the MTU check only with `"mtu_lock": true` (`mtu lock N`).
The loopback device (ifindex 1, `lo`, MTU 65536, forwarding on) always
exists, as in any network namespace, so an empty table answers "no
route" (BPF_FIB_LKUP_RET_NOT_FWDED) for every destination.

As in the kernel, an interface's addresses add a `local` route for each
address (table local, 255) and a connected route for its subnet (table
main, no gateway), and a lookup without BPF_FIB_LOOKUP_DIRECT tries the
local table, then main, then default (253): the kernel's default rules.
Within a table the longest prefix wins, then the lowest metric.
Not modelled: policy rules beyond the defaults, multipath, lightweight
tunnels, VRFs (l3mdev), link state.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "RT_TABLE_DEFAULT",
    "RT_TABLE_LOCAL",
    "RT_TABLE_MAIN",
    "ForwardingTable",
    "Interface",
    "Neighbour",
    "Route",
]

RT_TABLE_DEFAULT, RT_TABLE_MAIN, RT_TABLE_LOCAL = 253, 254, 255
ROUTE_TYPES = ("unicast", "local", "blackhole", "unreachable", "prohibit")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _mac(text: str | bytes) -> bytes:
    if isinstance(text, bytes):
        if len(text) != 6:
            raise ValueError(f"a MAC address has 6 bytes, not {len(text)}")
        return text
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6:
        raise ValueError(f"bad MAC address {text!r}")
    return bytes(int(p, 16) for p in parts)


@dataclass(frozen=True, slots=True)
class Interface:
    """A network device: ifindex, name, MAC, MTU, addresses (with prefix), forwarding, up."""

    ifindex: int
    name: str = ""
    mac: bytes = bytes(6)
    mtu: int = 1500
    addresses: tuple[ipaddress.IPv4Interface | ipaddress.IPv6Interface, ...] = ()
    forwarding: bool = True
    up: bool = True


@dataclass(frozen=True, slots=True)
class Route:
    """A route: destination prefix, type, gateway, device, metric, table, MTU, preferred source."""

    dst: Network
    type: str = "unicast"
    via: Address | None = None
    dev: int = 0
    metric: int = 0
    table: int = RT_TABLE_MAIN
    mtu: int = 0
    src: Address | None = None
    mtu_lock: bool = False

    def path_mtu(self, dev: Interface) -> int:
        """The MTU a lookup checks against: a locked route MTU, else the device's.

        As ip_mtu_from_fib_result / ip6_mtu_from_fib6: an unlocked route MTU
        (`mtu 1300` without `lock`) does not count (without fwd_use_pmtu).
        """
        if self.mtu_lock and self.mtu:
            return self.mtu
        if self.dst.version == 6:
            return min(max(dev.mtu, 1280), 65535)
        return min(dev.mtu, 65535)


@dataclass(frozen=True, slots=True)
class Neighbour:
    """A resolved (NUD_VALID) neighbour: its address on device `dev` has MAC `mac`."""

    address: Address
    mac: bytes
    dev: int


LOOPBACK = Interface(1, "lo", bytes(6), 65536)


@dataclass(slots=True)
class ForwardingTable:
    """Interfaces, routes and neighbours (see the module docstring); loopback is always there."""

    interfaces: dict[int, Interface] = field(default_factory=lambda: {1: LOOPBACK})
    routes: list[Route] = field(default_factory=list)
    neighbours: list[Neighbour] = field(default_factory=list)

    # -- building ------------------------------------------------------------------

    def add_interface(
        self,
        ifindex: int,
        name: str = "",
        mac: str | bytes = bytes(6),
        mtu: int = 1500,
        addresses: Iterable[str] = (),
        forwarding: bool = True,
        up: bool = True,
    ) -> Interface:
        """Add (or replace) interface `ifindex`; `addresses` as "10.0.0.1/24"."""
        iface = Interface(
            ifindex,
            name or f"if{ifindex}",
            _mac(mac),
            mtu,
            tuple(ipaddress.ip_interface(a) for a in addresses),
            forwarding,
            up,
        )
        self.interfaces[ifindex] = iface
        return iface

    def device(self, dev: int | str) -> int:
        """The ifindex of `dev` (an ifindex or an interface name); KeyError if unknown."""
        if isinstance(dev, int):
            if dev not in self.interfaces:
                raise KeyError(f"no interface with ifindex {dev}")
            return dev
        for iface in self.interfaces.values():
            if iface.name == dev:
                return iface.ifindex
        raise KeyError(f"no interface named {dev!r}")

    def add_route(
        self,
        dst: str,
        via: str | None = None,
        dev: int | str | None = None,
        *,
        type: str = "unicast",  # noqa: A002 - the iproute2 word
        metric: int | None = None,
        table: int = RT_TABLE_MAIN,
        mtu: int = 0,
        src: str | None = None,
        mtu_lock: bool = False,
    ) -> Route:
        """Add a route ("10.0.0.0/8" or "default"); a unicast route needs `dev`.

        `metric` defaults as in iproute2: 0 for IPv4, 1024 for IPv6.
        """
        if type not in ROUTE_TYPES:
            raise ValueError(f"route type {type!r} is not one of {', '.join(ROUTE_TYPES)}")
        gateway = ipaddress.ip_address(via) if via else None
        if dst == "default":
            dst = "::/0" if gateway is not None and gateway.version == 6 else "0.0.0.0/0"
        network = ipaddress.ip_network(dst, strict=False)
        ifindex = self.device(dev) if dev is not None else 0
        if type in ("unicast", "local") and not ifindex:
            raise ValueError(f"a {type} route to {dst} needs a device")
        if metric is None:
            metric = 0 if network.version == 4 else 1024
        route = Route(
            network,
            type,
            gateway,
            ifindex,
            metric,
            table,
            mtu,
            ipaddress.ip_address(src) if src else None,
            mtu_lock,
        )
        self.routes.append(route)
        return route

    def add_neighbour(self, address: str, mac: str | bytes, dev: int | str) -> Neighbour:
        """Add a resolved neighbour: `address` on `dev` has MAC `mac`."""
        neighbour = Neighbour(ipaddress.ip_address(address), _mac(mac), self.device(dev))
        self.neighbours.append(neighbour)
        return neighbour

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ForwardingTable:
        """A table from the JSON document of the module docstring (ValueError/KeyError if bad)."""
        table = cls()
        for iface in data.get("interfaces", ()):
            table.add_interface(
                int(iface["ifindex"]),
                iface.get("name", ""),
                iface.get("mac", "00:00:00:00:00:00"),
                int(iface.get("mtu", 1500)),
                iface.get("addresses", ()),
                bool(iface.get("forwarding", True)),
                bool(iface.get("up", True)),
            )
        for route in data.get("routes", ()):
            table.add_route(
                route["dst"],
                route.get("via"),
                route.get("dev"),
                type=route.get("type", "unicast"),
                metric=int(route["metric"]) if "metric" in route else None,
                table=int(route.get("table", RT_TABLE_MAIN)),
                mtu=int(route.get("mtu", 0)),
                src=route.get("src"),
                mtu_lock=bool(route.get("mtu_lock", False)),
            )
        for neighbour in data.get("neighbours", ()):
            table.add_neighbour(neighbour["address"], neighbour["mac"], neighbour["dev"])
        return table

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ForwardingTable:
        """A table from a JSON file (see the module docstring)."""
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a forwarding table is a JSON object")
        return cls.from_dict(data)

    # -- looking up ----------------------------------------------------------------

    def _implicit_routes(self, version: int) -> list[Route]:
        routes = []
        for iface in self.interfaces.values():
            for address in iface.addresses:
                if address.version != version:
                    continue
                host = ipaddress.ip_network(address.ip)
                routes.append(
                    Route(host, "local", None, iface.ifindex, 0, RT_TABLE_LOCAL, 0, address.ip)
                )
                if address.network.prefixlen < address.max_prefixlen:
                    routes.append(
                        Route(
                            address.network,
                            "unicast",
                            None,
                            iface.ifindex,
                            0 if version == 4 else 256,
                            RT_TABLE_MAIN,
                            0,
                            address.ip,
                        )
                    )
        return routes

    def has_table(self, table: int, version: int) -> bool:
        """Whether routing table `table` exists (main and local always do)."""
        if table in (RT_TABLE_MAIN, RT_TABLE_LOCAL):
            return True
        return any(r.table == table and r.dst.version == version for r in self.routes)

    def route(self, dst: Address, tables: Iterable[int], oif: int = 0) -> Route | None:
        """The route to `dst`: the first table with a match, longest prefix, lowest metric.

        `oif` (an output lookup) keeps only routes out of that device, as the
        kernel skips next hops on other devices.
        """
        candidates = [
            r
            for r in self.routes + self._implicit_routes(dst.version)
            if r.dst.version == dst.version and dst in r.dst
        ]
        for table in tables:
            matches = [
                r
                for r in candidates
                if r.table == table and (not oif or r.type != "unicast" or r.dev == oif)
            ]
            if matches:
                return max(matches, key=lambda r: (r.dst.prefixlen, -r.metric))
        return None

    def neighbour(self, address: Address, dev: int) -> Neighbour | None:
        """The resolved neighbour `address` on `dev`, or None."""
        for neighbour in self.neighbours:
            if neighbour.dev == dev and neighbour.address == address:
                return neighbour
        return None

    def source_for(self, route: Route, dst: Address) -> Address | None:
        """The preferred source of `route` (its own, or an address of its device), or None."""
        if route.src is not None:
            return route.src
        iface = self.interfaces.get(route.dev)
        if iface is None:
            return None
        mine = [a for a in iface.addresses if a.version == dst.version]
        if dst.version == 6:
            mine = [a for a in mine if not a.ip.is_link_local]
        for address in mine:
            if dst in address.network:
                return address.ip
        return mine[0].ip if mine else None
