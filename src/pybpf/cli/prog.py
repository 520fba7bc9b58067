"""`pybpf prog run`: one test run of a program of an object, as `bpftool prog run`.

    pybpf prog run OBJ [--section S | --program NAME] [--data-in FILE]
        [--data-out FILE] [--ctx-in FILE] [--ctx-out FILE] [--repeat N]
        [--args U64,…] [--regs NAME=VALUE,…]
        [--map NAME=KEY:VALUE …] [--dump-maps] [--json]

`--map` fills a map before the run (KEY and VALUE as hex bytes, e.g.
`proto_count=11000000:0100000000000000`). `--args` gives a raw
tracepoint's arguments (or a tracepoint record's u64 words), `--regs` a
kprobe's or perf_event's registers; what each program type takes, and the
kernel's errno for what it refuses, is in `pybpf.hooks.test_run`. The output gives the return
value, the mean duration and the maps the run left non-empty or changed
(`--dump-maps`: every map). Output files are written only when the whole
command succeeds, each through a temporary file renamed into place.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import typer

from ..errors import LoadError, TestRunError
from .main import BadInput, app
from .map import map_entries, map_report, print_map
from .options import PLATFORM

U32_MAX = 0xFFFFFFFF
"""The kernel's `repeat` is a u32 (`bpf_attr.test.repeat`); 0 runs once (`bpf_test_run`)."""

prog_app = typer.Typer(
    name="prog", help="Run the programs of an object file.", no_args_is_help=True
)
app.add_typer(prog_app, name="prog")


def _hex(text: str, what: str, option: str) -> bytes:
    try:
        return bytes.fromhex(text.removeprefix("0x").replace("_", ""))
    except ValueError:
        raise BadInput(f"--map {option!r}: {what} {text!r} is not hex bytes") from None


def _read_text(path: Path, option: str) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise BadInput(f"{option} {path}: {reason}") from None


def _parse_map_option(option: str) -> tuple[str, bytes, bytes]:
    name, eq, rest = option.partition("=")
    key, colon, value = rest.partition(":")
    if not eq or not colon or not name:
        raise BadInput(f"--map {option!r}: expected NAME=KEY:VALUE")
    return name, _hex(key, "key", option), _hex(value, "value", option)


def _number(text: str, option: str) -> int:
    try:
        return int(text.strip(), 0)
    except ValueError:
        raise TestRunError(f"{option}: {text!r} is not a number") from None


def _parse_args(text: str) -> list[int]:
    """`--args 1,2,0x3` → [1, 2, 3]."""
    return [_number(part, "--args") for part in text.split(",") if part.strip()]


def _parse_regs(text: str) -> dict[str, int]:
    """`--regs rdi=1,rsi=0x2` → {"rdi": 1, "rsi": 2}."""
    regs = {}
    for part in text.split(","):
        name, eq, value = part.partition("=")
        if not eq or not name.strip():
            raise TestRunError(f"--regs: {part!r}: expected NAME=VALUE")
        regs[name.strip()] = _number(value, "--regs")
    return regs


def _write_atomically(path: Path, data: bytes) -> None:
    # Errors name `path` (not the temporary file): `--data-out DIR` says DIR.
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise OSError(error.errno, error.strerror, str(path)) from None
        raise


def _snapshot(maps: dict[str, Any]) -> dict[str, dict[bytes, Any]]:
    return {name: dict(map_.items()) for name, map_ in maps.items()}


def _context_from_fields(prog: Any, options: list[str], base: bytes | None) -> bytes:
    from ..hooks.context_fields import context_image
    from ..platform.program_type_info import context_access

    access = context_access(prog.prog_type)
    if access is None:
        raise BadInput(
            f"--ctx-field: pybpf has no context layout for {prog.prog_type.name.lower()}"
        )
    fields = {}
    for option in options:
        name, eq, value = option.partition("=")
        if not eq or not name:
            raise BadInput(f"--ctx-field {option!r}: expected NAME=VALUE")
        fields[name.strip()] = value
    try:
        return context_image(access.layout, fields, base)
    except TestRunError as error:  # a bad argument, not a refused run: exit 2
        raise BadInput(f"--ctx-field: {error.reason}") from None


def _sock_addr_context(prog: Any, text: str, other_context: bool) -> tuple[Any, bytes]:
    """The call `--sock-addr` names and the context a program of `prog`'s type gets."""
    from ..hooks.sock_addr import context_for, parse_sock_addr

    if other_context:
        raise BadInput("--sock-addr builds the whole context: give it without --ctx-in/--ctx-field")
    try:
        call = parse_sock_addr(text)
        return call, context_for(prog.prog_type, call)
    except ValueError as error:
        raise BadInput(f"--sock-addr {error}") from None
    except TestRunError as error:
        raise BadInput(f"--sock-addr: {error.reason}") from None


