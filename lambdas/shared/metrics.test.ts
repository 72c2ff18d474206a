import { Metrics } from '@aws-lambda-powertools/metrics';
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { DeliveryMetrics, isThrottle } from './metrics.ts';

/** A Metrics instance writing to the global console (POWERTOOLS_DEV), and the EMF lines it wrote. */
function capture() {
  // Dev mode writes to the global console; it also disables metrics unless told otherwise.
  process.env.POWERTOOLS_DEV = 'true';
  process.env.POWERTOOLS_METRICS_DISABLED = 'false';
  const metrics = new Metrics({ namespace: 'test', serviceName: 'broadcaster' });
  delete process.env.POWERTOOLS_DEV;
  delete process.env.POWERTOOLS_METRICS_DISABLED;
  const lines: Record<string, unknown>[] = [];
  jest.spyOn(console, 'log').mockImplementation((line: unknown) => {
    lines.push(JSON.parse(String(line)) as Record<string, unknown>);
  });
  return { metrics, lines };
}

afterEach(() => {
  jest.restoreAllMocks();
});

describe('DeliveryMetrics', () => {
  it('writes one EMF line per tenant unit with the counts and latencies, tenantId as a property', () => {
    const { metrics, lines } = capture();
    const observed = new DeliveryMetrics(metrics, 'acme');
    observed.observe({ type: 'posted', tenantId: 'acme', messages: 2, latencyMs: 40 });
    observed.observe({ type: 'posted', tenantId: 'acme', messages: 1, latencyMs: 10 });
    observed.observe({ type: 'gone', tenantId: 'acme' });
    observed.observe({ type: 'retryable', tenantId: 'acme', error: { $metadata: { httpStatusCode: 429 } } });
    observed.observe({ type: 'retryable', tenantId: 'acme', error: { $metadata: { httpStatusCode: 503 } } });
    observed.flush();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      tenantId: 'acme',
      service: 'broadcaster',
      Posts: 2,
      Deliveries: 3,
      GoneConnections: 1,
      PostsThrottled: 1,
      PostServerErrors: 1,
      DeliveryLatency: [40, 10],
    });
    expect(lines[0]).not.toHaveProperty('DeliveryFailures');
  });

  it('splits many latency samples over lines that all carry the tenant, and counts only once', () => {
    const { metrics, lines } = capture();
    const observed = new DeliveryMetrics(metrics, 'globex');
    for (let i = 0; i < 150; i++) observed.observe({ type: 'posted', tenantId: 'globex', messages: 1, latencyMs: i });
    observed.flush();
    expect(lines.map((l) => [l.tenantId, l.Posts, (l.DeliveryLatency as number[]).length])).toEqual([
      ['globex', 150, 99],
      ['globex', undefined, 51],
    ]);
  });

  it('writes nothing when nothing was observed, and starts over after a flush', () => {
    const { metrics, lines } = capture();
    const observed = new DeliveryMetrics(metrics, 'acme');
    observed.flush();
    observed.observe({ type: 'failed', tenantId: 'acme' });
    observed.flush();
    observed.flush();
    expect(lines).toEqual([expect.objectContaining({ DeliveryFailures: 1 })]);
  });
});

describe('isThrottle', () => {
  it('tells a 429 or LimitExceededException from a 5xx', () => {
    expect(isThrottle({ $metadata: { httpStatusCode: 429 } })).toBe(true);
    expect(isThrottle({ name: 'LimitExceededException' })).toBe(true);
    expect(isThrottle({ $metadata: { httpStatusCode: 500 } })).toBe(false);
  });
});
