import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { FakeTable } from '../../test/support/fake-table.ts';
import type { BroadcastDeps } from './broadcast.ts';
import { type DeliveryMessage, messageGroupIdOf, type SequencedMessage } from './delivery.ts';
import { GroupHistory } from './history.ts';
import type { Member } from './registry.ts';
import {
  deliverReplicas,
  homeRegionOf,
  parseTopology,
  type ReplicaMessage,
  replicaDedupId,
  replicaProblem,
  replicaSendParams,
  replicatingHistory,
  replicationJobs,
  replicationSendParams,
  routeOf,
  type StageTopology,
} from './replication.ts';

const EU = 'https://sqs.eu-west-1.amazonaws.com/123456789012/tenantcast-prod-delivery.fifo';
const US = 'https://sqs.us-east-1.amazonaws.com/123456789012/tenantcast-prod-delivery.fifo';
const T = 'acme';
const G = 'chat:x';

const message = (id: string, extra: Partial<DeliveryMessage> = {}): DeliveryMessage => ({
  v: 1,
  id,
  tenantId: T,
  group: G,
  data: { id },
  from: 'alice',
  ts: 1,
  ...extra,
});
const replica = (id: string, seq: number): ReplicaMessage => ({
  v: 1,
  kind: 'replica',
  origin: 'eu-west-1',
  seq,
  message: message(id),
});

describe('replicaProblem', () => {
  const message = (tenantId: string): DeliveryMessage => ({
    v: 1,
    id: 'm1',
    tenantId,
    group: 'chat:general',
    data: 'hi',
    from: 'alice',
    ts: 1,
  });
  const replica = (origin: string, tenantId: string): ReplicaMessage => ({
    v: 1,
    kind: 'replica',
    origin,
    seq: 1,
    message: message(tenantId),
  });
  const here = parseTopology({
    region: 'eu-west-1',
    stageRegions: 'eu-west-1 us-east-1',
    peerDeliveryQueues: `us-east-1=${US}`,
  });
  // A tenant homed in each region.
  const tenants = Array.from({ length: 40 }, (_, i) => `t${i}`);
  const homedIn = (region: string) => tenants.find((t) => homeRegionOf(t, here.regions) === region) as string;

  it('takes a replica from the peer that is the tenant home', () => {
    expect(replicaProblem(replica('us-east-1', homedIn('us-east-1')), here)).toBeUndefined();
  });

  it('refuses a replica from a region that is not a peer, for a tenant homed here, or in a single-region stage', () => {
    expect(replicaProblem(replica('mars-1', homedIn('us-east-1')), here)).toMatch(/not a peer/);
    expect(replicaProblem(replica('us-east-1', homedIn('eu-west-1')), here)).toMatch(/not the home/);
    expect(replicaProblem(replica('eu-west-1', homedIn('eu-west-1')), here)).toMatch(/not a peer/);
    const alone = parseTopology({ region: 'eu-west-1', stageRegions: '', peerDeliveryQueues: '' });
    expect(replicaProblem(replica('us-east-1', 'acme'), alone)).toMatch(/not a peer/);
  });
});

describe('parseTopology', () => {
  it('reads the stage regions and the delivery queue of every other region', () => {
    const topology = parseTopology({
      region: 'eu-west-1',
      stageRegions: 'eu-west-1 us-east-1',
      peerDeliveryQueues: `us-east-1=${US}`,
    });
    expect(topology).toEqual({
      region: 'eu-west-1',
      regions: ['eu-west-1', 'us-east-1'],
      peers: new Map([['us-east-1', US]]),
    });
  });

  it('makes a region without stage settings a stage of its own, with no peers', () => {
    expect(parseTopology({ region: 'eu-west-1', stageRegions: '', peerDeliveryQueues: '' })).toEqual({
      region: 'eu-west-1',
      regions: ['eu-west-1'],
      peers: new Map(),
    });
  });

  it('refuses a stage region that has no delivery queue, naming it', () => {
    expect(() =>
      parseTopology({
        region: 'eu-west-1',
        stageRegions: 'eu-west-1 us-east-1 ap-south-1',
        peerDeliveryQueues: `us-east-1=${US}`,
      }),
    ).toThrow('PEER_DELIVERY_QUEUES has no delivery queue for ap-south-1');
  });

  it('refuses a queue of a region outside the stage, or of this region itself', () => {
    expect(() =>
      parseTopology({ region: 'eu-west-1', stageRegions: 'eu-west-1', peerDeliveryQueues: `us-east-1=${US}` }),
    ).toThrow("names 'us-east-1', which is not a peer of eu-west-1");
    expect(() =>
      parseTopology({
        region: 'eu-west-1',
        stageRegions: 'eu-west-1 us-east-1',
        peerDeliveryQueues: `eu-west-1=${EU} us-east-1=${US}`,
      }),
    ).toThrow("names 'eu-west-1', which is not a peer of eu-west-1");
  });

  it('refuses stage regions that leave out this region, and pairs without a URL', () => {
    expect(() => parseTopology({ region: 'eu-west-1', stageRegions: 'us-east-1', peerDeliveryQueues: '' })).toThrow(
      "STAGE_REGIONS 'us-east-1' does not include this region (eu-west-1)",
    );
    expect(() =>
      parseTopology({ region: 'eu-west-1', stageRegions: 'eu-west-1 us-east-1', peerDeliveryQueues: 'us-east-1' }),
    ).toThrow("expected region=queueUrl (got 'us-east-1')");
  });
});

