"""Tracing helpers: the current task (pid, uid, comm, task), probe reads and stacks.

Programs are assembled and run in both engines (the interpreter and the
JIT) with the Linux table and an `ExecutionContext`; every result is
compared between the engines and with the values the context was given
(or the host's, read independently through procfs and `os`).
"""

from __future__ import annotations

import errno
import os
import struct
import threading

import pytest

from pybpf.engine.interpreter import Interpreter
from pybpf.engine.jit import JitEngine
from pybpf.isa import assemble
from pybpf.runtime.context import ExecutionContext
from pybpf.runtime.linux_helpers import linux_helpers
from pybpf.runtime.task import TASK_STRUCT_SIZE, CurrentTask

HELPERS = linux_helpers()
M64 = (1 << 64) - 1


def neg(code: int) -> int:
    return -code & M64


@pytest.fixture
def ctx():
    return ExecutionContext(ncpus=1)


def run(ctx: ExecutionContext, source: str, *args: int) -> int:
    """r0 of `source`, the same in both engines."""
    insns = assemble(source)
    results = []
    for kind in (Interpreter, JitEngine):
        engine = kind(insns, helpers=HELPERS, memory=ctx.memory, runtime=ctx)
        try:
            results.append(engine.run(*args) & M64)
        finally:
            engine.close()
    assert results[0] == results[1], results
    return results[0]


def stack_bytes(ctx: ExecutionContext, source: str, size: int, *args: int) -> tuple[int, bytes]:
    """(r0, the `size` bytes at r10-size) after `source`, which saves r1 at r10-512.

    The buffer is copied out with bpf_probe_read to a region passed in r1.
    """
    out = ctx.memory.allocate(size, "out")
    r0 = run(ctx, source + COPY_OUT.format(size=size), out.start, *args)
    return r0, out.read()


# Copy `size` bytes at r10-size to the buffer whose address the program saved at r10-512.
COPY_OUT = """
r6 = r0
r1 = *(u64 *)(r10 - 512)
r2 = {size}
r3 = r10
r3 += -{size}
call 4
r0 = r6
exit
"""

SAVE_R1 = "*(u64 *)(r10 - 512) = r1\n"


def test_host_pid_tgid_uid_gid(ctx):
    pid_tgid = run(ctx, "call 14\nexit")
    assert pid_tgid == os.getpid() << 32 | threading.get_native_id()
    uid_gid = run(ctx, "call 15\nexit")
    assert uid_gid == os.getgid() << 32 | os.getuid()


def test_host_comm_is_the_threads_name(ctx):
    with open(f"/proc/self/task/{threading.get_native_id()}/comm", "rb") as file:
        expected = file.read().rstrip(b"\n")[:15]
    source = SAVE_R1 + "r1 = r10\nr1 += -16\nr2 = 16\ncall 16\n"
    r0, data = stack_bytes(ctx, source, 16)
    assert r0 == 0
    assert data == expected.ljust(16, b"\0")


def test_values_a_test_sets(ctx):
    ctx.current_task = CurrentTask(
        pid=4242, tgid=4240, uid=1000, gid=100, comm=b"nginx-worker-long"
    )
    assert run(ctx, "call 14\nexit") == 4240 << 32 | 4242
    assert run(ctx, "call 15\nexit") == 100 << 32 | 1000
    # A short buffer keeps size - 1 bytes and the NUL; a long one is NUL-padded.
    r0, data = stack_bytes(ctx, SAVE_R1 + "r1 = r10\nr1 += -8\nr2 = 8\ncall 16\n", 8)
    assert (r0, data) == (0, b"nginx-w\0")
    r0, data = stack_bytes(ctx, SAVE_R1 + "r1 = r10\nr1 += -24\nr2 = 24\ncall 16\n", 24)
    assert data == b"nginx-worker-lo".ljust(24, b"\0")


def test_task_pointer_addresses_the_given_task_struct(ctx):
    image = bytes(range(256)) * 2
    ctx.current_task = CurrentTask(pid=1, tgid=1, task_struct=image)
    # task = bpf_get_current_task(); probe_read_kernel(&v, 8, task + 300); return v.
    source = """
    call 35
    r3 = r0
    r3 += 300
    r1 = r10
    r1 += -8
    r2 = 8
    call 113
    if r0 != 0 goto out
    r0 = *(u64 *)(r10 - 8)
    out:
    exit
    """
    assert run(ctx, source) == struct.unpack_from("<Q", image, 300)[0]
    # The synthetic task is zero-filled past the image and read-only to stores.
    task = run(ctx, "call 35\nexit")
    region = ctx.memory.find(task, TASK_STRUCT_SIZE)
    assert region is not None and not region.writable
    assert region.read(len(image), 16) == bytes(16)


