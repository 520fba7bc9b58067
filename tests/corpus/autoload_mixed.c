// SPDX-License-Identifier: GPL-2.0
/* Three programs in one object, as libbpf's open -> configure -> load
 * sequence meets them: `good` is safe, `unchecked` reads the packet without
 * a bounds check (the kernel rejects it, so the object only loads with its
 * autoload turned off), and `optional` is in a SEC("?tc") section, which
 * starts with autoload off. The hash map's size is set before load.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

SEC("xdp")
int good(struct xdp_md *ctx)
{
	__u32 len = ctx->data_end - ctx->data;
	__u64 one = 1, *count;

	count = bpf_map_lookup_elem(&seen, &len);
	if (count) {
		__sync_fetch_and_add(count, 1);
		return XDP_PASS;
	}
	bpf_map_update_elem(&seen, &len, &one, BPF_ANY);
	return XDP_PASS;
}

SEC("xdp")
int unchecked(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;

	return data[12] == 0x08 ? XDP_PASS : XDP_DROP;
}

SEC("?tc")
int optional(struct __sk_buff *skb)
{
	return skb->len > 100 ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
