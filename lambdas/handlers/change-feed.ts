/**
 * Change feed: change events from the changes queue → `entity:<name>` messages on the delivery queue, each with
 * the audience its row allows. Each tenant's entity is one unit (one query): a failure fails that unit's records, so
 * SQS redelivers them and the deterministic message ids dedupe what was already enqueued. A record
 * that is not a change event, or whose change could never be delivered (too big for the delivery queue), is set aside
 * in the dead-letter queue at once, with its reason.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import middy from '@middy/core';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { deliverySendParams } from '../core/delivery.ts';
import { feedUnits, produceChangeMessages } from '../core/entities/change-feed.ts';
import { ChangeEvent } from '../core/entities/events.ts';
import { requireEnv } from '../core/env.ts';
import { isPermanent } from '../core/poison.ts';
import { clientConfig } from '../shared/aws.ts';
import { createEntityData, createTenantDirectory } from '../shared/entity-data.ts';
import { createLogger } from '../shared/logger.ts';
import { countInput, countSetAside, createMetrics, metricNames } from '../shared/metrics.ts';
import { createSetAside } from '../shared/set-aside.ts';

const logger = createLogger();
const metrics = createMetrics();
const sqs = new SQSClient(clientConfig);
const deliveryQueueUrl = requireEnv('DELIVERY_QUEUE_URL');
const tenants = createTenantDirectory();
const setAside = createSetAside();
const deps = {
  ...createEntityData(tenants),
  // In order, one at a time: the delivery queue keeps each tenant's group in the order it receives messages.
  enqueue: async (messages: readonly Parameters<typeof deliverySendParams>[1][]) => {
    for (const message of messages)
      await sqs.send(new SendMessageCommand(deliverySendParams(deliveryQueueUrl, message)));
  },
  now: Date.now,
  log: (message: string, details: Record<string, unknown>) => logger.warn(message, details),
};

const changeKey = (e: ChangeEvent) => JSON.stringify([e.tenantId, e.entity, e.key, e.version]);

/** Sets a change aside by the batch's records that carry it (`recordsOf`: the batch's records by change). */
function setAsideChange(recordsOf: ReadonlyMap<string, readonly SQSRecord[]>) {
  return async (event: ChangeEvent, reason: string): Promise<void> => {
    const records = recordsOf.get(changeKey(event)) ?? [];
    logger.error('undeliverable change set aside', {
      tenantId: event.tenantId,
      entity: event.entity,
      key: event.key,
      version: event.version,
      sqsMessageIds: records.map((r) => r.messageId),
      reason,
    });
    for (const record of records) await setAside(record, reason);
    countSetAside(metrics);
  };
}

export const handler = middy<SQSEvent, SQSBatchResponse>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics))
  .use(countInput<SQSEvent>(metrics, metricNames.recordsIn, (event) => event.Records.length))
  .handler(async (event) => {
    const events: ChangeEvent[] = [];
    const recordsOf = new Map<string, SQSRecord[]>();
    for (const record of event.Records) {
      const parsed = ChangeEvent.safeParse(safeJson(record.body));
      if (parsed.success) {
        events.push(parsed.data);
        const key = changeKey(parsed.data);
        recordsOf.set(key, [...(recordsOf.get(key) ?? []), record]);
        continue;
      }
      // A malformed event can never succeed: set it aside (docs/limits.md) rather than poison the batch.
      const reason = `not a change event: ${parsed.error.issues[0]?.message ?? 'invalid'}`;
      logger.error('poison record set aside', { sqsMessageId: record.messageId, reason });
      await setAside(record, reason);
      countSetAside(metrics);
    }
    // Each tenant's entity on its own: a database that fails (a table dropped under its schema snapshot, a cluster
    // that does not answer) fails only its own records, and the other tenants' changes go on (until 2026-12-03 any
    // failure failed the whole batch, and a lasting one took every change that shared its batches to the DLQ).
    // Within a unit, a change AWS refuses as such fails alone (until 2026-12-04 it failed its unit every time).
    const retry = await feedUnits(unitsOf(events).values(), {
      feed: async (unitEvents, setAside) => {
        const messages = await produceChangeMessages(unitEvents, { ...deps, setAside });
        await deps.enqueue(messages);
        logger.info('changes fed', { events: unitEvents.length, messages: messages.length });
      },
      setAside: setAsideChange(recordsOf),
      failed: (unitEvents, err) =>
        logger.error('changes failed; will be retried', {
          tenantId: unitEvents[0]?.tenantId,
          entity: unitEvents[0]?.entity,
          keys: unitEvents.map((e) => e.key),
          sqsMessageIds: unitEvents.flatMap((e) => recordsOf.get(changeKey(e)) ?? []).map((r) => r.messageId),
          error: err as Error,
          // A request AWS refuses as such: the unit's changes are fed again one by one (feedUnits).
          permanent: isPermanent(err),
        }),
    });
    const failed = retry.flatMap((e) => recordsOf.get(changeKey(e)) ?? []).map((r) => r.messageId);
    return { batchItemFailures: [...new Set(failed)].map((itemIdentifier) => ({ itemIdentifier })) };
  });

/** The batch's events by tenant and entity (one query each), in the order each first appears. */
function unitsOf(events: readonly ChangeEvent[]): Map<string, ChangeEvent[]> {
  const units = new Map<string, ChangeEvent[]>();
  for (const e of events) {
    const unit = JSON.stringify([e.tenantId, e.entity]);
    units.set(unit, [...(units.get(unit) ?? []), e]);
  }
  return units;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