PROBE = """
*(u64 *)(r10 - 512) = r1
r1 = r10
r1 += -{size}
r2 = {size}
r3 = {src} ll
call {helper}
"""


@pytest.mark.parametrize("helper", [4, 112, 113])
def test_probe_read_copies_or_faults_with_zeroes(ctx, helper):
    src = ctx.add_memory(b"secret-kernel-bytes!")
    r0, data = stack_bytes(ctx, PROBE.format(size=8, src=src + 7, helper=helper), 8)
    assert (r0, data) == (0, b"kernel-b")
    # Past the region's end, and an unmapped address: -EFAULT, destination zeroed.
    r0, data = stack_bytes(ctx, PROBE.format(size=8, src=src + 16, helper=helper), 8)
    assert (r0, data) == (neg(errno.EFAULT), bytes(8))
    assert run(ctx, PROBE.format(size=8, src=0x10, helper=helper) + "exit") == neg(errno.EFAULT)


@pytest.mark.parametrize("helper", [45, 114, 115])
def test_probe_read_str_stops_at_the_nul_or_the_size(ctx, helper):
    src = ctx.add_memory(b"comm\0tail and more")
    r0, data = stack_bytes(ctx, PROBE.format(size=16, src=src, helper=helper), 16)
    assert r0 == 5
    assert data[:5] == b"comm\0"
    # No NUL within size: size bytes, the last one made NUL.
    r0, data = stack_bytes(ctx, PROBE.format(size=8, src=src + 5, helper=helper), 8)
    assert (r0, data) == (8, b"tail an\0")
    # A string running off mapped memory faults.
    end = ctx.add_memory(b"abc")
    r0, data = stack_bytes(ctx, PROBE.format(size=8, src=end, helper=helper), 8)
    assert (r0, data) == (neg(errno.EFAULT), bytes(8))
    assert run(ctx, PROBE.format(size=0, src=0x10, helper=helper) + "exit") == 0


GET_STACK = """
*(u64 *)(r10 - 512) = r1
r6 = r1
r1 = r6
r2 = r10
r2 += -{size}
r3 = {size}
r4 = {flags}
call 67
"""


def test_get_stack_empty_and_given(ctx):
    ctx.current_task = CurrentTask(pid=1, tgid=1)
    r0, data = stack_bytes(ctx, GET_STACK.format(size=32, flags=0), 32)
    assert (r0, data) == (0, bytes(32))
    kernel = (0xFFFFFFFF81000010, 0xFFFFFFFF81000020, 0xFFFFFFFF81000030)
    user = (0x401000, 0x401100)
    ctx.current_task = CurrentTask(pid=1, tgid=1, kernel_stack=kernel, user_stack=user)
    r0, data = stack_bytes(ctx, GET_STACK.format(size=32, flags=0), 32)
    assert r0 == 24
    assert data == struct.pack("<3Q", *kernel) + bytes(8)
    # skip 1 and a buffer for one entry.
    r0, data = stack_bytes(ctx, GET_STACK.format(size=8, flags=1), 8)
    assert (r0, data) == (8, struct.pack("<Q", kernel[1]))
    r0, data = stack_bytes(ctx, GET_STACK.format(size=16, flags=1 << 8), 16)
    assert (r0, data) == (16, struct.pack("<2Q", *user))
    # User build ids: {status=IP, build_id=0, ip} entries of 32 bytes.
    r0, data = stack_bytes(ctx, GET_STACK.format(size=64, flags=(1 << 8) | (1 << 11)), 64)
    assert r0 == 64
    assert data[:32] == struct.pack("<i20sQ", 2, bytes(20), user[0])


@pytest.mark.parametrize(
    ("size", "flags", "error"),
    [
        (12, 0, errno.EINVAL),  # not a whole number of entries
        (16, 1 << 12, errno.EINVAL),  # unknown flag
        (64, 1 << 11, errno.EINVAL),  # build ids of the kernel stack
        (16, 4, errno.EFAULT),  # skipping more than the stack has
    ],
)
def test_get_stack_errors_zero_the_buffer(ctx, size, flags, error):
    ctx.current_task = CurrentTask(pid=1, tgid=1, kernel_stack=(1, 2, 3))
    r0, data = stack_bytes(ctx, GET_STACK.format(size=size, flags=flags), size)
    assert (r0, data) == (neg(error), bytes(size))


