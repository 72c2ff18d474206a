/**
 * Sets a poison record aside: sends it, unchanged, to its queue's dead-letter queue (`DEAD_LETTER_QUEUE_URL`, set for
 * every SQS-triggered function by the manifest's trigger), with the reason and the function that gave up on it as
 * message attributes, where `npx tenantcast dlq show` shows them and `dlq redrive` can send it back (docs/limits.md).
 */
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { optionalEnv } from '../core/env.ts';
import { REDRIVE_OF_ATTRIBUTE, setAsideMessageAttributes } from '../core/poison.ts';
import { limits } from '../manifest.ts';
import { clientConfig } from './aws.ts';

export type SetAside = (record: SQSRecord, reason: string) => Promise<void>;

export function createSetAside(): SetAside {
  const queueUrl = optionalEnv('DEAD_LETTER_QUEUE_URL', '');
  const sqs = queueUrl === '' ? undefined : new SQSClient(clientConfig);
  return async (record, reason) => {
    if (sqs === undefined) throw new Error('DEAD_LETTER_QUEUE_URL is not set: the function has no SQS trigger');
    const own: Record<string, { DataType: string; StringValue: string }> = {};
    // First, so it is among the attributes kept: the deduplication id the record had, which a redrive takes as the
    // record's (this copy's own is `aside-…`; the fan-out keys a page's progress by it).
    const before =
      record.messageAttributes[REDRIVE_OF_ATTRIBUTE]?.stringValue ?? record.attributes.MessageDeduplicationId;
    if (before !== undefined) own[REDRIVE_OF_ATTRIBUTE] = { DataType: 'String', StringValue: before };
    for (const [name, value] of Object.entries(record.messageAttributes)) {
      if (name === REDRIVE_OF_ATTRIBUTE) continue;
      if (value.stringValue !== undefined) own[name] = { DataType: value.dataType, StringValue: value.stringValue };
    }
    const by = optionalEnv('AWS_LAMBDA_FUNCTION_NAME', 'unknown');
    const attributes = setAsideMessageAttributes(record.body, own, reason, by, limits.queueMessageBytes);
    const groupId = record.attributes.MessageGroupId;
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: record.body,
        MessageAttributes: attributes,
        ...(groupId !== undefined && {
          MessageGroupId: groupId,
          MessageDeduplicationId: `aside-${record.messageId}`.slice(0, 128),
        }),
      }),
    );
  };
}
