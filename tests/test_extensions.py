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