describe('homeRegionOf', () => {
  const regions = ['eu-west-1', 'us-east-1', 'ap-southeast-2'];

  it('picks the same region of the stage for a tenant whatever the order the regions are listed in', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.shuffledSubarray(regions, { minLength: 3 }), (tenant, shuffled) => {
        expect(homeRegionOf(tenant, shuffled)).toBe(homeRegionOf(tenant, regions));
        expect(regions).toContain(homeRegionOf(tenant, regions));
      }),
    );
  });

  it('spreads tenants over the regions', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const home = homeRegionOf(`tenant-${i}`, regions);
      counts.set(home, (counts.get(home) ?? 0) + 1);
    }
    for (const region of regions) expect(counts.get(region)).toBeGreaterThan(800);
  });

  it('moves only the tenants that a new region wins when a region is added', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), (tenant) => {
        const after = homeRegionOf(tenant, [...regions, 'sa-east-1']);
        expect([homeRegionOf(tenant, regions), 'sa-east-1']).toContain(after);
      }),
    );
  });
});

describe('routeOf', () => {
  const eu = parseTopology({
    region: 'eu-west-1',
    stageRegions: 'eu-west-1 us-east-1',
    peerDeliveryQueues: `us-east-1=${US}`,
  });
  const us = parseTopology({
    region: 'us-east-1',
    stageRegions: 'eu-west-1 us-east-1',
    peerDeliveryQueues: `eu-west-1=${EU}`,
  });

  it("keeps a tenant's publishes in its home region and forwards them to the home from every other region", () => {
    const home = homeRegionOf(T, eu.regions);
    const [atHome, elsewhere] = home === 'eu-west-1' ? [eu, us] : [us, eu];
    expect(routeOf(T, atHome)).toEqual({ kind: 'home' });
    expect(routeOf(T, elsewhere)).toEqual({ kind: 'forward', home, queueUrl: home === 'eu-west-1' ? EU : US });
  });
});

describe('replication messages', () => {
  const topology: StageTopology = {
    region: 'eu-west-1',
    regions: ['eu-west-1', 'us-east-1', 'ap-south-1'],
    peers: new Map([
      ['us-east-1', US],
      ['ap-south-1', 'https://sqs.ap-south-1.amazonaws.com/1/q.fifo'],
    ]),
  };
  const sequenced: SequencedMessage[] = [
    { ...message('a'), seq: 7 },
    { ...message('b'), seq: 8 },
  ];

  it('makes one job per peer and message, in seq order, carrying the seq and the origin', () => {
    const jobs = replicationJobs(sequenced, topology);
    expect(jobs.map((j) => [j.to, j.replica.message.id, j.replica.seq, j.replica.origin])).toEqual([
      ['us-east-1', 'a', 7, 'eu-west-1'],
      ['us-east-1', 'b', 8, 'eu-west-1'],
      ['ap-south-1', 'a', 7, 'eu-west-1'],
      ['ap-south-1', 'b', 8, 'eu-west-1'],
    ]);
    expect(jobs[0]?.replica.message).toEqual(message('a'));
  });

  it('queues jobs in one FIFO lane per peer and group, deduplicated per peer, message and seq', () => {
    const [toUs, , toAp] = replicationJobs(sequenced, topology).map((job) => replicationSendParams('q', job));
    expect(toUs).toMatchObject({ MessageGroupId: 'us-east-1#acme#chat:x', MessageDeduplicationId: 'us-east-1/a@7' });
    expect(toAp).toMatchObject({ MessageGroupId: 'ap-south-1#acme#chat:x', MessageDeduplicationId: 'ap-south-1/a@7' });
  });

  it('hashes lanes of long group names to what SQS allows', () => {
    const long = { ...message('a', { group: `chat:${'x'.repeat(120)}` }), seq: 1 };
    const [job] = replicationJobs([long], topology);
    const params = replicationSendParams('q', job as NonNullable<typeof job>);
    expect(params.MessageGroupId.length).toBeLessThanOrEqual(128);
    expect(params.MessageGroupId).toMatch(/^[!-~]+$/);
  });

  it("sends a replica in its group's own FIFO group, under a dedup id other than the message id", () => {
    const params = replicaSendParams(US, replica('a', 7));
    expect(params).toMatchObject({
      QueueUrl: US,
      MessageGroupId: messageGroupIdOf(T, G),
      MessageDeduplicationId: replicaDedupId('a', 7),
    });
    expect(JSON.parse(params.MessageBody)).toEqual(replica('a', 7));
  });

  it('gives a replica a dedup id no published id such as `a@7` is, in SQS’s characters and length', () => {
    const id = replicaSendParams(US, replica('a', 7)).MessageDeduplicationId;
    expect(id).not.toBe('a@7');
    expect(id).toMatch(/^r:[!-~]{1,126}$/);
    expect(replicaDedupId('a', 7)).not.toBe(replicaDedupId('a', 8));
    expect(replicaDedupId('a\n7', 1)).not.toBe(replicaDedupId('a', 7));
  });

  it('sends a replica of a message whose id SQS cannot take with ids and attributes it can (the home takes them)', () => {
    const params = replicaSendParams(US, replica('ctl\u0001\uD800', 7));
    expect(params.MessageDeduplicationId).toMatch(/^r:[!-~]+$/);
    expect(params.MessageAttributes.messageId.StringValue).toMatch(/^h:/);
  });
});

