// SPDX-License-Identifier: GPL-2.0
/* Flaw: writes through bpf_ringbuf_reserve's result without testing it for
 * NULL. SAFE: tests it. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

SEC("xdp")
int ringbuf_nullcheck(struct xdp_md *ctx)
{
	__u32 *rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);

#ifdef SAFE
	if (!rec)
		return XDP_PASS;
#endif
	*rec = ctx->ingress_ifindex;
	bpf_ringbuf_submit(rec, 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
