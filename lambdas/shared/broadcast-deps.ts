/** The delivery engine's ports for the broadcaster and fan-out functions: clients at module scope, from the environment. */
import type { Logger } from '@aws-lambda-powertools/logger';
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { SendMessageBatchCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import { type BroadcastDeps, DELIVERY_CONCURRENCY } from '../core/broadcast.ts';
import { deliverySendParams, fanoutLaneGroupId } from '../core/delivery.ts';
import { feedRulesFrom } from '../core/entities/feed-rules.ts';
import { tenantDataFrom } from '../core/entities/tenant-data.ts';
import { numberEnv, optionalEnv, requireEnv } from '../core/env.ts';
import { FrameBytes } from '../core/frame-bytes.ts';
import { GroupHistory } from '../core/history.ts';
import { LAG_CLOSE_AFTER_MS, type LaggingDeps } from '../core/lagging.ts';
import { MemberCache } from '../core/member-cache.ts';
import { NotReading } from '../core/not-reading.ts';
import { sqsBatches, sqsMessageBody } from '../core/sqs-batches.ts';
import { TenantDirectory } from '../core/tenants.ts';
import { clientConfig, createDocumentClient } from './aws.ts';
import { createConnectionsApi } from './connections-api.ts';
import { isThrottle } from './metrics.ts';
import { createRegistry } from './registry.ts';

const statusOf = (err: unknown) => (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
const isGone = (err: unknown) => (err as { name?: string }).name === 'GoneException' || statusOf(err) === 410;

export function createBroadcastDeps(logger: Logger): BroadcastDeps {
  const documentClient = createDocumentClient();
  const tableName = requireEnv('TABLE_NAME');
  const connections = new ApiGatewayManagementApiClient({
    ...clientConfig,
    endpoint: requireEnv('CONNECTIONS_ENDPOINT'),
    // Our own full-jitter backoff retries throttles and 5xx (lambdas/core/backoff.ts).
    maxAttempts: 1,
  });
  // A page's connections share their frames: each is encoded once while held (lambdas/core/frame-bytes.ts), not once
  // per post.
  const frameBytes = new FrameBytes();
  const fanoutQueueUrl = optionalEnv('FANOUT_QUEUE_URL', '');
  const deliveryQueueUrl = optionalEnv('DELIVERY_QUEUE_URL', '');
  const sqs = fanoutQueueUrl === '' && deliveryQueueUrl === '' ? undefined : new SQSClient(clientConfig);
  const registry = createRegistry(documentClient, tableName);
  const connectionsApi = createConnectionsApi();
  // A function bound to its delivery queue (the broadcaster) puts members whose client does not read on a replay
  // wait instead of failing their group's run (lambdas/core/lagging.ts).
  const lagging: LaggingDeps | undefined =
    deliveryQueueUrl === '' || sqs === undefined
      ? undefined
      : {
          registry,
          closeAfterMs: numberEnv('LAG_CLOSE_AFTER_MS', LAG_CLOSE_AFTER_MS),
          // 429: API Gateway's `LimitExceededException` (a client's full buffer, or the account's post rate).
          isThrottled: isThrottle,
          requeueReplay: async (request, dedupId) => {
            await sqs.send(new SendMessageCommand(deliverySendParams(deliveryQueueUrl, request, dedupId)));
          },
          close: async (connectionId) => {
            await connectionsApi.close(connectionId);
          },
          logError: (message, details) => logger.error(message, details),
        };
  return {
    history: new GroupHistory({
      client: documentClient,
      tableName,
      retentionSeconds: numberEnv('HISTORY_RETENTION_SECONDS', 86_400),
    }),
    registry,
    ...(lagging !== undefined && { lagging }),
    // A busy group's runs read its membership version, not every member (docs/delivery.md, "Member lists").
    memberCache: new MemberCache(),
    notReading: new NotReading(),
    post: async (connectionId, data) => {
      await connections.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: frameBytes.of(data) }));
    },
    isGone,
    isRetryable: (err) => {
      const status = statusOf(err);
      return isThrottle(err) || (status !== undefined && status >= 500);
    },
    enqueueFanout: async (jobs) => {
      if (sqs === undefined) throw new Error('FANOUT_QUEUE_URL is not set; the function needs the fanoutQueue binding');
      const entries = jobs.map(({ job, shard, id }) => ({
        MessageBody: sqsMessageBody(job),
        MessageGroupId: fanoutLaneGroupId(job.tenantId, job.group, shard),
        MessageDeduplicationId: id,
      }));
      // Batches within SQS's 10 entries and 1 MiB (splitRun already shaped each job to fit one message).
      for (const batch of sqsBatches(entries)) {
        const out = await sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: fanoutQueueUrl,
            Entries: batch.map((entry, n) => ({ ...entry, Id: `j${n}` })),
          }),
        );
        if ((out.Failed ?? []).length > 0) throw new Error(`fan-out enqueue failed for ${out.Failed?.length} page(s)`);
      }
    },
    splitThreshold: numberEnv('SPLIT_THRESHOLD', 500),
    shards: numberEnv('FANOUT_SHARDS', 8),
    laneMembers: numberEnv('FANOUT_LANE_MEMBERS', 125),
    backlogMs: numberEnv('SPLIT_BACKLOG_MS', 1000),
    concurrency: numberEnv('DELIVERY_CONCURRENCY', DELIVERY_CONCURRENCY),
    plan: {
      packing: optionalEnv('DELIVERY_PACKING', 'on') !== 'off',
      coalescing: optionalEnv('DELIVERY_COALESCING', 'on') !== 'off',
    },
    // A replay of an entity's live feed checks the rules its history was judged under against those in force.
    feedRules: feedRulesFrom(
      tenantDataFrom(
        new TenantDirectory({
          client: documentClient,
          tableName,
          cacheTtlMs: numberEnv('TENANT_CACHE_TTL_SECONDS', 60) * 1000,
        }),
      ),
    ),
    log: (message, details) => logger.info(message, details),
  };
}

/**
 * The delivery deps of one function module, with `remainingMs` reading the current invocation's context (a sandbox
 * runs one invocation at a time, so the module keeps the one running): call `startInvocation` as each one starts.
 */
export function createInvocationBroadcastDeps(logger: Logger): {
  readonly deps: BroadcastDeps;
  readonly startInvocation: (context: Pick<Context, 'getRemainingTimeInMillis'>) => void;
} {
  let remainingMs: () => number = () => Number.POSITIVE_INFINITY;
  return {
    deps: { ...createBroadcastDeps(logger), remainingMs: () => remainingMs() },
    startInvocation: (context) => {
      remainingMs = () => context.getRemainingTimeInMillis();
    },
  };
}
