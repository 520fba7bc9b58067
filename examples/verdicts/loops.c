// category: loops — bounded loops, nested loops, bpf_loop callbacks, termination
#include "common.h"

// a constant-bound loop summing packet bytes
SEC("xdp") int ok_loop_bounded(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u32 sum = 0;
	for (int i = 0; i < 32; i++) {
		if (data + i + 1 > end)
			break;
		sum += data[i];
	}
	return sum & 3;
}
// nested bounded loops (8 x 8)
SEC("xdp") int ok_loop_nested(struct xdp_md *ctx)
{
	__u32 sum = 0, seed = ctx->ingress_ifindex;
	for (int i = 0; i < 8; i++)
		for (int j = 0; j < 8; j++)
			sum += (seed >> (i + j)) & 1;
	return sum & 3;
}
// three nested bounded loops over a stack matrix
SEC("xdp") int ok_loop_nested3(struct xdp_md *ctx)
{
	volatile __u8 m[4][4] = {};
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 4; j++)
			for (int k = 0; k < 4; k++)
				m[i][j] += (i ^ k) & 1;
	return m[1][2] & 3;
}
// a loop whose exit depends on data that may never change
SEC("xdp") int bad_loop_infinite(struct xdp_md *ctx)
{
	volatile __u32 x = ctx->ingress_ifindex;
	__u32 n = 0;
	while (x != 0)
		n++;
	return n & 3;
}
// a loop counting to 10^8: too many instructions
SEC("xdp") int bad_loop_too_long(struct xdp_md *ctx)
{
	__u32 seed = ctx->ingress_ifindex;
	for (volatile __u32 i = 0; i < 100000000; i++)
		seed = seed * 31 + i;
	return seed & 3;
}
struct loop_ctx { struct xdp_md *xdp; __u32 sum; };
static int sum_cb(__u32 i, struct loop_ctx *c)
{
	unsigned char *data = (void *)(long)c->xdp->data, *end = (void *)(long)c->xdp->data_end;
	if (i > 63)
		return 1;
	unsigned char *p = data + i;
	if (p + 1 > end)
		return 1;
	c->sum += *p;
	return 0;
}
// bpf_loop whose callback reads the ctx pointer the caller stored in a stack struct
SEC("xdp") int ok_bpf_loop_ctx_on_stack(struct xdp_md *ctx)
{
	struct loop_ctx c = {.xdp = ctx, .sum = 0};
	bpf_loop(64, sum_cb, &c, 0);
	return c.sum & 3;
}
static int count_cb(__u32 i, __u64 *n)
{
	*n += i;
	return 0;
}
// bpf_loop with a counter on the caller's stack
SEC("xdp") int ok_bpf_loop_counter(struct xdp_md *ctx)
{
	__u64 n = 0;
	bpf_loop(100, count_cb, &n, 0);
	return n & 3;
}
static int oob_cb(__u32 i, __u64 *n)
{
	n[1] = i;
	return 0;
}
// the callback writes past the 8-byte context it is given
SEC("xdp") int bad_bpf_loop_cb_oob(struct xdp_md *ctx)
{
	__u64 n = 0;
	bpf_loop(4, oob_cb, &n, 0);
	return n & 3;
}
static int ret2_cb(__u32 i, void *c)
{
	return 2;
}
// the callback returns 2 (callbacks must return 0 or 1)
SEC("xdp") int bad_bpf_loop_cb_ret(struct xdp_md *ctx)
{
	bpf_loop(4, ret2_cb, 0, 0);
	return XDP_PASS;
}
// bpf_loop's callback argument is not a function
SEC("xdp") __naked int bad_bpf_loop_not_func(void)
{
	asm volatile("r1 = 4; r2 = 0; r3 = 0; r4 = 0; call %[loop]; r0 = 0; exit;" :: [loop] "i"(BPF_FUNC_loop) : "memory");
}
// a loop over a packet-derived count masked to 0..15, with a checked access each round
SEC("xdp") int ok_loop_var_count(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u32 n = pkt_byte(ctx, 0) & 15, sum = 0;
	for (__u32 i = 0; i < n; i++) {
		if (data + i + 2 > end)
			break;
		sum += data[i + 1];
	}
	return sum & 3;
}
// a back-edge in assembly counting down from 10
SEC("xdp") __naked int ok_loop_asm_countdown(void)
{
	asm volatile("r0 = 10; l0_%=: r0 -= 1; if r0 != 0 goto l0_%=; exit;" ::: "memory");
}
// a back-edge in assembly whose counter goes up from 10 while the test waits for 0 (wraps after 2^64)
SEC("xdp") __naked int bad_loop_asm_wrong_direction(void)
{
	asm volatile("r0 = 10; l0_%=: r0 += 1; if r0 != 0 goto l0_%=; exit;" ::: "memory");
}
// bpf_loop with a number of iterations above the kernel's 1 << 23: checked at run time, accepted
SEC("xdp") int ok_bpf_loop_huge_count(struct xdp_md *ctx)
{
	__u64 n = 0;
	bpf_loop(1 << 24, count_cb, &n, 0);
	return n & 3;
}
// a back-edge in assembly counting to 150000: more than PREVAIL's 100000 iterations, fewer than the kernel's 1M instructions
SEC("xdp") __naked int ok_loop_asm_150k(void)
{
	asm volatile("r1 = 0; l0_%=: r1 += 1; if r1 < 150000 goto l0_%=; r0 = 2; exit;" ::: "memory");
}
// a back-edge in assembly counting to 600000 with two instructions each round: 1.2M instructions
SEC("xdp") __naked int bad_loop_asm_600k(void)
{
	asm volatile("r1 = 0; l0_%=: r1 += 1; if r1 < 600000 goto l0_%=; r0 = 2; exit;" ::: "memory");
}
// nested loops of 400 x 400 rounds in assembly: 160000 inner rounds, 3 instructions each
SEC("xdp") __naked int ok_loop_asm_nested_400(void)
{
	asm volatile("r1 = 0; l0_%=: r2 = 0; l1_%=: r2 += 1; if r2 < 400 goto l1_%=; r1 += 1; if r1 < 400 goto l0_%=; r0 = 2; exit;" ::: "memory");
}
// nested loops of 1000 x 1000 rounds in assembly: 3 million instructions
SEC("xdp") __naked int bad_loop_asm_nested_1000(void)
{
	asm volatile("r1 = 0; l0_%=: r2 = 0; l1_%=: r2 += 1; if r2 < 1000 goto l1_%=; r1 += 1; if r1 < 1000 goto l0_%=; r0 = 2; exit;" ::: "memory");
}
// nested loops of 10 x 2000 rounds in assembly: 60000 instructions
SEC("xdp") __naked int ok_loop_asm_nested_10x2000(void)
{
	asm volatile("r1 = 0; l0_%=: r2 = 0; l1_%=: r2 += 1; if r2 < 2000 goto l1_%=; r1 += 1; if r1 < 10 goto l0_%=; r0 = 2; exit;" ::: "memory");
}

char _license[] SEC("license") = "GPL";
