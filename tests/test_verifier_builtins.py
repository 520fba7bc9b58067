"""Helper arguments that are a context or NULL, compiler builtins, privileged types.

* `bpf_get_netns_cookie` (id 122) takes the context or NULL
  (ARG_PTR_TO_CTX_OR_NULL): the context at offset 0, or the constant 0.
* `call memset` / `memcpy` / `memmove` / `memcmp` as undefined external
  functions (a KFUNC relocation the ELF loader keeps): PREVAIL's Linux
  platform resolves them to builtins with contracts (destination writable
  for `r3` bytes, source readable, size > 0); `verify_program` does too.
* kprobe and raw_tracepoint programs are privileged (PREVAIL's
  `is_privileged`): pointers may be passed as ANYTHING helper arguments
  and stored outside the stack.
* Stores and atomics through a register that may point to the stack or
  elsewhere forget the stack cells they may overwrite.
"""

from __future__ import annotations

import pytest

from pybpf.elf.specs import MapSpec, ObjectSpec, ProgramSpec, Relocation, RelocationKind
from pybpf.isa import assemble, with_pcs
from pybpf.isa.opcodes import CALL, CallSrc
from pybpf.verifier.options import AnalysisOptions
from pybpf.verifier.program import verify_program

ARRAY = MapSpec("arr", 2, 4, 8, 4)
PREVAIL = AnalysisOptions(check_termination=False, linux_ctx_fields=False)


def _verify(
    source: str,
    section: str = "xdp",
    *,
    builtins: dict[str, str] | None = None,
    maps: tuple[MapSpec, ...] = (ARRAY,),
    options: AnalysisOptions | None = None,
):
    """Verify `source`; `call kfunc N` instructions get KFUNC relocations naming symbols.

    `builtins` maps `kfunc` immediates (as text) to the symbol the relocation names.
    """
    insns = tuple(assemble(source))
    relocs = []
    for pc, insn in with_pcs(insns):
        if insn.opcode == CALL and insn.src == CallSrc.KFUNC:
            symbol = (builtins or {}).get(str(insn.imm), "memset")
            relocs.append(Relocation(pc, RelocationKind.KFUNC, symbol))
    prog = ProgramSpec("p", section, insns, relocations=tuple(relocs))
    obj = ObjectSpec("p.o", {"p": prog}, {m.name: m for m in maps})
    return verify_program(prog, obj, options=options)


def _accepted(report) -> None:
    assert report.ok, report.render()


def _rejected(report, words: str) -> None:
    assert not report.ok, "accepted"
    assert words in report.first_failure.message, report.first_failure


# -- bpf_get_netns_cookie: the context or NULL ------------------------------------------

CONNECT4 = "cgroup/connect4"


@pytest.mark.parametrize("options", [None, PREVAIL], ids=["load", "prevail"])
def test_netns_cookie_of_the_context_or_null(options) -> None:
    source = """
        r6 = r1
        call 122
        r1 = 0
        call 122
        r1 = r6
        call 122
        r0 = 1
        exit
    """
    _accepted(_verify(source, CONNECT4, options=options))


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        ("r1 = 1", "Nonzero context offset"),
        ("r1 = *(u32 *)(r1 + 4)", "Nonzero context offset"),  # an unknown number
        ("r1 += 4", "Nonzero context offset"),
        ("r1 = r10\nr1 += -8", "Invalid type"),
    ],
)
def test_netns_cookie_of_anything_else_rejected(setup: str, words: str) -> None:
    _rejected(_verify(f"{setup}\ncall 122\nr0 = 1\nexit", CONNECT4), words)


def test_netns_cookie_of_context_on_one_path_number_on_another_rejected() -> None:
    # The state does not split per type: a register that is the context on one path
    # and a number on another cannot be shown to be the context or 0.
    source = """
        r2 = *(u32 *)(r1 + 4)
        if r2 == 0 goto +1
        r1 = 7
        call 122
        r0 = 1
        exit
    """
    _rejected(_verify(source, CONNECT4), "Nonzero context offset")


# -- builtins: memset, memcpy, memmove, memcmp ------------------------------------------

# Loads go through r4: PREVAIL (and pybpf) let loads at constant r10 offsets read
# uninitialised bytes (as an unknown value), while other bases must read numbers.
MEMSET_STACK = """
    r1 = r10
    r1 += -16
    r2 = 0
    r3 = {size}
    call kfunc -1
    r4 = r10
    r0 = *(u64 *)(r4 - 16)
    r0 = *(u64 *)(r4 - 8)
    r0 = 2
    exit
"""


