"""Legacy packet loads: `LD_ABS` / `LD_IND` (`r0 = ntohl(*(u32 *)(skb->data + k))`).

Socket filters (and tc programs) may still read the packet through these
instructions instead of direct packet access. The kernel rewrites each one
into a call of `bpf_skb_load_helper_{8,16,32}_no_cache(skb, offset)`
(net/core/filter.c, `bpf_gen_ld_abs`) followed by "if the result is
negative, return 0": the offset is `imm` (LD_ABS) or `src + imm` (LD_IND)
taken as a signed 32-bit int, relative to skb->data (the network header of
a socket filter, the MAC header of a tc program); the value is read
big-endian and zero-extended into r0; a load past the end of the packet,
or at a negative offset, ends the program with r0 = 0. The context must be
in r6 (the kernel's verifier requires it).

Not modelled: the negative `SKF_NET_OFF` / `SKF_LL_OFF` bases of classic
BPF (they read relative to the network or MAC header); here every negative
offset ends the program, as one below both bases does in the kernel.
"""

from __future__ import annotations

import ctypes

from ..errors import ProgramFault
from .memory import ContextRegion, Memory

__all__ = ["load_abs"]

_M32 = 0xFFFFFFFF


def load_abs(memory: Memory, ctx: int, offset: int, size: int) -> int | None:
    """The big-endian `size`-byte value at skb->data + `offset` (an int32), or None past the end."""
    region = memory.find(ctx)
    if not isinstance(region, ContextRegion) or region.start != ctx:
        raise ProgramFault("LD_ABS/LD_IND: r6 is not the context", address=ctx)
    pointers = region.pointers
    if "data" not in pointers or "data_end" not in pointers:
        raise ProgramFault("LD_ABS/LD_IND: the context has no packet", address=ctx)
    offset &= _M32
    if offset >> 31:
        return None
    data = pointers["data"]
    if offset + size > pointers["data_end"] - data:
        return None
    return int.from_bytes(ctypes.string_at(data + offset, size), "big")
