// SPDX-License-Identifier: GPL-2.0
/* XDP programs for a bump in the wire (`pybpf xdp attach`, docs/hooks.md).
 *
 * xdp_wire_filter: counts frames by kind in `stats`, drops TCP and UDP
 * frames whose destination port is in `blocked_ports` (a hash a second
 * thread may update while traffic flows), rewrites UDP destination port
 * 7000 to 7001 (the IPv4 UDP checksum is then set to 0: "none"), passes
 * the rest.
 * xdp_pong: answers ICMP echo requests to 10.77.0.99 itself (XDP_TX), the
 * rest passes.
 * xdp_to_port: sends every IPv4 frame out of the device in slot 0 of the
 * devmap `ports` (XDP_REDIRECT), the rest passes.
 * xdp_pass_all: passes every frame (the forwarding benchmark's program). */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define ICMP_ECHOREPLY 0
#define ICMP_ECHO 8

/* The start of an ICMP header (linux/icmp.h pulls in libc's socket headers). */
struct icmp_start {
	__u8 type;
	__u8 code;
	__sum16 checksum;
};

enum { STAT_FRAMES, STAT_UDP, STAT_TCP, STAT_ICMP, STAT_DROPPED, STAT_REWRITTEN, STAT_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u16); /* host byte order */
	__type(value, __u8);
} blocked_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} ports SEC(".maps");

static __always_inline void count(__u32 what)
{
	__u64 *n = bpf_map_lookup_elem(&stats, &what);

	if (n)
		__sync_fetch_and_add(n, 1);
}

SEC("xdp")
int xdp_wire_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	__u16 port;

	count(STAT_FRAMES);
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->ihl != 5)
		return XDP_PASS;
	if (ip->protocol == IPPROTO_ICMP) {
		count(STAT_ICMP);
		return XDP_PASS;
	}
	if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = (void *)(ip + 1);

		if ((void *)(udp + 1) > data_end)
			return XDP_PASS;
		count(STAT_UDP);
		port = bpf_ntohs(udp->dest);
		if (bpf_map_lookup_elem(&blocked_ports, &port)) {
			count(STAT_DROPPED);
			return XDP_DROP;
		}
		if (port == 7000) {
			udp->dest = bpf_htons(7001);
			udp->check = 0;
			count(STAT_REWRITTEN);
		}
		return XDP_PASS;
	}
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = (void *)(ip + 1);

		if ((void *)(tcp + 1) > data_end)
			return XDP_PASS;
		count(STAT_TCP);
		port = bpf_ntohs(tcp->dest);
		if (bpf_map_lookup_elem(&blocked_ports, &port)) {
			count(STAT_DROPPED);
			return XDP_DROP;
		}
	}
	return XDP_PASS;
}

SEC("xdp")
int xdp_pong(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct icmp_start *icmp = (void *)(ip + 1);
	unsigned char mac[ETH_ALEN];
	__u32 addr, sum;

	if ((void *)(icmp + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->ihl != 5 || ip->protocol != IPPROTO_ICMP || icmp->type != ICMP_ECHO)
		return XDP_PASS;
	if (ip->daddr != bpf_htonl(0x0a4d0063)) /* 10.77.0.99 */
		return XDP_PASS;
	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
	addr = ip->daddr;
	ip->daddr = ip->saddr;
	ip->saddr = addr;
	/* Type 8 -> 0: the checksum grows by 0x0800 (RFC 1624). */
	icmp->type = ICMP_ECHOREPLY;
	sum = (__u32)icmp->checksum + bpf_htons(0x0800);
	icmp->checksum = (__u16)(sum + (sum >> 16));
	count(STAT_ICMP);
	return XDP_TX;
}

SEC("xdp")
int xdp_to_port(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	count(STAT_FRAMES);
	return bpf_redirect_map(&ports, 0, XDP_PASS);
}

SEC("xdp")
int xdp_pass_all(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
