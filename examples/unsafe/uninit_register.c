// SPDX-License-Identifier: GPL-2.0
/* Flaw: returns r7, which nothing has written (only r1 and r10 are set at
 * entry). SAFE: sets r7 first. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
__attribute__((naked)) int uninit_register(struct xdp_md *ctx)
{
	asm volatile(
#ifdef SAFE
		"r7 = 2;"
#endif
		"r0 = r7;"
		"exit;" ::: "memory");
}

char LICENSE[] SEC("license") = "GPL";
