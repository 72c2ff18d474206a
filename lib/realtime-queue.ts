import { Duration } from 'aws-cdk-lib';
import type { Grant, IGrantable } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { DeduplicationScope, FifoThroughputLimit, Queue, QueueEncryption, type QueueProps } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { aws } from '../lambdas/core/limits.ts';
import type { QueueSpec } from '../lambdas/manifest.ts';

/**
 * Largest message, in bytes, every queue accepts (`MaximumMessageSize`): 262,144 bytes (256 KiB), set explicitly.
 * Source: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html and
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html. AWS raised the
 * maximum (and the default of new queues) to 1 MiB (1,048,576 bytes) in 2025; we keep 256 KiB because the code shapes
 * what it enqueues to fit 256 KiB, and a queue that refuses more makes a shaping bug fail at the send, where it is
 * seen, rather than leave a message no consumer was written for.
 */
export const SQS_MAX_MESSAGE_BYTES: number = aws.sqsMessageBytes; // the limits table: lambdas/core/limits.ts

/**
 * High-throughput mode of every FIFO queue (and FIFO dead-letter queue): deduplication and the throughput quota apply
 * per message group instead of per queue. Without it a FIFO queue takes 300 requests per second per API action
 * (SendMessage, ReceiveMessage, DeleteMessage; 3,000 messages with batches of 10) for the whole queue, so every
 * publish of a region would share one queue's 300 requests/s; with it the quota is 300 requests/s per message group
 * (per tenant and group here) and the queue's quota is the region's high-throughput one (up to 70,000 requests/s in
 * us-east-1, us-west-2 and eu-west-1, less elsewhere). Source:
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html and
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/high-throughput-fifo.html.
 * Deduplication per group is safe: no sender relies on one deduplication id suppressing a send to another group.
 */
export const HIGH_THROUGHPUT_FIFO = {
  fifo: true,
  deduplicationScope: DeduplicationScope.MESSAGE_GROUP,
  fifoThroughputLimit: FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
} as const satisfies QueueProps;

export interface RealtimeQueueProps {
  /** Visibility timeout, receive count before dead-lettering, and retention; see `queues` in lambdas/manifest.ts. */
  readonly spec: QueueSpec;

  /**
   * The queue's physical name (a FIFO queue's ends in `.fifo`). Set it when other stacks or regions address the queue
   * by name (the delivery queue, docs/multi-region.md); changing it replaces the queue.
   *
   * @default - a name CloudFormation generates
   */
  readonly queueName?: string;
}

/** Options for {@link RealtimeQueue.addConsumer}. */
export interface RealtimeQueueConsumerOptions {
  /**
   * Most messages per invocation (1 to 10,000; above 10 needs a batching window).
   *
   * @default 10
   */
  readonly batchSize?: number;

  /**
   * How long Lambda gathers messages before invoking (0 to 300 seconds).
   *
   * @default Duration.seconds(0)
   */
  readonly maxBatchingWindow?: Duration;
}

/**
 * An SQS queue (standard, or FIFO when `spec.fifo`) with its dead-letter queue (of the same kind): both encrypted with
 * SQS-managed keys, reachable over TLS only (`aws:SecureTransport`) and taking messages up to
 * {@link SQS_MAX_MESSAGE_BYTES}; FIFO ones in high-throughput mode ({@link HIGH_THROUGHPUT_FIFO}). Messages move to
 * the DLQ after `maxReceiveCount` receives.
 */
export class RealtimeQueue extends Construct {
  /** The queue producers send to. */
  readonly queue: Queue;
  /** Where messages land after `spec.maxReceiveCount` failed receives. */
  readonly deadLetterQueue: Queue;
  readonly spec: QueueSpec;

