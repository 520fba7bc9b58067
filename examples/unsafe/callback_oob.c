// SPDX-License-Identifier: GPL-2.0
/* Flaw: a bpf_loop callback indexes a 4-slot array on the caller's stack
 * with the loop index, which runs up to 7. SAFE: the callback stops at
 * index 4. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct loop_ctx {
	__u32 slots[4];
};

static long fill_slot(__u32 index, void *data)
{
	struct loop_ctx *c = data;

#ifdef SAFE
	if (index >= 4)
		return 1;
#endif
	c->slots[index] = index;
	return 0;
}

SEC("xdp")
int callback_oob(struct xdp_md *ctx)
{
	struct loop_ctx c = {};

	bpf_loop(8, fill_slot, &c, 0);
	return c.slots[1] == 1 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
