"""eBPF for Windows programs run unchanged: built with clang against the headers pybpf
ships for that platform (examples/windows), loaded with its helper ids, map types,
sections and contexts, run through test_run in both engines with asserted results."""

from __future__ import annotations

import json
import shutil
import socket
import struct
import subprocess
from pathlib import Path

import pytest

import pybpf
from pybpf.elf.loader import load_object_spec
from pybpf.elf.map_types import MapType
from pybpf.errors import LoadError
from pybpf.platform.program_types import ProgramType

ROOT = Path(__file__).resolve().parents[1]
WINDOWS = ROOT / "examples" / "windows"
ENGINES = ["jit", "interpreter"]

BIND, POST_BIND, UNBIND = 0, 1, 2
PERMIT, DENY, REDIRECT, PERMIT_HARD = 0, 1, 2, 3
REJECT, PROCEED_SOFT, PROCEED_HARD = 0, 1, 2
XDP_PASS, XDP_DROP = 1, 2


def bind_md(pid: int, operation: int, protocol: int = 6) -> bytes:
    """A bind_md: process id at 16, operation at 44, protocol at 48 (56 bytes)."""
    ctx = bytearray(56)
    struct.pack_into("<Q", ctx, 16, pid)
    struct.pack_into("<I", ctx, 44, operation)
    ctx[48] = protocol
    return bytes(ctx)


def sock_addr(ip: str, port: int, protocol: int = 6) -> bytes:
    """A Windows bpf_sock_addr for an IPv4 destination (network order), 64 bytes."""
    ctx = bytearray(64)
    struct.pack_into("<I", ctx, 0, socket.AF_INET)
    ctx[24:28] = socket.inet_aton(ip)
    struct.pack_into("!H", ctx, 40, port)
    struct.pack_into("<I", ctx, 44, protocol)
    return bytes(ctx)


def test_detection_and_translation_from_the_objects_own_signals():
    for path in sorted(WINDOWS.glob("*.o")):
        spec = load_object_spec(path)
        assert spec.platform == "windows", path.name
        assert "a .ebpf_for_windows section" in spec.platform_reason
    for path in sorted((ROOT / "examples").glob("*.o")):
        assert load_object_spec(path).platform == "linux", path.name
    spec = load_object_spec(WINDOWS / "sockops_events.o")
    assert spec.maps["events"].type == MapType.RINGBUF  # Windows' 13, Linux's 27
    calls = [i.imm for i in spec.programs["connection_events"].instructions if i.opcode == 0x85]
    assert 130 in calls  # bpf_ringbuf_output: Windows 11, run as Linux's 130
    # Given explicitly, the platform is what the caller says.
    assert load_object_spec(WINDOWS / "bind_limit.o", "linux").platform == "linux"


def test_legacy_map_records_in_windows_layout():
    spec = load_object_spec(WINDOWS / "tail_calls.o")
    programs, seen = spec.maps["programs"], spec.maps["seen"]
    assert (programs.type, programs.key_size, programs.value_size, programs.max_entries) == (
        MapType.PROG_ARRAY,
        4,
        4,
        3,
    )
    assert (seen.type, seen.value_size, seen.flags) == (MapType.ARRAY, 8, 0)


@pytest.mark.parametrize("engine", ENGINES)
def test_bind_monitor_limits_binds_per_process_and_frees_on_unbind(engine):
    with pybpf.load(WINDOWS / "bind_limit.o", engine=engine) as obj:
        prog = obj.programs["limit_binds"]
        assert prog.prog_type == ProgramType.WINDOWS_BIND
        run = lambda pid, op, app=b"": prog.test_run(data=app, ctx=bind_md(pid, op)).retval  # noqa: E731
        assert [run(7, BIND, b"server.exe") for _ in range(3)] == [PERMIT, PERMIT, DENY]
        assert run(8, BIND, b"other.exe") == PERMIT  # another process has its own count
        assert run(7, UNBIND) == PERMIT
        assert run(7, BIND, b"again.exe") == PERMIT  # the slot freed by the unbind
        assert run(7, BIND) == DENY
        assert run(7, POST_BIND) == PERMIT
        counts = obj.maps["bind_counts"]
        assert counts[struct.pack("<Q", 7)] == struct.pack("<I", 2)
        assert counts[struct.pack("<Q", 8)] == struct.pack("<I", 1)
        name = obj.maps["app_names"][struct.pack("<Q", 7)]
        assert name.rstrip(b"\0") == b"again.exe"  # the app id range, read by the program


