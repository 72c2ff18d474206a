import { describe, expect, it } from '@jest/globals';
import { MemberCache } from './member-cache.ts';
import type { Member } from './registry.ts';

const member = (connectionId: string, ttl?: number): Member => ({
  connectionId,
  userId: `u-${connectionId}`,
  roles: [],
  claims: {},
  ...(ttl !== undefined && { ttl }),
});

describe('MemberCache', () => {
  it('gives back a list only for the membership version it was read at', () => {
    const cache = new MemberCache();
    cache.set('acme', 'chat', 3, [member('a'), member('b')]);
    expect(cache.get('acme', 'chat', 3)?.map((m) => m.connectionId)).toEqual(['a', 'b']);
    expect(cache.get('acme', 'chat', 4)).toBeUndefined();
    expect(cache.get('acme', 'other', 3)).toBeUndefined();
    expect(cache.get('globex', 'chat', 3)).toBeUndefined();
  });

  it('replaces a group list read at a newer version', () => {
    const cache = new MemberCache();
    cache.set('acme', 'chat', 1, [member('a')]);
    cache.set('acme', 'chat', 2, [member('a'), member('b')]);
    expect(cache.get('acme', 'chat', 1)).toBeUndefined();
    expect(cache.get('acme', 'chat', 2)).toHaveLength(2);
    expect(cache.size).toBe(2);
  });

  it('leaves out members whose ttl passed since the list was read', () => {
    let now = 1_000_000_000_000;
    const cache = new MemberCache({ now: () => now });
    cache.set('acme', 'chat', 1, [member('short', now / 1000 + 10), member('long', now / 1000 + 100), member('none')]);
    now += 11_000;
    expect(cache.get('acme', 'chat', 1)?.map((m) => m.connectionId)).toEqual(['long', 'none']);
  });

  it('holds at most maxMembers, letting the least recently used group go first', () => {
    const cache = new MemberCache({ maxMembers: 4 });
    cache.set('acme', 'one', 1, [member('a'), member('b')]);
    cache.set('acme', 'two', 1, [member('c'), member('d')]);
    cache.get('acme', 'one', 1);
    cache.set('acme', 'three', 1, [member('e')]);
    expect(cache.get('acme', 'two', 1)).toBeUndefined();
    expect(cache.get('acme', 'one', 1)).toHaveLength(2);
    expect(cache.get('acme', 'three', 1)).toHaveLength(1);
    expect(cache.size).toBe(3);
  });

  it('does not hold a list larger than maxMembers', () => {
    const cache = new MemberCache({ maxMembers: 2 });
    cache.set('acme', 'big', 1, [member('a'), member('b'), member('c')]);
    expect(cache.get('acme', 'big', 1)).toBeUndefined();
    expect(cache.size).toBe(0);
  });
});
