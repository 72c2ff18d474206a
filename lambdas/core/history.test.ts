import { describe, expect, it } from '@jest/globals';
import { FakeTable } from '../../test/support/fake-table.ts';
import { type DeliveryMessage, toMessageFrame } from './delivery.ts';
import { GroupHistory } from './history.ts';

const T = 'acme';
const G = 'chat:general';
const H = `T#${T}#G#${G}#H`;
const I = `T#${T}#G#${G}#I`;

function setup(options: { retentionSeconds?: number } = {}) {
  const table = new FakeTable();
  let now = 1_700_000_000_000;
  const history = new GroupHistory({
    client: table.client,
    tableName: 'tenantcast-test',
    now: () => now,
    ...options,
  });
  return {
    table,
    history,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

const message = (id: string, group = G): DeliveryMessage => ({
  v: 1,
  id,
  tenantId: T,
  group,
  data: { id },
  from: 'alice',
  ts: 1,
});

/** Assigns as the broadcaster does: the group's state first, then the run. */
async function assign(history: GroupHistory, ...ids: string[]) {
  const state = await history.state(T, G);
  return (
    await history.assign(
      ids.map((id) => message(id)),
      state,
    )
  ).map((m) => [m.id, m.seq]);
}

describe('GroupHistory.assign', () => {
  it('sequences a message id that comes twice in one run once (DynamoDB refuses duplicate keys in a batch)', async () => {
    const { history } = setup();
    expect(await assign(history, 'a', 'b', 'a')).toEqual([
      ['a', 1],
      ['b', 2],
    ]);
    expect(await assign(history, 'a', 'a')).toEqual([['a', 1]]);
  });

  it('gives a new group consecutive seqs from 1 and raises the counter to the last', async () => {
    const { history } = setup();
    expect(await assign(history, 'a', 'b', 'c')).toEqual([
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ]);
    expect(await assign(history, 'd')).toEqual([['d', 4]]);
    expect(await history.state(T, G)).toEqual({ seq: 4, splitUntil: 0 });
  });

  it('keeps the seq a message already has when its run is assigned again (a redelivery)', async () => {
    const { history, table } = setup();
    await assign(history, 'a', 'b');
    expect(await assign(history, 'a', 'b', 'c')).toEqual([
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ]);
    expect(table.partition(H)).toHaveLength(3);
  });

  it('never gives two writers the same seq, even when both start from the same stale state', async () => {
    const { history } = setup();
    const stale = await history.state(T, G);
    const [one, two] = await Promise.all([
      history.assign([message('x1'), message('x2')], stale),
      history.assign([message('y1'), message('y2')], stale),
    ]);
    const seqs = [...(one ?? []), ...(two ?? [])].map((m) => m.seq).sort((a, b) => a - b);
    expect(seqs).toEqual([1, 2, 3, 4]);
  });

  it('after a crash right after the history put, the redelivery finds the message at the tail and keeps its seq', async () => {
    const { history, table } = setup();
    table.failWhen((name) => name === 'UpdateCommand', new Error('sandbox died'));
    await expect(assign(history, 'a')).rejects.toThrow('sandbox died');
    expect(table.partition(H).map((item) => item.seq)).toEqual([1]);

    expect(await assign(history, 'a')).toEqual([['a', 1]]);
    expect(table.partition(H)).toHaveLength(1);
    expect((await history.state(T, G)).seq).toBe(1);
  });

  it('writes a run of new messages in one round of history puts and no id records, and a first delivery looks nothing up', async () => {
    const { history, table } = setup();
    const state = await history.state(T, G);
    const run = ['a', 'b', 'c'].map((id) => message(id));
    expect((await history.assign(run, state, { redelivered: false })).map((m) => [m.id, m.seq])).toEqual([
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ]);
    expect(table.calls.filter((c) => c.name === 'PutCommand')).toHaveLength(3);
    expect(table.calls.filter((c) => c.name === 'QueryCommand' || c.name.startsWith('Batch'))).toEqual([]);
    expect(table.partition(I)).toEqual([]);
  });

  it('when a seq of the run is already taken, takes back its own puts and gives the run the next free seqs in order', async () => {
    const { history, table } = setup();
    // Seq 2 is held by a message a crashed attempt wrote before raising the counter.
    table.put({ pk: H, sk: '000000000002', type: 'history', seq: 2, messageId: 'x', ttl: 9_999_999_999 });
    expect(await assign(history, 'a', 'b', 'c')).toEqual([
      ['a', 1],
      ['b', 3],
      ['c', 4],
    ]);
    expect(table.partition(H).map((item) => [item.messageId, item.seq])).toEqual([
      ['a', 1],
      ['x', 2],
      ['b', 3],
      ['c', 4],
    ]);
    expect((await history.state(T, G)).seq).toBe(4);
  });

  it('after a crash before the counter was raised, the next run skips the taken seq (dense, never shared)', async () => {
    const { history, table } = setup();
    await assign(history, 'a');
    table.failWhen((name) => name === 'UpdateCommand', new Error('sandbox died'));
    await expect(assign(history, 'b')).rejects.toThrow('sandbox died');
    expect((await history.state(T, G)).seq).toBe(1);

    // The stale counter says 1, but seq 2 is taken by b: c gets 3, and b keeps its 2 when it comes back.
    expect(await assign(history, 'c')).toEqual([['c', 3]]);
    expect(await assign(history, 'b')).toEqual([['b', 2]]);
    expect((await history.state(T, G)).seq).toBe(3);
  });

  it('keeps history items for the retention', async () => {
    const { history, table } = setup({ retentionSeconds: 600 });
    await assign(history, 'a');
    const nowSeconds = 1_700_000_000;
    expect(table.get(H, '000000000001')).toMatchObject({ seq: 1, ttl: nowSeconds + 600, messageId: 'a' });
  });
});

describe('GroupHistory.read', () => {
  it('keeps data as JSON text, so what a DynamoDB map cannot hold (40 levels, an empty key) reads back whole', async () => {
    const { history, table } = setup();
    let deep: unknown = 'bottom';
    for (let i = 0; i < 40; i++) deep = [deep];
    const data = { deep, '': 'empty key' };
    const state = await history.state(T, G);
    await history.assign([{ ...message('odd'), data }], state);
    expect(typeof table.get(H, '000000000001')?.body).toBe('string');
    const read = await history.read(T, G, 0);
    expect(read.kind === 'ok' && read.messages[0]?.data).toEqual(data);
  });

  it('reads history items of the earlier layout (the message as a map)', async () => {
    const { history, table } = setup();
    await assign(history, 'a');
    table.put({ pk: H, sk: '000000000001', type: 'history', seq: 1, message: message('a'), ttl: 9_999_999_999 });
    const read = await history.read(T, G, 0);
    expect(read.kind === 'ok' && read.messages.map((m) => [m.id, m.data])).toEqual([['a', { id: 'a' }]]);
  });

  it('returns what came after since, in seq order, with the current seq', async () => {
    const { history } = setup();
    await assign(history, 'a', 'b', 'c', 'd');
    const read = await history.read(T, G, 2);
    expect(read.kind).toBe('ok');
    expect(read.kind === 'ok' && read.messages.map((m) => [m.id, m.seq])).toEqual([
      ['c', 3],
      ['d', 4],
    ]);
    expect(await history.read(T, G, 4)).toEqual({ kind: 'ok', seq: 4, messages: [] });
  });

  it('with since 0 returns everything still in history', async () => {
    const { history } = setup();
    await assign(history, 'a', 'b');
    const read = await history.read(T, G, 0);
    expect(read.kind === 'ok' && read.messages.map((m) => m.seq)).toEqual([1, 2]);
  });

  it('reports expired, with the current seq, when the first message after since is gone', async () => {
    const { history, table } = setup();
    await assign(history, 'a', 'b', 'c');
    table.delete(H, '000000000002');
    expect(await history.read(T, G, 1)).toEqual({ kind: 'expired', seq: 3 });
    expect((await history.read(T, G, 2)).kind).toBe('ok');
  });

  it('with a byte bound reads pages sized to it and stops a page past it: tooLong, as past its message bound', async () => {
    const { history, table } = setup();
    const runs = 100;
    for (let i = 0; i < runs; i++) {
      const state = await history.state(T, G);
      await history.assign(
        Array.from({ length: 10 }, (_, k) => ({
          ...message(`s${String(i * 10 + k).padStart(4, '0')}`),
          data: 'y'.repeat(100),
        })),
        state,
      );
    }
    // The size a replay sends of the largest (a four-digit seq): ids are of one length, seqs of one to four digits.
    const size = JSON.stringify(toMessageFrame({ ...message('s0999'), data: 'y'.repeat(100), seq: 1000 })).length;
    const limitsAsked: unknown[] = [];
    const counting = {
      send: (command: { constructor: { name: string }; input: { Limit?: number } }) => {
        if (command.constructor.name === 'QueryCommand') limitsAsked.push(command.input.Limit);
        return table.client.send(command as never);
      },
    } as unknown as FakeTable['client'];
    const reading = new GroupHistory({ client: counting, tableName: 'tenantcast-test', now: () => 1_700_000_000_000 });

    // Within the bound: everything (a first page of 100, then pages sized to the bytes left).
    const whole = await reading.read(T, G, 0, 1000, 1000 * size);
    expect(whole.kind === 'ok' && whole.messages).toHaveLength(1000);
    // Past it: tooLong, having asked for no more than the bytes allowed (plus one item) after the first page.
    limitsAsked.length = 0;
    expect(await reading.read(T, G, 0, 1000, 300 * size)).toEqual({ kind: 'tooLong', seq: 1000 });
    expect(limitsAsked).toHaveLength(2);
    expect(limitsAsked[0]).toBe(100);
    expect(limitsAsked[1]).toBeLessThanOrEqual(205);
  });

  it('counts what a replay would send against the byte bound: not an audience, not an expired message', async () => {
    const { history, advance } = setup({ retentionSeconds: 60 });
    const everyone = Array.from({ length: 1000 }, (_, i) => `user-${i}`);
    let state = await history.state(T, G);
    // 40 one-letter messages, each sent to a list of 1,000 users (~12 KB stored, ~100 bytes sent).
    await history.assign(
      Array.from({ length: 40 }, (_, i) => ({
        ...message(`a${i}`),
        data: 'x',
        audience: { claim: { name: 'sub', anyOf: everyone } },
      })),
      state,
    );
    // ~480 KB stored against a bound of 200 KB: a quarter of it counts (120 KB), and the frames are ~4 KB.
    const fits = await history.read(T, G, 0, 1000, 200 * 1024);
    expect(fits.kind === 'ok' && fits.messages).toHaveLength(40);
    // Past their retention, 100 messages of 15 KB are an expired history, however large.
    state = await history.state(T, G);
    await history.assign(
      Array.from({ length: 100 }, (_, i) => ({ ...message(`b${i}`), data: 'y'.repeat(15_000) })),
      state,
    );
    advance(61_000);
    expect(await history.read(T, G, 40, 1000, 32 * 1024)).toEqual({ kind: 'expired', seq: 140 });
  });

  it('with a byte bound stops reading an expired history at its first page, and says expired', async () => {
    const { history, table, advance } = setup({ retentionSeconds: 60 });
    for (let i = 0; i < 30; i++) {
      const state = await history.state(T, G);
      await history.assign(
        Array.from({ length: 10 }, (_, k) => ({ ...message(`x${i * 10 + k}`), data: 'z'.repeat(15_000) })),
        state,
      );
    }
    advance(61_000);
    let itemsRead = 0;
    const counting = {
      send: async (command: { constructor: { name: string } }) => {
        const out = (await table.client.send(command as never)) as { Items?: unknown[] };
        if (command.constructor.name === 'QueryCommand') itemsRead += out.Items?.length ?? 0;
        return out;
      },
    } as unknown as FakeTable['client'];
    const reading = new GroupHistory({ client: counting, tableName: 'tenantcast-test', now: () => 1_700_000_061_000 });
    expect(await reading.read(T, G, 0, 1000, 1024 * 1024)).toEqual({ kind: 'expired', seq: 300 });
    expect(itemsRead).toBeLessThanOrEqual(100);
  });

  it('reports expired when the retention has passed, before DynamoDB TTL has deleted anything', async () => {
    const { history, advance } = setup({ retentionSeconds: 60 });
    await assign(history, 'a', 'b');
    advance(61_000);
    expect(await history.read(T, G, 0)).toEqual({ kind: 'expired', seq: 2 });
  });

  it('reports expired when since is beyond the group (its history was lost)', async () => {
    const { history } = setup();
    await assign(history, 'a');
    expect(await history.read(T, G, 5)).toEqual({ kind: 'expired', seq: 1 });
  });

  it('is ok and empty for a group that never had a message when since is 0', async () => {
    const { history } = setup();
    expect(await history.read(T, 'chat:new', 0)).toEqual({ kind: 'ok', seq: 0, messages: [] });
  });
});

describe('GroupHistory progress and split marks', () => {
  it('finds the progress records overlapping a range, with every connection added to them', async () => {
    const { history } = setup();
    await history.addProgress(T, G, { first: 1, last: 3 }, ['c1']);
    await history.addProgress(T, G, { first: 1, last: 3 }, ['c2']);
    await history.addProgress(T, G, { first: 4, last: 6 }, ['c3']);
    await history.addProgress(T, G, { first: 7, last: 9 }, ['c4']);
    const records = await history.progress(T, G, { first: 3, last: 5 });
    expect(records.map((r) => [r.first, r.last, [...r.done].sort()])).toEqual([
      [1, 3, ['c1', 'c2']],
      [4, 6, ['c3']],
    ]);
  });

  it('keeps fan-out page progress by page id, apart from run progress', async () => {
    const { history } = setup();
    await history.addProgress(T, G, { first: 5, last: 5, jobId: 'page-1' }, ['c1']);
    await history.addProgress(T, G, { first: 5, last: 5 }, ['c9']);
    const records = await history.progress(T, G, { first: 5, last: 5, jobId: 'page-1' });
    expect(records.map((r) => [...r.done])).toEqual([['c1']]);
  });

  it('records a fan-out page every recipient got under the page body fingerprint, without ids; a run never so', async () => {
    const { history, table } = setup();
    await history.addProgress(T, G, { first: 5, last: 5, jobId: 'page-1' }, ['c1', 'c2'], 'fp-1');
    const [record] = await history.progress(T, G, { first: 5, last: 5, jobId: 'page-1' });
    expect(record).toMatchObject({ first: 5, last: 5, complete: 'fp-1' });
    expect([...(record?.done ?? [])]).toEqual([]);
    const written = table.calls.at(-2)?.input as { ExpressionAttributeValues?: Record<string, unknown> };
    expect(Object.values(written.ExpressionAttributeValues ?? {}).some((v) => v instanceof Set)).toBe(false);
    // A run's members are not fixed in a job body: its record always names them.
    await history.addProgress(T, G, { first: 6, last: 6 }, ['c3'], 'fp-2');
    const [run] = await history.progress(T, G, { first: 6, last: 6 });
    expect(run?.complete).toBeUndefined();
    expect([...(run?.done ?? [])]).toEqual(['c3']);
  });

  it('writes nothing for an empty list of connections', async () => {
    const { history, table } = setup();
    await history.addProgress(T, G, { first: 1, last: 1 }, []);
    expect(table.calls).toEqual([]);
  });

  it('records until when the group stays on the split path, next to its seq', async () => {
    const { history } = setup();
    await assign(history, 'a');
    await history.markSplit(T, G, 42);
    expect(await history.state(T, G)).toEqual({ seq: 1, splitUntil: 42 });
  });
});