@pytest.mark.parametrize("engine", ENGINES)
def test_connect_policy_rejects_redirects_and_proceeds(engine):
    with pybpf.load(WINDOWS / "connect_policy.o", engine=engine) as obj:
        prog = obj.programs["connect_policy"]
        assert prog.prog_type == ProgramType.WINDOWS_SOCK_ADDR
        dest = socket.inet_aton("10.1.2.3") + struct.pack("!H", 443) + bytes(2)
        obj.maps["blocked"][dest] = b"\x01"
        proxy = socket.inet_aton("10.9.9.9") + struct.pack("!H", 3128) + bytes(2)
        obj.maps["proxy"][bytes(4)] = proxy
        assert prog.test_run(ctx=sock_addr("10.1.2.3", 443)).retval == REJECT
        assert prog.test_run(ctx=sock_addr("10.1.2.4", 443)).retval == PROCEED_SOFT
        redirected = prog.test_run(ctx=sock_addr("10.1.2.3", 80))
        assert redirected.retval == PROCEED_HARD
        out = redirected.ctx_out
        assert socket.inet_ntoa(out[24:28]) == "10.9.9.9"  # the destination rewritten
        assert struct.unpack_from("!H", out, 40)[0] == 3128
        verdicts = [
            int.from_bytes(obj.maps["verdicts"][struct.pack("<I", v)], "little") for v in range(3)
        ]
        assert verdicts == [1, 1, 1]


def _udp_frame(dport: int, payload: bytes = b"x" * 18) -> bytes:
    ip = bytes([0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0]) + socket.inet_aton("10.0.0.1")
    ip += socket.inet_aton("10.0.0.2")
    udp = struct.pack("!HHHH", 1234, dport, 8 + len(payload), 0) + payload
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + udp


@pytest.mark.parametrize("engine", ENGINES)
def test_xdp_dropper_with_windows_actions_and_pointers(engine):
    with pybpf.load(WINDOWS / "udp_dropper.o", engine=engine) as obj:
        prog = obj.programs["drop_udp"]
        assert prog.prog_type == ProgramType.WINDOWS_XDP
        obj.maps["drop_port"][bytes(4)] = struct.pack("<H", 53)
        frame = _udp_frame(53)
        assert prog.test_run(data=frame).retval == XDP_DROP
        assert prog.test_run(data=_udp_frame(54)).retval == XDP_PASS
        assert prog.test_run(data=frame[:30]).retval == XDP_PASS  # too short to parse
        per_cpu = obj.maps["dropped"][bytes(4)]
        frames = sum(struct.unpack_from("<Q", v)[0] for v in per_cpu)
        nbytes = sum(struct.unpack_from("<Q", v, 8)[0] for v in per_cpu)
        assert (frames, nbytes) == (1, len(frame))


@pytest.mark.parametrize("engine", ENGINES)
def test_sock_ops_events_go_to_a_ring_buffer(engine):
    with pybpf.load(WINDOWS / "sockops_events.o", engine=engine) as obj:
        prog = obj.programs["connection_events"]
        ctx = bytearray(64)
        struct.pack_into("<II", ctx, 0, 1, socket.AF_INET)  # PASSIVE_ESTABLISHED_CB, AF_INET
        ctx[8:12] = socket.inet_aton("10.0.0.2")
        struct.pack_into("<I", ctx, 24, 8080)
        ctx[28:32] = socket.inet_aton("10.0.0.1")
        struct.pack_into("<I", ctx, 44, 40000)
        ctx[48] = 6
        assert prog.test_run(ctx=bytes(ctx)).retval == 0
        ipv6 = bytearray(ctx)
        struct.pack_into("<I", ipv6, 4, socket.AF_INET6)
        assert prog.test_run(ctx=bytes(ipv6)).retval == 0  # not recorded
        records: list[bytes] = []
        obj.maps["events"].consume(records.append)
        assert len(records) == 1
        op, local, remote, lport, rport, flow, proto = struct.unpack_from("<I4s4sHHQB", records[0])
        assert (op, lport, rport, proto) == (1, 8080, 40000, 6)
        assert (socket.inet_ntoa(local), socket.inet_ntoa(remote)) == ("10.0.0.2", "10.0.0.1")
        assert flow != 0


