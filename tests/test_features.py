"""`pybpf feature` and libbpf's probes: answers drawn from the tables pybpf runs on."""

from __future__ import annotations

import errno
import json

import pytest

from pybpf import libbpf
from pybpf.cli.main import main
from pybpf.elf.map_types import MapType
from pybpf.elf.specs import MapSpec
from pybpf.errors import NotSupportedError
from pybpf.platform.helper_ids import HelperId
from pybpf.platform.program_types import ProgramType
from pybpf.runtime.maps import create_map
from pybpf.runtime.memory import Memory


def test_map_type_probes_agree_with_map_creation():
    for kind in MapType:
        if kind == MapType.UNSPEC:
            continue
        if libbpf.libbpf_probe_bpf_map_type(kind) == 1:
            continue
        with pytest.raises(NotSupportedError):
            create_map(MapSpec("m", kind, 4, 4, 4), Memory())
    assert libbpf.libbpf_probe_bpf_map_type(MapType.HASH) == 1
    assert libbpf.libbpf_probe_bpf_map_type(MapType.RINGBUF) == 1


def test_helper_probes_follow_the_kernels_tables():
    xdp, tc = ProgramType.XDP, ProgramType.SCHED_CLS
    assert libbpf.libbpf_probe_bpf_helper(xdp, HelperId.MAP_LOOKUP_ELEM) == 1
    assert libbpf.libbpf_probe_bpf_helper(xdp, HelperId.SKB_LOAD_BYTES) == 0  # an skb helper
    assert libbpf.libbpf_probe_bpf_helper(tc, HelperId.SKB_LOAD_BYTES) == 1
    assert libbpf.libbpf_probe_bpf_helper(xdp, HelperId.XDP_ADJUST_HEAD) == 1
    assert libbpf.libbpf_probe_bpf_helper(ProgramType.LWT_IN, 1) == -errno.EOPNOTSUPP
    assert libbpf.libbpf_probe_bpf_prog_type(ProgramType.LWT_IN) == 0
    assert libbpf.libbpf_probe_bpf_prog_type(ProgramType.XDP) == 1
    assert libbpf.libbpf_probe_bpf_prog_type(xdp, opts=object()) == -errno.EINVAL


def test_feature_probe_lists_both_platforms(capsys):
    assert main(["feature", "--json"]) == 0
    linux = json.loads(capsys.readouterr().out)
    names = {t["name"]: t for t in linux["program_types"]}
    assert names["xdp"]["load"] and names["xdp"]["test_run"]
    assert not names["lwt_in"]["load"]
    helper_names = {h["name"] for h in linux["helpers"]}
    assert "bpf_map_lookup_elem" in helper_names
    xdp_helpers = set(linux["helpers_by_program_type"]["xdp"])
    assert HelperId.SKB_LOAD_BYTES not in xdp_helpers
    assert HelperId.SKB_LOAD_BYTES in set(linux["helpers_by_program_type"]["sched_cls"])
    assert main(["feature", "--platform", "windows", "--json"]) == 0
    windows = json.loads(capsys.readouterr().out)
    assert {t["name"] for t in windows["program_types"]} >= {"xdp", "bind", "sock_addr"}
    by_id = {h["id"]: h["name"] for h in windows["helpers"]}
    assert by_id[1] == "bpf_map_lookup_elem"  # eBPF for Windows' own numbering
    assert 0x10000 in windows["helpers_by_program_type"]["xdp"]  # bpf_xdp_adjust_head
    assert 0x10000 not in windows["helpers_by_program_type"]["bind"]
    assert main(["feature", "--platform", "beos"]) == 2
    assert "expected linux or windows" in capsys.readouterr().err
