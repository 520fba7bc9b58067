// SPDX-License-Identifier: GPL-2.0
/* Flaw: a loop whose exit test can never succeed (the counter is reset
 * every iteration). SAFE: the counter counts up to 16. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
__attribute__((naked)) int loop_infinite(struct xdp_md *ctx)
{
	asm volatile(
		"r0 = 0;"
		"r1 = 0;"
	"1:"
#ifndef SAFE
		"r1 = 0;"
#endif
		"r1 += 1;"
		"r0 += r1;"
		"if r1 < 16 goto 1b;"
		"r0 = 2;"
		"exit;" ::: "memory");
}

char LICENSE[] SEC("license") = "GPL";
