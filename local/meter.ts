/**
 * A metering proxy for AWS JSON-protocol stand-ins (DynamoDB here): forwards every request unchanged and counts
 * requests by action (X-Amz-Target) and, for DynamoDB, the capacity units the stand-in reports. It asks dynalite
 * for `ReturnConsumedCapacity: TOTAL` on requests that did not ask for it, and removes the answer again so clients
 * see exactly what they asked for. The benchmark turns these counts into a modeled AWS bill.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { listen, readAll } from './http-util.ts';

export interface MeterCounts {
  readonly requests: Record<string, number>;
  readonly readUnits: number;
  readonly writeUnits: number;
}

export interface Meter {
  readonly endpoint: string;
  counts(): MeterCounts;
  reset(): void;
  close(): Promise<void>;
}

const CAPACITY_ACTIONS = new Set([
  'GetItem',
  'PutItem',
  'UpdateItem',
  'DeleteItem',
  'Query',
  'Scan',
  'BatchGetItem',
  'BatchWriteItem',
]);

interface ConsumedCapacity {
  CapacityUnits?: number;
  ReadCapacityUnits?: number;
  WriteCapacityUnits?: number;
}

const WRITE_ACTIONS = new Set(['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem']);

export async function startMeter(target: string, host = '127.0.0.1'): Promise<Meter> {
  const upstream = new URL(target);
  const requests = new Map<string, number>();
  let readUnits = 0;
  let writeUnits = 0;

  const server: Server = createServer(async (req, res) => {
    let body = await readAll(req);
    const action =
      String(req.headers['x-amz-target'] ?? 'unknown')
        .split('.')
        .pop() ?? 'unknown';
    requests.set(action, (requests.get(action) ?? 0) + 1);

    let injected = false;
    if (CAPACITY_ACTIONS.has(action)) {
      try {
        const parsed = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
        if (parsed.ReturnConsumedCapacity === undefined || parsed.ReturnConsumedCapacity === 'NONE') {
          parsed.ReturnConsumedCapacity = 'TOTAL';
          body = Buffer.from(JSON.stringify(parsed));
          injected = true;
        }
      } catch {
        // Not JSON: forward as is.
      }
    }

    const headers = { ...req.headers, host: upstream.host, 'content-length': String(body.length) };
    const forward = httpRequest(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
      (upstreamRes: IncomingMessage) => {
        const out: Buffer[] = [];
        upstreamRes.on('data', (c: Buffer) => out.push(c));
        upstreamRes.on('end', () => {
          let responseBody = Buffer.concat(out);
          if (CAPACITY_ACTIONS.has(action) && (upstreamRes.statusCode ?? 500) < 300) {
            try {
              const parsed = JSON.parse(responseBody.toString('utf8')) as Record<string, unknown>;
              const consumed = parsed.ConsumedCapacity as ConsumedCapacity | ConsumedCapacity[] | undefined;
              for (const c of Array.isArray(consumed) ? consumed : consumed ? [consumed] : []) {
                const units = c.CapacityUnits ?? 0;
                if (WRITE_ACTIONS.has(action)) writeUnits += c.WriteCapacityUnits ?? units;
                else readUnits += c.ReadCapacityUnits ?? units;
              }
              if (injected) {
                delete parsed.ConsumedCapacity;
                responseBody = Buffer.from(JSON.stringify(parsed));
              }
            } catch {
              // Leave the body alone.
            }
          }
          const responseHeaders: Record<string, string | string[] | undefined> = {
            ...upstreamRes.headers,
            'content-length': String(responseBody.length),
          };
          // The body changed, so dynalite's CRC32 of the original would no longer match.
          delete responseHeaders['x-amz-crc32'];
          res.writeHead(upstreamRes.statusCode ?? 500, responseHeaders);
          res.end(responseBody);
        });
      },
    );
    forward.on('error', (err) => {
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ __type: 'ServiceUnavailable', message: String(err) }));
    });
    forward.end(body);
  });
  server.keepAliveTimeout = 60_000;

  const { port } = await listen(server, { host, name: 'meter' });
  return {
    endpoint: `http://${host}:${port}`,
    counts: () => ({ requests: Object.fromEntries(requests), readUnits, writeUnits }),
    reset: () => {
      requests.clear();
      readUnits = 0;
      writeUnits = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
