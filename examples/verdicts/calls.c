// category: calls — bpf-to-bpf calls: argument types, depth, recursion
#include "common.h"

static __noinline int parse_eth(void *data, void *end)
{
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return 0;
	return eth->h_proto == bpf_htons(ETH_P_IP);
}
// packet pointers passed to a static subprogram that checks them
SEC("xdp") int ok_call_pkt_to_subprog(struct xdp_md *ctx)
{
	return parse_eth((void *)(long)ctx->data, (void *)(long)ctx->data_end) ? XDP_PASS : XDP_DROP;
}
static __noinline int read_eth_unchecked(void *data)
{
	return ((struct ethhdr *)data)->h_proto == bpf_htons(ETH_P_IP);
}
// a packet pointer passed to a static subprogram that reads it unchecked
SEC("xdp") int bad_call_pkt_unchecked(struct xdp_md *ctx)
{
	return read_eth_unchecked((void *)(long)ctx->data) ? XDP_PASS : XDP_DROP;
}
static __noinline int read_at(unsigned char *p, unsigned char *end, int off)
{
	if (p + off + 1 > end)
		return 0;
	return p[off];
}
// a packet pointer and an offset passed to a subprogram checking p + off + 1 against data_end
SEC("xdp") int ok_call_pkt_offset(struct xdp_md *ctx)
{
	return read_at((void *)(long)ctx->data, (void *)(long)ctx->data_end, 20) & 3;
}
__noinline int global_add(int a, int b)
{
	return a + b;
}
// a global function with scalar arguments
SEC("xdp") int ok_call_global_scalar(struct xdp_md *ctx)
{
	return global_add(ctx->ingress_ifindex, 1) & 3;
}
__noinline int global_ctx(struct xdp_md *ctx)
{
	return ctx ? ctx->ingress_ifindex & 3 : 0;
}
// a global function taking the ctx
SEC("xdp") int ok_call_global_ctx(struct xdp_md *ctx)
{
	return global_ctx(ctx);
}
__noinline int global_deref(int *p)
{
	return *p;
}
// a global function dereferencing a pointer argument it may be given NULL for
SEC("xdp") int bad_call_global_deref(struct xdp_md *ctx)
{
	int x = 1;
	return global_deref(&x) & 3;
}
__naked __noinline __used static int sub_recurse(void)
{
	asm volatile("call sub_recurse; r0 = 0; exit;" ::: "memory");
}
// a subprogram calling itself
SEC("xdp") __naked int bad_call_recursion(void)
{
	asm volatile("call sub_recurse; r0 = 2; exit;" ::: "memory");
}
__naked __noinline __used static int d8(void) { asm volatile("r0 = 0; exit;" ::: "memory"); }
__naked __noinline __used static int d7(void) { asm volatile("call d8; exit;" ::: "memory"); }
__naked __noinline __used static int d6(void) { asm volatile("call d7; exit;" ::: "memory"); }
__naked __noinline __used static int d5(void) { asm volatile("call d6; exit;" ::: "memory"); }
__naked __noinline __used static int d4(void) { asm volatile("call d5; exit;" ::: "memory"); }
__naked __noinline __used static int d3(void) { asm volatile("call d4; exit;" ::: "memory"); }
__naked __noinline __used static int d2(void) { asm volatile("call d3; exit;" ::: "memory"); }
__naked __noinline __used static int d1(void) { asm volatile("call d2; exit;" ::: "memory"); }
// nine frames: the program, then eight nested calls
SEC("xdp") __naked int bad_call_too_deep(void)
{
	asm volatile("call d1; r0 = 2; exit;" ::: "memory");
}
// eight frames: the program, then seven nested calls
SEC("xdp") __naked int ok_call_depth_8(void)
{
	asm volatile("call d2; r0 = 2; exit;" ::: "memory");
}
__naked __noinline __used static int sub_no_r0(void) { asm volatile("exit;" ::: "memory"); }
// a subprogram returning without setting r0, its result unused: accepted
SEC("xdp") __naked int ok_call_sub_no_r0_unused(void)
{
	asm volatile("call sub_no_r0; r0 = 2; exit;" ::: "memory");
}
__naked __noinline __used static int sub_reads_r6(void) { asm volatile("r0 = r6; exit;" ::: "memory"); }
// a subprogram reading callee-saved r6, never written in its frame
SEC("xdp") __naked int bad_call_sub_reads_r6(void)
{
	asm volatile("r6 = 1; call sub_reads_r6; r0 = 2; exit;" ::: "memory");
}
__naked __noinline __used static int sub_reads_caller_stack(void)
{
	asm volatile("r0 = *(u64 *)(r1 + 0); exit;" ::: "memory");
}
// a subprogram reading the caller's stack through a pointer argument
SEC("xdp") __naked int ok_call_caller_stack(void)
{
	asm volatile("r1 = 5; *(u64 *)(r10 - 8) = r1; r1 = r10; r1 += -8; call sub_reads_caller_stack; r0 = 2; exit;" ::: "memory");
}
__naked __noinline __used static int sub_writes_oob(void)
{
	asm volatile("r0 = 0; *(u64 *)(r1 + 8) = r0; exit;" ::: "memory");
}
// a subprogram writing above the caller's frame through a pointer argument
SEC("xdp") __naked int bad_call_caller_stack_oob(void)
{
	asm volatile("r1 = r10; r1 += -8; call sub_writes_oob; r0 = 2; exit;" ::: "memory");
}

