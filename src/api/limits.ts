/**
 * Per-node admission control for the client API: at most MAX_CONCURRENT_REQUESTS requests in
 * progress; beyond that a 429 with the error body. Health, readiness and metrics are never refused
 * so probes keep working under load.
 */
import type Koa from 'koa';
import { TooManyRequestsError } from '../errors.js';

const EXEMPT = new Set(['/health', '/ready', '/metrics']);

/** Builds the concurrency-limit middleware; mounted once by the API. */
export function concurrencyLimit(maxConcurrent: number): Koa.Middleware {
  let inProgress = 0;
  return async (ctx, next) => {
    if (EXEMPT.has(ctx.path)) return next();
    if (inProgress >= maxConcurrent) throw new TooManyRequestsError(`more than ${maxConcurrent} requests in progress on this node`);
    inProgress++;
    try {
      await next();
    } finally {
      inProgress--;
    }
  };
}
