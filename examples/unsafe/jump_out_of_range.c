// SPDX-License-Identifier: GPL-2.0
/* Flaw: a conditional jump 100 instructions forward, past the end of the
 * program. SAFE: the jump lands on the exit. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
__attribute__((naked)) int jump_out_of_range(struct xdp_md *ctx)
{
	asm volatile(
		"r0 = 2;"
#ifdef SAFE
		"if r0 == 2 goto +1;"
#else
		"if r0 == 2 goto +100;"
#endif
		"r0 = 1;"
		"exit;" ::: "memory");
}

char LICENSE[] SEC("license") = "GPL";
