/* Maps shared by the socket policies: what to deny, where to redirect, and a
 * log of every decision (the last one per process, and counts per verdict). */
#ifndef POLICY_H
#define POLICY_H
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct endpoint {
	__u32 ip4;   /* network order; 0 matches any address */
	__u16 port;  /* network order */
	__u16 pad;
};

struct decision {
	__u64 pid_tgid;
	__u64 cookie;
	struct endpoint asked;
	struct endpoint went;
	__u32 verdict;
	__u32 uid;
};

/* endpoints refused */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct endpoint);
	__type(value, __u8);
} deny SEC(".maps");

/* endpoint -> where it goes instead */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct endpoint);
	__type(value, struct endpoint);
} redirect SEC(".maps");

/* verdict (0 denied, 1 allowed, 2 redirected) -> count */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

/* the last decision, by process id */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct decision);
} last SEC(".maps");

static __always_inline void record(struct bpf_sock_addr *ctx, struct endpoint *asked,
				   struct endpoint *went, __u32 verdict)
{
	struct decision d = {};
	__u32 tgid;
	__u64 *count = bpf_map_lookup_elem(&counts, &verdict);

	if (count)
		__sync_fetch_and_add(count, 1);
	d.pid_tgid = bpf_get_current_pid_tgid();
	d.uid = (__u32)bpf_get_current_uid_gid();
	d.cookie = bpf_get_socket_cookie(ctx);
	d.asked = *asked;
	d.went = *went;
	d.verdict = verdict;
	tgid = d.pid_tgid >> 32;
	bpf_map_update_elem(&last, &tgid, &d, BPF_ANY);
}

/* 0 deny, 1 allow, 2 redirected (ctx rewritten) */
static __always_inline __u32 decide4(struct bpf_sock_addr *ctx)
{
	struct endpoint asked = { .ip4 = ctx->user_ip4, .port = (__u16)ctx->user_port };
	struct endpoint any_ip = { .ip4 = 0, .port = asked.port };
	struct endpoint *to;
	__u32 verdict = 1;

	if (bpf_map_lookup_elem(&deny, &asked) || bpf_map_lookup_elem(&deny, &any_ip)) {
		record(ctx, &asked, &asked, 0);
		return 0;
	}
	to = bpf_map_lookup_elem(&redirect, &asked);
	if (!to)
		to = bpf_map_lookup_elem(&redirect, &any_ip);
	if (to) {
		ctx->user_ip4 = to->ip4 ? to->ip4 : asked.ip4;
		ctx->user_port = to->port;
		verdict = 2;
	}
	struct endpoint went = { .ip4 = ctx->user_ip4, .port = (__u16)ctx->user_port };
	record(ctx, &asked, &went, verdict);
	return verdict;
}

char _license[] SEC("license") = "GPL";
#endif
