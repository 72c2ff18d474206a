/**
 * The HTTP API's CORS settings beside the stage's allowed origins: one list for the stack (lib/tenantcast-http-api.ts)
 * and the local HTTP API (local/http-cors.ts), so a header the web client starts sending is allowed, or refused, the
 * same way in both. Plain data: no CDK import, so the local runtime can read it.
 */
export const HTTP_API_CORS = {
  /** Methods browsers may use cross-origin. */
  allowMethods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
  /** Request headers browsers may send cross-origin (`If-Match`: optimistic concurrency of the entity API). */
  allowHeaders: ['authorization', 'content-type', 'if-match'],
  /** Response headers browsers may read cross-origin (`ETag`: an entity's version). */
  exposeHeaders: ['etag'],
  /** How long browsers may keep a preflight's answer. */
  maxAgeSeconds: 3600,
} as const;

/**
 * An entry of a stage's origin list (`auth.allowedOrigins`, `cors.allowedOrigins`, locally `ALLOWED_ORIGINS`): `*`,
 * `https://*` / `http://*`, or a scheme and host (and port) in lower case, as browsers send `Origin`, with no path or
 * trailing `/`. Lower case only, so API Gateway's CORS and the WebSocket authorizer cannot read one entry two ways.
 */
export const ORIGIN_ENTRY = /^(\*|https?:\/\/[^/\sA-Z]+)$/;
