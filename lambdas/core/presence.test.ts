import { describe, expect, it } from '@jest/globals';
import { ConnectionChecks } from './connection-checks.ts';
import {
  aggregatePresence,
  announceJoin,
  announceLeave,
  hasPresenceEvents,
  livePresence,
  type PresenceDeps,
  presencePage,
  removeAnnouncingLeaves,
  sharedPresence,
} from './presence.ts';
import type { Member } from './registry.ts';

const member = (connectionId: string, userId: string): Member => ({ connectionId, userId, roles: [], claims: {} });

/** A group held in memory, a set of open connections, and the frames posted to each. */
function fakePresence(initial: Member[], open: string[]) {
  let members = [...initial];
  const alive = new Set(open);
  const posted: { connectionId: string; frame: unknown }[] = [];
  const removed: string[] = [];
  const removals: { connectionId: string; remember: boolean }[] = [];
  const reads: unknown[] = [];
  const deps: PresenceDeps = {
    registry: {
      async *members(_tenantId, _group, read) {
        reads.push(read);
        if (members.length > 0) yield [...members];
      },
      async removeConnection(connectionId, options) {
        removed.push(connectionId);
        removals.push({ connectionId, remember: options?.remember === true });
        members = members.filter((m) => m.connectionId !== connectionId);
        return { groups: 1 };
      },
    },
    isConnected: async (connectionId) => alive.has(connectionId),
    post: async (connectionId, data) => {
      posted.push({ connectionId, frame: JSON.parse(data) });
      return alive.has(connectionId);
    },
  };
  return { deps, posted, removed, removals, reads, members: () => members };
}

describe('aggregatePresence', () => {
  it('counts the connections of each user, sorted by user id', () => {
    expect(aggregatePresence([member('c1', 'bob'), member('c2', 'alice'), member('c3', 'bob')])).toEqual([
      { userId: 'alice', connections: 1 },
      { userId: 'bob', connections: 2 },
    ]);
  });

  it('is empty for an empty group', () => {
    expect(aggregatePresence([])).toEqual([]);
  });
});

describe('hasPresenceEvents', () => {
  it('matches groups against the tenant patterns, and nothing without patterns', () => {
    expect(hasPresenceEvents(['chat:*'], 'chat:general')).toBe(true);
    expect(hasPresenceEvents(['chat:*'], 'news')).toBe(false);
    expect(hasPresenceEvents(undefined, 'chat:general')).toBe(false);
  });

  it("never covers an entity's live feed, whose members a row filter may keep from each other's rows", () => {
    expect(hasPresenceEvents(['*'], 'entity:task')).toBe(false);
    expect(hasPresenceEvents(['entity:*'], 'entity:task')).toBe(false);
    expect(hasPresenceEvents(['*'], 'entities:task')).toBe(true);
  });
});

describe('livePresence', () => {
  it('leaves out and removes connections that GetConnection reports gone, remembering their groups for $disconnect', async () => {
    const fake = fakePresence([member('c1', 'alice'), member('c2', 'alice'), member('c3', 'bob')], ['c1', 'c3']);
    expect(await livePresence(fake.deps, 'acme', 'chat:x')).toEqual([
      { userId: 'alice', connections: 1 },
      { userId: 'bob', connections: 1 },
    ]);
    expect(fake.removals).toEqual([{ connectionId: 'c2', remember: true }]);
    expect(fake.posted).toEqual([]);
  });

  it('announces the leave of a user whose last connection was gone, when asked to', async () => {
    const fake = fakePresence([member('c1', 'alice'), member('c2', 'bob')], ['c1']);
    expect(await livePresence(fake.deps, 'acme', 'chat:x', { announceLeaves: true })).toEqual([
      { userId: 'alice', connections: 1 },
    ]);
    expect(fake.posted).toEqual([
      { connectionId: 'c1', frame: { type: 'presence', group: 'chat:x', event: 'leave', userId: 'bob' } },
    ]);
  });

  it('counts a member whose check failed, since a failed check is not evidence of absence', async () => {
    const fake = fakePresence([member('c1', 'alice')], []);
    const errors: unknown[] = [];
    const deps: PresenceDeps = {
      ...fake.deps,
      isConnected: async () => {
        throw new Error('throttled');
      },
      onError: (err) => errors.push(err),
    };
    expect(await livePresence(deps, 'acme', 'chat:x')).toEqual([{ userId: 'alice', connections: 1 }]);
    expect(errors).toHaveLength(1);
    expect(fake.removed).toEqual([]);
  });

  it('verifies no more than verifyLimit connections and counts the rest unverified', async () => {
    const fake = fakePresence([member('c1', 'alice'), member('c2', 'bob')], []);
    expect(await livePresence({ ...fake.deps, verifyLimit: 1 }, 'acme', 'chat:x')).toEqual([
      { userId: 'bob', connections: 1 },
    ]);
  });

  it('checks at most 50 connections per request by default, however large the group', async () => {
    const many = Array.from({ length: 300 }, (_, i) => member(`c${i}`, `u${i}`));
    const fake = fakePresence(
      many,
      many.map((m) => m.connectionId),
    );
    let calls = 0;
    const deps: PresenceDeps = {
      ...fake.deps,
      isConnected: async () => {
        calls++;
        return true;
      },
    };
    expect(await livePresence(deps, 'acme', 'chat:x')).toHaveLength(300);
    expect(calls).toBe(50);
  });

  it('does not check again a connection whose outcome is fresh, and checks the least recently checked first', async () => {
    let now = 0;
    const checks = new ConnectionChecks({ ttlMs: 10_000, now: () => now });
    const fake = fakePresence([member('c1', 'a'), member('c2', 'b'), member('c3', 'c')], ['c1', 'c2', 'c3']);
    const asked: string[] = [];
    const deps: PresenceDeps = {
      ...fake.deps,
      checks,
      verifyLimit: 2,
      isConnected: async (id) => {
        asked.push(id);
        return true;
      },
    };
    await livePresence(deps, 'acme', 'chat:x');
    await livePresence(deps, 'acme', 'chat:x');
    await livePresence(deps, 'acme', 'chat:x');
    expect(asked).toEqual(['c1', 'c2', 'c3']);
    now = 10_000;
    await livePresence(deps, 'acme', 'chat:x');
    expect(asked).toEqual(['c1', 'c2', 'c3', 'c1', 'c2']);
  });
});

