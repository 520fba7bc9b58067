/* Shared includes of the verdict corpus (examples/verdicts, see README.md). */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define __naked __attribute__((naked))
#define __noinline __attribute__((noinline))
#define __used __attribute__((used))

/* A value the verifier cannot know: a byte of the packet, or 0. */
static __always_inline __u32 pkt_byte(struct xdp_md *ctx, int off)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;
	if (data + off + 1 > end)
		return 0;
	return data[off];
}