@pytest.mark.parametrize("engine", ENGINES)
def test_tail_calls_and_bpf_to_bpf_calls(engine):
    with pybpf.load(WINDOWS / "tail_calls.o", engine=engine) as obj:
        obj.maps["programs"][struct.pack("<I", BIND)] = obj.programs["on_bind"]
        obj.maps["programs"][struct.pack("<I", UNBIND)] = obj.programs["on_unbind"]
        dispatch = obj.programs["dispatch"]
        assert dispatch.test_run(ctx=bind_md(1, BIND, protocol=6)).retval == PERMIT
        assert dispatch.test_run(ctx=bind_md(1, BIND, protocol=17)).retval == DENY
        assert dispatch.test_run(ctx=bind_md(1, UNBIND)).retval == PERMIT
        assert dispatch.test_run(ctx=bind_md(1, POST_BIND)).retval == PERMIT_HARD  # no target
        seen = [int.from_bytes(obj.maps["seen"][struct.pack("<I", i)], "little") for i in range(3)]
        assert seen == [2, 0, 1]


@pytest.mark.parametrize("engine", ENGINES)
def test_string_and_memory_helpers(engine):
    with pybpf.load(WINDOWS / "strings.o", engine=engine) as obj:
        assert obj.programs["name_check"].test_run(ctx=bytes(56)).retval == PERMIT_HARD
        assert obj.maps["names"][bytes(4)][:6] == b"app-x\0"


def test_platform_errors_name_the_platform_and_the_item(tmp_path):
    with pytest.raises(LoadError, match="unknown platform 'beos'"):
        load_object_spec(WINDOWS / "bind_limit.o", "beos")
    # A Linux object read as Windows: its helper ids mean other helpers there.
    with pytest.raises(LoadError, match=r"helper id \d+ is unknown on windows"):
        load_object_spec(ROOT / "examples" / "xdp_events.o", "windows")
    # A Windows object read as Linux: its sections name no Linux program type.
    with pybpf.load(WINDOWS / "bind_limit.o", platform="linux") as obj:
        with pytest.raises(pybpf.VerifierError, match="does not name a program type"):
            obj.load()


def test_include_dir_builds_a_windows_program(tmp_path, capsys):
    from pybpf.cli.main import main

    assert main(["include-dir", "--platform", "windows"]) == 0
    include = Path(capsys.readouterr().out.strip())
    assert {"bpf_helpers.h", "ebpf_nethooks.h", "ebpf_structs.h"} <= {
        p.name for p in include.iterdir()
    }
    assert main(["include-dir", "--platform", "plan9"]) == 2
    clang = shutil.which("clang-16") or shutil.which("clang")
    if clang is None:
        pytest.skip("clang is not installed")
    source = tmp_path / "deny_udp.c"
    source.write_text(
        '#include "ebpf_nethooks.h"\n'
        "PYBPF_WINDOWS_TAG\n"
        'SEC("bind") bind_action_t deny_udp(bind_md_t *ctx)\n'
        "{ return ctx->protocol == 17 ? BIND_DENY : BIND_PERMIT; }\n"
    )
    obj_path = tmp_path / "deny_udp.o"
    subprocess.run(
        [
            clang,
            "-O2",
            "-g",
            "-target",
            "bpf",
            "-I",
            str(include),
            "-c",
            str(source),
            "-o",
            str(obj_path),
        ],
        check=True,
        capture_output=True,
    )
    with pybpf.load(obj_path) as obj:
        prog = obj.programs["deny_udp"]
        assert obj.spec.platform == "windows"
        assert prog.test_run(ctx=bind_md(1, BIND, protocol=17)).retval == DENY
        assert prog.test_run(ctx=bind_md(1, BIND, protocol=6)).retval == PERMIT


@pytest.mark.parametrize("engine", ENGINES)
def test_xdp_adjust_head_pops_a_vlan_tag(engine):
    with pybpf.load(WINDOWS / "udp_dropper.o", engine=engine) as obj:
        prog = obj.programs["strip_vlan"]
        plain = _udp_frame(53)
        tagged = plain[:12] + b"\x81\x00\x00\x2a" + plain[12:]
        result = prog.test_run(data=tagged)
        assert result.retval == XDP_PASS
        assert result.data_out == plain  # the tag gone, the frame 4 bytes shorter
        untouched = prog.test_run(data=plain)
        assert (untouched.retval, untouched.data_out) == (XDP_PASS, plain)


def test_a_helper_only_windows_has_is_refused_to_a_linux_object():
    from dataclasses import replace

    from pybpf.elf.specs import ObjectSpec, ProgramSpec
    from pybpf.isa.assembler import assemble
    from pybpf.verifier.program import verify_program

    memcpy_s = 0x7000_0000 + 22  # internal id of bpf_memcpy_s
    code = assemble(
        "*(u64 *)(r10 - 16) = 0\n"
        "r1 = r10\nr1 += -8\nr2 = 8\nr3 = r10\nr3 += -16\nr4 = 8\n"
        f"call {memcpy_s}\nr0 = 0\nexit\n"
    )
    program = ProgramSpec("copy", "bind", tuple(code), license="")
    windows = ObjectSpec("windows.o", {"copy": program}, platform="windows")
    assert verify_program(program, windows, prog_type="windows_bind").ok
    linux = replace(windows, path="linux.o", platform="linux")
    program = replace(program, section="xdp")
    report = verify_program(program, linux, prog_type="xdp")
    assert not report.ok
    assert "bpf_memcpy_s" in report.failures[0].message
    assert "is a helper of eBPF for Windows, not of linux" in report.failures[0].message


