// SPDX-License-Identifier: GPL-2.0
/* Dispatches by IP protocol through a program array that libbpf fills at
 * load time (`.values` of a BTF-declared prog array): TCP and UDP have
 * handlers, other protocols fall through the missing slot.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

__u32 tcp_seen, udp_seen, fallthrough;

SEC("xdp")
int handle_tcp(struct xdp_md *ctx)
{
	tcp_seen++;
	return XDP_DROP;
}

SEC("xdp")
int handle_udp(struct xdp_md *ctx)
{
	udp_seen++;
	return XDP_TX;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 32);
	__uint(key_size, sizeof(__u32));
	__array(values, int (void *));
} handlers SEC(".maps") = {
	.values = { [IPPROTO_TCP] = (void *)&handle_tcp, [IPPROTO_UDP] = (void *)&handle_udp },
};

SEC("xdp")
int xdp_dispatch(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	bpf_tail_call(ctx, &handlers, ip->protocol & 31);
	fallthrough++;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
