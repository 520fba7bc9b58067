/* connect() over IPv6: deny the documentation prefix 2001:db8::/32, and bind
 * every other connection's socket to ::1 first (bpf_bind), as a
 * source-address policy would. */
#include "policy.h"

/* struct sockaddr_in6 as the kernel reads it (the C library's header is not for -target bpf) */
struct sockaddr_in6_bpf {
	__u16 sin6_family;
	__u16 sin6_port;
	__u32 sin6_flowinfo;
	__u32 sin6_addr[4];
	__u32 sin6_scope_id;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __s64);
} bind_result SEC(".maps");

SEC("cgroup/connect6")
int connect6_bind(struct bpf_sock_addr *ctx)
{
	struct sockaddr_in6_bpf sa = {};
	__u32 zero = 0;
	__s64 *slot;

	if (ctx->user_ip6[0] == bpf_htonl(0x20010db8))
		return 0;
	sa.sin6_family = 10; /* AF_INET6 */
	sa.sin6_addr[3] = bpf_htonl(1);
	slot = bpf_map_lookup_elem(&bind_result, &zero);
	if (slot)
		*slot = bpf_bind(ctx, (struct sockaddr *)&sa, sizeof(sa));
	return 1;
}
