// SPDX-License-Identifier: GPL-2.0
/* Flaw: reads 4 bytes at offset 24 of struct xdp_md, past its last field
 * (egress_ifindex at 20). SAFE: reads rx_queue_index at offset 16. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifdef SAFE
#define FIELD 4
#else
#define FIELD 6
#endif

SEC("xdp")
int ctx_read_past_end(struct xdp_md *ctx)
{
	return ((volatile __u32 *)ctx)[FIELD] == 1 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
