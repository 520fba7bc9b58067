/* sendto()/sendmsg() on a UDP socket: datagrams to a port listed in `source`
 * leave from the address given there (msg_src_ip4, as an IP_PKTINFO source
 * would); others keep their own. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u16);   /* destination port, network order */
	__type(value, __u32); /* source address, network order */
} source SEC(".maps");

/* the source the last datagram asked for (0: none), for the tests */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} asked SEC(".maps");

SEC("cgroup/sendmsg4")
int sendmsg4_source(struct bpf_sock_addr *ctx)
{
	__u16 port = (__u16)ctx->user_port;
	__u32 zero = 0, was = ctx->msg_src_ip4, *from = bpf_map_lookup_elem(&source, &port);

	bpf_map_update_elem(&asked, &zero, &was, BPF_ANY);
	if (from)
		ctx->msg_src_ip4 = *from;
	return 1;
}

char _license[] SEC("license") = "GPL";
