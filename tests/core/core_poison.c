/* A read of a field the target does not have, unguarded: libbpf poisons the
 * load and the verifier rejects the program at that instruction. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct iphdr___local {
	__u8 protocol;
	__u32 no_such_field;
} __attribute__((preserve_access_index));

SEC("xdp")
int core_unguarded(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr___local *ip = data + 14;

	if (data + 14 + 40 > data_end)
		return 2;
	return ip->no_such_field == 7 ? 1 : 2;
}
