/**
 * Broadcaster: consumes the delivery queue (SQS FIFO, one message group per tenant and group) and runs the
 * delivery engine (lambdas/core/broadcast.ts) on each run of consecutive messages of a group.
 */
import { processPartialResponse, SqsFifoPartialProcessorAsync } from '@aws-lambda-powertools/batch';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { broadcastRun, replay } from '../core/broadcast.ts';
import { type DeliveryMessage, isReplayRequest, QueueMessage } from '../core/delivery.ts';
import { createBroadcastDeps } from '../shared/broadcast-deps.ts';
import { createLogger } from '../shared/logger.ts';

const logger = createLogger();
const processor = new SqsFifoPartialProcessorAsync();
const deps = createBroadcastDeps(logger);

type Unit = { kind: 'run'; messages: DeliveryMessage[] } | { kind: 'other'; record: SQSRecord };

/**
 * Splits the batch into units processed as one: consecutive published messages of a group (coalesced and packed
 * together), or a single replay request or unparseable record. Returns, for each record, its unit's outcome.
 */
function plan(event: SQSEvent): Map<string, () => Promise<void>> {
  const outcome = new Map<string, () => Promise<void>>();
  const open = new Map<string, { messages: DeliveryMessage[]; records: SQSRecord[] }>();
  const units: { unit: Unit; records: SQSRecord[] }[] = [];
  for (const record of event.Records) {
    const group = record.attributes.MessageGroupId ?? '';
    let parsed: QueueMessage | undefined;
    try {
      parsed = QueueMessage.parse(JSON.parse(record.body));
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined || isReplayRequest(parsed)) {
      open.delete(group);
      units.push({ unit: { kind: 'other', record }, records: [record] });
      continue;
    }
    let run = open.get(group);
    if (run === undefined) {
      run = { messages: [], records: [] };
      open.set(group, run);
      units.push({ unit: { kind: 'run', messages: run.messages }, records: run.records });
    }
    run.messages.push(parsed);
    run.records.push(record);
  }
  for (const { unit, records } of units) {
    let started: Promise<void> | undefined;
    const redelivered = records.some((r) => Number(r.attributes.ApproximateReceiveCount) > 1);
    const start = () => {
      started ??= unit.kind === 'run' ? deliverRun(unit.messages, redelivered) : deliverOther(unit.record);
      return started;
    };
    for (const record of records) outcome.set(record.messageId, start);
  }
  return outcome;
}

async function deliverRun(messages: DeliveryMessage[], redelivered: boolean): Promise<void> {
  const result = await broadcastRun(messages, redelivered, deps);
  const head = messages[0];
  logger.info('delivered', { tenantId: head?.tenantId, group: head?.group, redelivered, ...result });
}

async function deliverOther(record: SQSRecord): Promise<void> {
  let message: QueueMessage;
  try {
    message = QueueMessage.parse(JSON.parse(record.body));
  } catch (err) {
    // Poison message: fails every time, so SQS moves it to the DLQ after maxReceiveCount receives.
    logger.error('undeliverable message', { sqsMessageId: record.messageId, error: err as Error });
    throw err;
  }
  if (!isReplayRequest(message)) throw new Error('not a replay request');
  const result = await replay(message, deps);
  logger.info('replayed', { tenantId: message.tenantId, group: message.group, since: message.since, ...result });
}

export const handler = middy<SQSEvent, SQSBatchResponse>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .handler((event, context) => {
    const outcomes = plan(event);
    return processPartialResponse(
      event,
      (record: SQSRecord) => (outcomes.get(record.messageId) as () => Promise<void>)(),
      processor,
      {
        context,
        skipGroupOnError: true,
        throwOnFullBatchFailure: false,
      },
    );
  });