def test_prog_run_builds_the_context_from_named_fields(capsys):
    from pybpf.cli.main import main

    argv = ["prog", "run", str(WINDOWS / "connect_policy.o"), "--json"]
    fields = ["family=2", "user_ip=10.1.2.3", "user_port=443", "protocol=6"]
    # The destination is blocked only once the map says so: proceed, then reject.
    assert main([*argv, *(f"--ctx-field={f}" for f in fields)]) == 0
    assert json.loads(capsys.readouterr().out)["retval"] == PROCEED_SOFT
    blocked = (socket.inet_aton("10.1.2.3") + struct.pack("!H", 443) + bytes(2)).hex()
    args = [*argv, "--map", f"blocked={blocked}:01", *(f"--ctx-field={f}" for f in fields)]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["retval"] == REJECT
    assert main([*argv, "--ctx-field", "pid=3"]) == 2
    assert "struct bpf_sock_addr has no settable field 'pid'" in capsys.readouterr().err
    assert main([*argv, "--ctx-field", "user_port=70000"]) == 2


def test_a_linux_xdp_md_named_xdp_md_t_is_no_windows_signal(shared):
    # One of PREVAIL's Linux samples typedefs its 24-byte xdp_md as xdp_md_t.
    sample = shared / "ebpf-samples" / "build" / "correlated_branch.o"
    if not sample.exists():
        pytest.skip("the shared sample corpus is not here")
    spec = load_object_spec(sample)
    assert spec.platform == "linux"
    assert spec.platform_note == "no sign of either platform in the object: loaded as linux"


def test_an_ebpf_for_windows_object_from_the_field(shared):
    """The sample corpus holds one object built for eBPF for Windows (a bind program
    tail-calling through 35 others, from that project's tests): detected as Windows, its
    calls renumbered (Windows' bpf_trace_printk2 is 12, its bpf_tail_call 5), verified.
    PREVAIL's inventory verdicts are its Linux platform's, so the corpus tests read the
    object as Linux (verifier/inventory.py); here it is what it was built as."""
    sample = (
        shared / "ebpf-samples" / "invalid" / "timeout-29db93548c671165313b314d4f83a3eefa24df37"
    )
    if not sample.exists():
        pytest.skip("the shared sample corpus is not here")
    spec = load_object_spec(sample)
    assert spec.platform == "windows"
    assert "section 'bind'" in spec.platform_reason
    calls = {i.imm for i in spec.programs["bind_test_caller"].instructions if i.opcode == 0x85}
    assert {6, 12} <= calls  # bpf_trace_printk (Linux 6) and bpf_tail_call (Linux 12)
    with pybpf.load(sample) as obj:
        reports = {name: p.verify() for name, p in obj.programs.items()}
        assert obj.programs["bind_test_caller"].prog_type == ProgramType.WINDOWS_BIND
    # The corpus mutated one callee (it passes -39 as bpf_trace_printk4's format size):
    # that one is refused, the 35 others verify.
    refused = {name: r.failures[0].message for name, r in reports.items() if not r.ok}
    assert list(refused) == ["bind_test_callee13"]
    assert "Invalid size" in refused["bind_test_callee13"]
    assert sum(r.ok for r in reports.values()) == 35


def sample_ctx(uint32_data: int, helper_data_1: int, helper_data_2: int) -> bytes:
    """A sample_program_context_t without its pointers (filled from the data range)."""
    ctx = bytearray(32)
    struct.pack_into("<IHxxII", ctx, 16, uint32_data, 0, helper_data_1, helper_data_2)
    return bytes(ctx)


