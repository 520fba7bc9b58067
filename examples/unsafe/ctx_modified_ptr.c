// SPDX-License-Identifier: GPL-2.0
/* Flaw: moves the context pointer (r1 += 4) and then loads through it;
 * the kernel only allows constant offsets in the load instruction itself.
 * SAFE: the same field loaded as *(u32 *)(r1 + 4). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
__attribute__((naked)) int ctx_modified_ptr(struct xdp_md *ctx)
{
	asm volatile(
#ifdef SAFE
		"r0 = *(u32 *)(r1 + 4);"
#else
		"r1 += 4;"
		"r0 = *(u32 *)(r1 + 0);"
#endif
		"r0 = 2;"
		"exit;" ::: "memory");
}

char LICENSE[] SEC("license") = "GPL";
