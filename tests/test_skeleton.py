"""`pybpf gen skeleton`: generated modules import, type maps and globals, and run programs.

Each test writes a skeleton into tmp_path, imports it and drives the object
only through it: `.rodata` set before load, a program run with
`skel.progs.X.test_run`, then `.bss`/`.data` variables and typed map
lookups checked against what the C source computes from the packet.
"""

from __future__ import annotations

import ctypes
import errno
import importlib.util
import itertools
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import pybpf
from pybpf.cli.main import main
from pybpf.elf.specs import ObjectSpec
from pybpf.errors import LoadError, MapError
from pybpf.gen.skeleton import generate_skeleton, render_skeleton
from pybpf.skeleton import MapView, PerCpuMapView, fingerprint

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
GLOBALS_MIXED = ROOT / "tests" / "corpus" / "globals_mixed.o"
SKEL_TYPES = ROOT / "tests" / "skeleton" / "skel_types.o"
SKEL_TYPES_C = ROOT / "tests" / "skeleton" / "skel_types.c"

XDP_ABORTED, XDP_DROP, XDP_PASS = 0, 1, 2
_counter = itertools.count()


def import_skeleton(directory: Path, obj: Path, name: str | None = None) -> ModuleType:
    """Generate the skeleton of `obj` into `directory`, import it and return the module."""
    module_name = f"skel_{obj.stem}_{next(_counter)}"
    path = directory / f"{module_name}.py"
    path.write_text(generate_skeleton(obj, name=name))
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def udp_packet(dport: int, saddr: bytes = bytes([10, 0, 0, 1]), proto: int = 17) -> bytes:
    """Ethernet + IPv4 + UDP to `dport` with 4 bytes of payload."""
    l4 = struct.pack("!HHHH", 40000, dport, 12, 0) + b"skel"
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0, 64, proto, 0, saddr, bytes([10, 0, 0, 2])
    )
    return bytes.fromhex("020000000002020000000001") + b"\x08\x00" + ip + l4


# -- globals of every section kind ---------------------------------------------------


def test_globals_mixed_through_the_skeleton(tmp_path: Path) -> None:
    module = import_skeleton(tmp_path, GLOBALS_MIXED)
    with module.GlobalsMixedSkeleton.open() as skel:
        # the initial values of the C source, typed
        assert skel.rodata.cfg_port == 53
        limits = skel.rodata.cfg_limits
        assert type(limits) is module.limits
        assert (limits.kind, limits.max_bytes) == (2, 1500)
        assert skel.data.d_hist == [10, 20, 30]
        assert skel.data_custom.dc_c == 0xCCCCCCCC
        assert skel.rodata_custom.rc_a == 0x1234
        # static variables are private to the object, as in bpftool's skeletons
        assert not hasattr(skel.rodata, "cfg_hidden")
        assert not hasattr(skel.data, "d_static")

        skel.rodata.cfg_shift = 2
        skel.rodata.cfg_mult = 5
        skel.rodata.cfg_port = 8080
        skel.rodata.cfg_limits = module.limits(kind=4, max_bytes=100)
        skel.rodata.cfg_salt = 0x0102030405060708
        skel.rodata_custom.rc_c = 0x10
        skel.data_custom.dc_b = 0x03
        skel.load()
        with pytest.raises(MapError) as frozen:
            skel.rodata.cfg_port = 1
        assert frozen.value.errno == errno.EPERM
        assert skel.rodata.cfg_port == 8080

        result = skel.progs.globals_mixed.test_run(data=bytes(64))
        assert result.retval == XDP_PASS  # 64 <= max_bytes 100

        assert skel.bss.b_len == (64 << 2) * 5
        assert skel.bss.b_proto == 4 + 0x10
        assert skel.bss.b_mixed == 0x0102030405060708 ^ 100 ^ 0x5678 ^ 9  # 9: cfg_hidden
        assert skel.bss.b_ports == [8080, 0, 0, 0x1234]
        counters = skel.bss.b_counters
        assert type(counters) is module.counters
        assert (counters.runs, counters.last_len, counters.total) == (1, 64, 64)
        assert skel.data.d_seen == 2
        assert skel.data.d_acc == 1000 + 64 + 42
        assert skel.data.d_hist == [11, 20, 30]
        d_counters = skel.data.d_counters
        assert (d_counters.runs, d_counters.flags, d_counters.total) == (6, 0x83, 7 + 0xCCCCCCCC)
        assert skel.data_custom.dc_a == 0xAAAB

        # writes to .data / .bss go through to the program
        skel.bss.b_counters = module.counters(runs=100, total=1)
        skel.data.d_hist = [0, 0]
        result = skel.progs.globals_mixed.test_run(data=bytes(101))
        assert result.retval == XDP_DROP  # 101 > 100
        assert skel.bss.b_counters.runs == 101
        assert skel.bss.b_counters.total == 102
        assert skel.data.d_hist == [0, 1, 0]
        assert skel.data.as_dict()["d_seen"] == 3


