/**
 * The local operations page (`GET /ops`, data at `GET /ops/metrics.json`): the functions' own metrics, read from
 * the CloudWatch Embedded Metric Format lines they write to stdout (what CloudWatch would extract), next to what AWS
 * would show for the managed services: gateway counters, queue depths, and function invocations/errors/durations.
 *
 * Written by hand: CloudWatch extracts EMF in the service; there is no local library for it. The collector keeps
 * time buckets per metric series (namespace + metric + dimension values) with counts, sums and raw values for
 * percentiles, and per-tenant sums from the `tenantId` EMF property (docs/operations.md).
 *
 * Local only and unauthenticated: anyone who can reach the runtime's port reads every tenant's metrics here (the
 * deployed stacks have no such page; operators read CloudWatch, behind IAM). A request carrying a foreign `Origin`
 * (another site's page fetching it) is refused with 403, so no other site can read it through a visitor's browser.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { GatewayStats, HttpHandler } from './gateway.ts';

/** One metric of one EMF line. */
export interface EmfMetric {
  readonly namespace: string;
  readonly name: string;
  readonly unit: string;
  readonly dimensions: Readonly<Record<string, string>>;
  readonly values: readonly number[];
  readonly timestamp: number;
  /** The line's `tenantId` property, when it has one. */
  readonly tenantId: string | undefined;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The metrics of one EMF line, one entry per metric and dimension set; undefined for any other line (plain logs,
 * invalid JSON, JSON without `_aws.CloudWatchMetrics`).
 */
export function parseEmf(line: string): EmfMetric[] | undefined {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{') || !trimmed.includes('"CloudWatchMetrics"')) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(trimmed);
  } catch {
    return undefined;
  }
  if (!isObject(doc) || !isObject(doc._aws) || !Array.isArray(doc._aws.CloudWatchMetrics)) return undefined;
  const timestamp = typeof doc._aws.Timestamp === 'number' ? doc._aws.Timestamp : Date.now();
  const tenantId = typeof doc.tenantId === 'string' ? doc.tenantId : undefined;
  const out: EmfMetric[] = [];
  for (const directive of doc._aws.CloudWatchMetrics) {
    if (!isObject(directive) || !Array.isArray(directive.Metrics)) continue;
    const namespace = typeof directive.Namespace === 'string' ? directive.Namespace : '';
    const sets: unknown[] =
      Array.isArray(directive.Dimensions) && directive.Dimensions.length > 0 ? directive.Dimensions : [[]];
    for (const metric of directive.Metrics) {
      if (!isObject(metric) || typeof metric.Name !== 'string') continue;
      const raw = doc[metric.Name];
      const values = (Array.isArray(raw) ? raw : [raw]).filter((v): v is number => typeof v === 'number');
      if (values.length === 0) continue;
      for (const set of sets) {
        const dimensions: Record<string, string> = {};
        for (const key of Array.isArray(set) ? set : []) {
          if (typeof key === 'string') dimensions[key] = String(doc[key] ?? '');
        }
        out.push({
          namespace,
          name: metric.Name,
          unit: typeof metric.Unit === 'string' ? metric.Unit : 'None',
          dimensions,
          values,
          timestamp,
          tenantId,
        });
      }
    }
  }
  return out;
}

/** Nearest-rank percentile of sorted values; undefined when there are none. */
export function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1];
}

interface Bucket {
  readonly start: number;
  count: number;
  sum: number;
  values: number[];
}

interface Series {
  readonly namespace: string;
  readonly name: string;
  readonly unit: string;
  readonly dimensions: Readonly<Record<string, string>>;
  count: number;
  sum: number;
  buckets: Bucket[];
  tenants: Map<string, number>;
}

/** A summary of a set of values: how many, their sum, and (for latency-like units) percentiles. */
export interface Stat {
  readonly count: number;
  readonly sum: number;
  readonly min?: number;
  readonly max?: number;
  readonly p50?: number;
  readonly p99?: number;
}

