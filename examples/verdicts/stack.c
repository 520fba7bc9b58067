// category: stack — the 512-byte stack: bounds, variable offsets, alignment, frames
#include "common.h"

// a fully written 64-byte buffer read at a packet-derived index masked to 0..63
SEC("xdp") int ok_stack_var_index(struct xdp_md *ctx)
{
	volatile unsigned char buf[64];
	for (int i = 0; i < 64; i++)
		buf[i] = i;
	__u32 idx = pkt_byte(ctx, 0) & 63;
	return buf[idx] & 3;
}
// a write at a bounded variable index into a stack buffer
SEC("xdp") int ok_stack_var_write(struct xdp_md *ctx)
{
	volatile unsigned char buf[32] = {};
	__u32 idx = pkt_byte(ctx, 0) & 31;
	buf[idx] = 1;
	return buf[0] & 3;
}
// an index masked to 0..127 into a 64-byte stack buffer
SEC("xdp") int bad_stack_var_index_oob(struct xdp_md *ctx)
{
	volatile unsigned char buf[64];
	for (int i = 0; i < 64; i++)
		buf[i] = i;
	__u32 idx = pkt_byte(ctx, 0) & 127;
	return buf[idx] & 3;
}
// reads 8 bytes of stack never written: root may (allow_uninit_stack)
SEC("xdp") __naked int ok_stack_uninit_read_root(void)
{
	asm volatile("r0 = *(u64 *)(r10 - 8); r0 = 0; exit;" ::: "memory");
}
// writes below the 512-byte frame
SEC("xdp") __naked int bad_stack_below_frame(void)
{
	asm volatile("r0 = 0; *(u64 *)(r10 - 520) = r0; exit;" ::: "memory");
}
// writes at the frame pointer itself (above the frame)
SEC("xdp") __naked int bad_stack_above_frame(void)
{
	asm volatile("r0 = 0; *(u64 *)(r10 + 0) = r0; exit;" ::: "memory");
}
// uses the whole frame: writes at r10 - 512
SEC("xdp") __naked int ok_stack_bottom(void)
{
	asm volatile("r0 = 0; *(u64 *)(r10 - 512) = r0; r0 = *(u64 *)(r10 - 512); exit;" ::: "memory");
}
// a 4-byte store at r10 - 6 (misaligned stack access)
SEC("xdp") __naked int bad_stack_misaligned_w(void)
{
	asm volatile("r0 = 0; *(u32 *)(r10 - 6) = r0; exit;" ::: "memory");
}
// an 8-byte load at r10 - 12 after aligned stores (misaligned stack access)
SEC("xdp") __naked int bad_stack_misaligned_dw(void)
{
	asm volatile("r0 = 0; *(u64 *)(r10 - 8) = r0; *(u64 *)(r10 - 16) = r0; r0 = *(u64 *)(r10 - 12); exit;" ::: "memory");
}
// a 2-byte store at r10 - 2, aligned
SEC("xdp") __naked int ok_stack_aligned_h(void)
{
	asm volatile("r0 = 0; *(u16 *)(r10 - 2) = r0; r0 = *(u16 *)(r10 - 2); exit;" ::: "memory");
}
// spills the ctx pointer and fills it back before a ctx load
SEC("xdp") __naked int ok_stack_spill_ctx(void)
{
	asm volatile("*(u64 *)(r10 - 8) = r1; r1 = 0; r1 = *(u64 *)(r10 - 8); r0 = *(u32 *)(r1 + 0); r0 = 0; exit;" ::: "memory");
}
// overwrites half of a spilled ctx pointer, then dereferences the fill
SEC("xdp") __naked int bad_stack_partial_overwrite(void)
{
	asm volatile("*(u64 *)(r10 - 8) = r1; r2 = 0; *(u32 *)(r10 - 8) = r2; r1 = *(u64 *)(r10 - 8); r0 = *(u32 *)(r1 + 0); r0 = 0; exit;" ::: "memory");
}
// an unbounded variable offset into the stack
SEC("xdp") int bad_stack_var_unbounded(struct xdp_md *ctx)
{
	volatile unsigned char buf[64] = {};
	__u32 idx = pkt_byte(ctx, 0) | (pkt_byte(ctx, 1) << 8) | (pkt_byte(ctx, 2) << 16) | ((__u32)pkt_byte(ctx, 3) << 24);
	long off = (long)(int)idx;
	return *(volatile unsigned char *)((unsigned char *)buf + off);
}
__naked __noinline __used static int sub_320(void)
{
	asm volatile("r0 = 0; *(u64 *)(r10 - 320) = r0; exit;" ::: "memory");
}
// two frames using 320 bytes each (combined stack over 512)
SEC("xdp") __naked int bad_stack_combined_frames(void)
{
	asm volatile("r0 = 0; *(u64 *)(r10 - 320) = r0; call sub_320; r0 = 0; exit;" ::: "memory");
}
__naked __noinline __used static int sub_160(void)
{
	asm volatile("r0 = 0; *(u64 *)(r10 - 160) = r0; exit;" ::: "memory");
}
// two frames of 320 and 160 bytes: 480 together fit
SEC("xdp") __naked int ok_stack_two_frames(void)
{
	asm volatile("r0 = 0; *(u64 *)(r10 - 320) = r0; call sub_160; r0 = 0; exit;" ::: "memory");
}

char _license[] SEC("license") = "GPL";
