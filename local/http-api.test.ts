import { describe, expect, it } from '@jest/globals';
import { flattenClaim, matchPath } from './http-api.ts';

describe('the local HTTP API stand-in', () => {
  it('matches path variables one segment each, URL-decoded', () => {
    expect(matchPath('/v1/entities/{entity}/{id}', '/v1/entities/task/a%20b')).toEqual({ entity: 'task', id: 'a b' });
    expect(matchPath('/v1/entities/{entity}', '/v1/entities/task/1')).toBeUndefined();
    expect(matchPath('/v1/schema', '/v1/schemas')).toBeUndefined();
  });

  it('matches a greedy proxy variable to the rest of the path', () => {
    expect(matchPath('/files/{proxy+}', '/files/a/b/c')).toEqual({ proxy: 'a/b/c' });
  });

  it('flattens claims to strings as API Gateway HTTP APIs do', () => {
    expect(flattenClaim(['admin', 'member'])).toBe('[admin member]');
    expect(flattenClaim(1700000000)).toBe('1700000000');
    expect(flattenClaim('acme')).toBe('acme');
    expect(flattenClaim({ a: 'b' })).toBe('map[a:b]');
  });
});
