/**
 * Broadcaster: consumes the delivery queue (SQS FIFO, one message group per tenant and group) and runs the
 * delivery engine (lambdas/core/broadcast.ts) on each run of consecutive messages of a group.
 */
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { allOrNothing, batchUnits, deliverIsolating, type Outcome, recordStarters } from '../core/batch-units.ts';
import { abandonReplay, broadcastRun, replay } from '../core/broadcast.ts';
import { type DeliveryMessage, isReplayRequest, QueueMessage, type ReplayRequest } from '../core/delivery.ts';
import { numberEnv } from '../core/env.ts';
import { type PaceRun, paceDelayMs } from '../core/pace.ts';
import { isPermanent, isRedelivery, PoisonRecordError, reasonOf } from '../core/poison.ts';
import { deliverReplicas, type ReplicaMessage, routeOf } from '../core/replication.ts';
import { functions, queues } from '../manifest.ts';
import { createInvocationBroadcastDeps } from '../shared/broadcast-deps.ts';
import { fifoBatchHandler } from '../shared/fifo-batch-handler.ts';
import { createLogger } from '../shared/logger.ts';
import { correlatedLogger, correlationOf, createMetrics, DeliveryMetrics } from '../shared/metrics.ts';
import { createRecorder, createReplication } from '../shared/replication-deps.ts';
import { createUsage } from '../shared/usage-meter.ts';

const logger = createLogger();
const metrics = createMetrics();
/** Per-tenant lines of each run (their own instance, so they never carry the invocation's metrics). */
const tenantMetrics = createMetrics();
const { deps, startInvocation } = createInvocationBroadcastDeps(logger);
/** Multi-region delivery (docs/multi-region.md): forward to the tenant's home region, or replicate from here. */
const replication = createReplication(logger);
const recorder = createRecorder();
const usage = createUsage(logger);
/** Pacing a busy small group (lambdas/core/pace.ts): the invocation's start and its runs. */
const trigger = functions.find((f) => f.name === 'broadcaster')?.trigger;
const pacing = {
  minRunMs: numberEnv('BUSY_RUN_MIN_MS', 0),
  batchSize: trigger?.kind === 'sqs' ? trigger.batchSize : 10,
};
let invocation: { startedAt: number; records: number; units: number; runs: PaceRun[] } = {
  startedAt: 0,
  records: 0,
  units: 0,
  runs: [],
};
/** Settles once the batch's units started ahead of their records' turn have, with their results (`recordStarters`). */
let startedAhead: () => Promise<ReadonlyMap<string, unknown>> = async () => new Map();

/**
 * The batch's units (lambdas/core/batch-units.ts), each started once when the first of its records is handled, or
 * with the replay request it follows (`recordStarters`); returns, for each record, its unit's outcome.
 */
function plan(event: SQSEvent): Map<string, () => Promise<Outcome>> {
  const units = batchUnits(event.Records, replication.topology);
  invocation.units = units.length;
  const planned = recordStarters(units, (unit) => {
    // A redriven record may have been sequenced before: its seq is looked up at the history's tail (found when nothing
    // of its group was sequenced after it; else it takes a new one, and members it reached before drop it by id).
    const redelivered = unit.records.some(isRedelivery);
    if (unit.kind === 'run') return deliverIsolating(unit.messages, unit.records, redelivered, deliverRun);
    return allOrNothing(
      unit.records,
      unit.kind === 'replicas'
        ? deliverReplicaRun(unit.replicas, redelivered)
        : unit.kind === 'poison'
          ? Promise.reject(new PoisonRecordError(unit.reason))
          : deliverOther(unit.records[0]),
    );
  });
  startedAhead = planned.startedAhead;
  return planned.starters;
}

async function deliverRun(
  messages: readonly DeliveryMessage[],
  records: readonly SQSRecord[],
  redelivered: boolean,
): Promise<void> {
  const head = messages[0];
  // Correlation ids from the publisher's message attributes (docs/operations.md); a run of several messages logs
  // the first one's, and every id in `messageIds`.
  const ids = correlationOf(records[0]?.messageAttributes ?? {});
  const log = correlatedLogger(logger, { ...ids, tenantId: head?.tenantId, messageId: ids.messageId ?? head?.id });
  // A tenant homed in another region gets its seqs there: the run goes to the home's delivery queue as it is.
  const route = head === undefined ? undefined : routeOf(head.tenantId, replication.topology);
  if (route?.kind === 'forward') {
    await replication.forward(messages, route.home);
    log.info('forwarded', { group: head?.group, messageIds: messages.map((m) => m.id), home: route.home });
    return;
  }
  const observed = new DeliveryMetrics(tenantMetrics, head?.tenantId ?? 'unknown');
  try {
    const result = await broadcastRun(messages, redelivered, {
      ...deps,
      history: replication.history(deps.history),
      observe: observed.observe,
    });
    log.info('delivered', { group: head?.group, messageIds: messages.map((m) => m.id), redelivered, ...result });
    invocation.runs.push({ size: messages.length, direct: !result.split });
    if (head !== undefined) {
      usage.add(head.tenantId, 'messagesIn', messages.length);
      usage.add(head.tenantId, 'deliveriesOut', result.delivered);
    }
  } finally {
    observed.flush();
  }
}

