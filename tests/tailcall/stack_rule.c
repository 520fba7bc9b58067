// SPDX-License-Identifier: GPL-2.0
/* The kernel's rule on mixing tail calls and bpf-to-bpf calls
 * (check_max_stack_depth): a subprogram containing bpf_tail_call may be
 * called only while its callers' frames, each rounded up to 16 bytes (JIT),
 * add up to less than 256 bytes. And a tail call in a subprogram is a
 * possible return of the subprogram with an unknown r0. One program per
 * case; tests/test_tailcall_subprograms.py holds the kernel's verdicts. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} jmp SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u64);
	__type(value, __u64);
} h SEC(".maps");

__attribute__((naked, noinline, used)) static int leaf_tail(void)
{
	asm volatile("r2 = %[jmp] ll; r3 = 0; call %[tc]; r0 = 0; exit;"
		     :: [jmp] "i"(&jmp), [tc] "i"(BPF_FUNC_tail_call) : );
}

/* 128 bytes of its own, then the leaf */
__attribute__((naked, noinline, used)) static int mid_128(void)
{
	asm volatile("r2 = 1; *(u64 *)(r10 - 128) = r2; call leaf_tail; r0 = 0; exit;" ::: );
}

/* a tail call itself after 128 bytes of its own */
__attribute__((naked, noinline, used)) static int mid_tail_400(void)
{
	asm volatile("r2 = 1; *(u64 *)(r10 - 400) = r2; r2 = %[jmp] ll; r3 = 0; call %[tc]; r0 = 0; exit;"
		     :: [jmp] "i"(&jmp), [tc] "i"(BPF_FUNC_tail_call) : );
}

/* writes 8 bytes at r2 (a pointer into its caller's frame), then the leaf */
__attribute__((naked, noinline, used)) static int store_then_tail(void)
{
	asm volatile("r3 = 7; *(u64 *)(r2 + 0) = r3; call leaf_tail; r0 = 0; exit;" ::: );
}

__attribute__((naked, noinline, used)) static int cb_tail(void)
{
	asm volatile("r1 = r2; r2 = %[jmp] ll; r3 = 0; call %[tc]; r0 = 0; exit;"
		     :: [jmp] "i"(&jmp), [tc] "i"(BPF_FUNC_tail_call) : );
}

SEC("tc") __attribute__((naked)) int nested_112_128(void)
{ asm volatile("r2 = 1; *(u64 *)(r10 - 112) = r2; call mid_128; r0 = 0; exit;" ::: ); }
SEC("tc") __attribute__((naked)) int nested_128_128(void)
{ asm volatile("r2 = 1; *(u64 *)(r10 - 128) = r2; call mid_128; r0 = 0; exit;" ::: ); }
SEC("tc") __attribute__((naked)) int own_stack_400(void)
{ asm volatile("call mid_tail_400; r0 = 0; exit;" ::: ); }
SEC("tc") __attribute__((naked)) int main_tail_big_stack(void)
{ asm volatile("r6 = r1; r2 = 1; *(u64 *)(r10 - 352) = r2; call mid_128; r1 = r6; r2 = %[jmp] ll; r3 = 0; call %[tc]; r0 = 0; exit;"
		     :: [jmp] "i"(&jmp), [tc] "i"(BPF_FUNC_tail_call) : ); }
SEC("tc") __attribute__((naked)) int through_pointer_256(void)
{ asm volatile("r2 = r10; r2 += -256; call store_then_tail; r0 = 0; exit;" ::: ); }
SEC("tc") __attribute__((naked)) int through_pointer_240(void)
{ asm volatile("r2 = r10; r2 += -240; call store_then_tail; r0 = 0; exit;" ::: ); }
SEC("tc") __attribute__((naked)) int helper_key_256(void)
{ asm volatile("r6 = r1; r2 = 0; *(u64 *)(r10 - 256) = r2; r2 = r10; r2 += -256; r1 = %[h] ll; call %[lookup]; r1 = r6; call leaf_tail; r0 = 0; exit;"
		     :: [h] "i"(&h), [lookup] "i"(BPF_FUNC_map_lookup_elem) : ); }
SEC("tc") __attribute__((naked)) int loop_cb_tail(void)
{ asm volatile("r3 = r1; r1 = 2; r2 = cb_tail ll; r4 = 0; call %[loop]; r0 = 0; exit;"
		     :: [loop] "i"(BPF_FUNC_loop) : ); }
SEC("tc") __attribute__((naked)) int loop_cb_tail_256(void)
{ asm volatile("r3 = r1; r2 = 1; *(u64 *)(r10 - 256) = r2; r1 = 2; r2 = cb_tail ll; r4 = 0; call %[loop]; r0 = 0; exit;"
		     :: [loop] "i"(BPF_FUNC_loop) : ); }
/* the subprogram with the tail call is never called: still counted */
SEC("tc") __attribute__((naked)) int dead_call_256(void)
{ asm volatile("r2 = 1; *(u64 *)(r10 - 256) = r2; r0 = 0; if r0 == 0 goto +1; call leaf_tail; r0 = 0; exit;" ::: ); }

#define CALLER(name, off) \
SEC("tc") __attribute__((naked)) int name(void) \
{ asm volatile("r2 = 42; *(u64 *)(r10 - " #off ") = r2; call leaf_tail; r0 = 0; exit;" ::: ); }

CALLER(caller_224, 224)
CALLER(caller_232, 232)
CALLER(caller_240, 240)
CALLER(caller_248, 248)
CALLER(caller_256, 256)
CALLER(caller_400, 400)


__u64 vals[4];
__noinline int pick(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &jmp, 0);
	return skb->len & 3;
}
SEC("tc") int index_after_tail(struct __sk_buff *skb)
{
	return vals[pick(skb)];
}
SEC("tc") int index_after_tail_masked(struct __sk_buff *skb)
{
	return vals[pick(skb) & 3];
}
char _license[] SEC("license") = "GPL";
