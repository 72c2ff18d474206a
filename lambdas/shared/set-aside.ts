/**
 * Sets a poison record aside: sends it, unchanged, to its queue's dead-letter queue (`DEAD_LETTER_QUEUE_URL`, set for
 * every SQS-triggered function by the manifest's trigger), with the reason and the function that gave up on it as
 * message attributes, where `npx tenantcast dlq show` shows them and `dlq redrive` can send it back (docs/limits.md).
 */
import { type MessageAttributeValue, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { optionalEnv } from '../core/env.ts';
import { setAsideAttributes } from '../core/poison.ts';
import { clientConfig } from './aws.ts';

export type SetAside = (record: SQSRecord, reason: string) => Promise<void>;

export function createSetAside(): SetAside {
  const queueUrl = optionalEnv('DEAD_LETTER_QUEUE_URL', '');
  const sqs = queueUrl === '' ? undefined : new SQSClient(clientConfig);
  return async (record, reason) => {
    if (sqs === undefined) throw new Error('DEAD_LETTER_QUEUE_URL is not set: the function has no SQS trigger');
    const attributes: Record<string, MessageAttributeValue> = {};
    // SQS allows 10 attributes per message: the record keeps at most 8 of its own.
    for (const [name, value] of Object.entries(record.messageAttributes).slice(0, 8)) {
      if (value.stringValue !== undefined)
        attributes[name] = { DataType: value.dataType, StringValue: value.stringValue };
    }
    attributes[setAsideAttributes.reason] = { DataType: 'String', StringValue: reason };
    attributes[setAsideAttributes.by] = {
      DataType: 'String',
      StringValue: optionalEnv('AWS_LAMBDA_FUNCTION_NAME', 'unknown'),
    };
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
