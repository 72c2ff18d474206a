import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  createOpsHandler,
  MetricsCollector,
  parseEmf,
  percentile,
  refusalsOf,
  statusText,
  windowLabel,
} from './ops.ts';

/** An EMF line as Powertools Metrics writes it. */
function emf(
  metrics: Record<string, number | number[]>,
  extra: Record<string, unknown> = {},
  units: Record<string, string> = {},
) {
  return JSON.stringify({
    _aws: {
      Timestamp: 1_700_000_000_000,
      CloudWatchMetrics: [
        {
          Namespace: 'tenantcast',
          Dimensions: [['service']],
          Metrics: Object.keys(metrics).map((Name) => ({ Name, Unit: units[Name] ?? 'Count' })),
        },
      ],
    },
    service: 'broadcaster',
    ...metrics,
    ...extra,
  });
}

describe('parseEmf', () => {
  it('reads each metric of a line with its unit, dimension values, values and tenant property', () => {
    const parsed = parseEmf(
      emf({ Posts: 3, DeliveryLatency: [12, 40] }, { tenantId: 'acme' }, { DeliveryLatency: 'Milliseconds' }),
    );
    expect(parsed).toEqual([
      {
        namespace: 'tenantcast',
        name: 'Posts',
        unit: 'Count',
        dimensions: { service: 'broadcaster' },
        values: [3],
        timestamp: 1_700_000_000_000,
        tenantId: 'acme',
      },
      {
        namespace: 'tenantcast',
        name: 'DeliveryLatency',
        unit: 'Milliseconds',
        dimensions: { service: 'broadcaster' },
        values: [12, 40],
        timestamp: 1_700_000_000_000,
        tenantId: 'acme',
      },
    ]);
  });

  it('ignores plain text, ordinary JSON log lines and broken JSON', () => {
    expect(parseEmf('Task timed out')).toBeUndefined();
    expect(parseEmf(JSON.stringify({ level: 'INFO', message: 'delivered', CloudWatchMetrics: 1 }))).toBeUndefined();
    expect(parseEmf('{"_aws":{"CloudWatchMetrics":[')).toBeUndefined();
  });

  it('makes one entry per dimension set of a directive', () => {
    const line = JSON.stringify({
      _aws: {
        Timestamp: 1,
        CloudWatchMetrics: [
          { Namespace: 'n', Dimensions: [['service'], ['service', 'route']], Metrics: [{ Name: 'M' }] },
        ],
      },
      service: 'message',
      route: 'publish',
      M: 1,
    });
    expect(parseEmf(line)?.map((m) => m.dimensions)).toEqual([
      { service: 'message' },
      { service: 'message', route: 'publish' },
    ]);
  });
});

describe('percentile', () => {
  it('takes the nearest rank of sorted values', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 99)).toBe(99);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeUndefined();
  });
});

describe('MetricsCollector', () => {
  it('sums counts per series and per tenant, and keeps time buckets', () => {
    let now = 10_000;
    const collector = new MetricsCollector({ bucketMs: 1000, buckets: 5, now: () => now });
    collector.ingest(emf({ Posts: 2 }, { tenantId: 'acme' }));
    now += 1000;
    collector.ingest(emf({ Posts: 3 }, { tenantId: 'globex' }));
    collector.ingest(emf({ Posts: 1 }, { tenantId: 'acme' }));
    const [posts] = collector.snapshot();
    expect(posts).toMatchObject({
      name: 'Posts',
      total: { count: 3, sum: 6 },
      window: { count: 3, sum: 6 },
      buckets: [
        { start: 10_000, count: 1, sum: 2 },
        { start: 11_000, count: 2, sum: 4 },
      ],
      tenants: { acme: 3, globex: 3 },
    });
  });

  it('gives percentiles of the raw values in the window', () => {
    const collector = new MetricsCollector();
    const latencies = Array.from({ length: 200 }, (_, i) => i + 1);
    collector.ingest(emf({ DeliveryLatency: latencies.slice(0, 99) }, {}, { DeliveryLatency: 'Milliseconds' }));
    collector.ingest(emf({ DeliveryLatency: latencies.slice(99) }, {}, { DeliveryLatency: 'Milliseconds' }));
    expect(collector.snapshot()[0]?.window).toEqual({ count: 200, sum: 20_100, min: 1, max: 200, p50: 100, p99: 198 });
  });

  it('drops buckets older than the window from window stats, but not from totals', () => {
    let now = 0;
    const collector = new MetricsCollector({ bucketMs: 1000, buckets: 3, now: () => now });
    collector.ingest(emf({ FramesIn: 5 }));
    now = 10_000;
    collector.ingest(emf({ FramesIn: 1 }));
    expect(collector.snapshot()[0]).toMatchObject({ total: { sum: 6 }, window: { sum: 1 }, buckets: [{ sum: 1 }] });
  });

  it('keeps series with different dimension values apart', () => {
    const collector = new MetricsCollector();
    collector.ingest(emf({ RecordsIn: 1 }));
    collector.ingest(emf({ RecordsIn: 4 }, { service: 'fanout' }));
    expect(collector.snapshot().map((s) => [s.dimensions.service, s.total.sum])).toEqual([
      ['broadcaster', 1],
      ['fanout', 4],
    ]);
  });

  it('counts only the lines that were EMF', () => {
    const collector = new MetricsCollector();
    expect(collector.ingest('{"level":"INFO","message":"connected"}')).toBe(false);
    expect(collector.ingest(emf({ ConnectionsOpened: 1 }))).toBe(true);
    expect(collector.emfLines).toBe(1);
  });
});

