// SPDX-License-Identifier: GPL-2.0
/* tc programs in sections that do not name a program type, as old cilium
 * objects have them (`2/7`, `from-netdev`): libbpf cannot tell the type,
 * so `pybpf verify`, `pybpf prog run` and `pybpf.load` need `--type tc` /
 * `prog_type="tc"`. Drops IPv4 frames with TTL 1, passes the rest. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

static __always_inline int ttl_check(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	return ip->ttl <= 1 ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("2/7")
int tail_ttl(struct __sk_buff *skb)
{
	return ttl_check(skb);
}

SEC("from-netdev")
int from_netdev(struct __sk_buff *skb)
{
	return ttl_check(skb);
}

char _license[] SEC("license") = "GPL";