def _address_after(prog: Any, call: Any, ctx_out: bytes | None) -> str:
    """The address in the context after a --sock-addr run, as ADDR:PORT."""
    from ..hooks.sock_addr import address_in_context

    ip, port = address_in_context(prog.prog_type, ctx_out or b"", call)
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _pick_program(obj: Any, section: str | None, program: str | None) -> Any:
    if program is not None:
        return obj.programs[program]
    if section is not None:
        return obj.programs.by_section(section)
    if len(obj.programs) != 1:
        names = ", ".join(obj.programs) or "none"
        raise LoadError(f"{obj.path}: {len(obj.programs)} programs ({names}): pass --program")
    return next(iter(obj.programs.values()))


def prepare_run(obj: Any, prog: Any, updates: list[tuple[str, bytes, bytes]]) -> None:
    """Load only `prog` of `obj`, and set the `--map` entries `updates` first.

    bpftool loads the whole object; here only the program run is loaded and
    verified, so that a sibling pybpf rejects does not block it."""
    for other in obj.programs.values():
        other.autoload = other is prog
    set_map_entries(obj, updates)


def set_map_entries(obj: Any, updates: list[tuple[str, bytes, bytes]]) -> None:
    """Store the `--map NAME=KEY:VALUE` entries `updates` in `obj`'s maps."""
    for name, key, value in updates:
        if name not in obj.maps:
            known = ", ".join(obj.maps) or "none"
            raise BadInput(f"--map {name}: {obj.path} has no such map (maps: {known})")
        obj.maps[name].update(key, value)


def _load_fib(path: Path) -> Any:
    from ..runtime.fib import ForwardingTable

    try:
        return ForwardingTable.load(path)
    except OSError as error:
        raise BadInput(f"--fib {path}: {error.strerror or error}") from None
    except (ValueError, KeyError, TypeError) as error:
        raise BadInput(f"--fib {path}: {error}") from None


