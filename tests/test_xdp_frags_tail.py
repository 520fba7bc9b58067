"""bpf_xdp_adjust_tail on multi-buffer XDP frames, against the kernel, in both engines.

Frames over 3520 bytes become a linear part plus page-sized fragments in a
test run (`hooks.test_run`); adjust_tail then grows the last fragment up
to its page end, or shrinks from the last fragments (releasing emptied
ones, and the linear part once none is left). Each run returns the
helper's error or the new frame length; the return value and the output
frame must equal the kernel's.
"""

from __future__ import annotations

import struct

import pytest

import pybpf
from pybpf.testing.kernel import KernelObject, kernel_available, unavailable_reason

TAIL_C = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Adjust the tail by the int in the first 4 bytes (twice when the next
 * int is not 0), then return the error or the frame's length. */
SEC("xdp.frags")
int tail(struct xdp_md *ctx)
{
    int *args = (void *)(long)ctx->data;
    int first, second;
    long rc;

    if ((void *)(args + 2) > (void *)(long)ctx->data_end)
        return -1;
    first = args[0];
    second = args[1];
    rc = bpf_xdp_adjust_tail(ctx, first);
    if (!rc && second)
        rc = bpf_xdp_adjust_tail(ctx, second);
    if (rc)
        return rc;
    return bpf_xdp_get_buff_len(ctx);
}

char LICENSE[] SEC("license") = "GPL";
"""

LINEAR = 4096 - 256 - 320  # the linear part of a test-run frame


def frame(size: int, first: int, second: int = 0) -> bytes:
    body = bytes((7 * i) & 0xFF for i in range(size))
    return (struct.pack("<ii", first, second) + body[8:])[:size]


CASES = [
    (5000, 10, 0),
    (5000, 4096 - (5000 - LINEAR), 0),  # the last fragment filled to its page end
    (5000, 4096 - (5000 - LINEAR) + 1, 0),
    (5000, -10, 0),
    (5000, -(5000 - LINEAR), 0),  # exactly the fragment: released
    (5000, -(5000 - LINEAR) - 1, 0),  # and one byte of the linear part
    (5000, -(5000 - 14), 0),
    (5000, -(5000 - 13), 0),
    (5000, -(5000 - LINEAR), 20),  # no fragment left: grows the linear part
    (5000, -100, 50),
    (9000, -5000, 0),  # across fragments
    (9000, -4096, 0),
    (9000, 100, -200),
    (3000, 100, 0),  # a linear frame, for comparison
    (LINEAR, 1, 0),
    (LINEAR + 1, -1, 0),
]


@pytest.fixture(scope="module")
def tail_object(tmp_path_factory):
    from clang_build import build_object

    return build_object(tmp_path_factory.mktemp("frags"), "frags", TAIL_C)


@pytest.mark.parametrize("engine", ["interpreter", "jit"])
def test_adjust_tail_on_fragments_matches_the_kernel(tail_object, engine):
    if not kernel_available():
        pytest.skip(unavailable_reason() or "no kernel")
    with KernelObject(tail_object) as kernel:
        expected = [
            kernel.test_run("tail", frame(*case), data_out_size=case[0] + 8192) for case in CASES
        ]
    with pybpf.load(tail_object, engine=engine) as obj:
        for case, want in zip(CASES, expected, strict=True):
            got = obj.programs["tail"].test_run(data=frame(*case))
            assert (case, got.retval) == (case, want.retval)
            assert got.data_out == want.data_out, case