struct pair {
	__u64 a;
	__u64 b;
};
__noinline int global_pair_sum(struct pair *p)
{
	if (!p)
		return 0;
	return (p->a + p->b) & 3;
}
// a global function checking its nullable struct pointer before reading it
SEC("xdp") int ok_call_global_nullcheck(struct xdp_md *ctx)
{
	struct pair p = { .a = ctx->ingress_ifindex, .b = 1 };
	return global_pair_sum(&p);
}
// a global function given NULL for its pointer argument
SEC("xdp") int ok_call_global_null_arg(struct xdp_md *ctx)
{
	return global_pair_sum((void *)0);
}
// a global function given a 4-byte stack variable where its prototype says 16 bytes
SEC("xdp") __naked int bad_call_global_short_mem(void)
{
	asm volatile("r1 = 0; *(u32 *)(r10 - 4) = r1; r1 = r10; r1 += -4; call global_pair_sum; r0 = 2; exit;" ::: "memory");
}
__noinline int global_two(void)
{
	return 2;
}
// the caller relying on the value a global function returns (the kernel knows only a scalar)
SEC("xdp") __naked int bad_call_global_ret_unknown(void)
{
	asm volatile("r1 = 0; *(u64 *)(r10 - 8) = r1; call global_two; r1 = r10; r1 += -8; r1 += r0; r0 = *(u8 *)(r1 + 0); exit;" ::: "memory");
}
// a global function's return value bounded by the caller before use
SEC("xdp") int ok_call_global_ret_bounded(struct xdp_md *ctx)
{
	__u8 buf[4] = {};
	int i = global_two();
	return buf[i & 3];
}
__noinline int global_first_byte(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	return data[0];
}
// the caller checks the packet's length; the global function it calls does not
SEC("xdp") int bad_call_global_pkt_unchecked(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;
	if (data + 1 > end)
		return XDP_DROP;
	return global_first_byte(ctx) & 3;
}
__noinline int global_checked_byte(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;
	if (data + 1 > end)
		return 0;
	return data[0];
}
// a global function checking the packet itself before reading it
SEC("xdp") int ok_call_global_pkt_checked(struct xdp_md *ctx)
{
	return global_checked_byte(ctx) & 3;
}
__noinline int global_void_ptr(void *p)
{
	return p != 0;
}
// a global function whose pointer argument has no size (void *)
SEC("xdp") int bad_call_global_void_ptr(struct xdp_md *ctx)
{
	int x = 1;
	return global_void_ptr(&x);
}
// a packet pointer passed to a global function taking a nullable struct pointer
SEC("xdp") int ok_call_global_pkt_mem(struct xdp_md *ctx)
{
	struct pair *p = (void *)(long)ctx->data;
	if ((void *)(p + 1) > (void *)(long)ctx->data_end)
		return XDP_PASS;
	return global_pair_sum(p);
}
// a scalar passed where a global function takes a struct pointer
SEC("xdp") __naked int bad_call_global_scalar_for_ptr(void)
{
	asm volatile("r1 = 8; call global_pair_sum; r0 = 2; exit;" ::: "memory");
}
// a stack pointer passed where a global function takes an int
SEC("xdp") __naked int bad_call_global_ptr_for_scalar(void)
{
	asm volatile("r1 = r10; r1 += -8; r2 = 1; call global_add; r0 = 2; exit;" ::: "memory");
}
__noinline int global_writes(struct pair *p)
{
	if (p)
		p->a = 7;
	return 0;
}
// the caller reads back what a global function wrote through its pointer (a number to the kernel)
SEC("xdp") int ok_call_global_writes_stack(struct xdp_md *ctx)
{
	struct pair p = {};
	global_writes(&p);
	return p.a & 3;
}
// the ctx passed where a global function takes a struct pointer
SEC("xdp") __naked int bad_call_global_ctx_for_mem(void)
{
	asm volatile("call global_pair_sum; r0 = 2; exit;" ::: "memory");
}
__noinline int global_moves_packet(struct xdp_md *ctx)
{
	return bpf_xdp_adjust_head(ctx, 0) ? 1 : 0;
}
// the caller checked the packet, then a global function may have moved it: the check is void
SEC("xdp") int bad_call_global_moves_packet(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;
	if (data + 1 > end)
		return XDP_DROP;
	if (global_moves_packet(ctx))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	return data[0] & 3;
}
// the caller's packet check still holds after a global function that does not move the packet
SEC("xdp") int ok_call_global_keeps_check(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;
	if (data + 1 > end)
		return XDP_DROP;
	int r = global_checked_byte(ctx);
	return (data[0] + r) & 3;
}

char _license[] SEC("license") = "GPL";
