// category: helpers — helper availability per program type and argument checks
#include "common.h"

struct { __uint(type, BPF_MAP_TYPE_PROG_ARRAY); __uint(max_entries, 2); __type(key, __u32); __type(value, __u32); } jmp SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } arr SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u8[256]); } stackbuf SEC(".maps");

// bpf_get_stack into a map value of 256 bytes
SEC("kprobe/do_nanosleep") int ok_get_stack(void *ctx)
{
	__u32 key = 0;
	void *buf = bpf_map_lookup_elem(&stackbuf, &key);
	if (!buf)
		return 0;
	long n = bpf_get_stack(ctx, buf, 256, 0);
	return n > 0;
}
// bpf_get_stack into a stack buffer, size within it
SEC("kprobe/do_nanosleep") int ok_get_stack_on_stack(void *ctx)
{
	__u64 buf[8];
	long n = bpf_get_stack(ctx, buf, sizeof(buf), BPF_F_USER_STACK);
	return n > 0 ? buf[0] & 1 : 0;
}
// bpf_get_stack with a size past its 256-byte buffer
SEC("kprobe/do_nanosleep") int bad_get_stack_too_big(void *ctx)
{
	__u32 key = 0;
	void *buf = bpf_map_lookup_elem(&stackbuf, &key);
	if (!buf)
		return 0;
	return bpf_get_stack(ctx, buf, 512, 0) > 0;
}
// bpf_get_current_comm into a 16-byte buffer with size 32
SEC("kprobe/do_nanosleep") int bad_comm_size(void *ctx)
{
	char comm[16];
	bpf_get_current_comm(comm, 32);
	return comm[0];
}
// bpf_get_current_comm with the right size
SEC("kprobe/do_nanosleep") int ok_comm(void *ctx)
{
	char comm[16];
	bpf_get_current_comm(comm, sizeof(comm));
	return comm[0] & 1;
}
// bpf_probe_read_kernel with an unbounded size
SEC("kprobe/do_nanosleep") int bad_probe_read_unbounded(void *ctx)
{
	char buf[32];
	__u32 n = bpf_get_prandom_u32();
	bpf_probe_read_kernel(buf, n, ctx);
	return buf[0];
}
// bpf_probe_read_kernel with a size masked to 1..32
SEC("kprobe/do_nanosleep") int ok_probe_read_bounded(void *ctx)
{
	char buf[32];
	__u32 n = (bpf_get_prandom_u32() & 31) + 1;
	bpf_probe_read_kernel(buf, n, ctx);
	return buf[0] & 1;
}
// bpf_skb_store_bytes called from XDP (not an XDP helper)
SEC("xdp") __naked int bad_helper_skb_in_xdp(void)
{
	asm volatile("r2 = 0; r3 = r10; r3 += -8; *(u64 *)(r10 - 8) = r2; r4 = 1; r5 = 0; call %[f]; r0 = 2; exit;"
		     :: [f] "i"(BPF_FUNC_skb_store_bytes) : "memory");
}
// bpf_get_current_comm from XDP (a base helper in this kernel)
SEC("xdp") int ok_helper_comm_in_xdp(struct xdp_md *ctx)
{
	char comm[16];
	bpf_get_current_comm(comm, sizeof(comm));
	return comm[0] & 1;
}
// bpf_xdp_adjust_tail from tc (an XDP helper)
SEC("tc") __naked int bad_helper_xdp_in_tc(void)
{
	asm volatile("r2 = 0; call %[f]; r0 = 0; exit;" :: [f] "i"(BPF_FUNC_xdp_adjust_tail) : "memory");
}
// bpf_redirect from XDP
SEC("xdp") int ok_helper_redirect(struct xdp_md *ctx)
{
	return bpf_redirect(1, 0);
}
// bpf_skb_store_bytes from tc
SEC("tc") int ok_helper_skb_store(struct __sk_buff *skb)
{
	__u16 v = 0;
	bpf_skb_store_bytes(skb, 0, &v, sizeof(v), 0);
	return 0;
}
// bpf_tail_call into a prog array, falls through when empty
SEC("xdp") int ok_tail_call(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &jmp, 0);
	return XDP_PASS;
}
// bpf_tail_call given an array map instead of a prog array
SEC("xdp") int bad_tail_call_wrong_map(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &arr, 0);
	return XDP_PASS;
}
// bpf_csum_diff over 8 bytes of stack
SEC("tc") int ok_helper_csum_diff(struct __sk_buff *skb)
{
	__u32 from[2] = {1, 2}, to[2] = {3, 4};
	return bpf_csum_diff(from, sizeof(from), to, sizeof(to), 0) & 1;
}
// bpf_csum_diff with a size that is not a multiple of 4: a run-time error, accepted at load
SEC("tc") int ok_helper_csum_diff_odd(struct __sk_buff *skb)
{
	__u32 from[2] = {1, 2}, to[2] = {3, 4};
	return bpf_csum_diff(from, 6, to, 6, 0) & 1;
}
// bpf_trace_printk with a format on the stack
SEC("xdp") int ok_helper_printk(struct xdp_md *ctx)
{
	bpf_printk("ifindex %d", ctx->ingress_ifindex);
	return XDP_PASS;
}
// passes the ctx pointer where a stack buffer is expected
SEC("kprobe/do_nanosleep") int bad_helper_ctx_as_buffer(void *ctx)
{
	bpf_get_current_comm(ctx, 16);
	return 0;
}
// bpf_ktime_get_ns and bpf_get_prandom_u32 in a socket filter
SEC("socket") int ok_helper_socket_basics(struct __sk_buff *skb)
{
	return (bpf_ktime_get_ns() ^ bpf_get_prandom_u32()) & 0xff;
}
// bpf_get_current_pid_tgid in a socket filter (a base helper in this kernel)
SEC("socket") int ok_helper_pid_in_socket(struct __sk_buff *skb)
{
	return bpf_get_current_pid_tgid() & 0xff;
}

char _license[] SEC("license") = "GPL";
