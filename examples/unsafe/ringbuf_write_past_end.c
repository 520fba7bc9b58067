// SPDX-License-Identifier: GPL-2.0
/* Flaw: writes the third 32-bit word of an 8-byte ring buffer reservation.
 * SAFE: writes the second. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

SEC("xdp")
int ringbuf_write_past_end(struct xdp_md *ctx)
{
	__u32 *rec = bpf_ringbuf_reserve(&events, 8, 0);

	if (!rec)
		return XDP_PASS;
	rec[0] = ctx->ingress_ifindex;
#ifdef SAFE
	rec[1] = ctx->rx_queue_index;
#else
	rec[2] = ctx->rx_queue_index;
#endif
	bpf_ringbuf_submit(rec, 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
