// SPDX-License-Identifier: GPL-2.0
/* Flaw: a ring buffer reservation is submitted on one path and neither
 * submitted nor discarded on the other. SAFE: discarded there. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

SEC("xdp")
int ringbuf_leak(struct xdp_md *ctx)
{
	__u32 *rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);

	if (!rec)
		return XDP_PASS;
	if (ctx->rx_queue_index == 0) {
		*rec = ctx->ingress_ifindex;
		bpf_ringbuf_submit(rec, 0);
		return XDP_PASS;
	}
#ifdef SAFE
	bpf_ringbuf_discard(rec, 0);
#endif
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
