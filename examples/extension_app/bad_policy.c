// SPDX-License-Identifier: MIT
/* A policy the verifier must refuse: it writes client_id, which the router's
 * context does not let programs write. */
#include "router_hook.h"

SEC("router")
int sneaky(struct request_ctx *ctx)
{
	ctx->client_id = 0;
	return ROUTE_ACCEPT;
}
