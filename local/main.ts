/** `npm start`: runs the local stack until SIGINT or SIGTERM. */

import { ORIGIN_ENTRY } from '../lib/http-api-cors.ts';
import { startLocal } from './runtime.ts';
import { seedTenants } from './seed.ts';

/** `ALLOWED_ORIGINS` as a stage's origin list takes it (lib/http-api-cors.ts); anything else stops the start. */
function originsFrom(text: string): string[] {
  const origins = text.split(/[\s,]+/).filter((o) => o.length > 0);
  const bad = origins.filter((o) => !ORIGIN_ENTRY.test(o));
  if (bad.length > 0) {
    console.error(
      `error: ALLOWED_ORIGINS must list lower-case origins such as http://localhost:5173 (a scheme, a host, a port; no path or trailing /), or https://*, or *; got ${bad.join(' ')}`,
    );
    process.exit(2);
  }
  return origins;
}

const startedAt = Date.now();
console.log('tenantcast local runtime: starting (progress below; requests get 503 until the "ready" line)');
const runtime = await startLocal({
  ...(process.env.DATA_DIR !== undefined && { dataDir: process.env.DATA_DIR }),
  ...(process.env.LOG_LEVEL !== undefined && { functionLogLevel: process.env.LOG_LEVEL }),
  // A front end served elsewhere (its dev server): allowed on the WebSocket and by the HTTP API's CORS.
  ...(process.env.ALLOWED_ORIGINS !== undefined && { extraAllowedOrigins: originsFrom(process.env.ALLOWED_ORIGINS) }),
  // Where `npm run tenants` finds this runtime.
  endpointsFile: '.local/endpoints.json',
}).catch((err: unknown) => {
  if ((err as { code?: string }).code !== 'EADDRINUSE') throw err;
  console.error(
    `error: ${(err as Error).message}: another local stack (or another program) holds the port. Stop it first ` +
      '(Ctrl-C in its terminal, or kill the process listening there), then run npm start again.',
  );
  process.exit(1);
});

// Every tenant the stack serves: the seeded ones, and those a data directory kept (onboarded with the CLI).
const served = await runtime.tenants.list({ schemas: false, onInvalid: () => undefined }).then(
  (tenants) => tenants.map((t) => t.tenantId).sort(),
  () => seedTenants.map((t) => t.tenantId),
);
const seeded = new Set(seedTenants.map((t) => t.tenantId));
/** Under DATA_DIR the tenants served include those onboarded since: which were seeded (with the demo's roles). */
const seededNote = served.some((t) => !seeded.has(t)) ? `seeded ${[...seeded].join(', ')}: ` : '';
const lines = [
  `tenantcast local runtime (stage local, region us-east-1)`,
  `  ops page           ${runtime.url}/ops`,
  `  WebSocket          ${runtime.wsUrl}   (token: ?token=<jwt> or subprotocols ["tenantcast.v1", "<jwt>"])`,
  `  @connections API   ${runtime.url}/@connections/<id>   (SigV4-signed AWS SDK requests only)`,
  `  HTTP API           ${runtime.url}/v1/...   (entities, publish, admin: docs/entities.md; bearer token)`,
  `  dev tokens         POST ${runtime.url}/dev/token  {"tenantId":"acme","userId":"alice","roles":["member"]}`,
  `  JWKS               ${runtime.url}/dev/jwks.json`,
  `  DynamoDB           ${runtime.dynamo.endpoint}  table ${runtime.tableName}`,
  `  SQS                ${runtime.sqs.endpoint}  ${Object.values(runtime.queues)
    .map((q) => q.name)
    .join(', ')} (+ DLQs)`,
  `  functions          ${[...runtime.functions.keys()].join(', ')}`,
  `  tenants            ${served.join(', ')} (${seededNote}roles admin, member, viewer)`,
  'Ctrl-C stops.',
  '',
  `ready in ${((Date.now() - startedAt) / 1000).toFixed(1)} s: demo ${runtime.url}/ (sign in as a seeded user; docs/client.md, "Demo"), ops ${runtime.url}/ops`,
];
console.log(lines.join('\n'));

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping…`);
    runtime.stop().then(
      () => {
        console.log('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        console.error('stop failed', err);
        process.exit(1);
      },
    );
  });
}
