"""Fuzz the ELF loader: any byte string gives an ObjectSpec or a one-line LoadError."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import SAMPLES
from pybpf.elf import ObjectSpec
from pybpf.elf.loader import parse_object
from pybpf.errors import LoadError

# Small objects covering BTF maps, map-in-map, global data, legacy maps,
# bpf-to-bpf calls and CO-RE relocations.
SEEDS = [
    "build/bpf2bpf.o",
    "build/map_in_map.o",
    "build/global_variable.o",
    "build/map_in_map_legacy.o",
    "build/prog_array.o",
    "cilium-examples/tcprtt_bpf_bpfel.o",
]
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def seed(name: str) -> bytes:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"sample {name} not found")
    return path.read_bytes()


def check(data: bytes) -> None:
    """The loader's contract on arbitrary input."""
    try:
        result = parse_object(data, "fuzz.o")
    except LoadError as exc:
        message = str(exc)
        assert "\n" not in message
        assert message.startswith("fuzz.o")
    else:
        assert isinstance(result, ObjectSpec)


@pytest.mark.parametrize("name", SEEDS)
@FUZZ
@given(cut=st.floats(min_value=0.0, max_value=1.0, exclude_max=True))
def test_truncated_object(name: str, cut: float) -> None:
    data = seed(name)
    check(data[: int(len(data) * cut)])


@pytest.mark.parametrize("name", SEEDS)
@FUZZ
@given(
    edits=st.lists(
        st.tuples(st.floats(min_value=0.0, max_value=1.0, exclude_max=True), st.integers(0, 255)),
        min_size=1,
        max_size=12,
    )
)
def test_mutated_object(name: str, edits: list[tuple[float, int]]) -> None:
    data = bytearray(seed(name))
    for where, value in edits:
        data[int(len(data) * where)] = value
    check(bytes(data))


@pytest.mark.parametrize("name", SEEDS[:2])
@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, 63), st.integers(0, 255)), min_size=1, max_size=6))
# found by this test: e_shstrndx pointing at another string table gave a section name
# with a newline, and the error spanned two lines
@example(edits=[(62, 3)])
def test_mutated_header(name: str, edits: list[tuple[int, int]]) -> None:
    data = bytearray(seed(name))
    for where, value in edits:
        data[where] = value
    check(bytes(data))


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    check(data)


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_after_elf_magic(data: bytes) -> None:
    check(b"\x7fELF\x02\x01\x01" + data)