def test_bad_values_are_einval_and_change_nothing(tmp_path: Path) -> None:
    module = import_skeleton(tmp_path, GLOBALS_MIXED)
    with module.GlobalsMixedSkeleton.open() as skel:
        for name, value in (
            ("cfg_port", 1 << 16),
            ("cfg_port", -1),
            ("cfg_port", "80"),
            ("cfg_limits", 5),
        ):
            with pytest.raises(MapError) as error:
                setattr(skel.rodata, name, value)
            assert error.value.errno == errno.EINVAL
        assert skel.rodata.cfg_port == 53
        with pytest.raises(MapError):
            skel.data.d_hist = [1, 2, 3, 4]
        assert skel.data.d_hist == [10, 20, 30]


# -- struct keys and values, enums, bitfields, unions --------------------------------


@pytest.fixture
def types_module(tmp_path: Path) -> ModuleType:
    return import_skeleton(tmp_path, SKEL_TYPES)


def flow_key(module: ModuleType, ip: int, port: int, tag: int = 2):
    key = module.flow_key(
        src=module.addr(ip=ip, port=port, proto=6), dst=module.addr(ip=2, port=443, proto=6)
    )
    key.tag[0] = tag
    return key


@pytest.mark.parametrize("engine", ["interpreter", "jit"])
def test_typed_maps_and_globals(types_module: ModuleType, engine: str) -> None:
    m = types_module
    assert issubclass(m.color, __import__("enum").IntEnum)
    assert (m.color.RED, m.color.GREEN, m.color.BLUE) == (0, 1, 7)
    with m.SkelTypesSkeleton.open(engine=engine) as skel:
        assert skel.rodata.cfg_color is m.color.GREEN
        assert skel.rodata.cfg_match == m.addr(ip=0x0A000001, port=80, proto=6)
        assert skel.data.d_label == b"skel"
        skel.rodata.cfg_color = m.color.BLUE
        skel.rodata.cfg_bias = -3
        skel.rodata.cfg_match = m.addr(ip=0x0A000009, port=8080, proto=17)

        flows = skel.maps.flows
        assert isinstance(flows, MapView)
        assert isinstance(skel.maps.hits, PerCpuMapView)
        assert isinstance(skel.maps.rodata, pybpf.Map)
        miss = flow_key(m, 0x0A000001, 80)
        hit = flow_key(m, 0x0A000009, 8080, tag=3)
        hit.src.proto = 17

        # a value written from Python, updated by the program
        seeded = m.flow_stats(packets=10, bytes=1000, color=m.color.RED, delta=100)
        seeded.level, seeded.small, seeded.code = 7, 4, 0xABC
        seeded.parts[3] = 0x7F
        flows[hit] = seeded

        assert skel.progs.skel_types.test_run(data=bytes(miss) + bytes(30)).retval == XDP_PASS
        assert skel.progs.skel_types.test_run(data=bytes(hit) + bytes(10)).retval == XDP_DROP

        fresh = flows[miss]
        assert type(fresh) is m.flow_stats
        assert (fresh.packets, fresh.bytes) == (1, 50)
        assert fresh.color is m.color.BLUE
        assert (fresh.urgent, fresh.level, fresh.code, fresh.small) == (1, 2, 50, -3)
        assert fresh.raw == 0x04030201 and list(fresh.parts) == [1, 2, 3, 4]
        assert (fresh.name, fresh.delta) == (b"new", -3)

        updated = flows.lookup(hit)
        assert updated is not None
        assert (updated.packets, updated.bytes, updated.code) == (11, 1030, 0xABC)
        assert (updated.level, updated.small, updated.delta) == (0, 1, 97)  # level wraps at 3 bits
        assert updated.color is m.color.RED and updated.parts[3] == 0x7F

        assert set(flows) == {miss, hit} and len(flows) == 2
        assert flows.lookup(flow_key(m, 1, 1)) is None
        del flows[miss]
        with pytest.raises(KeyError):
            flows[miss]

        assert skel.maps.palette[2] is m.color.BLUE and skel.maps.palette[3] is m.color.BLUE
        assert skel.maps.palette[0] is m.color.RED
        assert sum(skel.maps.hits[0]) == 2
        assert skel.bss.b_total == 50 + 30
        assert skel.bss.b_last_color is m.color.BLUE
        assert skel.bss.b_last == updated
        assert skel.bss.b_matched == 1
        assert skel.data.d_last_src == hit.src
        assert skel.data.d_label == b"Skel"
        # C names Python reserves: keywords get a `_`, `__x` (mangled in classes) one `_`
        assert (skel.data.d_keywords.from_, skel.data.d_keywords.in_) == (1, 4)
        assert skel.data._d_mangled == 79
        assert skel.data.as_dict()["__d_mangled"] == 79