# -- against the kernel ----------------------------------------------------------------

CURRENT_C = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
__u64 pid_tgid, uid_gid;
char comm[16];
char short_comm[6];

SEC("tc")
int tc_tgid(struct __sk_buff *skb) { return bpf_get_current_pid_tgid() >> 32; }

SEC("tc")
int tc_pid(struct __sk_buff *skb) { return (__u32)bpf_get_current_pid_tgid(); }

SEC("syscall")
int current(void *ctx)
{
    pid_tgid = bpf_get_current_pid_tgid();
    uid_gid = bpf_get_current_uid_gid();
    bpf_get_current_comm(comm, sizeof(comm));
    bpf_get_current_comm(short_comm, sizeof(short_comm));
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.fixture(scope="module")
def current_object(tmp_path_factory):
    from clang_build import build_object

    return build_object(tmp_path_factory.mktemp("current"), "current", CURRENT_C)


@pytest.mark.parametrize("engine", ["interpreter", "jit"])
def test_host_values_match_the_kernels(current_object, engine):
    import pybpf
    from pybpf.testing.kernel import KernelObject, kernel_available, unavailable_reason

    if not kernel_available():
        pytest.skip(unavailable_reason() or "no kernel")
    with KernelObject(current_object) as kernel:
        assert kernel.run_syscall("current") == 0
        expected = kernel.map(".bss").lookup(b"\0\0\0\0")
        frame = bytes(64)
        kernel_runs = [kernel.test_run(name, frame).retval for name in ("tc_tgid", "tc_pid")]
    with pybpf.load(current_object, engine=engine) as obj:
        scratch = obj.context.add_memory(bytes(8), writable=True)
        assert obj.programs["current"].engine.run(scratch) == 0
        assert obj.maps[".bss"][b"\0\0\0\0"] == expected
        runs = [obj.programs[name].test_run(data=frame).retval for name in ("tc_tgid", "tc_pid")]
        assert runs == kernel_runs


# -- in a synthetic tracing context -------------------------------------------------------

KPROBE_C = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* x86-64 struct pt_regs, as far as the arguments. */
struct regs {
    unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di;
};

struct {
    long name_len;
    long word_rc;
    __u64 word;
    __u64 pid_tgid;
    char name[32];
    char comm[16];
} out;

SEC("kprobe/do_sys_openat2")
int open_probe(struct regs *ctx)
{
    out.name_len = bpf_probe_read_user_str(out.name, sizeof(out.name), (void *)ctx->si);
    out.word_rc = bpf_probe_read_kernel(&out.word, sizeof(out.word), (void *)ctx->di);
    out.pid_tgid = bpf_get_current_pid_tgid();
    bpf_get_current_comm(out.comm, sizeof(out.comm));
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.mark.parametrize("engine", ["interpreter", "jit"])
def test_kprobe_reads_what_its_registers_point_to(tmp_path, engine):
    import pybpf
    from clang_build import build_object

    path = build_object(tmp_path, "kprobe", KPROBE_C)
    with pybpf.load(path, engine=engine) as obj:
        obj.context.current_task = CurrentTask(pid=77, tgid=70, comm=b"cat")
        filename = obj.context.add_memory(b"/etc/hostname\0stale bytes")
        word = obj.context.add_memory(struct.pack("<Q", 0x1122334455667788))
        program = obj.programs["open_probe"]
        program.test_run(regs={"si": filename, "di": word})
        raw = obj.maps[".bss"][b"\0" * 4]
        length, rc, value, pid_tgid = struct.unpack_from("<qqQQ", raw)
        name, comm = raw[32:64], raw[64:80]
        assert (length, rc, value) == (14, 0, 0x1122334455667788)
        assert name == b"/etc/hostname".ljust(32, b"\0")
        assert pid_tgid == 70 << 32 | 77
        assert comm == b"cat".ljust(16, b"\0")
        # An address nothing maps: -EFAULT, the destination zeroed.
        program.test_run(regs={"si": 0x1000, "di": 0x2000})
        length, rc, value = struct.unpack_from("<qqQ", obj.maps[".bss"][b"\0" * 4])
        assert (length, rc, value) == (-errno.EFAULT, -errno.EFAULT, 0)