@prog_app.command("run", context_settings={"allow_extra_args": True})
def run_command(
    context: typer.Context,
    obj_path: Path = typer.Argument(
        ...,
        metavar="OBJ",
        help="The eBPF object file (or, for a program the daemon holds, bpftool's"
        " `id N|pinned PATH|name NAME data_in FILE [data_out FILE] [repeat N]`).",
    ),
    section: str = typer.Option(None, "--section", help="Run the program of this ELF section."),
    program: str = typer.Option(None, "--program", help="Run the program with this name."),
    data_in: Path = typer.Option(
        None, "--data-in", help="The packet (raw bytes); none for sk_lookup and tracing types."
    ),
    data_out: Path = typer.Option(None, "--data-out", help="Write the packet after the run."),
    ctx_in: Path = typer.Option(None, "--ctx-in", help="The context struct (raw bytes)."),
    ctx_out: Path = typer.Option(None, "--ctx-out", help="Write the context after the run."),
    ctx_fields: list[str] = typer.Option(
        None,
        "--ctx-field",
        metavar="NAME=VALUE",
        help="Set a context field by name (over --ctx-in): a number, an IP address, a"
        " port (network order); repeatable, e.g. --ctx-field user_ip=10.0.0.1.",
    ),
    sock_addr: str = typer.Option(
        None,
        "--sock-addr",
        metavar="ADDR:PORT[/tcp|udp]",
        help="Socket-address programs (cgroup/connect4, bind6, sendmsg4, eBPF for Windows'"
        " bind and sock_addr): the call's address, e.g. 10.0.0.1:80/tcp or [::1]:53/udp;"
        " prints the address after the run.",
    ),
    args: str = typer.Option(
        None, "--args", help="Raw tracepoint arguments (tracepoint record words): u64s, 1,2,0x3."
    ),
    regs: str = typer.Option(
        None, "--regs", help="kprobe/perf_event registers (x86-64 pt_regs): rdi=1,rsi=0x2,rip=…"
    ),
    repeat: int = typer.Option(
        1,
        "--repeat",
        min=0,
        max=U32_MAX,
        help="Run this many times (the kernel's u32: 0 runs once, at most 4294967295).",
    ),
    maps: list[str] = typer.Option(
        None, "--map", help="NAME=KEY:VALUE (hex bytes) stored before the run; repeatable."
    ),
    dump_maps: bool = typer.Option(False, "--dump-maps", help="Show every map after the run."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    engine: str = typer.Option(
        None,
        "--engine",
        help="jit or interpreter (default: the JIT unless the interpreter-only policy is on).",
    ),
    type_name: str = typer.Option(
        None,
        "--type",
        metavar="TYPE",
        help="Run as this program type, bpftool's names (xdp, tc, socket, cgroup/skb, …);"
        " needed when the section does not name one (`2/7`, `from-netdev`).",
    ),
    btf: Path = typer.Option(
        None,
        "--btf",
        metavar="FILE",
        help="Target BTF of CO-RE relocations (default: the kernel's, else pybpf's own).",
    ),
    fib: Path = typer.Option(
        None,
        "--fib",
        metavar="FILE",
        help="Forwarding table bpf_fib_lookup consults: JSON with interfaces, routes,"
        " neighbours (format in pybpf.runtime.fib). Default: only the loopback device.",
    ),
    kconfig: Path = typer.Option(
        None,
        "--kconfig",
        metavar="FILE",
        help="__kconfig values as CONFIG_X=value lines (libbpf's kconfig option);"
        " default: the host's kernel configuration.",
    ),
    platform: str = PLATFORM,
) -> None:
    """Run one program of OBJ on --data-in; print retval, duration and touched maps.

    duration is the mean time of one run in ns over --repeat runs, as the
    kernel's: loading, verifying and JIT-compiling the program are not in it.
    Ctrl-C stops a long run (exit 130).
    """
    from ..object import load
    from ..platform.program_types import ProgramType
    from ..platform.sections import program_type_by_name
    from ..program import untyped_section_message
    from .bpftool_args import TARGET_WORDS

    if str(obj_path) in TARGET_WORDS:
        from .loaded import run_loaded

        run_loaded([str(obj_path), *context.args], as_json)
        return
    if context.args:
        raise BadInput(f"unexpected argument {context.args[0]!r}")
    if ctx_out is not None and ctx_in is None:
        raise BadInput("--ctx-out needs --ctx-in (the kernel copies the context out only then)")
    if type_name is not None and program_type_by_name(type_name) is None:
        raise BadInput(f"--type {type_name!r}: unknown program type (bpftool's type names)")
    updates = [_parse_map_option(option) for option in maps or ()]
    data = data_in.read_bytes() if data_in is not None else b""
    ctx = ctx_in.read_bytes() if ctx_in is not None else None
    run_args = _parse_args(args) if args is not None else None
    run_regs = _parse_regs(regs) if regs is not None else None
    table = _load_fib(fib) if fib is not None else None
    kconfig_text = _read_text(kconfig, "--kconfig") if kconfig is not None else None
    with load(
        obj_path,
        engine=engine,
        prog_type=type_name,
        btf=btf,
        kconfig=kconfig_text,
        platform=platform,
    ) as obj:
        obj.context.fib = table
        prog = _pick_program(obj, section, program)
        if prog.prog_type == ProgramType.UNSPEC:  # the verdict `pybpf verify` gives
            message = untyped_section_message(prog.section, obj.spec.platform)
            raise BadInput(f"{obj_path}: program {prog.name}: {message}")
        prepare_run(obj, prog, updates)
        call = None
        if sock_addr is not None:
            call, ctx = _sock_addr_context(prog, sock_addr, ctx is not None or bool(ctx_fields))
        if ctx_fields:
            ctx = _context_from_fields(prog, ctx_fields, ctx)
        live = obj.maps.live()
        before = _snapshot(live)
        result = prog.test_run(data=data, ctx=ctx, repeat=repeat, args=run_args, regs=run_regs)
        after = _snapshot(live)
        reports = []
        for name, map_ in live.items():
            changed = before[name] != after[name]
            nonzero = map_entries(map_, skip_zero=True)
            if dump_maps or changed or nonzero:
                entries = map_entries(map_) if dump_maps else nonzero
                reports.append(map_report(map_, entries))
    if data_out is not None:
        _write_atomically(data_out, result.data_out)
    if ctx_out is not None and result.ctx_out is not None:
        _write_atomically(ctx_out, result.ctx_out)
    if as_json:
        record = {
            "program": prog.name,
            "engine": prog.engine_kind,
            "retval": result.retval,
            "duration": result.duration,
            "data_size_out": len(result.data_out),
            "maps": reports,
        }
        if call is not None:
            record["address"] = _address_after(prog, call, result.ctx_out)
        typer.echo(json.dumps(record))
        return
    typer.echo(
        f"Return value: {result.retval}, duration (average): {result.duration}ns"
        f" ({prog.engine_kind})"
    )
    if call is not None:
        typer.echo(f"Address: {_address_after(prog, call, result.ctx_out)}")
    for report in reports:
        print_map(report)
