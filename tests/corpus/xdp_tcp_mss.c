// SPDX-License-Identifier: GPL-2.0
/* Clamps the MSS option of TCP SYNs to a configured value: walks the TCP
 * options (NOP, EOL, and length-prefixed kinds) in a bounded loop over an
 * offset (the form the kernel verifies without a state explosion), rewrites
 * the MSS in place and fixes the TCP checksum incrementally (RFC 1624).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_OPTS 12

const volatile __u16 mss_max = 1360;

__u16 seen_mss;
__u32 options_walked;
__u32 clamped;

static __always_inline __u16 csum_fold_add(__u16 check, __u16 old, __u16 new)
{
	__u32 sum = (__u16)~check + (__u16)~old + new;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

SEC("xdp")
int xdp_tcp_mss(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct tcphdr *tcp;
	__u32 off = 0, optlen;
	int i;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_TCP || ip->ihl != 5)
		return XDP_PASS;
	tcp = (void *)(ip + 1);
	if ((void *)(tcp + 1) > data_end || !tcp->syn)
		return XDP_PASS;
	optlen = tcp->doff * 4 - sizeof(*tcp);

	for (i = 0; i < MAX_OPTS; i++) {
		__u8 *opt;

		if (off >= optlen || off > 36)
			break;
		opt = (__u8 *)(tcp + 1) + off;
		if ((void *)(opt + 4) > data_end)
			break;
		if (opt[0] == 0)
			break;
		if (opt[0] == 1) {
			off++;
			continue;
		}
		options_walked++;
		if (opt[0] == 2 && opt[1] == 4) {
			__u16 *mssp = (__u16 *)(opt + 2);
			__u16 mss = bpf_ntohs(*mssp);

			seen_mss = mss;
			if (mss > mss_max) {
				__u16 old = *mssp, new = bpf_htons(mss_max);

				*mssp = new;
				tcp->check = csum_fold_add(tcp->check, old, new);
				clamped++;
			}
			break;
		}
		if (opt[1] < 2)
			break;
		off += opt[1];
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
