"""Context layouts (`platform.contexts`) and context access in the interpreter."""

from __future__ import annotations

import platform
import shutil
import subprocess
from pathlib import Path

import pytest

from pybpf.engine.interpreter import Interpreter
from pybpf.errors import ProgramFault
from pybpf.isa import assemble
from pybpf.platform import ProgramType
from pybpf.platform.contexts import SK_BUFF, XDP_MD
from pybpf.platform.program_type_info import context_access

XDP_OFFSETS = {
    "data": 0,
    "data_end": 4,
    "data_meta": 8,
    "ingress_ifindex": 12,
    "rx_queue_index": 16,
    "egress_ifindex": 20,
}


def test_xdp_md_layout() -> None:
    assert XDP_MD.size == 24
    assert {f.name: f.offset for f in XDP_MD.fields} == XDP_OFFSETS
    assert XDP_MD.pointers == ("data", "data_end", "data_meta")


def test_sk_buff_layout() -> None:
    assert SK_BUFF.size == 192
    assert SK_BUFF.field("cb").offset == 48 and SK_BUFF.field("cb").size == 20
    assert SK_BUFF.field("data").offset == 76
    assert SK_BUFF.field("data_meta").offset == 140
    assert SK_BUFF.field("hwtstamp").offset == 184
    assert SK_BUFF.pointers == ("data", "data_end", "data_meta")
    # Fields never overlap and stay inside the struct.
    spans = sorted((f.offset, f.end) for f in SK_BUFF.fields)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert spans[-1][1] <= SK_BUFF.size


@pytest.mark.skipif(not Path("/usr/include/linux/bpf.h").exists(), reason="no linux/bpf.h")
@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_layouts_match_uapi_header(tmp_path: Path) -> None:
    lines = ["#include <linux/bpf.h>", "#include <stdio.h>", "#include <stddef.h>", "int main(){"]
    for layout, struct in ((XDP_MD, "xdp_md"), (SK_BUFF, "__sk_buff")):
        lines.append(f'printf("{struct} sizeof %zu\\n", sizeof(struct {struct}));')
        for f in layout.fields:
            lines.append(
                f'printf("{struct} {f.name} %zu %zu\\n", offsetof(struct {struct}, {f.name}),'
                f" sizeof(((struct {struct} *)0)->{f.name}));"
            )
    lines.append("return 0;}")
    (tmp_path / "layout.c").write_text("\n".join(lines))
    subprocess.run(["cc", "-o", str(tmp_path / "layout"), str(tmp_path / "layout.c")], check=True)
    out = subprocess.run([str(tmp_path / "layout")], capture_output=True, text=True, check=True)
    expected = []
    for layout, struct in ((XDP_MD, "xdp_md"), (SK_BUFF, "__sk_buff")):
        expected.append(f"{struct} sizeof {layout.size}")
        expected += [f"{struct} {f.name} {f.offset} {f.size}" for f in layout.fields]
    assert out.stdout.split("\n")[:-1] == expected


@pytest.mark.parametrize(
    ("prog_type", "readable", "unreadable", "writable", "read_only"),
    [
        (ProgramType.XDP, "data", "egress_ifindex", None, "ingress_ifindex"),
        (ProgramType.SOCKET_FILTER, "len", "data", "cb", "mark"),
        (ProgramType.SCHED_CLS, "data_end", "family", "mark", "len"),
    ],
)
def test_access_rules(
    prog_type: ProgramType, readable: str, unreadable: str, writable: str | None, read_only: str
) -> None:
    access = context_access(prog_type)
    assert access is not None
    assert readable in access.readable and unreadable not in access.readable
    assert read_only not in access.writable
    if writable is not None:
        assert writable in access.writable
    else:
        assert not access.writable


# -- the interpreter's view of a context region -------------------------------


def _run_on_ctx(text: str, prog_type: ProgramType, image: bytes, pointers: dict[str, int]):
    vm = Interpreter(assemble(text))
    access = context_access(prog_type)
    assert access is not None
    region = vm.memory.allocate_context(image, "ctx", access, pointers)
    try:
        return vm.run(region.start)
    finally:
        vm.close()


XDP_POINTERS = {
    "data": 0x7F00_1234_5678,
    "data_end": 0x7F00_1234_5700,
    "data_meta": 0x7F00_1234_5670,
}


@pytest.mark.parametrize(("name", "offset"), [("data", 0), ("data_end", 4), ("data_meta", 8)])
def test_pointer_field_load_gives_full_address(name: str, offset: int) -> None:
    r0 = _run_on_ctx(
        f"r0 = *(u32 *)(r1 + {offset})\nexit", ProgramType.XDP, bytes(24), XDP_POINTERS
    )
    assert r0 == XDP_POINTERS[name]


def test_plain_field_load_gives_stored_value() -> None:
    image = bytearray(24)
    image[12:16] = (7).to_bytes(4, "little")
    r0 = _run_on_ctx("r0 = *(u32 *)(r1 + 12)\nexit", ProgramType.XDP, bytes(image), XDP_POINTERS)
    assert r0 == 7


