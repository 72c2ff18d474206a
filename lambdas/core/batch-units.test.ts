import { describe, expect, it } from '@jest/globals';
import {
  batchUnits,
  deliverIsolating,
  type Outcome,
  recordStarters,
  replayCompanions,
  type UnitRecord,
} from './batch-units.ts';
import type { DeliveryMessage } from './delivery.ts';
import { PoisonRecordError } from './poison.ts';
import { homeRegionOf, parseTopology } from './replication.ts';

const alone = parseTopology({ region: 'eu-west-1', stageRegions: '', peerDeliveryQueues: '' });
const pair = parseTopology({
  region: 'eu-west-1',
  stageRegions: 'eu-west-1 us-east-1',
  peerDeliveryQueues: 'us-east-1=https://sqs.us-east-1.amazonaws.com/1/delivery.fifo',
});
/** A tenant whose home is the peer, so its replicas are taken here. */
const abroad = ['t1', 't2', 't3', 't4', 't5', 't6'].find(
  (t) => homeRegionOf(t, pair.regions) === 'us-east-1',
) as string;

let n = 0;
function message(group: string, extra: Partial<DeliveryMessage> = {}): DeliveryMessage {
  n += 1;
  return { v: 1, id: `m${n}`, tenantId: 'acme', group, data: { n }, from: 'alice', ts: 1, ...extra };
}
function record(body: unknown, messageGroup = 'acme#chat:a'): UnitRecord {
  n += 1;
  return {
    messageId: `r${n}`,
    body: typeof body === 'string' ? body : JSON.stringify(body),
    attributes: { MessageGroupId: messageGroup },
  };
}
const kinds = (units: ReturnType<typeof batchUnits>) => units.map((u) => `${u.kind}:${u.records.length}`);

describe('batchUnits', () => {
  it('makes one run of consecutive messages of a group, in order', () => {
    const records = [record(message('chat:a')), record(message('chat:a')), record(message('chat:a'))];
    const units = batchUnits(records, alone);
    expect(kinds(units)).toEqual(['run:3']);
    expect(units[0]?.records).toEqual(records);
  });

  it('never puts two groups meeting in one message group into one run', () => {
    const units = batchUnits([record(message('chat:a')), record(message('chat:b')), record(message('chat:a'))], alone);
    expect(kinds(units)).toEqual(['run:2', 'run:1']);
  });

  it('keeps runs of different message groups apart and each one whole', () => {
    const units = batchUnits(
      [record(message('chat:a')), record(message('chat:b'), 'acme#chat:b'), record(message('chat:a'))],
      alone,
    );
    expect(kinds(units)).toEqual(['run:2', 'run:1']);
  });

  it('ends a run at a replay request, which is a unit of its own', () => {
    const replay = {
      v: 1,
      kind: 'replay',
      tenantId: 'acme',
      group: 'chat:a',
      connectionId: 'c1',
      since: 3,
      roles: [],
      claims: {},
    };
    const units = batchUnits([record(message('chat:a')), record(replay), record(message('chat:a'))], alone);
    expect(kinds(units)).toEqual(['run:1', 'other:1', 'run:1']);
  });

  it('sets a record that is no delivery message apart, and a message breaking the data rules as poison', () => {
    const deep = message('chat:a', { data: JSON.parse(`${'['.repeat(40)}${']'.repeat(40)}`) });
    const units = batchUnits(
      [
        record(message('chat:a')),
        record('{not json'),
        record(message('chat:a')),
        record(deep),
        record(message('chat:a')),
      ],
      alone,
    );
    expect(kinds(units)).toEqual(['run:1', 'other:1', 'run:1', 'poison:1', 'run:1']);
    expect(units[3]?.kind === 'poison' && units[3].reason).toMatch(new RegExp(`^message ${deep.id}: BAD_REQUEST`));
  });

  it('runs consecutive replicas of a group from its home together, and refuses one from a region that is not', () => {
    const replica = (seq: number) => ({
      v: 1,
      kind: 'replica',
      origin: 'us-east-1',
      seq,
      message: message('chat:a', { tenantId: abroad }),
    });
    const units = batchUnits([record(replica(1)), record(replica(2)), record(message('chat:a'))], pair);
    expect(kinds(units)).toEqual(['replicas:2', 'run:1']);
    const single = batchUnits([record(replica(3))], alone);
    expect(kinds(single)).toEqual(['poison:1']);
    expect(single[0]?.kind === 'poison' && single[0].reason).toMatch(/not a peer of eu-west-1/);
  });
});