  constructor(scope: Construct, id: string, props: RealtimeQueueProps) {
    super(scope, id);
    this.spec = props.spec;
    this.validate(props.spec);
    if (props.queueName !== undefined && props.queueName.endsWith('.fifo') !== (props.spec.fifo === true)) {
      throw new Error(
        `${this.node.path}: queueName must end in '.fifo' exactly when the queue is FIFO (got '${props.queueName}', fifo: ${props.spec.fifo === true})`,
      );
    }

    const fifo = props.spec.fifo === true ? HIGH_THROUGHPUT_FIFO : {};
    this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      ...fifo,
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      maxMessageSizeBytes: SQS_MAX_MESSAGE_BYTES,
      retentionPeriod: Duration.seconds(props.spec.dlqRetentionSeconds),
    });
    this.queue = new Queue(this, 'Queue', {
      ...fifo,
      ...(props.queueName === undefined ? {} : { queueName: props.queueName }),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      maxMessageSizeBytes: SQS_MAX_MESSAGE_BYTES,
      visibilityTimeout: Duration.seconds(props.spec.visibilityTimeoutSeconds),
      retentionPeriod: Duration.seconds(props.spec.retentionSeconds),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.spec.maxReceiveCount },
    });
  }

  /** The queue's URL. */
  get queueUrl(): string {
    return this.queue.queueUrl;
  }

  /** Grants sqs:SendMessage, sqs:GetQueueAttributes and sqs:GetQueueUrl on the queue. */
  grantSendMessages(grantee: IGrantable): Grant {
    return this.queue.grantSendMessages(grantee);
  }

  /** Grants sqs:ReceiveMessage, sqs:ChangeMessageVisibility, sqs:GetQueueUrl, sqs:DeleteMessage and sqs:GetQueueAttributes on the queue. */
  grantConsumeMessages(grantee: IGrantable): Grant {
    return this.queue.grantConsumeMessages(grantee);
  }

  /**
   * Makes `handler` consume the queue through an event source mapping with partial batch responses
   * (`ReportBatchItemFailures`): the handler returns the ids of failed messages and only those are retried.
   *
   * The handler also gets `DEAD_LETTER_QUEUE_URL` and sqs:SendMessage on the dead-letter queue, to set aside a
   * record that can never succeed with its reason (lambdas/shared/set-aside.ts, docs/limits.md).
   *
   * @throws when the queue's visibility timeout is shorter than six times the handler's timeout, as AWS advises for
   * Lambda event sources (retries would otherwise start while a batch is still being processed)
   */
  addConsumer(
    handler: IFunction & { readonly timeout?: Duration; addEnvironment(key: string, value: string): unknown },
    options: RealtimeQueueConsumerOptions = {},
  ): void {
    const timeoutSeconds = handler.timeout?.toSeconds() ?? 3;
    if (this.spec.visibilityTimeoutSeconds < 6 * timeoutSeconds) {
      throw new Error(
        `${this.node.path}: visibility timeout ${this.spec.visibilityTimeoutSeconds}s must be at least 6x the consumer's timeout (${timeoutSeconds}s, so ${6 * timeoutSeconds}s)`,
      );
    }
    const batchSize = options.batchSize ?? 10;
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
      throw new Error(`${this.node.path}: batchSize must be an integer from 1 to 10000 (got ${batchSize})`);
    }
    const windowSeconds = options.maxBatchingWindow?.toSeconds() ?? 0;
    if (this.spec.fifo === true && (batchSize > 10 || windowSeconds > 0)) {
      throw new Error(
        `${this.node.path}: a FIFO queue's consumer takes at most 10 messages and no batching window (got batchSize ${batchSize}, maxBatchingWindow ${windowSeconds}s)`,
      );
    }
    if (batchSize > 10 && windowSeconds === 0) {
      throw new Error(`${this.node.path}: a batchSize above 10 (got ${batchSize}) needs a maxBatchingWindow`);
    }
    handler.addEnvironment('DEAD_LETTER_QUEUE_URL', this.deadLetterQueue.queueUrl);
    this.deadLetterQueue.grantSendMessages(handler);
    handler.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize,
        // FIFO event sources take no batching window at all (not even 0).
        ...(this.spec.fifo === true ? {} : { maxBatchingWindow: Duration.seconds(windowSeconds) }),
        reportBatchItemFailures: true,
      }),
    );
  }

  private validate(spec: QueueSpec): void {
    const problems: string[] = [];
    const visibility = spec.visibilityTimeoutSeconds;
    if (!Number.isInteger(visibility) || visibility < 0 || visibility > 43_200) {
      problems.push(`visibilityTimeoutSeconds must be 0 to 43200 (got ${visibility})`);
    }
    if (!Number.isInteger(spec.maxReceiveCount) || spec.maxReceiveCount < 1 || spec.maxReceiveCount > 1000) {
      problems.push(`maxReceiveCount must be 1 to 1000 (got ${spec.maxReceiveCount})`);
    }
    for (const field of ['retentionSeconds', 'dlqRetentionSeconds'] as const) {
      const value = spec[field];
      if (!Number.isInteger(value) || value < 60 || value > 1_209_600) {
        problems.push(`${field} must be 60 to 1209600 (14 days) (got ${value})`);
      }
    }
    if (spec.dlqRetentionSeconds < spec.retentionSeconds) {
      problems.push(
        `dlqRetentionSeconds (${spec.dlqRetentionSeconds}) must be at least retentionSeconds (${spec.retentionSeconds}): a message keeps its original age when dead-lettered`,
      );
    }
    if (problems.length > 0) throw new Error(`${this.node.path}: invalid queue spec: ${problems.join('; ')}`);
  }
}
