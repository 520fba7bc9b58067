// SPDX-License-Identifier: GPL-2.0
/* Tail calls made inside bpf-to-bpf subprograms, as Linux runs them: the
 * target replaces the subprogram's frame only, its return value goes back
 * to the subprogram's caller, and the 33-call limit counts every tail call
 * of the run. skb->mark picks the slots: bits 0-2 for the first call of
 * sub_tail, bits 8-10 for the second. ran[] counts what ran (no stack in
 * the subprogram: counters are .bss words). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} jmp SEC(".maps");

/* 0 entry, 1 sub_tail, 2 sub_tail fell through, 3 between the calls,
 * 4 entry's end, 5 target5, 6 target6, 7 looper, 8 looper after its call */
__u64 ran[9];

__noinline int sub_tail(struct __sk_buff *skb, __u32 slot)
{
	__sync_fetch_and_add(&ran[1], 1);
	bpf_tail_call(skb, &jmp, slot);
	__sync_fetch_and_add(&ran[2], 1);
	return 100 + slot;
}

SEC("tc")
int entry(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&ran[0], 1);
	int a = sub_tail(skb, skb->mark & 7);
	__sync_fetch_and_add(&ran[3], 1);
	int b = sub_tail(skb, (skb->mark >> 8) & 7);
	__sync_fetch_and_add(&ran[4], 1);
	return a * 1000 + b;
}

SEC("tc")
int target5(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&ran[5], 1);
	return 5;
}

/* tail-calls slot 0 from its entry function */
SEC("tc")
int target6(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&ran[6], 1);
	bpf_tail_call(skb, &jmp, 0);
	return 6;
}

/* in slot 0: tail-calls itself through sub_tail until the limit */
SEC("tc")
int looper(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&ran[7], 1);
	int r = sub_tail(skb, 0) + 1;
	__sync_fetch_and_add(&ran[8], 1);
	return r;
}

char _license[] SEC("license") = "GPL";
