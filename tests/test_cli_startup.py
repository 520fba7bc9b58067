"""The CLI's start-up: commands coerce plain values without pydantic, and `import pybpf` is light."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pybpf.cli import main as cli

ROOT = Path(__file__).resolve().parents[1]
DEMO = ["prog", "run", "examples/xdp_counter.o", "--data-in", "examples/packets/udp_dns.bin"]


def _typer_coercion(param, value):
    """What typer itself (pydantic) makes of `value` for `param`."""
    param._runtime_param = None
    try:
        return param.get_runtime_param().coerce(value, param=param, ctx=None)
    finally:
        cli._plain_param(param)


LAZY_COERCION = pytest.mark.skipif(
    not hasattr(importlib.import_module("typer.core"), "_TyperParameter"),
    reason="this typer coerces without pydantic TypeAdapters: nothing is replaced",
)


@LAZY_COERCION
def test_the_plain_coercion_gives_what_typer_gives():
    run = cli._command([]).commands["prog"].commands["run"]
    params = {param.name: param for param in run.params}
    samples = {
        "obj_path": ["x.o", "dir/y.o", Path("z.o")],
        "section": ["xdp", "", " spaced "],
        "repeat": ["0", "7", "007", 1, "4294967295"],
        "maps": [(), ("a=01:02",), ["a=01:02", "b=03:04"]],
        "dump_maps": [True, False],
    }
    for name, values in samples.items():
        param = params[name]
        assert isinstance(param._runtime_param, cli._PlainCoercion), name
        for value in values:
            plain = param._runtime_param.coerce(value, param=param, ctx=None)
            assert plain == _typer_coercion(param, value), (name, value)
            assert type(plain) is type(_typer_coercion(param, value)), (name, value)


def _outcome(coerce, value):
    try:
        return ("value", coerce(value))
    except Exception as error:  # noqa: BLE001 - the error is what is compared
        return ("error", str(error))


@LAZY_COERCION
@pytest.mark.parametrize("value", ["-1", "abc", "4294967296", " 5", "1e3", "+3"])
def test_values_the_plain_coercion_is_unsure_of_go_to_typer(value):
    run = cli._command([]).commands["prog"].commands["run"]
    (repeat,) = [param for param in run.params if param.name == "repeat"]
    plain = repeat._runtime_param
    ours = _outcome(lambda v: plain.coerce(v, param=repeat, ctx=None), value)
    cli._plain_param(repeat)
    assert ours == _outcome(lambda v: _typer_coercion(repeat, v), value)
    if value in ("-1", "abc", "4294967296"):
        assert ours[0] == "error"


def _fresh(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_test_run_from_the_command_line_never_imports_pydantic():
    out = _fresh(
        "import sys\nfrom pybpf.cli.main import main\n"
        f"code = main({DEMO!r})\n"
        "print(code, 'pydantic' in sys.modules)"
    )
    assert out.splitlines()[-1] == "0 False"
    assert out.startswith("Return value: 1,")


def test_import_pybpf_imports_no_loader_and_keeps_its_public_names():
    out = _fresh(
        "import sys, pybpf\n"
        "heavy = [m for m in ('pybpf.object', 'pybpf.elf', 'llvmlite', 'pybpf.verifier')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
        "print(sorted(pybpf.__all__) == sorted(n for n in pybpf.__all__ if hasattr(pybpf, n)))\n"
        "print(pybpf.open is pybpf.load, pybpf.btf.__name__)"
    )
    assert out.splitlines() == ["[]", "True", "True pybpf.btf"]


_SHAPE = """
import json, sys
import typer
from pybpf.cli import main as cli
cli._register_commands(sys.argv[1:])
command = typer.main.get_command(cli.app)


def shape(command):
    return {
        "params": [param.name for param in command.params],
        "help": command.help,
        "commands": {name: shape(sub) for name, sub in getattr(command, "commands", {}).items()},
    }


print(json.dumps(shape(command)))
"""


def _shape(*argv: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-c", _SHAPE, *argv], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def test_each_command_registered_alone_is_the_command_every_module_makes():
    from pybpf.cli import commands

    everything = _shape()
    assert list(everything["commands"]) == list(commands.MODULES)  # what --help lists, in order
    for name in commands.MODULES:
        alone = _shape(name, "--help")
        assert alone["commands"][name] == everything["commands"][name], name


def test_each_subcommand_registered_alone_is_the_subcommand_every_module_makes():
    from pybpf.cli import commands

    everything = _shape()
    for command, subcommand in commands.SUBCOMMAND_MODULES:
        alone = _shape(command, subcommand, "--help")
        group = alone["commands"][command]
        assert (
            group["commands"][subcommand] == everything["commands"][command]["commands"][subcommand]
        ), (command, subcommand)
        assert list(group["commands"]) != list(everything["commands"][command]["commands"])


UNUSED_BY_THE_DEMO = (
    "pybpf.cli.loaded",  # the daemon's prog and map commands
    "elftools",  # the ELF reader is pybpf's own
    "importlib.metadata",  # no installed package offers an extension
    "pybpf.runtime.fib",  # no FIB lookup
    "pybpf.runtime.sockets",  # no socket lookup
    "pybpf.runtime.maps.ringbuf",  # no ring buffer
    "socket",
    "logging",  # the JIT logs only a failed optimisation
)
"""Modules `prog run` of the demo (an XDP counter with a hash map) needs on no run with warm
caches (a first run, which compiles, may import more)."""


def test_the_demo_imports_none_of_the_modules_it_does_not_use():
    warm = f"from pybpf.cli.main import main\nmain({DEMO!r})"
    _fresh(warm)  # the verifier's and the JIT's disk caches hold the demo, as on a second run
    out = _fresh(
        "import sys\nfrom pybpf.cli.main import main\n"
        f"code = main({DEMO!r})\n"
        f"print(code, [name for name in {UNUSED_BY_THE_DEMO!r} if name in sys.modules])"
    )
    assert out.splitlines()[-1] == "0 []"
