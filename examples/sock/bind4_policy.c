/* bind() over IPv4: refuse ports in `deny` (address 0 in the key), let port 80
 * through without the privileged-port capability (verdict bit 1), rewrite
 * binds to ports in `redirect`. */
#include "policy.h"

SEC("cgroup/bind4")
int bind4_policy(struct bpf_sock_addr *ctx)
{
	__u32 verdict = decide4(ctx);

	if (!verdict)
		return 0;
	if (ctx->user_port == bpf_htons(80))
		return 3; /* allowed, and no CAP_NET_BIND_SERVICE needed */
	return 1;
}
