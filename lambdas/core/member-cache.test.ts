import { describe, expect, it } from '@jest/globals';
import { MemberCache, memberBytes } from './member-cache.ts';
import type { Member } from './registry.ts';

const member = (connectionId: string, extra: Partial<Member> = {}): Member => ({
  connectionId,
  userId: `u-${connectionId}`,
  roles: [],
  claims: {},
  ...extra,
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
    expect(cache.bytes).toBe(memberBytes(member('a')) + memberBytes(member('b')));
  });

  it('leaves out members whose ttl passed since the list was read', () => {
    let now = 1_000_000_000_000;
    const cache = new MemberCache({ now: () => now });
    const s = now / 1000;
    cache.set('acme', 'chat', 1, [member('short', { ttl: s + 10 }), member('long', { ttl: s + 100 }), member('none')]);
    now += 11_000;
    expect(cache.get('acme', 'chat', 1)?.map((m) => m.connectionId)).toEqual(['long', 'none']);
  });

  it('uses a list for at most maxAgeMs, whatever the version says (a change whose version raise failed)', () => {
    let now = 1_000_000_000_000;
    const cache = new MemberCache({ now: () => now, maxAgeMs: 30_000 });
    cache.set('acme', 'chat', 1, [member('a')]);
    now += 29_999;
    expect(cache.get('acme', 'chat', 1)).toHaveLength(1);
    now += 1;
    expect(cache.get('acme', 'chat', 1)).toBeUndefined();
    expect(cache.bytes).toBe(0);
  });

  it('holds at most maxBytes, letting the least recently used group go first', () => {
    const one = memberBytes(member('a'));
    const cache = new MemberCache({ maxBytes: 8 * one });
    cache.set('acme', 'one', 1, [member('a'), member('b')]);
    cache.set('acme', 'two', 1, [member('c'), member('d')]);
    cache.set('acme', 'three', 1, [member('e'), member('f')]);
    cache.get('acme', 'one', 1);
    cache.set('acme', 'four', 1, [member('g'), member('h')]);
    cache.set('acme', 'five', 1, [member('j')]);
    expect(cache.get('acme', 'two', 1)).toBeUndefined();
    expect(cache.get('acme', 'one', 1)).toHaveLength(2);
    expect(cache.get('acme', 'five', 1)).toHaveLength(1);
    expect(cache.bytes).toBeLessThanOrEqual(8 * one);
  });

  it('counts claims in the bound, so members with large claims take more of it', () => {
    const small = member('a');
    const large = member('a', { claims: { note: 'x'.repeat(1500) } });
    expect(memberBytes(large)).toBeGreaterThan(memberBytes(small) + 4000);
  });

  it('does not keep a list over a quarter of maxBytes', () => {
    const one = memberBytes(member('a'));
    const cache = new MemberCache({ maxBytes: 8 * one });
    cache.set('acme', 'big', 1, [member('a'), member('b'), member('c')]);
    expect(cache.get('acme', 'big', 1)).toBeUndefined();
    expect(cache.bytes).toBe(0);
  });
});