describe('sharedPresence', () => {
  it('answers repeated and concurrent requests for one group with one member query, other groups apart', async () => {
    const fake = fakePresence([member('c1', 'alice')], ['c1']);
    let queries = 0;
    const deps: PresenceDeps = {
      ...fake.deps,
      registry: {
        ...fake.deps.registry,
        members: (tenantId, group) => {
          queries++;
          return fake.deps.registry.members(tenantId, group);
        },
      },
    };
    const live = sharedPresence(deps, 60_000);
    const answers = await Promise.all([live('acme', 'chat:x'), live('acme', 'chat:x')]);
    await live('acme', 'chat:x');
    expect(answers).toEqual([[{ userId: 'alice', connections: 1 }], [{ userId: 'alice', connections: 1 }]]);
    expect(queries).toBe(1);
    await live('acme', 'chat:y');
    await live('globex', 'chat:x');
    expect(queries).toBe(3);
  });
});

describe('announceJoin', () => {
  it("announces a user's first connection to every member of the group, itself included", async () => {
    const fake = fakePresence([member('c1', 'alice'), member('c2', 'bob')], ['c1', 'c2']);
    await announceJoin(fake.deps, 'acme', 'chat:x', 'bob', 'c2', [member('c1', 'alice')]);
    expect(fake.posted.map((p) => p.connectionId)).toEqual(['c1', 'c2']);
    expect(fake.posted[0]?.frame).toEqual({ type: 'presence', group: 'chat:x', event: 'join', userId: 'bob' });
  });

  it('stays quiet when another connection of the user was a member before the write and still is after it', async () => {
    const fake = fakePresence([member('c1', 'bob'), member('c2', 'bob')], ['c1', 'c2']);
    await announceJoin(fake.deps, 'acme', 'chat:x', 'bob', 'c2', [member('c1', 'bob')]);
    expect(fake.posted).toEqual([]);
    expect(fake.reads).toEqual([{ consistent: true }]);
  });

  it("announces when the user's other connection left meanwhile (a join racing a leave)", async () => {
    const fake = fakePresence([member('c2', 'bob')], ['c2']);
    await announceJoin(fake.deps, 'acme', 'chat:x', 'bob', 'c2', [member('c1', 'bob')]);
    expect(fake.posted.map((p) => (p.frame as { event: string }).event)).toEqual(['join']);
  });

  it('announces at least once when two connections of the user join at once, each seeing the other only after', async () => {
    const fake = fakePresence([member('a1', 'alice'), member('b1', 'bob'), member('b2', 'bob')], ['a1', 'b1', 'b2']);
    await Promise.all([
      announceJoin(fake.deps, 'acme', 'chat:x', 'bob', 'b1', [member('a1', 'alice')]),
      announceJoin(fake.deps, 'acme', 'chat:x', 'bob', 'b2', [member('a1', 'alice')]),
    ]);
    expect(fake.posted.filter((p) => p.connectionId === 'a1').length).toBeGreaterThanOrEqual(1);
  });
});

