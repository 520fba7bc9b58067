"""Native functions called as builtins (`runtime.native.calls`): arguments, results, atomics.

The callers must behave as the ctypes calls they replace: arguments taken
modulo 2**64, results as the prototype's signed or unsigned type, a bound
first argument passed first, and the ctypes error for a wrong argument
count. The atomic functions are compared with a Python model on aligned
and misaligned words.
"""

from __future__ import annotations

import ctypes
import random

import pytest

from pybpf.runtime.native import calls

pytestmark = pytest.mark.skipif(
    not calls.FASTCALL_ENABLED, reason="builtins need CPython's C API (and no PYBPF_NO_FASTCALL)"
)

M64 = (1 << 64) - 1
M32 = (1 << 32) - 1


def _xchg_address() -> int:
    # A native function of two u64 arguments with a known result: atomic
    # exchange on a word we own, returning the old value.
    return calls.native_address("pybpf_atomic_xchg64")


def test_a_caller_is_a_builtin_and_matches_ctypes() -> None:
    word = ctypes.c_uint64(5)
    call = calls.native_caller(_xchg_address(), 2, signed=False)
    assert type(call).__name__ == "builtin_function_or_method"
    assert call(ctypes.addressof(word), 9) == 5 and word.value == 9


def test_arguments_are_taken_modulo_2_64() -> None:
    word = ctypes.c_uint64(0)
    call = calls.native_caller(_xchg_address(), 2, signed=False)
    call(ctypes.addressof(word), -1)
    assert word.value == M64
    call(ctypes.addressof(word), (1 << 70) + 3)
    assert word.value == 3


def test_results_are_signed_or_unsigned_as_asked() -> None:
    word = ctypes.c_uint64(M64 - 1)  # -2 as a signed value
    unsigned = calls.native_caller(_xchg_address(), 2, signed=False)
    signed = calls.native_caller(_xchg_address(), 2, signed=True)
    assert unsigned(ctypes.addressof(word), M64 - 1) == M64 - 1
    assert signed(ctypes.addressof(word), 0) == -2


def test_a_bound_first_argument_comes_first() -> None:
    word = ctypes.c_uint64(7)
    call = calls.native_caller(_xchg_address(), 1, signed=False, first=ctypes.addressof(word))
    assert call(11) == 7 and word.value == 11


def test_wrong_calls_raise_as_ctypes_does() -> None:
    word = ctypes.c_uint64(0)
    bound = calls.native_caller(_xchg_address(), 1, signed=False, first=ctypes.addressof(word))
    with pytest.raises(TypeError):
        bound()  # the ctypes fallback: too few arguments
    call = calls.native_caller(_xchg_address(), 2, signed=False)
    with pytest.raises(TypeError):
        call(ctypes.addressof(word), "x")
    with pytest.raises(ValueError, match="1 to 5"):
        calls.native_caller(_xchg_address(), 5, signed=False, first=1)


def _model(operation: str, old: int, value: int, expected: int, mask: int) -> int:
    value &= mask
    return {
        "add": (old + value) & mask,
        "or": old | value,
        "and": old & value,
        "xor": old ^ value,
        "xchg": value,
        "cmpxchg": value if old == expected & mask else old,
    }[operation]


@pytest.mark.parametrize("operation", calls.ATOMIC_OPERATIONS)
@pytest.mark.parametrize("bits", (32, 64))
@pytest.mark.parametrize("misalign", (0, 1, 3))
def test_atomic_functions_follow_the_model(operation: str, bits: int, misalign: int) -> None:
    rng = random.Random(f"{operation}{bits}{misalign}")
    function = calls.atomic_function(operation, bits)
    assert function is not None
    size, mask = bits // 8, (1 << bits) - 1
    buffer = (ctypes.c_ubyte * 32)()
    address = ctypes.addressof(buffer) + 8 + misalign
    for _ in range(50):
        before = bytes(buffer)
        old = rng.getrandbits(bits)
        ctypes.memmove(address, old.to_bytes(size, "little"), size)
        value = rng.getrandbits(64)
        expected = old if rng.random() < 0.5 else rng.getrandbits(64)
        if operation == "cmpxchg":
            assert function(address, expected, value) == old
        else:
            assert function(address, value) == old
        new = int.from_bytes(ctypes.string_at(address, size), "little")
        assert new == _model(operation, old, value, expected, mask)
        offset = 8 + misalign
        after = bytes(buffer)
        assert after[:offset] == before[:offset]  # nothing outside the word changes
        assert after[offset + size :] == before[offset + size :]


def test_memset_fills_the_bytes_asked_for_and_no_others():
    memset = calls.memset_function()
    assert memset is calls.memset_function()  # one builtin per process
    buffer = (ctypes.c_ubyte * 32)(*range(1, 33))
    start = ctypes.addressof(buffer)
    assert memset(start + 4, 0, 20) == start + 4  # memset returns its destination
    assert list(buffer) == [1, 2, 3, 4, *[0] * 20, *range(25, 33)]
    memset(start, 0x1AB, 2)  # as C does, only the low byte of the value
    assert list(buffer[:3]) == [0xAB, 0xAB, 3]