describe('replicatingHistory', () => {
  it('queues the run for the peers with its seqs once they are assigned, before the run goes on', async () => {
    const table = new FakeTable();
    const history = new GroupHistory({ client: table.client, tableName: 'test' });
    const queued: [string, number][][] = [];
    const replicating = replicatingHistory(history, async (messages) => {
      queued.push(messages.map((m) => [m.id, m.seq]));
    });
    const out = await replicating.assign([message('a'), message('b')], await replicating.state(T, G));
    expect(queued).toEqual([
      [
        ['a', 1],
        ['b', 2],
      ],
    ]);
    expect(out.map((m) => m.seq)).toEqual([1, 2]);
  });

  it('fails the assignment when the run cannot be queued, so the run is retried with the same seqs', async () => {
    const table = new FakeTable();
    const history = new GroupHistory({ client: table.client, tableName: 'test' });
    let fail = true;
    const replicating = replicatingHistory(history, async () => {
      if (fail) throw new Error('SQS unavailable');
    });
    await expect(replicating.assign([message('a')], await replicating.state(T, G))).rejects.toThrow('SQS unavailable');
    fail = false;
    const retried = await replicating.assign([message('a')], await replicating.state(T, G));
    expect(retried.map((m) => [m.id, m.seq])).toEqual([['a', 1]]);
  });
});

describe('deliverReplicas', () => {
  const member = (connectionId: string): Member => ({
    connectionId,
    userId: connectionId,
    roles: ['member'],
    claims: {},
  });

  function setup() {
    const table = new FakeTable();
    const history = new GroupHistory({ client: table.client, tableName: 'test' });
    const posts: [string, string][] = [];
    const deps: BroadcastDeps = {
      history,
      registry: {
        members: async function* () {
          yield [member('c1'), member('c2')];
        },
        connectionsOfUser: async () => [],
        membershipVersion: async () => 0,
        removeConnection: async () => ({ groups: 0 }),
        replayState: async () => 'waiting' as const,
        completeReplay: async () => undefined,
      },
      post: async (connectionId, data) => {
        posts.push([connectionId, data]);
      },
      isGone: () => false,
      isRetryable: () => false,
      enqueueFanout: async () => undefined,
    };
    const received = (connectionId: string) =>
      posts
        .filter(([c]) => c === connectionId)
        .flatMap(([, data]) => {
          const frame = JSON.parse(data) as { type: string; messages?: Record<string, unknown>[] };
          return frame.type === 'batch' ? (frame.messages ?? []) : [frame as Record<string, unknown>];
        })
        .map((f) => [f.id, f.seq]);
    return { table, history, deps: { ...deps, recorder: history }, received };
  }

  it("delivers replicas with the home's seqs and keeps them in this region's history, assigning none", async () => {
    const { history, deps, received } = setup();
    const result = await deliverReplicas([replica('a', 41), replica('b', 42)], false, deps);

    expect(result.seqs).toEqual([41, 42]);
    expect(received('c1')).toEqual([
      ['a', 41],
      ['b', 42],
    ]);
    expect(received('c2')).toEqual(received('c1'));
    expect(await history.state(T, G)).toMatchObject({ seq: 42 });
    const read = await history.read(T, G, 40);
    expect(read.kind === 'ok' && read.messages.map((m) => [m.id, m.seq])).toEqual([
      ['a', 41],
      ['b', 42],
    ]);
  });

  it('delivers nothing twice when the home sends a replica again after the dedup window', async () => {
    const { deps, received } = setup();
    await deliverReplicas([replica('a', 1)], false, deps);
    await deliverReplicas([replica('a', 1), replica('b', 2)], false, deps);

    expect(received('c1')).toEqual([
      ['a', 1],
      ['b', 2],
    ]);
  });

  it('lets a message assigned here later continue the sequence after the replicated seqs', async () => {
    const { history, deps } = setup();
    await deliverReplicas([replica('a', 5)], false, deps);
    const [next] = await history.assign([message('local')], await history.state(T, G));
    expect(next?.seq).toBe(6);
  });
});