describe('announceLeave', () => {
  it("announces a user's last connection leaving to the members that remain", async () => {
    const fake = fakePresence([member('c1', 'alice')], ['c1']);
    await announceLeave(fake.deps, 'acme', 'chat:x', 'bob', 'c2', [member('c1', 'alice'), member('c2', 'bob')]);
    expect(fake.posted).toEqual([
      { connectionId: 'c1', frame: { type: 'presence', group: 'chat:x', event: 'leave', userId: 'bob' } },
    ]);
    expect(fake.reads).toEqual([{ consistent: true }]);
  });

  it('stays quiet while the user keeps another connection, or when the connection was not a member', async () => {
    const fake = fakePresence([member('c1', 'bob')], ['c1']);
    await announceLeave(fake.deps, 'acme', 'chat:x', 'bob', 'c2', [member('c1', 'bob'), member('c2', 'bob')]);
    await announceLeave(fake.deps, 'acme', 'chat:x', 'bob', 'c9', [member('c1', 'alice')]);
    expect(fake.posted).toEqual([]);
  });

  it('announces the leave when two connections of the user leave at once, each having seen the other before', async () => {
    // Both removals ran before either read the members again (two tabs closed together).
    const fake = fakePresence([member('c1', 'alice')], ['c1']);
    const before = [member('c1', 'alice'), member('b1', 'bob'), member('b2', 'bob')];
    await Promise.all([
      announceLeave(fake.deps, 'acme', 'chat:x', 'bob', 'b1', before),
      announceLeave(fake.deps, 'acme', 'chat:x', 'bob', 'b2', before),
    ]);
    expect(fake.posted.map((p) => [p.connectionId, (p.frame as { event: string }).event])).toContainEqual([
      'c1',
      'leave',
    ]);
  });
});

describe('removeAnnouncingLeaves', () => {
  it('removes the connection, then announces the leave in each group given, and returns the removal result', async () => {
    const fake = fakePresence([member('c1', 'alice'), member('c2', 'bob')], ['c1']);
    const result = await removeAnnouncingLeaves(
      fake.deps,
      { tenantId: 'acme', userId: 'bob', connectionId: 'c2' },
      ['chat:x'],
      () => fake.deps.registry.removeConnection('c2'),
    );
    expect(result).toEqual({ groups: 1 });
    expect(fake.members().map((m) => m.connectionId)).toEqual(['c1']);
    expect(fake.posted).toEqual([
      { connectionId: 'c1', frame: { type: 'presence', group: 'chat:x', event: 'leave', userId: 'bob' } },
    ]);
  });

  it('announces the leave where another removal took the connection out first, unless the user is still there', async () => {
    // Delivery removed bob's c2 (a 410) before its $disconnect: the members read no longer hold it.
    const fake = fakePresence([member('c1', 'alice')], ['c1']);
    await removeAnnouncingLeaves(
      fake.deps,
      { tenantId: 'acme', userId: 'bob', connectionId: 'c2' },
      [],
      async () => ({ groups: 0 }),
      async () => ['room:a'],
    );
    expect(fake.posted).toEqual([
      { connectionId: 'c1', frame: { type: 'presence', group: 'room:a', event: 'leave', userId: 'bob' } },
    ]);

    // Bob's other connection c3 is still a member: no leave.
    const still = fakePresence([member('c1', 'alice'), member('c3', 'bob')], ['c1', 'c3']);
    await removeAnnouncingLeaves(
      still.deps,
      { tenantId: 'acme', userId: 'bob', connectionId: 'c2' },
      [],
      async () => ({ groups: 0 }),
      async () => ['room:a'],
    );
    expect(still.posted).toEqual([]);
  });

  it('still removes when the groups removed earlier cannot be read, reporting the error', async () => {
    const fake = fakePresence([member('c1', 'alice'), member('c2', 'bob')], ['c1']);
    const errors: unknown[] = [];
    const result = await removeAnnouncingLeaves(
      { ...fake.deps, onError: (err) => errors.push(err) },
      { tenantId: 'acme', userId: 'bob', connectionId: 'c2' },
      ['chat:x'],
      () => fake.deps.registry.removeConnection('c2'),
      () => Promise.reject(new Error('throttled')),
    );
    expect(result).toEqual({ groups: 1 });
    expect(errors).toEqual([new Error('throttled')]);
    expect(fake.posted.map((p) => (p.frame as { group: string }).group)).toEqual(['chat:x']);
  });
});

describe('presencePage', () => {
  const members = Array.from({ length: 300 }, (_, i) => ({
    userId: `${String(i).padStart(3, '0')}-${'u'.repeat(200)}`,
    connections: 1,
  }));

  it('keeps an answer within the frame, saying how many users there are and after whom the next page starts', () => {
    const first = presencePage(members, undefined, 32 * 1024);
    expect(Buffer.byteLength(JSON.stringify({ type: 'ack', ref: 'r'.repeat(64), ...first }))).toBeLessThanOrEqual(
      32 * 1024,
    );
    expect(first.total).toBe(300);
    expect(first.members[0]).toEqual(members[0]);
    expect(first.next).toBe(first.members.at(-1)?.userId);
  });

  it('reaches every member once, in order, following `next`', () => {
    const seen: string[] = [];
    let after: string | undefined;
    for (let pages = 0; pages < 100; pages++) {
      const page = presencePage(members, after, 32 * 1024);
      seen.push(...page.members.map((m) => m.userId));
      after = page.next;
      if (after === undefined) break;
    }
    expect(seen).toEqual(members.map((m) => m.userId));
  });

  it('answers a small group whole, without `next`', () => {
    expect(presencePage(members.slice(0, 3), undefined, 32 * 1024)).toEqual({ members: members.slice(0, 3), total: 3 });
  });
});
