// SPDX-License-Identifier: GPL-2.0
/* A ring buffer producer benchmark: every IPv4 UDP/TCP packet emits one
 * 16-byte event (addresses, ports, length) through bpf_ringbuf_reserve and
 * bpf_ringbuf_submit. The verdict tells whether the event fit: XDP_PASS
 * when it was submitted, XDP_DROP when the ring was full (the benchmark
 * drains the ring before each timed run, and sizes runs to fit in it),
 * XDP_ABORTED for packets it does not parse. The ring holds 16 MiB:
 * 699,050 records of 24 bytes (8-byte header + 16-byte event). */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct event {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u32 len;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24);
} events SEC(".maps");

SEC("xdp")
int ringbuf_event(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct udphdr *ports = (void *)(ip + 1);
	struct event *ev;

	if ((void *)(ports + 1) > data_end)
		return XDP_ABORTED;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_ABORTED;
	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev)
		return XDP_DROP;
	ev->saddr = ip->saddr;
	ev->daddr = ip->daddr;
	ev->sport = bpf_ntohs(ports->source);
	ev->dport = bpf_ntohs(ports->dest);
	ev->len = data_end - data;
	bpf_ringbuf_submit(ev, 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
