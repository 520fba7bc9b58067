/* CO-RE relocations of every kind, against types pybpf hosts (and the kernel
 * has): each program stores what its relocations resolved to in `values`,
 * so that pybpf and libbpf + the kernel can be compared value by value.
 * Local types are flavors (`___local`) with fewer members, in another order
 * and at other offsets than Linux's, so that every relocation must move.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 32);
	__type(key, __u32);
	__type(value, __u64);
} values SEC(".maps");

/* The context, as vmlinux.h declares it but reordered: data_end first. */
struct xdp_md___local {
	__u32 rx_queue_index;
	__u32 data_end;
	__u32 data;
} __attribute__((preserve_access_index));

struct ethhdr___local {
	__be16 h_proto;
	unsigned char h_dest[6];
	unsigned char h_source[6];
} __attribute__((preserve_access_index));

/* Linux's iphdr keeps saddr/daddr in an anonymous union; here they are plain. */
struct iphdr___local {
	__u32 daddr;
	__u8 protocol;
	__u8 ttl;
	__u8 version:4, ihl:4;
	__u16 tot_len;
	__u32 no_such_field;
} __attribute__((preserve_access_index));

struct tcphdr___local {
	__u16 dest;
	__u16 source;
	__u16 syn:1, fin:1, ack:1, doff:4, res1:3, rst:1, psh:1, urg:1, ece:1, cwr:1;
} __attribute__((preserve_access_index));

struct in6_addr___local {
	union {
		__u32 u6_addr32[4];
	} in6_u;
} __attribute__((preserve_access_index));

struct ipv6hdr___local {
	struct in6_addr___local daddr;
	__u8 hop_limit;
	__u8 nexthdr;
} __attribute__((preserve_access_index));

struct udphdr___local {
	__s32 check;          /* another size and signedness than Linux's __sum16 */
	__u16 len;
} __attribute__((preserve_access_index));

struct vlan_hdr___same {
	__be16 h_vlan_TCI;
	__be16 h_vlan_encapsulated_proto;
};

struct vlan_hdr___wider {
	__u32 h_vlan_TCI;
};

struct no_such_type___local {
	int x;
};

enum xdp_action___local {
	XDP_REDIRECT___local = 100,
	XDP_TX___local = 101,
	XDP_NO_SUCH_ACTION___local = 102,
};

static __always_inline void put(__u32 key, __u64 value)
{
	bpf_map_update_elem(&values, &key, &value, BPF_ANY);
}

SEC("xdp")
int core_values(struct xdp_md *ctx)
{
	put(0, bpf_core_field_offset(struct iphdr___local, protocol));
	put(1, bpf_core_field_offset(struct iphdr___local, daddr));
	put(2, bpf_core_field_exists(struct iphdr___local, protocol));
	put(3, bpf_core_field_exists(struct iphdr___local, no_such_field));
	put(4, bpf_core_field_size(struct iphdr___local, tot_len));
	put(5, __builtin_preserve_field_info(((struct udphdr___local *)0)->check, BPF_FIELD_SIGNED));
	put(6, __builtin_preserve_field_info(((struct iphdr___local *)0)->version, BPF_FIELD_LSHIFT_U64));
	put(7, __builtin_preserve_field_info(((struct iphdr___local *)0)->version, BPF_FIELD_RSHIFT_U64));
	put(8, __builtin_preserve_field_info(((struct tcphdr___local *)0)->doff, BPF_FIELD_LSHIFT_U64));
	put(9, __builtin_preserve_field_info(((struct tcphdr___local *)0)->doff, BPF_FIELD_BYTE_OFFSET));
	put(10, bpf_core_type_exists(struct vlan_hdr___same));
	put(11, bpf_core_type_exists(struct no_such_type___local));
	put(12, bpf_core_type_size(struct tcphdr___local));
	put(13, bpf_core_type_matches(struct vlan_hdr___same));
	put(14, bpf_core_type_matches(struct vlan_hdr___wider));
	put(15, bpf_core_enum_value_exists(enum xdp_action___local, XDP_TX___local));
	put(16, bpf_core_enum_value_exists(enum xdp_action___local, XDP_NO_SUCH_ACTION___local));
	put(17, bpf_core_enum_value(enum xdp_action___local, XDP_REDIRECT___local));
	put(18, bpf_core_field_offset(struct ipv6hdr___local, daddr.in6_u.u6_addr32[3]));
	put(19, bpf_core_field_size(struct ethhdr___local, h_source));
	put(20, bpf_core_field_offset(struct xdp_md___local, data_end));
	put(21, bpf_core_type_id_kernel(struct vlan_hdr___same) != 0);
	put(22, bpf_core_type_id_local(struct vlan_hdr___same) != 0);
	put(23, __builtin_preserve_field_info(((struct iphdr___local *)0)->ttl, BPF_FIELD_SIGNED));
	return XDP_PASS;
}

/* A vmlinux.h-style parser: every context and header access is relocated.
 * Returns XDP_TX for a TCP SYN to port 80, XDP_DROP for other TCP, XDP_PASS
 * otherwise; stores the IP version, header length and TCP data offset. */
SEC("xdp")
int core_parse(struct xdp_md___local *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr___local *eth = data;
	struct iphdr___local *ip = data + 14;
	struct tcphdr___local *tcp;

	if (data + 14 + 20 + 20 > data_end)
		return XDP_PASS;
	if (eth->h_proto != __builtin_bswap16(0x0800))
		return XDP_PASS;
	put(24, BPF_CORE_READ_BITFIELD(ip, version));
	put(25, BPF_CORE_READ_BITFIELD(ip, ihl));
	put(26, ip->ttl);
	if (ip->protocol != 6)
		return XDP_PASS;
	tcp = (void *)ip + 20;
	put(27, BPF_CORE_READ_BITFIELD(tcp, doff));
	if (BPF_CORE_READ_BITFIELD(tcp, syn) && tcp->dest == __builtin_bswap16(80))
		return XDP_TX;
	return XDP_DROP;
}

/* A missing field read only where bpf_core_field_exists says it exists:
 * the poisoned load is dead code, and the program verifies. */
SEC("xdp")
int core_guarded(struct xdp_md___local *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr___local *ip = data + 14;

	if (data + 14 + 40 > data_end)
		return XDP_PASS;
	if (bpf_core_field_exists(ip->no_such_field))
		return ip->no_such_field;
	return XDP_DROP;
}

/* tc, as libbpf-bootstrap's `tc` example is written: __sk_buff through
 * vmlinux.h-style relocations (reordered here). Stores len, protocol and the
 * IPv4 TTL; drops TTL 1, passes the rest. */
struct __sk_buff___local {
	__u32 data_end;
	__u32 protocol;
	__u32 data;
	__u32 len;
} __attribute__((preserve_access_index));

SEC("tc")
int core_tc(struct __sk_buff___local *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr___local *ip = data + 14;

	put(28, skb->len);
	put(29, skb->protocol);
	if (data + 14 + 20 > data_end)
		return 0;
	put(30, ip->ttl);
	return ip->ttl == 1 ? 2 : 0;
}

/* CO-RE inside a bpf-to-bpf callee: the callee's relocations travel with it. */
static __noinline int ip_protocol(struct iphdr___local *ip)
{
	return ip->protocol;
}

SEC("xdp")
int core_subprog(struct xdp_md___local *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (data + 14 + 20 > data_end)
		return XDP_ABORTED;
	return ip_protocol(data + 14) == 6 ? XDP_TX : XDP_PASS;
}
