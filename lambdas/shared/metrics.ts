/**
 * Metrics (CloudWatch EMF through Powertools) for every function (tracing is lambdas/shared/tracer.ts).
 * Names, units and dimensions are listed in docs/operations.md; keep the two in step.
 *
 * Tenant ids are never a dimension (one metric series per tenant does not scale); they ride along as an EMF
 * property (`tenantId`), searchable in Logs Insights, on lines that concern one tenant.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type middy from '@middy/core';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { DeliveryEvent } from '../core/broadcast.ts';

export { MetricUnit };

/** Every metric name the functions emit. */
export const metricNames = {
  connectionsOpened: 'ConnectionsOpened',
  connectionsRefused: 'ConnectionsRefused',
  connectionsClosed: 'ConnectionsClosed',
  authorizations: 'Authorizations',
  framesIn: 'FramesIn',
  framesRejected: 'FramesRejected',
  messagesIn: 'MessagesIn',
  rateLimited: 'RateLimited',
  posts: 'Posts',
  deliveries: 'Deliveries',
  deliveryLatency: 'DeliveryLatency',
  gone: 'GoneConnections',
  postsThrottled: 'PostsThrottled',
  postServerErrors: 'PostServerErrors',
  deliveryFailures: 'DeliveryFailures',
  dlqSends: 'DlqSends',
  /** Poison records sent to the dead-letter queue by the consumer itself (docs/limits.md). */
  setAside: 'SetAside',
  httpRequests: 'HttpRequests',
  recordsIn: 'RecordsIn',
  scheduledRuns: 'ScheduledRuns',
} as const;

/** One per function, at module scope. Namespace and service come from the environment (CDK and the local runtime). */
export function createMetrics(): Metrics {
  return new Metrics({
    namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'tenantcast',
    serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'tenantcast',
  });
}

/**
 * Counts each invocation's input (`count(event)`, 1 by default) under `name`, so every function emits at least one
 * application metric (Powertools warns on every flush of an empty store). Written by hand: a two-line middy
 * `before` hook; Powertools has no such middleware.
 */
export function countInput<E>(metrics: Metrics, name: string, count: (event: E) => number = () => 1) {
  return {
    before: (request: middy.Request<E>) => {
      metrics.addMetric(name, MetricUnit.Count, count(request.event));
    },
  };
}

/**
 * For HTTP API handlers: counts `HttpRequests`, and `RateLimited` for each 429 answered (written by hand, like
 * `countInput`). Use it after `logMetrics`, so its `after` runs before the flush.
 */
export function countHttp(metrics: Metrics) {
  return {
    before: () => {
      metrics.addMetric(metricNames.httpRequests, MetricUnit.Count, 1);
    },
    after: (request: middy.Request) => {
      const status = (request.response as { statusCode?: unknown } | undefined)?.statusCode;
      if (status === 429) metrics.addMetric(metricNames.rateLimited, MetricUnit.Count, 1);
    },
  };
}

const statusOf = (err: unknown) => (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;

/** 429 (or API Gateway's LimitExceededException) vs 5xx, for a post the delivery engine will retry. */
export function isThrottle(err: unknown): boolean {
  return statusOf(err) === 429 || (err as { name?: string }).name === 'LimitExceededException';
}

/**
 * The delivery engine's `observe` port, per unit of work of one tenant: counts and latency samples are kept here
 * and written by `flush` as their own EMF line(s) with `tenantId` as a property. Lines hold at most 100 values per
 * metric (EMF's limit), so many latency samples make several lines.
 */
export class DeliveryMetrics {
  private posts = 0;
  private deliveries = 0;
  private gone = 0;
  private throttled = 0;
  private serverErrors = 0;
  private failed = 0;
  private latencies: number[] = [];

  constructor(
    private readonly metrics: Metrics,
    private readonly tenantId: string,
  ) {}

  readonly observe = (event: DeliveryEvent): void => {
    switch (event.type) {
      case 'posted':
        this.posts++;
        this.deliveries += event.messages;
        if (event.latencyMs !== undefined) this.latencies.push(event.latencyMs);
        break;
      case 'gone':
        this.gone++;
        break;
      case 'retryable':
        if (isThrottle(event.error)) this.throttled++;
        else this.serverErrors++;
        break;
      case 'failed':
        this.failed++;
        break;
    }
  };

  /** Writes what was observed (synchronously, so lines of concurrent units never mix) and resets. */
  flush(): void {
    const counts: [string, number][] = [
      [metricNames.posts, this.posts],
      [metricNames.deliveries, this.deliveries],
      [metricNames.gone, this.gone],
      [metricNames.postsThrottled, this.throttled],
      [metricNames.postServerErrors, this.serverErrors],
      [metricNames.deliveryFailures, this.failed],
    ];
    const latencies = this.latencies;
    this.posts = this.deliveries = this.gone = this.throttled = this.serverErrors = this.failed = 0;
    this.latencies = [];
    if (counts.every(([, n]) => n === 0) && latencies.length === 0) return;
    // Powertools publishes by itself at 100 values of a metric, which would drop the metadata: chunk below that.
    const chunk = 99;
    for (let i = 0; i === 0 || i < latencies.length; i += chunk) {
      this.metrics.addMetadata('tenantId', this.tenantId);
      if (i === 0) for (const [name, n] of counts) if (n > 0) this.metrics.addMetric(name, MetricUnit.Count, n);
      for (const ms of latencies.slice(i, i + chunk)) {
        this.metrics.addMetric(metricNames.deliveryLatency, MetricUnit.Milliseconds, ms);
      }
      this.metrics.publishStoredMetrics();
    }
  }
}

/** Correlation ids of one delivery queue record (docs/operations.md): set by the publishing route as attributes. */
export function correlationOf(attributes: Readonly<Record<string, { stringValue?: string | undefined }>>) {
  return {
    tenantId: attributes.tenantId?.stringValue,
    messageId: attributes.messageId?.stringValue,
    connectionId: attributes.connectionId?.stringValue,
  };
}

/** A child logger carrying `keys` (undefined values left out), for one record or unit of a batch. */
export function correlatedLogger(logger: Logger, keys: Readonly<Record<string, string | undefined>>): Logger {
  const child = logger.createChild();
  child.appendKeys(Object.fromEntries(Object.entries(keys).filter(([, v]) => v !== undefined)));
  return child;
}

/**
 * The records of a batch that failed on their last receive (`maxReceiveCount` from the manifest), which SQS now moves
 * to the dead-letter queue.
 */
export function failedOnLastReceive(event: SQSEvent, response: SQSBatchResponse, maxReceiveCount: number): SQSRecord[] {
  const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
  return event.Records.filter(
    (r) => failed.has(r.messageId) && Number(r.attributes.ApproximateReceiveCount) >= maxReceiveCount,
  );
}

/** Counts `DlqSends`: `records` failed on their last receive (`failedOnLastReceive`). */
export function countDlqSends(metrics: Metrics, records: readonly SQSRecord[]): void {
  if (records.length > 0) metrics.addMetric(metricNames.dlqSends, MetricUnit.Count, records.length);
}

/** One poison record set aside (sent to the dead-letter queue with its reason). */
export function countSetAside(metrics: Metrics): void {
  metrics.addMetric(metricNames.setAside, MetricUnit.Count, 1);
}
