// SPDX-License-Identifier: MIT
/* A user-supplied routing policy for examples/extension_app/router.py:
 * clients with a negative score are rejected (and logged); "/api..." goes to
 * route 1, "/static..." to route 2, anything else to route 3. */
#include "router_hook.h"

static int starts_with(__u8 *data, __u8 *end, const char *prefix, int n)
{
	if (data + n > end)
		return 0;
	for (int i = 0; i < n; i++)
		if (data[i] != prefix[i])
			return 0;
	return 1;
}

SEC("router")
int route_request(struct request_ctx *ctx)
{
	__u8 *data = ctx->data, *end = ctx->data_end;

	if (bpf_router_client_score(ctx) < 0) {
		bpf_router_log(ctx, "bad client", 10);
		return ROUTE_REJECT;
	}
	if (starts_with(data, end, "/api", 4))
		ctx->route = 1;
	else if (starts_with(data, end, "/static", 7))
		ctx->route = 2;
	else
		ctx->route = 3;
	return ROUTE_ACCEPT;
}
