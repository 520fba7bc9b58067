"""bpf_spin_lock / bpf_spin_unlock on map values with a BTF `struct bpf_spin_lock`.

Compared with the kernel (map contents after repeated runs, the lock word
reading 0 once released), and run from several threads at once in the JIT:
every lock is released (no timeout fault, the word reads 0) and no
increment made under it is lost. (With the locks made no-ops that count
did not lose increments either on a 2-core machine: the test does not
prove exclusion, only that taking and releasing under contention works.)
"""

from __future__ import annotations

import struct
import threading

import pytest

import pybpf
from pybpf.errors import ProgramFault
from pybpf.isa import assemble
from pybpf.runtime.context import ExecutionContext
from pybpf.runtime.linux_helpers import linux_helpers
from pybpf.testing.kernel import KernelObject, kernel_available, unavailable_reason

SPIN_C = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct value {
    __u64 count;
    struct bpf_spin_lock lock;
    __u32 spread;
    __u64 sum;
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, struct value);
} counters SEC(".maps");

SEC("xdp")
int bump(struct xdp_md *ctx)
{
    __u32 key = (ctx->data_end - ctx->data) & 3;
    struct value *v = bpf_map_lookup_elem(&counters, &key);
    __u64 count;

    if (!v)
        return 0;
    bpf_spin_lock(&v->lock);
    /* A long critical section of plain read-modify-writes: +64 in all. */
    for (int i = 0; i < 64; i++) {
        count = *(volatile __u64 *)&v->count + 1;
        *(volatile __u64 *)&v->count = count;
    }
    v->spread = (__u32)(count * 2654435761u);
    v->sum += count;
    bpf_spin_unlock(&v->lock);
    return 2;
}

char LICENSE[] SEC("license") = "GPL";
"""


@pytest.fixture(scope="module")
def spin_object(tmp_path_factory):
    from clang_build import build_object

    return build_object(tmp_path_factory.mktemp("spin"), "spin", SPIN_C)


FRAMES = [bytes(60), bytes(61), bytes(61), bytes(63), bytes(60), bytes(62)]


@pytest.mark.parametrize("engine", ["interpreter", "jit"])
def test_map_values_match_the_kernel(spin_object, engine):
    if not kernel_available():
        pytest.skip(unavailable_reason() or "no kernel")
    with KernelObject(spin_object) as kernel:
        for frame in FRAMES:
            assert kernel.test_run("bump", frame, repeat=7).retval == 2
        expected = sorted(kernel.map("counters").items())
    with pybpf.load(spin_object, engine=engine) as obj:
        for frame in FRAMES:
            assert obj.programs["bump"].test_run(data=frame, repeat=7).retval == 2
        got = sorted(obj.maps["counters"].items())
    assert got == expected
    assert struct.unpack_from("<Q", expected[1][1])[0] == 14 * 64  # two 61-byte frames, 7 runs


def test_concurrent_runs_take_and_release(spin_object):
    threads, runs = 4, 500
    with pybpf.load(spin_object, engine="jit") as obj:
        program = obj.programs["bump"]
        program.test_run(data=bytes(60))  # compile before the threads start
        errors = []

        def work():
            try:
                program.test_run(data=bytes(64), repeat=runs)
            except Exception as error:  # reported below
                errors.append(error)

        pool = [threading.Thread(target=work) for _ in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        assert not errors
        count, lock, _, total = struct.unpack("<QIIQ", obj.maps["counters"][b"\0" * 4])
    n = threads * runs + 1
    assert (count, lock, total) == (64 * n, 0, 64 * n * (n + 1) // 2)


def test_misuse_is_a_fault():
    from pybpf.engine.interpreter import Interpreter

    ctx = ExecutionContext()
    helpers = linux_helpers()

    def run(source: str) -> None:
        value = ctx.memory.allocate(16, "map value")
        engine = Interpreter(assemble(source), helpers=helpers, memory=ctx.memory, runtime=ctx)
        try:
            engine.run(value.start)
        finally:
            engine.close()

    with pytest.raises(ProgramFault):
        run("r6 = r1\ncall 93\nr1 = r6\ncall 93\nexit")  # taken twice
    with pytest.raises(ProgramFault):
        run("call 94\nr0 = 0\nexit")  # released without being held