def test_generated_layouts_agree_with_btf(types_module: ModuleType) -> None:
    """The ctypes classes read the bytes as `pybpf.btf.values` renders them from BTF."""
    m = types_module
    for cls, size in ((m.addr, 8), (m.flow_key, 20), (m.flow_stats, 40)):
        assert ctypes.sizeof(cls) == size
    with m.SkelTypesSkeleton.open() as skel:
        stats = m.flow_stats(packets=3, bytes=4, color=m.color.GREEN, delta=-2)
        stats.urgent, stats.level, stats.code, stats.small, stats.raw = 1, 5, 0xFFF, -16, 0xA1B2C3D4
        stats.name = b"abcdefgh"
        skel.bss.b_last = stats
        rendered = skel.obj.bss.b_last  # dict through btf.values
        for name in ("packets", "bytes", "color", "urgent", "level", "code", "small", "delta"):
            assert rendered[name] == getattr(stats, name), name
        assert rendered["name"] == b"abcdefgh"
        assert bytes(skel.bss.b_last) == bytes(stats)
        with pytest.raises(ValueError):
            stats.level = 8
        with pytest.raises(ValueError):
            stats.small = -17


def test_struct_values_compare_print_and_convert(types_module: ModuleType) -> None:
    m = types_module
    a = m.addr(ip=1, port=2, proto=3)
    assert a == m.addr(ip=1, port=2, proto=3) and a != m.addr(ip=1, port=2, proto=4)
    assert hash(a) == hash(m.addr(ip=1, port=2, proto=3))
    assert repr(a) == "addr(ip=1, port=2, proto=3)"
    key = flow_key(m, 5, 6, tag=7)
    assert key.to_dict() == {
        "src": {"ip": 5, "port": 6, "proto": 6},
        "dst": {"ip": 2, "port": 443, "proto": 6},
        "tag": [7, 0],
    }


# -- examples with maps ----------------------------------------------------------------


def test_xdp_firewall_lpm_rules(tmp_path: Path) -> None:
    module = import_skeleton(tmp_path, EXAMPLES / "xdp_firewall.o")
    with module.XdpFirewallSkeleton.open_and_load() as skel:
        blocked = bytes([192, 0, 2, 7])
        rule = module.ipv4_lpm_key(prefixlen=32, addr=int.from_bytes(blocked, "little"))
        skel.maps.rules[rule] = XDP_DROP
        assert skel.maps.rules[rule] == XDP_DROP
        run = skel.progs.xdp_firewall.test_run
        assert run(data=udp_packet(53, saddr=blocked)).retval == XDP_DROP
        assert run(data=udp_packet(53)).retval == XDP_PASS
        assert run(data=udp_packet(53)).retval == XDP_PASS
        assert [skel.maps.verdicts[action] for action in range(4)] == [0, 1, 2, 0]
        (key,) = list(skel.maps.rules)
        assert type(key) is module.ipv4_lpm_key and key == rule


def test_xdp_counter_rodata_and_hash(tmp_path: Path) -> None:
    module = import_skeleton(tmp_path, EXAMPLES / "xdp_counter.o", name="counter")
    with module.CounterSkeleton.open() as skel:
        assert skel.rodata.blocked_port == 53
        skel.rodata.blocked_port = 5353
        run = skel.progs.xdp_count.test_run
        assert run(data=udp_packet(53)).retval == XDP_PASS
        assert run(data=udp_packet(5353)).retval == XDP_DROP
        assert run(data=udp_packet(80, proto=6)).retval == XDP_PASS
        assert skel.bss.packets_seen == 3
        assert dict(skel.maps.proto_count.items()) == {17: 2, 6: 1}
        assert skel.obj.loaded


def test_maps_without_btf_types_are_raw_maps(tmp_path: Path) -> None:
    module = import_skeleton(tmp_path, EXAMPLES / "xdp_events.o")
    with module.XdpEventsSkeleton.open() as skel:
        assert isinstance(skel.maps.events, pybpf.Map)
        assert skel.progs.xdp_events.test_run(data=udp_packet(53)).retval == XDP_PASS
    module = import_skeleton(tmp_path, EXAMPLES / "xdp_tailcall.o")
    assert set(vars(module.XdpTailcallProgs)) >= {"xdp_dispatch", "xdp_tcp", "xdp_udp", "xdp_icmp"}


# -- every example: the text is valid, lint-clean, and matches its object -------------------

