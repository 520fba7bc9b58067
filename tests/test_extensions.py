"""Extensions: an application's own program type with its context, return values and
helpers (examples/extension_app/router.py), verified and run in both engines; an
extension offered by an installed package through the `pybpf.extensions` entry point."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import pybpf
from child_process import modules_imported
from pybpf import extensions
from pybpf.platform import extensions as registry
from pybpf.platform.program_type_info import program_type_info

APP = Path(__file__).resolve().parents[1] / "examples" / "extension_app"


def _router_module():
    """The example application, imported from its file."""
    spec = importlib.util.spec_from_file_location("router_app", APP / "router.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["router_app"] = module  # dataclasses look their module up while defined
    spec.loader.exec_module(module)
    return module


router = _router_module()


@pytest.mark.parametrize("engine", ["jit", "interpreter"])
def test_the_application_routes_with_a_user_policy(engine):
    router.STATE.scores[13] = -5
    router.STATE.log.clear()
    app = router.Router(APP / "policy.o", engine=engine)
    try:
        assert app.route(b"/api/users", 7) == 1
        assert app.program.engine_kind == engine
        assert app.route(b"/static/logo.png", 7) == 2
        assert app.route(b"/", 7) == 3
        assert app.route(b"/api", 7) == 1  # exactly the prefix: within the data range
        assert app.route(b"/api/users", 13) is None  # the helper's score: rejected
        assert router.STATE.log == [b"bad client"]  # the other helper, called by the program
    finally:
        app.close()


def test_the_verifier_holds_programs_to_the_extension_context():
    router.install()
    with pytest.raises(pybpf.VerifierError, match="field client_id is not writeable"):
        router.Router(APP / "bad_policy.o")
    info = program_type_info("router")
    assert info.exit_range == (0, 1) and info.context.writable == {"route"}


def test_registration_errors_name_the_conflict():
    router.install()
    layout = router.REQUEST_CTX
    with pytest.raises(ValueError, match="'router' is already registered"):
        extensions.register_program_type(router.ROUTER)
    clash = extensions.ProgramTypeExtension("router2", ("router",), layout)
    with pytest.raises(ValueError, match="section 'router' already names router"):
        extensions.register_program_type(clash)
    missing = extensions.ProgramTypeExtension("router3", ("r3",), layout, writable=("nope",))
    with pytest.raises(ValueError, match="no context field 'nope'"):
        extensions.register_program_type(missing)


def test_the_command_line_runs_the_application():
    proc = subprocess.run(
        [sys.executable, str(APP / "router.py"), str(APP / "policy.o"), "/static/a", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "route 2"


def test_an_installed_package_offers_a_program_type(tmp_path, monkeypatch):
    """A distribution on sys.path whose entry point (group pybpf.extensions) offers a
    program type: the first object parsed afterwards knows its sections."""
    package = tmp_path / "thermo_ext.py"
    package.write_text(
        textwrap.dedent(
            """
            from pybpf.extensions import Field, ProgramTypeExtension, StructLayout

            def offer():
                layout = StructLayout("thermo_ctx", 8, (Field("celsius", 0, 4),))
                return [ProgramTypeExtension("thermo", ("thermo",), layout, return_range=(0, 1))]
            """
        )
    )
    dist = tmp_path / "thermo_ext-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thermo-ext\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[pybpf.extensions]\nthermo = thermo_ext:offer\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    assert extensions.registered("thermo") is None
    spec = pybpf.elf.load_object_spec(APP / "policy.o")
    assert spec.programs  # parsed after the entry points loaded
    entry = extensions.registered("thermo")
    assert entry is not None and entry.prog_type.name.startswith("EXTENSION_")
    from pybpf.program import program_type_of

    assert program_type_of("thermo/cold") == entry.prog_type


def test_the_look_for_offered_extensions_finds_exactly_the_group(tmp_path, monkeypatch):
    """The quick look before importlib.metadata: False when no dist-info on sys.path names
    the group (another group, no entry points), True when one does or a zip is on the path."""
    other = tmp_path / "other-1.0.dist-info"
    other.mkdir()
    (other / "entry_points.txt").write_text("[console_scripts]\nother = other:main\n")
    (tmp_path / "plain-1.0.dist-info").mkdir()  # no entry_points.txt
    (tmp_path / "old.egg-info").write_text("Name: old\n")  # an egg-info file
    monkeypatch.setattr(sys, "path", [str(tmp_path), str(tmp_path / "missing")])
    assert registry._may_offer_entry_points() is False
    offering = tmp_path / "thermo_ext-1.0.dist-info"
    offering.mkdir()
    (offering / "entry_points.txt").write_text("[pybpf.extensions]\nthermo = thermo_ext:offer\n")
    assert registry._may_offer_entry_points() is True
    (offering / "entry_points.txt").unlink()
    archive = tmp_path / "bundle.zip"
    archive.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip archive
    monkeypatch.setattr(sys, "path", [str(tmp_path), str(archive)])
    assert registry._may_offer_entry_points() is True


def test_parsing_an_object_without_offered_extensions_skips_importlib_metadata():
    code = f"import pybpf.elf\npybpf.elf.load_object_spec({str(APP / 'policy.o')!r})"
    assert modules_imported(code, ("importlib.metadata",)) == []


# A program type whose one helper is native code: the sum of the bytes of a buffer.
_SUM_SOURCE_C = """
#include <stdint.h>
uint64_t sum_bytes(uint64_t buffer, uint64_t size, uint64_t r3, uint64_t r4, uint64_t r5)
{
    const uint8_t *p = (const uint8_t *)buffer;
    uint64_t total = 0;
    for (uint64_t i = 0; i < size; i++)
        total += p[i];
    return total * 10 + r3 * 0;
}
"""
_SUM_PROGRAM = """
#define SEC(name) __attribute__((section(name), used))
typedef unsigned long long u64;
struct sum_ctx { void *data; void *data_end; unsigned int total; };
static u64 (*sum_bytes)(void *buffer, u64 size) = (void *)0x10000;
SEC("sum") int add_up(struct sum_ctx *ctx)
{
    unsigned char *data = ctx->data;
    if (data + 16 > (unsigned char *)ctx->data_end)
        return 0;
    ctx->total = sum_bytes(data, 16);
    return 1;
}
"""


def _llvmlite_sum() -> tuple[object, int]:
    """sum_bytes compiled to native code with llvmlite: (the engine to keep, its address)."""
    import llvmlite.binding as llvm

    ir_text = """
