"""Clocks, randomness and CPU identity: ktime_get_*, jiffies64, prandom, CPU and NUMA ids.

The clocks are the host's: CLOCK_MONOTONIC for `bpf_ktime_get_ns`,
CLOCK_BOOTTIME for `bpf_ktime_get_boot_ns` and CLOCK_MONOTONIC_COARSE for
`bpf_ktime_get_coarse_ns`, as in kernel/bpf/helpers.c (hosts without a
clock fall back to CLOCK_MONOTONIC).

`bpf_jiffies64` counts ticks of `HZ` per second on CLOCK_MONOTONIC from the
kernel's INITIAL_JIFFIES (-300 s, wrapped to 32 bits, so that 32-bit
jiffies wrap five minutes after boot). `HZ` is the host kernel's CONFIG_HZ
when /boot/config-<release> says it, else 250 (the default of Debian,
Ubuntu and Fedora kernels), so that values compare with jiffies a real
kernel program on this host would see.
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

from ...platform.helper_ids import HelperId
from ..helpers import HelperEnv, HelperSpec
from . import helper_spec as _spec

DEFAULT_HZ = 250


def _config_hz() -> int:
    try:
        config = Path(f"/boot/config-{os.uname().release}").read_text()
    except (OSError, AttributeError):
        return DEFAULT_HZ
    for line in config.splitlines():
        if line.startswith("CONFIG_HZ="):
            try:
                return int(line.split("=", 1)[1])
            except ValueError:
                break
    return DEFAULT_HZ


HZ = _config_hz()
"""Jiffies per second (see the module docstring)."""

INITIAL_JIFFIES = (-300 * HZ) & 0xFFFFFFFF
"""The kernel's INITIAL_JIFFIES: jiffies_64 at boot."""

_MONOTONIC = time.CLOCK_MONOTONIC
_BOOTTIME = getattr(time, "CLOCK_BOOTTIME", _MONOTONIC)
# Python names no CLOCK_MONOTONIC_COARSE; Linux numbers it 6.
_COARSE = getattr(time, "CLOCK_MONOTONIC_COARSE", 6 if sys.platform == "linux" else _MONOTONIC)

_random = random.Random()


def ktime_get_ns(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """CLOCK_MONOTONIC in nanoseconds."""
    return time.clock_gettime_ns(_MONOTONIC)


def ktime_get_boot_ns(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """CLOCK_BOOTTIME (monotonic, counting suspend) in nanoseconds."""
    return time.clock_gettime_ns(_BOOTTIME)


def ktime_get_coarse_ns(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """CLOCK_MONOTONIC_COARSE (tick resolution) in nanoseconds."""
    return time.clock_gettime_ns(_COARSE)


def jiffies64(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """64-bit jiffies: INITIAL_JIFFIES + HZ ticks per second of CLOCK_MONOTONIC."""
    return INITIAL_JIFFIES + time.clock_gettime_ns(_MONOTONIC) * HZ // 1_000_000_000


def get_prandom_u32(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """A pseudo-random u32 (not for cryptography, like the kernel's prandom)."""
    return _random.getrandbits(32)


def get_smp_processor_id(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """The simulated CPU the program runs on (`env.cpu`)."""
    return env.cpu


def get_numa_node_id(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Always node 0: pybpf simulates one NUMA node."""
    return 0


HELPERS: list[HelperSpec] = [
    _spec(HelperId.KTIME_GET_NS, ktime_get_ns),
    _spec(HelperId.KTIME_GET_BOOT_NS, ktime_get_boot_ns),
    _spec(HelperId.KTIME_GET_COARSE_NS, ktime_get_coarse_ns),
    _spec(HelperId.JIFFIES64, jiffies64),
    _spec(HelperId.GET_PRANDOM_U32, get_prandom_u32),
    _spec(HelperId.GET_SMP_PROCESSOR_ID, get_smp_processor_id),
    _spec(HelperId.GET_NUMA_NODE_ID, get_numa_node_id),
]
"""The helpers of this module."""
