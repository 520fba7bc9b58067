"""`__kconfig` and `__ksym` externs, resolved as libbpf resolves them.

The corpus objects read the kernel version, a tristate, an int, a bool, a
string and a missing weak option (`kconfig_externs.o`), hold a strong
extern no configuration has (`kconfig_strong.o`), and use weak and strong
typeless ksyms (`ksym_externs.o`). Against the kernel, libbpf fills the
same `.kconfig` from the host's configuration: the bytes the program copies
out must be equal.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import pybpf
from pybpf.elf.externs import KconfigKind
from pybpf.runtime.externs import host_kconfig, kernel_version
from pybpf.testing.kernel import KernelError, KernelObject, kernel_available, unavailable_reason

CORPUS = Path(__file__).parent / "corpus"
KCONFIG = CORPUS / "kconfig_externs.o"
STRONG = CORPUS / "kconfig_strong.o"
KSYMS = CORPUS / "ksym_externs.o"
WEAK_KSYMS = CORPUS / "ksym_weak.o"
PACKET = bytes(64)
kernel = pytest.mark.skipif(not kernel_available(), reason=unavailable_reason())


def test_kconfig_slots_follow_libbpf_order():
    spec = pybpf.open(KCONFIG).spec
    externs = spec.externs
    assert externs["LINUX_KERNEL_VERSION"].weak is False
    assert externs["CONFIG_BPF_JIT"].kind == KconfigKind.TRISTATE
    assert externs["CONFIG_LOCALVERSION"].kind == KconfigKind.CHAR_ARRAY
    # Alignment descending, then size, then name: the u64 first, the string last.
    order = sorted(externs.values(), key=lambda e: e.offset)
    assert order[0].name == "CONFIG_PYBPF_NOT_A_REAL_OPTION"
    assert order[-1].name == "CONFIG_LOCALVERSION"
    assert [e.name for e in order[1:4]] == ["CONFIG_BPF_JIT", "CONFIG_HZ", "LINUX_KERNEL_VERSION"]
    assert spec.maps[".kconfig"].value_size == order[-1].offset + 16


@pytest.mark.parametrize("engine", ["interpreter", "jit"])
def test_user_values_reach_the_program(engine):
    values = {
        "LINUX_KERNEL_VERSION": 0x050A11,
        "CONFIG_BPF_JIT": "m",
        "CONFIG_HZ": 1000,
        "CONFIG_BPF_SYSCALL": "y",
        "CONFIG_LOCALVERSION": '"-pybpf"',
        "CONFIG_PYBPF_NOT_A_REAL_OPTION": "0x1234",
    }
    with pybpf.load(KCONFIG, engine=engine, kconfig=values) as obj:
        assert obj.programs["read_kconfig"].test_run(data=PACKET).retval == 2
        bss = obj.bss
        assert (bss.version, bss.jit, bss.hz, bss.syscall, bss.missing) == (
            0x050A11,
            2,
            1000,
            1,
            0x1234,
        )
        assert bytes(bss.localversion).rstrip(b"\0") == b"-pybpf"
        # .kconfig is read-only for programs and the API once loaded.
        with pytest.raises(pybpf.MapError):
            obj.maps[".kconfig"][b"\0\0\0\0"] = bytes(obj.maps[".kconfig"].spec.value_size)


def test_libbpf_text_form_and_weak_defaults():
    text = "# a comment\nCONFIG_HZ=300\nCONFIG_BPF_JIT=n\nLINUX_KERNEL_VERSION=5\n"
    with pybpf.load(KCONFIG, kconfig=text) as obj:
        obj.programs["read_kconfig"].test_run(data=PACKET)
        assert obj.bss.hz == 300
        assert obj.bss.jit == 0
        assert obj.bss.missing == 0  # weak, in no configuration


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"CONFIG_HZ": 1 << 40}, "doesn't fit in 4 bytes"),
        ({"CONFIG_BPF_SYSCALL": "m"}, "implies tristate or char"),
        ({"CONFIG_BPF_SYSCALL": 2}, "isn't boolean compatible"),
        ({"CONFIG_HZ": "lots"}, "isn't a valid integer"),
        ({"CONFIG_LOCALVERSION": 5}, "implies integer, char, or boolean"),
    ],
)
def test_bad_values_fail_the_load_naming_the_extern(values, needle):
    with pybpf.open(KCONFIG, kconfig=values) as obj:
        with pytest.raises(pybpf.LoadError, match=needle) as info:
            obj.load()
        assert next(iter(values)) in str(info.value)


def test_a_strong_extern_nobody_defines_fails_the_load():
    with pybpf.open(STRONG) as obj:
        with pytest.raises(pybpf.LoadError, match=r"CONFIG_PYBPF_SURELY_MISSING.*strong"):
            obj.load()
    with pybpf.open(STRONG, kconfig={"CONFIG_PYBPF_SURELY_MISSING": 1}) as obj:
        assert obj.programs["strong_kconfig"].test_run(data=PACKET).retval == 1  # XDP_DROP


@pytest.mark.parametrize("autoload", [None, ["weak_ksym"]])
def test_strong_ksym_is_not_supported_at_load_naming_it(autoload):
    # As libbpf resolves every extern of the object, a strong __ksym fails the
    # load even when the program using it is left out.
    with pybpf.open(KSYMS, autoload=autoload) as obj:
        with pytest.raises(pybpf.NotSupportedError, match="bpf_stats_enabled_key"):
            obj.load()
        assert not obj.loaded


@pytest.mark.parametrize("engine", ["interpreter", "jit"])
def test_weak_ksym_reads_as_absent(engine):
    with pybpf.load(WEAK_KSYMS, engine=engine) as obj:
        assert obj.programs["weak_ksyms"].test_run(data=PACKET).retval == 2  # XDP_PASS


@kernel
def test_kernel_finds_the_weak_ksym_it_has():
    # The kernel has _stext (in kallsyms): its answer differs from pybpf's by design
    # (no kernel symbols here), which is what the program tells apart.
    with KernelObject(WEAK_KSYMS) as k:
        assert k.test_run("weak_ksyms", PACKET).retval == 1  # XDP_DROP: it exists there


def test_kernel_version_is_computed_as_libbpf_does():
    assert kernel_version("6.18.44-fc-v1300") == (6 << 16) + (18 << 8) + 44
    assert kernel_version("4.19.300") == (4 << 16) + (19 << 8) + 255
    assert kernel_version("5.4") == (5 << 16) + (4 << 8)
    assert kernel_version("not a release") == 0


# --- against libbpf and the kernel -------------------------------------------------


@kernel
@pytest.mark.parametrize("engine", ["interpreter", "jit"])
def test_host_kconfig_equals_what_libbpf_fills(engine):
    if not host_kconfig():
        pytest.skip("no /boot/config-$(uname -r) or /proc/config.gz: libbpf cannot load it")
    with KernelObject(KCONFIG) as k, pybpf.load(KCONFIG, engine=engine) as obj:
        expected = k.test_run("read_kconfig", PACKET)
        got = obj.programs["read_kconfig"].test_run(data=PACKET)
        assert got.retval == expected.retval
        assert obj.maps[".bss"][b"\0\0\0\0"] == k.map(".bss").lookup(b"\0\0\0\0")
        assert obj.bss.version == kernel_version()


@kernel
def test_kernel_refuses_the_strong_extern_too():
    with pytest.raises(KernelError):
        KernelObject(STRONG)


def test_cli_kconfig_option(tmp_path):
    import json
    import subprocess
    import sys

    values = tmp_path / "kconfig"
    values.write_text("CONFIG_HZ=1000\nCONFIG_BPF_JIT=m\n")
    packet = tmp_path / "p.bin"
    packet.write_bytes(PACKET)
    run = [sys.executable, "-m", "pybpf", "prog", "run", str(KCONFIG), "--data-in", str(packet)]
    proc = subprocess.run(
        [*run, "--kconfig", str(values), "--json"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    (bss,) = [m for m in json.loads(proc.stdout)["maps"] if m["name"] == ".bss"]
    value = bss["entries"][0]["formatted"]["value"]
    assert (value["hz"], value["jit"]) == (1000, 2)
    values.write_text("CONFIG_HZ=lots\n")
    proc = subprocess.run([*run, "--kconfig", str(values)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "CONFIG_HZ" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
