// SPDX-License-Identifier: GPL-2.0
/* Flaw: a cgroup/sock_create program must return 0 (deny) or 1 (allow);
 * this one returns 2. SAFE: returns 1. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("cgroup/sock_create")
int return_value_cgroup(struct bpf_sock *sk)
{
#ifdef SAFE
	return sk->protocol == 0 ? 0 : 1;
#else
	return sk->protocol == 0 ? 0 : 2;
#endif
}

char LICENSE[] SEC("license") = "GPL";
