import { describe, expect, it } from '@jest/globals';
import { DEDUPLICATION_INTERVAL_MS, MessageIndex, type StandInEntry, type Tracked } from './sqs-index.ts';

const NOW = 1_000_000;

/** An index over fake local-aws-sqs entries; `receiveOne` hides a message and counts the receive, as it does. */
function indexOf(options: { fifo: boolean; maxReceiveCount?: number }) {
  const index = new MessageIndex({
    fifo: options.fifo,
    retentionSeconds: () => 3600,
    maxReceiveCount: () => options.maxReceiveCount,
    deduplicationScope: () => 'queue',
  });
  const entries: StandInEntry[] = [];
  const send = (id: string, group?: string) => {
    const entry: StandInEntry = {
      visible: true,
      record: {
        MessageId: id,
        ReceiptHandle: '',
        attributes: {
          ApproximateReceiveCount: '0',
          ...(group === undefined ? {} : { MessageGroupId: group, MessageDeduplicationId: id }),
        },
      },
    };
    entries.push(entry);
    index.track(entry, NOW);
    return entry;
  };
  const receiveOne = (t: Tracked) => {
    t.entry.visible = false;
    t.entry.record.attributes.ApproximateReceiveCount = String(
      Number(t.entry.record.attributes.ApproximateReceiveCount) + 1,
    );
    return t.id;
  };
  const receive = (max: number, now = NOW) => {
    index.settle(now);
    return index.take(max, 30, now, receiveOne);
  };
  const remove = (id: string) => {
    const t = index.get(id);
    if (t !== undefined) index.forget(t);
  };
  return { index, send, receive, remove };
}

