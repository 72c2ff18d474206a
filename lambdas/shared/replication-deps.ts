/**
 * Multi-region delivery's ports (docs/multi-region.md), clients at module scope, from the `peers` and
 * `replicationQueue` bindings' environment. Each peer region gets its own SQS client, signed for that region and sent
 * to the origin of the peer's queue URL (which CDK computes as the region's SQS endpoint).
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { SendMessageBatchCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { BroadcastDeps } from '../core/broadcast.ts';
import { type DeliveryMessage, deliverySendParams, type SequencedMessage } from '../core/delivery.ts';
import { numberEnv, optionalEnv, requireEnv } from '../core/env.ts';
import { GroupHistory } from '../core/history.ts';
import {
  parseTopology,
  type ReplicaMessage,
  replicaSendParams,
  replicatingHistory,
  replicationJobs,
  replicationSendParams,
  type StageTopology,
} from '../core/replication.ts';
import { sqsBatches } from '../core/sqs-batches.ts';
import { clientConfig, createDocumentClient } from './aws.ts';

export interface Replication {
  readonly topology: StageTopology;
  /** Sends a run of published messages, unchanged, to the delivery queue of their tenant's home region. */
  forward(messages: readonly DeliveryMessage[], home: string): Promise<void>;
  /** The broadcaster's history: replicating to the peers after assignment when the stage has any. */
  history(history: BroadcastDeps['history']): BroadcastDeps['history'];
  /** Sends one replica to a peer's delivery queue (the replicator). */
  sendReplica(to: string, replica: ReplicaMessage): Promise<void>;
}

/** Writes replicas into this region's history (the broadcaster's `table` binding, its history retention). */
export function createRecorder(): Pick<GroupHistory, 'record'> {
  return new GroupHistory({
    client: createDocumentClient(),
    tableName: requireEnv('TABLE_NAME'),
    retentionSeconds: numberEnv('HISTORY_RETENTION_SECONDS', 86_400),
  });
}

type Entry = { MessageBody: string; MessageGroupId: string; MessageDeduplicationId: string } & Record<string, unknown>;

export function createReplication(logger: Logger): Replication {
  const topology = parseTopology({
    region: requireEnv('AWS_REGION'),
    stageRegions: optionalEnv('STAGE_REGIONS', ''),
    peerDeliveryQueues: optionalEnv('PEER_DELIVERY_QUEUES', ''),
  });
  const peerClients = new Map(
    [...topology.peers].map(([region, url]) => [
      region,
      new SQSClient({ ...clientConfig, region, endpoint: new URL(url).origin }),
    ]),
  );
  const replicationQueueUrl = optionalEnv('REPLICATION_QUEUE_URL', '');
  const local = replicationQueueUrl === '' ? undefined : new SQSClient(clientConfig);

  const clientOf = (region: string) => {
    const client = peerClients.get(region);
    if (client === undefined) throw new Error(`no SQS client for peer region ${region}`);
    return client;
  };
  /** SendMessageBatch within SQS's count and size limits, in order (one FIFO group keeps a batch's order). */
  const sendInOrder = async (client: SQSClient, queueUrl: string, entries: readonly Entry[]) => {
    for (const batch of sqsBatches(entries)) {
      const out = await client.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: batch.map((entry, n) => ({ ...entry, Id: `m${n}` })),
        }),
      );
      if ((out.Failed ?? []).length > 0) {
        throw new Error(`SendMessageBatch to ${queueUrl} failed for ${out.Failed?.length} message(s)`);
      }
    }
  };
  const entryOf = ({ QueueUrl: _url, ...entry }: { QueueUrl: string } & Entry): Entry => entry;

  return {
    topology,
    async forward(messages, home) {
      const queueUrl = topology.peers.get(home);
      if (queueUrl === undefined) throw new Error(`no delivery queue for ${home}`);
      await sendInOrder(
        clientOf(home),
        queueUrl,
        messages.map((m) => entryOf(deliverySendParams(queueUrl, m))),
      );
    },
    history(history) {
      if (topology.peers.size === 0) return history;
      return replicatingHistory(history, async (messages: readonly SequencedMessage[]) => {
        if (local === undefined) {
          throw new Error('REPLICATION_QUEUE_URL is not set; the function needs the replicationQueue binding');
        }
        const jobs = replicationJobs(messages, topology);
        await sendInOrder(
          local,
          replicationQueueUrl,
          jobs.map((job) => entryOf(replicationSendParams(replicationQueueUrl, job))),
        );
        logger.debug('queued for replication', { jobs: jobs.length, peers: [...topology.peers.keys()] });
      });
    },
    async sendReplica(to, replica) {
      const queueUrl = topology.peers.get(to);
      if (queueUrl === undefined) throw new Error(`no delivery queue for ${to}`);
      await clientOf(to).send(new SendMessageCommand(replicaSendParams(queueUrl, replica)));
    },
  };
}