export interface SeriesSnapshot {
  readonly namespace: string;
  readonly name: string;
  readonly unit: string;
  readonly dimensions: Readonly<Record<string, string>>;
  /** Since the runtime started. */
  readonly total: { readonly count: number; readonly sum: number };
  /** Over the last `windowMs`, with percentiles from the raw values. */
  readonly window: Stat;
  /** Per bucket (oldest first), the sum of values. */
  readonly buckets: readonly { readonly start: number; readonly count: number; readonly sum: number }[];
  /** Sum per `tenantId` property, since the start. */
  readonly tenants: Readonly<Record<string, number>>;
}

export interface MetricsCollectorOptions {
  /** @default 5000 */
  readonly bucketMs?: number;
  /** Buckets kept (and the window of `window` stats). @default 60 */
  readonly buckets?: number;
  /** Raw values kept per bucket for percentiles. @default 10 000 */
  readonly valuesPerBucket?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

/** Aggregates EMF metrics into time buckets per series. */
export class MetricsCollector {
  readonly bucketMs: number;
  private readonly maxBuckets: number;
  private readonly valuesPerBucket: number;
  private readonly now: () => number;
  private readonly series = new Map<string, Series>();
  /** Lines that were EMF. */
  emfLines = 0;

  /** What `window` stats cover: every kept bucket. */
  get windowMs(): number {
    return this.bucketMs * this.maxBuckets;
  }

