// SPDX-License-Identifier: GPL-2.0
/* A socket filter built with -mcpu=v3 so that the object holds JMP32 and
 * ALU32 instructions, and several functions: a .text subprogram called
 * from two program sections, and a bounded loop. Used to test the ELF loader and the disassembler. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __s64);
} stats SEC(".maps");

char greeting[16] = "hello, eBPF";

static __attribute__((noinline)) __s64 mix(__s64 a, __s32 b)
{
	__s64 acc = 0;

#pragma clang loop unroll(disable)
	for (int i = 0; i < 8; i++) {
		acc += (__s8)(a >> (i * 8));
		acc ^= __builtin_bswap32((__u32)b + i);
	}
	/* unsigned: signed division needs ISA v4, which clang 16 lacks */
	return (__u64)acc / ((__u32)b | 1) + (__u64)acc % 7;
}

SEC("socket")
int filter_a(struct __sk_buff *skb)
{
	__u32 key = 0;
	__s64 *v = bpf_map_lookup_elem(&stats, &key);

	if (v)
		*v += mix(skb->len, (__s16)skb->protocol);
	return greeting[0] == 'h' ? skb->len : 0;
}

SEC("socket")
int filter_b(struct __sk_buff *skb)
{
	return mix(skb->mark, -3) > 0 ? 0 : skb->len;
}

char LICENSE[] SEC("license") = "GPL";