describe('MessageIndex', () => {
  it('standard: returns visible messages in order, skipping those in flight, and counts them in flight', () => {
    const q = indexOf({ fifo: false });
    for (const id of ['a', 'b', 'c', 'd']) q.send(id);
    expect(q.receive(2)).toEqual(['a', 'b']);
    expect(q.receive(10)).toEqual(['c', 'd']);
    expect(q.index.inFlightCount).toBe(4);
    q.remove('a');
    expect(q.index.inFlightCount).toBe(3);
  });

  it('visible messages do not count in flight; a message visible again leaves the in-flight count', () => {
    const q = indexOf({ fifo: false });
    const a = q.send('a');
    q.send('b');
    expect(q.index.inFlightCount).toBe(0);
    expect(q.receive(1)).toEqual(['a']);
    a.visible = true; // its visibility timeout ended
    q.index.settle(NOW);
    expect(q.index.inFlightCount).toBe(0);
    expect(q.receive(10)).toEqual(['a', 'b']);
  });

  it('FIFO: a group is locked while one of its messages is in flight; as many as possible come from one group', () => {
    const q = indexOf({ fifo: true });
    for (const [id, group] of [
      ['a1', 'a'],
      ['b1', 'b'],
      ['a2', 'a'],
      ['b2', 'b'],
    ] as const)
      q.send(id, group);
    expect(q.receive(10)).toEqual(['a1', 'a2', 'b1', 'b2']);
    q.send('a3', 'a');
    expect(q.receive(10)).toEqual([]);
    q.remove('a1');
    expect(q.receive(10)).toEqual([]);
    q.remove('a2');
    expect(q.receive(10)).toEqual(['a3']);
  });

  /** Sends messages in this order, each in the group its id starts with (`a0` in group `a`). */
  const sendInGroups = (q: ReturnType<typeof indexOf>, ids: string) => {
    for (const id of ids.split(' ')) q.send(id, id.slice(0, 1));
  };

  it('FIFO: the group of the oldest receivable message comes first, with as many of its messages as fit', () => {
    const q = indexOf({ fifo: true });
    sendInGroups(q, 'a0 b0 b1 c0 a1 b2');
    // a0 is the oldest: all of group a, then the group of the next oldest message (b), as far as the batch allows.
    expect(q.receive(3)).toEqual(['a0', 'a1', 'b0']);
  });

  it('FIFO: a group that fell behind comes before a busier group ahead of it, however often that one was served', () => {
    const q = indexOf({ fifo: true });
    sendInGroups(q, 'a0 b0 b1 b2 a1 a2');
    const served: string[] = [];
    for (let n = 0; n < 6; n++) {
      const [id] = q.receive(1) as string[];
      served.push(id as string);
      q.remove(id as string);
    }
    // Groups taking turns would give a0 b0 a1 b1 a2 b2: here each receive takes the oldest message it may.
    expect(served).toEqual(['a0', 'b0', 'b1', 'b2', 'a1', 'a2']);
  });

  it('FIFO: a locked group is passed over for the next oldest, and served again once released', () => {
    const q = indexOf({ fifo: true });
    sendInGroups(q, 'a0 a1 b0 c0');
    expect(q.receive(1)).toEqual(['a0']);
    expect(q.receive(1)).toEqual(['b0']);
    q.remove('a0');
    expect(q.receive(1)).toEqual(['a1']);
    expect(q.receive(1)).toEqual(['c0']);
  });

  it('FIFO: drains 50,000 groups of one message each, each once and oldest first', () => {
    // A receive looks only at the groups it serves or passes over: visiting every group on every receive (2026-12-03,
    // briefly) made this drain take 10 s here.
    const q = indexOf({ fifo: true });
    for (let n = 0; n < 50_000; n++) q.send(String(n), `g${n}`);
    const got: number[] = [];
    for (let batch = q.receive(10); batch.length > 0; batch = q.receive(10)) {
      for (const id of batch as string[]) {
        got.push(Number(id));
        q.remove(id);
      }
    }
    expect(got).toEqual(Array.from({ length: 50_000 }, (_, n) => n));
  });

  it('FIFO: after the head moves to the DLQ (maxReceiveCount receives, visibility ended), the group is released', () => {
    const q = indexOf({ fifo: true, maxReceiveCount: 2 });
    const head = q.send('poison', 'g');
    q.send('next', 'g');
    expect(q.receive(1)).toEqual(['poison']);
    head.visible = true;
    expect(q.receive(1)).toEqual(['poison']);
    // local-aws-sqs's timer moves it to the DLQ when the 30 s visibility timeout ends: it stays not visible here.
    expect(q.receive(10, NOW + 10_000)).toEqual([]);
    expect(q.receive(10, NOW + 30_000)).toEqual(['next']);
    expect(q.index.get('poison')).toBeUndefined();
  });

  it.each([
    { kind: 'standard', fifo: false },
    { kind: 'FIFO', fifo: true },
  ])('$kind: drains a backlog of 50,000 messages, each once (FIFO: each of 8 groups in order)', ({ fifo }) => {
    // The scale at which a receive or delete that scanned the backlog took minutes (local/sqs.test.ts drains a
    // smaller one over the wire); linear work here takes well under a second.
    const total = 50_000;
    const groups = 8;
    const q = indexOf({ fifo });
    for (let n = 0; n < total; n++) q.send(String(n), fifo ? `g${n % groups}` : undefined);
    const got: number[] = [];
    for (let batch = q.receive(10); batch.length > 0; batch = q.receive(10)) {
      for (const id of batch as string[]) {
        got.push(Number(id));
        q.remove(id);
      }
    }
    expect(got).toHaveLength(total);
    expect([...got].sort((a, b) => a - b).every((n, i) => n === i)).toBe(true);
    if (fifo) {
      for (let g = 0; g < groups; g++) {
        const numbers = got.filter((n) => n % groups === g);
        expect(numbers.every((n, i) => i === 0 || n > (numbers[i - 1] ?? 0))).toBe(true);
      }
    }
    expect(q.index.inFlightCount).toBe(0);
  });

  it('FIFO: finds a duplicate by deduplication id for 5 minutes after the first was sent, deleted or not', () => {
    const q = indexOf({ fifo: true });
    q.send('m1', 'g');
    expect(q.index.duplicateOf('g', 'm1', NOW)).toMatchObject({ messageId: 'm1', sentAt: NOW });
    expect(q.index.duplicateOf('g', 'm2', NOW)).toBeUndefined();
    q.remove('m1');
    // As SQS: received and deleted, it is still the one a send of its id within the interval duplicates.
    expect(q.index.duplicateOf('g', 'm1', NOW + DEDUPLICATION_INTERVAL_MS - 1)).toMatchObject({ messageId: 'm1' });
    expect(q.index.duplicateOf('g', 'm1', NOW + DEDUPLICATION_INTERVAL_MS)).toBeUndefined();
  });
});
