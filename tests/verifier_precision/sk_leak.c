/* A socket reference that is never released: the kernel rejects the leak. */
#include "common.h"

SEC("tc")
int sk_leak(struct __sk_buff *skb)
{
	struct bpf_sock_tuple tuple = {};
	struct bpf_sock *sk;

	sk = bpf_skc_lookup_tcp(skb, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
	return sk ? 1 : 0;
}

char LICENSE[] SEC("license") = "GPL";
