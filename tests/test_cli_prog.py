"""`pybpf prog run` and `pybpf map dump`: output, JSON, maps touched, bad input."""

from __future__ import annotations

import json

import pytest

from test_api import SOCKET_FILTER, XDP_COUNTER, packet
from test_cli import assert_one_line_error, pybpf


@pytest.fixture
def dns(tmp_path):
    path = tmp_path / "dns.bin"
    path.write_bytes(packet(53))
    return path


def test_prog_run_text(dns):
    proc = pybpf("prog", "run", str(XDP_COUNTER), "--data-in", str(dns))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Return value: 1, duration (average): ")
    assert "map proto_count (hash): 1 element(s)" in lines
    assert any("11000000" in line and "0100000000000000" in line for line in lines)


def test_prog_run_json_with_map_option(dns, tmp_path):
    out = tmp_path / "out.bin"
    proc = pybpf(
        "prog",
        "run",
        str(XDP_COUNTER),
        "--program",
        "xdp_count",
        "--data-in",
        str(dns),
        "--data-out",
        str(out),
        "--repeat",
        "2",
        "--json",
        "--map",
        "proto_count=11000000:0500000000000000",
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["retval"] == 1 and record["data_size_out"] == len(packet(53))
    maps = {m["name"]: m for m in record["maps"]}
    assert maps["proto_count"]["entries"] == [
        {"key": "11000000", "value": "0700000000000000", "formatted": {"key": 17, "value": 7}}
    ]
    assert maps[".bss"]["entries"][0]["formatted"]["value"] == {"packets_seen": 2}
    assert out.read_bytes() == packet(53)
    assert {p.name for p in tmp_path.iterdir()} == {"dns.bin", "out.bin"}  # no temp files left


def test_prog_run_section_and_dump_maps(tmp_path):
    data = tmp_path / "p.bin"
    data.write_bytes(packet(80))
    proc = pybpf(
        "prog",
        "run",
        str(SOCKET_FILTER),
        "--section",
        "socket",
        "--data-in",
        str(data),
        "--dump-maps",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["program"] == "filter_a" and record["retval"] == len(packet(80)) - 14
    maps = {m["name"]: m for m in record["maps"]}
    assert set(maps) == {"stats", ".data"} and len(maps["stats"]["entries"]) == 4


def test_map_dump_initial_contents():
    proc = pybpf("map", "dump", str(XDP_COUNTER), "xdp_coun.rodata", "--json")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["entries"][0]["formatted"]["value"] == {"blocked_port": 53}
    proc = pybpf("map", "dump", str(XDP_COUNTER), "proto_count")
    assert proc.stdout.strip() == "map proto_count (hash): 0 element(s)"


@pytest.mark.parametrize(
    ("args", "needle", "code"),
    [
        # the map refuses the update (MapError): failed, 1
        (["--map", "proto_count=11:01"], "key is 1 bytes", 1),
        (["--map", "nope=11000000:0100000000000000"], "nope", 2),
        # arguments pybpf cannot use: bad input, 2
        (["--map", "proto_count=zz:01"], "not hex", 2),
        (["--map", "proto_count"], "NAME=KEY:VALUE", 2),
        (["--program", "nope"], "nope", 2),
        (["--section", "tc"], "tc", 2),
        (["--ctx-out", "ctx.bin"], "--ctx-in", 2),
    ],
)
def test_prog_run_bad_input(dns, tmp_path, args, needle, code):
    out = tmp_path / "out.bin"
    proc = pybpf(
        "prog",
        "run",
        str(XDP_COUNTER),
        "--data-in",
        str(dns),
        "--data-out",
        str(out),
        *args,
        cwd=tmp_path,
    )
    assert_one_line_error(proc, needle, code=code)
    assert not out.exists() and not (tmp_path / "ctx.bin").exists()


def test_prog_run_short_packet_and_missing_files(tmp_path):
    short = tmp_path / "short.bin"
    short.write_bytes(b"\0" * 8)
    out = tmp_path / "out.bin"
    proc = pybpf("prog", "run", str(XDP_COUNTER), "--data-in", str(short), "--data-out", str(out))
    assert_one_line_error(proc, "test run", code=1)  # the run is refused, as the kernel's
    assert not out.exists()
    proc = pybpf("prog", "run", str(XDP_COUNTER), "--data-in", str(tmp_path / "none.bin"))
    assert_one_line_error(proc, "none.bin")
    proc = pybpf("prog", "run", str(SOCKET_FILTER), "--data-in", str(short))
    assert_one_line_error(proc, "--program")
    proc = pybpf("map", "dump", str(XDP_COUNTER), "nope")
    assert_one_line_error(proc, "nope", code=2)  # naming a map the object lacks: bad input