OBJECTS = sorted(EXAMPLES.glob("*.o")) + [GLOBALS_MIXED, SKEL_TYPES]


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda p: p.name)
def test_every_object_imports_and_matches(tmp_path: Path, obj: Path) -> None:
    module = import_skeleton(tmp_path, obj)
    (skeleton,) = [
        value
        for name, value in vars(module).items()
        if name.endswith("Skeleton")
        and isinstance(value, type)
        and value.__module__ == module.__name__
    ]
    spec = ObjectSpec.from_file(obj)
    skeleton.check(spec)  # no LoadError: the object is the one it was made from
    assert skeleton.FINGERPRINT == fingerprint(spec)
    assert Path(skeleton.OBJECT_PATH) == obj.resolve()
    progs, maps = skeleton.PARTS["progs"], skeleton.PARTS["maps"]
    with pybpf.load(obj) as loaded:  # the parts declare what the live object has
        assert [p.name for p in progs.declarations()] == list(loaded.programs)
        assert [m.name for m in maps.declarations()] == list(loaded.maps)


def test_generated_code_passes_ruff(tmp_path: Path) -> None:
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed")
    for obj in OBJECTS:
        (tmp_path / f"{obj.stem}_skel.py").write_text(generate_skeleton(obj))
    config = str(ROOT / "pyproject.toml")
    check = subprocess.run(
        [ruff, "check", "--no-cache", "--config", config, str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    fmt = subprocess.run(
        [ruff, "format", "--no-cache", "--check", "--config", config, str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


# -- a changed object ----------------------------------------------------------------------


def test_a_different_object_is_refused(tmp_path: Path) -> None:
    module = import_skeleton(tmp_path, SKEL_TYPES)
    with pytest.raises(LoadError, match="no map flows"):
        module.SkelTypesSkeleton.open(EXAMPLES / "xdp_counter.o")
    moved = tmp_path / "skel_types.o"
    shutil.copyfile(SKEL_TYPES, moved)
    with module.SkelTypesSkeleton.open(moved) as skel:  # the same object elsewhere is fine
        assert skel.obj.path == str(moved)


def test_missing_recorded_object_is_a_load_error(tmp_path: Path) -> None:
    obj = tmp_path / "gone.o"
    shutil.copyfile(SKEL_TYPES, obj)
    module = import_skeleton(tmp_path, obj)
    obj.unlink()
    with pytest.raises((LoadError, OSError)):
        module.GoneSkeleton.open()


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        # a member changes type but not size: only the fingerprint can tell
        (("\t__u16 port;\n\t__u8 proto;", "\t__s16 port;\n\t__u8 proto;"), "types changed"),
        # a variable grows
        (("const volatile __s32 cfg_bias", "const volatile __s64 cfg_bias"), "cfg_bias"),
        # a map's value grows
        (("\t__s16 delta;\n};", "\t__s64 delta;\n};"), "map flows: value"),
    ],
)
def test_a_changed_object_is_detected(tmp_path: Path, edit: tuple[str, str], reason: str) -> None:
    from clang_build import build_object

    module = import_skeleton(tmp_path, SKEL_TYPES)
    source = SKEL_TYPES_C.read_text()
    assert edit[0] in source
    changed = build_object(tmp_path, "changed", source.replace(edit[0], edit[1]))
    with pytest.raises(LoadError, match=reason) as error:
        module.SkelTypesSkeleton.open(changed)
    assert str(changed) in str(error.value) and "pybpf gen skeleton" in str(error.value)


# -- the command line ----------------------------------------------------------------------


def test_cli_writes_what_the_api_renders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "skel.py"
    assert main(["gen", "skeleton", str(SKEL_TYPES), "-o", str(out)]) == 0
    assert out.read_text() == render_skeleton(ObjectSpec.from_file(SKEL_TYPES))
    capsys.readouterr()
    assert main(["gen", "skeleton", str(SKEL_TYPES), "--name", "flows"]) == 0
    printed = capsys.readouterr().out
    assert printed == generate_skeleton(SKEL_TYPES, name="flows")
    assert "class FlowsSkeleton(_skel.Skeleton):" in printed


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["gen", "skeleton", "{tmp}/missing.o"], "missing.o"),
        (["gen", "skeleton", "{root}/README.md"], "README.md"),
        (["gen", "skeleton", "{obj}", "--name", "not-a-name"], "not-a-name"),
        (["gen", "skeleton", "{obj}", "-o", "{tmp}/no/such/dir/skel.py"], "skel.py"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], named: str
) -> None:
    argv = [a.format(tmp=tmp_path, root=ROOT, obj=SKEL_TYPES) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("pybpf: error: ") and err.count("\n") == 1 and named in err