@pytest.mark.parametrize("options", [None, PREVAIL], ids=["load", "prevail"])
def test_memset_makes_stack_bytes_numbers(options) -> None:
    _accepted(_verify(MEMSET_STACK.format(size=16), options=options))


def test_memset_of_too_few_bytes_leaves_the_rest_uninitialised() -> None:
    # PREVAIL's contract; on the load path root may read uninitialised stack (allow_uninit_stack)
    _rejected(_verify(MEMSET_STACK.format(size=8), options=PREVAIL), "Stack content is not numeric")
    _accepted(_verify(MEMSET_STACK.format(size=8)))


def test_memset_larger_than_the_stack_rejected() -> None:
    source = "r1 = r10\nr1 += -8\nr2 = 0\nr3 = 16\ncall kfunc -1\nr0 = 2\nexit"
    _rejected(_verify(source), "Upper bound must be at most")


LOOKUP = """
    *(u32 *)(r10 - 4) = 0
    r2 = r10
    r2 += -4
    r1 = map_fd 0
    call 1
    if r0 == 0 goto +4
    r1 = r0
    r2 = 0
    r3 = {size}
    call kfunc -1
    r0 = 2
    exit
"""


def test_memset_of_a_map_value() -> None:
    _accepted(_verify(LOOKUP.format(size=8)))


def test_memset_larger_than_the_map_value_rejected() -> None:
    _rejected(_verify(LOOKUP.format(size=9)), "Upper bound must be at most r1.shared_region_size")


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        ("r3 = 0", "Invalid size"),  # the size must be > 0
        ("r3 = r10", "Invalid type"),  # the size must be a number
        ("r3 = 8\nr2 = r10", "Invalid type"),  # the value must be a number (xdp)
        ("r3 = 8\nr1 = 0", "Invalid type"),  # no destination
    ],
)
def test_memset_arguments_checked(setup: str, words: str) -> None:
    source = f"r1 = r10\nr1 += -8\nr2 = 0\n{setup}\ncall kfunc -1\nr0 = 2\nexit"
    _rejected(_verify(source), words)


def test_memset_of_the_context_rejected() -> None:
    _rejected(_verify("r2 = 0\nr3 = 4\ncall kfunc -1\nr0 = 2\nexit"), "Invalid type")


MEMCPY = """
    r1 = r10
    r1 += -16
    r2 = r10
    r2 += -8
    r3 = 8
    call kfunc -1
    r4 = r10
    r0 = *(u64 *)(r4 - 16)
    r0 = 2
    exit
"""


@pytest.mark.parametrize("name", ["memcpy", "memmove"])
def test_memcpy_from_numbers_to_the_stack(name: str) -> None:
    source = "*(u64 *)(r10 - 8) = 7\n" + MEMCPY
    _accepted(_verify(source, builtins={"-1": name}))


@pytest.mark.parametrize("name", ["memcpy", "memmove", "memcmp"])
def test_memcpy_from_uninitialised_stack_rejected(name: str) -> None:
    _rejected(
        _verify(MEMCPY, builtins={"-1": name}, options=PREVAIL), "Stack content is not numeric"
    )
    _accepted(_verify(MEMCPY, builtins={"-1": name}))  # root: allow_uninit_stack


def test_memcpy_of_a_spilled_pointer_rejected() -> None:
    # Copying a pointer's bytes would turn it into a number: the source must be numbers.
    source = "*(u64 *)(r10 - 8) = r1\n" + MEMCPY
    _rejected(
        _verify(source, builtins={"-1": "memcpy"}, options=PREVAIL), "Stack content is not numeric"
    )


def test_memset_with_a_variable_size_makes_only_the_sure_bytes_numbers() -> None:
    source = """
        r3 = *(u32 *)(r1 + 12)
        r3 &= 7
        r3 += 1
        r1 = r10
        r1 += -8
        r2 = 0
        call kfunc -1
        r4 = r10
        r0 = *(u8 *)(r4 - 8)
        r0 = *(u8 *)(r4 - 7)
        r0 = 2
        exit
    """
    _rejected(_verify(source, options=PREVAIL), "Stack content is not numeric")
    _accepted(_verify(source))  # root: allow_uninit_stack


def test_memset_forgets_the_cells_it_overwrites() -> None:
    # A spilled context pointer overwritten by memset is no pointer any more.
    source = """
        *(u64 *)(r10 - 8) = r1
        r1 = r10
        r1 += -8
        r2 = 0
        r3 = 8
        call kfunc -1
        r1 = *(u64 *)(r10 - 8)
        r0 = *(u32 *)(r1 + 0)
        r0 = 2
        exit
    """
    _rejected(_verify(source), "Invalid type")


