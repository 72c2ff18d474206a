/**
 * Fan-out: delivers pages of a large group's runs (from the fan-out queue, FIFO per group lane). Consecutive pages
 * of a lane in one batch are delivered as one unit (`deliverFanoutJobs`: fewer, fuller frames under load).
 */
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { deliverFanoutJobs, type FanoutPage } from '../core/broadcast.ts';
import { FanoutJob } from '../core/delivery.ts';
import { isRedelivery, PoisonRecordError, reasonOf, redriveOf } from '../core/poison.ts';
import { queues } from '../manifest.ts';
import { createInvocationBroadcastDeps } from '../shared/broadcast-deps.ts';
import { fifoBatchHandler } from '../shared/fifo-batch-handler.ts';
import { createLogger } from '../shared/logger.ts';
import { createMetrics, DeliveryMetrics } from '../shared/metrics.ts';
import { createUsage } from '../shared/usage-meter.ts';

const logger = createLogger();
const metrics = createMetrics();
/** Per-tenant lines of each unit (their own instance, so they never carry the invocation's metrics). */
const tenantMetrics = createMetrics();
const { deps, startInvocation } = createInvocationBroadcastDeps(logger);
const usage = createUsage(logger);

/**
 * The page in a record, or why it is not one: a poison record, set aside at once so the lane's pages behind it go on
 * (docs/limits.md). Until 2026-12-04 the parse error went out as zod's own, which was not taken for permanent: the
 * record was retried to the DLQ and took the lane's valid pages behind it there too (found by an attacking pass; a
 * deploy whose new broadcaster adds a page field before the fan-out function is updated makes such records).
 */
function pageOf(record: SQSRecord): FanoutPage | { error: unknown } {
  try {
    const job = FanoutJob.parse(JSON.parse(record.body));
    return { job, jobId: redriveOf(record) ?? record.attributes.MessageDeduplicationId ?? record.messageId };
  } catch (error) {
    return { error: new PoisonRecordError(`not a fan-out page: ${reasonOf(error, 200)}`, { cause: error }) };
  }
}

/**
 * Splits the batch into units, like the broadcaster's runs: the consecutive pages of a lane (same MessageGroupId,
 * tenant and group) form one unit, a record that is not a page is a unit alone. Returns, for each record, its unit's
 * outcome: every record of a unit succeeds or fails together (the FIFO processor then skips the lane's later records).
 */
function plan(event: SQSEvent): Map<string, () => Promise<void>> {
  const outcome = new Map<string, () => Promise<void>>();
  const open = new Map<string, { pages: FanoutPage[]; records: SQSRecord[] }>();
  const units: { run: () => Promise<void>; records: SQSRecord[] }[] = [];
  for (const record of event.Records) {
    const lane = record.attributes.MessageGroupId ?? '';
    const page = pageOf(record);
    if ('error' in page) {
      open.delete(lane);
      logger.error('undeliverable page', { sqsMessageId: record.messageId, error: page.error as Error });
      units.push({ run: () => Promise.reject(page.error), records: [record] });
      continue;
    }
    let unit = open.get(lane);
    // Lane ids are unique per group (fanoutLaneGroupId), but only pages of one tenant and group ever merge.
    const head = unit?.pages[0]?.job;
    if (head !== undefined && (head.tenantId !== page.job.tenantId || head.group !== page.job.group)) unit = undefined;
    if (unit === undefined) {
      const opened = { pages: [] as FanoutPage[], records: [] as SQSRecord[] };
      unit = opened;
      open.set(lane, opened);
      units.push({ run: () => deliverPages(opened.pages, opened.records), records: opened.records });
    }
    unit.pages.push(page);
    unit.records.push(record);
  }
  for (const { run, records } of units) {
    let started: Promise<void> | undefined;
    const start = () => {
      started ??= run();
      return started;
    };
    for (const record of records) outcome.set(record.messageId, start);
  }
  return outcome;
}

async function deliverPages(pages: readonly FanoutPage[], records: readonly SQSRecord[]): Promise<void> {
  const head = pages[0]?.job;
  if (head === undefined) return;
  const redelivered = records.some(isRedelivery);
  const jobIds = pages.map((p) => p.jobId);
  const observed = new DeliveryMetrics(tenantMetrics, head.tenantId);
  try {
    const result = await deliverFanoutJobs(pages, redelivered, { ...deps, observe: observed.observe });
    logger.info('pages delivered', { tenantId: head.tenantId, group: head.group, jobIds, redelivered, ...result });
    usage.add(head.tenantId, 'deliveriesOut', result.delivered);
  } finally {
    observed.flush();
  }
}

export const handler = fifoBatchHandler({
  logger,
  metrics,
  maxReceiveCount: queues.fanout.maxReceiveCount,
  // Usage of every unit of the batch in one write per tenant (several lanes' units share a batch under load).
  afterBatch: () => usage.flush(),
  recordHandlerFor: (event, context) => {
    startInvocation(context);
    const outcomes = plan(event);
    return (record) => (outcomes.get(record.messageId) as () => Promise<void>)();
  },
});
