// category: sockets — socket lookups: NULL checks and reference release
#include "common.h"

static __always_inline struct bpf_sock_tuple *tuple_of(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct bpf_sock_tuple *t = data + sizeof(struct ethhdr) + sizeof(struct iphdr);
	if ((void *)t + sizeof(t->ipv4) > end)
		return 0;
	return t;
}

// bpf_sk_lookup_tcp, NULL check, bpf_sk_release
SEC("tc") int ok_sk_lookup_release(struct __sk_buff *skb)
{
	struct bpf_sock_tuple *t = tuple_of(skb);
	if (!t)
		return 0;
	struct bpf_sock *sk = bpf_sk_lookup_tcp(skb, t, sizeof(t->ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 0;
	bpf_sk_release(sk);
	return 1;
}
// bpf_skc_lookup_tcp, a field read, bpf_sk_release
SEC("tc") int ok_skc_lookup_release(struct __sk_buff *skb)
{
	struct bpf_sock_tuple *t = tuple_of(skb);
	if (!t)
		return 0;
	struct bpf_sock *sk = bpf_skc_lookup_tcp(skb, t, sizeof(t->ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 0;
	int family = sk->family;
	bpf_sk_release(sk);
	return family == 2;
}
// a socket reference never released
SEC("tc") int bad_sk_leak(struct __sk_buff *skb)
{
	struct bpf_sock_tuple *t = tuple_of(skb);
	if (!t)
		return 0;
	struct bpf_sock *sk = bpf_sk_lookup_tcp(skb, t, sizeof(t->ipv4), BPF_F_CURRENT_NETNS, 0);
	return sk != 0;
}
// bpf_sk_release of a result that may be NULL
SEC("tc") int bad_sk_release_nocheck(struct __sk_buff *skb)
{
	struct bpf_sock_tuple *t = tuple_of(skb);
	if (!t)
		return 0;
	struct bpf_sock *sk = bpf_sk_lookup_tcp(skb, t, sizeof(t->ipv4), BPF_F_CURRENT_NETNS, 0);
	bpf_sk_release(sk);
	return 1;
}
// reads a socket field after bpf_sk_release
SEC("tc") int bad_sk_use_after_release(struct __sk_buff *skb)
{
	struct bpf_sock_tuple *t = tuple_of(skb);
	if (!t)
		return 0;
	struct bpf_sock *sk = bpf_sk_lookup_tcp(skb, t, sizeof(t->ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 0;
	bpf_sk_release(sk);
	return sk->family;
}
// the tuple on the stack, UDP lookup, released on every path
SEC("tc") int ok_sk_lookup_udp_stack(struct __sk_buff *skb)
{
	struct bpf_sock_tuple t = {};
	t.ipv4.dport = bpf_htons(53);
	struct bpf_sock *sk = bpf_sk_lookup_udp(skb, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 0;
	if (sk->type == 2) {
		bpf_sk_release(sk);
		return 1;
	}
	bpf_sk_release(sk);
	return 0;
}
// released on one path only
SEC("tc") int bad_sk_leak_one_path(struct __sk_buff *skb)
{
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk = bpf_sk_lookup_udp(skb, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 0;
	if (skb->mark == 7)
		return 1;
	bpf_sk_release(sk);
	return 0;
}
// reads past the end of struct bpf_sock
SEC("tc") int bad_sk_read_oob(struct __sk_buff *skb)
{
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk = bpf_sk_lookup_tcp(skb, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 0;
	int v = *((volatile __u32 *)sk + 64);
	bpf_sk_release(sk);
	return v;
}
// a tuple size that is neither the IPv4 nor the IPv6 size: a run-time error, accepted at load
SEC("tc") int ok_sk_lookup_odd_size(struct __sk_buff *skb)
{
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk = bpf_sk_lookup_tcp(skb, &t, 7, BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 0;
	bpf_sk_release(sk);
	return 1;
}
// writes a field of the looked-up socket
SEC("tc") int bad_sk_write_field(struct __sk_buff *skb)
{
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk = bpf_sk_lookup_tcp(skb, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 0;
	sk->mark = 1;
	bpf_sk_release(sk);
	return 0;
}
// bpf_skc_lookup_tcp, bpf_sk_assign of the checked socket, then bpf_sk_release (cilium's pattern)
SEC("tc") int ok_sk_assign(struct __sk_buff *skb)
{
	struct bpf_sock_tuple *t = tuple_of(skb);
	if (!t)
		return 0;
	struct bpf_sock *sk = bpf_skc_lookup_tcp(skb, t, sizeof(t->ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 0;
	long err = bpf_sk_assign(skb, sk, 0);
	bpf_sk_release(sk);
	return err ? 2 : 0;
}
// bpf_sk_assign given the lookup's result before its NULL check
SEC("tc") int bad_sk_assign_nocheck(struct __sk_buff *skb)
{
	struct bpf_sock_tuple *t = tuple_of(skb);
	if (!t)
		return 0;
	struct bpf_sock *sk = bpf_skc_lookup_tcp(skb, t, sizeof(t->ipv4), BPF_F_CURRENT_NETNS, 0);
	long err = bpf_sk_assign(skb, sk, 0);
	if (sk)
		bpf_sk_release(sk);
	return err ? 2 : 0;
}

char _license[] SEC("license") = "GPL";
