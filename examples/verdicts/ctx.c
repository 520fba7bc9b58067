// category: ctx — context access per program type: offsets, sizes, writable fields
#include "common.h"

// reads the scalar fields of struct xdp_md
SEC("xdp") int ok_ctx_xdp_fields(struct xdp_md *ctx)
{
	return (ctx->ingress_ifindex + ctx->rx_queue_index) & 3;
}
// writes xdp_md->data
SEC("xdp") __naked int bad_ctx_xdp_write(void)
{
	asm volatile("r2 = 0; *(u32 *)(r1 + 0) = r2; r0 = 2; exit;" ::: "memory");
}
// reads past the end of struct xdp_md
SEC("xdp") __naked int bad_ctx_xdp_past_end(void)
{
	asm volatile("r0 = *(u32 *)(r1 + 64); r0 = 2; exit;" ::: "memory");
}
// a misaligned 4-byte read of xdp_md
SEC("xdp") __naked int bad_ctx_misaligned(void)
{
	asm volatile("r0 = *(u32 *)(r1 + 2); r0 = 2; exit;" ::: "memory");
}
// an 8-byte read of a 4-byte xdp_md field
SEC("xdp") __naked int bad_ctx_wide_read(void)
{
	asm volatile("r0 = *(u64 *)(r1 + 12); r0 = 2; exit;" ::: "memory");
}
// a load through a ctx pointer moved by 4
SEC("xdp") __naked int bad_ctx_modified_ptr(void)
{
	asm volatile("r1 += 4; r0 = *(u32 *)(r1 + 0); r0 = 2; exit;" ::: "memory");
}
// tc writes skb->mark, skb->priority and skb->cb[]
SEC("tc") int ok_ctx_tc_write(struct __sk_buff *skb)
{
	skb->mark = 1;
	skb->priority = 2;
	skb->cb[0] = 3;
	return 0;
}
// tc writes skb->len (read-only)
SEC("tc") int bad_ctx_tc_write_len(struct __sk_buff *skb)
{
	*(volatile __u32 *)&skb->len = 1;
	return 0;
}
// tc writes skb->protocol (read-only)
SEC("tc") int bad_ctx_tc_write_protocol(struct __sk_buff *skb)
{
	*(volatile __u32 *)&skb->protocol = 1;
	return 0;
}
// tc reads len, protocol, ifindex, hash, tc_index
SEC("tc") int ok_ctx_tc_read(struct __sk_buff *skb)
{
	return (skb->len + skb->protocol + skb->ifindex + skb->hash + skb->tc_index) & 1;
}
// a socket filter reads skb->len and the first cb word
SEC("socket") int ok_ctx_socket_read(struct __sk_buff *skb)
{
	return skb->len + skb->cb[0];
}
// a socket filter reads skb->data (no direct packet access for socket filters)
SEC("socket") int bad_ctx_socket_data(struct __sk_buff *skb)
{
	return *(volatile __u32 *)&skb->data;
}
// a socket filter writes skb->mark (read-only there)
SEC("socket") int bad_ctx_socket_write_mark(struct __sk_buff *skb)
{
	skb->mark = 1;
	return 0;
}
// cgroup_skb writes skb->mark
SEC("cgroup_skb/egress") int ok_ctx_cgskb_mark(struct __sk_buff *skb)
{
	skb->mark = 7;
	return 1;
}
// cgroup_skb reads skb->tc_index (readable there)
SEC("cgroup_skb/egress") int ok_ctx_cgskb_tc_index(struct __sk_buff *skb)
{
	return *(volatile __u32 *)&skb->tc_index & 1;
}
// connect4 rewrites the destination address and port
SEC("cgroup/connect4") int ok_ctx_connect4_rewrite(struct bpf_sock_addr *ctx)
{
	ctx->user_ip4 = bpf_htonl(0x7f000001);
	ctx->user_port = bpf_htons(8080);
	return 1;
}
// connect4 writes the address family (read-only)
SEC("cgroup/connect4") int bad_ctx_connect4_family(struct bpf_sock_addr *ctx)
{
	*(volatile __u32 *)&ctx->family = 10;
	return 1;
}
// connect4 reads the IPv6 address field (not valid for connect4)
SEC("cgroup/connect4") int bad_ctx_connect4_ip6(struct bpf_sock_addr *ctx)
{
	return *(volatile __u32 *)&ctx->user_ip6[0] & 1;
}
// a 1-byte read of xdp_md->ingress_ifindex (xdp_md has no narrow loads)
SEC("xdp") __naked int bad_ctx_narrow_read(void)
{
	asm volatile("r0 = *(u8 *)(r1 + 12); r0 = 2; exit;" ::: "memory");
}
// stores a ctx value (not the pointer) to the stack and returns it
SEC("tc") int ok_ctx_tc_cb_roundtrip(struct __sk_buff *skb)
{
	skb->cb[1] = skb->len;
	return skb->cb[1] & 1;
}

char _license[] SEC("license") = "GPL";