@pytest.mark.parametrize(
    "text",
    [
        "r0 = *(u16 *)(r1 + 0)\nexit",  # narrow read of a pointer field
        "r0 = *(u64 *)(r1 + 0)\nexit",  # xdp_md accesses are 32-bit only
        "r0 = *(u32 *)(r1 + 20)\nexit",  # egress_ifindex: devmap programs only
        "r0 = *(u32 *)(r1 + 24)\nexit",  # past the struct
        "*(u32 *)(r1 + 12) = 1\nr0 = 0\nexit",  # xdp_md is read-only
        "r2 = 1\nlock *(u32 *)(r1 + 12) += r2\nr0 = 0\nexit",  # no atomics on the context
    ],
)
def test_bad_xdp_context_access_faults(text: str) -> None:
    with pytest.raises(ProgramFault) as info:
        _run_on_ctx(text, ProgramType.XDP, bytes(24), XDP_POINTERS)
    assert info.value.region == "ctx"
    assert info.value.pc is not None


SKB_POINTERS = {"data": 0x1000, "data_end": 0x1040, "data_meta": 0x1000}


def test_sched_cls_writes_mark_and_reads_it_back() -> None:
    text = "r2 = 0x55\n*(u32 *)(r1 + 8) = r2\nr0 = *(u32 *)(r1 + 8)\nexit"
    assert _run_on_ctx(text, ProgramType.SCHED_CLS, bytes(192), SKB_POINTERS) == 0x55


def test_sched_cls_narrow_read_of_plain_field() -> None:
    image = bytearray(192)
    image[16:18] = b"\x08\x00"  # protocol, big-endian ETH_P_IP
    r0 = _run_on_ctx("r0 = *(u16 *)(r1 + 16)\nexit", ProgramType.SCHED_CLS, bytes(image), {})
    assert r0 == 0x0008


@pytest.mark.parametrize(
    ("prog_type", "text"),
    [
        (ProgramType.SCHED_CLS, "*(u32 *)(r1 + 0) = r1\nr0 = 0\nexit"),  # len is read-only
        (ProgramType.SOCKET_FILTER, "r2 = 1\n*(u32 *)(r1 + 8) = r2\nr0 = 0\nexit"),  # mark
        (ProgramType.SOCKET_FILTER, "r0 = *(u32 *)(r1 + 76)\nexit"),  # no data pointer
        (ProgramType.SCHED_CLS, "r0 = *(u32 *)(r1 + 88)\nexit"),  # family: sk_skb only
        (ProgramType.SCHED_CLS, "r0 = *(u32 *)(r1 + 182)\nexit"),  # padding
    ],
)
def test_bad_skb_context_access_faults(prog_type: ProgramType, text: str) -> None:
    with pytest.raises(ProgramFault) as info:
        _run_on_ctx(text, prog_type, bytes(192), SKB_POINTERS)
    assert info.value.region == "ctx"


def test_socket_filter_writes_cb() -> None:
    text = "r2 = 9\n*(u32 *)(r1 + 52) = r2\nr0 = *(u64 *)(r1 + 48)\nexit"
    assert _run_on_ctx(text, ProgramType.SOCKET_FILTER, bytes(192), {}) == 9 << 32


#: The kernel's pt_regs names → user space's <asm/ptrace.h> ones.
_UAPI_REGS = {n: "r" + n for n in ("bp", "bx", "ax", "cx", "dx", "si", "di", "ip", "sp")}
_UAPI_REGS.update(orig_ax="orig_rax", flags="eflags")


@pytest.mark.skipif(not Path("/usr/include/linux/bpf.h").exists(), reason="no linux/bpf.h")
@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
@pytest.mark.skipif(platform.machine() != "x86_64", reason="pt_regs is x86-64's")
def test_tracing_and_sk_lookup_layouts_match_headers(tmp_path: Path) -> None:
    from pybpf.platform.contexts import BPF_FLOW_KEYS_SIZE, PERF_EVENT_DATA, PT_REGS, SK_LOOKUP

    lines = [
        "#include <linux/bpf.h>",
        "#include <linux/bpf_perf_event.h>",
        "#include <asm/ptrace.h>",
    ]
    lines += ["#include <stdio.h>", "#include <stddef.h>", "int main(){"]
    checks = []  # (C expression, expected value)
    for layout, struct in ((SK_LOOKUP, "bpf_sk_lookup"), (PT_REGS, "pt_regs")):
        checks.append((f"sizeof(struct {struct})", layout.size))
        for f in layout.fields:
            name = _UAPI_REGS.get(f.name, f.name) if struct == "pt_regs" else f.name
            checks.append((f"offsetof(struct {struct}, {name})", f.offset))
            if f.name != "remote_port":  # a __be16, whose padding pybpf's field covers
                checks.append((f"sizeof(((struct {struct} *)0)->{name})", f.size))
    checks.append(("sizeof(struct bpf_perf_event_data)", PERF_EVENT_DATA.size))
    for name in ("sample_period", "addr"):
        checks.append(
            (f"offsetof(struct bpf_perf_event_data, {name})", PERF_EVENT_DATA.field(name).offset)
        )
    checks.append(("sizeof(struct bpf_flow_keys)", BPF_FLOW_KEYS_SIZE))
    lines += [f'printf("%zu\\n", (size_t)({expr}));' for expr, _ in checks]
    lines.append("return 0;}")
    (tmp_path / "layout.c").write_text("\n".join(lines))
    subprocess.run(["cc", "-o", str(tmp_path / "layout"), str(tmp_path / "layout.c")], check=True)
    out = subprocess.run([str(tmp_path / "layout")], capture_output=True, text=True, check=True)
    got = [int(x) for x in out.stdout.split()]
    assert list(zip([e for e, _ in checks], got, strict=True)) == [(e, v) for e, v in checks]
