import { describe, expect, it } from '@jest/globals';
import type { DeliveryMessage } from './delivery.ts';
import { DeliveryFailedError, type FanoutDeps, fanOut } from './fanout.ts';

const message: DeliveryMessage = { v: 1, id: 'm1', tenantId: 'acme', group: 'g', data: { a: 1 }, from: 'alice', ts: 5 };

function deps(pages: string[][], outcome: (connectionId: string) => 'ok' | 'gone' | 'fail') {
  const posted: string[] = [];
  const removed: string[] = [];
  const d: FanoutDeps = {
    registry: {
      async *members() {
        for (const page of pages) yield page.map((connectionId) => ({ connectionId, userId: 'u' }));
      },
      removeConnection: async (id) => {
        removed.push(id);
        return { groups: 1 };
      },
    },
    post: async (id, data) => {
      const o = outcome(id);
      if (o === 'gone') throw Object.assign(new Error('gone'), { name: 'GoneException' });
      if (o === 'fail') throw Object.assign(new Error('throttled'), { name: 'LimitExceededException' });
      posted.push(`${id}:${data}`);
    },
    isGone: (err) => (err as Error).name === 'GoneException',
    concurrency: 2,
  };
  return { d, posted, removed };
}

describe('fan-out', () => {
  it('posts the message frame to every member of every page', async () => {
    const { d, posted } = deps([['a', 'b'], ['c']], () => 'ok');
    expect(await fanOut(message, d)).toEqual({ delivered: 3, gone: 0, failed: 0 });
    expect(posted).toEqual([
      'a:{"type":"message","group":"g","id":"m1","data":{"a":1},"from":"alice","ts":5}',
      expect.stringMatching(/^b:/),
      expect.stringMatching(/^c:/),
    ]);
  });

  it('removes a gone connection and still delivers to the rest', async () => {
    const { d, posted, removed } = deps([['a', 'b', 'c']], (id) => (id === 'b' ? 'gone' : 'ok'));
    expect(await fanOut(message, d)).toEqual({ delivered: 2, gone: 1, failed: 0 });
    expect(removed).toEqual(['b']);
    expect(posted).toHaveLength(2);
  });

  it('tries everyone, then fails the message when a post fails for another reason', async () => {
    const { d, posted } = deps([['a', 'b', 'c']], (id) => (id === 'a' ? 'fail' : 'ok'));
    const error = await fanOut(message, d).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeliveryFailedError);
    expect((error as DeliveryFailedError).result).toEqual({ delivered: 2, gone: 0, failed: 1 });
    expect(posted).toHaveLength(2);
  });
});
