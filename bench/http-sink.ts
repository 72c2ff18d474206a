/**
 * A bare HTTP server for the SDK ceiling (forked by bench/sdk-ceiling.ts, so its work is not on the measuring
 * process's CPU): answers every request 200 at once, and a DynamoDB `Query` with a canned page of `argv[2]` member
 * items shaped like the registry's group → connection items (lambdas/core/registry.ts).
 */
import { createServer } from 'node:http';

const pageSize = Number(process.argv[2] ?? 500);
const item = (i: number) => ({
  pk: { S: 'T#bench-a#G#chat:bench' },
  sk: { S: `C#conn-${String(i).padStart(6, '0')}=` },
  type: { S: 'member' },
  connectionId: { S: `conn-${String(i).padStart(6, '0')}=` },
  userId: { S: `u${i}` },
  roles: { L: [{ S: 'member' }] },
  claims: { M: {} },
  ttl: { N: '1893456000' },
});
const queryPage = JSON.stringify({
  Items: Array.from({ length: pageSize }, (_, i) => item(i)),
  Count: pageSize,
  ScannedCount: pageSize,
});

const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    if (String(req.headers['x-amz-target'] ?? '').endsWith('.Query')) {
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
      res.end(queryPage);
      return;
    }
    res.writeHead(200, { 'content-length': '0' });
    res.end();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address !== null && typeof address === 'object') process.send?.({ port: address.port });
});
process.on('disconnect', () => process.exit(0));
