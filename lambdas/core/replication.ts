/**
 * Multi-region delivery (docs/multi-region.md). Every tenant has one **home region**, picked deterministically from
 * the stage's regions; only the home assigns seqs for the tenant's groups, so a group has one sequence everywhere.
 *
 * - A publish received in another region is **forwarded** by that region's broadcaster, unchanged, to the home's
 *   delivery queue (same FIFO group, same dedup id), where it gets its seq.
 * - The home's broadcaster, right after assigning seqs and before posting, queues one **replication job** per peer
 *   region on its own replication queue (FIFO, one lane per peer and group). The replicator sends each job to the
 *   peer's delivery queue as a **replica** (`kind: 'replica'`, with the seq), in order per lane; a peer that is down
 *   holds back only its own lane.
 * - A peer's broadcaster records a replica in its own history at the given seq and delivers it to its members with
 *   the same engine (audience, coalescing, packing, split path). Replicas share the delivery queue's FIFO group with
 *   the region's replay requests, so `since` recovery in any region is in order with live delivery there.
 *
 * Pure: the topology comes from the environment through `parseTopology`, and every port is passed in.
 */
import { createHash } from 'node:crypto';
import { type BroadcastDeps, broadcastRun, type DeliveryResult } from './broadcast.ts';
import { attributeId, DeliveryMessage, messageGroupIdOf, type SequencedMessage, sqsId } from './delivery.ts';
import type { GroupHistory } from './history.ts';
import { sqsMessageBody } from './sqs-batches.ts';
import * as z from './zod.ts';

/** Where this region sits in its stage. */
export interface StageTopology {
  /** This region. */
  readonly region: string;
  /** Every region of the stage, this one included, in cdk.json order. */
  readonly regions: readonly string[];
  /** The delivery queue URL of every other region of the stage. */
  readonly peers: ReadonlyMap<string, string>;
}

/**
 * Reads the topology from the `peers` binding's environment: `STAGE_REGIONS` (space-separated regions) and
 * `PEER_DELIVERY_QUEUES` (space-separated `region=queueUrl` pairs, one per other region).
 *
 * @throws when the two disagree: a region without a queue, a queue of an unknown region, or this region missing
 */
export function parseTopology(input: {
  readonly region: string;
  readonly stageRegions: string;
  readonly peerDeliveryQueues: string;
}): StageTopology {
  const regions = input.stageRegions.split(/[\s,]+/).filter((r) => r !== '');
  const given = regions.length === 0 ? [input.region] : regions;
  if (!given.includes(input.region)) {
    throw new Error(`STAGE_REGIONS '${input.stageRegions}' does not include this region (${input.region})`);
  }
  const peers = new Map<string, string>();
  for (const pair of input.peerDeliveryQueues.split(/\s+/).filter((p) => p !== '')) {
    const at = pair.indexOf('=');
    const region = pair.slice(0, at);
    const url = pair.slice(at + 1);
    if (at <= 0 || url === '') throw new Error(`PEER_DELIVERY_QUEUES: expected region=queueUrl (got '${pair}')`);
    if (region === input.region || !given.includes(region)) {
      throw new Error(`PEER_DELIVERY_QUEUES names '${region}', which is not a peer of ${input.region} (${given})`);
    }
    peers.set(region, url);
  }
  const missing = given.filter((r) => r !== input.region && !peers.has(r));
  if (missing.length > 0) {
    throw new Error(`PEER_DELIVERY_QUEUES has no delivery queue for ${missing.join(', ')} (STAGE_REGIONS: ${given})`);
  }
  return { region: input.region, regions: given, peers };
}

/**
 * The tenant's home region: rendezvous (highest random weight) hashing of the tenant id over the stage's regions.
 * Deterministic everywhere without a lookup; spreads tenants evenly; adding a region moves only the tenants that
 * the new region wins (about 1/n of them).
 */
export function homeRegionOf(tenantId: string, regions: readonly string[]): string {
  let best: { region: string; weight: bigint } | undefined;
  for (const region of regions) {
    const weight = createHash('sha256').update(`${tenantId}\u0000${region}`).digest().readBigUInt64BE(0);
    if (best === undefined || weight > best.weight || (weight === best.weight && region < best.region)) {
      best = { region, weight };
    }
  }
  if (best === undefined) throw new Error('a stage has at least one region');
  return best.region;
}