/** Replicas from the tenant's home region: recorded at their seqs in this region's history, then delivered here. */
async function deliverReplicaRun(replicas: ReplicaMessage[], redelivered: boolean): Promise<void> {
  const head = replicas[0]?.message;
  const observed = new DeliveryMetrics(tenantMetrics, head?.tenantId ?? 'unknown');
  try {
    const result = await deliverReplicas(replicas, redelivered, { ...deps, recorder, observe: observed.observe });
    logger.info('delivered replicas', {
      tenantId: head?.tenantId,
      group: head?.group,
      origin: replicas[0]?.origin,
      messageIds: replicas.map((r) => r.message.id),
      redelivered,
      ...result,
    });
    // Deliveries in a peer region are the tenant's deliveries too.
    if (head !== undefined) {
      usage.add(head.tenantId, 'deliveriesOut', result.delivered);
    }
  } finally {
    observed.flush();
  }
}

async function deliverOther(record: SQSRecord): Promise<void> {
  let message: QueueMessage;
  try {
    message = QueueMessage.parse(JSON.parse(record.body));
  } catch (err) {
    // Poison message: it would fail every time; the batch handler sets it aside at once (docs/limits.md).
    throw new PoisonRecordError(`not a delivery message: ${reasonOf(err, 200)}`, { cause: err });
  }
  if (!isReplayRequest(message)) throw new Error('not a replay request');
  try {
    const result = await replay(message, deps);
    logger.info('replayed', { tenantId: message.tenantId, group: message.group, since: message.since, ...result });
  } catch (err) {
    // Failing for good: the member reloads instead of waiting for ever (core/broadcast.ts, abandonReplay); the record
    // is set aside where an operator sees it. A last receive's failure is `abandonReplays`'.
    if (isPermanent(err)) await abandon(message, err);
    throw err;
  }
}

/**
 * Replay requests failing on their last receive, SQS about to dead-letter them: whether their own replay failed or
 * they waited behind a failing message of their group (the FIFO batch skips the rest of a group after a failure).
 * Until review, only the first ended the member's wait; the second left it waiting for ever.
 */
async function abandonReplays(records: readonly SQSRecord[]): Promise<void> {
  for (const record of records) {
    let message: QueueMessage;
    try {
      message = QueueMessage.parse(JSON.parse(record.body));
    } catch {
      continue;
    }
    if (isReplayRequest(message)) await abandon(message, new Error('dead-lettered after its last receive'));
  }
}

async function abandon(message: ReplayRequest, err: unknown): Promise<void> {
  const { tenantId, group, connectionId, since } = message;
  logger.error('replay abandoned', { tenantId, group, connectionId, since, error: err as Error });
  await abandonReplay(message, deps).catch((e: unknown) =>
    logger.error('replay not abandoned', { tenantId, group, connectionId, since, error: e as Error }),
  );
}

export const handler = fifoBatchHandler({
  logger,
  metrics,
  maxReceiveCount: queues.delivery.maxReceiveCount,
  onLastReceive: abandonReplays,
  // Replays started with the one before them and skipped behind a failure of their group finish before the response,
  // and their records are settled with their results: done, set aside, or back to the queue.
  settle: () => startedAhead(),
  // Usage of every run of the batch (several groups' runs may share one) in one write per tenant.
  // Then a busy small group's invocation waits out its least length, so the next batch holds more (core/pace.ts).
  afterBatch: async () => {
    await usage.flush();
    const wait = paceDelayMs(invocation, performance.now() - invocation.startedAt, pacing);
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  },
  recordHandlerFor: (event, context) => {
    startInvocation(context);
    invocation = { startedAt: performance.now(), records: event.Records.length, units: 0, runs: [] };
    startedAhead = async () => new Map();
    const outcomes = plan(event);
    return async (record) => {
      const outcome = await (outcomes.get(record.messageId) as () => Promise<Outcome>)();
      if (outcome.has(record.messageId)) throw outcome.get(record.messageId);
    };
  },
});