describe('what the ops page says', () => {
  it('names the window its sums and percentiles cover', () => {
    expect(new MetricsCollector().windowMs).toBe(300_000);
    expect(windowLabel(new MetricsCollector().windowMs)).toBe('last 5 min');
    expect(windowLabel(new MetricsCollector({ bucketMs: 1000, buckets: 30 }).windowMs)).toBe('last 30 s');
  });

  it("lists the HTTP API's and the gateway's refusals by status, not their successes", () => {
    expect(refusalsOf({ 200: 9, 409: 2, 401: 1, 403: 3 }, { 403: 1, 429: 0 })).toEqual([
      { source: 'HTTP API', status: 401, count: 1 },
      { source: 'HTTP API', status: 403, count: 3 },
      { source: 'HTTP API', status: 409, count: 2 },
      { source: 'WebSocket handshakes', status: 403, count: 1 },
    ]);
  });

  it('says since when the stack is unreachable, and from when the figures shown are', () => {
    const at = (time: string) => Date.parse(`2026-12-02T${time}Z`);
    expect(statusText(at('04:00:00'), undefined, '')).toBe('Updated 04:00:00 UTC.');
    expect(statusText(at('04:00:00'), at('04:00:01'), 'TypeError: Failed to fetch')).toBe(
      'Stack unreachable since 04:00:01 UTC (TypeError: Failed to fetch); the figures below are from 04:00:00 UTC.',
    );
    expect(statusText(undefined, at('04:00:01'), 'HTTP 502')).toContain('from none yet');
  });
});

describe('the ops HTTP handler', () => {
  let server: Server;
  let base: string;
  const collector = new MetricsCollector();

  beforeAll(async () => {
    collector.ingest(emf({ MessagesIn: 2 }, { tenantId: 'acme' }));
    const handler = createOpsHandler(collector, {
      functions: new Map([['message', { invocations: 4, errors: 1, durationMs: 10 }]]),
      httpApi: { stats: { 200: 5, 401: 1, 403: 2, 409: 1 } },
    });
    server = createServer(async (req, res) => {
      if (!(await handler(req, res))) {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('serves a self-refreshing HTML page at /ops', async () => {
    const res = await fetch(`${base}/ops`);
    expect(res.headers.get('content-type')).toContain('text/html');
    const html = await res.text();
    expect(html).toContain('/ops/metrics.json');
    expect(html).toContain('setInterval(refresh, 1000)');
    expect(html).not.toContain('<th>total</th>');
    expect(html).toContain('<th>count, <span class="window">last 5 min</span></th>');
    // The page's script (with statusText embedded) is valid JavaScript and shows when the stack stops answering.
    const script = /<script>([\s\S]*)<\/script>/.exec(html)?.[1] ?? '';
    expect(() => new Function(script)).not.toThrow();
    expect(script).toContain('Stack unreachable since');
  });

  it('serves the metrics and function counters as JSON', async () => {
    const body = (await (await fetch(`${base}/ops/metrics.json`)).json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      metrics: [{ name: 'MessagesIn', total: { sum: 2 }, tenants: { acme: 2 } }],
      functions: [{ name: 'message', invocations: 4, errors: 1, avgDurationMs: 2.5 }],
      queues: [],
      windowMs: 300_000,
      windowLabel: 'last 5 min',
      refusals: [
        { source: 'HTTP API', status: 401, count: 1 },
        { source: 'HTTP API', status: 403, count: 2 },
        { source: 'HTTP API', status: 409, count: 1 },
      ],
    });
  });

  it('leaves other paths and methods to the next handler', async () => {
    expect((await fetch(`${base}/opsx`)).status).toBe(404);
    expect((await fetch(`${base}/ops`, { method: 'POST' })).status).toBe(404);
  });
});
