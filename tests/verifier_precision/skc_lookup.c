/* A socket lookup in tc: the socket pointer is checked, read and released. */
#include "common.h"

SEC("tc")
int skc_lookup(struct __sk_buff *skb)
{
	struct bpf_sock_tuple tuple = {};
	struct bpf_sock *sk;
	int ret = 0;

	tuple.ipv4.daddr = bpf_htonl(0x7f000001);
	tuple.ipv4.dport = bpf_htons(80);
	sk = bpf_skc_lookup_tcp(skb, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 0;
	if (sk->state == 10 /* TCP_LISTEN */)
		ret = 1;
	bpf_sk_release(sk);
	return ret;
}

char LICENSE[] SEC("license") = "GPL";