describe('replayCompanions', () => {
  const replayFor = (connectionId: string, since = 3) => ({
    v: 1,
    kind: 'replay',
    tenantId: 'acme',
    group: 'chat:a',
    connectionId,
    since,
    roles: [],
    claims: {},
  });
  /** Each unit's companions, as indexes into `units`; '-' for a unit that is no replay request. */
  const together = (records: UnitRecord[]) => {
    const units = batchUnits(records, alone);
    const companions = replayCompanions(units);
    return units.map(
      (u) =>
        companions
          .get(u)
          ?.map((c) => units.indexOf(c))
          .join(',') ?? '-',
    );
  };

  it('starts consecutive replay requests of a group, for different connections, together', () => {
    expect(together([record(replayFor('c1')), record(replayFor('c2')), record(replayFor('c3'))])).toEqual([
      '0,1,2',
      '0,1,2',
      '0,1,2',
    ]);
  });

  it('never across a live run of the group, nor past a second request for the same connection', () => {
    expect(
      together([
        record(replayFor('c1')),
        record(replayFor('c2')),
        record(message('chat:a')),
        record(replayFor('c3')),
        record(replayFor('c3', 7)),
        record(replayFor('c4')),
      ]),
    ).toEqual(['0,1', '0,1', '-', '3', '4,5', '4,5']);
  });

  it('groups by message group: another group between them does not part them, nor join its own', () => {
    expect(
      together([
        record(replayFor('c1')),
        record(message('chat:b'), 'acme#chat:b'),
        record(replayFor('c2')),
        record(replayFor('c9'), 'acme#chat:b'),
      ]),
    ).toEqual(['0,2', '-', '0,2', '3']);
  });

  it('leaves a record that is no delivery message alone', () => {
    expect(together([record(replayFor('c1')), record('not json'), record(replayFor('c2'))])).toEqual(['0', '-', '2']);
  });
});

