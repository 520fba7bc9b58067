// SPDX-License-Identifier: GPL-2.0
/* Flaw: a bounds-checked packet pointer is spilled to the stack, then
 * bpf_xdp_adjust_head moves the packet, and the stale pointer reloaded
 * from the stack is dereferenced. SAFE: reloads data/data_end from the
 * context and checks again after the helper. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
__attribute__((naked)) int pkt_spill_adjust_head(struct xdp_md *ctx)
{
	asm volatile(
		"r6 = r1;"
		"r2 = *(u32 *)(r6 + 0);"
		"r3 = *(u32 *)(r6 + 4);"
		"r4 = r2;"
		"r4 += 14;"
		"if r4 > r3 goto 1f;"
		"*(u64 *)(r10 - 8) = r2;"
		"r1 = r6;"
		"r2 = 14;"
		"call %[adjust_head];"
#ifdef SAFE
		"r2 = *(u32 *)(r6 + 0);"
		"r3 = *(u32 *)(r6 + 4);"
		"r4 = r2;"
		"r4 += 1;"
		"if r4 > r3 goto 1f;"
#else
		"r2 = *(u64 *)(r10 - 8);"
#endif
		"r0 = *(u8 *)(r2 + 0);"
		"1:"
		"r0 = 2;"
		"exit;"
		:
		: [adjust_head] "i"(BPF_FUNC_xdp_adjust_head)
		: "memory");
}

char LICENSE[] SEC("license") = "GPL";
