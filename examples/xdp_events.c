// SPDX-License-Identifier: GPL-2.0
/* Emits one ring buffer event per IPv4 packet: the 5-tuple of TCP and UDP
 * packets through bpf_ringbuf_reserve/submit, and a copied header of other
 * protocols through bpf_ringbuf_output. Packets that are not IPv4 are
 * reserved then discarded (bpf_ringbuf_discard), which leaves a record with
 * the discard bit set in the ring. Exercises: BPF_MAP_TYPE_RINGBUF. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct flow_event {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 protocol;
	__u8 kind; /* 1: 5-tuple, 2: other IPv4 */
	__u16 len;
};

struct other_event {
	__u8 kind;
	__u8 protocol;
	__u16 len;
	__u32 saddr;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

SEC("xdp")
int xdp_events(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct udphdr *ports;
	struct flow_event *ev;
	struct other_event other;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || (void *)(ip + 1) > data_end) {
		ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
		if (ev)
			bpf_ringbuf_discard(ev, 0);
		return XDP_PASS;
	}
	if (ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP) {
		/* both headers start with the source and destination ports */
		ports = (void *)(ip + 1);
		if ((void *)(ports + 1) > data_end)
			return XDP_PASS;
		ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
		if (!ev)
			return XDP_PASS;
		ev->saddr = ip->saddr;
		ev->daddr = ip->daddr;
		ev->sport = bpf_ntohs(ports->source);
		ev->dport = bpf_ntohs(ports->dest);
		ev->protocol = ip->protocol;
		ev->kind = 1;
		ev->len = data_end - data;
		bpf_ringbuf_submit(ev, 0);
		return XDP_PASS;
	}
	other.kind = 2;
	other.protocol = ip->protocol;
	other.len = data_end - data;
	other.saddr = ip->saddr;
	bpf_ringbuf_output(&events, &other, sizeof(other), 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
