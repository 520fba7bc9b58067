"""Tail calls made in bpf-to-bpf subprograms, against what Linux does.

`tests/tailcall/subprog_tailcall.c`: a subprogram tail-calls through a
prog_array; the target replaces the subprogram's frame only (its r0 goes
back to the subprogram's caller), and the 33-call limit counts every tail
call of the run. The expected results were recorded from Linux 6.18 and
are compared with both engines everywhere, and with the live kernel where
`bpf()` works. `tests/tailcall/stack_rule.c`: the verifier's rule on
mixing tail calls and bpf-to-bpf calls (callers' frames under 256 bytes),
and a tail call as a possible return of its subprogram, with the kernel's
verdicts.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

import pybpf
from pybpf.errors import VerifierError
from pybpf.testing import packets as P
from pybpf.testing.kernel import KernelObject, kernel_available, unavailable_reason

HERE = Path(__file__).resolve().parent / "tailcall"
RUNS_OBJECT = HERE / "subprog_tailcall.o"
RULE_OBJECT = HERE / "stack_rule.o"
needs_kernel = pytest.mark.skipif(not kernel_available(), reason=unavailable_reason() or "kernel")

#: (skb->mark, prog_array slots) → (r0, ran[0..8]) as Linux 6.18 gave them.
RUNS = [
    # first call: slot 1 → target5 (5); second: slot 2 → target6 → slot 0 empty (6)
    ((0x0201, {1: "target5", 2: "target6"}), (5006, [1, 2, 0, 1, 1, 1, 1, 0, 0])),
    # second call: slot 3 empty, falls through (103)
    ((0x0301, {1: "target5"}), (5103, [1, 2, 1, 1, 1, 1, 0, 0, 0])),
    # target6 tail-calls on to target5: the chain's last r0 comes back
    ((0x0201, {0: "target5", 1: "target5", 2: "target6"}), (5005, [1, 2, 0, 1, 1, 2, 1, 0, 0])),
    # looper tail-calls itself through sub_tail: 33 calls, then 33 returns
    # (+1 each); the second chain finds the run's counter spent: 101
    ((0x0100, {0: "looper", 1: "target5"}), (133101, [1, 35, 2, 1, 1, 0, 0, 33, 33])),
    ((0x0000, {0: "looper"}), (133100, [1, 35, 2, 1, 1, 0, 0, 33, 33])),
]


def _ctx(mark: int) -> bytes:
    ctx = bytearray(192)  # struct __sk_buff, mark at offset 8
    struct.pack_into("<I", ctx, 8, mark)
    return bytes(ctx)


def _key(i: int) -> bytes:
    return i.to_bytes(4, "little")


@pytest.mark.parametrize("engine", ["interpreter", "jit"])
def test_runs_as_linux_does(engine: str) -> None:
    with pybpf.load(RUNS_OBJECT, engine=engine) as obj:
        jmp = obj.maps["jmp"]
        for (mark, slots), (r0, ran) in RUNS:
            for slot in range(8):
                if _key(slot) in jmp:
                    del jmp[_key(slot)]
            for slot, name in slots.items():
                jmp[_key(slot)] = obj.programs[name]
            for _ in range(2):  # twice: every run starts with a fresh counter
                obj.bss.ran = [0] * 9
                run = obj.programs["entry"].test_run(data=P.udp_packet(), ctx=_ctx(mark))
                assert run.retval == r0, (mark, slots)
                assert list(obj.bss.ran) == ran, (mark, slots)


@needs_kernel
def test_recorded_runs_are_the_kernels() -> None:
    with KernelObject(RUNS_OBJECT) as k:
        bss = next(name for name in k.map_names() if name.endswith(".bss"))
        for (mark, slots), (r0, ran) in RUNS:
            for slot in range(8):
                try:
                    k.map("jmp").delete(_key(slot))
                except OSError:
                    pass
            for slot, name in slots.items():
                k.set_prog_array("jmp", slot, name)
            k.map(bss).update(_key(0), bytes(72))
            result = k.test_run("entry", P.udp_packet(), ctx_in=_ctx(mark))
            assert result.retval == r0, (mark, slots)
            value = k.map(bss).lookup(_key(0))
            assert list(struct.unpack("<9Q", value)) == ran, (mark, slots)


TAIL_RULE = "tail_calls are not allowed when call stack of previous frames is {} bytes. Too large"
#: program → the kernel's (6.18) verdict: None (accepted) or its reason
VERDICTS = {
    "caller_224": None,
    "caller_232": None,  # 232 rounds up to 240 (16-byte rounding under the JIT)
    "caller_240": None,
    "caller_248": TAIL_RULE.format(256),
    "caller_256": TAIL_RULE.format(256),
    "caller_400": TAIL_RULE.format(400),
    "nested_112_128": None,  # 112 + 128 = 240 before the leaf
    "nested_128_128": TAIL_RULE.format(256),
    "own_stack_400": None,  # a tail-calling subprogram's own frame does not count
    "main_tail_big_stack": TAIL_RULE.format(480),  # 352 + 128 before the leaf
    "through_pointer_256": TAIL_RULE.format(256),  # the callee writes the caller's frame
    "through_pointer_240": None,
    "helper_key_256": TAIL_RULE.format(256),  # a helper reads the caller's frame
    "dead_call_256": TAIL_RULE.format(256),  # the static call graph, dead calls included
    "index_after_tail": "R1 unbounded memory access",  # sub's r0 unknown after a tail call
    "index_after_tail_masked": None,
}


@pytest.mark.parametrize("program", sorted(VERDICTS))
def test_verdict_as_linux(program: str) -> None:
    expected = VERDICTS[program]
    try:
        with pybpf.load(RULE_OBJECT, autoload=[program], engine="interpreter") as obj:
            obj.load()
        error = None
    except VerifierError as rejected:
        error = str(rejected)
    if expected is None:
        assert error is None
    else:
        assert error is not None
        if expected.startswith("tail_calls"):
            assert expected in error


@needs_kernel
@pytest.mark.parametrize("program", sorted(VERDICTS))
def test_recorded_verdicts_are_the_kernels(program: str) -> None:
    from pybpf.testing.verdicts import kernel_load

    result = kernel_load(RULE_OBJECT, program)
    expected = VERDICTS[program]
    assert result.accepted == (expected is None), result.reason
    if expected is not None:
        assert result.reason.startswith(expected)
