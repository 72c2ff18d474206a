/**
 * CORS as API Gateway's HTTP API applies its configuration ("Configure CORS for HTTP APIs in API Gateway"): it answers
 * preflight `OPTIONS` requests itself, whatever the routes, adds the configured headers to every answer of a request
 * with an `Origin` it allows (`originAllowed`, shared with the WebSocket authorizer), and ignores CORS headers the
 * function returns. Written by hand: the rules are API Gateway's, which no library follows.
 */
import type { IncomingMessage } from 'node:http';
import { originAllowed } from '../lambdas/core/authorize.ts';

export interface HttpCorsConfig {
  readonly allowOrigins: readonly string[];
  readonly allowMethods: readonly string[];
  readonly allowHeaders: readonly string[];
  readonly exposeHeaders: readonly string[];
  readonly maxAgeSeconds: number;
}

function allowOrigin(config: HttpCorsConfig, origin: string): string {
  return config.allowOrigins.includes('*') ? '*' : origin;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The answer to a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`), or undefined for others. */
export function preflightHeaders(config: HttpCorsConfig, req: IncomingMessage): Record<string, string> | undefined {
  const origin = header(req, 'origin');
  if (req.method !== 'OPTIONS' || origin === undefined || header(req, 'access-control-request-method') === undefined) {
    return undefined;
  }
  if (!originAllowed(config.allowOrigins, origin)) return {};
  return {
    'access-control-allow-origin': allowOrigin(config, origin),
    'access-control-allow-methods': config.allowMethods.join(','),
    'access-control-allow-headers': config.allowHeaders.join(','),
    'access-control-max-age': String(config.maxAgeSeconds),
  };
}

/** The headers added to the answer of a request that is not a preflight (none without an allowed `Origin`). */
export function responseHeaders(config: HttpCorsConfig, req: IncomingMessage): Record<string, string> {
  const origin = header(req, 'origin');
  if (origin === undefined || !originAllowed(config.allowOrigins, origin)) return {};
  return {
    'access-control-allow-origin': allowOrigin(config, origin),
    ...(config.exposeHeaders.length > 0 && { 'access-control-expose-headers': config.exposeHeaders.join(',') }),
  };
}

/** Whether a header the function returned is a CORS header, which API Gateway ignores when CORS is configured. */
export function isCorsHeader(name: string): boolean {
  return name.toLowerCase().startsWith('access-control-');
}