/** What a region's broadcaster does with a published message of `tenantId`. */
export type Route =
  | { readonly kind: 'home' }
  | { readonly kind: 'forward'; readonly home: string; readonly queueUrl: string };

export function routeOf(tenantId: string, topology: StageTopology): Route {
  const home = homeRegionOf(tenantId, topology.regions);
  if (home === topology.region) return { kind: 'home' };
  const queueUrl = topology.peers.get(home);
  if (queueUrl === undefined) throw new Error(`no delivery queue for ${home}, the home region of ${tenantId}`);
  return { kind: 'forward', home, queueUrl };
}

/** A message sequenced by its home region, on a peer's delivery queue. */
export const ReplicaMessage = z.strictObject({
  v: z.literal(1),
  kind: z.literal('replica'),
  /** The region that assigned `seq` (the tenant's home). */
  origin: z.string().check(z.minLength(1)),
  seq: z.number().check(z.int(), z.positive()),
  message: DeliveryMessage,
});
export type ReplicaMessage = z.infer<typeof ReplicaMessage>;

/** A replica waiting on the home's replication queue to be sent to region `to`. */
export const ReplicationJob = z.strictObject({
  v: z.literal(1),
  kind: z.literal('replication'),
  to: z.string().check(z.minLength(1)),
  replica: ReplicaMessage,
});
export type ReplicationJob = z.infer<typeof ReplicationJob>;

export function isReplica(body: unknown): body is ReplicaMessage {
  return typeof body === 'object' && body !== null && (body as { kind?: unknown }).kind === 'replica';
}

/**
 * Why this region must not take a replica, or undefined when it may: only the tenant's home region sequences its
 * messages, and it replicates them to its peers, so a replica comes from a peer that is the tenant's home, never to
 * the home itself. Until 2026-12-03 any `kind: 'replica'` body on the delivery queue was taken, from any origin, even
 * in a single-region stage: it overwrote the group's history at its seq and skipped the data rules.
 */
export function replicaProblem(replica: ReplicaMessage, topology: StageTopology): string | undefined {
  const { origin, message } = replica;
  const home = homeRegionOf(message.tenantId, topology.regions);
  if (!topology.peers.has(origin)) return `replica from '${origin}', which is not a peer of ${topology.region}`;
  if (origin !== home)
    return `replica from '${origin}', which is not the home of tenant '${message.tenantId}' (${home})`;
  return undefined;
}

/** One job per peer and message, in seq order. */
export function replicationJobs(messages: readonly SequencedMessage[], topology: StageTopology): ReplicationJob[] {
  const jobs: ReplicationJob[] = [];
  for (const to of topology.peers.keys()) {
    for (const { seq, ...message } of messages) {
      jobs.push({
        v: 1,
        kind: 'replication',
        to,
        replica: { v: 1, kind: 'replica', origin: topology.region, seq, message },
      });
    }
  }
  return jobs;
}

/** SendMessage parameters for the home's replication queue: one FIFO lane per peer and group. */
export function replicationSendParams(queueUrl: string, job: ReplicationJob) {
  const { message, seq } = job.replica;
  return {
    QueueUrl: queueUrl,
    MessageBody: sqsMessageBody(job),
    MessageGroupId: sqsId(`${job.to}#${messageGroupIdOf(message.tenantId, message.group)}`),
    MessageDeduplicationId: sqsId(`${job.to}/${message.id}@${seq}`),
  };
}

/**
 * A replica's deduplication id in the peer's delivery queue, where published messages of the same FIFO group are
 * deduplicated by their own ids: a hash of the id and seq, under a prefix, so no id a producer would choose names it.
 * Until 2026-12-04 it was `<id>@<seq>`, which a published id such as `order@3` could be: SQS then dropped the one or
 * the other in the peer, silently (found by an attacking pass).
 */
export function replicaDedupId(id: string, seq: number): string {
  return `r:${createHash('sha256').update(`${seq}\n${id}`, 'utf8').digest('base64url')}`;
}