@pytest.mark.parametrize("engine", ENGINES)
def test_sample_extension_type_and_its_helpers(engine):
    with pybpf.load(WINDOWS / "sample_text.o", engine=engine) as obj:
        prog = obj.programs["find_and_replace"]
        assert prog.prog_type == ProgramType.WINDOWS_SAMPLE
        text = b"the cat sat on the mat".ljust(32, b"\0")
        res = prog.test_run(data=text, ctx=sample_ctx(5, 1234, 40))
        assert res.retval == 4  # "cat" found at offset 4
        assert obj.maps["texts"][bytes(4)].rstrip(b"\0") == b"the dog sat on the mat"
        answers = [
            struct.unpack("<q", obj.maps["answers"][struct.pack("<I", i)])[0] for i in range(4)
        ]
        assert answers == [4, 1234, 45, 0]  # find, implicit_1, implicit_2(5) = 40 + 5, function1
        # absent: -1, text unchanged
        res = prog.test_run(data=b"no pets here".ljust(32, b"\0"), ctx=sample_ctx(0, 0, 0))
        assert res.retval == (1 << 32) - 1  # -1 as the 32-bit return value
        assert obj.maps["texts"][bytes(4)].rstrip(b"\0") == b"no pets here"
        # too little data for the program's 32-byte read: its own error
        assert prog.test_run(data=b"cat", ctx=sample_ctx(0, 0, 0)).retval == (1 << 32) - 3


def test_sample_replace_stops_before_the_buffers_last_byte():
    from pybpf.runtime.windows_helpers import sample_find, sample_replace

    class Mem:
        def __init__(self, data: bytes):
            self.data = bytearray(data)

        def read(self, address: int, size: int) -> bytes:
            return bytes(self.data[address : address + size])

        def write(self, address: int, data: bytes) -> None:
            self.data[address : address + len(data)] = data

    class Env:
        def __init__(self, data: bytes):
            self.memory = Mem(data)

    env = Env(b"abcdef\0\0" + b"XYZW\0\0\0\0")
    assert sample_replace(env, 0, 6, 4, 8, 8) == 0  # room for one byte before the last
    assert env.memory.data[:8] == b"abcdXf\0\0"
    assert sample_replace(env, 0, 6, 6, 8, 8) == (1 << 64) - 1  # position outside
    assert sample_replace(env, 0, 6, (1 << 64) - 1, 8, 8) == (1 << 64) - 1  # negative
    assert sample_find(env, 0, 8, 8, 4, 0) == (1 << 64) - 1  # "XYZW" not in "abcdXf"
    assert sample_find(env, 0, 8, 12, 4, 0) == 0  # the empty string is found at 0


# Objects with no tag and no license: only their sections and helper numbers speak.
_BARE_XDP = """
#define SEC(name) __attribute__((section(name), used))
static long (*helper_%(id)s)(void *ctx, int delta) = (void *)%(id)s;
SEC("xdp") int prog(void *ctx) { return helper_%(id)s(ctx, 0) ? 2 : 1; }
"""


@pytest.mark.parametrize(
    ("helper", "platform", "reason"),
    [
        (0x10000, "windows", "a call of program-type helper 0x10000"),  # Windows' adjust_head
        (44, "linux", "a call of helper 44, which only Linux numbers"),  # Linux's adjust_head
    ],
)
def test_helper_numbering_is_a_platform_signal(tmp_path, helper, platform, reason):
    from clang_build import build_object

    path = build_object(tmp_path, "bare", _BARE_XDP % {"id": helper})
    spec = load_object_spec(path)
    assert (spec.platform, spec.platform_reason) == (platform, f"detected from {reason}")
    with pybpf.load(path) as obj:
        # each platform's adjust_head ran (0: moved by 0 bytes), so the program returns 1
        assert obj.programs["prog"].test_run(data=bytes(64)).retval == 1


def test_an_object_mixing_both_platforms_conventions_is_refused(tmp_path, capsys):
    from clang_build import build_object
    from pybpf.cli.main import main

    source = """
#define SEC(name) __attribute__((section(name), used))
SEC("bind") int on_bind(void *ctx) { return 0; }
SEC("tc") int on_tc(void *ctx) { return 0; }
"""
    path = build_object(tmp_path, "mixed", source)
    with pytest.raises(LoadError) as caught:
        load_object_spec(path)
    message = str(caught.value)
    assert "mixes the conventions of windows (section 'bind')" in message
    assert "linux (section 'tc')" in message
    assert main(["verify", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mixes the conventions" in err[0]
    # Given the platform, the object loads as that platform (its other sections are
    # then the usual one-line errors).
    assert load_object_spec(path, "windows").platform == "windows"
    assert load_object_spec(path, "linux").platform == "linux"


def test_verify_says_why_an_object_without_signals_is_linux(tmp_path, capsys):
    from clang_build import build_object
    from pybpf.cli.main import main

    source = '#define SEC(n) __attribute__((section(n), used))\nSEC("xdp") int p(void *c) { return 2; }\n'
    path = build_object(tmp_path, "plain", source)
    assert main(["verify", str(path)]) == 0
    assert "no sign of either platform in the object: loaded as linux" in capsys.readouterr().err
