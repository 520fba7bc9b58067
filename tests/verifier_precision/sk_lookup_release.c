/* bpf_sk_lookup_tcp on the packet's tuple: a full socket, read, then released. */
#include "common.h"

SEC("tc")
int sk_lookup_release(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	struct tcphdr *tcp = (void *)(ip + 1);
	struct bpf_sock_tuple tuple = {};
	struct bpf_sock *sk;
	__u32 mark;

	if ((void *)(tcp + 1) > data_end || ip->protocol != IPPROTO_TCP)
		return 0;
	tuple.ipv4.saddr = ip->saddr;
	tuple.ipv4.daddr = ip->daddr;
	tuple.ipv4.sport = tcp->source;
	tuple.ipv4.dport = tcp->dest;
	sk = bpf_sk_lookup_tcp(skb, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 0;
	mark = sk->mark;
	bpf_sk_release(sk);
	return mark ? 2 : 0;
}

char LICENSE[] SEC("license") = "GPL";