  constructor(options: MetricsCollectorOptions = {}) {
    this.bucketMs = options.bucketMs ?? 5000;
    this.maxBuckets = options.buckets ?? 60;
    this.valuesPerBucket = options.valuesPerBucket ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** Feeds one log line of a function; returns whether it was EMF. */
  ingest(line: string): boolean {
    const metrics = parseEmf(line);
    if (metrics === undefined) return false;
    this.emfLines++;
    for (const metric of metrics) this.add(metric);
    return true;
  }

  add(metric: EmfMetric): void {
    const dims = Object.entries(metric.dimensions).sort(([a], [b]) => a.localeCompare(b));
    const key = JSON.stringify([metric.namespace, metric.name, dims]);
    let series = this.series.get(key);
    if (series === undefined) {
      series = {
        namespace: metric.namespace,
        name: metric.name,
        unit: metric.unit,
        dimensions: Object.fromEntries(dims),
        count: 0,
        sum: 0,
        buckets: [],
        tenants: new Map(),
      };
      this.series.set(key, series);
    }
    // Buckets by arrival time (the line's timestamp may come from another clock in a real pipeline).
    const start = Math.floor(this.now() / this.bucketMs) * this.bucketMs;
    let bucket = series.buckets.at(-1);
    if (bucket === undefined || bucket.start !== start) {
      bucket = { start, count: 0, sum: 0, values: [] };
      series.buckets.push(bucket);
    }
    const oldest = start - (this.maxBuckets - 1) * this.bucketMs;
    while ((series.buckets[0]?.start ?? oldest) < oldest) series.buckets.shift();
    for (const value of metric.values) {
      series.count++;
      series.sum += value;
      bucket.count++;
      bucket.sum += value;
      if (bucket.values.length < this.valuesPerBucket) bucket.values.push(value);
      if (metric.tenantId !== undefined) {
        series.tenants.set(metric.tenantId, (series.tenants.get(metric.tenantId) ?? 0) + value);
      }
    }
  }

  snapshot(): SeriesSnapshot[] {
    const oldest = Math.floor(this.now() / this.bucketMs) * this.bucketMs - (this.maxBuckets - 1) * this.bucketMs;
    return [...this.series.values()]
      .map((s) => {
        const buckets = s.buckets.filter((b) => b.start >= oldest);
        const values = buckets.flatMap((b) => b.values).sort((a, b) => a - b);
        const count = buckets.reduce((n, b) => n + b.count, 0);
        const sum = buckets.reduce((n, b) => n + b.sum, 0);
        const window: Stat =
          values.length === 0
            ? { count, sum }
            : {
                count,
                sum,
                min: values[0] as number,
                max: values.at(-1) as number,
                p50: percentile(values, 50) as number,
                p99: percentile(values, 99) as number,
              };
        return {
          namespace: s.namespace,
          name: s.name,
          unit: s.unit,
          dimensions: s.dimensions,
          total: { count: s.count, sum: s.sum },
          window,
          buckets: buckets.map(({ start, count: c, sum: t }) => ({ start, count: c, sum: t })),
          tenants: Object.fromEntries(s.tenants),
        };
      })
      .sort(
        (a, b) =>
          a.name.localeCompare(b.name) || JSON.stringify(a.dimensions).localeCompare(JSON.stringify(b.dimensions)),
      );
  }
}

/** "last 5 min", "last 30 s": the window of the collector's `window` stats, as the page labels its columns. */
export function windowLabel(ms: number): string {
  if (ms % 60_000 === 0) return `last ${ms / 60_000} min`;
  return `last ${Math.round(ms / 1000)} s`;
}

/** One refusal count on the page: who refused, with which HTTP status, how often since the runtime started. */
export interface Refusal {
  readonly source: 'HTTP API' | 'WebSocket handshakes';
  readonly status: number;
  readonly count: number;
}

/** The 4xx/5xx answers of the HTTP API and the gateway's handshakes (401 UNAUTHORIZED, 403, 409 CONFLICT, 429 …). */
export function refusalsOf(
  httpApi: Readonly<Record<number, number>> | undefined,
  handshakes: Readonly<Record<number, number>> | undefined,
): Refusal[] {
  const list = (source: Refusal['source'], byStatus: Readonly<Record<number, number>> = {}): Refusal[] =>
    Object.entries(byStatus)
      .map(([status, count]) => ({ source, status: Number(status), count }))
      .filter((r) => r.status >= 400 && r.count > 0)
      .sort((a, b) => a.status - b.status);
  return [...list('HTTP API', httpApi), ...list('WebSocket handshakes', handshakes)];
}

/**
 * The page's status line after each refresh: when the figures are from, or since when the stack has not answered
 * (so a page left open never looks current while the stack is down). Runs in the page too (embedded with
 * `toString()`), so it uses nothing but its arguments.
 */
export function statusText(lastOkAt: number | undefined, failingSince: number | undefined, error: string): string {
  const lastOk = lastOkAt === undefined ? 'none yet' : `${new Date(lastOkAt).toISOString().slice(11, 19)} UTC`;
  if (failingSince === undefined) return `Updated ${lastOk}.`;
  const since = `${new Date(failingSince).toISOString().slice(11, 19)} UTC`;
  return `Stack unreachable since ${since} (${error}); the figures below are from ${lastOk}.`;
}

/** What the ops page reads besides EMF: the stand-ins' own counters (what AWS's service metrics would show). */
export interface OpsSources {
  readonly gateway?: { readonly stats: Readonly<GatewayStats>; readonly connections: { readonly size: number } };
  /** The local HTTP API's answers by status (local/http-api.ts `stats`). */
  readonly httpApi?: { readonly stats: Readonly<Record<number, number>> };
  readonly functions?: ReadonlyMap<
    string,
    { readonly invocations: number; readonly errors: number; readonly durationMs: number }
  >;
  readonly sqs?: SQSClient;
  readonly queues?: Readonly<Record<string, { readonly url: string; readonly dlqUrl: string }>>;
}

export interface QueueDepth {
  readonly name: string;
  /** ApproximateNumberOfMessages (local-aws-sqs counts in-flight messages here too). */
  readonly messages: number;
  readonly inFlight: number;
  readonly dlqMessages: number;
}

export interface OpsSnapshot {
  readonly now: number;
  readonly bucketMs: number;
  /** The window of each metric's `window` stats, and its label ("last 5 min"). */
  readonly windowMs: number;
  readonly windowLabel: string;
  /** 4xx/5xx answers by source and status, since the runtime started. */
  readonly refusals: readonly Refusal[];
  readonly emfLines: number;
  readonly metrics: readonly SeriesSnapshot[];
  readonly gateway: (GatewayStats & { readonly open: number }) | undefined;
  readonly queues: readonly QueueDepth[];
  readonly functions: readonly {
    readonly name: string;
    readonly invocations: number;
    readonly errors: number;
    readonly avgDurationMs: number;
  }[];
}

async function depthOf(sqs: SQSClient, url: string): Promise<{ messages: number; inFlight: number }> {
  const out = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return {
    messages: Number(out.Attributes?.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0),
  };
}

/** Everything the page shows, at this moment. */
export async function opsSnapshot(collector: MetricsCollector, sources: OpsSources): Promise<OpsSnapshot> {
  const { sqs, queues } = sources;
  const queueDepths =
    sqs === undefined || queues === undefined
      ? []
      : await Promise.all(
          Object.entries(queues).map(async ([name, q]) => {
            const [main, dlq] = await Promise.all([depthOf(sqs, q.url), depthOf(sqs, q.dlqUrl)]);
            return { name, messages: main.messages, inFlight: main.inFlight, dlqMessages: dlq.messages };
          }),
        );
  return {
    now: Date.now(),
    bucketMs: collector.bucketMs,
    windowMs: collector.windowMs,
    windowLabel: windowLabel(collector.windowMs),
    refusals: refusalsOf(sources.httpApi?.stats, sources.gateway?.stats.rejectedHandshakesByStatus),
    emfLines: collector.emfLines,
    metrics: collector.snapshot(),
    gateway: sources.gateway && { ...sources.gateway.stats, open: sources.gateway.connections.size },
    queues: queueDepths,
    functions: [...(sources.functions ?? new Map())].map(([name, f]) => ({
      name,
      invocations: f.invocations,
      errors: f.errors,
      avgDurationMs: f.invocations === 0 ? 0 : Math.round((f.durationMs / f.invocations) * 10) / 10,
    })),
  };
}

/** `GET /ops` (the page) and `GET /ops/metrics.json` (its data), for `gateway.addHttpHandler`. */
export function createOpsHandler(collector: MetricsCollector, sources: OpsSources): HttpHandler {
  return async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' || (path !== '/ops' && path !== '/ops/metrics.json')) return false;
    if (isForeignOrigin(req)) {
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ code: 'FORBIDDEN', message: 'the ops page is not served to other origins' }));
      return true;
    }
    if (path === '/ops') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(OPS_PAGE);
      return true;
    }
    try {
      const body = JSON.stringify(await opsSnapshot(collector, sources));
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(body);
    } catch (err) {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ code: 'INTERNAL', message: String(err) }));
    }
    return true;
  };
}