describe('recordStarters', () => {
  const replayFor = (connectionId: string) => ({
    v: 1,
    kind: 'replay',
    tenantId: 'acme',
    group: 'chat:a',
    connectionId,
    since: 3,
    roles: [],
    claims: {},
  });

  it('starts the replays queued together with the first record, each once, and settles once they have', async () => {
    const records = [
      record(replayFor('c1')),
      record(replayFor('c2')),
      record(replayFor('c3')),
      record(message('chat:a')),
    ];
    const units = batchUnits(records, alone);
    const started: number[] = [];
    const finish: (() => void)[] = [];
    const { starters, startedAhead } = recordStarters(units, (unit) => {
      started.push(units.indexOf(unit));
      return new Promise<Outcome>((resolve) => finish.push(() => resolve(new Map())));
    });
    const first = starters.get(records[0]?.messageId as string)?.();
    // The live run behind them waits for its turn.
    expect(started).toEqual([1, 2, 0]);
    let settled = false;
    const settling = startedAhead().then(() => {
      settled = true;
    });
    for (const done of finish) done();
    await first;
    await settling;
    expect(settled).toBe(true);
    // A companion's own record gets the same outcome, without a second start.
    await starters.get(records[1]?.messageId as string)?.();
    const live = starters.get(records[3]?.messageId as string)?.();
    finish.at(-1)?.();
    await live;
    expect(started).toEqual([1, 2, 0, 3]);
  });

  it('settles with the companions whose record is never handled, when the first one fails', async () => {
    const records = [record(replayFor('c1')), record(replayFor('c2'))];
    const units = batchUnits(records, alone);
    let companionDone = false;
    const { starters, startedAhead } = recordStarters(units, async (unit) => {
      if (unit === units[0]) return new Map([[records[0]?.messageId as string, new Error('throttled')]]);
      await new Promise((r) => setTimeout(r, 20));
      companionDone = true;
      return new Map();
    });
    // The FIFO processor skips the second record after the first one's failure: only the first starter is called.
    const outcome = await starters.get(records[0]?.messageId as string)?.();
    expect(outcome?.size).toBe(1);
    expect(companionDone).toBe(false);
    const results = await startedAhead();
    expect(companionDone).toBe(true);
    // With its record's result, for the batch handler to settle the record the processor skipped.
    expect([...results]).toEqual([[records[1]?.messageId, undefined]]);
  });

  it('settles with the error of a companion that failed, by its record', async () => {
    const records = [
      record(replayFor('c1')),
      record(replayFor('c2')),
      record(replayFor('c3')),
      record(replayFor('c4')),
    ];
    const units = batchUnits(records, alone);
    const gone = new Error('replay failed for good');
    const { starters, startedAhead } = recordStarters(units, async (unit) => {
      if (unit === units[1]) return new Map([[records[1]?.messageId as string, gone]]);
      if (unit === units[2]) throw new Error('rejected');
      // Failed with nothing thrown: still a failure, never taken for success.
      if (unit === units[3]) return new Map([[records[3]?.messageId as string, undefined]]);
      return new Map();
    });
    await starters.get(records[0]?.messageId as string)?.();
    const results = await startedAhead();
    expect(results.get(records[1]?.messageId as string)).toBe(gone);
    expect(results.get(records[2]?.messageId as string)).toEqual(new Error('rejected'));
    expect(results.get(records[3]?.messageId as string)).toBeInstanceOf(Error);
    expect(results.has(records[0]?.messageId as string)).toBe(false);
  });
});

describe('deliverIsolating', () => {
  const three = [message('chat:a'), message('chat:a'), message('chat:a')];
  const records = three.map((m) => record(m));

  it('fails nothing when the run is delivered as one', async () => {
    const calls: number[] = [];
    const outcome = await deliverIsolating(three, records, false, async (m) => {
      calls.push(m.length);
    });
    expect(outcome.size).toBe(0);
    expect(calls).toEqual([3]);
  });

  it('fails only the poison message of a run and delivers the ones after it', async () => {
    const delivered: string[] = [];
    const poison = new PoisonRecordError('refused');
    const outcome = await deliverIsolating(three, records, false, async (m, _r, redelivered) => {
      if (m.some((x) => x.id === three[1]?.id)) throw poison;
      delivered.push(...m.map((x) => `${x.id}${redelivered ? '*' : ''}`));
    });
    expect([...outcome]).toEqual([[records[1]?.messageId, poison]]);
    expect(delivered).toEqual([`${three[0]?.id}*`, `${three[2]?.id}*`]);
  });

  it('fails a transiently failing message and every one after it, so SQS brings them back in order', async () => {
    const poison = new PoisonRecordError('refused');
    const throttled = Object.assign(new Error('throttled'), { name: 'ThrottlingException' });
    const outcome = await deliverIsolating(three, records, false, async (m) => {
      if (m.length > 1) throw poison;
      if (m[0]?.id === three[1]?.id) throw throttled;
    });
    expect([...outcome.keys()]).toEqual([records[1]?.messageId, records[2]?.messageId]);
    expect(outcome.get(records[2]?.messageId as string)).toBe(throttled);
  });

  it('fails the whole run when it fails for a transient reason', async () => {
    const outcome = await deliverIsolating(three, records, false, async () => {
      throw new Error('socket hang up');
    });
    expect([...outcome.keys()]).toEqual(records.map((r) => r.messageId));
  });
});
