/** Sends change events to the changes queue (`CHANGES_QUEUE_URL`), in SendMessageBatches within SQS's limits. */
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { ChangeEvent } from '../core/entities/events.ts';
import { sqsBatches, sqsMessageBody } from '../core/sqs-batches.ts';

export function changesPublisher(sqs: SQSClient, queueUrl: string): (events: readonly ChangeEvent[]) => Promise<void> {
  return async (events) => {
    const entries = events.map((event) => ({
      MessageBody: sqsMessageBody(event),
      MessageAttributes: { tenantId: { DataType: 'String', StringValue: event.tenantId } },
    }));
    for (const batch of sqsBatches(entries)) {
      const out = await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: batch.map((entry, n) => ({ ...entry, Id: String(n) })),
        }),
      );
      if ((out.Failed ?? []).length > 0) {
        throw new Error(`changes queue refused ${out.Failed?.length} event(s): ${out.Failed?.[0]?.Message ?? ''}`);
      }
    }
  };
}
