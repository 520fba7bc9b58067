// SPDX-License-Identifier: GPL-2.0
/* A classic socket filter written with the legacy packet-load builtins
 * (LD_ABS/LD_IND instructions, offsets from the network header): keeps
 * the first `snap` bytes of UDP datagrams to port 53, drops the rest.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");
unsigned long long load_word(void *skb, unsigned long long off) asm("llvm.bpf.load.word");

const volatile __u32 snap = 96;

SEC("socket")
int sockfilter_ldabs(struct __sk_buff *skb)
{
	__u32 ihl, saddr;

	if ((load_byte(skb, 0) >> 4) != 4)
		return 0;
	if (load_byte(skb, 9) != IPPROTO_UDP)
		return 0;
	if (load_half(skb, 6) & 0x3fff)	/* fragments */
		return 0;
	ihl = (load_byte(skb, 0) & 0xf) * 4;
	if (load_half(skb, ihl + 2) != 53)
		return 0;
	saddr = load_word(skb, 12);
	if ((saddr >> 24) == 127)
		return 0;
	return snap;
}

char LICENSE[] SEC("license") = "GPL";
