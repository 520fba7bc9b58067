"""bpf_spin_lock / bpf_spin_unlock on a `struct bpf_spin_lock` in a map value.

Programs running at once in several threads (the JIT runs without the GIL)
exclude each other as on a kernel's CPUs: each lock word's address has a
host lock, and the word holds 1 while taken, 0 when free (the kernel
hides the word from user space; here a released lock reads 0). The
kernel's verifier guarantees that a program releases what it takes, takes
no lock twice and calls nothing while holding one; pybpf's verifier does
not track held locks yet, so these helpers check at run time: taking a
lock this thread already holds, releasing one it does not hold, or waiting
longer than `LOCK_TIMEOUT` seconds (a program that returned holding it)
is a `ProgramFault`.
"""

from __future__ import annotations

import ctypes
import threading

from ...errors import ProgramFault
from ...platform.helper_ids import HelperId
from ..helpers import HelperEnv, HelperSpec
from . import helper_spec

LOCK_TIMEOUT = 5.0
"""Seconds a bpf_spin_lock waits before it reports a lock that is never released."""

_table_lock = threading.Lock()
_locks: dict[int, tuple[threading.Lock, list[int]]] = {}


def _lock_of(address: int) -> tuple[threading.Lock, list[int]]:
    with _table_lock:
        entry = _locks.get(address)
        if entry is None:
            entry = _locks[address] = (threading.Lock(), [0])
        return entry


def spin_lock(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Take the lock at r1 (4 writable bytes of a map value), waiting for other threads."""
    env.memory.check(r1, 4, write=True)
    lock, owner = _lock_of(r1)
    me = threading.get_ident()
    if owner[0] == me:
        raise ProgramFault(f"bpf_spin_lock of 0x{r1:x}: this program already holds it", address=r1)
    if not lock.acquire(timeout=LOCK_TIMEOUT):
        raise ProgramFault(
            f"bpf_spin_lock of 0x{r1:x}: not released for {LOCK_TIMEOUT} s", address=r1
        )
    owner[0] = me
    ctypes.c_uint32.from_address(r1).value = 1
    return 0


def spin_unlock(env: HelperEnv, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """Release the lock at r1, which this thread must hold."""
    env.memory.check(r1, 4, write=True)
    lock, owner = _lock_of(r1)
    if owner[0] != threading.get_ident():
        raise ProgramFault(f"bpf_spin_unlock of 0x{r1:x}: the lock is not held", address=r1)
    ctypes.c_uint32.from_address(r1).value = 0
    owner[0] = 0
    lock.release()
    return 0


HELPERS: list[HelperSpec] = [
    helper_spec(HelperId.SPIN_LOCK, spin_lock),
    helper_spec(HelperId.SPIN_UNLOCK, spin_unlock),
]
"""The helpers of this module."""
