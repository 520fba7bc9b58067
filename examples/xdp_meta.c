// SPDX-License-Identifier: GPL-2.0
/* Keeps a mark in the XDP metadata area with bpf_xdp_adjust_meta (grow,
 * then shrink), reloading ctx->data_meta / data after each call. Kept
 * apart from xdp_vlan.c: some kernels (the 6.18 one pybpf's tests run on)
 * refuse bpf_xdp_adjust_meta in a test-run XDP program at load, and one
 * refused program fails the whole object in libbpf. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Keeps the frame's first byte in 8 bytes of metadata, then checks it. */
SEC("xdp")
int xdp_meta_mark(struct xdp_md *ctx)
{
	void *data, *data_end, *meta;
	__u64 *mark;
	__u8 first;

	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(*mark)))
		return XDP_ABORTED;
	meta = (void *)(long)ctx->data_meta;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	mark = meta;
	if ((void *)(mark + 1) > data || data + 1 > data_end)
		return XDP_ABORTED;
	first = *(__u8 *)data;
	*mark = 0x1100 + first;
	/* Give 4 bytes back: the mark is now 4 bytes from the new meta start. */
	if (bpf_xdp_adjust_meta(ctx, 4))
		return XDP_ABORTED;
	meta = (void *)(long)ctx->data_meta;
	data = (void *)(long)ctx->data;
	if (meta + 4 > data)
		return XDP_ABORTED;
	if (*(__u32 *)meta != 0)
		return XDP_DROP;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
