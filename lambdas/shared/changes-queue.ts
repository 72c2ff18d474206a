/** Sends change events to the changes queue (`CHANGES_QUEUE_URL`), ten per SendMessageBatch. */
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { ChangeEvent } from '../core/entities/events.ts';

export function changesPublisher(sqs: SQSClient, queueUrl: string): (events: readonly ChangeEvent[]) => Promise<void> {
  return async (events) => {
    for (let i = 0; i < events.length; i += 10) {
      const chunk = events.slice(i, i + 10);
      const out = await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: chunk.map((event, n) => ({
            Id: String(n),
            MessageBody: JSON.stringify(event),
            MessageAttributes: { tenantId: { DataType: 'String', StringValue: event.tenantId } },
          })),
        }),
      );
      if ((out.Failed ?? []).length > 0) {
        throw new Error(`changes queue refused ${out.Failed?.length} event(s): ${out.Failed?.[0]?.Message ?? ''}`);
      }
    }
  };
}
