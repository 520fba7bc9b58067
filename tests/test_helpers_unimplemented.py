"""A program calling a Linux helper pybpf does not implement fails at load, naming it.

Never at a later run that happens to reach the call: the call below sits
in a branch no test packet takes, so only the load-time check can catch it.
"""

from __future__ import annotations

import pytest

import pybpf
from pybpf.isa import assemble
from pybpf.platform.helper_ids import HelperId
from pybpf.runtime.helpers import missing_helpers
from pybpf.runtime.linux_helpers import linux_helpers

TUNNEL_C = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int rare_tunnel(struct __sk_buff *skb)
{
    struct bpf_tunnel_key key = {};
    if (skb->len > 60000)  /* never true in a test run */
        return bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0) ? 2 : key.tunnel_id;
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""


def test_missing_helpers_lists_calls_by_pc():
    insns = assemble("r0 = 0 ll\ncall 1\ncall 20\ncall 999\nexit")
    assert missing_helpers(insns, linux_helpers()) == [(3, HelperId.SKB_GET_TUNNEL_KEY), (4, 999)]


def test_unimplemented_helper_fails_at_load_naming_it(tmp_path):
    from clang_build import build_object

    if HelperId.SKB_GET_TUNNEL_KEY in linux_helpers():
        pytest.skip("bpf_skb_get_tunnel_key is implemented now: pick another helper")
    path = build_object(tmp_path, "tunnel", TUNNEL_C)
    with pybpf.load(path) as obj:
        program = obj.programs["rare_tunnel"]
        assert [type(e) for e in program.unresolved] == [pybpf.NotSupportedError]
        with pytest.raises(pybpf.NotSupportedError) as info:
            program.test_run(data=bytes(64))
        assert "bpf_skb_get_tunnel_key" in str(info.value)
        calls = missing_helpers(program.spec.instructions, obj.helpers)
        assert f"pc {calls[0][0]}" in str(info.value)
