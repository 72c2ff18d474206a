/**
 * Metering for the DynamoDB stand-in: counts requests by action (X-Amz-Target) and the capacity units dynalite
 * reports. It asks dynalite for `ReturnConsumedCapacity: TOTAL` on requests that did not ask for it, and removes the
 * answer again so clients see exactly what they asked for. It wraps dynalite's own request handler (no proxy hop:
 * every HTTP round trip costs measurable main-thread time here). The benchmark turns the counts into a modeled bill.
 */
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';

export interface MeterCounts {
  readonly requests: Record<string, number>;
  readonly readUnits: number;
  readonly writeUnits: number;
  /**
   * Capacity units by action and item kind: the partition key with its variable parts (tenant, group, connection
   * ids) replaced by `*`, e.g. `PutItem T#*#G#*#H` (a history item). Where the bill comes from.
   */
  readonly unitsByKind: Record<string, number>;
}

/** `T#acme#G#chat:x#H` → `T#*#G#*#H`: upper-case key markers stay, values become `*`. */
export function itemKindOf(pk: string): string {
  return pk
    .split('#')
    .map((part) => (/^[A-Z]{1,8}$/.test(part) ? part : '*'))
    .join('#');
}

/** The partition key a DynamoDB request names (Key, Item, or the first item of a batch), if a string. */
function partitionKeyOf(request: Record<string, unknown>): string | undefined {
  const pkOf = (item: unknown) => {
    const pk = (item as { pk?: { S?: unknown } } | undefined)?.pk?.S;
    return typeof pk === 'string' ? pk : undefined;
  };
  const direct = pkOf(request.Key) ?? pkOf(request.Item);
  if (direct !== undefined) return direct;
  const values = request.ExpressionAttributeValues as Record<string, { S?: unknown }> | undefined;
  if (typeof request.KeyConditionExpression === 'string' && values !== undefined) {
    const first = Object.values(values).find((v) => typeof v?.S === 'string');
    if (typeof first?.S === 'string') return first.S;
  }
  const batch = (request.RequestItems ?? {}) as Record<string, unknown>;
  for (const table of Object.values(batch)) {
    const first = Array.isArray(table)
      ? (table[0] as { PutRequest?: { Item?: unknown }; DeleteRequest?: { Key?: unknown } } | undefined)
      : (table as { Keys?: unknown[] }).Keys?.[0];
    const pk =
      pkOf((first as { PutRequest?: { Item?: unknown } })?.PutRequest?.Item) ??
      pkOf((first as { DeleteRequest?: { Key?: unknown } })?.DeleteRequest?.Key) ??
      pkOf(first);
    if (pk !== undefined) return pk;
  }
  return undefined;
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

/**
 * Meters a DynamoDB stand-in's own HTTP server (dynalite) in place: its request handler sees each request with
 * `ReturnConsumedCapacity: TOTAL` added where the client did not ask for it, and the answer is given back without it.
 * No extra hop: clients keep the stand-in's endpoint. Requests whose user agent contains `skipUserAgent` (the
 * runtime's own: its TTL sweeper stands in for DynamoDB TTL, which is free) are not counted. `reset` zeroes the
 * counts; `close` restores the handler.
 */
export function attachMeter(server: Server, endpoint: string, skipUserAgent?: string): Meter {
  const requests = new Map<string, number>();
  let readUnits = 0;
  let writeUnits = 0;
  const unitsByKind = new Map<string, number>();
  const original = server.listeners('request') as RequestListener[];
  server.removeAllListeners('request');

  const metered: RequestListener = (req, res) => {
    const agent = `${req.headers['x-amz-user-agent'] ?? ''} ${req.headers['user-agent'] ?? ''}`;
    if (skipUserAgent !== undefined && agent.includes(skipUserAgent)) {
      for (const listener of original) listener.call(server, req, res);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      const action =
        String(req.headers['x-amz-target'] ?? 'unknown')
          .split('.')
          .pop() ?? 'unknown';
      requests.set(action, (requests.get(action) ?? 0) + 1);
      let injected = false;
      let kind = action;
      if (CAPACITY_ACTIONS.has(action)) {
        try {
          const parsed = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
          const pk = partitionKeyOf(parsed);
          if (pk !== undefined) kind = `${action} ${itemKindOf(pk)}`;
          if (parsed.ReturnConsumedCapacity === undefined || parsed.ReturnConsumedCapacity === 'NONE') {
            parsed.ReturnConsumedCapacity = 'TOTAL';
            body = Buffer.from(JSON.stringify(parsed));
            injected = true;
          }
        } catch {
          // Not JSON: the stand-in answers it as it would.
        }
      }
      // The stand-in reads the (possibly rewritten) body from this stream, with the request's headers.
      const replay = Object.assign(Readable.from([body]), {
        headers: { ...req.headers, 'content-length': String(body.length) },
        method: req.method,
        url: req.url,
        httpVersion: req.httpVersion,
        socket: req.socket,
      }) as unknown as IncomingMessage;
      const end = res.end.bind(res) as (chunk?: unknown) => ServerResponse;
      res.end = ((chunk?: unknown) => {
        if (typeof chunk !== 'string' || !CAPACITY_ACTIONS.has(action) || res.statusCode >= 300) return end(chunk);
        let out = chunk;
        try {
          const parsed = JSON.parse(chunk) as Record<string, unknown>;
          const consumed = parsed.ConsumedCapacity as ConsumedCapacity | ConsumedCapacity[] | undefined;
          for (const c of Array.isArray(consumed) ? consumed : consumed ? [consumed] : []) {
            const units = c.CapacityUnits ?? 0;
            const counted = WRITE_ACTIONS.has(action)
              ? (c.WriteCapacityUnits ?? units)
              : (c.ReadCapacityUnits ?? units);
            if (WRITE_ACTIONS.has(action)) writeUnits += counted;
            else readUnits += counted;
            unitsByKind.set(kind, (unitsByKind.get(kind) ?? 0) + counted);
          }
          if (injected) {
            delete parsed.ConsumedCapacity;
            out = JSON.stringify(parsed);
            res.setHeader('Content-Length', Buffer.byteLength(out, 'utf8'));
            // The body changed, so the stand-in's CRC32 of the original would no longer match.
            res.removeHeader('x-amz-crc32');
          }
        } catch {
          // Leave the answer alone.
        }
        return end(out);
      }) as typeof res.end;
      for (const listener of original) listener.call(server, replay, res);
    });
  };
  server.on('request', metered);

  return {
    endpoint,
    counts: () => ({
      requests: Object.fromEntries(requests),
      readUnits,
      writeUnits,
      unitsByKind: Object.fromEntries(unitsByKind),
    }),
    reset: () => {
      requests.clear();
      unitsByKind.clear();
      readUnits = 0;
      writeUnits = 0;
    },
    close: async () => {
      server.off('request', metered);
      for (const listener of original) server.on('request', listener);
    },
  };
}
