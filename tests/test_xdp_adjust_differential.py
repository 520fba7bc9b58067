"""XDP programs that move the frame's bounds: JIT, interpreter and the kernel agree.

Issue 10 item 6: a VLAN-popping XDP program was reported to return
XDP_ABORTED in the JIT after a successful `bpf_xdp_adjust_head` with a
positive delta, where the interpreter and the kernel passed the frame.
`examples/xdp_vlan.c` pops a tag (positive delta), pushes one (negative
delta) and trims then grows the tail; `examples/xdp_meta.c` grows and
shrinks the metadata area. Each program reloads the context's pointers
after the helper and reads or writes the frame through them, so a helper
that moved the wrong pointer, or a stale pointer after the call, shows in
the verdict or the output frame.

Every case runs in both engines (the JIT's native helpers in
`engine.jit.native_packet`, the interpreter's Python twins in
`runtime.linux_helpers.packet`), with and without metadata in front of
the frame (`ctx_in`), once and repeated (the kernel does not reset the
frame between repetitions, so the bounds keep moving), and is compared
with the kernel's `bpf_prog_test_run` where `bpf()` is available.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from pybpf import load
from pybpf.errors import PybpfError
from pybpf.testing import packets as P
from pybpf.testing.kernel import KernelError, KernelObject, kernel_available, possible_cpus

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX = 0, 1, 2, 3
ETH_P_8021Q, ETH_P_8021AD = 0x8100, 0x88A8

INNER = P.udp_packet()


def _tagged(*tags: tuple[int, int]) -> bytes:
    """INNER with 802.1Q/802.1ad tags (tpid, tci) inserted after the MAC addresses."""
    tags_bytes = b"".join(struct.pack("!HH", tpid, tci) for tpid, tci in tags)
    return INNER[:12] + tags_bytes + INNER[12:]


FRAMES = {
    "tagged": _tagged((ETH_P_8021Q, 7)),
    "qinq": _tagged((ETH_P_8021AD, 7), (ETH_P_8021Q, 9)),
    "untagged": INNER,
    "tag_cut": _tagged((ETH_P_8021Q, 7))[:17],  # the tag ends past data_end
    "eth_only": INNER[:14],
    "tcp": P.tcp_packet(),
}
#: bytes of metadata in front of the frame (given through ctx_in's `data`)
METAS = (0, 8, 32)
REPEATS = (1, 3, 64)
VLAN_PROGRAMS = ("xdp_vlan_pop", "xdp_vlan_push", "xdp_tail")


def _xdp_md(meta: int, size: int) -> bytes:
    # xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex
    return struct.pack("<6I", meta, size, 0, 0, 0, 0)


def _cases():
    for name, frame in FRAMES.items():
        for meta in METAS:
            for repeat in REPEATS:
                yield name, bytes(range(0x40, 0x40 + meta)) + frame, meta, repeat


def _run(prog, data: bytes, meta: int, repeat: int) -> tuple:
    ctx = _xdp_md(meta, len(data)) if meta else None
    try:
        run = prog.test_run(data=data, ctx=ctx, repeat=repeat)
    except PybpfError as refused:
        if getattr(refused, "errno", None) is None:
            raise
        return ("error", refused.errno)
    return (run.retval, bytes(run.data_out))


def _run_kernel(k: KernelObject, program: str, data: bytes, meta: int, repeat: int) -> tuple:
    ctx = _xdp_md(meta, len(data)) if meta else None
    try:
        run = k.test_run(program, data, ctx_in=ctx, repeat=repeat, cpu=0)
    except KernelError as refused:
        return ("error", refused.errno)
    return (run.retval, run.data_out)


def _objects(path: Path):
    objs = {e: load(path, ncpus=possible_cpus(), engine=e) for e in ("interpreter", "jit")}
    return objs


def _kernel(path: Path):
    if not kernel_available():
        return None
    try:
        return KernelObject(path)
    except KernelError:
        return None  # this kernel refuses the object (see xdp_meta.c)


@pytest.mark.parametrize("program", VLAN_PROGRAMS)
def test_vlan_and_tail_engines_and_kernel_agree(program: str) -> None:
    path = EXAMPLES / "xdp_vlan.o"
    objs = _objects(path)
    k = _kernel(path)
    try:
        for name, data, meta, repeat in _cases():
            where = f"{program} {name} meta={meta} repeat={repeat}"
            jit = _run(objs["jit"].programs[program], data, meta, repeat)
            interpreter = _run(objs["interpreter"].programs[program], data, meta, repeat)
            assert jit == interpreter, where
            if k is not None:
                assert jit == _run_kernel(k, program, data, meta, repeat), where
        assert objs["jit"].programs[program].engine_kind == "jit"
        assert objs["interpreter"].programs[program].engine_kind == "interpreter"
        assert (
            objs["jit"].maps["vlan_stats"].items() == objs["interpreter"].maps["vlan_stats"].items()
        )
        if k is not None:
            theirs = dict(k.map("vlan_stats").items())
            ours = {bytes(key): bytes(v) for key, v in objs["jit"].maps["vlan_stats"].items()}
            assert ours == theirs
    finally:
        if k is not None:
            k.close()
        for obj in objs.values():
            obj.close()


def test_vlan_pop_passes_the_popped_frame() -> None:
    """The reported case, spelled out: positive delta, then XDP_PASS with the tag gone."""
    with load(EXAMPLES / "xdp_vlan.o", engine="jit") as obj:
        prog = obj.programs["xdp_vlan_pop"]
        run = prog.test_run(data=FRAMES["tagged"])
        assert prog.engine_kind == "jit"
        assert (run.retval, bytes(run.data_out)) == (XDP_PASS, INNER)
        # The metadata moves with the frame's start and stays in front of it.
        meta = bytes(range(8))
        data = meta + FRAMES["tagged"]
        run = prog.test_run(data=data, ctx=_xdp_md(8, len(data)))
        assert (run.retval, bytes(run.data_out)) == (XDP_PASS, meta + INNER)


def test_vlan_push_then_pop_round_trip() -> None:
    with load(EXAMPLES / "xdp_vlan.o", engine="jit") as obj:
        pushed = obj.programs["xdp_vlan_push"].test_run(data=INNER)
        assert pushed.retval == XDP_PASS
        assert bytes(pushed.data_out) == _tagged((ETH_P_8021Q, 42))
        popped = obj.programs["xdp_vlan_pop"].test_run(data=bytes(pushed.data_out))
        assert (popped.retval, bytes(popped.data_out)) == (XDP_PASS, INNER)


def test_tail_trim_and_grow() -> None:
    with load(EXAMPLES / "xdp_vlan.o", engine="jit") as obj:
        run = obj.programs["xdp_tail"].test_run(data=INNER)
        size = len(INNER) + 4
        assert run.retval == XDP_TX
        assert bytes(run.data_out) == bytes([size]) + INNER[1:-4] + bytes(8)


def test_meta_engines_agree() -> None:
    """adjust_meta grown then shrunk. The 6.18 kernel here refuses the helper at load
    for a test-run XDP program; where a kernel loads the object it is compared too."""
    path = EXAMPLES / "xdp_meta.o"
    objs = _objects(path)
    k = _kernel(path)
    try:
        for name, data, meta, repeat in _cases():
            where = f"xdp_meta_mark {name} meta={meta} repeat={repeat}"
            jit = _run(objs["jit"].programs["xdp_meta_mark"], data, meta, repeat)
            interpreter = _run(objs["interpreter"].programs["xdp_meta_mark"], data, meta, repeat)
            assert jit == interpreter, where
            if k is not None:
                assert jit == _run_kernel(k, "xdp_meta_mark", data, meta, repeat), where
        run = objs["jit"].programs["xdp_meta_mark"].test_run(data=INNER)
        # 4 bytes of metadata are left: zero, since the mark was written 4 bytes in.
        assert (run.retval, bytes(run.data_out)) == (XDP_PASS, bytes(4) + INNER)
        assert objs["jit"].programs["xdp_meta_mark"].engine_kind == "jit"
    finally:
        if k is not None:
            k.close()
        for obj in objs.values():
            obj.close()