define i64 @sum_bytes(i64 %buf, i64 %size, i64 %r3, i64 %r4, i64 %r5) {
entry:
  %p = inttoptr i64 %buf to i8*
  br label %loop
loop:
  %i = phi i64 [0, %entry], [%next, %body]
  %acc = phi i64 [0, %entry], [%acc2, %body]
  %done = icmp uge i64 %i, %size
  br i1 %done, label %exit, label %body
body:
  %q = getelementptr i8, i8* %p, i64 %i
  %b = load i8, i8* %q
  %w = zext i8 %b to i64
  %acc2 = add i64 %acc, %w
  %next = add i64 %i, 1
  br label %loop
exit:
  %r = mul i64 %acc, 10
  ret i64 %r
}
"""
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    machine = llvm.Target.from_default_triple().create_target_machine()
    module = llvm.parse_assembly(ir_text)
    engine = llvm.create_mcjit_compiler(module, machine)
    engine.finalize_object()
    return engine, engine.get_function_address("sum_bytes")


def _sum_extension(name: str, native: object) -> extensions.ProgramTypeExtension:
    from pybpf.platform.contexts import Field, StructLayout

    layout = StructLayout(
        f"{name}_ctx",
        24,
        (
            Field("data", 0, 8, frozenset({8}), frozenset(), pointer=True),
            Field("data_end", 8, 8, frozenset({8}), frozenset(), pointer=True),
            Field("total", 16, 4, frozenset({4}), frozenset({4})),
        ),
    )
    helper = extensions.ExtensionHelper(
        0x10000, "sum_bytes", args=("ptr_to_mem", "const_size"), native=native
    )
    return extensions.ProgramTypeExtension(
        name, (f"{name}/",), layout, writable=("total",), return_range=(0, 1), helpers=(helper,)
    )


def _run_sum(tmp_path: Path, section: str, engine: str) -> tuple[int, int]:
    from clang_build import build_object

    obj_path = build_object(
        tmp_path, section, _SUM_PROGRAM.replace('SEC("sum")', f'SEC("{section}/x")')
    )
    data = bytes(range(1, 17)) + b"tail"
    with pybpf.load(obj_path, engine=engine) as obj:
        prog = obj.programs["add_up"]
        res = prog.test_run(data=data, ctx=bytes(24))
        assert prog.engine_kind == engine
        if engine == "jit":  # called straight from the compiled code, not through Python
            assert 'call i64 @"pybpf_native_helper_' in prog.engine.ir
        return res.retval, int.from_bytes(res.ctx_out[16:20], "little")


_SUM_ENGINE = None


@pytest.mark.parametrize("engine", ["jit", "interpreter"])
def test_a_helper_in_native_code_built_with_llvmlite(tmp_path, engine):
    global _SUM_ENGINE
    if registry.registered("sum_llvm") is None:
        _SUM_ENGINE, address = _llvmlite_sum()
        extensions.register_program_type(_sum_extension("sum_llvm", address))
    assert _run_sum(tmp_path, "sum_llvm", engine) == (1, sum(range(1, 17)) * 10)


@pytest.mark.parametrize("engine", ["jit", "interpreter"])
def test_a_helper_in_native_code_from_a_shared_library(tmp_path, engine):
    import ctypes
    import shutil

    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    if registry.registered("sum_c") is None:
        (tmp_path / "sum.c").write_text(_SUM_SOURCE_C)
        library = tmp_path / "libsum.so"
        subprocess.run(
            [cc, "-O2", "-shared", "-fPIC", str(tmp_path / "sum.c"), "-o", str(library)], check=True
        )
        function = ctypes.CDLL(str(library)).sum_bytes
        extensions.register_program_type(_sum_extension("sum_c", function))
    assert _run_sum(tmp_path, "sum_c", engine) == (1, sum(range(1, 17)) * 10)


def test_a_helper_needs_one_implementation():
    with pytest.raises(ValueError, match="give either impl"):
        extensions.register_program_type(_sum_extension("sum_none", None))
    both = extensions.ExtensionHelper(0x10000, "x", impl=lambda *a: 0, native=1234)
    with pytest.raises(ValueError, match="give either impl"):
        extensions.register_program_type(
            extensions.ProgramTypeExtension(
                "sum_both", ("sum_both/",), _sum_extension("t", 1).context, helpers=(both,)
            )
        )
