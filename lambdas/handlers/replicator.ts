/**
 * Replicator: consumes the home region's replication queue (SQS FIFO, one lane per peer region and group) and sends
 * each sequenced message to its peer's delivery queue as a replica (docs/multi-region.md). A peer that cannot be
 * reached fails its lane only (skipGroupOnError), which SQS retries in order; other peers' lanes go on.
 */
import type { SQSRecord } from 'aws-lambda';
import { ReplicationJob } from '../core/replication.ts';
import { queues } from '../manifest.ts';
import { fifoBatchHandler } from '../shared/fifo-batch-handler.ts';
import { createLogger } from '../shared/logger.ts';
import { createMetrics, MetricUnit } from '../shared/metrics.ts';
import { createReplication } from '../shared/replication-deps.ts';

const logger = createLogger();
const metrics = createMetrics();
const replication = createReplication(logger);

async function replicate(record: SQSRecord): Promise<void> {
  const parsed = ReplicationJob.safeParse(safeJson(record.body));
  if (!parsed.success || !replication.topology.peers.has(parsed.data.to)) {
    // Never sendable (we write these jobs ourselves; a region removed from the stage is the only way here):
    // retrying for ~16 h would hold its lane back, so it is logged and dropped.
    logger.error('dropped replication job', {
      sqsMessageId: record.messageId,
      reason: parsed.success ? `unknown peer region ${parsed.data.to}` : parsed.error.message,
    });
    metrics.addMetric('ReplicationJobsDropped', MetricUnit.Count, 1);
    return;
  }
  const { to, replica } = parsed.data;
  await replication.sendReplica(to, replica);
  metrics.addMetric('ReplicasSent', MetricUnit.Count, 1);
  // Publish → handed to the peer: how far the peer is behind the home (CloudWatch alarm: docs/multi-region.md).
  metrics.addMetric('ReplicationLag', MetricUnit.Milliseconds, Math.max(0, Date.now() - replica.message.ts));
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export const handler = fifoBatchHandler({
  logger,
  metrics,
  maxReceiveCount: queues.replication.maxReceiveCount,
  recordHandlerFor: () => replicate,
});
