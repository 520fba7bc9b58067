// SPDX-License-Identifier: GPL-2.0
/* Flaw: dereferences a number (a packet field) as a pointer.
 * SAFE: dereferences the checked packet pointer instead. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int scalar_deref(struct xdp_md *ctx)
{
	__u64 *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if ((void *)(data + 1) > data_end)
		return XDP_PASS;
#ifdef SAFE
	return *(volatile __u8 *)data ? XDP_DROP : XDP_PASS;
#else
	return *(volatile __u8 *)(long)*data ? XDP_DROP : XDP_PASS;
#endif
}

char LICENSE[] SEC("license") = "GPL";