/** Whether the request carries an `Origin` other than the page's own (`http://<Host>`). */
export function isForeignOrigin(req: Pick<IncomingMessage, 'headers'>): boolean {
  const origin = req.headers.origin;
  return origin !== undefined && origin !== `http://${req.headers.host ?? ''}`;
}

/** The page: plain HTML and a script polling /ops/metrics.json every second. */
const OPS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tenantcast local operations</title>
<link rel="icon" href="data:,">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; }
  h1 { font-size: 1.3rem; } h2 { font-size: 1.05rem; margin-top: 1.5rem; }
  table { border-collapse: collapse; margin-top: .4rem; }
  th, td { padding: .2rem .6rem; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }
  th:first-child, td:first-child { text-align: left; }
  .spark { font-family: monospace; letter-spacing: -1px; color: #36c; }
  .muted { color: #888; }
  #status.down { color: #fff; background: #b3261e; padding: .1rem .4rem; border-radius: 4px; }
  body.stale table { opacity: .45; }
</style>
</head>
<body>
<h1>tenantcast local operations</h1>
<p class="muted">Live from the functions' EMF output and the local stand-ins; refreshed every second.</p>
<p><span id="status">Loading…</span></p>
<p><strong>Local only, unauthenticated:</strong> anyone who can reach this port can read every tenant's metrics here. Deployed stages have no such page (use CloudWatch).</p>
<h2>Function metrics (EMF), <span class="window">last 5 min</span></h2>
<p class="muted">Count and sum of the values in the window (no sum for latencies); p50/p99/max of the raw values in the window; trend per <span id="bucket">5 s</span>.</p>
<table id="metrics"><thead><tr><th>metric</th><th>dimensions</th><th>unit</th><th>count, <span class="window">last 5 min</span></th><th>sum, <span class="window">last 5 min</span></th><th>p50</th><th>p99</th><th>max</th><th>trend</th><th>per tenant (sum since start)</th></tr></thead><tbody></tbody></table>
<h2>Refusals by status (since start)</h2>
<p class="muted">The HTTP API's 4xx/5xx answers (401 UNAUTHORIZED, 403 FORBIDDEN, 409 CONFLICT, 429 …) and the WebSocket handshakes the gateway refused.</p>
<table id="refusals"><thead><tr><th>source</th><th>status</th><th>count</th></tr></thead><tbody></tbody></table>
<h2>Gateway (since start)</h2>
<table id="gateway"><tbody></tbody></table>
<h2>Queues</h2>
<table id="queues"><thead><tr><th>queue</th><th>messages</th><th>in flight</th><th>dead-letter</th></tr></thead><tbody></tbody></table>
<h2>Functions (since start)</h2>
<table id="functions"><thead><tr><th>function</th><th>invocations</th><th>errors</th><th>avg duration (ms)</th></tr></thead><tbody></tbody></table>
<script>
const esc = (v) => String(v ?? '').replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
const num = (v) => (v === undefined ? '' : Math.round(v * 10) / 10);
const bars = '\\u2581\\u2582\\u2583\\u2584\\u2585\\u2586\\u2587\\u2588';
function spark(buckets) {
  const max = Math.max(1, ...buckets.map((b) => b.sum));
  return buckets.map((b) => bars[Math.min(7, Math.floor((b.sum / max) * 7))]).join('');
}
function rows(id, list) { document.querySelector('#' + id + ' tbody').innerHTML = list.join(''); }
const latency = (unit) => ['Milliseconds', 'Seconds', 'Microseconds'].includes(unit);
const statusText = ${statusText.toString()};
let lastOkAt;
let failingSince;
let lastError = '';
async function refresh() {
  try {
    const r = await fetch('/ops/metrics.json', { cache: 'no-store' });
    if (!r.ok) throw new Error('HTTP ' + r.status);
    const d = await r.json();
    for (const el of document.querySelectorAll('.window')) el.textContent = d.windowLabel;
    document.getElementById('bucket').textContent = d.bucketMs / 1000 + ' s';
    rows('metrics', d.metrics.map((m) => '<tr><td>' + esc(m.name) + '</td><td>' +
      esc(Object.entries(m.dimensions).map(([k, v]) => k + '=' + v).join(' ')) + '</td><td>' + esc(m.unit) +
      '</td><td>' + m.window.count + '</td><td>' + (latency(m.unit) ? '' : num(m.window.sum)) + '</td><td>' + num(m.window.p50) +
      '</td><td>' + num(m.window.p99) + '</td><td>' + num(m.window.max) + '</td><td class="spark">' +
      spark(m.buckets) + '</td><td>' + esc(Object.entries(m.tenants).map(([k, v]) => k + ': ' + num(v)).join(', ')) +
      '</td></tr>'));
    rows('refusals', d.refusals.map((f) => '<tr><td>' + esc(f.source) + '</td><td>' + f.status + '</td><td>' + f.count + '</td></tr>'));
    rows('gateway', Object.entries(d.gateway ?? {}).map(([k, v]) => '<tr><td>' + esc(k) + '</td><td>' +
      esc(typeof v === 'object' ? JSON.stringify(v) : v) + '</td></tr>'));
    rows('queues', d.queues.map((q) => '<tr><td>' + esc(q.name) + '</td><td>' + q.messages + '</td><td>' + q.inFlight +
      '</td><td>' + q.dlqMessages + '</td></tr>'));
    rows('functions', d.functions.map((f) => '<tr><td>' + esc(f.name) + '</td><td>' + f.invocations + '</td><td>' +
      f.errors + '</td><td>' + f.avgDurationMs + '</td></tr>'));
    lastOkAt = d.now;
    failingSince = undefined;
  } catch (err) {
    failingSince = failingSince ?? Date.now();
    lastError = String(err);
  }
  const status = document.getElementById('status');
  status.textContent = statusText(lastOkAt, failingSince, lastError);
  status.className = failingSince === undefined ? '' : 'down';
  document.body.classList.toggle('stale', failingSince !== undefined);
}
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
`;