/**
 * SendMessage parameters for a peer's delivery queue: the group's own FIFO group (so replicas are in order with the
 * peer's replay requests), and a dedup id no published message has (`replicaDedupId`).
 */
export function replicaSendParams(queueUrl: string, replica: ReplicaMessage) {
  const { message, seq } = replica;
  return {
    QueueUrl: queueUrl,
    MessageBody: sqsMessageBody(replica),
    MessageGroupId: messageGroupIdOf(message.tenantId, message.group),
    MessageDeduplicationId: replicaDedupId(message.id, seq),
    MessageAttributes: {
      tenantId: { DataType: 'String', StringValue: message.tenantId },
      messageId: { DataType: 'String', StringValue: attributeId(message.id) },
    },
  };
}

type History = BroadcastDeps['history'];

/**
 * The home region's history: once a run has its seqs, it is queued for replication to every peer, before anyone is
 * posted to, so a message a subscriber saw anywhere is on its way everywhere. A redelivered run keeps its seqs and
 * queues the same jobs again (deduplicated by SQS within 5 minutes, by the peers' progress records after).
 */
export function replicatingHistory(
  history: History,
  replicate: (messages: readonly SequencedMessage[]) => Promise<void>,
): History {
  return {
    state: (tenantId, group) => history.state(tenantId, group),
    assign: async (messages, state, options) => {
      const sequenced = await history.assign(messages, state, options);
      await replicate(sequenced);
      return sequenced;
    },
    read: (tenantId, group, since, max, maxBytes) => history.read(tenantId, group, since, max, maxBytes),
    markSplit: (tenantId, group, until, lanes) => history.markSplit(tenantId, group, until, lanes),
    addProgress: (tenantId, group, range, ids, complete) => history.addProgress(tenantId, group, range, ids, complete),
    progress: (tenantId, group, range) => history.progress(tenantId, group, range),
    readAfter: (tenantId, group, after, max, through) => history.readAfter(tenantId, group, after, max, through),
    addAhead: (tenantId, group, lane, through, ids, unit) =>
      history.addAhead(tenantId, group, lane, through, ids, unit),
    ahead: (tenantId, group, lane, from) => history.ahead(tenantId, group, lane, from),
    heldInLane: (tenantId, group, lane) => history.heldInLane(tenantId, group, lane),
    holdInLane: (tenantId, group, lane, connectionId) => history.holdInLane(tenantId, group, lane, connectionId),
    releaseInLane: (tenantId, group, lane, ids) => history.releaseInLane(tenantId, group, lane, ids),
  };
}

export interface ReplicaDeps extends BroadcastDeps {
  /** Writes replicas into this region's history at their seqs (`GroupHistory.record`). */
  readonly recorder: Pick<GroupHistory, 'record'>;
}

/**
 * A run of replicas of one group in a peer region: recorded in this region's history at their seqs, then delivered
 * to this region's members by the broadcast engine. A replica at or below the region's counter was handled before
 * (an SQS redelivery, or a copy the home resent after the 5-minute dedup window): the run then counts as
 * redelivered, so progress records skip the connections that already got it.
 */
export async function deliverReplicas(
  replicas: readonly ReplicaMessage[],
  receivedBefore: boolean,
  deps: ReplicaDeps,
): Promise<DeliveryResult & { readonly seqs: readonly number[]; readonly split: boolean }> {
  const sequenced: SequencedMessage[] = replicas.map((r) => ({ ...r.message, seq: r.seq }));
  const head = sequenced[0];
  if (head === undefined) return { delivered: 0, gone: 0, failed: 0, seqs: [], split: false };
  const state = await deps.history.state(head.tenantId, head.group);
  const redelivered = receivedBefore || sequenced.some((m) => m.seq <= state.seq);
  const history: History = {
    ...pickHistory(deps.history),
    // The seqs come with the replicas: record them instead of assigning new ones.
    assign: async () => {
      await deps.recorder.record(sequenced);
      return sequenced;
    },
  };
  return broadcastRun(
    replicas.map((r) => r.message),
    redelivered,
    { ...deps, history },
  );
}

function pickHistory(history: History): History {
  return replicatingHistory(history, async () => undefined);
}
