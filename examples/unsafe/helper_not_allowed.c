// SPDX-License-Identifier: GPL-2.0
/* Flaw: calls bpf_skb_load_bytes, an skb helper XDP programs may not use
 * (their equivalent is bpf_xdp_load_bytes). SAFE: calls bpf_xdp_load_bytes. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int helper_not_allowed(struct xdp_md *ctx)
{
	char buf[4];

#ifdef SAFE
	if (bpf_xdp_load_bytes(ctx, 0, buf, sizeof(buf)) < 0)
#else
	if (bpf_skb_load_bytes(ctx, 0, buf, sizeof(buf)) < 0)
#endif
		return XDP_PASS;
	return buf[0] == 'x' ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
