// SPDX-License-Identifier: GPL-2.0
/* Reports every IPv4 frame as a ring buffer record (reserve, fill the
 * fields, submit); frames that are not IPv4 reserve a record and discard it.
 * A failed reservation is counted in .bss.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct flow_event {
	__u32 saddr;
	__u32 daddr;
	__u16 len;
	__u8 proto;
	__u8 ttl;
	__u64 seq;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} flows SEC(".maps");

__u64 seq;
__u32 reserve_failed;
__u32 discarded;

SEC("xdp")
int xdp_ringbuf_flows(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct flow_event *ev;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	ev = bpf_ringbuf_reserve(&flows, sizeof(*ev), 0);
	if (!ev) {
		reserve_failed++;
		return XDP_PASS;
	}
	if (eth->h_proto != bpf_htons(ETH_P_IP) || (void *)(ip + 1) > data_end) {
		discarded++;
		bpf_ringbuf_discard(ev, BPF_RB_NO_WAKEUP);
		return XDP_PASS;
	}
	ev->saddr = ip->saddr;
	ev->daddr = ip->daddr;
	ev->len = data_end - data;
	ev->proto = ip->protocol;
	ev->ttl = ip->ttl;
	ev->seq = ++seq;
	bpf_ringbuf_submit(ev, 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
