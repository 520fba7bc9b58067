/* connect() over IPv4: refuse endpoints in `deny`, send those in `redirect`
 * elsewhere, record every decision. */
#include "policy.h"

SEC("cgroup/connect4")
int connect4_policy(struct bpf_sock_addr *ctx)
{
	return decide4(ctx) ? 1 : 0;
}
