"""`pybpf verify`: exit codes, the report of a rejected program, -v and --json."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pybpf.cli.main import main
from pybpf.elf import load_object_spec
from pybpf.isa.instruction import with_pcs

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

SOURCE = r"""
#define SEC(n) __attribute__((section(n), used))
struct xdp_md { unsigned int data, data_end, data_meta, ingress_ifindex, rx_queue_index; };

SEC("xdp") int no_check(struct xdp_md *ctx)
{
    unsigned char *data = (void *)(long)ctx->data;
    return data[20] == 6 ? 1 : 2;
}

SEC("xdp") int checked(struct xdp_md *ctx)
{
    unsigned char *data = (void *)(long)ctx->data;
    unsigned char *end = (void *)(long)ctx->data_end;
    if (data + 21 > end)
        return 2;
    return data[20] == 6 ? 1 : 2;
}

char _license[] SEC("license") = "GPL";
"""


@pytest.fixture(scope="module")
def packet_obj(tmp_path_factory) -> Path:
    """Two XDP programs: `no_check` reads the packet without a data_end check, `checked` does."""
    clang = shutil.which("clang-16") or shutil.which("clang")
    if clang is None:
        pytest.skip("clang is not installed")
    tmp = tmp_path_factory.mktemp("verify")
    (tmp / "pkt.c").write_text(SOURCE)
    subprocess.run(
        [clang, "-g", "-O2", "-target", "bpf", "-c", str(tmp / "pkt.c"), "-o", str(tmp / "pkt.o")],
        check=True,
    )
    return tmp / "pkt.o"


def unsafe(name: str) -> str:
    path = EXAMPLES / "unsafe" / name
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return str(path)


def test_safe_program_exits_0(packet_obj, capsys) -> None:
    assert main(["verify", str(packet_obj), "--program", "checked"]) == 0
    out = capsys.readouterr().out
    assert "xdp/checked (xdp): PASS" in out
    assert "1 of 1 program(s) verified" in out


def test_examples_verify(capsys) -> None:
    assert main(["verify", str(EXAMPLES / "xdp_tailcall.o")]) == 0
    assert "4 of 4 program(s) verified" in capsys.readouterr().out


def test_rejected_program_report(packet_obj, capsys) -> None:
    assert main(["verify", str(packet_obj)]) == 1
    out = capsys.readouterr().out
    assert "xdp/no_check (xdp): FAIL" in out
    assert "xdp/checked (xdp): PASS" in out
    assert "at 1: r1 = *(u8 *)(r1 + 20)" in out
    assert "error: Upper bound must be at most packet_size" in out
    assert "reason: r1 points into the packet" in out
    assert "pkt.c:8: return data[20] == 6 ? 1 : 2;" in out
    assert "hint: add `if (ptr + N > data_end) return …;` before the access" in out
    assert "state before 1:" in out
    assert "    r1.type=packet" in out
    assert "1 of 2 program(s) verified" in out


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("map_value_nullcheck.o", "check the result of bpf_map_lookup_elem"),
        ("pkt_write_past_end.o", "add `if (ptr + N > data_end) return …;`"),
    ],
)
def test_hints_for_common_mistakes(name, hint, capsys) -> None:
    assert main(["verify", unsafe(name)]) == 1
    assert f"hint: {hint}" in capsys.readouterr().out


def test_uninitialised_register_in_plain_words(capsys) -> None:
    assert main(["verify", unsafe("uninit_register.o")]) == 1
    assert "R7 !read_ok (the register is read before it is writ" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent/x.o"], "No such file"),
        ([str(EXAMPLES / "xdp_counter.c")], "not an ELF file"),
        ([str(EXAMPLES / "xdp_counter.o"), "--section", "nope"], "no program in section nope"),
        ([str(EXAMPLES / "xdp_counter.o"), "--program", "nope"], "no program named nope"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message, capsys) -> None:
    assert main(["verify", *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_json_document(packet_obj, capsys) -> None:
    assert main(["verify", str(packet_obj), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"] == "fail"
    programs = {p["name"]: p for p in doc["programs"]}
    assert programs["checked"]["verdict"] == "pass"
    assert programs["checked"]["failures"] == []
    bad = programs["no_check"]
    assert bad["verdict"] == "fail"
    assert isinstance(bad["time"], float)
    (failure,) = bad["failures"]
    assert failure["pc"] == 1
    assert failure["instruction"] == "r1 = *(u8 *)(r1 + 20)"
    assert failure["message"].startswith("Upper bound must be at most packet_size")
    assert failure["source"].endswith("pkt.c:8: return data[20] == 6 ? 1 : 2;")
    assert "r1.type=packet" in failure["state"]
    assert failure["hint"].startswith("add `if (ptr + N > data_end)")


def test_json_section_filter_passes(capsys) -> None:
    assert main(["verify", str(EXAMPLES / "xdp_counter.o"), "--section", "xdp", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"] == "pass"
    assert [p["name"] for p in doc["programs"]] == ["xdp_count"]


def test_verbose_prints_invariants_before_every_instruction(packet_obj, capsys) -> None:
    assert main(["verify", str(packet_obj), "--program", "checked", "-v"]) == 0
    out = capsys.readouterr().out
    assert out.count("Pre-invariant : [") >= 5
    assert "r1.type=ctx" in out
    assert "Exit invariant : [" in out
    lines = out.splitlines()
    printed = {}
    for i, line in enumerate(lines):
        if match := re.fullmatch(r"  (\d+): (.+)", line):
            assert lines[i - 1].startswith("  Pre-invariant : ["), f"no invariant before {line!r}"
            printed[int(match[1])] = match[2]
    spec = load_object_spec(packet_obj).programs["checked"]
    assert sorted(printed) == [pc for pc, _ in with_pcs(spec.instructions)]
    # the loads of data_end, data and the checked packet byte, as the disassembler prints them
    for insn in ("r2 = *(u32 *)(r1 + 4)", "r1 = *(u32 *)(r1 + 0)", "r1 = *(u8 *)(r1 + 20)"):
        assert insn in printed.values(), insn


def test_verbose_json_has_invariants(packet_obj, capsys) -> None:
    assert main(["verify", str(packet_obj), "-p", "checked", "-v", "--json"]) == 0
    (program,) = json.loads(capsys.readouterr().out)["programs"]
    assert "r1.type=ctx" in program["invariants"]["0"]


def _manifest() -> list[dict]:
    return json.loads((EXAMPLES / "unsafe" / "manifest.json").read_text())["programs"]


@pytest.mark.parametrize("entry", _manifest(), ids=lambda e: e["name"])
def test_cli_verdict_is_the_load_verdict(entry: dict, capsys) -> None:
    """`pybpf verify` verifies with the load path's program type and options."""
    import pybpf

    path = EXAMPLES / "unsafe" / entry["object"]
    with pybpf.load(path) as obj:
        try:
            obj.load()
            loaded = True
        except pybpf.VerifierError:
            loaded = False
    code = main(["verify", str(path), "--program", entry["program"]])
    capsys.readouterr()
    assert code == (0 if loaded else 1)
