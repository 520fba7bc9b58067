/* sendto()/sendmsg() with an address on a UDP socket: the same policy as connect4. */
#include "policy.h"

SEC("cgroup/sendmsg4")
int sendmsg4_policy(struct bpf_sock_addr *ctx)
{
	return decide4(ctx) ? 1 : 0;
}