def test_builtin_only_where_a_relocation_names_it() -> None:
    # `call -11` (PREVAIL's memset id) without a relocation is an unknown helper.
    source = "r1 = r10\nr1 += -8\nr2 = 0\nr3 = 8\ncall -11\nr0 = 2\nexit"
    _rejected(_verify(source), "is not supported by pybpf")


def test_other_undefined_functions_stay_unresolved() -> None:
    source = "r1 = 0\ncall kfunc -1\nr0 = 2\nexit"
    _rejected(_verify(source, builtins={"-1": "bpf_foo"}), "unresolved kernel function 'bpf_foo'")


# -- privileged program types --------------------------------------------------------------

UPDATE_WITH_POINTER_FLAGS = """
    *(u32 *)(r10 - 4) = 0
    *(u64 *)(r10 - 16) = 0
    r2 = r10
    r2 += -4
    r3 = r10
    r3 += -16
    r4 = r10
    r1 = map_fd 0
    call 2
    r0 = 0
    exit
"""


@pytest.mark.parametrize(
    ("section", "ok"),
    [("kprobe/f", True), ("raw_tracepoint/sys_enter", True), ("xdp", False)],
)
def test_pointer_as_anything_argument_only_when_privileged(section: str, ok: bool) -> None:
    report = _verify(UPDATE_WITH_POINTER_FLAGS, section, options=PREVAIL)
    assert report.ok == ok, report.render()
    # the load path is root's: allow_ptr_leaks in every program type
    assert _verify(UPDATE_WITH_POINTER_FLAGS, section).ok


def test_pointer_stored_to_a_map_only_when_privileged() -> None:
    body = LOOKUP.replace("r1 = r0\n    r2 = 0\n    r3 = {size}\n    call kfunc -1", "")
    source = body.replace("r0 = 2", "*(u64 *)(r0 + 0) = r10\n    r0 = 0")
    source = source.replace("goto +4", "goto +1")
    _accepted(_verify(source, "kprobe/f"))
    _rejected(_verify(source, "xdp", options=PREVAIL), "Only numbers can be stored")
    _accepted(_verify(source, "xdp"))  # the load path is root's: allow_ptr_leaks


def test_probe_write_user_destination_stays_a_number_when_privileged() -> None:
    source = """
        *(u64 *)(r10 - 8) = 0
        r1 = r10
        r1 += -16
        r2 = r10
        r2 += -8
        r3 = 8
        call 36
        r0 = 0
        exit
    """
    # The domain property, without the per-type helper table: this machine's kernel
    # (lockdown) offers bpf_probe_write_user to no program type, so on the load
    # path the call is refused before its arguments are looked at.
    _rejected(_verify(source, "kprobe/f", options=PREVAIL), "Invalid type")
    _rejected(_verify(source, "kprobe/f"), "cannot use helper bpf_probe_write_user")


# -- writes through a register that may point to the stack or elsewhere --------------------

MIXED_BASE = """
    r6 = r1
    *(u32 *)(r10 - 4) = 0
    r2 = r10
    r2 += -4
    r1 = map_fd 0
    call 1
    if r0 == 0 goto out
    *(u64 *)(r10 - 16) = r6
    r7 = *(u32 *)(r6 + 12)
    r2 = r10
    r2 += -16
    if r7 == 0 goto skip
    r2 = r0
skip:
    {write}
    r3 = *(u64 *)(r10 - 16)
    r0 = *(u32 *)(r3 + 0)
out:
    r0 = 0
    exit
"""


@pytest.mark.parametrize(
    "write",
    ["*(u64 *)(r2 + 0) = 12345", "r1 = 12345\nlock *(u64 *)(r2 + 0) += r1"],
    ids=["store", "atomic"],
)
def test_write_through_stack_or_map_pointer_forgets_the_spill(write: str) -> None:
    # r2 is the stack on one path, a map value on the other: the spilled context
    # pointer may have been overwritten, so it cannot be dereferenced.
    _rejected(_verify(MIXED_BASE.format(write=write)), "Invalid type")


def test_load_through_stack_or_map_pointer_of_numbers_is_a_number() -> None:
    source = """
        r6 = *(u32 *)(r1 + 12)
        *(u32 *)(r10 - 4) = 0
        r2 = r10
        r2 += -4
        r1 = map_fd 0
        call 1
        if r0 == 0 goto +8
        *(u64 *)(r10 - 16) = 0
        r2 = r10
        r2 += -16
        if r6 == 0 goto +1
        r2 = r0
        r0 = *(u64 *)(r2 + 0)
        r0 &= 1
        exit
        r0 = 0
        exit
    """
    _accepted(_verify(source, options=PREVAIL))
