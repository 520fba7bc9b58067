"""The command line as a new user meets it (issue 10 item 9): one-line errors,
the same exit codes in every command (0 ok, 1 rejected or failed, 2 bad input,
130 interrupted), --version, --type, Ctrl-C on long runs in both engines.

Run through the console entry point in subprocesses: exit codes and stderr
are what is checked.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pybpf import __version__, load
from pybpf.errors import VerifierError
from pybpf.platform.program_types import ProgramType
from pybpf.testing import packets as P

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
LEGACY = EXAMPLES / "legacy_sections.o"


def pybpf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pybpf", *args], capture_output=True, text=True, timeout=120
    )


def one_line(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr and "╭" not in proc.stderr
    assert len(err.splitlines()) == 1, err
    assert err.startswith("pybpf: error: "), err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


@pytest.fixture
def packet(tmp_path: Path) -> Path:
    path = tmp_path / "udp.bin"
    path.write_bytes(P.udp_packet())
    return path


def test_version() -> None:
    proc = pybpf("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"pybpf {__version__}"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["frobnicate"], "frobnicate"),
        (["verify", "--bogus", "x.o"], "--bogus"),
        (["prog", "run"], "OBJ"),
        (["verify"], "obj"),
        (["conformance", ".", "--engine", "warp"], "warp"),
    ],
    ids=["unknown-command", "unknown-option", "missing-argument", "missing-obj", "bad-value"],
)
def test_usage_errors_are_one_line_exit_2(args: list[str], needle: str) -> None:
    one_line(pybpf(*args), 2, needle)


def test_bad_input_exit_2_in_every_command(tmp_path: Path, packet: Path) -> None:
    broken = tmp_path / "broken.o"
    broken.write_bytes(b"\x7fELF")
    one_line(pybpf("disasm", str(broken)), 2, "broken.o")
    one_line(pybpf("verify", str(broken)), 2, "broken.o")
    one_line(pybpf("prog", "run", str(broken), "--data-in", str(packet)), 2, "broken.o")
    one_line(pybpf("map", "dump", str(broken), "x"), 2, "broken.o")
    bad_asm = tmp_path / "bad.asm"
    bad_asm.write_text("frobnicate %r0\n")
    one_line(pybpf("asm", str(bad_asm), "-o", str(tmp_path / "o.bin")), 2, "bad.asm:1")
    raw = tmp_path / "short.bin"
    raw.write_bytes(b"\x95\0\0")
    one_line(pybpf("run-raw", str(raw)), 2, "short.bin")
    counter = str(EXAMPLES / "xdp_counter.o")
    one_line(pybpf("prog", "run", counter, "--program", "nope", "--data-in", str(packet)), 2)
    one_line(pybpf("prog", "run", counter, "--data-in", str(packet), "--map", "x=1"), 2, "--map")


def test_rejected_and_failed_exit_1(tmp_path: Path) -> None:
    proc = pybpf("verify", str(EXAMPLES / "unsafe" / "uninit_register.o"))
    assert proc.returncode == 1, proc.stderr
    raw = tmp_path / "fault.bin"
    # r0 = *(u64 *)(r1 + 0) with r1 = 0, then exit: a fault when run
    raw.write_bytes(bytes.fromhex("7910000000000000" + "9500000000000000"))
    one_line(pybpf("run-raw", str(raw)), 1, "fault.bin")


@pytest.mark.parametrize("kind", ["empty", "missing"])
def test_conformance_without_data_files_is_an_error(tmp_path: Path, kind: str) -> None:
    directory = tmp_path / "suite"
    if kind == "empty":
        directory.mkdir()
    one_line(pybpf("conformance", str(directory)), 2, str(directory))


def test_data_out_names_the_path(tmp_path: Path, packet: Path) -> None:
    counter = str(EXAMPLES / "xdp_counter.o")
    one_line(
        pybpf("prog", "run", counter, "--data-in", str(packet), "--data-out", str(tmp_path)),
        2,
        str(tmp_path),
    )
    unwritable = tmp_path / "no" / "such" / "out.bin"
    one_line(
        pybpf("prog", "run", counter, "--data-in", str(packet), "--data-out", str(unwritable)),
        2,
        str(unwritable),
    )


def test_repeat_is_the_kernels_u32(packet: Path) -> None:
    counter = str(EXAMPLES / "xdp_counter.o")
    one_line(
        pybpf("prog", "run", counter, "--data-in", str(packet), "--repeat", str(2**32)),
        2,
        "--repeat",
        "4294967295",
    )
    # 0 runs once, as bpf_test_run does.
    proc = pybpf("prog", "run", counter, "--data-in", str(packet), "--repeat", "0", "--json")
    assert proc.returncode == 0, proc.stderr
    assert '"retval": 1' in proc.stdout  # UDP to port 53: dropped
    assert '"packets_seen": 1}' in proc.stdout  # exactly one run


def test_untyped_sections_same_verdict_then_type_chooses(tmp_path: Path) -> None:
    ttl1 = tmp_path / "ttl1.bin"
    ttl1.write_bytes(P.udp_packet(ttl=1))
    verify_err = one_line(pybpf("verify", str(LEGACY), "--program", "tail_ttl"), 2, "'2/7'")
    run_err = one_line(
        pybpf("prog", "run", str(LEGACY), "--program", "tail_ttl", "--data-in", str(ttl1)), 2
    )
    assert verify_err == run_err
    assert pybpf("verify", str(LEGACY), "--type", "tc").returncode == 0
    proc = pybpf(
        "prog", "run", str(LEGACY), "--program", "tail_ttl", "--data-in", str(ttl1),
        "--type", "tc", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert '"retval": 2' in proc.stdout  # TC_ACT_SHOT
    one_line(pybpf("verify", str(LEGACY), "--type", "nonsense"), 2, "nonsense")


def test_type_never_depends_on_the_path(tmp_path: Path) -> None:
    # PREVAIL's convention would make this an XDP program ("cilium" and "xdp" in the path).
    renamed = tmp_path / "cilium" / "bpf_xdp.o"
    renamed.parent.mkdir()
    renamed.write_bytes(LEGACY.read_bytes())
    one_line(pybpf("verify", str(renamed)), 2, "'2/7'")
    with load(renamed) as obj, pytest.raises(VerifierError, match="does not name a program type"):
        obj.programs["tail_ttl"].test_run(data=P.udp_packet())
    with load(renamed, prog_type="tc") as obj:
        prog = obj.programs["tail_ttl"]
        assert prog.prog_type == ProgramType.SCHED_CLS
        assert prog.test_run(data=P.udp_packet(ttl=1)).retval == 2


@pytest.mark.parametrize("engine", ["jit", "interpreter"])
def test_ctrl_c_stops_a_long_run(engine: str, packet: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "pybpf", "prog", "run", str(EXAMPLES / "xdp_counter.o"),
            "--data-in", str(packet), "--repeat", "4000000000", "--engine", engine,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        time.sleep(6)  # past loading and compiling: inside the repeat loop
        assert proc.poll() is None, "4e9 runs cannot be over already"
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert time.monotonic() - sent < 5
    assert proc.returncode == 130, (out, err)
    assert err == "pybpf: interrupted\n"


def test_help_says_what_duration_means() -> None:
    proc = pybpf("prog", "run", "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "mean time of one run in ns over --repeat runs" in text
    assert "not in it" in text


def test_map_dump_of_an_unknown_map_is_bad_input() -> None:
    one_line(pybpf("map", "dump", str(EXAMPLES / "xdp_counter.o"), "nope"), 2, "nope", "maps:")
